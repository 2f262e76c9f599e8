"""The SE block on hand-sized channels: parameters, module choices, forward maths, validation, detection."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from senet_profile.catalog.se import (
    GATES,
    SQUEEZES,
    AvgSqueeze,
    MaxSqueeze,
    SEBlock,
    SEConfig,
    is_se_module,
    se_module_names,
)
from senet_profile.errors import UserInputError


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("channels", "r", "bias", "expected"),
    [
        # 2*C*(C//r) weights, plus C//r + C biases when bias is on.
        (16, 4, True, 2 * 16 * 4 + 4 + 16),
        (16, 4, False, 2 * 16 * 4),
        (64, 16, True, 2 * 64 * 4 + 4 + 64),
        (10, 3, True, 2 * 10 * 3 + 3 + 10),  # C // r rounds down: 10 // 3 = 3
        (8, 8, False, 2 * 8 * 1),
    ],
)
def test_parameter_count_by_hand(channels: int, r: int, bias: bool, expected: int) -> None:
    block = SEBlock(channels, config=SEConfig(r=r, bias=bias))
    assert block.hidden == channels // r
    assert n_params(block) == expected
    assert block.fc1.weight.shape == (channels // r, channels, 1, 1)
    assert block.fc2.weight.shape == (channels, channels // r, 1, 1)


def test_explicit_width_overrides_r() -> None:
    # r=32 alone would leave no unit on 16 channels; an explicit width wins over C // r.
    block = SEBlock(16, config=SEConfig(r=32, width=5))
    assert block.hidden == 5
    assert n_params(block) == 2 * 16 * 5 + 5 + 16


def test_dicts_name_exactly_the_documented_choices() -> None:
    assert set(SQUEEZES) == {"avg", "max", "none"}
    assert set(GATES) == {"sigmoid", "tanh", "relu", "hardsigmoid"}


@pytest.mark.parametrize(
    ("squeeze", "cls"), [("avg", AvgSqueeze), ("max", MaxSqueeze), ("none", nn.Identity)]
)
def test_squeeze_name_builds_its_module(squeeze: str, cls: type[nn.Module]) -> None:
    block = SEBlock(8, config=SEConfig(r=2, squeeze=squeeze))
    assert type(block.squeeze) is cls
    assert type(block.squeeze) is type(SQUEEZES[squeeze]())


@pytest.mark.parametrize(
    ("gate", "cls"),
    [("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh), ("relu", nn.ReLU), ("hardsigmoid", nn.Hardsigmoid)],
)
def test_gate_name_builds_its_module(gate: str, cls: type[nn.Module]) -> None:
    block = SEBlock(8, config=SEConfig(r=2, gate=gate))
    assert type(block.gate) is cls
    assert type(block.gate) is type(GATES[gate]())


def _squeeze_by_hand(x: torch.Tensor, squeeze: str) -> torch.Tensor:
    n, c = x.shape[:2]
    if squeeze == "avg":
        return (x.reshape(n, c, -1).sum(-1) / x[0, 0].numel()).reshape(n, c, 1, 1)
    if squeeze == "max":
        return x.reshape(n, c, -1).max(-1).values.reshape(n, c, 1, 1)
    return x


def _gate_by_hand(z: torch.Tensor, gate: str) -> torch.Tensor:
    return {
        "sigmoid": lambda t: 1.0 / (1.0 + torch.exp(-t)),
        "tanh": lambda t: (torch.exp(t) - torch.exp(-t)) / (torch.exp(t) + torch.exp(-t)),
        "relu": lambda t: torch.where(t > 0, t, torch.zeros_like(t)),
        "hardsigmoid": lambda t: torch.clamp(t / 6.0 + 0.5, 0.0, 1.0),
    }[gate](z)


def _fc_by_hand(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 conv written as a channel contraction at every position."""
    out = torch.einsum("oc,nchw->nohw", conv.weight[:, :, 0, 0], x)
    return out if conv.bias is None else out + conv.bias.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("squeeze", sorted(SQUEEZES))
