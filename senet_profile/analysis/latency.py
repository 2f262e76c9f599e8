"""Paired, interleaved latency of a candidate model against a base model, with a bootstrap CI of the overhead.

Method
    Both models run in one process on one input tensor, interleaved in ABBA order (A B, then B A, ...) so
    that slow drift (clock boosts, heat, other load) falls on both sides alike. After ``warmup`` calls of
    each, one sample is one call: ``perf_counter`` before, the call, a device synchronise (CUDA) and
    ``perf_counter`` after -- wall time as a caller sees it, launch overhead included, so CUDA is timed with
    ``torch.cuda.synchronize`` rather than events. A call faster than ``MIN_SAMPLE_S`` (judged from the
    warm-up) is repeated, synchronising after each, and the sample is the mean per call; ResNet-sized models
    take one call per sample. The garbage collector is off while timing (young generations are collected
    between checks), and nothing but the call(s) and the two clock reads is inside a sample.

    The overhead is the median over pairs of ``candidate / base - 1``: a ratio within each pair, so that
    drift between pairs cancels, and a median so that a pair hit by a hiccup does not move it. Its 95 % CI
    is a bootstrap of that median with a fixed seed (``intervals``), so the same samples always give the
    same interval; below ``MIN_CI_SAMPLES`` pairs there is no interval (``n/a``, with the reason). After
    ``min_pairs`` (100 by default: at 30, intervals that were narrow by luck stopped runs early; never
    fewer than ``MIN_CI_SAMPLES``) the CI is checked every few pairs (more rarely as pairs accumulate); the
    run stops once its half-width is within ``target_halfwidth_pp`` or once ``budget_s`` have passed since
    the call began -- copying and warm-up included -- though at least two pairs are taken. Under
    ``compile`` the warm-up is at least ``COMPILED_WARMUP`` calls of each model (the first compiles, the
    next ones still settle) and the budget starts after it, so that only compiled graphs are timed and a
    compilation (minutes on a small CPU) does not use up the budget. On CUDA the budget always starts after
    the warm-up, so that CUDA initialisation and cuDNN autotuning stay outside it too (and a ``Setting``
    defaults to one process there: one GPU cannot be shared by timed workers at once).

Precision
    ``math`` (``setting.MATHS``) sets fp32's convolution and matmul math inside the timing conditions, in
    the process that times (a worker sets it for itself); the result's ``precision`` names the math read
    back from torch there (``precision.precision_label``: "IEEE fp32", "TF32", "bf16, channels-last"...).

Modes
    ``infer``: ``model.eval()`` under ``torch.inference_mode()``. ``train``: ``model.train()``, forward,
    backward of the sum of the outputs, and the gradients set to None -- what ``zero_grad()`` does. No
    optimiser step: its cost does not depend on SE beyond the few parameters SE adds.

Between processes
    Within one process the CI is only that process's sampling error, and fresh processes differed by more
    (three runs of ResNet-50 vs SE-ResNet-50 spread over 0.8-2.0 pp with intervals of +/-1 pp). With
    ``processes=k`` the budget is split over ``k`` fresh worker processes (``spawn``), run one after
    another, each loading the models from one temporary file and holding its own heap; the pairs are
    pooled and the interval is the two-stage bootstrap over processes and pairs (``intervals``), so that
    what moves between processes widens it. Each worker's share is what is left of the budget divided by
    the workers still to run, its start-up (about 2-3 s: importing torch) included; no worker is started
    when less time is left than the last one took to start. Two more things moved the overhead between
    processes, and the defaults hold both still.
    - The C heap. Whether a forward pass re-faults its activations from the kernel depends on the
      process's history (see ``allocator``). Timing holds glibc's heap steady by default
      (``allocator="steady"``) and records each side's minor page faults per call.
    - Threads. One thread by default, as ``torch.utils.benchmark.Timer`` does: on a 2-vCPU KVM guest, with
      the heap held, six runs of ResNet-50 vs SE-ResNet-50 at batch 1 gave +4.6 to +4.9 % on one thread and
      +5.9 to +7.7 % on two, where an OpenMP team also stalls whenever another process takes a core. Ask for
      more threads to see what a multi-threaded deployment pays; repeat runs to see their spread. ``noisy``
      flags a wide IQR.

Models are deep-copied before being moved, cast (``dtype`` casts the weights and the input, no autocast),
put in channels-last or compiled, so the caller's models are never changed.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import torch
from torch import nn

from senet_profile.analysis.allocator import heap_held
from senet_profile.analysis.intervals import (
    MIN_CI_SAMPLES,
    Interval,
    bootstrap_median_ci,
    median_interval,
    split,
)
from senet_profile.analysis.precision import fp32_math, precision_label
from senet_profile.analysis.trace import scalar_loss
from senet_profile.errors import UserInputError
from senet_profile.io import WORKER_PREAMBLE, read_regular, temp_folder
from senet_profile.setting import Setting, overhead_pct

if TYPE_CHECKING:
    from resource import struct_rusage

getrusage: Callable[[int], struct_rusage] | None
try:
    from resource import RUSAGE_SELF, getrusage
except ImportError:  # not on Windows: page faults are then not counted
    getrusage = None

# Relative spread (IQR / median) of one side's samples above which a measurement is flagged noisy.
NOISY_IQR_FRACTION = 0.10

# A call faster than this is repeated within one sample (synchronising after each call), so that a short
# call still gives samples well above the clock's resolution and the CI checks stay cheap.
MIN_SAMPLE_S = 0.01

# Warm-up calls of each model under torch.compile: the first compiles; the next few were still up to twice
# the steady time on a 2-core CPU.
COMPILED_WARMUP = 10


def _no_sync() -> None:
    """Nothing to wait for: CPU ops are synchronous."""


_SYNC: dict[str, Callable[[], None]] = {"cpu": _no_sync, "cuda": torch.cuda.synchronize}


@dataclass(frozen=True)
class SideStats:
    """Median and quartiles of one model's samples, with the raw samples in seconds (and page faults).

    ``process_sizes`` says how many of the samples, in order, each worker process took (empty: one).
    """

    median_s: float
    q1_s: float
    q3_s: float
    samples: tuple[float, ...]
    page_faults_per_call: float | None = None
    process_sizes: tuple[int, ...] = ()

    def interval(self) -> Interval:
        """95 % interval of the median (seconds), pooled over processes; n/a below MIN_CI_SAMPLES."""
        return median_interval(split(self.samples, self.process_sizes))

    @property
    def iqr_s(self) -> float:
        """The interquartile range of the samples, in seconds (the one place it is computed)."""
        return self.q3_s - self.q1_s

    def to_records(self, *, batch_size: int = 1) -> list[dict]:
        """Profile records: median latency with its 95 % CI (None below MIN_CI_SAMPLES), throughput (img/s,
        from the median and the batch size), IQR, page faults."""
        interval = self.interval()
        count = len(self.samples)
        records = [
            _row("latency", "s", self.median_s, ci_low=interval.low, ci_high=interval.high, samples=count),
            _row("throughput", "img/s", throughput(self.median_s, batch_size), samples=count),
            _row("latency_iqr", "s", self.iqr_s, samples=count),
        ]
        if self.page_faults_per_call is not None:
            records.append(_row("page_faults", "per call", self.page_faults_per_call, samples=count))
        return records


@dataclass(frozen=True)
class PairedLatency:
    """Both sides' statistics and the candidate's overhead over the base, with its 95 % CI.

    The overhead is the median of per-pair ratios; the CI ends are None (``ci_reason`` says why) below
    MIN_CI_SAMPLES pairs. ``processes`` worker processes took the pairs (1: this process).
    """

    base: SideStats
    candidate: SideStats
    overhead_pct: float
    ci_low_pct: float | None
    ci_high_pct: float | None
    pairs: int
    wall_s: float
    noisy: bool
    options: Setting
    heap: str = "as-is"
    processes: int = 1
    ci_reason: str = ""
    precision: str = ""  # the math in force while timing, read from torch (``precision.precision_label``)

    def interval(self) -> Interval:
        """The overhead's 95 % interval (percent), or its ends None with the reason."""
        return Interval(self.ci_low_pct, self.ci_high_pct, self.ci_reason)

    def ratios_pct(self) -> list[list[float]]:
        """The per-pair overheads in percent, one list per process."""
        ratios = _ratios_pct(self.base.samples, self.candidate.samples)
        return split(ratios, self.base.process_sizes)

    @property
    def medians_pct(self) -> float | None:
        """The overhead as the difference of medians over the base's median, in percent."""
        return overhead_pct(self.base.median_s, self.candidate.median_s)

    def to_records(self, *, batch_size: int = 1) -> list[dict]:
        """Compare records: both medians and their difference; the paired overhead with its CI (None below
        ``MIN_CI_SAMPLES`` pairs, ``ci_reason`` saying why); throughput (img/s, from each median and the
        batch size); each side's IQR and page faults."""
        base, candidate = self.base, self.candidate
        pairs = {"samples": self.pairs}
        paired = self.overhead_pct
        rates = (throughput(base.median_s, batch_size), throughput(candidate.median_s, batch_size))
        rate_delta = None if rates[0] is None or rates[1] is None else rates[1] - rates[0]
        return [
            _pair_row(
                "latency", "s", base.median_s, candidate.median_s, candidate.median_s - base.median_s,
                overhead_pct=self.medians_pct, **pairs,
            ),
            _pair_row(
                "latency_overhead", "%", None, None, None,
                overhead_pct=paired, ci_low=self.ci_low_pct, ci_high=self.ci_high_pct, **pairs,
            ),
            _pair_row(
                "throughput", "img/s", *rates, rate_delta, overhead_pct=overhead_pct(rates[0], rates[1]),
                **pairs,
            ),
            _pair_row(
                "latency_iqr", "s", base.iqr_s, candidate.iqr_s, candidate.iqr_s - base.iqr_s, **pairs
            ),
            *self._page_fault_records(),
        ]  # fmt: skip

    def _page_fault_records(self) -> list[dict]:
        base, candidate = self.base.page_faults_per_call, self.candidate.page_faults_per_call
        if base is None or candidate is None:
            return []
        return [_pair_row("page_faults", "per call", base, candidate, candidate - base, samples=self.pairs)]

    def summary(self) -> dict:
        """The figures a record or report keeps of a paired measurement (JSON-ready, raw units)."""
        return {
            "overhead_pct": self.overhead_pct,
            "ci_low": self.ci_low_pct,
            "ci_high": self.ci_high_pct,
            "ci_reason": self.ci_reason,
            "pairs": self.pairs,
            "processes": self.processes,
            "base_median_s": self.base.median_s,
            "candidate_median_s": self.candidate.median_s,
            "base_iqr_s": self.base.iqr_s,
            "candidate_iqr_s": self.candidate.iqr_s,
            "wall_s": self.wall_s,
            "noisy": self.noisy,
            "heap": self.heap,
            "precision": self.precision,
            "base_page_faults_per_call": self.base.page_faults_per_call,
            "candidate_page_faults_per_call": self.candidate.page_faults_per_call,
        }


