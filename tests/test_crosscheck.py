"""Cross-checking against fvcore, ptflops and torch.utils.flop_counter, on networks counted by hand."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from senet_profile.analysis.crosscheck import TOOLS, ToolCount, crosscheck
from senet_profile.errors import UserInputError

SHAPE = (1, 3, 8, 8)
# Counted by hand for the plain network below on a 1x3x8x8 input.
CONV = (8 * 8) * 8 * (3 * 3 * 3)  # output positions x output channels x (k x k x input channels)
LINEAR = 8 * 4
LINEAR_BIAS = 4  # one add per output feature
FEATURES = 8 * 8 * 8  # elements of the BN / ReLU tensor, and of the pooling input
# The SE block's two 1x1 convolutions on the pooled 1x1 map, with their biases.
FC1, FC1_BIAS, FC2, FC2_BIAS = 8 * 2, 2, 2 * 8, 8


class SE(nn.Module):
    """A squeeze-and-excitation block written with plain tensor ops, as users write it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, 2, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(2, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(scale))))


def plain_net(*, se: bool = False, linear_bias: bool = True) -> nn.Sequential:
    """Conv -> BN -> ReLU [-> SE] -> global pool -> flatten -> linear."""
    head = [SE(8)] if se else []
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        *head,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4, bias=linear_bias),
    )


def by_tool(results: list[ToolCount]) -> dict[str, ToolCount]:
    return {r.tool: r for r in results}


@pytest.fixture(scope="module")
def plain() -> dict[str, ToolCount]:
    torch.manual_seed(0)
    return by_tool(crosscheck(plain_net(), SHAPE))


@pytest.fixture(scope="module")
def with_se() -> dict[str, ToolCount]:
    torch.manual_seed(0)
    return by_tool(crosscheck(plain_net(se=True), SHAPE))


def test_every_tool_runs_in_order(plain: dict[str, ToolCount]) -> None:
    assert tuple(plain) == TOOLS == ("fvcore", "ptflops-pytorch", "ptflops-aten", "torch.flop_counter")
    assert all(r.error is None for r in plain.values())


def test_torch_flop_counter_matches_our_convention(plain: dict[str, ToolCount]) -> None:
    result = plain["torch.flop_counter"]
    assert result.macs == CONV + LINEAR == 13856
    assert result.by_op == {"aten.convolution": CONV, "aten.addmm": LINEAR}
    assert result.extra == ()
    assert {"aten.relu", "aten.mean"} <= set(result.skipped)
    assert any("batch_norm" in op for op in result.skipped)
    assert not any(op in {"aten.view", "aten.t"} for op in result.skipped)  # views do no arithmetic


def test_fvcore_adds_batch_norm_and_pooling(plain: dict[str, ToolCount]) -> None:
    result = plain["fvcore"]
    # batch norm with affine: 2 per element; adaptive average pooling: 1 per input element; no bias.
    assert result.by_op == {
        "conv": CONV,
        "batch_norm": 2 * FEATURES,
        "adaptive_avg_pool2d": FEATURES,
        "linear": LINEAR,
    }
    assert result.macs == CONV + 2 * FEATURES + FEATURES + LINEAR == 15392
    assert result.extra == ("adaptive_avg_pool2d", "batch_norm")
    assert result.skipped == ()  # relu and flatten are ignored by design, not unsupported


def test_ptflops_aten_counts_linear_bias(plain: dict[str, ToolCount]) -> None:
    result = plain["ptflops-aten"]
    assert result.by_op == {"aten.convolution": CONV, "aten.addmm": LINEAR + LINEAR_BIAS}
    assert result.macs == CONV + LINEAR + LINEAR_BIAS == 13860
    assert result.extra == ("bias",)
    assert {"aten.relu", "aten.mean"} <= set(result.skipped)
    assert any("batch_norm" in op for op in result.skipped)


def test_ptflops_pytorch_counts_everything_it_hooks_and_relu_pool_twice(plain: dict[str, ToolCount]) -> None:
    result = plain["ptflops-pytorch"]
    assert result.by_op == {
        "Conv2d": CONV,
        "BatchNorm2d": 2 * FEATURES,
        "ReLU": FEATURES,
        "AdaptiveAvgPool2d": FEATURES,
        "Linear": LINEAR + LINEAR_BIAS,
        # nn.ReLU and nn.AdaptiveAvgPool2d call F.relu / F.adaptive_avg_pool2d, which ptflops patches too.
        "functional": FEATURES + FEATURES,
    }
    assert result.macs == CONV + 2 * FEATURES + FEATURES + FEATURES + LINEAR + LINEAR_BIAS + 2 * FEATURES
    assert result.extra == ("AdaptiveAvgPool2d", "BatchNorm2d", "ReLU", "bias", "functional")
    assert result.skipped == ()  # Flatten only reshapes


def test_counts_cover_the_whole_batch(plain: dict[str, ToolCount]) -> None:
    doubled = by_tool(crosscheck(plain_net(), (2, 3, 8, 8)))
    for tool, single in plain.items():
        assert doubled[tool].macs == 2 * single.macs, tool
        assert doubled[tool].by_op == {op: 2 * macs for op, macs in single.by_op.items()}, tool


