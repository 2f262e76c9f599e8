"""``senet-profile bench`` through the runner; the pytest run, the record and regress are stand-ins here.

One test runs the real suite's collection (``-- --collect-only``) in a fresh pytest process: the installed
suite is found and its conftest takes every option the command passes on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from senet_profile.cli import app
from senet_profile.cli import bench as bench_cli
from senet_profile.history.bench import cases
from senet_profile.history.locations import RESULTS_ENV


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["bench", *args])


class Calls:
    """What the stand-ins were given."""

    def __init__(self) -> None:
        self.pytest: list[list[str]] = []
        self.record: list[dict] = []
        self.regress: list[dict] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """pytest passes (status 0) without running; record and regress only note their arguments."""
    seen = Calls()

    def fake_suite(arguments: list[str]) -> int:
        seen.pytest.append(arguments)
        config = Path(arguments[arguments.index("-c") + 1])
        assert config.read_text() == "[pytest]\n"  # the run's own configuration exists while pytest runs
        return 0

    def fake_record(benchmark_json: Path, *, full: bool, runs_dir: Path) -> Path:
        seen.record.append({"benchmark_json": benchmark_json, "full": full, "runs_dir": runs_dir})
        return runs_dir / "run.json"

    monkeypatch.setattr(bench_cli, "run_suite", fake_suite)
    monkeypatch.setattr(bench_cli, "record_run", fake_record)
    monkeypatch.setattr(bench_cli, "check_against_baseline", lambda **given: seen.regress.append(given))
    return seen


def _option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def test_options_reach_pytest_record_and_regress(calls: Calls, tmp_path: Path) -> None:
    result = run("--full", "--budget", "5", "--threads", "2", "--results", str(tmp_path), "--", "-x", "-q")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    (arguments,) = calls.pytest
    assert Path(arguments[0]) == bench_cli.suite_folder()
    assert "--full" in arguments
    assert (_option(arguments, "--budget"), _option(arguments, "--threads")) == ("5.0", "2")
    assert Path(_option(arguments, "--results")) == tmp_path
    assert arguments[-2:] == ["-x", "-q"]
    json_option = next(a for a in arguments if a.startswith("--benchmark-json="))
    (recorded,) = calls.record
    assert str(recorded["benchmark_json"]) == json_option.split("=", 1)[1]
    assert recorded["full"] is True and recorded["runs_dir"] == tmp_path / "runs"
    assert calls.regress == [{"current": tmp_path / "runs" / "run.json", "results": tmp_path}]


def test_defaults_are_the_suites_and_results_come_from_the_environment(
    calls: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "elsewhere"))
    result = run()
    assert result.exit_code == 0, (result.stdout, result.stderr)
    (arguments,) = calls.pytest
    assert not {"--full", "--budget", "--threads"} & set(arguments)  # the suite's own defaults apply
    assert Path(_option(arguments, "--results")) == tmp_path / "elsewhere"
    assert calls.record[0]["full"] is False and calls.record[0]["runs_dir"] == tmp_path / "elsewhere" / "runs"


@pytest.mark.parametrize(("status", "exit_code"), [(1, 1), (2, 1), (4, 2), (5, 2)])
def test_a_failing_bench_records_nothing(
    calls: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, exit_code: int
) -> None:
    monkeypatch.setattr(bench_cli, "run_suite", lambda arguments: status)
    result = run("--results", str(tmp_path))
    assert result.exit_code == exit_code
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "nothing recorded" in result.stderr and "Traceback" not in result.stderr
    assert calls.record == [] and calls.regress == []
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("module", ["pytest", "pytest_benchmark"])
def test_missing_bench_extra_is_one_line(calls: Calls, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    real = bench_cli.find_spec
    monkeypatch.setattr(bench_cli, "find_spec", lambda name: None if name == module else real(name))
    result = run()
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "pip install 'senet-profile[bench]'" in result.stderr
    assert module.replace("_", "-") in result.stderr
    assert calls.pytest == []


def test_unwritable_results_refused_before_the_bench(calls: Calls, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    result = run("--results", str(blocker))
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert calls.pytest == []
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize("option", ["--budget", "--threads"])
def test_bad_budget_or_threads_refused_before_the_bench(calls: Calls, option: str) -> None:
    result = run(option, "0")
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {option} must be a positive")
    assert result.stderr.count("\n") == 1 and calls.pytest == []


def test_the_suite_ships_with_the_package() -> None:
    folder = bench_cli.suite_folder()
    assert {"conftest.py", "test_se_overhead.py", "test_startup.py"} <= {p.name for p in folder.iterdir()}


def test_real_suite_collects_with_the_options_passed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    recorded: list[Path] = []
    monkeypatch.setattr(bench_cli, "record_run", lambda path, **_: recorded.append(path) or path)
    monkeypatch.setattr(bench_cli, "check_against_baseline", lambda **_: None)
    result = run("--full", "--budget", "1", "--threads", "1", "--results", str(tmp_path), "--", "--co", "-q")
    out = capfd.readouterr().out
    assert result.exit_code == 0, out
    full_pairs = len(cases(full=True))
    assert out.count("test_se_overhead.py::test_se_overhead[") == full_pairs
    assert "test_startup.py::" in out and len(recorded) == 1
