"""BN-Inception and Inception-ResNet-v2, vanilla and with SE, built from their papers' layer tables.

torchvision has neither network. Both are written here as data (the layers of each branch, in the
papers' own widths) and built with torchvision's ``Conv2dNormActivation`` (conv, BN, ReLU).

BN-Inception (Ioffe & Szegedy 2015, "Batch Normalization", Figure 5). Reference implementation: the
Caffe model that is widely used as "bninception" (Cadene's pretrainedmodels port); where the paper
leaves a detail open, the choice below is the one the Caffe model makes:

- convs keep a bias before their BN (as in the Caffe model; Sec. 3.2 of the paper notes it is redundant);
- stride-2 max pools are 3x3 without padding in ceil mode (Caffe's pooling), which gives Figure 5's
  112 -> 56 -> 28 sizes; the pools inside the modules are 3x3, stride 1, padding 1;
- in the stride-2 modules 3c and 4e, the stride is on the last conv of each branch and on the max pool;
- Figure 5 prints an output of 576 channels for modules 4c and 4d, but their branch widths (160 + 160 +
  160 + 128 and 96 + 192 + 192 + 128) add up to 608: the branch widths are kept, as in the Caffe model,
  so 4d and 4e take 608 input channels and 4e gives 192 + 256 + 608 = 1056;
- the first conv is a plain 7x7 conv (the Caffe model; TF-slim's Inception-v2 makes it separable);
- no dropout; global average pooling, then a 1024 -> 1000 FC.

SE: on the output of each of the ten Inception modules (after the concatenation).

Inception-ResNet-v2 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning"): Figure 15's schema with the stem of Figure 3, 5 Inception-ResNet-A blocks
(Figure 16), Reduction-A (Figure 7 with Table 1's k, l, m, n = 256, 256, 384, 384), 10 Inception-ResNet-B
blocks (Figure 17), Reduction-B (Figure 18) and 5 Inception-ResNet-C blocks (Figure 19), then average
pooling, dropout (keep 0.8) and the FC; measured at 299x299. "V" convs and every stride-2 pool are
unpadded, other convs are padded to keep the size. Left open or inconsistent in the paper, and chosen:

- each block's "1x1 Conv (Linear)" must output as many channels as the block's input for the addition:
  Figure 17 prints 1154 and Figure 19 2048, but the blocks receive 1152 (= 384 + 384 + 384 after
  Reduction-A) and 2144 (= 1152 + 384 + 288 + 320 after Reduction-B) channels: the residual additions
  decide, so B blocks run on 1152 channels and C blocks on 2144;
- the linear 1x1 conv has a bias and no BN (Sec. 3.3 puts BN "only on top of the traditional layers");
  every other conv is conv (no bias) + BN + ReLU;
- residuals are scaled before the addition (Sec. 3.3: "between 0.1 and 0.3"): 0.17, 0.10 and 0.20 for
  the A, B and C blocks, the values of the authors' TF-slim release (no effect on any count);
- no extra 1x1 conv before the pooling (TF-slim's ``Conv2d_7b_1x1``, 1536 channels, is not in the paper).

SE: on the residual branch of each of the 20 Inception-ResNet blocks, after the linear 1x1 conv, before
the scaling and the addition.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import groupby

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from senet_profile.catalog.models.knobs import SE_BLOCK_KNOBS, se_config
from senet_profile.catalog.registry import register
from senet_profile.catalog.se import SEBlock, SEConfig

HEAD = {"avgpool": "head", "flatten": "head", "dropout": "head", "fc": "head"}
POOLS: dict[str, type[nn.MaxPool2d] | type[nn.AvgPool2d]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
# 3x3 pools: stride 1 padded to keep the size, stride 2 unpadded (the papers' "V").
POOL_PADDING = {1: 1, 2: 0}


@dataclass(frozen=True)
class Style:
    """Framework conventions of a reference implementation: conv bias before BN, ceil-mode pooling."""

    conv_bias: bool
    ceil_mode: bool


CAFFE = Style(conv_bias=True, ceil_mode=True)
TF_SLIM = Style(conv_bias=False, ceil_mode=False)


@dataclass(frozen=True)
class Conv:
    """Conv + BN + ReLU: output channels, kernel, stride; ``valid`` is the papers' "V" (no padding)."""

    out: int
    kernel: int | tuple[int, int] = 1
    stride: int = 1
    valid: bool = False

    def channels(self, in_channels: int) -> int:
        """Output channels on ``in_channels`` input channels."""
        return self.out

    def build(self, in_channels: int, style: Style) -> nn.Module:
        """The layer on ``in_channels`` input channels."""
        padding = 0 if self.valid else None
        return Conv2dNormActivation(
            in_channels, self.out, self.kernel, self.stride, padding=padding, bias=style.conv_bias
        )


