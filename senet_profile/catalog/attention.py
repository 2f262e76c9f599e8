"""Attention families: which modules of a model are channel or spatial attention, and of which kind.

SE stays the subject (its share is the ``*_se`` metrics); other attention layers are reported under their
family's name. Families are recognised by class name, as ``timm.layers.create_attn`` names them:

se (ours, torchvision's ``SqueezeExcitation``, timm's ``SEModule``/``SqueezeExcite``, Cadene's ``SEModule``,
and timm's ``EffectiveSEModule``, which is SE with one FC: counted as SE), eca, ecam, ceca, ge, gc, gca,
cbam, lcbam, coord, scoord, ela, strip, sk, splat, nl, bat, halo, lambda, bottleneck: every name of the
installed timm's ``get_attn`` (``TIMM_NAMES`` maps each to its family here; a test enumerates timm's
registry, so a family a new timm adds fails a test rather than going uncounted). A user names their own
classes (``CLASS=FAMILY``; family ``se`` counts a class as SE). A module whose class name looks like
attention but is none of these is reported by ``unrecognised_attention`` (a note, never a silent 0);
a block that only holds recognised attention (timm's ``SelectiveKernelBasic``, ``SelfAttnBlock``) is not.
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
    "EcaModule": "eca",  # 'ecam' (EcaModule with an MLP) is told apart in family_of
    "CecaModule": "ceca",
    "GatherExcite": "ge",
    "GlobalContext": "gc",
    "CbamModule": "cbam",
    "LightCbamModule": "lcbam",
    "CoordAttn": "coord",
    "SimpleCoordAttn": "scoord",
    "EfficientLocalAttn": "ela",
    "StripAttn": "strip",
    "SelectiveKernel": "sk",
    "SplitAttn": "splat",
    "NonLocalAttn": "nl",
    "BatNonLocalAttn": "bat",
    "HaloAttn": "halo",
    "LambdaLayer": "lambda",
    "BottleneckAttn": "bottleneck",
}
# timm.layers.get_attn's names -> the family counted here ('ese' is SE with one FC: counted as SE)
TIMM_NAMES: dict[str, str] = {
    **{name: name for name in ("se", "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam")},
    **{name: name for name in ("coord", "scoord", "ela", "strip", "sk", "splat", "lambda", "bottleneck")},
    **{name: name for name in ("halo", "nl", "bat")},
    "ese": SE,
}
# families whose module returns its input's shape, gated or with a residual added inside (not a conv's
# replacement): taking one out leaves the network runnable, so `attention=off` may replace it by identity
GATING_FAMILIES = frozenset(
    {SE, "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam", "coord", "scoord", "ela", "strip", "nl"}
)
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
    if name == "EcaModule" and getattr(module, "conv2", None) is not None:  # timm's 'ecam'
        return "ecam"
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
    """``name (Class)`` of modules that look like attention layers but belong to no recognised family.

    A block that holds recognised attention (timm's ``SelectiveKernelBasic``, ``SelfAttnBlock``) is a
    container, not an attention layer: its attention is counted, so it gets no note (what else it holds is
    still looked at).
    """
    odd = unrecognised_modules(model, known)
    return [f"{name} ({type(module).__name__})" for name, module in odd.items()]


def unrecognised_modules(model: nn.Module, known: Mapping[str, str]) -> dict[str, nn.Module]:
    """Qualified name -> module of the outermost attention-like modules of no recognised family."""
    odd: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        inside = any(name == k or name.startswith(f"{k}.") for k in [*known, *odd])
        if not name or inside or not _LOOKS_LIKE_ATTENTION.search(type(module).__name__):
            continue
        if not any(k.startswith(f"{name}.") for k in known):  # a container of counted attention: skip
            odd[name] = module
    return odd
