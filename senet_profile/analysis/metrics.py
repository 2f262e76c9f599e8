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

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.analysis.latency import OURS
from senet_profile.analysis.memory import MemoryProfile, measure_memory
from senet_profile.catalog.attach import remove_se
from senet_profile.catalog.se import se_module_names
from senet_profile.setting import Setting

PAIRED_LABEL = "median of per-pair ratios"
MEDIANS_LABEL = "difference of medians"


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


def memory_profile(model: nn.Module, input_shape: tuple[int, ...], options: Setting) -> MemoryProfile:
    """Tracked peak and saved memory of one pass of ``model`` on the options' memory device."""
    return measure_memory(
        model, input_shape, mode=options.mode, device=options.memory_device, dtype=options.torch_dtype
    )


def memory_result(model: nn.Module, input_shape: tuple[int, ...], options: Setting) -> MemoryResult:
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


def interval_notes(metric: str, reason: str) -> list[str]:
    """The note for a metric whose interval is n/a (none when it has one)."""
    return [f"{metric}: 95 % CI n/a, {reason}"] if reason else []


def latency_labels() -> str:
    """Which overhead definition each latency row of a comparison holds."""
    return (
        f"latency: delta and overhead_pct are the {MEDIANS_LABEL} (no interval); latency_overhead: the "
        f"{PAIRED_LABEL}, with its 95 % CI (none below {MIN_CI_SAMPLES} pairs)"
    )
