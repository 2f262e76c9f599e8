"""Presentation only: turn record DataFrames into rich tables, CSV, JSON or Markdown text.

Records arrive with raw integers and unrounded floats; numbers are scaled and rounded here and nowhere
else, and only for the table and Markdown formats. CSV and JSON carry the raw values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

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
REAL_UNITS = frozenset({"s", "%", "pp", "x", "ratio", "img/s"})


def _short(number: float) -> str:
    return f"{number:.4g}" if abs(number) < 1000 else f"{number:.0f}"


def scaled(value: object, unit: str) -> str:
    """A value in its unit as a person reads it: 4.092 G, 13.78 MiB, 361.9 ms, 45.2 µs (n/a if missing)."""
    if _missing(value):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    magnitude = abs(value)
    scale: float
    if unit == "bytes":
        scale, prefix = next(((f, p) for f, p in _BINARY if magnitude >= f), (1, "B"))
        return f"{_short(value / scale)} {prefix}" if scale > 1 else f"{value:,.0f} B"
    if unit == "s":
        scale, prefix = next(((f, p) for f, p in _TIME if magnitude >= f), (1e-9, "ns"))
        return f"{_short(value / scale)} {prefix}" if value else "0 s"
    if unit == "%":
        return f"{value:+.2f} %"
    if unit == "pp":
        return f"{value:+.2f} pp"
    if unit in REAL_UNITS:
        return format_cell("", value)
    scale, prefix = next(((f, p) for f, p in _SI if magnitude >= f), (1, ""))
    return f"{_short(value / scale)} {prefix}" if prefix else format_cell("", value)


_SELF_EVIDENT = {"s", "bytes", "%", "pp"}  # their cells carry the unit: 87.11 ms, 408 MiB, +4.71 %


def _header(column: str, unit: str | None) -> str:
    """A wide column's header with its unit, unless the name or the cells already say it."""
    if unit is None or unit in _SELF_EVIDENT:
        return column
    words = str(column).lower().replace("_", " ").replace("(", " ").replace(")", " ").split()
    return column if unit.lower() in words else f"{column} ({unit})"


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


_NUMBER_TEXT = re.compile(r"^[~+\-]?\d[\d,]*(\.\d+)?( ?(%|pp|[kMG]|[KMG]iB|B|s|ms|µs|ns|x))?$")


def _numeric(frame: pd.DataFrame, column: object) -> bool:
    """Whether a column holds numbers, or numbers already written as text (``3.8580``, ``~2.5``,
    ``+9.90 %``), missing values and blanks aside: such a column is right-aligned."""
    values = [v for v in frame[column] if not _missing(v) and v != ""]

    def number(value: object) -> bool:
        if isinstance(value, str):
            return bool(_NUMBER_TEXT.match(value.strip()))
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return bool(values) and all(number(v) for v in values)


def right_aligned(frame: pd.DataFrame) -> set:
    """The columns printed right-aligned: numbers, scaled values and percentages."""
    right = {*_RIGHT_ALIGNED, *frame.attrs.get("units", {}), *frame.attrs.get("value_columns", ())}
    right |= {c for c in frame.columns if str(c).endswith("_pct") or str(c) == "95% CI"}
    return right | {c for c in frame.columns if _numeric(frame, c)}


def rich_table(frame: pd.DataFrame, *, title: str = "", caption: str = "") -> Table:
    """A rich Table with one row per record, numbers scaled to their units (all columns, however wide)."""
    return frame_layout(frame).table(title=title, caption=caption)


def frame_layout(frame: pd.DataFrame) -> Layout:
    """The frame's display cells, alignment and prose columns, ready to be fitted."""
    headers, cells = display_cells(frame)
    right = right_aligned(frame)
    return Layout(
        headers=headers,
        cells=cells,
        right=[c in right for c in frame.columns],
        prose=[c in _PROSE for c in frame.columns],
    )


def frame_tables(
    frame: pd.DataFrame, *, title: str = "", caption: str = "", width: int | None = None, wide: bool = False
) -> list[Table | Text]:
    """The frame as tables that fit ``width`` columns (the terminal's by default): see ``Layout.fit``.

    A folded table's caption comes last, as text.
    """
    layout = frame_layout(frame)
    if wide:
        return [layout.table(title=title, caption=caption)]
    return layout.fit(width=width or terminal_width(), title=title, caption=caption)


def terminal_width() -> int:
    """The terminal's width in columns ($COLUMNS first, as rich reads it; 100 when there is no terminal)."""
    import os

    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    console = Console()
    return console.width if console.is_terminal else 100


PROSE_MIN_WIDTH = 24  # a prose column wraps at spaces, down to this width
WRAPPED_MIN_WIDTH = 10  # a column of names, when the table must wrap them to fit


class _FittedTable(Table):
    """A rich table that knows the width it needs with its text wrapped (set by ``Layout.table``)."""

    least_width: int


