"""A machine model: what this device sustains, measured in seconds, and each op's time predicted from it.

Measured, for one device, dtype and thread count (``measure_machine``):
- sustained bandwidth at a few working-set sizes (``BANDWIDTH_SIZES``: inside L2, inside L3, beyond it),
  from a streaming ``add`` (two operands read, one written), net of a 16-element add's cost;
- MAC throughput of the op kinds that carry a network's MACs (``RATE_LAYERS``): a GEMM, a dense 3x3 conv,
  a pointwise (1x1) conv, a grouped conv and a depthwise conv, each on a layer shaped like ResNet's and
  MobileNet's;
- for each family of ops without MACs (``FAMILY_LAYERS``: reductions such as SE's squeeze, pooling windows,
  normalization, elementwise with a transcendental such as the gate) its streaming efficiency: the fraction
  of the ``add`` bandwidth it reaches on a 3 MB tensor;
- matrix-vector products (at most ``trace.MATVEC_ROWS`` output rows: SE's FCs on a 1x1 map) are timed by
  their traffic: the efficiency of a 1x1 conv on a 1x1 map streaming a 1 MB weight, and the fixed cost of
  a 16x16 one;
- the fixed cost of one call of each family and kind (the same layer on a 1x1 or 2x2 map), and of a view.

Every one of these calls is timed as a network runs it: in rounds that call each probe once in turn, so
that each call follows a different op (``seconds_in_rounds``), the figure being the median over the rounds.
Timed in a tight loop of itself instead, an op finds its code, data and page-table entries warm and runs
several times faster than between other ops: on the 2-core EPYC here, a 16-element ReLU or SE's 2048-wide
gate took 2 us in a loop and 10-15 us inside SE-ResNet-50, and the model built from loops predicted a third
of SE's measured overhead.

Predicted, per op of a trace (``predict``): a roofline plus a fixed cost,
``time = max(MACs / rate[kind], bytes / (bandwidth(bytes) * efficiency[family])) + fixed[family]``, where
the bandwidth is interpolated (log-log) at the op's own traffic. Views cost the view constant and nothing
else. An op in the tracer's ``unknown`` class has no rule: it is listed, never priced at zero.

On a GPU (a model with host times: ``dispatched``; derived by ``gpumodel`` from kernel traces, since a
synchronised probe per call measures launch latency, not the device) each op has a host time and a device
time, and the two chains run op by op (``predict_dispatched``, see "GPUs" below). The CPU's rule above is
unchanged: a CPU model has no host term.

A model is stored per machine class as JSON (``save``/``load``: written atomically, validated on read; a
file from an older format is stale: it is measured again and replaced).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from senet_profile.analysis.trace import OpEvent
from senet_profile.errors import UserInputError
from senet_profile.io import parse_json, read_regular, write_atomic
from senet_profile.setting import require_cuda, torch_dtype

FORMAT_VERSION = 3  # 3: calibration calls timed in rounds among each other (2: each in a tight loop)
# Working sets (bytes touched by one op) at which bandwidth is measured: L2-, L3- and DRAM-sized here.
BANDWIDTH_SIZES = (384 * 1024, 1536 * 1024, 6 * 1024**2, 24 * 1024**2, 96 * 1024**2, 384 * 1024**2)
# (kind, layer, input shape): the layers whose MACs per second stand for each kind of MAC op.
RATE_LAYERS: tuple[tuple[str, Callable[[], nn.Module], tuple[int, ...]], ...] = (
    ("gemm", lambda: nn.Linear(1024, 1024), (256, 1024)),
    ("dense", lambda: nn.Conv2d(64, 64, 3, padding=1, bias=False), (1, 64, 56, 56)),
    ("pointwise", lambda: nn.Conv2d(256, 64, 1, bias=False), (1, 256, 56, 56)),
    ("grouped", lambda: nn.Conv2d(128, 128, 3, padding=1, groups=32, bias=False), (1, 128, 56, 56)),
    ("depthwise", lambda: nn.Conv2d(256, 256, 3, padding=1, groups=256, bias=False), (1, 256, 28, 28)),
)
# (family, layer, input shape): a network-shaped op of each family without MACs; the tiny twin of each
# (the same layer on a 2x2 map) gives the family's fixed cost.
FAMILY_LAYERS: tuple[tuple[str, Callable[[], nn.Module], tuple[int, ...]], ...] = (
    ("elementwise", lambda: nn.ReLU(), (1, 256, 56, 56)),
    ("transcendental", lambda: nn.Sigmoid(), (1, 256, 56, 56)),
    ("reduction", lambda: _Mean(), (1, 256, 56, 56)),
    ("pooling", lambda: nn.MaxPool2d(3, 2, 1), (1, 64, 112, 112)),
    ("normalization", lambda: nn.BatchNorm2d(256), (1, 256, 56, 56)),
    ("data", lambda: _Copy(), (1, 256, 56, 56)),
)
# The matrix-vector kind (``trace.MATVEC_ROWS``): its weights stream through once, so it is timed by its
# traffic; a 1 MB weight calibrates its efficiency and a 16x16 one its fixed cost.
MATVEC_LAYER: tuple[Callable[[], nn.Module], tuple[int, ...]] = (
    lambda: nn.Conv2d(1024, 256, 1),
    (1, 1024, 1, 1),
)
MATVEC_TWIN: tuple[Callable[[], nn.Module], tuple[int, ...]] = (lambda: nn.Conv2d(16, 16, 1), (1, 16, 1, 1))
MEMORY_BOUND_KINDS = frozenset({"matvec"})
TRANSCENDENTAL_OPS = frozenset({"sigmoid", "tanh", "exp", "log", "erf", "gelu", "silu", "softplus", "mish"})
POOLING_OPS = frozenset({"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "max_pool3d_with_indices"})
POOLING_OPS |= frozenset({"avg_pool3d", "adaptive_max_pool2d"})
POOLING_OPS |= frozenset({f"{name}_backward" for name in POOLING_OPS} | {"_adaptive_avg_pool2d_backward"})
NET_FLOOR = 0.5  # a call's time net of its fixed cost is at least this fraction of it
ROUNDS = 31  # calibration rounds; each figure is the median of its call's times over the rounds


class _Mean(nn.Module):
    """Global average pooling as SE's squeeze does it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class _Copy(nn.Module):
    """A plain copy (cat, clone, pad and the other data-movement ops stream like it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def family(event: OpEvent) -> str:
    """The rule an op follows: its MAC kind (``dense``, ``gemm``...) or its family without MACs."""
    if event.category == "mac":
        return event.kind
    if event.category == "elementwise":
        return "transcendental" if event.op in TRANSCENDENTAL_OPS else "elementwise"
    if event.category == "reduction":
        return "pooling" if event.op in POOLING_OPS else "reduction"
    return event.category  # normalization, data, view, unknown


@dataclass(frozen=True, kw_only=True)
class MachineModel:
    """What one device sustains for one dtype and thread count: bandwidth by working set, MAC rates, costs."""

    device: str
    dtype: str
    threads: int
    bandwidth: tuple[tuple[int, float], ...]  # (working-set bytes, bytes per second), ascending sizes
    mac_rates: dict[str, float]  # op kind -> MACs per second
    efficiency: dict[str, float]  # family without MACs -> fraction of the add bandwidth it streams at
    fixed_s: dict[str, float]  # family or MAC kind -> seconds of one call on a tiny tensor
    view_overhead_s: float
    torch_version: str = ""
    measured_s: float = 0.0
    # A GPU model (see "GPUs" below) dispatches: host seconds per op by family, and each op's device time
    # is at least ``min_device_s[family]``. Empty for a CPU model, whose ops are synchronous.
    host_s: dict[str, float] = field(default_factory=dict)
    min_device_s: dict[str, float] = field(default_factory=dict)
    class_scale: dict[str, float] = field(default_factory=dict)  # GPU: op class -> device time multiplier
    # A backward MAC op's rate over the forward rate of its kind (``convolution_backward``'s input and
    # weight gradients): 1.0 unless derived (``gpumodel.fit_backward``).
    backward_mac_scale: float = 1.0
    # Elements per second of an elementwise op off the contiguous path (``OpEvent.access``: an operand
    # broadcast over the map, or operands in mixed layouts): a GPU's TensorIterator then computes every
    # operand's offset per element and does not vectorise. 0: not modelled (such ops stream like others).
    strided_elements_per_s: float = 0.0
    # The same for operands in mixed layouts alone, where probed (``measure_mixed_rate``): one operand is
    # read across its layout as well. 0: they take ``strided_elements_per_s`` (a lower bound on their time).
    mixed_elements_per_s: float = 0.0
    # A reduction's streaming efficiency by its contiguous reduced run (``OpEvent.reduced_run``), as
    # (run, efficiency) points: summing short contiguous rows (a 7x7 map channels-first) streams far
    # below summing long ones, or across rows (channels-last). Empty: the family's one efficiency.
    reduction_runs: tuple[tuple[int, float], ...] = ()
    channels_last: bool = False
    math: str = "default"
    source: str = ""  # how the figures were obtained, when not measured by ``measure_machine``

    @property
    def key(self) -> str:
        """How the model is filed within its machine class: ``cpu fp32 threads=1``."""
        return setting_key(
            self.device, self.dtype, self.threads, channels_last=self.channels_last, math=self.math
        )

    @property
    def dispatched(self) -> bool:
        """Whether ops are dispatched by a host to a device (a GPU model): a host and a device chain."""
        return bool(self.host_s)

    def bandwidth_at(self, nbytes: int) -> float:
        """Bytes per second for an op touching ``nbytes``: log-log interpolation, clamped at the ends."""
        return interpolate(self.bandwidth, nbytes, log_values=True)


@dataclass(frozen=True)
class OpTime:
    """One op's predicted seconds, and which roof bound it (``compute``, ``memory`` or ``fixed``)."""

    seconds: float
    compute_s: float
    traffic_s: float
    fixed_s: float
    bound: str


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds per op class, their total, and the ops no rule covers (op name -> count)."""

    by_class: dict[str, float]
    total_s: float
    uncovered: dict[str, int] = field(default_factory=dict)
    bytes_by_class: dict[str, int] = field(default_factory=dict)  # bytes the priced ops move, by class
    macs_by_class: dict[str, int] = field(default_factory=dict)  # MACs of the priced ops, by class
    # elementwise ops off the contiguous path, by ``access`` (broadcast, mixed): (ops, predicted seconds,
    # the part of those seconds beyond streaming their bytes)
    off_path: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    # on a GPU model, the two chains by op class: (ops issued, host seconds, device seconds)
    chains: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def setting_key(
    device: str, dtype: str, threads: int, *, channels_last: bool = False, math: str = "default"
) -> str:
    """``cpu fp32 threads=1``: the key of a machine model within its machine class's file.

    A non-default fp32 math and channels-last are part of the key (``cuda fp32 math=ieee threads=1``).
    """
    extras = (
        f" math={math}" if math != "default" and dtype == "fp32" else ""
    ) + " channels-last" * channels_last
    return f"{device} {dtype}{extras} threads={threads}"


def op_time(machine: MachineModel, event: OpEvent) -> OpTime | None:
    """The roofline time of one op, or None when no rule covers it (unknown op, or an unmeasured kind)."""
    if event.category == "view":
        return OpTime(machine.view_overhead_s, 0.0, 0.0, machine.view_overhead_s, "fixed")
    rule = family(event)
    if rule not in machine.fixed_s:
        return None
    if event.category == "mac" and rule not in MEMORY_BOUND_KINDS:
        if rule not in machine.mac_rates:
            return None
        rate = machine.mac_rates[rule] * (machine.backward_mac_scale if event.phase == "backward" else 1.0)
        compute, efficiency = event.macs / rate, 1.0
    elif rule in machine.efficiency:
        compute, efficiency = 0.0, machine.efficiency[rule]
        if rule == "reduction" and event.reduced_run and machine.reduction_runs:
            efficiency = reduction_efficiency(machine, event.reduced_run, efficiency)
        rate = off_path_rate(machine, event.access)
        if rate:
            compute = event.out_elements / rate
    else:
        return None
    moved = event.bytes_moved
    traffic = moved / (machine.bandwidth_at(moved) * efficiency) if moved else 0.0
    bound = "fixed" if not (compute or traffic) else ("compute" if compute >= traffic else "memory")
    fixed = machine.fixed_s[rule]
    return OpTime(max(compute, traffic) + fixed, compute, traffic, fixed, bound)


def off_path_rate(machine: MachineModel, access: str) -> float:
    """Elements per second of an elementwise op with this ``access`` off the contiguous path (0: dense, or
    not modelled): a mixed-layout op's probed rate where there is one, else the broadcast rate."""
    if access == "dense":
        return 0.0
    if access == "mixed" and machine.mixed_elements_per_s:
        return machine.mixed_elements_per_s
    return machine.strided_elements_per_s