OURS = "senet-profile"  # the tool's name in the ``source`` column of its records (one place)


def throughput(median_s: float, batch_size: int) -> float | None:
    """Images per second at a median latency per batch (None for a zero latency)."""
    return batch_size / median_s if median_s > 0 else None


def _row(metric: str, unit: str, value: object, **extra: object) -> dict:
    return {"metric": metric, "unit": unit, "scope": "model", "source": OURS, "value": value, **extra}


def _pair_row(metric: str, unit: str, base: object, candidate: object, delta: object, **extra) -> dict:
    empty = {"overhead_pct": None, "ci_low": None, "ci_high": None}
    names = {"metric": metric, "unit": unit, "scope": "model", "source": OURS}
    return {**names, "base": base, "candidate": candidate, "delta": delta, **empty, **extra}


def _check_machine(options: Setting) -> None:
    """Raise UserInputError when this machine cannot run ``options``; warn about oversubscribed threads."""
    options.check_for(("latency",))
    if options.dtype == "bf16" and not _runs_bf16(options.latency_device):
        raise UserInputError(f"this {options.device} cannot run bf16; use fp32")
    cores = os.cpu_count() or 1
    if options.threads is not None and options.threads > cores:
        warnings.warn(
            f"threads={options.threads} is more than the {cores} CPU cores here: timings will be noisy",
            stacklevel=3,
        )


