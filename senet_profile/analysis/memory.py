"""Peak activation memory of one pass of a model, counted storage by storage, with the SE blocks' share.

``peak_bytes`` is the largest total, at any moment of the pass, of the tensor storage allocated during the
pass and still alive -- activations, the output, backward's temporaries -- above the parameters, the
buffers and the input, which are never counted.

How it counts
    A ``TorchDispatchMode`` sees the output tensors of every ATen op that runs below autograd, in forward
    and in backward. Each untyped storage it has not seen before is one allocation: its ``nbytes`` go onto
    a running total, and a weak reference on the storage's Python object (which PyTorch keeps alive exactly
    as long as the C++ storage) takes them off again when the storage is freed. Views and in-place ops
    return a storage that is already known, so a storage counts once however many tensors look at it; an op
    that grows a known storage (``out=`` variants, ``resize_``) adds the growth. The storages of the
    parameters, the buffers and the input are registered before the pass and never counted, nor is any
    other storage that existed before the pass and is merely viewed during it.

    Every allocation is charged to the innermost module whose forward was running (forward pre/post hooks
    on every submodule, removed afterwards); it is "inside SE" when any enclosing module is an SE module
    (``senet_profile.catalog.se.is_se_module``). Backward runs outside any module's forward, so gradients of
    activations are charged to the top level (``""``), never to SE: ``se_peak_bytes`` is the forward-time
    SE allocations still live at the peak. Read it as "held by tensors SE created", not as "what SE adds":
    the product ``x * weights`` is SE's, yet an SE-free block holds a map of that size in its place, while
    ``x`` itself -- which SE keeps alive -- was allocated by the layer before. What SE adds is the
    difference between the two models' ``peak_bytes`` (the records' ``memory_peak_se``: the peak less the
    peak of the same model with its SE modules taken out, ``analysis/metrics.py``); in training it is close
    to ``se_saved_bytes`` (ResNet-50, batch 2, 224x224: +44.42 MB of peak against 44.40 MB saved by SE).

Live at the peak
    ``peak_tensors`` lists the storages live at the peak (the module and aten op that allocated each, the
    shape of the first tensor that viewed it, its bytes), in allocation order, and ``peak_at`` the one whose
    allocation reached the peak: where in the pass the peak falls. ``analysis/explain.py`` compares them
    between two models.

Saved for backward
    ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd saves. A saved tensor counts
    with the nbytes of its whole storage, once per storage (the first module to save it gets it), and is
    charged to the module running when it was saved -- not the one that allocated it. So the input ``x`` of
    an SE block's final ``x * weights``, allocated by the preceding BN but kept alive only because the
    multiplication saves it, is SE memory: it is usually the largest item in ``se_saved_tensors``. Saved
    parameters and the saved input are not activations and are left out. The op named for a saved tensor is
    the innermost ``torch`` function running when it was saved (a ``TorchFunctionMode``), e.g. ``conv2d``,
    ``sigmoid``, ``mul``.

Training
    ``mode="train"`` runs ``model.train()``, a forward, the sum of the output(s) as the loss, and backward.
    Parameter gradients are allocated during backward but belong to the parameters (an optimiser keeps them
    from step to step), so they are reported as ``grad_bytes`` and left out of ``peak_bytes`` and of the
    live total from the moment they are allocated.

    The pass runs on the caller's model itself when it already lives on ``device`` in ``dtype`` -- its
    hooks are removed and its training flags, gradients and buffers (BN running statistics) restored
    afterwards -- and otherwise on a deep copy moved there, so the caller's model is never moved or cast.

Meta device
    On ``device="meta"`` the same ops run with the same output shapes, dtypes and strides but no data, so
    every dispatched storage has the same ``nbytes`` and is freed at the same point: the figures equal those
    of the CPU run, byte for byte (tests/test_memory.py checks this on an SE-ResNet-50, infer and train; a
    check at batch 2, 224x224 agreed too). A CUDA run may differ a little: there batch norm goes through
    cuDNN, whose kernels return (and autograd saves) an extra reserve tensor.

Not counted
    Scratch memory a kernel allocates and frees inside itself (oneDNN or cuDNN workspaces, reduction
    buffers), allocator rounding and caching, and the parameters. On CUDA ``cuda_max_allocated`` gives
    ``torch.cuda.max_memory_allocated`` above the level before the pass beside the tracked figure; it
    includes all of those and the parameter gradients, so it is at or above ``peak_bytes``.
"""

from __future__ import annotations

import copy
import itertools
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.hooks import RemovableHandle

from senet_profile.analysis.trace import scalar_loss
from senet_profile.catalog.se import is_se_module
from senet_profile.errors import UserInputError


