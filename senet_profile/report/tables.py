"""Presentation only: turn record DataFrames into rich tables, CSV, JSON or Markdown text.

Records arrive with raw integers and unrounded floats; numbers are scaled and rounded here and nowhere
else, and only for the table and Markdown formats. CSV and JSON carry the raw values.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from senet_profile.report.formats import FORMATS, format_for_path  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # pragma: no cover - pandas is imported by whoever builds the frame
    import pandas as pd

_PROSE = {"description", "note", "knobs (defaults)", "skipped", "extra"}
_RIGHT_ALIGNED = {"value", "base", "candidate", "delta", "overhead_pct", "printed", "computed", "difference"}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_cell(column: str, value: object) -> str:
    """One value as a person reads it: thousands separators, 2-decimal percentages, n/a for missing."""
    if _missing(value):
        return "n/a"
    if column.endswith("_pct") and isinstance(value, (int, float)):
        return f"{value:+.2f} %"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))
_TIME = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
VALUE_COLUMNS = ("value", "base", "candidate", "delta")
# Units whose values are real numbers, not counts: CSV and JSON keep their floats as they are.
REAL_UNITS = frozenset({"s", "%", "pp", "x", "ratio"})


def _short(number: float) -> str:
    return f"{number:.4g}" if abs(number) < 1000 else f"{number:.0f}"


def scaled(value: object, unit: str) -> str:
    """A value in its unit as a person reads it: 4.092 G, 13.78 MiB, 361.9 ms, 45.2 µs (n/a if missing)."""
    if _missing(value):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    magnitude = abs(value)
    if unit == "bytes":
        scale, prefix = next(((f, p) for f, p in _BINARY if magnitude >= f), (1, "B"))
        return f"{_short(value / scale)} {prefix}" if scale > 1 else f"{value:,.0f} B"
    if unit == "s":
        scale, prefix = next(((f, p) for f, p in _TIME if magnitude >= f), (1e-9, "ns"))
        return f"{_short(value / scale)} {prefix}" if value else "0 s"
    if unit == "%":
        return f"{value:+.2f} %"
    if unit in REAL_UNITS:
        return format_cell("", value)
    scale, prefix = next(((f, p) for f, p in _SI if magnitude >= f), (1, ""))
    return f"{_short(value / scale)} {prefix}" if prefix else format_cell("", value)


def _header(column: str, unit: str | None) -> str:
    """A wide column's header with its unit, unless the name already says it (macs, params, bytes_moved)."""
    return column if unit is None or unit.lower() in column.lower() else f"{column} ({unit})"


def display_cells(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells of a frame as a person reads it: numbers scaled by their unit.

    A long frame's value columns take each row's ``unit``; a wide frame's columns take theirs from
    ``frame.attrs["units"]`` and show it in the header. Other columns as ``format_cell`` writes them.
    """
    units: dict[str, str] = frame.attrs.get("units", {})
    per_row = "unit" in frame.columns
    values = {*VALUE_COLUMNS, *frame.attrs.get("value_columns", ())}
    headers = [_header(c, units.get(c)) for c in frame.columns]
    cells = []
    for row in frame.to_dict(orient="records"):
        line = []
        for column, value in row.items():
            if column in units:
                line.append(scaled(value, units[column]))
            elif per_row and column in values:
                line.append(scaled(value, str(row["unit"])))
            else:
                line.append(format_cell(column, value))
        cells.append(line)
    return headers, cells


def rich_table(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> Table:
    """A rich Table with one row per record, numbers scaled to their units."""
    # As wide as the title at least: a title is never broken mid-word.
    table = Table(title=title or None, caption=caption or None, caption_justify="left", min_width=len(title))
    headers, cells = display_cells(frame)
    right = {*_RIGHT_ALIGNED, *frame.attrs.get("units", {}), *frame.attrs.get("value_columns", ())}
    right |= {c for c in frame.columns if str(c).endswith("_pct")}
    for index, (column, header) in enumerate(zip(frame.columns, headers, strict=True)):
        widest = max([len(header), *(len(row[index]) for row in cells)])
        prose = column in _PROSE
        table.add_column(
            header,
            justify="right" if column in right else "left",
            no_wrap=not prose,
            min_width=None if prose else widest,
        )
    for row in cells:
        table.add_row(*row)
    return table


def raw_records(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows with raw values: counts as integers (never rounded), missing values as None."""
    records = []
    for row in frame.to_dict(orient="records"):
        unit = str(row.get("unit", ""))
        record = {}
        for column, value in row.items():
            if _missing(value):
                value = None
            elif (
                isinstance(value, float)
                and value.is_integer()
                and unit not in REAL_UNITS
                and not column.endswith("_pct")
                and not column.startswith("ci_")
            ):
                value = int(value)
            record[column] = value
        records.append(record)
    return records


def to_csv(frame: pd.DataFrame) -> str:
    """CSV of the raw values (integers unrounded, missing values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[str(c) for c in frame.columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(raw_records(frame))
    return buffer.getvalue()


def to_json(frame: pd.DataFrame) -> str:
    """A JSON list of records, integers unrounded, missing values as null."""
    return json.dumps(raw_records(frame), indent=2, ensure_ascii=False) + "\n"


def to_markdown(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> str:
    """A GitHub Markdown table, numbers formatted as in the terminal table."""
    import pandas as pd

    headers, cells = display_cells(frame)
    shown = pd.DataFrame(cells, columns=headers)
    parts = [
        f"### {title}\n" if title else "",
        shown.to_markdown(index=False, disable_numparse=True),
        f"\n\n{caption}" if caption else "",
    ]
    return "".join(parts) + "\n"


def print_table(table: Table, console: Console | None = None) -> None:
    """Print a rich table, widening the console rather than cutting numbers short."""
    console = console or Console()
    needed = Measurement.get(console, console.options.update(max_width=10_000), table).minimum
    if needed > console.width:
        console.width = needed
    console.print(table)


def table_text(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> str:
    """The rich table rendered to plain text (for files and tests)."""
    console = Console(file=io.StringIO(), width=100, color_system=None, record=True)
    print_table(rich_table(frame, title=title, caption=caption), console)
    return console.export_text()


_RENDERERS: dict[str, Callable[..., str]] = {
    "table": table_text,
    "csv": lambda frame, **_: to_csv(frame),
    "json": lambda frame, **_: to_json(frame),
    "markdown": to_markdown,
}


def render(frame: pd.DataFrame, fmt: str, *, title: str = "", caption: str = "") -> str:
    """``frame`` as text in one of FORMATS."""
    return _RENDERERS[fmt](frame, title=title, caption=caption)
