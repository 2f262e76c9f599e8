"""Commands that measure models: list, profile, compare, explain-memory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from senet_profile import api
from senet_profile.analysis import explain
from senet_profile.analysis.metrics import RuntimeOptions, memory_profile, parse_metrics
from senet_profile.catalog.registry import get_entry, get_model, list_models
from senet_profile.cli.app import GRAMMAR, app
from senet_profile.cli.common import (
    Allocator,
    BatchSize,
    Budget,
    ByClass,
    ByStage,
    ChannelsLast,
    Compile,
    CrossCheck,
    Device,
    Dtype,
    Format,
    InputSize,
    Metrics,
    Mode,
    Output,
    Threads,
    choose_format,
    emit,
    progress_bar,
    shape_text,
)
from senet_profile.errors import UserInputError
from senet_profile.io import check_writable, write_atomic
from senet_profile.report import tables as report


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
    by_class: ByClass = False,
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
    choose_format(fmt, output)
    if output is not None:
        check_writable(output)
    runtime = RuntimeOptions(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget_s=budget, allocator=allocator,
    )  # fmt: skip
    groups = parse_metrics(metrics)
    with progress_bar(groups, budget):
        frame = api.profile(
            model,
            batch_size=batch_size,
            input_size=api.parse_input_size(input_size),
            by_stage=by_stage,
            by_class=by_class,
            crosscheck=crosscheck,
            metrics=groups,
            runtime=runtime,
        )
    emit(frame, fmt=fmt, output=output, title=f"{frame.attrs['models'][0]}, input {shape_text(frame)}")


@app.command("compare")
def compare_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="Candidate model argument, e.g. se_resnet50.")],
    input_size: InputSize = "224",
    batch_size: BatchSize = 1,
    fmt: Format = None,
    output: Output = None,
    by_stage: ByStage = False,
    by_class: ByClass = False,
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
    choose_format(fmt, output)
    if output is not None:
        check_writable(output)
    runtime = RuntimeOptions(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget_s=budget, allocator=allocator,
    )  # fmt: skip
    groups = parse_metrics(metrics)
    with progress_bar(groups, budget) as progress:
        frame = api.compare(
            base,
            candidate,
            batch_size=batch_size,
            input_size=api.parse_input_size(input_size),
            by_stage=by_stage,
            by_class=by_class,
            crosscheck=crosscheck,
            metrics=groups,
            runtime=runtime,
            progress=progress,
        )
    names = frame.attrs["models"]
    emit(frame, fmt=fmt, output=output, title=f"{names[0]} -> {names[1]}, input {shape_text(frame)}")


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