def _runs_bf16(device: str) -> bool:
    """Whether a bf16 convolution runs on ``device`` (probed on CPU, asked of the driver on CUDA)."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        probe = torch.ones(1, 1, 3, 3, dtype=torch.bfloat16)
        torch.nn.functional.conv2d(probe, probe)
    except RuntimeError:
        return False
    return True


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` intra-op threads (unchanged when None), restoring the previous count afterwards."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Collect once, then keep the cyclic garbage collector off (restored to its previous state)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _infer_step(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    return partial(model, x)


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """A call that runs one training step of ``model`` on ``x``: forward, backward of the summed outputs,
    the gradients set to None."""
    params = [param for param in model.parameters() if param.requires_grad]

    def step() -> None:
        scalar_loss(model(x)).backward()
        for param in params:
            param.grad = None

    return step


_STEPS: dict[str, Callable[[nn.Module, torch.Tensor], Callable[[], object]]] = {
    "infer": _infer_step,
    "train": train_step,
}


def _prepared(model: nn.Module, options: Setting) -> nn.Module:
    """A deep copy of ``model`` on the device, in the dtype, layout and mode ``options`` ask for."""
    work = copy.deepcopy(model).to(device=options.device, dtype=options.torch_dtype)
    if options.channels_last:
        work = work.to(memory_format=torch.channels_last)
    work.train(options.mode == "train")
    # torch.compile of a module returns an OptimizedModule (a Module); its stub says only "a callable"
    return cast(nn.Module, torch.compile(work)) if options.compile else work


def _input(options: Setting) -> torch.Tensor:
    """The one input both models are timed on."""
    x = torch.randn(*options.shape, device=options.device, dtype=options.torch_dtype)
    return x.contiguous(memory_format=torch.channels_last) if options.channels_last else x


def _timed(step: Callable[[], object], sync: Callable[[], None], reps: int = 1) -> float:
    """Seconds one call of ``step`` takes, device work included (averaged over ``reps`` calls in a row)."""
    if reps > 1:
        return _timed_repeatedly(step, sync, reps)
    start = perf_counter()  # no loop here: even a one-turn for-loop adds about 1 us to a sample
    step()
    sync()
    return perf_counter() - start


def _timed_repeatedly(step: Callable[[], object], sync: Callable[[], None], reps: int) -> float:
    """Mean seconds per call over ``reps`` calls of ``step``, synchronising after each."""
    start = perf_counter()
    for _ in range(reps):
        step()
        sync()
    return (perf_counter() - start) / reps


def _warmup_calls(options: Setting) -> int:
    """Warm-up calls per model: ``warmup``, and at least ``COMPILED_WARMUP`` under ``compile``."""
    return max(options.warmup, COMPILED_WARMUP) if options.compile else options.warmup


def _reps(warmup_times: list[float]) -> int:
    """Calls per sample: enough for the fastest warm-up call to fill MIN_SAMPLE_S; 1 without a warm-up."""
    fastest = min(warmup_times, default=MIN_SAMPLE_S)
    return max(1, math.ceil(MIN_SAMPLE_S / fastest)) if fastest > 0 else 1


def side_stats(
    samples: list[float] | tuple[float, ...], *, page_faults_per_call: float | None = None
) -> SideStats:
    """Median and quartiles of ``samples`` (seconds), keeping the samples and the page faults per call."""
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return SideStats(
        median_s=float(median),
        q1_s=float(q1),
        q3_s=float(q3),
        samples=tuple(samples),
        page_faults_per_call=page_faults_per_call,
    )


def minor_page_faults() -> int | None:
    """Minor page faults this process has taken so far (None where the OS does not say)."""
    return None if getrusage is None else getrusage(RUSAGE_SELF).ru_minflt


class Sampler:
    """Takes one model's samples, keeping them and the page faults taken while they were timed."""

    def __init__(self, step: Callable[[], object], sync: Callable[[], None], reps: int) -> None:
        self.step, self.sync, self.reps = step, sync, reps
        self.times: list[float] = []
        self.faults: int | None = 0 if getrusage is not None else None

    def sample(self) -> None:
        """Time one sample (``reps`` calls); page faults are read outside the timed interval."""
        before = minor_page_faults()
        self.times.append(_timed(self.step, self.sync, self.reps))
        if self.faults is not None:  # counted only where getrusage exists: both reads are ints
            after = minor_page_faults()
            assert before is not None and after is not None
            self.faults += after - before

    def stats(self) -> SideStats:
        """Median, quartiles and page faults per call of the samples so far."""
        calls = len(self.times) * self.reps
        per_call = None if self.faults is None or not calls else self.faults / calls
        return side_stats(self.times, page_faults_per_call=per_call)


