"""The paper's complexity figures, printed value beside the value computed from the built model.

The printed values live in ``data/paper_values.json`` (cited there) and are only ever shown beside
computed ones. A FLOPs figure is computed under three counting conventions, since the paper does not say
which it used: multiply-adds alone (``MACs``), plus SE's squeeze (one add per pooled element), plus all of
SE's element work (squeeze, gate, scale, the ReLU between the FCs). A figure matched by none of them within
its printed rounding is marked ``differs`` and carries its reason from ``EXPLANATIONS``; one without a
recorded reason is marked ``UNEXPLAINED`` rather than hidden. An SE network's row is never a match while
the same table's row for its SE-free twin is not: a match there would be a coincidence (SE-ResNet-152's
"+SE ops" figure equals ResNet-152's multiply-adds plus its residual additions, because ResNet-152's
squeeze count, 13,146,112, equals its residual-add count); such a row is marked ``differs`` and carries the
twin's note. Nothing here adjusts a count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pandas as pd

from senet_profile.analysis.static import CONVENTION, Counts, analyze
from senet_profile.api import overhead_pct
from senet_profile.catalog.registry import get_model, parse_model_spec

COLUMNS = [
    "id", "source", "item", "model", "input_size", "quantity", "printed",
    "computed", "computed_se_squeeze", "computed_se_ops", "difference", "matched_by", "status", "note",
]  # fmt: skip
SECTIONS = ("Section 4", "Table 2", "Table 3", "Table 10", "Table 13", "Table 15", "Table 16")


@dataclass(frozen=True)
class Quantity:
    """What a printed figure measures: its unit's scale and the conventions it is computed under."""

    unit: str
    conventions: dict[str, Callable[[Counts], float]]


def _flops(scale: float) -> dict[str, Callable[[Counts], float]]:
    return {
        "MACs": lambda c: c.macs / scale,
        "+SE squeeze": lambda c: (c.macs + c.se_squeeze_ops) / scale,
        "+SE ops": lambda c: c.macs_and_se_ops / scale,
    }


QUANTITIES: dict[str, Quantity] = {
    "gflops": Quantity("GFLOPs", _flops(1e9)),
    "mflops": Quantity("MFLOPs", _flops(1e6)),
    "mparams": Quantity("M params", {"params": lambda c: c.params / 1e6}),
}
# Columns of the CSV for the three FLOPs conventions (params use the first only).
_CONVENTION_COLUMNS = ("computed", "computed_se_squeeze", "computed_se_ops")

KINDS: dict[str, Callable[[float, float], float]] = {
    "value": lambda base, model: model,
    "delta": lambda base, model: model - base,
    "overhead_pct": lambda base, model: overhead_pct(base, model) or 0.0,
}

_PARAMS_SLIP = (
    "Not matched with FC biases either. The built model agrees with the paper's Eq. 5, and the same "
    "table's other rows match: the printed figure appears to carry a slip, or counts something the paper "
    "does not state."
)
_RESIDUAL_ADDS = (
    "Multiply-adds fall short by a gap that grows with the number of blocks (ResNet-50 is within "
    "rounding); counting one op per element of each block's residual addition closes it (checked in "
    "tests/test_paper.py). The paper does not say which counter it used."
)
_FOLLOWS_BASE = (
    "The same network without SE is already not matched (its row above); what can still be checked here is "
    "SE's increment, this row minus that one under each convention, against the printed increment."
)
_SHUFFLENET = (
    "The ShuffleNet paper's Table 1 (1x, g = 3) gives 137 MFLOPs, as computed here; 140 is the complexity "
    "class its Table 2 files the 1x model under. Its parameter count is not stated; the printed 1.8 M and "
    "2.4 M match the computed counts truncated, not rounded."
)
_INCEPTION_RESNET = (
    "Built from the Inception-v4 paper's Figures 3, 7 and 15-19, those of Inception-ResNet-v2 (Figure 9 "
    "is Inception-v4's schema, Figures 10-14 Inception-ResNet-v1's): 5/10/5 blocks, widths as printed, the "
    "residual 1x1 convs widened to 1152/2144 so that the additions are defined. The authors' released "
    "model differs (10/20/10 blocks, a final 1x1 conv) and is larger; the SENet paper does not describe its "
    "re-implementation, and no configuration faithful to either source gives 11.75."
)

