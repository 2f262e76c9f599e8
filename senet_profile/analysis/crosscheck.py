"""Run three external counters on a model and put their totals in our unit (MACs), with what each skipped.

Our convention counts multiply-accumulates of convolutions and matrix products only. The tools disagree
with it, and with each other, in known ways (all read from their sources and checked on small networks):

- ``fvcore``: traces with TorchScript; one "flop" is one fused multiply-add, i.e. one MAC. Convolutions
  and linear layers without their bias, plus batch norm (2 per element with affine, 1 without),
  ``adaptive_avg_pool2d`` (1 per input element), upsampling, group/layer/instance norm. Ops without a
  handle (``mean``, ``mul``, ``sigmoid``, ``max_pool2d``, ``add_``...) are reported by fvcore as
  unsupported: they are ``skipped`` here. A few it ignores by design (``relu``, ``clamp``, views) are not.
- ``ptflops-pytorch``: forward hooks on known module types (exact types, not subclasses). Convolutions
  and linear layers *with* their bias, batch norm (2 per element with affine, 1 without) and the other
  norms, ReLU-like activations (1 per element), pooling (1 per input element), upsampling, RNNs and
  attention. It also patches some ``torch.nn.functional`` calls and tensor methods (``F.relu``, ``F.gelu``,
  ``F.silu``, ``F.*pool*``, ``F.softmax``, ``F.interpolate``, ``torch.mul``/``Tensor.mul``, ``add``,
  ``matmul``, ``mm``, ``bmm``, ``addmm``...; not ``x * s``): ``nn.ReLU``, ``nn.MaxPool2d``,
  ``nn.AdaptiveAvgPool2d``... call those and are counted twice. That part is ``by_op["functional"]``.
  Code in a module of any other type (an SE block's ``x.mean``/``x * s``, ``nn.Sigmoid``, a residual
  block's ``out += identity``) is not counted: those module types are ``skipped``. Its module hooks
  report MACs per sample; they are scaled back to the whole batch here, as every other tool counts it.
- ``ptflops-aten``: a dispatch mode counting ``mm``, ``matmul``, ``addmm``, ``bmm`` and convolutions,
  with their bias (``addmm`` always adds ``batch x out`` for its bias term). Every other aten op is
  ``skipped``.
- ``torch.flop_counter``: ``torch.utils.flop_counter.FlopCounterMode``, 2 FLOPs per MAC, halved here;
  matrix products, convolutions (without bias) and attention kernels. Ops that ran without a formula
  count zero: ``skipped``.

``skipped`` never lists views, copies and tensor factories: they do no arithmetic under any convention.
``extra`` lists the kinds a tool counted that our convention excludes: its ``by_op`` entries that are not
convolutions, linear layers or matrix products, and ``bias`` when it folds bias additions into those.
"""

from __future__ import annotations

import contextlib
import copy
import io
import operator
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from senet_profile.errors import UserInputError


@dataclass(frozen=True)
class ToolCount:
    """One external counter's total in MACs, its per-op split, and what it skipped or added."""

    tool: str
    macs: int | None
    by_op: dict[str, int]
    skipped: tuple[str, ...]
    extra: tuple[str, ...]
    error: str | None


TOOLS: tuple[str, ...] = ("fvcore", "ptflops-pytorch", "ptflops-aten", "torch.flop_counter")

# Ops that only create, copy or re-view tensors (views are recognised by their schema instead).
_NO_ARITHMETIC = frozenset(
    {
        "aten._to_copy",
        "aten.clone",
        "aten.copy_",
        "aten.cat",
        "aten.stack",
        "aten.detach",
        "aten.alias",
        "aten.lift_fresh",
        "aten.empty_like",
        "aten.zeros_like",
        "aten.ones_like",
        "aten.full_like",
        "aten.new_empty",
        "aten.new_zeros",
        "aten.new_ones",
        "aten.new_full",
        "aten.fill_",
        "aten.zero_",
    }
)
# By name: convolutions, linear layers, matrix products and the modules built on them.
_MAC_KIND = re.compile(r"conv|linear|mm|matmul|einsum|attention|rnn|lstm|gru", re.IGNORECASE)
_NOT_MAC_KIND = re.compile(r"upsample|interpolate", re.IGNORECASE)
_PTFLOPS_FAILURE = re.compile(r"<class '(?:[\w.]*\.)?(\w+)'>: (.*)")


@dataclass(frozen=True)
class _Raw:
    """What a runner found, before it is turned into a ToolCount."""

    macs: int
    by_op: dict[str, int]
    skipped: frozenset[str] = frozenset()
    counts_bias: bool = False


class _ToolFailedError(RuntimeError):
    """A tool reported failure without raising; the message is already the one-line reason."""


