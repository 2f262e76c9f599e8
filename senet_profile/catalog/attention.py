"""Attention families: which modules of a model are channel or spatial attention, and of which kind.

SE stays the subject (its share is the ``*_se`` metrics); other attention layers are reported under their
family's name. Families are recognised by class name, as ``timm.layers.create_attn`` names them:

se (ours, torchvision's ``SqueezeExcitation``, timm's ``SEModule``/``SqueezeExcite``, Cadene's ``SEModule``,
and timm's ``EffectiveSEModule``, which is SE with one FC: counted as SE), eca, ceca, ge, gc, gca, cbam,
lcbam, sk, splat, nl, bat, halo, lambda, bottleneck. A user names their own classes (``CLASS=FAMILY``;
family ``se`` counts a class as SE). A module whose class name looks like attention but is none of these
is reported by ``unrecognised_attention`` (a note, never a silent 0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from torch import nn

from senet_profile.catalog.se import is_se_module
from senet_profile.errors import UserInputError

SE = "se"
# timm class name -> family (timm.layers.create_attn's names)
KNOWN_CLASSES: dict[str, str] = {
    "EffectiveSEModule": SE,
    "EcaModule": "eca",
    "CecaModule": "ceca",
    "GatherExcite": "ge",
    "GlobalContext": "gc",
    "CbamModule": "cbam",
    "LightCbamModule": "lcbam",
    "SelectiveKernel": "sk",
    "SplitAttn": "splat",
    "NonLocalAttn": "nl",
    "BatNonLocalAttn": "bat",
    "HaloAttn": "halo",
    "LambdaLayer": "lambda",
    "BottleneckAttn": "bottleneck",
}
_LOOKS_LIKE_ATTENTION = re.compile(r"attn|attention|excit|cbam|^eca|gather|context|selectivekernel", re.I)
_FAMILY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_attention_classes(items: Iterable[str]) -> dict[str, str]:
    """``CLASS`` or ``CLASS=FAMILY`` items as class -> family (default family: the class, lowercased)."""
    classes: dict[str, str] = {}
    for item in items:
        cls, _, family = item.partition("=")
        cls, family = cls.strip(), (family.strip() or cls.strip().lower())
        if not cls.isidentifier() or not _FAMILY_NAME.match(family):
            raise UserInputError(
                "attention class must be CLASS or CLASS=FAMILY (family: lowercase letters, digits, _), "
                f"got {item!r}"
            )
        classes[cls] = family
    return classes


def family_of(module: nn.Module, extra: Mapping[str, str] | None = None) -> str | None:
    """The attention family of one module, or None when it is not a recognised attention layer."""
    name = type(module).__name__
    if extra and name in extra:
        return extra[name]
    if name == "GlobalContext":  # timm's 'gca' is GlobalContext fusing by add only
        adds, scales = getattr(module, "mlp_add", None), getattr(module, "mlp_scale", None)
        return "gca" if adds is not None and scales is None else "gc"
    if name in KNOWN_CLASSES:
        return KNOWN_CLASSES[name]
    return SE if is_se_module(module) else None


def attention_modules(model: nn.Module, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Qualified name -> family of the outermost attention modules of ``model``."""
    found: dict[str, str] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f"{outer}.") for outer in found):
            continue
        family = family_of(module, extra)
        if family is not None:
            found[name] = family
    return found


def unrecognised_attention(model: nn.Module, known: Mapping[str, str]) -> list[str]:
    """``name (Class)`` of modules that look like attention layers but belong to no recognised family."""
    odd: list[str] = []
    outer: list[str] = []
    for name, module in model.named_modules():
        inside = any(name == k or name.startswith(f"{k}.") for k in [*known, *outer])
        if name and not inside and _LOOKS_LIKE_ATTENTION.search(type(module).__name__):
            outer.append(name)
            odd.append(f"{name} ({type(module).__name__})")
    return odd
