"""Tables that fit the terminal: stacked headers, wrapped names, folds, --wide, units and alignment."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from senet_profile.report.tables import Layout, print_frame, table_text


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def _wide_frame(columns: int = 12) -> pd.DataFrame:
    rows = [
        {"scope": f"stage{i}", **{f"metric{j} side": 1_000_000 * (i + 1) * (j + 1) for j in range(columns)}}
        for i in range(4)
    ]
    frame = pd.DataFrame(rows)
    frame.attrs = {"units": {c: "bytes" for c in frame.columns if c != "scope"}}
    return frame


def test_a_narrow_table_is_one_table() -> None:
    text = table_text(_wide_frame(2), title="t", width=100)
    assert text.count("┏") == 1 and _widest(text) <= 100


def test_a_wide_table_folds_within_the_width_repeating_its_first_column() -> None:
    text = table_text(_wide_frame(), title="costs", caption="the caption", width=100)
    assert _widest(text) <= 100
    tables = text.count("┏")
    assert tables > 1 and "costs (1/" in text and f"costs ({tables}/{tables})" in text
    assert text.count("stage3") == tables  # the row's name in every part
    assert text.count("the caption") == 1 and text.rstrip().endswith("the caption")
    for j in range(12):  # every column is still there, each number whole
        assert f"metric{j}" in text
    assert "45.78 MiB" in text  # 4 * 12 * 1e6 bytes


def test_wide_keeps_every_column_in_one_table() -> None:
    text = table_text(_wide_frame(), title="costs", width=100, wide=True)
    assert text.count("┏") == 1 and _widest(text) > 100


def test_headers_stack_before_a_table_folds() -> None:
    frame = pd.DataFrame([{"name": "a", "a_rather_long_header_name": 1, "another_long_header_here": 2}])
    text = table_text(frame, width=40)
    assert text.count("┏") == 1 and _widest(text) <= 40
    assert "a_rather_long_header_name" not in text and "rather" in text  # snake_case broken over lines


def test_names_wrap_before_a_long_table_folds() -> None:
    pair, setting = "resnet50:layout=paper -> se_resnet50:layout=paper", "cpu infer b1 fp32 " * 3
    rows = [{"model": pair, "setting": setting, "value": 12_345_678} for _ in range(3)]
    text = table_text(pd.DataFrame(rows), width=60)
    assert text.count("┏") == 1 and _widest(text) <= 60
    assert "12,345,678" in text  # a number is never wrapped or cut


def test_numbers_are_right_aligned_and_text_left() -> None:
    frame = pd.DataFrame([{"name": "x", "count": 5}, {"name": "longer name", "count": 123_456}])
    lines = table_text(frame, width=80).splitlines()
    row = next(line for line in lines if "│ x " in line)
    assert row.rstrip().endswith("5 │") and "│ x           │" in row


def test_layout_fit_of_plain_cells() -> None:
    layout = Layout(
        headers=["a", "b"], cells=[["x" * 30, "y " * 40]], right=[False, False], prose=[False, True]
    )
    console = Console(file=io.StringIO(), width=50, record=True, color_system=None)
    for part in layout.fit(width=50):
        console.print(part)
    assert _widest(console.export_text()) <= 50


def test_print_frame_follows_the_console_width() -> None:
    console = Console(file=io.StringIO(), width=70, record=True, color_system=None)
    print_frame(_wide_frame(), title="costs", console=console)
    assert _widest(console.export_text()) <= 70


def test_a_wrapped_table_is_not_widened_past_the_width() -> None:
    rows = [
        {"name": "a rather long name with words", "status": "match with +SE squeeze", "value": "3.8580"}
    ] * 3
    frame = pd.DataFrame([{**r, **{f"c{i}": "x" * 4 for i in range(6)}} for r in rows])
    text = table_text(frame, width=84)  # fits once names wrap (78 columns), not as it is
    assert _widest(text) <= 84 and text.count("┏") == 1
    row = next(line for line in text.splitlines() if "3.8580" in line)
    assert "3.8580 │" in row  # a number written as text is right-aligned too
