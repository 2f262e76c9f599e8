"""Commands that measure models: list, profile, compare, explain-memory.

torch, pandas and the analysis modules are imported inside the commands that need them, so that
``--help`` and ``list`` answer without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import typer

from senet_profile.cli.app import GRAMMAR, app
from senet_profile.cli.common import (
    STDOUT,
    Allocator,
    Attention,
    BatchSize,
    Budget,
    ByClass,
    ByModule,
    ByOp,
    ByStage,
    ChannelsLast,
    CompareMetrics,
    Compile,
    CrossCheck,
    Depth,
    Device,
    Dtype,
    Format,
    FpMath,
    InputSize,
    Metrics,
    Mode,
    Output,
    Processes,
    Threads,
    TraceFile,
    Wide,
    choose_format,
    emit,
    machine_file,
    progress_bar,
    setting_from_options,
    shape_text,
    warn_unused,
    working,
)
from senet_profile.cli.track import ResultsDir
from senet_profile.errors import UserInputError
from senet_profile.io import check_writable, write_atomic
from senet_profile.setting import DEFAULT_COMPARE_METRICS, parse_metrics

if TYPE_CHECKING:  # pragma: no cover
    from senet_profile.setting import Setting

Source = Annotated[
    str,
    typer.Option("--source", help="catalog | timm | torchvision: whose models to list."),
]
ListFormat = Annotated[str, typer.Option("--format", help="table | json.")]
MemoryDevice = Annotated[
    str | None,
    typer.Option("--device", help="cpu | cuda | meta (default: meta, byte-identical to cpu and faster)."),
]


def _catalog_rows(pattern: str) -> list[dict]:
    from senet_profile.api import find_in_catalog

    rows = []
    for entry in find_in_catalog(pattern):
        knobs = ", ".join(f"{k['name']}={k['default']}" for k in entry["knobs"])
        rows.append(
            {
                "model": entry["name"],
                "family": entry["family"],
                "description": entry["description"],
                "knobs (defaults)": knobs,
            }
        )
    return rows


def _print_list(rows: list[dict], *, fmt: str, title: str, caption: str) -> None:
    if fmt == "json":
        import json

        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    from senet_profile.report.tables import Layout, print_table, terminal_width

    columns = list(rows[0])
    layout = Layout(  # prose is wrapped at spaces, never cut mid-word; the table fits the terminal
        headers=columns,
        cells=[[str(row[c]) for c in columns] for row in rows],
        right=[False] * len(columns),
        prose=[c in ("description", "knobs (defaults)") for c in columns],
    )
    console = Console(width=terminal_width())
    for part in layout.fit(width=console.width, title=title, caption=caption):
        print_table(part, console, fitted=True) if isinstance(part, Table) else console.print(part)


@app.command("list")
def list_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'se_*'.")] = "*",
    source: Source = "catalog",
    fmt: ListFormat = "table",
    attention: Annotated[
        str | None,
        typer.Option(
            "--attention", help="Only models with attention of this family (se, eca, ..., or any), by family."
        ),
    ] = None,
) -> None:
    """List the models of a source: the catalog's with knobs and defaults, or timm's, torchvision's."""
    if fmt not in ("table", "json"):
        raise UserInputError(f"unknown format {fmt!r} for list; choose table or json")
    if source not in ("catalog", "timm", "torchvision"):
        raise UserInputError(f"unknown source {source!r}; choose one of catalog, timm, torchvision")
    if attention is not None:
        from senet_profile.api import attention_rows, check_family
        from senet_profile.cli.common import count_bar

        check_family(attention)
        with count_bar("building on meta") as update:
            rows, caption = attention_rows(source, pattern, attention, progress=update)
    elif source == "catalog":
        rows = _catalog_rows(pattern)
        caption = GRAMMAR
    else:
        from senet_profile.api import list_source

        rows = [{"model": f"{source}:{name}"} for name in list_source(source, pattern)]
        caption = f"Use as `senet-profile profile {source}:NAME[:KEY=VALUE,...]`."
    if not rows:
        raise UserInputError(f"no model matches {pattern!r} (source: {source})")
    _print_list(rows, fmt=fmt, title=f"senet-profile: {source} models", caption=caption)


