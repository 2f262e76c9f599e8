"""``senet-profile explain`` through the CLI runner, with a stored machine model (nothing is timed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from senet_profile.analysis.roofline import save
from senet_profile.history.machine import describe_machine
from tests.test_cli import ok, run
from tests.test_overhead import MACHINE

SMALL = ("--input-size", "32", "--no-measure")


@pytest.fixture
def machine_dir(tmp_path: Path) -> Path:
    save(tmp_path / f"{describe_machine().machine_class}.json", MACHINE)
    return tmp_path


def test_table_and_verdict_lines(machine_dir: Path) -> None:
    out = ok("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(machine_dir)).stdout
    for text in (
        "se_squeeze",
        "se_fc",
        "se_gate",
        "se_scale",
        "conv",
        "FLOPs predict",
        "machine model predicts",
    ):
        assert text in out
    assert "every op covered by a rule" in out


def test_json_and_markdown_outputs_at_once(machine_dir: Path, tmp_path: Path) -> None:
    md, js = tmp_path / "e.md", tmp_path / "e.json"
    ok("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(machine_dir),
       "--output", str(md), "--output", str(js))  # fmt: skip
    payload = json.loads(js.read_text())
    assert payload["base"] == "resnet18" and payload["candidate"] == "se_resnet18"
    classes = {row["op_class"]: row for row in payload["op_classes"]}
    assert classes["se_scale"]["bytes_base"] == 0 < classes["se_scale"]["bytes_candidate"]
    # The input size is honoured: ResNet-18 at 32x32 has 37,523,456 MACs, 512,000 of them in the FC.
    assert (classes["conv"]["macs_base"], classes["linear"]["macs_base"]) == (37_011_456, 512_000)
    assert [v["verdict"] for v in payload["verdicts"]] == [
        "FLOPs predict", "machine model predicts", "floor (SE's bytes)", "launch-free (model)",
    ]  # fmt: skip
    assert "| se_scale" in md.read_text() and "machine model predicts" in md.read_text()


def test_csv_carries_raw_values(machine_dir: Path) -> None:
    out = ok(
        "explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(machine_dir), "--format", "csv"
    )
    header = out.stdout.splitlines()[0]
    assert header.startswith("op_class,macs_base,macs_candidate,bytes_base")


def test_two_models_without_se_one_line_exit_2(machine_dir: Path) -> None:
    result = run("explain", "resnet18", "resnet34", *SMALL, "--machine-dir", str(machine_dir))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "neither resnet18 nor resnet34 has an SE block" in result.stderr


def test_cuda_without_a_gpu_one_line_exit_2(no_cuda: None, tmp_path: Path) -> None:
    result = run("explain", "resnet18", "se_resnet18", "--device", "cuda", "--machine-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []  # nothing measured, nothing written


def test_meta_device_is_refused(tmp_path: Path) -> None:
    result = run("explain", "resnet18", "se_resnet18", "--device", "meta", "--machine-dir", str(tmp_path))
    assert result.exit_code == 2 and "use --device cpu or cuda" in result.stderr


def test_corrupt_machine_model_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / f"{describe_machine().machine_class}.json"
    path.write_text("{")
    result = run("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(tmp_path))
    assert result.exit_code == 2 and "not readable as JSON" in result.stderr
    assert path.read_text() == "{"


def test_unwritable_output_is_refused_before_work(machine_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "e.md"
    result = run("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(machine_dir),
                 "--output", str(target))  # fmt: skip
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_memory_mode_is_explain_memory(tmp_path: Path) -> None:
    out = ok("explain", "resnet18", "se_resnet18", "--memory", "--input-size", "32", "--batch-size", "2")
    assert "peak difference" in out.stdout


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_machine_model_is_read_from_the_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    results = tmp_path / "elsewhere"
    save(results / "machine" / f"{describe_machine().machine_class}.json", MACHINE)  # measured_s 0.0
    if how == "environment":
        monkeypatch.setenv("SENET_PROFILE_RESULTS", str(results))
        args: tuple[str, ...] = ()
    else:
        args = ("--results", str(results))
    out = ok("explain", "resnet18", "se_resnet18", *SMALL, *args).stdout
    assert "measured in 0.0 s" in out  # the stored model was used, nothing was measured


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--compiled",), "error: --compiled measures; it cannot be combined with --no-measure"),
        (("--mode", "train", "--measure"), "error: explain measures inference only"),
        (("--dtype", "tf32", "--math", "ieee"), "error: --dtype tf32 means fp32 with --math tf32"),
        (("--math", "fast"), "error: unknown math 'fast'"),
        (("--channels-last",), "error: no machine model for 'cpu fp32 channels-last threads=1'"),
    ],
)
def test_new_options_refused_in_one_line(machine_dir: Path, extra: tuple[str, ...], message: str) -> None:
    done = run("explain", "resnet18", "se_resnet18", *SMALL, "--machine-dir", str(machine_dir), *extra)
    assert done.exit_code == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1
