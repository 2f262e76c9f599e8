"""Where a model's cost sits: a module tree to a chosen depth, and one row per aten op.

Rows hold raw integers. A module's row covers its whole subtree (its own ops and parameters and those of
every module inside it), as torchinfo and fvcore's ``flop_count_table`` show them; the root row, ``(model)``,
is the whole model. Attention modules are marked with their family (``se``, ``eca``, ``cbam`` ...), and the
modules holding them with ``(se inside)``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from senet_profile.analysis.static import StaticProfile, on_meta

MODULE_COLUMNS = ("params", "macs", "activations", "bytes_moved")
MODULE_UNITS = {
    "params": "params", "param_bytes": "bytes", "macs": "MACs", "activations": "elements",
    "bytes_moved": "bytes",
}  # fmt: skip
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


def _shape_text(output: object) -> str:
    shapes = [
        "x".join(map(str, leaf.shape)) for leaf in tree_leaves(output) if isinstance(leaf, torch.Tensor)
    ]
    return ", ".join(shapes)


def module_outputs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[str, int]]:
    """Each module's output shape (its last call's; several outputs comma-separated) and the bytes of the
    parameters in its subtree (each shared parameter once), from one forward on the meta device (shapes
    only, no data) of an input of ``input_shape``.
    """
    model = on_meta(model)
    inputs = torch.empty(input_shape, device="meta", dtype=next(model.parameters(), torch.empty(0)).dtype)
    shapes: dict[str, str] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _a, out, name=name: shapes.__setitem__(name, _shape_text(out))
        )
        for name, module in model.named_modules()
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    sizes = {
        name: sum(p.numel() * p.element_size() for p in module.parameters())
        for name, module in model.named_modules()
    }
    return {name: (shapes.get(name, ""), sizes[name]) for name in sizes}


def module_rows(
    profile: StaticProfile, *, depth: int, outputs: dict[str, tuple[str, int]] | None = None
) -> list[dict]:
    """The module tree to ``depth`` levels, in the model's order: name (indented), type, family, counts.

    With ``outputs`` (``module_outputs``) each row also shows its output shape and its parameters' bytes.
    """
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for module, counts in profile.by_module.items():
        for owner in _ancestors(module, depth):
            for key in MODULE_COLUMNS:
                totals[owner][key] += getattr(counts, key)
    inside: dict[str, set[str]] = defaultdict(set)  # module -> families of attention modules within it
    odd = {text.rpartition(" (")[0]: "unrecognised" for text in profile.unrecognised_attention}
    for module, family in (profile.attention | odd).items():
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
            "attention": _marker(name, profile.attention | odd, inside),
        }
        values = {key: totals[name][key] for key in MODULE_COLUMNS}
        if outputs is not None:
            shape, nbytes = outputs.get(name, ("", 0))
            row |= {"output_shape": shape}
            values = {"params": values.pop("params"), "param_bytes": nbytes, **values}
        rows.append(row | values)
    return rows


def op_rows(profile: StaticProfile) -> list[dict]:
    """One row per aten op the model ran, most MACs first then most bytes: calls, MACs, elements, bytes;
    last, the ``(total)`` row (as the module tree's ``(model)`` row, the whole model)."""
    rows: list[dict[str, Any]] = [
        {"op": op, "calls": c.ops, "macs": c.macs, "elements": c.elements, "bytes_moved": c.bytes_moved}
        for op, c in profile.ops.items()
    ]
    rows = sorted(rows, key=lambda r: (-r["macs"], -r["bytes_moved"], r["op"]))
    total = {"op": TOTAL_ROW, **{key: sum(r[key] for r in rows) for key in OP_COLUMNS}}
    return [*rows, total]
