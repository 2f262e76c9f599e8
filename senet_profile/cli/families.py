"""``families``: SE against its rivals, every attention family of timm's registry on one backbone.

torch, timm, pandas, matplotlib and the analysis modules are imported inside the command, so that
``--help`` stays light.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.common import (
    Allocator,
    BatchSize,
    Budget,
    Dtype,
    FpMath,
    InputSize,
    MachineDir,
    Metrics,
    PrintFormat,
    RemeasureMachine,
    Threads,
    choose_format,
    count_bar,
    machine_file,
    warn_unused,
)
from senet_profile.cli.track import ResultsDir
from senet_profile.errors import UserInputError
from senet_profile.io import check_writable, write_atomic
from senet_profile.setting import DEFAULT_BUDGET_S

FILES = ("REPORT.md", "families.csv", "overhead_vs_params.png", "overhead_vs_params.svg")


def _timing_bar(count: int, budget: float):
    """One rich progress bar over every family's timing: seconds against the families' total budget."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("timing {task.fields[family]}"), BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[count]} families, {task.fields[pairs]} pairs"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )  # fmt: skip
    return bar, bar.add_task("latency", total=count * budget, family="", done=0, count=count, pairs=0)


@app.command("families")
def families_command(
    backbone: Annotated[
        str, typer.Argument(help="A timm model whose blocks take block_args=dict(attn_layer=NAME).")
    ] = "resnet50",
    only: Annotated[
        str | None,
        typer.Option("--families", help="Comma-separated registry names to measure (default: every one)."),
    ] = None,
    metrics: Metrics = "static,memory",
    input_size: InputSize = None,
    batch_size: BatchSize = 1,
    device: Annotated[
        str, typer.Option("--device", help="cpu | cuda: where latency is timed and the machine model holds.")
    ] = "cpu",
    dtype: Dtype = "fp32",
    fp_math: FpMath = "default",
    threads: Threads = 1,
    budget: Budget = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help="Latency: fresh worker processes each family's budget is split over (default 1 here).",
        ),
    ] = 1,
    allocator: Allocator = "steady",
    predict: Annotated[
        bool, typer.Option("--predict/--no-predict", help="Add the machine model's predicted overhead.")
    ] = True,
    remeasure: RemeasureMachine = False,
    results: ResultsDir = None,
    machine_dir: MachineDir = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Write REPORT.md, families.csv and the plot here (e.g. results/families/<machine-class>).",
        ),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="Write them to RESULTS/families/<machine-class>/.")
    ] = False,
    fmt: PrintFormat = None,
) -> None:
    """SE against its rivals: params, MACs, bytes, peaks, predicted and measured overhead per family."""
    from senet_profile.history.locations import results_root
    from senet_profile.setting import parse_metrics

    chosen = choose_format(fmt, None)
    groups = parse_metrics(metrics)
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"families times on cpu or cuda (memory is tracked on meta), not {device!r}")
    if batch_size <= 0:
        raise UserInputError(f"batch size must be a positive integer, got {batch_size}")
    timed = "latency" in groups
    warn_unused(
        **{"--budget": budget is not None and not timed, "--processes": processes != 1 and not timed,
           "--threads": threads != 1 and not (timed or predict),
           "--allocator": allocator != "steady" and not timed},
    )  # fmt: skip
    budget = DEFAULT_BUDGET_S if budget is None else budget
    if output_dir is not None and save:
        raise UserInputError("give --output-dir or --save, not both")
    if save:
        from senet_profile.history.machine import describe_machine

        output_dir = results_root(results).root / "families" / describe_machine().machine_class
    if output_dir is not None:
        for name in FILES:
            check_writable(output_dir / name, create_folder=True)
    from senet_profile import api
    from senet_profile.report import families
    from senet_profile.setting import Setting

    if dtype == "tf32":  # --dtype tf32: fp32 tensors in TF32 math, as everywhere
        dtype, fp_math = "fp32", "tf32"
    runtime = Setting(
        device=device, threads=threads, dtype=dtype, budget_s=budget, allocator=allocator,
        processes=processes, math=fp_math,
    )  # fmt: skip
    runtime.check_for(groups)
    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    rows = families.family_list(backbone, names)
    size = api.parse_input_size(input_size) if input_size else _default_size(rows[0].model)
    workload = Setting(batch_size=batch_size, input_size=size, dtype=dtype)
    machine = (
        _machine(results, machine_dir, device=device, dtype=dtype, threads=threads, remeasure=remeasure)
        if predict
        else None
    )
    with count_bar("counting families") as progress:
        table = families.static_table(rows, workload=workload, machine=machine, progress=progress)
    if timed:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        table = _timed(families, table, runtime=runtime, workload=workload, budget=budget)
        if load is not None:
            table.attrs["load"] = f"{load:.1f} at the start of timing, {os.getloadavg()[0]:.1f} at its end"
    if "memory" not in groups:  # measured anyway (they cost seconds on meta), shown only when asked for
        table[[c for c in table.columns if c.startswith("peak_")]] = math.nan
    if "static" not in groups:
        for measure in ("params", "macs", "bytes_moved"):
            table[[measure, f"{measure}_delta", f"{measure}_pct"]] = math.nan
    if machine is not None:
        table.attrs["machine_model"] = machine.key
    name = families.timm_backbone(backbone)
    title = f"SE against its rivals on {name}, input {'x'.join(map(str, workload.shape))}"
    _show(families, table, chosen, title)
    if output_dir is not None:
        _write(families, table, output_dir, backbone=name, title=title)


