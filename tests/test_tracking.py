"""Bench records through the CLI: record, regress, baseline update, history and plots."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from senet_profile.cli import app
from senet_profile.history import bench, machine, tracking

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
    assert result.exit_code == 0 and "no baseline of any machine class" in result.stdout
    assert "UNJUDGED" in result.stdout and "PASS" not in result.stdout


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


# A machine class with no runs of its own (a fresh clone on a new CPU), faked with the environment variable.
SHIPPED = Path(__file__).resolve().parents[1] / "results"


def _as_class(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(machine.MACHINE_CLASS_ENV, name)


def test_machine_class_can_be_named(monkeypatch: pytest.MonkeyPatch):
    _as_class(monkeypatch, "Fake CPU 3c")
    assert tracking.current_class() == "fake-cpu-3c"
    monkeypatch.delenv(machine.MACHINE_CLASS_ENV)
    assert tracking.current_class() != "fake-cpu-3c"


def _shipped_run_as(tmp_path: Path, machine_class: str) -> tuple[Path, dict]:
    """The shipped baseline's figures, as if a new machine class's bench had just recorded them."""
    baseline = next((SHIPPED / "baselines").glob("*.json"))
    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["machine"]["machine_class"] = machine_class
    path = tmp_path / "runs" / machine_class / "20990101T000000.000000Z-new-1-00000000.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, data


def test_new_class_gate_judges_static_figures_against_any_shipped_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """What `nox -s bench` does on a new class (regress --current RUN): an edited count fails, else passes."""
    _as_class(monkeypatch, "new-cpu-9c")
    path, data = _shipped_run_as(tmp_path, "new-cpu-9c")
    shipped = ("--baselines-dir", SHIPPED / "baselines")
    passed = run("regress", "--current", path, *shipped)
    assert passed.exit_code == 0, passed.stdout
    assert "no baseline for machine class new-cpu-9c" in passed.stdout
    assert (
        "deterministic figures (params, MACs, activations, bytes moved, memory peaks) judged" in passed.stdout
    )
    unjudged = next(line for line in passed.stdout.splitlines() if line.startswith("UNJUDGED"))
    assert "latency_overhead x" in unjudged and "timing figure" in unjudged
    counts = Counter(f["deterministic"] for f in data["figures"] if not f.get("informational"))
    assert f"{counts[True]} ok" in passed.stdout.splitlines()[-1]

    figure = next(f for f in data["figures"] if f["metric"] == "macs")
    figure["value"] += 1  # one count changed on purpose
    path.write_text(json.dumps(data), encoding="utf-8")
    failed = run("regress", "--current", path, *shipped)
    assert failed.exit_code == 1
    line = next(line for line in failed.stdout.splitlines() if line.startswith("REGRESSION"))
    assert figure["model"] in line and "macs" in line and f"{figure['value']:,}" in line


def test_regress_with_no_run_of_this_class_says_what_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _as_class(monkeypatch, "new-cpu-9c")
    result = run("regress", "--runs-dir", SHIPPED / "runs", "--baselines-dir", SHIPPED / "baselines")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "machine class new-cpu-9c" in message
    assert "runs exist for amd-epyc-2c" in message and "senet-profile bench" in message
    assert "--machine-class amd-epyc-2c" in message


def test_reading_commands_on_a_class_with_no_runs_show_the_classes_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _as_class(monkeypatch, "new-cpu-9c")
    present = ", ".join(tracking.classes_in(SHIPPED / "runs"))
    history = run("history", "--results", SHIPPED, "--plot-dir", tmp_path, "--format", "csv")
    assert history.exit_code == 0, history.stderr
    assert f"history of machine class {present}: this machine (new-cpu-9c) has no runs" in history.stderr
    assert (tmp_path / "history.png").exists()
    shown = run("baseline", "show", "--results", SHIPPED, "--format", "csv")
    assert shown.exit_code == 0, shown.stderr
    assert "baseline of machine class amd-epyc-2c: this machine (new-cpu-9c)" in shown.stderr
    assert shown.stdout.count("amd-epyc-2c") > 100
    named = run("baseline", "show", "--results", SHIPPED, "--machine-class", "nowhere")
    assert named.exit_code == 2 and "classes with baseline: amd-epyc-2c" in named.stderr


def test_plot_on_a_class_with_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_catalog):
    _as_class(monkeypatch, "old-cpu-2c")
    _record(tmp_path, {1: 8.0, 8: 5.0})
    _as_class(monkeypatch, "new-cpu-9c")
    out = tmp_path / "plots"
    args = ("plot", "--output-dir", out, "--base", "resnet18", "--candidate", "se_resnet18", "--pair", PAIR)
    result = run(*args, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    assert "newest run of machine class old-cpu-2c: this machine (new-cpu-9c)" in result.stderr
    assert (out / "latency_vs_batch.png").exists()
    static = run(*args, "--runs-dir", tmp_path / "empty", "--output-dir", tmp_path / "static")
    assert static.exit_code == 0, static.stderr
    assert "latency plots are skipped" in static.stderr
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == [
        "stage_overhead.png",
        "stage_overhead.svg",
    ]


def test_history_gives_no_interval_below_the_sample_minimum(tmp_path: Path):
    figure = _timing(5.0) | {"samples": 12}
    record = tracking.RunRecord(
        tmp_path / "r.json",
        {"time": "2026-01-01T00:00:00+00:00", "commit": "abc", "machine": {"machine_class": "x"},
         "figures": [figure, _timing(6.0, batch=8)]},
    )  # fmt: skip
    history = tracking.overhead_history([record], None)
    assert history["ci_low"].isna().tolist() == [True, False]
    assert history["ci_high"].isna().tolist() == [True, False]


def test_bench_on_a_new_class_fails_when_a_count_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_catalog
):
    """`nox -s bench` (`senet-profile bench`) on a class with no baseline: judged against another's."""
    from senet_profile.cli import bench as bench_cli

    def suite(arguments: list[str]) -> int:  # the timed pairs stand in; the record and regress are real
        written = next(a for a in arguments if a.startswith("--benchmark-json=")).split("=", 1)[1]
        Path(written).write_text(_benchmark_json(tmp_path, {1: 8.0}).read_text(), encoding="utf-8")
        return 0

    monkeypatch.setattr(bench_cli, "run_suite", suite)
    results = ("--results", tmp_path / "results")
    _as_class(monkeypatch, "old-cpu-2c")
    assert run("bench", *results).exit_code == 0
    assert run("baseline", "update", *results).exit_code == 0
    _as_class(monkeypatch, "new-cpu-9c")
    passed = run("bench", *results)
    assert passed.exit_code == 0, passed.stdout
    assert "checked against old-cpu-2c's" in passed.stdout and "UNJUDGED" in passed.stdout
    small_catalog[0]["value"] += 1  # one count changed on purpose
    failed = run("bench", *results)
    assert failed.exit_code == 1
    assert any(line.startswith("REGRESSION") for line in failed.stdout.splitlines())
