"""The Python API: ``profile`` and ``compare`` return pandas DataFrames of metric records.

A model is a catalog argument (``"se_resnet50:r=8"``), a parsed ``ModelSpec``, or any ``torch.nn.Module``
a user built; all are counted by the same tracer, on a meta-device copy, under ``CONVENTION``.
Records keep raw integers; scaling and rounding happen only in the reporter.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pandas as pd
from torch import nn

from senet_profile.analysis.breakdown import MODULE_UNITS, OP_UNITS, module_rows, op_rows
from senet_profile.analysis.crosscheck import ToolCount, crosscheck
from senet_profile.analysis.latency import LatencyOptions, PairedLatency, measure_paired, measure_single
from senet_profile.analysis.metrics import (
    RuntimeOptions,
    check_metrics,
    interval_notes,
    latency_labels,
    latency_pair_records,
    latency_single_records,
    memory_records,
    memory_result,
)
from senet_profile.analysis.resources import check_fits
from senet_profile.analysis.static import (
    CONVENTION,
    OP_CLASSES,
    Counts,
    OpClassCounts,
    StaticProfile,
    analyze,
)
from senet_profile.catalog.registry import get_model
from senet_profile.catalog.sources import Built, build, model_failure, watch_sigint
from senet_profile.catalog.spec import ModelSpec
from senet_profile.errors import UserInputError
from senet_profile.io import MAX_INT

OURS = "senet-profile"
PROFILE_COLUMNS = ["metric", "unit", "scope", "source", "value", "ci_low", "ci_high", "samples"]
COMPARE_COLUMNS = ["metric", "unit", "scope", "source", "base", "candidate", "delta", "overhead_pct"]
COMPARE_COLUMNS += ["ci_low", "ci_high", "samples"]


@dataclass(frozen=True)
class Metric:
    """A reported quantity: its name, unit and how it is read from ``Counts``."""

    name: str
    unit: str
    read: Callable[[Counts], int]


STATIC_METRICS: tuple[Metric, ...] = (
    Metric("params", "params", lambda c: c.params),
    Metric("params_se", "params", lambda c: c.params_se),
    Metric("macs", "MACs", lambda c: c.macs),
    Metric("macs_se", "MACs", lambda c: c.macs_se),
    Metric("se_squeeze_ops", "ops", lambda c: c.se_squeeze_ops),
    Metric("se_gate_ops", "ops", lambda c: c.se_gate_ops),
    Metric("se_scale_ops", "ops", lambda c: c.se_scale_ops),
    Metric("se_other_ops", "ops", lambda c: c.se_other_ops),
    Metric("macs_and_se_ops", "ops", lambda c: c.macs_and_se_ops),
    Metric("activations", "elements", lambda c: c.activations),
    Metric("activations_se", "elements", lambda c: c.activations_se),
    Metric("bytes_moved", "bytes", lambda c: c.bytes_moved),
    Metric("bytes_moved_se", "bytes", lambda c: c.bytes_moved_se),
)
# What a per-op-class row shows (scope ``class:<op class>``).
CLASS_METRICS: tuple[tuple[str, str, str], ...] = (
    ("ops", "ops", "ops"),
    ("macs", "MACs", "macs"),
    ("bytes_moved", "bytes", "bytes_moved"),
)


@dataclass(frozen=True)
class Workload:
    """The input a model is measured on: batch, channels and spatial size."""

    batch_size: int = 1
    input_size: tuple[int, int] = (224, 224)
    in_channels: int = 3

    def __post_init__(self) -> None:
        if not _is_int(self.batch_size) or self.batch_size <= 0:
            raise UserInputError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if not _is_int(self.in_channels) or self.in_channels <= 0:
            raise UserInputError(f"in_channels must be a positive integer, got {self.in_channels!r}")
        sizes = self.input_size
        if not isinstance(sizes, tuple) or len(sizes) != 2 or not all(_is_int(n) and n > 0 for n in sizes):
            raise UserInputError(f"input size must be two positive integers (height, width), got {sizes!r}")
        for what, number in (("batch size", self.batch_size), ("in_channels", self.in_channels),
                             ("input size", max(sizes))):  # fmt: skip
            if number > MAX_INT:
                raise UserInputError(f"{what} must be at most {MAX_INT:,} (torch indexes with 32 bits), "
                                     f"got {number}")  # fmt: skip

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The input tensor's shape, batch first."""
        return (self.batch_size, self.in_channels, *self.input_size)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _attention_items(attention: object) -> tuple[tuple[str, str], ...]:
    """The user's attention classes as (class, family) pairs; UserInputError unless a mapping of text."""
    if attention is None:
        return ()
    if not isinstance(attention, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attention.items()
    ):
        raise UserInputError(
            f"attention must map class names to families, e.g. {{'MyGate': 'gate'}}, got {attention!r}"
        )
    return tuple(attention.items())


