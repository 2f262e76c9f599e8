"""Static complexity of a built model: parameters, MACs, activations and SE's share of each.

Everything here is counted from the model that was built, on the meta device, by ``trace_ops``.
SE modules are found by ``se_module_names``; an op belongs to SE when the module that ran it is an SE
module or lies inside one. Per-stage figures group by the model's top-level children, named through the
model's ``stage_names`` mapping when it has one (the catalog's ResNets map ``layer1`` to ``conv2_x``...).

SE's non-MAC work, kept apart from MACs (one op per element):
- squeeze: one add (or compare, for max) per input element of each pooling reduction inside SE;
- gate: one op per output element of the gate (any op of a module called ``gate``/``scale_activation``,
  and any sigmoid/tanh/hardsigmoid inside SE);
- scale: one multiply per output element of each ``mul`` inside SE, or of its ``addcmul`` with
  ``scale=axpy`` (the fused residual addition is not SE's work: an SE-free block adds too, uncounted);
- other: the remaining elementwise work inside SE (the ReLU between the FCs).

Bytes moved (``bytes_moved``, ``bytes_moved_se``) follow the tracer's convention (``analysis.trace``): each op
reads its input tensors (weights once per call) and writes its outputs; views move nothing. They are kept per
stage, per module (``StaticProfile.modules``) and per op class (``OP_CLASSES``, ``StaticProfile.op_classes``).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from senet_profile.analysis.trace import ACTIVATION_OPS, OpEvent, Trace, classify, trace_ops
from senet_profile.catalog.attention import SE, attention_modules, unrecognised_modules
from senet_profile.errors import UserInputError
from senet_profile.setting import torch_dtype

CONVENTION = (
    "MACs: one multiply-accumulate = 1, conv and linear/matmul only, bias adds excluded; "
    "activations: output elements of conv and linear layers; "
    "SE squeeze/gate/scale: one op per element, not included in MACs; "
    "bytes moved: every non-view op reads its input tensors (weights once per call) and writes its outputs, "
    "at the dtype's size"
)
# Op classes, in the order tables show them: where a model's work and traffic go.
OP_CLASSES = (
    "conv",
    "linear",
    "normalization",
    "elementwise",
    "pooling",
    "data",
    "view",
    "unknown",
    "se_squeeze",
    "se_fc",
    "se_gate",
    "se_scale",
    "se_other",
)
_CLASS_OF_CATEGORY = {"reduction": "pooling", "normalization": "normalization", "elementwise": "elementwise"}
_CLASS_OF_CATEGORY |= {"data": "data", "view": "view", "unknown": "unknown"}
_SE_CLASS_OF_ROLE = {
    "se_squeeze_ops": "se_squeeze",
    "se_gate_ops": "se_gate",
    "se_scale_ops": "se_scale",
    "se_other_ops": "se_other",
    "": "se_other",
}
GATE_MODULE_NAMES = frozenset({"gate", "scale_activation"})
GATE_OPS = frozenset({"sigmoid", "tanh", "hardsigmoid"})


@dataclass(frozen=True)
class Counts:
    """Raw integer counts for a whole model or one of its stages."""

    params: int = 0
    params_se: int = 0
    macs: int = 0
    macs_se: int = 0
    activations: int = 0
    activations_se: int = 0
    se_squeeze_ops: int = 0
    se_gate_ops: int = 0
    se_scale_ops: int = 0
    se_other_ops: int = 0
    bytes_moved: int = 0
    bytes_moved_se: int = 0

    @property
    def se_element_ops(self) -> int:
        """SE's non-MAC work: squeeze, gate, scale and the ReLU between its FCs."""
        return self.se_squeeze_ops + self.se_gate_ops + self.se_scale_ops + self.se_other_ops

    @property
    def macs_and_se_ops(self) -> int:
        """MACs plus SE's element ops: the count that the paper's GFLOPs for SE models appear to use."""
        return self.macs + self.se_element_ops


@dataclass(frozen=True)
class OpClassCounts:
    """What one op class did in a model: ops executed, MACs, element ops and bytes read and written."""

    ops: int = 0
    macs: int = 0
    elements: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def bytes_moved(self) -> int:
        """Bytes read plus bytes written."""
        return self.bytes_read + self.bytes_written


@dataclass(frozen=True)
class StaticProfile:
    """What one model costs, statically, on one input shape."""

    name: str
    input_shape: tuple[int, ...]
    total: Counts
    stages: dict[str, Counts]
    se_blocks: int
    unknown_ops: dict[str, int] = field(default_factory=dict)
    uncalled_modules: tuple[str, ...] = ()
    op_classes: dict[str, OpClassCounts] = field(default_factory=dict)
    modules: dict[str, OpClassCounts] = field(default_factory=dict)
    by_module: dict[str, Counts] = field(default_factory=dict)  # each module's own ops and parameters
    module_types: dict[str, str] = field(default_factory=dict)  # qualified name -> class name
    attention: dict[str, str] = field(default_factory=dict)  # outermost attention module -> family (se too)
    attention_counts: dict[str, Counts] = field(default_factory=dict)  # non-SE family -> its share
    unrecognised_attention: tuple[str, ...] = ()  # "name (Class)" of attention-like modules not known
    unrecognised_counts: dict[str, Counts] = field(default_factory=dict)  # their class -> their share
    ops: dict[str, OpClassCounts] = field(default_factory=dict)  # aten op -> what it did


