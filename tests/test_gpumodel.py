"""The H200 machine model, derived offline from the shared traces, against the H200's measured overheads.

The measured figures are read from tests/data/h200_measured.json (copied from the shared folder's README).
Within +/-3 pp is the target; the two settings it misses are marked as expected failures (strict), with
their errors in the reason, so that a change that fixes them shows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from senet_profile.analysis import kerneltrace, roofline
from senet_profile.analysis.overhead import explain_time
from senet_profile.catalog.registry import get_model

DATA = Path(__file__).parent / "data"
RESULTS = Path(__file__).parent.parent / "results"
MEASURED = json.loads((DATA / "h200_measured.json").read_text(encoding="utf-8"))
SHARED = Path("/work/shared/gpu-h200-2026-12")
MISSED = {  # setting -> why it misses (the error as of the committed model)
    "inference b1 fp32 (TF32)": (
        "-3.8 pp: host-bound; SE's ops are priced at the base's host figures per call kind, and the trace "
        "shows them costing about that (SE's mul itself 14-18 us profiled; its 37 us gap holds the SE "
        "range's exit, a profiling artefact); the model's +51.1 % matches the same run's medians (+51.0 %), "
        "not its median of per-pair ratios (+54.9 %); the GPU check's one-process run (+54.75 %, ratio of "
        "medians +54.1 %) leaves about 2 us of host time per SE block unpriced, which the hooked traces "
        "cannot isolate"
    ),
    "training b256 bf16 channels-last": (
        "-7.8 pp: in channels-last the squeeze's gradient comes back channels-first and is summed into the "
        "channels-last gradient (16 mixed-layout adds), priced at the broadcast rate for want of a probe "
        "of an add across layouts (a lower bound); the recorded times put SE's backward near 18.7 ms, the "
        "model at 14.6 ms; no backward kernel trace was recorded; the measured +43.9 % implies those adds at "
        "about 176 Gelem/s, 0.47 of the broadcast rate (within 3 pp for 146-220 Gelem/s)"
    ),
}


def _case(case: dict, *, mixed_elements_per_s: float = 0.0) -> float:
    path = RESULTS / "machine" / f"{MEASURED['machine_class']}.json"
    key = roofline.setting_key("cuda", case["dtype"], 1, channels_last=case["channels_last"])
    machine = roofline.load(path, key)
    assert machine is not None and machine.dispatched
    if mixed_elements_per_s:
        machine = replace(machine, mixed_elements_per_s=mixed_elements_per_s)
    models = [(name, get_model(name)) for name in ("resnet50", "se_resnet50")]
    explained = explain_time(
        *models, machine=machine, latency=None, op_times=None, input_shape=(case["batch"], 3, 224, 224),
        mode=case["mode"],
    )  # fmt: skip
    return explained.predicted_pct


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=MISSED[c["setting"]]))
        if c["setting"] in MISSED
        else c
        for c in MEASURED["cases"]
    ],
    ids=[c["setting"] for c in MEASURED["cases"]],
)
def test_offline_prediction_within_3pp(case: dict) -> None:
    predicted = _case(case)
    assert abs(predicted - case["overhead_pct"]) <= 3.0, f"predicted {predicted:+.1f} %"


@pytest.mark.parametrize(("rate", "inside"), [(146e9, True), (220e9, True), (120e9, False), (260e9, False)])
def test_bf16_training_closes_for_a_mixed_rate_the_readme_names(rate: float, inside: bool) -> None:
    """The README's claim: a probed add across layouts at 146-220 Gelem/s (the committed model prices it at
    the broadcast rate, 370) puts the bf16 channels-last training case within 3 pp; outside, it misses."""
    (case,) = [c for c in MEASURED["cases"] if c["channels_last"]]
    predicted = _case(case, mixed_elements_per_s=rate)
    assert (abs(predicted - case["overhead_pct"]) <= 3.0) is inside, f"predicted {predicted:+.1f} %"


def test_trace_parsed_kernels_attributed_to_ops_and_se() -> None:
    traced = kerneltrace.read_trace(DATA / "h200_b1_fp32_se_resnet50.trace.json.gz")
    assert traced.kernels() == 355
    assert traced.device_s() == pytest.approx(1.066e-3, rel=2e-3)
    kernels, seconds = traced.se_kernels()
    assert kernels == 137 and seconds == pytest.approx(0.269e-3, rel=5e-3)
    names = {op.name for op in traced.ops if op.se}
    assert names == {"aten::mean", "aten::conv2d", "aten::relu_", "aten::sigmoid", "aten::mul"}


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared H200 folder is not on this machine")
def test_committed_model_is_what_the_derivation_gives(tmp_path: Path) -> None:
    from bench.derive_gpu_machine import main

    assert main(["--shared", str(SHARED), "--results", str(tmp_path)]) == 0
    name = f"{MEASURED['machine_class']}.json"
    assert json.loads((tmp_path / "machine" / name).read_text()) == json.loads(
        (RESULTS / "machine" / name).read_text()
    )


def test_explain_on_cuda_offline_without_a_gpu() -> None:
    from typer.testing import CliRunner

    from senet_profile.cli import app

    args = ["explain", "resnet50", "se_resnet50", "--device", "cuda", "--no-measure", "--machine-class",
            MEASURED["machine_class"], "--results", str(RESULTS)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "machine model predicts" in done.stdout and "launch-free (model)" in done.stdout
    refused = CliRunner().invoke(app, [*args, "--math", "ieee"])  # no IEEE model was derived
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: no machine model for 'cuda fp32 math=ieee threads=1'")


def _trace(name: str) -> kerneltrace.TracedForward:
    return kerneltrace.read_trace(DATA / f"h200_{name}.trace.json.gz")


def test_se_bound_from_recorded_traces() -> None:
    """At batch 1 SE's cost is the host issuing its kernels; at 256 it is memory traffic below the peak."""
    from senet_profile.analysis.overhead import static_side

    machine = _h200()
    peak = 4.96e12
    for name, batch, bound in (("b1_fp32_se_resnet50", 1, "host dispatch"),
                               ("b256_fp32_se_resnet50", 256, "memory traffic")):  # fmt: skip
        static, _ = static_side(
            get_model("se_resnet50"), (batch, 3, 224, 224), name="se", dtype="fp32", machine=machine
        )
        cost = kerneltrace.se_cost(
            _trace(name), se_bytes=static.total.bytes_moved_se, peak_bandwidth=peak,
            se_macs=static.total.macs_se, mac_rate=6e13,
        )  # fmt: skip
        assert cost.bound == bound, cost.detail()
    assert cost.kernels == 138 and cost.kernel_s == pytest.approx(6.567e-3, rel=1e-3)
    assert 2.4e12 < cost.achieved_bandwidth < 2.8e12  # README: about 2.6 TB/s against 4.5-5.0
    assert "15.9 GiB" in cost.detail()