def _fenced(function: Callable[..., T]) -> Callable[..., T]:
    """An API function whose user model's own failure (in its forward) raises a UserInputError naming it."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with watch_sigint() as watch:
            try:
                return function(*args, **kwargs)
            except (KeyboardInterrupt, SystemExit, Exception) as error:
                ctrl_c = isinstance(error, KeyboardInterrupt) and watch.interrupted
                line = None if ctrl_c or isinstance(error, UserInputError) else model_failure(error)
                if line is None:
                    raise
                raise UserInputError(line) from None

    return wrapper


def input_size_of(value: object) -> tuple[int, int]:
    """An API ``input_size``: an integer N (N x N), a (height, width) pair, or text ``N``/``HxW``."""
    if isinstance(value, str):
        return parse_input_size(value)
    if _is_int(value):
        return (value, value)  # type: ignore[return-value]
    if isinstance(value, tuple | list) and len(value) == 2:
        return (value[0], value[1])  # checked by Workload
    raise UserInputError(f"input size must be N, (height, width) or 'HxW', got {value!r}")


def parse_input_size(text: str) -> tuple[int, int]:
    """``224`` or ``224x192`` (height x width) as a (height, width) pair."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise UserInputError(f"input size must be N or HxW, got {text!r}") from None
    if len(sizes) not in (1, 2) or min(sizes) <= 0 or max(sizes) > MAX_INT:
        raise UserInputError(f"input size must be N or HxW with positive sizes, got {text!r}")
    return (sizes[0], sizes[-1])


T = TypeVar("T")

Model = str | ModelSpec | nn.Module
DEFAULT_INPUT_SIZE = (224, 224)


class UncountedOpWarning(UserWarning):
    """A model ran an aten op that has no counting rule: its work is in no total."""


def _check_module(model: nn.Module) -> None:
    """Refuse a user's module that cannot be fed one image tensor."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): the trace will tell
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty]
    keyword = [
        p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is p.empty
    ]
    takes_one = any(p.kind in (*positional, inspect.Parameter.VAR_POSITIONAL) for p in parameters)
    if len(required) > 1 or keyword or not takes_one:
        needs = ", ".join(required + keyword) or "no input"
        raise UserInputError(
            f"{type(model).__name__}.forward takes ({needs}); senet-profile feeds a model one image tensor "
            "(wrap the model so that forward(x) takes one)"
        )


def check_model_argument(model: object) -> None:
    """Refuse, before any work, a model that is no model argument, spec or module taking one input."""
    if isinstance(model, nn.Module):
        _check_module(model)
    elif not isinstance(model, str | ModelSpec):
        raise UserInputError(
            f"a model is a model argument such as 'se_resnet50:r=8', a ModelSpec or a torch.nn.Module, "
            f"got {type(model).__name__} {model!r}"
        )


def check_runs(model: Model, workload: Workload) -> None:
    """Refuse a model that cannot run on ``workload`` (e.g. an input too small for its strides)."""
    built = resolve(model)
    analyze(built.module, workload.shape, name=built.name)


def resolve(model: Model, *, name: str | None = None, device: str = "meta") -> Built:
    """The built model, its display name and default input size, for any model argument or module."""
    check_model_argument(model)
    if name is not None and not isinstance(name, str):
        raise UserInputError(f"a model's name is text, got {type(name).__name__} {name!r}")
    if isinstance(model, nn.Module):
        return Built(name or type(model).__name__, model)
    if isinstance(model, ModelSpec):
        return Built(name or str(model), get_model(model, device=device))
    built = build(model, device=device)
    try:  # a forward taking two inputs (RAFT) is refused here, not mid-trace
        _check_module(built.module)
    except UserInputError as error:
        raise UserInputError(f"{built.name}: {error}") from None
    return replace(built, name=name) if name else built


def resolve_model(model: Model) -> tuple[str, nn.Module]:
    """A display name and a meta-device module for a model argument, a spec, or a user's module."""
    built = resolve(model)
    return built.name, built.module


