"""Run a model once and record every aten op it executes, with the module that ran it.

This is the project's one counting mechanism: a ``TorchDispatchMode`` sees each op after autograd and
decompositions (so a user's model and the catalog's are counted the same way, whatever their Python code
looks like), and forward hooks keep a stack of qualified module names, so that each op is attributed to the
innermost module running when it was dispatched. Run it on the meta device and nothing is computed or
allocated: shapes alone decide every count.

Convention (MACs): one multiply-accumulate = 1. Only convolutions (including grouped and transposed) and
matrix products (``addmm``, ``mm``, ``bmm``, ``baddbmm``: linear layers and matmuls; ``mv``, ``addmv``,
``dot``: matrix-vector and vector products) have MACs; their bias
additions are not counted. Every other op is classified (reduction, elementwise, normalization, data
movement, view) and its element counts kept, so callers can report non-MAC work under their own
convention; an op in none of these classes is kept as ``unknown`` and must be reported, never taken as 0.

Convention (bytes moved): an op reads every tensor it is given (inputs, weights, biases, running statistics:
a weight is read once per call) and writes every tensor it returns, each tensor once however often it is
passed, at its dtype's size (fp32 4 bytes, bf16/fp16 2). A broadcast (stride-0) dimension is read once,
not once per use. View and metadata ops (``view``, ``expand``, ``permute``...) and bare allocations
(``empty``) move nothing; an in-place op reads its target and writes it once; an ``out=`` tensor is written,
not read. This is the traffic an op cannot avoid if nothing stays in registers between ops -- what an
eager framework does; caches decide how fast it goes, not how much it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import cast

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from senet_profile.errors import ToolBug, UserInputError


@dataclass(frozen=True)
class OpEvent:
    """One executed aten op: its name, class, the module that ran it and its element counts."""

    op: str
    category: str
    module: str
    macs: int
    in_elements: int
    out_elements: int
    bytes_read: int = 0
    bytes_written: int = 0
    kind: str = ""
    seconds: float | None = None
    phase: str = "forward"  # or "backward": run by autograd for the forward op ``forward_op``
    forward_op: str = ""  # a backward op's forward op (its module is that op's), "" if none
    # How an elementwise op walks memory (``access_pattern``): ``dense`` (every full-size operand in one
    # layout), ``broadcast`` (an operand repeated over the output) or ``mixed`` (full-size operands in
    # different layouts). A reduction's contiguous reduced run (``reduced_run``): the elements each
    # output sums that lie next to each other in memory (1 when the innermost dimension is kept).
    access: str = "dense"
    reduced_run: int = 0

    @property
    def bytes_moved(self) -> int:
        """Bytes read plus bytes written by this op (see the module's convention)."""
        return self.bytes_read + self.bytes_written


@dataclass(frozen=True)
class Trace:
    """Every op a forward pass executed, and the modules it never called."""

    events: tuple[OpEvent, ...]
    uncalled_modules: tuple[str, ...]


def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


def _conv_macs(args: Sequence[object], out: torch.Tensor) -> int:
    inp, weight = args[0], args[1]
    assert isinstance(inp, torch.Tensor) and isinstance(weight, torch.Tensor)
    transposed = bool(args[6]) if len(args) > 6 else False
    # weight: (out, in/groups, k...) normally, (in, out/groups, k...) when transposed; either way each
    # position of the larger-resolution side does weight.shape[1] * prod(kernel) multiply-adds.
    positions = inp.numel() if transposed else out.numel()
    return positions * int(weight.shape[1]) * _prod(weight.shape[2:])


def _conv_forward_args(args: Sequence[object]) -> tuple[object, ...]:
    """``aten.convolution``'s arguments from ``aten.convolution_backward``'s (the forward it inverts)."""
    # convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
    #                      output_padding, groups, output_mask)
    return (args[1], args[2], None, *args[4:10])


def _conv_backward_macs(args: Sequence[object], out: torch.Tensor) -> int:
    """The forward convolution's MACs once for each of the input and weight gradients computed."""
    grad_output, mask = args[0], cast(Sequence[bool], args[10])
    assert isinstance(grad_output, torch.Tensor)
    forward = _conv_macs(_conv_forward_args(args), grad_output)
    return forward * sum(bool(wanted) for wanted in mask[:2])


def _addmm_macs(args: Sequence[object], out: torch.Tensor) -> int:
    return _mm_macs(args[1:], out)


def _mm_macs(args: Sequence[object], out: torch.Tensor) -> int:
    a, b = args[0], args[1]
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


def _bmm_macs(args: Sequence[object], out: torch.Tensor) -> int:
    a, b = args[0], args[1]
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return _prod(a.shape) * int(b.shape[-1])


def _mv_macs(args: Sequence[object], out: torch.Tensor) -> int:
    """Matrix (m x n) times vector (n): m * n multiply-adds (``dot``: n, the same product with m = 1)."""
    a = args[0]
    assert isinstance(a, torch.Tensor)
    return a.numel()


MAC_OPS: dict[str, Callable[[Sequence[object], torch.Tensor], int]] = {
    "convolution": _conv_macs,
    "convolution_backward": _conv_backward_macs,
    "addmm": _addmm_macs,
    "mm": _mm_macs,
    "bmm": _bmm_macs,
    "baddbmm": lambda args, out: _bmm_macs(args[1:], out),
    "mv": _mv_macs,
    "dot": _mv_macs,
    "addmv": lambda args, out: _mv_macs(args[1:], out),
}

# Ops whose outputs count as activations (the RegNet paper's definition: outputs of conv layers; a linear
# layer is a 1x1 conv on a 1x1 map and counts too, as in pycls's linear_cx).
ACTIVATION_OPS = frozenset({"convolution", "addmm", "mm"})

_CATEGORIES: dict[str, frozenset[str]] = {
    "reduction": frozenset(
        {
            "mean",
            "sum",
            "amax",
            "amin",
            "max",
            "min",
            "argmax",
            "var",
            "var_mean",
            "std",
            "logsumexp",
            "_adaptive_avg_pool2d",
            "adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "avg_pool2d",
            "max_pool2d",
            "max_pool2d_with_indices",
            "avg_pool3d",
            "max_pool3d_with_indices",
            "_softmax",
            "_log_softmax",
            # backward (a training pass)
            "max_pool2d_with_indices_backward",
            "max_pool3d_with_indices_backward",
            "avg_pool2d_backward",
            "avg_pool3d_backward",
            "_adaptive_avg_pool2d_backward",
            "adaptive_max_pool2d_backward",
            "_softmax_backward_data",
            "_log_softmax_backward_data",
        }
    ),
    "elementwise": frozenset(
        {
            "add",
            "sub",
            "rsub",
            "mul",
            "div",
            "relu",
            "sigmoid",
            "tanh",
            "hardsigmoid",
            "hardswish",
            "hardtanh",
            "silu",
            "gelu",
            "leaky_relu",
            "elu",
            "threshold",
            "clamp",
            "clamp_min",
            "clamp_max",
            "neg",
            "exp",
            "log",
            "pow",
            "sqrt",
            "rsqrt",
            "abs",
            "where",
            "maximum",
            "minimum",
            "erf",
            "sign",
            "softplus",
            "mish",
            "masked_fill",
            "fill",
            "zero",
            "native_dropout",
            "bernoulli",
            "addcmul",
            "addcdiv",
            "lerp",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "logical_not",
            "logical_and",
            "logical_or",
            # backward (a training pass)
            "threshold_backward",
            "sigmoid_backward",
            "tanh_backward",
            "hardsigmoid_backward",
            "hardswish_backward",
            "hardtanh_backward",
            "silu_backward",
            "gelu_backward",
            "leaky_relu_backward",
            "elu_backward",
            "softplus_backward",
            "mish_backward",
            "native_dropout_backward",
        }
    ),
    "normalization": frozenset(
        {
            "native_batch_norm",
            "_native_batch_norm_legit",
            "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit_functional",
            "batch_norm",
            "native_layer_norm",
            "native_group_norm",
            "cudnn_batch_norm",
            # backward (a training pass)
            "native_batch_norm_backward",
            "batch_norm_backward",
            "cudnn_batch_norm_backward",
            "native_layer_norm_backward",
            "native_group_norm_backward",
        }
    ),
    "data": frozenset(
        {
            "cat",
            "stack",
            "clone",
            "copy",
            "_to_copy",
            "constant_pad_nd",
            "empty",
            "empty_like",
            "zeros",
            "zeros_like",
            "ones",
            "ones_like",
            "full",
            "full_like",
            "new_empty",
            "new_empty_strided",
            "empty_strided",
            "new_zeros",
            "scalar_tensor",
            "lift_fresh",
            "index",
            "index_select",
            "gather",
            "channel_shuffle",
            "native_channel_shuffle",
            "pixel_shuffle",
            "upsample_nearest2d",
            "upsample_bilinear2d",
            # backward (a training pass)
            "slice_backward",
            "select_backward",
            "upsample_nearest2d_backward",
            "upsample_bilinear2d_backward",
        }
    ),
    "view": frozenset(
        {
            "view",
            "_unsafe_view",
            "reshape",
            "t",
            "transpose",
            "permute",
            "expand",
            "squeeze",
            "unsqueeze",
            "detach",
            "alias",
            "slice",
            "select",
            "as_strided",
            "split",
            "split_with_sizes",
            "chunk",
            "unbind",
            "contiguous",
            "flatten",
            "_reshape_alias",
            "unfold",
            "narrow",
            "view_as",
        }
    ),
}
# Reductions over named dimensions (``op(input, dim, ...)``): the ones ``reduced_run`` describes.
DIM_REDUCTIONS = frozenset(
    {"mean", "sum", "amax", "amin", "max", "min", "argmax", "var", "var_mean", "std", "logsumexp",
     "_softmax", "_log_softmax"}
)  # fmt: skip
_CATEGORY_OF = {op: category for category, ops in _CATEGORIES.items() for op in ops}


def op_name(func: torch._ops.OpOverload) -> str:
    """The aten op's base name, without its overload and in-place underscore (``relu_`` -> ``relu``)."""
    name = func.overloadpacket.__name__
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def classify(name: str) -> str:
    """The category of an aten op: mac, reduction, elementwise, normalization, data, view or unknown."""
    return "mac" if name in MAC_OPS else _CATEGORY_OF.get(name, "unknown")


# A MAC op with at most this many output rows (SE's FCs on a 1x1 map, a classifier at small batch) is a
# matrix-vector product: it streams its weights once and does little arithmetic on each.
MATVEC_ROWS = 16

# Ops that only allocate: nothing is read or written until another op fills the storage.
ALLOCATION_OPS = frozenset({"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"})


def distinct_bytes(tensor: torch.Tensor) -> int:
    """Bytes of the elements ``tensor`` addresses: a broadcast (stride-0) dimension counts once."""
    if tensor.dim() == 0:
        return tensor.element_size()
    kept = [int(size) for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride != 0]
    return math.prod(kept) * tensor.element_size()


def tensors_in(values: object) -> list[torch.Tensor]:
    """The distinct tensors in a nest of args, kwargs or outputs, each once (by identity)."""
    found: dict[int, torch.Tensor] = {}
    for leaf in tree_flatten(values)[0]:
        if isinstance(leaf, torch.Tensor):
            found.setdefault(id(leaf), leaf)
    return list(found.values())


def traffic(name: str, args: Sequence[object], kwargs: dict, out: object) -> tuple[int, int]:
    """(bytes read, bytes written) by one op under the module's convention."""
    if classify(name) == "view" or name in ALLOCATION_OPS:
        return 0, 0
    read = sum(distinct_bytes(t) for t in tensors_in((args, {k: v for k, v in kwargs.items() if k != "out"})))
    return read, sum(distinct_bytes(t) for t in tensors_in(out))


def memory_order(tensor: torch.Tensor) -> tuple[int, ...]:
    """The dimensions of ``tensor`` from outermost to innermost in memory (sizes of 1 left out)."""
    strides = tensor.stride()
    dims = [d for d in range(tensor.dim()) if int(tensor.shape[d]) != 1]
    return tuple(sorted(dims, key=lambda d: (-strides[d], d)))


def access_pattern(args: Sequence[object], kwargs: dict, out: object) -> str:
    """``dense``, ``broadcast`` or ``mixed``: how an elementwise op's operands lie against its output.

    ``broadcast``: an input of more than one element is repeated over the output (fewer elements, or a
    stride-0 dimension); ``mixed``: two full-size operands (inputs or output) in different memory orders
    (channels-first beside channels-last). Either keeps a GPU's elementwise kernels off their vectorised
    contiguous path.
    """
    outputs = tensors_in(out)
    if not outputs or outputs[0].dim() == 0:
        return "dense"
    size = outputs[0].numel()
    inputs = tensors_in((args, kwargs))
    for t in inputs:
        if 1 < t.numel() < size or (t.numel() == size and 0 in t.stride() and size > 1):
            return "broadcast"
    orders = {memory_order(t) for t in [*inputs, *outputs] if t.numel() == size and size > 1}
    return "mixed" if len(orders) > 1 else "dense"


def reduced_run(args: Sequence[object]) -> int:
    """The contiguous run of elements each output of a reduction sums: the product of the innermost
    reduced dimensions' sizes (1 when the innermost dimension is kept; all dimensions when none is
    named)."""
    inp = _first_tensor(args)
    if inp is None or inp.dim() == 0:
        return 0
    named = args[1] if len(args) > 1 else None
    if isinstance(named, int):
        named = [named]
    if isinstance(named, (list, tuple)) and named and all(isinstance(d, int) for d in named):
        reduced = {d % inp.dim() for d in named}
    else:
        reduced = set(range(inp.dim()))
    run = 1
    for d in reversed(memory_order(inp)):
        if d not in reduced:
            break
        run *= int(inp.shape[d])
    return run


def device_layout(name: str, args: Sequence[object], out: object) -> object:
    """``out`` in the memory format a GPU or CPU kernel gives it, where the meta device's differs: a
    convolution is channels-last when its input or weight is (cuDNN's and oneDNN's rule), while meta
    returns it contiguous."""
    if name != "convolution" or not isinstance(out, torch.Tensor) or out.device.type != "meta":
        return out
    if out.dim() != 4 or out.is_contiguous(memory_format=torch.channels_last):
        return out
    inp, weight = args[0], args[1]
    if any(
        isinstance(t, torch.Tensor) and t.dim() == 4 and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
        for t in (inp, weight)
    ):  # fmt: skip
        return out.contiguous(memory_format=torch.channels_last)
    return out


def conv_kind(args: Sequence[object]) -> str:
    """``depthwise``, ``grouped``, ``pointwise`` (1x1) or ``dense``: which rule times a convolution."""
    # aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    weight, groups = args[1], int(cast(int, args[8])) if len(args) > 8 else 1
    assert isinstance(weight, torch.Tensor)
    if groups > 1:
        return "depthwise" if int(weight.shape[1]) == 1 and not bool(args[6]) else "grouped"
    return "pointwise" if all(int(k) == 1 for k in weight.shape[2:]) else "dense"


def output_rows(name: str, out: torch.Tensor) -> int:
    """Rows of a MAC op's output: positions for a convolution (N*H*W), leading elements for a product."""
    if out.dim() == 0:
        return 1
    width = int(out.shape[1]) if name == "convolution" else int(out.shape[-1])
    return out.numel() // width if width else 0


def _kind(name: str, args: Sequence[object], out: object) -> str:
    """Which rule times a MAC op: ``matvec`` for at most ``MATVEC_ROWS`` output rows, else its conv kind
    or ``gemm``."""
    if name not in MAC_OPS:
        return ""
    if name == "convolution_backward":  # the forward convolution's rule, by its output's rows
        grad_output = args[0]
        assert isinstance(grad_output, torch.Tensor)
        forward = _conv_forward_args(args)
        small = output_rows("convolution", grad_output) <= MATVEC_ROWS
        return "matvec" if small else conv_kind(forward)
    if isinstance(out, torch.Tensor) and output_rows(name, out) <= MATVEC_ROWS:
        return "matvec"
    return conv_kind(args) if name == "convolution" else "gemm"


def _first_tensor(values: Sequence[object]) -> torch.Tensor | None:
    return next((v for v in values if isinstance(v, torch.Tensor)), None)


def _out_elements(out: object) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, (tuple, list)):
        return sum(o.numel() for o in out if isinstance(o, torch.Tensor))
    return 0


