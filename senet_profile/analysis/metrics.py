"""Runtime metrics as records: which groups to measure, with what options, and their record rows.

Records keep raw bytes and seconds. A comparison's latency has two rows, one overhead definition each:
``latency`` (seconds) holds both medians, their difference as ``delta`` and that difference over the base's
median as ``overhead_pct``; ``latency_overhead`` (percent) holds the paired overhead -- the median of
per-pair ratios, the figure the tool stands behind -- with its 95 % CI. The two differ when the ratios'
median is not the medians' ratio. Each side's interquartile range and page faults stand beside them. An
interval from fewer than ``MIN_CI_SAMPLES`` samples is not given: its ends are None, and
``interval_notes`` says why.

``memory_peak_se`` is what SE adds to the peak: the model's peak less the peak of the same model with its SE
modules taken out (``catalog.attach.remove_se``), so that in a comparison of a model with its SE-free twin
it is the whole peak difference, and otherwise the part of it that SE causes (``senet-profile
explain-memory`` shows the tensors behind it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from senet_profile.analysis.allocator import ALLOCATORS
from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.analysis.latency import DTYPES, LatencyOptions, PairedLatency, SideStats
from senet_profile.analysis.memory import MemoryProfile, measure_memory
from senet_profile.catalog.attach import remove_se
from senet_profile.catalog.se import se_module_names
from senet_profile.errors import UserInputError
from senet_profile.io import MAX_INT

METRIC_GROUPS = ("static", "memory", "latency")
DEVICES = ("cpu", "cuda", "meta")
MODES = ("infer", "train")
OURS = "senet-profile"
# Fresh worker processes a latency measurement is split over, so that its interval covers what moves
# between processes; see ``senet_profile.analysis.latency`` ("Between processes").
DEFAULT_PROCESSES = 4
MAX_PROCESSES = 256  # fresh worker processes a timed measurement may be split over
PAIRED_LABEL = "median of per-pair ratios"
MEDIANS_LABEL = "difference of medians"


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """How runtime metrics are measured: device, pass, threads, dtype, layout, compile and time budget."""

    device: str | None = None
    mode: str = "infer"
    threads: int | None = 1
    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    budget_s: float = 48.0
    target_halfwidth_pp: float = 1.0
    allocator: str = "steady"
    processes: int = DEFAULT_PROCESSES

    def __post_init__(self) -> None:
        types = (
            (self.threads is None or _is_int(self.threads), "threads must be an integer or None"),
            (_is_int(self.processes), f"processes must be an integer, got {self.processes!r}"),
            (_is_number(self.budget_s), "budget must be a number of seconds"),
            (_is_number(self.target_halfwidth_pp), "the target CI half-width must be a number"),
            (isinstance(self.channels_last, bool), "channels_last must be True or False"),
            (isinstance(self.compile, bool), "compile must be True or False"),
        )
        problem = next((message for ok, message in types if not ok), None)
        if problem:
            raise UserInputError(problem)
        checks = (
            (
                self.device is None or self.device in DEVICES,
                f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}",
            ),
            (self.mode in MODES, f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}"),
            (self.dtype in DTYPES, f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}"),
            (
                self.threads is None or self.threads > 0,
                f"threads must be a positive integer, got {self.threads}",
            ),
            (
                self.threads is None or self.threads <= MAX_INT,
                f"threads must be at most {MAX_INT:,}, got {self.threads}",
            ),
            (
                0 < self.budget_s < math.inf,
                f"budget must be a positive number of seconds, got {self.budget_s}",
            ),
            (self.target_halfwidth_pp > 0, "the target CI half-width must be positive"),
            (
                self.processes >= 1,
                f"processes must be a positive integer, got {self.processes}",
            ),
            (
                self.processes <= MAX_PROCESSES,
                f"processes must be at most {MAX_PROCESSES}, got {self.processes}",
            ),
            (
                self.allocator in ALLOCATORS,
                f"unknown allocator {self.allocator!r}; choose one of {', '.join(ALLOCATORS)}",
            ),
        )
        problem = next((message for ok, message in checks if not ok), None)
        if problem:
            raise UserInputError(problem)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of ``dtype``."""
        return DTYPES[self.dtype]

    def check_for(self, metrics: tuple[str, ...]) -> None:
        """Refuse options that this machine cannot run, or that mean nothing for ``metrics``.

        The one place every command and the API check ``--device``, ``--dtype`` and ``--compile``.
        """
        checks = (
            (
                self.device != "cuda" or torch.cuda.is_available(),
                "device 'cuda' asked for, but there is no CUDA device on this machine",
            ),
            (
                self.dtype != "fp16" or self.device == "cuda",
                f"dtype fp16 runs on CUDA only, not on {self.device or 'cpu'}; use bf16 or fp32",
            ),
            (
                "latency" not in metrics or self.device != "meta",
                "latency cannot be measured on the meta device; use --device cpu or cuda",
            ),
            (
                not self.compile or "latency" in metrics,
                "compile (--compile) applies to latency only; measure latency too or leave compile out",
            ),
        )
        problem = next((message for ok, message in checks if not ok), None)
        if problem:
            raise UserInputError(problem)

    @property
    def memory_device(self) -> str:
        """Where memory is tracked: the device asked for, else meta (byte-identical to the CPU's figure)."""
        return self.device or "meta"

    @property
    def latency_device(self) -> str:
        """Where latency is timed: the device asked for, else the CPU."""
        return self.device or "cpu"

    def latency(self, *, batch_size: int, input_size: tuple[int, int]) -> LatencyOptions:
        """The options of one latency measurement."""
        if self.device == "meta":
            raise UserInputError("latency cannot be measured on the meta device; use --device cpu or cuda")
        return LatencyOptions(
            device=self.latency_device,
            mode=self.mode,
            batch_size=batch_size,
            threads=self.threads,
            dtype=self.dtype,
            channels_last=self.channels_last,
            compile=self.compile,
            budget_s=self.budget_s,
            target_halfwidth_pp=self.target_halfwidth_pp,
            input_size=input_size,
            allocator=self.allocator,
            processes=self.processes,
        )

    def describe(self, metrics: tuple[str, ...] = METRIC_GROUPS) -> str:
        """A one-line summary for captions and run records (devices and timing settings of ``metrics``)."""
        timed = "latency" in metrics
        extras = [f"threads={self.threads}" if self.threads else "threads=default"] * timed + [self.dtype]
        extras += ["channels_last"] * self.channels_last + ["compiled"] * self.compile
        extras += [f"heap {self.allocator}"] * (timed and self.latency_device == "cpu")
        extras += [f"{self.processes} processes" if self.processes > 1 else "1 process"] * timed
        device = self.device or self.latency_device
        if self.device is None and "memory" in metrics:
            device = f"memory on {self.memory_device}" + f", latency on {device}" * timed
        return f"{device}, {self.mode}, {', '.join(extras)}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_metrics(metrics: object) -> tuple[str, ...]:
    """Metric groups given as text (``"static,memory"``, ``"all"``) or a sequence of names, checked."""
    if isinstance(metrics, str):
        return parse_metrics(metrics)
    if not isinstance(metrics, tuple | list) or not all(isinstance(name, str) for name in metrics):
        raise UserInputError(f"metrics must be names from {', '.join(METRIC_GROUPS)}, got {metrics!r}")
    return parse_metrics(",".join(metrics))