@pytest.mark.parametrize(
    ("trace", "batch", "bound"),
    [("b1_fp32", 1, "host dispatch"), ("b256_fp32", 256, "memory traffic")],
)
def test_without_a_trace_the_verdict_is_the_machine_model_s(trace: str, batch: int, bound: str) -> None:
    """``explain --no-measure`` on CUDA names SE's bound from the model's two chains, and says so; the
    model's SE share of the device time agrees with the recorded kernels' share (the traces: an
    independent reference, since the model's SE figures come from the built model and the base's
    trace, its class multipliers from SE's own large-batch forward)."""
    from senet_profile.analysis.overhead import verdicts

    models = [(name, get_model(name)) for name in ("resnet50", "se_resnet50")]
    explained = explain_time(
        *models, machine=_h200(), latency=None, op_times=None, input_shape=(batch, 3, 224, 224)
    )
    rows = {row["verdict"]: row for row in verdicts(explained)}
    row = rows[f"SE bound (model): {bound}"]
    assert "SE bound: " + bound not in rows  # nothing measured: the row says it is the model's
    assert "96 SE ops" in row["detail"] and "of the forward's" in row["detail"]
    traced = _trace(f"{trace}_se_resnet50")
    _, kernel_s = traced.se_kernels()
    assert row["overhead_pct"] == pytest.approx(kernel_s / traced.device_s() * 100, abs=1.5)
    cost = explained.se_kernels
    assert cost is not None and cost.predicted
    if batch > 1:  # at batch 1 the model's small kernels are slower than traced (its probes synchronised)
        assert cost.kernel_s == pytest.approx(kernel_s, rel=0.05)


def test_the_model_s_verdict_covers_a_training_pass() -> None:
    """bf16 channels-last training: the model's verdict counts SE's forward and backward ops and their
    share of the pass's device time."""
    from senet_profile.analysis.overhead import verdicts

    path = RESULTS / "machine" / f"{MEASURED['machine_class']}.json"
    machine = roofline.load(path, roofline.setting_key("cuda", "bf16", 1, channels_last=True))
    models = [(name, get_model(name)) for name in ("resnet50", "se_resnet50")]
    explained = explain_time(
        *models, machine=machine, latency=None, op_times=None, input_shape=(256, 3, 224, 224), mode="train"
    )
    row = next(r for r in verdicts(explained) if r["verdict"].startswith("SE bound (model)"))
    assert row["verdict"] == "SE bound (model): memory traffic"
    assert "240 SE ops" in row["detail"] and "of the training pass's" in row["detail"]
    chains = explained.candidate.prediction.chains
    se_device = sum(d for c, (_, _, d) in chains.items() if c.startswith("se_"))
    assert row["overhead_pct"] == pytest.approx(se_device / sum(d for _, _, d in chains.values()) * 100)


