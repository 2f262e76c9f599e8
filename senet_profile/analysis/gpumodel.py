"""A GPU machine model derived from recorded figures: probes' bandwidths and kernel traces of a base model.

Without a GPU at hand, a model for one is derived from what was recorded on it (``derive``):

- bandwidth by working set: the streaming-``add`` probes of ``measure_machine`` as recorded on the GPU
  (``gpu_check.json``'s ``machine_model.bandwidth``);
- per MAC kind (``dense``, ``pointwise``, ``gemm``, ``matvec``...): the rate the *base* model's own ops of
  that kind reached in a kernel trace at a large batch (their MACs, counted from the built model, over their
  kernel seconds); per family without MACs (elementwise, reduction, pooling, normalization): the fraction of
  the probed bandwidth its ops reached. A family the base model lacks takes ``FALLBACK``'s figure;
- per family, the least device time of one op: the median kernel seconds of the base model's ops of that
  family at batch 1 (where every kernel is small);
- per family, the host time to dispatch one op: the median host seconds between one op's start and the next
  one's in the batch-1 trace, shrunk by the profiler's inflation (the unprofiled wall time of that forward
  over its profiled one: at batch 1 the forward is host-bound, so its wall time is the host chain).

From the SE model's large-batch trace (``calibrate_classes``): the element rate of elementwise ops off the
contiguous path (its broadcast scale: ``fit_access``), the reductions' efficiency by contiguous reduced run
(its squeezes over large maps), then per SE op class what its forward kernels still need over that.

Otherwise only the base model (no SE) is used, so what SE costs is predicted, not fitted; the op counts,
MACs and bytes of both models come from the built models (meta trace). Traced ops are matched to the meta
trace's ops one to one, in order (views left out on both sides); a mismatch is refused.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace

import torch
from torch import nn

from senet_profile.analysis import kerneltrace
from senet_profile.analysis.kerneltrace import TracedForward, TracedOp
from senet_profile.analysis.roofline import (
    MachineModel,
    device_time,
    family,
    host_rule,
    is_free,
    predict,
)
from senet_profile.analysis.static import classified_events, in_layout, on_meta, training_events
from senet_profile.analysis.trace import OpEvent, trace_ops
from senet_profile.errors import UserInputError
from senet_profile.setting import torch_dtype

STREAMED = ("elementwise", "transcendental", "reduction", "pooling", "normalization", "data")
FALLBACK = {"transcendental": "elementwise", "data": "elementwise", "matvec": "pointwise"}


@dataclass(frozen=True)
class Matched:
    """A meta-traced op of the built model beside the same op in a kernel trace."""

    event: OpEvent
    op_class: str
    traced: TracedOp  # averaged over the forwards
    index: int = -1  # its place among each forward's top-level ops


def meta_events(
    model: nn.Module, shape: tuple[int, ...], dtype: str, *, channels_last: bool = False
) -> list[tuple[OpEvent, str]]:
    """The ops of one forward of ``model`` at ``shape`` and ``dtype`` (meta trace, channels-last if asked),
    with their op class."""
    meta = on_meta(model).to(torch_dtype(dtype)).eval()
    meta, x = in_layout(
        meta, torch.empty(shape, device="meta", dtype=torch_dtype(dtype)), channels_last=channels_last
    )
    with torch.inference_mode(False):
        trace = trace_ops(meta, x)
    return classified_events(meta, trace)


def match(events: list[tuple[OpEvent, str]], traced: TracedForward) -> list[Matched]:
    """Pair the non-view meta ops with the traced ops that did work, in order (averaged over forwards)."""
    ops = [i for i, op in enumerate(traced.ops) if op.family != "view"]
    real = [(e, c) for e, c in events if not is_free(e)]
    if len(ops) != len(real):
        raise UserInputError(
            f"the trace has {len(ops)} ops besides views, the built model {len(real)}: not the same network"
        )
    matched = []
    for (event, op_class), index in zip(real, ops, strict=True):
        op = traced.mean_op(index)
        mac = event.category == "mac"
        if (op.family == "mac") != mac:
            raise UserInputError(
                f"trace op {op.name} does not match the model's {event.op}: not the same order"
            )
        matched.append(Matched(event, op_class, op, index))
    return matched


def fit_rates(matched: list[Matched], bandwidth: MachineModel) -> tuple[dict[str, float], dict[str, float]]:
    """MAC rates per kind and streaming efficiencies per family reached by the matched ops."""
    macs: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    ideal: dict[str, float] = defaultdict(float)  # seconds at the probed bandwidth
    for m in matched:
        rule = family(m.event)
        if m.event.category == "mac" and rule != "matvec":
            macs[rule] += m.event.macs
            seconds[rule] += m.traced.device_s
        elif m.event.bytes_moved:
            ideal[rule] += m.event.bytes_moved / bandwidth.bandwidth_at(m.event.bytes_moved)
            seconds[rule] += m.traced.device_s
    rates = {kind: macs[kind] / seconds[kind] for kind in macs if seconds[kind] > 0}
    efficiency = {name: ideal[name] / seconds[name] for name in ideal if seconds[name] > 0}
    return rates, efficiency


def fit_dispatch(matched: list[Matched], scale: float) -> tuple[dict[str, float], dict[str, float]]:
    """Host seconds per op (by ``host_rule``) and least device seconds per op (by family), medians at a
    small batch."""
    host: dict[str, list[float]] = defaultdict(list)
    device: dict[str, list[float]] = defaultdict(list)
    for m in matched:
        host[host_rule(m.event)].append(m.traced.host_s * scale)
        device[family(m.event)].append(m.traced.device_s)
    return (
        {name: statistics.median(values) for name, values in host.items()},
        {name: statistics.median(values) for name, values in device.items()},
    )


def derive(
    *,
    base: nn.Module,
    probes: MachineModel,
    large: TracedForward,
    large_shape: tuple[int, ...],
    small: TracedForward,
    small_shape: tuple[int, ...],
    small_wall_s: float,
    dtype: str,
    channels_last: bool,
    source: str,
) -> MachineModel:
    """A GPU machine model from a base model's kernel traces (large and small batch) and probed bandwidths.

    ``small_wall_s`` is the unprofiled wall time of the small-batch forward (host-bound); the small trace
    is fp32, and its host figures serve every dtype.
    """
    large_matched = match(meta_events(base, large_shape, dtype, channels_last=channels_last), large)
    small_matched = match(meta_events(base, small_shape, "fp32"), small)
    rates, efficiency = fit_rates(large_matched, probes)
    small_rates, small_efficiency = fit_rates(small_matched, probes)
    for name, value in small_efficiency.items():  # a family only the small batch has (matvec at batch 1)
        efficiency.setdefault(name, value)
    for name, value in small_rates.items():
        rates.setdefault(name, value)
    for name, other in FALLBACK.items():
        if name in rates or name in efficiency:
            continue
        if other in efficiency:
            efficiency[name] = efficiency[other]
        elif other in rates:
            rates[name] = rates[other]
    matvec = [m for m in large_matched + small_matched if family(m.event) == "matvec"]
    if matvec:
        ideal = sum(m.event.bytes_moved / probes.bandwidth_at(m.event.bytes_moved) for m in matvec)
        efficiency["matvec"] = ideal / sum(m.traced.device_s for m in matvec)
    scale = host_scale(small, small_wall_s)
    host, least = fit_dispatch(small_matched, scale)
    views = [op.host_s * scale for op in small.ops if op.family == "view"]
    host["view"] = statistics.median(views) if views else 0.0
    for name, other in FALLBACK.items():
        if name != "matvec":  # a matvec's host cost is its call's (conv or matmul: ``host_rule``)
            host.setdefault(name, host.get(other, statistics.median(host.values())))
        least.setdefault(name, least.get(other, min(least.values())))
    rules = set(rates) | set(efficiency) | {"matvec"}
    return MachineModel(
        device="cuda", dtype=dtype, threads=1, bandwidth=probes.bandwidth, mac_rates=rates,
        efficiency=efficiency, fixed_s=dict.fromkeys(sorted(rules), 0.0), view_overhead_s=0.0,
        torch_version=probes.torch_version, host_s=host, min_device_s=least, channels_last=channels_last,
        source=source,
    )  # fmt: skip


BACKWARD_SCALE_RANGE = (1 / 32, 4.0)  # what ``fit_backward`` may find; beyond, the figures disagree


def fit_backward(
    machine: MachineModel, *, base: nn.Module, shape: tuple[int, ...], measured_train_s: float
) -> MachineModel:
    """``machine`` with the backward MAC rate that makes its training pass of the *base* model take the
    base's measured training time (``measured_train_s``, a paired latency median at ``shape``).

    No kernel trace of a backward was recorded, so the rate of ``convolution_backward`` (input and weight
    gradients; cuDNN's are slower than its forward) is the one figure left: everything else in the pass
    is priced as in the forward. Only the base model is used: what SE's backward costs stays predicted.
    """
    events = training_events(base, shape, machine.dtype, channels_last=machine.channels_last)

    def predicted(scale: float) -> float:
        return predict(replace(machine, backward_mac_scale=scale), events, mode="train").total_s

    low, high = BACKWARD_SCALE_RANGE
    slowest, fastest = predicted(low), predicted(high)
    if slowest < fastest * (1 + 1e-3):
        raise UserInputError(
            "the base's training pass does not depend on its backward MAC rate here (bound by host "
            "dispatch or by minimum kernel times): fit it at a larger batch"
        )
    if not fastest <= measured_train_s <= slowest:
        raise UserInputError(
            f"a training pass of {measured_train_s * 1e3:.2f} ms is out of the machine model's reach "
            f"({fastest * 1e3:.2f} to {slowest * 1e3:.2f} ms): not this device's figures"
        )
    for _ in range(60):  # bisection on a log scale: the time falls as the rate grows
        middle = math.sqrt(low * high)
        low, high = (middle, high) if predicted(middle) > measured_train_s else (low, middle)
    return replace(machine, backward_mac_scale=math.sqrt(low * high))


def fit_access(matched: list[Matched], machine: MachineModel) -> MachineModel:
    """``machine`` with the figures keyed on how ops walk memory, from the matched ops: the element rate
    of elementwise ops off the contiguous path (``access`` broadcast or mixed: the total elements over
    their kernel seconds) and the reductions' efficiency by contiguous reduced run (kept as before where
    the ops have none)."""
    elements = strided_s = 0.0
    ideal: dict[int, float] = defaultdict(float)
    seconds: dict[int, float] = defaultdict(float)
    for m in matched:
        rule = family(m.event)
        if rule in ("elementwise", "transcendental") and m.event.access != "dense":
            elements += m.event.out_elements
            strided_s += m.traced.device_s
        elif rule == "reduction" and m.event.reduced_run and m.event.bytes_moved and m.traced.device_s:
            ideal[m.event.reduced_run] += m.event.bytes_moved / machine.bandwidth_at(m.event.bytes_moved)
            seconds[m.event.reduced_run] += m.traced.device_s
    runs = tuple((run, ideal[run] / seconds[run]) for run in sorted(ideal))
    rate = elements / strided_s if strided_s else machine.strided_elements_per_s
    return replace(machine, strided_elements_per_s=rate, reduction_runs=runs or machine.reduction_runs)


def calibrate_classes(
    machine: MachineModel,
    *,
    candidate: nn.Module,
    large: TracedForward,
    large_shape: tuple[int, ...],
    prefix: str = "se_",
) -> MachineModel:
    """``machine`` with the figures the SE model's large-batch trace adds: first those keyed on how ops
    walk memory (``fit_access``: SE's scale broadcasts a vector over the map, its squeeze reduces large
    maps unlike the base's 7x7 pool), then, per SE op class, the multiplier its forward ops' kernel time
    still needs over their roofline. Their host figures stay the base's (per call kind): what SE costs
    the host is predicted."""
    events = meta_events(candidate, large_shape, machine.dtype, channels_last=machine.channels_last)
    large_matched = match(events, large)
    machine = fit_access(large_matched, machine)
    measured: dict[str, float] = defaultdict(float)
    roofed: dict[str, float] = defaultdict(float)
    for m in large_matched:
        timed = device_time(machine, m.event)
        if m.op_class.startswith(prefix) and timed is not None:
            measured[m.op_class] += m.traced.device_s
            roofed[m.op_class] += max(timed.compute_s, timed.traffic_s)
    return replace(machine, class_scale={c: measured[c] / roofed[c] for c in measured if roofed[c] > 0})


def host_scale(small: TracedForward, small_wall_s: float) -> float:
    """The profiler's inflation of host time: unprofiled wall over profiled forward (median), host-bound."""
    return small_wall_s / statistics.median(small.iteration_s)


def fitted_parameters(machine: MachineModel) -> int:
    """How many figures of ``machine`` were fitted from traces: MAC rates, efficiencies, host and least
    times, class multipliers (copies taken from another family, ``FALLBACK``, not counted), the host
    scale (one), the backward MAC rate's scale (one, when fitted), the off-path element rates (broadcast;
    mixed where probed) and the reductions' efficiencies by run."""
    tables = (machine.mac_rates, machine.efficiency, machine.host_s, machine.min_device_s)
    copied = sum(
        1
        for table in tables
        for name, other in FALLBACK.items()
        if name in table and other in table and table[name] == table[other]
    )
    backward = int(machine.backward_mac_scale != 1.0)
    access = int(bool(machine.strided_elements_per_s)) + int(bool(machine.mixed_elements_per_s))
    access += len(machine.reduction_runs)
    classes = len(machine.class_scale)
    return sum(len(table) for table in tables) - copied + classes + 1 + backward + access


def op_times_from_trace(
    model: nn.Module,
    shape: tuple[int, ...],
    dtype: str,
    traced: TracedForward,
    *,
    channels_last: bool = False,
):
    """``optime.OpTimes`` of ``model`` from a kernel trace: each op's kernel seconds (mean over forwards),
    summed per op class and per SE module; SE's share is of the kernel time (no interval: one trace)."""
    from senet_profile.analysis.optime import SE_CLASS_PREFIX, OpTimes

    by_class: dict[str, float] = defaultdict(float)
    repeats = len(traced.iterations)
    samples: dict[str, list[float]] = defaultdict(lambda: [0.0] * repeats)
    for m in match(meta_events(model, shape, dtype, channels_last=channels_last), traced):
        by_class[m.op_class] += m.traced.device_s
        for k, ops in enumerate(traced.iterations):
            samples[m.op_class][k] += ops[m.index].device_s
    total = sum(by_class.values())
    se = sum(v for c, v in by_class.items() if c.startswith(SE_CLASS_PREFIX))
    share = se / total * 100 if total else 0.0
    wall = statistics.median(traced.iteration_s)
    return OpTimes(
        by_class=dict(by_class), by_module=kerneltrace.by_module(traced), ops_s=total, wall_s=wall,
        bare_wall_s=wall, se_share_pct=share, se_share_ci=(share, share), repeats=repeats,
        class_samples={c: tuple(v) for c, v in samples.items()},
        ops_samples=tuple(sum(v[k] for v in samples.values()) for k in range(repeats)),
    )  # fmt: skip


def kernel_op_times(model: nn.Module, options, *, repeats: int = 3):
    """Profile ``model`` on CUDA (``options``: a ``Setting``): its op times from kernel times, and
    the trace."""
    from senet_profile.catalog.attention import SE, attention_modules

    work = copy.deepcopy(model).to(device=options.device, dtype=torch_dtype(options.dtype)).eval()
    shape = options.shape
    x = torch.randn(shape, device=options.device, dtype=torch_dtype(options.dtype))
    work, x = in_layout(work, x, channels_last=options.channels_last)
    se_paths = tuple(path for path, kind in attention_modules(work).items() if kind == SE)
    traced = kerneltrace.profile_forward(work, x, se_paths=se_paths, repeats=repeats)
    times = op_times_from_trace(model, shape, options.dtype, traced, channels_last=options.channels_last)
    return times, traced
