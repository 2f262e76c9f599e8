"""The ``senet-profile`` command line: list, profile, compare, paper.

Every refusal of bad input is one line on stderr, ``error: ...``, and exit status 2, whether it comes from
the argument parser (unknown option, bad number) or from the project (unknown model, impossible knob).
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from senet_profile import api
from senet_profile.analysis import explain
from senet_profile.analysis.metrics import RuntimeOptions, memory_profile, parse_metrics
from senet_profile.catalog.registry import get_entry, get_model, list_models
from senet_profile.errors import UserInputError
from senet_profile.history import regress, tracking
from senet_profile.io import check_writable, write_atomic
from senet_profile.report import paper, plots
from senet_profile.report import tables as report

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer with click as a dependency
    from click.exceptions import ClickException

GRAMMAR = (
    "Model arguments: NAME[:KNOB=VALUE,...], e.g. se_resnet50:r=8,stages=4,placement=pre,layout=paper. "
    "`senet-profile list` shows every name with its knobs and defaults."
)


def _one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    typer.echo(f"warning: {message}", err=True)


class _OneLineErrors(TyperGroup):
    """Runs the app with every usage or input error reported as one line and exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning
                result = super().main(*args, **kwargs)
        except UserInputError as error:
            typer.echo(f"error: {error}", err=True)
            sys.exit(2)
        except ClickException as error:
            message = error.format_message()
            if message:  # typer's no-args help raises with an empty message, after printing the help
                typer.echo(f"error: {message}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="What Squeeze-and-Excitation really costs: parameters, MACs, activations. " + GRAMMAR,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

InputSize = Annotated[str, typer.Option("--input-size", help="Input height, or HxW.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Batch size (counts scale with it).")]
Format = Annotated[
    str | None,
    typer.Option(
        "--format", help="table | csv | json | markdown (default: from --output's suffix, else table)."
    ),
]
Output = Annotated[
    Path | None, typer.Option("--output", help="Write to this file (atomically) instead of stdout.")
]
ByStage = Annotated[bool, typer.Option("--by-stage", help="Add one row per stage for every metric.")]
Metrics = Annotated[
    str, typer.Option("--metrics", help="static | memory | latency, comma-separated, or all.")
]
Device = Annotated[str, typer.Option("--device", help="cpu | cuda (meta: memory planning without data).")]
Mode = Annotated[str, typer.Option("--mode", help="infer (eval, no grad) | train (forward + backward).")]
Threads = Annotated[
    int, typer.Option("--threads", help="torch CPU threads while timing (1, as torch.utils.benchmark does).")
]
Allocator = Annotated[
    str,
    typer.Option(
        "--allocator", help="C heap while timing: 'steady' (no page faults from heap trimming) or 'as-is'."
    ),
]
Dtype = Annotated[str, typer.Option("--dtype", help="fp32 | bf16 | fp16 (CUDA only).")]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Run in channels-last memory format.")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile both models before timing.")]
Budget = Annotated[float, typer.Option("--budget", help="Latency: stop after this many seconds at most.")]
CrossCheck = Annotated[
    bool, typer.Option("--crosscheck", help="Add MACs from fvcore, ptflops (both backends), torch's counter.")
]


def _choose_format(fmt: str | None, output: Path | None) -> str:
    chosen = fmt or (report.format_for_path(str(output)) if output else "table")
    if chosen not in report.FORMATS:
        raise UserInputError(f"unknown format {chosen!r}; choose one of {', '.join(report.FORMATS)}")
    return chosen


def _caption(frame: pd.DataFrame) -> str:
    lines = [f"Convention: {frame.attrs['convention']}."] if "convention" in frame.attrs else []
    for name, ops in frame.attrs.get("unknown_ops", {}).items():
        if ops:
            listed = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))
            lines.append(f"NOT COUNTED in {name} (ops with no counting rule): {listed}.")
    for name, modules in frame.attrs.get("uncalled_modules", {}).items():
        if modules:
            lines.append(f"Never called in {name}: {', '.join(modules)}.")
    lines += [f"Note, {note}." for note in frame.attrs.get("notes", [])]
    if frame.attrs.get("runtime"):
        lines.append(
            f"Runtime: {frame.attrs['runtime']}; latency overhead = median of per-pair ratios, 95 % CI."
        )
    return "\n".join(lines)


def _interval(low: object, high: object, unit: str) -> str:
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"[{low:+.2f}, {high:+.2f}] %" if unit == "%" else f"[{low:.4g}, {high:.4g}] {unit}"


