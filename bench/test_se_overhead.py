"""SE's latency overhead for the key pairs, timed paired and interleaved inside pytest-benchmark.

pytest-benchmark times the whole paired measurement (one round); the figure that matters, the overhead with
its 95 % CI, is computed by ``senet_profile.analysis.latency.measure_paired`` and handed over in
``extra_info["figure"]``, beside each side's params, MACs, activations and tracked peak memory, and what
FLOPs and the machine model (``RESULTS/machine/<class>.json``, measured once when missing) predicted.
"""

from __future__ import annotations

from pathlib import Path

from senet_profile import api
from senet_profile.history.bench import (
    BenchCase,
    latency_figure,
    latency_setting,
    prediction_fields,
)
from senet_profile.history.machine import describe_machine


def _static_info(model: str, case: BenchCase) -> dict[str, int]:
    setting = case.setting.resolved(input_size=(224, 224))
    frame = api.profile(model, setting=setting, metrics=("static", "memory"))
    value = dict(zip(frame["metric"] + "/" + frame["scope"], frame["value"], strict=True))
    return {key: int(value[f"{key}/model"]) for key in ("params", "macs", "activations", "memory_peak")}


def test_se_overhead(
    benchmark, case: BenchCase, budget: float, threads: int | None, machine_dir: Path
) -> None:
    setting = latency_setting(case, budget_s=budget, threads=threads)
    result = benchmark.pedantic(
        api.time_pair, args=(case.base, case.candidate), kwargs={"setting": setting}, rounds=1, iterations=1
    )
    explanation = None
    if setting.mode == "infer":  # the machine model prices a forward pass
        explanation = api.explain(
            case.base, case.candidate, setting=setting, measure=False,
            machine_path=machine_dir / f"{describe_machine().machine_class}.json",
        )  # fmt: skip
    prediction = prediction_fields(case, result, explanation)
    benchmark.extra_info["figure"] = latency_figure(case, result, prediction)
    for side, name in (("base", case.base), ("candidate", case.candidate)):
        benchmark.extra_info |= {f"{side}_{key}": value for key, value in _static_info(name, case).items()}
    assert result.pairs >= 2
    if result.ci_low_pct is None:  # too few pairs for an interval (a long training pass): the reason says so
        assert result.ci_reason.startswith(f"{result.pairs} pairs")
    else:
        assert result.ci_low_pct <= result.overhead_pct <= result.ci_high_pct
