"""Light indexes readable without importing torch: the catalog's, and timm's models by attention family.

``senet-profile list`` reads ``data/catalog.json`` so that it answers without building or importing any
model. The file is written from the live registry by ``python -m senet_profile.catalog.index`` and a test
checks that it still equals what the registry says.

``data/timm_attention.json`` says, for each model of one timm version, how many attention modules of each
family (``catalog.attention``) it holds, found by building every model on the meta device (about 0.2 s a
model, minutes for all of timm: too slow to do on each ``list``). It is written by
``python -m senet_profile.catalog.index timm``; ``list --source timm --attention FAMILY`` reads it when the
installed timm is the version it was written from, and otherwise builds the models that match the pattern.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

INDEX = "catalog.json"
TIMM_INDEX = "timm_attention.json"


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


def timm_families(name: str) -> dict[str, int] | str:
    """Attention family -> module count of timm model ``name`` built on meta; a one-line error if it fails."""
    import timm
    import torch

    from senet_profile.catalog.attention import attention_modules

    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    except Exception as error:  # a model that cannot be built on meta is recorded, not fatal
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    families: dict[str, int] = {}
    for family in attention_modules(model).values():
        families[family] = families.get(family, 0) + 1
    return dict(sorted(families.items()))


def load_timm_index() -> dict:
    """The stored timm index: ``{"timm": version, "models": {name: {family: count} or "error text"}}``."""
    text = resources.files("senet_profile").joinpath("data", TIMM_INDEX).read_text(encoding="utf-8")
    return json.loads(text)


def timm_attention(
    pattern: str = "*", *, progress: Callable[[int, int], None] | None = None
) -> tuple[dict[str, dict[str, int] | str], str]:
    """timm models matching ``pattern`` -> their attention families, and where the answer came from.

    From the stored index when the installed timm is the version it was written from; else each matching
    model is built on the meta device (``progress(done, total)`` is told as they are).
    """
    import timm

    names = timm.list_models(pattern)
    stored = load_timm_index()
    if stored["timm"] == timm.__version__ and all(name in stored["models"] for name in names):
        return {name: stored["models"][name] for name in names}, f"index of timm {stored['timm']}"
    found: dict[str, dict[str, int] | str] = {}
    for done, name in enumerate(names, start=1):
        found[name] = timm_families(name)
        if progress is not None:
            progress(done, len(names))
    return found, f"built on meta (timm {timm.__version__}; the index is of timm {stored['timm']})"


def _built_families(source: str, name: str) -> dict[str, int] | str:
    """Attention family -> module count of a catalog or torchvision model built on meta."""
    from senet_profile.catalog.attention import attention_modules
    from senet_profile.catalog.sources import build
    from senet_profile.errors import UserInputError

    try:
        model = build(name if source == "catalog" else f"{source}:{name}").module
    except UserInputError as error:
        return str(error)
    families: dict[str, int] = {}
    for family in attention_modules(model).values():
        families[family] = families.get(family, 0) + 1
    return dict(sorted(families.items()))


def _classifiers(pattern: str) -> list[str]:
    """torchvision's classification models matching ``pattern`` (its detection and segmentation builders
    would fetch backbone weights)."""
    from torchvision import models

    return sorted(n for n in models.list_models(module=models) if fnmatch.fnmatchcase(n, pattern))


def check_family(family: str) -> None:
    """Refuse an attention family name that is neither ``any`` nor one this package recognises."""
    from senet_profile.catalog.attention import TIMM_NAMES
    from senet_profile.errors import UserInputError

    known = sorted(set(TIMM_NAMES.values()))
    if family != "any" and family not in known:
        raise UserInputError(f"unknown attention family {family!r}; choose any or one of {', '.join(known)}")


def attention_rows(
    source: str, pattern: str, family: str, *, progress: Callable[[int, int], None] | None = None
) -> tuple[list[dict], str]:
    """Models of ``source`` matching ``pattern`` that hold attention of ``family`` (``any``: of any family),
    sorted by their families then name, each with its families and module counts; and a caption line."""
    check_family(family)
    if source == "timm":
        found, origin = timm_attention(pattern, progress=progress)
    else:
        names = [e["name"] for e in find(pattern)] if source == "catalog" else _classifiers(pattern)
        found = {}
        for done, name in enumerate(names, start=1):
            found[name] = _built_families(source, name)
            if progress is not None:
                progress(done, len(names))
        origin = "built on meta"
    failed = sorted(name for name, families in found.items() if isinstance(families, str))
    rows = [
        {
            "model": name if source == "catalog" else f"{source}:{name}",
            "attention": ", ".join(f"{f} x{n}" for f, n in families.items()),
        }
        for name, families in found.items()
        if isinstance(families, dict) and families and (family == "any" or family in families)
    ]
    rows.sort(key=lambda row: (row["attention"].split(" x")[0], row["model"]))
    caption = f"Attention modules by family ({origin}); 'se x16': 16 SE modules."
    if failed:
        caption += f" Not built on meta, so not listed: {len(failed)} ({', '.join(failed[:3])}...)."
    return rows, caption


def write_timm_index(path: Path | None = None) -> Path:
    """Build every timm model on meta and write the attention index (minutes)."""
    import timm

    from senet_profile.io import write_atomic

    names = timm.list_models()
    models = {}
    for done, name in enumerate(names, start=1):
        models[name] = timm_families(name)
        if done % 100 == 0:
            print(f"{done}/{len(names)}", flush=True)
    target = path or Path(__file__).resolve().parent.parent / "data" / TIMM_INDEX
    index = {"timm": timm.__version__, "models": models}
    write_atomic(target, json.dumps(index, indent=0, ensure_ascii=False, sort_keys=True) + "\n")
    return target


if __name__ == "__main__":
    import sys

    print(f"wrote {write_timm_index() if sys.argv[1:] == ['timm'] else write_index()}")