@dataclass(frozen=True)
class LiveTensor:
    """One storage live at the peak: the module and aten op that allocated it, its shape and bytes.

    ``held_by`` names what keeps it alive for backward: each ``module: op`` that saved it (in a training
    pass; empty in inference, or for a storage no op saved). Together with where it was made, that is the
    tensor's identity: the storages of two passes are matched by it before their shapes are.
    """

    module: str
    op: str
    shape: tuple[int, ...]
    nbytes: int
    in_se: bool
    held_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemoryProfile:
    """Peak live activation bytes and saved-for-backward bytes of one pass, with the SE blocks' share."""

    mode: str
    device: str
    peak_bytes: int
    saved_bytes: int
    se_peak_bytes: int
    se_saved_bytes: int
    saved_by_module: dict[str, int]
    se_saved_tensors: tuple[tuple[str, str, tuple[int, ...], int], ...]
    grad_bytes: int
    cuda_max_allocated: int | None
    peak_tensors: tuple[LiveTensor, ...] = ()
    peak_at: LiveTensor | None = None


@dataclass(frozen=True)
class _Frame:
    """One running module: its qualified name and whether it is (inside) an SE module."""

    name: str
    in_se: bool


_TOP = _Frame(name="", in_se=False)


class _ModuleStack:
    """The stack of modules whose forward is running, kept by hooks on every submodule of a model."""

    def __init__(self, model: nn.Module) -> None:
        self.frames: list[_Frame] = [_TOP]
        self._handles: list[RemovableHandle] = []
        for name, module in model.named_modules():
            enter = partial(self._enter, name, is_se_module(module))
            self._handles.append(module.register_forward_pre_hook(enter))
            self._handles.append(module.register_forward_hook(self._exit, always_call=True))

    def _enter(self, name: str, is_se: bool, _module: nn.Module, _args: Any) -> None:
        self.frames.append(_Frame(name=name, in_se=is_se or self.frames[-1].in_se))

    def _exit(self, _module: nn.Module, _args: Any, _output: Any) -> None:
        if len(self.frames) > 1:
            self.frames.pop()

    def remove(self) -> None:
        """Remove every hook this stack added."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class _OpNames(TorchFunctionMode):
    """Keeps the name of the innermost ``torch`` function running (nested calls are not re-entered)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.names.append(getattr(func, "__name__", str(func)).strip("_"))
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.names.pop()

    def current(self) -> str:
        """Name of the innermost running torch function, or ``""``."""
        return self.names[-1] if self.names else ""


@dataclass
class _Live:
    """A tracked storage that is still alive: its serial number, size and the weakref that reports its end."""

    serial: int
    nbytes: int
    ref: weakref.ref


def _storage(tensor: torch.Tensor) -> torch.UntypedStorage | None:
    try:
        return tensor.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):  # sparse, nested or other storage-less tensors
        return None


class _Allocations(TorchDispatchMode):
    """Records each new storage an op returns (size, owning module) and, through a weakref, when it dies."""

    def __init__(self, stack: _ModuleStack, existing: list[torch.Tensor]) -> None:
        super().__init__()
        self._stack = stack
        self._keep: list[torch.UntypedStorage] = []  # keeps ignored storages alive so their ids stay theirs
        self._ignored: set[int] = set()
        for tensor in existing:
            self._ignore(_storage(tensor))
        self._live: dict[int, _Live] = {}
        self.owners: list[_Frame] = []  # serial -> frame that allocated it
        self.origins: list[tuple[str, tuple[int, ...]]] = []  # serial -> (aten op, shape of first tensor)
        self.events: list[tuple[int, int]] = []  # (serial, +bytes allocated / -bytes freed), in order
        self.active = True

    def _ignore(self, storage: torch.UntypedStorage | None) -> None:
        if storage is not None and id(storage) not in self._ignored:
            self._ignored.add(id(storage))
            self._keep.append(storage)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._see(leaf, args, kwargs, getattr(func, "overloadpacket", func).__name__)
        return out

    def _see(self, tensor: torch.Tensor, args: Any, kwargs: Any, op: str) -> None:
        storage = _storage(tensor)
        if storage is None or id(storage) in self._ignored:
            return
        key = id(storage)
        live = self._live.get(key)
        if live is not None:
            grown = storage.nbytes() - live.nbytes
            if grown:
                live.nbytes += grown
                self.events.append((live.serial, grown))
            return
        inputs = (leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor))
        if any(_storage(leaf) is storage for leaf in inputs):  # a view of something that predates the pass
            self._ignore(storage)
            return
        serial = len(self.owners)
        self.owners.append(self._stack.frames[-1])
        self.origins.append((op, tuple(tensor.shape)))
        nbytes = storage.nbytes()
        self._live[key] = _Live(
            serial=serial, nbytes=nbytes, ref=weakref.ref(storage, partial(self._freed, key))
        )
        self.events.append((serial, nbytes))

    def _freed(self, key: int, _ref: weakref.ref) -> None:
        live = self._live.pop(key, None)
        if live is not None and self.active:
            self.events.append((live.serial, -live.nbytes))

    def serial_of(self, tensor: torch.Tensor) -> int | None:
        """Serial number of the tracked storage behind ``tensor``; None for ignored or unknown storages."""
        storage = _storage(tensor)
        live = self._live.get(id(storage)) if storage is not None else None
        return None if live is None else live.serial

    def close(self) -> None:
        """Stop recording frees and drop every reference this tracker holds."""
        self.active = False
        self._live.clear()
        self._keep.clear()


