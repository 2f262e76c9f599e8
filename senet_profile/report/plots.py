"""Plots (matplotlib, PNG and SVG) of what SE costs: per stage, against batch size, FLOPs against time.

Every plot has a title, axes with units, and a caption naming the machine and the versions its figures came
from. Plots draw only what was measured: static plots from the built models, timing plots from run records.
A timing figure from fewer than ``MIN_CI_SAMPLES`` pairs (or recorded without an interval) is drawn as a
hollow marker with no error bar and labelled so: its point is a measurement, but no interval is claimed.
Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot, no global backend state).
"""

from __future__ import annotations

import io
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, SupportsInt, cast

import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from senet_profile import api
from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.errors import UserInputError
from senet_profile.history.machine import describe_machine
from senet_profile.io import check_writable, write_atomic

FORMATS = ("png", "svg")
HISTORY_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
MAX_RUN_LABELS = 60  # more runs than this: the history plot labels every n-th run


def caption_for(record: dict | None) -> str:
    """Machine and versions of a run record (or of this machine, for static plots)."""
    machine = record["machine"] if record else describe_machine().as_dict()
    versions = machine["versions"]
    where = f"{machine['cpu']}, {machine['cores']} cores" + (
        f", {machine['gpu']}" if machine.get("gpu") else ""
    )
    when = f"; run {record['time']} at commit {record['commit']}" if record else ""
    return (
        f"{where}; Python {machine['python']}, torch {versions['torch']}, "
        f"torchvision {versions['torchvision']}, senet-profile {versions['senet-profile']}{when}"
    )


def check_destination(folder: Path, stem: str) -> None:
    """Refuse, before any drawing, a folder or plot file that cannot be written."""
    for fmt in FORMATS:
        check_writable(folder / f"{stem}.{fmt}", create_folder=True)


def check_pair(pair: str) -> None:
    """Refuse a pair that is not ``BASE -> CANDIDATE`` of two catalog arguments."""
    parts = [part.strip() for part in pair.split("->")]
    if len(parts) != 2 or not all(parts):
        raise UserInputError(f"a pair is 'BASE -> CANDIDATE', e.g. 'resnet50 -> se_resnet50'; got {pair!r}")
    for part in parts:
        api.resolve(part)  # an unknown model is refused here, before anything is drawn


def save(figure: Figure, folder: Path, stem: str) -> list[Path]:
    """Write ``figure`` as PNG and SVG under ``folder`` (created if missing), each atomically."""
    check_destination(folder, stem)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.{fmt}" for fmt in FORMATS]
    for path in paths:
        buffer = io.BytesIO()
        with rc_context({"svg.hashsalt": "senet-profile"}):  # stable SVG ids: same plot, same bytes
            figure.savefig(
                buffer,
                format=path.suffix.lstrip("."),
                dpi=120,
                bbox_inches="tight",
                metadata={"Date": None} if path.suffix == ".svg" else None,
            )
        write_atomic(path, buffer.getvalue())
    return paths


def _captioned(figure: Figure, caption: str) -> None:
    figure.text(0.01, -0.02, caption, ha="left", va="top", fontsize=7, wrap=True)


def stage_overhead_figure(base: str, candidate: str) -> Figure:
    """Bars: SE's parameter and MAC overhead in each stage of ``candidate`` over ``base`` (percent)."""
    frame = api.compare(base, candidate, by_stage=True)
    staged = frame[(frame["scope"] != "model") & frame["metric"].isin(["params", "macs"])]
    table = staged.pivot(index="scope", columns="metric", values="overhead_pct").astype(float).fillna(0.0)
    stages = [s for s in dict.fromkeys(staged["scope"]) if s in table.index]
    table = table.loc[stages]
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    axes = figure.subplots(1, 2)  # each on its own axis: MAC overheads are a hundred times smaller
    positions = list(range(len(stages)))
    for axis, metric, label, colour in zip(
        axes, ("params", "macs"), ("parameters", "MACs"), ("tab:blue", "tab:orange"), strict=True
    ):
        axis.bar(positions, table[metric], width=0.6, color=colour)
        axis.set_xticks(positions, stages, rotation=30)
        axis.set_xlabel("stage")
        axis.set_ylabel("overhead over the stage without SE (%)")
        axis.set_title(f"SE's {label}")
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"SE cost per stage: {candidate} over {base} (1x3x224x224)")
    _captioned(figure, caption_for(None))
    return figure


def has_interval(low: object, high: object, samples: object) -> bool:
    """Whether a timing figure's interval may be drawn: both ends known, from MIN_CI_SAMPLES samples up."""
    known = not (pd.isna(low) or pd.isna(high) or pd.isna(samples))
    return known and int(cast(SupportsInt, samples)) >= MIN_CI_SAMPLES


def _no_interval_label(samples: object) -> str:
    count = "?" if pd.isna(samples) else f"{int(cast(SupportsInt, samples))}"
    return f"{count} pairs: no CI (fewer than {MIN_CI_SAMPLES})"


