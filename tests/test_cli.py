"""The command line through typer's CliRunner (stdout and stderr are captured apart in this typer)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from senet_profile.cli import app

METRICS = [
    "params",
    "params_se",
    "macs",
    "macs_se",
    "se_squeeze_ops",
    "se_gate_ops",
    "se_scale_ops",
    "se_other_ops",
    "macs_and_se_ops",
    "activations",
    "activations_se",
    "bytes_moved",
    "bytes_moved_se",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture(scope="module")
def compare_json() -> list[dict]:
    return json.loads(
        ok("compare", "resnet50", "se_resnet50", "--metrics", "static", "--format", "json").stdout
    )


def test_compare_table() -> None:
    out = ok("compare", "resnet50", "se_resnet50").stdout
    params = next(line for line in out.splitlines() if re.search(r"\bparams\b", line) and "25.56 M" in line)
    assert "28.09 M" in params  # units people read; the raw integers are in CSV and JSON
    assert "+9.90 %" in params
    assert "resnet50 -> se_resnet50, input 1x3x224x224" in out
    assert "Convention:" in out


def test_compare_json_records(compare_json: list[dict]) -> None:
    assert isinstance(compare_json, list)
    assert [r["metric"] for r in compare_json] == METRICS
    for record in compare_json:
        assert {"metric", "unit", "base", "candidate", "delta", "overhead_pct"} <= record.keys()
        assert set(record) == {
            "metric",
            "unit",
            "scope",
            "source",
            "base",
            "candidate",
            "delta",
            "overhead_pct",
            "ci_low",
            "ci_high",
            "samples",
        }
    by_metric = {r["metric"]: r for r in compare_json}
    params = by_metric["params"]
    assert (params["base"], params["candidate"], params["delta"]) == (25_557_032, 28_088_024, 2_530_992)
    assert params["overhead_pct"] == pytest.approx(9.9033, abs=5e-5)
    assert by_metric["params_se"]["overhead_pct"] is None
    assert by_metric["macs"]["base"] == 4_089_184_256
    assert by_metric["activations"]["unit"] == "elements"


def test_compare_csv_keeps_integers_whole(compare_json: list[dict]) -> None:
    out = ok("compare", "resnet50", "se_resnet50", "--metrics", "static", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["metric"] for r in rows] == METRICS
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["params"]["base"] == "25557032"
    assert by_metric["params"]["candidate"] == "28088024"
    assert by_metric["macs"]["candidate"] == "4091699200"
    assert float(by_metric["params"]["overhead_pct"]) == pytest.approx(
        compare_json[0]["overhead_pct"], rel=1e-12
    )


def test_compare_markdown() -> None:
    out = ok("compare", "resnet50", "se_resnet50", "--metrics", "static", "--format", "markdown").stdout
    assert out.startswith("### resnet50 -> se_resnet50")
    params = next(line for line in out.splitlines() if line.startswith("| params "))
    assert [c.strip() for c in params.strip("|").split("|")] == [
        "params",
        "params",
        "25.56 M",
        "28.09 M",
        "2.531 M",
        "+9.90 %",
    ]


@pytest.mark.parametrize(("name", "fmt"), [("out.json", "json"), ("out.csv", "csv"), ("out.md", "markdown")])
def test_output_file_takes_format_from_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    target = tmp_path / name
    result = ok("compare", "resnet18", "se_resnet18", "--input-size", "64", "--output", str(target))
    assert result.stdout == ""
    assert result.stderr.strip() == f"wrote {target}"
    text = target.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(text)[0]["base"] == 11_689_512
    elif fmt == "csv":
        assert "params,params,model,senet-profile,11689512,11778592,89080," in text
    else:
        assert "| params " in text and "11.69 M" in text


def test_explicit_format_wins_over_suffix(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    ok("profile", "resnet18", "--input-size", "64", "--format", "json", "--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8"))[0]["value"] == 11_689_512


def test_profile_json() -> None:
    records = json.loads(ok("profile", "se_resnet50", "--format", "json").stdout)
    assert [r["metric"] for r in records] == METRICS
    for record in records:
        assert {"metric", "unit", "value"} <= record.keys()
        assert type(record["value"]) is int
        assert record["scope"] == "model"
    by_metric = {r["metric"]: r["value"] for r in records}
    assert (by_metric["params"], by_metric["params_se"]) == (28_088_024, 2_530_992)


def test_profile_by_stage() -> None:
    records = json.loads(
        ok("profile", "se_resnet50", "--input-size", "64", "--by-stage", "--format", "json").stdout
    )
    scopes = list(dict.fromkeys(r["scope"] for r in records))
    assert scopes == ["model", "conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]
    params_se = {r["scope"]: r["value"] for r in records if r["metric"] == "params_se"}
    assert params_se["conv2_x"] == 3 * (2 * 256 * 16 + 16 + 256)
    assert sum(v for scope, v in params_se.items() if scope != "model") == params_se["model"]


def test_profile_input_size_and_batch_size_reach_the_count() -> None:
    records = json.loads(
        ok("profile", "resnet18", "--input-size", "64x96", "--batch-size", "2", "--format", "json").stdout
    )
    assert {r["metric"]: r["value"] for r in records}["macs"] > 0
    table = ok("profile", "resnet18", "--input-size", "64x96", "--batch-size", "2").stdout
    assert "input 2x3x64x96" in table


def _model_names(text: str) -> list[str]:
    return re.findall(r"\b(?:se_)?resne(?:t|xt)\d+\w*", text)


def test_list() -> None:
    out = ok("list").stdout
    names = _model_names(out)
    assert {"resnet50", "se_resnet50", "resnext101_32x4d", "se_resnext101_32x4d"} <= set(names)
    assert "layout=torchvision" in out
    assert "r=16" in out


def test_list_pattern() -> None:
    names = _model_names(ok("list", "se_*").stdout)
    assert "se_resnet50" in names
    assert all(name.startswith("se_") for name in names)


BAD_INPUT = [
    (["compare", "resnet50", "se_resnt50"], "unknown model 'se_resnt50'; did you mean se_resnet50"),
    (["profile", "se_resnet50:foo=1"], "unknown knob 'foo' for se_resnet50; it accepts: layout"),
    (["profile", "se_resnet50:r=0"], "r must be a positive integer, got r=0"),
    (["profile", "se_resnet50:r=999"], "r=999 is larger than the 256 channels of stage conv2_x"),
    (["profile", "se_resnet50:stages=6"], "stage 6 is outside 2-5"),
    (["profile", "resnet50", "--input-size", "16"], "input is too small: layer4.0.conv2 (stride 2)"),
    (["profile", "resnet50", "--input-size", "0"], "input size must be N or HxW with positive sizes"),
    (["compare", "resnet50", "se_resnet50", "--input-size", "abc"], "input size must be N or HxW, got 'abc'"),
    (
        ["profile", "resnet50", "--output", "/nonexistent-folder/x.json"],
        "folder /nonexistent-folder does not exist",
    ),
    (["profile", "resnet50", "--bogus"], "No such option: --bogus"),
    (["profile", "resnet50", "--batch-size", "0"], "batch size must be a positive integer, got 0"),
    (["profile", "resnet50", "--batch-size", "two"], "Invalid value for '--batch-size'"),
    (
        ["profile", "resnet50", "--format", "xml"],
        "unknown format 'xml'; choose one of table, csv, json, markdown",
    ),
    (["compare", "resnet50"], "Missing argument"),
    (["frobnicate"], "No such command"),
    (["list", "xyz*"], "no model matches 'xyz*'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_status_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_missing_output_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    # se_resnet50:r=999 would fail while building: the destination is checked first.
    target = tmp_path / "missing" / "out.json"
    result = run("profile", "se_resnet50:r=999", "--output", str(target))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_output_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    result = run("profile", "resnet18", "--output", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write")
    assert "it is a directory" in result.stderr


def test_help_lists_the_commands() -> None:
    out = ok("--help").stdout
    for command in ("list", "profile", "compare"):
        assert command in out


def test_bare_command_shows_help_without_an_empty_error() -> None:
    result = run()
    assert "Usage" in result.output
    assert result.stderr.strip() != "error:"


def test_axpy_where_no_addition_follows_is_one_line() -> None:
    result = run("profile", "se_vgg16_bn:scale=axpy")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: scale=axpy")
    assert "Traceback" not in result.output


def test_compare_by_default_answers_memory_and_time(tmp_path) -> None:
    """The main command: counts, both passes' peaks (meta) and the predicted latency, labelled and hinted."""
    result = ok("compare", "resnet18", "se_resnet18", "--input-size", "64", "--results", str(tmp_path),
                "--format", "json")  # fmt: skip
    records = {r["metric"]: r for r in json.loads(result.stdout)}
    assert {"params", "macs", "bytes_moved", "memory_peak_infer", "memory_peak_train"} <= set(records)
    assert records["memory_peak_train"]["candidate"] > records["memory_peak_train"]["base"]
    predicted = records["latency_predicted"]
    assert predicted["source"] == "machine model" and predicted["unit"] == "s"
    assert predicted["overhead_pct"] == pytest.approx((predicted["candidate"] / predicted["base"] - 1) * 100)
    stored = list((tmp_path / "machine").glob("*.json"))
    assert len(stored) == 1  # measured once for this machine, kept in the results folder
    table = ok("compare", "resnet18", "se_resnet18", "--input-size", "64", "--results", str(tmp_path)).stdout
    flat = " ".join(table.split())
    assert "predicted by the machine model" in flat and "its known error: not yet known" in flat
    assert "--metrics latency" in flat and f"from {stored[0]}" in flat


def test_compare_metrics_static_keeps_the_counts_only() -> None:
    metrics = {r["metric"] for r in json.loads(
        ok("compare", "resnet18", "se_resnet18", "--metrics", "static", "--format", "json").stdout
    )}  # fmt: skip
    assert not metrics & {"memory_peak_infer", "memory_peak_train", "latency_predicted"}
