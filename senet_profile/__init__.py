"""senet-profile: what Squeeze-and-Excitation blocks really cost, measured on the model that was built.

The public names are imported on first use (PEP 562), so that ``import senet_profile`` — and with it the
command line's ``--help`` and ``list`` — does not pay for torch and pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and readers only
    from senet_profile.api import by_module, by_op, compare, profile
    from senet_profile.catalog.attach import add_se, remove_attention, remove_se
    from senet_profile.catalog.registry import get_model, list_models, parse_model_spec, register
    from senet_profile.catalog.se import SEConfig
    from senet_profile.errors import UserInputError

_HOMES = {
    "SEConfig": "senet_profile.catalog.se",
    "UserInputError": "senet_profile.errors",
    "add_se": "senet_profile.catalog.attach",
    "by_module": "senet_profile.api",
    "by_op": "senet_profile.api",
    "compare": "senet_profile.api",
    "get_model": "senet_profile.catalog.registry",
    "list_models": "senet_profile.catalog.registry",
    "parse_model_spec": "senet_profile.catalog.registry",
    "profile": "senet_profile.api",
    "register": "senet_profile.catalog.registry",
    "remove_attention": "senet_profile.catalog.attach",
    "remove_se": "senet_profile.catalog.attach",
}
__all__ = [
    "SEConfig",
    "UserInputError",
    "add_se",
    "by_module",
    "by_op",
    "compare",
    "get_model",
    "list_models",
    "parse_model_spec",
    "profile",
    "register",
    "remove_attention",
    "remove_se",
]
_SUBMODULES = ("analysis", "api", "catalog", "cli", "errors", "history", "io", "report")
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    if name in _SUBMODULES:
        return importlib.import_module(f"senet_profile.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'senet_profile' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
