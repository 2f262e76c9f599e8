"""Commands that keep the history: record, regress, baseline update/show, history.

Every one of them takes ``--results DIR`` (or ``$SENET_PROFILE_RESULTS``; default ``./results``);
the history modules (pandas, torch) are imported inside the commands.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.common import (
    PrintFormat,
    Wide,
    choose_format,
    emit,
    working,
)
from senet_profile.errors import UserInputError
from senet_profile.history.locations import RESULTS_ENV, existing_results, results_root
from senet_profile.io import check_writable

if TYPE_CHECKING:  # pragma: no cover
    from senet_profile.history import regress

ResultsDir = Annotated[
    Path | None,
    typer.Option(
        "--results",
        envvar=RESULTS_ENV,
        help="Results folder (runs/, baselines/, plots/, paper/); default ./results.",
        show_envvar=True,
    ),
]
RunsDir = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir", help="Folder of run records (default: RESULTS/runs), one subfolder per class."
    ),
]
MachineClass = Annotated[
    str | None,
    typer.Option(
        "--machine-class",
        help="Read this machine class's records (default: this machine's, else the classes present).",
    ),
]
AllMachines = Annotated[
    bool, typer.Option("--all-machines", help="Every machine class present, not only this one's.")
]
BaselinesDir = Annotated[
    Path | None, typer.Option("--baselines-dir", help="Folder of baselines (default: RESULTS/baselines).")
]
baseline_app = typer.Typer(
    help="Show or update the baseline that bench runs are checked against.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(baseline_app, name="baseline")


def _report_problems(problems: list[str]) -> None:
    for problem in problems:
        typer.echo(f"warning: skipped unreadable record {' '.join(problem.split())}", err=True)


def _print_findings(findings: list[regress.Finding], *, show_ok: bool) -> None:
    unjudged: dict[str, list[regress.Finding]] = {}
    for finding in findings:
        if finding.verdict == "unjudged":  # one line per reason, not one per figure
            unjudged.setdefault(finding.message, []).append(finding)
        elif finding.verdict != "ok" or show_ok:
            where = f"{finding.model} {finding.metric} ({finding.setting})"
            typer.echo(f"{finding.verdict.upper():<10} {where}: {finding.message}")
    for reason, group in unjudged.items():
        metrics = Counter(f.metric for f in group)
        listed = ", ".join(f"{metric} x{n}" for metric, n in metrics.items())
        typer.echo(f"{'UNJUDGED':<10} {len(group)} figures ({listed}): {reason}")
    counts = Counter(f.verdict for f in findings)
    typer.echo("summary: " + (", ".join(f"{n} {verdict}" for verdict, n in counts.items()) or "no figures"))


@app.command("record")
def record_command(
    benchmark_json: Annotated[
        Path,
        typer.Option(
            "--benchmark-json",
            help="pytest-benchmark JSON of a bench run (`pytest bench --benchmark-json F`; "
            "`senet-profile bench` records its own).",
        ),
    ],
    full: Annotated[bool, typer.Option("--full", help="The bench ran in full mode.")] = False,
    results: ResultsDir = None,
    runs_dir: RunsDir = None,
) -> None:
    """Write one run record: every deterministic figure, measured now, plus the bench's timing figures."""
    record_run(benchmark_json, full=full, runs_dir=runs_dir or results_root(results).runs)


def record_run(benchmark_json: Path, *, full: bool, runs_dir: Path) -> Path:
    """Measure every deterministic figure, add the bench's timing figures, save one run record; its path."""
    from senet_profile.history import tracking

    tracking.figures_from_benchmark_json(benchmark_json)  # refused before a minute of measuring
    tracking.check_destinations(runs_dir / tracking.current_class())
    with working("measuring every deterministic figure"):
        record = tracking.build_run_record(benchmark_json, full=full)
    path = tracking.save_run(record, runs_dir)
    typer.echo(f"recorded {len(record['figures'])} figures in {path}")
    return path