def parse_metrics(text: str) -> tuple[str, ...]:
    """``static``, ``memory``, ``latency``, a comma list of them, or ``all``."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return METRIC_GROUPS
    unknown = [name for name in names if name not in METRIC_GROUPS]
    if unknown or not names:
        raise UserInputError(f"unknown metrics {text!r}; choose from {', '.join(METRIC_GROUPS)} or all")
    return tuple(name for name in METRIC_GROUPS if name in names)


def _row(metric: str, unit: str, value: object, **extra: object) -> dict:
    return {"metric": metric, "unit": unit, "scope": "model", "source": OURS, "value": value, **extra}


@dataclass(frozen=True)
class MemoryResult:
    """One model's pass and, when it has SE modules, the same pass with them taken out."""

    profile: MemoryProfile
    without_se: MemoryProfile | None

    @property
    def se_peak_delta(self) -> int:
        """What SE adds to the peak: the peak less the peak without SE (0 for a model without SE)."""
        return 0 if self.without_se is None else self.profile.peak_bytes - self.without_se.peak_bytes


MEMORY_METRICS: tuple[tuple[str, Callable[[MemoryResult], int | None]], ...] = (
    ("memory_peak", lambda m: m.profile.peak_bytes),
    ("memory_peak_se", lambda m: m.se_peak_delta),
    ("memory_saved", lambda m: m.profile.saved_bytes),
    ("memory_saved_se", lambda m: m.profile.se_saved_bytes),
    ("memory_grads", lambda m: m.profile.grad_bytes),
)


