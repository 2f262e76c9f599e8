"""add_se on MobileNetV2, ShuffleNetV2, DenseNet, ConvNeXt and RegNet X against closed forms, and at= points.

Each family's SE channels come from its paper's architecture table (or, for RegNet, the paper's width
formula), never from the built model; the counts from the model must equal 2*C*(C//r) + C//r + C
parameters (two FC weights and their biases) and 2*C*(C//r) MACs (the FCs on the pooled vector) per block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torchvision import models as tv

from senet_profile.analysis.static import analyze
from senet_profile.catalog.attach import add_se, named_points, remove_se
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError

SHAPE = (1, 3, 224, 224)


def se_params(channels: int, r: int) -> int:
    hidden = channels // r
    return 2 * channels * hidden + hidden + channels


def se_macs(channels: int, r: int) -> int:
    return 2 * channels * (channels // r)


def mobilenet_v2_channels() -> list[int]:
    """MobileNetV2 paper, Table 2 (t, c, n, s): SE on each block's expanded (depthwise) channels."""
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2)]
    table.append((6, 320, 1, 1))
    channels, inp = [], 32
    for t, c, n, _ in table:
        for _ in range(n):
            channels.append(inp * t)
            inp = c
    return channels


def shufflenet_v2_channels() -> list[int]:
    """ShuffleNetV2 1.0x, Table 5: stage outputs 116, 232, 464, 4, 8, 4 units; SE on branch2 (half)."""
    return [out // 2 for out, repeats in ((116, 4), (232, 8), (464, 4)) for _ in range(repeats)]


def densenet121_channels() -> list[int]:
    """DenseNet-121 (k=32, blocks 6, 12, 24, 16, compression 0.5): each dense block's concatenated output."""
    channels, inp = [], 64
    for layers in (6, 12, 24, 16):
        out = inp + 32 * layers
        channels.append(out)
        inp = out // 2
    return channels


def convnext_tiny_channels() -> list[int]:
    """ConvNeXt-T: dims 96, 192, 384, 768 with 3, 3, 9, 3 blocks; SE on each block's residual branch."""
    return [dim for dim, depth in ((96, 3), (192, 3), (384, 9), (768, 3)) for _ in range(depth)]


def regnet_x_channels(
    *, depth: int, w_0: int, w_a: float, w_m: float, group: int, half_up: bool = False
) -> list[int]:
    """RegNet paper, Eq. 2-3: u_j = w_0 + w_a j, quantised to w_0 w_m^round(log(u_j/w_0)/log w_m), multiples
    of 8, then of the group width; SE after each block's 3x3 conv, on the block's width (b = 1).

    ``half_up``: torchvision rounds a width halfway between two multiples of the group width up (392 -> 400
    with groups of 16), pycls and timm to even (392 -> 384, the paper's RegNetX-400MF table)."""
    widths = []
    for j in range(depth):
        s = round(math.log((w_0 + w_a * j) / w_0) / math.log(w_m))
        width = round(w_0 * w_m**s / 8) * 8
        g = min(group, width)
        widths.append((width + g // 2) // g * g if half_up else round(width / g) * g)
    return widths


def built(builder: Callable[[], nn.Module]) -> nn.Module:
    """A model on meta (RegNet's builder reads tensor values, so it is built on the CPU and moved)."""
    return builder().to("meta")


def timm_model(name: str) -> nn.Module:
    timm = pytest.importorskip("timm")
    return timm.create_model(name, pretrained=False).to("meta")


FAMILIES: dict[str, tuple[Callable[[], nn.Module], Callable[[], list[int]]]] = {
    "mobilenet_v2": (lambda: built(tv.mobilenet_v2), mobilenet_v2_channels),
    "shufflenet_v2_x1_0": (lambda: built(tv.shufflenet_v2_x1_0), shufflenet_v2_channels),
    "densenet121": (lambda: built(tv.densenet121), densenet121_channels),
    "convnext_tiny": (lambda: built(tv.convnext_tiny), convnext_tiny_channels),
    "regnet_x_400mf": (
        lambda: built(tv.regnet_x_400mf),
        lambda: regnet_x_channels(depth=22, w_0=24, w_a=24.48, w_m=2.54, group=16, half_up=True),
    ),
    "timm:regnetx_002": (
        lambda: timm_model("regnetx_002"),
        lambda: regnet_x_channels(depth=13, w_0=24, w_a=36.44, w_m=2.49, group=8),
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_add_se_counts_follow_the_closed_form(family: str) -> None:
    make, channels = FAMILIES[family]
    model = make()
    r = 8 if family == "densenet121" else 16
    with_se = add_se(model, config=SEConfig(r=r))
    expected = channels()
    assert [m.channels for m in with_se.modules() if isinstance(m, SEBlock)] == expected
    counts = analyze(with_se, SHAPE).total
    assert counts.params_se == sum(se_params(c, r) for c in expected)
    assert counts.macs_se == sum(se_macs(c, r) for c in expected)
    plain = analyze(model, SHAPE).total
    assert counts.params - plain.params == counts.params_se  # nothing else changed
    assert counts.macs - plain.macs == counts.macs_se


def test_add_se_follows_mobilenet_v3_placement() -> None:
    """SE sits right after the depthwise conv-norm-activation, before the projection, as in MobileNetV3."""
    block = add_se(built(tv.mobilenet_v2)).features[2].conv
    dw, se = block[1]
    assert dw[0].groups == dw[0].in_channels == 96 and isinstance(se, SEBlock)
    assert isinstance(block[2], nn.Conv2d) and block[2].kernel_size == (1, 1)


def test_add_se_runs_on_cpu_and_remove_se_undoes_it() -> None:
    model = tv.shufflenet_v2_x0_5().eval()
    with_se = add_se(model)
    x = torch.randn(1, 3, 64, 64)
    assert with_se(x).shape == model(x).shape
    assert sum(p.numel() for p in remove_se(with_se).parameters()) == sum(
        p.numel() for p in model.parameters()
    )


def test_named_points_patterns() -> None:
    model = built(tv.mobilenet_v2)
    assert named_points(model, "features.*.conv.1")[:2] == ["features.1.conv.1", "features.2.conv.1"]
    assert named_points(model, "**.conv.2") == named_points(model, "features.*.conv.2")
    assert named_points(model, ["features.18", "features.0"]) == ["features.0", "features.18"]  # model order
    with pytest.raises(UserInputError, match=r"at='features\.\*\.conv\.9' matches no module"):
        named_points(model, "features.*.conv.9")


def test_at_puts_se_after_the_named_modules_on_their_channels() -> None:
    model = built(tv.densenet121)
    with_se = add_se(model, at="features.denseblock*.denselayer*.conv2", config=SEConfig(r=4))
    blocks = [m for m in with_se.modules() if isinstance(m, SEBlock)]
    assert len(blocks) == 6 + 12 + 24 + 16 and {b.channels for b in blocks} == {32}  # the growth rate
    assert analyze(with_se, SHAPE).total.params_se == 58 * se_params(32, 4)


def test_at_fills_an_identity_slot() -> None:
    model = timm_model("regnetx_002")
    with_se = add_se(model, at="s1.b1.se")
    assert isinstance(with_se.s1.b1.se, SEBlock) and with_se.s1.b1.se.channels == 24


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (
            lambda: built(tv.mobilenet_v2),
            {"at": "classifier.1"},
            r"SE needs an NCHW output to squeeze; module classifier\.1 gives shape 1x1000",
        ),
        (lambda: built(tv.mobilenet_v2), {"placement": "pre"}, r"placement=pre is defined for residual"),
        (lambda: built(tv.mobilenet_v2), {"at": ""}, r"at takes module names or patterns"),
        (
            lambda: timm_model("convnext_atto"),
            {},
            r"no integration point in ConvNeXt: .*name the points with at=",
        ),
    ],
)
def test_refusals_are_one_line(make, kwargs, message) -> None:
    with pytest.raises(UserInputError, match=message) as caught:
        add_se(make(), **kwargs)
    assert "\n" not in str(caught.value)
