"""Change-points: a real step is found where it is; pure noise shows (almost) none; marks name the run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from senet_profile.history.changepoints import ALPHA, find_shifts, mark_shifts, split_share


def test_one_real_shift_is_found_where_it_is() -> None:
    rng = np.random.default_rng(7)
    series = rng.normal(5.0, 0.5, 24)
    series[14:] += 1.5  # a step of 3 sigma after run 14
    shifts = find_shifts(series)
    assert [cut for cut, _ in shifts] == [14]
    assert shifts[0][1] <= ALPHA


def test_pure_noise_false_positive_rate_on_100_series() -> None:
    rng = np.random.default_rng(2026)
    flagged = sum(bool(find_shifts(rng.normal(5.0, 0.5, 20))) for _ in range(100))
    # Observed: 2 of 100 series (2 %) with seed 2026, near the test's 1 % level.
    assert flagged <= 3, f"{flagged} of 100 pure-noise series reported a shift"


def test_two_shifts_and_short_or_flat_series() -> None:
    rng = np.random.default_rng(3)
    series = np.concatenate([rng.normal(0, 0.3, 12), rng.normal(2, 0.3, 12), rng.normal(4, 0.3, 12)])
    assert [cut for cut, _ in find_shifts(series)] == [12, 24]
    assert find_shifts([1.0, 1.0, 5.0, 5.0, 5.0]) == []  # too short to tell from noise
    assert find_shifts([2.0] * 12) == []


def test_split_share_is_the_least_squares_gain() -> None:
    values = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    assert split_share(values)[0] == 1.0  # one split explains all the variance
    assert split_share(np.zeros((1, 6)))[0] == 0.0


def test_mark_shifts_names_run_commit_and_size_per_series() -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(4.0, 0.2, 16)
    values[10:] += 2.0
    history = pd.DataFrame(
        {
            "time": [f"2026-01-{day:02d}T00:00:00+00:00" for day in range(1, 17)],
            "commit": [f"c{day:02d}" for day in range(1, 17)],
            "machine_class": "m",
            "pair": "a -> b",
            "setting": "cpu infer b1",
            "overhead_pct": values,
        }
    )
    noise = history.assign(setting="cpu infer b8", overhead_pct=rng.normal(4.0, 0.2, 16))
    shifts = mark_shifts(pd.concat([history, noise]))
    assert len(shifts) == 1
    shift = shifts.iloc[0]
    assert (shift["setting"], shift["commit"], shift["time"]) == (
        "cpu infer b1",
        "c11",
        "2026-01-11T00:00:00+00:00",
    )
    assert abs(shift["shift_pp"] - 2.0) < 0.4