def _for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a person reads it: constant columns dropped, the CI as one column."""
    shown = frame.copy()
    if "ci_low" in shown.columns and not shown["ci_low"].isna().all():
        # The interval is of overhead_pct where there is one (compare, history), else of the value.
        units = ["%"] * len(shown) if "overhead_pct" in shown.columns else list(shown["unit"])
        shown["95% CI"] = [
            _interval(lo, hi, u) for lo, hi, u in zip(shown["ci_low"], shown["ci_high"], units, strict=True)
        ]
    constant = [c for c in ("scope", "source") if c in shown.columns and shown[c].nunique() <= 1]
    empty = [c for c in ("samples",) if c in shown.columns and shown[c].isna().all()]
    shown = shown.drop(columns=constant + empty + [c for c in ("ci_low", "ci_high") if c in shown.columns])
    shown.attrs = frame.attrs
    return shown


def emit(frame: pd.DataFrame, *, fmt: str | None, output: Path | None, title: str) -> None:
    """Print ``frame`` in the chosen format, or write it atomically to ``output``."""
    chosen = _choose_format(fmt, output)
    shown = _for_display(frame) if chosen in ("table", "markdown") else frame
    caption = _caption(frame)
    if output is None and chosen == "table":
        report.print_table(report.rich_table(shown, title=title, caption=caption))
        return
    text = report.render(shown, chosen, title=title, caption=caption)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)


@contextmanager
def _progress(groups: tuple[str, ...], budget: float) -> Iterator[Callable[[int, float], None] | None]:
    """A rich progress bar on stderr while latency is measured (time against the budget)."""
    if "latency" not in groups:
        yield None
        return
    bar = Progress(
        TextColumn("timing"), BarColumn(), TextColumn("{task.fields[pairs]} pairs, CI +/-{task.fields[hw]}"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task("latency", total=budget, pairs=0, hw="?")
        start = time.perf_counter()

        def update(pairs: int, halfwidth_pp: float) -> None:
            hw = f"{halfwidth_pp:.2f} pp"
            bar.update(task, completed=min(budget, time.perf_counter() - start), pairs=pairs, hw=hw)

        yield update


def _shape_text(frame: pd.DataFrame) -> str:
    return "x".join(str(s) for s in frame.attrs["input_shape"])


@app.command("list")
def list_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'se_*'.")] = "*",
) -> None:
    """List catalog models with their knobs and defaults."""
    names = list_models(pattern)
    if not names:
        raise UserInputError(f"no model matches {pattern!r}")
    rows = []
    for name in names:
        entry = get_entry(name)
        knobs = ", ".join(f"{k.name}={k.format(k.default)}" for k in entry.knobs)
        rows.append(
            {
                "model": name,
                "family": entry.family,
                "description": entry.description,
                "knobs (defaults)": knobs,
            }
        )
    frame = pd.DataFrame(rows)
    report.print_table(report.rich_table(frame, title="senet-profile catalog", caption=GRAMMAR))


@app.command("profile")
def profile_command(
    model: Annotated[str, typer.Argument(help="Model argument, e.g. se_resnet50:r=8.")],
    input_size: InputSize = "224",
    batch_size: BatchSize = 1,
    fmt: Format = None,
    output: Output = None,
    by_stage: ByStage = False,
    crosscheck: CrossCheck = False,
    metrics: Metrics = "static",
    device: Device = "cpu",
    mode: Mode = "infer",
    threads: Threads = 1,
    dtype: Dtype = "fp32",
    channels_last: ChannelsLast = False,
    compile: Compile = False,
    budget: Budget = 48.0,
    allocator: Allocator = "steady",
) -> None:
    """One model's parameters, MACs, activations (and memory, latency), with SE's share."""
    _choose_format(fmt, output)
    if output is not None:
        check_writable(output)
    runtime = RuntimeOptions(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget_s=budget, allocator=allocator,
    )  # fmt: skip
    groups = parse_metrics(metrics)
    with _progress(groups, budget):
        frame = api.profile(
            model,
            batch_size=batch_size,
            input_size=api.parse_input_size(input_size),
            by_stage=by_stage,
            crosscheck=crosscheck,
            metrics=groups,
            runtime=runtime,
        )
    emit(frame, fmt=fmt, output=output, title=f"{frame.attrs['models'][0]}, input {_shape_text(frame)}")


@app.command("compare")
def compare_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="Candidate model argument, e.g. se_resnet50.")],
    input_size: InputSize = "224",
    batch_size: BatchSize = 1,
    fmt: Format = None,
    output: Output = None,
    by_stage: ByStage = False,
    crosscheck: CrossCheck = False,
    metrics: Metrics = "static",
    device: Device = "cpu",
    mode: Mode = "infer",
    threads: Threads = 1,
    dtype: Dtype = "fp32",
    channels_last: ChannelsLast = False,
    compile: Compile = False,
    budget: Budget = 48.0,
    allocator: Allocator = "steady",
) -> None:
    """What CANDIDATE costs over BASE: each metric, the delta and the overhead in percent."""
    _choose_format(fmt, output)
    if output is not None:
        check_writable(output)
    runtime = RuntimeOptions(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget_s=budget, allocator=allocator,
    )  # fmt: skip
    groups = parse_metrics(metrics)
    with _progress(groups, budget) as progress:
        frame = api.compare(
            base,
            candidate,
            batch_size=batch_size,
            input_size=api.parse_input_size(input_size),
            by_stage=by_stage,
            crosscheck=crosscheck,
            metrics=groups,
            runtime=runtime,
            progress=progress,
        )
    names = frame.attrs["models"]
    emit(frame, fmt=fmt, output=output, title=f"{names[0]} -> {names[1]}, input {_shape_text(frame)}")


@app.command("paper")
def paper_command(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Folder for figures.csv and REPORT.md (created if missing).")
    ] = Path("results/paper"),
    fmt: Format = None,
) -> None:
    """Every complexity figure of the paper: printed value beside computed value, and why they differ."""
    chosen = _choose_format(fmt, None)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserInputError(f"cannot write to {output_dir}: it is not a folder")
    frame = paper.paper_report()
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "figures.csv", frame.to_csv(index=False))
    write_atomic(output_dir / "REPORT.md", paper.markdown_report(frame))
    shown, notes = paper.with_note_refs(frame)
    caption = "\n".join([f"Source: {frame.attrs['citation']}", f"{frame.attrs['convention']}.", *notes])
    title = "Squeeze-and-Excitation Networks: printed vs computed"
    if chosen == "table":
        report.print_table(report.rich_table(shown, title=title, caption=caption))
    else:
        typer.echo(
            report.render(frame if chosen in ("csv", "json") else shown, chosen, caption=caption), nl=False
        )
    typer.echo(f"wrote {output_dir / 'figures.csv'} and {output_dir / 'REPORT.md'}", err=True)


@app.command("explain-memory")
def explain_memory_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="SE model argument, e.g. se_resnet50.")],
    input_size: InputSize = "224",
    batch_size: BatchSize = 8,
    mode: Mode = "train",
    device: Device = "meta",
    output: Annotated[Path | None, typer.Option("--output", help="Write the Markdown report here.")] = None,
) -> None:
    """Why CANDIDATE's peak memory exceeds BASE's: SE's saved tensors one by one, against the peaks."""
    if output is not None:
        check_writable(output)
    runtime = RuntimeOptions(device=device, mode=mode)
    shape = api.Workload(batch_size, api.parse_input_size(input_size)).shape
    built = {
        name: api.resolve_model(name)[1] if device == "meta" else get_model(name, device="cpu")
        for name in (base, candidate)
    }
    base_memory, candidate_memory = (
        memory_profile(built[name], shape, runtime) for name in (base, candidate)
    )
    explanation = explain.explain(base_memory, candidate_memory)
    title = f"Memory: {candidate} over {base}, {mode}, input {'x'.join(map(str, shape))}, {device}"
    text = explain.to_markdown(explanation, title=title)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)


