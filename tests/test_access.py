"""How the meta trace sees memory layouts (``trace.access_pattern``, ``reduced_run``, ``device_layout``):
checked against the same training pass run on the CPU, whose convolutions, TensorIterator and autograd
give the layouts a GPU's do."""

from __future__ import annotations

import pytest
import torch

from senet_profile.analysis.trace import access_pattern, reduced_run, trace_ops
from senet_profile.catalog.registry import get_model

CL = torch.channels_last


def test_access_pattern_of_elementwise_operands() -> None:
    x = torch.ones(2, 8, 4, 4)
    s = torch.ones(2, 8, 1, 1)
    last = x.contiguous(memory_format=CL)
    assert access_pattern((x, x), {}, x + x) == "dense"
    assert access_pattern((last, last), {}, last + last) == "dense"
    assert access_pattern((x, s), {}, x * s) == "broadcast"
    assert access_pattern((s.expand(2, 8, 4, 4),), {}, s.expand(2, 8, 4, 4) / 16) == "broadcast"
    assert access_pattern((last, x), {}, last + x) == "mixed"
    assert access_pattern((x, torch.tensor(2.0)), {}, x * 2) == "dense"  # a one-element operand


def test_reduced_run_is_the_contiguous_part_of_the_reduced_dims() -> None:
    x = torch.ones(2, 8, 7, 7)
    assert reduced_run((x, [2, 3], True)) == 49
    assert reduced_run((x.contiguous(memory_format=CL), [2, 3], True)) == 1
    assert reduced_run((x, [-1])) == 7
    assert reduced_run((x,)) == 2 * 8 * 49


def _layouts(device: str, channels_last: bool) -> list[tuple[str, str, str, int, str]]:
    block = get_model("se_resnet50", device="cpu" if device == "cpu" else "meta").layer1[0]
    x = torch.randn(2, 64, 16, 16) if device == "cpu" else torch.empty(2, 64, 16, 16, device="meta")
    if channels_last:
        block, x = block.to(memory_format=CL), x.contiguous(memory_format=CL)
    events = trace_ops(block, x, train=True).events
    return [(e.op, e.phase, e.access, e.reduced_run, e.forward_op) for e in events]


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels-last", "channels-first"])
def test_meta_training_pass_sees_the_layouts_the_cpu_runs(channels_last: bool) -> None:
    """Meta's convolutions return contiguous outputs where real kernels keep channels-last; the trace
    restores the real layout, so every op's access and reduced run match a real run's."""
    meta = _layouts("meta", channels_last)
    assert meta == _layouts("cpu", channels_last)
    squeeze_backward = [(op, access) for op, _, access, _, fwd in meta if fwd == "mean" and op != "expand"]
    if channels_last:  # the squeeze's gradient comes back channels-first and is summed into channels-last
        assert squeeze_backward == [("div", "broadcast"), ("add", "mixed")]
        assert [r for op, phase, _, r, _ in meta if op == "sum" and phase == "backward"] == [1]
    else:
        assert squeeze_backward == [("div", "broadcast"), ("add", "dense")]
        assert [r for op, phase, _, r, _ in meta if op == "sum" and phase == "backward"] == [256]
    scale = [access for op, phase, access, _, _ in meta if op == "mul" and phase == "forward"]
    assert scale == ["broadcast"]
