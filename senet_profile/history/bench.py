"""What ``nox -s bench`` measures, as figures of one run record.

A figure is a flat dict keyed by (model, metric, setting):

- deterministic figures (``deterministic: true``): params, params_se, MACs, activations, bytes moved (and
  SE's share, fp32, under ``analysis.trace``'s convention) of every catalog
  model and of every model a benchmark pair names, at 1x3x224x224; tracked peak memory (meta device,
  byte-exact) of the pairs' models, inference at batch 1 and a training pass at batch 8. Any change is a
  regression until the baseline is updated on purpose.
- timing figures (``deterministic: false``): the SE latency overhead of each benchmark pair, in percent,
  with its 95 % CI (None below ``MIN_CI_SAMPLES`` pairs, ``ci_reason`` saying why), each side's median
  and IQR in seconds, the number of pairs and processes, and the wall time; measured by
  ``senet_profile.analysis.latency.measure_paired`` inside pytest-benchmark (``bench/``), which hands
  the figure over in ``extra_info``; and the tool's own cost (``tool_cost``): the tool's resnet50 samples
  against a bare ``perf_counter`` loop's, interleaved in one process, as a median ratio with a 95 % CI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from senet_profile import api
from senet_profile.analysis.intervals import bootstrap_median_ci
from senet_profile.analysis.latency import PairedLatency
from senet_profile.analysis.memory import measure_memory
from senet_profile.errors import UserInputError
from senet_profile.history.schema import benchmark_figures
from senet_profile.io import parse_json, read_regular
from senet_profile.setting import Setting

STATIC_SHAPE = (1, 3, 224, 224)
# The figures the bench tracks of each model: a subset of the API's one table of static metrics.
BENCH_STATIC = ("params", "params_se", "macs", "macs_se", "activations", "bytes_moved", "bytes_moved_se")
MEMORY_SETTINGS = (("infer", 1), ("train", 8))


@dataclass(frozen=True)
class BenchCase:
    """One timed pair: base and candidate catalog arguments, and the setting they are timed in."""

    base: str
    candidate: str
    setting: Setting = field(default_factory=Setting)

    @property
    def name(self) -> str:
        """``base -> candidate``, the pair's name in records."""
        return f"{self.base} -> {self.candidate}"

    @property
    def label(self) -> str:
        """The pass and batch, e.g. ``infer b1`` (``infer b1 compiled`` under ``torch.compile``)."""
        s = self.setting
        return f"{s.mode} b{s.batch_size}" + " compiled" * s.compile


def _case(base: str, candidate: str, **setting: object) -> BenchCase:
    return BenchCase(base, candidate, Setting(**setting))  # type: ignore[arg-type]


RESNET = ("resnet50", "se_resnet50")
MOBILE = ("mobilenet_v3_large:se=off", "mobilenet_v3_large")
PAPER_LAYOUT = ("resnet50:layout=paper", "se_resnet50:layout=paper")

QUICK_CASES = (
    _case(*RESNET, batch_size=1),
    _case(*RESNET, batch_size=8),
    _case(*MOBILE, batch_size=1),
    _case(*PAPER_LAYOUT, batch_size=1),
)
FULL_CASES = (
    *QUICK_CASES,
    _case(*RESNET, batch_size=32),
    _case(*RESNET, batch_size=32, mode="train"),
    _case(*MOBILE, batch_size=8),
    _case("mobilenet_v1", "se_mobilenet_v1", batch_size=1),
    _case("resnext50_32x4d", "se_resnext50_32x4d", batch_size=1),
    _case(*RESNET, batch_size=1, compile=True),
    _case(*MOBILE, batch_size=1, compile=True),
)


def cases(*, full: bool) -> tuple[BenchCase, ...]:
    """The pairs a quick (default) or full bench times."""
    return FULL_CASES if full else QUICK_CASES


def _built(model: str, device: str = "meta"):
    """The module a model argument of any source names, built on ``device`` (the one resolver)."""
    return api.resolve(model, device=device).module


def pair_models(selected: Iterable[BenchCase]) -> list[str]:
    """Canonical names of every model the pairs name, in order, once each."""
    names = [api.canonical_name(m) for case in selected for m in (case.base, case.candidate)]
    return list(dict.fromkeys(names))


def _figure(model: str, metric: str, setting: str, unit: str, value: float, **extra: object) -> dict:
    return {"model": model, "metric": metric, "setting": setting, "unit": unit, "value": value, **extra}


def static_figures(models: Iterable[str], *, shape: tuple[int, ...] = STATIC_SHAPE) -> list[dict]:
    """Exact static counts of each model at ``shape`` (1x3x224x224 by default)."""
    figures = []
    setting = "x".join(str(s) for s in shape)
    for model in models:
        total = api.analyze(_built(model), shape, name=model).total
        for metric in (m for m in api.STATIC_METRICS if m.name in BENCH_STATIC):
            value = metric.read(total)
            figures.append(_figure(model, metric.name, setting, metric.unit, value, deterministic=True))
    return figures


