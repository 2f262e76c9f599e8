"""precision: fp32 math set and restored, and named from torch's flags (CUDA state faked on the CPU)."""

from __future__ import annotations

import pytest
import torch

from senet_profile.analysis import latency, precision
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting


def _flags() -> tuple[bool, bool]:
    return precision.tf32_in_force()


def test_fp32_math_sets_and_restores_the_flags() -> None:
    before = _flags()
    with precision.fp32_math("ieee"):
        assert _flags() == (False, False)
    assert _flags() == before
    with precision.fp32_math("tf32"):
        assert _flags() == (True, True)
        with precision.fp32_math("default"):
            assert _flags() == (True, True)
    assert _flags() == before
    with pytest.raises(RuntimeError), precision.fp32_math("ieee"):
        raise RuntimeError("inside")
    assert _flags() == before


def test_no_deprecation_warning_leaks(recwarn: pytest.WarningsRecorder) -> None:
    with precision.fp32_math("tf32"):
        precision.precision_label(device="cuda", dtype="fp32", channels_last=False)
    with precision.fp32_math("ieee"):
        precision.precision_label(device="cuda", dtype="fp32", channels_last=True)
    assert not [w for w in recwarn if issubclass(w.category, (DeprecationWarning, UserWarning))]


def test_labels_read_the_flags_in_force() -> None:
    label = precision.precision_label
    assert label(device="cpu", dtype="fp32", channels_last=False) == "IEEE fp32"
    with precision.fp32_math("tf32"):  # on the CPU the flags do not act
        assert label(device="cpu", dtype="fp32", channels_last=False) == "IEEE fp32"
        assert label(device="cuda", dtype="fp32", channels_last=False) == "TF32"
    with precision.fp32_math("ieee"):
        assert label(device="cuda", dtype="fp32", channels_last=True) == "IEEE fp32, channels-last"
    assert label(device="cuda", dtype="bf16", channels_last=True) == "bf16, channels-last"
    assert label(device="cuda", dtype="fp16", channels_last=False) == "fp16"


def test_pytorch_default_is_named() -> None:
    if precision.tf32_in_force() != (True, False):
        pytest.skip("this process does not run with PyTorch's default TF32 flags")
    assert precision.precision_label(device="cuda", dtype="fp32", channels_last=False) == (
        "TF32 convolutions, IEEE fp32 matmuls (PyTorch's default)"
    )


def test_dtype_tf32_is_fp32_in_tf32_math() -> None:
    assert precision.resolve_dtype("tf32", "default") == ("fp32", "tf32")
    assert precision.resolve_dtype("bf16", "ieee") == ("bf16", "ieee")
    with pytest.raises(UserInputError, match="contradicts"):
        precision.resolve_dtype("tf32", "ieee")
    with pytest.raises(UserInputError, match="unknown math"):
        precision.resolve_dtype("fp32", "fast")


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time 'cuda' on the CPU: the device checks pass, tensors go to the CPU, the sync is a no-op."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(latency._SYNC, "cuda", lambda: None)
    real_prepared, real_input = latency._prepared, latency._input
    monkeypatch.setattr(latency, "_prepared", lambda model, options: real_prepared(model, _on_cpu(options)))
    monkeypatch.setattr(latency, "_input", lambda options: real_input(_on_cpu(options)))


def _on_cpu(options: Setting) -> Setting:
    from dataclasses import replace

    return replace(options, device="cpu")


@pytest.mark.parametrize(("math", "named"), [("tf32", "TF32"), ("ieee", "IEEE fp32")])
def test_record_and_footer_name_tf32_or_ieee_on_cuda(fake_cuda: None, math: str, named: str) -> None:
    from senet_profile import api

    runtime = Setting(device="cuda", math=math, budget_s=0.05)
    options = runtime.for_latency((16, 16))
    assert options.processes == 1  # one process on CUDA by default
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    paired = latency.measure_paired(small, small, replace_min_pairs(options))
    assert paired.precision == named
    assert paired.summary()["precision"] == named  # what a run record keeps
    assert runtime.describe(("latency",), precision=paired.precision).endswith(f"math {named}, 1 process")
    frame = api.compare(
        "tests/small_cnn.py:small_cnn", "tests/small_cnn.py:small_cnn:se=on", metrics=("latency",),
        setting=runtime, input_size=(16, 16),
    )  # fmt: skip
    assert f"math {named}, 1 process" in frame.attrs["runtime"]
    assert precision.tf32_in_force() == precision.tf32_in_force()  # flags restored: no error reading them


def replace_min_pairs(options: Setting) -> Setting:
    """Few pairs: the test checks the labels, not the figures."""
    from dataclasses import replace

    return replace(options, min_pairs=2, warmup=1)


def test_cpu_footer_names_ieee_fp32() -> None:
    from senet_profile import api

    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    frame = api.compare(
        small, torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), metrics="latency", input_size=16,
        setting=Setting(budget_s=0.05, processes=1, min_pairs=2, warmup=1),
    )  # fmt: skip
    assert "math IEEE fp32" in frame.attrs["runtime"]
    assert Setting(device="cpu").worker_processes == 4


def test_unknown_math_refused() -> None:
    with pytest.raises(UserInputError, match="unknown math"):
        Setting(math="fast")
