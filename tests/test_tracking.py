"""Bench records through the CLI: record, regress, baseline update, history and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from senet_profile.cli import app
from senet_profile.history import bench, tracking

PAIR = "resnet18 -> se_resnet18"


def _timing(overhead: float, batch: int = 1) -> dict:
    return {
        "model": PAIR, "metric": "latency_overhead", "setting": f"cpu infer b{batch} fp32 threads=1",
        "unit": "%", "value": overhead, "deterministic": False, "ci_low": overhead - 1,
        "ci_high": overhead + 1,
        "samples": 40,
        "base_median_s": 0.01, "candidate_median_s": 0.011, "base_iqr_s": 0.001, "candidate_iqr_s": 0.001,
        "wall_s": 5.0, "noisy": False, "batch_size": batch, "mode": "infer",
    }  # fmt: skip


def _benchmark_json(folder: Path, overheads: dict[int, float]) -> Path:
    path = folder / "benchmark.json"
    benchmarks = [{"name": f"b{b}", "extra_info": {"figure": _timing(o, b)}} for b, o in overheads.items()]
    path.write_text(json.dumps({"benchmarks": benchmarks}), encoding="utf-8")
    return path


@pytest.fixture
def small_catalog(monkeypatch: pytest.MonkeyPatch):
    """Deterministic figures of two small models, so a record takes seconds, not the whole catalog."""
    figures = bench.static_figures(["resnet18", "se_resnet18"])
    monkeypatch.setattr(tracking, "deterministic_figures", lambda selected: [dict(f) for f in figures])
    return figures


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _record(tmp_path: Path, overheads: dict[int, float]) -> Path:
    result = run(
        "record", "--benchmark-json", _benchmark_json(tmp_path, overheads), "--runs-dir", tmp_path / "runs"
    )
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().rsplit(" ", 1)[-1])


def test_record_writes_json_and_csv(tmp_path: Path, small_catalog):
    path = _record(tmp_path, {1: 8.0})
    assert path.parent.name == tracking.current_class() and path.suffix == ".json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert len(data["figures"]) == len(small_catalog) + 1
    assert {"machine", "commit", "time", "settings"} <= set(data)
    assert path.with_suffix(".csv").read_text(encoding="utf-8").startswith("model,metric,setting,unit,value")


def test_regress_without_baseline_says_so(tmp_path: Path, small_catalog):
    _record(tmp_path, {1: 8.0})
    result = run("regress", "--runs-dir", tmp_path / "runs", "--baselines-dir", tmp_path / "baselines")
    assert result.exit_code == 0 and "no baseline for machine class" in result.stdout


def test_baseline_then_unchanged_run_passes_and_change_fails(tmp_path: Path, small_catalog):
    dirs = ("--runs-dir", tmp_path / "runs", "--baselines-dir", tmp_path / "baselines")
    _record(tmp_path, {1: 8.0})
    assert run("baseline", "update", *dirs).exit_code == 0
    _record(tmp_path, {1: 8.4})
    passed = run("regress", *dirs)
    assert passed.exit_code == 0, passed.stdout
    small_catalog[0]["value"] += 1  # what a changed SE block would do to a deterministic figure
    _record(tmp_path, {1: 8.0})
    failed = run("regress", *dirs)
    assert failed.exit_code == 1
    line = next(line for line in failed.stdout.splitlines() if line.startswith("REGRESSION"))
    figure = small_catalog[0]
    assert figure["model"] in line and figure["metric"] in line
    assert f"{figure['value'] - 1:,}" in line and f"{figure['value']:,}" in line
    update = run("baseline", "update", *dirs)
    assert update.exit_code == 0 and "1 figures change" in update.stdout
    assert run("regress", *dirs).exit_code == 0


def test_timing_regression_fails(tmp_path: Path, small_catalog):
    dirs = ("--runs-dir", tmp_path / "runs", "--baselines-dir", tmp_path / "baselines")
    _record(tmp_path, {1: 8.0})
    run("baseline", "update", *dirs)
    _record(tmp_path, {1: 20.0})
    result = run("regress", *dirs, "--threshold", "latency_overhead:2pp")
    assert result.exit_code == 1 and "latency_overhead" in result.stdout


def test_corrupt_record_is_reported_and_skipped(tmp_path: Path, small_catalog):
    good = _record(tmp_path, {1: 8.0})
    (good.parent / "99999999-zzz.json").write_text('{"schema": 1, "kind": "ben', encoding="utf-8")
    dirs = ("--runs-dir", tmp_path / "runs", "--baselines-dir", tmp_path / "baselines")
    refused = run("regress", *dirs)
    assert refused.exit_code == 2 and refused.stderr.startswith("error: the newest run record is unreadable")
    result = run("regress", *dirs, "--skip-unreadable")
    assert result.exit_code == 0
    assert "warning: skipped unreadable record" in result.stderr and "99999999-zzz.json" in result.stderr


def test_corrupt_baseline_is_one_line_exit_2(tmp_path: Path, small_catalog):
    _record(tmp_path, {1: 8.0})
    baseline = tmp_path / "bad.json"
    baseline.write_text("{", encoding="utf-8")
    result = run("regress", "--runs-dir", tmp_path / "runs", "--baseline", baseline)
    assert result.exit_code == 2
    assert (
        result.stderr.strip().startswith("error: corrupt baseline")
        and len(result.stderr.strip().splitlines()) == 1
    )


def test_history_table_and_plot(tmp_path: Path, small_catalog):
    for overhead in (8.0, 8.5, 7.9):
        _record(tmp_path, {1: overhead})
    result = run("history", "se_resnet18", "--runs-dir", tmp_path / "runs", "--plot-dir", tmp_path / "plots",
                 "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(PAIR) == 3
    assert (tmp_path / "plots" / "history-se_resnet18.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "history-se_resnet18.svg").exists()


def test_history_without_records_is_one_line(tmp_path: Path):
    result = run("history", "--runs-dir", tmp_path / "none")
    assert result.exit_code == 2 and result.stderr.startswith("error: no recorded latency overhead")


def test_plot_writes_three_plots(tmp_path: Path, small_catalog):
    _record(tmp_path, {1: 8.0, 8: 5.0})
    out = tmp_path / "plots"
    result = run("plot", "--output-dir", out, "--runs-dir", tmp_path / "runs", "--base", "resnet18",
                 "--candidate", "se_resnet18", "--pair", PAIR)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    for stem in ("stage_overhead", "latency_vs_batch", "flops_vs_latency"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.svg").exists()
