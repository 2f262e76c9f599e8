"""The model-argument grammar: ``NAME[:KNOB=VALUE[,KNOB=VALUE...]]``.

Examples: ``se_resnet50``, ``se_resnet50:r=8``, ``se_resnet50:r=8,stages=4,placement=pre,layout=paper``,
``se_resnet50:stages=2-4,gate=tanh,bias=off``.

A knob is a typed, named option of a catalog entry. Its value is parsed by the knob and written back in one
canonical form, so that ``format_spec(parse(text))`` is the shortest equivalent text (default values left
out, knobs in the entry's order) and parsing it again gives the same ``ModelSpec``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from senet_profile.errors import UserInputError


@dataclass(frozen=True)
class Knob:
    """One named option of a catalog entry: how its text is parsed and written back."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    help: str


@dataclass(frozen=True)
class ModelSpec:
    """A catalog name with the knobs that differ from the entry's defaults, values in canonical text."""

    name: str
    knobs: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        return format_spec(self)


def positive_int_knob(name: str, default: int | None, help: str) -> Knob:
    """A knob holding a positive integer (``none`` allowed when the default is None)."""

    def parse(text: str) -> int | None:
        if default is None and text == "none":
            return None
        try:
            value = int(text)
        except ValueError:
            raise UserInputError(f"{name} must be a positive integer, got {name}={text}") from None
        if value <= 0:
            raise UserInputError(f"{name} must be a positive integer, got {name}={text}")
        return value

    return Knob(name, default, parse, lambda v: "none" if v is None else str(v), help)


def choice_knob(name: str, default: str, choices: Iterable[str], help: str) -> Knob:
    """A knob holding one of a fixed set of names."""
    allowed = tuple(choices)

    def parse(text: str) -> str:
        if text not in allowed:
            raise UserInputError(f"unknown {name} {text!r}; choose one of {', '.join(allowed)}")
        return text

    return Knob(name, default, parse, str, f"{help} ({'|'.join(allowed)})")


_BOOL_WORDS = {
    "on": True,
    "true": True,
    "yes": True,
    "1": True,
    "off": False,
    "false": False,
    "no": False,
    "0": False,
}


def bool_knob(name: str, default: bool, help: str) -> Knob:
    """A knob holding on/off."""

    def parse(text: str) -> bool:
        if text.lower() not in _BOOL_WORDS:
            raise UserInputError(f"{name} must be on or off, got {name}={text}")
        return _BOOL_WORDS[text.lower()]

    return Knob(name, default, parse, lambda v: "on" if v else "off", f"{help} (on|off)")


def stage_set_knob(name: str, valid: tuple[int, ...], help: str) -> Knob:
    """A knob holding a set of stage numbers: ``all``, ``4``, ``2+3``, ``2-4``."""
    valid_set = frozenset(valid)
    lo, hi = min(valid), max(valid)

    def parse_one(part: str) -> set[int]:
        bounds = part.split("-")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            raise UserInputError(
                f"{name} must be stage numbers {lo}-{hi} or 'all', got {name}={part}"
            ) from None
        if len(numbers) not in (1, 2) or numbers[0] > numbers[-1]:
            raise UserInputError(f"{name} must be stage numbers {lo}-{hi} or 'all', got {name}={part}")
        stages = set(range(numbers[0], numbers[-1] + 1))
        outside = sorted(stages - valid_set)
        if outside:
            raise UserInputError(
                f"stage {outside[0]} is outside {lo}-{hi} (the paper's conv{lo}_x..conv{hi}_x)"
            )
        return stages

    def parse(text: str) -> frozenset[int]:
        if text == "all":
            return valid_set
        stages: set[int] = set()
        for part in text.split("+"):
            stages |= parse_one(part)
        return frozenset(stages)

    def fmt(value: frozenset[int]) -> str:
        return "all" if value == valid_set else "+".join(str(s) for s in sorted(value))

    return Knob(name, valid_set, parse, fmt, f"{help} ({lo}-{hi}, e.g. 4, 2+3, 2-4, all)")


def split_spec(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``NAME:K=V,K=V`` into the name and raw (knob, value) pairs, checking only the syntax."""
    name, _, rest = text.strip().partition(":")
    if not name:
        raise UserInputError(f"model argument {text!r} has no model name")
    pairs: list[tuple[str, str]] = []
    if not rest:
        return name, pairs
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise UserInputError(f"model argument {text!r}: expected KNOB=VALUE, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return name, pairs


def build_spec(name: str, pairs: list[tuple[str, str]], knobs: tuple[Knob, ...]) -> ModelSpec:
    """Parse raw knob pairs against an entry's knobs into a canonical ``ModelSpec``."""
    by_name = {k.name: k for k in knobs}
    values: dict[str, Any] = {}
    for key, raw in pairs:
        if key not in by_name:
            accepted = ", ".join(by_name) or "none"
            raise UserInputError(f"unknown knob {key!r} for {name}; it accepts: {accepted}")
        if key in values:
            raise UserInputError(f"knob {key!r} given twice for {name}")
        values[key] = by_name[key].parse(raw)
    canonical = tuple(
        (k.name, k.format(values[k.name])) for k in knobs if k.name in values and values[k.name] != k.default
    )
    return ModelSpec(name, canonical)


def knob_values(spec: ModelSpec, knobs: tuple[Knob, ...]) -> dict[str, Any]:
    """Every knob of an entry with its parsed value in ``spec`` (defaults filled in)."""
    given = dict(spec.knobs)
    return {k.name: k.parse(given[k.name]) if k.name in given else k.default for k in knobs}


def format_spec(spec: ModelSpec) -> str:
    """The canonical text of ``spec``: ``NAME`` or ``NAME:K=V,...`` with non-default knobs only."""
    if not spec.knobs:
        return spec.name
    return f"{spec.name}:{','.join(f'{key}={value}' for key, value in spec.knobs)}"
