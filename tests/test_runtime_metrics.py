"""Runtime metrics wired into `profile` and `compare`: options, records and refusals."""

from __future__ import annotations

import inspect
import json

import pytest
from typer.testing import CliRunner

from senet_profile import api
from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.analysis.latency import minor_page_faults
from senet_profile.cli import app
from senet_profile.errors import UserInputError
from senet_profile.setting import METRIC_GROUPS, Setting, parse_metrics


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
        ({"processes": 0}, "processes must be"),
    ],
)
def test_runtime_options_refuse(options, match):
    with pytest.raises(UserInputError, match=match):
        Setting(**options)


def test_latency_on_meta_is_refused():
    with pytest.raises(UserInputError, match="meta device"):
        Setting(device="meta").for_latency()


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
    # Against its SE-free twin, what SE adds to the peak is the whole peak difference.
    assert records["memory_peak_se"]["base"] == 0
    assert records["memory_peak_se"]["candidate"] == records["memory_peak"]["delta"]


def records(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.stderr
    return {r["metric"]: r for r in json.loads(result.stdout)}


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_memory_peak_se_is_the_peak_without_se_taken_away(mode):
    # se_resnet50 against resnet18: the peak difference is mostly the architecture; SE's part is what
    # taking SE out of se_resnet50 changes, and equals the resnet50 -> se_resnet50 peak difference.
    args = ("--metrics", "memory", "--mode", mode, "--input-size", "64", "--format", "json")
    against_twin = records(run("compare", "resnet50", "se_resnet50", *args))
    against_other = records(run("compare", "resnet18", "se_resnet50", *args))
    se_part = against_other["memory_peak_se"]["candidate"]
    assert se_part == against_twin["memory_peak"]["delta"] > 0
    assert se_part != against_other["memory_peak"]["delta"]


def test_memory_defaults_to_meta_and_equals_cpu():
    args = ("compare", "resnet18", "se_resnet18", "--metrics", "memory", "--input-size", "32")
    args += ("--format", "json")
    for mode in ("infer", "train"):
        default = run(*args, "--mode", mode, "--batch-size", "2")
        cpu = run(*args, "--mode", mode, "--batch-size", "2", "--device", "cpu")
        assert default.exit_code == cpu.exit_code == 0, (default.stderr, cpu.stderr)
        assert json.loads(default.stdout) == json.loads(cpu.stdout)
    table = run("compare", "resnet18", "se_resnet18", "--metrics", "memory", "--input-size", "32").stdout
    assert "memory on meta" in " ".join(table.split())


def test_profile_latency_records_carry_the_interval():
    result = run(
        "profile", "resnet18", "--metrics", "latency", "--input-size", "32", "--budget", "2",
        "--processes", "1", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    latency = records["latency"]
    assert latency["unit"] == "s" and latency["samples"] >= 2
    if latency["samples"] >= MIN_CI_SAMPLES:
        assert latency["ci_low"] <= latency["value"] <= latency["ci_high"]
    else:
        assert latency["ci_low"] is None and latency["ci_high"] is None


def test_compare_latency_rows_each_hold_one_overhead_definition():
    result = run(
        "compare", "resnet18", "se_resnet18", "--metrics", "static,latency", "--input-size", "32",
        "--budget", "3", "--processes", "1", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    assert "params" in records and "latency_iqr" in records
    medians, paired = records["latency"], records["latency_overhead"]
    # The seconds row: both medians, their difference, and that difference in percent of the base's.
    assert medians["unit"] == "s" and medians["base"] > 0 and medians["candidate"] > 0
    assert medians["delta"] == pytest.approx(medians["candidate"] - medians["base"], rel=1e-12)
    assert medians["overhead_pct"] == pytest.approx(medians["delta"] / medians["base"] * 100, rel=1e-9)
    assert medians["ci_low"] is None and medians["ci_high"] is None
    # The paired row: the median of per-pair ratios, with its interval; nothing in seconds.
    assert paired["unit"] == "%" and paired["base"] is None and paired["delta"] is None
    assert paired["samples"] == medians["samples"] >= 2
    if paired["samples"] >= MIN_CI_SAMPLES:
        assert paired["ci_low"] <= paired["overhead_pct"] <= paired["ci_high"]
    assert records["params"]["ci_low"] is None
    if minor_page_faults() is not None:
        faults = records["page_faults"]
        assert faults["unit"] == "per call" and faults["samples"] == paired["samples"]
        assert faults["base"] >= 0 and faults["candidate"] >= 0


def test_a_heap_that_cannot_be_held_is_noted(monkeypatch):
    monkeypatch.setattr("senet_profile.analysis.allocator._glibc", lambda: None)
    frame = api.compare(
        "resnet18", "se_resnet18", input_size=(32, 32), metrics=("latency",),
        setting=Setting(budget_s=0.5, processes=1),
    )  # fmt: skip
    assert any("could not be held steady: as-is (not glibc)" in note for note in frame.attrs["notes"])


def test_compare_latency_table_labels_both_definitions_and_shows_the_interval():
    result = run(
        "compare", "resnet18", "se_resnet18", "--metrics", "latency", "--input-size", "32", "--budget", "2",
        "--processes", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "95% CI" in result.stdout and "latency_overhead" in result.stdout
    text = " ".join(result.stdout.split())
    assert "difference of medians" in text and "median of per-pair ratios" in text
    assert "one process's samples" in text


@pytest.mark.parametrize("command", ["profile", "compare"])
def test_too_few_samples_give_no_interval_and_say_why(command):
    # A budget of 10 ms leaves the two samples (pairs) every run takes: below MIN_CI_SAMPLES.
    models = ["resnet18"] + (["se_resnet18"] if command == "compare" else [])
    result = run(
        command, *models, "--metrics", "latency", "--input-size", "32", "--budget", "0.01",
        "--processes", "1", "--format", "markdown",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    metric, unit = ("latency_overhead", "pairs") if command == "compare" else ("latency", "samples")
    row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {metric} "))
    assert row.rstrip(" |").endswith("n/a")
    text = " ".join(result.stdout.split())
    assert f"{metric}: 95 % CI n/a, 2 {unit}, fewer than the {MIN_CI_SAMPLES} an interval needs" in text


def test_latency_on_the_meta_device_is_refused_before_any_work(monkeypatch):
    from senet_profile.measure import core

    monkeypatch.setattr(core, "_measure", lambda *a, **k: pytest.fail("measured before refusing"))
    with pytest.raises(UserInputError, match="meta device"):
        api.compare("resnet18", "se_resnet18", metrics=("latency",), setting=Setting(device="meta"))


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
        (["--metrics", "latency", "--processes", "0"], "processes must be"),
    ],
)
def test_runtime_bad_input_is_one_line(args, needle):
    result = run("compare", "resnet18", "se_resnet18", "--input-size", "32", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("metrics", ["latency", "memory"])
def test_cuda_without_gpu_is_refused(no_cuda: None, metrics):
    result = run("compare", "resnet18", "se_resnet18", "--metrics", metrics, "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_threads_beyond_cores_warn_in_one_line(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    result = run(
        "profile", "resnet18", "--metrics", "latency", "--input-size", "32", "--budget", "1",
        "--threads", "2", "--processes", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "thread" in warnings[0]


def test_the_command_line_splits_latency_over_as_many_processes_as_the_api():
    from senet_profile.cli import measure

    for command in (measure.profile_command, measure.compare_command):
        assert inspect.signature(command).parameters["processes"].default is Setting().processes is None


def test_throughput_records_come_from_the_median_and_the_batch():
    from senet_profile.analysis.latency import PairedLatency, SideStats

    fast, slow = SideStats(0.02, 0.019, 0.021, (0.02,) * 30), SideStats(0.025, 0.024, 0.026, (0.025,) * 30)
    single = {r["metric"]: r for r in fast.to_records(batch_size=8)}
    assert single["throughput"]["unit"] == "img/s" and single["throughput"]["value"] == pytest.approx(400.0)
    paired = PairedLatency(base=fast, candidate=slow, overhead_pct=25.0, ci_low_pct=None, ci_high_pct=None,
                           pairs=30, wall_s=1.0, noisy=False, options=Setting())  # fmt: skip
    rate = {r["metric"]: r for r in paired.to_records(batch_size=8)}["throughput"]
    assert (rate["base"], rate["candidate"]) == (pytest.approx(400.0), pytest.approx(320.0))
    assert rate["delta"] == pytest.approx(-80.0) and rate["overhead_pct"] == pytest.approx(-20.0)