class _Recorder(TorchDispatchMode):
    def __init__(self, module_stack: list[str], *, timed: bool = False) -> None:
        super().__init__()
        self.module_stack = module_stack
        self.timed = timed
        self.events: list[OpEvent] = []
        self.phase = "forward"
        # autograd node (sequence number) -> (module, forward op) that created it; see ``_owner``
        self.nodes: dict[int, tuple[str, str]] = {}
        self.next_node = torch._C._autograd._get_sequence_nr()

    def _owner(self, name: str) -> tuple[str, str]:
        """(module, forward op) of the op being recorded.

        Forward: the innermost running module; an op whose autograd node was just created (the thread's
        node counter moved) files that node. Backward: the node autograd is running, looked up.
        """
        if self.phase == "forward":
            counter = torch._C._autograd._get_sequence_nr()
            for number in range(self.next_node, counter):
                self.nodes[number] = (self.module_stack[-1], name)
            self.next_node = max(self.next_node, counter)
            return self.module_stack[-1], ""
        running = torch._C._current_autograd_node()
        return self.nodes.get(running._sequence_nr(), ("", "")) if running is not None else ("", "")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        seconds = None
        if self.timed:  # only the op itself between the clock reads; the recording comes after
            start = perf_counter()
            out = func(*args, **kwargs)
            if any(t.is_cuda for t in tensors_in(out)):
                torch.cuda.synchronize()  # a CUDA op is timed to its end, so CUDA op times are serialised
            seconds = perf_counter() - start
        else:
            out = func(*args, **kwargs)
        try:
            name = op_name(func)
            category = classify(name)
            out = device_layout(name, args, out)
            module, forward_op = self._owner(name)
            if name == "convolution":
                _check_resolution(args, module)
            first = out[0] if isinstance(out, (tuple, list)) else out
            macs = MAC_OPS[name](args, first) if name in MAC_OPS else 0
            inp = _first_tensor(args)
            read, written = traffic(name, args, kwargs, out)
            self.events.append(
                OpEvent(
                    name,
                    category,
                    module,
                    macs,
                    inp.numel() if inp is not None else 0,
                    _out_elements(out),
                    bytes_read=read,
                    bytes_written=written,
                    kind=_kind(name, args, first),
                    seconds=seconds,
                    phase=self.phase,
                    forward_op=forward_op,
                    access=access_pattern(args, kwargs, out) if category == "elementwise" else "dense",
                    reduced_run=reduced_run(args) if name in DIM_REDUCTIONS else 0,
                )
            )
        except UserInputError:
            raise
        except Exception as error:  # the op ran: what failed is the tool's own counting of it
            raise ToolBug(f"counting aten.{op_name(func)} failed: {type(error).__name__}: {error}") from error
        return out