def _check_output(fmt: str | None, output: Path | None) -> None:
    if output is not None and output != STDOUT:
        check_writable(output)
    choose_format(fmt, output)


def _check_request(setting: Setting, groups: tuple[str, ...]) -> None:
    """Refuse, before any model is built, what this machine cannot run for ``groups``."""
    setting.check_for(groups)


@app.command("profile")
def profile_command(
    models: Annotated[
        list[str], typer.Argument(help="Model arguments, e.g. se_resnet50:r=8 timm:seresnet50 (one or more).")
    ],
    input_size: InputSize = None,
    batch_size: BatchSize = 1,
    fmt: Format = None,
    output: Output = None,
    by_stage: ByStage = False,
    by_class: ByClass = False,
    by_module: ByModule = False,
    depth: Depth = None,
    by_op: ByOp = False,
    attention: Attention = None,
    crosscheck: CrossCheck = False,
    metrics: Metrics = "static",
    device: Device = None,
    mode: Mode = "infer",
    threads: Threads = 1,
    dtype: Dtype = "fp32",
    channels_last: ChannelsLast = False,
    compile: Compile = False,
    budget: Budget = None,
    allocator: Allocator = "steady",
    processes: Processes = None,
    math: FpMath = "default",
    wide: Wide = False,
) -> None:
    """Each model's parameters, MACs, activations (memory, latency), SE's share; several: one table."""
    from senet_profile import api

    _check_output(fmt, output)
    classes = api.parse_attention_classes(attention or [])
    groups = parse_metrics(metrics)
    timing = _Timing(budget=budget, threads=threads, allocator=allocator, processes=processes)
    setting = setting_from_options(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget=budget, allocator=allocator, processes=processes, batch_size=batch_size,
        input_size=input_size, math=math,
    )  # fmt: skip
    breakdown = by_module or by_op
    _check_request(setting, ("static",) if breakdown else groups)
    if breakdown:
        # The tree and the op table are static counts on the meta device: the runtime options do nothing.
        warn_unused(
            **{"--by-stage": by_stage, "--by-class": by_class, "--crosscheck": crosscheck,
               "--metrics": metrics != "static", "--device": device is not None, "--mode": mode != "infer",
               "--dtype": dtype != "fp32", "--channels-last": channels_last},
            **_idle_timing((), **timing),
        )  # fmt: skip
        _breakdown(models, by_module=by_module, by_op=by_op, depth=depth, setting=setting,
                   attention=classes, fmt=fmt, output=output, wide=wide)  # fmt: skip
        return
    warn_unused(
        **{"--depth": depth is not None, "--by-stage": by_stage and "static" not in groups},
        **_idle_timing(groups, **timing),
    )
    for model in models:  # every name checked (built on meta, cheap) before the first is measured
        api.resolve(model)
    options: dict[str, Any] = dict(
        by_stage=by_stage, by_class=by_class, crosscheck=crosscheck, attention=classes
    )
    slow = crosscheck or compile or "memory" in groups
    with (
        progress_bar(groups, setting.budget_s) as progress,
        working("measuring", when=slow and "latency" not in groups),
    ):
        frames = [
            api.profile(model, metrics=groups, setting=setting, progress=progress, **options)
            for model in models
        ]
    frame = frames[0] if len(frames) == 1 else api.side_by_side(frames)
    names = ", ".join(frame.attrs["models"])
    emit(frame, fmt=fmt, output=output, title=f"{names}, input {shape_text(frame)}", wide=wide)


class _Timing(TypedDict):
    budget: float | None
    threads: int
    allocator: str
    processes: int | None


