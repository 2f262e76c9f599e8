"""SE against its rivals: each attention family of timm's registry on one backbone, against the plain one.

The families are read from the installed timm: ``registered_families`` lists every name that
``timm.layers.create_attn.get_attn`` accepts (read from its source, so a timm that adds a family adds a
row). Each is built as ``timm.create_model(BACKBONE, block_args=dict(attn_layer=NAME))`` -- the model
argument ``timm:BACKBONE:block_args={'attn_layer':'NAME'}`` -- and compared with the plain
``timm:BACKBONE``; the catalog's own SE model (``se_BACKBONE``, when the catalog has one) stands beside
timm's SE against the catalog's plain twin. A family that does not build, or a column that cannot be
measured for it (a training pass at batch 1 through a BatchNorm on a 1x1 map), keeps its row with a
one-line reason: nothing is dropped.

Columns, each as the candidate's value, its difference from the plain backbone and that difference in
percent: params, MACs, bytes moved (the static trace, ``analysis.static``); the peak of an inference and
of a training pass (``analysis.memory``, on the meta device by default: byte-identical to the CPU's
figure); the overhead the machine model predicts (``analysis.roofline`` via ``analysis.overhead``); and,
when asked, the paired measured latency overhead with its 95 % interval (``api.compare``).

The papers' own complexity tables (``data/paper_values.json``, section ``rivals``) are shown beside the
computed figures by ``paper_figures``, each with its citation, hardware and batch as printed.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd

from senet_profile.errors import UserInputError
from senet_profile.setting import Setting, overhead_pct

if TYPE_CHECKING:  # pragma: no cover
    from senet_profile.analysis.roofline import MachineModel

DEFAULT_SETTING = Setting(input_size=(224, 224))

NONE = "none"
CATALOG_SE = "se (catalog)"
# The columns of the table, in order (``*_delta``: candidate less plain; ``*_pct``: that over plain).
MEASURES = ("params", "macs", "bytes_moved", "peak_infer", "peak_train")
COLUMNS = [
    "family", "model", "base", "attn_class",
    *[f"{m}{s}" for m in MEASURES for s in ("", "_delta", "_pct")],
    "flops_pct", "predicted_pct", "measured_pct", "ci_low", "ci_high", "pairs", "medians_pct", "note",
]  # fmt: skip
UNITS = {
    "params": "params",
    "macs": "MACs",
    "bytes_moved": "bytes",
    "peak_infer": "bytes",
    "peak_train": "bytes",
}


def _get_attn() -> Callable:
    try:
        from timm.layers import create_attn
    except ImportError:
        raise UserInputError(
            "timm is not installed; install it with: pip install 'senet-profile[timm]'"
        ) from None
    module = inspect.getmodule(create_attn) if not inspect.ismodule(create_attn) else create_attn
    return module.get_attn  # type: ignore[union-attr]


@cache
def registered_families() -> tuple[str, ...]:
    """Every attention name the installed timm's ``create_attn`` registry accepts, in its own order."""
    get_attn = _get_attn()
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(get_attn)))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "attn_type"
        ):
            continue
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Eq) and isinstance(right, ast.Constant) and isinstance(right.value, str):
                found.append((node.lineno, right.value))
    names = tuple(dict.fromkeys(name for _, name in sorted(found)))
    if not names:
        raise UserInputError("could not read the attention names from timm.layers.create_attn.get_attn")
    return names


def attention_class(name: str) -> str:
    """The class (or ``partial``'s class) timm's registry builds for ``name``."""
    built = _get_attn()(name)
    target = getattr(built, "func", built)
    return getattr(target, "__name__", type(target).__name__)


@dataclass(frozen=True, kw_only=True)
class Family:
    """One row to measure: its label, the model argument and the plain backbone it is compared with."""

    family: str
    model: str
    base: str
    attn_class: str = ""


def timm_backbone(backbone: str) -> str:
    """The timm model name of ``backbone`` (``resnet50`` or ``timm:resnet50``), checked against timm."""
    name = backbone.removeprefix("timm:").strip()
    if not name or ":" in name:
        raise UserInputError(f"a backbone is a timm model name such as resnet50, got {backbone!r}")
    import timm

    if name not in timm.list_models():
        raise UserInputError(f"unknown timm backbone {name!r}; `senet-profile list --source timm` lists them")
    return name


def family_argument(backbone: str, name: str) -> str:
    """The model argument of ``backbone`` with timm attention ``name`` in every block."""
    return f"timm:{backbone}:block_args={{'attn_layer':'{name}'}}"


