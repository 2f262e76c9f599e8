"""Measured time per op, per op class and per module, in runs of one model: where its forward's time goes.

Each repeat runs the model's forward once under the dispatch tracer with a clock around each op
(``trace_ops(..., timed=True)``: ``perf_counter`` before and after the op alone; CPU ops are synchronous, a
CUDA op is followed by a synchronise inside its interval, so CUDA per-op times are serialised ones). Ops
are attributed to modules and op classes exactly as the static counts are. What no op holds -- Python,
module calls, hooks, the tracer itself -- is the gap between a repeat's wall time and its ops' sum, kept
apart as ``unattributed``.

SE's share of the forward is the SE op classes' seconds over all ops' seconds, per repeat; the figure is
the median over repeats with a 95 % bootstrap interval. It needs no SE-free twin. The forward runs under
``torch.no_grad`` (``inference_mode`` would hide conv2d's decomposition from the tracer), on one input, in
eval mode; ``warmup`` untimed repeats come first. Time attribution has a cost: each repeat also times one
bare forward, interleaved, and ``attribution_cost_pct`` is the median of traced / bare - 1.
"""

from __future__ import annotations

import copy
import gc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from senet_profile.analysis.intervals import bootstrap_median_ci
from senet_profile.analysis.static import classified_events
from senet_profile.analysis.trace import scalar_loss, tensors_in, trace_ops
from senet_profile.catalog.attention import SE, attention_modules
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting

SE_CLASS_PREFIX = "se_"


def _checked(options: Setting) -> Setting:
    """The setting op times run under: a real device (CPU when none is named), checked on this machine."""
    if options.device == "meta":
        raise UserInputError("op times are measured on cpu or cuda, not on the meta device")
    options = options.resolved(device=options.latency_device)
    options.check_for(("latency",))
    return options


@dataclass(frozen=True)
class OpTimes:
    """Median seconds per op class and per module over repeats, with SE's share of the ops' time."""

    by_class: dict[str, float]
    by_module: dict[str, float]
    ops_s: float  # median over repeats of the sum of all ops' seconds
    wall_s: float  # median wall time of a traced forward
    bare_wall_s: float  # median wall time of a bare forward, interleaved with the traced ones
    se_share_pct: float
    se_share_ci: tuple[float, float]
    repeats: int
    class_samples: dict[str, tuple[float, ...]] = field(default_factory=dict)  # seconds per repeat
    ops_samples: tuple[float, ...] = ()  # all ops' seconds per repeat

    @property
    def unattributed_s(self) -> float:
        """Wall time of a traced forward that no op holds (Python, module calls, the tracer)."""
        return self.wall_s - self.ops_s

    @property
    def attribution_cost_pct(self) -> float:
        """How much longer a forward takes with time attribution on than bare, in percent."""
        return (self.wall_s / self.bare_wall_s - 1) * 100


@contextmanager
def _conditions(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)  # None: torch's own count, as in latency timing
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(before)
        if was_enabled:
            gc.enable()


