"""bench/gpu_check.py: every path run on the CPU with tiny models (the device swapped), and its refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check
from senet_profile.analysis import roofline
from senet_profile.history.schema import check_record

SCRIPT = Path(__file__).parent.parent / "bench" / "gpu_check.py"
SMALL = Path(__file__).parent / "small_cnn.py"
TINY = (f"{SMALL}:small_cnn", f"{SMALL}:small_cnn:se=on")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: run the script itself")
def test_without_a_gpu_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--results", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: no CUDA device") and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def _stored_models(results: Path, machine_class: str) -> None:
    """A dispatched (GPU-style) machine model for the CPU's fp32 settings, so predictions are made."""
    for math in ("ieee", "default"):
        roofline.save(
            results / "machine" / f"{machine_class}.json",
            roofline.MachineModel(
                device="cpu", dtype="fp32", threads=1, bandwidth=((1000, 1e10), (10**8, 1e10)),
                mac_rates={k: 1e10 for k in ("dense", "pointwise", "gemm")},
                efficiency={k: 0.5 for k in ("elementwise", "transcendental", "reduction", "pooling",
                                               "normalization", "data", "matvec")},
                fixed_s={k: 0.0 for k in ("dense", "pointwise", "gemm", "elementwise", "transcendental",
                                          "reduction", "pooling", "normalization", "data", "matvec")},
                view_overhead_s=0.0, host_s={"conv": 2e-5, "elementwise": 1e-5, "reduction": 1e-5,
                                             "matmul": 2e-5, "view": 5e-6, "transcendental": 1e-5},
                min_device_s={}, math=math,
            ),
        )  # fmt: skip