def _default_size(model: str) -> tuple[int, int]:
    from senet_profile import api

    built = api.resolve(model)
    return built.input_size or api.DEFAULT_INPUT_SIZE


def _machine(
    results: Path | None, machine_dir: Path | None, *, device: str, dtype: str, threads: int, remeasure: bool
):
    """The stored machine model of this machine class (measured once if absent), as ``explain`` reads it."""
    from senet_profile import api
    from senet_profile.history.machine import describe_machine
    from senet_profile.setting import Setting

    path = machine_dir / f"{describe_machine().machine_class}.json" if machine_dir else machine_file(results)
    check_writable(path, create_folder=True)
    setting = Setting(device=device, dtype=dtype, threads=threads)
    return api.machine_model(setting, path=path, remeasure=remeasure)


def _timed(families, table, *, runtime, workload, budget: float):
    """The measured column, family by family, under one progress bar."""
    timed = [i for i, params in enumerate(table["params"]) if not math.isnan(params)]
    count = max(1, len(timed) - 1)  # the plain row is not timed
    bar, task = _timing_bar(count, budget)
    started: dict[int, float] = {}
    order = {
        index: position for position, index in enumerate(i for i in timed if table["family"][i] != "none")
    }

    def progress(index: int, family: str, pairs: int, halfwidth: float) -> None:
        position = order.get(index, 0)
        if pairs < 0:  # a family finished
            bar.update(task, completed=(position + 1) * budget, done=position + 1)
            return
        started.setdefault(index, time.perf_counter())
        elapsed = min(budget, time.perf_counter() - started[index])
        bar.update(task, completed=position * budget + elapsed, family=family, pairs=pairs)

    with bar:
        return families.measure_latency(table, runtime=runtime, workload=workload, progress=progress)


def _show(families, table, chosen: str, title: str) -> None:
    from senet_profile.report import tables as report

    shown = families.shown_table(table)
    caption = _caption(table)
    if chosen == "table":
        report.print_table(report.rich_table(shown, title=title, caption=caption))
    elif chosen == "csv":
        typer.echo(families.csv_text(table), nl=False)
    elif chosen == "json":
        typer.echo(report.to_json(table), nl=False)
    else:
        typer.echo(report.render(shown, chosen, title=title, caption=caption), nl=False)


def _caption(table) -> str:
    lines = [
        "Each family against the plain backbone: + is the difference, % that over the plain figure; peaks "
        f"tracked on {table.attrs.get('memory_device', 'meta')}; 'model predicts' from the stored machine "
        "model"
        + (f" {table.attrs['machine_model']}" if table.attrs.get("machine_model") else "")
        + "; measured: median of per-pair ratios with its 95 % CI.",
    ]
    if table.attrs.get("runtime"):
        lines.append(f"Runtime: {table.attrs['runtime']}.")
    return "\n".join(lines)


def _write(families, table, output_dir: Path, *, backbone: str, title: str) -> None:
    from senet_profile.history.machine import describe_machine
    from senet_profile.report import plots

    command = "senet-profile " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    figure = families.overhead_figure(
        table, title=f"{title}: latency overhead against added parameters", caption=plots.caption_for(None)
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    written = plots.save(figure, output_dir, "overhead_vs_params")
    write_atomic(output_dir / "families.csv", families.csv_text(table))
    report = families.markdown_report(
        table, backbone=backbone, command=command, machine=describe_machine().as_dict(),
        papers=families.load_paper_tables(), plot_name="overhead_vs_params.png",
    )  # fmt: skip
    write_atomic(output_dir / "REPORT.md", report)
    listed = ", ".join(str(p) for p in [output_dir / "REPORT.md", output_dir / "families.csv", *written])
    typer.echo(f"wrote {listed}", err=True)