@app.command("regress")
def regress_command(
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Baseline record (default: this class's).")
    ] = None,
    current: Annotated[
        Path | None, typer.Option("--current", help="Record to check (default: latest run).")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="METRIC:AMOUNT[pp|%], e.g. latency_overhead:2pp (repeatable)."),
    ] = None,
    results: ResultsDir = None,
    runs_dir: RunsDir = None,
    baselines_dir: BaselinesDir = None,
    show_ok: Annotated[bool, typer.Option("--show-ok", help="List unchanged figures too.")] = False,
    allow_missing: Annotated[
        bool,
        typer.Option("--allow-missing", help="Pass although the run lacks timing figures the baseline has."),
    ] = False,
    skip_unreadable: Annotated[
        bool,
        typer.Option(
            "--skip-unreadable", help="Check the newest readable run when the newest is unreadable."
        ),
    ] = False,
    machine_class: MachineClass = None,
) -> None:
    """Check a run record against a baseline; exit 1 on a regression or a missing timing figure.

    A class with no baseline of its own is checked against another class's baseline for the figures that
    do not depend on the machine (counts, bytes, memory); timing figures are then reported unjudged.
    """
    check_against_baseline(
        baseline=baseline, current=current, threshold=threshold, results=results, runs_dir=runs_dir,
        baselines_dir=baselines_dir, show_ok=show_ok, allow_missing=allow_missing,
        skip_unreadable=skip_unreadable, machine_class=machine_class,
    )  # fmt: skip


def check_against_baseline(
    *,
    baseline: Path | None = None,
    current: Path | None = None,
    threshold: list[str] | None = None,
    results: Path | None = None,
    runs_dir: Path | None = None,
    baselines_dir: Path | None = None,
    show_ok: bool = False,
    allow_missing: bool = False,
    skip_unreadable: bool = False,
    machine_class: str | None = None,
) -> None:
    """What ``regress`` and ``bench`` both do: check a run record against a baseline, print the findings,
    exit 1 on a regression or a missing timing figure."""
    from senet_profile.history import regress, tracking

    needs_root = (current is None and runs_dir is None) or (baseline is None and baselines_dir is None)
    folders = existing_results(results) if needs_root else results_root(results)
    runs_dir, baselines_dir = runs_dir or folders.runs, baselines_dir or folders.baselines
    thresholds = [regress.Threshold.parse(text) for text in threshold or []]
    if current is None:
        latest, problems = tracking.latest_run(
            runs_dir, machine_class or tracking.current_class(), skip_unreadable=skip_unreadable
        )
        _report_problems(problems)
        current_record = latest
    else:
        current_record = tracking.read_record_file(current, role="run record")
    known = sorted({figure["metric"] for figure in current_record.data["figures"]})
    for rule in thresholds:
        if not any(rule.applies_to(metric) for metric in known):
            raise UserInputError(
                f"--threshold {rule}: no metric {rule.metric!r} in {current_record.path.name}; "
                f"its metrics are {', '.join(known)}"
            )
    baseline_path = baseline or tracking.baseline_file(baselines_dir, current_record.machine_class)
    if baseline is None and not baseline_path.exists():
        other, problems = tracking.any_baseline(baselines_dir, current_record.machine_class)
        _report_problems(problems)
        if other is None:
            typer.echo(
                f"no baseline of any machine class in {baselines_dir}: no figure judged; create one with "
                "`senet-profile baseline update`"
            )
            _print_findings(regress.no_baseline_findings(current_record.data), show_ok=False)
            return
        typer.echo(
            f"no baseline for machine class {current_record.machine_class} ({baseline_path}); its "
            f"deterministic figures are checked against {other.machine_class}'s; `senet-profile baseline "
            "update` makes this run the class's own"
        )
        baseline_path = other.path
    base_record = tracking.read_record_file(baseline_path, role="baseline")
    typer.echo(f"checking {current_record.path} against {baseline_path}")
    typer.echo(regress.class_note(base_record.data, current_record.data))
    findings = regress.compare_records(
        base_record.data, current_record.data, thresholds, allow_missing=allow_missing
    )
    _print_findings(findings, show_ok=show_ok)
    if any(f.failed for f in findings):
        raise typer.Exit(1)


