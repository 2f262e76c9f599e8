"""VGG-16 with batch normalization, vanilla and with SE, on torchvision's VGG machinery.

Layout: torchvision's ``vgg16_bn`` unchanged (``VGG`` over ``make_layers(cfgs["D"], batch_norm=True)``):
the 13 3x3 convs of Simonyan & Zisserman's configuration D, each followed by BN and ReLU, five max pools,
and the three-layer classifier (25088 -> 4096 -> 4096 -> 1000); 138,365,992 parameters. The convs keep
their biases, as torchvision's do, although the BN after each makes them redundant.

SE: the SENet paper (Hu et al., TPAMI 2019, Sec. 6.1) adds BN after each conv of VGG-16 and integrates
SE into it without saying where; here one SE block follows the ReLU after each conv (13 blocks, on 64..512
channels), so that it recalibrates what the next conv sees, as SE does after each block of a ResNet.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.vgg import VGG, cfgs, make_layers

from senet_profile.catalog.models.knobs import SE_BLOCK_KNOBS, se_config
from senet_profile.catalog.registry import register
from senet_profile.catalog.se import SEBlock, SEConfig

STAGE_NAMES = {"features": "features", "avgpool": "head", "classifier": "head"}
DESCRIPTION = "VGG-16 with BN after each conv (Simonyan & Zisserman 2015, config D; torchvision vgg16_bn)"


class CatalogVGG(VGG):
    """torchvision's VGG, with display names for its parts (used to group counts)."""

    stage_names = STAGE_NAMES


def with_se_after_relus(features: nn.Sequential, config: SEConfig) -> nn.Sequential:
    """``features`` with an SE block after each ReLU, on the channels of the conv before it."""
    convs = enumerate((layer for layer in features if isinstance(layer, nn.Conv2d)), start=1)
    layers: list[nn.Module] = []
    for layer in features:
        layers.append(layer)
        if isinstance(layer, nn.ReLU):
            index, conv = next(convs)
            layers.append(SEBlock(conv.out_channels, config=config, where=f"conv layer {index}"))
    return nn.Sequential(*layers)


def build_vgg16_bn(se: SEConfig | None = None) -> CatalogVGG:
    """torchvision's VGG-16-BN layers, with an SE block after each conv's ReLU when ``se`` is given."""
    features = make_layers(cfgs["D"], batch_norm=True)
    return CatalogVGG(features if se is None else with_se_after_relus(features, se))


@register("vgg16_bn", family="vgg", description=DESCRIPTION)
def vgg16_bn() -> nn.Module:
    """VGG-16-BN as torchvision builds it."""
    return build_vgg16_bn()


@register("se_vgg16_bn", family="vgg", knobs=SE_BLOCK_KNOBS, description=f"SE-{DESCRIPTION}")
def se_vgg16_bn(**se: object) -> nn.Module:
    """VGG-16-BN with an SE block after each of its 13 conv + BN + ReLU layers."""
    return build_vgg16_bn(se_config(se))
