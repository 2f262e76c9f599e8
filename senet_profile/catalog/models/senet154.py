"""SENet-154 and the same network without SE, on torchvision's ResNet bottleneck.

Source: the SENet paper's appendix (Hu et al., TPAMI 2019, "Details of SENet-154"), with Cadene's
pretrainedmodels ``senet154`` (a port of the authors' released Caffe model) as the reference for what
the appendix leaves open. SENet-154 is ResNeXt-152 64x4d (stages of 3, 8, 36 and 3 bottlenecks, 3x3
convs in 64 groups of 4 channels per group in the first stage, widths doubling per stage) modified by:

(a) the first 1x1 conv of each bottleneck gives half the channels that the grouped 3x3 conv outputs
    (128 -> 256 in the first stage, instead of 256 -> 256);
(b) the 7x7 stem conv is replaced by three 3x3 convs of 64, 64 and 128 channels (the first with stride 2),
    each with BN and ReLU, followed by a 3x3 stride-2 max pool (ceil mode, as in the Caffe model);
(c) each downsampling projection shortcut is a 3x3 stride-2 conv instead of a 1x1 one; the first
    stage's projection (stride 1, 128 -> 256 channels) stays 1x1, since it does not downsample;
(d) dropout with probability 0.2 before the classifier.

Choices that the appendix leaves open and the reference fixes: the stride of a downsampling bottleneck
is on its grouped 3x3 conv; SE uses r = 16 and sits after the last BN of the residual branch, before the
addition (the ``standard`` placement; the other placements of ``resnet.py`` are available).

The SE-free twin is registered as ``senet154_no_se``: the network only exists as SENet-154's backbone
(changes (a)-(c) make it no published ResNeXt), so it is named after SENet-154 rather than after a
ResNeXt that it is not.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import nn
from torchvision.models.resnet import conv1x1, conv3x3
from torchvision.ops import Conv2dNormActivation

from senet_profile.catalog.models.knobs import PLACEMENT, SE_BLOCK_KNOBS, se_config
from senet_profile.catalog.models.resnet import STAGE_NAMES, SEBottleneck
from senet_profile.catalog.registry import register
from senet_profile.catalog.se import SEConfig

GROUPS = 64
WIDTH_PER_GROUP = 4
# Change (b): (output channels, stride) of the three 3x3 stem convs.
STEM = ((64, 2), (64, 1), (128, 1))
DROPOUT = 0.2
# Projection kernel by stride: change (c) makes downsampling projections 3x3; the others stay 1x1.
PROJECTION_KERNEL = {1: 1, 2: 3}

SENET154_STAGE_NAMES = STAGE_NAMES | {"layer0": "conv1", "flatten": "head", "dropout": "head"}


@dataclass(frozen=True)
class Stage:
    """One stage of SENet-154: torchvision's ``planes`` (output = 4 x planes), blocks and first stride."""

    planes: int
    blocks: int
    stride: int
    name: str


SENET154_STAGES = (
    Stage(64, 3, 1, "conv2_x"),
    Stage(128, 8, 2, "conv3_x"),
    Stage(256, 36, 2, "conv4_x"),
    Stage(512, 3, 2, "conv5_x"),
)


class SENet154Bottleneck(SEBottleneck):
    """The ResNeXt 64x4d bottleneck of ``resnet.py`` (SE at any placement) with change (a)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        se: SEConfig | None,
        placement: str,
        where: str,
    ) -> None:
        super().__init__(
            inplanes,
            planes,
            stride,
            downsample,
            GROUPS,
            WIDTH_PER_GROUP,
            se=se,
            placement=placement,
            where=where,
        )
        width = self.conv2.out_channels
        self.conv1 = conv1x1(inplanes, width // 2)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = conv3x3(width // 2, width, stride, GROUPS)


class SENet154(nn.Sequential):
    """SENet-154 (``se`` given) or its SE-free twin: stem, four stages, pooling, dropout, classifier."""

    stage_names = SENET154_STAGE_NAMES

    def __init__(self, se: SEConfig | None = None, placement: str = "standard", num_classes: int = 1000):
        stages: OrderedDict[str, nn.Module] = OrderedDict(layer0=stem())
        inplanes = STEM[-1][0]
        for index, spec in enumerate(SENET154_STAGES, start=1):
            stages[f"layer{index}"] = stage(inplanes, spec, se, placement)
            inplanes = spec.planes * SENet154Bottleneck.expansion
        head = OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            dropout=nn.Dropout(DROPOUT),
            fc=nn.Linear(inplanes, num_classes),
        )
        super().__init__(stages | head)


def stem() -> nn.Sequential:
    """Change (b): three 3x3 convs (the first with stride 2), each with BN and ReLU, then a max pool.

    One flat ``Sequential`` (conv1, bn1, relu1, ..., pool), as in the reference: nested ones would keep each
    conv-BN-ReLU group's input alive while the group runs.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = 3
    for index, (out, stride) in enumerate(STEM, start=1):
        layers[f"conv{index}"] = nn.Conv2d(cin, out, 3, stride, padding=1, bias=False)
        layers[f"bn{index}"] = nn.BatchNorm2d(out)
        layers[f"relu{index}"] = nn.ReLU(inplace=True)
        cin = out
    layers["pool"] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    return nn.Sequential(layers)


def stage(inplanes: int, spec: Stage, se: SEConfig | None, placement: str) -> nn.Sequential:
    """One stage: a first block with a projection shortcut (change (c)), then ``spec.blocks - 1`` more."""
    out = spec.planes * SENet154Bottleneck.expansion
    kernel = PROJECTION_KERNEL[spec.stride]
    projection = Conv2dNormActivation(inplanes, out, kernel, spec.stride, activation_layer=None)
    blocks = [
        SENet154Bottleneck(
            inplanes if i == 0 else out,
            spec.planes,
            spec.stride if i == 0 else 1,
            projection if i == 0 else None,
            se=se,
            placement=placement,
            where=f"stage {spec.name}",
        )
        for i in range(spec.blocks)
    ]
    return nn.Sequential(*blocks)


DESCRIPTION = "SENet-154 (Hu et al., TPAMI 2019, appendix; Cadene pretrainedmodels senet154)"


@register("senet154_no_se", family="senet", knobs=(), description=f"{DESCRIPTION} without SE")
def senet154_no_se() -> nn.Module:
    """SENet-154 with its SE blocks left out: the modified ResNeXt-152 64x4d it is built on."""
    return SENet154()


@register("senet154", family="senet", knobs=(PLACEMENT, *SE_BLOCK_KNOBS), description=DESCRIPTION)
def senet154(*, placement: str, **se: object) -> nn.Module:
    """SENet-154."""
    return SENet154(se_config(se), placement)
