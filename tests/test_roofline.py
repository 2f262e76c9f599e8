"""The machine model: roofline times on hand-made events and machines, storage validated on read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from senet_profile.analysis.roofline import (
    FORMAT_VERSION,
    MachineModel,
    load,
    load_or_measure,
    measure_machine,
    op_time,
    predict,
    save,
    seconds_in_rounds,
    setting_key,
)
from senet_profile.analysis.trace import OpEvent
from senet_profile.errors import UserInputError


def machine(**changes: object) -> MachineModel:
    """1 GB/s up to 1 kB, 0.1 GB/s from 1 MB; dense convs at 1 GMAC/s; round fixed costs."""
    fields: dict[str, object] = dict(
        device="cpu", dtype="fp32", threads=1, bandwidth=((1000, 1e9), (1_000_000, 1e8)),
        mac_rates={"dense": 1e9}, efficiency={"elementwise": 1.0, "reduction": 0.5},
        fixed_s={"dense": 1e-6, "elementwise": 2e-6, "reduction": 3e-6}, view_overhead_s=1e-7,
    )  # fmt: skip
    return MachineModel(**(fields | changes))


def event(op: str, category: str, *, macs: int = 0, moved: int = 0, kind: str = "") -> OpEvent:
    return OpEvent(op, category, "m", macs, 0, 0, bytes_read=moved, bytes_written=0, kind=kind)


def test_compute_bound_conv() -> None:
    timed = op_time(machine(), event("convolution", "mac", macs=2_000_000, moved=1000, kind="dense"))
    assert timed.bound == "compute"
    assert timed.seconds == pytest.approx(2e-3 + 1e-6)  # max(2e6 / 1e9, 1000 / 1e9) + fixed


def test_memory_bound_elementwise_at_the_dram_bandwidth() -> None:
    timed = op_time(machine(), event("relu", "elementwise", moved=1_000_000))
    assert timed.bound == "memory"
    assert timed.seconds == pytest.approx(1e6 / 1e8 + 2e-6)


def test_family_efficiency_and_cache_interpolation() -> None:
    reduction = op_time(machine(), event("mean", "reduction", moved=1000))
    assert reduction.seconds == pytest.approx(1000 / (1e9 * 0.5) + 3e-6)
    # log-log between (1e3, 1e9) and (1e6, 1e8): at the geometric middle, the geometric mean.
    assert machine().bandwidth_at(31_623) == pytest.approx(math.sqrt(1e9 * 1e8), rel=1e-4)
    assert machine().bandwidth_at(10) == 1e9 and machine().bandwidth_at(10**9) == 1e8


def test_views_cost_the_view_constant_only() -> None:
    assert op_time(machine(), event("view", "view")).seconds == 1e-7


def test_ops_without_a_rule_are_listed_not_zeroed() -> None:
    events = [
        (event("relu", "elementwise", moved=1000), "elementwise"),
        (event("cumsum", "unknown", moved=1000), "unknown"),
        (event("convolution", "mac", macs=10, kind="depthwise"), "conv"),  # a kind never measured
    ]
    prediction = predict(machine(), events)
    assert prediction.uncovered == {"cumsum": 1, "convolution (depthwise)": 1}
    assert prediction.by_class == {"elementwise": pytest.approx(1000 / 1e9 + 2e-6)}
    assert prediction.total_s == pytest.approx(1000 / 1e9 + 2e-6)


def test_store_round_trip_keeps_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "machine" / "class.json"
    save(path, machine())
    save(path, machine(threads=2))
    assert load(path, setting_key("cpu", "fp32", 1)) == machine()
    assert load(path, setting_key("cpu", "fp32", 2)) == machine(threads=2)
    assert load(path, setting_key("cpu", "bf16", 1)) is None
    assert load(tmp_path / "absent.json", "cpu fp32 threads=1") is None


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"version": 99, "models": {}}', '{"version": "3", "models": {}}',
     '{"version": 3, "models": []}', '{"version": 3, "models": {"cpu fp32 threads=1": {"device": "cpu"}}}'],
)  # fmt: skip
def test_corrupt_store_is_refused_and_kept(tmp_path: Path, text: str) -> None:
    path = tmp_path / "class.json"
    path.write_text(text)
    with pytest.raises(UserInputError, match=r"class\.json"):
        load(path, "cpu fp32 threads=1")
    with pytest.raises(UserInputError):
        save(path, machine())
    assert path.read_text() == text  # nothing recorded is lost


def test_out_of_range_figures_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "class.json"
    save(path, machine())
    data = json.loads(path.read_text())
    data["models"]["cpu fp32 threads=1"]["mac_rates"]["dense"] = -1.0
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match="out of range"):
        load(path, "cpu fp32 threads=1")


def test_stored_model_is_used_without_measuring(tmp_path: Path) -> None:
    path = tmp_path / "class.json"
    save(path, machine())
    assert load_or_measure(path, device="cpu", dtype="fp32", threads=1) == machine()


def test_cuda_without_a_gpu_is_refused(no_cuda: None) -> None:
    with pytest.raises(UserInputError, match="no CUDA device"):
        measure_machine(device="cuda")


def test_meta_device_is_refused() -> None:
    with pytest.raises(UserInputError, match="cpu or cuda"):
        measure_machine(device="meta")


def test_a_stale_format_is_measured_again_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "class.json"
    path.write_text(json.dumps({"version": FORMAT_VERSION - 1, "models": {"cpu fp32 threads=1": {}}}))
    assert load(path, "cpu fp32 threads=1") is None  # measured the old way: not used
    save(path, machine())
    assert json.loads(path.read_text())["version"] == FORMAT_VERSION
    assert load(path, "cpu fp32 threads=1") == machine()


def test_calibration_calls_are_timed_in_rounds_never_back_to_back() -> None:
    from senet_profile.analysis.roofline import _Probe

    calls: list[str] = []
    probes = [_Probe(name, lambda name=name: calls.append(name)) for name in ("a", "b", "c")]
    seconds = seconds_in_rounds(probes, lambda: None, rounds=5)
    assert set(seconds) == {"a", "b", "c"} and all(s >= 0 for s in seconds.values())
    assert calls == ["a", "b", "c"] * 6  # one untimed round, then five timed ones, each op between others


def test_a_matrix_vector_product_is_timed_by_its_traffic() -> None:
    streamed = machine(efficiency={"matvec": 0.5}, fixed_s={"matvec": 4e-6})
    timed = op_time(streamed, event("convolution", "mac", macs=10**9, moved=1000, kind="matvec"))
    assert timed.bound == "memory" and timed.compute_s == 0  # no MAC rate applies: the weights stream
    assert timed.seconds == pytest.approx(1000 / (1e9 * 0.5) + 4e-6)
    assert op_time(machine(), event("convolution", "mac", macs=10, moved=10, kind="matvec")) is None


def test_off_path_elementwise_ops_are_priced_by_their_element_rate() -> None:
    """A broadcast or mixed-layout op takes the larger of its bytes' time and its elements at the off-path
    rate; a mixed one takes the probed mixed rate where there is one, else the broadcast rate."""
    ops = {access: OpEvent("mul", "elementwise", "m", 0, 1000, 1000, bytes_read=1000, access=access)
           for access in ("dense", "broadcast", "mixed")}  # fmt: skip
    modelled = machine(strided_elements_per_s=1e5)
    assert op_time(modelled, ops["dense"]).seconds == pytest.approx(1000 / 1e9 + 2e-6)
    assert op_time(modelled, ops["broadcast"]).seconds == pytest.approx(1000 / 1e5 + 2e-6)
    assert op_time(modelled, ops["broadcast"]).bound == "compute"
    assert op_time(modelled, ops["mixed"]).seconds == pytest.approx(1000 / 1e5 + 2e-6)
    probed = machine(strided_elements_per_s=1e5, mixed_elements_per_s=5e4)
    assert op_time(probed, ops["mixed"]).seconds == pytest.approx(1000 / 5e4 + 2e-6)
    assert op_time(machine(), ops["broadcast"]).seconds == op_time(machine(), ops["dense"]).seconds
    prediction = predict(probed, [(ops["broadcast"], "a"), (ops["mixed"], "b"), (ops["dense"], "c")])
    assert prediction.off_path["broadcast"][:2] == (1, pytest.approx(1e-2 + 2e-6))
    assert prediction.off_path["mixed"][2] == pytest.approx(2e-2 + 2e-6 - max(1e-6, 2e-6))
    assert "dense" not in prediction.off_path


def test_reductions_take_their_efficiency_by_contiguous_run() -> None:
    """Run 1 (across rows) has its own point; longer runs interpolate on log(run), clamped at the ends."""
    from senet_profile.analysis.roofline import reduction_efficiency

    runs = machine(reduction_runs=((1, 0.8), (49, 0.2), (3136, 0.9)))
    assert reduction_efficiency(runs, 1, 0.5) == 0.8
    assert reduction_efficiency(runs, 49, 0.5) == 0.2 and reduction_efficiency(runs, 10, 0.5) == 0.2
    assert reduction_efficiency(runs, 392, 0.5) == pytest.approx(0.2 + 0.7 * 0.5, rel=1e-9)  # sqrt(49*3136)
    assert reduction_efficiency(runs, 10**6, 0.5) == 0.9
    assert reduction_efficiency(machine(reduction_runs=((49, 0.2),)), 1, 0.5) == 0.5  # no point: family's
    mean = OpEvent("mean", "reduction", "m", 0, 1000, 1, bytes_read=1000, reduced_run=49)
    assert op_time(runs, mean).seconds == pytest.approx(1000 / (1e9 * 0.2) + 3e-6)
    assert op_time(machine(), mean).seconds == pytest.approx(1000 / (1e9 * 0.5) + 3e-6)


@pytest.mark.parametrize(
    "change",
    [{"strided_elements_per_s": -1.0}, {"mixed_elements_per_s": -2.0},
     {"reduction_runs": [[49, 0.2], [1, 0.8]]}, {"reduction_runs": [[1, 0.0]]}],
    ids=["negative broadcast rate", "negative mixed rate", "unsorted runs", "zero efficiency"],
)  # fmt: skip
def test_off_path_figures_are_validated_on_read(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "class.json"
    save(path, machine(strided_elements_per_s=1e5, reduction_runs=((1, 0.8), (49, 0.2))))
    assert load(path, "cpu fp32 threads=1").reduction_runs == ((1, 0.8), (49, 0.2))
    data = json.loads(path.read_text())
    data["models"]["cpu fp32 threads=1"].update(change)
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match="out of range"):
        load(path, "cpu fp32 threads=1")


def test_a_gpu_model_keeps_each_class_host_and_device_chains_apart() -> None:
    """On a dispatched (GPU) model, ``chains`` holds per class the ops issued (views and free ops not
    counted), their host seconds and their device seconds; a CPU model keeps none."""
    gpu = machine(host_s={"elementwise": 5e-6, "view": 1e-6}, min_device_s={"elementwise": 3e-6})
    assert gpu.dispatched
    relu = event("relu", "elementwise", moved=1_000_000)  # 1e6 B at 0.1 GB/s: 10 ms on the device
    tiny = event("relu", "elementwise", moved=10)  # below the least kernel time
    view = event("view", "view")
    steps = [(relu, "a"), (tiny, "b"), (view, "b"), (tiny, "b")]
    prediction = predict(gpu, steps)
    assert prediction.chains["a"] == (1, pytest.approx(5e-6), pytest.approx(1e6 / 1e8))
    ops, host, device = prediction.chains["b"]
    assert ops == 2 and host == pytest.approx(2 * 5e-6 + 1e-6) and device == pytest.approx(2 * 3e-6)
    # the total is the device chain's finish: never less than either chain alone
    assert prediction.total_s >= sum(d for _, _, d in prediction.chains.values())
    assert prediction.total_s >= sum(h for _, h, _ in prediction.chains.values())
    assert predict(machine(), steps).chains == {}