@dataclass(frozen=True)
class _SavedTensor:
    """One storage saved for backward: who saved it, with which op, its shape and the storage's bytes."""

    module: str
    in_se: bool
    op: str
    shape: tuple[int, ...]
    nbytes: int


class _SavedTensors:
    """Pack hook that records each storage autograd saves, once, charged to the module saving it."""

    def __init__(self, allocations: _Allocations, stack: _ModuleStack, ops: _OpNames) -> None:
        self._allocations = allocations
        self._stack = stack
        self._ops = ops
        self._seen: set[int] = set()
        self.records: list[_SavedTensor] = []
        self.holders: dict[int, list[str]] = {}  # serial -> every "module: op" that saved it

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        """Record ``tensor``'s storage if it is an activation not saved before; keep the tensor as is."""
        serial = self._allocations.serial_of(tensor)
        if serial is not None:
            holder = f"{self._stack.frames[-1].name or '(top level)'}: {self._ops.current()}"
            held = self.holders.setdefault(serial, [])
            if holder not in held:
                held.append(holder)
        if serial is not None and serial not in self._seen:
            self._seen.add(serial)
            frame = self._stack.frames[-1]
            storage = tensor.untyped_storage()
            self.records.append(
                _SavedTensor(
                    frame.name, frame.in_se, self._ops.current(), tuple(tensor.shape), storage.nbytes()
                )
            )
        return tensor

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        """Give back the saved tensor unchanged."""
        return tensor


def _infer_pass(model: nn.Module, x: torch.Tensor) -> None:
    model.eval()
    with torch.inference_mode():
        model(x)


def _train_pass(model: nn.Module, x: torch.Tensor) -> None:
    model.train()
    loss = scalar_loss(model(x))  # the output itself is freed here: a sum saves nothing for backward
    loss.backward()


_PASSES: dict[str, Callable[[nn.Module, torch.Tensor], None]] = {"infer": _infer_pass, "train": _train_pass}

_DEVICE_AVAILABLE: dict[str, Callable[[], bool]] = {
    "cpu": lambda: True,
    "meta": lambda: True,
    "cuda": torch.cuda.is_available,
}


def _check_arguments(input_shape: tuple[int, ...], mode: str, device: str, dtype: torch.dtype) -> None:
    if mode not in _PASSES:
        raise UserInputError(f"unknown memory mode {mode!r}; choose one of {', '.join(_PASSES)}")
    if device not in _DEVICE_AVAILABLE:
        raise UserInputError(f"unknown device {device!r}; choose one of {', '.join(_DEVICE_AVAILABLE)}")
    if not _DEVICE_AVAILABLE[device]():
        raise UserInputError(f"device {device!r} asked for, but there is no CUDA device on this machine")
    if not input_shape or any(not isinstance(n, int) or n <= 0 for n in input_shape):
        raise UserInputError(f"input shape must be positive integers, got {tuple(input_shape)}")
    if not dtype.is_floating_point:
        raise UserInputError(f"memory is measured in a floating dtype, got {dtype}")


