"""The headline check: ``senet-profile compare resnet50 se_resnet50 --metrics latency``, five times over.

Each run is a fresh process with the CLI's defaults (batch 1, one thread, a steady heap, a 48 s budget split
over fresh worker processes), timed from start to exit. The figure (``latency_overhead_repeat``, recorded
and shown, not judged against the baseline) is the spread of the overheads in percentage points, with
each run's overhead, 95 % CI, pairs and wall time, and how many of the other runs' estimates each interval
holds. The benchmark fails when a run fails, when a run's interval misses its own estimate, or when the runs
do not agree within +/-1.5 points; whether each interval came within +/-1 pp inside 60 s of wall time, and
the cross-coverage, are recorded and depend on how noisy the machine is.
"""

from __future__ import annotations

from senet_profile.history.repeat import COMMAND, coverage_table, one_run

RUNS = 5
AGREEMENT_PP = 1.5


def _repeat() -> list[dict]:
    return [one_run() for _ in range(RUNS)]


def test_cli_repeat(benchmark) -> None:
    runs = benchmark.pedantic(_repeat, rounds=1, iterations=1)
    table = coverage_table(runs)
    spread = float(table["overhead_pct"].max() - table["overhead_pct"].min())
    benchmark.extra_info["figure"] = {
        "model": "resnet50 -> se_resnet50",
        "metric": "latency_overhead_repeat",
        "setting": "cli defaults, " + " ".join(COMMAND[3:5]),
        "unit": "pp",
        "value": spread,
        "deterministic": False,
        "informational": True,
        "runs": runs,
        "max_halfwidth_pp": float(table["halfwidth_pp"].max()),
        "max_wall_s": float(table["wall_s"].max()),
        "others_inside": int(table["others_inside"].sum()),
        "cross_checks": int(table["others"].sum()),
    }
    with_interval = [run for run in runs if run["ci_low"] is not None and run["ci_high"] is not None]
    assert all(run["ci_low"] <= run["overhead_pct"] <= run["ci_high"] for run in with_interval)
    assert spread <= 2 * AGREEMENT_PP, runs