def _idle_timing(
    groups: tuple[str, ...], *, budget: float | None, threads: int, allocator: str, processes: int | None
) -> dict[str, bool]:
    """Which timing options were given (other than their defaults) where no latency is measured."""
    given = {
        "--budget": budget is not None,
        "--threads": threads != 1,
        "--allocator": allocator != "steady",
        "--processes": processes is not None,
    }
    return {option: flag and "latency" not in groups for option, flag in given.items()}


def _breakdown(
    models: list[str],
    *,
    by_module: bool,
    by_op: bool,
    depth: int | None,
    setting: Setting,
    attention: dict[str, str],
    fmt: str | None,
    output: Path | None,
    wide: bool = False,
) -> None:
    """``profile --by-module`` / ``--by-op``: the module tree or the op table (several models: stacked)."""
    import pandas as pd

    from senet_profile import api

    if by_module and by_op:
        raise UserInputError("choose one of --by-module and --by-op")
    options: dict[str, Any] = dict(setting=setting, attention=attention)
    if by_module:
        frames = [api.by_module(m, depth=2 if depth is None else depth, **options) for m in models]
    else:
        frames = [api.by_op(m, **options) for m in models]
    frame = frames[0]
    if len(frames) > 1:
        frame = pd.concat([f.assign(model=f.attrs["models"][0]) for f in frames], ignore_index=True)
        frame = frame[["model", *frames[0].columns]]
        frame.attrs = {**frames[0].attrs, "models": [f.attrs["models"][0] for f in frames]}
        frame.attrs["notes"] = [n for f in frames for n in f.attrs["notes"]]
        frame.attrs["unknown_ops"] = {k: v for f in frames for k, v in f.attrs["unknown_ops"].items()}
        frame.attrs["uncalled_modules"] = {}
    kind = f"modules to depth {2 if depth is None else depth}" if by_module else "aten ops"
    title = f"{', '.join(frame.attrs['models'])}: {kind}, input {shape_text(frame)}"
    emit(frame, fmt=fmt, output=output, title=title, wide=wide)


def _default_groups(device: str | None, mode: str, breakdown: bool) -> tuple[str, ...]:
    """``compare``'s groups when --metrics is not given: counts, both passes' peaks and the predicted
    latency (the last left out where it cannot apply: on meta; with --by-stage/--by-class, counts only)."""
    if breakdown:
        return ("static",)
    return tuple(g for g in DEFAULT_COMPARE_METRICS if g != "predicted" or device != "meta")


def _prediction_note(results: Path | None, first_time: bool, path: Path | None, defaulted: bool) -> str:
    """What the predicted latency is worth here: the model's recorded error, where it is kept, the hint."""
    from senet_profile.history import tracking
    from senet_profile.history.locations import results_root

    error = tracking.known_prediction_error(results_root(results).runs, tracking.current_class())
    stored = f"measured now, stored in {path} and reused" if first_time else f"from {path}"
    hint = "; to measure it: --metrics latency (about a minute)" if defaulted else ""
    return f"latency_predicted: its known error: {error}; machine model {stored}{hint}"


