"""Intervals of a median: none below the minimum sample count, and pooled over processes."""

from __future__ import annotations

import numpy as np
import pytest

from senet_profile.analysis.intervals import (
    MIN_CI_SAMPLES,
    bootstrap_median_ci,
    hierarchical_median_ci,
    median_interval,
    split,
    too_few,
)


def test_no_interval_below_the_minimum_sample_count():
    assert MIN_CI_SAMPLES >= 10
    values = np.random.default_rng(0).normal(0.0, 1.0, size=MIN_CI_SAMPLES).tolist()
    short = median_interval([values[:-1]])
    assert short.low is None and short.high is None and short.halfwidth is None
    assert short.reason == f"{MIN_CI_SAMPLES - 1} samples, fewer than the {MIN_CI_SAMPLES} an interval needs"
    full = median_interval([values])
    assert full.reason == "" and full.low < float(np.median(values)) < full.high
    assert (full.low, full.high) == bootstrap_median_ci(values)
    assert too_few(MIN_CI_SAMPLES) == "" and too_few(2).startswith("2 samples")


def test_two_samples_get_no_interval_even_split_over_processes():
    assert median_interval([[1.0], [2.0]], unit="pairs").reason.startswith("2 pairs")


def test_pooled_interval_covers_the_spread_between_processes():
    rng = np.random.default_rng(3)
    # Four processes whose medians sit 0, 1, 2 and 3 apart, each with tight samples around its own.
    groups = [(shift + rng.normal(0.0, 0.2, size=60)).tolist() for shift in (0.0, 1.0, 2.0, 3.0)]
    pooled = median_interval(groups)
    flat = bootstrap_median_ci([v for g in groups for v in g])
    assert pooled.low < 1.0 and pooled.high > 2.0  # the middle processes' medians are inside
    assert pooled.high - pooled.low > 2 * (flat[1] - flat[0])
    assert (pooled.low, pooled.high) == hierarchical_median_ci(groups)  # the same samples, the same interval


def test_processes_that_agree_give_a_somewhat_wider_interval_than_one_process_would():
    # Resampling both stages counts each process's own sampling noise twice: the interval errs wide, by
    # about half here, never narrow.
    rng = np.random.default_rng(4)
    groups = [rng.normal(5.0, 1.0, size=100).tolist() for _ in range(4)]
    pooled = median_interval(groups)
    flat = bootstrap_median_ci([v for g in groups for v in g])
    assert (flat[1] - flat[0]) / 2 < pooled.halfwidth < (flat[1] - flat[0])


def test_split_cuts_values_by_process():
    assert split([1, 2, 3, 4, 5], (2, 3)) == [[1, 2], [3, 4, 5]]
    assert split([1, 2], ()) == [[1, 2]]
    with pytest.raises(ValueError, match="do not add up"):
        split([1, 2, 3], (1, 1))
