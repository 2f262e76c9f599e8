"""Paired latency: statistics on a fake clock, stop rules, option checks, and real tiny models."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from senet_profile.analysis import latency
from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.analysis.latency import (
    PairedLatency,
    bootstrap_median_ci,
    measure_paired,
    measure_single,
    pooled_side,
    side_stats,
)
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting


class FakeClock:
    """A clock that only moves when a fake model runs; shared by deep copies of the models."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def __deepcopy__(self, memo: dict) -> FakeClock:
        return self


class Ticking(nn.Module):
    """A model whose forward takes ``costs[i]`` fake seconds on its i-th call (cycling)."""

    def __init__(self, name: str, clock: FakeClock, costs: list[float]) -> None:
        super().__init__()
        self.name = name
        self.clock = clock
        self.costs = costs
        self.count = 0
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.costs[self.count % len(self.costs)]
        self.clock.calls.append(self.name)
        self.count += 1
        return x.mean() * self.weight


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(latency, "perf_counter", fake)
    return fake


TINY = {"input_size": (4, 4), "processes": 1}


def test_constant_costs_give_exact_overhead_and_stop_at_the_first_check(clock):
    base, cand = Ticking("A", clock, [1.0]), Ticking("B", clock, [1.1])
    result = measure_paired(base, cand, Setting(warmup=3, min_pairs=30, budget_s=1000.0, **TINY))
    assert result.pairs == 30  # CI has zero width at the first check
    assert result.overhead_pct == pytest.approx(10.0)
    assert result.ci_low_pct == pytest.approx(10.0) and result.ci_high_pct == pytest.approx(10.0)
    assert result.ci_reason == "" and result.processes == 1
    assert result.base.samples == pytest.approx((1.0,) * 30)
    assert result.candidate.median_s == pytest.approx(1.1)
    assert result.candidate.q1_s == pytest.approx(1.1) and result.candidate.q3_s == pytest.approx(1.1)
    assert result.wall_s == pytest.approx(3 * 2.1 + 30 * 2.1)  # warm-up included
    assert not result.noisy


def test_no_run_stops_on_its_interval_below_the_minimum_sample_count(clock):
    # min_pairs=10 asks for a first check at 10 pairs; no interval exists below MIN_CI_SAMPLES, so the first
    # check (and the stop, the CI having zero width) comes at 20.
    assert MIN_CI_SAMPLES == 20
    base, cand = Ticking("A", clock, [1.0]), Ticking("B", clock, [1.1])
    result = measure_paired(base, cand, Setting(warmup=0, min_pairs=10, budget_s=1000.0, **TINY))
    assert result.pairs == MIN_CI_SAMPLES


def test_interleaving_is_abba_after_warmup(clock):
    base, cand = Ticking("A", clock, [1.0]), Ticking("B", clock, [1.0])
    measure_paired(base, cand, Setting(warmup=2, min_pairs=4, budget_s=1000.0, **TINY))
    assert "".join(clock.calls) == "ABAB" + "ABBA" * 10  # up to MIN_CI_SAMPLES = 20 pairs


def test_fast_calls_are_repeated_within_a_sample(clock):
    # 4 ms calls are shorter than MIN_SAMPLE_S = 10 ms: three calls per sample, the sample is their mean.
    assert latency.MIN_SAMPLE_S == 0.01
    base, cand = Ticking("A", clock, [0.004]), Ticking("B", clock, [0.005])
    result = measure_paired(base, cand, Setting(warmup=1, min_pairs=2, budget_s=1000.0, **TINY))
    assert "".join(clock.calls) == "AB" + ("AAABBB" + "BBBAAA") * 10
    assert result.base.samples == pytest.approx((0.004,) * 20)
    assert result.overhead_pct == pytest.approx(25.0)