def _points(
    axis: Axes,
    x: pd.Series,
    y: pd.Series,
    low: pd.Series,
    high: pd.Series,
    samples: pd.Series,
    *,
    label: str,
    hollow_labelled: bool = True,
    **style: Any,  # matplotlib's Line2D keywords (marker, color, ...), passed through
) -> None:
    """Points with their CI as error bars; those without an interval hollow, without bars, labelled.

    With ``hollow_labelled`` False the hollow points share the series' legend entry (one entry a series).
    """
    drawn = [has_interval(lo, hi, n) for lo, hi, n in zip(low, high, samples, strict=True)]
    mask = pd.Series(drawn, index=y.index)
    if mask.any():
        errors = [(y - low)[mask].astype(float), (high - y)[mask].astype(float)]
        axis.errorbar(x[mask], y[mask], yerr=errors, capsize=4, label=label, **style)
    if (~mask).any():
        counts = ", ".join(dict.fromkeys(_no_interval_label(n) for n in samples[~mask]))
        hollow = f"{label} ({counts})" if hollow_labelled else (None if mask.any() else label)
        axis.plot(x[~mask], y[~mask], ls="none", mfc="none", label=hollow or "_nolegend_", **style)


def _latency_figures(record: dict) -> pd.DataFrame:
    rows = [f for f in record["figures"] if f["metric"] == "latency_overhead"]
    if not rows:
        raise UserInputError("the run record has no latency figures to plot")
    frame = pd.DataFrame(rows)
    return frame if "samples" in frame.columns else frame.assign(samples=None)


def batch_figure(record: dict, pair: str) -> Figure:
    """Latency overhead (with its 95 % CI) against batch size, for one pair of a run record."""
    frame = _latency_figures(record)
    chosen = frame[(frame["model"] == pair) & (frame["mode"] == "infer")].sort_values("batch_size")
    if chosen.empty:
        raise UserInputError(f"the run record has no inference latency figures for {pair!r}")
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    _points(
        axis, chosen["batch_size"], chosen["value"], chosen["ci_low"], chosen["ci_high"], chosen["samples"],
        label=pair, marker="o", color="C0",
    )  # fmt: skip
    axis.set_xscale("log", base=2)
    axis.set_xticks(list(chosen["batch_size"]), [str(b) for b in chosen["batch_size"]])
    axis.set_xlabel("batch size (images)")
    axis.set_ylabel("SE latency overhead (%)")
    setting = chosen["setting"].iloc[0]
    where = f"{setting.split(' b')[0]}, {setting.split(' ', 3)[-1]}"
    axis.set_title(
        f"SE latency overhead against batch size ({where}; median of pair ratios, 95 % CI)", fontsize=10
    )
    axis.axhline(0, color="grey", lw=0.8)
    axis.grid(alpha=0.3)
    axis.legend()
    _captioned(figure, caption_for(record))
    return figure


def _mac_overhead(record: dict, pair: str) -> float:
    base, candidate = (name.strip() for name in pair.split("->"))
    macs = {f["model"]: f["value"] for f in record["figures"] if f["metric"] == "macs"}
    if base not in macs or candidate not in macs:
        raise UserInputError(f"the run record has no MAC counts for both models of {pair!r}")
    return (macs[candidate] - macs[base]) / macs[base] * 100


def _known(value: object) -> bool:
    return value is not None and not pd.isna(value)