def family_list(backbone: str, families: Sequence[str] | None = None) -> list[Family]:
    """The rows: the plain backbone, the catalog's SE twin where there is one, then every registry name."""
    from senet_profile.catalog.registry import list_models

    name = timm_backbone(backbone)
    plain = f"timm:{name}"
    rows = [Family(family=NONE, model=plain, base=plain)]
    if f"se_{name}" in list_models() and name in list_models():
        rows.append(Family(family=CATALOG_SE, model=f"se_{name}", base=name, attn_class="SEBlock"))
    chosen = registered_families() if families is None else tuple(families)
    unknown = [f for f in chosen if f not in registered_families()]
    if unknown:
        raise UserInputError(
            f"unknown attention famil{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(map(repr, unknown))}; the installed timm registers "
            f"{', '.join(registered_families())}"
        )
    rows += [
        Family(family=f, model=family_argument(name, f), base=plain, attn_class=attention_class(f))
        for f in chosen
    ]
    return rows


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and first message line, or where it was raised when it has none."""
    if isinstance(error, UserInputError):
        return (
            str(error).strip().splitlines()[0].partition(" failed: ")[2] or str(error).strip().splitlines()[0]
        )
    text = str(error).strip().splitlines()
    if text:
        return f"{type(error).__name__}: {text[0]}"
    frames = [  # the innermost frame of the model's own code: not torch's, not this tool's tracer
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not any(f"{part}/" in f.filename for part in ("torch", "senet_profile"))
    ]
    last = frames[-1] if frames else None
    where = f" at {Path(last.filename).parent.name}/{Path(last.filename).name}:{last.lineno}" if last else ""
    line = f" ({last.line})" if last and last.line else ""
    return f"{type(error).__name__}{where}{line}"


@dataclass(frozen=True, kw_only=True)
class InputLimit:
    """What an attention layer needs of the maps it is given: a rule its own code asserts."""

    needs: str  # what it needs, a format of the layer's attributes
    error: str  # the exception type its own check raises
    fits: Callable[[object, int, int], bool]  # (layer, height, width) -> whether it takes that map


def _block_divides(layer: object, h: int, w: int) -> bool:
    block = layer.block_size  # type: ignore[attr-defined]
    return h % block == 0 and w % block == 0


_BLOCKS = InputLimit(
    needs="each feature map's height and width divisible by its block size ({block_size})",
    error="AssertionError",
    fits=_block_divides,
)
# Attention layers whose code refuses some map sizes, by class name (timm's, as its registry builds them):
# halo's HaloAttn and the bilinear transform inside bat's BatNonLocalAttn assert it of each map.
INPUT_LIMITS: dict[str, InputLimit] = {"HaloAttn": _BLOCKS, "BilinearAttnTransform": _BLOCKS}


class _Refused(Exception):
    """Raised by a limit's check before the layer's own, to stop the forward there."""


def input_limit(module: object, shape: tuple[int, ...]) -> tuple[str, str] | None:
    """Why ``module`` cannot take ``shape`` when a layer of ``INPUT_LIMITS`` refuses the map it is given.

    One forward (no gradients, on the module's own device: meta costs nothing) with a check before each
    such layer; returns the one-line reason and the exception type that layer's own check raises, or None
    (no such layer, every one takes its map, or the model fails elsewhere first).
    """
    import torch

    refused: list[tuple[str, str]] = []
    size = "x".join(map(str, shape))

    def check(name: str, rule: InputLimit):
        def hook(layer: torch.nn.Module, args: tuple) -> None:
            h, w = (int(n) for n in args[0].shape[-2:])
            if not rule.fits(layer, h, w):
                needs = rule.needs.format(**vars(layer))
                refused.append((
                    f"{type(layer).__name__} needs {needs}, and {name} gets a {h}x{w} map at input {size}: "
                    "a limit of the family on this backbone at this input size, not of the tool",
                    rule.error,
                ))  # fmt: skip
                raise _Refused

        return hook

    assert isinstance(module, torch.nn.Module)
    rules = {name: INPUT_LIMITS[type(sub).__name__] for name, sub in module.named_modules()
             if type(sub).__name__ in INPUT_LIMITS}  # fmt: skip
    if not rules:
        return None
    layers = dict(module.named_modules())
    handles = [layers[name].register_forward_pre_hook(check(name, rule)) for name, rule in rules.items()]
    parameter = next(module.parameters(), None)
    try:
        with torch.no_grad():
            module(torch.zeros(shape, device=parameter.device if parameter is not None else "cpu"))
    except _Refused:
        return refused[0]
    except Exception:
        return None  # it fails before any limited layer refuses its map: not this limit
    finally:
        for handle in handles:
            handle.remove()
    return None


@dataclass(frozen=True, kw_only=True)
class Measured:
    """One model's figures (None where not measured) and why any is missing."""

    values: dict[str, float | None] = field(default_factory=dict)
    predicted_s: float | None = None
    uncovered: dict[str, int] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


def measure_static(
    model: str,
    *,
    shape: tuple[int, int, int, int],
    machine: object | None,
    memory_device: str = "meta",
    dtype: str = "fp32",
    attention: dict[str, str] | None = None,
) -> Measured:
    """Params, MACs, bytes moved, both peaks and the machine model's time of one model argument.

    A model that does not build gives every figure None and the reason; a pass that fails gives its
    figures None and the reason, the others stand.
    """
    from senet_profile import api
    from senet_profile.analysis.metrics import memory_profile
    from senet_profile.analysis.overhead import static_side
    from senet_profile.analysis.static import analyze

    try:
        built = api.resolve(model)
    except (UserInputError, Exception) as error:
        return Measured(reasons=(f"does not build: {one_line(error)}",))
    values: dict[str, float | None] = dict.fromkeys(MEASURES)
    reasons: list[str] = []
    predicted_s, uncovered = None, {}
    try:
        if machine is not None:
            profile, prediction = static_side(
                built.module, shape, name=built.name, dtype=dtype, machine=cast("MachineModel", machine)
            )
            predicted_s, uncovered = prediction.total_s, dict(prediction.uncovered)
        else:
            profile = analyze(built.module, shape, name=built.name, attention=attention)
        values |= {
            "params": profile.total.params,
            "macs": profile.total.macs,
            "bytes_moved": profile.total.bytes_moved,
        }
    except Exception as error:
        reasons.append(f"static trace fails: {one_line(error)}")
    for mode in ("infer", "train"):
        try:
            options = Setting(device=memory_device, mode=mode, dtype=dtype)
            values[f"peak_{mode}"] = memory_profile(built.module, shape, options).peak_bytes
        except Exception as error:
            reasons.append(f"{'inference' if mode == 'infer' else 'training'} pass fails: {one_line(error)}")
    limit = input_limit(built.module, shape) if reasons else None
    if limit is not None:  # a layer refuses the maps it is given: say so, in the words of its rule
        reasons = [f"{r.partition(' fails: ')[0]} fails: {limit[0]}" if limit[1] in r else r for r in reasons]
    causes = [reason.partition(" fails: ")[2] for reason in reasons]
    if len(reasons) == 3 and len(set(causes)) == 1:  # one cause stops every pass: say it once
        reasons = [f"fails in every pass (trace, inference, training): {causes[0]}"]
    return Measured(values=values, predicted_s=predicted_s, uncovered=uncovered, reasons=tuple(reasons))


def _row(family: Family, side: Measured, base: Measured) -> dict:
    row: dict[str, object] = {
        "family": family.family, "model": family.model, "base": family.base, "attn_class": family.attn_class,
    }  # fmt: skip
    for measure in MEASURES:
        value, plain = side.values.get(measure), base.values.get(measure)
        row[measure] = value
        row[f"{measure}_delta"] = None if value is None or plain is None else value - plain
        row[f"{measure}_pct"] = overhead_pct(plain, value)
    row["flops_pct"] = row["macs_pct"]
    row["predicted_pct"] = overhead_pct(base.predicted_s, side.predicted_s)
    notes = list(side.reasons)
    if side.uncovered:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(side.uncovered.items()))
        notes.append(f"NOT PREDICTED (no rule, left out of the sum): {listed}")
    row |= {"measured_pct": None, "ci_low": None, "ci_high": None, "pairs": None, "medians_pct": None}
    row["note"] = "; ".join(notes)
    return row


