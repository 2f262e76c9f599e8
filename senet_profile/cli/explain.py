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
    BatchSize,
    Budget,
    Device,
    Dtype,
    Format,
    InputSize,
    Threads,
    choose_format,
)
from senet_profile.cli.track import ResultsDir
from senet_profile.errors import UserInputError
from senet_profile.history.locations import results_root
from senet_profile.io import check_writable, write_atomic

MS_COLUMNS = ("predicted_s_base", "predicted_s_candidate", "measured_s_base", "measured_s_candidate")


def _shown_table(table):
    """The per-class table as a person reads it: times in milliseconds, points with two decimals."""
    import pandas as pd

    shown = table.copy().astype(object)
    for column in MS_COLUMNS:
        shown[column] = [None if pd.isna(v) else round(v * 1e3, 3) for v in table[column]]
    shown = shown.rename(columns={c: c.replace("_s_", "_ms_") for c in MS_COLUMNS})
    for column in ("predicted_pp", "measured_pp", "error_pp"):
        shown[column] = [None if pd.isna(v) else f"{v:+.2f}" for v in table[column]]
    return shown


def _verdict_lines(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        unit = "pp" if row["verdict"] == "prediction error" else "%"
        interval = f" [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]" if row["ci_low"] is not None else ""
        lines.append(f"{row['verdict']:<24} {row['overhead_pct']:+7.2f} {unit}{interval}  ({row['detail']})")
    return lines


def _op_time_summary(times) -> dict:
    """Seconds of a side's op-timed forward: ops' sum, wall, bare wall, what no op holds, attribution cost."""
    return {
        "ops_s": times.ops_s, "wall_s": times.wall_s, "bare_wall_s": times.bare_wall_s,
        "unattributed_s": times.unattributed_s, "attribution_cost_pct": times.attribution_cost_pct,
        "se_share_pct": times.se_share_pct, "se_share_ci": list(times.se_share_ci), "repeats": times.repeats,
    }  # fmt: skip


def render_explanation(explanation, fmt: str, *, title: str, machine, setting: str) -> str:
    """The explanation as text: table (or Markdown) with the verdict lines, or CSV/JSON records."""
    import pandas as pd

    from senet_profile.analysis.overhead import verdicts
    from senet_profile.report import tables as report

    rows = verdicts(explanation)
    sides = (explanation.base, explanation.candidate)
    if fmt == "json":
        payload = {
            "base": explanation.base.name,
            "candidate": explanation.candidate.name,
            "setting": setting,
            "machine_model": machine.key,
            "op_classes": json.loads(report.to_json(explanation.table)),
            "verdicts": rows,
            "op_times": {side.name: _op_time_summary(side.op_times) for side in sides if side.op_times},
            "paired": None if explanation.paired is None else {
                "overhead_pct": explanation.paired.overhead_pct, "ci_low": explanation.paired.ci_low_pct,
                "ci_high": explanation.paired.ci_high_pct, "pairs": explanation.paired.pairs,
                "base_median_s": explanation.paired.base.median_s,
                "candidate_median_s": explanation.paired.candidate.median_s,
            },
        }  # fmt: skip
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "csv":
        return pd.concat([explanation.table, pd.DataFrame(rows)], ignore_index=True).to_csv(index=False)
    lines = _verdict_lines(rows)
    caption = "\n".join(
        [
            f"Setting: {setting}; machine model {machine.key}, measured in {machine.measured_s:.1f} s.",
            "predicted = max(MACs / rate, bytes / bandwidth) + a fixed cost per op; measured = op by op, "
            "median over repeats; pp = the class's share of the overhead, in points of the base's time.",
        ]
    )
    shown = _shown_table(explanation.table)
    if fmt == "markdown":
        body = report.to_markdown(shown, title=title, caption=caption)
        return body + "\n```text\n" + "\n".join(lines) + "\n```\n"
    return report.table_text(shown, title=title, caption=caption) + "\n".join(lines) + "\n"


@app.command("explain")
def explain_command(
    base: Annotated[str, typer.Argument(help="Baseline model argument, e.g. resnet50.")],
    candidate: Annotated[str, typer.Argument(help="SE model argument, e.g. se_resnet50.")],
    input_size: InputSize = "224",
    batch_size: BatchSize = 1,
    device: Device = "cpu",
    dtype: Dtype = "fp32",
    threads: Threads = 1,
    budget: Budget = 48.0,
    repeats: Annotated[int, typer.Option("--repeats", help="Op-timed forward passes per model.")] = 20,
    measure: Annotated[
        bool, typer.Option("--measure/--no-measure", help="Measure (paired and per op), or predict only.")
    ] = True,
    memory: Annotated[
        bool, typer.Option("--memory", help="Explain the extra peak memory instead (as explain-memory).")
    ] = False,
    remeasure: Annotated[
        bool, typer.Option("--remeasure-machine", help="Measure the machine model again, even if stored.")
    ] = False,
    results: ResultsDir = None,
    machine_dir: Annotated[
        Path | None,
        typer.Option(
            "--machine-dir",
            help="Folder of machine models, one file per machine class (default: RESULTS/machine).",
        ),
    ] = None,
    fmt: Format = None,
    output: Annotated[
        list[Path] | None,
        typer.Option("--output", help="Write here (atomically), format from the suffix; repeatable."),
    ] = None,
) -> None:
    """Why CANDIDATE takes longer than BASE: MACs, bytes, predicted and measured time per op class."""
    if memory:
        from senet_profile.cli.measure import explain_memory_command

        if output and len(output) > 1:
            raise UserInputError(f"explain --memory writes one --output, got {len(output)}; give one")

        explain_memory_command(
            base, candidate, input_size=input_size, batch_size=batch_size, mode="train",
            device="meta" if device == "cpu" else device, output=output[0] if output else None,
        )  # fmt: skip
        return
    outputs = output or []
    formats = [choose_format(fmt, path) for path in outputs] or [choose_format(fmt, None)]
    for path in outputs:
        check_writable(path)
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"explain times models: use --device cpu or cuda, not {device!r}")
    from senet_profile import api
    from senet_profile.analysis import roofline
    from senet_profile.analysis.metrics import RuntimeOptions
    from senet_profile.analysis.optime import OpTimeOptions
    from senet_profile.analysis.overhead import explain_time
    from senet_profile.history.machine import describe_machine

    size = api.parse_input_size(input_size)
    workload = api.Workload(batch_size, size)
    runtime = RuntimeOptions(device=device, threads=threads, dtype=dtype, budget_s=budget)
    runtime.check_for(("latency",))  # fp16 on the CPU, no CUDA device: refused before the machine model
    latency = runtime.latency(batch_size=workload.batch_size, input_size=size) if measure else None
    op_times = OpTimeOptions(
        device=device, dtype=dtype, threads=threads, batch_size=batch_size, input_size=size, repeats=repeats
    )
    from senet_profile.catalog.registry import get_model

    models = [api.resolve_model(name) for name in (base, candidate)]
    for name in (base, candidate):
        api.check_runs(name, workload)  # an input too small for a model: refused before anything is measured
    path = (machine_dir or results_root(results).machine) / f"{describe_machine().machine_class}.json"
    check_writable(path, create_folder=True)
    roofline.load(path, roofline.setting_key(device, dtype, threads))  # a corrupt file: refused now
    if measure:  # timed models are built on the CPU with weights; the timers move copies to the device
        models = [
            (name, get_model(arg, device="cpu"))
            for (name, _), arg in zip(models, (base, candidate), strict=True)
        ]
    machine = roofline.load_or_measure(path, device=device, dtype=dtype, threads=threads, remeasure=remeasure)
    explanation = explain_time(
        models[0],
        models[1],
        machine=machine,
        latency=latency,
        op_times=op_times if measure else None,
        input_shape=workload.shape,
    )
    setting = f"{device}, infer, batch {batch_size}, {dtype}, threads={threads}, input {size[0]}x{size[1]}"
    title = f"Where the time goes: {models[0][0]} -> {models[1][0]}"
    for path, chosen in zip(outputs or [None], formats, strict=True):
        text = render_explanation(explanation, chosen, title=title, machine=machine, setting=setting)
        if path is None:
            typer.echo(text, nl=False)
        else:
            write_atomic(path, text)
            typer.echo(f"wrote {path}", err=True)
