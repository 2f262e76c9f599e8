"""Where SE sits in the catalog's ResNet blocks, proven by forward order and tensor flow (not by names),
and the structure the knobs build: SE widths, stages, layouts."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from senet_profile.analysis.static import analyze
from senet_profile.catalog.registry import get_model
from senet_profile.catalog.se import SEBlock, se_module_names
from senet_profile.errors import UserInputError

SHAPE = (1, 3, 224, 224)
LAYOUTS = ("torchvision", "paper")


@dataclass
class Call:
    """One call of a module: its input and output objects, and copies of their values at the time."""

    name: str
    inp: torch.Tensor
    inp_value: torch.Tensor
    out: torch.Tensor | None = None
    out_value: torch.Tensor | None = None


class BlockRecorder:
    """Records, in forward order, every call of a block and of its direct children."""

    def __init__(self, block: nn.Module) -> None:
        self.calls: list[Call] = []
        self.handles = []
        for name, module in [("block", block), *block.named_children()]:
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave(name)))

    def _enter(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            self.calls.append(Call(name, args[0], args[0].detach().clone()))

        return hook

    def _leave(self, name: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            call = next(c for c in reversed(self.calls) if c.name == name and c.out is None)
            call.out, call.out_value = out, out.detach().clone()

        return hook

    def order(self) -> list[str]:
        return [c.name for c in self.calls if c.name != "block"]

    def one(self, name: str) -> Call:
        calls = self.all(name)
        assert len(calls) == 1, f"{name} ran {len(calls)} times"
        return calls[0]

    def all(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def index(self, name: str, occurrence: int = 0) -> int:
        return [i for i, n in enumerate(self.order()) if n == name][occurrence]


PLACEMENTS = ("standard", "pre", "post", "identity", "3x3")
BLOCKS = ("layer2.0", "layer1.1")  # with and without a projection shortcut


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small CPU convs: threads only contend on a shared machine
    yield
    torch.set_num_threads(threads)


@functools.cache
def _recorded(placement: str) -> dict[str, BlockRecorder]:
    torch.manual_seed(0)
    model = get_model(f"se_resnet50:placement={placement}", device="cpu")
    recorders = {name: BlockRecorder(model.get_submodule(name)) for name in BLOCKS}
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    for recorder in recorders.values():
        for handle in recorder.handles:
            handle.remove()
    return recorders


@pytest.fixture(params=PLACEMENTS)
def placement(request: pytest.FixtureRequest, single_thread: None) -> str:
    return request.param


@pytest.mark.parametrize("block", BLOCKS)
def test_se_runs_once_per_block_and_relu_closes_it(placement: str, block: str) -> None:
    rec = _recorded(placement)[block]
    rec.one("se")
    assert len(rec.all("relu")) == 3
    assert ("downsample" in rec.order()) is (block == "layer2.0")
    assert rec.order()[:1] == (["se"] if placement == "pre" else ["conv1"])
    assert rec.order()[-1] == ("se" if placement == "post" else "relu")


def _identity_input(rec: BlockRecorder) -> torch.Tensor:
    """What the shortcut carries: the projection's output, or the block input itself."""
    return rec.one("downsample").out if rec.all("downsample") else rec.one("block").inp


@pytest.mark.parametrize("block", BLOCKS)
def test_standard_placement(block: str, single_thread: None) -> None:
    rec = _recorded("standard")[block]
    se, bn3, final_relu = rec.one("se"), rec.one("bn3"), rec.all("relu")[-1]
    assert se.inp is bn3.out
    assert rec.index("bn3") < rec.index("se") < rec.index("relu", 2)
    identity = rec.one("downsample").out_value if rec.all("downsample") else rec.one("block").inp_value
    torch.testing.assert_close(final_relu.inp_value, se.out_value + identity)
    assert rec.one("block").out is final_relu.out


@pytest.mark.parametrize("block", BLOCKS)
def test_pre_placement(block: str, single_thread: None) -> None:
    rec = _recorded("pre")[block]
    se, whole = rec.one("se"), rec.one("block")
    assert se.inp is whole.inp
    assert rec.one("conv1").inp is se.out
    if block == "layer2.0":
        assert rec.one("downsample").inp is whole.inp  # the shortcut sees the raw, unscaled input
        torch.testing.assert_close(rec.one("downsample").inp_value, whole.inp_value)


@pytest.mark.parametrize("block", BLOCKS)
def test_post_placement(block: str, single_thread: None) -> None:
    rec = _recorded("post")[block]
    se, final_relu = rec.one("se"), rec.all("relu")[-1]
    assert se.inp is final_relu.out
    assert se.out is rec.one("block").out
    assert rec.index("relu", 2) < rec.index("se")
    torch.testing.assert_close(final_relu.out_value, se.inp_value)


@pytest.mark.parametrize("block", BLOCKS)
def test_identity_placement(block: str, single_thread: None) -> None:
    rec = _recorded("identity")[block]
    se, bn3, final_relu = rec.one("se"), rec.one("bn3"), rec.all("relu")[-1]
    assert se.inp is _identity_input(rec)
    assert se.inp is not bn3.out
    # The residual branch reaches the addition unscaled; the shortcut arrives through SE.
    torch.testing.assert_close(final_relu.inp_value, bn3.out_value + se.out_value)
    assert rec.index("se") < rec.index("relu", 2)


@pytest.mark.parametrize("block", BLOCKS)
def test_3x3_placement(block: str, single_thread: None) -> None:
    rec = _recorded("3x3")[block]
    se = rec.one("se")
    assert se.inp is rec.one("conv2").out
    assert rec.one("bn2").inp is se.out
    assert rec.index("conv2") < rec.index("se") < rec.index("bn2")