class _OpLog(TorchDispatchMode):
    """Records each arithmetic aten op that runs, with the types of the modules it runs inside."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[type[nn.Module]] = []
        self.ops: set[tuple[str, tuple[type[nn.Module], ...]]] = set()

    def __torch_dispatch__(
        self, func: torch._ops.OpOverload, types: object, args: tuple = (), kwargs: dict | None = None
    ) -> object:
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if _does_arithmetic(func, name, (args, kwargs)):
            self.ops.add((name, tuple(self.stack)))
        return func(*args, **kwargs)

    def names(self) -> set[str]:
        """Names of the ops recorded, wherever they ran."""
        return {name for name, _ in self.ops}


def _does_arithmetic(func: torch._ops.OpOverload, name: str, args: object) -> bool:
    if func.is_view or name in _NO_ARITHMETIC:
        return False
    return any(isinstance(leaf, torch.Tensor) for leaf in pytree.tree_leaves(args))


@contextlib.contextmanager
def _module_stack(model: nn.Module, log: _OpLog) -> Iterator[None]:
    """Keep `log.stack` equal to the types of the modules of `model` currently running."""

    def enter(module: nn.Module, _inputs: object) -> None:
        log.stack.append(type(module))

    def leave(_module: nn.Module, _inputs: object, _output: object) -> None:
        log.stack.pop()

    handles = [
        h
        for m in model.modules()
        for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Swallow warnings, stdout and stderr; yield what was written."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield sink


def _run_fvcore(model: nn.Module, x: torch.Tensor) -> _Raw:
    from fvcore.nn import FlopCountAnalysis  # imported only when asked for: it warns on import

    analysis = (
        FlopCountAnalysis(model, (x,))
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
        .tracer_warnings("none")
    )
    by_op = {name: round(count) for name, count in analysis.by_operator().items()}
    return _Raw(macs=round(analysis.total()), by_op=by_op, skipped=frozenset(analysis.unsupported_ops()))


def _ptflops_total(
    model: nn.Module, x: torch.Tensor, *, backend: str, hooks: dict[Any, Callable[..., Any]]
) -> int:
    from ptflops import get_model_complexity_info  # imports torchvision: only when asked for

    with _quiet() as output:
        macs, _params = get_model_complexity_info(
            model,
            tuple(x.shape),
            input_constructor=lambda _res: x,
            as_strings=False,
            print_per_layer_stat=False,
            backend=backend,
            custom_modules_hooks=hooks,
        )
    if macs is None:
        raise _ToolFailedError(_ptflops_reason(output.getvalue()))
    return int(macs)


def _ptflops_reason(printed: str) -> str:
    """ptflops prints its exception and returns None: recover the exception's first line."""
    match = _PTFLOPS_FAILURE.search(printed)
    return f"{match.group(1)}: {match.group(2)}" if match else "ptflops returned no count"


def _run_ptflops_pytorch(model: nn.Module, x: torch.Tensor) -> _Raw:
    from ptflops.pytorch_ops import MODULES_MAPPING

    per_type: Counter[str] = Counter()
    biased: set[str] = set()
    hooks = {kind: _recording_hook(hook, per_type, biased) for kind, hook in MODULES_MAPPING.items()}
    with _OpLog() as log, _module_stack(model, log):
        reported = _ptflops_total(model, x, backend="pytorch", hooks=hooks)
    module_macs = sum(per_type.values())
    # Module hooks are divided by the batch size; the patched functionals are not.
    functional = reported - module_macs // x.shape[0]
    by_op = dict(per_type) | ({"functional": functional} if functional else {})
    return _Raw(
        macs=module_macs + functional,
        by_op=by_op,
        skipped=frozenset(_unhooked_types(log, frozenset(hooks))),
        counts_bias=bool(biased),
    )


def _recording_hook(
    hook: Callable[..., None], per_type: Counter[str], biased: set[str]
) -> Callable[..., None]:
    """Wrap a ptflops module hook so that the MACs it adds are also booked under the module's type."""

    def record(module: nn.Module, inputs: object, output: object) -> None:
        # ptflops keeps its running count in an int attribute it sets on each module
        before = cast(int, module.__flops__)
        hook(module, inputs, output)
        kind = type(module).__name__
        per_type[kind] += cast(int, module.__flops__) - before
        bias = getattr(module, "bias", None)  # a tensor, or a flag on RNNs
        if _is_mac_kind(kind) and bias is not None and bias is not False:
            biased.add(kind)

    return record


def _unhooked_types(log: _OpLog, hooked: frozenset[type]) -> set[str]:
    """Types of the innermost modules that ran arithmetic outside every module ptflops hooks (exact types)."""
    return {stack[-1].__name__ for _, stack in log.ops if stack and hooked.isdisjoint(stack)}


