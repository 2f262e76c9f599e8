"""The Python API: profile / compare DataFrames, raw integers, user models, input sizes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

import senet_profile
from senet_profile.analysis.static import CONVENTION
from senet_profile.api import COMPARE_COLUMNS, PROFILE_COLUMNS, STATIC_METRICS, parse_input_size
from senet_profile.catalog.registry import parse_model_spec
from senet_profile.errors import UserInputError

METRICS = [
    "params",
    "params_se",
    "macs",
    "macs_se",
    "se_squeeze_ops",
    "se_gate_ops",
    "se_scale_ops",
    "se_other_ops",
    "macs_and_se_ops",
    "activations",
    "activations_se",
    "bytes_moved",
    "bytes_moved_se",
]
SMALL = (64, 64)


def by_metric(frame: pd.DataFrame, scope: str = "model") -> dict[str, pd.Series]:
    rows = frame[frame["scope"] == scope]
    assert rows["metric"].is_unique
    return {row["metric"]: row for _, row in rows.iterrows()}


@pytest.fixture(scope="module")
def resnet50_compare() -> pd.DataFrame:
    return senet_profile.compare("resnet50", "se_resnet50")


def test_documented_columns() -> None:
    assert PROFILE_COLUMNS == ["metric", "unit", "scope", "source", "value", "ci_low", "ci_high", "samples"]
    assert COMPARE_COLUMNS == [
        "metric",
        "unit",
        "scope",
        "source",
        "base",
        "candidate",
        "delta",
        "overhead_pct",
        "ci_low",
        "ci_high",
        "samples",
    ]
    assert [m.name for m in STATIC_METRICS] == METRICS


def test_profile_frame() -> None:
    frame = senet_profile.profile("se_resnet18", input_size=SMALL)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == PROFILE_COLUMNS
    assert list(frame["metric"]) == METRICS
    assert set(frame["scope"]) == {"model"}
    assert set(frame["source"]) == {"senet-profile"}
    units = dict(zip(frame["metric"], frame["unit"], strict=True))
    assert (units["params"], units["macs"], units["activations"], units["se_gate_ops"]) == (
        "params",
        "MACs",
        "elements",
        "ops",
    )
    assert frame.attrs["convention"] == CONVENTION
    assert frame.attrs["models"] == ["se_resnet18"]
    assert frame.attrs["input_shape"] == [1, 3, 64, 64]


def test_profile_values_have_a_numeric_dtype() -> None:
    frame = senet_profile.profile("se_resnet18", input_size=SMALL)
    assert frame["value"].dtype == "int64"  # static counts only: integers, exact
    assert by_metric(frame)["params"]["value"] == 11_778_592


def test_compare_frame(resnet50_compare: pd.DataFrame) -> None:
    frame = resnet50_compare
    assert list(frame.columns) == COMPARE_COLUMNS
    assert list(frame["metric"]) == METRICS
    assert frame.attrs["models"] == ["resnet50", "se_resnet50"]
    assert frame.attrs["input_shape"] == [1, 3, 224, 224]
    for column in ("base", "candidate", "delta"):
        assert frame[column].dtype == "int64", column
    assert frame["overhead_pct"].dtype == "float64"


def test_compare_resnet50_se_resnet50(resnet50_compare: pd.DataFrame) -> None:
    rows = by_metric(resnet50_compare)
    params = rows["params"]
    assert (params["base"], params["candidate"], params["delta"]) == (25_557_032, 28_088_024, 2_530_992)
    assert params["overhead_pct"] == pytest.approx(9.9033, abs=5e-5)
    assert params["overhead_pct"] == pytest.approx((28_088_024 - 25_557_032) / 25_557_032 * 100, rel=1e-12)
    macs = rows["macs"]
    assert (macs["base"], macs["candidate"]) == (4_089_184_256, 4_091_699_200)
    # A base of zero has no overhead in percent: None, not inf or NaN.
    assert rows["params_se"]["base"] == 0
    assert pd.isna(rows["params_se"]["overhead_pct"])
    assert rows["params_se"]["candidate"] == rows["params_se"]["delta"] == 2_530_992


def test_compare_by_stage_adds_paper_scopes() -> None:
    frame = senet_profile.compare("resnet18", "se_resnet18", input_size=SMALL, by_stage=True)
    assert list(dict.fromkeys(frame["scope"])) == [
        "model",
        "conv1",
        "conv2_x",
        "conv3_x",
        "conv4_x",
        "conv5_x",
        "head",
    ]
    per_stage = frame[(frame["metric"] == "params_se") & (frame["scope"] != "model")]
    model_row = by_metric(frame)["params_se"]
    assert sum(per_stage["candidate"]) == model_row["candidate"]
    assert by_metric(frame, "conv2_x")["params_se"]["candidate"] == 2 * (2 * 64 * 4 + 4 + 64)


def test_compare_by_class_lines_up_every_op_class() -> None:
    frame = senet_profile.compare("resnet18", "se_resnet18", input_size=SMALL, by_class=True)
    classes = frame[frame["scope"].str.startswith("class:")]
    moved = classes[classes["metric"] == "bytes_moved"].set_index("scope")
    assert moved.loc["class:se_scale", "base"] == 0  # no SE op ran in the base: a count of 0 ops, not unknown
    assert moved.loc["class:se_scale", "candidate"] > 0
    model_row = by_metric(frame)["bytes_moved"]
    assert sum(moved["candidate"]) == model_row["candidate"]
    assert sum(moved["base"]) == model_row["base"]
    se_classes = moved[moved.index.str.startswith("class:se_")]
    assert sum(se_classes["candidate"]) == by_metric(frame)["bytes_moved_se"]["candidate"]


def test_model_arguments_are_shown_canonically() -> None:
    frame = senet_profile.profile("se_resnet18:bias=on,r=8,stages=all", input_size=SMALL)
    assert frame.attrs["models"] == ["se_resnet18:r=8"]
    spec_frame = senet_profile.profile(parse_model_spec("se_resnet18:r=8"), input_size=SMALL)
    pd.testing.assert_frame_equal(frame, spec_frame)


def test_counts_scale_with_batch_size() -> None:
    one = by_metric(senet_profile.profile("se_resnet18", input_size=SMALL))
    three = by_metric(senet_profile.profile("se_resnet18", input_size=SMALL, batch_size=3))
    assert three["params"]["value"] == one["params"]["value"]
    for metric in ("macs", "macs_se", "activations", "se_scale_ops"):
        assert three[metric]["value"] == 3 * one[metric]["value"], metric


def test_users_torchvision_model_gets_its_se_share() -> None:
    model = torchvision.models.mobilenet_v3_small(weights=None)
    se_modules = [m for m in model.modules() if isinstance(m, torchvision.ops.SqueezeExcitation)]
    assert se_modules
    se_params = sum(p.numel() for m in se_modules for p in m.parameters())
    rows = by_metric(senet_profile.profile(model))
    assert rows["params"]["value"] == sum(p.numel() for p in model.parameters())
    assert rows["params_se"]["value"] == se_params > 0
    assert rows["macs_se"]["value"] > 0
    # One hardsigmoid per channel of every SE block (batch 1, 1x1 maps).
    assert rows["se_gate_ops"]["value"] == sum(m.fc2.out_channels for m in se_modules)
    # The user's model is not moved or touched.
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_users_model_is_named_by_its_class_and_reports_uncounted_ops() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.spare = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(self.conv(x), dim=1)

    with pytest.warns(senet_profile.api.UncountedOpWarning, match=r"aten\.cumsum has no counting rule"):
        frame = senet_profile.profile(Odd(), input_size=(4, 4))
    assert frame.attrs["models"] == ["Odd"]
    assert frame.attrs["unknown_ops"] == {"Odd": {"cumsum": 1}}
    assert frame.attrs["uncalled_modules"] == {"Odd": ["spare"]}


@pytest.mark.parametrize(
    ("text", "size"), [("224", (224, 224)), ("224x192", (224, 192)), ("32X48", (32, 48)), ("7", (7, 7))]
)
def test_parse_input_size(text: str, size: tuple[int, int]) -> None:
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["abc", "", "224x", "x224", "1.5", "224x192x3", "0", "-4", "224x0"])
def test_parse_input_size_refuses(text: str) -> None:
    with pytest.raises(UserInputError, match="input size must be N or HxW"):
        parse_input_size(text)


@pytest.mark.parametrize("batch_size", [0, -2])
@pytest.mark.parametrize("call", ["profile", "compare"])
def test_bad_batch_size_is_refused(call: str, batch_size: int) -> None:
    models = ["resnet18"] if call == "profile" else ["resnet18", "se_resnet18"]
    with pytest.raises(UserInputError, match=rf"batch size must be a positive integer, got {batch_size}"):
        getattr(senet_profile, call)(*models, batch_size=batch_size)


@pytest.mark.parametrize("input_size", [(0, 224), (224, -1)])
def test_bad_input_size_is_refused(input_size: tuple[int, int]) -> None:
    with pytest.raises(UserInputError, match="must be two positive integers"):
        senet_profile.profile("resnet18", input_size=input_size)


def test_bad_model_argument_is_refused() -> None:
    with pytest.raises(UserInputError, match="r=999 is larger than the 64 channels of stage conv2_x"):
        senet_profile.profile("se_resnet18:r=999")
