"""A user's own small CNN builders, loaded by the tests as ``small_cnn:FUNCTION`` or ``FILE.py:FUNCTION``."""

from __future__ import annotations

from torch import nn
from torchvision.ops import SqueezeExcitation


def small_cnn(width: int = 8, se: bool = False, classes: int = 10) -> nn.Module:
    """conv 3->width (3x3), optional torchvision SE, global pool, linear width->classes."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.ReLU()]
    if se:
        layers.append(SqueezeExcitation(width, max(1, width // 4)))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)


def raises() -> nn.Module:
    """A builder that fails."""
    raise RuntimeError("the builder broke")


def not_a_module() -> int:
    """A builder that returns something other than a module."""
    return 42


class Mystery(nn.Module):
    """A spatial attention layer of a kind the tool does not know."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x):
        return x * self.conv(x).sigmoid()


class MysteryAttention(Mystery):
    """The same layer, named like attention."""


def with_mystery_attention(named: bool = True) -> nn.Module:
    """small_cnn with an unrecognised attention layer after its conv."""
    layer = MysteryAttention(8) if named else Mystery(8)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), layer, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def timm_resnet_with(attn: str = "cbam") -> nn.Module:
    """timm's ResNet-18 layout with one block per stage and timm's attention layer ``attn`` in each block."""
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(block=BasicBlock, layers=[1, 1, 1, 1], block_args={"attn_layer": attn}, num_classes=10)
