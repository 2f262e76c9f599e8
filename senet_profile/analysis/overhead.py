"""Why an SE model takes longer: MACs, bytes, predicted and measured time per op class, and three verdicts.

For a base model and an SE candidate on one input, each op class (``static.OP_CLASSES``: conv, linear,
normalization, elementwise, pooling, SE squeeze, SE FCs, SE gate, SE scale...) gets its MACs and bytes moved
(from the meta trace), its time as the machine model predicts it (``roofline.predict``) and its time as
measured op by op (``optime``). Three verdicts stand side by side:

- FLOPs: the MAC overhead, what a counter predicts;
- machine model: the predicted time overhead, sum of the roofline over every op;
- measured: the paired, interleaved latency overhead with its 95 % CI (``latency.measure_paired``).

Each class's share of the overhead, in points of the base's time, is given predicted and measured (op
times); their difference names the class the machine model mispredicts and by how much. The candidate's
in-model SE time share (SE ops' seconds over all ops', needing no twin) stands beside the paired overhead,
and, when measured, its SE share of a training pass (forward and backward, ``optime.measure_train_share``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import pandas as pd
import torch
from torch import nn

from senet_profile.analysis.kerneltrace import SECost, se_cost
from senet_profile.analysis.latency import PairedLatency, measure_paired
from senet_profile.analysis.optime import (
    SE_CLASS_PREFIX,
    OpTimes,
    TrainShare,
    class_overhead_pp,
    measure_op_times_paired,
    measure_train_share,
)
from senet_profile.analysis.roofline import MachineModel, Prediction, predict
from senet_profile.analysis.static import (
    OP_CLASSES,
    StaticProfile,
    check_input_shape,
    classified_events,
    in_layout,
    on_meta,
    summarize,
    training_events,
)
from senet_profile.analysis.trace import trace_ops
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting, overhead_pct, torch_dtype

COLUMNS = [
    "op_class",
    "macs_base",
    "macs_candidate",
    "bytes_base",
    "bytes_candidate",
    "predicted_s_base",
    "predicted_s_candidate",
    "measured_s_base",
    "measured_s_candidate",
    "predicted_pp",
    "measured_pp",
    "error_pp",
]


@dataclass(frozen=True)
class Side:
    """One model as explained: its static profile, predicted time and (when measured) its op times."""

    name: str
    static: StaticProfile
    prediction: Prediction
    op_times: OpTimes | None


@dataclass(frozen=True)
class TimeExplanation:
    """Both sides, the per-class table and the three verdicts (percent; None where not measured)."""

    base: Side
    candidate: Side
    table: pd.DataFrame
    flops_pct: float | None
    predicted_pct: float | None
    paired: PairedLatency | None
    train_share: TrainShare | None = None  # the candidate's SE share of a training pass, when measured
    floor_pct: float | None = None  # SE's bytes at the peak bandwidth, no dispatch, over the base's time
    launch_free_pct: float | None = None  # the machine model's overhead with no host/fixed cost per call
    se_bytes: int = 0
    peak_bandwidth: float = 0.0
    se_kernels: SECost | None = None  # on CUDA: SE's kernels, their time and bound (traced, else the model's)
    compiled: PairedLatency | None = None  # the paired overhead under torch.compile, when measured
    mode: str = "infer"  # "train": the table's MACs and bytes are the training pass's (forward, backward)
    # the machine model's element rates off the contiguous path: (broadcast, mixed layouts; 0 if unprobed)
    off_path_rates: tuple[float, float] = (0.0, 0.0)

    @property
    def measured_pct(self) -> float | None:
        """The paired overhead, or None when not measured or below the pairs an interval needs."""
        if self.paired is None or self.paired.ci_reason:
            return None
        return self.paired.overhead_pct

    @property
    def error_pp(self) -> float | None:
        """Predicted minus measured (paired) overhead, in percentage points (None where either is n/a)."""
        if self.measured_pct is None or self.predicted_pct is None:
            return None
        return self.predicted_pct - self.measured_pct

    @property
    def worst_class(self) -> tuple[str, float] | None:
        """The op class whose predicted share of the overhead is furthest from its measured share."""
        rows = self.table[self.table["op_class"] != "total"].dropna(subset=["error_pp"])
        if rows.empty:
            return None
        worst = rows.loc[rows["error_pp"].abs().idxmax()]
        return str(worst["op_class"]), float(worst["error_pp"])


def static_side(
    model: nn.Module,
    shape: tuple[int, ...],
    *,
    name: str,
    dtype: str,
    machine: MachineModel,
    mode: str = "infer",
):
    """Trace ``model`` on meta at ``dtype``: its static profile and its machine-model prediction."""
    check_input_shape(shape)
    meta = on_meta(model)
    meta = (copy.deepcopy(meta) if meta is model else meta).to(torch_dtype(dtype)).eval()
    x = torch.empty(shape, device="meta", dtype=torch_dtype(dtype))
    meta, x = in_layout(meta, x, channels_last=machine.channels_last)  # as the machine's figures were
    with torch.inference_mode(False):
        trace = trace_ops(meta, x)
    profile = summarize(meta, trace, name=name, input_shape=tuple(shape))
    if mode == "train":  # the training pass's own ops: the forward in train mode and the backward
        events = training_events(meta, shape, dtype, model_name=name, channels_last=machine.channels_last)
        return profile, predict(machine, events, mode=mode)
    return profile, predict(machine, classified_events(meta, trace), mode=mode)


def _table(base: Side, candidate: Side, *, mode: str = "infer") -> pd.DataFrame:
    """One row per op class: MACs and bytes (a forward's, or in ``train`` mode the traced training
    pass's), predicted and measured seconds, and each class's points of the overhead."""
    present = set(base.static.op_classes) | set(candidate.static.op_classes)
    rows = []
    sides = (("base", base), ("candidate", candidate))
    for op_class in [c for c in OP_CLASSES if c in present]:
        row: dict[str, object] = {"op_class": op_class}
        for label, side in sides:
            counts = side.static.op_classes.get(op_class)
            if mode == "train":  # what the predicted pass runs: forward and backward ops
                row[f"macs_{label}"] = side.prediction.macs_by_class.get(op_class, 0)
                row[f"bytes_{label}"] = side.prediction.bytes_by_class.get(op_class, 0)
            else:
                row[f"macs_{label}"] = counts.macs if counts else 0
                row[f"bytes_{label}"] = counts.bytes_moved if counts else 0
            row[f"predicted_s_{label}"] = side.prediction.by_class.get(op_class, 0.0)
            row[f"measured_s_{label}"] = (
                side.op_times.by_class.get(op_class, 0.0) if side.op_times is not None else None
            )
        predicted = {label: side.prediction.by_class.get(op_class, 0.0) for label, side in sides}
        predicted_pp = (predicted["candidate"] - predicted["base"]) / base.prediction.total_s * 100
        measured_pp = (
            class_overhead_pp(base.op_times, candidate.op_times, op_class)
            if base.op_times is not None and candidate.op_times is not None
            else None
        )
        row["predicted_pp"] = predicted_pp
        row["measured_pp"] = measured_pp
        row["error_pp"] = predicted_pp - measured_pp if measured_pp is not None else None
        rows.append(row)
    total: dict[str, object] = {"op_class": "total"}
    for column in COLUMNS[1:]:
        values = [r[column] for r in rows]
        total[column] = None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]
    return pd.DataFrame([*rows, total], columns=COLUMNS)


def explain_time(
    base: tuple[str, nn.Module],
    candidate: tuple[str, nn.Module],
    *,
    machine: MachineModel,
    latency: Setting | None,
    op_times: Setting | None,
    input_shape: tuple[int, ...] | None = None,
    progress: Callable[[int, float], None] | None = None,
    require_se: bool = True,
    mode: str = "infer",
    compiled: Setting | None = None,
) -> TimeExplanation:
    """Explain ``candidate``'s time over ``base``'s: per-class table and verdicts (measured when asked).

    The input is ``input_shape`` when given, else the timing options' batch and size (1x3x224x224 if none).
    ``require_se``: refuse a pair in which the candidate has no SE block (``explain``); a plain prediction
    of two models' times (``compare``'s ``latency_predicted``) passes False.
    """
    timing = latency or op_times or Setting()
    shape = input_shape or timing.shape
    sides = []
    for name, model in (base, candidate):
        profile, prediction = static_side(
            model, shape, name=name, dtype=machine.dtype, machine=machine, mode=mode
        )
        sides.append((name, model, profile, prediction))
    if require_se and sides[0][2].se_blocks == 0 and sides[1][2].se_blocks == 0:
        raise UserInputError(
            f"neither {base[0]} nor {candidate[0]} has an SE block: there is no SE overhead to explain"
        )
    if require_se and sides[1][2].se_blocks == 0:
        raise UserInputError(f"{candidate[0]} has no SE block; the candidate must be the SE model")
    on_cuda = op_times is not None and op_times.device == "cuda"
    traces = None
    if on_cuda:  # kernel times from torch.profiler, not host timers around synchronised ops
        from senet_profile.analysis.gpumodel import kernel_op_times

        (base_times, _), (candidate_times, traced) = (
            kernel_op_times(m, op_times) for _, m in (base, candidate)
        )
        times: tuple = (base_times, candidate_times)
        traces = traced
    else:
        times = measure_op_times_paired(base[1], candidate[1], op_times) if op_times else (None, None)
    explained = [
        Side(name, profile, prediction, timed)
        for (name, _, profile, prediction), timed in zip(sides, times, strict=True)
    ]
    paired = measure_paired(base[1], candidate[1], latency, progress=progress) if latency else None
    compiled_paired = None
    if compiled is not None:
        compiled_paired = measure_paired(base[1], candidate[1], replace(compiled, compile=True))
    train_share = measure_train_share(candidate[1], op_times) if op_times and not on_cuda else None
    b, c = explained
    free = launch_free(machine)
    predicted_free = [
        static_side(model, shape, name=name, dtype=machine.dtype, machine=free, mode=mode)[1].total_s
        for name, model in (base, candidate)
    ]
    se_bytes = c.static.total.bytes_moved_se
    if mode == "train":  # the training pass's: SE's forward and backward ops, as traced
        se_bytes = sum(_se_values(c.prediction.bytes_by_class))
    peak = max(bandwidth for _, bandwidth in machine.bandwidth)
    base_s = paired.base.median_s if paired is not None else b.prediction.total_s
    kernels = None
    if traces is not None:
        kernels = se_cost(
            traces, se_bytes=se_bytes, peak_bandwidth=peak, se_macs=c.static.total.macs_se,
            mac_rate=machine.mac_rates.get("pointwise", 0.0),
        )  # fmt: skip
    elif c.prediction.chains:
        kernels = _predicted_se_cost(c.prediction, se_bytes=se_bytes, peak=peak, machine=machine, mode=mode)
    return TimeExplanation(
        base=b,
        candidate=c,
        table=_table(b, c, mode=mode),
        flops_pct=overhead_pct(b.static.total.macs, c.static.total.macs),
        predicted_pct=overhead_pct(b.prediction.total_s, c.prediction.total_s),
        paired=paired,
        train_share=train_share,
        floor_pct=se_bytes / peak / base_s * 100 if base_s else None,
        launch_free_pct=overhead_pct(*predicted_free),
        se_bytes=se_bytes,
        peak_bandwidth=peak,
        se_kernels=kernels,
        off_path_rates=(machine.strided_elements_per_s, machine.mixed_elements_per_s),
        compiled=compiled_paired,
        mode=mode,
    )


_V = TypeVar("_V")


def _se_values(by_class: dict[str, _V]) -> list[_V]:
    """The values of ``by_class`` whose op class is one of SE's."""
    return [value for op_class, value in by_class.items() if op_class.startswith(SE_CLASS_PREFIX)]