def _owner(module: str, se_roots: Iterable[str]) -> str | None:
    return next((root for root in se_roots if _within(module, root)), None)


def _within(module: str, root: str) -> bool:
    return root == "" or module == root or module.startswith(f"{root}.")


def _se_role(event: OpEvent, root: str) -> str:
    local = event.module[len(root) :].rpartition(".")[2]
    if event.category == "reduction":
        return "se_squeeze_ops"
    if local in GATE_MODULE_NAMES or event.op in GATE_OPS:
        return "se_gate_ops"
    if event.op in ("mul", "addcmul"):
        return "se_scale_ops"
    return "se_other_ops" if event.category == "elementwise" else ""


def op_class(event: OpEvent, se_root: str | None) -> str:
    """The class (one of ``OP_CLASSES``) of an op; ``se_root``: the SE block that ran it, or None."""
    if se_root is not None:
        return "se_fc" if event.category == "mac" else _SE_CLASS_OF_ROLE[_se_role(event, se_root)]
    if event.category == "mac":
        return "conv" if event.op == "convolution" else "linear"
    return _CLASS_OF_CATEGORY[event.category]


def classified_events(model: nn.Module, trace: Trace) -> list[tuple[OpEvent, str]]:
    """Each op of ``trace`` (a run of ``model``) with its op class, SE blocks found in ``model``.

    A backward op takes the class of the forward op it differentiates (SE's scale's backward is
    ``se_scale``), or its own category's when it has none (the loss's gradient).
    """
    se_roots = [module for module, family in attention_modules(model).items() if family == SE]
    return [(event, op_class(_as_forward(event), _owner(event.module, se_roots))) for event in trace.events]


def in_layout(model: nn.Module, x: torch.Tensor, *, channels_last: bool) -> tuple[nn.Module, torch.Tensor]:
    """``model`` and its input ``x`` channels-last if asked (the model converted in place), else as
    they are."""
    if not channels_last:
        return model, x
    return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)


def training_events(
    model: nn.Module,
    shape: tuple[int, ...],
    dtype: str,
    *,
    model_name: str = "",
    channels_last: bool = False,
) -> list[tuple[OpEvent, str]]:
    """The ops of one training pass of ``model`` (forward in train mode, then backward; meta trace, on a
    copy; model and input channels-last if asked), with their op classes."""
    meta = on_meta(model)
    meta = (copy.deepcopy(meta) if meta is model else meta).to(torch_dtype(dtype))
    with torch.inference_mode(False):
        x = torch.empty(shape, device="meta", dtype=torch_dtype(dtype))
        meta, x = in_layout(meta, x, channels_last=channels_last)
        trace = trace_ops(meta, x, train=True, model_name=model_name)
    return classified_events(meta, trace)


def _as_forward(event: OpEvent) -> OpEvent:
    """The op whose class ``event`` takes: its forward op for a backward op, else itself."""
    if event.phase != "backward" or not event.forward_op:
        return event
    return replace(event, op=event.forward_op, category=classify(event.forward_op))


def _stage_of(module: str, stage_names: Mapping[str, str]) -> str:
    top = module.split(".")[0] if module else "(model)"
    return stage_names.get(top, top)


def _event_counts(event: OpEvent, se_root: str | None) -> dict[str, int]:
    counts: dict[str, int] = {"macs": event.macs, "bytes_moved": event.bytes_moved}
    if event.op in ACTIVATION_OPS:
        counts["activations"] = event.out_elements
    if se_root is None:
        return counts
    counts["macs_se"] = event.macs
    counts["bytes_moved_se"] = event.bytes_moved
    counts["activations_se"] = counts.get("activations", 0)
    role = _se_role(event, se_root)
    if role:
        counts[role] = event.in_elements if role == "se_squeeze_ops" else event.out_elements
    return counts


def _param_counts(
    model: nn.Module, se_roots: list[str], key: Callable[[str], str]
) -> dict[str, dict[str, int]]:
    per_key: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, param in model.named_parameters():
        module = name.rpartition(".")[0]
        bucket = per_key[key(module)]
        bucket["params"] += param.numel()
        if _owner(module, se_roots) is not None:
            bucket["params_se"] += param.numel()
    return per_key


_FAMILY_KEYS = ("params", "macs", "activations", "bytes_moved")


