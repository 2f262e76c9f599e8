"""Measured time per op: every op timed and attributed to its class and module, SE's share with a CI."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet_profile.analysis.optime import (
    class_overhead_pp,
    measure_op_times,
    measure_op_times_paired,
    measure_train_share,
)
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting

SMALL = Setting(repeats=3, warmup=1, input_size=(8, 8))


def se_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), SEBlock(16, config=SEConfig(r=4)))


def test_every_class_is_timed_and_se_share_is_a_fraction_of_op_time() -> None:
    times = measure_op_times(se_model(), SMALL)
    assert {"conv", "elementwise", "se_squeeze", "se_fc", "se_gate", "se_scale"} <= set(times.by_class)
    assert all(seconds > 0 for seconds in times.by_class.values())
    assert 0 < times.se_share_pct < 100
    low, high = times.se_share_ci
    assert low <= times.se_share_pct <= high
    assert times.repeats == 3 and len(times.ops_samples) == 3
    for index, total in enumerate(times.ops_samples):  # classes add up to the ops' sum, repeat by repeat
        assert sum(samples[index] for samples in times.class_samples.values()) == pytest.approx(total)
    assert 0 < times.ops_s <= times.wall_s
    assert set(times.by_module) >= {"0", "1", "2.fc1", "2.squeeze"}


def test_model_without_se_has_no_se_share() -> None:
    times = measure_op_times(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), SMALL)
    assert times.se_share_pct == 0
    assert not any(name.startswith("se_") for name in times.by_class)


def test_paired_repeats_give_each_class_its_share_of_the_overhead() -> None:
    base = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
    base_times, se_times = measure_op_times_paired(base, se_model(), SMALL)
    assert base_times.repeats == se_times.repeats == 3
    assert class_overhead_pp(base_times, se_times, "se_scale") > 0  # only the SE model has it
    pairs = zip(se_times.class_samples["se_scale"], base_times.ops_samples, strict=True)
    median_of_three = sorted(s / t * 100 for s, t in pairs)[1]
    assert class_overhead_pp(base_times, se_times, "se_scale") == pytest.approx(median_of_three)


def test_threads_none_times_on_torchs_own_thread_count() -> None:
    before = torch.get_num_threads()
    times = measure_op_times(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), SMALL.resolved(threads=None))
    assert times.repeats == 3
    assert torch.get_num_threads() == before


def test_caller_model_is_left_as_it_was() -> None:
    model = se_model().train()
    measure_op_times(model, SMALL)
    assert model.training and all(p.device.type == "cpu" for p in model.parameters())
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0


@pytest.mark.parametrize(
    ("options", "message"), [({"repeats": 2}, "at least 3"), ({"dtype": "fp64"}, "unknown dtype 'fp64'")]
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        Setting(**options)


@pytest.mark.parametrize("measure", [measure_op_times, measure_train_share])
def test_op_times_on_meta_are_refused(measure) -> None:
    with pytest.raises(UserInputError, match="cpu or cuda"):
        measure(nn.Conv2d(3, 4, 1), Setting(device="meta"))


def test_cuda_without_a_gpu_is_refused(no_cuda: None) -> None:
    with pytest.raises(UserInputError, match="no CUDA device"):
        measure_op_times(nn.Conv2d(3, 4, 1), Setting(device="cuda"))


class _Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x * 2)


def test_a_modules_autograd_nodes_are_those_between_its_inputs_and_outputs() -> None:
    from senet_profile.analysis.optime import _autograd_nodes

    conv, gate = nn.Conv2d(3, 4, 1), _Gate()
    x = conv(torch.randn(1, 3, 2, 2))
    y = gate(x)
    names = sorted(type(node).__name__ for node in _autograd_nodes(y, (x,)))
    assert names == ["MulBackward0", "SigmoidBackward0"]  # not the conv's node, not its weights'


def test_training_pass_share_splits_forward_and_backward() -> None:
    from senet_profile.analysis.optime import _se_roots, _timed_pass

    model = se_model().train()
    seconds = _timed_pass(model, torch.randn(2, 3, 8, 8), _se_roots(model))
    assert all(value > 0 for value in seconds.values())  # SE and the rest, in both directions
    assert all(param.grad is None for param in model.parameters())  # left as found
    share = measure_train_share(se_model(), SMALL)
    assert 0 < share.share_pct < 100 and share.repeats == 3
    low, high = share.share_ci
    assert low <= share.share_pct <= high
    assert 0 < share.forward_share_pct < 100 and 0 < share.backward_share_pct < 100
    assert 0 < share.backward_fraction_pct < 100


def test_training_pass_share_needs_an_se_block() -> None:
    with pytest.raises(UserInputError, match="no SE block"):
        measure_train_share(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), SMALL)