def memory_profile(model: nn.Module, input_shape: tuple[int, ...], options: RuntimeOptions) -> MemoryProfile:
    """Tracked peak and saved memory of one pass of ``model`` on the options' memory device."""
    return measure_memory(
        model, input_shape, mode=options.mode, device=options.memory_device, dtype=options.torch_dtype
    )


def memory_result(model: nn.Module, input_shape: tuple[int, ...], options: RuntimeOptions) -> MemoryResult:
    """The pass of ``model`` and, if it holds SE modules, of a copy with them replaced by identities."""
    without = remove_se(model) if se_module_names(model) else None
    return MemoryResult(
        profile=memory_profile(model, input_shape, options),
        without_se=None if without is None else memory_profile(without, input_shape, options),
    )


def memory_records(result: MemoryResult) -> list[dict]:
    """One record per memory figure (bytes); CUDA's own peak beside the tracked one when on CUDA."""
    records = [_row(name, "bytes", read(result)) for name, read in MEMORY_METRICS]
    if result.profile.cuda_max_allocated is not None:
        cuda_peak = result.profile.cuda_max_allocated
        records.append({**_row("memory_peak", "bytes", cuda_peak), "source": "torch.cuda"})
    return records


def latency_single_records(stats: SideStats) -> list[dict]:
    """Median latency with the 95 % CI of the median (None below MIN_CI_SAMPLES), the IQR, page faults."""
    interval = stats.interval()
    count = len(stats.samples)
    records = [
        _row("latency", "s", stats.median_s, ci_low=interval.low, ci_high=interval.high, samples=count),
        _row("latency_iqr", "s", stats.q3_s - stats.q1_s, samples=count),
    ]
    if stats.page_faults_per_call is not None:
        records.append(_row("page_faults", "per call", stats.page_faults_per_call, samples=count))
    return records


def _pair_row(metric: str, unit: str, base: object, candidate: object, delta: object, **extra) -> dict:
    empty = {"overhead_pct": None, "ci_low": None, "ci_high": None}
    names = {"metric": metric, "unit": unit, "scope": "model", "source": OURS}
    return {**names, "base": base, "candidate": candidate, "delta": delta, **empty, **extra}


def latency_pair_records(result: PairedLatency) -> list[dict]:
    """Compare records: both medians and their difference; the paired overhead with its CI; IQRs, faults."""
    base, candidate = result.base, result.candidate
    pairs = {"samples": result.pairs}
    medians_pct = (candidate.median_s / base.median_s - 1) * 100 if base.median_s > 0 else None
    iqr = (base.q3_s - base.q1_s, candidate.q3_s - candidate.q1_s)
    return [
        _pair_row(
            "latency", "s", base.median_s, candidate.median_s, candidate.median_s - base.median_s,
            overhead_pct=medians_pct, **pairs,
        ),
        _pair_row(
            "latency_overhead", "%", None, None, None,
            overhead_pct=result.overhead_pct, ci_low=result.ci_low_pct, ci_high=result.ci_high_pct, **pairs,
        ),
        _pair_row("latency_iqr", "s", *iqr, iqr[1] - iqr[0], **pairs),
        *_page_fault_records(result),
    ]  # fmt: skip


def interval_notes(metric: str, reason: str) -> list[str]:
    """The note for a metric whose interval is n/a (none when it has one)."""
    return [f"{metric}: 95 % CI n/a, {reason}"] if reason else []


def latency_labels() -> str:
    """Which overhead definition each latency row of a comparison holds."""
    return (
        f"latency: delta and overhead_pct are the {MEDIANS_LABEL} (no interval); latency_overhead: the "
        f"{PAIRED_LABEL}, with its 95 % CI (none below {MIN_CI_SAMPLES} pairs)"
    )


def _page_fault_records(result: PairedLatency) -> list[dict]:
    """Minor page faults per call on each side while timed, where the OS counts them."""
    base, candidate = result.base.page_faults_per_call, result.candidate.page_faults_per_call
    if base is None or candidate is None:
        return []
    return [_pair_row("page_faults", "per call", base, candidate, candidate - base, samples=result.pairs)]