def _sync(device: str | None) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class _Timer:
    """One model's op-timed repeats, taken one at a time so that two models can be interleaved."""

    def __init__(self, model: nn.Module, options: Setting) -> None:
        dtype = options.torch_dtype
        self.options = options
        self.model = copy.deepcopy(model).to(device=options.device, dtype=dtype).eval()
        self.x = torch.randn(*options.shape, device=options.device, dtype=dtype)
        self.per_class: dict[str, list[float]] = defaultdict(lambda: [0.0] * options.repeats)
        self.per_module: dict[str, list[float]] = defaultdict(lambda: [0.0] * options.repeats)
        self.walls: list[float] = []
        self.bares: list[float] = []
        self.sums: list[float] = []
        self.shares: list[float] = []

    def warm(self) -> None:
        """Untimed forward passes, bare and traced."""
        for _ in range(self.options.warmup):
            self.model(self.x)
            trace_ops(self.model, self.x, timed=True)

    def repeat(self) -> None:
        """One bare forward and one op-timed forward, attributed to op classes and modules."""
        index = len(self.walls)
        _sync(self.options.device)
        start = perf_counter()
        self.model(self.x)
        _sync(self.options.device)
        self.bares.append(perf_counter() - start)
        start = perf_counter()
        trace = trace_ops(self.model, self.x, timed=True)
        self.walls.append(perf_counter() - start)
        total = se = 0.0
        for event, op_class in classified_events(self.model, trace):
            seconds = event.seconds or 0.0
            self.per_class[op_class][index] += seconds
            self.per_module[event.module][index] += seconds
            total += seconds
            se += seconds if op_class.startswith(SE_CLASS_PREFIX) else 0.0
        self.sums.append(total)
        self.shares.append(se / total * 100 if total else 0.0)
        gc.collect(1)

    def result(self) -> OpTimes:
        """Medians over the repeats taken, with the bootstrap interval of SE's share."""
        low, high = bootstrap_median_ci(self.shares)
        return OpTimes(
            by_class={name: float(np.median(values)) for name, values in self.per_class.items()},
            by_module={name: float(np.median(values)) for name, values in self.per_module.items()},
            ops_s=float(np.median(self.sums)),
            wall_s=float(np.median(self.walls)),
            bare_wall_s=float(np.median(self.bares)),
            se_share_pct=float(np.median(self.shares)),
            se_share_ci=(low, high),
            repeats=len(self.walls),
            class_samples={name: tuple(values) for name, values in self.per_class.items()},
            ops_samples=tuple(self.sums),
        )


def measure_op_times(model: nn.Module, options: Setting) -> OpTimes:
    """Time each op of ``model``'s forward, ``options.repeats`` times, attributed to classes and modules."""
    options = _checked(options)
    timer = _Timer(model, options)
    with _conditions(options.threads):
        timer.warm()
        for _ in range(options.repeats):
            timer.repeat()
    return timer.result()


def measure_op_times_paired(base: nn.Module, candidate: nn.Module, options: Setting):
    """Both models' op times, their repeats interleaved A B B A ... so that drift falls on both alike."""
    options = _checked(options)
    timers = (_Timer(base, options), _Timer(candidate, options))
    with _conditions(options.threads):
        for timer in timers:
            timer.warm()
        for turn in range(options.repeats):
            for index in (0, 1) if turn % 2 == 0 else (1, 0):
                timers[index].repeat()
    return timers[0].result(), timers[1].result()


def class_overhead_pp(base: OpTimes, candidate: OpTimes, op_class: str) -> float:
    """Median over paired repeats of the class's extra seconds, in percent of the base's op time."""
    zeros = (0.0,) * base.repeats
    b, c = base.class_samples.get(op_class, zeros), candidate.class_samples.get(op_class, zeros)
    values = [(ci - bi) / total * 100 for bi, ci, total in zip(b, c, base.ops_samples, strict=True)]
    return float(np.median(values))


# ------------------------------------------------------------------------------------- training pass share


@dataclass(frozen=True)
class TrainShare:
    """SE's share of a training pass's op time (forward and backward), median over repeats, with its CI."""

    share_pct: float
    share_ci: tuple[float, float]
    forward_share_pct: float  # SE's share of the forward's op time, in train mode
    backward_share_pct: float  # SE's share of the backward's op time
    backward_fraction_pct: float  # the backward's part of the pass's op time
    repeats: int


def _autograd_nodes(outputs: object, inputs: tuple[object, ...]) -> set[object]:
    """The autograd nodes between a module's inputs and its outputs: what its backward runs."""
    stop = {t.grad_fn for t in tensors_in(inputs) if t.grad_fn is not None}
    pending = [t.grad_fn for t in tensors_in(outputs) if t.grad_fn is not None]
    found: set[object] = set()
    while pending:
        node = pending.pop()
        if node in found or node in stop:
            continue
        found.add(node)
        pending.extend(next_node for next_node, _ in node.next_functions if next_node is not None)
    return found


