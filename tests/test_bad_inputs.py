"""Bad inputs and store faults, one test per case: each is refused with one line and nothing is lost.

Every CLI case runs in a temporary copy of a results tree (the repository's ``results/``, plus a small run
record and baseline of this machine's class), with the working folder there so that the default paths
(``results/runs``, ``results/baselines``, ``results/plots``, ``results/paper``) point into the copy, never
at the repository's. Each case asserts exit status 2, exactly one line on stderr and it starts with
``error:``, no traceback, and the whole tree byte-identical afterwards (hashed before and after; no file
added, none changed, none removed).

Faults that a root user cannot provoke through permissions (the tests run as root here, where a read-only
folder is still writable) are made real where the kernel refuses even root (``/sys``: EPERM/EACCES,
``/proc``: ENOENT, ``/dev/null``: a character device) and simulated by monkeypatching otherwise (ENOSPC,
EROFS, EACCES raised by the write path; out-of-memory raised by the allocator; a memory limit).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from typer.testing import CliRunner, Result

import senet_profile
from senet_profile.analysis import resources
from senet_profile.cli import app
from senet_profile.history import records, tracking
from senet_profile.history.records import new_record
from senet_profile.report import paper
from senet_profile.setting import Setting

REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"
PAIR = "resnet18 -> se_resnet18"


def _figures(overhead: float = 5.0) -> list[dict]:
    static = [
        {"model": m, "metric": "params", "setting": "1x3x224x224", "unit": "params", "value": v,
         "deterministic": True}
        for m, v in (("resnet18", 11_689_512), ("se_resnet18", 11_778_592))
    ]  # fmt: skip
    timing = {
        "model": PAIR, "metric": "latency_overhead", "setting": "cpu infer b1 fp32 threads=1", "unit": "%",
        "value": overhead, "deterministic": False, "ci_low": overhead - 1, "ci_high": overhead + 1,
        "samples": 40, "noisy": False, "batch_size": 1, "mode": "infer",
    }  # fmt: skip
    return [*static, timing]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file() and not path.is_symlink()
        else f"<{'link' if path.is_symlink() else 'dir' if path.is_dir() else 'special'}>"
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's results tree, with a run record and a baseline of this machine's class."""
    root = tmp_path_factory.mktemp("store")
    shutil.copytree(REPO_RESULTS, root / "results")
    runs = root / "results" / "runs" / tracking.current_class()
    path = records.save_record(runs, new_record("bench", _figures()))
    baseline = root / "results" / "baselines" / f"{tracking.current_class()}.json"
    if not baseline.exists():
        shutil.copyfile(path, baseline)
    (root / "a-file").write_text("not a folder\n", encoding="utf-8")
    (root / "a-folder").mkdir()
    (root / "link.json").symlink_to(root / "a-file")
    os.mkfifo(root / "fifo.json")
    good_bench = [{"name": "b1", "extra_info": {"figure": _figures()[-1]}}]
    (root / "benchmark.json").write_text(json.dumps({"benchmarks": good_bench}), encoding="utf-8")
    return root