def scalar_loss(outputs: object) -> torch.Tensor:
    """The sum of every output tensor that requires grad: a scalar to run backward from (a training pass's
    loss, wherever one is run)."""
    leaves = [t for t in tree_flatten(outputs)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if not leaves:
        raise UserInputError("the model's output does not require grad, so there is no backward to run")
    loss = leaves[0].sum()
    for leaf in leaves[1:]:
        loss = loss + leaf.sum()
    return loss


def _check_resolution(args: Sequence[object], module: str) -> None:
    """A strided conv fed a map smaller than its stride sees padding only: the input is too small."""
    inp, stride, transposed = args[0], cast(Sequence[int], args[3]), bool(args[6])
    if transposed:  # a transposed conv's stride upsamples
        return
    assert isinstance(inp, torch.Tensor)
    for size, step in zip(inp.shape[2:], stride, strict=False):
        if int(size) < int(step):
            shape = "x".join(str(int(s)) for s in inp.shape[2:])
            raise UserInputError(
                f"input is too small: {module or 'a conv'} (stride {step}) receives a {shape} map"
            )


def trace_ops(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    timed: bool = False,
    model_name: str = "",
    train: bool = False,
) -> Trace:
    """Run ``model(inputs)`` once under the recorder and return every op with its module.

    ``timed``: also keep each op's wall time (``perf_counter`` around the op alone; CPU ops are synchronous).
    ``train``: a training pass as the latency and memory analyzers run it: ``model`` in train mode, the
    forward with autograd recording, the sum of every output that requires grad as the loss, and its
    backward; the backward's ops (``phase="backward"``) carry the module and op of the forward op they
    differentiate. ``model`` is left in train mode.
    """
    stack = [""]
    called: set[str] = set()
    handles = []

    def enter(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object) -> None:
            stack.append(name)
            called.add(name)

        return hook

    def leave(module: nn.Module, args: object, output: object) -> None:
        stack.pop()

    names = [name for name, _ in model.named_modules() if name]
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave, always_call=True))
    recorder = _Recorder(stack, timed=timed)
    try:
        if train:
            model.train()
            with torch.enable_grad(), recorder:
                loss = scalar_loss(model(inputs))
                recorder.phase = "backward"
                loss.backward()
        else:
            with torch.no_grad(), recorder:
                model(inputs)
    except (UserInputError, ToolBug):
        raise
    except Exception as error:  # the model's own forward failed (its code, or an op it asked for)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        shape = "x".join(str(s) for s in inputs.shape)
        raise UserInputError(
            f"{model_name or type(model).__name__} cannot run on input {shape}: {type(error).__name__}"
            + (f": {first_line}" if first_line else "")
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    uncalled: list[str] = []
    for name in names:
        never = name not in called and not any(c.startswith(f"{name}.") for c in called)
        if never and not any(name.startswith(f"{outer}.") for outer in uncalled):
            uncalled.append(name)
    return Trace(tuple(recorder.events), tuple(uncalled))
