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
from senet_profile.cli.track import ResultsDir, RunsDir, _report_problems
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
        report.print_table(report.rich_table(shown, title=title, caption=caption))
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
) -> None:
    """SE overhead per stage, latency overhead against batch size, and FLOP vs latency overhead."""
    from senet_profile.history import tracking
    from senet_profile.report import plots

    folders = existing_results(results) if runs_dir is None else results_root(results)
    output_dir, runs_dir = output_dir or folders.plots, runs_dir or folders.runs
    for name in ("stage_overhead", "latency_vs_batch", "flops_vs_latency"):
        plots.check_destination(output_dir, name)
    plots.check_pair(pair)
    record, problems = tracking.latest_run(runs_dir, tracking.current_class())
    _report_problems(problems)
    drawn = {  # every figure is drawn before any file is written: a refusal leaves nothing behind
        "stage_overhead": plots.stage_overhead_figure(base, candidate),
        "latency_vs_batch": plots.batch_figure(record.data, pair),
        "flops_vs_latency": plots.flops_vs_latency_figure(record.data),
    }
    written = [path for stem, figure in drawn.items() for path in plots.save(figure, output_dir, stem)]
    typer.echo(f"plotted run {record.path.name}: wrote {', '.join(str(p) for p in written)}")