@dataclass(frozen=True)
class Pool:
    """3x3 pooling: stride 1 padded to keep the size, stride 2 unpadded (the papers' "V")."""

    kind: str
    stride: int = 1

    def channels(self, in_channels: int) -> int:
        """Output channels on ``in_channels`` input channels: the same."""
        return in_channels

    def build(self, in_channels: int, style: Style) -> nn.Module:
        """The layer (``in_channels`` does not change it)."""
        return POOLS[self.kind](3, self.stride, padding=POOL_PADDING[self.stride], ceil_mode=style.ceil_mode)


@dataclass(frozen=True)
class Parallel:
    """Branches run on one input, concatenated along channels (a "Filter concat" of the figures)."""

    branches: tuple[tuple[Conv | Pool | Parallel, ...], ...]

    def channels(self, in_channels: int) -> int:
        """Output channels on ``in_channels`` input channels: the sum over branches."""
        return sum(chain_channels(in_channels, branch) for branch in self.branches)

    def build(self, in_channels: int, style: Style) -> nn.Module:
        """The module on ``in_channels`` input channels."""
        return Concat(build_chain(in_channels, branch, style) for branch in self.branches)


Layer = Conv | Pool | Parallel


def chain_channels(in_channels: int, layers: tuple[Layer, ...]) -> int:
    """Output channels of ``layers`` applied one after the other."""
    for layer in layers:
        in_channels = layer.channels(in_channels)
    return in_channels


def build_chain(in_channels: int, layers: tuple[Layer, ...], style: Style) -> nn.Sequential:
    """``layers`` as a Sequential on ``in_channels`` input channels."""
    modules: list[nn.Module] = []
    for layer in layers:
        modules.append(layer.build(in_channels, style))
        in_channels = layer.channels(in_channels)
    return nn.Sequential(*modules)


class Concat(nn.ModuleList):
    """Runs every branch on the input and concatenates their outputs along channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self], dim=1)


def se_or_identity(channels: int, se: SEConfig | None, where: str) -> nn.Module:
    """An SE block on ``channels`` channels, or an identity when ``se`` is None."""
    return nn.Identity() if se is None else SEBlock(channels, config=se, where=where)


# ---------------------------------------------------------------------------------------------- BN-Inception


@dataclass(frozen=True)
class InceptionRow:
    """One Inception row of Ioffe & Szegedy 2015, Figure 5 (0 in ``proj``: the pool passes through)."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    double_reduce: int
    double_3x3: int
    pool: str
    proj: int
    stride: int = 1

    def module(self) -> Parallel:
        """The module's branches; with stride 2 the last layer of each branch has the stride."""
        s = self.stride
        branches = (
            ((Conv(self.n1x1),),) if self.n1x1 else (),
            ((Conv(self.n3x3_reduce), Conv(self.n3x3, 3, s)),),
            ((Conv(self.double_reduce), Conv(self.double_3x3, 3), Conv(self.double_3x3, 3, s)),),
            ((Pool(self.pool, s), *((Conv(self.proj),) if self.proj else ())),),
        )
        return Parallel(tuple(branch for group in branches for branch in group))


