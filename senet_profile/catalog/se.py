"""The Squeeze-and-Excitation block: squeeze, excitation and gate, each chosen by name.

Hu et al., "Squeeze-and-Excitation Networks" (TPAMI 2019), Eq. 2-4: the block pools each channel to one
value (squeeze), passes the vector through FC -> ReLU -> FC with a bottleneck of ``C // r`` units
(excitation), squashes it through a gate and rescales the input channel by channel.

The two FC layers are 1x1 convolutions, as in the released Caffe models: on the pooled 1x1 map they are
exactly fully-connected layers (same weights, same multiply-adds), and with ``squeeze="none"`` (the paper's
NoSqueeze ablation, Table 16) they run at full spatial resolution without any change to the module.

The scale: ``mul`` returns ``x * weights`` and leaves the residual addition to the block; ``axpy`` takes the
residual too and returns ``residual + x * weights`` in one op (``torch.addcmul``), as the Axpy layer of the
official Caffe models does. It is refused where no residual addition follows the block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from senet_profile.errors import UserInputError


class AvgSqueeze(nn.Module):
    """Global average pooling to a 1x1 map (the paper's squeeze)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class MaxSqueeze(nn.Module):
    """Global max pooling to a 1x1 map (the paper's Table 14 alternative)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True)


SQUEEZES: dict[str, Callable[[], nn.Module]] = {
    "avg": AvgSqueeze,
    "max": MaxSqueeze,
    "none": nn.Identity,
}

GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardsigmoid": nn.Hardsigmoid,
}

SCALES = ("mul", "axpy")


@dataclass(frozen=True)
class SEConfig:
    """How one SE block is built: reduction ratio, explicit width, squeeze, gate, FC bias and scale."""

    r: int = 16
    width: int | None = None
    squeeze: str = "avg"
    gate: str = "sigmoid"
    bias: bool = True
    scale: str = "mul"

    def __post_init__(self) -> None:
        whole = (("r", self.r), ("width", 1 if self.width is None else self.width))
        for name, value in whole:
            if not isinstance(value, int) or isinstance(value, bool):
                raise UserInputError(f"SE {name} must be a positive integer, got {name}={value!r}")
        if not isinstance(self.bias, bool):
            raise UserInputError(f"SE bias must be True or False, got bias={self.bias!r}")
        if self.r <= 0:
            raise UserInputError(f"reduction ratio r must be a positive integer, got r={self.r}")
        if self.width is not None and self.width <= 0:
            raise UserInputError(f"SE width must be a positive integer, got width={self.width}")
        if self.squeeze not in SQUEEZES:
            raise UserInputError(f"unknown squeeze {self.squeeze!r}; choose one of {', '.join(SQUEEZES)}")
        if self.gate not in GATES:
            raise UserInputError(f"unknown gate {self.gate!r}; choose one of {', '.join(GATES)}")
        if self.scale not in SCALES:
            raise UserInputError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")

    def hidden_width(self, channels: int, *, where: str = "") -> int:
        """Bottleneck width on ``channels`` channels: ``width`` if given, else ``channels // r``."""
        if self.width is not None:
            return self.width
        hidden = channels // self.r
        if hidden < 1:
            place = f" of {where}" if where else ""
            raise UserInputError(
                f"r={self.r} is larger than the {channels} channels{place}: the SE bottleneck would be empty"
            )
        return hidden


class SEBlock(nn.Module):
    """Squeeze -> FC -> ReLU -> FC -> gate -> channel-wise scale of the input (fused with a residual: axpy).

    ``before_residual`` says that the caller adds a residual right after the block, so that ``axpy`` can
    fuse the two; without it ``scale=axpy`` is refused, naming ``where``.
    """

    def __init__(
        self, channels: int, *, config: SEConfig, where: str = "", before_residual: bool = False
    ) -> None:
        super().__init__()
        if config.scale == "axpy" and not before_residual:
            place = f"at {where}" if where else "here"
            raise UserInputError(
                f"scale=axpy fuses SE's scale with the residual addition that takes SE's output, as in "
                f"the ResNet, ResNeXt and SENet-154 blocks (placement standard or identity); SE {place} has "
                f"none: use scale=mul"
            )
        hidden = config.hidden_width(channels, where=where)
        self.channels = channels
        self.hidden = hidden
        self.squeeze = SQUEEZES[config.squeeze]()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=config.bias)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=config.bias)
        self.gate = GATES[config.gate]()
        self.fused = config.scale == "axpy"

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``x * weights``, or ``residual + x * weights`` in one op when a residual is passed."""
        weights = self.gate(self.fc2(self.relu(self.fc1(self.squeeze(x)))))
        if residual is None:
            return x * weights
        return torch.addcmul(residual, x, weights)


# Class names of SE modules written by others (torchvision.ops.SqueezeExcitation, timm's SqueezeExcite,
# SEModule and EffectiveSEModule, Cadene's SEModule), recognised so that a user's model gets an SE share too.
_FOREIGN_SE_NAME = re.compile(r"squeeze_?excit|^(effective)?se(module|layer|block)?$", re.IGNORECASE)


def is_se_module(module: nn.Module) -> bool:
    """True for an SE block: ours, or a module whose class name marks it as one (see _FOREIGN_SE_NAME)."""
    return isinstance(module, SEBlock) or bool(_FOREIGN_SE_NAME.search(type(module).__name__))


def se_module_names(model: nn.Module) -> list[str]:
    """Qualified names of the outermost SE modules in ``model``."""
    names: list[str] = []
    for name, module in model.named_modules():
        if is_se_module(module) and not any(name.startswith(f"{outer}.") for outer in names):
            names.append(name)
    return names
