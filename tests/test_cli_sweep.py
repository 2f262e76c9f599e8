"""The sweep command through its runner: bad grids and executors refused in one line, before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from senet_profile.cli import app


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def refused(tmp_path: Path, *args: str) -> str:
    result = run("sweep", "--sweeps-dir", str(tmp_path / "sweeps"), *args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "sweeps").exists(), "something was written before the refusal"
    return lines[0]


def test_empty_grid(tmp_path: Path) -> None:
    assert "the grid is empty" in refused(tmp_path)
    assert "batch_sizes has no values" in refused(tmp_path, "--pair", "se_resnet18", "--batch-sizes", ",")


def test_unknown_model_or_knob_anywhere_in_the_grid(tmp_path: Path) -> None:
    assert "unknown model 'se_resnet51'" in refused(
        tmp_path, "--pair", "se_resnet18", "--pair", "se_resnet51"
    )
    grid = tmp_path / "grid.toml"
    grid.write_text('pairs = ["resnet18/se_resnet18", "resnet50/se_resnet50:r=8,colour=red"]\n')
    assert "colour" in refused(tmp_path, "--grid", str(grid))
    grid.write_text('pairs = ["resnet18/se_resnet18"]\nbatch_sizes = [1, 8]\nthreads = [1]\nwarp = 9\n')
    assert "unknown grid key 'warp'" in refused(tmp_path, "--grid", str(grid))
    grid.write_text("pairs = [")
    assert "not valid TOML" in refused(tmp_path, "--grid", str(grid))
    assert "unknown mode 'fly'" in refused(tmp_path, "--pair", "se_resnet18", "--modes", "infer,fly")


def test_ray_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    assert "needs Ray" in refused(tmp_path, "--pair", "se_resnet18", "--executor", "ray")


def test_unreachable_ray_address(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    line = refused(tmp_path, "--pair", "se_resnet18", "--executor", "ray", "--address", "127.0.0.1:9")
    assert "no Ray cluster reachable at 127.0.0.1:9" in line


def test_dry_run_lists_cases_from_a_toml_grid(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'pairs = ["se_resnet18"]\nbatch_sizes = [1, 8]\ncompile = ["off", "on"]\nmetrics = "all"\n'
    )
    result = run("sweep", "--grid", str(grid), "--modes", "infer", "--sweeps-dir", str(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    *lines, summary = result.stdout.splitlines()
    assert len(lines) == 2 + 2 + 4  # static and memory per batch; latency per batch and compile
    assert all(line.startswith("todo") for line in lines)
    # four timed cases of 48 s (the default budget) and about 8 s each, four untimed of about 8 s
    assert summary.startswith("8 cases: 0 done, 8 to run, about 4 min one after another")
    assert any(
        "latency resnet18 -> se_resnet18 b8 infer fp32 compiled threads=1 cpu" in line for line in lines
    )
