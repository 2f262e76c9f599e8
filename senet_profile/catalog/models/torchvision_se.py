"""Modern networks that ship SE, from torchvision, each with its SE-free twin.

Every entry is registered under torchvision's own name with one knob, ``se``: ``on`` (default) is
torchvision's model as published; ``off`` is the same network with every SE module (found by
``is_se_module``: torchvision's ``ops.SqueezeExcitation``) replaced by ``nn.Identity``, so that
``senet-profile compare regnet_y_400mf:se=off regnet_y_400mf`` shows what SE costs there. The twin is made
by the generic ``remove_se`` (module surgery on whatever holds each SE module), not per architecture.

Models are built with ``weights=None``: nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models as tv

from senet_profile.catalog.attach import remove_se
from senet_profile.catalog.registry import register
from senet_profile.catalog.spec import bool_knob

SE = bool_knob("se", True, "keep the network's SE modules (off: each replaced by nn.Identity)")

_SE_OPS = "SE = torchvision.ops.SqueezeExcitation"

# name -> (torchvision builder, description naming the torchvision class and the paper)
_ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "mobilenet_v3_large": (
        tv.mobilenet_v3_large,
        f"MobileNetV3-Large (Howard et al., ICCV 2019); torchvision.models.MobileNetV3, {_SE_OPS}",
    ),
    "mobilenet_v3_small": (
        tv.mobilenet_v3_small,
        f"MobileNetV3-Small (Howard et al., ICCV 2019); torchvision.models.MobileNetV3, {_SE_OPS}",
    ),
    "efficientnet_b0": (
        tv.efficientnet_b0,
        f"EfficientNet-B0 (Tan & Le, ICML 2019); torchvision.models.EfficientNet, {_SE_OPS}",
    ),
    "efficientnet_b1": (
        tv.efficientnet_b1,
        f"EfficientNet-B1 (Tan & Le, ICML 2019); torchvision.models.EfficientNet, {_SE_OPS}",
    ),
    "regnet_y_400mf": (
        tv.regnet_y_400mf,
        f"RegNetY-400MF (Radosavovic et al., CVPR 2020); torchvision.models.RegNet, {_SE_OPS}",
    ),
    "regnet_y_800mf": (
        tv.regnet_y_800mf,
        f"RegNetY-800MF (Radosavovic et al., CVPR 2020); torchvision.models.RegNet, {_SE_OPS}",
    ),
}


def build_torchvision(builder: Callable[..., nn.Module], *, se: bool) -> nn.Module:
    """torchvision's model (no weights) on the current default device; ``se=False`` gives its SE-free twin.

    The model is built on the CPU and then moved: RegNet's builder computes its stage widths with tensors,
    which cannot be read back on the meta device that ``get_model`` builds on by default.
    """
    device = torch.get_default_device()
    with torch.device("cpu"):
        model = builder(weights=None)
    model = model.to(device)
    return model if se else remove_se(model)


def _register(name: str) -> None:
    builder, description = _ARCHITECTURES[name]

    @register(name, family="torchvision", knobs=(SE,), description=description)
    def build(*, se: bool) -> nn.Module:
        return build_torchvision(builder, se=se)


for _name in _ARCHITECTURES:
    _register(_name)
