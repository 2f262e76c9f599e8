"""The catalog's ResNets: golden counts at 1x3x224x224 for every entry in both layouts, verified against
torchvision's own models, the paper's Eq. 5 and a hand count of what the paper layout saves.

Placement and structure tests live in test_models_resnet_placement.py (kept apart to keep each file fast)."""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from senet_profile.analysis.static import StaticProfile, analyze
from senet_profile.analysis.trace import trace_ops
from senet_profile.catalog.registry import get_entry, get_model, list_models

SHAPE = (1, 3, 224, 224)

# name -> (bottleneck?, blocks per stage conv2_x..conv5_x, groups, width per group), from He et al. 2016
# and Xie et al. 2017; written here independently of the catalog.
ARCH: dict[str, tuple[bool, tuple[int, int, int, int], int, int]] = {
    "resnet18": (False, (2, 2, 2, 2), 1, 64),
    "resnet34": (False, (3, 4, 6, 3), 1, 64),
    "resnet50": (True, (3, 4, 6, 3), 1, 64),
    "resnet101": (True, (3, 4, 23, 3), 1, 64),
    "resnet152": (True, (3, 8, 36, 3), 1, 64),
    "resnext50_32x4d": (True, (3, 4, 6, 3), 32, 4),
    "resnext101_32x4d": (True, (3, 4, 23, 3), 32, 4),
}
STAGES = (2, 3, 4, 5)

# (name, layout) -> (params, params_se, macs, macs_se) at 1x3x224x224, produced once by the tool and
# verified below against torchvision's models, the paper's Eq. 5 and a hand count of the layout change.
GOLDEN: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("resnet18", "torchvision"): (11_689_512, 0, 1_814_073_344, 0),
    ("resnet18", "paper"): (11_689_512, 0, 1_814_073_344, 0),
    ("resnet34", "torchvision"): (21_797_672, 0, 3_663_761_408, 0),
    ("resnet34", "paper"): (21_797_672, 0, 3_663_761_408, 0),
    ("resnet50", "torchvision"): (25_557_032, 0, 4_089_184_256, 0),
    ("resnet50", "paper"): (25_557_032, 0, 3_857_973_248, 0),
    ("resnet101", "torchvision"): (44_549_160, 0, 7_801_405_440, 0),
    ("resnet101", "paper"): (44_549_160, 0, 7_570_194_432, 0),
    ("resnet152", "torchvision"): (60_192_808, 0, 11_513_626_624, 0),
    ("resnet152", "paper"): (60_192_808, 0, 11_282_415_616, 0),
    ("resnext50_32x4d", "torchvision"): (25_028_904, 0, 4_230_479_872, 0),
    ("resnext50_32x4d", "paper"): (25_028_904, 0, 3_768_057_856, 0),
    ("resnext101_32x4d", "torchvision"): (44_177_704, 0, 7_969_996_800, 0),
    ("resnext101_32x4d", "paper"): (44_177_704, 0, 7_507_574_784, 0),
    ("se_resnet18", "torchvision"): (11_778_592, 89_080, 1_814_160_384, 87_040),
    ("se_resnet18", "paper"): (11_778_592, 89_080, 1_814_160_384, 87_040),
    ("se_resnet34", "torchvision"): (21_958_868, 161_196, 3_663_918_592, 157_184),
    ("se_resnet34", "paper"): (21_958_868, 161_196, 3_663_918_592, 157_184),
    ("se_resnet50", "torchvision"): (28_088_024, 2_530_992, 4_091_699_200, 2_514_944),
    ("se_resnet50", "paper"): (28_088_024, 2_530_992, 3_860_488_192, 2_514_944),
    ("se_resnet101", "torchvision"): (49_326_872, 4_777_712, 7_806_148_608, 4_743_168),
    ("se_resnet101", "paper"): (49_326_872, 4_777_712, 7_574_937_600, 4_743_168),
    ("se_resnet152", "torchvision"): (66_821_848, 6_629_040, 11_520_204_800, 6_578_176),
    ("se_resnet152", "paper"): (66_821_848, 6_629_040, 11_288_993_792, 6_578_176),
    ("se_resnext50_32x4d", "torchvision"): (27_559_896, 2_530_992, 4_232_994_816, 2_514_944),
    ("se_resnext50_32x4d", "paper"): (27_559_896, 2_530_992, 3_770_572_800, 2_514_944),
    ("se_resnext101_32x4d", "torchvision"): (48_955_416, 4_777_712, 7_974_739_968, 4_743_168),
    ("se_resnext101_32x4d", "paper"): (48_955_416, 4_777_712, 7_512_317_952, 4_743_168),
}
LAYOUTS = ("torchvision", "paper")


@functools.cache
def profile_of(spec: str) -> StaticProfile:
    """The tool's count of a catalog model at 1x3x224x224 (cached: each model is traced once per run)."""
    return analyze(get_model(spec), SHAPE)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def stage_channels(name: str, stage: int) -> int:
    """Output channels C_s of stage conv{s}_x."""
    bottleneck = ARCH[name][0]
    return (64 * 4 if bottleneck else 64) * 2 ** (stage - 2)


