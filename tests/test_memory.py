"""Exact activation-memory accounting, checked against sizes worked out by hand."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from senet_profile.analysis.memory import measure_memory
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError

F32 = 4  # bytes per float32
SHAPE = (2, 3, 5, 5)  # batch 2, 3 channels, 5x5
MAP = 2 * 8 * 5 * 5 * F32  # one 8-channel 5x5 map of the batch: 1600 bytes
VEC8 = 2 * 8 * F32  # an (2, 8, 1, 1) tensor: 64 bytes
VEC2 = 2 * 2 * F32  # the SE bottleneck (2, 2, 1, 1) with r=4: 16 bytes


def conv_se() -> nn.Sequential:
    """Conv 3->8 (3x3, same padding) followed by an SE block with r=4 (hidden width 2)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SEBlock(8, config=SEConfig(r=4)))


def conv_relu() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())


def se_resnet50() -> nn.Module:
    """torchvision's ResNet-50 with an SE block after each bottleneck's bn3."""
    model = torchvision.models.resnet50()
    for module in model.modules():
        if isinstance(module, torchvision.models.resnet.Bottleneck):
            module.bn3 = nn.Sequential(module.bn3, SEBlock(module.bn3.num_features, config=SEConfig()))
    return model


def hook_count(model: nn.Module) -> int:
    return sum(
        len(hooks)
        for module in model.modules()
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks)
    )


def test_infer_peak_of_conv_se_matches_hand_count():
    profile = measure_memory(conv_se(), SHAPE)
    # Live set over time: conv out (MAP) | + pooled (VEC8) | + fc1 (VEC2) | - pooled | relu in place
    # | + fc2 (VEC8) | - fc1 | + sigmoid (VEC8) | - fc2 | + x * weights (MAP)  <- peak, conv out still held
    # by nn.Sequential. At the peak: conv out + sigmoid + product; the last two were allocated inside SE.
    assert profile.peak_bytes == MAP + VEC8 + MAP
    assert profile.se_peak_bytes == VEC8 + MAP
    assert profile.saved_bytes == 0 and profile.se_saved_bytes == 0
    assert profile.saved_by_module == {} and profile.se_saved_tensors == ()
    assert profile.grad_bytes == 0 and profile.cuda_max_allocated is None


def test_train_saved_tensors_of_se_block_by_hand():
    profile = measure_memory(conv_se(), SHAPE, mode="train")
    # The conv saves only its input and weight (neither is an activation). Inside SE: fc1 saves the pooled
    # vector, the in-place ReLU saves fc1's output (which fc2 saves again: same storage, counted once), the
    # sigmoid saves its output, and x * weights saves x -- the conv output, kept alive by SE alone.
    assert profile.se_saved_tensors == (
        ("1.fc1", "conv2d", (2, 8, 1, 1), VEC8),
        ("1.relu", "relu", (2, 2, 1, 1), VEC2),
        ("1.gate", "sigmoid", (2, 8, 1, 1), VEC8),
        ("1", "mul", (2, 8, 5, 5), MAP),
    )
    assert profile.saved_bytes == profile.se_saved_bytes == VEC8 + VEC2 + VEC8 + MAP
    assert profile.saved_by_module == {"1.fc1": VEC8, "1.relu": VEC2, "1.gate": VEC8, "1": MAP}
    # Gradients of conv (8*3*3*3 + 8), fc1 (2*8 + 2) and fc2 (8*2 + 8), reported apart from the peak.
    assert profile.grad_bytes == (216 + 8 + 16 + 2 + 16 + 8) * F32


def test_train_peak_without_se_by_hand():
    profile = measure_memory(conv_relu(), SHAPE, mode="train")
    # Forward leaves the ReLU output (saved by ReLU); the conv output is freed. Backward: loss scalar, its
    # grad of ones (scalar, expanded as a view), then threshold_backward allocates a MAP while the ReLU
    # output is still held. Weight and bias gradients are excluded from the peak.
    assert profile.peak_bytes == MAP + F32 + F32 + MAP
    assert profile.saved_bytes == MAP
    assert profile.saved_by_module == {"1": MAP}
    assert profile.se_peak_bytes == 0 and profile.se_saved_bytes == 0 and profile.se_saved_tensors == ()
    assert profile.grad_bytes == (8 * 3 * 3 * 3 + 8) * F32