def test_budget_stops_a_run_that_does_not_converge(clock):
    # Candidate alternates 1.0 and 1.2 s against a constant 1.0 s base: ratios 0 % and 20 %, half each, so
    # the CI of the median stays about [0, 20] and only the budget can stop the run. A block of two pairs
    # costs 1 + 1.0 + 1.2 + 1 = 4.2 s: the 50 s budget (no warm-up) is passed after 12 blocks, 24 pairs.
    # Checks start at MIN_CI_SAMPLES = 20 pairs although min_pairs asks for 10.
    base, cand = Ticking("A", clock, [1.0]), Ticking("B", clock, [1.0, 1.2])
    seen: list[tuple[int, float]] = []
    options = Setting(warmup=0, min_pairs=10, budget_s=50.0, target_halfwidth_pp=1.0, **TINY)
    result = measure_paired(base, cand, options, progress=lambda pairs, hw: seen.append((pairs, hw)))
    assert result.pairs == 24
    assert result.wall_s == pytest.approx(12 * 4.2)
    assert result.overhead_pct == pytest.approx(10.0)  # median of twelve 0s and twelve 20s
    assert result.ci_low_pct <= result.overhead_pct <= result.ci_high_pct
    assert (result.ci_high_pct - result.ci_low_pct) / 2 > 1.0
    assert result.noisy
    assert [pairs for pairs, _ in seen] == [20, 22, 24]
    assert all(hw > 1.0 for _, hw in seen)


def test_overhead_is_median_of_pair_ratios_not_ratio_of_medians(clock):
    # Ratios per pair: 1.5/1, 2/4, 6/2 -> +50 %, -50 %, +200 %, repeated: median +50 %. The ratio of the
    # medians would be 2/2 - 1 = 0 %.
    base, cand = Ticking("A", clock, [1.0, 4.0, 2.0]), Ticking("B", clock, [1.5, 2.0, 6.0])
    options = Setting(warmup=0, min_pairs=6, budget_s=30.0, **TINY)  # 4 pairs take 19 s, 6 take 33 s
    result = measure_paired(base, cand, options)
    assert result.pairs == 6
    assert result.overhead_pct == pytest.approx(50.0)
    assert result.base.median_s == pytest.approx(2.0) and result.candidate.median_s == pytest.approx(2.0)
    # Six pairs are too few for an interval: none is given, and the reason says so.
    assert result.ci_low_pct is None and result.ci_high_pct is None
    assert result.ci_reason == "6 pairs, fewer than the 20 an interval needs"
    assert result.interval().halfwidth is None


class Faulting(Ticking):
    """A ticking model that also takes ``faults`` fake minor page faults per call, counted on the clock."""

    def __init__(self, name: str, clock: FakeClock, costs: list[float], faults: int) -> None:
        super().__init__(name, clock, costs)
        self.faults = faults

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.faults += self.faults
        return super().forward(x)


@pytest.mark.skipif(latency.getrusage is None, reason="no getrusage on this OS")
def test_page_faults_are_counted_per_call_on_each_side(clock, monkeypatch):
    clock.faults = 0
    monkeypatch.setattr(latency, "minor_page_faults", lambda: clock.faults)
    # 4 ms and 5 ms calls: three calls per sample, so faults must be divided by calls, not samples.
    base = Faulting("A", clock, [0.004], faults=0)
    cand = Faulting("B", clock, [0.005], faults=7)
    result = measure_paired(base, cand, Setting(warmup=1, min_pairs=4, budget_s=1000.0, **TINY))
    assert result.base.page_faults_per_call == 0
    assert result.candidate.page_faults_per_call == pytest.approx(7.0)


def test_timing_holds_the_heap_as_asked(clock, monkeypatch):
    seen: list[str] = []

    @contextmanager
    def held(name: str):
        seen.append(name)
        yield f"{name} (fake)"

    monkeypatch.setattr(latency, "heap_held", held)
    base, cand = Ticking("A", clock, [1.0]), Ticking("B", clock, [1.0])
    result = measure_paired(base, cand, Setting(min_pairs=2, allocator="as-is", **TINY))
    assert seen == ["as-is"] and result.heap == "as-is (fake)"
    measure_single(base, Setting(min_pairs=2, **TINY))
    assert seen == ["as-is", "steady"]  # steady by default


