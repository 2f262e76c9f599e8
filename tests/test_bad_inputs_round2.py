"""Bad inputs, round two (issue 19): one case per class of what an attacker or a clumsy user tried.

The classes: files that are not plain files; a corrupt sweep record that must be repaired; model code run
where none was asked for; a user's code deciding the tool's fate; readers that must skip or refuse what they
cannot use; numbers beyond what torch takes; checks that came after work; signals and leftovers; unclear
messages. Every CLI refusal runs in a copy of a results tree (``test_bad_inputs``'s ``store``) and asserts
exit status 2, exactly one ``error:`` line, no traceback, and the whole tree byte-identical afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import torch
from test_bad_inputs import REPO_RESULTS, _figures, _invoke, _tree_hashes, refused

import senet_profile
from senet_profile import api, io
from senet_profile.catalog.registry import get_model
from senet_profile.catalog.sources import build
from senet_profile.errors import ToolBug, UserInputError
from senet_profile.history import tracking
from senet_profile.history.records import new_record, read_record, save_record
from senet_profile.history.sweep import SweepStore, build_grid, run_case, run_sweep
from senet_profile.setting import Setting

HOSTILE = Path(__file__).resolve().with_name("hostile_models.py")
REPO = Path(__file__).resolve().parents[1]
SMALL = ("--input-size", "32")
SWEEP = ("sweep", "--pair", "resnet18/se_resnet18", "--input-size", "32")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's results tree with a run record of this machine's class (as round one's)."""
    root = tmp_path_factory.mktemp("store")
    shutil.copytree(REPO_RESULTS, root / "results")
    save_record(root / "results" / "runs" / tracking.current_class(), new_record("bench", _figures()))
    (root / "a-file").write_text("not a folder\n", encoding="utf-8")
    os.mkfifo(root / "fifo.json")
    return root