@pytest.mark.parametrize(
    ("placement", "layer2_0", "layer1_1"),
    [
        # (inplanes, width, planes * 4) = layer2.0: (256, 128, 512); layer1.1: (256, 64, 256)
        ("pre", 256, 256),
        ("3x3", 128, 64),
        ("standard", 512, 256),
        ("post", 512, 256),
        ("identity", 512, 256),
    ],
)
def test_se_channels_per_placement(placement: str, layer2_0: int, layer1_1: int) -> None:
    model = get_model(f"se_resnet50:placement={placement}")
    for block, channels in (("layer2.0", layer2_0), ("layer1.1", layer1_1)):
        se = model.get_submodule(block).se
        assert isinstance(se, SEBlock)
        assert (se.channels, se.fc1.in_channels, se.fc2.out_channels) == (channels, channels, channels)
        assert se.hidden == channels // 16


def test_3x3_placement_uses_the_grouped_width_in_resnext() -> None:
    model = get_model("se_resnext50_32x4d:placement=3x3")
    assert model.layer2[0].se.channels == model.layer2[0].conv2.out_channels == 256


def test_stages_3_puts_se_only_in_layer2() -> None:
    model = get_model("se_resnet50:stages=3")
    names = se_module_names(model)
    assert names == [f"layer2.{i}.se" for i in range(4)]
    assert all(block.se is None for layer in (model.layer1, model.layer3, model.layer4) for block in layer)


def test_basic_blocks_refuse_the_3x3_placement() -> None:
    message = "placement=3x3 needs bottleneck blocks; stage conv2_x has basic blocks"
    with pytest.raises(UserInputError, match=message):
        get_model("se_resnet18:placement=3x3")


@pytest.mark.parametrize("placement", ["pre", "post", "identity"])
def test_basic_blocks_accept_other_placements(placement: str) -> None:
    model = get_model(f"se_resnet34:placement={placement}")
    assert len(se_module_names(model)) == 3 + 4 + 6 + 3


@pytest.mark.parametrize(("layout", "conv1_stride", "conv2_stride"), [("paper", 2, 1), ("torchvision", 1, 2)])
def test_layout_moves_the_stride(layout: str, conv1_stride: int, conv2_stride: int) -> None:
    model = get_model(f"se_resnet50:layout={layout}")
    for layer in (model.layer2, model.layer3, model.layer4):
        assert layer[0].conv1.stride == (conv1_stride, conv1_stride)
        assert layer[0].conv2.stride == (conv2_stride, conv2_stride)
        assert layer[0].downsample[0].stride == (2, 2)
        assert all(block.conv1.stride == block.conv2.stride == (1, 1) for block in layer[1:])
    assert model.layer1[0].conv1.stride == model.layer1[0].conv2.stride == (1, 1)


def test_both_layouts_give_the_same_shapes() -> None:
    shapes = {}
    for layout in LAYOUTS:
        model = get_model(f"se_resnet50:layout={layout}")
        seen: list[tuple[int, ...]] = []
        hooks = [
            block.register_forward_hook(lambda m, a, out, seen=seen: seen.append(tuple(out.shape)))
            for layer in (model.layer1, model.layer2, model.layer3, model.layer4)
            for block in layer
        ]
        out = model(torch.empty(SHAPE, device="meta"))
        for hook in hooks:
            hook.remove()
        shapes[layout] = (seen, tuple(out.shape))
    assert shapes["paper"] == shapes["torchvision"]
    assert shapes["paper"][1] == (1, 1000)
    assert shapes["paper"][0][3] == (1, 512, 28, 28)  # layer2.0 halves the resolution


@pytest.mark.parametrize("placement", ["standard", "identity"])
def test_axpy_computes_what_mul_does(placement):
    # The fused scale changes how the residual addition is done, not what it computes or counts.
    torch.manual_seed(0)
    mul = get_model(f"se_resnet18:placement={placement}", device="cpu").eval()
    axpy = get_model(f"se_resnet18:placement={placement},scale=axpy", device="cpu").eval()
    axpy.load_state_dict(mul.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(axpy(x), mul(x))
    calls = {name: [] for name in se_module_names(axpy)}
    handles = [
        axpy.get_submodule(name).register_forward_hook(lambda m, a, o, n=name: calls[n].append(len(a)))
        for name in calls
    ]
    with torch.inference_mode():
        axpy(x)
    for handle in handles:
        handle.remove()
    assert all(arities == [2] for arities in calls.values())  # every SE block got the residual to add


@pytest.mark.parametrize(
    "model",
    [
        "se_resnet50:scale=axpy,placement=pre",
        "se_resnet50:scale=axpy,placement=post",
        "se_resnet50:scale=axpy,placement=3x3",
        "se_vgg16_bn:scale=axpy",
        "se_mobilenet_v1:scale=axpy",
        "se_bn_inception:scale=axpy",
    ],
)
def test_axpy_without_a_residual_addition_is_refused(model):
    with pytest.raises(UserInputError, match="scale=axpy"):
        get_model(model, device="meta")


def test_axpy_counts_what_mul_counts_and_moves_two_maps_less():
    # addcmul's multiply is SE's scale; its add is the residual addition, uncounted in both. Fused, the
    # product is neither written nor read back by the in-place addition: two block outputs less per block.
    mul, axpy = (analyze(get_model(m), (1, 3, 64, 64)) for m in ("se_resnet50", "se_resnet50:scale=axpy"))
    moved = ("bytes_moved", "bytes_moved_se")
    assert replace(axpy.total, **dict.fromkeys(moved, 0)) == replace(mul.total, **dict.fromkeys(moved, 0))
    assert not axpy.unknown_ops
    assert mul.total.bytes_moved - axpy.total.bytes_moved == 2 * 4 * mul.total.se_scale_ops
