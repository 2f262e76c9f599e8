"""Where run records and baselines live, and how a run's record is built, found and summarised.

Layout under ``results/``:

- ``runs/<machine-class>/<time>-<commit>-<pid>-<id>.json`` (and ``.csv``): one record per bench run,
  append-only (``senet_profile.history.records``);
- ``baselines/<machine-class>.json``: the record that runs of that class are checked against, replaced only
  by ``senet-profile baseline update``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from senet_profile.analysis.intervals import MIN_CI_SAMPLES
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


def classes_in(*folders: Path | None) -> list[str]:
    """The machine classes with a folder of records under any of ``folders`` (runs/, or sweeps/*/)."""
    found = set()
    for folder in folders:
        if folder is not None and folder.is_dir():
            found |= {p.name for p in folder.iterdir() if p.is_dir() and record_files(p)}
    return sorted(found)


def baseline_classes(baselines_dir: Path) -> list[str]:
    """The machine classes that have a baseline file in ``baselines_dir``."""
    if not baselines_dir.is_dir():
        return []
    return sorted(p.stem for p in baselines_dir.glob("*.json") if not p.name.startswith("."))


@dataclass(frozen=True)
class ClassChoice:
    """Which machine classes a reading command shows, and the one line that says so."""

    classes: list[str]
    note: str


def choose_classes(
    present: list[str],
    *,
    here: str,
    wanted: str | None = None,
    all_machines: bool = False,
    what: str = "runs",
) -> ClassChoice:
    """The classes to read: ``wanted``, all with ``all_machines``, else this machine's, else all present.

    A machine with no records of its own reads the classes that have some (a fresh clone on a new CPU shows
    the shipped results) and says so; naming a class with none is refused, listing those there are.
    """
    listed = ", ".join(present) or "none"
    if wanted is not None:
        if wanted not in present:
            raise UserInputError(f"no {what} of machine class {wanted!r}; classes with {what}: {listed}")
        return ClassChoice(
            [wanted], f"machine class {wanted}" + (" (this machine)" if wanted == here else "")
        )
    if all_machines:
        return ClassChoice(present, f"machine classes {listed} (--all-machines; this machine is {here})")
    if here in present:
        return ClassChoice([here], f"machine class {here} (this machine)")
    return ClassChoice(
        present,
        f"machine class {listed}: this machine ({here}) has no {what} of its own (--machine-class picks one)",
    )


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
        raise UserInputError(no_runs_message(runs_dir, machine_class))
    return records[-1], problems


def no_runs_message(runs_dir: Path, machine_class: str) -> str:
    """Why there is no run to read for ``machine_class``: what exists instead and how to record one."""
    others = {c: len(record_files(runs_dir / c)) for c in classes_in(runs_dir) if c != machine_class}
    exists = (
        "runs exist for " + ", ".join(f"{c} ({n} records)" for c, n in others.items())
        + f" (--machine-class {next(iter(others))} reads one)"
        if others
        else "no class has any"
    )  # fmt: skip
    return (
        f"no readable run record for machine class {machine_class} in {runs_dir}: {exists}; record one "
        "with `senet-profile bench` (or `senet-profile record --benchmark-json F` after "
        "`pytest bench --benchmark-json F`)"
    )


def baseline_file(baselines_dir: Path, machine_class: str) -> Path:
    """Where the baseline of a machine class lives."""
    return baselines_dir / f"{machine_class}.json"


def any_baseline(baselines_dir: Path, machine_class: str) -> tuple[RunRecord | None, list[str]]:
    """The newest readable baseline of another class (for the figures that need no machine), or None.

    Returns it with one problem line per baseline file that could not be read.
    """
    found, problems = [], []
    for other in baseline_classes(baselines_dir):
        if other == machine_class:
            continue
        try:
            found.append(read_record(baseline_file(baselines_dir, other)))
        except ValueError as error:
            problems.append(str(error))
    found.sort(key=lambda r: (r.data["time"], r.path.name))
    return (found[-1] if found else None), problems


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


def _enough(figure: dict) -> bool:
    samples = figure.get("samples")
    return samples is None or samples >= MIN_CI_SAMPLES


def overhead_history(records: list[RunRecord], pair: str | None) -> pd.DataFrame:
    """The latency overhead of each timed pair (or one), run by run: time, commit, overhead and its CI.

    A run of fewer than MIN_CI_SAMPLES samples has no interval (``ci_low``/``ci_high`` empty).
    """
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
                    # No interval below MIN_CI_SAMPLES samples, as the plots and `regress` hold it.
                    "ci_low": figure.get("ci_low") if _enough(figure) else None,
                    "ci_high": figure.get("ci_high") if _enough(figure) else None,
                    "samples": figure.get("samples"),
                    "noisy": figure.get("noisy"),
                }
            )
    return pd.DataFrame(rows, columns=["time", "commit", "machine_class", "pair", "setting", "overhead_pct",
                                       "ci_low", "ci_high", "samples", "noisy"])  # fmt: skip


def known_prediction_error(runs_dir: Path, machine_class: str) -> str:
    """The machine model's recorded error on a machine class: the range of ``prediction_error_pp`` over
    the newest run record that has any (the bench times pairs and records what the model predicted)."""
    if not (runs_dir / machine_class).is_dir():
        return f"not yet known on {machine_class} (no bench run here: `senet-profile bench` records it)"
    records, _ = runs_of_class(runs_dir, machine_class)
    for record in reversed(records):
        errors = [
            f["prediction_error_pp"]
            for f in record.data["figures"]
            if isinstance(f.get("prediction_error_pp"), int | float)
            and not isinstance(f.get("prediction_error_pp"), bool)
        ]
        if errors:
            when = str(record.data["time"])[:10]
            return (
                f"{min(errors):+.2f} to {max(errors):+.2f} pp against paired measurements on {machine_class} "
                f"({len(errors)} pairs, bench run of {when})"
            )
    return f"not yet known on {machine_class} (no bench run with predictions: `senet-profile bench`)"