def _static_records(result: StaticProfile, *, by_stage: bool, by_class: bool = False) -> list[dict]:
    scopes = {"model": result.total} | (result.stages if by_stage else {})
    records = [
        {"metric": m.name, "unit": m.unit, "scope": scope, "source": OURS, "value": m.read(counts)}
        for scope, counts in scopes.items()
        for m in STATIC_METRICS
    ]
    if by_class:
        records += [
            {"metric": metric, "unit": unit, "scope": f"class:{name}", "source": OURS,
             "value": getattr(counts, field)}
            for name in OP_CLASSES  # every class, so that two models' rows line up (0: no such op ran)
            for counts in [result.op_classes.get(name, OpClassCounts())]
            for metric, unit, field in CLASS_METRICS
        ]  # fmt: skip
    return records


FAMILY_METRICS: tuple[Metric, ...] = (
    Metric("params", "params", lambda c: c.params),
    Metric("macs", "MACs", lambda c: c.macs),
    Metric("activations", "elements", lambda c: c.activations),
    Metric("bytes_moved", "bytes", lambda c: c.bytes_moved),
)


def _attention_records(result: StaticProfile, families: Sequence[str] = ()) -> list[dict]:
    """Each non-SE attention family's share, scope ``attention:<family>`` (``families``: add these at 0)."""
    shares = {f: Counts() for f in families} | result.attention_counts
    return [
        {"metric": m.name, "unit": m.unit, "scope": f"attention:{family}", "source": OURS, "value": m.read(c)}
        for family, c in sorted(shares.items())
        for m in FAMILY_METRICS
    ]


def _attention_notes(result: StaticProfile) -> list[str]:
    """A note naming attention-like modules of no known family: their cost is in the totals only."""
    if not result.unrecognised_attention:
        return []
    listed = ", ".join(result.unrecognised_attention[:4])
    more = len(result.unrecognised_attention) - 4
    listed += f" and {more} more" if more > 0 else ""
    return [
        f"{result.name}: {listed} look like attention layers of no known family: counted in the totals, "
        "not as attention (name their class with --attention CLASS=FAMILY)"
    ]


def crosscheck_records(model: nn.Module, result: StaticProfile) -> tuple[list[dict], list[str]]:
    """MACs from fvcore, ptflops (both backends) and torch's counter, with why each differs from ours."""
    records, notes = [], []
    for count in crosscheck(model, result.input_shape):
        records.append(
            {"metric": "macs", "unit": "MACs", "scope": "model", "source": count.tool, "value": count.macs}
        )
        notes.append(f"{result.name}: {explain_tool(count, result.total.macs)}")
    return records, notes


def explain_tool(count: ToolCount, ours: int) -> str:
    """One line: how a tool's total differs from ours, what it adds and what it skips."""
    if count.macs is None:
        return f"{count.tool} failed: {count.error}"
    parts = [f"{count.tool} {count.macs - ours:+,} MACs vs ours"]
    if count.extra:
        parts.append(f"counts besides conv/linear: {', '.join(count.extra)}")
    if count.skipped:
        parts.append(f"skips: {', '.join(count.skipped)}")
    return "; ".join(parts)