def flops_vs_latency_figure(record: dict) -> Figure:
    """Each timed pair: predicted overhead (x; FLOPs circles, machine-model squares) against measured (y)."""
    frame = _latency_figures(record)
    figure = Figure(figsize=(8, 5))
    axis = figure.subplots()
    extent = [0.0]
    for index, (_, row) in enumerate(frame.iterrows()):
        flops = row.get("flops_pct")
        flops = flops if _known(flops) else _mac_overhead(record, row["model"])
        one = frame.loc[[row.name]]
        label = f"{row['model']}, {row['mode']} b{row['batch_size']}"
        predictions = [(flops, "o", "FLOPs")]
        if _known(row.get("predicted_pct")):
            predictions.append((row["predicted_pct"], "s", "machine model"))
        for x, marker, source in predictions:
            _points(
                axis, pd.Series([x], index=one.index), one["value"], one["ci_low"], one["ci_high"],
                one["samples"], label=f"{label}: {source}", marker=marker, color=f"C{index % 10}",
            )  # fmt: skip
            extent.append(float(x))
        extent.append(float(row["ci_high"]) if _known(row.get("ci_high")) else float(row["value"]))
    right = max(extent) * 1.1 or 1.0
    axis.plot([0, right], [0, right], color="grey", lw=0.8, ls="--", label="predicted = measured")
    axis.set_xlim(0, right)
    axis.axhline(0, color="grey", lw=0.5)
    axis.set_xlabel("predicted SE overhead (%): circles from FLOPs, squares from the machine model")
    axis.set_ylabel("measured SE latency overhead (%)")
    axis.set_title("Predicted vs measured SE overhead (median of pair ratios, 95 % CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _captioned(figure, caption_for(record))
    return figure


def history_figure(history: pd.DataFrame, title: str, shifts: pd.DataFrame | None = None) -> Figure:
    """Overhead of each pair and setting across recorded runs, with 95 % CIs; shifts as dashed lines.

    Each run on the x axis is labelled with its date (UTC) and short commit (``+``: uncommitted changes).
    """
    if history.empty:
        raise UserInputError("no recorded latency overhead to plot")
    figure = Figure(figsize=(9, 5.5))
    axis = figure.subplots()
    figure.subplots_adjust(bottom=0.3)  # room for the runs' labels above the caption
    runs = history.drop_duplicates("time").sort_values("time", kind="stable")
    order = {time: index for index, time in enumerate(runs["time"])}
    # tab20 is a ListedColormap: its colors are a tuple of RGB tuples (the registry is typed Colormap)
    colours = cast(tuple[tuple[float, float, float], ...], cast(ListedColormap, colormaps["tab20"]).colors)
    series = history.groupby(["pair", "setting"], sort=False)
    for index, ((pair, setting), points) in enumerate(series):
        _points(
            axis, points["time"].map(order), points["overhead_pct"], points["ci_low"], points["ci_high"],
            points["samples"], label=f"{pair} ({setting})", hollow_labelled=False,
            marker=HISTORY_MARKERS[index % len(HISTORY_MARKERS)], color=colours[index % len(colours)],
        )  # fmt: skip
        _draw_shifts(axis, shifts, pair, setting, order, colours[index % len(colours)])
    step = math.ceil(len(order) / MAX_RUN_LABELS)  # each run labelled, up to MAX_RUN_LABELS runs
    ticks = list(range(0, len(order), step))
    labels = [run_label(time, commit) for time, commit in zip(runs["time"], runs["commit"], strict=True)]
    axis.set_xticks(ticks, [labels[tick] for tick in ticks], rotation=90, fontsize=6, family="monospace")
    shown = "each run" if step == 1 else f"one run in {step}"
    axis.set_xlabel(f"recorded run, oldest first ({shown}: date UTC, commit; + uncommitted changes)")
    axis.set_ylabel("SE latency overhead (%), 95 % CI")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    _capped_legend(axis, [f"{pair} ({setting})" for pair, setting in series.groups])
    machines = ", ".join(sorted(history["machine_class"].unique()))
    _captioned(figure, f"machine class {machines}; {len(order)} runs, {labels[0]} to {labels[-1]}")
    return figure


MAX_LEGEND_SERIES = 12


def _capped_legend(axis: Axes, order: list[str]) -> None:
    """At most MAX_LEGEND_SERIES series in the legend (in ``order``), then one line for the rest, and one
    for what hollow points mean."""
    from matplotlib.lines import Line2D

    found = dict(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    labels = [label for label in order if label in found]
    handles = [found[label] for label in labels]
    if len(handles) > MAX_LEGEND_SERIES:
        rest = len(handles) - MAX_LEGEND_SERIES + 1
        handles, labels = handles[: MAX_LEGEND_SERIES - 1], labels[: MAX_LEGEND_SERIES - 1]
        handles.append(Line2D([], [], ls="none"))
        labels.append(f"... {rest} more series (`senet-profile history PAIR` shows one pair)")
    handles.append(Line2D([], [], ls="none", marker="o", mfc="none", color="grey"))
    labels.append(f"hollow: fewer than {MIN_CI_SAMPLES} pairs, no CI")
    axis.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def short_commit(commit: str) -> str:
    """A commit as the history plot shows it: 7 hex digits, ``+`` when the tree had uncommitted changes."""
    sha, dirty, _ = commit.partition("-dirty")
    return (sha[:7] if re.fullmatch(r"[0-9a-f]{7,40}", sha) else sha) + ("+" if dirty else "")


def run_label(time: str, commit: str) -> str:
    """A run's tick label: ``YYYY-MM-DD HH:MM`` (UTC) and its short commit; an unparsable time as written."""
    try:
        moment = datetime.fromisoformat(time)
    except ValueError:
        when = time
    else:
        when = (moment.astimezone(timezone.utc) if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")
    return f"{when} {short_commit(commit)}"


def _draw_shifts(axis, shifts: pd.DataFrame | None, pair: str, setting: str, order: dict, colour) -> None:
    """A dashed line before each run where the overhead shifted, labelled with the shift and commit."""
    if shifts is None or shifts.empty:
        return
    mine = shifts[(shifts["pair"] == pair) & (shifts["setting"] == setting)]
    for shift in mine.itertuples(index=False):
        x = order[shift.time] - 0.5
        axis.axvline(x, color=colour, ls="--", lw=1)
        label = f"shift {shift.shift_pp:+.1f} pp at {short_commit(shift.commit)}"
        axis.annotate(
            label,
            (x, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=colour,
        )
