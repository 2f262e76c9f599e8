"""The light catalog index that `list` reads must say what the registry says."""

from __future__ import annotations

import json

import pytest

from senet_profile.catalog.index import build_index, find, load_index, load_timm_index, timm_families


def test_index_matches_the_registry() -> None:
    assert load_index() == build_index(), "run: python -m senet_profile.catalog.index"


def test_find_matches_a_pattern() -> None:
    names = [entry["name"] for entry in find("se_resnet*")]
    assert names == sorted(names) and "se_resnet50" in names and all(n.startswith("se_resnet") for n in names)


def test_timm_attention_index_is_what_building_says() -> None:
    timm = pytest.importorskip("timm")
    stored = load_timm_index()
    if stored["timm"] != timm.__version__:
        pytest.skip(f"the index is of timm {stored['timm']}: run python -m senet_profile.catalog.index timm")
    assert set(stored["models"]) == set(timm.list_models()), "run: python -m senet_profile.catalog.index timm"
    for name in ("efficientnet_b0", "skresnet18", "sehalonet33ts", "regnetx_002", "resnest14d"):
        assert stored["models"][name] == timm_families(name), name


def test_timm_attention_builds_when_the_index_is_of_another_timm(monkeypatch) -> None:
    pytest.importorskip("timm")
    from senet_profile.catalog import index

    monkeypatch.setattr(index, "load_timm_index", lambda: {"timm": "0.0", "models": {}})
    seen = []
    found, origin = index.timm_attention(
        "efficientnet_b[01]", progress=lambda done, total: seen.append(total)
    )
    assert found == {"efficientnet_b0": {"se": 16}, "efficientnet_b1": {"se": 23}}
    assert origin.startswith("built on meta") and seen == [2, 2]


def test_list_by_attention_family_on_the_cli() -> None:
    pytest.importorskip("timm")
    from typer.testing import CliRunner

    from senet_profile.cli import app

    args = ["list", "--source", "timm", "--format", "json", "--attention"]
    rows = json.loads(CliRunner().invoke(app, [*args, "any", "*resnet26t"]).stdout)
    assert {"model": "timm:ecaresnet26t", "attention": "eca x8"} in rows
    assert all(row["attention"] for row in rows)  # only models with attention
    families = [row["attention"].split(" x")[0] for row in rows]
    assert families == sorted(families)  # by family
    se = json.loads(CliRunner().invoke(app, [*args, "se", "efficientnet_b0"]).stdout)
    assert se == [{"model": "timm:efficientnet_b0", "attention": "se x16"}]
    bad = CliRunner().invoke(app, [*args, "nope"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown attention family 'nope'")
