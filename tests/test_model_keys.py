"""SE keys on a model argument of any source: se=off|add, se_at, se_r, attention=off (catalog.attach)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import senet_profile
from senet_profile.catalog.attention import attention_modules
from senet_profile.catalog.se import se_module_names
from senet_profile.catalog.sources import build
from senet_profile.cli import app

SMALL_CNN = Path(__file__).with_name("small_cnn.py")


def n_params(text: str) -> int:
    return sum(p.numel() for p in build(text).module.parameters())


def test_compare_timm_efficientnet_without_and_with_se() -> None:
    pytest.importorskip("timm")
    result = CliRunner().invoke(
        app, ["compare", "timm:efficientnet_b0:se=off", "timm:efficientnet_b0", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    frame = senet_profile.compare("timm:efficientnet_b0:se=off", "timm:efficientnet_b0")
    rows = frame.set_index("metric")
    assert rows.loc["params_se", "base"] == 0 and rows.loc["params_se", "candidate"] > 0
    assert rows.loc["params", "delta"] == rows.loc["params_se", "candidate"]  # only SE was taken out
    assert rows.loc["macs", "delta"] == rows.loc["macs_se", "candidate"]


def test_se_off_on_a_catalog_model_without_the_knob_is_its_twin() -> None:
    built = build("se_resnet50:r=8,se=off")
    assert built.name == "se_resnet50:r=8,se=off"
    assert se_module_names(built.module) == []
    assert n_params("se_resnet50:se=off") == n_params("resnet50") == 25_557_032


def test_se_add_and_se_at_on_torchvision() -> None:
    added = build("torchvision:mobilenet_v2:se=add").module
    assert len(se_module_names(added)) == 17  # one per inverted residual block
    at = build("torchvision:mobilenet_v2:se_at=features.1.conv.0+features.2.conv.1,se_r=4").module
    assert se_module_names(at) == ["features.1.conv.0.1", "features.2.conv.1.1"]
    assert at.features[2].conv[1][1].hidden == 96 // 4


def test_a_builder_taking_se_itself_gets_it() -> None:
    on, off = build(f"{SMALL_CNN}:small_cnn:se=on").module, build(f"{SMALL_CNN}:small_cnn:se=off").module
    assert se_module_names(on) and not se_module_names(off)


def test_se_off_and_attention_off_on_a_function_without_those_keys() -> None:
    pytest.importorskip("timm")
    assert se_module_names(build(f"{SMALL_CNN}:timm_resnet_with:attn=se").module)
    assert not se_module_names(build(f"{SMALL_CNN}:timm_resnet_with:attn=se,se=off").module)
    cbam = f"{SMALL_CNN}:timm_resnet_with:attn=cbam"
    assert set(attention_modules(build(cbam).module).values()) == {"cbam"}
    assert attention_modules(build(f"{cbam},attention=off").module) == {}


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("timm:resnet18:se=off", "error: timm:resnet18 has no SE modules to take out"),
        ("timm:ecaresnet26t:se=off", "(its attention is eca: attention=off takes that out)"),
        ("timm:skresnet18:attention=off", "its attention (sk) replaces convs"),
        ("resnet50:se=maybe", "error: resnet50:se=maybe: se takes on, off or add, got se=maybe"),
        ("resnet50:se_r=4", "se_r is the ratio of SE blocks added: give se=add or se_at too"),
        ("torchvision:mobilenet_v2:se_at=x.y", "mobilenet_v2: se_at='x.y' matches no module"),
        ("se_resnet50:se=add", "already has 16 SE modules"),
    ],
)
def test_bad_keys_are_one_line_errors(argument: str, message: str) -> None:
    if argument.startswith("timm:"):
        pytest.importorskip("timm")
    result = CliRunner().invoke(app, ["profile", argument])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
