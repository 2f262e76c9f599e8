"""Where run records and baselines live, and how a run's record is built, found and summarised.

Layout under ``results/``:

- ``runs/<machine-class>/<time>-<commit>-<pid>-<id>.json`` (and ``.csv``): one record per bench run,
  append-only (``senet_profile.history.records``);
- ``baselines/<machine-class>.json``: the record that runs of that class are checked against, replaced only
  by ``senet-profile baseline update``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from senet_profile.errors import UserInputError
from senet_profile.history.bench import cases, deterministic_figures, figures_from_benchmark_json
from senet_profile.history.machine import describe_machine
from senet_profile.history.records import (
    RunRecord,
    load_records,
    new_record,
    parse_record,
    read_record,
    record_files,
    save_record,
)
from senet_profile.io import check_folder, read_regular, write_atomic

RUNS_DIR = Path("results/runs")
BASELINES_DIR = Path("results/baselines")
RECORD_KIND = "bench"


def build_run_record(benchmark_json: Path, *, full: bool) -> dict:
    """A run record: every deterministic figure, measured now, and the timing figures the bench left."""
    timing = figures_from_benchmark_json(benchmark_json)
    settings = {"mode": "full" if full else "quick", "benchmark_json": benchmark_json.name}
    return new_record(RECORD_KIND, deterministic_figures(cases(full=full)) + timing, settings=settings)


def figures_frame(record: dict) -> pd.DataFrame:
    """A record's figures as a table, each row stamped with the run's time, commit and machine class."""
    frame = pd.DataFrame(record["figures"])
    stamp = {
        "time": record["time"],
        "commit": record["commit"],
        "machine_class": record["machine"]["machine_class"],
    }
    return frame.assign(**stamp)


def save_run(record: dict, runs_dir: Path = RUNS_DIR) -> Path:
    """Write a record (JSON, and the same figures as CSV beside it) under its machine class's folder."""
    path = save_record(runs_dir / record["machine"]["machine_class"], record)
    write_atomic(path.with_suffix(".csv"), figures_frame(record).to_csv(index=False))
    return path


def current_class() -> str:
    """The machine class of this machine."""
    return describe_machine().machine_class


def runs_of_class(runs_dir: Path, machine_class: str) -> tuple[list[RunRecord], list[str]]:
    """Valid records of one machine class, oldest first, and a line per unreadable file skipped."""
    return load_records(runs_dir / machine_class, kind=RECORD_KIND)


def latest_run(
    runs_dir: Path, machine_class: str, *, skip_unreadable: bool = True
) -> tuple[RunRecord, list[str]]:
    """The newest valid record of a class (problems with other files reported, not fatal).

    With ``skip_unreadable=False`` the newest record file (by name, which starts with its time) being
    unreadable is an error rather than a reason to use an older run.
    """
    records, problems = runs_of_class(runs_dir, machine_class)
    files = record_files(runs_dir / machine_class)
    if files and not skip_unreadable and files[-1] not in {r.path for r in records}:
        problem = next((p for p in problems if p.startswith(str(files[-1]))), f"{files[-1]}: not a run")
        raise UserInputError(
            f"the newest run record is unreadable, so no older run is checked in its place: {problem} "
            "(--skip-unreadable checks the newest readable one)"
        )
    if not records:
        raise UserInputError(f"no readable run record for machine class {machine_class} in {runs_dir}")
    return records[-1], problems


def baseline_file(baselines_dir: Path, machine_class: str) -> Path:
    """Where the baseline of a machine class lives."""
    return baselines_dir / f"{machine_class}.json"


def read_record_file(path: Path, *, role: str) -> RunRecord:
    """A record given by path (a baseline, a run), or a one-line error naming the file and the problem."""
    if not path.exists():
        hint = "; create one with `senet-profile baseline update`" if role == "baseline" else ""
        raise UserInputError(f"no {role} at {path}{hint}")
    try:
        return read_record(path)
    except ValueError as error:
        raise UserInputError(f"corrupt {role}: {error}") from None


def check_destinations(*folders: Path) -> None:
    """Refuse, before any measurement, a folder a command would write into that cannot be written."""
    for folder in folders:
        check_folder(folder)


def promote(record: RunRecord, baselines_dir: Path) -> Path:
    """Make ``record`` the baseline of its machine class: its file's bytes, checked, replaced atomically.

    Readers see the old baseline or the new one, never a part; concurrent promotions each write their own
    temporary file, and the last rename wins.
    """
    target = baseline_file(baselines_dir, record.machine_class)
    content = read_regular(record.path)
    try:
        parse_record(content, source=record.path)
    except ValueError as error:
        raise UserInputError(f"corrupt run record: {error}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, content)
    return target


def overhead_history(records: list[RunRecord], pair: str | None) -> pd.DataFrame:
    """The latency overhead of each timed pair (or one), run by run: time, commit, overhead and its CI."""
    rows = []
    for record in records:
        for figure in record.data["figures"]:
            if figure["metric"] != "latency_overhead" or (pair and pair not in figure["model"]):
                continue
            rows.append(
                {
                    "time": record.data["time"],
                    "commit": record.data["commit"],
                    "machine_class": record.machine_class,
                    "pair": figure["model"],
                    "setting": figure["setting"],
                    "overhead_pct": figure["value"],
                    "ci_low": figure.get("ci_low"),
                    "ci_high": figure.get("ci_high"),
                    "samples": figure.get("samples"),
                    "noisy": figure.get("noisy"),
                }
            )
    return pd.DataFrame(rows, columns=["time", "commit", "machine_class", "pair", "setting", "overhead_pct",
                                       "ci_low", "ci_high", "samples", "noisy"])  # fmt: skip