class _PassClock(TorchDispatchMode):
    """Each op's seconds, SE's or not: by the SE module running it (forward), its autograd node (backward)."""

    def __init__(self, se_nodes: set[object], inside: list[int], backward: list[bool]) -> None:
        super().__init__()
        self.se_nodes, self.inside, self.backward = se_nodes, inside, backward
        self.seconds = {(phase, se): 0.0 for phase in ("forward", "backward") for se in (False, True)}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = perf_counter()
        out = func(*args, **(kwargs or {}))
        if any(t.is_cuda for t in tensors_in(out)):
            torch.cuda.synchronize()
        seconds = perf_counter() - start
        if self.backward[0]:
            node = torch._C._current_autograd_node()
            self.seconds["backward", node is not None and node in self.se_nodes] += seconds
        else:
            self.seconds["forward", self.inside[0] > 0] += seconds
        return out


def _se_roots(model: nn.Module) -> list[nn.Module]:
    names = {name for name, family in attention_modules(model).items() if family == SE}
    return [module for name, module in model.named_modules() if name in names]


def _timed_pass(model: nn.Module, x: torch.Tensor, roots: list[nn.Module]) -> dict[tuple[str, bool], float]:
    """One training pass (forward, backward of a scalar loss) with each op timed and marked SE or not."""
    se_nodes: set[object] = set()
    inside, backward = [0], [False]

    def enter(module: nn.Module, args: object) -> None:
        inside[0] += 1

    def leave(module: nn.Module, args: tuple[object, ...], output: object) -> None:
        inside[0] -= 1
        se_nodes.update(_autograd_nodes(output, args))

    handles = [root.register_forward_pre_hook(enter) for root in roots]
    handles += [root.register_forward_hook(leave, always_call=True) for root in roots]
    clock = _PassClock(se_nodes, inside, backward)
    try:
        with clock:
            loss = scalar_loss(model(x))
            backward[0] = True
            loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    for param in model.parameters():
        param.grad = None
    return clock.seconds


def measure_train_share(model: nn.Module, options: Setting) -> TrainShare:
    """SE's share of the op time of a training pass (train mode, forward and backward), over repeats.

    Forward ops count as SE's while an SE module runs; backward ops while the autograd engine runs a node
    that an SE module's forward created (found by walking the graph from its outputs back to its inputs).
    Gradient accumulation into SE's weights is SE's; the optimizer step is not part of the pass.
    """
    options = _checked(options)
    dtype = options.torch_dtype
    work = copy.deepcopy(model).to(device=options.device, dtype=dtype).train()
    roots = _se_roots(work)
    if not roots:
        raise UserInputError("the model has no SE block: there is no SE share of a training pass to measure")
    x = torch.randn(*options.shape, device=options.device, dtype=dtype)
    shares, forward, backward, fraction = [], [], [], []
    before = torch.get_num_threads()
    torch.set_num_threads(options.threads or before)
    try:
        for _ in range(options.warmup):
            _timed_pass(work, x, roots)
        for _ in range(options.repeats):
            seconds = _timed_pass(work, x, roots)
            fwd = seconds["forward", False] + seconds["forward", True]
            bwd = seconds["backward", False] + seconds["backward", True]
            shares.append((seconds["forward", True] + seconds["backward", True]) / (fwd + bwd) * 100)
            forward.append(seconds["forward", True] / fwd * 100)
            backward.append(seconds["backward", True] / bwd * 100 if bwd else 0.0)
            fraction.append(bwd / (fwd + bwd) * 100)
            gc.collect(1)
    finally:
        torch.set_num_threads(before)
    low, high = bootstrap_median_ci(shares)
    return TrainShare(
        share_pct=float(np.median(shares)),
        share_ci=(low, high),
        forward_share_pct=float(np.median(forward)),
        backward_share_pct=float(np.median(backward)),
        backward_fraction_pct=float(np.median(fraction)),
        repeats=options.repeats,
    )