def _predicted_se_cost(
    prediction: Prediction, *, se_bytes: int, peak: float, machine: MachineModel, mode: str
) -> SECost:
    """SE's ops as a GPU machine model runs them (no kernel trace): their count, device and host seconds,
    bytes and MACs, over the whole pass's device seconds; its ``bound`` is the model's verdict."""
    se = _se_values(prediction.chains)
    macs = sum(_se_values(prediction.macs_by_class))
    return SECost(
        kernels=sum(ops for ops, _, _ in se), kernel_s=sum(d for _, _, d in se),
        host_s=sum(h for _, h, _ in se), se_bytes=se_bytes, peak_bandwidth=peak,
        forward_kernel_s=sum(d for _, _, d in prediction.chains.values()), se_macs=macs,
        mac_rate=machine.mac_rates.get("pointwise", 0.0), predicted=True,
        whole="training pass" if mode == "train" else "forward",
    )  # fmt: skip


def launch_free(machine: MachineModel) -> MachineModel:
    """``machine`` with no cost per call: no host dispatch on a GPU (what CUDA graphs give), no fixed cost
    per op on a CPU."""
    if machine.dispatched:
        return replace(machine, host_s=dict.fromkeys(machine.host_s, 0.0))
    return replace(machine, fixed_s=dict.fromkeys(machine.fixed_s, 0.0), view_overhead_s=0.0)


