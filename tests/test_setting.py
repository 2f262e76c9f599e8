"""The one setting type: its defaults, its validation, and the one overhead formula."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from senet_profile.errors import UserInputError
from senet_profile.setting import (
    DEFAULT_BUDGET_S,
    MAX_COUNT,
    Setting,
    overhead_pct,
    parse_input_size,
)


def test_defaults_live_in_one_place() -> None:
    setting = Setting()
    assert setting.budget_s == DEFAULT_BUDGET_S
    assert (setting.mode, setting.dtype, setting.math, setting.threads) == ("infer", "fp32", "default", 1)
    assert setting.memory_device == "meta" and setting.latency_device == "cpu"
    assert setting.shape == (1, 3, 224, 224)


@pytest.mark.parametrize(("device", "processes"), [(None, 4), ("cpu", 4), ("cuda", 1)])
def test_worker_processes_follow_the_device(device: str | None, processes: int) -> None:
    assert Setting(device=device).worker_processes == processes
    assert Setting(device=device, processes=2).worker_processes == 2


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"batch_size": 2**63}, f"batch size must be at most {MAX_COUNT}"),
        ({"batch_size": True}, "batch size must be a positive integer, got True"),
        ({"threads": "2"}, "threads must be a positive integer, got '2'"),
        ({"processes": 1.5}, "processes must be a positive integer, got 1.5"),
        ({"input_size": (0, 224)}, "input size must be two positive integers"),
        ({"input_size": (224,)}, "input size must be two positive integers"),
        ({"budget_s": 0}, "budget must be a number of seconds above 0"),
        ({"budget_s": float("nan")}, "budget must be a number of seconds above 0"),
        ({"budget_s": "10"}, "budget must be a number of seconds above 0"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"mode": "eval"}, "unknown mode 'eval'"),
        ({"dtype": "int8"}, "unknown dtype 'int8'"),
        ({"math": "fast"}, "unknown math 'fast'"),
        ({"allocator": "jemalloc"}, "unknown allocator 'jemalloc'"),
        ({"repeats": 2}, "repeats must be an integer of at least 3"),
        ({"min_pairs": 1}, "min_pairs must be an integer of at least 2"),
        ({"channels_last": "yes"}, "channels_last must be True or False"),
    ],
)
def test_every_field_is_validated_in_one_place(fields: dict, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        Setting(**fields)


def test_a_setting_is_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        Setting("cpu")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Setting().batch_size = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "metrics", "match"),
    [
        ({"dtype": "fp16"}, ("memory",), "fp16 runs on CUDA only"),
        ({"device": "meta"}, ("latency",), "latency cannot be measured on the meta device"),
        ({"compile": True}, ("static",), "compile .* applies to latency only"),
        ({"dtype": "bf16", "math": "tf32"}, ("latency",), "math 'tf32' chooses how fp32 is computed"),
    ],
)
def test_machine_and_metric_checks(fields: dict, metrics: tuple[str, ...], match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        Setting(**fields).check_for(metrics)


def test_cuda_without_a_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserInputError, match="no CUDA device"):
        Setting(device="cuda").check_for(("latency",))


def test_for_latency_fixes_device_size_and_processes() -> None:
    timed = Setting(input_size=None).for_latency((192, 160))
    assert (timed.device, timed.input_size, timed.processes) == ("cpu", (192, 160), 4)
    assert timed.for_latency() == timed


def test_round_trip_through_json() -> None:
    setting = Setting(device="cpu", batch_size=8, input_size=(160, 128), math="ieee", budget_s=12.5)
    assert Setting.from_dict(setting.as_dict()) == setting
    with pytest.raises(UserInputError, match="unknown setting fields"):
        Setting.from_dict({**setting.as_dict(), "colour": "blue"})


def test_the_setting_module_imports_no_torch() -> None:
    code = "import sys, senet_profile.setting as s; s.Setting(batch_size=2); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("base", "candidate", "expected"),
    [(100, 110, 10.0), (4.0, 3.0, -25.0), (0, 5, None), (0, 0, None), (None, 3, None), (3, None, None)],
)
def test_one_overhead_formula_with_one_zero_base_convention(base, candidate, expected) -> None:
    result = overhead_pct(base, candidate)
    if expected is None:
        assert result is None
    else:
        assert math.isclose(result, expected)


def test_input_size_text() -> None:
    assert parse_input_size("224") == (224, 224)
    assert parse_input_size("224x192") == (224, 192)
    with pytest.raises(UserInputError, match="positive sizes"):
        parse_input_size(str(2**64))
