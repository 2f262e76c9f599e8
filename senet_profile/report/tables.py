"""Presentation only: turn record DataFrames into rich tables, CSV, JSON or Markdown text.

Records arrive with raw integers and unrounded floats; numbers are scaled and rounded here and nowhere
else, and only for the table and Markdown formats. CSV and JSON carry the raw values.
"""

from __future__ import annotations

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


def rich_table(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> Table:
    """A rich Table with one row per record."""
    table = Table(title=title or None, caption=caption or None, caption_justify="left")
    cells = [
        [format_cell(column, value) for column, value in zip(frame.columns, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    for index, column in enumerate(frame.columns):
        widest = max([len(column), *(len(row[index]) for row in cells)])
        prose = column in _PROSE
        table.add_column(
            column,
            justify="right" if column in _RIGHT_ALIGNED else "left",
            no_wrap=not prose,
            min_width=None if prose else widest,
        )
    for row in cells:
        table.add_row(*row)
    return table


def _json_value(value: object) -> object:
    return None if _missing(value) else value


def to_json(frame: pd.DataFrame) -> str:
    """A JSON list of records, integers unrounded, missing values as null."""
    records = [{k: _json_value(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return json.dumps(records, indent=2) + "\n"


def to_markdown(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> str:
    """A GitHub Markdown table, numbers formatted as in the terminal table."""
    shown = frame.copy()
    for column in shown.columns:
        shown[column] = [format_cell(column, v) for v in shown[column]]
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
    "csv": lambda frame, **_: frame.to_csv(index=False),
    "json": lambda frame, **_: to_json(frame),
    "markdown": to_markdown,
}


def render(frame: pd.DataFrame, fmt: str, *, title: str = "", caption: str = "") -> str:
    """``frame`` as text in one of FORMATS."""
    return _RENDERERS[fmt](frame, title=title, caption=caption)
