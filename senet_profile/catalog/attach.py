"""Add SE blocks to a user's torchvision-style CNN at the paper's integration points, or take them out.

``add_se(model, config=..., placement=...)`` returns a copy of ``model`` with SE blocks inserted by module
surgery: modules are wrapped or replaced, and the model's own ``forward`` code then runs them. Two
structures are recognised:

Residual blocks -- torchvision's ``BasicBlock`` and ``Bottleneck``, and any block built like them: a module
with a ``downsample`` attribute (a module or None) and children ``conv1..convK`` (``nn.Conv2d``, K >= 2),
each with a norm ``bn1..bnK``, whose forward reads those attributes as torchvision's does. Every such block
gets one SE block, placed as in the paper's Fig. 5 / Table 14 (the same five placements as the catalog):

- ``standard``: ``bnK`` becomes ``Sequential(bnK, SE)``: residual branch, after the last BN, before the add;
- ``3x3`` (bottlenecks: one 3x3 conv between 1x1 convs): that conv becomes ``Sequential(conv, SE)``;
- ``pre``: ``conv1`` becomes ``Sequential(SE, conv1)``; the identity, taken from the block's input, is
  not scaled;
- ``identity``: ``downsample`` becomes ``Sequential(downsample, SE)``, or the SE block itself where None;
- ``post``: the block becomes ``Sequential(block, SE)`` in its parent: after the addition and its ReLU.

Nothing outside the blocks (stem, projection-free parts, head) gets SE, as in the paper's SE-ResNet.

Families with their own block structure, each given SE after the layer its designers (or the SE-adding
variants people use) put it, and only where the model has no residual block of the kind above:

- MobileNetV2 (torchvision ``InvertedResidual``, a ``conv`` Sequential holding a depthwise
  conv-norm-activation): SE after the depthwise conv's activation, on the expanded channels, as in
  MobileNetV3's blocks;
- ShuffleNetV2 (a block with a ``branch2`` Sequential): SE at the end of ``branch2``, on its channels, before
  the concatenation and channel shuffle;
- DenseNet (``_DenseBlock``, a block whose class name ends in ``DenseBlock``): SE on each dense block's
  concatenated output, before its transition (or the final norm): one SE block per dense block, not per
  layer (``at="features.denseblock*.denselayer*.conv2"`` puts one after each layer instead);
- ConvNeXt (torchvision ``CNBlock``: a ``block`` Sequential and a ``layer_scale``): SE at the end of
  ``block``, on the residual branch before layer scale and the addition;
- RegNet X (torchvision ``ResBottleneckBlock``, whose ``f`` holds ``a``, ``b``, ``c``): SE after ``f.b``, the
  grouped 3x3 conv, where RegNet Y has it;
- timm blocks with an empty SE slot (an ``se`` attribute that is ``nn.Identity``: timm's RegNet X,
  MobileNetV2, EfficientNet-style blocks built without SE): the slot gets the SE block.

In all of these SE runs on the channels the layer before it gives, with the config's ``r`` (C // r hidden
units); only ``placement="standard"`` is defined.

Points of your own -- ``at``: module names, or patterns, as ``model.named_modules()`` writes them: SE goes
after each module named (the module becomes ``Sequential(module, SE)``; an ``nn.Identity`` is replaced by
the SE block), on the channels of its output (found by running the model on the meta device). In a pattern
``*`` matches within one dotted part and ``**`` any number of parts: ``features.*.conv.1``,
``**.branch2``, ``layer4.**``. A name or pattern that matches nothing is refused, naming some that exist.

Plain conv stacks -- VGG and AlexNet style, used only when the model has no residual block: every
``nn.Conv2d`` must sit in an ``nn.Sequential`` followed by an activation (ReLU and its relatives), directly
or through one norm layer. Each such activation becomes ``Sequential(activation, SE)`` on the conv's output
channels. Only ``placement="standard"`` is defined there.

Refused with ``UserInputError``: an unknown placement; a model that already holds SE modules (SE on top of
SE is none of the paper's integration points: ``remove_se`` takes them out first); a model with neither
structure, e.g. no conv at all, or timm's ConvNeXt (its blocks run in channels-last order inside: no
NCHW point to recognise; name one with ``at``); ``3x3`` on basic blocks; ``r`` larger than the channels at
some point; a placement other than ``standard`` outside residual blocks.

``remove_se(model)`` is the inverse direction: a copy with every SE module replaced by ``nn.Identity``;
``remove_attention(model)`` does the same for every gating attention module (``GATING_FAMILIES``: SE, ECA,
CBAM, GC, coord, ...). None of them changes the model it is given.

On a model argument of any source (``MODEL_KEYS``, taken off before the builder is called unless the
builder takes the key itself, as the catalog's torchvision twins take ``se``): ``se=off`` (remove_se),
``se=add`` (add_se at the family's points), ``se_at=PATTERN[+PATTERN...]`` (add_se after those modules),
``se_r=R`` (the reduction ratio of the SE blocks added, 16 by default), ``attention=off``
(remove_attention); ``se=on`` keeps the model as built.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from senet_profile.catalog.attention import GATING_FAMILIES, attention_modules
from senet_profile.catalog.se import SEBlock, SEConfig, se_module_names
from senet_profile.errors import UserInputError

DEFAULT_CONFIG = SEConfig()  # the paper's block: r=16, average squeeze, sigmoid gate, FC biases (frozen)

_CONV_NAME = re.compile(r"conv(\d+)")

_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm2d)
_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
)


@dataclass(frozen=True)
class _Block:
    """A recognised residual block: its qualified name, the module, and its numbered conv/norm pairs."""

    name: str
    module: nn.Module
    numbers: tuple[int, ...]

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [getattr(self.module, f"conv{i}") for i in self.numbers]

    @property
    def where(self) -> str:
        return f"block {self.name} ({type(self.module).__name__})"


@dataclass(frozen=True)
class _PlainPoint:
    """An activation that follows a conv in a plain stack: where it sits, and the conv it follows."""

    name: str
    parent: nn.Module
    attr: str
    activation: nn.Module
    conv: nn.Conv2d


def _new_se(channels: int, *, config: SEConfig, where: str, like: nn.Module) -> SEBlock:
    """An SE block on the device, float dtype and train/eval mode of the module ``like``."""
    reference = next(like.parameters(), None)
    device = reference.device if reference is not None else torch.get_default_device()
    with torch.device(device):
        se = SEBlock(channels, config=config, where=where)
    if reference is not None and reference.is_floating_point():
        se = se.to(dtype=reference.dtype)
    return se.train(like.training)


def _replace(root: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where the submodule ``name`` of ``root`` is; returns the (possibly new) root."""
    if not name:
        return new
    parent_name, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent_name), attr, new)
    return root