# Why a printed figure is matched by no convention, keyed by figure id (an SE row whose SE-free twin is not
# matched gets _FOLLOWS_BASE without an entry here).
EXPLANATIONS: dict[str, str] = {
    "t10.r4.params": _PARAMS_SLIP,
    "t10.r8.params": _PARAMS_SLIP,
    "t10.r32.params": _PARAMS_SLIP,
    "t13.stage4.params": _PARAMS_SLIP,
    "t15.3x3.params": _PARAMS_SLIP,
    "s4.gflops_overhead": (
        "0.26 % is the ratio of the two rounded printed values (3.87 / 3.86 - 1 = 0.259 %); from unrounded "
        "counts the overhead is the computed value."
    ),
    "t2.resnet101": _RESIDUAL_ADDS,
    "t2.resnet152": _RESIDUAL_ADDS,
    "t2.resnext50": _RESIDUAL_ADDS,
    "t2.resnext101": (
        "Not matched by multiply-adds, nor with the residual additions counted as for ResNet-101/152 (that "
        "gives 7.98); the paper says no more of its ResNeXt-101 than 32x4d."
    ),
    "t2.inception_resnet_v2": _INCEPTION_RESNET,
    "t2.se_inception_resnet_v2": _INCEPTION_RESNET,
    "t3.shufflenet.mflops": _SHUFFLENET,
    "t3.shufflenet.params": _SHUFFLENET,
    "t3.se_shufflenet.params": _SHUFFLENET,
}


@dataclass(frozen=True)
class PaperFigure:
    """One printed figure of the paper and the network it describes."""

    id: str
    source: str
    item: str
    kind: str
    model: str
    quantity: str
    printed: float
    decimals: int
    base: str | None = None
    approx: bool = False
    input_size: int = 224


