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

Plain conv stacks -- VGG and AlexNet style, used only when the model has no residual block: every
``nn.Conv2d`` must sit in an ``nn.Sequential`` followed by an activation (ReLU and its relatives), directly
or through one norm layer. Each such activation becomes ``Sequential(activation, SE)`` on the conv's output
channels. Only ``placement="standard"`` is defined there.

Refused with ``UserInputError``: an unknown placement; a model that already holds SE modules (SE on top of
SE is none of the paper's integration points: ``remove_se`` takes them out first); a model with neither
structure, e.g. no conv at all, DenseNet's pre-activation layers or MobileNetV2's linear bottlenecks (a conv
with no activation after it); ``3x3`` on basic blocks; ``r`` larger than the channels at some point.

``remove_se(model)`` is the inverse direction: a copy with every SE module replaced by ``nn.Identity``.
Neither function changes the model it is given.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

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
    shortcut = block.module.downsample
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
            f"add_se found no integration point in {kind}: it has no residual block (conv1..convK, bn1..bnK, "
            f"downsample) and conv {loose} is not followed by an activation in an nn.Sequential"
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


def _need_module(model: object, function: str) -> None:
    if not isinstance(model, nn.Module):
        raise UserInputError(f"{function} takes a torch.nn.Module, got {type(model).__name__} {model!r}")


def add_se(model: nn.Module, *, config: SEConfig = DEFAULT_CONFIG, placement: str = "standard") -> nn.Module:
    """A copy of `model` with an SE block at each of the paper's integration points."""
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
    blocks = _residual_blocks(result)
    if blocks:
        return _add_to_blocks(result, blocks, config, placement)
    points = _plain_points(result)
    _check_plain(result, points)
    if placement != "standard":
        raise UserInputError(
            f"placement={placement} is defined for residual blocks; {kind} is a plain conv stack, "
            "where SE follows each activation (placement=standard)"
        )
    return _add_to_plain(result, points, config)


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