def _conv_numbers(module: nn.Module) -> tuple[int, ...] | None:
    """The numbers K of a residual block's ``convK``/``bnK`` children, or None if it is not one."""
    if not hasattr(module, "downsample"):
        return None
    children = dict(module.named_children())
    numbers = sorted(
        int(match[1])
        for child_name, child in children.items()
        if (match := _CONV_NAME.fullmatch(child_name)) and isinstance(child, nn.Conv2d)
    )
    if len(numbers) < 2 or any(f"bn{i}" not in children for i in numbers):
        return None
    return tuple(numbers)


def _is_inside(name: str, outer: str) -> bool:
    """True when the module called ``name`` lies strictly inside the one called ``outer``."""
    return name != outer and (not outer or name.startswith(f"{outer}."))


def _residual_blocks(model: nn.Module) -> list[_Block]:
    """The outermost residual blocks of ``model``, in definition order."""
    blocks: list[_Block] = []
    for name, module in model.named_modules():
        if any(_is_inside(name, outer.name) for outer in blocks):
            continue
        numbers = _conv_numbers(module)
        if numbers is not None:
            blocks.append(_Block(name, module, numbers))
    return blocks


def _standard(block: _Block, config: SEConfig) -> nn.Module:
    last = block.numbers[-1]
    conv = block.convs[-1]
    norm = getattr(block.module, f"bn{last}")
    se = _new_se(conv.out_channels, config=config, where=block.where, like=conv)
    setattr(block.module, f"bn{last}", nn.Sequential(norm, se))
    return block.module


