"""The training pass on the meta device: the backward's own ops, attributed to the forward ops they
differentiate, and priced by the machine model (``trace_ops(..., train=True)``, ``roofline``,
``gpumodel``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from senet_profile.analysis import gpumodel, roofline
from senet_profile.analysis.static import classified_events
from senet_profile.analysis.trace import OpEvent, trace_ops
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError

RESULTS = Path(__file__).parent.parent / "results"
H200 = RESULTS / "machine" / "intel-r-xeon-r-processor-16c-nvidia-h200.json"


class Net(nn.Module):
    """stem conv (its input needs no gradient) -> BN -> ReLU -> SE -> 1x1 conv -> pool -> linear."""

    def __init__(self, se: bool = True, width: int = 32, kernel: int = 1) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.ReLU(inplace=True)
        self.se = SEBlock(width, config=SEConfig(r=4)) if se else nn.Identity()
        self.conv = nn.Conv2d(width, 16, kernel, padding=kernel // 2, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(self.se(self.act(self.bn(self.stem(x)))))).flatten(1))


def _trained(model: nn.Module, shape: tuple[int, ...] = (2, 3, 16, 16)) -> list[tuple[OpEvent, str]]:
    meta = model.to("meta")
    return classified_events(meta, trace_ops(meta, torch.empty(shape, device="meta"), train=True))


def test_backward_ops_follow_the_forward_with_their_forward_module() -> None:
    events = [e for e, _ in _trained(Net())]
    phases = [e.phase for e in events]
    assert "backward" in phases and phases == sorted(phases, key=lambda p: p == "backward")
    forward = {e.module: e for e in events if e.phase == "forward" and e.op == "convolution"}
    backward = {e.module: e for e in events if e.op == "convolution_backward"}
    assert set(backward) == set(forward)  # every conv differentiated, each filed under its own module
    assert all(e.forward_op == "convolution" for e in backward.values())
    # closed form: the stem's input needs no gradient (weight gradient only), every other conv has both
    assert backward["stem"].macs == forward["stem"].macs == 2 * 16 * 16 * 32 * 3 * 9
    for module in ("conv", "se.fc1", "se.fc2"):
        assert backward[module].macs == 2 * forward[module].macs
    assert backward["se.fc1"].kind == "matvec" and backward["conv"].kind == "pointwise"
    assert all(e.category != "unknown" for e in events)


def test_se_backward_is_classed_as_se_and_moves_over_three_times_its_forward() -> None:
    classed = _trained(Net())
    se = [(e, c) for e, c in classed if c.startswith("se_")]
    by_phase = {
        phase: sum(e.bytes_moved for e, c in se if e.phase == phase) for phase in ("forward", "backward")
    }
    backward_ops = {(e.op, c) for e, c in se if e.phase == "backward" and not roofline.is_free(e)}
    assert ("mul", "se_scale") in backward_ops and ("sum", "se_scale") in backward_ops
    assert ("div", "se_squeeze") in backward_ops  # the mean's gradient, spread over the map
    # forward: the squeeze reads the map, the scale reads and writes it (3 maps); backward: the scale's
    # two products (5), the reduction of one (1), the squeeze's gradient (1) and the sum of x's two
    # gradients (3): 10 maps
    assert 3.0 < by_phase["backward"] / by_phase["forward"] < 3.6


def test_a_training_pass_is_priced_op_by_op_not_mirrored() -> None:
    machine = roofline.load(H200, roofline.setting_key("cuda", "fp32", 1))
    assert machine is not None
    classed = _trained(Net())
    traced = roofline.predict(machine, classed, mode="train")
    forward = [(e, c) for e, c in classed if e.phase == "forward"]
    mirrored = roofline.predict(machine, forward, mode="train")
    assert traced.total_s != pytest.approx(mirrored.total_s)
    by_hand = 0.0
    for event, op_class in classed:  # device-bound only if every op's host time is smaller: check both
        timed = roofline.device_time(machine, event, op_class)
        assert timed is not None
        by_hand += timed.seconds
    host = sum(roofline.host_time(machine, e, c) for e, c in classed)
    assert traced.total_s >= max(by_hand, host) - 1e-12
    assert sum(traced.bytes_by_class.values()) == sum(e.bytes_moved for e, _ in classed)


def test_backward_macs_run_at_the_backward_rate_and_class_multipliers_stay_forward() -> None:
    machine = roofline.MachineModel(
        device="cuda", dtype="fp32", threads=1, bandwidth=((1000, 1e9), (1_000_000, 1e9)),
        mac_rates={"dense": 1e9}, efficiency={"elementwise": 1.0}, fixed_s={"dense": 0.0, "elementwise": 0.0},
        view_overhead_s=0.0, host_s={"conv": 1e-9, "elementwise": 1e-9}, class_scale={"se_scale": 3.0},
        backward_mac_scale=0.5,
    )  # fmt: skip
    conv = OpEvent("convolution", "mac", "m", 10**6, 0, 0, kind="dense")
    conv_back = replace(conv, op="convolution_backward", macs=2 * 10**6, phase="backward")
    assert roofline.op_time(machine, conv).compute_s == pytest.approx(1e-3)  # type: ignore[union-attr]
    assert roofline.op_time(machine, conv_back).compute_s == pytest.approx(4e-3)  # type: ignore[union-attr]
    mul = OpEvent("mul", "elementwise", "se", 0, 0, 0, bytes_read=1000, bytes_written=0)
    forward = roofline.device_time(machine, mul, "se_scale")
    backward = roofline.device_time(machine, replace(mul, phase="backward"), "se_scale")
    assert forward is not None and backward is not None
    assert forward.seconds == pytest.approx(3 * backward.seconds)


def test_fit_backward_recovers_the_backward_rate_from_the_base_alone() -> None:
    machine = roofline.load(H200, roofline.setting_key("cuda", "fp32", 1))
    assert machine is not None
    base, shape = Net(se=False, width=256, kernel=3), (256, 3, 112, 112)  # device-bound on an H200
    events = gpumodel.training_events(base, shape, "fp32")
    target = roofline.predict(replace(machine, backward_mac_scale=0.4), events, mode="train").total_s
    fitted = gpumodel.fit_backward(machine, base=base, shape=shape, measured_train_s=target)
    assert fitted.backward_mac_scale == pytest.approx(0.4, rel=1e-3)
    with pytest.raises(UserInputError, match="out of the machine model's reach"):
        gpumodel.fit_backward(machine, base=base, shape=shape, measured_train_s=target * 1000)
    small = Net(se=False)  # at 2x3x16x16 the host issues slower than the device runs: no rate to find
    with pytest.raises(UserInputError, match="does not depend on"):
        gpumodel.fit_backward(machine, base=small, shape=(2, 3, 16, 16), measured_train_s=target)


def test_the_derivation_reads_the_base_training_times_and_refuses_others(tmp_path: Path) -> None:
    from bench.derive_gpu_machine import base_training_s

    check = {"latency": [{"mode": "train", "batch": 256, "base_median_s": 0.1}]}
    printed = (
        "│ latency          │ s        │ 54.01 ms │  77.71 ms │  23.7 ms │     +43.89 % │ 100     │\n"
        "Runtime: cuda, train, threads=1, bf16, channels_last, 1 process.\n"
    )
    (tmp_path / "compare-train-b256-bf16-cl.txt").write_text(printed, encoding="utf-8")
    assert base_training_s(tmp_path, check) == {"fp32": 0.1, "bf16": pytest.approx(0.05401)}
    (tmp_path / "compare-train-b256-bf16-cl.txt").write_text(printed.replace("bf16", "fp16"), "utf-8")
    with pytest.raises(ValueError, match="bf16 channels-last"):
        base_training_s(tmp_path, check)
    with pytest.raises(ValueError, match="one training record"):
        base_training_s(tmp_path, {"latency": []})


def test_a_stored_backward_scale_is_validated(tmp_path: Path) -> None:
    stored = json.loads(H200.read_text(encoding="utf-8"))
    for value in (0.0, -1.0, "fast"):
        entry = dict(next(iter(stored["models"].values())), backward_mac_scale=value)
        with pytest.raises(UserInputError, match="not a valid machine model"):
            roofline.from_dict(entry, "here")


@pytest.mark.parametrize(
    "name", ["mobilenet_v3_small", "efficientnet_b0", "se_shufflenet_v1_g3", "se_bn_inception", "se_vgg16_bn"]
)
def test_every_op_of_a_catalog_training_pass_has_a_rule(name: str) -> None:
    """Hardswish, SiLU, channel shuffles, concatenations, dropout: each backward op is classified and
    priced (nothing left ``unknown``), and every backward op but the loss's seed has a forward op."""
    from senet_profile.catalog.registry import get_model

    events = gpumodel.training_events(get_model(name), (2, 3, 224, 224), "fp32")
    assert [e.op for e, _ in events if e.category == "unknown"] == []
    orphans = {
        e.op for e, _ in events if e.phase == "backward" and not e.forward_op and not roofline.is_free(e)
    }
    assert orphans <= {"ones_like", "copy"}, orphans  # the loss's seed; a gradient laid out for its leaf
