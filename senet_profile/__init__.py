"""senet-profile: what Squeeze-and-Excitation blocks really cost, measured on the model that was built.

The public names are imported on first use (PEP 562), so that ``import senet_profile`` — and with it the
command line's ``--help`` and ``list`` — does not pay for torch and pandas.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and readers only
    from senet_profile.api import (
        Explanation,
        MemoryExplanation,
        SEConfig,
        Setting,
        add_se,
        by_module,
        by_op,
        compare,
        explain,
        explain_memory,
        get_model,
        list_models,
        parse_model_spec,
        profile,
        register,
        remove_attention,
        remove_se,
        resolve,
    )
    from senet_profile.errors import UserInputError

__all__ = [
    "Explanation",
    "MemoryExplanation",
    "SEConfig",
    "Setting",
    "UserInputError",
    "add_se",
    "by_module",
    "by_op",
    "compare",
    "explain",
    "explain_memory",
    "get_model",
    "list_models",
    "parse_model_spec",
    "profile",
    "register",
    "remove_attention",
    "remove_se",
    "resolve",
]
# Where each public name lives: the error type at the ground floor, the rest in the API.
_HOMES = {
    name: "senet_profile.errors" if name == "UserInputError" else "senet_profile.api" for name in __all__
}
_SUBMODULES = ("analysis", "api", "catalog", "cli", "errors", "history", "io", "measure", "report", "setting")
__version__ = "0.1.0"


def __getattr__(name: str) -> _Any:
    """Import a public name from its module the first time it is asked for."""
    if name in _SUBMODULES:
        return _importlib.import_module(f"senet_profile.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'senet_profile' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Only the public names (and ``__version__``)."""
    return sorted([*__all__, "__version__"])