@pytest.fixture
def at_store(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work inside the store; after the test, the whole store must be byte-identical to before."""
    monkeypatch.chdir(store)
    before = _tree_hashes(store)
    yield store
    assert _tree_hashes(store) == before, "a refused command changed the results tree"


def hostile(function: str, how: str = "") -> str:
    """A model argument naming a misbehaving builder of ``hostile_models.py``."""
    return f"{HOSTILE}:{function}" + (f":how='{how}'" if how else "")


def _sweep_folder(root: Path) -> Path:
    grid = build_grid({"pairs": ["resnet18/se_resnet18"], "input_size": "32"})
    return root / "results" / "sweeps" / grid.sweep_id


def _record_text(change) -> str:
    data = json.loads(json.dumps(new_record("bench", _figures())))
    change(data)
    return json.dumps(data)


# --- 1. files the tool opens that are not plain files --------------------------------------------------


@pytest.fixture
def planted(store: Path) -> Iterator[dict[str, Path]]:
    """A file outside the results folder, and in the store: FIFOs, a device-like grid, a huge grid."""
    outside = store / "outside.txt"
    outside.write_text("precious\n", encoding="utf-8")
    grids = store / "grids"
    grids.mkdir()
    os.mkfifo(grids / "fifo.toml")
    (grids / "huge.toml").write_text("# " + "x" * (io.MAX_GRID_BYTES + 10) + "\n", encoding="utf-8")
    (grids / "deep.toml").write_text("pairs = " + "[" * 2000 + "]" * 2000 + "\n", encoding="utf-8")
    yield {"outside": outside, "grids": grids}
    for path in (outside, *grids.iterdir()):
        path.unlink()
    grids.rmdir()


@pytest.fixture
def lock_is_link(store: Path, planted: dict[str, Path]) -> Iterator[Path]:
    folder = _sweep_folder(store)
    folder.mkdir(parents=True)
    (folder / ".lock").symlink_to(planted["outside"])
    yield folder
    (folder / ".lock").unlink()
    folder.rmdir()


@pytest.fixture
def manifest_is(store: Path, request: pytest.FixtureRequest, planted: dict[str, Path]) -> Iterator[Path]:
    folder = _sweep_folder(store)
    folder.mkdir(parents=True)
    manifest = folder / "manifest.json"
    if request.param == "fifo":
        os.mkfifo(manifest)
    elif request.param == "link":
        manifest.symlink_to(planted["outside"])
    else:
        manifest.write_text("[" * 100_000, encoding="utf-8")
    yield folder
    manifest.unlink()
    folder.rmdir()


def test_symlinked_lock_is_refused_and_its_target_untouched(
    lock_is_link: Path, planted: dict[str, Path], at_store: Path
) -> None:
    refused(*SWEEP, needle="symbolic link")
    assert planted["outside"].read_text(encoding="utf-8") == "precious\n"


@pytest.mark.parametrize(
    ("manifest_is", "needle"),
    [("fifo", "FIFO"), ("link", "symbolic link"), ("deep", "nested deeper")],
    indirect=["manifest_is"],
)
def test_manifest_not_a_plain_readable_file_is_refused(
    manifest_is: Path, planted: dict[str, Path], at_store: Path, needle: str
) -> None:
    refused(*SWEEP, needle=needle)
    assert not (manifest_is / ".lock").exists()  # refused before the lock file was made
    assert planted["outside"].read_text(encoding="utf-8") == "precious\n"


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ("grids/fifo.toml", "FIFO"),
        ("/dev/zero", "character device"),
        ("grids/huge.toml", "larger than"),
        ("grids/deep.toml", "nested too deeply"),
        ("fifo.json", "FIFO"),
    ],
)
def test_grid_not_a_plain_small_file_is_refused(
    planted: dict[str, Path], at_store: Path, grid: str, needle: str
) -> None:
    started = time.monotonic()
    refused("sweep", "--grid", grid, "--dry-run", needle=needle)
    assert time.monotonic() - started < 30  # never waits on a FIFO, never reads a device to its end


def test_lock_file_is_opened_without_following_or_emptying(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep\n", encoding="utf-8")
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(UserInputError, match="symbolic link"):
        io.open_lock(tmp_path / "lock")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UserInputError, match="FIFO"):
        io.open_lock(tmp_path / "fifo")
    assert target.read_text(encoding="utf-8") == "keep\n"
    handle = io.open_lock(tmp_path / "new")
    os.close(handle)
    assert (tmp_path / "new").is_file()


@pytest.mark.parametrize("kind", ["fifo", "device", "large"])
def test_readers_refuse_without_blocking(tmp_path: Path, kind: str) -> None:
    path = {"fifo": tmp_path / "f", "device": Path("/dev/zero"), "large": tmp_path / "l"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "large":
        path.write_bytes(b" " * 2000)
    with pytest.raises(UserInputError, match="cannot read"):
        io.read_regular(path, limit=1000)


# --- 2. a corrupt sweep record is repaired; nothing valid is replaced ----------------------------------


class InProcess:
    """Runs each case here (no worker processes), counting what it ran."""

    name = "in-process"

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, cases):
        for case in cases:
            self.ran.append(case.id)
            yield case, run_case(case)

    def close(self) -> None:
        """Nothing to release."""


def test_corrupt_sweep_record_is_measured_again_and_replaced(tmp_path: Path) -> None:
    grid = build_grid({"pairs": ["resnet18/se_resnet18"], "batch_sizes": [1, 2], "input_size": "32"})
    first = run_sweep(grid, InProcess(), sweeps_dir=tmp_path)
    assert (first.ran, first.failures) == (2, [])
    sweep_store = SweepStore(first.folder)
    corrupt, valid = sorted(first.folder.glob("*/*.json"))
    corrupt.write_text('{"schema": 1, "figures": [', encoding="utf-8")
    kept = valid.read_bytes()
    executor = InProcess()
    again = run_sweep(grid, executor, sweeps_dir=tmp_path)
    assert (again.already_done, again.ran, again.failures) == (1, 1, [])
    assert executor.ran == [corrupt.stem]  # only the corrupt case ran again
    assert read_record(corrupt).data["settings"]["case_id"] == corrupt.stem  # replaced by a valid record
    assert valid.read_bytes() == kept
    (note,) = json.loads(sweep_store.manifest_path.read_text())["replaced"]
    assert note["case_id"] == corrupt.stem and "not a readable JSON record" in note["was"]
    third = run_sweep(grid, InProcess(), sweeps_dir=tmp_path)  # repaired: nothing left to run
    assert (third.already_done, third.ran) == (2, 0)


def test_a_valid_sweep_record_is_never_replaced(tmp_path: Path) -> None:
    grid = build_grid({"pairs": ["resnet18/se_resnet18"], "input_size": "32"})
    run_sweep(grid, InProcess(), sweeps_dir=tmp_path)
    (case,) = grid.cases()
    sweep_store = SweepStore(tmp_path / grid.sweep_id)
    (path,) = sweep_store.folder.glob("*/*.json")
    kept = path.read_bytes()
    with pytest.raises(ValueError, match="already recorded"):
        sweep_store.write(case, run_case(case))
    assert path.read_bytes() == kept
    assert "replaced" not in json.loads(sweep_store.manifest_path.read_text())


# --- 3. no model code runs where none was asked for ----------------------------------------------------


def test_dry_run_and_validation_never_call_a_builder(at_store: Path, tmp_path: Path) -> None:
    marker = tmp_path / "called"
    candidate = f"{HOSTILE}:marks:marker='{marker}'"
    build_grid({"pairs": [f"resnet18->{candidate}"]})
    result = _invoke("sweep", "--pair", f"resnet18->{candidate}", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "todo" in result.stdout and not marker.exists()


def test_grid_models_are_tried_at_the_grid_size_before_any_case(at_store: Path) -> None:
    line = refused(
        "sweep", "--pair", "resnet18/se_resnet18", "--input-size", "7", needle="tried at input 7x7"
    )
    assert "resnet18" in line


# --- 4. the user's code never decides the tool's fate --------------------------------------------------

USER_CODE_CASES = {
    "builder-exits": (["profile", hostile("exits")], "sys.exit(0)"),
    "builder-interrupts": (["profile", hostile("interrupts")], "KeyboardInterrupt"),
    "forward-exits": (["profile", hostile("forward", "exit"), *SMALL], "sys.exit(0)"),
    "forward-interrupts": (["profile", hostile("forward", "interrupt"), *SMALL], "KeyboardInterrupt"),
    "forward-keyerror-profile": (["profile", hostile("forward", "KeyError"), *SMALL], "KeyError"),
    "forward-assert-compare": (
        ["compare", "resnet18", hostile("forward", "AssertionError"), *SMALL],
        "AssertionError",
    ),
    "forward-typeerror-explain-memory": (
        ["explain-memory", "resnet18", hostile("forward", "TypeError"), *SMALL],
        "TypeError",
    ),
    "forward-keyerror-by-module": (["profile", hostile("forward", "KeyError"), "--by-module"], "KeyError"),
    "forward-keyerror-memory": (
        ["profile", hostile("forward", "KeyError"), "--metrics", "memory", *SMALL],
        "KeyError",
    ),
    "torchvision-vit-off-size": (["profile", "torchvision:vit_b_16", "--input-size", "160"], "Assertion"),
    "timm-vit-off-size": (["profile", "timm:vit_tiny_patch16_224", "--input-size", "160"], "AssertionError"),
    "torchvision-raft-two-inputs": (["profile", "torchvision:raft_small"], "image1, image2"),
    "timm-pretrained": (["profile", "timm:resnet18:pretrained=True"], "never does"),
    "builder-downloads": (["profile", hostile("downloads")], "never downloads"),
    "torchvision-weights": (["profile", "torchvision:resnet18:weights='DEFAULT'"], "never downloads"),
    "torchvision-backbone-weights": (
        ["profile", "torchvision:fcn_resnet50:weights_backbone='DEFAULT'"],
        "never downloads",
    ),
    "sweep-torchvision-weights": (
        ["sweep", "--pair", "torchvision:resnet18:weights='DEFAULT'->resnet18", "--dry-run"],
        "never downloads",
    ),
}


@pytest.mark.parametrize("case", USER_CODE_CASES, ids=list(USER_CODE_CASES))
def test_user_code_ends_in_one_line_naming_the_model(at_store: Path, case: str) -> None:
    args, needle = USER_CODE_CASES[case]
    line = refused(*args, needle=needle)
    assert "hostile_models.py" in line or "torchvision:" in line or "timm:" in line


def test_printing_model_keeps_json_valid(at_store: Path) -> None:
    result = _invoke("profile", hostile("talks"), *SMALL, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)  # what the model printed went to stderr
    assert "a builder that talks" in result.stderr and "a forward that talks" in result.stderr


def test_torchvision_backbone_weights_are_forced_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    built = build("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn")
    assert built.module is not None


@pytest.mark.parametrize("how", ["KeyError", "exit", "interrupt"])
def test_api_model_failure_is_a_user_input_error(how: str) -> None:
    with pytest.raises(UserInputError, match=r"hostile_models\.py:forward"):
        senet_profile.profile(hostile("forward", how), input_size=32)


def test_a_bug_of_the_tool_stays_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug in the tool's own counting")

    # raised in the tool's op recorder while the user's forward runs: the tool's bug, not the model's
    monkeypatch.setattr("senet_profile.analysis.trace.traffic", broken)
    with pytest.raises(ToolBug, match="own counting") as caught:
        senet_profile.profile(hostile("forward"), input_size=32)
    assert isinstance(caught.value.__cause__, KeyError)  # the original error, its traceback kept
    result = _invoke("profile", hostile("forward"), *SMALL)
    assert result.exit_code == 70 and "please report it" in result.stderr


# --- 5. readers: scanning skips with one warning, a named file is refused in one line ------------------

DEEP = "[" * 100_000 + "]" * 100_000
BAD_RECORDS = {
    "deep": (DEEP, "nested deeper"),
    "huge-number": (_record_text(lambda d: None).replace('"value": 5.0', '"value": 1' + "0" * 400), "range"),
    "huge-float": (_record_text(lambda d: None).replace('"value": 5.0', '"value": 1e400'), "range"),
    "nan": (_record_text(lambda d: None).replace('"value": 5.0', '"value": NaN'), "NaN"),
    "samples-text": (_record_text(lambda d: d["figures"][-1].update(samples="many")), "samples"),
    "noisy-text": (_record_text(lambda d: d["figures"][-1].update(noisy="very")), "noisy"),
    "time-out-of-range": (_record_text(lambda d: d.update(time="0001-01-01T00:00:00+05:00")), "out of range"),
    "median-text": (_record_text(lambda d: d["figures"][-1].update(base_median_s="slow")), "base_median_s"),
}


@pytest.fixture
def bad_record(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    content, needle = BAD_RECORDS[request.param]
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    return path, needle


@pytest.mark.parametrize("bad_record", BAD_RECORDS, indirect=True)
@pytest.mark.parametrize("role", ["regress-current", "regress-baseline", "baseline-from", "benchmark-json"])
def test_named_unusable_file_is_refused(bad_record: tuple[Path, str], at_store: Path, role: str) -> None:
    path, needle = bad_record
    args = {
        "regress-current": ["regress", "--current", path],
        "regress-baseline": ["regress", "--baseline", path],
        "baseline-from": ["baseline", "update", "--from", path],
        "benchmark-json": ["record", "--benchmark-json", path],
    }[role]
    refused(*args, needle=needle if role != "benchmark-json" else "")  # no record: not a benchmark file


@pytest.mark.parametrize("bad_record", BAD_RECORDS, indirect=True)
def test_scanning_skips_an_unusable_record_with_one_warning(
    bad_record: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = bad_record
    runs = tmp_path / "runs" / tracking.current_class()
    runs.mkdir(parents=True)
    save_record(runs, new_record("bench", _figures()))
    path.rename(runs / "99999999T999999.999999Z-ffffffffffff-1-deadbeef.json")
    result = _invoke("history", "--runs-dir", tmp_path / "runs", "--plot-dir", tmp_path / "plots")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 1 and "Traceback" not in result.stderr, result.stderr
    result = _invoke("regress", "--runs-dir", tmp_path / "runs", "--baselines-dir", tmp_path / "baselines",
                     "--skip-unreadable")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def machine_model(store: Path) -> Iterator[Path]:
    folder = store / "machine-models"
    folder.mkdir()
    path = folder / f"{tracking.current_class()}.json"
    path.write_text('{"version": ' + "1" * 500 + "}", encoding="utf-8")
    yield folder
    path.unlink()
    folder.rmdir()


def test_machine_model_reader_refuses_in_one_line(machine_model: Path, at_store: Path) -> None:
    refused("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", machine_model, needle="range")


# --- 6. numbers beyond what torch takes ----------------------------------------------------------------

BIG = str(2**63)
NUMBER_CASES = {
    "batch": (["profile", "resnet18", "--batch-size", BIG], "at most"),
    "input": (["profile", "resnet18", "--input-size", BIG], "input size"),
    "input-5000-digits": (["profile", "resnet18", "--input-size", "9" * 5000], "input size"),
    "threads": (["profile", "resnet18", "--metrics", "latency", "--threads", BIG], "at most"),
    "processes": (
        ["compare", "resnet18", "se_resnet18", "--metrics", "latency", "--processes", BIG],
        "at most",
    ),
    "budget-inf": (["profile", "resnet18", "--metrics", "latency", "--budget", "1e400"], "budget"),
    "explain-batch": (["explain-memory", "resnet18", "se_resnet18", "--batch-size", BIG], "at most"),
    "sweep-batch": ([*SWEEP, "--batch-sizes", BIG, "--dry-run"], "up to"),
    "sweep-threads": ([*SWEEP, "--metrics", "latency", "--threads", BIG, "--dry-run"], "up to"),
    "sweep-input": (
        ["sweep", "--pair", "resnet18/se_resnet18", "--input-size", BIG, "--dry-run"],
        "input size",
    ),
    "sweep-million-cases": (
        [
            *SWEEP,
            "--metrics",
            "latency",
            "--batch-sizes",
            ",".join(map(str, range(1, 1001))),
            "--threads",
            ",".join(map(str, range(1, 1001))),
            "--dry-run",
        ],
        "over the limit",
    ),
    "sweep-max-cases-zero": ([*SWEEP, "--max-cases", "0", "--dry-run"], "--max-cases"),
    "sweep-limit-huge": ([*SWEEP, "--limit", BIG, "--dry-run"], "--limit"),
}


@pytest.mark.parametrize("case", NUMBER_CASES, ids=list(NUMBER_CASES))
def test_number_out_of_bounds_is_refused(at_store: Path, case: str) -> None:
    args, needle = NUMBER_CASES[case]
    refused(*args, needle=needle)


def test_a_large_grid_is_accepted_when_the_limit_is_raised(at_store: Path) -> None:
    args = [*SWEEP, "--batch-sizes", ",".join(map(str, range(1, 21))), "--dry-run"]
    refused(*args, "--max-cases", "10", needle="over the limit")
    result = _invoke(*args, "--max-cases", "20")
    cases = [line for line in result.stdout.splitlines() if line.startswith("todo ")]
    assert result.exit_code == 0 and len(cases) == 20, result.stderr


# --- 7. every option checked before any work -----------------------------------------------------------

BEFORE_WORK_CASES = {
    "explain-fp16-cpu": (["explain", "resnet18", "se_resnet18", "--dtype", "fp16", *SMALL], "fp16"),
    "explain-input-7": (["explain", "resnet18", "se_resnet18", "--input-size", "7"], "too small"),
    "explain-machine-dir-file": (
        ["explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", "a-file"],
        "not a folder",
    ),
    "sweep-fp16-cpu": ([*SWEEP, "--metrics", "memory", "--dtypes", "fp16", "--dry-run"], "fp16"),
    "sweep-fp16-cpu-latency": ([*SWEEP, "--metrics", "latency", "--dtypes", "fp16", "--dry-run"], "fp16"),
}


@pytest.mark.parametrize("case", BEFORE_WORK_CASES, ids=list(BEFORE_WORK_CASES))
def test_option_refused_before_any_work(at_store: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the machine model was measured before the refusal")

    monkeypatch.setattr("senet_profile.analysis.roofline.measure_machine", forbidden)
    args, needle = BEFORE_WORK_CASES[case]
    refused(*args, needle=needle)


# --- 8. signals and leftovers --------------------------------------------------------------------------


def _cli(args: Sequence[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    command = [sys.executable, "-m", "senet_profile.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, **kwargs)  # fmt: skip


def test_pythonwarnings_error_keeps_the_tools_warnings_one_line(tmp_path: Path) -> None:
    process = _cli(["profile", "resnet18", *SMALL, "--budget", "5"], env={"PYTHONWARNINGS": "error"})
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "warning: --budget does nothing here" in err


@pytest.mark.slow
def test_ctrl_c_during_latency_workers_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    args = ["compare", "resnet18", "se_resnet18", *SMALL, "--metrics", "latency", "--processes", "3",
            "--budget", "30"]  # fmt: skip
    process = _cli(args, env={"TMPDIR": str(tmp_path)}, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(tmp_path.glob("senet-profile-*/models.pt")):
        time.sleep(0.2)
    assert list(tmp_path.glob("senet-profile-*/models.pt")), "the workers never started"
    time.sleep(2)  # a worker is loading the models, another timing
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert not list(tmp_path.glob("senet-profile-*")), "the temporary folder was left behind"
    alive = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True, check=False)
    assert alive.stdout.strip() == "", "a worker outlived the interrupted command"


@pytest.mark.slow
def test_sigkill_leaves_no_worker_timing_and_the_next_run_sweeps_its_folder(tmp_path: Path) -> None:
    args = ["compare", "resnet18", "se_resnet18", *SMALL, "--metrics", "latency", "--processes", "3",
            "--budget", "30"]  # fmt: skip
    process = _cli(args, env={"TMPDIR": str(tmp_path)}, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(tmp_path.glob("senet-profile-*/models.pt")):
        time.sleep(0.2)
    (models,) = tmp_path.glob("senet-profile-*/models.pt")
    time.sleep(2)
    process.kill()  # the command alone, as the OOM killer would
    process.communicate(timeout=30)
    time.sleep(2)
    alive = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True, check=False)
    assert alive.stdout.strip() == "", "a worker went on timing after its command was killed"
    assert models.exists()  # what the killed run left, until the next run
    with io.temp_folder(tmp_path):  # what the next latency run does first
        assert not models.parent.exists()


def test_a_killed_runs_temporary_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f"senet-profile-{dead.pid}-abc123"
    leftover.mkdir()
    (leftover / "models.pt").write_bytes(b"0" * 1000)
    mine = tmp_path / f"senet-profile-{os.getpid()}-keep"
    mine.mkdir()
    with io.temp_folder(tmp_path) as folder:
        assert folder.is_dir()
        assert not leftover.exists() and mine.exists()  # only a dead process's folder goes
    assert not folder.exists()
    mine.rmdir()


# --- 9. messages say what happened and what to do ------------------------------------------------------


@pytest.fixture
def baseline_is(store: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    folder = store / "odd-baselines"
    folder.mkdir()
    target = folder / f"{tracking.current_class()}.json"
    if request.param == "folder":
        target.mkdir()
    elif request.param == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(store / "a-file")
    yield folder
    target.rmdir() if request.param == "folder" else target.unlink()
    folder.rmdir()


@pytest.mark.parametrize(
    ("baseline_is", "needle"),
    [("folder", "directory"), ("fifo", "FIFO"), ("link", "symbolic link")],
    indirect=["baseline_is"],
)
def test_baseline_force_onto_odd_file_refuses_before_saying_replacing(
    baseline_is: Path, at_store: Path, needle: str
) -> None:
    refused("baseline", "update", "--force", "--baselines-dir", baseline_is, needle=needle)


def test_unknown_threshold_metric_is_refused(at_store: Path) -> None:
    refused("regress", "--threshold", "flops:2pp", needle="no metric 'flops'")


def test_explain_memory_refuses_a_second_output(at_store: Path, tmp_path: Path) -> None:
    refused("explain", "resnet18", "se_resnet18", "--memory", "--output", tmp_path / "a.json",
            "--output", tmp_path / "b.json", needle="one --output")  # fmt: skip


API_TYPE_CASES = {
    "processes-text": lambda: Setting(processes="2"),
    "processes-float": lambda: Setting(processes=1.5),
    "processes-huge": lambda: Setting(processes=2**63),
    "threads-huge": lambda: Setting(threads=2**63),
    "budget-inf": lambda: Setting(budget_s=float("inf")),
    "depth-text": lambda: api.by_module("resnet18", depth="2"),
    "attention-text": lambda: api.profile("resnet18", attention="x"),
    "attention-values": lambda: api.by_op("resnet18", attention={"Gate": 3}),
    "batch-huge": lambda: api.profile("resnet18", batch_size=2**63),
    "input-huge": lambda: api.profile("resnet18", input_size=2**63),
    "get-model-cuda": lambda: get_model("resnet18", device="cuda"),
    "get-model-tpu": lambda: get_model("resnet18", device="tpu"),
}


@pytest.mark.parametrize("case", API_TYPE_CASES, ids=list(API_TYPE_CASES))
def test_api_wrong_type_is_refused_before_work(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if case == "get-model-cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr("senet_profile.api.analyze", forbidden)
    with pytest.raises(UserInputError):
        API_TYPE_CASES[case]()
