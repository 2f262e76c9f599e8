"""Static counting (analysis.static over analysis.trace) on hand-sized networks counted by hand."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from senet_profile.analysis.static import Counts, analyze
from senet_profile.analysis.trace import classify, op_name, trace_ops
from senet_profile.catalog.registry import get_model
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------ single layers


@pytest.mark.parametrize(
    ("layer", "shape", "macs", "activations"),
    [
        # 8x8 output positions x 8 output channels x (3x3 kernel x 3 input channels)
        (nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8), 8 * 8 * 8 * (3 * 3 * 3), 8 * 8 * 8),
        # grouped: each output channel sees 8 / 4 = 2 input channels
        (nn.Conv2d(8, 16, 3, padding=1, groups=4), (1, 8, 6, 6), 6 * 6 * 16 * (3 * 3 * 2), 6 * 6 * 16),
        # depthwise
        (nn.Conv2d(4, 4, 3, padding=1, groups=4), (2, 4, 5, 5), 2 * 5 * 5 * 4 * 9, 2 * 5 * 5 * 4),
        # strided: (8 + 2 - 3) // 2 + 1 = 4 output rows and columns
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), (1, 3, 8, 8), 4 * 4 * 4 * (3 * 3 * 3), 4 * 4 * 4),
        # strided without padding on an odd size: (9 - 3) // 2 + 1 = 4
        (nn.Conv2d(2, 5, 3, stride=2), (1, 2, 9, 9), 4 * 4 * 5 * (3 * 3 * 2), 4 * 4 * 5),
        # transposed: every input element is spread over out_channels x k x k outputs
        (nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 3, 3), 3 * 3 * 4 * 2 * (2 * 2), 6 * 6 * 2),
        (
            nn.ConvTranspose2d(4, 6, 3, stride=1, padding=1, groups=2),
            (1, 4, 5, 5),
            5 * 5 * 4 * 3 * 9,
            5 * 5 * 6,
        ),
        # linear: batch x in x out
        (nn.Linear(10, 5), (3, 10), 3 * 10 * 5, 3 * 5),
        (nn.Linear(10, 5, bias=False), (3, 10), 3 * 10 * 5, 3 * 5),
        (nn.Linear(10, 5), (2, 3, 10), 2 * 3 * 10 * 5, 2 * 3 * 5),
        (nn.Linear(10, 5, bias=False), (2, 3, 10), 2 * 3 * 10 * 5, 2 * 3 * 5),
    ],
    ids=[
        "conv3x3",
        "grouped",
        "depthwise-batch2",
        "strided",
        "strided-odd",
        "transposed",
        "transposed-grouped",
        "linear",
        "linear-nobias",
        "linear-3d",
        "linear-3d-nobias",
    ],
)
def test_single_layer(layer: nn.Module, shape: tuple[int, ...], macs: int, activations: int) -> None:
    total = analyze(layer, shape).total
    assert total.macs == macs
    assert total.activations == activations
    assert total.params == n_params(layer)
    assert (total.params_se, total.macs_se, total.se_element_ops) == (0, 0, 0)


def test_counts_scale_with_batch() -> None:
    layer = nn.Conv2d(3, 8, 3, padding=1)
    one, four = analyze(layer, (1, 3, 8, 8)).total, analyze(layer, (4, 3, 8, 8)).total
    assert (four.macs, four.activations, four.params) == (4 * one.macs, 4 * one.activations, one.params)


def test_elementwise_and_normalization_layers_have_no_macs_or_activations() -> None:
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    total = analyze(model, (1, 3, 4, 4)).total
    assert (total.macs, total.activations, total.params) == (0, 0, 6)


def test_op_names_and_classes() -> None:
    assert op_name(torch.ops.aten.relu_.default) == "relu"
    assert op_name(torch.ops.aten.add.Tensor) == "add"
    assert op_name(torch.ops.aten.__and__.Tensor) == "__and__"
    assert classify("convolution") == "mac"
    assert classify("addmm") == "mac"
    assert classify("mean") == "reduction"
    assert classify("sigmoid") == "elementwise"
    assert classify("cumsum") == "unknown"


# ------------------------------------------------------------------------------------------------- SE


def se_net(**config: object) -> nn.Module:
    """A 1x1 conv followed by an SE block on 16 channels, r = 4 (4 hidden units)."""
    return nn.Sequential(nn.Conv2d(16, 16, 1), SEBlock(16, config=SEConfig(r=4, **config)))


SE_SHAPE = (2, 16, 5, 5)  # batch 2
CONV_MACS = 2 * 5 * 5 * 16 * 16
CONV_PARAMS = 16 * 16 + 16
SE_PARAMS = 16 * 4 + 4 + 4 * 16 + 16  # fc1 weight + bias, fc2 weight + bias


def test_se_block_counted_by_hand() -> None:
    result = analyze(se_net(), SE_SHAPE)
    total = result.total
    assert result.se_blocks == 1
    assert total.params_se == SE_PARAMS
    assert total.params == CONV_PARAMS + SE_PARAMS
    assert total.macs_se == 2 * (16 * 4 + 4 * 16)  # the two FCs on 1x1 maps, per sample
    assert total.macs == CONV_MACS + total.macs_se
    assert total.se_squeeze_ops == 2 * 16 * 25  # one add per pooled element
    assert total.se_scale_ops == 2 * 16 * 25  # one multiply per rescaled element
    assert total.se_gate_ops == 2 * 16  # one sigmoid per channel
    assert total.se_other_ops == 2 * 4  # the ReLU between the FCs
    assert total.activations_se == 2 * (4 + 16)
    assert total.activations == 2 * 16 * 25 + total.activations_se
    assert total.se_element_ops == 800 + 800 + 32 + 8
    assert total.macs_and_se_ops == total.macs + total.se_element_ops
    assert result.unknown_ops == {}


@pytest.mark.parametrize("gate", ["sigmoid", "tanh", "relu", "hardsigmoid"])
def test_every_gate_counts_as_gate_ops(gate: str) -> None:
    total = analyze(se_net(gate=gate), SE_SHAPE).total
    assert total.se_gate_ops == 2 * 16
    assert total.se_other_ops == 2 * 4  # a ReLU gate is not mistaken for the ReLU between the FCs


def test_max_squeeze_counts_one_compare_per_element() -> None:
    total = analyze(se_net(squeeze="max"), SE_SHAPE).total
    assert total.se_squeeze_ops == 2 * 16 * 25
    assert total.macs_se == 2 * (16 * 4 + 4 * 16)


def test_no_squeeze_runs_the_fcs_at_full_resolution() -> None:
    total = analyze(se_net(squeeze="none"), SE_SHAPE).total
    assert total.macs_se == 2 * 25 * (16 * 4 + 4 * 16)
    assert total.se_squeeze_ops == 0
    assert total.se_gate_ops == 2 * 16 * 25
    assert total.se_scale_ops == 2 * 16 * 25
    assert total.se_other_ops == 2 * 4 * 25
    assert total.activations_se == 2 * 25 * (4 + 16)
    assert total.params_se == SE_PARAMS  # same module, same parameters


def test_se_without_bias() -> None:
    total = analyze(se_net(bias=False), SE_SHAPE).total
    assert total.params_se == 2 * 16 * 4
    assert total.macs_se == 2 * (16 * 4 + 4 * 16)


def test_bare_se_block_is_all_se() -> None:
    total = analyze(SEBlock(16, config=SEConfig(r=4)), SE_SHAPE).total
    assert total.params_se == total.params == SE_PARAMS
    assert total.macs_se == total.macs == 2 * (16 * 4 + 4 * 16)
    assert total.se_squeeze_ops == 2 * 16 * 25


# --------------------------------------------------------------------------------- pycls closed form


def conv2d_cx(h: int, w: int, cin: int, cout: int, k: int, stride: int, groups: int) -> tuple[int, int, int]:
    """(macs, params, activations) of a bias-free k x k conv with padding k // 2, as pycls's conv2d_cx
    (Radosavovic et al. 2020) counts them."""
    h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
    macs = k * k * cin * cout * h * w // groups
    params = k * k * cin * cout // groups
    return macs, params, cout * h * w


def test_matches_pycls_closed_form() -> None:
    layers = [(3, 8, 3, 1, 1), (8, 16, 3, 2, 2), (16, 4, 1, 1, 1)]  # (cin, cout, k, stride, groups)
    model = nn.Sequential()
    for cin, cout, k, stride, groups in layers:
        model.append(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False))
        model.append(nn.ReLU())
    h = w = 9
    expected = [0, 0, 0]
    for cin, cout, k, stride, groups in layers:
        for i, value in enumerate(conv2d_cx(h, w, cin, cout, k, stride, groups)):
            expected[i] += value
        h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
    total = analyze(model, (1, 3, 9, 9)).total
    assert (total.macs, total.params, total.activations) == tuple(expected)
    assert expected[0] == 9 * 9 * 8 * 27 + 5 * 5 * 16 * 4 * 9 + 5 * 5 * 4 * 16


# ---------------------------------------------------------------------------------- what is not counted


class Cumulative(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)


class WithSpare(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Conv2d(3, 4, 1)
        self.unused = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def test_op_without_rule_is_reported_not_zeroed() -> None:
    result = analyze(nn.Sequential(nn.Conv2d(3, 4, 1), Cumulative()), (1, 3, 4, 4))
    assert result.unknown_ops == {"cumsum": 1}
    assert result.total.macs == 4 * 4 * 4 * 3


def test_uncalled_submodule_is_reported() -> None:
    model = WithSpare()
    result = analyze(model, (1, 3, 4, 4))
    assert "unused" in result.uncalled_modules
    assert all(name == "unused" or name.startswith("unused.") for name in result.uncalled_modules)
    assert result.total.params == n_params(model)  # its parameters exist and are counted
    assert result.total.macs == 4 * 4 * 4 * 3


def test_trace_attributes_each_op_to_the_innermost_module() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(nn.ReLU(), Cumulative())).to("meta")
    trace = trace_ops(model, torch.empty(1, 3, 2, 2, device="meta"))
    assert [(e.module, e.op, e.category) for e in trace.events] == [
        ("0", "convolution", "mac"),
        ("1.0", "relu", "elementwise"),
        ("1.1", "cumsum", "unknown"),
    ]
    assert trace.uncalled_modules == ()


# ------------------------------------------------------------------------------- the user's model is safe


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("training", [True, False])
def test_user_cpu_model_is_left_as_it_was(training: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), SEBlock(16, config=SEConfig(r=4))
    )
    model.train(training)
    state = copy.deepcopy(model.state_dict())
    analyze(model, SE_SHAPE)
    assert all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    assert all(m.training is training for m in model.modules())
    assert _hooks(model) == 0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_meta_model_keeps_its_mode_and_loses_the_hooks() -> None:
    model = get_model("se_resnet18").train()
    analyze(model, (1, 3, 32, 32))
    assert all(m.training for m in model.modules())
    assert _hooks(model) == 0


def test_hooks_removed_after_a_failed_trace() -> None:
    model = nn.Sequential(nn.Linear(10, 5))
    with pytest.raises(UserInputError):
        analyze(model, (1, 7))
    assert _hooks(model) == 0


# ------------------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("shape", [(1, 3, 0, 8), (0, 3, 8, 8), (1, 3, 8, -1)])
def test_non_positive_input_size_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserInputError, match="has a size <= 0; sizes must be positive"):
        analyze(nn.Conv2d(3, 3, 1), shape)


@pytest.mark.parametrize(
    ("layout", "layer"), [("torchvision", "layer4.0.conv2"), ("paper", "layer4.0.conv1")]
)
def test_too_small_input_names_the_layer(layout: str, layer: str) -> None:
    # 16 -> 8 (conv1) -> 4 (maxpool) -> 2 (conv3_x) -> 1 (conv4_x): conv5_x's stride-2 conv gets a 1x1 map.
    with pytest.raises(UserInputError, match=rf"input is too small: {layer} \(stride 2\) receives a 1x1 map"):
        analyze(get_model(f"resnet50:layout={layout}"), (1, 3, 16, 16))


def test_smallest_resnet50_input_is_accepted() -> None:
    assert analyze(get_model("resnet50"), (1, 3, 32, 32)).total.macs > 0


def test_model_that_cannot_run_gives_one_line_user_error() -> None:
    with pytest.raises(UserInputError, match=r"Linear cannot run on input 1x7: RuntimeError: .+") as info:
        analyze(nn.Linear(10, 5), (1, 7))
    assert "\n" not in str(info.value)


def test_transposed_conv_on_a_1x1_map_is_accepted() -> None:
    total = analyze(nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 1, 1)).total
    assert total.macs == 4 * 2 * (2 * 2)
    assert total.activations == 2 * 2 * 2


# ------------------------------------------------------------------------------------------------ stages


@pytest.fixture(scope="module")
def se_resnet50_by_stage():
    model = get_model("se_resnet50")
    return model, analyze(model, (1, 3, 64, 64))


def test_stage_names_are_the_papers(se_resnet50_by_stage) -> None:
    _, result = se_resnet50_by_stage
    assert list(result.stages) == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]


def test_stage_totals_sum_to_the_model_total(se_resnet50_by_stage) -> None:
    model, result = se_resnet50_by_stage
    for field in Counts.__dataclass_fields__:
        assert sum(getattr(c, field) for c in result.stages.values()) == getattr(result.total, field), field
    assert result.total.params == n_params(model) == 28_088_024


def test_stage_counts_by_hand(se_resnet50_by_stage) -> None:
    model, result = se_resnet50_by_stage
    for index, stage in enumerate(["conv2_x", "conv3_x", "conv4_x", "conv5_x"], start=1):
        layer = f"layer{index}"
        assert result.stages[stage].params == n_params(model.get_submodule(layer))
    # conv2_x: 3 SE blocks on 256 channels, 16 hidden units, with biases.
    assert result.stages["conv2_x"].params_se == 3 * (2 * 256 * 16 + 16 + 256)
    assert result.stages["conv2_x"].macs_se == 3 * 2 * 256 * 16
    # Stem: 7x7 stride-2 conv to a 32x32 map at 64x64 input; head: 2048 -> 1000 linear.
    assert result.stages["conv1"].macs == 32 * 32 * 64 * (7 * 7 * 3)
    assert result.stages["head"].macs == 2048 * 1000
    assert result.stages["head"].params == 2048 * 1000 + 1000
    assert result.stages["conv1"].params_se == result.stages["head"].params_se == 0


def test_models_without_stage_names_group_by_top_level_child() -> None:
    result = analyze(se_net(), SE_SHAPE)
    assert set(result.stages) == {"0", "1"}
    assert result.stages["1"].params == result.stages["1"].params_se == SE_PARAMS
    assert result.stages["0"].macs == CONV_MACS


# ------------------------------------------------------------------------------------------- bytes moved


def _events(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype = torch.float32):
    meta = copy.deepcopy(model).to(device="meta", dtype=dtype).eval()
    return trace_ops(meta, torch.empty(shape, device="meta", dtype=dtype)).events


def test_conv_reads_input_weight_bias_and_writes_output() -> None:
    (event,) = _events(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8))
    assert event.bytes_read == 4 * (3 * 8 * 8 + 8 * 3 * 9 + 8)  # input, weight, bias
    assert event.bytes_written == 4 * 8 * 8 * 8
    assert event.kind == "dense"


def test_bytes_scale_with_the_dtype_size() -> None:
    layer = nn.Conv2d(3, 8, 3, padding=1)
    assert analyze(layer, (1, 3, 8, 8), dtype=torch.bfloat16).total.bytes_moved == 2 * (
        3 * 64 + 8 * 27 + 8 + 8 * 64
    )
    assert analyze(layer, (1, 3, 8, 8)).total.bytes_moved == 4 * (3 * 64 + 8 * 27 + 8 + 8 * 64)
    assert next(layer.parameters()).dtype == torch.float32  # the caller's model is not cast


@pytest.mark.parametrize("inplace", [True, False])
def test_elementwise_reads_and_writes_once_in_place_or_not(inplace: bool) -> None:
    (event,) = _events(nn.ReLU(inplace=inplace), (1, 4, 5, 5))
    assert (event.bytes_read, event.bytes_written) == (400, 400)


def test_views_move_nothing_and_linear_reads_its_weight_once() -> None:
    events = _events(nn.Sequential(nn.Flatten(), nn.Linear(10, 5)), (3, 10, 1))
    moved = {e.op: (e.bytes_read, e.bytes_written) for e in events}
    assert moved["view"] == moved["t"] == (0, 0)
    assert moved["addmm"] == (4 * (5 + 3 * 10 + 5 * 10), 4 * 3 * 5)  # bias, input, weight; output
    assert next(e.kind for e in events if e.op == "addmm") == "matvec"  # 3 rows: weights streamed once


def test_mac_kinds_follow_the_output_rows() -> None:
    from senet_profile.analysis.trace import MATVEC_ROWS

    def kind(layer: nn.Module, shape: tuple[int, ...]) -> str:
        return next(e.kind for e in _events(layer, shape) if e.category == "mac")

    assert kind(nn.Linear(8, 4), (MATVEC_ROWS, 8)) == "matvec"
    assert kind(nn.Linear(8, 4), (MATVEC_ROWS + 1, 8)) == "gemm"
    assert kind(nn.Conv2d(8, 4, 1), (2, 8, 2, 2)) == "matvec"  # 2 x 2 x 2 = 8 output positions
    assert kind(nn.Conv2d(8, 4, 1), (2, 8, 3, 3)) == "pointwise"  # 18
    assert kind(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 5, 5)) == "depthwise"


def test_broadcast_operand_is_read_once() -> None:
    from senet_profile.analysis.trace import distinct_bytes

    weights = torch.empty(2, 16, 1, 1, device="meta")
    assert distinct_bytes(weights.expand(2, 16, 5, 5)) == 4 * 32
    assert distinct_bytes(torch.empty((), device="meta")) == 4


def test_se_block_traffic_counted_by_hand() -> None:
    total = analyze(SEBlock(16, config=SEConfig(r=4)), SE_SHAPE).total
    x, pooled, hidden = 2 * 16 * 25 * 4, 2 * 16 * 4, 2 * 4 * 4
    squeeze = x + pooled
    fc1 = pooled + 4 * (16 * 4 + 4) + hidden
    relu = 2 * hidden
    fc2 = hidden + 4 * (4 * 16 + 16) + pooled
    gate = 2 * pooled
    scale = x + pooled + x
    assert total.bytes_moved == total.bytes_moved_se == squeeze + fc1 + relu + fc2 + gate + scale == 11_088


def test_bytes_per_op_class_and_module_add_up() -> None:
    result = analyze(se_net(), SE_SHAPE)
    conv = 4 * (2 * 16 * 25 + 16 * 16 + 16 + 2 * 16 * 25)
    assert result.op_classes["conv"].bytes_moved == result.modules["0"].bytes_moved == conv
    assert result.op_classes["se_scale"].bytes_moved == 2 * 2 * 16 * 25 * 4 + 2 * 16 * 4
    assert result.op_classes["se_squeeze"].bytes_moved == 2 * 16 * 25 * 4 + 2 * 16 * 4
    assert result.op_classes["se_fc"].macs == result.total.macs_se
    assert result.total.bytes_moved == conv + 11_088
    assert result.total.bytes_moved_se == 11_088
    assert sum(c.bytes_moved for c in result.op_classes.values()) == result.total.bytes_moved
    assert sum(m.bytes_moved for m in result.modules.values()) == result.total.bytes_moved
    assert result.stages["1"].bytes_moved_se == 11_088


def test_batch_norm_in_eval_reads_its_statistics() -> None:
    (event,) = [e for e in _events(nn.BatchNorm2d(3), (1, 3, 4, 4)) if e.category == "normalization"]
    assert event.bytes_read == 4 * (3 * 16 + 4 * 3)  # input; weight, bias, running mean and variance
    # The output, and the per-channel mean and inverse std that native_batch_norm returns beside it.
    assert event.bytes_written == 4 * (3 * 16 + 3 + 3)


def test_matrix_vector_products_are_counted_as_macs() -> None:
    class Products(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(128, 256))
            self.v = nn.Parameter(torch.ones(256))
            self.b = nn.Parameter(torch.ones(128))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.flatten()
            return torch.mv(self.w, x) + torch.addmv(self.b, self.w, x) + torch.dot(self.v, x)

    result = analyze(Products(), (1, 1, 16, 16))
    assert result.total.macs == 128 * 256 + 128 * 256 + 256  # mv, addmv (bias add excluded), dot
    assert result.unknown_ops == {}