MEMORY_DEVICE = "meta"  # every family's peaks are tracked on meta: byte-exact, nothing allocated


def static_table(
    families: Sequence[Family],
    *,
    workload: Setting = DEFAULT_SETTING,
    machine: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The static, memory and predicted columns of every family, each against its plain backbone.

    ``machine`` is a ``roofline.MachineModel`` (None: no prediction). A plain backbone that does not build
    is refused: the table would mean nothing.
    """
    bases: dict[str, Measured] = {}
    rows = []
    for index, family in enumerate(families):
        if family.base not in bases:
            bases[family.base] = measure_static(
                family.base, shape=workload.shape, machine=machine, memory_device=MEMORY_DEVICE,
                dtype=workload.dtype,
            )  # fmt: skip
            if bases[family.base].reasons and bases[family.base].values.get("params") is None:
                raise UserInputError(
                    f"the plain backbone {family.base} cannot be measured: {bases[family.base].reasons[0]}"
                )
        side = (
            bases[family.model]
            if family.model in bases
            else measure_static(
                family.model, shape=workload.shape, machine=machine, memory_device=MEMORY_DEVICE,
                dtype=workload.dtype,
            )
        )  # fmt: skip
        rows.append(_row(family, side, bases[family.base]))
        if progress:
            progress(index + 1, len(families))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in COLUMNS[4:-1]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame.attrs["input_shape"] = list(workload.shape)
    frame.attrs["memory_device"] = MEMORY_DEVICE
    frame.attrs["dtype"] = workload.dtype
    return frame


def measure_latency(
    table: pd.DataFrame,
    *,
    runtime: Setting,
    workload: Setting = DEFAULT_SETTING,
    progress: Callable[[int, str, int, float], None] | None = None,
) -> pd.DataFrame:
    """``table`` with the paired measured overhead of each built family (``api.compare``, latency only).

    ``runtime`` is the timing ``Setting`` (batch and size: ``workload``'s); ``progress(index, family,
    pairs, halfwidth)`` is called while each family is timed (pairs -1 once it is done). A family whose
    timing fails keeps its row and says why.
    """
    from senet_profile import api

    frame = table.copy()
    notes = list(frame["note"])
    for index, row in enumerate(frame.itertuples(index=False)):
        if row.family == NONE or math.isnan(row.params):  # the plain row, or a family that never ran
            continue

        def update(pairs: int, halfwidth: float, _index: int = index, _family: str = row.family) -> None:
            if progress:
                progress(_index, _family, pairs, halfwidth)

        try:
            result = api.compare(
                row.base, row.model, metrics=("latency",), setting=runtime, batch_size=workload.batch_size,
                input_size=workload.size, progress=update,
            )  # fmt: skip
        except Exception as error:
            notes[index] = "; ".join(filter(None, [notes[index], f"latency fails: {one_line(error)}"]))
            continue
        overhead = result[result["metric"] == "latency_overhead"].iloc[0]
        medians = result[result["metric"] == "latency"].iloc[0]
        frame.loc[index, ["measured_pct", "ci_low", "ci_high", "pairs", "medians_pct"]] = [
            overhead["overhead_pct"], overhead["ci_low"], overhead["ci_high"], overhead["samples"],
            medians["overhead_pct"],
        ]  # fmt: skip
        if result.attrs.get("interval_na"):
            reason = next(iter(result.attrs["interval_na"].values()))
            notes[index] = "; ".join(filter(None, [notes[index], f"95 % CI n/a: {reason}"]))
        if progress:
            progress(index, row.family, -1, math.nan)  # pairs -1: this family is done
    frame["note"] = notes
    frame.attrs = dict(table.attrs) | {"runtime": runtime.describe(("latency",))}
    return frame


# ----------------------------------------------------------------------------------------------------------
# The papers' tables


@dataclass(frozen=True, kw_only=True)
class PaperTable:
    """One printed complexity table: citation, where it is, hardware and batch as printed, its rows.

    Each row names the ``family`` it is compared with (``none`` for the plain backbone), or none with
    ``no_family`` saying why; its ``where`` names the ``sources`` (keys) each figure was read in.
    """

    key: str
    backbone: str
    input_size: int
    citation: str
    table: str
    hardware: str
    batch: str
    columns: dict[str, str]
    rows: tuple[dict, ...]
    note: str = ""
    sources: dict[str, str] = field(default_factory=dict)


def load_paper_tables() -> list[PaperTable]:
    """The rival families' printed tables from the cited data file (section ``rivals``)."""
    text = resources.files("senet_profile").joinpath("data/paper_values.json").read_text(encoding="utf-8")
    section = json.loads(text).get("rivals", {})
    fields = ("backbone", "input_size", "citation", "table", "hardware", "batch", "columns")
    return [
        PaperTable(
            key=key,
            rows=tuple(t["rows"]),
            note=t.get("note", ""),
            sources=dict(t.get("sources", {})),
            **{f: t[f] for f in fields},
        )
        for key, t in section.items()
    ]


# printed quantity -> (computed column, scale, what it is)
COMPUTED = {
    "params_m": ("params", 1e6, "params (M)"),
    "gflops": ("macs", 1e9, "GFLOPs = multiply-adds (G)"),
    "added_params": ("params_delta", 1.0, "params the module adds"),
    "added_gflops": ("macs_delta", 1e9, "GFLOPs the module adds = multiply-adds (G)"),
    "top1": (None, 1.0, "top-1 accuracy (%)"),
    "top5": (None, 1.0, "top-5 accuracy (%)"),
    "train_fps": (None, 1.0, "training img/s"),
    "infer_fps": (None, 1.0, "inference img/s"),
}
# Why a printed figure has no computed counterpart, by quantity.
_ACCURACY = "accuracy needs training; this tool measures cost only"
_THROUGHPUT = "throughput on the paper's machine; its slowdown over the plain row stands beside ours below"
NOT_COMPUTED = {"top1": _ACCURACY, "top5": _ACCURACY, "train_fps": _THROUGHPUT, "infer_fps": _THROUGHPUT}
_PLAIN_PARAMS = (
    "timm's and torchvision's ResNet-50 has 25,557,032 parameters (23,508,032 without its 1000-way "
    "classifier); neither is the printed 24.37 M, and no convention tried here reproduces it: UNEXPLAINED."
)
_LAYOUT = (
    "Multiply-adds of timm's ResNet-50 (torchvision layout, stride on the 3x3 conv) are 4.09 G; with the "
    "stride on the first 1x1 conv (the original Caffe layout, the catalog's resnet50:layout=paper) they are "
    "3.86 G, the printed figure: the layout moves stride-2 work, not the attention's share."
)
_ADDED = (
    "The printed row less the printed ResNet row is in the overheads table below, beside the parameters the "
    "built family adds to the built ResNet-50."
)
_SE_LAYOUT = (
    _LAYOUT + " The printed 3.87 is also the SE paper's SE-ResNet-50 figure, which `senet-profile paper` "
    "matches on that layout (se_resnet50:layout=paper) when SE's squeeze is counted."
)
# Why a printed figure differs from the computed one, keyed by (paper, method, quantity).
FIGURE_NOTES: dict[tuple[str, str, str], str] = {
    ("eca_net", "ResNet", "params_m"): _PLAIN_PARAMS,
    ("eca_net", "ResNet", "gflops"): _LAYOUT,
    ("eca_net", "SENet", "params_m"): _PLAIN_PARAMS + " " + _ADDED,
    ("eca_net", "SENet", "gflops"): _SE_LAYOUT,
    ("eca_net", "CBAM", "params_m"): _PLAIN_PARAMS + " " + _ADDED,
    ("eca_net", "CBAM", "gflops"): _LAYOUT,
    ("eca_net", "GCNet", "params_m"): (
        _PLAIN_PARAMS + " " + _ADDED + " timm's GlobalContext reduces each block's channels to C/8 by "
        "default (rd_ratio=1/8 in timm's source; 'gc' fuses by scaling, 'gca' by adding, with the same "
        "parameters): +5.07 M here against the printed +3.71 M, reproduced by no ratio tried here: "
        "UNEXPLAINED."
    ),
    ("eca_net", "GCNet", "gflops"): _LAYOUT,
    ("eca_net", "ECA-Net", "params_m"): _PLAIN_PARAMS,
    ("eca_net", "ECA-Net", "gflops"): _LAYOUT,
    ("eca_net", "ECA-Net", "added_params"): (
        "The printed 80 is 3x3 + 4x5 + 6x5 + 3x7: kernel sizes 3, 5, 5, 7 per stage, the authors' "
        "released eca_resnet50_k3557. timm's EcaModule picks k from each block's output width (k = 5, 5, "
        "5, 7 for 256, 512, 1024, 2048 channels): 3x5 + 4x5 + 6x5 + 3x7 = 86, the computed figure."
    ),
    ("eca_net", "ECA-Net", "added_gflops"): (
        "The 1-D convolutions' multiply-adds are 87,808 here (8.8e-5 G; 86,272 with k3557); adding the "
        "squeeze's adds (one per pooled element, 5.5e-3 G) overshoots. The printed 4.7e-4 is reproduced "
        "by no convention tried here: UNEXPLAINED."
    ),
}


def _decimals(value: float) -> int:
    text = f"{value:g}"
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        return max(0, len(mantissa.partition(".")[2]) - int(exponent))
    return len(text.partition(".")[2])


def paper_figures(table: pd.DataFrame, papers: Sequence[PaperTable]) -> pd.DataFrame:
    """Every printed figure beside the one computed from the built model, matched within its rounding or not.

    A figure with no computed counterpart (accuracy) is shown and says so; one that differs carries its
    reason from ``FIGURE_NOTES``, or ``UNEXPLAINED`` when none is recorded.
    """
    by_family = {row["family"]: row for row in table.to_dict(orient="records")}
    rows = []
    for paper in papers:
        for printed in paper.rows:
            family = printed.get("family") or ""
            ours = by_family.get(family, {})
            for key in paper.columns:
                if key not in printed:
                    continue
                column, scale, label = COMPUTED.get(key, (None, 1.0, key))
                value = ours.get(column) if column else None
                computed = (
                    None
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else value / scale
                )
                if column is None:
                    status, note = "not computed", NOT_COMPUTED.get(key, "no computed counterpart")
                elif not family:
                    status, note = "not computed", printed.get("no_family") or "no family named for this row"
                elif computed is None:
                    status, note = "not computed", f"the family {family!r} has no computed row here"
                else:
                    places = _decimals(float(printed[key]))
                    matched = abs(round(computed, places) - float(printed[key])) < 0.5 * 10 ** (
                        -places - 2
                    ) or (places > 6 and math.isclose(computed, printed[key], rel_tol=0.05))
                    status = "match" if matched else "differs"
                    note = (
                        ""
                        if matched
                        else FIGURE_NOTES.get(
                            (paper.key, printed["method"], key),
                            "UNEXPLAINED: no reason recorded for this gap",
                        )
                    )
                rows.append(
                    {"paper": paper.key, "method": printed["method"], "family": family, "quantity": label,
                     "printed": printed[key], "computed": computed, "status": status, "note": note,
                     "printed where": printed.get("where", "")}
                )  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=[
            "paper",
            "method",
            "family",
            "quantity",
            "printed",
            "computed",
            "status",
            "note",
            "printed where",
        ],
    )