def test_measure_single_on_fake_clock(clock):
    model = Ticking("A", clock, [1.0, 3.0])
    stats = measure_single(model, Setting(warmup=1, min_pairs=4, budget_s=20.0, **TINY))
    # Warm-up takes the first 1.0 s of the 20 s budget; samples then go 3, 1, 3, 1, ... two at a time, and
    # the budget is passed after ten of them (1 + 5 * 4 = 21 s).
    assert stats.samples == (3.0, 1.0) * 5
    assert stats.median_s == pytest.approx(2.0)


def test_side_stats():
    stats = side_stats([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (stats.median_s, stats.q1_s, stats.q3_s) == (3.0, 2.0, 4.0)
    assert stats.samples == (5.0, 1.0, 4.0, 2.0, 3.0)


def test_bootstrap_is_deterministic_and_contains_the_median():
    values = np.random.default_rng(1).normal(5.0, 2.0, size=101).tolist()
    low, high = bootstrap_median_ci(values)
    assert (low, high) == bootstrap_median_ci(list(values))
    assert low < float(np.median(values)) < high
    assert bootstrap_median_ci([3.0] * 7) == (3.0, 3.0)
    narrow = bootstrap_median_ci(values * 16)  # more of the same data -> a narrower interval
    assert narrow[1] - narrow[0] < high - low


def test_bootstrap_of_many_values_is_drawn_in_chunks_and_still_deterministic():
    values = np.random.default_rng(2).exponential(1.0, size=5000)  # 2000 x 5000 draws: several chunks
    low, high = bootstrap_median_ci(values)
    assert (low, high) == bootstrap_median_ci(values.copy())
    assert low < float(np.median(values)) < high
    assert high - low < 0.1  # the median of Exp(1) is ln 2 with a standard error of about 0.014 here


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": -2},
        {"dtype": "fp8"},
        {"mode": "eval"},
        {"device": "tpu"},
        {"threads": 0},
        {"budget_s": 0.0},
        {"target_halfwidth_pp": -1.0},
        {"warmup": -1},
        {"min_pairs": 1},
        {"input_size": (0, 224)},
        {"allocator": "jemalloc"},
        {"processes": 0},
    ],
)
def test_bad_options_are_user_errors(kwargs):
    with pytest.raises(UserInputError) as caught:
        Setting(**{"processes": 1, **kwargs})
    assert "\n" not in str(caught.value)


def test_fp16_on_the_cpu_is_refused_before_timing():
    with pytest.raises(UserInputError, match="fp16 runs on CUDA only"):
        measure_single(nn.Identity(), Setting(dtype="fp16", processes=1))


