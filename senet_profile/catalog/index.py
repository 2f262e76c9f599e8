"""A light index of the catalog (names, families, descriptions, knobs) readable without importing torch.

``senet-profile list`` reads ``data/catalog.json`` so that it answers without building or importing any
model. The file is written from the live registry by ``python -m senet_profile.catalog.index`` and a test
checks that it still equals what the registry says.
"""

from __future__ import annotations

import fnmatch
import json
from importlib import resources
from pathlib import Path

INDEX = "catalog.json"


def load_index() -> list[dict]:
    """The catalog's entries as stored: name, family, description and knobs (name, default, help)."""
    text = resources.files("senet_profile").joinpath("data", INDEX).read_text(encoding="utf-8")
    return json.loads(text)


def find(pattern: str = "*") -> list[dict]:
    """Index entries whose name matches a shell-style ``pattern``, sorted by name."""
    return sorted(
        (e for e in load_index() if fnmatch.fnmatchcase(e["name"], pattern)), key=lambda e: e["name"]
    )


def build_index() -> list[dict]:
    """The index as the live registry gives it (imports every model family)."""
    from senet_profile.catalog.registry import get_entry, list_models

    entries = []
    for name in list_models():
        entry = get_entry(name)
        knobs = [{"name": k.name, "default": k.format(k.default), "help": k.help} for k in entry.knobs]
        entries.append(
            {"name": name, "family": entry.family, "description": entry.description, "knobs": knobs}
        )
    return entries


def write_index(path: Path | None = None) -> Path:
    """Write the index from the registry (to the package's data folder unless ``path`` is given)."""
    from senet_profile.io import write_atomic

    target = path or Path(__file__).resolve().parent.parent / "data" / INDEX
    write_atomic(target, json.dumps(build_index(), indent=1, ensure_ascii=False) + "\n")
    return target


if __name__ == "__main__":
    print(f"wrote {write_index()}")
