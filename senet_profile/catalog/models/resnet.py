"""ResNet and ResNeXt, vanilla and with SE, on torchvision's ResNet machinery.

torchvision's ``ResNet`` builds the stem, the four stages and the head; it is handed a block factory that
knows which stage each block belongs to (from its ``planes``), so that SE goes only into the stages asked
for, at the placement asked for. The blocks subclass torchvision's ``Bottleneck`` and ``BasicBlock``:
same layers and names, a forward with the five SE placements of the paper's Fig. 5 / Table 14:

- ``standard``: on the residual branch, after the last BN, before the addition;
- ``pre``: on the residual branch, before the block's first conv (the identity is not scaled);
- ``post``: after the addition and its ReLU;
- ``identity``: on the identity branch (after the projection shortcut where there is one);
- ``3x3`` (bottlenecks only): right after the 3x3 conv, on its ``width`` channels.

Layouts: ``torchvision`` puts a downsampling bottleneck's stride on the 3x3 conv (ResNet v1.5); ``paper``
puts it on the first 1x1 conv, as in the original Caffe ResNet and SE-ResNet models that the paper
measured. Parameters are the same; in ``paper`` the first 1x1 conv of each downsampling block runs on 4x
fewer positions (the 3x3 runs at the reduced resolution in both). Basic blocks (ResNet-18/34) have no
1x1 conv: both layouts coincide there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet, conv1x1, conv3x3

from senet_profile.catalog.models.knobs import (
    LAYOUT,
    PAPER_STAGES,
    PLACEMENT,
    SE_BLOCK_KNOBS,
    STAGES,
    se_config,
)
from senet_profile.catalog.registry import register
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError

# torchvision's _make_layer passes planes 64/128/256/512 to stages conv2_x..conv5_x.
_STAGE_OF_PLANES = {64: 2, 128: 3, 256: 4, 512: 5}

STAGE_NAMES = {
    "conv1": "conv1",
    "bn1": "conv1",
    "relu": "conv1",
    "maxpool": "conv1",
    "layer1": "conv2_x",
    "layer2": "conv3_x",
    "layer3": "conv4_x",
    "layer4": "conv5_x",
    "avgpool": "head",
    "fc": "head",
}


# Placements at which SE is followed by the residual addition, so that scale=axpy can fuse the two.
FUSABLE_PLACEMENTS = ("standard", "identity")


class _SEPlacement:
    """The forward shared by both block types: the residual branch, SE at its point, the merge.

    Memory follows torchvision's and timm's blocks: every intermediate is rebound as soon as the next op
    has run (``_branch`` returns only the branch's last output), SE runs before the projection shortcut
    (as in timm), and the shortcut is added in place (``out += shortcut``: the last BN and SE's product
    save nothing that the addition would overwrite). With ``scale=axpy`` SE returns ``shortcut + out * s``
    itself (``torch.addcmul``), so the projection shortcut runs first.
    """

    se: nn.Module | None
    se_placement: str
    downsample: nn.Module | None
    relu: nn.Module
    conv1: nn.Module
    bn1: nn.Module

    def _se_at(self, point: str, x: torch.Tensor) -> torch.Tensor:
        return self.se(x) if self.se is not None and self.se_placement == point else x

    def _first(self, x: torch.Tensor) -> torch.Tensor:
        """SE at ``pre``, then conv1, bn1 and ReLU: how both block types begin."""
        out = self._se_at("pre", x)
        out = self.conv1(out)
        out = self.bn1(out)
        return self.relu(out)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch up to its last BN (SE at ``pre`` and ``3x3`` included)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch, SE at its placement, the shortcut added in place (or fused: axpy), ReLU."""
        out = self._branch(x)
        se = self.se
        if se is not None and getattr(se, "fused", False):  # scale=axpy (remove_se leaves an Identity)
            shortcut = x if self.downsample is None else self.downsample(x)
            # identity placement: SE scales the shortcut, and the branch's output is the residual added to it
            standard = self.se_placement == "standard"
            out = se(out, shortcut) if standard else se(shortcut, out)
        else:
            out = self._se_at("standard", out)
            shortcut = x if self.downsample is None else self.downsample(x)
            out += self._se_at("identity", shortcut)
        out = self.relu(out)
        return self._se_at("post", out)

    def _attach_se(
        self, channels_at: dict[str, int], se: SEConfig | None, placement: str, where: str
    ) -> None:
        self.se_placement = placement
        if se is None:
            self.se = None
            return
        if placement not in channels_at:
            raise UserInputError(f"placement={placement} needs bottleneck blocks; {where} has basic blocks")
        if se.scale == "axpy" and placement not in FUSABLE_PLACEMENTS:
            raise UserInputError(
                f"scale=axpy fuses SE's scale with the residual addition, but placement={placement} puts SE "
                f"where no addition follows; use placement=standard or identity, or scale=mul"
            )
        self.se = SEBlock(
            channels_at[placement], config=se, where=where, before_residual=placement in FUSABLE_PLACEMENTS
        )


class SEBottleneck(_SEPlacement, Bottleneck):
    """torchvision's Bottleneck with an optional SE block and a choice of stride position."""

    conv2: nn.Conv2d

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: type[nn.Module] | None = None,
        *,
        stride_on_1x1: bool = False,
        se: SEConfig | None = None,
        placement: str = "standard",
        where: str = "",
    ) -> None:
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        width = self.conv2.in_channels
        if stride_on_1x1 and stride != 1:
            self.conv1 = conv1x1(inplanes, width, stride)
            self.conv2 = conv3x3(width, width, 1, groups, dilation)
        out_channels = planes * self.expansion
        channels_at = {"pre": inplanes, "3x3": width, "standard": out_channels}
        channels_at |= {"identity": out_channels, "post": out_channels}
        self._attach_se(channels_at, se, placement, where)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self._first(x)
        out = self.conv2(out)
        out = self._se_at("3x3", out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        return self.bn3(out)


class SEBasicBlock(_SEPlacement, BasicBlock):
    """torchvision's BasicBlock with an optional SE block (no 3x3 placement: both convs are 3x3)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: type[nn.Module] | None = None,
        *,
        stride_on_1x1: bool = False,
        se: SEConfig | None = None,
        placement: str = "standard",
        where: str = "",
    ) -> None:
        del stride_on_1x1  # no 1x1 conv in a basic block: the layouts coincide
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        channels_at = {"pre": inplanes, "standard": planes, "identity": planes, "post": planes}
        self._attach_se(channels_at, se, placement, where)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self._first(x)
        out = self.conv2(out)
        return self.bn2(out)


@dataclass(frozen=True)
class _BlockFactory:
    """Stands in for a block class in torchvision's ``ResNet``: builds each block for its stage."""

    block: type[SEBottleneck] | type[SEBasicBlock]
    se: SEConfig | None
    stages: frozenset[int]
    placement: str
    stride_on_1x1: bool

    @property
    def expansion(self) -> int:
        return self.block.expansion

    def __call__(self, inplanes: int, planes: int, *args: Any, **kwargs: Any) -> nn.Module:
        stage = _STAGE_OF_PLANES[planes]
        return self.block(
            inplanes,
            planes,
            *args,
            **kwargs,
            stride_on_1x1=self.stride_on_1x1,
            se=self.se if stage in self.stages else None,
            placement=self.placement,
            where=f"stage conv{stage}_x",
        )


class CatalogResNet(ResNet):
    """torchvision's ResNet, with the paper's names for its stages (used to group counts)."""

    stage_names = STAGE_NAMES


def build_resnet(
    block: type[SEBottleneck] | type[SEBasicBlock],
    layers: tuple[int, int, int, int],
    *,
    layout: str,
    groups: int = 1,
    width_per_group: int = 64,
    se: SEConfig | None = None,
    stages: frozenset[int] = frozenset(PAPER_STAGES),
    placement: str = "standard",
) -> CatalogResNet:
    """A ResNet/ResNeXt with SE (or none) in ``stages`` at ``placement``, in the given stride ``layout``."""
    factory = _BlockFactory(block, se, stages, placement, stride_on_1x1=layout == "paper")
    return CatalogResNet(factory, list(layers), groups=groups, width_per_group=width_per_group)


# name -> (block, blocks per stage, grouped-conv arguments, description)
_ARCHITECTURES: dict[
    str, tuple[type[SEBottleneck] | type[SEBasicBlock], tuple[int, int, int, int], dict, str]
] = {
    "resnet18": (SEBasicBlock, (2, 2, 2, 2), {}, "ResNet-18 (He et al. 2016)"),
    "resnet34": (SEBasicBlock, (3, 4, 6, 3), {}, "ResNet-34 (He et al. 2016)"),
    "resnet50": (SEBottleneck, (3, 4, 6, 3), {}, "ResNet-50 (He et al. 2016)"),
    "resnet101": (SEBottleneck, (3, 4, 23, 3), {}, "ResNet-101 (He et al. 2016)"),
    "resnet152": (SEBottleneck, (3, 8, 36, 3), {}, "ResNet-152 (He et al. 2016)"),
    "resnext50_32x4d": (SEBottleneck, (3, 4, 6, 3), {"groups": 32, "width_per_group": 4}, "ResNeXt-50 32x4d"),
    "resnext101_32x4d": (
        SEBottleneck,
        (3, 4, 23, 3),
        {"groups": 32, "width_per_group": 4},
        "ResNeXt-101 32x4d",
    ),
}


def _register_pair(name: str) -> None:
    block, layers, grouping, description = _ARCHITECTURES[name]

    @register(name, family="resnet", knobs=(LAYOUT,), description=description)
    def vanilla(*, layout: str) -> nn.Module:
        return build_resnet(block, layers, layout=layout, **grouping)

    @register(
        f"se_{name}",
        family="resnet",
        knobs=(LAYOUT, STAGES, PLACEMENT, *SE_BLOCK_KNOBS),
        description=f"SE-{description}",
    )
    def with_se(*, layout: str, stages: frozenset[int], placement: str, **se: object) -> nn.Module:
        config = se_config(se)
        return build_resnet(
            block, layers, layout=layout, se=config, stages=stages, placement=placement, **grouping
        )


for _name in _ARCHITECTURES:
    _register_pair(_name)