@baseline_app.command("update")
def baseline_update_command(
    source: Annotated[
        Path | None, typer.Option("--from", help="Record to promote (default: latest run).")
    ] = None,
    results: ResultsDir = None,
    runs_dir: RunsDir = None,
    baselines_dir: BaselinesDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the baseline even when it is unreadable (corrupt).")
    ] = False,
) -> None:
    """Make a run record the baseline of its machine class, showing what changes."""
    from senet_profile.history import regress, tracking

    needs_root = (source is None and runs_dir is None) or baselines_dir is None
    folders = existing_results(results) if needs_root else results_root(results)
    runs_dir, baselines_dir = runs_dir or folders.runs, baselines_dir or folders.baselines
    tracking.check_destinations(baselines_dir)
    if source is None:
        record, problems = tracking.latest_run(runs_dir, tracking.current_class())
        _report_problems(problems)
    else:
        record = tracking.read_record_file(source, role="run record")
    target = tracking.baseline_file(baselines_dir, record.machine_class)
    check_writable(target, create_folder=True)  # a folder, FIFO or link there: refused before a word
    old = None
    if target.exists() or target.is_symlink():
        try:
            old = tracking.read_record_file(target, role="baseline")
        except UserInputError as error:
            if not force:
                raise UserInputError(f"{error}; `baseline update --force` replaces it") from None
            typer.echo(f"warning: replacing unreadable baseline ({error})", err=True)
    if old is not None:
        findings = regress.compare_records(old.data, record.data)
        changes = [f for f in findings if f.verdict != "ok"]
        typer.echo(f"{len(changes)} figures change:" if changes else "no figure changes beyond timing noise")
        _print_findings(changes, show_ok=False)
    written = tracking.promote(record, baselines_dir)
    typer.echo(f"baseline for {record.machine_class} is now {record.path.name} ({written})")


@app.command("history")
def history_command(
    pair: Annotated[
        str | None, typer.Argument(help="Only pairs whose name contains this, e.g. se_resnet50.")
    ] = None,
    results: ResultsDir = None,
    runs_dir: RunsDir = None,
    all_machines: AllMachines = False,
    machine_class: MachineClass = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot-dir",
            help="Folder for history.png and .svg, history-PAIR.* with PAIR (default: RESULTS/plots).",
        ),
    ] = None,
    sweeps_dir: Annotated[
        Path | None,
        typer.Option(
            "--sweeps-dir",
            help="Sweeps whose timed cases join the history (default: RESULTS/sweeps; none with --runs-dir).",
        ),
    ] = None,
    fmt: PrintFormat = None,
    wide: Wide = False,
) -> None:
    """The SE latency overhead of a pair across recorded runs (bench and sweeps), its shifts, and a plot."""
    from senet_profile.history import changepoints, tracking
    from senet_profile.history.sweep import sweep_runs_of_class
    from senet_profile.report import plots

    folders = existing_results(results) if runs_dir is None or plot is None else results_root(results)
    # Runs named explicitly are the whole history: sweeps join it only from the same results folder.
    if sweeps_dir is None and runs_dir is None:
        sweeps_dir = folders.sweeps
    runs_dir, plot = runs_dir or folders.runs, plot or folders.plots
    choose_format(fmt, None)
    stem = "history-" + re.sub(r"[^A-Za-z0-9_.]+", "_", pair).strip("_") if pair else "history"
    plots.check_destination(plot, stem)
    sweep_folders = sorted(p for p in sweeps_dir.glob("*") if p.is_dir()) if sweeps_dir else []
    present = tracking.classes_in(runs_dir, *sweep_folders)
    choice = tracking.choose_classes(
        present, here=tracking.current_class(), wanted=machine_class, all_machines=all_machines
    )
    if choice.classes:
        typer.echo(f"history of {choice.note}", err=True)
    records = []
    for chosen in choice.classes:
        sources = [tracking.runs_of_class(runs_dir, chosen)]
        if sweeps_dir is not None:
            sources.append(sweep_runs_of_class(sweeps_dir, chosen))
        for found, problems in sources:
            _report_problems(problems)
            records += found
    history = tracking.overhead_history(records, pair)
    if history.empty:
        where = ", ".join(choice.classes) or "no machine class"
        raise UserInputError(
            f"no recorded latency overhead{f' for {pair!r}' if pair else ''} in {runs_dir} ({where}); "
            "`senet-profile bench` records one"
        )
    shifts = changepoints.mark_shifts(history)
    title = f"SE latency overhead across runs{f' ({pair})' if pair else ''}"
    paths = plots.save(plots.history_figure(history, title, shifts), plot, stem)
    if choose_format(fmt, None) in ("csv", "json"):
        emit(history, fmt=fmt, output=None, title=title)
    else:  # one narrow table per pair and setting, each run a row
        from senet_profile.api import MIN_CI_SAMPLES
        from senet_profile.report.wide import history_series

        typer.echo(f"{title}, one table per pair and setting (95 % CI: n/a below {MIN_CI_SAMPLES} samples)")
        for series, runs in history_series(history):
            emit(runs, fmt=fmt, output=None, title=series, wide=wide)
    _print_shifts(shifts, series=history.groupby(changepoints.SERIES_KEYS).ngroups)
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)


