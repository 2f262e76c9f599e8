"""add_se on torchvision CNNs outside the catalog: closed-form counts, placement by tensor flow, refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torchvision import models as tv
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import make_layers

from senet_profile.analysis.static import analyze
from senet_profile.catalog.attach import RESIDUAL_PLACEMENTS, add_se, remove_se
from senet_profile.catalog.models.knobs import PLACEMENTS
from senet_profile.catalog.registry import get_model, list_models
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError

SHAPE = (1, 3, 224, 224)


PLANES = (64, 128, 256, 512)  # torchvision ResNet stages conv2_x..conv5_x


def se_params(channels: int, *, r: int = 16, bias: bool = True) -> int:
    """Eq. 5 for one block, with the FC biases: two C x C/r weights, plus C/r + C biases."""
    hidden = channels // r
    return 2 * channels * hidden + (hidden + channels if bias else 0)


def se_macs(channels: int, *, r: int = 16) -> int:
    """The two FC layers on the pooled vector (bias adds excluded, as in CONVENTION)."""
    return 2 * channels * (channels // r)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(builder: Callable[..., nn.Module], **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return builder(**kwargs)


def bottleneck_channels(layers: tuple[int, ...], *, width: tuple[int, ...]) -> dict[str, list[int]]:
    """SE channels per block for each placement of a torchvision bottleneck ResNet, from its definition."""
    out = [4 * planes for planes in PLANES]
    channels: dict[str, list[int]] = {p: [] for p in PLACEMENTS}
    inplanes = 64
    for stage, blocks in enumerate(layers):
        for index in range(blocks):
            channels["pre"].append(inplanes if index == 0 else out[stage])
            channels["3x3"].append(width[stage])
            for placement in ("standard", "identity", "post"):
                channels[placement].append(out[stage])
        inplanes = out[stage]
    return channels


# --- counts against the closed form ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_resnet() -> nn.Module:
    return on_meta(tv.wide_resnet50_2)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_wide_resnet_params_follow_eq5(wide_resnet, placement):
    channels = bottleneck_channels((3, 4, 6, 3), width=tuple(2 * p for p in PLANES))[placement]
    added = n_params(add_se(wide_resnet, placement=placement)) - n_params(wide_resnet)
    assert added == sum(se_params(c) for c in channels)


def test_wide_resnet_macs_and_se_share(wide_resnet):
    channels = bottleneck_channels((3, 4, 6, 3), width=tuple(2 * p for p in PLANES))["standard"]
    base, with_se = analyze(wide_resnet, SHAPE), analyze(add_se(wide_resnet), SHAPE)
    assert with_se.total.macs - base.total.macs == with_se.total.macs_se == sum(se_macs(c) for c in channels)
    assert with_se.total.params_se == sum(se_params(c) for c in channels)
    assert with_se.se_blocks == 16


@pytest.mark.parametrize("config", [SEConfig(r=8), SEConfig(r=4, bias=False), SEConfig(width=32)])
def test_resnext_params_follow_the_config(config):
    model = on_meta(tv.resnext101_32x8d)
    channels = bottleneck_channels((3, 4, 23, 3), width=tuple(4 * p for p in PLANES))["standard"]
    hidden = [config.width or c // config.r for c in channels]
    expected = sum(2 * c * h + (c + h if config.bias else 0) for c, h in zip(channels, hidden, strict=True))
    assert n_params(add_se(model, config=config)) - n_params(model) == expected


@pytest.mark.parametrize(
    ("builder", "conv_channels"),
    [
        (tv.vgg11, (64, 128, 256, 256, 512, 512, 512, 512)),
        (tv.vgg11_bn, (64, 128, 256, 256, 512, 512, 512, 512)),
        (tv.alexnet, (64, 192, 384, 256, 256)),
    ],
)
def test_plain_cnns_get_se_after_each_activation(builder, conv_channels):
    model = on_meta(builder)
    base, with_se = analyze(model, SHAPE), analyze(add_se(model), SHAPE)
    assert with_se.total.params - base.total.params == sum(se_params(c) for c in conv_channels)
    assert with_se.total.macs - base.total.macs == sum(se_macs(c) for c in conv_channels)
    assert with_se.se_blocks == len(conv_channels)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_add_se_to_resnet50_is_the_catalogs_se_resnet50(placement):
    ours = analyze(add_se(on_meta(tv.resnet50), placement=placement), SHAPE)
    catalog = analyze(get_model(f"se_resnet50:placement={placement}"), SHAPE)
    assert ours.total == catalog.total
    if placement == "standard":
        assert ours.total.params == 28_088_024


def test_placements_are_the_catalogs():
    assert tuple(RESIDUAL_PLACEMENTS) == PLACEMENTS


# --- placement proven by tensor flow ----------------------------------------------------------------


def tiny_resnet(block: type[BasicBlock] | type[Bottleneck]) -> nn.Module:
    torch.manual_seed(0)
    return ResNet(block, [1, 1, 1, 1], num_classes=10).eval()


class Recorder:
    """Forward hooks that keep (input, output) of each call of the given modules, in call order."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self.handles = [module.register_forward_hook(self._hook(label)) for label, module in modules.items()]

    def close(self) -> None:
        """Remove the hooks (a deep copy of the model would otherwise carry them along)."""
        for handle in self.handles:
            handle.remove()

    def _hook(self, label: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            self.calls.append((label, args[0].detach().clone(), output.detach().clone()))

        return hook

    def first(self, label: str) -> tuple[torch.Tensor, torch.Tensor]:
        return next((i, o) for lab, i, o in self.calls if lab == label)

    def count(self, label: str) -> int:
        return sum(lab == label for lab, _, _ in self.calls)


def original_tensors(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inside the SE-free model's first block: its input, conv outputs, residual, identity and output."""
    block = model.layer1[0]
    convs = [n for n, _ in block.named_children() if n.startswith("conv")]
    watched = (
        {"block": block}
        | {n: getattr(block, n) for n in convs}
        | {"bn_last": getattr(block, f"bn{len(convs)}")}
    )
    if block.downsample is not None:
        watched["downsample"] = block.downsample
    rec = Recorder(watched)
    with torch.no_grad():
        model(x)
    rec.close()
    block_in, block_out = rec.first("block")
    tensors = {"in": block_in, "out": block_out, "residual": rec.first("bn_last")[1]}
    tensors |= {name: rec.first(name)[1] for name in convs}
    tensors["identity"] = rec.first("downsample")[1] if "downsample" in watched else block_in
    return tensors


def branch_after(block: nn.Module, start: int, t: torch.Tensor) -> torch.Tensor:
    """The residual branch of an unmodified torchvision block, from its ``conv{start}``'s input on."""
    k = sum(1 for n, _ in block.named_children() if n.startswith("conv"))
    for i in range(start, k + 1):
        t = getattr(block, f"bn{i}")(getattr(block, f"conv{i}")(t))
        t = block.relu(t) if i < k else t
    return t


# every block type with every placement it has (3x3 on basic blocks is refused: test_refusals)
FLOW_CASES = [(b, p) for b in (BasicBlock, Bottleneck) for p in PLACEMENTS if (b, p) != (BasicBlock, "3x3")]


@pytest.mark.parametrize(("block_type", "placement"), FLOW_CASES)
def test_placement_by_tensor_flow(block_type, placement):
    model = tiny_resnet(block_type)
    x = torch.randn(1, 3, 64, 64)
    seen = original_tensors(model, x)
    with_se = add_se(model, placement=placement).eval()
    ses = {f"se{i}": m for i, m in enumerate(m for m in with_se.modules() if isinstance(m, SEBlock))}
    rec = Recorder(ses | {"slot": with_se.layer1[0]})
    with torch.no_grad():
        out = with_se(x)
    assert out.shape == (1, 10)
    assert len(ses) == 4 and all(rec.count(label) == 1 for label in ses)
    assert [label for label, _, _ in rec.calls if label in ses] == list(ses)  # one per block, in order
    se_in, se_out = rec.first("se0")
    slot_out = rec.first("slot")[1]
    assert not torch.allclose(se_in, se_out)  # the gate really rescales
    relu = nn.functional.relu
    block = model.layer1[0]
    expected_in = {
        "standard": seen["residual"],
        "pre": seen["in"],
        "post": seen["out"],
        "identity": seen["identity"],
        "3x3": seen["conv2"],
    }[placement]
    with torch.no_grad():
        expected_out = {
            "standard": lambda: relu(se_out + seen["identity"]),
            "pre": lambda: relu(branch_after(block, 1, se_out) + seen["identity"]),  # identity unscaled
            "post": lambda: se_out,
            "identity": lambda: relu(seen["residual"] + se_out),
            "3x3": lambda: relu(branch_after(block, 3, relu(block.bn2(se_out))) + seen["identity"]),
        }[placement]()
    assert torch.equal(se_in, expected_in)
    torch.testing.assert_close(slot_out, expected_out)


def test_plain_stack_se_follows_each_activation():
    torch.manual_seed(0)
    features = make_layers([8, "M", 16, "M"], batch_norm=True)
    model = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(16, 5)).eval()
    x = torch.randn(2, 3, 32, 32)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    before = Recorder({f"relu{i}": m for i, m in enumerate(relus)})
    with torch.no_grad():
        reference = model(x)
    before.close()
    with_se = add_se(model, config=SEConfig(r=4)).eval()
    ses = [m for m in with_se.modules() if isinstance(m, SEBlock)]
    pools = [m for m in with_se.modules() if isinstance(m, nn.MaxPool2d)]
    rec = Recorder({"se0": ses[0], "se1": ses[1], "pool0": pools[0]})
    with torch.no_grad():
        out = with_se(x)
    assert out.shape == reference.shape and len(ses) == 2
    se_in, se_out = rec.first("se0")
    assert torch.equal(se_in, before.first("relu0")[1])  # SE reads the activation's output ...
    assert torch.equal(rec.first("pool0")[0], se_out)  # ... and the next layer reads SE's output
    assert [label for label, _, _ in rec.calls] == ["se0", "pool0", "se1"]
    assert [se.channels for se in ses] == [8, 16]


class LookalikeBlock(nn.Module):
    """A user's block built like torchvision's BasicBlock (same attribute names), not derived from it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + identity)


def test_lookalike_blocks_are_recognised():
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), LookalikeBlock(32), LookalikeBlock(32)).eval()
    with_se = add_se(model, placement="identity")
    assert n_params(with_se) - n_params(model) == 2 * se_params(32)
    assert with_se(torch.randn(1, 3, 8, 8)).shape == (1, 32, 8, 8)


# --- the caller's model, devices, remove_se ---------------------------------------------------------


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_callers_model_is_unchanged(placement):
    model = tiny_resnet(Bottleneck)
    structure = str(model)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    with_se = add_se(model, placement=placement)
    assert str(model) == structure
    assert not any(isinstance(m, SEBlock) for m in model.modules())
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    assert state.keys() == model.state_dict().keys()
    ours = {p.data_ptr() for p in with_se.parameters()}
    assert not ours & {p.data_ptr() for p in model.parameters()}


def test_se_follows_device_dtype_and_mode():
    meta = add_se(on_meta(tv.resnet18))
    assert all(p.is_meta for p in meta.parameters())
    double = add_se(tiny_resnet(BasicBlock).double().train())
    ses = [m for m in double.modules() if isinstance(m, SEBlock)]
    assert all(p.dtype == torch.float64 for se in ses for p in se.parameters())
    assert all(se.training for se in ses)
    assert double(torch.randn(2, 3, 32, 32, dtype=torch.float64)).shape == (2, 10)


def test_remove_se_undoes_add_se():
    model = tiny_resnet(BasicBlock)
    with_se = add_se(model, placement="post")
    without = remove_se(with_se)
    assert n_params(without) == n_params(model)
    assert any(isinstance(m, SEBlock) for m in with_se.modules())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(without.eval()(x), model(x))


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (
            lambda: tiny_resnet(BasicBlock),
            {"placement": "middle"},
            r"unknown placement 'middle'; choose one of",
        ),
        (
            lambda: tiny_resnet(BasicBlock),
            {"placement": "3x3"},
            r"needs bottleneck blocks.*layer1\.0 \(BasicBlock\)",
        ),
        (
            lambda: tiny_resnet(BasicBlock),
            {"config": SEConfig(r=128)},
            r"r=128 is larger than the 64 channels of block layer1\.0 \(BasicBlock\)",
        ),
        (lambda: add_se(tiny_resnet(BasicBlock)), {}, r"ResNet already has 4 SE modules"),
        (lambda: on_meta(tv.mobilenet_v3_small), {}, r"MobileNetV3 already has 9 SE modules"),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), {}, r"in Sequential: it has no nn\.Conv2d"),
        (
            lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)),
            {},
            r"in Sequential: .*conv 0 is not followed by an activation.*name the points with at=",
        ),
        (lambda: on_meta(tv.vgg11), {"placement": "pre"}, r"placement=pre .* VGG is a plain conv stack"),
    ],
)
def test_refusals(make, kwargs, message):
    with pytest.raises(UserInputError, match=message) as caught:
        add_se(make(), **kwargs)
    assert "\n" not in str(caught.value)


def test_remove_se_refuses_a_model_without_se():
    with pytest.raises(UserInputError, match="ResNet has no SE modules to remove"):
        remove_se(tiny_resnet(BasicBlock))


def test_add_se_to_vgg16_bn_is_the_catalogs_se_vgg16_bn():
    if "se_vgg16_bn" not in list_models():
        pytest.skip("the catalog has no se_vgg16_bn")
    ours = analyze(add_se(on_meta(tv.vgg16_bn)), SHAPE)
    assert ours.total == analyze(get_model("se_vgg16_bn"), SHAPE).total
