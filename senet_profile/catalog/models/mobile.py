"""Mobile networks of the SENet paper's Table 3: MobileNet and ShuffleNet, vanilla and with SE.

torchvision has neither network, so both are built here from their papers' layer tables, with
torchvision's ``Conv2dNormActivation`` (conv, BN, ReLU; no conv bias) and ShuffleNet V2's
``channel_shuffle``.

MobileNet ("1.0 MobileNet-224", Howard et al. 2017, Table 1): a full 3x3 conv (32 channels, stride 2),
13 depthwise-separable layers (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU), global
average pooling and a 1024 -> 1000 FC. Left open by the paper: Table 1 prints stride 2 for the last
depthwise conv, but its input-size column gives 7x7 both before and after it, and the average pool
that follows is 7x7; stride 1 is taken, the only reading that agrees with the table's sizes. Dropout
before the FC is not in the table and is left out. SE: one block after each depthwise-separable
layer's pointwise conv + ReLU (13 blocks).

ShuffleNet ("ShuffleNet 1x (g = 3)", Zhang et al. 2018, Table 1 and Fig. 2): a 3x3 conv (24 channels,
stride 2) and a 3x3 stride-2 max pool, then stages 2-4 of 4, 8 and 4 units with 240, 480 and 960 output
channels, global average pooling and an FC. A unit is 1x1 group conv (g = 3) + BN + ReLU, channel
shuffle, 3x3 depthwise conv + BN (no ReLU, Sec. 3.2), 1x1 group conv + BN; a stride-1 unit adds its
input and applies ReLU; the first unit of each stage has stride 2 on the depthwise conv, a 3x3 stride-2
average pool as shortcut, and concatenates (its branch thus produces the stage's output channels minus
its input channels). The bottleneck has 1/4 of the unit's output channels; the first pointwise conv of
stage 2 is not grouped (its input has only 24 channels). Left open by the paper: the padding of the
pools and of the stride-2 depthwise convs (1 is taken, so that 224 -> 112 -> 56 -> 28 -> 14 -> 7 as in
Table 1), and whether to shuffle after the ungrouped first conv of stage 2 (done: a permutation costs
nothing). SE: on the residual branch, after its last BN, before the addition or concatenation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle
from torchvision.ops import Conv2dNormActivation

from senet_profile.catalog.models.knobs import SE_BLOCK_KNOBS, se_config
from senet_profile.catalog.registry import register
from senet_profile.catalog.se import SEBlock, SEConfig

# Howard et al. 2017, Table 1: (pointwise output channels, depthwise stride) of the 13 separable layers.
MOBILENET_V1_STEM = 32
MOBILENET_V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)

MOBILENET_STAGE_NAMES = {"conv1": "conv1", "layers": "separable", "avgpool": "head", "fc": "head"}
SHUFFLENET_STAGE_NAMES = {"conv1": "conv1", "maxpool": "conv1", "avgpool": "head", "fc": "head"}


def _se_layer(channels: int, se: SEConfig | None, where: str) -> dict[str, nn.Module]:
    return {} if se is None else {"se": SEBlock(channels, config=se, where=where)}


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU, then an SE block if asked for."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, se: SEConfig | None, where: str):
        layers: dict[str, nn.Module] = {
            "depthwise": Conv2dNormActivation(in_channels, in_channels, 3, stride, groups=in_channels),
            "pointwise": Conv2dNormActivation(in_channels, out_channels, 1),
        }
        super().__init__(OrderedDict(layers | _se_layer(out_channels, se, where)))


class MobileNetV1(nn.Module):
    """1.0 MobileNet-224 from Howard et al. 2017, Table 1, optionally with SE after each separable layer."""

    stage_names = MOBILENET_STAGE_NAMES

    def __init__(self, se: SEConfig | None = None, num_classes: int = 1000) -> None:
        super().__init__()
        outs = [out for out, _ in MOBILENET_V1_LAYERS]
        ins = [MOBILENET_V1_STEM, *outs[:-1]]
        self.conv1 = Conv2dNormActivation(3, MOBILENET_V1_STEM, 3, 2)
        self.layers = nn.Sequential(
            *(
                DepthwiseSeparable(cin, cout, stride, se=se, where=f"separable layer {i}")
                for i, (cin, (cout, stride)) in enumerate(zip(ins, MOBILENET_V1_LAYERS, strict=True), start=1)
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(outs[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layers(self.conv1(x))), 1))


def _concat(shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    return torch.cat((shortcut, branch), dim=1)


@dataclass(frozen=True)
class UnitMerge:
    """How a ShuffleNet unit joins shortcut and branch (Zhang et al. 2018, Fig. 2b: add; Fig. 2c: concat)."""

    shortcut: Callable[[], nn.Module]
    join: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    concat: bool


MERGE_BY_STRIDE = {
    1: UnitMerge(nn.Identity, torch.add, concat=False),
    2: UnitMerge(lambda: nn.AvgPool2d(3, stride=2, padding=1), _concat, concat=True),
}


class ShuffleUnit(nn.Module):
    """A ShuffleNet unit (Fig. 2b/2c) with an optional SE block on its branch, before the merge."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        groups: int,
        *,
        group_first: bool,
        se: SEConfig | None,
        where: str,
    ) -> None:
        super().__init__()
        merge = MERGE_BY_STRIDE[stride]
        mid = out_channels // 4
        branch = out_channels - in_channels if merge.concat else out_channels
        self.groups = groups
        self.join = merge.join
        self.compress = Conv2dNormActivation(in_channels, mid, 1, groups=groups if group_first else 1)
        self.depthwise = Conv2dNormActivation(mid, mid, 3, stride, groups=mid, activation_layer=None)
        self.expand = Conv2dNormActivation(mid, branch, 1, groups=groups, activation_layer=None)
        self.se = SEBlock(branch, config=se, where=where) if se is not None else nn.Identity()
        self.shortcut = merge.shortcut()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(channel_shuffle(self.compress(x), self.groups))
        return self.relu(self.join(self.shortcut(x), self.se(self.expand(out))))


