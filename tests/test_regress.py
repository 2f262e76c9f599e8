"""Regression checks: exact deterministic figures, timing judged by intervals, thresholds from strings."""

from __future__ import annotations

import copy

import pytest

from senet_profile.errors import UserInputError
from senet_profile.history.regress import DEFAULT_TIMING_TOLERANCE_PP, Threshold, class_note, compare_records


def _record(
    machine_class: str = "cpu-2c", *, params: int = 28_088_024, overhead: float = 8.0, hw: float = 1.0
):
    figures = [
        {"model": "se_resnet50", "metric": "params", "setting": "1x3x224x224", "unit": "params",
         "value": params, "deterministic": True},
        {"model": "resnet50 -> se_resnet50", "metric": "latency_overhead", "setting": "cpu infer b1",
         "unit": "%", "value": overhead, "ci_low": overhead - hw, "ci_high": overhead + hw,
         "deterministic": False},
    ]  # fmt: skip
    return {"machine": {"machine_class": machine_class}, "figures": figures}


def _verdicts(findings):
    return {(f.model, f.metric): f.verdict for f in findings}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latency_overhead:2pp", Threshold("latency_overhead", 2.0, "pp")),
        ("macs:0.5%", Threshold("macs", 0.5, "%")),
        ("params:0", Threshold("params", 0.0, "")),
        ("memory_*:1%", Threshold("memory_*", 1.0, "%")),
    ],
)
def test_threshold_parse(text, expected):
    assert Threshold.parse(text) == expected
    assert Threshold.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["latency_overhead", "latency_overhead:", "x:-1pp", "x:2ms", ":2pp", "x:two"]
)
def test_threshold_parse_refuses(text):
    with pytest.raises(UserInputError, match="bad threshold"):
        Threshold.parse(text)


def test_unchanged_record_passes():
    findings = compare_records(_record(), _record())
    assert not any(f.failed for f in findings)
    assert set(_verdicts(findings).values()) == {"ok"}


def test_deterministic_change_names_model_metric_and_both_values():
    findings = compare_records(_record(), _record(params=26_939_624))
    failed = [f for f in findings if f.failed]
    assert len(failed) == 1
    assert failed[0].model == "se_resnet50" and failed[0].metric == "params"
    assert "28,088,024" in failed[0].message and "26,939,624" in failed[0].message


def test_deterministic_decrease_also_fails():
    assert any(f.failed for f in compare_records(_record(params=2), _record(params=1)))


def test_threshold_loosens_a_deterministic_metric():
    findings = compare_records(_record(params=1000), _record(params=1004), [Threshold.parse("params:0.5%")])
    assert not any(f.failed for f in findings)
    assert any(
        f.failed
        for f in compare_records(_record(params=1000), _record(params=1006), [Threshold.parse("params:0.5%")])
    )


def test_noisy_timing_within_intervals_passes():
    # A different median whose interval still overlaps the baseline's (widened by the tolerance) is noise.
    shifted = _record(overhead=8.0 + 2 * 1.0 + DEFAULT_TIMING_TOLERANCE_PP - 0.01)
    assert not any(f.failed for f in compare_records(_record(), shifted))


def test_timing_regression_beyond_tolerance_fails():
    slower = _record(overhead=8.0 + 2 * 1.0 + DEFAULT_TIMING_TOLERANCE_PP + 0.5)
    findings = compare_records(_record(), slower)
    assert _verdicts(findings)[("resnet50 -> se_resnet50", "latency_overhead")] == "regression"


def test_timing_tolerance_from_threshold():
    slower = _record(overhead=13.0)  # interval [12, 14] against [7, 9]: 3 pp above
    assert any(
        f.failed for f in compare_records(_record(), slower, [Threshold.parse("latency_overhead:2pp")])
    )
    assert not any(
        f.failed for f in compare_records(_record(), slower, [Threshold.parse("latency_overhead:4pp")])
    )
    with pytest.raises(UserInputError, match="percentage points"):
        compare_records(_record(), slower, [Threshold.parse("latency_overhead:4%")])


def test_faster_is_improved_not_regression():
    findings = compare_records(_record(), _record(overhead=1.0))
    assert _verdicts(findings)[("resnet50 -> se_resnet50", "latency_overhead")] == "improved"


def test_other_machine_class_compares_deterministic_only():
    other = _record("gpu-16c", overhead=50.0)
    findings = compare_records(_record(), other)
    assert [(f.metric, f.verdict) for f in findings] == [("params", "ok"), ("latency_overhead", "unjudged")]
    assert "gpu-16c" in findings[1].message and not findings[1].failed
    assert "timing figures are compared only within one class" in class_note(_record(), other)


def test_missing_and_new_figures():
    baseline, current = _record(), copy.deepcopy(_record())
    current["figures"] = [f for f in current["figures"] if f["metric"] != "params"]
    current["figures"].append({**baseline["figures"][0], "model": "se_resnet101"})
    verdicts = _verdicts(compare_records(baseline, current))
    assert verdicts[("se_resnet50", "params")] == "regression"
    assert verdicts[("se_resnet101", "params")] == "new"
    without_timing = copy.deepcopy(baseline)
    without_timing["figures"] = without_timing["figures"][:1]
    assert (
        _verdicts(compare_records(baseline, without_timing))[("resnet50 -> se_resnet50", "latency_overhead")]
        == "missing"
    )


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_a_timing_figure_without_an_interval_is_not_judged(side):
    baseline, current = _record(overhead=8.0), _record(overhead=20.0)  # far slower: a regression if judged
    few = baseline if side == "baseline" else current
    few["figures"][1]["samples"] = 2  # an interval was recorded, but from two pairs
    findings = compare_records(baseline, current)
    assert _verdicts(findings)[("resnet50 -> se_resnet50", "latency_overhead")] == "info"
    assert not any(f.failed for f in findings)
    message = next(f.message for f in findings if f.metric == "latency_overhead")
    assert "no interval" in message and "not judged" in message
    missing = _record(overhead=20.0)
    missing["figures"][1]["ci_low"] = missing["figures"][1]["ci_high"] = None
    assert (
        _verdicts(compare_records(_record(), missing))[("resnet50 -> se_resnet50", "latency_overhead")]
        == "info"
    )