@pytest.mark.parametrize("gate", sorted(GATES))
@pytest.mark.parametrize("bias", [True, False])
def test_forward_equals_hand_computation(squeeze: str, gate: str, bias: bool) -> None:
    torch.manual_seed(0)
    block = SEBlock(12, config=SEConfig(r=4, squeeze=squeeze, gate=gate, bias=bias))
    x = torch.randn(2, 12, 5, 3)
    with torch.no_grad():
        hidden = _fc_by_hand(_squeeze_by_hand(x, squeeze), block.fc1).clamp(min=0)
        expected = x * _gate_by_hand(_fc_by_hand(hidden, block.fc2), gate)
        got = block(x)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_forward_rescales_each_channel_by_one_factor() -> None:
    torch.manual_seed(1)
    block = SEBlock(6, config=SEConfig(r=2))
    x = torch.rand(1, 6, 4, 4) + 0.1
    with torch.no_grad():
        ratio = block(x) / x
    # One gate value per (sample, channel): constant across positions, strictly inside (0, 1).
    per_channel = ratio[:, :, :1, :1].expand_as(ratio)
    torch.testing.assert_close(ratio, per_channel)
    assert bool(((ratio > 0) & (ratio < 1)).all())


@pytest.mark.parametrize("r", [0, -1, -16])
def test_non_positive_ratio_is_refused(r: int) -> None:
    with pytest.raises(UserInputError, match=rf"r must be a positive integer, got r={r}"):
        SEConfig(r=r)


@pytest.mark.parametrize(("channels", "r"), [(8, 9), (8, 16), (1, 2)])
def test_ratio_larger_than_channels_is_refused(channels: int, r: int) -> None:
    with pytest.raises(UserInputError, match=rf"r={r} is larger than the {channels} channels of stage X"):
        SEBlock(channels, config=SEConfig(r=r), where="stage X")


def test_ratio_equal_to_channels_is_allowed() -> None:
    assert SEBlock(8, config=SEConfig(r=8)).hidden == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "SE width must be a positive integer, got width=0"),
        ({"squeeze": "median"}, "unknown squeeze 'median'; choose one of avg, max, none"),
        ({"gate": "softmax"}, "unknown gate 'softmax'; choose one of sigmoid, tanh, relu, hardsigmoid"),
    ],
)
def test_bad_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        SEConfig(**kwargs)


def _named(name: str) -> nn.Module:
    """An empty module whose class is called ``name`` (as other libraries name their SE blocks)."""
    return type(name, (nn.Module,), {})()


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (SEBlock(16, config=SEConfig(r=4)), True),
        (torchvision.ops.SqueezeExcitation(16, 4), True),
        (_named("SqueezeExcite"), True),  # timm
        (_named("SEModule"), True),  # timm, Cadene
        (_named("EffectiveSEModule"), True),  # timm
        (nn.Conv2d(16, 16, 1), False),
        (nn.Sequential(), False),
        (nn.Sigmoid(), False),
        (_named("Selector"), False),
        (_named("BaseModel"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v),
)
def test_is_se_module(module: nn.Module, expected: bool) -> None:
    assert is_se_module(module) is expected


class SEModule(nn.Module):
    """A user's SE wrapper (recognised by name) that holds one of our SE blocks inside."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = SEBlock(8, config=SEConfig(r=2))


def test_se_module_names_returns_outermost_only() -> None:
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(8, 8, 1))
    model.add_module("se", SEBlock(8, config=SEConfig(r=2)))
    model.add_module("se2", SEBlock(8, config=SEConfig(r=4)))  # "se2" must not count as inside "se"
    model.add_module("wrapped", SEModule())
    model.add_module("tv", nn.Sequential(torchvision.ops.SqueezeExcitation(8, 2)))
    assert se_module_names(model) == ["se", "se2", "wrapped", "tv.0"]


def test_se_module_names_empty_without_se() -> None:
    assert se_module_names(nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())) == []


def test_axpy_adds_the_residual_in_one_op() -> None:
    torch.manual_seed(0)
    block = SEBlock(8, config=SEConfig(r=4, scale="axpy"), before_residual=True)
    x, residual = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    weights = block.gate(block.fc2(block.relu(block.fc1(block.squeeze(x)))))
    torch.testing.assert_close(block(x, residual), residual + x * weights)
    torch.testing.assert_close(block(x), x * weights)


def test_axpy_without_a_residual_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"scale=axpy .* SE at conv 3 has none"):
        SEBlock(8, config=SEConfig(scale="axpy"), where="conv 3")
    with pytest.raises(UserInputError, match="unknown scale"):
        SEConfig(scale="fma")
