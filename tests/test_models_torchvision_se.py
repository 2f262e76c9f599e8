"""torchvision's SE-bearing networks in the catalog: golden counts, the SE-free twin against torchvision."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torchvision import models as tv
from torchvision.ops import SqueezeExcitation

from senet_profile.analysis.static import StaticProfile, analyze
from senet_profile.api import compare
from senet_profile.catalog.registry import get_entry, get_model, list_models, parse_model_spec
from senet_profile.errors import UserInputError

SHAPE = (1, 3, 224, 224)


# name -> (params, params_se, macs, macs_se) at 1x3x224x224, for se=on and se=off
GOLDEN: dict[str, dict[bool, tuple[int, int, int, int]]] = {
    "mobilenet_v3_large": {
        True: (5_483_032, 1_512_280, 216_589_760, 1_507_200),
        False: (3_970_752, 0, 215_082_560, 0),
    },
    "mobilenet_v3_small": {
        True: (2_542_856, 461_640, 56_510_400, 458_752),
        False: (2_081_216, 0, 56_051_648, 0),
    },
    "efficientnet_b0": {
        True: (5_288_548, 636_540, 385_814_752, 627_200),
        False: (4_652_008, 0, 385_187_552, 0),
    },
    "efficientnet_b1": {
        True: (7_794_184, 1_122_640, 569_651_680, 1_108_480),
        False: (6_671_544, 0, 568_543_200, 0),
    },
    "regnet_y_400mf": {
        True: (4_344_144, 668_024, 401_842_848, 662_816),
        False: (3_676_120, 0, 401_180_032, 0),
    },
    "regnet_y_800mf": {
        True: (6_432_512, 846_168, 833_856_256, 840_576),
        False: (5_586_344, 0, 833_015_680, 0),
    },
}
NAMES = sorted(GOLDEN)
SPECS = [f"{name}{'' if se else ':se=off'}" for name in NAMES for se in (True, False)]


@pytest.fixture(scope="module")
def profiles() -> dict[str, StaticProfile]:
    return {spec: analyze(get_model(spec), SHAPE, name=spec) for spec in SPECS}


@pytest.fixture(scope="module")
def torchvision_models() -> dict[str, nn.Module]:
    """torchvision's own models, built directly on the CPU (RegNet's builder cannot run on meta)."""
    return {name: getattr(tv, name)(weights=None) for name in NAMES}


def _counts(profile: StaticProfile) -> tuple[int, int, int, int]:
    total = profile.total
    return (total.params, total.params_se, total.macs, total.macs_se)


def test_names_are_registered_with_their_source():
    assert set(NAMES) <= set(list_models())
    for name in NAMES:
        entry = get_entry(name)
        assert entry.family == "torchvision"
        assert [knob.name for knob in entry.knobs] == ["se"]
        assert "torchvision.models." in entry.description
        assert re.search(r"\(.+, [A-Z]+ 20\d\d\)", entry.description), entry.description


@pytest.mark.parametrize("spec", SPECS)
def test_golden_counts(profiles, spec):
    name, _, knobs = spec.partition(":")
    assert _counts(profiles[spec]) == GOLDEN[name][knobs != "se=off"]


@pytest.mark.parametrize("name", NAMES)
def test_se_on_is_torchvisions_model_and_off_drops_exactly_its_se(profiles, torchvision_models, name):
    own = torchvision_models[name]
    se_modules = [m for m in own.modules() if isinstance(m, SqueezeExcitation)]
    se_params = sum(p.numel() for m in se_modules for p in m.parameters())
    on, off = profiles[name], profiles[f"{name}:se=off"]
    assert on.total.params == sum(p.numel() for p in own.parameters())
    assert on.total.params - off.total.params == se_params == on.total.params_se
    assert on.total.macs - off.total.macs == on.total.macs_se
    assert on.se_blocks == len(se_modules) > 0
    assert off.total.params_se == off.total.macs_se == off.se_blocks == 0


@pytest.mark.parametrize("name", NAMES)
def test_twin_swaps_each_se_module_for_identity(torchvision_models, name):
    twin = get_model(f"{name}:se=off")
    own = torchvision_models[name]

    def count(model: nn.Module, kind: type[nn.Module]) -> int:
        return sum(isinstance(m, kind) for m in model.modules())

    assert count(twin, SqueezeExcitation) == 0
    assert count(twin, nn.Identity) - count(own, nn.Identity) == count(own, SqueezeExcitation)


@pytest.mark.parametrize("spec", SPECS)
def test_builds_on_meta_and_runs_on_cpu(spec):
    meta = get_model(spec)
    assert all(p.is_meta for p in meta.parameters())
    model = get_model(spec, device="cpu")
    assert not any(p.is_meta for p in model.parameters())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_spec_round_trip(name):
    for text, canonical in [
        (name, name),
        (f"{name}:se=on", name),
        (f"{name}:se=no", f"{name}:se=off"),
        (f"{name}:se=off", f"{name}:se=off"),
    ]:
        spec = parse_model_spec(text)
        assert str(spec) == canonical
        assert parse_model_spec(str(spec)) == spec
    with pytest.raises(UserInputError, match="se must be on or off"):
        parse_model_spec(f"{name}:se=maybe")
    with pytest.raises(UserInputError, match="it accepts: se"):
        parse_model_spec(f"{name}:r=8")


def test_compare_shows_what_se_costs():
    frame = compare("regnet_y_400mf:se=off", "regnet_y_400mf").set_index("metric")
    assert frame.loc["params", "delta"] == frame.loc["params_se", "candidate"] == 668_024
    assert frame.loc["macs", "delta"] == 662_816