def test_infer_saves_nothing_train_saves_something():
    model = se_resnet50()
    infer = measure_memory(model, (2, 3, 32, 32), device="meta")
    train = measure_memory(model, (2, 3, 32, 32), mode="train", device="meta")
    assert infer.saved_bytes == 0
    assert train.saved_bytes > 0
    assert train.peak_bytes > infer.peak_bytes


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_meta_equals_cpu(mode):
    model = se_resnet50()
    cpu = measure_memory(model, (2, 3, 32, 32), mode=mode, device="cpu")
    meta = measure_memory(model, (2, 3, 32, 32), mode=mode, device="meta")
    assert cpu.peak_bytes > 0
    assert (cpu.peak_bytes, cpu.saved_bytes, cpu.se_peak_bytes, cpu.se_saved_bytes, cpu.grad_bytes) == (
        meta.peak_bytes,
        meta.saved_bytes,
        meta.se_peak_bytes,
        meta.se_saved_bytes,
        meta.grad_bytes,
    )
    assert cpu.saved_by_module == meta.saved_by_module
    assert cpu.se_saved_tensors == meta.se_saved_tensors
    assert cpu.peak_tensors == meta.peak_tensors and cpu.peak_at == meta.peak_at


def test_se_share_zero_without_se_and_nonzero_with():
    plain = measure_memory(torchvision.models.resnet50(), (2, 3, 32, 32), mode="train", device="meta")
    with_se = measure_memory(se_resnet50(), (2, 3, 32, 32), mode="train", device="meta")
    assert plain.se_peak_bytes == 0 and plain.se_saved_bytes == 0 and plain.se_saved_tensors == ()
    assert with_se.se_peak_bytes > 0 and with_se.se_saved_bytes > 0
    assert len(with_se.se_saved_tensors) == 16 * 4  # 16 bottlenecks, four saved storages per SE block
    # Each SE block keeps its input alive for backward; the SE model's extra peak is about that much.
    assert with_se.peak_bytes - plain.peak_bytes == pytest.approx(with_se.se_saved_bytes, rel=0.01)


def test_parameters_and_input_are_not_counted():
    # An identity-like model allocates nothing: the input and the parameters are never counted.
    profile = measure_memory(nn.Sequential(nn.Identity()), (4, 3, 64, 64))
    assert profile.peak_bytes == 0
    big = nn.Sequential(nn.Linear(1000, 1000), nn.Flatten(0))
    assert measure_memory(big, (1, 1000)).peak_bytes == 1000 * F32


def test_caller_model_left_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), SEBlock(8, config=SEConfig(r=4)))
    model.eval()
    model[1].train()  # a mixed state must come back exactly
    grad = torch.ones_like(model[0].weight)
    model[0].weight.grad = grad
    running_mean = model[1].running_mean.clone()
    flags = [m.training for m in model.modules()]
    hooks = hook_count(model)
    measure_memory(model, SHAPE, mode="train")
    measure_memory(model, SHAPE, mode="infer")
    assert hook_count(model) == hooks == 0
    assert [m.training for m in model.modules()] == flags
    assert flags.count(True) == 1
    assert model[0].weight.grad is grad
    assert model[0].bias.grad is None
    assert torch.equal(model[1].running_mean, running_mean)
    assert int(model[1].num_batches_tracked) == 0
    assert model[0].weight.device.type == "cpu"


def test_other_dtype_works_on_a_copy():
    model = conv_se()
    profile = measure_memory(model, SHAPE, dtype=torch.float64)
    assert profile.peak_bytes == 2 * (MAP + VEC8 + MAP)
    assert model[0].weight.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "fly"}, {"device": "tpu"}, {"dtype": torch.int64}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(UserInputError):
        measure_memory(conv_se(), SHAPE, **kwargs)


@pytest.mark.parametrize("shape", [(), (2, 0, 5, 5), (2, -3, 5, 5)])
def test_bad_shape(shape):
    with pytest.raises(UserInputError):
        measure_memory(conv_se(), shape)


def test_train_needs_an_output_with_grad():
    frozen = conv_relu().requires_grad_(False)
    with pytest.raises(UserInputError):
        measure_memory(frozen, SHAPE, mode="train")


def test_cuda_without_gpu_is_a_user_error(no_cuda: None):
    with pytest.raises(UserInputError, match="no CUDA device"):
        measure_memory(conv_se(), SHAPE, device="cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_cuda_matches_meta_and_reports_allocator_peak(mode):
    model = se_resnet50()
    cuda = measure_memory(model, (2, 3, 64, 64), mode=mode, device="cuda")
    meta = measure_memory(model, (2, 3, 64, 64), mode=mode, device="meta")
    # SE's own tensors are the same; the whole-model figures may differ (cuDNN batch norm keeps a reserve).
    assert cuda.se_saved_tensors == meta.se_saved_tensors
    assert cuda.peak_bytes > 0
    assert cuda.cuda_max_allocated is not None
    assert cuda.cuda_max_allocated >= cuda.peak_bytes
