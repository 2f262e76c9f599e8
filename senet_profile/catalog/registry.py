"""One registry of model builders and one lookup path: ``register``, ``list_models``, ``get_model``."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from senet_profile.catalog.spec import Knob, ModelSpec, build_spec, knob_values, split_spec
from senet_profile.errors import UserInputError
from senet_profile.setting import require_cuda

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder: its name, family, knobs and one-line description."""

    name: str
    builder: Builder
    family: str
    knobs: tuple[Knob, ...]
    description: str


_ENTRIES: dict[str, ModelEntry] = {}
_CATALOG_MODULES = ("senet_profile.catalog.models",)


def register(
    name: str, *, family: str, knobs: tuple[Knob, ...] = (), description: str = ""
) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to the catalog under ``name``; a duplicate name raises."""

    def add(builder: Builder) -> Builder:
        if name in _ENTRIES:
            raise ValueError(f"model {name!r} is already registered")
        summary = description or next(iter((builder.__doc__ or "").strip().splitlines()), "")
        _ENTRIES[name] = ModelEntry(name, builder, family, knobs, summary)
        return builder

    return add


def _need_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise UserInputError(f"expected {what}, got {type(value).__name__} {value!r}")


def _load_catalog() -> None:
    for module in _CATALOG_MODULES:
        importlib.import_module(module)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern``, sorted."""
    _need_text(pattern, "a name pattern")
    _load_catalog()
    return sorted(name for name in _ENTRIES if fnmatch.fnmatchcase(name, pattern))


def get_entry(name: str) -> ModelEntry:
    """The catalog entry called ``name``, or a UserInputError that lists close matches."""
    _load_catalog()
    if name in _ENTRIES:
        return _ENTRIES[name]
    close = difflib.get_close_matches(name, _ENTRIES, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `senet-profile list` shows the catalog"
    raise UserInputError(f"unknown model {name!r}{hint}")


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model argument such as ``se_resnet50:r=8,stages=4`` into a canonical ``ModelSpec``."""
    _need_text(text, "a model argument such as 'se_resnet50:r=8'")
    name, pairs = split_spec(text)
    return build_spec(name, pairs, get_entry(name).knobs)


def check_device(device: object) -> None:
    """Refuse, before building, a device that is not one or is absent here (``cuda`` without a GPU)."""
    try:
        # any value on purpose: torch's own parser is the check, and it takes more than its hints list
        # (bytes, numpy integers), so no narrowing here could match it
        kind = torch.device(device).type  # type: ignore[call-overload]
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {device!r}; use 'meta', 'cpu' or 'cuda'") from None
    if kind == "cuda":
        require_cuda(str(device))


def get_model(spec: str | ModelSpec, *, device: str | torch.device = "meta") -> nn.Module:
    """Build the model named by ``spec``; on the meta device by default (no weights allocated)."""
    if not isinstance(spec, ModelSpec):
        _need_text(spec, "a model argument such as 'se_resnet50:r=8' or a ModelSpec")
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    entry = get_entry(parsed.name)
    check_device(device)
    with torch.device(device):
        model = entry.builder(**knob_values(parsed, entry.knobs))
    return model.eval()