def verdicts(explanation: TimeExplanation) -> list[dict]:
    """The verdict lines as records: FLOPs, machine model, measured paired, in-model SE share, error."""
    e = explanation
    rows: list[dict] = [
        {"verdict": "FLOPs predict", "overhead_pct": e.flops_pct, "ci_low": None, "ci_high": None,
         "detail": f"MACs {e.base.static.total.macs:,} -> {e.candidate.static.total.macs:,}"},
        {"verdict": "machine model predicts", "overhead_pct": e.predicted_pct, "ci_low": None,
         "ci_high": None, "detail": _uncovered(e)},
    ]  # fmt: skip
    if e.paired is not None:
        p = e.paired
        detail = f"{p.pairs} pairs, medians {p.base.median_s:.4g} s -> {p.candidate.median_s:.4g} s"
        detail += (", noisy" if p.noisy else "") + (f"; n/a: {p.ci_reason}" if p.ci_reason else "")
        rows.append(
            {"verdict": "measured (paired)", "overhead_pct": e.measured_pct, "ci_low": p.ci_low_pct,
             "ci_high": p.ci_high_pct, "detail": detail}
        )  # fmt: skip
    times = e.candidate.op_times
    if times is not None:
        low, high = times.se_share_ci
        rows.append(
            {"verdict": "in-model SE time share", "overhead_pct": times.se_share_pct, "ci_low": low,
             "ci_high": high, "detail": f"of {e.candidate.name}'s op time, {times.repeats} repeats, "
             f"no twin needed; time attribution costs {times.attribution_cost_pct:+.0f} % per forward"}
        )  # fmt: skip
    if e.train_share is not None:
        t = e.train_share
        low, high = t.share_ci
        rows.append(
            {"verdict": "SE share, training pass", "overhead_pct": t.share_pct, "ci_low": low,
             "ci_high": high,
             "detail": f"forward and backward op time, train mode, {t.repeats} repeats: forward "
             f"{t.forward_share_pct:.2f} %, backward {t.backward_share_pct:.2f} % (the backward is "
             f"{t.backward_fraction_pct:.0f} % of the pass)"}
        )  # fmt: skip
    if e.se_kernels is not None:
        k = e.se_kernels
        label, share = ("SE bound (model)", "device") if k.predicted else ("SE bound", "kernel")
        rows.append(
            {"verdict": f"{label}: {k.bound}", "overhead_pct": k.kernel_s / k.forward_kernel_s * 100,
             "ci_low": None, "ci_high": None, "detail": f"share of {share} time; {k.detail()}"}
        )  # fmt: skip
    off_path = _off_path_row(e)
    if off_path is not None:
        rows.append(off_path)
    if e.floor_pct is not None:
        rows.append(
            {"verdict": "floor (SE's bytes)", "overhead_pct": e.floor_pct, "ci_low": None, "ci_high": None,
             "detail": f"SE moves {e.se_bytes / 2**30:.3g} GiB; at peak {e.peak_bandwidth / 1e12:.3g} TB/s "
             "with no dispatch or fixed cost, over the base's time"}
        )  # fmt: skip
    if e.launch_free_pct is not None:
        rows.append(
            {"verdict": "launch-free (model)", "overhead_pct": e.launch_free_pct, "ci_low": None,
             "ci_high": None, "detail": "the machine model with no host dispatch (GPU: what CUDA graphs "
             "give) or no fixed cost per op (CPU)"}
        )  # fmt: skip
    if e.compiled is not None:
        p = e.compiled
        rows.append(
            {"verdict": "measured, torch.compile", "overhead_pct": p.overhead_pct, "ci_low": p.ci_low_pct,
             "ci_high": p.ci_high_pct, "detail": f"{p.pairs} pairs, medians {p.base.median_s:.4g} s -> "
             f"{p.candidate.median_s:.4g} s: what compilation (fusion) wins back"}
        )  # fmt: skip
    if e.paired is not None and e.error_pp is None:
        rows.append(
            {"verdict": "prediction error", "overhead_pct": None, "ci_low": None, "ci_high": None,
             "detail": f"n/a: no measured overhead to compare with ({e.paired.ci_reason or 'no prediction'})"}
        )  # fmt: skip
    if e.error_pp is not None:
        worst = e.worst_class
        where = f"; most mispredicted class: {worst[0]} ({worst[1]:+.2f} pp)" if worst else ""
        rows.append(
            {"verdict": "prediction error", "overhead_pct": e.error_pp, "ci_low": None, "ci_high": None,
             "detail": f"machine model minus measured, in points{where}"}
        )  # fmt: skip
    return rows