def _scaled(value: object, scale: float) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) / scale  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# For a reader: the table as a person reads it, the Markdown report, the plot


def _fmt(value: object, spec: str, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:{spec}}{unit}"


def _bytes(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "-" if value < 0 else "+"  # type: ignore[operator]
    amount = abs(float(value))  # type: ignore[arg-type]
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= scale:
            return f"{sign}{amount / scale:.2f} {unit}"
    return f"{sign}{amount:.0f} B"


def _count(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    amount = float(value)  # type: ignore[arg-type]
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(amount) >= scale:
            return f"{amount / scale:+.3g} {unit}"
    return f"{amount:+.0f}"


def measured_text(row: dict) -> str:
    """The measured overhead with its interval and pair count, as one cell."""
    value = row.get("measured_pct")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    low, high = row.get("ci_low"), row.get("ci_high")
    interval = "CI n/a" if low is None or math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"
    return f"{value:+.2f} {interval} ({int(row['pairs'])} pairs)"


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a person reads it: deltas in units people read, overheads in percent."""
    rows = []
    for row in table.to_dict(orient="records"):
        rows.append(
            {
                "family": row["family"],
                "class": row["attn_class"],
                "params +": _count(row["params_delta"]),
                "params %": _fmt(row["params_pct"], "+.2f"),
                "MACs %": _fmt(row["macs_pct"], "+.3f"),
                "bytes moved %": _fmt(row["bytes_moved_pct"], "+.2f"),
                "peak infer +": _bytes(row["peak_infer_delta"]),
                "peak train %": _fmt(row["peak_train_pct"], "+.2f"),
                "model predicts %": _fmt(row["predicted_pct"], "+.2f"),
                "measured % [95% CI]": measured_text(row),
                "reason / note": row["note"] or "",
            }
        )
    return pd.DataFrame(rows)


def csv_text(table: pd.DataFrame) -> str:
    """The table as CSV: raw integers (bytes, counts) and percent, one row per family."""
    frame = table.copy()
    for measure in MEASURES:
        for column in (measure, f"{measure}_delta"):
            frame[column] = frame[column].astype("Int64")
    frame["pairs"] = frame["pairs"].astype("Int64")
    return frame.to_csv(index=False)


_CONV_REPLACING = ("sk", "splat", "lambda", "bottleneck", "halo", "nl", "bat")


def markdown_report(
    table: pd.DataFrame,
    *,
    backbone: str,
    command: str,
    machine: dict,
    papers: Sequence[PaperTable],
    plot_name: str | None = None,
) -> str:
    """The report: setting, the table, what failed and why, the papers' printed figures beside ours."""
    versions = machine.get("versions", {})
    shape = "x".join(str(n) for n in table.attrs.get("input_shape", []))
    measured = table["measured_pct"].notna().any()
    lines = [
        f"# SE against its rivals on {backbone}: every attention family of timm's registry",
        "",
        f"Generated by `{command}`; do not edit by hand.",
        "",
        f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores"
        + (f", {machine['gpu']}" if machine.get("gpu") else "")
        + f" (machine class `{machine.get('machine_class')}`); Python {machine.get('python')}, torch "
        f"{versions.get('torch')}, timm {_timm_version()}.",
        "",
        f"Input {shape}, {table.attrs.get('dtype', 'fp32')}. Every family is "
        f"`timm.create_model('{backbone}', block_args=dict(attn_layer=NAME))` against the plain `timm:"
        + backbone
        + "` (the catalog's "
        f"`se_{backbone}` against the catalog's `{backbone}`). Counts and peaks come from the built models "
        f"(peaks tracked on {table.attrs.get('memory_device', 'meta')}, byte-identical to the CPU's figure); "
        "`model predicts` is the machine model's overhead (`analysis/roofline.py`: per op, max(MACs / rate, "
        "bytes / bandwidth) + a fixed cost; the stored model in `results/machine/`, as `senet-profile "
        "explain` reads it); `measured` is the paired, interleaved latency overhead (median of per-pair "
        "ratios) with its 95 % interval"
        + (
            f" ({table.attrs['runtime']})."
            if measured and table.attrs.get("runtime")
            else ", not measured in this run."
        ),
        "",
    ]
    if measured:
        lines += [
            "The machine is shared with other work while it times"
            + (f" (load average {table.attrs['load']})" if table.attrs.get("load") else "")
            + ": the intervals are what they are; a family with fewer than 20 pairs in its budget has no "
            "interval (CI n/a).",
            "",
        ]
    lines += ["## The table", "", shown_table(table).to_markdown(index=False, disable_numparse=True), ""]
    records = table.to_dict(orient="records")
    reasons = [
        (r, [part for part in r["note"].split("; ") if not part.startswith("95 % CI n/a")])
        for r in records
        if r["note"]
    ]
    if any(parts for _, parts in reasons):
        lines += ["## Families or columns that could not be measured, and why", ""]
        lines += [
            f"- `{r['family']}` ({r['attn_class']}): {'; '.join(parts)}" for r, parts in reasons if parts
        ]
        lines.append("")
    few = [r for r in records if "95 % CI n/a" in (r["note"] or "")]
    if few:
        listed = ", ".join(f"`{r['family']}` ({int(r['pairs'])})" for r in few)
        lines += [
            f"No interval for {len(few)} families, which timed fewer than the 20 pairs an interval needs "
            f"in their budget (pairs): {listed}. Their figure is a measurement; no interval is claimed.",
            "",
        ]
    conv = [f for f in _CONV_REPLACING if f in set(table["family"])]
    if conv:
        lines += [
            "## How to read the heavy rows",
            "",
            f"timm's registry groups {', '.join(f'`{f}`' for f in conv)} as layers that replace a network's "
            "3x3 convolutions (its comments: 'attention / attention-like modules w/ significant params ... "
            "typically replace some of the existing workhorse convs'). `block_args=dict(attn_layer=NAME)` "
            "adds them after each block's last 1x1 convolution instead, at the block's full output width, so "
            "these rows measure that added layer, not the network their papers describe (timm's "
            "`skresnet50`, `resnest50d`, `lambda_resnet50ts` and the like).",
            "",
        ]
    if plot_name:
        lines += [
            "## Overhead against added parameters",
            "",
            f"![overhead against added parameters]({plot_name})",
            "",
        ]
    shape = table.attrs.get("input_shape", [1, 3, 224, 224])
    same = [p for p in papers if p.backbone == backbone and list(shape[2:]) == [p.input_size, p.input_size]]
    if papers and not same:
        lines += [
            "## The papers beside it",
            "",
            "The papers' tables are of "
            + ", ".join(sorted({f"{p.backbone} at {p.input_size}x{p.input_size}" for p in papers}))
            + f"; this table is of {backbone} at {'x'.join(map(str, shape[2:]))}: not shown beside it.",
            "",
        ]
    lines += paper_section(table, same)
    return "\n".join(lines) + "\n"


def _timm_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("timm")
    except metadata.PackageNotFoundError:
        return "not installed"


def paper_overheads(table: pd.DataFrame, paper: PaperTable) -> pd.DataFrame:
    """Each printed row's overhead over the paper's plain row, computed from the printed figures, beside ours.

    Printed params added are the row's params less the plain row's; printed FLOPs and img/s overheads are
    percentages of the plain row's (img/s as time per image: a slowdown). Ours are ``table``'s: the
    family's params added, MACs overhead, predicted and measured overhead against the plain backbone.
    """
    base = next((row for row in paper.rows if row.get("family") == NONE), None)
    by_family = {row["family"]: row for row in table.to_dict(orient="records")}
    rows = []
    for printed in paper.rows:
        if base is None or printed is base:
            continue
        family = printed.get("family") or ""
        ours = by_family.get(family, {}) if family else {}

        def pct(key: str, *, per_item: bool = False, _row: dict = printed) -> float | None:
            plain, value = base.get(key), _row.get(key)
            if plain is None or value is None:
                return None
            return overhead_pct(1 / plain, 1 / value) if per_item else overhead_pct(plain, value)

        added = None
        if printed.get("params_m") is not None and base.get("params_m") is not None:
            places = max(_decimals(float(printed["params_m"])), _decimals(float(base["params_m"])))
            added = round(printed["params_m"] - base["params_m"], places)
        note = printed.get("no_family", "") if not family else ""
        if family and not ours:
            note = f"the family {family!r} has no computed row here"
        rows.append(
            {"method": printed["method"], "family": family, "printed_params_added_m": added,
             "params_added_m": _scaled(ours.get("params_delta"), 1e6),
             "printed_gflops_pct": pct("gflops"), "macs_pct": ours.get("macs_pct"),
             "printed_train_slowdown_pct": pct("train_fps", per_item=True),
             "printed_infer_slowdown_pct": pct("infer_fps", per_item=True),
             "predicted_pct": ours.get("predicted_pct"), "measured_pct": ours.get("measured_pct"),
             "ci_low": ours.get("ci_low"), "ci_high": ours.get("ci_high"), "pairs": ours.get("pairs"),
             "note": note}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _times(value: object, scale: float) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) * scale  # type: ignore[arg-type]


def _overheads_shown(overheads: pd.DataFrame) -> pd.DataFrame:
    timed = overheads[["printed_train_slowdown_pct", "printed_infer_slowdown_pct"]].notna().any()
    shown = []
    for row in overheads.to_dict(orient="records"):
        cells = {
            "method": row["method"],
            "family": row["family"] or "none here",
            "params added, printed": _count(_times(row["printed_params_added_m"], 1e6)),
            "params added, ours": _count(_times(row["params_added_m"], 1e6)),
            "GFLOPs %, printed": _fmt(row["printed_gflops_pct"], "+.2f"),
            "MACs %, ours": _fmt(row["macs_pct"], "+.3f"),
        }
        if timed["printed_train_slowdown_pct"]:
            cells["training slowdown %, printed"] = _fmt(row["printed_train_slowdown_pct"], "+.1f")
        if timed["printed_infer_slowdown_pct"]:
            cells["inference slowdown %, printed"] = _fmt(row["printed_infer_slowdown_pct"], "+.1f")
        cells["model predicts %, ours"] = _fmt(row["predicted_pct"], "+.2f")
        cells["measured %, ours [95% CI]"] = (
            measured_text(row) if row["family"] and row["measured_pct"] is not None else "n/a"
        )
        cells["note"] = row["note"]
        shown.append(cells)
    return pd.DataFrame(shown)


def paper_section(table: pd.DataFrame, papers: Sequence[PaperTable]) -> list[str]:
    """The papers' printed figures beside the computed ones, with citation, hardware, batch and reasons.

    Then each printed row's overhead over the paper's plain row (from the printed figures) beside the
    computed, predicted and measured overhead of the same family here.
    """
    if not papers:
        return []
    lines = ["## The papers beside it", ""]
    figures = paper_figures(table, papers)
    for paper in papers:
        part = figures[figures["paper"] == paper.key].drop(columns=["paper"])
        notes: list[str] = []
        shown = []
        for row in part.to_dict(orient="records"):
            if row["note"] and row["note"] not in notes:
                notes.append(row["note"])
            computed = row["computed"]
            shown.append(
                {"method": row["method"], "family": row["family"] or "none here", "quantity": row["quantity"],
                 "printed": f"{row['printed']:g}",
                 "computed": "" if computed is None or math.isnan(computed) else f"{computed:.6g}",
                 "status": row["status"], "note": f"[{notes.index(row['note']) + 1}]" if row["note"] else "",
                 "printed in": row["printed where"]}
            )  # fmt: skip
        lines += [
            f"### {paper.table}",
            "",
            f"Source: {paper.citation}",
            "",
            f"Hardware: {paper.hardware}. Batch: {paper.batch}.",
            "",
            pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True),
            "",
            *[f"[{i}] {note}\n" for i, note in enumerate(notes, start=1)],
        ]
        if paper.sources:
            lines += ["Where each figure was read (the `printed in` column):", ""]
            lines += [f"- {key}: {text}" for key, text in paper.sources.items()]
            lines.append("")
        if paper.note:
            lines += [paper.note, ""]
        overheads = paper_overheads(table, paper)
        if not overheads.empty:
            base = next(row["method"] for row in paper.rows if row.get("family") == NONE)
            slowdowns = overheads[["printed_train_slowdown_pct", "printed_infer_slowdown_pct"]]
            timed = bool(slowdowns.notna().any().any())
            lines += [
                "#### The printed overheads beside ours",
                "",
                _overheads_shown(overheads).to_markdown(index=False, disable_numparse=True),
                "",
                "Printed overheads are computed here from the printed rows, each against the paper's "
                f"`{base}` row"
                + (
                    " (img/s as time per image: the plain row's img/s over the family's, less 1)"
                    if timed
                    else "; the paper's img/s are not in the data file (see the note above), so no printed "
                    "slowdown stands beside ours"
                )
                + f". Ours are the table's above: each family against the plain `timm:{paper.backbone}`. "
                "The paper's hardware and batch are named above. A paper's img/s are throughput on its GPUs; "
                "the overhead measured here is one CPU thread at batch 1, where each small op of a family "
                "pays its fixed cost: comparable in kind, not in size.",
                "",
            ]
    return lines


def overhead_figure(table: pd.DataFrame, *, title: str, caption: str):
    """Overhead (measured with its interval where timed; predicted hollow) against added parameters.

    Each family is labelled beside its point, clear of the other labels, the points, the intervals and the
    legend (``place_labels``): crowded families are stacked beside their point with a leader line.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6))
    axis = figure.subplots()
    drawn = table[table["family"] != NONE].dropna(subset=["params_delta"])
    labels: list[tuple[str, float, float, str]] = []
    marks: list[tuple[float, float, float]] = []  # (x, y low, y high): points and the lines drawn
    for index, row in enumerate(drawn.to_dict(orient="records")):
        x = max(float(row["params_delta"]), 1.0)
        colour = f"C{index % 10}"
        predicted = row["predicted_pct"]
        if not math.isnan(predicted):
            axis.scatter([x], [predicted], marker="s", facecolors="none", edgecolors=colour, s=30)
            marks.append((x, predicted, predicted))
        y = row["measured_pct"]
        if not math.isnan(y):
            low, high = row["ci_low"], row["ci_high"]
            if not math.isnan(low):
                axis.errorbar([x], [y], yerr=[[y - low], [high - y]], fmt="o", color=colour, capsize=3, ms=5)
                marks.append((x, low, high))
            else:
                axis.scatter([x], [y], marker="o", facecolors="none", edgecolors=colour, s=30)
            marks.append((x, y, y))
            if not math.isnan(predicted):  # predicted and measured of one family, joined
                axis.plot([x, x], [predicted, y], color=colour, lw=0.6, ls=":")
                marks.append((x, min(predicted, y), max(predicted, y)))
        else:
            y = predicted
        if not math.isnan(y):
            labels.append((row["family"], x, y, colour))
    axis.set_xscale("symlog", linthresh=100)
    axis.set_yscale("symlog", linthresh=10)
    axis.axhline(0, color="grey", lw=0.5)
    axis.set_xlabel("parameters added to the plain backbone (symlog)")
    axis.set_ylabel("latency overhead (%, symlog)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    handles = [
        axis.scatter(
            [], [], marker="o", color="black", label="measured, paired (95 % CI; hollow: no interval)"
        ),
        axis.scatter(
            [], [], marker="s", facecolors="none", edgecolors="black", label="machine model predicts"
        ),
    ]
    axis.legend(handles=handles, fontsize=7, loc="upper left")
    figure.text(0.01, -0.02, caption, ha="left", va="top", fontsize=7, wrap=True)
    place_labels(axis, labels, marks=marks)
    return figure


def place_labels(
    axis, labels: Sequence[tuple[str, float, float, str]], *, marks: Sequence[tuple[float, float, float]] = ()
) -> list:
    """Label each point (text, x, y, colour) beside it, clear of the others: a deterministic greedy placement.

    Labels are placed left to right; each takes the first spot of a fixed list (right, above-right,
    below-right, left, above, below, then stacked ever further above and below on the right, with a leader
    line) whose box, inside the axes, overlaps no label placed before, no mark (``marks``: x and a y range
    each, a point or a vertical line such as an interval) and not the legend. The axes' limits must be final.
    Returns the annotations.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    figure = axis.figure
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    renderer = figure.canvas.get_renderer()
    axis.autoscale_view()
    px = figure.dpi / 72  # display pixels per point
    frame = axis.get_window_extent(renderer)
    taken = []
    for x, low, high in marks:
        (x0, y0), (_, y1) = axis.transData.transform([(x, low), (x, high)])
        taken.append(Bbox.from_extents(x0 - 4 * px, min(y0, y1) - 3 * px, x0 + 4 * px, max(y0, y1) + 3 * px))
    legend = axis.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    placed = []
    for text, x, y, colour in sorted(labels, key=lambda label: (label[1], label[2], label[0])):
        x0, y0 = axis.transData.transform((x, y))
        probe = axis.text(0, 0, text, fontsize=7)
        box = probe.get_window_extent(renderer)
        probe.remove()
        w, h, gap = box.width, box.height, 5 * px
        spots = [(gap, -h / 2), (gap, gap / 2), (gap, -h - gap / 2), (-w - gap, -h / 2), (-w / 2, gap),
                 (-w / 2, -h - gap)]  # fmt: skip
        spots += [(2 * gap, -h / 2 + sign * k * (h + px)) for k in range(1, 40) for sign in (1, -1)]
        chosen = spots[0]
        for dx, dy in spots:
            spot = Bbox.from_bounds(x0 + dx, y0 + dy, w, h)
            inside = (
                frame.x0 <= spot.x0 and spot.x1 <= frame.x1 and frame.y0 <= spot.y0 and spot.y1 <= frame.y1
            )
            if inside and not any(spot.overlaps(other) for other in taken):
                chosen = (dx, dy)
                break
        dx, dy = chosen
        leader = abs(dy + h / 2) > h  # moved off its point: a line back to it
        line = {"arrowstyle": "-", "color": colour, "lw": 0.5, "shrinkA": 0, "shrinkB": 2}
        placed.append(
            axis.annotate(
                text,
                (x, y),
                xytext=(dx / px, dy / px),
                textcoords="offset points",
                ha="left",
                va="bottom",
                fontsize=7,
                color=colour,
                arrowprops=line if leader else None,
            )
        )
        taken.append(Bbox.from_bounds(x0 + dx, y0 + dy, w, h).expanded(1.0, 1.0))
    return placed
