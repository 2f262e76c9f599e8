"""The tool's own cost: its resnet50 forward samples against a bare ``time.perf_counter`` loop's.

``timing_session`` hands out what ``measure_single`` times (the model's prepared copy, its step and the
sampler that reads the clock and the page-fault counter); a bare loop times the caller's own model with two
``perf_counter`` reads and nothing else. They alternate sample by sample (tool, bare, bare, tool, ...) in
one process under the same threads, inference mode and heap, so drift falls on both alike. The figure
(``tool_cost``) is the median over pairs of tool / bare - 1, in percent, with its bootstrap 95 % CI; the
benchmark fails only when that interval lies wholly outside +/-2 %.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

import torch

from senet_profile.analysis.latency import timing_session
from senet_profile.catalog.registry import get_model
from senet_profile.history.bench import tool_cost_figure
from senet_profile.setting import Setting

MODEL = "resnet50"
QUICK_PAIRS = 100
FULL_PAIRS = 400
TARGET_PCT = 2.0


def _bare_sample(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = perf_counter()
    model(x)
    return perf_counter() - start


def _interleaved(model: torch.nn.Module, threads: int, pairs: int) -> tuple[list[float], list[float]]:
    options = Setting(threads=threads, warmup=1).for_latency()
    x = torch.randn(1, 3, 224, 224)
    bare: list[float] = []
    with timing_session(model, options) as tool:
        model(x)  # the bare side's warm-up call
        take: tuple[Callable[[], None], ...] = (tool.sample, lambda: bare.append(_bare_sample(model, x)))
        for turn in range(pairs):
            first, second = (0, 1) if turn % 2 == 0 else (1, 0)
            take[first]()
            take[second]()
    return tool.times, bare


def test_tool_cost(benchmark, threads: int, full: bool) -> None:
    model = get_model(MODEL, device="cpu").eval()
    pairs = FULL_PAIRS if full else QUICK_PAIRS
    started = perf_counter()
    tool, bare = benchmark.pedantic(_interleaved, args=(model, threads, pairs), rounds=1, iterations=1)
    figure = tool_cost_figure(MODEL, tool, bare, threads=threads, wall_s=perf_counter() - started)
    benchmark.extra_info["figure"] = figure
    assert len(tool) == len(bare) == pairs
    assert figure["ci_low"] <= TARGET_PCT and figure["ci_high"] >= -TARGET_PCT, figure
