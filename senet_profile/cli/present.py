"""Commands that present results: paper (the paper's figures beside ours) and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.common import (
    PrintFormat,
    choose_format,
    count_bar,
)
from senet_profile.cli.track import MachineClass, ResultsDir, RunsDir, _report_problems
from senet_profile.history.locations import existing_results, results_root
from senet_profile.io import check_writable, write_atomic


@app.command("paper")
def paper_command(
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Folder for figures.csv and REPORT.md (default: RESULTS/paper)."),
    ] = None,
    results: ResultsDir = None,
    fmt: PrintFormat = None,
) -> None:
    """Every complexity figure of the paper: printed value beside computed value, and why they differ."""
    from senet_profile.report import paper
    from senet_profile.report import tables as report

    chosen = choose_format(fmt, None)
    output_dir = output_dir or results_root(results).paper
    for name in ("figures.csv", "REPORT.md"):
        check_writable(output_dir / name, create_folder=True)
    with count_bar("counting models") as progress:
        frame = paper.paper_report(progress=progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "figures.csv", frame.to_csv(index=False))
    write_atomic(output_dir / "REPORT.md", paper.markdown_report(frame))
    shown, notes = paper.with_note_refs(frame)
    caption = "\n".join([f"Source: {frame.attrs['citation']}", f"{frame.attrs['convention']}.", *notes])
    title = "Squeeze-and-Excitation Networks: printed vs computed"
    if chosen == "table":
        report.print_frame(shown, title=title, caption=caption)
    else:
        typer.echo(
            report.render(frame if chosen in ("csv", "json") else shown, chosen, caption=caption), nl=False
        )
    typer.echo(f"wrote {output_dir / 'figures.csv'} and {output_dir / 'REPORT.md'}", err=True)


@app.command("plot")
def plot_command(
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Folder for the PNG and SVG files (default: RESULTS/plots)."),
    ] = None,
    results: ResultsDir = None,
    runs_dir: RunsDir = None,
    base: Annotated[str, typer.Option("--base", help="Base model of the per-stage plot.")] = "resnet50",
    candidate: Annotated[
        str, typer.Option("--candidate", help="SE model of the per-stage plot.")
    ] = "se_resnet50",
    pair: Annotated[
        str, typer.Option("--pair", help="Timed pair of the batch-size plot.")
    ] = "resnet50 -> se_resnet50",
    machine_class: MachineClass = None,
) -> None:
    """SE overhead per stage, latency overhead against batch size, and FLOP vs latency overhead.

    The per-stage plot needs no run; the latency plots use the newest run of this machine's class, else of
    the newest run among the classes present, and are skipped when there is none.
    """
    from senet_profile.history import tracking
    from senet_profile.report import plots

    folders = existing_results(results) if runs_dir is None else results_root(results)
    output_dir, runs_dir = output_dir or folders.plots, runs_dir or folders.runs
    for name in ("stage_overhead", "latency_vs_batch", "flops_vs_latency"):
        plots.check_destination(output_dir, name)
    plots.check_pair(pair)
    present = tracking.classes_in(runs_dir)
    record = None
    if present or machine_class is not None:
        choice = tracking.choose_classes(present, here=tracking.current_class(), wanted=machine_class)
        latest = []
        for chosen in choice.classes:
            found, problems = tracking.runs_of_class(runs_dir, chosen)
            _report_problems(problems)
            latest += found[-1:]
        record = max(latest, key=lambda r: (r.data["time"], r.path.name), default=None)
    drawn = {"stage_overhead": plots.stage_overhead_figure(base, candidate)}
    if record is not None:  # every figure is drawn before any file is written: a refusal leaves nothing
        drawn["latency_vs_batch"] = plots.batch_figure(record.data, pair)
        drawn["flops_vs_latency"] = plots.flops_vs_latency_figure(record.data)
        typer.echo(f"latency plots from the newest run of {choice.note}: {record.path.name}", err=True)
    else:
        typer.echo(
            f"no run record in {runs_dir}: the latency plots are skipped (`senet-profile bench` records a "
            "run); the per-stage plot needs none",
            err=True,
        )
    written = [path for stem, figure in drawn.items() for path in plots.save(figure, output_dir, stem)]
    source = f"plotted run {record.path.name}" if record is not None else "plotted static counts only"
    typer.echo(f"{source}: wrote {', '.join(str(p) for p in written)}")