def _after_3x3(block: _Block, config: SEConfig) -> nn.Module:
    kernels = {i: tuple(conv.kernel_size) for i, conv in zip(block.numbers, block.convs, strict=True)}
    spatial = [i for i, kernel in kernels.items() if kernel != (1, 1)]
    if len(spatial) != 1 or kernels[spatial[0]] != (3, 3) or len(kernels) < 3:
        shapes = ", ".join(f"conv{i} {k[0]}x{k[1]}" for i, k in kernels.items())
        raise UserInputError(
            "placement=3x3 needs bottleneck blocks (one 3x3 conv between 1x1 convs); "
            f"{block.where} has {shapes}"
        )
    conv = getattr(block.module, f"conv{spatial[0]}")
    se = _new_se(conv.out_channels, config=config, where=block.where, like=conv)
    setattr(block.module, f"conv{spatial[0]}", nn.Sequential(conv, se))
    return block.module


def _pre(block: _Block, config: SEConfig) -> nn.Module:
    first = block.numbers[0]
    conv = block.convs[0]
    se = _new_se(conv.in_channels, config=config, where=block.where, like=conv)
    setattr(block.module, f"conv{first}", nn.Sequential(se, conv))
    return block.module


def _identity(block: _Block, config: SEConfig) -> nn.Module:
    conv = block.convs[-1]
    se = _new_se(conv.out_channels, config=config, where=block.where, like=conv)
    shortcut = cast(nn.Module | None, block.module.downsample)
    block.module.downsample = se if shortcut is None else nn.Sequential(shortcut, se)
    return block.module


def _post(block: _Block, config: SEConfig) -> nn.Module:
    conv = block.convs[-1]
    se = _new_se(conv.out_channels, config=config, where=block.where, like=conv)
    return nn.Sequential(block.module, se)


# placement -> surgery on one block, returning the module that takes the block's place in its parent
RESIDUAL_PLACEMENTS: dict[str, Callable[[_Block, SEConfig], nn.Module]] = {
    "standard": _standard,
    "pre": _pre,
    "post": _post,
    "identity": _identity,
    "3x3": _after_3x3,
}


def _plain_points(model: nn.Module) -> list[_PlainPoint]:
    """Activations that follow a conv (directly or through one norm) in an ``nn.Sequential``."""
    points: list[_PlainPoint] = []
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for index, (_, child) in enumerate(children):
            if not isinstance(child, nn.Conv2d):
                continue
            after = [module for _, module in children[index + 1 : index + 3]]
            skip = 1 if after and isinstance(after[0], _NORMS) else 0
            if len(after) > skip and isinstance(after[skip], _ACTIVATIONS):
                attr = children[index + 1 + skip][0]
                name = f"{parent_name}.{attr}" if parent_name else attr
                points.append(_PlainPoint(name, parent, attr, after[skip], child))
    return points


def _check_plain(model: nn.Module, points: list[_PlainPoint]) -> None:
    """Refuse a model whose convs are not all covered by a plain-stack integration point."""
    kind = type(model).__name__
    covered = {id(point.conv) for point in points}
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UserInputError(f"add_se found no integration point in {kind}: it has no nn.Conv2d")
    loose = next((name for name, conv in convs if id(conv) not in covered), None)
    if loose is not None:
        raise UserInputError(
            f"add_se found no integration point in {kind}: no residual block (conv1..convK, bn1..bnK, "
            f"downsample), no block of {', '.join(FAMILY_POINTS)}, and conv {loose} is not followed by an "
            "activation in an nn.Sequential; name the points with at= (model argument: se_at=PATTERN)"
        )


def _add_to_blocks(model: nn.Module, blocks: list[_Block], config: SEConfig, placement: str) -> nn.Module:
    place = RESIDUAL_PLACEMENTS[placement]
    for block in blocks:
        model = _replace(model, block.name, place(block, config))
    return model


