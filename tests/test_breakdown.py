"""The module tree and the per-op table: rows add up to the model, depth limits the tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import senet_profile
from senet_profile.cli import app

SMALL_CNN = Path(__file__).with_name("small_cnn.py")


@pytest.fixture(scope="module")
def tree():
    return senet_profile.by_module("se_resnet18", depth=2, input_size=(64, 64))


def test_root_row_is_the_whole_model(tree) -> None:
    total = senet_profile.profile("se_resnet18", input_size=(64, 64))
    values = dict(zip(total["metric"], total["value"], strict=True))
    root = tree.iloc[0]
    assert root["module"] == "(model)"
    for column in ("params", "macs", "activations", "bytes_moved"):
        assert root[column] == values[column], column


def test_children_add_up_to_their_parent(tree) -> None:
    top = tree[tree["path"].str.count(r"\.") == 0].iloc[1:]  # depth-1 rows
    assert top["macs"].sum() == tree.iloc[0]["macs"]
    assert top["params"].sum() == tree.iloc[0]["params"]
    layer1 = tree[tree["path"].str.startswith("layer1.")]
    assert layer1["macs"].sum() == tree.set_index("path").loc["layer1", "macs"]


def test_depth_limits_the_tree_and_marks_se() -> None:
    shallow = senet_profile.by_module("se_resnet18", depth=1, input_size=(64, 64))
    assert shallow["path"].str.count(r"\.").max() == 0
    deep = senet_profile.by_module("se_resnet18", depth=3, input_size=(64, 64))
    assert set(deep.loc[deep["attention"] == "se", "type"]) == {"SEBlock"}
    assert deep["module"].str.startswith("    ").any()  # indented names at depth 3
    with pytest.raises(senet_profile.UserInputError):
        senet_profile.by_module("se_resnet18", depth=-1)


def test_op_table_adds_up() -> None:
    ops = senet_profile.by_op(f"{SMALL_CNN}:small_cnn", input_size=(8, 8))
    rows = ops.set_index("op")
    assert rows.loc["convolution", "macs"] == 8 * 8 * 8 * 27
    assert rows.loc["addmm", "macs"] == 80
    ran = ops[ops["op"] != "(total)"]
    assert ran["macs"].sum() == 8 * 8 * 8 * 27 + 80
    assert list(ops["op"])[:2] == ["convolution", "addmm"]  # most MACs first
    total = ops.iloc[-1]  # the total row, last
    assert total["op"] == "(total)" and total["macs"] == ran["macs"].sum()
    assert total["bytes_moved"] == ran["bytes_moved"].sum() and total["calls"] == ran["calls"].sum()


def test_cli_by_module_table_has_units_and_csv_is_raw() -> None:
    args = ["profile", "torchvision:mobilenet_v3_large", "--by-module", "--depth", "2", "--input-size", "64"]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.stderr
    assert "features" in table.stdout and "MiB" in table.stdout and " M " in table.stdout
    raw = CliRunner().invoke(app, [*args, "--format", "csv"])
    header, root = raw.stdout.splitlines()[:2]
    assert header == "module,path,type,attention,output_shape,params,param_bytes,macs,activations,bytes_moved"
    assert root.startswith(f"(model),,MobileNetV3,(se inside),1x1000,5483032,{5483032 * 4},")


def test_by_op_and_idle_options_warn() -> None:
    result = CliRunner().invoke(app, ["profile", "resnet18", "--by-op", "--by-stage", "--input-size", "32"])
    assert result.exit_code == 0, result.stderr
    assert "convolution" in result.stdout
    assert result.stderr.strip() == "warning: --by-stage does nothing here; ignored"


def test_modules_holding_attention_are_marked() -> None:
    tree = senet_profile.by_module("torchvision:mobilenet_v3_large", depth=2, input_size=(64, 64))
    marks = dict(zip(tree["path"], tree["attention"], strict=True))
    assert marks["features"] == "(se inside)" and marks["features.4"] == "(se inside)"
    assert marks["features.1"] == ""  # the first blocks carry no SE


def test_module_tree_shows_output_shapes_and_parameter_bytes() -> None:
    tree = senet_profile.by_module("se_resnet18", depth=3, input_size=(64, 64)).set_index("path")
    assert tree.loc["layer1", "output_shape"] == "1x64x16x16"
    assert tree.loc["layer4.1", "output_shape"] == "1x512x2x2"
    assert tree.loc["fc", "output_shape"] == "1x1000"
    assert tree.loc["layer1.0.se", "output_shape"] == "1x64x16x16"
    assert (tree["param_bytes"] == tree["params"] * 4).all()  # fp32 parameters, each counted once
