"""Start-up cost of the command line, as fresh processes timed from start to exit.

- ``senet-profile --help`` and ``senet-profile list`` against ``python -c "import sys"``: the target is
  1.5 x the bare interpreter's time + 0.5 s (both import neither torch nor pandas);
- the static ``senet-profile compare resnet50 se_resnet50`` against a bare process that imports
  torchvision and builds two ResNet-50s (the floor any tool that counts built models pays);
- ``senet-profile paper`` (every model of the paper's figures built and traced): target 10 s.

Runs alternate (bare, tool, tool, bare, ...) so that drift on a shared machine falls on both alike; each
figure is the median over runs, recorded with every run's time. The help and list figures fail the bench
when their median misses the target.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from time import perf_counter

import pytest

RUNS = 9
COMPARE_RUNS = 5
CLI = str(Path(sys.executable).with_name("senet-profile"))
BARE = [sys.executable, "-c", "import sys"]
BARE_BUILD = [
    sys.executable,
    "-c",
    "import torchvision\nfor _ in range(2):\n    torchvision.models.resnet50()",
]


def _wall(command: list[str]) -> float:
    start = perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return perf_counter() - start


def _alternating(bare: list[str], tool: list[str], runs: int) -> tuple[list[float], list[float]]:
    bare_times: list[float] = []
    tool_times: list[float] = []
    for turn in range(runs):
        order = ((bare, bare_times), (tool, tool_times))
        for command, times in order if turn % 2 == 0 else order[::-1]:
            times.append(_wall(command))
    return bare_times, tool_times


def _figure(metric: str, setting: str, value: float, **extra: object) -> dict:
    unit = "x" if metric.endswith("ratio") else "s"
    return {"model": "senet-profile", "metric": metric, "setting": setting, "unit": unit, "value": value,
            "deterministic": False, "informational": True, **extra}  # fmt: skip


@pytest.mark.parametrize("args", [["--help"], ["list"]], ids=["help", "list"])
def test_light_command_start_up(benchmark, args: list[str]) -> None:
    bare, tool = benchmark.pedantic(_alternating, args=(BARE, [CLI, *args], RUNS), rounds=1, iterations=1)
    bare_s, tool_s = statistics.median(bare), statistics.median(tool)
    target = 1.5 * bare_s + 0.5
    benchmark.extra_info["figure"] = _figure(
        f"cli_start_{args[0].strip('-')}", f"{RUNS} runs, median", tool_s,
        bare_python_s=bare_s, target_s=target, runs_s=tool, bare_runs_s=bare, within_target=tool_s <= target,
    )  # fmt: skip
    assert tool_s <= target, (tool_s, target)


# `compare --metrics static` against a bare import-and-build: target 1.1x; the default `compare` (counts,
# both passes' peaks on meta, the machine model's prediction from its stored file): target 2x. Recorded with
# whether each is within its target; the machine is shared, so the figure, not a pass/fail, is the result.
COMPARE_CASES = {
    "cli_static_compare_ratio": (["--metrics", "static"], 1.1),
    "cli_default_compare_ratio": ([], 2.0),
}


@pytest.mark.parametrize("metric", list(COMPARE_CASES))
def test_compare_against_bare_import_and_build(benchmark, metric: str) -> None:
    extra, target = COMPARE_CASES[metric]
    compare = [CLI, "compare", "resnet50", "se_resnet50", *extra]
    bare, tool = benchmark.pedantic(
        _alternating, args=(BARE_BUILD, compare, COMPARE_RUNS), rounds=1, iterations=1
    )
    ratios = [t / b for t, b in zip(tool, bare, strict=True)]
    setting = f"{COMPARE_RUNS} runs, median of run-pair ratios"
    benchmark.extra_info["figure"] = _figure(
        metric, setting, statistics.median(ratios),
        compare_s=statistics.median(tool), bare_import_build_s=statistics.median(bare), runs_s=tool,
        ratio_of_medians=statistics.median(tool) / statistics.median(bare),
        bare_runs_s=bare, target=target, within_target=statistics.median(ratios) <= target,
    )  # fmt: skip


PAPER_RUNS = 3
PAPER_TARGET_S = 10.0  # the target, recorded as within_target
# The benchmark fails only past this: medians of 8.8-13.3 s were seen on the shared 2-core machine, and the
# command took 18.7 s before its models were counted once each in worker processes.
PAPER_GUARD_S = 15.0


def _paper_runs(folder: Path) -> list[float]:
    return [_wall([CLI, "paper", "--results", str(folder), "--format", "csv"]) for _ in range(PAPER_RUNS)]


def test_paper_command_wall_time(benchmark, tmp_path: Path) -> None:
    times = benchmark.pedantic(_paper_runs, args=(tmp_path,), rounds=1, iterations=1)
    median = statistics.median(times)
    benchmark.extra_info["figure"] = _figure(
        "cli_paper_wall", f"{PAPER_RUNS} runs, median", median, runs_s=times, target_s=PAPER_TARGET_S,
        within_target=median <= PAPER_TARGET_S,
    )  # fmt: skip
    assert median <= PAPER_GUARD_S, times
