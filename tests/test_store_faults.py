"""The store under concurrency and kills: baselines promoted while read, two `history` runs at once, SIGKILLs.

Also the gates that must mean it: a timing figure missing from the run fails `regress` (``--allow-missing``
accepts it), ``baseline update --force`` replaces a corrupt baseline, and commands that scan a folder skip
an invalid record with a one-line warning.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from senet_profile.cli import app
from senet_profile.history import records, tracking
from senet_profile.history.records import new_record, parse_record
from senet_profile.io import write_atomic

PAIR = "resnet18 -> se_resnet18"
FORK = multiprocessing.get_context("fork")


def _figures(overhead: float, *, timing: int = 1, padding: int = 0) -> list[dict]:
    figures = [
        {"model": "resnet18", "metric": "params", "setting": "1x3x224x224", "unit": "params",
         "value": 11_689_512, "deterministic": True, "padding": "x" * padding},
    ]  # fmt: skip
    for batch in range(1, timing + 1):
        figures.append(
            {"model": PAIR, "metric": "latency_overhead", "setting": f"cpu infer b{batch} fp32 threads=1",
             "unit": "%", "value": overhead, "deterministic": False, "ci_low": overhead - 1,
             "ci_high": overhead + 1, "samples": 40, "noisy": False, "batch_size": batch, "mode": "infer"}
        )  # fmt: skip
    return figures


def _save(runs: Path, overhead: float, **kwargs: int) -> Path:
    return tracking.save_run(new_record("bench", _figures(overhead, **kwargs)), runs)


def run(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


# --- concurrency --------------------------------------------------------------------------------------------


def _promoter(sources: list[str], baselines: str, rounds: int) -> None:
    chosen = [records.read_record(Path(s)) for s in sources]
    for index in range(rounds):
        tracking.promote(chosen[index % len(chosen)], Path(baselines))


def _reader(target: str, seconds: float, queue: multiprocessing.Queue) -> None:
    reads = empty = invalid = 0
    end = time.monotonic() + seconds
    path = Path(target)
    while time.monotonic() < end:
        content = path.read_bytes()
        reads += 1
        if not content:
            empty += 1
            continue
        try:
            parse_record(content, source=path)
        except ValueError:
            invalid += 1
    queue.put((reads, empty, invalid))


def test_promoting_while_reading_never_shows_an_empty_or_partial_baseline(tmp_path: Path) -> None:
    runs, baselines = tmp_path / "runs", tmp_path / "baselines"
    sources = [str(_save(runs, 5.0 + i, padding=20_000 * (i + 1))) for i in range(3)]  # 20-60 kB each
    target = tracking.promote(records.read_record(Path(sources[0])), baselines)
    queue = FORK.Queue()
    readers = [FORK.Process(target=_reader, args=(str(target), 3.0, queue)) for _ in range(3)]
    writers = [FORK.Process(target=_promoter, args=(sources, str(baselines), 150)) for _ in range(4)]
    for process in readers + writers:
        process.start()
    for process in readers + writers:
        process.join(timeout=120)
        assert process.exitcode == 0, "a writer or reader raised"
    counts = [queue.get(timeout=10) for _ in readers]
    assert sum(reads for reads, _, _ in counts) > 100
    assert [(empty, invalid) for _, empty, invalid in counts] == [(0, 0)] * len(readers)
    assert parse_record(target.read_bytes(), source=target).data["figures"]
    assert _temporaries(baselines) == []


def _history(runs: str, plots: str, cwd: str, queue: multiprocessing.Queue) -> None:
    os.chdir(cwd)
    result = run("history", "--runs-dir", runs, "--plot-dir", plots, "--format", "csv")
    queue.put((result.exit_code, result.stderr))


def test_two_history_runs_on_one_folder_both_succeed(tmp_path: Path) -> None:
    runs, plots = tmp_path / "runs", tmp_path / "plots"
    for overhead in (5.0, 5.5, 6.0):
        _save(runs, overhead)
    queue = FORK.Queue()
    for _ in range(2):  # two rounds of two
        processes = [FORK.Process(target=_history, args=(str(runs), str(plots), str(tmp_path), queue))
                     for _ in range(2)]  # fmt: skip
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        results = [queue.get(timeout=10) for _ in processes]
        assert [code for code, _ in results] == [0, 0], results
    assert sorted(p.name for p in plots.iterdir()) == ["history.png", "history.svg"]


# --- kills --------------------------------------------------------------------------------------------------


def _writer_loop(target: str, started: multiprocessing.Event) -> None:
    path = Path(target)
    texts = [json.dumps(new_record("bench", _figures(float(i), padding=400_000))) for i in range(7)]
    started.set()  # serialised beforehand: the loop spends its time inside write_atomic, where kills land
    index = 0
    while True:
        write_atomic(path, texts[index % 7])
        index += 1


KILLS_AT_MOST = 60  # 29 of 40 kills landed mid-write here (2 of 40 when each write serialised its record)


def test_sigkill_mid_write_leaves_old_or_new_and_the_next_command_cleans_up(tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    target = baselines / f"{tracking.current_class()}.json"
    write_atomic(target, json.dumps(new_record("bench", _figures(1.0))))
    chance = random.Random(13)
    left_behind = 0
    for kill in range(KILLS_AT_MOST):  # at least 12 kills, and on until one has landed mid-write
        if kill >= 12 and left_behind:
            break
        started = FORK.Event()
        writer = FORK.Process(target=_writer_loop, args=(str(target), started))
        writer.start()
        assert started.wait(timeout=30)
        time.sleep(chance.uniform(0.0, 0.4))  # a random point: before, during or after a write
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=30)
        assert writer.exitcode == -signal.SIGKILL
        parse_record(target.read_bytes(), source=target)  # the baseline is whole: the old one or a new one
        left_behind += len(_temporaries(baselines))
    assert left_behind > 0, "no kill landed mid-write; the test did not test anything"
    source = _save(tmp_path / "runs", 3.0)
    result = run("baseline", "update", "--from", source, "--baselines-dir", baselines)
    assert result.exit_code == 0, result.stderr
    assert _temporaries(baselines) == []
    assert parse_record(target.read_bytes(), source=target).data == json.loads(source.read_text())
    assert sorted(p.name for p in baselines.iterdir()) == [target.name]


def test_readers_ignore_a_stale_temporary(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    path = _save(runs, 5.0)
    stale = path.parent / f".{path.name}.999999999.abcdefgh.tmp"
    stale.write_text('{"schema": 1, "fig', encoding="utf-8")
    found, problems = tracking.runs_of_class(runs, tracking.current_class())
    assert [r.path for r in found] == [path] and problems == []


# --- the gate means it ------------------------------------------------------------------------------------


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[str, ...]:
    runs = tmp_path / "runs"
    _save(runs, 5.0, timing=3)
    dirs = ("--runs-dir", runs, "--baselines-dir", tmp_path / "baselines")
    assert run("baseline", "update", *dirs).exit_code == 0
    return dirs


def test_missing_timing_figure_fails_regress(tmp_path: Path, tracked: tuple[str, ...]) -> None:
    _save(tmp_path / "runs", 5.0, timing=1)  # two of the baseline's three timing figures not measured
    result = run("regress", *tracked)
    assert result.exit_code == 1
    assert "2 missing" in result.stdout and "--allow-missing" in result.stdout


def test_allow_missing_accepts_a_shorter_run(tmp_path: Path, tracked: tuple[str, ...]) -> None:
    _save(tmp_path / "runs", 5.0, timing=1)
    result = run("regress", *tracked, "--allow-missing")
    assert result.exit_code == 0, result.stdout
    assert "2 allowed" in result.stdout


def test_skip_unreadable_checks_the_newest_readable_run(tmp_path: Path, tracked: tuple[str, ...]) -> None:
    newest = tmp_path / "runs" / tracking.current_class() / "99999999T000000Z-x-1-y.json"
    newest.write_text('{"schema": 1, "figures": [42]}', encoding="utf-8")
    result = run("regress", *tracked, "--skip-unreadable")
    assert result.exit_code == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped unreadable record")
    assert newest.name in warnings[0]


def test_force_replaces_a_corrupt_baseline(tmp_path: Path, tracked: tuple[str, ...]) -> None:
    baseline = tmp_path / "baselines" / f"{tracking.current_class()}.json"
    baseline.write_text('{"schema": 1, "machine": null}', encoding="utf-8")
    assert run("baseline", "update", *tracked).exit_code == 2
    result = run("baseline", "update", *tracked, "--force")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: replacing unreadable baseline")
    assert parse_record(baseline.read_bytes(), source=baseline).data["figures"]


@pytest.mark.parametrize("command", ["history", "baseline-update"])
def test_scanning_commands_skip_an_invalid_record_with_one_warning(
    tmp_path: Path, tracked: tuple[str, ...], command: str
) -> None:
    folder = tmp_path / "runs" / tracking.current_class()
    (folder / "00000000T000000Z-bad-1-x.json").write_text('{"figures": [{"value": 1}]}', encoding="utf-8")
    args = ["history", "--plot-dir", tmp_path / "plots"] if command == "history" else ["baseline", "update"]
    result = run(*args, *tracked[:2]) if command == "history" else run(*args, *tracked)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "00000000T000000Z-bad-1-x.json" in warnings[0]