def _halfwidth(values: list[float], scale: float) -> float:
    """Half-width of the bootstrap CI of the median of ``values``, times ``scale``."""
    low, high = bootstrap_median_ci(values)
    return (high - low) / 2 * scale


def _first_check(options: Setting) -> int:
    """The pair count of the first CI check: ``min_pairs``, never below MIN_CI_SAMPLES, made even."""
    first = max(options.min_pairs, MIN_CI_SAMPLES)
    return first + first % 2


def _next_check(count: int) -> int:
    """When to check the CI next: in steps of an eighth of the samples so far, at least 2, always even."""
    step = max(2, count // 8)
    return count + step + step % 2


def _noisy(stats: SideStats) -> bool:
    return stats.median_s <= 0 or stats.iqr_s / stats.median_s > NOISY_IQR_FRACTION


def _ratios_pct(base: Sequence[float], candidate: Sequence[float]) -> list[float]:
    return [(c / b - 1) * 100 for b, c in zip(base, candidate, strict=True)]


T = TypeVar("T")


def _stepping_down(run: Callable[[Setting], T], options: Setting) -> T:
    """``run(options)``; on CUDA out-of-memory, once more at half the batch (with a warning)."""
    try:
        return run(options)
    except torch.cuda.OutOfMemoryError:
        if options.batch_size == 1:
            raise UserInputError(
                "CUDA out of memory even at batch 1: this model does not fit on the GPU"
            ) from None
    smaller = replace(options, batch_size=options.batch_size // 2)
    torch.cuda.empty_cache()
    warnings.warn(
        f"CUDA out of memory at batch {options.batch_size}; measured at batch {smaller.batch_size} instead",
        stacklevel=3,
    )
    try:
        return run(smaller)
    except torch.cuda.OutOfMemoryError:
        pass
    torch.cuda.empty_cache()
    raise UserInputError(
        f"CUDA out of memory at batch {options.batch_size} and at {smaller.batch_size}; try a smaller batch"
    )


@contextmanager
def _timing_conditions(options: Setting) -> Iterator[str]:
    """The options' threads, fp32 math, inference mode (in ``infer``) and heap; yields the heap's state."""
    with (
        _threads(options.threads),
        fp32_math(options.math),
        torch.inference_mode(options.mode == "infer"),
        heap_held(options.allocator) as heap,
    ):
        yield heap


def _paired(
    base: nn.Module,
    candidate: nn.Module,
    options: Setting,
    progress: Callable[[int, float], None] | None,
) -> PairedLatency:
    started = perf_counter()
    deadline = started + options.budget_s
    x = _input(options)
    steps = (
        _STEPS[options.mode](_prepared(base, options), x),
        _STEPS[options.mode](_prepared(candidate, options), x),
    )
    sync = _SYNC[options.latency_device]
    with _timing_conditions(options) as heap:
        warm = [_timed(step, sync) for _ in range(_warmup_calls(options)) for step in steps]
        sides = tuple(Sampler(step, sync, _reps(warm)) for step in steps)
        if options.compile or options.device == "cuda":  # the budget is for timing, not for compiling,
            deadline = perf_counter() + options.budget_s  # CUDA initialisation or cuDNN autotuning
        precision = _label(options)
        check_at = _first_check(options)
        with _gc_paused():
            while True:
                for first, second in ((0, 1), (1, 0)):  # ABBA: each pair of pairs runs A B B A
                    sides[first].sample()
                    sides[second].sample()
                pairs = len(sides[0].times)
                if pairs >= check_at:
                    gc.collect(1)  # young generations only: a full collection takes ~0.1 s
                    halfwidth = _halfwidth(_ratios_pct(sides[0].times, sides[1].times), 1.0)
                    check_at = _next_check(pairs)
                    if progress is not None:
                        progress(pairs, halfwidth)
                    if halfwidth <= options.target_halfwidth_pp:
                        break
                if perf_counter() >= deadline:
                    break
    return _summary(
        sides[0].stats(), sides[1].stats(), options, wall_s=perf_counter() - started, heap=heap,
        precision=precision,
    )  # fmt: skip


def _label(options: Setting) -> str:
    """The math in force now (inside the timing conditions), named."""
    # latency_device: the device, or the CPU where none is named (labelled alike: only cuda has TF32)
    device = options.latency_device
    return precision_label(device=device, dtype=options.dtype, channels_last=options.channels_last)


def _summary(
    base: SideStats,
    candidate: SideStats,
    options: Setting,
    *,
    wall_s: float,
    heap: str,
    precision: str = "",
) -> PairedLatency:
    """The paired result of both sides' samples: median of per-pair ratios, its interval, the noise flag."""
    ratios = _ratios_pct(base.samples, candidate.samples)
    interval = median_interval(split(ratios, base.process_sizes), unit="pairs")
    wide = interval.halfwidth is not None and interval.halfwidth > options.target_halfwidth_pp
    return PairedLatency(
        base=base,
        candidate=candidate,
        overhead_pct=float(np.median(ratios)),
        ci_low_pct=interval.low,
        ci_high_pct=interval.high,
        pairs=len(ratios),
        wall_s=wall_s,
        noisy=_noisy(base) or _noisy(candidate) or wide,
        options=options,
        heap=heap,
        processes=max(1, len(base.process_sizes)),
        ci_reason=interval.reason,
        precision=precision,
    )


@contextmanager
def timing_session(model: nn.Module, options: Setting) -> Iterator[Sampler]:
    """A sampler of ``model`` as ``measure_single`` times it, inside its threads, inference mode and heap."""
    x = _input(options)
    step = _STEPS[options.mode](_prepared(model, options), x)
    sync = _SYNC[options.latency_device]
    with _timing_conditions(options):
        yield Sampler(step, sync, _reps([_timed(step, sync) for _ in range(_warmup_calls(options))]))


def _single(model: nn.Module, options: Setting) -> SideStats:
    deadline = perf_counter() + options.budget_s
    with timing_session(model, options) as side:
        if options.compile or options.device == "cuda":  # time, not compilation or CUDA initialisation
            deadline = perf_counter() + options.budget_s
        check_at = _first_check(options)
        with _gc_paused():
            while True:
                side.sample()
                side.sample()
                times = side.times
                if len(times) >= check_at:
                    gc.collect(1)  # young generations only: a full collection takes ~0.1 s
                    check_at = _next_check(len(times))
                    if _halfwidth(times, 100 / float(np.median(times))) <= options.target_halfwidth_pp:
                        break
                if perf_counter() >= deadline:
                    break
    return side.stats()


def pooled_side(sides: Sequence[SideStats]) -> SideStats:
    """One side's samples of several processes as one, keeping how many each process took."""
    samples = [value for side in sides for value in side.samples]
    faults = [side.page_faults_per_call for side in sides if side.page_faults_per_call is not None]
    per_call = None
    if len(faults) == len(sides):
        per_call = sum(f * len(side.samples) for f, side in zip(faults, sides, strict=True)) / len(samples)
    pooled = side_stats(samples, page_faults_per_call=per_call)
    return replace(pooled, process_sizes=tuple(len(side.samples) for side in sides))


def _pooled(results: Sequence[PairedLatency], options: Setting, wall_s: float) -> PairedLatency:
    heaps = ", ".join(dict.fromkeys(result.heap for result in results))
    return _summary(
        pooled_side([result.base for result in results]),
        pooled_side([result.candidate for result in results]),
        replace(options, batch_size=results[0].options.batch_size),
        wall_s=wall_s,
        heap=heaps,
        precision=", ".join(dict.fromkeys(result.precision for result in results)),
    )


def _worker(job: Path, answer: Path) -> None:
    """In a fresh process: load the job and the models, then wait for a deadline on stdin and time until it.

    A line ``stop`` instead of a deadline ends the process untimed. The answer is ``("ok", result)`` or
    ``("error", message)`` for a UserInputError; it is read only once this process has exited.
    """
    kind, options = pickle.loads(read_regular(job, follow=False))  # our own private file
    try:
        models = _loaded(job.with_name("models.pt"))
        line = sys.stdin.readline().strip()
        if line in ("", "stop"):
            return
        local = replace(options, processes=1, budget_s=max(float(line) - monotonic(), 1e-3))
        run: Callable[[Setting], PairedLatency | SideStats]
        if kind == "paired":
            base, candidate = models
            run = partial(_paired, base, candidate, progress=None)
        else:
            (model,) = models
            run = partial(_single, model)
        reply: tuple = ("ok", _stepping_down(run, local))
    except UserInputError as error:
        reply = ("error", str(error))
    answer.write_bytes(pickle.dumps(reply))


def _loaded(path: Path) -> tuple[nn.Module, ...]:
    """The models the parent saved, or a UserInputError saying why they cannot be loaded here."""
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except (AttributeError, ImportError, pickle.UnpicklingError) as error:
        raise UserInputError(
            f"a worker process cannot load the models ({error}); time them with processes=1"
        ) from None


class _Worker:
    """One fresh interpreter that loads the models at once and times them when told its deadline."""

    def __init__(self, folder: Path, index: int, kind: str, options: Setting) -> None:
        job, self.answer = folder / f"job-{index}.pickle", folder / f"answer-{index}.pickle"
        job.write_bytes(pickle.dumps((kind, options)))
        # a worker ignores Ctrl-C (the parent stops it) and dies with its parent (Linux), before torch loads
        code = f"{WORKER_PREAMBLE}; from pathlib import Path; from {__name__} import _worker; "
        code += f"_worker(Path({str(job)!r}), "
        code += f"Path({str(self.answer)!r}))"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)

    def tell(self, line: str) -> None:
        """Send the deadline (or ``stop``) and close the worker's stdin."""
        stdin = self.process.stdin
        if stdin is not None:
            stdin.write(f"{line}\n")
            stdin.close()

    def stop(self) -> None:
        """Tell the worker to exit without timing, and wait until it has."""
        self.tell("stop")
        self.process.wait()

    def kill(self) -> None:
        """End the worker now (the parent is stopping: Ctrl-C or an error) and reap it."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()

    def result(self) -> PairedLatency | SideStats:
        """Wait for the worker to exit and return what it measured."""
        status = self.process.wait()
        if status != 0 or not self.answer.exists():
            raise RuntimeError(f"a latency worker process failed (exit status {status})")
        reply = pickle.loads(read_regular(self.answer, follow=False))
        if reply[0] == "error":
            raise UserInputError(reply[1])
        return reply[1]


def _in_processes(
    kind: str,
    models: tuple[nn.Module, ...],
    options: Setting,
    progress: Callable[[list], None] | None = None,
) -> list:
    """Results of up to ``options.processes`` fresh worker processes, timing one at a time, in the budget.

    The next worker starts (imports torch, loads the models) while the current one times, and waits; so
    only the first one's start-up comes out of the budget. No worker times once the budget is spent.
    """
    deadline = monotonic() + options.budget_s
    processes = options.worker_processes
    results: list = []
    with temp_folder() as folder:  # named by pid: a killed run's models.pt is removed by the next run
        try:
            torch.save(models, folder / "models.pt")
        except (AttributeError, TypeError, ValueError, pickle.PicklingError) as error:
            raise UserInputError(
                f"the models cannot be sent to a worker process ({error}); time them with processes=1"
            ) from None
        started: list[_Worker] = []
        try:
            first = _Worker(folder, 0, kind, options)
            started.append(first)
            waiting: _Worker | None = first
            for index in range(processes):
                now = monotonic()
                if waiting is None or (results and now >= deadline):
                    break
                current = waiting
                current.tell(repr(now + (deadline - now) / (processes - index)))
                waiting = _Worker(folder, index + 1, kind, options) if index + 1 < processes else None
                started += [waiting] if waiting is not None else []
                results.append(current.result())
                if progress is not None:
                    progress(results)
            if waiting is not None:
                waiting.stop()
        except BaseException:  # Ctrl-C or an error: no worker goes on timing after the parent stops
            for worker in started:
                worker.kill()
            raise
    return results


def measure_paired(
    base: nn.Module,
    candidate: nn.Module,
    options: Setting,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> PairedLatency:
    """Time ``candidate`` against ``base`` interleaved; ``progress(pairs, halfwidth_pp)`` at each CI check.

    With ``options.processes`` above 1 the pairs come from that many fresh processes (fewer when the budget
    runs out) and ``progress`` is called after each one, with NaN while there is no interval yet.
    """
    options = options.for_latency()
    _check_machine(options)
    if options.processes == 1:
        return _stepping_down(partial(_paired, base, candidate, progress=progress), options)
    started = perf_counter()

    def report(results: list) -> None:
        if progress is not None:
            pooled = _pooled(results, options, perf_counter() - started)
            halfwidth = pooled.interval().halfwidth
            progress(pooled.pairs, math.nan if halfwidth is None else halfwidth)

    results = _in_processes("paired", (base, candidate), options, report)
    return _pooled(results, options, perf_counter() - started)


def measure_single(model: nn.Module, options: Setting) -> SideStats:
    """Time one model alone, until the median's 95 % CI is within the target (in % of it) or the budget.

    With ``options.processes`` above 1 the samples come from that many fresh processes, pooled.
    """
    options = options.for_latency()
    _check_machine(options)
    if options.processes == 1:
        return _stepping_down(partial(_single, model), options)
    return pooled_side(_in_processes("single", (model,), options))