@pytest.fixture
def at_store(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work inside the store; after the test, the store must be byte-identical to before."""
    monkeypatch.chdir(store)
    before = _tree_hashes(store)
    yield store
    assert _tree_hashes(store) == before, "a refused command changed the results tree"


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(*args: object, needle: str = "") -> str:
    """Run the CLI and check the refusal: exit 2, one stderr line `error: ...`, no traceback."""
    result = _invoke(*args)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _newest_run_name() -> str:
    return "99999999T999999.999999Z-ffffffffffff-1-deadbeef.json"


# --- options refused on every path (device, dtype, compile, input size, the rest) --------------------------

OPTION_CASES = {
    "cuda-static": (["profile", "resnet18", "--device", "cuda"], "no CUDA device"),
    "cuda-memory": (["profile", "resnet18", "--device", "cuda", "--metrics", "memory"], "no CUDA device"),
    "cuda-latency": (["profile", "resnet18", "--device", "cuda", "--metrics", "latency"], "no CUDA device"),
    "cuda-fp16-compile": (
        ["profile", "resnet18", "--device", "cuda", "--dtype", "fp16", "--compile"],
        "no CUDA device",
    ),
    "cuda-compare": (["compare", "resnet18", "se_resnet18", "--device", "cuda"], "no CUDA device"),
    "cuda-explain": (["explain-memory", "resnet18", "se_resnet18", "--device", "cuda"], "no CUDA device"),
    "fp16-cpu-memory": (["profile", "resnet18", "--dtype", "fp16", "--metrics", "memory"], "CUDA only"),
    "fp16-cpu-latency": (
        ["compare", "resnet18", "se_resnet18", "--dtype", "fp16", "--metrics", "latency"],
        "CUDA only",
    ),
    "fp16-meta-static": (["profile", "resnet18", "--dtype", "fp16", "--device", "meta"], "CUDA only"),
    "compile-static": (["profile", "resnet18", "--compile"], "latency only"),
    "compile-memory": (["profile", "resnet18", "--compile", "--metrics", "memory"], "latency only"),
    "latency-on-meta": (["profile", "resnet18", "--device", "meta", "--metrics", "latency"], "meta"),
    "unknown-device": (["profile", "resnet18", "--device", "tpu"], "unknown device"),
    "unknown-dtype": (["profile", "resnet18", "--dtype", "int8"], "unknown dtype"),
    "unknown-mode": (["profile", "resnet18", "--mode", "eval"], "unknown mode"),
    "unknown-metric": (["profile", "resnet18", "--metrics", "flops"], "unknown metrics"),
    "empty-metrics": (["profile", "resnet18", "--metrics", ","], "unknown metrics"),
    "unknown-allocator": (["profile", "resnet18", "--allocator", "jemalloc"], "unknown allocator"),
    "zero-threads": (["profile", "resnet18", "--threads", "0"], "threads"),
    "zero-budget": (["profile", "resnet18", "--metrics", "latency", "--budget", "0"], "budget"),
    "zero-processes": (["compare", "resnet18", "se_resnet18", "--processes", "0"], "processes"),
    "unknown-format": (["profile", "resnet18", "--format", "xml"], "unknown format"),
    "input-7-profile": (["profile", "resnet18", "--input-size", "7"], "too small"),
    "input-7-compare": (["compare", "resnet18", "se_resnet18", "--input-size", "7"], "too small"),
    "input-7-explain": (["explain-memory", "resnet18", "se_resnet18", "--input-size", "7"], "too small"),
    "input-0": (["profile", "resnet18", "--input-size", "0"], "input size"),
    "input-text": (["profile", "resnet18", "--input-size", "big"], "input size"),
    "input-3d": (["profile", "resnet18", "--input-size", "64x64x3"], "input size"),
    "input-0-explain": (["explain-memory", "resnet18", "se_resnet18", "--input-size", "0x64"], "input size"),
    "batch-0": (["profile", "resnet18", "--batch-size", "0"], "batch size"),
    "batch-negative-explain": (["explain-memory", "resnet18", "se_resnet18", "--batch-size", "-1"], "batch"),
    "batch-not-a-number": (["profile", "resnet18", "--batch-size", "many"], "batch-size"),
    "unknown-model": (["profile", "resnet5"], "unknown model"),
    "unknown-candidate": (["compare", "resnet18", "se_resnet5"], "unknown model"),
    "unknown-knob": (["profile", "se_resnet18:depth=3"], "depth"),
    "bad-ratio": (["profile", "se_resnet18:r=0"], "positive integer"),
    "ratio-too-large": (["profile", "se_resnet18:r=100000"], "larger than"),
    "bad-stage": (["profile", "se_resnet18:stages=9"], "stage"),
    "unknown-option": (["profile", "resnet18", "--colour"], "--colour"),
    "missing-argument": (["compare", "resnet18"], "candidate"),
    "unknown-command": (["profiles", "resnet18"], "profiles"),
    "list-no-match": (["list", "nothing*"], "no model matches"),
}


@pytest.mark.parametrize("case", OPTION_CASES, ids=list(OPTION_CASES))
def test_option_is_refused(at_store: Path, case: str) -> None:
    args, needle = OPTION_CASES[case]
    if needle == "no CUDA device" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    refused(*args, needle=needle)


# --- destinations: only regular files, checked before any work ---------------------------------------------

DESTINATION_CASES = {
    "output-char-device": (["profile", "resnet18", "--output", "/dev/null"], "character device"),
    "output-symlink": (["profile", "resnet18", "--output", "link.json"], "symbolic link"),
    "output-fifo": (["profile", "resnet18", "--output", "fifo.json"], "FIFO"),
    "output-directory": (["profile", "resnet18", "--output", "a-folder"], "directory"),
    "output-missing-folder": (["profile", "resnet18", "--output", "nowhere/out.json"], "does not exist"),
    "output-under-a-file": (["profile", "resnet18", "--output", "a-file/out.json"], "not a folder"),
    "output-in-proc": (["profile", "resnet18", "--output", "/proc/out.json"], "cannot write"),
    "compare-output-device": (["compare", "resnet18", "se_resnet18", "--output", "/dev/null"], "device"),
    "explain-output-symlink": (
        ["explain-memory", "resnet18", "se_resnet18", "--output", "link.json"],
        "symbolic link",
    ),
    "explain-output-fifo": (["explain-memory", "resnet18", "se_resnet18", "--output", "fifo.json"], "FIFO"),
    "paper-dir-is-file": (["paper", "--output-dir", "a-file"], "not a folder"),
    "paper-dir-in-sys": (["paper", "--output-dir", "/sys/senet-profile-paper"], "cannot write"),
    "paper-dir-under-file": (["paper", "--output-dir", "a-file/paper"], "not a folder"),
    "history-plot-dir-is-file": (["history", "--plot-dir", "a-file"], "not a folder"),
    "history-plot-dir-in-sys": (["history", "--plot-dir", "/sys/senet-profile-plots"], "cannot write"),
    "plot-dir-is-file": (["plot", "--output-dir", "a-file"], "not a folder"),
    "plot-dir-in-sys": (["plot", "--output-dir", "/sys/senet-profile-plots"], "cannot write"),
    "record-runs-dir-is-file": (
        ["record", "--benchmark-json", "benchmark.json", "--runs-dir", "a-file"],
        "not a folder",
    ),
    "record-runs-dir-in-sys": (
        ["record", "--benchmark-json", "benchmark.json", "--runs-dir", "/sys/runs"],
        "cannot write",
    ),
    "baseline-dir-is-file": (["baseline", "update", "--baselines-dir", "a-file"], "not a folder"),
    "baseline-dir-in-sys": (["baseline", "update", "--baselines-dir", "/sys/baselines"], "cannot write"),
}


@pytest.mark.parametrize("case", DESTINATION_CASES, ids=list(DESTINATION_CASES))
def test_destination_is_refused(at_store: Path, case: str) -> None:
    args, needle = DESTINATION_CASES[case]
    refused(*args, needle=needle)


def test_output_device_is_left_a_device(at_store: Path) -> None:
    refused("profile", "resnet18", "--output", "/dev/null", needle="not a regular file")
    assert Path("/dev/null").is_char_device()


# --- checks before the work: nothing drawn, measured or written before a refusal ---------------------------


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every slow step fail loudly: a refusal must come before any of them."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr(paper, "paper_report", forbidden)
    monkeypatch.setattr(tracking, "deterministic_figures", forbidden)
    monkeypatch.setattr("senet_profile.report.plots.stage_overhead_figure", forbidden)
    monkeypatch.setattr("senet_profile.report.plots.history_figure", forbidden)


def test_paper_checks_its_folder_before_computing(at_store: Path, no_work: None) -> None:
    refused("paper", "--output-dir", "a-file/paper", needle="not a folder")


def test_paper_unknown_format_before_computing(at_store: Path, no_work: None) -> None:
    refused("paper", "--format", "xml", needle="unknown format")


def test_record_checks_runs_dir_before_measuring(at_store: Path, no_work: None) -> None:
    refused(
        "record", "--benchmark-json", "benchmark.json", "--runs-dir", "a-file/runs", needle="not a folder"
    )


def test_history_unknown_format_writes_no_plot(at_store: Path, no_work: None) -> None:
    refused("history", "--format", "xml", needle="unknown format")


def test_plot_unknown_pair_writes_no_plot(at_store: Path, no_work: None) -> None:
    refused("plot", "--pair", "foo -> bar", needle="unknown model 'foo'")


def test_plot_malformed_pair_writes_no_plot(at_store: Path, no_work: None) -> None:
    refused("plot", "--pair", "resnet18 se_resnet18", needle="BASE -> CANDIDATE")


def test_plot_pair_without_latency_figures_writes_nothing(at_store: Path) -> None:
    refused("plot", "--base", "resnet18", "--candidate", "se_resnet18", "--pair", "resnet50 -> se_resnet101",
            needle="no inference latency figures")  # fmt: skip


# --- the benchmark file `record` reads --------------------------------------------------------------------

BENCHMARK_CASES = {
    "empty-list": ({"benchmarks": []}, "no figures"),
    "no-figure": ({"benchmarks": [{"name": "b", "extra_info": {}}]}, "no figures"),
    "figure-wrong-shape": ({"benchmarks": [{"name": "b", "extra_info": {"figure": {"foo": 1}}}]}, "model"),
    "figure-not-object": ({"benchmarks": [{"name": "b", "extra_info": {"figure": 42}}]}, "malformed figure"),
    "timing-without-interval": (
        {
            "benchmarks": [
                {
                    "name": "b",
                    "extra_info": {"figure": {**{k: v for k, v in _figures()[-1].items() if k != "ci_high"}}},
                }
            ]
        },
        "interval",
    ),
    "value-not-a-number": (
        {"benchmarks": [{"name": "b", "extra_info": {"figure": {**_figures()[-1], "value": "fast"}}}]},
        "value",
    ),
    "benchmarks-not-a-list": ({"benchmarks": {"b": 1}}, "benchmarks"),
    "no-benchmarks-key": ({"machine_info": {}}, "benchmarks"),
    "top-level-list": ([1, 2], "pytest-benchmark"),
}


@pytest.mark.parametrize("case", BENCHMARK_CASES, ids=list(BENCHMARK_CASES))
def test_malformed_benchmark_json_is_refused(
    at_store: Path, no_work: None, tmp_path: Path, case: str
) -> None:
    content, needle = BENCHMARK_CASES[case]
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    refused("record", "--benchmark-json", source, needle=needle)


def test_truncated_benchmark_json_is_refused(at_store: Path, no_work: None, tmp_path: Path) -> None:
    source = tmp_path / "bench.json"
    source.write_text('{"benchmarks": [', encoding="utf-8")
    refused("record", "--benchmark-json", source, needle="not a readable")


def test_missing_benchmark_json_is_refused(at_store: Path, no_work: None) -> None:
    refused("record", "--benchmark-json", "no-such.json", needle="cannot read")


def test_benchmark_json_fifo_is_refused(at_store: Path, no_work: None) -> None:
    refused("record", "--benchmark-json", "fifo.json", needle="not a regular file")


# --- records of the right JSON but the wrong shape --------------------------------------------------------


def _valid_record() -> dict:
    return json.loads(json.dumps(new_record("bench", _figures())))


def _broken(change: Callable[[dict], object]) -> str:
    data = _valid_record()
    change(data)
    return json.dumps(data)


RECORD_CASES = {
    "figures-of-numbers": (_broken(lambda d: d.update(figures=[42])), "figures.0"),
    "machine-null": (_broken(lambda d: d.update(machine=None)), "machine"),
    "figure-without-model": (_broken(lambda d: d["figures"][0].pop("model")), "model"),
    "figure-value-text": (_broken(lambda d: d["figures"][0].update(value="many")), "value"),
    "figure-value-bool": (_broken(lambda d: d["figures"][0].update(value=True)), "value"),
    "timing-without-ci": (_broken(lambda d: d["figures"][-1].pop("ci_high")), "interval"),
    "interval-reversed": (_broken(lambda d: d["figures"][-1].update(ci_low=9.0, ci_high=1.0)), "interval"),
    "duplicate-figure": (_broken(lambda d: d["figures"].append(d["figures"][0])), "twice"),
    "schema-2": (_broken(lambda d: d.update(schema=2)), "schema"),
    "time-without-zone": (_broken(lambda d: d.update(time="2026-01-01T00:00:00")), "time zone"),
    "time-a-number": (_broken(lambda d: d.update(time=5)), "time"),
    "machine-class-missing": (_broken(lambda d: d["machine"].pop("machine_class")), "machine_class"),
    "versions-missing-torch": (_broken(lambda d: d["machine"]["versions"].pop("torch")), "versions"),
    "top-level-list": ("[1, 2]", "not an object"),
    "truncated": ('{"schema": 1, "kind": "ben', "not a readable JSON"),
    "empty-file": ("", "not a readable JSON"),
    "not-utf8": (b"\xff\xfe\x00garbage", "not a readable JSON"),
}


def _bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


@pytest.mark.parametrize("case", RECORD_CASES, ids=list(RECORD_CASES))
def test_malformed_record_as_current_is_refused(at_store: Path, tmp_path: Path, case: str) -> None:
    content, needle = RECORD_CASES[case]
    current = tmp_path / "current.json"
    current.write_bytes(_bytes(content))
    line = refused("regress", "--current", current, needle="corrupt run record")
    assert needle.lower() in line.lower()


def test_malformed_baseline_is_refused(at_store: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(RECORD_CASES["machine-null"][0], encoding="utf-8")
    refused("regress", "--baseline", baseline, needle="corrupt baseline")


def test_malformed_source_of_baseline_update_is_refused(at_store: Path, tmp_path: Path) -> None:
    source = tmp_path / "run.json"
    source.write_text(RECORD_CASES["figures-of-numbers"][0], encoding="utf-8")
    refused("baseline", "update", "--from", source, needle="corrupt run record")


def test_missing_current_record_is_refused(at_store: Path) -> None:
    refused("regress", "--current", "no-such.json", needle="no run record")


def test_fifo_as_current_record_is_refused(at_store: Path) -> None:
    refused("regress", "--current", "fifo.json", needle="not a regular file")


def test_bad_threshold_is_refused(at_store: Path) -> None:
    refused("regress", "--threshold", "latency_overhead:two", needle="bad threshold")


def test_relative_timing_threshold_is_refused(at_store: Path) -> None:
    refused("regress", "--threshold", "latency_overhead:2%", needle="percentage points")


# --- the newest record unreadable: regress never judges an older run silently -----------------------------


@pytest.fixture
def newest_unreadable(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A truncated record, named as the newest run of this machine class (removed afterwards)."""
    path = store / "results" / "runs" / tracking.current_class() / _newest_run_name()
    path.write_text('{"schema": 1, "kind": "bench", "figures": [', encoding="utf-8")
    yield path
    path.unlink()


def test_regress_refuses_when_the_newest_record_is_unreadable(
    newest_unreadable: Path, at_store: Path
) -> None:
    refused("regress", needle="newest run record is unreadable")


def test_baseline_update_refuses_a_corrupt_baseline_without_force(at_store: Path, tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / f"{tracking.current_class()}.json").write_text("{", encoding="utf-8")
    refused("baseline", "update", "--baselines-dir", baselines, needle="--force")
    assert (baselines / f"{tracking.current_class()}.json").read_text(encoding="utf-8") == "{"


# --- OS errors: one line, the old file kept, no temporary left ---------------------------------------------


def _raise(code: int) -> Callable[..., object]:
    def fail(*args: object, **kwargs: object) -> object:
        raise OSError(code, os.strerror(code), str(args[0]) if args else None)

    return fail


def test_disk_full_while_writing_output(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _raise(errno.ENOSPC))
    refused("profile", "resnet18", "--output", "results/profile.json", needle="no space left")


def test_disk_full_keeps_the_old_file(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _raise(errno.ENOSPC))
    refused("profile", "resnet18", "--output", "results/paper/figures.csv", needle="disk is full")


def test_read_only_file_system_on_probe(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.mkstemp", _raise(errno.EROFS))
    refused("profile", "resnet18", "--output", "results/out.json", needle="read-only file system")


def test_read_only_file_system_for_a_created_folder(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.mkdtemp", _raise(errno.EROFS))
    refused("paper", "--output-dir", "results/new-paper", needle="read-only file system")


def test_permission_denied_on_rename(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", _raise(errno.EACCES))
    refused("profile", "resnet18", "--output", "results/paper/figures.csv", needle="permission denied")


def test_disk_full_while_recording(at_store: Path, monkeypatch: pytest.MonkeyPatch, small_figures) -> None:
    monkeypatch.setattr(os, "fsync", _raise(errno.ENOSPC))
    refused("record", "--benchmark-json", "benchmark.json", needle="no space left")


def test_disk_full_while_promoting(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _raise(errno.ENOSPC))
    refused("baseline", "update", needle="no space left")


@pytest.fixture
def small_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic figures of the run without measuring the catalog."""
    monkeypatch.setattr(tracking, "deterministic_figures", lambda selected: _figures()[:2])


# --- memory exhaustion: planned before allocating, or reported in one line --------------------------------


def test_batch_too_large_for_memory(at_store: Path) -> None:
    args = ("profile", "resnet18", "--metrics", "memory", "--device", "cpu", "--batch-size", "100000")
    line = refused(*args, needle="bytes")
    assert "--device meta" in line and "out of memory" in line


def test_batch_over_a_memory_limit(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_bytes", lambda: 100_000_000)  # a 100 MB cgroup, say
    line = refused("compare", "resnet18", "se_resnet18", "--metrics", "memory", "--device", "cpu",
                   "--batch-size", "1000", needle="out of memory")  # fmt: skip
    assert "100,000,000 bytes are free" in line and "--device meta" in line


def test_explain_memory_over_a_memory_limit(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_bytes", lambda: 1_000_000)
    refused("explain-memory", "resnet18", "se_resnet18", "--device", "cpu", needle="--device meta")


def test_allocator_failure_is_one_line(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def allocator(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
            "to allocate 123456789012 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr("senet_profile.measure.core.memory_result", allocator)
    line = refused("profile", "resnet18", "--metrics", "memory", needle="123,456,789,012 bytes")
    assert "--device meta" in line


def test_python_memory_error_is_one_line(at_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr("senet_profile.measure.core.memory_result", exhausted)
    refused("profile", "resnet18", "--metrics", "memory", needle="out of memory")


# --- the Python API: UserInputError before any work -------------------------------------------------------


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + y


def _meta_resnet() -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.resnet18()


API_CASES: dict[str, Callable[[], object]] = {
    "profile-int": lambda: senet_profile.profile(42),
    "compare-none": lambda: senet_profile.compare("resnet18", None),
    "add_se-int": lambda: senet_profile.add_se(42),
    "add_se-config-text": lambda: senet_profile.add_se(_meta_resnet(), config="r=8"),
    "add_se-placement-int": lambda: senet_profile.add_se(_meta_resnet(), placement=3),
    "remove_se-text": lambda: senet_profile.remove_se("se_resnet18"),
    "seconfig-r-float": lambda: senet_profile.SEConfig(r=1.5),
    "seconfig-width-text": lambda: senet_profile.SEConfig(width="8"),
    "seconfig-bias-text": lambda: senet_profile.SEConfig(bias="no"),
    "two-input-forward": lambda: senet_profile.profile(_TwoInputs()),
    "meta-model-memory": lambda: senet_profile.profile(_meta_resnet(), metrics=("memory",)),
    "meta-model-latency": lambda: senet_profile.compare(_meta_resnet(), _meta_resnet(), metrics=("latency",)),
    "unknown-metric": lambda: senet_profile.profile("resnet18", metrics=("flops",)),
    "metrics-int": lambda: senet_profile.profile("resnet18", metrics=3),
    "input-size-one-tuple": lambda: senet_profile.profile("resnet18", input_size=(224,)),
    "input-size-float": lambda: senet_profile.profile("resnet18", input_size=224.0),
    "batch-size-float": lambda: senet_profile.profile("resnet18", batch_size=1.5),
    "batch-size-bool": lambda: senet_profile.profile("resnet18", batch_size=True),
    "by-stage-text": lambda: senet_profile.profile("resnet18", by_stage="yes"),
    "setting-text": lambda: senet_profile.profile("resnet18", setting="cpu"),
    "runtime-cuda": lambda: senet_profile.profile("resnet18", setting=Setting(device="cuda")),
    "runtime-fp16-cpu": lambda: senet_profile.profile(
        "resnet18", metrics=("memory",), setting=Setting(dtype="fp16")
    ),
    "runtime-threads-text": lambda: Setting(threads="2"),
    "get_model-int": lambda: senet_profile.get_model(42),
    "parse_model_spec-int": lambda: senet_profile.parse_model_spec(42),
    "list_models-int": lambda: senet_profile.list_models(42),
}


@pytest.mark.parametrize("case", API_CASES, ids=list(API_CASES))
def test_api_refuses_before_work(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available() and case == "runtime-cuda":
        pytest.skip("a CUDA device is present")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr("senet_profile.api.analyze", forbidden)
    with pytest.raises(senet_profile.UserInputError):
        API_CASES[case]()


def test_api_accepts_an_integer_input_size() -> None:
    frame = senet_profile.profile("resnet18", input_size=64)
    assert frame.attrs["input_shape"] == [1, 3, 64, 64]