def test_se_block_ops_are_skipped(with_se: dict[str, ToolCount]) -> None:
    se_macs = FC1 + FC2
    assert with_se["torch.flop_counter"].macs == CONV + se_macs + LINEAR
    assert {"aten.mean", "aten.mul", "aten.sigmoid"} <= set(with_se["torch.flop_counter"].skipped)
    assert with_se["fvcore"].skipped == ("aten::mean", "aten::mul", "aten::sigmoid")
    assert with_se["fvcore"].by_op["conv"] == CONV + se_macs
    assert with_se["ptflops-aten"].macs == CONV + se_macs + FC1_BIAS + FC2_BIAS + LINEAR + LINEAR_BIAS
    assert {"aten.mean", "aten.mul", "aten.sigmoid"} <= set(with_se["ptflops-aten"].skipped)
    # x.mean and x * s run in SE's own forward, sigmoid in nn.Sigmoid: no ptflops hook sees them.
    assert with_se["ptflops-pytorch"].skipped == ("SE", "Sigmoid")
    assert with_se["ptflops-pytorch"].by_op["Conv2d"] == CONV + se_macs + FC1_BIAS + FC2_BIAS


def test_bias_is_extra_only_when_a_tool_counts_one() -> None:
    results = by_tool(
        crosscheck(plain_net(linear_bias=False), SHAPE, tools=("ptflops-aten", "ptflops-pytorch"))
    )
    assert results["ptflops-aten"].macs == CONV + LINEAR
    assert results["ptflops-aten"].extra == ()
    assert "bias" not in results["ptflops-pytorch"].extra


def snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "attributes": {name: sorted(vars(m)) for name, m in model.named_modules()},
        "training": [m.training for m in model.modules()],
        "dtypes": sorted({str(p.dtype) for p in model.parameters()}),
    }


def test_callers_model_and_torch_are_untouched() -> None:
    model = plain_net(se=True).double().train()
    before = snapshot(model)
    patched = (F.relu, F.adaptive_avg_pool2d, torch.mul, torch.Tensor.mul, torch.Tensor.add, torch.matmul)
    crosscheck(model, SHAPE)
    after = snapshot(model)
    assert after["state"].keys() == before["state"].keys()
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())
    assert after["attributes"] == before["attributes"]
    assert after["training"] == before["training"]
    assert after["dtypes"] == before["dtypes"] == ["torch.float64"]
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not hasattr(module, "__flops__")
        assert not hasattr(module, "__batch_counter__")
    assert patched == (
        F.relu,
        F.adaptive_avg_pool2d,
        torch.mul,
        torch.Tensor.mul,
        torch.Tensor.add,
        torch.matmul,
    )


def test_meta_device_model_is_counted(plain: dict[str, ToolCount]) -> None:
    with torch.device("meta"):
        model = plain_net()
    results = crosscheck(model, SHAPE)
    assert [(r.tool, r.macs, r.by_op, r.skipped, r.extra, r.error) for r in results] == [
        (r.tool, r.macs, r.by_op, r.skipped, r.extra, r.error) for r in plain.values()
    ]
    assert all(p.is_meta for p in model.parameters())


def test_nothing_leaks_to_the_terminal(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crosscheck(plain_net(se=True), SHAPE)
    assert capfd.readouterr() == ("", "")
    assert caplog.records == []
    assert caught == []


def test_a_fresh_interpreter_prints_nothing() -> None:
    # Import-time warnings (fvcore's, under new torch) only show in a process that has not imported it yet.
    code = (
        "import torch; from torch import nn; from senet_profile.analysis.crosscheck import crosscheck; "
        "r = crosscheck(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid()), (1, 3, 8, 8)); "
        "assert all(t.error is None for t in r), r"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_tool_failures_are_results_not_exceptions(capfd: pytest.CaptureFixture[str]) -> None:
    results = crosscheck(plain_net(), (1, 4, 8, 8))  # 4 channels into a 3-channel conv
    assert capfd.readouterr() == ("", "")  # ptflops prints the exception and its traceback
    assert [r.tool for r in results] == list(TOOLS)
    for result in results:
        assert (result.macs, result.by_op, result.skipped, result.extra) == (None, {}, (), ())
        assert result.error is not None
        assert "\n" not in result.error
        assert result.error.startswith("RuntimeError: ")
        assert "channels" in result.error


def test_tools_can_be_chosen() -> None:
    results = crosscheck(plain_net(), SHAPE, tools=("torch.flop_counter", "fvcore"))
    assert [r.tool for r in results] == ["torch.flop_counter", "fvcore"]
    assert [r.tool for r in crosscheck(plain_net(), SHAPE, tools="fvcore")] == ["fvcore"]


def test_unknown_tool_is_a_user_error() -> None:
    with pytest.raises(
        UserInputError, match=r"'flopth'.*fvcore, ptflops-pytorch, ptflops-aten, torch.flop_counter"
    ):
        crosscheck(plain_net(), SHAPE, tools=("fvcore", "flopth"))


@pytest.mark.parametrize("shape", [(), (1, 0, 8, 8), (1, 3.0, 8, 8)])
def test_bad_input_shape_is_a_user_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserInputError, match="input shape"):
        crosscheck(plain_net(), shape)


def test_results_are_frozen(plain: dict[str, ToolCount]) -> None:
    with pytest.raises(AttributeError):
        plain["fvcore"].macs = 0  # type: ignore[misc]
    assert copy.copy(plain["fvcore"]) == plain["fvcore"]