NUMERIC_COLUMNS = ("value", "base", "candidate", "delta", "overhead_pct", "ci_low", "ci_high", "samples")


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric dtypes for the number columns: int64 where every value is an integer, else float64."""
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column])
    return frame


def _frame(records: Sequence[dict], columns: list[str], profiles: Sequence[StaticProfile]) -> pd.DataFrame:
    frame = _numeric(pd.DataFrame(list(records), columns=columns, dtype=object))
    frame.attrs["convention"] = CONVENTION
    frame.attrs["models"] = [p.name for p in profiles]
    frame.attrs["input_shape"] = list(profiles[0].input_shape)
    frame.attrs["unknown_ops"] = {p.name: p.unknown_ops for p in profiles}
    frame.attrs["uncalled_modules"] = {p.name: list(p.uncalled_modules) for p in profiles}
    frame.attrs["notes"] = []
    return frame


@dataclass(frozen=True, kw_only=True)
class Request:
    """What to measure: the metric groups, the workload, and how runtime metrics are taken."""

    metrics: tuple[str, ...] = ("static",)
    workload: Workload = field(default_factory=Workload)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    by_stage: bool = False
    by_class: bool = False
    crosscheck: bool = False
    attention: tuple[tuple[str, str], ...] = ()  # the user's attention classes: (class, family)

    def __post_init__(self) -> None:
        for name in ("by_stage", "by_class", "crosscheck"):
            if not isinstance(getattr(self, name), bool):
                raise UserInputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.runtime, RuntimeOptions):
            raise UserInputError(f"runtime must be a RuntimeOptions, got {type(self.runtime).__name__}")
        object.__setattr__(self, "metrics", check_metrics(self.metrics))
        self.runtime.check_for(self.metrics)

    def check_model(self, model: Model) -> None:
        """Refuse a user's module that cannot run this request: data on the meta device, asked to run."""
        runs = {"memory", "latency"} & set(self.metrics) and self.runtime.device != "meta"
        if runs and isinstance(model, nn.Module) and _on_meta(model):
            raise UserInputError(
                f"{type(model).__name__} lives on the meta device (no data), so its "
                f"{' and '.join(sorted({'memory', 'latency'} & set(self.metrics)))} cannot be measured on "
                f"{self.runtime.device}; build it on the CPU, or ask for memory with device='meta'"
            )


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers()))


@dataclass
class _Measured:
    """One model as measured for a request: its static profile, records, notes and the built module."""

    result: StaticProfile
    module: nn.Module
    records: list[dict]
    notes: list[str]


def _built(model: Model, device: str) -> nn.Module:
    """A module to run: a model argument built on ``device`` (CPU for CUDA: the timers move a copy)."""
    if isinstance(model, nn.Module):
        return model
    return resolve(model, device="meta" if device == "meta" else "cpu").module


def _warn_uncounted(result: StaticProfile) -> None:
    """One warning per op with no counting rule (Python shows each distinct message once)."""
    for op, calls in sorted(result.unknown_ops.items()):
        warnings.warn(
            f"aten.{op} has no counting rule: its work is in no total ({calls} calls in {result.name})",
            UncountedOpWarning,
            stacklevel=4,
        )


def _measure(model: Model, request: Request, built: Built) -> _Measured:
    meta_module = built.module
    result = analyze(meta_module, request.workload.shape, name=built.name, attention=dict(request.attention))
    _warn_uncounted(result)
    records = (
        _static_records(result, by_stage=request.by_stage, by_class=request.by_class)
        + _attention_records(result)
        if "static" in request.metrics
        else []
    )
    notes: list[str] = _attention_notes(result)
    if request.crosscheck:
        extra, tool_notes = crosscheck_records(meta_module, result)
        records += extra
        notes += tool_notes
    runtime_module = meta_module
    runtime = request.runtime
    on_cpu = {"memory": runtime.memory_device == "cpu", "latency": runtime.latency_device == "cpu"}
    if any(on_cpu[group] for group in on_cpu if group in request.metrics) and _on_meta(meta_module):
        check_fits(meta_module, request.workload.shape, mode=runtime.mode, dtype=runtime.torch_dtype)
    if "memory" in request.metrics:
        memory_module = _built(model, request.runtime.memory_device)
        records += memory_records(memory_result(memory_module, request.workload.shape, request.runtime))
    if "latency" in request.metrics:
        runtime_module = _built(model, request.runtime.latency_device)
    return _Measured(result, runtime_module, records, notes)