def load_figures() -> tuple[str, list[PaperFigure]]:
    """The citation and every printed figure from the cited data file."""
    text = resources.files("senet_profile").joinpath("data/paper_values.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return data["citation"], [PaperFigure(**row) for row in data["values"]]


@cache
def counts_for(model: str, input_size: int) -> Counts:
    """Whole-model counts of a catalog argument at a square input, batch 1 (cached per process)."""
    spec = parse_model_spec(model)
    return analyze(get_model(spec), (1, 3, input_size, input_size), name=str(spec)).total


Key = tuple[str, int]  # (catalog argument, square input size)


def _count(key: Key) -> tuple[Key, Counts]:
    return key, counts_for(*key)


def count_all(
    keys: list[Key], *, workers: int = 2, progress: Callable[[int, int], None] | None = None
) -> dict[Key, Counts]:
    """Counts of every (model, input size), built and traced in ``workers`` forked processes.

    Each model is built and traced once, whatever the number of figures that read it; ``progress(done,
    total)`` is called as each one finishes. One worker (or no ``fork`` on this platform): in this process.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    counted: dict[Key, Counts] = {}
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods() and len(keys) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = pool.map(_count, keys)
            for key, counts in results:
                counted[key] = counts
                if progress:
                    progress(len(counted), len(keys))
        return counted
    for key in keys:
        counted[key] = counts_for(*key)
        if progress:
            progress(len(counted), len(keys))
    return counted


def _matches(computed: float, figure: PaperFigure) -> bool:
    return abs(round(computed, figure.decimals) - figure.printed) < 0.5 * 10 ** (-figure.decimals - 2)


def _status(matched: list[str], primary: str) -> str:
    if primary in matched:
        return "match"
    return f"match with {matched[0]}" if matched else "differs"


def _computed(figure: PaperFigure, lookup: Callable[[str, int], Counts] = counts_for) -> dict[str, float]:
    """``figure``'s quantity computed under each of its conventions, in order (the primary first)."""
    quantity = QUANTITIES[figure.quantity]
    computed: dict[str, float] = {}
    for name, read in quantity.conventions.items():
        base = read(lookup(figure.base, figure.input_size)) if figure.base else 0.0
        computed[name] = KINDS[figure.kind](base, read(lookup(figure.model, figure.input_size)))
    return computed


def _matched(figure: PaperFigure, lookup: Callable[[str, int], Counts] = counts_for) -> list[str]:
    return [name for name, value in _computed(figure, lookup).items() if _matches(value, figure)]


def twin_of(figure: PaperFigure, figures: list[PaperFigure]) -> PaperFigure | None:
    """The same table's figure of the same quantity for ``figure``'s SE-free twin (``se_X`` -> ``X``)."""
    if figure.kind != "value" or not figure.model.startswith("se_"):
        return None
    twin = figure.model.removeprefix("se_")
    same = (figure.source, figure.quantity, figure.kind, figure.input_size)
    return next(
        (f for f in figures if f.model == twin and (f.source, f.quantity, f.kind, f.input_size) == same), None
    )


def evaluate(
    figure: PaperFigure,
    lookup: Callable[[str, int], Counts] = counts_for,
    *,
    twin: PaperFigure | None = None,
) -> dict:
    """``figure`` beside its computed values under each convention, with its status and note.

    With ``twin`` (its SE-free twin's figure) unmatched, the row is ``differs`` whatever it matches.
    """
    quantity = QUANTITIES[figure.quantity]
    computed = _computed(figure, lookup)
    matched = [name for name, value in computed.items() if _matches(value, figure)]
    primary = next(iter(computed))
    twin_unmatched = twin is not None and not _matched(twin, lookup)
    status = "differs" if twin_unmatched else _status(matched, primary)
    note = ""
    if status == "differs":
        fallback = _FOLLOWS_BASE if twin_unmatched else "UNEXPLAINED: no reason recorded for this gap"
        note = EXPLANATIONS.get(figure.id, fallback)
    values = dict(zip(_CONVENTION_COLUMNS, computed.values(), strict=False))
    return {
        "id": figure.id,
        "source": figure.source,
        "item": figure.item,
        "model": figure.model if figure.base is None else f"{figure.base} -> {figure.model}",
        "input_size": figure.input_size,
        "quantity": quantity.unit if figure.kind == "value" else f"{quantity.unit} ({figure.kind})",
        "printed": f"{'~' if figure.approx else ''}{figure.printed:.{figure.decimals}f}",
        **{column: values.get(column) for column in _CONVENTION_COLUMNS},
        "difference": computed[primary] - figure.printed,
        "matched_by": ", ".join(matched),
        "status": status,
        "note": note,
    }


def paper_report(*, workers: int = 2, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Every printed complexity figure beside the computed ones, as a DataFrame (see ``count_all``)."""
    citation, figures = load_figures()
    keys = list(dict.fromkeys((m, f.input_size) for f in figures for m in (f.model, f.base) if m))
    counted = count_all(keys, workers=workers, progress=progress)
    rows = [
        evaluate(f, lambda model, size: counted[(model, size)], twin=twin_of(f, figures)) for f in figures
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)
    frame.attrs["citation"] = citation
    frame.attrs["convention"] = CONVENTION
    return frame


def _number(value: object, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def with_note_refs(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` for display: computed values rounded two places past the printed ones, notes as [n]."""
    notes: list[str] = []
    rows = []
    for record in frame.to_dict(orient="records"):
        note = record["note"]
        if note and note not in notes:
            notes.append(note)
        decimals = len(record["printed"].partition(".")[2]) + 2
        rows.append(
            {
                "source": record["source"],
                "item": record["item"],
                "quantity": record["quantity"],
                "printed": record["printed"],
                "MACs / params": _number(record["computed"], decimals),
                "+SE squeeze": _number(record["computed_se_squeeze"], decimals),
                "+SE ops": _number(record["computed_se_ops"], decimals),
                "status": record["status"],
                "note": f"[{notes.index(note) + 1}]" if note else "",
            }
        )
    return pd.DataFrame(rows), [f"[{i}] {note}" for i, note in enumerate(notes, start=1)]


def markdown_report(frame: pd.DataFrame) -> str:
    """``results/paper/REPORT.md``: one table per section of the paper, notes, no timings or dates."""
    shown, notes = with_note_refs(frame)
    statuses = frame["status"].value_counts()
    lines = [
        "# Squeeze-and-Excitation Networks: printed vs computed complexity",
        "",
        "Generated by `senet-profile paper` from the models the catalog builds; do not edit by hand.",
        "",
        f"Source of the printed values: {frame.attrs['citation']}",
        "",
        f"Counting convention: {frame.attrs['convention']}.",
        "",
        "Every FLOPs figure is computed three ways, since the paper does not say how it counted:",
        "multiply-adds alone (MACs), plus SE's squeeze (one add per pooled element), plus all of SE's",
        "element ops (squeeze, gate, scale, the ReLU between the FCs). Computed values are shown two",
        "decimals past the printed",
        "rounding; `status` names the first convention that matches the printed value within its rounding.",
        "",
        f"Summary: {len(frame)} printed figures; {statuses.get('match', 0)} matched with multiply-adds or "
        f"parameters alone, {sum(v for k, v in statuses.items() if k.startswith('match with'))} only when "
        f"SE's element work is counted, {statuses.get('differs', 0)} not matched (each with its reason).",
        "",
    ]
    for section in SECTIONS:
        part = shown[shown["source"] == section].drop(columns=["source"])
        if part.empty:
            continue
        lines += [f"## {section}", "", part.to_markdown(index=False, disable_numparse=True), ""]
    models = frame[["id", "model", "input_size"]].to_markdown(index=False, disable_numparse=True)
    lines += ["## Notes", "", *[f"{note}\n" for note in notes], "## Models measured", "", models, ""]
    return "\n".join(lines)