def memory_figures(
    models: Iterable[str],
    *,
    settings: tuple[tuple[str, int], ...] = MEMORY_SETTINGS,
    device: str = "meta",
    dtype: str = "fp32",
    input_size: tuple[int, int] = (224, 224),
) -> list[dict]:
    """Tracked peak and saved bytes of each model (meta device: exact), by default inference b1, training b8.

    The setting names device, pass and batch, then the dtype and input size where they are not fp32, 224.
    """
    figures = []
    suffix = f" {dtype}" * (dtype != "fp32") + _size_suffix(input_size)
    for model in models:
        built = _built(model, device="meta" if device == "meta" else "cpu")
        for mode, batch in settings:
            shape = (batch, 3, *input_size)
            profile = measure_memory(
                built, shape, mode=mode, device=device, dtype=api.Setting(dtype=dtype).torch_dtype
            )
            setting = f"{device} {mode} b{batch}{suffix}"
            figures.append(
                _figure(model, "memory_peak", setting, "bytes", profile.peak_bytes, deterministic=True)
            )
            if mode == "train":
                saved = profile.saved_bytes
                figures.append(_figure(model, "memory_saved", setting, "bytes", saved, deterministic=True))
    return figures


def _size_suffix(input_size: tuple[int, int]) -> str:
    return "" if tuple(input_size) == (224, 224) else f" {input_size[0]}x{input_size[1]}"


def latency_setting(case: BenchCase, *, budget_s: float, threads: int | None) -> Setting:
    """The setting one bench case is timed in: the case's own, with the run's budget and threads, at 224."""
    return case.setting.resolved(budget_s=budget_s, threads=threads, input_size=(224, 224)).for_latency()


def prediction_fields(case: BenchCase, result: PairedLatency, explanation: api.Explanation | None) -> dict:
    """What FLOPs and the machine model predicted for a timed pair, and the model's error in points.

    ``explanation``: an unmeasured ``api.explain`` of the pair. Inference only: the machine model prices a
    forward pass; a training pair gets None with the reason.
    """
    if case.setting.mode != "infer" or explanation is None:
        return {"flops_pct": None, "predicted_pct": None, "prediction_error_pp": None,
                "prediction_note": "the machine model prices inference only"}  # fmt: skip
    explained = explanation.time
    gaps = {**explained.base.prediction.uncovered, **explained.candidate.prediction.uncovered}
    predicted = explained.predicted_pct
    return {
        "flops_pct": explained.flops_pct,
        "predicted_pct": predicted,
        "prediction_error_pp": None if predicted is None else predicted - result.overhead_pct,
        "prediction_note": f"machine model {explanation.machine.key}"
        + (f"; ops with no rule, left out: {sorted(gaps)}" if gaps else ""),
    }


def latency_figure(case: BenchCase, result: PairedLatency, prediction: dict | None = None) -> dict:
    """The timing figure of one pair: overhead with CI, each side's median and IQR, pairs and wall time
    (and, when given, what FLOPs and the machine model predicted: ``prediction_fields``)."""
    options = result.options
    threads = options.threads or torch.get_num_threads()
    setting = f"{options.device} {options.mode} b{options.batch_size} {options.dtype} threads={threads}"
    setting += f" heap={options.allocator}" + " compiled" * options.compile + _size_suffix(options.size)
    setting += f" math={options.math}" * (options.math != "default")
    summary = result.summary()
    overhead = summary.pop("overhead_pct")
    summary["samples"] = summary.pop("pairs")
    return _figure(
        f"{api.canonical_name(case.base)} -> {api.canonical_name(case.candidate)}",
        "latency_overhead",
        setting,
        "%",
        overhead,
        deterministic=False,
        **summary,
        batch_size=options.batch_size,
        mode=options.mode,
        compiled=options.compile,
        **(prediction or {}),
    )


def tool_cost_figure(
    model: str, tool: list[float], bare: list[float], *, threads: int, wall_s: float
) -> dict:
    """The tool's own cost: median over pairs of its sample over a bare ``perf_counter`` loop's, in %, CI."""
    ratios = [(t / b - 1) * 100 for t, b in zip(tool, bare, strict=True)]
    low, high = bootstrap_median_ci(ratios)
    return _figure(
        api.canonical_name(model),
        "tool_cost",
        f"cpu infer b1 fp32 threads={threads}",
        "%",
        float(np.median(ratios)),
        deterministic=False,
        ci_low=low,
        ci_high=high,
        samples=len(ratios),
        tool_median_s=float(np.median(tool)),
        bare_median_s=float(np.median(bare)),
        wall_s=wall_s,
    )


def figures_from_benchmark_json(path: Path) -> list[dict]:
    """The timing figures that the bench suite left in pytest-benchmark's JSON (``extra_info["figure"]``).

    Refused (UserInputError) when the file is unreadable, has no figure, or has a malformed one.
    """
    try:
        content = read_regular(path)  # a FIFO or device refused, never waited on; bounded
    except UserInputError as error:
        raise UserInputError(
            f"{path}: cannot read the benchmark file ({str(error).rpartition(': ')[2]})"
        ) from None
    try:
        data = parse_json(content)  # hardened: depth, number range
    except ValueError as error:
        raise UserInputError(f"{path}: not a readable pytest-benchmark JSON file ({error})") from None
    try:
        return benchmark_figures(data)
    except ValueError as error:
        raise UserInputError(f"{path}: {error}") from None


def deterministic_figures(selected: Iterable[BenchCase]) -> list[dict]:
    """Static counts of the whole catalog and the pairs' models, and the pairs' models' tracked memory."""
    pairs = pair_models(selected)
    models = list(dict.fromkeys([*api.list_models(), *pairs]))
    return static_figures(models) + memory_figures(pairs)


def figure_key(figure: dict) -> tuple[str, str, str]:
    """How figures are matched across records: (model, metric, setting)."""
    return (figure["model"], figure["metric"], figure["setting"])