def _memory_note(names: Sequence[str], request: Request) -> str:
    """What the memory rows mean, and the command that explains them tensor by tensor."""
    command = " ".join(["senet-profile explain-memory", *names[-2:], f"--mode {request.runtime.mode}"])
    return (
        f"memory_peak_se is what SE adds to the peak (the peak less the same model's peak with its SE "
        f"modules taken out), memory on {request.runtime.memory_device}; tensor by tensor: {command}"
    )


def _latency_options(request: Request) -> LatencyOptions:
    return request.runtime.latency(
        batch_size=request.workload.batch_size, input_size=request.workload.input_size
    )


def _frame_for(records: list[dict], columns: list[str], measured: Sequence[_Measured], request: Request):
    frame = _frame(records, columns, [m.result for m in measured])
    frame.attrs["notes"] = [note for m in measured for note in m.notes]
    frame.attrs["metrics"] = list(request.metrics)
    runtime = set(request.metrics) - {"static"}
    frame.attrs["runtime"] = request.runtime.describe(request.metrics) if runtime else ""
    frame.attrs["interval_na"] = {}
    return frame


def _input_size(given: tuple[int, int] | None, built: Sequence[Built]) -> tuple[tuple[int, int], list[str]]:
    """The input size: the one given, else the first model's default (a timm model's), else 224x224."""
    if given is not None:
        return given, []
    defaults = [b.input_size for b in built if b.input_size is not None]
    chosen = defaults[0] if defaults else DEFAULT_INPUT_SIZE
    others = [
        f"{b.name} {b.input_size[0]}x{b.input_size[1]}" for b in built if b.input_size not in (None, chosen)
    ]
    notes = (
        [f"input {chosen[0]}x{chosen[1]} for all models; their own defaults: {', '.join(others)}"]
        if others
        else []
    )
    return chosen, notes


def _processes_note(ran: int, asked: int) -> str:
    """What the latency interval covers, given how many worker processes took samples."""
    if ran == 1 and asked == 1:
        return "the latency interval is of one process's samples: a run in a new process may differ by more"
    if ran < asked:
        return (
            f"the latency budget let {ran} of the {asked} worker processes asked for take samples; the "
            "interval pools those" + (" (one process: a new process may differ by more)" if ran == 1 else "")
        )
    return f"the latency interval pools {ran} fresh processes (bootstrap over processes, then samples)"