def _family_counts(model: nn.Module, trace: Trace, attention: Mapping[str, str]) -> dict[str, Counts]:
    """Each attention family's parameters, MACs, activations and bytes moved."""
    per_family: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, param in model.named_parameters():
        root = _owner(name.rpartition(".")[0], attention)
        if root is not None:
            per_family[attention[root]]["params"] += param.numel()
    for event in trace.events:
        root = _owner(event.module, attention)
        if root is not None:
            counts = _event_counts(event, None)
            for key in _FAMILY_KEYS[1:]:
                per_family[attention[root]][key] += counts.get(key, 0)
    return {family: Counts(**values) for family, values in per_family.items()}


def summarize(
    model: nn.Module,
    trace: Trace,
    *,
    name: str,
    input_shape: tuple[int, ...],
    attention: Mapping[str, str] | None = None,
) -> StaticProfile:
    """Fold a trace and the model's parameters into whole-model, per-stage and per-module counts.

    ``attention``: the user's own attention classes, class name -> family (``se`` counts as SE).
    """
    families = attention_modules(model, attention)
    odd = unrecognised_modules(model, families)
    se_roots = [module for module, family in families.items() if family == SE]
    stage_names: Mapping[str, str] = getattr(model, "stage_names", {})
    per_stage = _param_counts(model, se_roots, lambda module: _stage_of(module, stage_names))
    per_module = _param_counts(model, se_roots, lambda module: module)
    unknown: dict[str, int] = defaultdict(int)
    classes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    modules: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ops: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in trace.events:
        if event.category == "unknown":
            unknown[event.op] += 1
        root = _owner(event.module, se_roots)
        stage = per_stage[_stage_of(event.module, stage_names)]
        for key, value in _event_counts(event, root).items():
            stage[key] += value
            per_module[event.module][key] += value
        for bucket in (classes[op_class(event, root)], modules[event.module], ops[event.op]):
            _add_event(bucket, event)
    stages = {stage: Counts(**values) for stage, values in per_stage.items() if any(values.values())}
    total = Counts(
        **{key: sum(getattr(c, key) for c in stages.values()) for key in Counts.__dataclass_fields__}
    )
    return StaticProfile(
        name,
        input_shape,
        total,
        stages,
        len(se_roots),
        dict(unknown),
        trace.uncalled_modules,
        op_classes={c: OpClassCounts(**classes[c]) for c in OP_CLASSES if c in classes},
        modules={m: OpClassCounts(**values) for m, values in modules.items()},
        by_module={m: Counts(**values) for m, values in per_module.items()},
        module_types={m: type(module).__name__ for m, module in model.named_modules()},
        attention=families,
        attention_counts=_family_counts(model, trace, {m: f for m, f in families.items() if f != SE}),
        unrecognised_attention=tuple(f"{name} ({type(module).__name__})" for name, module in odd.items()),
        unrecognised_counts=_family_counts(model, trace, {name: type(m).__name__ for name, m in odd.items()}),
        ops={op: OpClassCounts(**values) for op, values in sorted(ops.items())},
    )


def _add_event(bucket: dict[str, int], event: OpEvent) -> None:
    """Add one op to an op class's or module's running counts."""
    bucket["ops"] += 1
    bucket["macs"] += event.macs
    bucket["elements"] += event.out_elements
    bucket["bytes_read"] += event.bytes_read
    bucket["bytes_written"] += event.bytes_written


def on_meta(model: nn.Module) -> nn.Module:
    """``model`` itself when already on the meta device, else a meta copy (the caller's stays as it is)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.is_meta for t in tensors):
        return model
    return copy.deepcopy(model).to("meta")


def check_input_shape(input_shape: tuple[int, ...]) -> None:
    """Refuse shapes with non-positive sizes."""
    if any(int(size) <= 0 for size in input_shape):
        shape = "x".join(str(s) for s in input_shape)
        raise UserInputError(f"input shape {shape} has a size <= 0; sizes must be positive")


def analyze(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    name: str = "",
    dtype: torch.dtype | None = None,
    attention: Mapping[str, str] | None = None,
) -> StaticProfile:
    """Count parameters, MACs, activations and bytes of ``model`` on an input of ``input_shape`` (with batch).

    ``dtype``: trace a copy cast to it (bytes moved scale with its size); None keeps the model's own.
    """
    check_input_shape(input_shape)
    meta_model = on_meta(model)
    if dtype is not None:
        meta_model = copy.deepcopy(meta_model).to(dtype) if meta_model is model else meta_model.to(dtype)
    was_training = meta_model.training
    meta_model.eval()
    inputs = torch.empty(input_shape, device="meta", dtype=dtype or torch.float32)
    try:
        trace = trace_ops(meta_model, inputs, model_name=name)
    finally:
        meta_model.train(was_training)
    return summarize(
        meta_model,
        trace,
        name=name or type(model).__name__,
        input_shape=tuple(input_shape),
        attention=attention,
    )