def test_explain_on_cuda_from_a_recorded_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """explain's CUDA path, with torch.profiler's traces replaced by the recorded H200 ones."""
    import torch

    from senet_profile.analysis import gpumodel
    from senet_profile.analysis.overhead import verdicts
    from senet_profile.setting import Setting

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    from senet_profile.catalog.se import se_module_names

    def replayed(model, options, repeats=3):
        traced = _trace("b1_fp32_se_resnet50" if se_module_names(model) else "b1_fp32_resnet50")
        shape = options.shape
        return gpumodel.op_times_from_trace(model, shape, options.dtype, traced), traced

    monkeypatch.setattr(gpumodel, "kernel_op_times", replayed)
    models = [(name, get_model(name)) for name in ("resnet50", "se_resnet50")]
    explained = explain_time(
        *models, machine=_h200(), latency=None, op_times=Setting(device="cuda", repeats=3)
    )
    table = explained.table.set_index("op_class")
    se_classes = [c for c in table.index if c.startswith("se_")]
    assert table.loc[se_classes, "measured_s_candidate"].sum() == pytest.approx(0.269e-3, rel=0.01)
    rows = {row["verdict"]: row for row in verdicts(explained)}
    assert "SE bound: host dispatch" in rows
    assert "137 kernels in SE ranges" in rows["SE bound: host dispatch"]["detail"]


def _h200() -> roofline.MachineModel:
    path = RESULTS / "machine" / f"{MEASURED['machine_class']}.json"
    machine = roofline.load(path, roofline.setting_key("cuda", "fp32", 1))
    assert machine is not None
    return machine


def test_fit_access_from_matched_ops() -> None:
    """The off-path rate is the broadcast ops' elements over their kernel seconds; reductions get one
    efficiency per contiguous run (their bytes at the probed bandwidth over their kernel seconds)."""
    from senet_profile.analysis.gpumodel import Matched, fit_access
    from senet_profile.analysis.kerneltrace import TracedOp
    from senet_profile.analysis.trace import OpEvent

    machine = _h200()
    flat = roofline.MachineModel(**{**machine.__dict__, "bandwidth": ((1, 1e12),), "reduction_runs": ()})
    scale = OpEvent("mul", "elementwise", "se", 0, 10**6, 10**6, bytes_read=4 * 10**6, access="broadcast")
    relu = OpEvent("relu", "elementwise", "a", 0, 10**6, 10**6, bytes_read=8 * 10**6)
    mean = OpEvent("mean", "reduction", "se", 0, 10**6, 10**3, bytes_read=4 * 10**6, reduced_run=49)
    matched = [
        Matched(scale, "se_scale", TracedOp("aten::mul", (), 1, 2e-6, 0.0, "se")),
        Matched(scale, "se_scale", TracedOp("aten::mul", (), 1, 6e-6, 0.0, "se")),
        Matched(relu, "elementwise", TracedOp("aten::relu_", (), 1, 1e-3, 0.0, "")),
        Matched(mean, "se_squeeze", TracedOp("aten::mean", (), 1, 8e-6, 0.0, "se")),
    ]
    fitted = fit_access(matched, flat)
    assert fitted.strided_elements_per_s == pytest.approx(2 * 10**6 / 8e-6)
    assert fitted.reduction_runs == ((49, pytest.approx(4e-6 / 8e-6)),)
    assert fit_access(matched[2:3], flat).strided_elements_per_s == flat.strided_elements_per_s


def test_explain_names_the_ops_off_the_contiguous_path() -> None:
    """bf16 channels-last training: SE's broadcasts and the mixed-layout gradient sums, with their rate."""
    from senet_profile.analysis.overhead import verdicts

    path = RESULTS / "machine" / f"{MEASURED['machine_class']}.json"
    machine = roofline.load(path, roofline.setting_key("cuda", "bf16", 1, channels_last=True))
    assert machine is not None and machine.strided_elements_per_s > 0 and not machine.mixed_elements_per_s
    models = [(name, get_model(name)) for name in ("resnet50", "se_resnet50")]
    explained = explain_time(
        *models, machine=machine, latency=None, op_times=None, input_shape=(256, 3, 224, 224), mode="train"
    )
    row = next(r for r in verdicts(explained) if r["verdict"] == "off the contiguous path (model)")
    assert "se_resnet50: 49 broadcast" in row["detail"] and "17 mixed" in row["detail"]
    assert "not probed: a lower bound" in row["detail"]
    assert 10 < row["overhead_pct"] < explained.predicted_pct