@dataclass(frozen=True)
class ShuffleNetLayout:
    """One column of Zhang et al. 2018, Table 1: groups, stem width, (output channels, units) per stage."""

    groups: int
    stem: int
    stages: tuple[tuple[int, int], ...]


SHUFFLENET_V1_G3 = ShuffleNetLayout(groups=3, stem=24, stages=((240, 4), (480, 8), (960, 4)))


def shuffle_stage(
    in_channels: int, out_channels: int, units: int, groups: int, *, number: int, se: SEConfig | None
) -> nn.Sequential:
    """Stage ``number`` of ShuffleNet: a stride-2 unit, then ``units - 1`` stride-1 units."""
    return nn.Sequential(
        *(
            ShuffleUnit(
                in_channels if unit == 0 else out_channels,
                out_channels,
                2 if unit == 0 else 1,
                groups,
                group_first=number > 2 or unit > 0,
                se=se,
                where=f"stage {number}, unit {unit + 1}",
            )
            for unit in range(units)
        )
    )


class ShuffleNetV1(nn.Module):
    """ShuffleNet (Zhang et al. 2018, Table 1) in the given layout, optionally with SE in every unit."""

    stage_names = SHUFFLENET_STAGE_NAMES

    def __init__(self, layout: ShuffleNetLayout, se: SEConfig | None = None, num_classes: int = 1000):
        super().__init__()
        widths = [layout.stem, *(out for out, _ in layout.stages)]
        self.conv1 = Conv2dNormActivation(3, layout.stem, 3, 2)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stage2, self.stage3, self.stage4 = (
            shuffle_stage(cin, cout, units, layout.groups, number=number, se=se)
            for number, (cin, (cout, units)) in enumerate(zip(widths, layout.stages, strict=False), start=2)
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


MOBILENET_DESCRIPTION = "1.0 MobileNet-224 (Howard et al. 2017, Table 1)"
SHUFFLENET_DESCRIPTION = "ShuffleNet 1x, g = 3 (Zhang et al. 2018, Table 1)"


@register("mobilenet_v1", family="mobilenet", description=MOBILENET_DESCRIPTION)
def mobilenet_v1() -> nn.Module:
    """1.0 MobileNet-224."""
    return MobileNetV1()


@register(
    "se_mobilenet_v1", family="mobilenet", knobs=SE_BLOCK_KNOBS, description=f"SE-{MOBILENET_DESCRIPTION}"
)
def se_mobilenet_v1(**se: object) -> nn.Module:
    """1.0 MobileNet-224 with SE after each depthwise-separable layer."""
    return MobileNetV1(se_config(se))


@register("shufflenet_v1_g3", family="shufflenet", description=SHUFFLENET_DESCRIPTION)
def shufflenet_v1_g3() -> nn.Module:
    """ShuffleNet 1x (g = 3)."""
    return ShuffleNetV1(SHUFFLENET_V1_G3)


@register(
    "se_shufflenet_v1_g3",
    family="shufflenet",
    knobs=SE_BLOCK_KNOBS,
    description=f"SE-{SHUFFLENET_DESCRIPTION}",
)
def se_shufflenet_v1_g3(**se: object) -> nn.Module:
    """ShuffleNet 1x (g = 3) with SE on each unit's branch."""
    return ShuffleNetV1(SHUFFLENET_V1_G3, se_config(se))
