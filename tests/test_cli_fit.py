"""The commands' tables fit a 100-column terminal (COLUMNS=100), rows keep their order, footers fit."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from senet_profile.cli import app

SHIPPED = Path(__file__).resolve().parents[1] / "results"
WIDTH = {"COLUMNS": "100"}


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDTH)


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_compare_by_stage_fits_100_columns() -> None:
    result = run("compare", "resnet50", "se_resnet50", "--by-stage")
    assert result.exit_code == 0, result.stderr
    assert _widest(result.stdout) <= 100
    for figure in ("conv5_x", "+9.90 %", "4.092 G", "481.2 MiB", "11.13 M", "Convention:"):
        assert figure in result.stdout
    wide = run("compare", "resnet50", "se_resnet50", "--by-stage", "--wide")
    assert wide.stdout.count("┏") == 1 and _widest(wide.stdout) > 100


def test_explain_no_measure_fits_100_columns(tmp_path: Path) -> None:
    machine = tmp_path / "machine"
    shutil.copytree(SHIPPED / "machine", machine)  # a new class measures its model here, not in results/
    result = run("explain", "resnet50", "se_resnet50", "--no-measure", "--machine-dir", machine)
    assert result.exit_code == 0, result.stderr
    assert _widest(result.stdout) <= 100
    table = result.stdout.split("FLOPs predict")[0]
    assert "se_scale" in table and "MiB" in table and " ms " in table and " pp " in table
    assert "measured" not in table.split("Setting:")[0]  # nothing measured: no empty columns


def test_list_and_history_fit_100_columns(tmp_path: Path) -> None:
    listed = run("list")
    assert listed.exit_code == 0 and _widest(listed.stdout) <= 100
    assert "se_resnet50" in listed.stdout
    history = run("history", "--results", SHIPPED, "--plot-dir", tmp_path)
    assert history.exit_code == 0, history.stderr
    assert _widest(history.stdout) <= 100 and "resnet50 -> se_resnet50" in history.stdout


def test_profile_keeps_the_metrics_order_and_scales_numbers() -> None:
    result = run("profile", "resnet18", "se_resnet18", "--input-size", "64")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows[:3] == ["params", "params_se", "macs"]  # the order given, not alphabetical
    params = next(line for line in result.stdout.splitlines() if line.startswith("│ params "))
    assert " M │" in params and "," not in params  # scaled, as in every other table


def test_by_op_has_a_total_row() -> None:
    result = run("profile", "resnet18", "--by-op", "--input-size", "64")
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert lines[-1].startswith("│ (total)")


def test_memory_only_table_has_no_counting_convention() -> None:
    result = run("compare", "resnet18", "se_resnet18", "--metrics", "memory", "--input-size", "64")
    assert result.exit_code == 0, result.stderr
    assert "memory_peak" in result.stdout and "Convention:" not in result.stdout
    static = run("compare", "resnet18", "se_resnet18", "--input-size", "64")
    assert "Convention:" in static.stdout


def test_explain_help_states_each_default_once() -> None:
    text = " ".join(run("explain", "--help").stdout.split())
    assert "[default: 224]" not in text and "(default: the model's own, else 224)" in text
    assert "[default: 48.0]" not in text and "(default 48)" in text


def test_a_torchvision_model_runs_at_its_own_input_size() -> None:
    from senet_profile import api

    assert api.resolve("torchvision:inception_v3").input_size == (299, 299)
    assert api.resolve("torchvision:resnet18").input_size == (224, 224)