def _print_shifts(shifts, *, series: int) -> None:
    """One line per shift beyond noise (run, commit, before and after), or that there was none."""
    for s in shifts.itertuples(index=False):
        typer.echo(
            f"shift: {s.pair} ({s.setting}) at the run of {s.time} (commit {s.commit}): "
            f"{s.before_pct:+.2f} % -> {s.after_pct:+.2f} % ({s.shift_pp:+.2f} pp, p = {s.p_value:.3f})"
        )
    if shifts.empty:
        typer.echo(f"no shift beyond run-to-run noise in {series} series (permutation test, 1 % level)")


@baseline_app.command("show")
def baseline_show_command(
    results: ResultsDir = None,
    baselines_dir: BaselinesDir = None,
    fmt: PrintFormat = None,
    machine_class: MachineClass = None,
    all_machines: AllMachines = False,
) -> None:
    """Show a machine class's baseline (this machine's, else those present): its run, commit and figures."""
    import pandas as pd

    from senet_profile.history import tracking

    folder = baselines_dir or existing_results(results).baselines
    present = tracking.baseline_classes(folder)
    if not present:
        raise UserInputError(
            f"no baseline of any machine class in {folder}; create one with `senet-profile baseline update`"
        )
    choice = tracking.choose_classes(
        present, here=tracking.current_class(), wanted=machine_class, all_machines=all_machines,
        what="baseline",
    )  # fmt: skip
    typer.echo(f"baseline of {choice.note}", err=True)
    records = [
        tracking.read_record_file(tracking.baseline_file(folder, c), role="baseline") for c in choice.classes
    ]
    frame = pd.concat([tracking.figures_frame(r.data) for r in records], ignore_index=True)
    if choose_format(fmt, None) in ("table", "markdown"):  # what a person reads: the figure and its CI
        several = ["machine_class"] if len(records) > 1 else []
        shown = ["model", "metric", "setting", "unit", "value", "ci_low", "ci_high", "samples", *several]
        frame = frame[[c for c in shown if c in frame.columns]]
    title = f"Baseline of {', '.join(choice.classes)}: " + ", ".join(str(r.path) for r in records)
    emit(frame, fmt=fmt, output=None, title=title)