def _add_to_plain(model: nn.Module, points: list[_PlainPoint], config: SEConfig) -> nn.Module:
    for point in points:
        where = f"conv stack at {point.name}"
        se = _new_se(point.conv.out_channels, config=config, where=where, like=point.conv)
        setattr(point.parent, point.attr, nn.Sequential(point.activation, se))
    return model


def _depthwise(module: nn.Module) -> bool:
    """True for a conv-norm-activation whose conv is depthwise (one group per channel, more than one)."""
    children = list(module.children())
    if not children or not isinstance(children[0], nn.Conv2d):
        return False
    conv = children[0]
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    return depthwise and any(isinstance(child, _ACTIVATIONS) for child in children[1:])


def _mobilenet_v2(name: str, module: nn.Module) -> list[str] | None:
    body = getattr(module, "conv", None)
    if not isinstance(body, nn.Sequential):
        return None
    found = [f"{name}.conv.{attr}" for attr, child in body.named_children() if _depthwise(child)]
    return found[:1] or None


def _shufflenet_v2(name: str, module: nn.Module) -> list[str] | None:
    return [f"{name}.branch2"] if isinstance(getattr(module, "branch2", None), nn.Sequential) else None


def _densenet(name: str, module: nn.Module) -> list[str] | None:
    return [name] if type(module).__name__.endswith("DenseBlock") else None


def _convnext(name: str, module: nn.Module) -> list[str] | None:
    block = getattr(module, "block", None)
    return [f"{name}.block"] if isinstance(block, nn.Sequential) and hasattr(module, "layer_scale") else None


def _regnet_x(name: str, module: nn.Module) -> list[str] | None:
    body = getattr(module, "f", None)
    if body is None or not all(hasattr(body, part) for part in ("a", "b", "c")):
        return None
    return [f"{name}.f.b"]


def _empty_se_slot(name: str, module: nn.Module) -> list[str] | None:
    return [f"{name}.se"] if isinstance(getattr(module, "se", None), nn.Identity) else None


# family -> recogniser of its blocks: qualified names of the modules SE goes after, or None
FAMILY_POINTS: dict[str, Callable[[str, nn.Module], list[str] | None]] = {
    "ShuffleNetV2": _shufflenet_v2,  # before MobileNetV2: torchvision calls both blocks InvertedResidual
    "MobileNetV2": _mobilenet_v2,
    "DenseNet": _densenet,
    "ConvNeXt": _convnext,
    "RegNet X": _regnet_x,
    "timm SE slot": _empty_se_slot,
}


def _family_points(model: nn.Module) -> list[str]:
    """The points of the first family whose blocks ``model`` holds (outermost blocks only), or []."""
    for recognise in FAMILY_POINTS.values():
        points: list[str] = []
        blocks: list[str] = []
        for name, module in model.named_modules():
            if any(_is_inside(name, outer) for outer in blocks):
                continue
            found = recognise(name, module)
            if found:
                blocks.append(name)
                points += [point.lstrip(".") for point in found]
        if points:
            return points
    return []


def _match_parts(pattern: list[str], name: list[str]) -> bool:
    """``name``'s dotted parts against a pattern's: ``*`` within one part, ``**`` any number of parts."""
    if not pattern:
        return not name
    if pattern[0] == "**":
        return any(_match_parts(pattern[1:], name[i:]) for i in range(len(name) + 1))
    return bool(name) and fnmatch.fnmatchcase(name[0], pattern[0]) and _match_parts(pattern[1:], name[1:])


def named_points(model: nn.Module, at: str | Sequence[str]) -> list[str]:
    """Qualified names of the modules of ``model`` that the names or patterns ``at`` match, in model order."""
    patterns = [at] if isinstance(at, str) else list(at)
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise UserInputError(f"at takes module names or patterns such as 'features.*.conv.1', got {at!r}")
    names = [name for name, _ in model.named_modules() if name]
    chosen: set[str] = set()
    for pattern in patterns:
        parts = pattern.strip().split(".")
        matched = [name for name in names if _match_parts(parts, name.split("."))]
        if not matched:
            some = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise UserInputError(
                f"at={pattern!r} matches no module of {type(model).__name__} (its modules: {some}; '*' "
                "matches within one dotted part, '**' any number of parts)"
            )
        chosen.update(matched)
    return [name for name in names if name in chosen]


