"""SE's latency overhead for the key pairs, timed paired and interleaved inside pytest-benchmark.

pytest-benchmark times the whole paired measurement (one round); the figure that matters, the overhead with
its 95 % CI, is computed by ``senet_profile.analysis.latency.measure_paired`` and handed over in
``extra_info["figure"]``, beside each side's params, MACs, activations and tracked peak memory, and what
FLOPs and the machine model (``RESULTS/machine/<class>.json``, measured once when missing) predicted.
"""

from __future__ import annotations

from pathlib import Path

from senet_profile.analysis.latency import measure_paired
from senet_profile.analysis.memory import measure_memory
from senet_profile.analysis.roofline import load_or_measure
from senet_profile.analysis.static import analyze
from senet_profile.catalog.registry import get_model
from senet_profile.history.bench import BenchCase, latency_figure, latency_options, prediction_fields
from senet_profile.history.machine import describe_machine


def _static_info(model: str, case: BenchCase) -> dict[str, int]:
    shape = (case.batch_size, 3, 224, 224)
    total = analyze(get_model(model), shape, name=model).total
    memory = measure_memory(get_model(model), shape, mode=case.mode, device="meta")
    return {
        "params": total.params,
        "macs": total.macs,
        "activations": total.activations,
        "memory_peak": memory.peak_bytes,
    }


def test_se_overhead(
    benchmark, case: BenchCase, budget: float, threads: int | None, machine_dir: Path
) -> None:
    base, candidate = (get_model(name, device="cpu") for name in (case.base, case.candidate))
    options = latency_options(case, budget_s=budget, threads=threads)
    result = benchmark.pedantic(measure_paired, args=(base, candidate, options), rounds=1, iterations=1)
    machine = load_or_measure(
        machine_dir / f"{describe_machine().machine_class}.json", device="cpu", dtype="fp32",
        threads=options.threads or 1,
    )  # fmt: skip
    benchmark.extra_info["figure"] = latency_figure(case, result, prediction_fields(case, result, machine))
    for side, name in (("base", case.base), ("candidate", case.candidate)):
        benchmark.extra_info |= {f"{side}_{key}": value for key, value in _static_info(name, case).items()}
    assert result.pairs >= 2
    if result.ci_low_pct is None:  # too few pairs for an interval (a long training pass): the reason says so
        assert result.ci_reason.startswith(f"{result.pairs} pairs")
    else:
        assert result.ci_low_pct <= result.overhead_pct <= result.ci_high_pct