@app.command("compare")
def compare_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50 or timm:resnet50.")],
    candidate: Annotated[str, typer.Argument(help="Candidate model argument, e.g. se_resnet50.")],
    input_size: InputSize = None,
    batch_size: BatchSize = 1,
    fmt: Format = None,
    output: Output = None,
    by_stage: ByStage = False,
    by_class: ByClass = False,
    attention: Attention = None,
    crosscheck: CrossCheck = False,
    metrics: CompareMetrics = None,
    results: ResultsDir = None,
    device: Device = None,
    mode: Mode = "infer",
    threads: Threads = 1,
    dtype: Dtype = "fp32",
    channels_last: ChannelsLast = False,
    compile: Compile = False,
    budget: Budget = None,
    allocator: Allocator = "steady",
    processes: Processes = None,
    math: FpMath = "default",
    wide: Wide = False,
    trace: TraceFile = None,
) -> None:
    """What CANDIDATE costs over BASE: each metric, the delta and the overhead in percent."""
    from senet_profile import api

    _check_output(fmt, output)
    classes = api.parse_attention_classes(attention or [])
    groups = (
        parse_metrics(metrics) if metrics is not None else _default_groups(device, mode, by_stage or by_class)
    )
    timing = _Timing(budget=budget, threads=threads, allocator=allocator, processes=processes)
    setting = setting_from_options(
        device=device, mode=mode, threads=threads, dtype=dtype, channels_last=channels_last, compile=compile,
        budget=budget, allocator=allocator, processes=processes, batch_size=batch_size,
        input_size=input_size, math=math,
    )  # fmt: skip
    _check_request(setting, groups)
    if trace is not None:
        if "latency" not in groups:
            raise UserInputError("--trace records timed forwards: give it with --metrics latency (or all)")
        check_writable(trace)
    warn_unused(**{"--by-stage": by_stage and "static" not in groups}, **_idle_timing(groups, **timing))
    machine_path = machine_file(results) if "predicted" in groups else None
    first_time = machine_path is not None and not machine_path.exists()
    slow = (crosscheck or compile or "memory" in groups or first_time) and "latency" not in groups
    label = "measuring this machine once (a few seconds), then the models" if first_time else "measuring"
    with progress_bar(groups, setting.budget_s) as progress, working(label, when=slow):
        frame = api.compare(
            base,
            candidate,
            setting=setting,
            by_stage=by_stage,
            by_class=by_class,
            crosscheck=crosscheck,
            metrics=groups,
            progress=progress,
            attention=classes,
            machine_path=machine_path,
        )
    if "predicted" in groups and setting.mode == "infer":
        frame.attrs["notes"].append(_prediction_note(results, first_time, machine_path, metrics is None))
    names = frame.attrs["models"]
    title = f"{names[0]} -> {names[1]}, input {shape_text(frame)}"
    emit(frame, fmt=fmt, output=output, title=title, wide=wide)
    if trace is not None:
        trace_forwards((base, candidate), tuple(frame.attrs["input_shape"]), trace, setting=setting)


def trace_forwards(models: tuple[str, str], shape: tuple[int, ...], path: Path, *, setting: Setting) -> None:
    """``--trace``: a Chrome/Perfetto trace of a few forwards of both models, built anew on the CPU."""
    from senet_profile import api

    built = [api.resolve(model, device="cpu") for model in models]
    with working("tracing a few forwards of each model"):
        marked = api.write_trace(
            [(b.name, b.module) for b in built], shape, path, device=setting.latency_device,
            dtype=setting.torch_dtype,
        )  # fmt: skip
    ranges = ", ".join(f"{name}: {n}" for name, n in marked.items())
    typer.echo(
        f"wrote {path}: {api.TRACE_FORWARDS} forwards of each model, attention modules as ranges ({ranges}); "
        "open it in a Chrome or Perfetto trace viewer",
        err=True,
    )


@app.command("explain-memory")
def explain_memory_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="SE model argument, e.g. se_resnet50.")],
    input_size: InputSize = None,
    batch_size: BatchSize = 8,
    mode: Mode = "train",
    device: MemoryDevice = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the Markdown report here (atomically); '-' writes to stdout."),
    ] = None,
) -> None:
    """Why CANDIDATE's peak memory differs from BASE's: the tensors live at each peak, SE's part of them."""
    from senet_profile import api

    target = None if output == STDOUT else output
    if target is not None:
        check_writable(target)
    setting = setting_from_options(device=device, mode=mode, batch_size=batch_size, input_size=input_size)
    text = api.explain_memory(base, candidate, setting=setting).to_markdown()
    if target is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(target, text)
        typer.echo(f"wrote {target}", err=True)
