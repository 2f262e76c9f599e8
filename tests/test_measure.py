"""The measuring room through the API: one resolver for every source, explain as a result, bytes at the
dtype's size, errors that say whose they are, and the package's public face."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import senet_profile
from senet_profile import api
from senet_profile.cli import app
from senet_profile.errors import ToolBug, UserInputError
from senet_profile.setting import Setting

TINY = Setting(input_size=(64, 64), budget_s=1.0, min_pairs=2, warmup=1, repeats=3, processes=1)
BUILDER = """
import torch.nn as nn
from senet_profile.catalog.se import SEBlock, SEConfig

def plain():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

def with_se():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), SEBlock(16, config=SEConfig(r=4)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
"""


@pytest.fixture(scope="module")
def machine_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("machine") / "here.json"


@pytest.fixture()
def builder_file(tmp_path: Path) -> Path:
    path = tmp_path / "models_here.py"
    path.write_text(BUILDER)
    return path


def test_explain_is_an_api_function_returning_a_result(machine_path: Path) -> None:
    explanation = senet_profile.explain("resnet18", "se_resnet18", setting=TINY, measure=False,
                                        machine_path=machine_path)  # fmt: skip
    assert isinstance(explanation, api.Explanation)
    assert explanation.names == ("resnet18", "se_resnet18")
    verdicts = {row["verdict"]: row for row in explanation.verdicts()}
    assert verdicts["FLOPs predict"]["overhead_pct"] > 0
    record = explanation.to_records()
    assert record["setting_fields"]["input_size"] == [64, 64]
    json.dumps(record)  # serialisable as it is
    frame = explanation.to_frame()
    assert "op_class" in frame.columns and "verdict" in frame.columns


@pytest.mark.parametrize("source", ["timm", "torchvision", "file"])
def test_explain_takes_every_model_source(source: str, machine_path: Path, builder_file: Path) -> None:
    if source == "timm":
        pytest.importorskip("timm")
        pair = ("timm:resnet18", "timm:seresnet18")
    elif source == "torchvision":
        pair = ("torchvision:mobilenet_v3_small:se=off", "torchvision:mobilenet_v3_small")
    else:
        pair = (f"{builder_file}:plain", f"{builder_file}:with_se")
    explanation = api.explain(*pair, setting=TINY, measure=False, machine_path=machine_path)
    assert explanation.time.candidate.static.se_blocks > 0
    assert explanation.time.predicted_pct is not None


def test_explain_measures_any_source_and_reads_na_below_twenty_pairs(machine_path: Path) -> None:
    pytest.importorskip("timm")
    short = TINY.resolved(budget_s=0.2)  # a handful of pairs, fewer than an interval needs
    explanation = api.explain("timm:resnet18", "timm:seresnet18", setting=short, machine_path=machine_path)
    paired = explanation.time.paired
    assert paired is not None and paired.pairs < 20 and paired.ci_reason
    verdicts = {row["verdict"]: row for row in explanation.verdicts()}
    assert verdicts["measured (paired)"]["overhead_pct"] is None
    assert "n/a" in verdicts["measured (paired)"]["detail"]
    assert verdicts["prediction error"]["overhead_pct"] is None
    assert "fewer than the 20" in verdicts["prediction error"]["detail"]


def test_explain_cli_prints_na_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("timm")
    result = CliRunner().invoke(app, [
        "explain", "timm:resnet18", "timm:seresnet18", "--input-size", "64", "--budget", "0.2",
        "--repeats", "3", "--machine-dir", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())  # verdict lines wrap to the terminal
    measured = flat[flat.index("measured (paired)") :]
    assert measured.startswith("measured (paired) n/a %")
    assert "fewer than the 20 an interval needs" in measured
    assert "prediction error n/a pp" in flat


@pytest.mark.parametrize(("dtype", "size"), [("bf16", 2), ("fp16", 2)])
def test_bytes_moved_at_the_dtypes_size(dtype: str, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # fp16 is refused off CUDA
    device = "cuda" if dtype == "fp16" else None
    fp32 = api.profile("resnet18", setting=Setting(input_size=(64, 64)))
    low = api.profile("resnet18", setting=Setting(input_size=(64, 64), dtype=dtype, device=device))

    def moved(frame):
        return int(frame[(frame["metric"] == "bytes_moved") & (frame["scope"] == "model")]["value"].iloc[0])

    # 2-byte tensors move half the bytes; the few an op keeps in fp32 (batch norm's statistics) stay 4
    assert 0.49 < moved(low) / moved(fp32) < size / 4 + 0.01


def test_compare_bytes_moved_in_bf16_is_half_of_fp32() -> None:
    fp32 = api.compare("resnet18", "se_resnet18", setting=Setting(input_size=(64, 64)))
    bf16 = api.compare("resnet18", "se_resnet18", setting=Setting(input_size=(64, 64), dtype="bf16"))
    pick = lambda f: f[f["metric"] == "bytes_moved"]["base"].iloc[0]  # noqa: E731
    assert 0.49 * pick(fp32) < pick(bf16) < 0.51 * pick(fp32)


def test_the_api_takes_a_budget_a_setting_and_a_progress_callback() -> None:
    calls: list[tuple[int, float]] = []
    frame = api.compare(
        nn.Conv2d(3, 4, 3), nn.Conv2d(3, 8, 3), metrics="latency", input_size=16, budget=5.0,
        setting=Setting(processes=1, min_pairs=2, warmup=0, target_halfwidth_pp=1000.0),
        progress=lambda n, hw: calls.append((n, hw)),
    )  # fmt: skip
    assert frame.attrs["setting"]["budget_s"] == 5.0
    assert calls, "progress was never called"
    with pytest.raises(UserInputError, match="progress must be a callable"):
        api.compare("resnet18", "se_resnet18", progress=3)  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="setting must be"):
        api.profile("resnet18", setting={"batch_size": 2})  # type: ignore[arg-type]


class Broken(nn.Module):
    def forward(self, x):
        raise KeyError("no such head")


def test_a_models_failing_forward_is_the_users_one_line() -> None:
    with pytest.raises(UserInputError, match="Broken cannot run on input 1x3x224x224: KeyError"):
        api.profile(Broken())


def test_a_failure_in_the_tools_counting_is_a_bug_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from senet_profile.analysis import trace

    def broken_rule(*args, **kwargs):
        raise IndexError("rule bug")

    monkeypatch.setattr(trace, "traffic", broken_rule)
    with pytest.raises(ToolBug, match=r"counting aten\.\w+ failed: IndexError: rule bug"):
        api.profile("resnet18")
    result = CliRunner().invoke(app, ["compare", "resnet18", "se_resnet18"])
    assert result.exit_code == 70
    assert "Traceback" in result.output and "please report it" in result.output


def test_python_dash_m_runs_the_command_line() -> None:
    out = subprocess.run([sys.executable, "-m", "senet_profile", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage" in out.stdout


def test_dir_shows_only_public_names() -> None:
    names = dir(senet_profile)
    assert not any(name in names for name in ("Any", "TYPE_CHECKING", "annotations", "importlib"))
    assert {"Setting", "explain", "explain_memory", "profile", "compare"} <= set(names)
    for name in senet_profile.__all__:
        assert getattr(senet_profile, name) is not None


def test_explain_memory_is_an_api_function() -> None:
    result = senet_profile.explain_memory(
        "resnet18", "se_resnet18", setting=Setting(mode="train", batch_size=2, input_size=(64, 64))
    )
    assert result.names == ("resnet18", "se_resnet18")
    assert result.candidate.profile.peak_bytes >= result.base.profile.peak_bytes
    assert result.to_markdown().startswith("# Memory: se_resnet18 over resnet18")
