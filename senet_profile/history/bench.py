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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from senet_profile.analysis.latency import DTYPES, LatencyOptions, PairedLatency, bootstrap_median_ci
from senet_profile.analysis.memory import measure_memory
from senet_profile.analysis.metrics import RuntimeOptions
from senet_profile.analysis.overhead import explain_time
from senet_profile.analysis.roofline import MachineModel
from senet_profile.analysis.static import analyze
from senet_profile.catalog.registry import list_models, parse_model_spec
from senet_profile.catalog.sources import build, parse_source
from senet_profile.errors import UserInputError
from senet_profile.history.schema import benchmark_figures
from senet_profile.io import parse_json, read_regular

STATIC_SHAPE = (1, 3, 224, 224)
STATIC_METRICS = ("params", "params_se", "macs", "macs_se", "activations", "bytes_moved", "bytes_moved_se")
STATIC_UNITS = {"params": "params", "params_se": "params", "macs": "MACs", "macs_se": "MACs"}
STATIC_UNITS |= {"bytes_moved": "bytes", "bytes_moved_se": "bytes"}
MEMORY_SETTINGS = (("infer", 1), ("train", 8))


@dataclass(frozen=True)
class BenchCase:
    """One timed pair: base and candidate catalog arguments, batch size and pass."""

    base: str
    candidate: str
    batch_size: int = 1
    mode: str = "infer"
    compile: bool = False

    @property
    def name(self) -> str:
        """``base -> candidate``, the pair's name in records."""
        return f"{self.base} -> {self.candidate}"

    @property
    def setting(self) -> str:
        """The pass and batch, e.g. ``infer b1`` (``infer b1 compiled`` under ``torch.compile``)."""
        return f"{self.mode} b{self.batch_size}" + " compiled" * self.compile


RESNET = ("resnet50", "se_resnet50")
MOBILE = ("mobilenet_v3_large:se=off", "mobilenet_v3_large")
PAPER_LAYOUT = ("resnet50:layout=paper", "se_resnet50:layout=paper")

QUICK_CASES = (
    BenchCase(*RESNET, batch_size=1),
    BenchCase(*RESNET, batch_size=8),
    BenchCase(*MOBILE, batch_size=1),
    BenchCase(*PAPER_LAYOUT, batch_size=1),
)
FULL_CASES = (
    *QUICK_CASES,
    BenchCase(*RESNET, batch_size=32),
    BenchCase(*RESNET, batch_size=32, mode="train"),
    BenchCase(*MOBILE, batch_size=8),
    BenchCase("mobilenet_v1", "se_mobilenet_v1", batch_size=1),
    BenchCase("resnext50_32x4d", "se_resnext50_32x4d", batch_size=1),
    BenchCase(*RESNET, batch_size=1, compile=True),
    BenchCase(*MOBILE, batch_size=1, compile=True),
)


def cases(*, full: bool) -> tuple[BenchCase, ...]:
    """The pairs a quick (default) or full bench times."""
    return FULL_CASES if full else QUICK_CASES


def _canonical(model: str) -> str:
    source = parse_source(model)
    return str(parse_model_spec(model)) if source.kind == "catalog" else str(source)


def _built(model: str, device: str = "meta"):
    """The module a model argument of any source names, built on ``device``."""
    return build(model, device=device).module


def pair_models(selected: Iterable[BenchCase]) -> list[str]:
    """Canonical names of every model the pairs name, in order, once each."""
    names = [_canonical(m) for case in selected for m in (case.base, case.candidate)]
    return list(dict.fromkeys(names))


def _figure(model: str, metric: str, setting: str, unit: str, value: float, **extra: object) -> dict:
    return {"model": model, "metric": metric, "setting": setting, "unit": unit, "value": value, **extra}


def static_figures(models: Iterable[str], *, shape: tuple[int, ...] = STATIC_SHAPE) -> list[dict]:
    """Exact static counts of each model at ``shape`` (1x3x224x224 by default)."""
    figures = []
    setting = "x".join(str(s) for s in shape)
    for model in models:
        total = analyze(_built(model), shape, name=model).total
        for metric in STATIC_METRICS:
            unit = STATIC_UNITS.get(metric, "elements")
            figures.append(_figure(model, metric, setting, unit, getattr(total, metric), deterministic=True))
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
            profile = measure_memory(built, shape, mode=mode, device=device, dtype=DTYPES[dtype])
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


