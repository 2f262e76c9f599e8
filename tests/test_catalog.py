"""Every registered name: builds, runs a forward pass on CPU at a small input, round-trips the grammar."""

from __future__ import annotations

import pytest
import torch

from senet_profile.catalog.registry import get_entry, get_model, list_models, parse_model_spec

# The smallest square input each family accepts (Inception-ResNet-v2's stem needs 75 pixels).
SMALL_INPUT = {"inception_resnet_v2": 75, "se_inception_resnet_v2": 75}
NAMES = list_models()


def _non_default_knob(name: str) -> str | None:
    """One knob of ``name`` set to a value other than its default, in the grammar."""
    for knob in get_entry(name).knobs:
        for text in ("8", "off", "paper", "4", "tanh", "max"):
            try:
                value = knob.parse(text)
            except ValueError:
                continue
            if value != knob.default:
                return f"{knob.name}={text}"
    return None


@pytest.mark.parametrize("name", NAMES)
def test_every_model_builds_runs_and_round_trips(name: str) -> None:
    spec = parse_model_spec(name)
    assert str(spec) == name and parse_model_spec(str(spec)) == spec
    knob = _non_default_knob(name)
    if knob is not None:
        varied = parse_model_spec(f"{name}:{knob}")
        assert str(varied) == f"{name}:{knob}" and parse_model_spec(str(varied)) == varied
    size = SMALL_INPUT.get(name, 64)
    torch.manual_seed(0)
    model = get_model(spec, device="cpu")
    with torch.inference_mode():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


def test_catalog_is_complete() -> None:
    expected = {"resnet50", "se_resnet50", "vgg16_bn", "se_vgg16_bn", "bn_inception", "se_bn_inception",
                "inception_resnet_v2", "se_inception_resnet_v2", "mobilenet_v1", "se_mobilenet_v1",
                "shufflenet_v1_g3", "se_shufflenet_v1_g3", "senet154", "senet154_no_se", "mobilenet_v3_large",
                "efficientnet_b0", "regnet_y_400mf", "resnext101_32x4d", "se_resnext101_32x4d"}  # fmt: skip
    assert expected <= set(NAMES)
