"""Does a latency interval hold up in the next process? Repeat one CLI comparison and cross-check the runs.

Each run is a fresh ``senet-profile`` process with the CLI's defaults; from its JSON output comes the
paired overhead (``latency_overhead``: median of per-pair ratios) with its 95 % CI and pair count, and its
wall time from start to exit. ``coverage_table`` then asks, of each run's interval, how many of the other
runs' point estimates fall inside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

import pandas as pd

COMMAND = ("compare", "resnet50", "se_resnet50", "--metrics", "latency", "--format", "json")


def cli() -> list[str]:
    """How to start the CLI from this interpreter's environment."""
    script = Path(sys.executable).with_name("senet-profile")
    return [str(script)] if script.exists() else [sys.executable, "-m", "senet_profile.cli"]


def one_run(command: Sequence[str] = COMMAND) -> dict:
    """One fresh process of ``senet-profile <command>``: its paired overhead, interval, pairs, wall time."""
    started = perf_counter()
    done = subprocess.run([*cli(), *command], capture_output=True, text=True, check=False)
    wall_s = perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"senet-profile {' '.join(command)} failed: {done.stderr.strip()}")
    paired = next(record for record in json.loads(done.stdout) if record["metric"] == "latency_overhead")
    return {
        "overhead_pct": paired["overhead_pct"],
        "ci_low": paired["ci_low"],
        "ci_high": paired["ci_high"],
        "pairs": paired["samples"],
        "wall_s": wall_s,
    }


def coverage_table(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per run: its overhead, interval, half-width, and how many other runs' estimates it holds."""
    rows = []
    for index, run in enumerate(runs):
        low, high = run["ci_low"], run["ci_high"]
        others = [other["overhead_pct"] for k, other in enumerate(runs) if k != index]
        inside = None if low is None else sum(low <= value <= high for value in others)
        rows.append(
            {
                "run": index + 1,
                "overhead_pct": run["overhead_pct"],
                "ci_low": low,
                "ci_high": high,
                "halfwidth_pp": None if low is None else (high - low) / 2,
                "pairs": run["pairs"],
                "wall_s": run["wall_s"],
                "others_inside": inside,
                "others": len(others),
            }
        )
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, *, halfwidth_pp: float = 1.0, wall_s: float = 60.0) -> list[str]:
    """Lines saying whether the goals hold: every half-width and wall time within target, full coverage."""
    widths = table["halfwidth_pp"].dropna()
    covered = table["others_inside"].dropna()
    checks = int(table["others"].sum())
    width_line = "no run had an interval"
    if len(widths):
        width_line = (
            f"half-width: {widths.min():.2f} to {widths.max():.2f} pp; within {halfwidth_pp:g} pp in "
            f"{int((widths <= halfwidth_pp).sum())} of {len(table)} runs"
        )
    return [
        width_line,
        f"wall time: {table['wall_s'].min():.1f} to {table['wall_s'].max():.1f} s; within {wall_s:g} s in "
        f"{int((table['wall_s'] <= wall_s).sum())} of {len(table)} runs",
        f"cross-coverage: {int(covered.sum())} of {checks} other-run estimates inside the interval",
        f"spread of the estimates: {table['overhead_pct'].max() - table['overhead_pct'].min():.2f} pp",
    ]