RunsDir = Annotated[
    Path, typer.Option("--runs-dir", help="Folder of run records (one subfolder per machine class).")
]
BaselinesDir = Annotated[
    Path, typer.Option("--baselines-dir", help="Folder of baselines, one per machine class.")
]
baseline_app = typer.Typer(
    help="Show or update the baseline that bench runs are checked against.", no_args_is_help=True
)
app.add_typer(baseline_app, name="baseline")


def _report_problems(problems: list[str]) -> None:
    for problem in problems:
        typer.echo(f"skipped corrupt record: {problem}", err=True)


def _print_findings(findings: list[regress.Finding], *, show_ok: bool) -> None:
    for finding in findings:
        if finding.verdict != "ok" or show_ok:
            where = f"{finding.model} {finding.metric} ({finding.setting})"
            typer.echo(f"{finding.verdict.upper():<10} {where}: {finding.message}")
    counts = Counter(f.verdict for f in findings)
    typer.echo("summary: " + (", ".join(f"{n} {verdict}" for verdict, n in counts.items()) or "no figures"))


@app.command("record")
def record_command(
    benchmark_json: Annotated[
        Path, typer.Option("--benchmark-json", help="pytest-benchmark JSON of `pytest bench`.")
    ],
    full: Annotated[bool, typer.Option("--full", help="The bench ran in full mode.")] = False,
    runs_dir: RunsDir = tracking.RUNS_DIR,
) -> None:
    """Write one run record: every deterministic figure, measured now, plus the bench's timing figures."""
    record = tracking.build_run_record(benchmark_json, full=full)
    path = tracking.save_run(record, runs_dir)
    typer.echo(f"recorded {len(record['figures'])} figures in {path}")


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
    runs_dir: RunsDir = tracking.RUNS_DIR,
    baselines_dir: BaselinesDir = tracking.BASELINES_DIR,
    show_ok: Annotated[bool, typer.Option("--show-ok", help="List unchanged figures too.")] = False,
) -> None:
    """Check a run record against a baseline; exit 1 on a regression."""
    thresholds = [regress.Threshold.parse(text) for text in threshold or []]
    if current is None:
        latest, problems = tracking.latest_run(runs_dir, tracking.current_class())
        _report_problems(problems)
        current_record = latest
    else:
        current_record = tracking.read_record_file(current, role="run record")
    baseline_path = baseline or tracking.baseline_file(baselines_dir, current_record.machine_class)
    if baseline is None and not baseline_path.exists():
        typer.echo(
            f"no baseline for machine class {current_record.machine_class} ({baseline_path}): nothing to "
            "compare; create one with `senet-profile baseline update`"
        )
        return
    base_record = tracking.read_record_file(baseline_path, role="baseline")
    typer.echo(f"checking {current_record.path} against {baseline_path}")
    typer.echo(regress.class_note(base_record.data, current_record.data))
    findings = regress.compare_records(base_record.data, current_record.data, thresholds)
    _print_findings(findings, show_ok=show_ok)
    if any(f.failed for f in findings):
        raise typer.Exit(1)