def latency_options(case: BenchCase, *, budget_s: float, threads: int | None) -> LatencyOptions:
    """The timing options of one bench case on the CPU, at 224x224."""
    runtime = RuntimeOptions(mode=case.mode, threads=threads, budget_s=budget_s, compile=case.compile)
    return runtime.latency(batch_size=case.batch_size, input_size=(224, 224))


def prediction_fields(case: BenchCase, result: PairedLatency, machine: MachineModel) -> dict:
    """What FLOPs and the machine model predicted for a timed pair, and the model's error in points.

    Inference only: the machine model prices a forward pass; a training pair gets None with the reason.
    """
    if case.mode != "infer":
        return {"flops_pct": None, "predicted_pct": None, "prediction_error_pp": None,
                "prediction_note": "the machine model prices inference only"}  # fmt: skip
    shape = (case.batch_size, 3, 224, 224)
    explained = explain_time(
        (case.base, _built(case.base)), (case.candidate, _built(case.candidate)),
        machine=machine, latency=None, op_times=None, input_shape=shape,
    )  # fmt: skip
    gaps = {**explained.base.prediction.uncovered, **explained.candidate.prediction.uncovered}
    return {
        "flops_pct": explained.flops_pct,
        "predicted_pct": explained.predicted_pct,
        "prediction_error_pp": explained.predicted_pct - result.overhead_pct,
        "prediction_note": f"machine model {machine.key}"
        + (f"; ops with no rule, left out: {sorted(gaps)}" if gaps else ""),
    }


def latency_figure(case: BenchCase, result: PairedLatency, prediction: dict | None = None) -> dict:
    """The timing figure of one pair: overhead with CI, each side's median and IQR, pairs and wall time
    (and, when given, what FLOPs and the machine model predicted: ``prediction_fields``)."""
    options = result.options
    threads = options.threads or torch.get_num_threads()
    setting = f"{options.device} {options.mode} b{options.batch_size} {options.dtype} threads={threads}"
    setting += f" heap={options.allocator}" + " compiled" * options.compile + _size_suffix(options.input_size)
    base, candidate = result.base, result.candidate
    return _figure(
        f"{_canonical(case.base)} -> {_canonical(case.candidate)}",
        "latency_overhead",
        setting,
        "%",
        result.overhead_pct,
        deterministic=False,
        ci_low=result.ci_low_pct,
        ci_high=result.ci_high_pct,
        samples=result.pairs,
        processes=result.processes,
        ci_reason=result.ci_reason,
        base_median_s=base.median_s,
        candidate_median_s=candidate.median_s,
        base_iqr_s=base.q3_s - base.q1_s,
        candidate_iqr_s=candidate.q3_s - candidate.q1_s,
        wall_s=result.wall_s,
        noisy=result.noisy,
        batch_size=options.batch_size,
        mode=options.mode,
        compiled=options.compile,
        heap=result.heap,
        base_page_faults_per_call=base.page_faults_per_call,
        candidate_page_faults_per_call=candidate.page_faults_per_call,
        **(prediction or {}),
    )


def tool_cost_figure(
    model: str, tool: list[float], bare: list[float], *, threads: int, wall_s: float
) -> dict:
    """The tool's own cost: median over pairs of its sample over a bare ``perf_counter`` loop's, in %, CI."""
    ratios = [(t / b - 1) * 100 for t, b in zip(tool, bare, strict=True)]
    low, high = bootstrap_median_ci(ratios)
    return _figure(
        _canonical(model),
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
    models = list(dict.fromkeys([*list_models(), *pairs]))
    return static_figures(models) + memory_figures(pairs)


def figure_key(figure: dict) -> tuple[str, str, str]:
    """How figures are matched across records: (model, metric, setting)."""
    return (figure["model"], figure["metric"], figure["setting"])