BN_INCEPTION_STEM = (Conv(64, 7, 2), Pool("max", 2), Conv(64), Conv(192, 3), Pool("max", 2))
BN_INCEPTION_ROWS = (
    InceptionRow("3a", 64, 64, 64, 64, 96, "avg", 32),
    InceptionRow("3b", 64, 64, 96, 64, 96, "avg", 64),
    InceptionRow("3c", 0, 128, 160, 64, 96, "max", 0, stride=2),
    InceptionRow("4a", 224, 64, 96, 96, 128, "avg", 128),
    InceptionRow("4b", 192, 96, 128, 96, 128, "avg", 128),
    InceptionRow("4c", 160, 128, 160, 128, 160, "avg", 128),
    InceptionRow("4d", 96, 128, 192, 160, 192, "avg", 128),
    InceptionRow("4e", 0, 128, 192, 192, 256, "max", 0, stride=2),
    InceptionRow("5a", 352, 192, 320, 160, 224, "avg", 128),
    InceptionRow("5b", 352, 192, 320, 192, 224, "max", 128),
)


class CatalogSequential(nn.Sequential):
    """A network as a Sequential of named stages; ``stage_names`` groups its head (used to group counts)."""

    stage_names = HEAD


def inception_module(in_channels: int, row: InceptionRow, se: SEConfig | None) -> nn.Sequential:
    """Inception module ``row`` on ``in_channels`` channels, with SE on its output when ``se`` is given."""
    branches = row.module()
    se_block = se_or_identity(branches.channels(in_channels), se, where=f"inception ({row.name})")
    return nn.Sequential(OrderedDict(branches=branches.build(in_channels, CAFFE), se=se_block))


def build_bn_inception(se: SEConfig | None = None, num_classes: int = 1000) -> CatalogSequential:
    """BN-Inception (Figure 5, Caffe layout), with SE on each Inception module's output when asked."""
    stages: OrderedDict[str, nn.Module] = OrderedDict(stem=build_chain(3, BN_INCEPTION_STEM, CAFFE))
    channels = chain_channels(3, BN_INCEPTION_STEM)
    for group, rows in groupby(BN_INCEPTION_ROWS, key=lambda row: row.name[0]):
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for row in rows:
            modules[row.name] = inception_module(channels, row, se)
            channels = row.module().channels(channels)
        stages[f"inception{group}"] = nn.Sequential(modules)
    return CatalogSequential(stages | head(channels, num_classes))


def head(channels: int, num_classes: int, dropout: float | None = None) -> OrderedDict[str, nn.Module]:
    """Global average pooling, dropout (when given a probability) and the classifier."""
    drop = {} if dropout is None else {"dropout": nn.Dropout(dropout)}
    return OrderedDict(
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1), **drop, fc=nn.Linear(channels, num_classes)
    )


# ------------------------------------------------------------------------------------- Inception-ResNet-v2


class InceptionResNetBlock(nn.Module):
    """Branches, linear 1x1 conv back to the input width, SE (optional), scale, add the input, ReLU."""

    def __init__(
        self, channels: int, branches: Parallel, scale: float, *, se: SEConfig | None, where: str
    ) -> None:
        super().__init__()
        self.branches = branches.build(channels, TF_SLIM)
        self.up = nn.Conv2d(branches.channels(channels), channels, kernel_size=1, bias=True)
        self.se = se_or_identity(channels, se, where)
        self.scale = scale
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.scale * self.se(self.up(self.branches(x))))


@dataclass(frozen=True)
class Residual:
    """A stage of ``repeats`` Inception-ResNet blocks of the given branches, residuals scaled by ``scale``."""

    branches: Parallel
    scale: float
    repeats: int

    def channels(self, in_channels: int) -> int:
        """Output channels on ``in_channels`` input channels: the same (the blocks add their input)."""
        return in_channels

    def build(self, in_channels: int, se: SEConfig | None, name: str) -> nn.Module:
        """The stage on ``in_channels`` channels, with SE on each residual branch when ``se`` is given."""
        return nn.Sequential(
            *(
                InceptionResNetBlock(in_channels, self.branches, self.scale, se=se, where=f"{name} block {i}")
                for i in range(1, self.repeats + 1)
            )
        )


@dataclass(frozen=True)
class Chain:
    """A stage of plain layers, one after the other (a stem or a reduction block): no SE."""

    layers: tuple[Layer, ...]

    def channels(self, in_channels: int) -> int:
        """Output channels on ``in_channels`` input channels."""
        return chain_channels(in_channels, self.layers)

    def build(self, in_channels: int, se: SEConfig | None, name: str) -> nn.Module:
        """The stage on ``in_channels`` input channels (``se`` and ``name`` do not change it)."""
        return build_chain(in_channels, self.layers, TF_SLIM)


