"""Where a model's cost sits: a module tree to a chosen depth, and one row per aten op.

Rows hold raw integers. A module's row covers its whole subtree (its own ops and parameters and those of
every module inside it), as torchinfo and fvcore's ``flop_count_table`` show them; the root row, ``(model)``,
is the whole model. Attention modules are marked with their family (``se``, ``eca``, ``cbam`` ...), and the
modules holding them with ``(se inside)``.
"""

from __future__ import annotations

from collections import defaultdict

from senet_profile.analysis.static import StaticProfile

MODULE_COLUMNS = ("params", "macs", "activations", "bytes_moved")
MODULE_UNITS = {"params": "params", "macs": "MACs", "activations": "elements", "bytes_moved": "bytes"}
OP_COLUMNS = ("calls", "macs", "elements", "bytes_moved")
TOTAL_ROW = "(total)"
OP_UNITS = {"calls": "ops", "macs": "MACs", "elements": "elements", "bytes_moved": "bytes"}


def _depth(name: str) -> int:
    return 0 if not name else name.count(".") + 1


def _ancestors(name: str, depth: int) -> list[str]:
    """The module itself and every enclosing module down to ``depth`` levels (the root included)."""
    parts = name.split(".") if name else []
    return [".".join(parts[:level]) for level in range(min(len(parts), depth) + 1)]


def _marker(name: str, attention: dict[str, str], inside: dict[str, set[str]]) -> str:
    """The module's own attention family, or ``(se inside)`` for one that holds attention modules."""
    if name in attention:
        return attention[name]
    return f"({', '.join(sorted(inside[name]))} inside)" if inside.get(name) else ""


def module_rows(profile: StaticProfile, *, depth: int) -> list[dict]:
    """The module tree to ``depth`` levels, in the model's order: name (indented), type, family, counts."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for module, counts in profile.by_module.items():
        for owner in _ancestors(module, depth):
            for key in MODULE_COLUMNS:
                totals[owner][key] += getattr(counts, key)
    inside: dict[str, set[str]] = defaultdict(set)  # module -> families of attention modules within it
    for module, family in profile.attention.items():
        for owner in _ancestors(module, depth):
            if owner != module:
                inside[owner].add(family)
    rows = []
    for name, kind in profile.module_types.items():
        level = _depth(name)
        if level > depth or name not in totals:
            continue
        shown = "(model)" if not name else "  " * (level - 1) + name.rpartition(".")[2]
        row = {
            "module": shown,
            "path": name,
            "type": kind,
            "attention": _marker(name, profile.attention, inside),
        }
        rows.append(row | {key: totals[name][key] for key in MODULE_COLUMNS})
    return rows


def op_rows(profile: StaticProfile) -> list[dict]:
    """One row per aten op the model ran, most MACs first then most bytes: calls, MACs, elements, bytes;
    last, the ``(total)`` row (as the module tree's ``(model)`` row, the whole model)."""
    rows = [
        {"op": op, "calls": c.ops, "macs": c.macs, "elements": c.elements, "bytes_moved": c.bytes_moved}
        for op, c in profile.ops.items()
    ]
    rows = sorted(rows, key=lambda r: (-r["macs"], -r["bytes_moved"], r["op"]))
    total = {"op": TOTAL_ROW, **{key: sum(r[key] for r in rows) for key in OP_COLUMNS}}
    return [*rows, total]