def test_every_path_runs_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager in three precisions and both modes, compiled, graph replay, memory, predictions, the files."""
    compiled = []
    real_compile = torch.compile

    def eager_compile(model, **options):  # inductor would take minutes on 2 cores; dynamo still runs
        compiled.append(options)
        return real_compile(model, backend="eager", **options)

    monkeypatch.setattr(torch, "compile", eager_compile)
    config = gpu_check.CheckConfig(
        device="cpu", pair=TINY, large_batch=2, input_size=(16, 16), budget_s=0.05, min_pairs=4,
        memory=(("infer", 1), ("train", 2)), results=tmp_path, machine_class="tiny-cpu",
    )  # fmt: skip
    _stored_models(tmp_path, "tiny-cpu")
    report = gpu_check.run_check(config)
    rows = {row["setting"]: row for row in report["latency"]}
    assert list(rows) == [
        "infer b1 IEEE fp32", "infer b2 IEEE fp32", "train b2 IEEE fp32",
        "infer b1 TF32", "infer b2 TF32", "train b2 TF32",
        "infer b1 bf16 channels-last", "infer b2 bf16 channels-last", "train b2 bf16 channels-last",
        "infer b1 compiled", "infer b2 compiled", "infer b1 graph", "infer b2 graph",
    ]  # fmt: skip
    assert compiled == [{"dynamic": False}] * 4  # one compilation per model and batch
    assert rows["infer b1 TF32"]["precision"] == "IEEE fp32"  # the CPU has no TF32: named as it ran
    assert rows["train b2 bf16 channels-last"]["precision"] == "bf16, channels-last"
    assert rows["infer b2 compiled"]["precision"].endswith("torch.compile")
    for row in rows.values():
        assert row["pairs"] >= 2 and row["img_s_base"] == pytest.approx(row["batch"] / row["base_ms"] * 1e3)
    predicted = {name for name, row in rows.items() if row["predicted_pct"] is not None}
    assert predicted == {
        "infer b1 IEEE fp32", "infer b2 IEEE fp32", "train b2 IEEE fp32",  # stored math=ieee
        "infer b1 TF32", "infer b2 TF32", "train b2 TF32",  # falls back to the default math's model
        "infer b1 graph", "infer b2 graph",
    }  # fmt: skip
    graph, eager = rows["infer b1 graph"]["predicted_pct"], rows["infer b1 TF32"]["predicted_pct"]
    assert graph < eager  # no host dispatch in a replayed graph
    assert {(m["mode"], m["batch"]) for m in report["memory"]} == {("infer", 1), ("train", 2)}
    assert all(m["cuda_max_memory_allocated"] is None for m in report["memory"])
    paths = gpu_check.write(report, tmp_path / "gpu" / "tiny-cpu")
    record = json.loads(paths[0].read_text())
    check_record(record)  # the store's schema
    assert len(record["figures"]) == 13 + 4
    text = paths[1].read_text()
    assert "| infer b1 graph |" in text and "img/s" in text
    assert paths[2].stat().st_size > 0


def test_calibration_from_replayed_profiles(tmp_path: Path) -> None:
    """The GPU's own calibration, with the profiler replaced by the recorded H200 traces (no GPU here):
    the TF32 model it files is the one derived offline from the same traces."""
    from senet_profile.analysis.kerneltrace import read_trace
    from senet_profile.catalog.registry import get_model
    from senet_profile.catalog.se import se_module_names

    data = Path(__file__).parent / "data"
    committed = Path(__file__).parent.parent / "results" / "machine"
    h200 = "intel-r-xeon-r-processor-16c-nvidia-h200"
    derived = roofline.load(committed / f"{h200}.json", roofline.setting_key("cuda", "fp32", 1))
    assert derived is not None
    asked = []

    def replayed(model, batch, dtype, channels_last):
        asked.append((batch, dtype, channels_last))
        name = "se_resnet50" if se_module_names(model) else "resnet50"
        setting = "b1_fp32" if batch == 1 else ("b256_bf16_cl" if dtype == "bf16" else "b256_fp32")
        # the unprofiled wall of the batch-1 forward: profiler-summary.json of the shared H200 folder
        return read_trace(data / f"h200_{setting}_{name}.trace.json.gz"), 3.795841550000034e-3

    def trained(model, batch, dtype, channels_last):  # resnet50's recorded training steps at 256
        assert not se_module_names(model) and batch == 256
        return 54.01e-3 if dtype == "bf16" else 0.11656812499998637

    mixed_asked = []

    def mixed(dtype, shape):  # an add across layouts at stage 1's shape, in each precision
        mixed_asked.append((dtype, shape))
        return 2.5e11

    config = gpu_check.CheckConfig(results=tmp_path)
    models = gpu_check.calibrate(
        config, base=get_model("resnet50"), candidate=get_model("se_resnet50"), machine_class="h200-replayed",
        profile=replayed, probes=derived, train_time=trained, mixed_rate=mixed,
    )  # fmt: skip
    assert mixed_asked == [(d, (256, 256, 56, 56)) for d in ("fp32", "fp32", "bf16")]
    assert all(m.mixed_elements_per_s == 2.5e11 for m in models)
    assert [m.key for m in models] == [
        "cuda fp32 math=ieee threads=1", "cuda fp32 math=tf32 threads=1", "cuda bf16 channels-last threads=1"
    ]  # fmt: skip
    assert asked[0] == (1, "fp32", False) and len(asked) == 7
    tf32 = roofline.load(tmp_path / "machine" / "h200-replayed.json", models[1].key)
    assert tf32 is not None
    assert tf32.mac_rates == derived.mac_rates and tf32.class_scale == derived.class_scale
    assert tf32.host_s == derived.host_s and tf32.reduction_runs == derived.reduction_runs
    assert tf32.strided_elements_per_s == derived.strided_elements_per_s
    assert tf32.backward_mac_scale == pytest.approx(derived.backward_mac_scale)


def test_profiling_runs_up_to_the_profiler_on_the_cpu() -> None:
    """The on-device profiling path warms and times on the CPU, then refuses: kernel traces are CUDA's."""
    from senet_profile.api import resolve
    from senet_profile.errors import UserInputError

    config = gpu_check.CheckConfig(device="cpu", input_size=(16, 16))
    with pytest.raises(UserInputError, match="profiled on CUDA"):
        gpu_check._profile_on_device(resolve(TINY[1], device="cpu").module, 1, "fp32", True, config)
    seconds = gpu_check._train_time_on_device(resolve(TINY[0], device="cpu").module, 2, "fp32", True, config)
    assert 0 < seconds < 60
    assert gpu_check._mixed_rate_on_device("fp32", (2, 8, 6, 6), config) > 0  # the mixed-layout probe
