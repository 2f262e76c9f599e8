"""The catalog: listing with patterns, lookup with close matches, registration, building."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet_profile.catalog import registry
from senet_profile.catalog.registry import get_entry, get_model, list_models, parse_model_spec, register
from senet_profile.catalog.spec import positive_int_knob
from senet_profile.errors import UserInputError

VANILLA = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x4d",
]


def test_list_models_is_sorted_and_holds_the_resnet_family() -> None:
    names = list_models()
    assert names == sorted(names)
    resnets = {name for name in names if get_entry(name).family == "resnet"}
    assert resnets == set(VANILLA) | {f"se_{n}" for n in VANILLA}


def test_se_pattern_lists_only_se_models_and_every_vanilla_resnet_has_a_twin() -> None:
    se = list_models("se_*")
    assert len(se) >= len(VANILLA)
    assert all(name.startswith("se_") for name in se)
    vanilla = [n for n in list_models() if not n.startswith("se_") and get_entry(n).family == "resnet"]
    assert sorted(vanilla) == sorted(VANILLA)
    assert all(f"se_{name}" in se for name in vanilla)
    # ...and every se_ model has its vanilla twin in the catalog.
    assert all(name.removeprefix("se_") in list_models() for name in se)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("resnet5?", ["resnet50"]),
        ("*resnext*", ["resnext101_32x4d", "resnext50_32x4d", "se_resnext101_32x4d", "se_resnext50_32x4d"]),
        ("se_resnet1*", ["se_resnet101", "se_resnet152", "se_resnet18"]),
        ("nothing*", []),
        ("RESNET50", []),  # patterns are case-sensitive
    ],
)
def test_list_models_pattern(pattern: str, expected: list[str]) -> None:
    assert list_models(pattern) == expected


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("se_resnt50", "se_resnet50"),
        ("seresnet50", "se_resnet50"),
        ("resnet_18", "resnet18"),
        ("resnet5", "resnet50"),
    ],
)
def test_unknown_model_suggests_close_matches(name: str, suggestion: str) -> None:
    with pytest.raises(UserInputError, match=rf"unknown model '{name}'; did you mean .*{suggestion}") as info:
        get_entry(name)
    # The closest match comes first.
    assert str(info.value).split("did you mean ")[1].startswith(suggestion)


def test_unknown_model_without_close_match_points_to_list() -> None:
    message = r"unknown model 'xyzzy'; `senet-profile list` shows the catalog"
    with pytest.raises(UserInputError, match=message):
        get_entry("xyzzy")


@pytest.mark.parametrize("call", [parse_model_spec, get_model])
def test_unknown_model_through_every_entry_point(call) -> None:
    with pytest.raises(UserInputError, match="did you mean se_resnet50"):
        call("se_resnt50:r=8")


def test_registering_an_existing_name_raises_and_keeps_the_entry() -> None:
    before = get_entry("resnet50")

    def impostor(*, layout: str) -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="model 'resnet50' is already registered"):
        register("resnet50", family="other")(impostor)
    after = get_entry("resnet50")
    assert after is before
    assert after.builder is not impostor
    assert after.family == "resnet"


def test_register_a_new_model_with_a_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    registry._load_catalog()
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))  # undone after the test

    @register("tiny_test_net", family="test", knobs=(positive_int_knob("c", 4, "channels"),))
    def tiny(*, c: int) -> nn.Module:
        """A one-layer test network."""
        return nn.Conv2d(3, c, 1)

    assert "tiny_test_net" in list_models("tiny_*")
    assert get_entry("tiny_test_net").description == "A one-layer test network."
    assert str(parse_model_spec("tiny_test_net:c=4")) == "tiny_test_net"
    model = get_model("tiny_test_net:c=6")
    assert isinstance(model, nn.Conv2d)
    assert model.out_channels == 6
    with pytest.raises(UserInputError, match="unknown knob 'r' for tiny_test_net; it accepts: c"):
        get_model("tiny_test_net:r=2")


def _all_tensors(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def test_get_model_builds_on_meta_by_default_in_eval_mode() -> None:
    model = get_model("se_resnet18")
    tensors = _all_tensors(model)
    assert tensors
    assert all(t.is_meta for t in tensors)
    assert not any(m.training for m in model.modules())


def test_get_model_builds_on_cpu_when_asked() -> None:
    model = get_model("resnet18", device="cpu")
    assert all(t.device.type == "cpu" for t in _all_tensors(model))
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    assert not model.training


def test_get_model_applies_knobs_and_accepts_a_parsed_spec() -> None:
    spec = parse_model_spec("se_resnet18:r=8,stages=5")
    model = get_model(spec)
    assert model.layer4[0].se.hidden == 512 // 8
    assert model.layer1[0].se is None
    assert get_model("se_resnet18:width=7").layer1[0].se.hidden == 7
