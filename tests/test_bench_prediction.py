"""The bench records, for each timed pair, what FLOPs and the machine model predicted and the error."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from senet_profile import api
from senet_profile.history.bench import BenchCase, prediction_fields
from senet_profile.setting import Setting
from tests.test_overhead import MACHINE


def test_inference_pair_gets_both_predictions_and_the_error() -> None:
    case = BenchCase("resnet18", "se_resnet18", Setting(batch_size=1, input_size=(224, 224)))
    explanation = api.explain(case.base, case.candidate, setting=case.setting, measure=False, machine=MACHINE)
    fields = prediction_fields(case, SimpleNamespace(overhead_pct=5.0), explanation)
    assert fields["flops_pct"] == pytest.approx(87_040 / 1_814_073_344 * 100)
    assert fields["predicted_pct"] > fields["flops_pct"]  # the squeeze and scale move bytes for no MACs
    assert fields["prediction_error_pp"] == pytest.approx(fields["predicted_pct"] - 5.0)
    assert fields["prediction_note"] == "machine model cpu fp32 threads=1"


def test_training_pair_is_not_priced() -> None:
    case = BenchCase("resnet18", "se_resnet18", Setting(batch_size=8, mode="train"))
    fields = prediction_fields(case, SimpleNamespace(overhead_pct=5.0), None)
    assert fields["predicted_pct"] is None and "inference only" in fields["prediction_note"]