def _off_path_row(explanation: TimeExplanation) -> dict | None:
    """The verdict on elementwise ops the machine model prices off the contiguous path (an operand
    broadcast over the map, or operands in mixed layouts), where it prices any: the time they take beyond
    streaming their bytes, the candidate's less the base's, in points of the base's predicted time."""
    base, candidate = explanation.base.prediction, explanation.candidate.prediction
    if not candidate.off_path and not base.off_path:
        return None
    beyond = sum(v[2] for v in candidate.off_path.values()) - sum(v[2] for v in base.off_path.values())
    sides = ((explanation.base.name, base), (explanation.candidate.name, candidate))
    counts = "; ".join(
        f"{name}: "
        + ", ".join(f"{n} {kind} ({s * 1e3:.3g} ms)" for kind, (n, s, _) in sorted(p.off_path.items()))
        for name, p in sides
        if p.off_path
    )
    strided, mixed = explanation.off_path_rates
    rates = f"broadcast at {strided / 1e9:.3g} Gelem/s" + (
        f", mixed layouts at {mixed / 1e9:.3g} Gelem/s"
        if mixed
        else ", mixed layouts at the broadcast rate (not probed: a lower bound)"
    )
    return {
        "verdict": "off the contiguous path (model)",
        "overhead_pct": beyond / base.total_s * 100 if base.total_s else None,
        "ci_low": None, "ci_high": None,
        "detail": f"time beyond streaming their bytes: elementwise ops that broadcast an operand or mix "
        f"channels-first and channels-last index each element instead: {counts}; {rates}",
    }  # fmt: skip


def _uncovered(explanation: TimeExplanation) -> str:
    gaps = {**explanation.base.prediction.uncovered, **explanation.candidate.prediction.uncovered}
    if not gaps:
        return "every op covered by a rule"
    listed = ", ".join(f"{op} x{n}" for op, n in sorted(gaps.items()))
    return f"NOT PREDICTED (no rule; left out of the sum, not taken as 0 s): {listed}"
