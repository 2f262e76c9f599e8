"""Attention families: timm's ECA and CBAM counted under their family, a user's class, and the note."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import senet_profile
from senet_profile.catalog.attention import attention_modules, family_of, parse_attention_classes
from senet_profile.errors import UserInputError

timm = pytest.importorskip("timm")
SMALL_CNN = Path(__file__).with_name("small_cnn.py")
SIZE = (64, 64)


def scoped(frame, scope: str) -> dict[str, int]:
    rows = frame[frame["scope"] == scope]
    return dict(zip(rows["metric"], rows["value"], strict=True))


def family_params(model: nn.Module, cls: str) -> int:
    return sum(p.numel() for m in model.modules() if type(m).__name__ == cls for p in m.parameters())


def test_timm_eca_model_counts_eca_under_its_family() -> None:
    frame = senet_profile.profile("timm:ecaresnet26t", input_size=SIZE)
    model = timm.create_model("ecaresnet26t")
    eca = scoped(frame, "attention:eca")
    assert eca["params"] == family_params(model, "EcaModule") > 0
    assert eca["macs"] > 0  # ECA's 1-D conv over channels
    assert scoped(frame, "model")["params_se"] == 0  # ECA is not SE


def test_timm_cbam_model_counts_cbam_under_its_family() -> None:
    frame = senet_profile.profile(f"{SMALL_CNN}:timm_resnet_with:attn=cbam", input_size=SIZE)
    model = timm.models.resnet.ResNet(
        block=timm.models.resnet.BasicBlock,
        layers=[1, 1, 1, 1],
        block_args={"attn_layer": "cbam"},
        num_classes=10,
    )
    cbam = scoped(frame, "attention:cbam")
    assert cbam["params"] == family_params(model, "CbamModule") > 0
    assert 0 < cbam["macs"] < scoped(frame, "model")["macs"]


@pytest.mark.parametrize(
    ("attn", "family"),
    [
        *[("se", "se"), ("ese", "se"), ("eca", "eca"), ("ceca", "ceca"), ("gc", "gc"), ("gca", "gca")],
        *[("cbam", "cbam"), ("lcbam", "lcbam"), ("sk", "sk")],
    ],
)
def test_timm_attention_registry_names(attn: str, family: str) -> None:
    layer = timm.layers.create_attn(attn, 64)
    assert family_of(layer) == family


def test_gather_excite_is_ge() -> None:  # create_attn('ge') fails inside this timm; the class itself works
    assert family_of(timm.layers.GatherExcite(64, use_mlp=False)) == "ge"


def test_torchvision_squeeze_excitation_is_se() -> None:
    from torchvision.ops import SqueezeExcitation

    assert attention_modules(nn.Sequential(SqueezeExcitation(8, 2))) == {"0": "se"}


def test_compare_lines_up_a_family_present_on_one_side() -> None:
    frame = senet_profile.compare("timm:resnet26t", "timm:ecaresnet26t", input_size=SIZE)
    eca = frame[frame["scope"] == "attention:eca"].set_index("metric")
    assert eca.loc["params", "base"] == 0 and eca.loc["params", "candidate"] > 0


def test_unrecognised_attention_gets_a_note_and_a_named_class_is_counted() -> None:
    source = f"{SMALL_CNN}:with_mystery_attention"
    frame = senet_profile.profile(source, input_size=(8, 8))
    assert any(
        "1 (MysteryAttention) look like attention layers of no known family" in n
        for n in frame.attrs["notes"]
    )
    assert not frame["scope"].str.startswith("attention:").any()
    named = senet_profile.profile(source, input_size=(8, 8), attention={"MysteryAttention": "mystery"})
    assert named.attrs["notes"] == []
    assert scoped(named, "attention:mystery")["params"] == 8 + 1  # its 1x1 conv 8 -> 1 with bias
    as_se = senet_profile.profile(source, input_size=(8, 8), attention={"MysteryAttention": "se"})
    assert scoped(as_se, "model")["params_se"] == 9


def test_plain_models_get_no_note() -> None:
    frame = senet_profile.profile(f"{SMALL_CNN}:with_mystery_attention:named=off", input_size=(8, 8))
    assert frame.attrs["notes"] == []


def test_attention_option_on_the_cli() -> None:
    from typer.testing import CliRunner

    from senet_profile.cli import app

    args = ["profile", f"{SMALL_CNN}:with_mystery_attention", "--input-size", "8", "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--attention", "MysteryAttention=mystery"])
    assert result.exit_code == 0, result.stderr
    assert '"attention:mystery"' in result.stdout
    bad = CliRunner().invoke(app, [*args, "--attention", "not a class"])
    assert bad.exit_code == 2 and bad.stderr.startswith(
        "error: attention class must be CLASS or CLASS=FAMILY"
    )


def test_parse_attention_classes() -> None:
    assert parse_attention_classes(["MyGate", "Other=ctx"]) == {"MyGate": "mygate", "Other": "ctx"}
    with pytest.raises(UserInputError):
        parse_attention_classes(["X=Bad Family"])


def timm_registry_names() -> set[str]:
    """Every name timm.layers.get_attn answers to, read from its source (an if-chain, not a dict)."""
    import ast
    import importlib
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(importlib.import_module("timm.layers.create_attn").get_attn))
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and getattr(node.left, "id", "") == "attn_type":
            names |= {
                c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return names


# constructor arguments some of timm's classes need besides the channels
EXTRA_ARGS = {"bottleneck": {"feat_size": (8, 8)}, "ge": {"use_mlp": False}}  # 'ge' with an MLP fails in timm


def test_every_timm_attention_family_is_recognised() -> None:
    from senet_profile.catalog.attention import TIMM_NAMES

    registry = timm_registry_names()
    assert len(registry) >= 20  # the parse found the chain
    assert registry == set(TIMM_NAMES), "a timm attention name is new or gone: map it in TIMM_NAMES"
    for name in sorted(registry):
        layer = timm.layers.get_attn(name)(64, **EXTRA_ARGS.get(name, {}))
        assert family_of(layer) == TIMM_NAMES[name], name


@pytest.mark.parametrize(
    ("model", "families"),
    [
        ("skresnet18", {"sk"}),
        ("halonet26t", {"halo"}),
        ("lambda_resnet26t", {"lambda"}),
        ("botnet26t_256", {"bottleneck"}),
        ("sehalonet33ts", {"se", "halo"}),
    ],
)
def test_blocks_holding_counted_attention_get_no_note(model: str, families: set[str]) -> None:
    import torch

    from senet_profile.catalog.attention import unrecognised_attention

    with torch.device("meta"):
        built = timm.create_model(model, pretrained=False)
    found = attention_modules(built)
    assert set(found.values()) == families
    assert unrecognised_attention(built, found) == []


def test_unrecognised_attention_travels_in_json_and_csv() -> None:
    import json

    from typer.testing import CliRunner

    from senet_profile.cli import app

    source = f"{SMALL_CNN}:with_mystery_attention"
    for fmt in ("json", "csv"):
        result = CliRunner().invoke(app, ["profile", source, "--input-size", "8", "--format", fmt])
        assert result.exit_code == 0, result.stderr
        assert "unrecognised:MysteryAttention" in result.stdout
    records = json.loads(
        CliRunner()
        .invoke(app, ["compare", f"{SMALL_CNN}:small_cnn", source, "--input-size", "8", "--format", "json"])
        .stdout
    )
    odd = {r["metric"]: r for r in records if r["scope"] == "unrecognised:MysteryAttention"}
    assert odd["modules"]["base"] == 0 and odd["modules"]["candidate"] == 1
    assert odd["params"]["candidate"] == 9  # its 1x1 conv 8 -> 1 with bias, counted in the totals too