def eq5_fc_weights(name: str, r: int = 16, stages: tuple[int, ...] = STAGES) -> int:
    """Paper Eq. 5, (2/r) * sum_s N_s * C_s^2, as 2 * N_s * C_s * (C_s // r): the two FC weight matrices.
    Also the SE FC MACs at batch 1: the FCs act on 1x1 maps, one MAC per weight."""
    blocks = ARCH[name][1]
    return sum(blocks[s - 2] * 2 * stage_channels(name, s) * (stage_channels(name, s) // r) for s in stages)


def eq5_biases(name: str, r: int = 16, stages: tuple[int, ...] = STAGES) -> int:
    """The FC biases Eq. 5 leaves out: C_s // r + C_s per SE block."""
    blocks = ARCH[name][1]
    return sum(blocks[s - 2] * (stage_channels(name, s) // r + stage_channels(name, s)) for s in stages)


def torchvision_model(name: str) -> nn.Module:
    """torchvision's own model (random init), built on the meta device."""
    with torch.device("meta"):
        if name == "resnext101_32x4d":  # not a torchvision builder: the same ResNet class, spelled out
            return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4)
        return getattr(torchvision.models, name)(weights=None)


def layout_saving(name: str) -> int:
    """MACs the paper layout saves in the three downsampling bottlenecks (conv3_x..conv5_x's first block).

    torchvision runs the block's first 1x1 conv (inplanes -> width, stride 1) at the input resolution and
    strides the 3x3; the paper strides the 1x1 itself, so it runs on 4x fewer positions. The 3x3 conv
    produces the reduced map in both layouts and costs the same.
    """
    bottleneck, _, groups, width_per_group = ARCH[name]
    if not bottleneck:
        return 0
    saving = 0
    side_in = 56  # conv2_x's resolution at 224x224
    for stage in (3, 4, 5):
        inplanes = stage_channels(name, stage - 1)
        planes = 64 * 2 ** (stage - 2)
        width = planes * width_per_group // 64 * groups
        side_out = side_in // 2
        saving += (side_in**2 - side_out**2) * inplanes * width
        side_in = side_out
    return saving


# ----------------------------------------------------------------------------------------------- golden


@pytest.mark.parametrize(("name", "layout"), list(GOLDEN), ids=[f"{n}-{lay}" for n, lay in GOLDEN])
def test_golden_counts(name: str, layout: str) -> None:
    total = profile_of(f"{name}:layout={layout}").total
    assert (total.params, total.params_se, total.macs, total.macs_se) == GOLDEN[(name, layout)]


def test_golden_covers_the_whole_resnet_family() -> None:
    family = {name for name in list_models() if get_entry(name).family == "resnet"}
    assert {name for name, _ in GOLDEN} == family
    assert set(ARCH) == {name for name in family if not name.startswith("se_")}


@pytest.mark.parametrize("name", list(ARCH))
def test_vanilla_params_equal_torchvision(name: str) -> None:
    expected = n_params(torchvision_model(name))
    for layout in LAYOUTS:
        assert GOLDEN[(name, layout)][0] == expected


@pytest.mark.parametrize("name", list(ARCH))
def test_vanilla_macs_equal_torchvision_traced(name: str) -> None:
    assert GOLDEN[(name, "torchvision")][2] == analyze(torchvision_model(name), SHAPE).total.macs


@pytest.mark.parametrize("name", list(ARCH))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_se_params_follow_eq5(name: str, layout: str) -> None:
    params, params_se, _, _ = GOLDEN[(f"se_{name}", layout)]
    expected = eq5_fc_weights(name) + eq5_biases(name)
    assert params - GOLDEN[(name, layout)][0] == expected
    assert params_se == expected


@pytest.mark.parametrize("name", list(ARCH))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_se_macs_are_the_fc_macs(name: str, layout: str) -> None:
    _, _, macs, macs_se = GOLDEN[(f"se_{name}", layout)]
    assert macs - GOLDEN[(name, layout)][2] == eq5_fc_weights(name)
    assert macs_se == eq5_fc_weights(name)


@pytest.mark.parametrize("name", list(ARCH))
def test_paper_layout_saves_the_downsampling_1x1_convs(name: str) -> None:
    for prefix in ("", "se_"):
        tv, paper = GOLDEN[(f"{prefix}{name}", "torchvision")], GOLDEN[(f"{prefix}{name}", "paper")]
        assert tv[0] == paper[0]  # same parameters
        assert tv[2] - paper[2] == layout_saving(name)
    assert (layout_saving(name) > 0) is ARCH[name][0]


def _conv_macs_by_module(spec: str) -> dict[str, int]:
    trace = trace_ops(get_model(spec), torch.empty(SHAPE, device="meta"))
    return {e.module: e.macs for e in trace.events if e.op == "convolution"}


def test_layouts_differ_only_in_the_first_1x1_conv_of_downsampling_blocks() -> None:
    tv = _conv_macs_by_module("resnext50_32x4d")
    paper = _conv_macs_by_module("resnext50_32x4d:layout=paper")
    assert tv.keys() == paper.keys()
    differing = {m for m in tv if tv[m] != paper[m]}
    assert differing == {"layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1"}
    for module in differing:
        assert tv[module] == 4 * paper[module]
    # The grouped 3x3 of a downsampling block costs the same in both layouts.
    assert tv["layer2.0.conv2"] == paper["layer2.0.conv2"] == 28 * 28 * 256 * (256 // 32) * 9


VARIANTS = [
    ("r=8", {"r": 8}, True),
    ("stages=4", {"stages": (4,)}, True),
    ("bias=off", {}, False),
    ("r=4,stages=2+5,bias=off", {"r": 4, "stages": (2, 5)}, False),
]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize(("knobs", "eq5_args", "bias"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_se_variants_follow_eq5(name: str, knobs: str, eq5_args: dict, bias: bool) -> None:
    result = analyze(get_model(f"se_{name}:{knobs}"), SHAPE).total
    base = GOLDEN[(name, "torchvision")]
    fc = eq5_fc_weights(name, **eq5_args)
    expected_params = fc + (eq5_biases(name, **eq5_args) if bias else 0)
    assert result.params - base[0] == expected_params
    assert result.params_se == expected_params
    assert result.macs - base[2] == fc
    assert result.macs_se == fc
