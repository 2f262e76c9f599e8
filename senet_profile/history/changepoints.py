"""Change-points in a history: the runs where a pair's SE overhead shifted beyond the noise between runs.

Each series -- one pair, one setting, one machine class, in time order -- is cut by binary segmentation:
ruptures' ``Binseg`` (least-squares cost, segments of at least ``MIN_SEGMENT`` runs) finds the best single
split of a segment, and a permutation test decides whether it is real: the split's share of the segment's
sum of squares is compared with the best split's share in ``PERMUTATIONS`` shuffles of the same runs (fixed
seed: the same history always gives the same marks). A split whose p-value is at most ``ALPHA`` is a shift,
and both halves are searched again. The noise is thus the series' own run-to-run scatter, calibrated
exactly whatever the series' length -- no noise level to guess, and no trust in each run's own CI, which
understates the scatter between runs. On 100 series of pure Gaussian noise the test reports a shift in
about ``ALPHA`` of them (``tests/test_changepoints.py`` counts it); a step of 3 sigma in 20 runs is found.
A shift needs runs on both sides to be told from noise: with ``ALPHA`` = 1 %, about ten runs in all (five
a side) -- fewer runs can never reach it, since so few orderings exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MIN_SEGMENT = 3
PERMUTATIONS = 999
ALPHA = 0.01
SEED = 0
SERIES_KEYS = ["machine_class", "pair", "setting"]
SHIFT_COLUMNS = [*SERIES_KEYS, "time", "commit", "before_pct", "after_pct", "shift_pp", "p_value"]


def split_share(rows: np.ndarray) -> np.ndarray:
    """Per row: the largest share of its sum of squares that one split (``MIN_SEGMENT`` a side) removes."""
    n = rows.shape[1]
    k = np.arange(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    left = np.cumsum(rows, axis=1)[:, k - 1]
    total = rows.sum(axis=1, keepdims=True)
    mean_gap = left / k - (total - left) / (n - k)
    gain = k * (n - k) / n * mean_gap**2  # the least-squares cost a split at k removes
    squares = ((rows - rows.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(squares > 0, gain.max(axis=1) / squares, 0.0)


def _best_split(values: np.ndarray) -> int:
    """Where ruptures' binary segmentation splits ``values`` once (index of the first run after it)."""
    import ruptures

    algorithm = ruptures.Binseg(model="l2", min_size=MIN_SEGMENT, jump=1).fit(values.reshape(-1, 1))
    return int(algorithm.predict(n_bkps=1)[0])


def split_p_value(values: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = SEED) -> float:
    """Permutation p-value of the best split of ``values`` against shuffles of the same values."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(values, (permutations, 1)), axis=1)
    observed = split_share(values.reshape(1, -1))[0]
    return float((1 + np.count_nonzero(split_share(shuffled) >= observed - 1e-12)) / (1 + permutations))


def find_shifts(values: Sequence[float], *, alpha: float = ALPHA) -> list[tuple[int, float]]:
    """Each shift as (index of the first run after it, p-value), in order; none in a series too short."""
    found: list[tuple[int, float]] = []
    pending = [(0, len(values))]
    series = np.asarray(values, dtype=float)
    while pending:
        start, end = pending.pop()
        segment = series[start:end]
        if segment.size < 2 * MIN_SEGMENT or np.ptp(segment) == 0:
            continue
        p_value = split_p_value(segment)
        if p_value > alpha:
            continue
        cut = start + _best_split(segment)
        found.append((cut, p_value))
        pending += [(start, cut), (cut, end)]
    return sorted(found)


def mark_shifts(history: pd.DataFrame) -> pd.DataFrame:
    """Per series of ``history`` (``overhead_history``'s frame): each shift's run, commit, date and size."""
    rows = []
    for keys, series in history.groupby(SERIES_KEYS, sort=False):
        ordered = series.sort_values("time").reset_index(drop=True)
        values = ordered["overhead_pct"].astype(float).to_numpy()
        shifts = find_shifts(values)
        bounds = [0, *(cut for cut, _ in shifts), len(values)]
        for (cut, p_value), previous, following in zip(shifts, bounds, bounds[2:], strict=False):
            before, after = float(values[previous:cut].mean()), float(values[cut:following].mean())
            run = ordered.iloc[cut]
            where = dict(zip(SERIES_KEYS, keys, strict=True))
            rows.append(
                {
                    **where,
                    "time": run["time"],
                    "commit": run["commit"],
                    "before_pct": before,
                    "after_pct": after,
                    "shift_pp": after - before,
                    "p_value": p_value,
                }
            )
    return pd.DataFrame(rows, columns=SHIFT_COLUMNS)
