"""Long records as one wide table for reading: one row per scope (model, stages, op classes, attention).

CSV and JSON keep the long records; this is for the terminal table and Markdown only.
"""

from __future__ import annotations

import pandas as pd

# What a comparison's wide table shows for each scope: these metrics' base, candidate and overhead.
COMPARE_WIDE_METRICS = ("params", "macs", "activations", "bytes_moved")


def _scopes(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["scope"]))


def profile_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """A profile's records as scope x metric (each column one metric, its unit in the header)."""
    metrics = list(dict.fromkeys(frame["metric"]))
    units = dict(zip(frame["metric"], frame["unit"], strict=True))
    values = {(s, m): v for s, m, v in zip(frame["scope"], frame["metric"], frame["value"], strict=True)}
    rows = [{"scope": s, **{m: values.get((s, m)) for m in metrics}} for s in _scopes(frame)]
    wide = pd.DataFrame(rows)
    wide.attrs = {**frame.attrs, "units": units}
    return wide


def compare_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """A comparison's records as scope x (metric base, candidate, overhead) for the main metrics."""
    metrics = [m for m in COMPARE_WIDE_METRICS if m in set(frame["metric"])]
    units = dict(zip(frame["metric"], frame["unit"], strict=True))
    by_key = {(r["scope"], r["metric"]): r for r in frame.to_dict(orient="records")}
    rows, column_units = [], {}
    for scope in _scopes(frame):
        row: dict[str, object] = {"scope": scope}
        for metric in metrics:
            record = by_key.get((scope, metric), {})
            for side in ("base", "candidate"):
                row[f"{metric} {side}"] = record.get(side)
                column_units[f"{metric} {side}"] = units[metric]
            row[f"{metric} overhead_pct"] = record.get("overhead_pct")
        rows.append(row)
    wide = pd.DataFrame(rows)
    wide.attrs = {**frame.attrs, "units": column_units}
    return wide