@dataclass(frozen=True)
class Layout:
    """Headers and text cells of a table, with each column's alignment, and how to make it fit a width.

    ``fit`` tries, in order: the table as it is; headers stacked over several lines (words, and the parts
    of snake_case names, one under another), so a column is only as wide as its numbers; then a fold: the
    first column (the row's name) is repeated and the other columns are split over several tables, each
    as wide as fits, keeping a metric's columns together (``params base``, ``params candidate``, ...).
    The first table carries the title, the last the caption. ``--wide`` prints one table of every column.
    """

    headers: list[str]
    cells: list[list[str]]
    right: list[bool]
    prose: list[bool]
    prose_min: int = PROSE_MIN_WIDTH

    def _width(self, index: int, header: str) -> int:
        lines = [*header.splitlines(), *(row[index] for row in self.cells)]
        natural = max((len(line) for line in lines), default=0)
        if self.prose[index]:
            return min(natural, max(self.prose_min, max((len(h) for h in header.split()), default=0)))
        return natural

    def _total(self, columns: list[int], headers: list[str]) -> int:
        return sum(self._width(i, headers[i]) for i in columns) + 3 * len(columns) + 1

    def _stacked(self) -> list[str]:
        """Each header broken over lines no wider than its column's widest cell (or its longest word)."""
        stacked = []
        for index, header in enumerate(self.headers):
            words = header.replace("_", " ").split()
            cell = max((len(row[index]) for row in self.cells), default=0)
            limit = max(cell, *(len(w) for w in words)) if words else cell
            lines: list[str] = []
            for word in words:
                if lines and len(lines[-1]) + 1 + len(word) <= limit:
                    lines[-1] += f" {word}"
                else:
                    lines.append(word)
            stacked.append("\n".join(lines) if len(lines) > 1 else header)
        return stacked

    def table(
        self, *, title: str = "", caption: str = "", columns: list[int] | None = None,
        headers: list[str] | None = None, width: int | None = None,
    ) -> Table:  # fmt: skip
        """One rich Table of ``columns`` (all by default), with ``headers`` (the given ones by default)."""
        columns = list(range(len(self.headers))) if columns is None else columns
        headers = headers or self.headers
        least = len(title) if width is None else min(len(title), width)  # a title is never broken mid-word
        table = _FittedTable(
            title=title or None, caption=caption or None, caption_justify="left", min_width=least
        )
        for index in columns:
            prose = self.prose[index]
            table.add_column(
                headers[index],
                justify="right" if self.right[index] else "left",
                no_wrap=not prose,
                overflow="fold" if prose else "ellipsis",  # a long word folds, never cut short
                min_width=None if prose else self._width(index, headers[index]),
            )
        for row in self.cells:
            table.add_row(*(row[i] for i in columns))
        table.least_width = self._total(columns, headers)  # what it needs, text wrapped: see print_table
        return table

    def fit(self, *, width: int, title: str = "", caption: str = "") -> list[Table | Text]:
        """Tables holding every column, each within ``width`` columns where a column can fit at all."""
        everything = list(range(len(self.headers)))
        for headers in (self.headers, self._stacked()):
            if self._total(everything, headers) <= width:
                return [self.table(title=title, caption=caption, headers=headers, width=width)]
        headers = self._stacked()
        # Names and settings may wrap (numbers never do): a long table of text stays one table.
        wrapped = replace(self, prose=[p or not r for p, r in zip(self.prose, self.right, strict=True)])
        wrapped = replace(wrapped, prose_min=WRAPPED_MIN_WIDTH)
        if sum(not r for r in self.right) > 1 and wrapped._total(everything, headers) <= width:
            return [wrapped.table(title=title, caption=caption, headers=headers, width=width)]
        key, rest = everything[:1], everything[1:]
        groups: list[list[int]] = []  # a metric's columns stay together: params base, params candidate ...
        for index in rest:
            stem = _stem(self.headers[index])
            if groups and _stem(self.headers[groups[-1][-1]]) == stem:
                groups[-1].append(index)
            else:
                groups.append([index])
        chunks: list[list[int]] = []
        for group in groups:
            if chunks and self._total([*key, *chunks[-1], *group], headers) <= width:
                chunks[-1] += group
                continue
            chunks.append([])
            for index in group:  # a group too wide for one table is split column by column
                if chunks[-1] and self._total([*key, *chunks[-1], index], headers) > width:
                    chunks.append([])
                chunks[-1].append(index)
        tables: list[Table | Text] = []
        for number, chunk in enumerate(chunks):
            part = f" ({number + 1}/{len(chunks)})"
            tables.append(
                self.table(
                    title=(title + part) if title else part.strip(" ()"),
                    columns=[*key, *chunk],
                    headers=headers,
                    width=width,
                )
            )
        return [*tables, Text(caption)] if caption else tables  # the caption as wide as the terminal


def _stem(header: str) -> str:
    """The metric a wide column belongs to: its header's first word (``params`` of ``params base``)."""
    return header.replace("_", " ").split(" ", 1)[0]


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


def print_table(table: Table, console: Console | None = None, *, fitted: bool = False) -> None:
    """Print a rich table, widening the console rather than cutting numbers short.

    A ``fitted`` table (``Layout.fit``) may fold long words of its text columns; only its columns that
    never wrap (numbers) hold the console's width to their own.
    """
    console = console or Console()
    if fitted and hasattr(table, "least_width"):
        needed = table.least_width
    else:
        needed = Measurement.get(console, console.options.update(max_width=10_000), table).minimum
    if needed > console.width:
        console.width = needed
    console.print(table)


def print_frame(
    frame: pd.DataFrame,
    *,
    title: str = "",
    caption: str = "",
    wide: bool = False,
    console: Console | None = None,
) -> None:
    """Print the frame as tables that fit the terminal (one table of every column with ``wide``)."""
    console = console or Console(width=terminal_width())
    for part in frame_tables(frame, title=title, caption=caption, width=console.width, wide=wide):
        if isinstance(part, Table):
            print_table(part, console, fitted=not wide)
        else:
            console.print(part)


def table_text(
    frame: pd.DataFrame, *, title: str = "", caption: str = "", width: int | None = None, wide: bool = False
) -> str:
    """The table(s) rendered to plain text, fitted to ``width`` (default: the terminal's, else 100)."""
    console = Console(file=io.StringIO(), width=width or terminal_width(), color_system=None, record=True)
    print_frame(frame, title=title, caption=caption, wide=wide, console=console)
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
