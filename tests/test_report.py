"""Presentation: cell formatting, JSON / CSV / Markdown / table rendering, format from a file suffix."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest

from senet_profile.report.tables import FORMATS, format_cell, format_for_path, render, to_json, to_markdown


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("value", 25_557_032, "25,557,032"),
        ("base", 0, "0"),
        ("delta", -2_530_992, "-2,530,992"),
        ("value", 4_089_184_256, "4,089,184,256"),
        ("overhead_pct", 9.903299, "+9.90 %"),
        ("overhead_pct", -0.125, "-0.12 %"),
        ("overhead_pct", 0.0, "+0.00 %"),
        ("overhead_pct", 12, "+12.00 %"),
        ("overhead_pct", None, "n/a"),
        ("overhead_pct", math.nan, "n/a"),
        ("value", None, "n/a"),
        ("value", float("nan"), "n/a"),
        ("value", 0.5, "0.5"),
        ("value", 0.123456, "0.1235"),
        ("value", 999.94, "999.9"),
        ("value", 12_345.678, "12,345.7"),
        ("metric", "params", "params"),
        ("flag", True, "True"),
    ],
)
def test_format_cell(column: str, value: object, text: str) -> None:
    assert format_cell(column, value) == text


@pytest.fixture
def frame() -> pd.DataFrame:
    records = [
        {"metric": "params", "base": 25_557_032, "candidate": 28_088_024, "overhead_pct": 9.903299},
        {"metric": "params_se", "base": 0, "candidate": 2_530_992, "overhead_pct": None},
        {"metric": "latency", "base": 1.5, "candidate": math.nan, "overhead_pct": math.nan},
    ]
    return pd.DataFrame(records, dtype=object)


def test_json_keeps_ints_and_writes_null_for_missing(frame: pd.DataFrame) -> None:
    text = to_json(frame)
    assert "25557032," in text
    assert "25557032.0" not in text
    records = json.loads(text)
    assert records[0] == {
        "metric": "params",
        "base": 25_557_032,
        "candidate": 28_088_024,
        "overhead_pct": 9.903299,
    }
    assert type(records[0]["base"]) is int
    assert records[1]["overhead_pct"] is None
    assert records[2] == {"metric": "latency", "base": 1.5, "candidate": None, "overhead_pct": None}
    assert "NaN" not in text


def test_json_keeps_ints_of_a_numeric_frame() -> None:
    frame = pd.DataFrame({"metric": ["macs"], "value": [4_089_184_256]})  # int64 column
    assert json.loads(to_json(frame)) == [{"metric": "macs", "value": 4_089_184_256}]


def test_csv_is_raw(frame: pd.DataFrame) -> None:
    text = render(frame, "csv")
    parsed = pd.read_csv(io.StringIO(text))
    assert list(parsed.columns) == ["metric", "base", "candidate", "overhead_pct"]
    assert text.splitlines()[1] == "params,25557032,28088024,9.903299"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_markdown_renders_formatted_numbers(frame: pd.DataFrame) -> None:
    counts = frame.iloc[:2]  # the integer rows, as compare records hold them
    text = to_markdown(counts, title="resnet50 -> se_resnet50", caption="Convention: MACs.")
    lines = text.splitlines()
    assert lines[0] == "### resnet50 -> se_resnet50"
    assert _cells(lines[1]) == ["metric", "base", "candidate", "overhead_pct"]
    assert set("".join(_cells(lines[2]))) <= {"-", ":"}
    assert _cells(lines[3]) == ["params", "25,557,032", "28,088,024", "+9.90 %"]
    assert _cells(lines[4]) == ["params_se", "0", "2,530,992", "n/a"]
    assert text.rstrip().endswith("Convention: MACs.")


def test_markdown_keeps_formatted_numbers_in_mixed_columns(frame: pd.DataFrame) -> None:
    lines = to_markdown(frame).splitlines()
    assert _cells(lines[2])[:3] == ["params", "25,557,032", "28,088,024"]
    assert _cells(lines[4])[:3] == ["latency", "1.5", "n/a"]


def test_markdown_without_title_starts_with_the_table(frame: pd.DataFrame) -> None:
    assert render(frame, "markdown").startswith("| metric")


def test_table_text_formats_numbers_and_keeps_them_whole(frame: pd.DataFrame) -> None:
    wide = frame.assign(description="a long explanation " * 10)
    text = render(wide, "table", title="T", caption="C")
    for number in ("25,557,032", "28,088,024", "+9.90 %", "n/a"):
        assert number in text
    assert "T" in text.splitlines()[0]


def test_every_format_renders(frame: pd.DataFrame) -> None:
    assert FORMATS == ("table", "csv", "json", "markdown")
    for fmt in FORMATS:
        assert render(frame, fmt).strip()


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("out.json", "json"),
        ("out.csv", "csv"),
        ("OUT.CSV", "csv"),
        ("report.md", "markdown"),
        ("table.txt", "table"),
        ("results/run.v2/out.json", "json"),
        ("results.v2/out", "table"),
        ("out", "table"),
        ("out.xlsx", "table"),
    ],
)
def test_format_for_path(path: str, fmt: str) -> None:
    assert format_for_path(path) == fmt


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (4_091_699_200, "MACs", "4.092 G"),
        (25_557_032, "params", "25.56 M"),
        (15_104, "ops", "15.1 k"),
        (944, "ops", "944"),
        (14_450_688, "bytes", "13.78 MiB"),
        (512, "bytes", "512 B"),
        (0.3619, "s", "361.9 ms"),
        (4.52e-5, "s", "45.2 µs"),
        (1.5, "s", "1.5 s"),
        (9.9033, "%", "+9.90 %"),
        (None, "MACs", "n/a"),
    ],
)
def test_scaled_values_read_in_units(value: object, unit: str, text: str) -> None:
    from senet_profile.report.tables import scaled

    assert scaled(value, unit) == text


def test_tables_show_units_csv_and_json_keep_raw_values() -> None:
    records = [
        {"metric": "macs", "unit": "MACs", "value": 4_091_699_200},
        {"metric": "latency", "unit": "s", "value": 0.3619},
        {"metric": "peak", "unit": "bytes", "value": 14_450_688},
    ]
    frame = pd.DataFrame(records)
    assert frame["value"].dtype == "float64"  # mixed counts and seconds
    table = render(frame, "table")
    assert "4.092 G" in table and "361.9 ms" in table and "13.78 MiB" in table
    assert "| macs     | MACs   | 4.092 G   |" in to_markdown(frame)
    csv_text = render(frame, "csv")
    assert "macs,MACs,4091699200\n" in csv_text and "latency,s,0.3619\n" in csv_text
    assert [r["value"] for r in json.loads(to_json(frame))] == [4_091_699_200, 0.3619, 14_450_688]
    assert type(json.loads(to_json(frame))[0]["value"]) is int
