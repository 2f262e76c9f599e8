"""The record schema: what a valid figure, record and benchmark file is, and how a problem is named."""

from __future__ import annotations

import pytest

from senet_profile.history.records import new_record
from senet_profile.history.schema import benchmark_figures, check_record


def _timing(**change: object) -> dict:
    figure = {
        "model": "a -> b", "metric": "latency_overhead", "setting": "cpu infer b1", "unit": "%", "value": 5.0,
        "deterministic": False, "ci_low": 4.0, "ci_high": 6.0, "batch_size": 1, "mode": "infer",
    }  # fmt: skip
    return {**figure, **change}


def test_a_new_record_is_valid_and_kept_as_it_is() -> None:
    record = new_record("bench", [_timing(extra_detail=[1, 2])])
    assert check_record(record) is record


def test_a_figure_without_an_interval_is_valid_but_half_of_one_is_not() -> None:
    check_record(new_record("bench", [_timing(ci_low=None, ci_high=None)]))
    with pytest.raises(ValueError, match="both ci_low and ci_high"):
        check_record(new_record("bench", [_timing(ci_high=None)]))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"value": float("nan")}, "not a finite number"),
        ({"model": "a"}, "pair"),
        ({"batch_size": "1"}, "batch_size"),
        ({"deterministic": "no"}, "deterministic"),
        ({"unit": ""}, "unit"),
    ],
)
def test_a_malformed_figure_is_named(change: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        check_record(new_record("bench", [_timing(**change)]))


def test_many_problems_are_one_line() -> None:
    with pytest.raises(ValueError) as caught:
        check_record({"schema": 1})
    assert "\n" not in str(caught.value) and "more)" in str(caught.value)


def test_benchmark_figures_are_returned_and_an_empty_file_refused() -> None:
    figure = _timing()
    assert benchmark_figures({"benchmarks": [{"name": "x", "extra_info": {"figure": figure}}]}) == [figure]
    with pytest.raises(ValueError, match="no figures"):
        benchmark_figures({"benchmarks": [{"name": "x"}]})
