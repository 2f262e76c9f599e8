"""The model-argument grammar: canonical text, round trips and one clear error per mistake."""

from __future__ import annotations

import re

import pytest

from senet_profile.catalog.registry import get_entry, parse_model_spec
from senet_profile.catalog.spec import ModelSpec, format_spec, knob_values
from senet_profile.errors import UserInputError

# Text as a user may type it -> the canonical text (defaults dropped, knobs in the entry's order).
CANONICAL = [
    ("se_resnet50", "se_resnet50"),
    (
        "se_resnet50:bias=on,gate=sigmoid,squeeze=avg,width=none,r=16,placement=standard,stages=all,"
        "layout=torchvision",
        "se_resnet50",
    ),
    ("se_resnet50:bias=off,r=8,layout=paper", "se_resnet50:layout=paper,r=8,bias=off"),
    (
        "se_resnet50:r=8,stages=4,placement=pre,layout=paper",
        "se_resnet50:layout=paper,stages=4,placement=pre,r=8",
    ),
    ("se_resnet50:gate=tanh,stages=2-4", "se_resnet50:stages=2+3+4,gate=tanh"),
    ("se_resnet50:stages=3+2", "se_resnet50:stages=2+3"),
    ("se_resnet50:stages=2-5", "se_resnet50"),
    ("se_resnet50:stages=2+3+4+5", "se_resnet50"),
    ("se_resnet50:stages=all", "se_resnet50"),
    ("se_resnet50:stages=3-3", "se_resnet50:stages=3"),
    ("se_resnet50:stages=2+4-5", "se_resnet50:stages=2+4+5"),
    ("se_resnet50:bias=false", "se_resnet50:bias=off"),
    ("se_resnet50:bias=true", "se_resnet50"),
    ("se_resnet50:bias=OFF", "se_resnet50:bias=off"),
    ("se_resnet50:width=none,r=4", "se_resnet50:r=4"),
    ("se_resnet50:width=32", "se_resnet50:width=32"),
    ("se_resnet50:r=016", "se_resnet50"),
    ("se_resnet50:squeeze=max,placement=3x3", "se_resnet50:placement=3x3,squeeze=max"),
    ("se_resnet50:squeeze=none,gate=hardsigmoid", "se_resnet50:squeeze=none,gate=hardsigmoid"),
    ("se_resnet18:placement=identity,r=4", "se_resnet18:placement=identity,r=4"),
    ("resnet50:layout=torchvision", "resnet50"),
    ("resnet50:layout=paper", "resnet50:layout=paper"),
    ("  resnext50_32x4d  ", "resnext50_32x4d"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_text(text: str, canonical: str) -> None:
    spec = parse_model_spec(text)
    assert str(spec) == canonical
    assert format_spec(spec) == canonical


@pytest.mark.parametrize("text", [text for text, _ in CANONICAL])
def test_round_trip(text: str) -> None:
    spec = parse_model_spec(text)
    again = parse_model_spec(str(spec))
    assert again == spec
    assert str(again) == str(spec)


def test_spelling_variants_give_equal_specs() -> None:
    variants = [
        "se_resnet50:r=8,bias=off,stages=2-4",
        "se_resnet50:stages=2+3+4,bias=false,r=8",
        "se_resnet50:bias=0,stages=4+2+3,r=08,width=none",
    ]
    specs = {parse_model_spec(v) for v in variants}
    assert specs == {ModelSpec("se_resnet50", (("stages", "2+3+4"), ("r", "8"), ("bias", "off")))}


def test_knob_values_fill_defaults_and_parse_values() -> None:
    spec = parse_model_spec("se_resnet50:stages=2-3,r=8,bias=off")
    values = knob_values(spec, get_entry("se_resnet50").knobs)
    assert values == {
        "layout": "torchvision",
        "stages": frozenset({2, 3}),
        "placement": "standard",
        "r": 8,
        "width": None,
        "squeeze": "avg",
        "gate": "sigmoid",
        "bias": False,
        "scale": "mul",
    }


ERRORS = [
    (
        "se_resnet50:foo=1",
        "unknown knob 'foo' for se_resnet50; "
        "it accepts: layout, stages, placement, r, width, squeeze, gate, bias",
    ),
    ("resnet50:r=8", "unknown knob 'r' for resnet50; it accepts: layout"),
    ("se_resnet50:r=8,r=4", "knob 'r' given twice for se_resnet50"),
    ("se_resnet50:r=8,r=8", "knob 'r' given twice for se_resnet50"),
    ("se_resnet50:r=", "expected KNOB=VALUE, got 'r='"),
    ("se_resnet50:r", "expected KNOB=VALUE, got 'r'"),
    ("se_resnet50:=8", "expected KNOB=VALUE, got '=8'"),
    ("se_resnet50:r=8,", "expected KNOB=VALUE, got ''"),
    ("se_resnet50:r=0", "r must be a positive integer, got r=0"),
    ("se_resnet50:r=-3", "r must be a positive integer, got r=-3"),
    ("se_resnet50:r=abc", "r must be a positive integer, got r=abc"),
    ("se_resnet50:r=1.5", "r must be a positive integer, got r=1.5"),
    ("se_resnet50:width=0", "width must be a positive integer, got width=0"),
    ("se_resnet50:stages=6", "stage 6 is outside 2-5 (the paper's conv2_x..conv5_x)"),
    ("se_resnet50:stages=1", "stage 1 is outside 2-5"),
    ("se_resnet50:stages=1-3", "stage 1 is outside 2-5"),
    ("se_resnet50:stages=4-2", "stages must be stage numbers 2-5 or 'all', got stages=4-2"),
    ("se_resnet50:stages=2-3-4", "stages must be stage numbers 2-5 or 'all', got stages=2-3-4"),
    ("se_resnet50:stages=two", "stages must be stage numbers 2-5 or 'all', got stages=two"),
    (
        "se_resnet50:placement=middle",
        "unknown placement 'middle'; choose one of standard, pre, post, identity, 3x3",
    ),
    ("se_resnet50:gate=softmax", "unknown gate 'softmax'; choose one of sigmoid, tanh, relu, hardsigmoid"),
    ("se_resnet50:squeeze=min", "unknown squeeze 'min'; choose one of avg, max, none"),
    ("se_resnet50:layout=caffe", "unknown layout 'caffe'; choose one of torchvision, paper"),
    ("se_resnet50:bias=maybe", "bias must be on or off, got bias=maybe"),
    ("", "model argument '' has no model name"),
    (":r=8", "model argument ':r=8' has no model name"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[t or "<empty>" for t, _ in ERRORS])
def test_bad_argument_is_refused(text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)):
        parse_model_spec(text)


def test_errors_are_value_errors_for_python_callers() -> None:
    with pytest.raises(ValueError, match="r must be a positive integer"):
        parse_model_spec("se_resnet50:r=0")