def _output_channels(model: nn.Module, points: list[str]) -> dict[str, int]:
    """Channels of each point's output, from one run of a meta-device copy of ``model``."""
    probe = copy.deepcopy(model).to("meta").eval()
    first_conv = next((m for m in probe.modules() if isinstance(m, nn.Conv2d)), None)
    in_channels = first_conv.in_channels if first_conv is not None else 3
    shapes: dict[str, tuple[int, ...]] = {}

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if name not in shapes:
                shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else ()

        return hook

    handles = [probe.get_submodule(name).register_forward_hook(hook_for(name)) for name in points]
    try:
        with torch.no_grad():
            probe(torch.empty(1, in_channels, 224, 224, device="meta"))
    except Exception as error:  # the user's model failing on the probe input: their input, one line
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(
            f"add_se could not run {type(model).__name__} on a 1x{in_channels}x224x224 meta input to find "
            f"the channels at its SE points: {type(error).__name__}: {text}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    channels: dict[str, int] = {}
    for name in points:
        shape = shapes.get(name)
        if shape is None:
            raise UserInputError(f"add_se: module {name} never runs in {type(model).__name__}'s forward")
        if len(shape) != 4:
            raise UserInputError(
                f"SE needs an NCHW output to squeeze; module {name} gives shape {'x'.join(map(str, shape))}"
            )
        channels[name] = shape[1]
    return channels


def _add_after(model: nn.Module, points: list[str], config: SEConfig) -> nn.Module:
    """SE after each named module (an ``nn.Identity`` is replaced), deepest first so names stay valid."""
    channels = _output_channels(model, points)
    for name in sorted(points, key=lambda n: n.count("."), reverse=True):
        module = model.get_submodule(name)
        se = _new_se(channels[name], config=config, where=f"module {name}", like=model)
        model = _replace(model, name, se if isinstance(module, nn.Identity) else nn.Sequential(module, se))
    return model


def _need_module(model: object, function: str) -> None:
    if not isinstance(model, nn.Module):
        raise UserInputError(f"{function} takes a torch.nn.Module, got {type(model).__name__} {model!r}")


def add_se(
    model: nn.Module,
    *,
    config: SEConfig = DEFAULT_CONFIG,
    placement: str = "standard",
    at: str | Sequence[str] | None = None,
) -> nn.Module:
    """A copy of `model` with an SE block at each integration point: the family's, or after modules `at`."""
    _need_module(model, "add_se")
    if not isinstance(config, SEConfig):
        raise UserInputError(
            f"config must be an SEConfig, e.g. SEConfig(r=8), got {type(config).__name__} {config!r}"
        )
    kind = type(model).__name__
    if placement not in RESIDUAL_PLACEMENTS:
        raise UserInputError(
            f"unknown placement {placement!r}; choose one of {', '.join(RESIDUAL_PLACEMENTS)}"
        )
    existing = se_module_names(model)
    if existing:
        raise UserInputError(
            f"{kind} already has {len(existing)} SE modules (first: {existing[0] or '(the model)'}); "
            "add_se adds SE to SE-free networks, remove_se takes SE out"
        )
    result = copy.deepcopy(model)
    if at is not None:
        _only_standard(placement, kind, "SE goes after each module named by at")
        return _add_after(result, named_points(result, at), config)
    blocks = _residual_blocks(result)
    if blocks:
        return _add_to_blocks(result, blocks, config, placement)
    family = _family_points(result)
    if family:
        _only_standard(placement, kind, "its blocks get SE where the family's SE variants have it")
        return _add_after(result, family, config)
    points = _plain_points(result)
    _check_plain(result, points)
    if placement != "standard":
        raise UserInputError(
            f"placement={placement} is defined for residual blocks; {kind} is a plain conv stack, "
            "where SE follows each activation (placement=standard)"
        )
    return _add_to_plain(result, points, config)


def _only_standard(placement: str, kind: str, why: str) -> None:
    if placement != "standard":
        raise UserInputError(
            f"placement={placement} is defined for residual blocks (conv1..convK, bn1..bnK, downsample); "
            f"in {kind} {why} (placement=standard)"
        )


def remove_se(model: nn.Module) -> nn.Module:
    """A copy of `model` with every SE module (see ``is_se_module``) replaced by ``nn.Identity``."""
    _need_module(model, "remove_se")
    names = se_module_names(model)
    if not names:
        raise UserInputError(f"{type(model).__name__} has no SE modules to remove")
    result = copy.deepcopy(model)
    for name in names:
        result = _replace(result, name, nn.Identity())
    return result


def remove_attention(model: nn.Module) -> nn.Module:
    """A copy of `model` with every gating attention module (SE, ECA, CBAM, ...) replaced by identity."""
    _need_module(model, "remove_attention")
    found = attention_modules(model)
    names = [name for name, family in found.items() if family in GATING_FAMILIES]
    if not names:
        others = sorted(set(found.values()))
        why = (
            f": its attention ({', '.join(others)}) replaces convs, and taking it out would break the network"
            if others
            else ""
        )
        raise UserInputError(f"{type(model).__name__} has no gating attention modules to remove{why}")
    result = copy.deepcopy(model)
    for name in names:
        result = _replace(result, name, nn.Identity())
    return result


# keys of a model argument, any source, that switch SE (and attention) on or off or add it
MODEL_KEYS = ("se", "se_at", "se_r", "attention")


def _families_hint(model: nn.Module) -> str:
    families = sorted({f for f in attention_modules(model).values() if f != "se"})
    return f" (its attention is {', '.join(families)}: attention=off takes that out)" if families else ""


def apply_model_keys(model: nn.Module, keys: dict[str, object], *, where: str) -> nn.Module:
    """``model`` with a model argument's SE keys applied: se=on|off|add, se_at, se_r, attention=off."""
    unknown = sorted(set(keys) - set(MODEL_KEYS))
    if unknown:
        raise UserInputError(f"{where}: unknown SE key {unknown[0]!r}; the keys are {', '.join(MODEL_KEYS)}")
    se, at, r = keys.get("se", "at" if "se_at" in keys else True), keys.get("se_at"), keys.get("se_r")
    if se not in (True, False, "add", "at"):
        raise UserInputError(f"{where}: se takes on, off or add, got se={se}")
    if keys.get("attention", True) is not True:
        if keys["attention"] is not False:
            raise UserInputError(f"{where}: attention takes on or off, got attention={keys['attention']}")
        if "se" in keys or at is not None or r is not None:
            raise UserInputError(f"{where}: attention=off takes SE out too; give it without se, se_at, se_r")
        return remove_attention(model)
    if se is False:
        if at is not None or r is not None:
            raise UserInputError(f"{where}: se=off takes SE out; se_at and se_r are for adding it")
        if not se_module_names(model):
            raise UserInputError(f"{where} has no SE modules to take out{_families_hint(model)}")
        return remove_se(model)
    if se is True:
        if r is not None:
            raise UserInputError(f"{where}: se_r is the ratio of SE blocks added: give se=add or se_at too")
        return model
    if r is not None and (not isinstance(r, int) or isinstance(r, bool) or r <= 0):
        raise UserInputError(f"{where}: se_r must be a positive integer, got se_r={r}")
    if at is not None and not isinstance(at, str):
        raise UserInputError(f"{where}: se_at takes module names or patterns joined by '+', got se_at={at}")
    config = SEConfig(r=16 if r is None else r)
    try:
        return add_se(model, config=config, at=None if at is None else at.split("+"))
    except UserInputError as error:
        text = str(error)
        raise UserInputError(f"{where}: {'se_' if text.startswith('at=') else ''}{text}") from None