def _working_model(model: nn.Module, device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, bool]:
    """The model itself when it already lives on ``device`` in ``dtype``, else a moved deep copy."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.device != device or (tensor.is_floating_point() and tensor.dtype != dtype):
            return copy.deepcopy(model).to(device=device, dtype=dtype), False
    return model, True


@contextmanager
def _restored(model: nn.Module, *, buffers: bool) -> Iterator[None]:
    """Restore training flags and gradients (and buffers, if asked) of ``model`` on the way out."""
    flags = [(module, module.training) for module in model.modules()]
    grads = [(param, param.grad) for param in model.parameters()]
    saved_buffers = [(buf, buf.detach().clone()) for buf in model.buffers()] if buffers else []
    for param, _ in grads:
        param.grad = None
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training
        for param, grad in grads:
            param.grad = grad
        with torch.no_grad():
            for buf, value in saved_buffers:
                buf.copy_(value)


@dataclass(frozen=True)
class _Peak:
    """The peak of a replayed pass: its bytes, the SE-allocated part, and the storages live at it."""

    total: int
    se: int
    live: dict[int, int]  # serial -> bytes
    at: int | None  # serial of the allocation that reached the peak


def _replay(events: list[tuple[int, int]], owners: list[_Frame], excluded: set[int]) -> _Peak:
    """Peak of the live total over ``events`` (leaving ``excluded`` serials out), SE's part, what is live."""
    total = se = peak = se_at_peak = 0
    peak_index = -1
    for index, (serial, delta) in enumerate(events):
        if serial in excluded:
            continue
        total += delta
        if owners[serial].in_se:
            se += delta
        if total > peak:
            peak, se_at_peak, peak_index = total, se, index
    live: dict[int, int] = {}
    for serial, delta in events[: peak_index + 1]:  # a second pass, up to the peak, for the live set
        if serial not in excluded:
            live[serial] = live.get(serial, 0) + delta
            if live[serial] == 0:
                del live[serial]
    return _Peak(peak, se_at_peak, live, events[peak_index][0] if peak_index >= 0 else None)


def _live_tensor(
    serial: int, nbytes: int, allocations: _Allocations, holders: dict[int, list[str]]
) -> LiveTensor:
    frame = allocations.owners[serial]
    op, shape = allocations.origins[serial]
    return LiveTensor(frame.name, op, shape, nbytes, frame.in_se, tuple(holders.get(serial, ())))


def _live_tensors(
    peak: _Peak, allocations: _Allocations, holders: dict[int, list[str]]
) -> tuple[LiveTensor, ...]:
    """The storages live at the peak, in allocation order, each with what saved it for backward."""
    return tuple(
        _live_tensor(serial, peak.live[serial], allocations, holders) for serial in sorted(peak.live)
    )


def _grad_storages(model: nn.Module, allocations: _Allocations) -> tuple[set[int], int]:
    """Serials of the tracked storages behind parameter gradients, and those gradients' bytes."""
    serials: set[int] = set()
    seen: set[int] = set()
    nbytes = 0
    for param in model.parameters():
        if param.grad is None:
            continue
        storage = param.grad.untyped_storage()
        if id(storage) not in seen:
            seen.add(id(storage))
            nbytes += storage.nbytes()
        serial = allocations.serial_of(param.grad)
        if serial is not None:
            serials.add(serial)
    return serials, nbytes


def measure_memory(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    mode: str = "infer",
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> MemoryProfile:
    """Peak live activation bytes (and saved-for-backward bytes in train mode) of one pass, SE share apart."""
    _check_arguments(input_shape, mode, device, dtype)
    target = torch.empty(0, device=device).device
    work, in_place = _working_model(model, target, dtype)
    x = torch.randn(tuple(input_shape), device=target, dtype=dtype)
    existing = [*work.parameters(), *work.buffers(), x]
    with _restored(work, buffers=in_place and mode == "train"):
        cuda_base = _cuda_start() if device == "cuda" else 0
        stack = _ModuleStack(work)
        allocations = _Allocations(stack, existing)
        ops = _OpNames()
        saved = _SavedTensors(allocations, stack, ops)
        try:
            with ops, allocations, torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
                _PASSES[mode](work, x)
            cuda_max = _cuda_peak_above(cuda_base) if device == "cuda" else None
            grad_serials, grad_bytes = _grad_storages(work, allocations)
        finally:
            stack.remove()
            allocations.close()
    peak = _replay(allocations.events, allocations.owners, grad_serials)
    by_module: dict[str, int] = {}
    for record in saved.records:
        by_module[record.module] = by_module.get(record.module, 0) + record.nbytes
    se_records = [record for record in saved.records if record.in_se]
    return MemoryProfile(
        mode=mode,
        device=device,
        peak_bytes=peak.total,
        saved_bytes=sum(record.nbytes for record in saved.records),
        se_peak_bytes=peak.se,
        se_saved_bytes=sum(record.nbytes for record in se_records),
        saved_by_module=by_module,
        se_saved_tensors=tuple((r.module, r.op, r.shape, r.nbytes) for r in se_records),
        grad_bytes=grad_bytes,
        cuda_max_allocated=cuda_max,
        peak_tensors=_live_tensors(peak, allocations, saved.holders),
        peak_at=(
            None if peak.at is None else _live_tensor(peak.at, peak.live[peak.at], allocations, saved.holders)
        ),
    )


def _cuda_start() -> int:
    """Synchronise, reset the CUDA peak counter and return the bytes allocated now."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def _cuda_peak_above(base: int) -> int:
    """Synchronise and return ``torch.cuda.max_memory_allocated`` above ``base``."""
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base