def reduction_efficiency(machine: MachineModel, run: int, default: float) -> float:
    """The efficiency of a reduction with contiguous reduced run ``run``: run 1 (across rows) takes that
    point's figure; longer runs interpolate log-linearly between the points past 1 (clamped at the ends);
    ``default`` where no point covers the case."""
    across = [e for r, e in machine.reduction_runs if r == 1]
    if run == 1:
        return across[0] if across else default
    points = [(r, e) for r, e in machine.reduction_runs if r > 1]
    if not points:
        return default
    return interpolate(points, run, log_values=False)


def interpolate(points: Sequence[tuple[float, float]], x: float, *, log_values: bool) -> float:
    """The value at ``x`` between ``(x, value)`` points (ascending x): linear in log x, and in log value
    too if ``log_values``; clamped to the end points outside them."""
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    scale, unscale = (math.log, math.exp) if log_values else (float, float)
    for (x0, v0), (x1, v1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return unscale(scale(v0) + t * (scale(v1) - scale(v0)))
    raise AssertionError("unreachable")  # pragma: no cover


def predict(
    machine: MachineModel, events: Iterable[tuple[OpEvent, str]], *, mode: str = "infer"
) -> Prediction:
    """Sum the predicted time of ``(event, op class)`` pairs by op class; list what has no rule.

    A GPU model (``dispatched``) runs the host and device chains op by op (``predict_dispatched``).
    """
    if machine.dispatched or mode == "train":
        return predict_dispatched(machine, list(events), mode=mode)
    tally = _Tally(machine)
    for event, op_class in events:
        timed = op_time(machine, event)
        if timed is None:
            tally.uncover(event)
            continue
        tally.add(event, op_class, timed, timed.seconds)
    return tally.prediction(sum(tally.by_class.values()))


@dataclass
class _Tally:
    """What a prediction adds up op by op: seconds, bytes and MACs by op class, the ops no rule covers,
    and the elementwise ops priced off the contiguous path (by access: ops, seconds, seconds beyond
    streaming their bytes)."""

    machine: MachineModel
    by_class: dict[str, float] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    uncovered: dict[str, int] = field(default_factory=dict)
    off_path: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    chains: dict[str, tuple[int, float, float]] = field(default_factory=dict)

    def uncover(self, event: OpEvent) -> None:
        """Count an op no rule covers."""
        label = event.op if event.category == "unknown" else f"{event.op} ({event.kind})"
        self.uncovered[label] = self.uncovered.get(label, 0) + 1

    def add(self, event: OpEvent, op_class: str, timed: OpTime, seconds: float, factor: float = 1.0) -> None:
        """Charge ``seconds`` to ``op_class``, with the op's bytes and MACs times ``factor``."""
        self.by_class[op_class] = self.by_class.get(op_class, 0.0) + seconds
        self.moved[op_class] = self.moved.get(op_class, 0) + round(event.bytes_moved * factor)
        self.macs[op_class] = self.macs.get(op_class, 0) + round(event.macs * factor)
        if off_path_rate(self.machine, event.access):
            ops, total, beyond = self.off_path.get(event.access, (0, 0.0, 0.0))
            streamed = max(timed.traffic_s, timed.fixed_s)
            extra = max(timed.seconds - streamed, 0.0)
            self.off_path[event.access] = (ops + 1, total + timed.seconds, beyond + extra)

    def chain(self, event: OpEvent, op_class: str, host_s: float, device_s: float) -> None:
        """Add one op's host and device seconds to its class's chains (a GPU model's)."""
        ops, host, device = self.chains.get(op_class, (0, 0.0, 0.0))
        self.chains[op_class] = (ops + (not is_free(event)), host + host_s, device + device_s)

    def prediction(self, total_s: float) -> Prediction:
        """The tally as a ``Prediction`` taking ``total_s``."""
        return Prediction(
            self.by_class, total_s, self.uncovered, self.moved, self.macs, self.off_path, self.chains
        )


# ------------------------------------------------------------------------------------------------- GPUs
# A GPU runs what its host dispatches: op i is issued once the host has spent ``host_s`` on it (after op
# i-1's dispatch), and its kernels run once issued and once the device is done with op i-1. The forward
# ends when the device finishes its last op: the larger of the two chains, op by op. An op's device time
# is its roofline (no fixed cost added: the GPU overlaps launches) but at least the family's minimum
# (small kernels pay a minimum kernel time, and an op may launch several). A training pass is the traced
# one (``trace_ops(..., train=True)``): the forward in train mode, then the backward's own ops as autograd
# runs them (``convolution_backward`` with both gradients' MACs, SE's scale's backward a product and a
# reduction over the map, the gradient sums where a tensor feeds two ops), each priced by its own family's
# rule and dispatched like a forward op. A class's calibrated multiplier (``class_scale``, fitted on forward
# kernels) applies to its forward ops only. What an op's memory layout decides is keyed on the op, not its
# class, and so holds in the backward too: an elementwise op off the contiguous path (``OpEvent.access``
# broadcast or mixed) takes at least its elements at ``strided_elements_per_s`` (``mixed_elements_per_s``
# where probed), and a reduction streams at its contiguous run's efficiency (``reduction_runs``).
# Given a forward alone, a training pass is approximated as before: each op again in reverse order, its
# device time ``BACKWARD_FACTOR`` times the forward's.
BACKWARD_FACTOR = 2.0


def device_time(machine: MachineModel, event: OpEvent, op_class: str = "") -> OpTime | None:
    """One op's device time on a GPU model: its roofline (times its op class's calibrated multiplier, if
    any), at least the family's minimum device time."""
    if machine.dispatched and is_free(event):
        return OpTime(0.0, 0.0, 0.0, 0.0, "fixed")
    timed = op_time(machine, event)
    if timed is None or not machine.dispatched:
        return timed
    scale = machine.class_scale.get(op_class, 1.0) if event.phase == "forward" else 1.0
    roof = max(timed.compute_s, timed.traffic_s) * scale
    least = machine.min_device_s.get(family(event), 0.0)
    bound = timed.bound if roof >= least else "fixed"
    return OpTime(max(roof, least), timed.compute_s * scale, timed.traffic_s * scale, least, bound)


def is_free(event: OpEvent) -> bool:
    """A view, or an op that neither computes nor moves data (an allocation inside a decomposed op)."""
    return event.category == "view" or (
        event.category != "unknown" and not event.macs and not event.bytes_moved
    )


def host_rule(event: OpEvent) -> str:
    """What an op's host cost follows: ``conv`` or ``matmul`` for MAC ops (the call, not the kernel's
    kind), else its family (``view`` for views)."""
    if event.category == "view":
        return "view"
    if event.category == "mac":
        return "conv" if event.op in ("convolution", "convolution_backward") else "matmul"
    return family(event)


def host_time(machine: MachineModel, event: OpEvent, op_class: str = "") -> float:
    """Host seconds to dispatch one op: its op class's figure if calibrated, else its rule's (CPU: 0)."""
    if not machine.host_s or (event.category != "view" and is_free(event)):
        return 0.0
    return machine.host_s.get(op_class) or machine.host_s.get(host_rule(event), 0.0)


def predict_dispatched(
    machine: MachineModel, events: list[tuple[OpEvent, str]], *, mode: str = "infer"
) -> Prediction:
    """Seconds of a forward (or training pass) as the host and device chains give it, by op class.

    Each op's class is charged what it adds to the device's finish time (so the classes sum to the total);
    on a GPU model the result's ``chains`` also keep each class's host and device seconds apart.
    """
    steps = [(event, op_class, 1.0) for event, op_class in events]
    if mode == "train" and all(event.phase == "forward" for event, _ in events):
        steps += [(event, op_class, BACKWARD_FACTOR) for event, op_class in reversed(events)]
    tally = _Tally(machine)
    host = device = 0.0
    for event, op_class, factor in steps:
        timed = device_time(machine, event, op_class)
        if timed is None:
            tally.uncover(event)
            continue
        issue = host_time(machine, event, op_class)
        host += issue
        seconds = timed.seconds if machine.dispatched else timed.seconds * factor
        if machine.dispatched and factor != 1.0:
            seconds = max(max(timed.compute_s, timed.traffic_s) * factor, timed.fixed_s)
        finish = max(device, host) + seconds
        tally.add(event, op_class, timed, finish - device, factor)
        if machine.dispatched:
            tally.chain(event, op_class, issue, seconds)
        device = finish
    return tally.prediction(device)


# ------------------------------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class _Probe:
    """One calibration call: what it runs and what it moves (its traced ops, or bytes for the bare adds)."""

    name: str
    call: Callable[[], object]
    events: tuple[OpEvent, ...] = ()
    moved: int = 0


def _adding(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Callable[[], object]:
    """A call that adds ``a`` and ``b`` into ``c`` (the bare bandwidth probe)."""
    return lambda: torch.add(a, b, out=c)


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def seconds_in_rounds(
    probes: list[_Probe], sync: Callable[[], None], rounds: int = ROUNDS
) -> dict[str, float]:
    """Median seconds of each probe's call over ``rounds`` rounds, each round calling every probe once.

    Within a round each call follows a different op, as in a network: a tight loop of one op keeps that
    op's code, data and page-table entries warm and runs faster than the same op does between others.
    """
    for probe in probes:  # first calls: allocations, kernel selection, lazy initialisation
        probe.call()
    sync()
    samples: dict[str, list[float]] = {probe.name: [] for probe in probes}
    for _ in range(rounds):
        for probe in probes:
            start = time.perf_counter()
            probe.call()
            sync()
            samples[probe.name].append(time.perf_counter() - start)
    return {name: sorted(values)[len(values) // 2] for name, values in samples.items()}


@contextmanager
def _conditions(device: str, threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)


def _net(seconds: float, fixed_s: float) -> float:
    """Seconds of a call net of its fixed cost, never below half the call: on a noisy machine the tiny
    twin can take nearly as long as the real op, and a rate must not grow without bound from that."""
    return max(seconds - fixed_s, seconds * NET_FLOOR)


def _layer_probe(
    name: str, make: Callable[[], nn.Module], shape: tuple[int, ...], device: str, dtype: torch.dtype
) -> _Probe:
    """A fresh layer called on an input of ``shape``, with its ops traced on meta (MACs, bytes)."""
    from senet_profile.analysis.trace import trace_ops  # counts the layer's MACs and bytes as in a model

    layer = make().to(device=device, dtype=dtype).eval()
    x = torch.randn(shape, device=device, dtype=dtype)
    with torch.inference_mode(False):  # inference mode would hide conv2d's decomposition to convolution
        meta = make().to(device="meta", dtype=dtype).eval()
        events = tuple(trace_ops(meta, torch.empty(shape, device="meta", dtype=dtype)).events)
    return _Probe(name, lambda: layer(x), events)


def _tiny_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, shape[1], 1, 1) if len(shape) == 4 else (1, shape[1])


def _probes(device: str, dtype: torch.dtype) -> list[_Probe]:
    """Every calibration call: a view, bare adds at each working set, each MAC kind's and each family's
    network-shaped layer with its tiny twin (the same layer on a 1x1 or 2x2 map, for the fixed cost)."""
    size = torch.empty((), dtype=dtype).element_size()
    tiny = torch.ones(16, device=device, dtype=dtype)
    probes = [
        _Probe("view", lambda: tiny.view(4, 4)),
        _Probe("add tiny", lambda: torch.add(tiny, tiny, out=tiny), moved=3 * tiny.numel() * size),
    ]
    for working_set in BANDWIDTH_SIZES:
        n = max(1, working_set // (3 * size))
        a, b, c = (torch.ones(n, device=device, dtype=dtype) for _ in range(3))
        probes.append(_Probe(f"add {working_set}", _adding(a, b, c), moved=3 * n * size))
    for kind, make, shape in RATE_LAYERS:
        probes.append(_layer_probe(kind, make, shape, device, dtype))
        probes.append(_layer_probe(f"{kind} tiny", make, _tiny_shape(shape), device, dtype))
    for name, make, shape in FAMILY_LAYERS:
        probes.append(_layer_probe(name, make, shape, device, dtype))
        probes.append(_layer_probe(f"{name} tiny", make, (1, shape[1], 2, 2), device, dtype))
    probes.append(_layer_probe("matvec", *MATVEC_LAYER, device, dtype))
    probes.append(_layer_probe("matvec tiny", *MATVEC_TWIN, device, dtype))
    return probes


MIXED_REPEATS = 10  # adds per timed call of the mixed-layout probe (one synchronisation per call)


def measure_mixed_rate(
    *, device: str, dtype: str, shape: tuple[int, int, int, int], rounds: int = ROUNDS
) -> float:
    """Elements per second of an add whose operands lie in different layouts (channels-first into
    channels-last, as a gradient sum does where SE's squeeze hands back a channels-first gradient): the
    figure ``MachineModel.mixed_elements_per_s`` holds. Size ``shape`` well past the device's cache."""
    if device == "cuda":
        require_cuda()
    kind = torch_dtype(dtype)
    last = torch.ones(shape, device=device, dtype=kind).contiguous(memory_format=torch.channels_last)
    first = torch.ones(shape, device=device, dtype=kind)
    out = torch.empty_like(last)

    def adds() -> None:
        for _ in range(MIXED_REPEATS):
            torch.add(last, first, out=out)

    with _conditions(device, torch.get_num_threads()):
        seconds = seconds_in_rounds([_Probe("mixed add", adds)], _sync(device), rounds)["mixed add"]
    return last.numel() * MIXED_REPEATS / seconds


def measure_machine(
    *, device: str = "cpu", dtype: str = "fp32", threads: int = 1, rounds: int = ROUNDS
) -> MachineModel:
    """Measure this machine's bandwidth by working set, MAC rates and fixed costs (a few seconds)."""
    torch_dtype(dtype)  # an unknown dtype is refused in one line
    if device == "cuda":
        require_cuda()
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"a machine model is measured on cpu or cuda, not {device!r}")
    started = time.perf_counter()
    with _conditions(device, threads):
        probes = {probe.name: probe for probe in _probes(device, torch_dtype(dtype))}
        seconds = seconds_in_rounds(list(probes.values()), _sync(device), rounds)
    add_fixed = seconds["add tiny"]
    bandwidth = tuple(
        (probes[f"add {size}"].moved, probes[f"add {size}"].moved / _net(seconds[f"add {size}"], add_fixed))
        for size in BANDWIDTH_SIZES
    )
    streamed = [name for name, _, _ in FAMILY_LAYERS] + sorted(MEMORY_BOUND_KINDS)
    fixed = {name: seconds[f"{name} tiny"] for name in [kind for kind, _, _ in RATE_LAYERS] + streamed}
    rates = {
        kind: sum(e.macs for e in probes[kind].events) / _net(seconds[kind], fixed[kind])
        for kind, _, _ in RATE_LAYERS
    }
    streams = MachineModel(
        device=device, dtype=dtype, threads=threads, bandwidth=bandwidth, mac_rates=rates, efficiency={},
        fixed_s={}, view_overhead_s=seconds["view"],
    )  # fmt: skip
    efficiency = {}
    for name in streamed:
        moved = sum(e.bytes_moved for e in probes[name].events)
        efficiency[name] = moved / _net(seconds[name], fixed[name]) / streams.bandwidth_at(moved)
    return replace(
        streams,
        efficiency=efficiency,
        fixed_s=fixed,
        torch_version=torch.__version__,
        measured_s=time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------------------------- storing


def _as_json(machine: MachineModel) -> dict:
    data = asdict(machine)
    data["bandwidth"] = [list(pair) for pair in machine.bandwidth]
    data["reduction_runs"] = [list(pair) for pair in machine.reduction_runs]
    return data


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _from_json(data: object, where: str) -> MachineModel:
    """A machine model from its stored form, refusing anything malformed (one-line error naming ``where``)."""
    problem = f"{where}: not a valid machine model"
    if not isinstance(data, dict):
        raise UserInputError(problem)
    try:
        bandwidth = tuple((int(s), float(b)) for s, b in data["bandwidth"])
        machine = MachineModel(
            device=str(data["device"]),
            dtype=str(data["dtype"]),
            threads=int(data["threads"]),
            bandwidth=bandwidth,
            mac_rates={str(k): float(v) for k, v in dict(data["mac_rates"]).items()},
            efficiency={str(k): float(v) for k, v in dict(data["efficiency"]).items()},
            fixed_s={str(k): float(v) for k, v in dict(data["fixed_s"]).items()},
            view_overhead_s=float(data["view_overhead_s"]),
            torch_version=str(data.get("torch_version", "")),
            measured_s=float(data.get("measured_s", 0.0)),
            host_s={str(k): float(v) for k, v in dict(data.get("host_s", {})).items()},
            min_device_s={str(k): float(v) for k, v in dict(data.get("min_device_s", {})).items()},
            class_scale={str(k): float(v) for k, v in dict(data.get("class_scale", {})).items()},
            backward_mac_scale=float(data.get("backward_mac_scale", 1.0)),
            strided_elements_per_s=float(data.get("strided_elements_per_s", 0.0)),
            mixed_elements_per_s=float(data.get("mixed_elements_per_s", 0.0)),
            reduction_runs=tuple((int(r), float(e)) for r, e in data.get("reduction_runs", ())),
            channels_last=bool(data.get("channels_last", False)),
            math=str(data.get("math", "default")),
            source=str(data.get("source", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise UserInputError(problem) from None
    sizes = [s for s, _ in bandwidth]
    valid = (
        bandwidth
        and sizes == sorted(set(sizes))
        and all(_positive(s) and _positive(b) for s, b in bandwidth)
        and all(_positive(r) for r in [*machine.mac_rates.values(), *machine.efficiency.values()])
        and all(f >= 0 for f in machine.fixed_s.values())
        and machine.view_overhead_s >= 0
        and machine.threads > 0
        and _positive(machine.backward_mac_scale)
        and machine.strided_elements_per_s >= 0
        and machine.mixed_elements_per_s >= 0
        and [r for r, _ in machine.reduction_runs] == sorted({r for r, _ in machine.reduction_runs})
        and all(_positive(r) and _positive(e) for r, e in machine.reduction_runs)
    )
    if not valid:
        raise UserInputError(f"{problem} (bandwidths, rates or costs out of range)")
    return machine


def from_dict(data: object, where: str) -> MachineModel:
    """A machine model from its stored form (one entry of a machine-model file, or ``asdict``'s), checked."""
    return _from_json(data, where)


def _read_file(path: Path) -> dict:
    if not path.exists():
        return {"version": FORMAT_VERSION, "models": {}}
    content = read_regular(path)  # a regular file, bounded; one line otherwise
    try:
        data = parse_json(content)  # hardened: depth, number range
    except ValueError as error:
        raise UserInputError(f"{path}: not readable as JSON ({error})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: not a machine-model file of version {FORMAT_VERSION}")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < FORMAT_VERSION:
        return {"version": FORMAT_VERSION, "models": {}}  # stale: measured the old way, replaced on save
    if version != FORMAT_VERSION:
        raise UserInputError(f"{path}: not a machine-model file of version {FORMAT_VERSION}")
    if not isinstance(data.get("models"), dict):
        raise UserInputError(f"{path}: not a valid machine-model file (no models)")
    return data


def load(path: Path, key: str) -> MachineModel | None:
    """The stored model for ``key`` (see ``setting_key``) in ``path``; None when there is none yet."""
    stored = _read_file(path)["models"].get(key)
    return None if stored is None else _from_json(stored, f"{path} [{key}]")


def save(path: Path, machine: MachineModel) -> None:
    """File ``machine`` under its key in ``path`` (other keys kept), atomically."""
    data = _read_file(path)
    for key, stored in data["models"].items():
        _from_json(stored, f"{path} [{key}]")  # refuse to rewrite a file that holds a corrupt model
    data["models"][machine.key] = _as_json(machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_or_measure(path: Path, *, device: str, dtype: str, threads: int, remeasure: bool = False):
    """The stored machine model for this setting, measured (and stored) when missing or ``remeasure``."""
    key = setting_key(device, dtype, threads)
    machine = None if remeasure else load(path, key)
    if machine is None:
        machine = measure_machine(device=device, dtype=dtype, threads=threads)
        save(path, machine)
    return machine
