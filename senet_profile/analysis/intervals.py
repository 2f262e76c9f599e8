"""Bootstrap intervals of a median, over one process's samples or pooled over several processes.

An interval is given only from ``MIN_CI_SAMPLES`` samples up. A percentile bootstrap of a median puts its
ends on single order statistics: with 2 samples it is just [min, max], and in a simulation (1,500 draws
each, normal, lognormal and t(3) data) its 95 % interval covered the true median 92-93 % of the time at
10-15 samples, 93-94 % at 20 and 94-95 % at 30. Twenty is the smallest count at which it came within
about 1.5 points of what it claims on all three; below it the interval is ``n/a`` with the reason.

Samples taken in several fresh processes are grouped by process. Their interval is a two-stage
(hierarchical) bootstrap: draw the processes with replacement, then each drawn process's samples with
replacement, and take the median of the pooled draw. What moves a figure from one process to the next
(heap, memory placement, the core it ran on) then widens the interval, as it moves the next run's figure.
Resampling both stages counts each process's own sampling noise twice, so the interval errs wide: with
four processes that agree it is about 1.3-1.5 times the interval of the same samples taken as one; with
few processes the first stage alone would err narrow, by about (k - 1) / k in variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_CI_SAMPLES = 20
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
_BOOTSTRAP_CHUNK = 1 << 20  # resampled values drawn at a time, so memory stays bounded for long runs


@dataclass(frozen=True)
class Interval:
    """A 95 % interval, or ``None`` ends with the reason there is none."""

    low: float | None
    high: float | None
    reason: str = ""

    @property
    def halfwidth(self) -> float | None:
        """Half the interval's width, or None when there is no interval."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


def too_few(count: int, unit: str = "samples") -> str:
    """The reason a count of samples (or pairs) gets no interval, or ``""`` when it is enough."""
    if count >= MIN_CI_SAMPLES:
        return ""
    return f"{count} {unit}, fewer than the {MIN_CI_SAMPLES} an interval needs"


def bootstrap_median_ci(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median of ``values``; the same values always give the same interval."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    per_draw = max(1, _BOOTSTRAP_CHUNK // data.size)
    medians = np.concatenate(
        [
            np.median(
                data[rng.integers(0, data.size, size=(min(per_draw, resamples - done), data.size))], axis=1
            )
            for done in range(0, resamples, per_draw)
        ]
    )
    return _percentiles(medians, level)


def hierarchical_median_ci(
    groups: Sequence[Sequence[float]],
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Two-stage bootstrap CI of the pooled median: groups drawn with replacement, then values within each."""
    arrays = [np.asarray(group, dtype=float) for group in groups if len(group)]
    if not arrays:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    medians = np.empty(resamples)
    for draw in range(resamples):
        chosen = rng.integers(0, len(arrays), size=len(arrays))
        pooled = [arrays[g][rng.integers(0, arrays[g].size, size=arrays[g].size)] for g in chosen]
        medians[draw] = np.median(np.concatenate(pooled))
    return _percentiles(medians, level)


def _percentiles(medians: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(medians, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def median_interval(groups: Sequence[Sequence[float]], *, unit: str = "samples") -> Interval:
    """95 % interval of the pooled median of ``groups`` (one per process), or n/a below MIN_CI_SAMPLES."""
    count = sum(len(group) for group in groups)
    reason = too_few(count, unit)
    if reason:
        return Interval(None, None, reason)
    filled = [group for group in groups if len(group)]
    if len(filled) == 1:
        return Interval(*bootstrap_median_ci(filled[0]))
    return Interval(*hierarchical_median_ci(filled))


def split(values: Sequence[float], sizes: Sequence[int]) -> list[list[float]]:
    """``values`` cut into consecutive groups of ``sizes`` (one group when ``sizes`` is empty)."""
    if not sizes:
        return [list(values)]
    if sum(sizes) != len(values):
        raise ValueError(f"group sizes {list(sizes)} do not add up to {len(values)} values")
    ends = np.cumsum(sizes)
    return [list(values[end - size : end]) for size, end in zip(sizes, ends, strict=True)]
