"""Knobs shared by the catalog's SE models, and the conversion of their values into an ``SEConfig``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from senet_profile.catalog.se import GATES, SCALES, SQUEEZES, SEConfig
from senet_profile.catalog.spec import Knob, bool_knob, choice_knob, positive_int_knob, stage_set_knob

PAPER_STAGES = (2, 3, 4, 5)
PLACEMENTS = ("standard", "pre", "post", "identity", "3x3")
LAYOUTS = ("torchvision", "paper")

R = positive_int_knob("r", 16, "reduction ratio: the SE bottleneck has C // r units")
WIDTH = positive_int_knob("width", None, "explicit SE bottleneck width, overriding C // r")
SQUEEZE = choice_knob("squeeze", "avg", SQUEEZES, "squeeze: global pooling, or none (NoSqueeze)")
GATE = choice_knob("gate", "sigmoid", GATES, "excitation gate")
BIAS = bool_knob("bias", True, "bias on the two SE FC layers")
SCALE = choice_knob(
    "scale", "mul", SCALES, "channel-wise scale: x * s, or residual + x * s in one op (axpy, Caffe's Axpy)"
)
SE_BLOCK_KNOBS: tuple[Knob, ...] = (R, WIDTH, SQUEEZE, GATE, BIAS, SCALE)

STAGES = stage_set_knob(
    "stages", PAPER_STAGES, "stages carrying SE, numbered as the paper's conv2_x..conv5_x"
)
PLACEMENT = choice_knob("placement", "standard", PLACEMENTS, "where SE sits in a residual block")
LAYOUT = choice_knob(
    "layout",
    "torchvision",
    LAYOUTS,
    "bottleneck stride on the 3x3 (torchvision) or the first 1x1 (paper, Caffe)",
)


def se_config(values: Mapping[str, Any]) -> SEConfig:
    """The ``SEConfig`` named by the SE block knobs among ``values``."""
    return SEConfig(**{knob.name: values[knob.name] for knob in SE_BLOCK_KNOBS})
