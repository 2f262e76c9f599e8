"""Repeat runs of the CLI comparison: the cross-coverage table and its verdict."""

from __future__ import annotations

import pandas as pd
import pytest

from senet_profile.history.repeat import coverage_table, verdict


def _run(overhead: float, halfwidth: float | None, pairs: int = 300, wall: float = 55.0) -> dict:
    low = None if halfwidth is None else overhead - halfwidth
    high = None if halfwidth is None else overhead + halfwidth
    return {"overhead_pct": overhead, "ci_low": low, "ci_high": high, "pairs": pairs, "wall_s": wall}


def test_each_interval_counts_the_other_runs_estimates_inside_it():
    runs = [_run(5.0, 1.0), _run(5.8, 0.5), _run(4.1, 0.8), _run(7.0, None, pairs=2)]
    table = coverage_table(runs)
    # [4.0, 6.0] holds 5.8 and 4.1; [5.3, 6.3] and [3.3, 4.9] hold none; the last run has no interval.
    assert list(table["others_inside"])[:3] == [2, 0, 0] and pd.isna(table["others_inside"].iloc[3])
    assert list(table["others"]) == [3, 3, 3, 3]
    assert list(table["halfwidth_pp"])[:3] == pytest.approx([1.0, 0.5, 0.8])
    lines = verdict(table, halfwidth_pp=0.9)
    assert lines[0] == "half-width: 0.50 to 1.00 pp; within 0.9 pp in 2 of 4 runs"
    assert lines[2] == "cross-coverage: 2 of 12 other-run estimates inside the interval"
    assert lines[3] == "spread of the estimates: 2.90 pp"