@_fenced
def profile(
    model: Model,
    *,
    name: str | None = None,
    batch_size: int = 1,
    input_size: int | tuple[int, int] | str | None = None,
    in_channels: int = 3,
    by_stage: bool = False,
    by_class: bool = False,
    crosscheck: bool = False,
    metrics: tuple[str, ...] = ("static",),
    runtime: RuntimeOptions | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One model's metrics as records: metric, unit, scope, source, value (ci_low, ci_high, samples).

    ``input_size`` defaults to the model's own (a timm model's ``pretrained_cfg``), else 224x224;
    ``name`` labels the model (default: the model argument, or the module's class name); ``attention``
    maps the user's own attention classes to a family (``{"MyGate": "gate"}``; family ``se`` counts as SE).
    """
    built = resolve(model, name=name)
    size, _ = _input_size(None if input_size is None else input_size_of(input_size), [built])
    request = Request(
        metrics=metrics,
        workload=Workload(batch_size, size, in_channels),
        runtime=RuntimeOptions() if runtime is None else runtime,
        by_stage=by_stage,
        by_class=by_class,
        crosscheck=crosscheck,
        attention=_attention_items(attention),
    )
    request.check_model(model)
    measured = _measure(model, request, built)
    records = list(measured.records)
    reason = ""
    if "memory" in request.metrics:
        measured.notes.append(_memory_note([measured.result.name], request))
    if "latency" in request.metrics:
        stats = measure_single(measured.module, _latency_options(request))
        records += latency_single_records(stats)
        reason = stats.interval().reason
        measured.notes += interval_notes("latency", reason)
        measured.notes.append(_processes_note(max(1, len(stats.process_sizes)), request.runtime.processes))
    frame = _frame_for(records, PROFILE_COLUMNS, [measured], request)
    frame.attrs["interval_na"] = {"latency": reason} if reason else {}
    return frame


def overhead_pct(base: float, candidate: float) -> float | None:
    """(candidate - base) / base in percent; None when base is 0."""
    return None if base == 0 else (candidate - base) / base * 100.0


def pair_records(base: Sequence[dict], candidate: Sequence[dict]) -> list[dict]:
    """Join two lists of profile records on (metric, scope, source) into compare records."""
    key = ("metric", "scope", "source")
    others = {tuple(r[k] for k in key): r for r in candidate}
    records = []
    for record in base:
        match = others.get(tuple(record[k] for k in key))
        if match is None:
            continue
        b, c = record["value"], match["value"]
        delta = None if b is None or c is None else c - b
        pct = None if delta is None else overhead_pct(b, c)
        names = {k: record[k] for k in ("metric", "unit", "scope", "source")}
        records.append({**names, "base": b, "candidate": c, "delta": delta, "overhead_pct": pct})
    return records


def _labelled(base: Built, candidate: Built) -> tuple[Built, Built]:
    """Two models shown under the same name (two modules of one class) get (base)/(candidate) added."""
    if base.name != candidate.name:
        return base, candidate
    return replace(base, name=f"{base.name} (base)"), replace(candidate, name=f"{candidate.name} (candidate)")


@_fenced
def compare(
    base: Model,
    candidate: Model,
    *,
    names: tuple[str | None, str | None] = (None, None),
    batch_size: int = 1,
    input_size: int | tuple[int, int] | str | None = None,
    in_channels: int = 3,
    by_stage: bool = False,
    by_class: bool = False,
    crosscheck: bool = False,
    metrics: tuple[str, ...] = ("static",),
    runtime: RuntimeOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """What ``candidate`` costs over ``base``: metric, unit, scope, base, candidate, delta, overhead_pct.

    ``names`` labels the two models; ``input_size`` defaults to the base's own (see ``profile``).
    """
    if not isinstance(names, tuple | list) or len(names) != 2:
        raise UserInputError(f"names is a pair (base name, candidate name), got {names!r}")
    if progress is not None and not callable(progress):
        raise UserInputError(f"progress must be a callable or None, got {type(progress).__name__}")
    for model in (base, candidate):
        check_model_argument(model)
    built = _labelled(*(resolve(m, name=n) for m, n in zip((base, candidate), names, strict=True)))
    size, size_notes = _input_size(None if input_size is None else input_size_of(input_size), built)
    request = Request(
        metrics=metrics,
        workload=Workload(batch_size, size, in_channels),
        runtime=RuntimeOptions() if runtime is None else runtime,
        by_stage=by_stage,
        by_class=by_class,
        crosscheck=crosscheck,
        attention=_attention_items(attention),
    )
    for model in (base, candidate):
        request.check_model(model)
    sides = [_measure(m, request, b) for m, b in zip((base, candidate), built, strict=True)]
    sides[0].notes.extend(size_notes)
    if "static" in request.metrics:  # a family on one side only: the other side's share is 0
        families = sorted({f for side in sides for f in side.result.attention_counts})
        for side in sides:
            side.records = [r for r in side.records if not r["scope"].startswith("attention:")]
            side.records += _attention_records(side.result, families)
    records = pair_records(sides[0].records, sides[1].records)
    paired = None
    if "memory" in request.metrics:
        sides[0].notes.append(_memory_note([side.result.name for side in sides], request))
    if "latency" in request.metrics:
        paired = measure_paired(
            sides[0].module, sides[1].module, _latency_options(request), progress=progress
        )
        records += latency_pair_records(paired)
        sides[0].notes += _latency_notes(paired, request)
    frame = _frame_for(records, COMPARE_COLUMNS, sides, request)
    if paired is not None and paired.ci_reason:
        frame.attrs["interval_na"] = {"latency_overhead": paired.ci_reason}
    return frame


def _latency_notes(paired: PairedLatency, request: Request) -> list[str]:
    """Notes on a paired latency: the two overhead definitions, the interval, the heap, noise."""
    notes = [latency_labels(), *interval_notes("latency_overhead", paired.ci_reason)]
    notes.append(_processes_note(paired.processes, request.runtime.processes))
    if paired.heap != paired.options.allocator:
        notes.append(f"the C heap could not be held {paired.options.allocator}: {paired.heap}")
    if paired.noisy:
        notes.append(
            f"latency was noisy (IQR/median above 10 % on a side, or the CI target was not reached in "
            f"{request.runtime.budget_s:g} s): read the overhead with its interval"
        )
    return notes


def side_by_side(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Several ``profile`` frames as one wide table: metric, unit, scope, source, then a column per model."""
    key = ["metric", "unit", "scope", "source"]
    wide = frames[0][key]
    for frame in frames:
        name = frame.attrs["models"][0]
        wide = wide.merge(
            frame[[*key, "value"]].rename(columns={"value": name}), on=key, how="outer", sort=False
        )
    wide.attrs = dict(frames[0].attrs)
    for field_name in ("models", "notes"):
        wide.attrs[field_name] = [item for frame in frames for item in frame.attrs[field_name]]
    for field_name in ("unknown_ops", "uncalled_modules"):
        wide.attrs[field_name] = {k: v for frame in frames for k, v in frame.attrs[field_name].items()}
    return wide


def _analyzed(
    model: Model,
    *,
    name: str | None,
    batch_size: int,
    input_size: tuple[int, int] | None,
    attention: Mapping[str, str] | None,
) -> StaticProfile:
    attention = dict(_attention_items(attention))
    Workload(batch_size)  # the batch size checked before the model is built
    built = resolve(model, name=name)
    size, _ = _input_size(None if input_size is None else input_size_of(input_size), [built])
    result = analyze(built.module, Workload(batch_size, size).shape, name=built.name, attention=attention)
    _warn_uncounted(result)
    return result


def _wide_frame(rows: list[dict], units: Mapping[str, str], result: StaticProfile) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.attrs |= {
        "convention": CONVENTION,
        "models": [result.name],
        "input_shape": list(result.input_shape),
    }
    frame.attrs |= {"unknown_ops": {result.name: result.unknown_ops}, "units": dict(units)}
    frame.attrs |= {"uncalled_modules": {result.name: list(result.uncalled_modules)}}
    frame.attrs["notes"] = _attention_notes(result)
    return frame


@_fenced
def by_module(
    model: Model,
    *,
    depth: int = 2,
    name: str | None = None,
    batch_size: int = 1,
    input_size: tuple[int, int] | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The module tree to ``depth`` levels: module (indented), path, type, attention family, params, MACs,
    activations, bytes moved, each row covering its whole subtree."""
    if not _is_int(depth) or depth < 0:
        raise UserInputError(f"depth must be an integer, 0 or more, got {depth!r}")
    result = _analyzed(model, name=name, batch_size=batch_size, input_size=input_size, attention=attention)
    return _wide_frame(module_rows(result, depth=depth), MODULE_UNITS, result)


@_fenced
def by_op(
    model: Model,
    *,
    name: str | None = None,
    batch_size: int = 1,
    input_size: tuple[int, int] | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per aten op the model ran: calls, MACs, output elements and bytes moved."""
    result = _analyzed(model, name=name, batch_size=batch_size, input_size=input_size, attention=attention)
    return _wide_frame(op_rows(result), OP_UNITS, result)
