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


def explain_units(columns) -> dict[str, str]:
    """Units of ``explain``'s per-class columns: MACs, bytes, seconds (shown as ms, µs) and points."""
    units = {}
    for column in columns:
        name = str(column)
        if name.startswith("macs_"):
            units[name] = "MACs"
        elif name.startswith("bytes_"):
            units[name] = "bytes"
        elif "_s_" in name or name.endswith("_s"):
            units[name] = "s"
        elif name.endswith("_pp"):
            units[name] = "pp"
    return units


def explain_header(column: object) -> str:
    """A short header for an ``explain`` column (the unit is in each cell): ``predicted_s_base`` ->
    ``predicted base``, ``macs_base`` -> ``MACs base``, ``predicted_pp`` -> ``predicted pp``."""
    name = str(column).replace("_s_", "_").replace("macs_", "MACs_")
    return name if name == "op_class" else name.replace("_", " ")


def _run_label(time: str, commit: str) -> str:
    """``YYYY-MM-DD HH:MM`` (UTC, as recorded) and the commit's first 7 digits, ``+`` for a dirty tree."""
    sha, dirty, _ = str(commit).partition("-dirty")
    return f"{str(time)[:16].replace('T', ' ')} {sha[:7]}{'+' if dirty else ''}"


def history_series(history: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The history split into one narrow table per pair and setting (its title, its runs oldest first).

    Each row is a run: its date and commit, the overhead, its 95 % CI (``n/a`` below the sample minimum,
    with the count), the samples and whether the run was noisy; the machine class only when several show.
    """
    several = history["machine_class"].nunique() > 1
    tables = []
    for (pair, setting), runs in history.groupby(["pair", "setting"], sort=False):
        rows = []
        for run in runs.to_dict(orient="records"):
            known = not (pd.isna(run["ci_low"]) or pd.isna(run["ci_high"]))
            interval = f"[{run['ci_low']:+.2f}, {run['ci_high']:+.2f}] %" if known else "n/a"
            row = {"run (UTC, commit)": _run_label(run["time"], run["commit"])}
            row |= {"machine_class": run["machine_class"]} if several else {}
            row |= {"overhead_pct": run["overhead_pct"], "95% CI": interval}
            row |= {"samples": run["samples"], "noisy": run["noisy"]}
            rows.append(row)
        frame = pd.DataFrame(rows)
        frame.attrs = {"value_columns": ["samples"]}
        tables.append((f"{pair} ({setting})", frame))
    return tables