IRV2_STEM = (  # Figure 3
    Conv(32, 3, 2, valid=True),
    Conv(32, 3, valid=True),
    Conv(64, 3),
    Parallel(((Pool("max", 2),), (Conv(96, 3, 2, valid=True),))),
    Parallel(
        (
            (Conv(64), Conv(96, 3, valid=True)),
            (Conv(64), Conv(64, (7, 1)), Conv(64, (1, 7)), Conv(96, 3, valid=True)),
        )
    ),
    Parallel(((Conv(192, 3, 2, valid=True),), (Pool("max", 2),))),
)
IRV2_BLOCK_A = Parallel(  # Figure 16
    ((Conv(32),), (Conv(32), Conv(32, 3)), (Conv(32), Conv(48, 3), Conv(64, 3)))
)
IRV2_REDUCTION_A = Parallel(  # Figure 7, k = 256, l = 256, m = 384, n = 384 (Table 1)
    (
        (Pool("max", 2),),
        (Conv(384, 3, 2, valid=True),),
        (Conv(256), Conv(256, 3), Conv(384, 3, 2, valid=True)),
    )
)
IRV2_BLOCK_B = Parallel(((Conv(192),), (Conv(128), Conv(160, (1, 7)), Conv(192, (7, 1)))))  # Figure 17
IRV2_REDUCTION_B = Parallel(  # Figure 18
    (
        (Pool("max", 2),),
        (Conv(256), Conv(384, 3, 2, valid=True)),
        (Conv(256), Conv(288, 3, 2, valid=True)),
        (Conv(256), Conv(288, 3), Conv(320, 3, 2, valid=True)),
    )
)
IRV2_BLOCK_C = Parallel(((Conv(192),), (Conv(192), Conv(224, (1, 3)), Conv(256, (3, 1)))))  # Figure 19

# Figure 15's schema, stage by stage.
IRV2_LAYOUT: tuple[tuple[str, Chain | Residual], ...] = (
    ("stem", Chain(IRV2_STEM)),
    ("inception_resnet_a", Residual(IRV2_BLOCK_A, scale=0.17, repeats=5)),
    ("reduction_a", Chain((IRV2_REDUCTION_A,))),
    ("inception_resnet_b", Residual(IRV2_BLOCK_B, scale=0.10, repeats=10)),
    ("reduction_b", Chain((IRV2_REDUCTION_B,))),
    ("inception_resnet_c", Residual(IRV2_BLOCK_C, scale=0.20, repeats=5)),
)


def build_inception_resnet_v2(se: SEConfig | None = None, num_classes: int = 1000) -> CatalogSequential:
    """Inception-ResNet-v2 from the paper's figures, with SE on each residual branch when asked."""
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for name, stage in IRV2_LAYOUT:
        stages[name] = stage.build(channels, se, name)
        channels = stage.channels(channels)
    return CatalogSequential(stages | head(channels, num_classes, dropout=0.2))


BN_INCEPTION = "BN-Inception (Ioffe & Szegedy 2015, Figure 5; Caffe bninception layout)"
IRV2 = "Inception-ResNet-v2 (Szegedy et al. 2016, Figures 3, 7, 15-19); paper input 299x299"


@register("bn_inception", family="inception", description=BN_INCEPTION)
def bn_inception() -> nn.Module:
    """BN-Inception."""
    return build_bn_inception()


@register("se_bn_inception", family="inception", knobs=SE_BLOCK_KNOBS, description=f"SE-{BN_INCEPTION}")
def se_bn_inception(**se: object) -> nn.Module:
    """BN-Inception with SE on each Inception module's output."""
    return build_bn_inception(se_config(se))


@register("inception_resnet_v2", family="inception", description=IRV2)
def inception_resnet_v2() -> nn.Module:
    """Inception-ResNet-v2."""
    return build_inception_resnet_v2()


@register("se_inception_resnet_v2", family="inception", knobs=SE_BLOCK_KNOBS, description=f"SE-{IRV2}")
def se_inception_resnet_v2(**se: object) -> nn.Module:
    """Inception-ResNet-v2 with SE on each Inception-ResNet block's residual branch."""
    return build_inception_resnet_v2(se_config(se))