@baseline_app.command("update")
def baseline_update_command(
    source: Annotated[
        Path | None, typer.Option("--from", help="Record to promote (default: latest run).")
    ] = None,
    runs_dir: RunsDir = tracking.RUNS_DIR,
    baselines_dir: BaselinesDir = tracking.BASELINES_DIR,
) -> None:
    """Make a run record the baseline of its machine class, showing what changes."""
    if source is None:
        record, problems = tracking.latest_run(runs_dir, tracking.current_class())
        _report_problems(problems)
    else:
        record = tracking.read_record_file(source, role="run record")
    target = tracking.baseline_file(baselines_dir, record.machine_class)
    if target.exists():
        findings = regress.compare_records(
            tracking.read_record_file(target, role="baseline").data, record.data
        )
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
    runs_dir: RunsDir = tracking.RUNS_DIR,
    all_machines: Annotated[
        bool, typer.Option("--all-machines", help="Every machine class, not only this one's.")
    ] = False,
    plot: Annotated[Path, typer.Option("--plot-dir", help="Folder for history.png and .svg.")] = Path(
        "results/plots"
    ),
    fmt: Format = None,
) -> None:
    """The SE latency overhead of a pair across recorded runs, as a table and a plot."""
    classes = [tracking.current_class()]
    if all_machines and runs_dir.is_dir():
        classes = sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
    records = []
    for machine_class in classes:
        found, problems = tracking.runs_of_class(runs_dir, machine_class)
        _report_problems(problems)
        records += found
    history = tracking.overhead_history(records, pair)
    if history.empty:
        raise UserInputError(f"no recorded latency overhead{f' for {pair!r}' if pair else ''} in {runs_dir}")
    title = f"SE latency overhead across runs{f' ({pair})' if pair else ''}"
    stem = "history-" + re.sub(r"[^A-Za-z0-9_.]+", "_", pair).strip("_") if pair else "history"
    paths = plots.save(plots.history_figure(history, title), plot, stem)
    emit(history, fmt=fmt, output=None, title=title)
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)


@app.command("plot")
def plot_command(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Folder for the PNG and SVG files.")
    ] = Path("results/plots"),
    runs_dir: RunsDir = tracking.RUNS_DIR,
    base: Annotated[str, typer.Option("--base", help="Base model of the per-stage plot.")] = "resnet50",
    candidate: Annotated[
        str, typer.Option("--candidate", help="SE model of the per-stage plot.")
    ] = "se_resnet50",
    pair: Annotated[
        str, typer.Option("--pair", help="Timed pair of the batch-size plot.")
    ] = "resnet50 -> se_resnet50",
) -> None:
    """SE overhead per stage, latency overhead against batch size, and FLOP vs latency overhead."""
    written = plots.save(plots.stage_overhead_figure(base, candidate), output_dir, "stage_overhead")
    record, problems = tracking.latest_run(runs_dir, tracking.current_class())
    _report_problems(problems)
    written += plots.save(plots.batch_figure(record.data, pair), output_dir, "latency_vs_batch")
    written += plots.save(plots.flops_vs_latency_figure(record.data), output_dir, "flops_vs_latency")
    typer.echo(f"plotted run {record.path.name}: wrote {', '.join(str(p) for p in written)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
