"""The VGG, Inception, MobileNet/ShuffleNet and SENet-154 families: exact counts, closed forms, builds.

Golden counts are at each paper's input size (299x299 for Inception-ResNet-v2, 224x224 otherwise). The SE
channel lists below are written from the papers' tables, not read from the built models, so that the SE
parameter and MAC deltas are checked against an independent closed form.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import vgg16_bn as torchvision_vgg16_bn

from senet_profile.analysis.static import StaticProfile, analyze
from senet_profile.catalog.registry import get_entry, get_model, parse_model_spec
from senet_profile.errors import UserInputError

# vanilla -> SE twin
TWINS = {
    "vgg16_bn": "se_vgg16_bn",
    "bn_inception": "se_bn_inception",
    "inception_resnet_v2": "se_inception_resnet_v2",
    "mobilenet_v1": "se_mobilenet_v1",
    "shufflenet_v1_g3": "se_shufflenet_v1_g3",
    "senet154_no_se": "senet154",
}
SE_NAMES = tuple(TWINS.values())
ALL_NAMES = (*TWINS, *SE_NAMES)
FAMILIES = {"vgg", "inception", "mobilenet", "shufflenet", "senet"}
PAPER_SIZE = {"inception_resnet_v2": 299, "se_inception_resnet_v2": 299}
SMALL_SIZE = {"inception_resnet_v2": 75, "se_inception_resnet_v2": 75}

# (params, MACs) at the paper's input size.
GOLDEN = {
    "vgg16_bn": (138_365_992, 15_470_264_320),
    "se_vgg16_bn": (138_596_784, 15_470_490_624),
    "bn_inception": (11_295_240, 2_032_600_064),
    "se_bn_inception": (11_941_638, 2_033_239_424),
    "inception_resnet_v2": (32_433_928, 9_257_953_632),
    "se_inception_resnet_v2": (37_083_598, 9_262_577_632),
    "mobilenet_v1": (4_231_976, 568_740_352),
    "se_mobilenet_v1": (4_718_044, 569_220_096),
    "shufflenet_v1_g3": (1_865_728, 137_460_672),
    "se_shufflenet_v1_g3": (2_484_533, 138_071_088),
    "senet154_no_se": (108_459_944, 20_681_785_344),
    "senet154": (115_088_984, 20_688_363_520),
}

# Channels of every SE block, from the papers' tables.
SE_CHANNELS = {
    # configuration D: 2 x 64, 2 x 128, 3 x 256, 6 x 512
    "se_vgg16_bn": [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6,
    # Figure 5, sum of each module's branch widths (3c and 4e pass their input through the max pool)
    "se_bn_inception": [
        64 + 64 + 96 + 32,
        64 + 96 + 96 + 64,
        160 + 96 + 320,
        224 + 96 + 128 + 128,
        192 + 128 + 128 + 128,
        160 + 160 + 160 + 128,
        96 + 192 + 192 + 128,
        192 + 256 + 608,
        352 + 320 + 224 + 128,
        352 + 320 + 224 + 128,
    ],
    # stem output 384 (Figure 3); after Reduction-A 384 + 384 + 384; after Reduction-B 1152 + 384 + 288 + 320
    "se_inception_resnet_v2": [384] * 5 + [1152] * 10 + [1152 + 384 + 288 + 320] * 5,
    # Table 1: pointwise output channels of the 13 separable layers
    "se_mobilenet_v1": [64, 128, 128, 256, 256, *[512] * 6, 1024, 1024],
    # Table 1, g = 3: a first unit's branch gives the stage output minus its input (concatenation)
    "se_shufflenet_v1_g3": [240 - 24, *[240] * 3, 480 - 240, *[480] * 7, 960 - 480, *[960] * 3],
    # ResNeXt-152 stages of 3, 8, 36 and 3 blocks, 256 to 2048 channels
    "senet154": [256] * 3 + [512] * 8 + [1024] * 36 + [2048] * 3,
}

# Howard et al. 2017, Table 1: (depthwise stride, pointwise output channels) of each separable layer.
MOBILENET_TABLE_1 = [
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    *[(1, 512)] * 5,
    (2, 1024),
    (1, 1024),  # printed "s2", but the table's input size stays 7x7
]


def _paper_shape(name: str) -> tuple[int, int, int, int]:
    size = PAPER_SIZE.get(name, 224)
    return (1, 3, size, size)


@pytest.fixture(scope="module")
def profiles() -> dict[str, StaticProfile]:
    return {name: analyze(get_model(name), _paper_shape(name), name=name) for name in ALL_NAMES}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _se_params(channels: list[int], r: int, bias: bool) -> int:
    return sum(2 * c * (c // r) + bias * (c // r + c) for c in channels)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_golden_counts_at_paper_size(profiles, name):
    profile = profiles[name]
    assert (profile.total.params, profile.total.macs) == GOLDEN[name]
    assert profile.unknown_ops == {}
    assert profile.uncalled_modules == ()


def test_vgg16_bn_is_torchvision_vgg16_bn(profiles):
    with torch.device("meta"):
        reference = torchvision_vgg16_bn()
    assert _params(reference) == profiles["vgg16_bn"].total.params == 138_365_992
    assert analyze(reference, (1, 3, 224, 224)).total.macs == profiles["vgg16_bn"].total.macs


def test_mobilenet_v1_macs_and_params_from_table_1(profiles):
    size, cin = 112, 32
    macs = size * size * 3 * 3 * 3 * cin  # full 3x3 conv, stride 2
    params = 3 * 3 * 3 * cin + 2 * cin  # conv weights, BN scale and shift
    for stride, cout in MOBILENET_TABLE_1:
        size //= stride
        macs += size * size * (3 * 3 * cin + cin * cout)  # depthwise + pointwise
        params += 3 * 3 * cin + 2 * cin + cin * cout + 2 * cout
        cin = cout
    macs += cin * 1000
    params += cin * 1000 + 1000
    assert profiles["mobilenet_v1"].total.macs == macs
    assert profiles["mobilenet_v1"].total.params == params
    assert round(macs / 1e6) == 569 and round(params / 1e6, 1) == 4.2  # the paper's printed figures


@pytest.mark.parametrize(("vanilla", "se_name"), TWINS.items())
def test_se_deltas_match_closed_form(profiles, vanilla, se_name):
    channels = SE_CHANNELS[se_name]
    base, with_se = profiles[vanilla].total, profiles[se_name].total
    assert profiles[se_name].se_blocks == len(channels)
    assert with_se.params - base.params == with_se.params_se == _se_params(channels, 16, True)
    assert with_se.macs - base.macs == with_se.macs_se == sum(2 * c * (c // 16) for c in channels)


@pytest.mark.parametrize("se_name", SE_NAMES)
@pytest.mark.parametrize(("knobs", "r", "bias"), [(":r=8,bias=off", 8, False), (":r=4", 4, True)])
def test_se_knobs_change_params_by_closed_form(se_name, knobs, r, bias):
    vanilla = next(v for v, s in TWINS.items() if s == se_name)
    delta = _params(get_model(se_name + knobs)) - GOLDEN[vanilla][0]
    assert delta == _se_params(SE_CHANNELS[se_name], r, bias)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_builds_on_meta_and_runs_on_cpu(name):
    model = get_model(name)
    assert all(p.is_meta for p in model.parameters())
    size = SMALL_SIZE.get(name, 64)
    cpu_model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        out = cpu_model(torch.zeros(1, 3, size, size))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_registered_with_family_and_description(name):
    entry = get_entry(name)
    assert entry.family in FAMILIES
    assert entry.description


@pytest.mark.parametrize("name", SE_NAMES)
def test_se_twins_round_trip_through_the_grammar(name):
    assert str(parse_model_spec(name + ":r=8")) == name + ":r=8"
    assert str(parse_model_spec(name + ":bias=off,r=8,gate=tanh")) == name + ":r=8,gate=tanh,bias=off"
    assert str(parse_model_spec(name + ":r=16,squeeze=avg")) == name
    assert parse_model_spec(str(parse_model_spec(name + ":width=4"))) == parse_model_spec(name + ":width=4")


@pytest.mark.parametrize("name", TWINS)
def test_vanilla_twins_take_no_knobs(name):
    assert str(parse_model_spec(name)) == name
    with pytest.raises(UserInputError, match="unknown knob 'r'"):
        parse_model_spec(name + ":r=8")


def test_placement_only_where_it_applies():
    assert str(parse_model_spec("senet154:placement=pre,r=8")) == "senet154:placement=pre,r=8"
    knobs = {name: {knob.name for knob in get_entry(name).knobs} for name in SE_NAMES}
    assert {name for name, names in knobs.items() if "placement" in names} == {"senet154"}
    assert all({"r", "width", "squeeze", "gate", "bias"} <= names for names in knobs.values())


def test_senet154_placements_build_and_count():
    profile = analyze(get_model("senet154:placement=pre"), (1, 3, 224, 224))
    # pre: SE on each block's input, 128 channels before the first block instead of 256
    channels = [128, *SE_CHANNELS["senet154"][:-1]]
    assert profile.total.params - GOLDEN["senet154_no_se"][0] == _se_params(channels, 16, True)


def test_too_large_r_names_the_layer():
    with pytest.raises(UserInputError, match="separable layer 1"):
        get_model("se_mobilenet_v1:r=128")