def _run_ptflops_aten(model: nn.Module, x: torch.Tensor) -> _Raw:
    from ptflops.aten_ops import ATEN_OPS_MAPPING

    per_op: Counter[str] = Counter()
    biased: set[str] = set()
    formulas = {op: _recording_formula(str(op), f, per_op, biased) for op, f in ATEN_OPS_MAPPING.items()}
    with _OpLog() as log:
        macs = _ptflops_total(model, x, backend="aten", hooks=formulas)
    counted = {str(op) for op in ATEN_OPS_MAPPING}
    return _Raw(
        macs=macs, by_op=dict(per_op), skipped=frozenset(log.names() - counted), counts_bias=bool(biased)
    )


# Position of the bias among an op's arguments, for the ops whose ptflops formula counts a bias.
_BIAS_ARG = {"aten.convolution": 2, "aten._convolution": 2, "aten.addmm": 0}


def _recording_formula(
    name: str, formula: Callable[..., int], per_op: Counter[str], biased: set[str]
) -> Callable[..., int]:
    """Wrap a ptflops aten formula so that its count is booked under the op, noting any bias it adds."""

    def record(args: Sequence[object], outputs: Sequence[object]) -> int:
        macs = int(formula(args, outputs))
        per_op[name] += macs
        position = _BIAS_ARG.get(name)
        if position is not None and args[position] is not None:
            without_bias = [None if i == position else a for i, a in enumerate(args)]
            if macs > formula(without_bias, outputs):
                biased.add(name)
        return macs

    return record


def _run_torch_flop_counter(model: nn.Module, x: torch.Tensor) -> _Raw:
    # The log is entered first, so it sees the ops the counter runs, after the counter's decompositions.
    with _OpLog() as log, FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_flop_counts().get("Global", {})
    by_op = {str(op): count // 2 for op, count in flops.items()}
    counted = {str(op) for op in flop_registry}
    return _Raw(macs=counter.get_total_flops() // 2, by_op=by_op, skipped=frozenset(log.names() - counted))


_RUNNERS: dict[str, Callable[[nn.Module, torch.Tensor], _Raw]] = {
    "fvcore": _run_fvcore,
    "ptflops-pytorch": _run_ptflops_pytorch,
    "ptflops-aten": _run_ptflops_aten,
    "torch.flop_counter": _run_torch_flop_counter,
}


def _is_mac_kind(name: str) -> bool:
    return bool(_MAC_KIND.search(name)) and not _NOT_MAC_KIND.search(name)


def _extra(raw: _Raw) -> tuple[str, ...]:
    kinds = {name for name, macs in raw.by_op.items() if macs and not _is_mac_kind(name)}
    return tuple(sorted(kinds | ({"bias"} if raw.counts_bias else set())))


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(exc, _ToolFailedError):
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _failed(tool: str, exc: BaseException) -> ToolCount:
    return ToolCount(tool=tool, macs=None, by_op={}, skipped=(), extra=(), error=_one_line(exc))


def _run(tool: str, template: nn.Module, x: torch.Tensor) -> ToolCount:
    try:
        with _quiet(), torch.no_grad():
            raw = _RUNNERS[tool](copy.deepcopy(template), x)
    except Exception as exc:  # a tool's failure is part of the answer, never a crash
        return _failed(tool, exc)
    return ToolCount(
        tool=tool,
        macs=raw.macs,
        by_op=raw.by_op,
        skipped=tuple(sorted(raw.skipped)),
        extra=_extra(raw),
        error=None,
    )


def _cpu_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy of `model` in eval mode; meta tensors become zeros (variances ones)."""
    clone = copy.deepcopy(model)
    if any(t.is_meta for t in [*clone.parameters(), *clone.buffers()]):
        clone = clone.to_empty(device="cpu")
        with torch.no_grad():
            for param in clone.parameters():
                param.zero_()
            for name, buffer in clone.named_buffers():
                buffer.fill_(1 if name.endswith("running_var") else 0)
    return clone.to(device="cpu", dtype=torch.float32).eval()


def _check_tools(tools: Sequence[str]) -> tuple[str, ...]:
    names = (tools,) if isinstance(tools, str) else tuple(dict.fromkeys(tools))
    unknown = [name for name in names if name not in _RUNNERS]
    if unknown:
        raise UserInputError(f"unknown tool(s) {', '.join(map(repr, unknown))}; valid: {', '.join(TOOLS)}")
    return names


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UserInputError(f"input shape must be positive integers, batch first; got {input_shape!r}")
    return shape


def crosscheck(
    model: torch.nn.Module, input_shape: tuple[int, ...], *, tools: Sequence[str] = TOOLS
) -> list[ToolCount]:
    """Count `model` with each tool, on its own CPU float32 eval-mode copy, fed zeros of `input_shape`."""
    names = _check_tools(tools)
    x = torch.zeros(_check_shape(input_shape))
    try:
        template = _cpu_copy(model)
    except Exception as exc:  # an uncopyable model fails every tool, it does not raise
        return [_failed(name, exc) for name in names]
    return [_run(name, template, x) for name in names]
