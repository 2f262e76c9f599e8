"""The light catalog index that `list` reads must say what the registry says."""

from __future__ import annotations

from senet_profile.catalog.index import build_index, find, load_index


def test_index_matches_the_registry() -> None:
    assert load_index() == build_index(), "run: python -m senet_profile.catalog.index"


def test_find_matches_a_pattern() -> None:
    names = [entry["name"] for entry in find("se_resnet*")]
    assert names == sorted(names) and "se_resnet50" in names and all(n.startswith("se_resnet") for n in names)