def test_options_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        Setting("cpu", processes=1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Setting(processes=1).batch_size = 2  # type: ignore[misc]


def test_cuda_without_gpu_is_a_user_error(no_cuda: None):
    with pytest.raises(UserInputError, match="no CUDA device"):
        measure_single(nn.Identity(), Setting(device="cuda", processes=1))


def tiny_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    cand = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        SEBlock(8, config=SEConfig(r=4)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return base, cand


def assert_interval_or_reason(result: PairedLatency) -> None:
    """An interval around the overhead from MIN_CI_SAMPLES pairs up; below, none and the reason."""
    if result.pairs >= MIN_CI_SAMPLES:
        assert result.ci_low_pct <= result.overhead_pct <= result.ci_high_pct
    else:
        assert result.ci_low_pct is None and result.ci_high_pct is None
        assert result.ci_reason.startswith(f"{result.pairs} pairs")


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_real_tiny_models(mode):
    base, cand = tiny_pair()
    options = Setting(
        processes=1, mode=mode, budget_s=0.2, min_pairs=4, warmup=1, input_size=(8, 8), threads=1
    )
    result = measure_paired(base, cand, options)
    assert result.pairs >= 2 and result.pairs % 2 == 0
    assert len(result.base.samples) == len(result.candidate.samples) == result.pairs
    assert all(s > 0 for s in result.base.samples + result.candidate.samples)
    assert_interval_or_reason(result)
    assert result.options == options.for_latency()
    assert measure_single(cand, options).median_s > 0


def test_caller_models_are_not_changed():
    base, cand = tiny_pair()
    base.train()
    before = {name: p.detach().clone() for name, p in cand.named_parameters()}
    options = Setting(
        processes=1,
        mode="train",
        dtype="bf16",
        channels_last=True,
        budget_s=0.1,
        min_pairs=2,
        warmup=1,
        input_size=(8, 8),
    )
    measure_paired(base, cand, options)
    for name, param in cand.named_parameters():
        assert param.dtype == torch.float32 and param.grad is None
        assert torch.equal(param, before[name])
    assert cand[0].weight.is_contiguous()
    assert base.training and cand.training
    measure_single(base, Setting(processes=1, budget_s=0.05, min_pairs=2, warmup=0, input_size=(8, 8)))
    assert base.training  # infer mode ran eval() on a copy


def test_threads_are_restored_and_oversubscription_warns():
    before = torch.get_num_threads()
    options = Setting(
        processes=1, threads=(os.cpu_count() or 1) + 1, budget_s=0.05, min_pairs=2, input_size=(8, 8)
    )
    with pytest.warns(UserWarning, match="threads"):
        measure_single(tiny_pair()[0], options)
    assert torch.get_num_threads() == before


class RunsOutOfMemory(nn.Module):
    """Raises CUDA's out-of-memory error for batches above ``fits``."""

    def __init__(self, fits: int) -> None:
        super().__init__()
        self.fits = fits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.fits:
            raise torch.cuda.OutOfMemoryError("fake out of memory")
        return x.mean()


def test_out_of_memory_halves_the_batch_once_with_a_warning():
    options = Setting(processes=1, batch_size=8, budget_s=0.05, min_pairs=2, warmup=1, input_size=(4, 4))
    with pytest.warns(UserWarning, match="batch 4"):
        result = measure_paired(RunsOutOfMemory(4), RunsOutOfMemory(4), options)
    assert result.options.batch_size == 4


def test_out_of_memory_twice_is_a_user_error():
    options = Setting(processes=1, batch_size=8, budget_s=0.05, min_pairs=2, warmup=1, input_size=(4, 4))
    with pytest.warns(UserWarning), pytest.raises(UserInputError, match="out of memory"):
        measure_single(RunsOutOfMemory(2), options)
    with pytest.raises(UserInputError, match="batch 1"):
        measure_single(RunsOutOfMemory(0), Setting(processes=1, input_size=(4, 4)))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_cuda_paired(dtype):
    base, cand = tiny_pair()
    options = Setting(processes=1, device="cuda", dtype=dtype, budget_s=0.2, min_pairs=4, input_size=(8, 8))
    result = measure_paired(base, cand, options)
    assert result.pairs >= 2
    assert_interval_or_reason(result)
    assert next(base.parameters()).device.type == "cpu"


def test_pooled_side_keeps_each_process_count_and_weighs_page_faults_by_samples():
    first = side_stats([1.0, 2.0, 3.0], page_faults_per_call=0.0)
    second = side_stats([4.0], page_faults_per_call=8.0)
    pooled = pooled_side([first, second])
    assert pooled.samples == (1.0, 2.0, 3.0, 4.0) and pooled.process_sizes == (3, 1)
    assert pooled.median_s == pytest.approx(2.5)
    assert pooled.page_faults_per_call == pytest.approx(2.0)  # (0 * 3 + 8 * 1) / 4
    assert pooled_side([first, side_stats([4.0])]).page_faults_per_call is None


class FakeWorker:
    """Stands in for a worker process: records the deadline it is told and returns canned samples."""

    told: ClassVar[list[str]] = []
    started: ClassVar[list[int]] = []
    clock: ClassVar[list[float]] = [0.0]

    def __init__(self, folder, index, kind, options) -> None:
        FakeWorker.started.append(index)
        self.index, self.kind = index, kind

    def tell(self, line: str) -> None:
        FakeWorker.told.append(line)
        if line != "stop":
            FakeWorker.clock[0] = float(line)  # timing runs until the deadline it was told

    def stop(self) -> None:
        FakeWorker.told.append("stop")

    def result(self) -> PairedLatency:
        shift = float(self.index)  # each process 1 point slower than the one before
        base = side_stats([1.0] * 20)
        cand = side_stats([1.1 + shift / 100 + k * 1e-4 for k in range(20)])
        options = Setting(processes=1, input_size=(4, 4))
        return latency._summary(base, cand, options, wall_s=1.0, heap="steady")


@pytest.fixture
def fake_workers(monkeypatch: pytest.MonkeyPatch) -> type[FakeWorker]:
    FakeWorker.told, FakeWorker.started, FakeWorker.clock = [], [], [0.0]
    monkeypatch.setattr(latency, "_Worker", FakeWorker)
    monkeypatch.setattr(latency, "monotonic", lambda: FakeWorker.clock[0])
    return FakeWorker


def test_the_budget_is_split_over_fresh_processes_and_their_pairs_pooled(fake_workers):
    seen: list[tuple[int, float]] = []
    options = Setting(processes=4, budget_s=40.0, input_size=(4, 4))
    result = measure_paired(nn.Identity(), nn.Identity(), options, progress=lambda p, h: seen.append((p, h)))
    # Each worker is told to stop at what is left of the budget over the workers still to run: 10 s each.
    assert fake_workers.told == ["10.0", "20.0", "30.0", "40.0"]
    assert fake_workers.started == [0, 1, 2, 3]  # the next one starts while the current one times
    assert result.processes == 4 and result.pairs == 80
    assert result.base.process_sizes == (20, 20, 20, 20)
    assert [len(group) for group in result.ratios_pct()] == [20, 20, 20, 20]
    assert [pairs for pairs, _ in seen] == [20, 40, 60, 80]
    # The processes sit 1 point apart (about +10, +11, +12, +13 %): the pooled interval spans that spread,
    # where a bootstrap of the pooled pairs alone would be far narrower.
    flat = [r for group in result.ratios_pct() for r in group]
    plain = bootstrap_median_ci(flat)
    assert result.ci_low_pct <= result.overhead_pct <= result.ci_high_pct
    assert result.ci_high_pct - result.ci_low_pct > 1.5 * (plain[1] - plain[0])
    assert result.ci_low_pct < 11.0 and result.ci_high_pct > 12.0


def test_no_worker_times_once_the_budget_is_spent(fake_workers, monkeypatch):
    slow = FakeWorker.tell

    def overrun(self, line: str) -> None:
        slow(self, line)
        FakeWorker.clock[0] = 100.0  # the first worker ran far past its share and the budget

    monkeypatch.setattr(FakeWorker, "tell", overrun)
    result = measure_paired(nn.Identity(), nn.Identity(), Setting(budget_s=30.0, **{**TINY, "processes": 3}))
    assert result.processes == 1 and fake_workers.told == ["10.0", "stop"]


def test_models_that_cannot_be_sent_to_a_worker_are_a_user_error():
    class Local(nn.Module):  # a class defined in a function cannot be pickled
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(UserInputError, match="cannot be sent to a worker process"):
        measure_single(Local(), Setting(budget_s=1.0, **{**TINY, "processes": 2}))


def test_real_worker_processes_pool_their_samples():
    # Two fresh interpreters (each imports torch: a few seconds); the catalog's tiny pair at 8x8.
    base, cand = tiny_pair()
    options = Setting(processes=2, budget_s=4.0, min_pairs=4, warmup=1, input_size=(8, 8))
    result = measure_paired(base, cand, options)
    assert 1 <= result.processes <= 2 and len(result.base.process_sizes) == result.processes
    assert sum(result.base.process_sizes) == result.pairs >= 2
    assert_interval_or_reason(result)
