"""Issue 3's headline check: ``senet-profile compare resnet50 se_resnet50 --metrics latency``, three times.

Each run is a fresh process with the CLI's defaults (batch 1, one thread, a steady heap, a 48 s budget),
timed from start to exit. The figure (``latency_overhead_repeat``, recorded and shown, not judged against
the baseline) is the spread of the three overheads in percentage points, with each run's overhead, 95 %
CI, pairs and wall time beside it. The benchmark fails when a run fails or when the three do not agree
within +/-1.5 points (a spread above 3 pp); whether each interval came within +/-1 pp inside 60 s of wall
time is recorded, and depends on how noisy the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from time import perf_counter

RUNS = 3
AGREEMENT_PP = 1.5
COMMAND = ("compare", "resnet50", "se_resnet50", "--metrics", "latency", "--format", "json")


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("senet-profile")
    return [str(script)] if script.exists() else [sys.executable, "-m", "senet_profile.cli"]


def _one_run() -> dict:
    started = perf_counter()
    done = subprocess.run([*_cli(), *COMMAND], capture_output=True, text=True, check=False)
    wall_s = perf_counter() - started
    assert done.returncode == 0, done.stderr
    latency = next(record for record in json.loads(done.stdout) if record["metric"] == "latency")
    return {
        "overhead_pct": latency["overhead_pct"],
        "ci_low": latency["ci_low"],
        "ci_high": latency["ci_high"],
        "pairs": latency["samples"],
        "wall_s": wall_s,
    }


def _repeat() -> list[dict]:
    return [_one_run() for _ in range(RUNS)]


def test_cli_repeat(benchmark) -> None:
    runs = benchmark.pedantic(_repeat, rounds=1, iterations=1)
    overheads = [run["overhead_pct"] for run in runs]
    spread = max(overheads) - min(overheads)
    halfwidths = [(run["ci_high"] - run["ci_low"]) / 2 for run in runs]
    benchmark.extra_info["figure"] = {
        "model": "resnet50 -> se_resnet50",
        "metric": "latency_overhead_repeat",
        "setting": "cli defaults, " + " ".join(COMMAND[3:5]),
        "unit": "pp",
        "value": spread,
        "deterministic": False,
        "informational": True,
        "runs": runs,
        "max_halfwidth_pp": max(halfwidths),
        "max_wall_s": max(run["wall_s"] for run in runs),
    }
    assert all(run["ci_low"] <= run["overhead_pct"] <= run["ci_high"] for run in runs)
    assert spread <= 2 * AGREEMENT_PP, runs
