"""``explain``: where an SE model's extra time goes, op class by op class, against three verdicts.

pandas, torch and the analysis modules are imported inside the command, so that ``--help`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.common import (
    STDOUT,
    BatchSize,
    Budget,
    ChannelsLast,
    Dtype,
    Format,
    FpMath,
    InputSize,
    MachineDir,
    Mode,
    RemeasureMachine,
    Repeats,
    Threads,
    TraceFile,
    choose_format,
    machine_file,
    progress_bar,
    setting_from_options,
)
from senet_profile.cli.track import ResultsDir
from senet_profile.errors import UserInputError
from senet_profile.history.locations import results_root
from senet_profile.io import check_writable, write_atomic
from senet_profile.setting import DEFAULT_REPEATS


def _shown_table(table):
    """The per-class table as a person reads it: counts, bytes and times scaled to their units, pp signed."""
    from senet_profile.report.wide import explain_header, explain_units

    empty = [c for c in table.columns if table[c].isna().all()]  # not measured (--no-measure)
    shown = table.drop(columns=empty)
    units = explain_units(shown.columns)
    names = {c: explain_header(c) for c in shown.columns}
    shown = shown.rename(columns=names)
    shown.attrs = {**table.attrs, "units": {names[c]: u for c, u in units.items()}}
    return shown


def _verdict_lines(rows: list[dict], width: int | None = None) -> list[str]:
    """One line per verdict; with ``width``, the detail wraps below the figure, indented, to fit it."""
    import textwrap

    lines = []
    for row in rows:
        unit = "pp" if row["verdict"] == "prediction error" else "%"
        value = row["overhead_pct"]
        figure = f"{value:+7.2f} {unit}" if value is not None else f"{'n/a':>7} {unit}"
        interval = f" [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]" if row["ci_low"] is not None else ""
        line = f"{row['verdict']:<24} {figure}{interval}  ({row['detail']})"
        if width is None or len(line) <= width:
            lines.append(line)
        else:
            lines += textwrap.wrap(line, width=width, subsequent_indent=" " * 36, break_on_hyphens=False)
    return lines


def render_explanation(explanation, fmt: str, *, title: str) -> str:
    """The explanation as text: table (or Markdown) with the verdict lines, or CSV/JSON records."""
    from senet_profile.report import tables as report

    rows = explanation.verdicts()
    if fmt == "json":
        return json.dumps(explanation.to_records(), indent=2) + "\n"
    if fmt == "csv":
        return explanation.to_frame().to_csv(index=False)
    lines = _verdict_lines(rows, width=None if fmt == "markdown" else report.terminal_width())
    machine = explanation.machine
    origin = machine.source or f"measured in {machine.measured_s:.1f} s"
    rule = (
        "predicted = the host and device chains op by op (device: max(MACs / rate, bytes / bandwidth), at "
        "least a least kernel time)"
        if machine.host_s
        else "predicted = max(MACs / rate, bytes / bandwidth) + a fixed cost per op"
    )
    counted = (
        "; MACs and bytes: the training pass's, forward and backward ops as traced"
        if explanation.time.mode == "train"
        else ""
    )
    caption = "\n".join(
        [
            f"Setting: {explanation.describe_setting()}; machine model {machine.key}, {origin}.",
            f"{rule}; measured = op by op, median over repeats; pp = the class's share of the overhead, "
            f"in points of the base's time{counted}.",
        ]
    )
    shown = _shown_table(explanation.time.table)
    if fmt == "markdown":
        body = report.to_markdown(shown, title=title, caption=caption)
        return body + "\n```text\n" + "\n".join(lines) + "\n```\n"
    return report.table_text(shown, title=title, caption=caption) + "\n".join(lines) + "\n"


@app.command("explain")
def explain_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="SE model argument, e.g. se_resnet50.")],
    input_size: InputSize = None,
    batch_size: BatchSize = 1,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda: where the models are timed.")] = "cpu",
    dtype: Dtype = "fp32",
    threads: Threads = 1,
    budget: Budget = None,
    repeats: Repeats = DEFAULT_REPEATS,
    math: FpMath = "default",
    mode: Mode = "infer",
    channels_last: ChannelsLast = False,
    compiled: Annotated[
        bool, typer.Option("--compiled", help="Also measure the paired overhead under torch.compile.")
    ] = False,
    machine_class: Annotated[
        str | None,
        typer.Option(
            "--machine-class",
            help="Use this machine class's stored model (e.g. a GPU's, derived) instead of this machine's.",
        ),
    ] = None,
    measure: Annotated[
        bool, typer.Option("--measure/--no-measure", help="Measure (paired and per op), or predict only.")
    ] = True,
    memory: Annotated[
        bool, typer.Option("--memory", help="Explain the extra peak memory instead (as explain-memory).")
    ] = False,
    remeasure: RemeasureMachine = False,
    results: ResultsDir = None,
    machine_dir: MachineDir = None,
    fmt: Format = None,
    output: Annotated[
        list[Path] | None,
        typer.Option("--output", help="Write here (atomically), format from the suffix; repeatable."),
    ] = None,
    trace: TraceFile = None,
) -> None:
    """Why CANDIDATE takes longer than BASE: MACs, bytes, predicted and measured time per op class."""
    from senet_profile import api

    outputs = output or []
    formats = [choose_format(fmt, path) for path in outputs] or [choose_format(fmt, None)]
    for path in [*outputs, *([trace] if trace is not None else [])]:
        check_writable(path)
    if memory:
        if len(outputs) > 1:
            raise UserInputError(f"explain --memory writes one --output, got {len(outputs)}; give one")
        setting = setting_from_options(
            device="meta" if device == "cpu" else device, mode="train", batch_size=batch_size,
            input_size=input_size,
        )  # fmt: skip
        text = api.explain_memory(base, candidate, setting=setting).to_markdown()
        _write(text, outputs[0] if outputs else None)
        return
    setting = setting_from_options(
        device=device, threads=threads, dtype=dtype, budget=budget, batch_size=batch_size,
        input_size=input_size, repeats=repeats, math=math, mode=mode, channels_last=channels_last,
    )  # fmt: skip
    stored_only = machine_class is not None
    api.check_explain_setting(setting, measure=measure, stored_only=stored_only)
    if compiled and not measure:
        raise UserInputError("--compiled measures; it cannot be combined with --no-measure")
    if machine_dir is not None and machine_dir.exists() and not machine_dir.is_dir():
        raise UserInputError(f"--machine-dir {machine_dir}: not a folder")
    if machine_class is not None and not machine_class.replace("-", "").replace("_", "").isalnum():
        raise UserInputError(f"--machine-class {machine_class!r}: letters, digits, '-' and '_' only")
    if machine_class is not None:
        path = (machine_dir or results_root(results).machine) / f"{machine_class}.json"
    elif machine_dir is not None:
        from senet_profile.history.machine import describe_machine

        path = machine_dir / f"{describe_machine().machine_class}.json"
    else:
        path = machine_file(results)
    if not stored_only:
        check_writable(path, create_folder=True)  # the machine model may be stored there: checked first
    with progress_bar(("latency",) if measure else (), setting.budget_s) as progress:
        explanation = api.explain(
            base, candidate, setting=setting, measure=measure, machine_path=path,
            remeasure_machine=remeasure, stored_machine_only=stored_only, compiled=compiled,
            progress=progress,
        )  # fmt: skip
    title = f"Where the time goes: {explanation.names[0]} -> {explanation.names[1]}"
    destinations: list[Path | None] = [*outputs] if outputs else [None]
    for path_out, chosen in zip(destinations, formats, strict=True):
        _write(render_explanation(explanation, chosen, title=title), path_out)
    if trace is not None:
        from senet_profile.cli.measure import trace_forwards

        trace_forwards((base, candidate), explanation.setting.shape, trace, setting=explanation.setting)


def _write(text: str, path: Path | None) -> None:
    if path is None or path == STDOUT:
        typer.echo(text, nl=False)
    else:
        write_atomic(path, text)
        typer.echo(f"wrote {path}", err=True)
