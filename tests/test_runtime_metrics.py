"""Runtime metrics wired into `profile` and `compare`: options, records and refusals."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from senet_profile import api
from senet_profile.analysis.latency import minor_page_faults
from senet_profile.analysis.metrics import METRIC_GROUPS, RuntimeOptions, parse_metrics
from senet_profile.cli import app
from senet_profile.errors import UserInputError


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("static", ("static",)),
        ("all", METRIC_GROUPS),
        ("latency,static", ("static", "latency")),
        ("memory", ("memory",)),
    ],
)
def test_parse_metrics(text, groups):
    assert parse_metrics(text) == groups


@pytest.mark.parametrize("text", ["", "bogus", "static,bogus", "all,static"])
def test_parse_metrics_refuses(text):
    with pytest.raises(UserInputError, match="unknown metrics"):
        parse_metrics(text)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"device": "tpu"}, "unknown device"),
        ({"mode": "eval"}, "unknown mode"),
        ({"dtype": "int8"}, "unknown dtype"),
        ({"threads": 0}, "threads must be"),
        ({"budget_s": 0}, "budget"),
        ({"allocator": "tcmalloc"}, "unknown allocator"),
    ],
)
def test_runtime_options_refuse(options, match):
    with pytest.raises(UserInputError, match=match):
        RuntimeOptions(**options)


def test_latency_on_meta_is_refused():
    with pytest.raises(UserInputError, match="meta device"):
        RuntimeOptions(device="meta").latency(batch_size=1, input_size=(224, 224))


def test_compare_memory_on_meta_explains_se_share():
    result = run(
        "compare", "resnet18", "se_resnet18", "--metrics", "memory", "--device", "meta", "--mode", "train",
        "--batch-size", "2", "--input-size", "64", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    assert set(records) == {
        "memory_peak",
        "memory_peak_se",
        "memory_saved",
        "memory_saved_se",
        "memory_grads",
    }
    assert records["memory_saved_se"]["base"] == 0 and records["memory_saved_se"]["candidate"] > 0
    assert isinstance(records["memory_peak"]["delta"], int) and records["memory_peak"]["delta"] > 0
    # In training SE's extra peak is what its blocks save for backward, give or take one small transient.
    extra = records["memory_peak"]["delta"] - records["memory_saved_se"]["candidate"]
    assert 0 <= extra < records["memory_saved_se"]["candidate"] * 0.05


def test_profile_latency_records_carry_the_interval():
    result = run(
        "profile",
        "resnet18",
        "--metrics",
        "latency",
        "--input-size",
        "32",
        "--budget",
        "2",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    latency = records["latency"]
    assert latency["unit"] == "s" and latency["samples"] >= 2
    assert latency["ci_low"] <= latency["value"] <= latency["ci_high"]


def test_compare_latency_records_carry_the_paired_overhead():
    result = run(
        "compare", "resnet18", "se_resnet18", "--metrics", "static,latency", "--input-size", "32",
        "--budget", "3", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    assert "params" in records and "latency_iqr" in records
    latency = records["latency"]
    assert latency["ci_low"] <= latency["overhead_pct"] <= latency["ci_high"]
    assert latency["samples"] >= 2 and latency["base"] > 0 and latency["candidate"] > 0
    assert records["params"]["ci_low"] is None
    if minor_page_faults() is not None:
        faults = records["page_faults"]
        assert faults["unit"] == "per call" and faults["samples"] == latency["samples"]
        assert faults["base"] >= 0 and faults["candidate"] >= 0


def test_a_heap_that_cannot_be_held_is_noted(monkeypatch):
    monkeypatch.setattr("senet_profile.analysis.allocator._glibc", lambda: None)
    frame = api.compare(
        "resnet18", "se_resnet18", input_size=(32, 32), metrics=("latency",),
        runtime=RuntimeOptions(budget_s=0.5),
    )  # fmt: skip
    assert any("could not be held steady: as-is (not glibc)" in note for note in frame.attrs["notes"])


def test_compare_latency_table_shows_the_interval():
    result = run(
        "compare", "resnet18", "se_resnet18", "--metrics", "latency", "--input-size", "32", "--budget", "2"
    )
    assert result.exit_code == 0, result.stderr
    assert "95% CI" in result.stdout and "median of per-pair ratios" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--metrics", "latency", "--device", "meta"], "meta device"),
        (["--metrics", "latency", "--dtype", "fp16"], "fp16"),
        (["--metrics", "latency", "--batch-size", "0"], "batch size"),
        (["--metrics", "speed"], "unknown metrics"),
        (["--metrics", "memory", "--mode", "eval"], "unknown mode"),
        (["--metrics", "latency", "--threads", "0"], "threads"),
        (["--metrics", "latency", "--allocator", "jemalloc"], "unknown allocator"),
    ],
)
def test_runtime_bad_input_is_one_line(args, needle):
    result = run("compare", "resnet18", "se_resnet18", "--input-size", "32", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("metrics", ["latency", "memory"])
def test_cuda_without_gpu_is_refused(metrics):
    result = run("compare", "resnet18", "se_resnet18", "--metrics", metrics, "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_threads_beyond_cores_warn_in_one_line(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    result = run(
        "profile", "resnet18", "--metrics", "latency", "--input-size", "32", "--budget", "1", "--threads", "2"
    )
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "thread" in warnings[0]
