"""The Python API: ``profile`` and ``compare`` return pandas DataFrames of metric records.

A model is a catalog argument (``"se_resnet50:r=8"``), a parsed ``ModelSpec``, or any ``torch.nn.Module``
a user built; all are counted by the same tracer, on a meta-device copy, under ``CONVENTION``.
Records keep raw integers; scaling and rounding happen only in the reporter.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from torch import nn

from senet_profile.analysis import roofline
from senet_profile.analysis.breakdown import MODULE_UNITS, OP_UNITS, module_outputs, module_rows, op_rows
from senet_profile.analysis.crosscheck import ToolCount, crosscheck
from senet_profile.analysis.latency import OURS, PairedLatency, measure_paired, measure_single
from senet_profile.analysis.memory import measure_memory
from senet_profile.analysis.metrics import (
    interval_notes,
    latency_labels,
    memory_records,
    memory_result,
)
from senet_profile.analysis.overhead import explain_time
from senet_profile.analysis.resources import check_fits
from senet_profile.analysis.roofline import MachineModel
from senet_profile.analysis.static import (
    CONVENTION,
    OP_CLASSES,
    Counts,
    OpClassCounts,
    StaticProfile,
    analyze,
)
from senet_profile.catalog.sources import Built, model_failure, watch_sigint
from senet_profile.errors import ToolBug, UserInputError
from senet_profile.measure.resolve import Model, check_model_argument, on_meta, resolve, runnable
from senet_profile.setting import (
    DEFAULT_INPUT_SIZE,
    Setting,
    check_metrics,
    input_size_of,
    is_int,
    overhead_pct,
)

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


T = TypeVar("T")


def _fenced(function: Callable[..., T]) -> Callable[..., T]:
    """An API function whose user model's own failure (in its forward) raises a UserInputError naming it;
    a Ctrl-C stays a KeyboardInterrupt, and the tool's own failures keep their traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with watch_sigint() as watch:
            try:
                return function(*args, **kwargs)
            except (KeyboardInterrupt, SystemExit, Exception) as error:
                ctrl_c = isinstance(error, KeyboardInterrupt) and watch.interrupted
                own = isinstance(error, UserInputError | ToolBug)
                line = None if ctrl_c or own else model_failure(error)
                if line is None:
                    raise
                raise UserInputError(line) from None

    return wrapper


class UncountedOpWarning(UserWarning):
    """A model ran an aten op that has no counting rule: its work is in no total."""


def check_runs(model: Model | Built, setting: Setting) -> None:
    """Refuse a model that cannot run on ``setting``'s input (e.g. an input too small for its strides)."""
    built = model if isinstance(model, Built) else resolve(model)
    analyze(built.module, setting.shape, name=built.name)


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


def _attention_shares(result: StaticProfile) -> dict[str, Counts]:
    """Scope -> share: ``attention:<family>`` per non-SE family, ``unrecognised:<Class>`` per odd class."""
    return {f"attention:{family}": c for family, c in result.attention_counts.items()} | {
        f"unrecognised:{cls}": c for cls, c in result.unrecognised_counts.items()
    }


def _attention_records(result: StaticProfile, scopes: Sequence[str] = ()) -> list[dict]:
    """Each non-SE attention family's share, and each unrecognised attention-like class's with its module
    count (so that JSON and CSV carry what the table's note says); ``scopes``: add these at 0."""
    shares = {scope: Counts() for scope in scopes} | _attention_shares(result)
    classes = [text.rpartition(" (")[2].rstrip(")") for text in result.unrecognised_attention]
    records = []
    for scope, c in sorted(shares.items()):
        if scope.startswith("unrecognised:"):
            count = classes.count(scope.partition(":")[2])
            records.append(
                {"metric": "modules", "unit": "modules", "scope": scope, "source": OURS, "value": count}
            )
        records += [
            {"metric": m.name, "unit": m.unit, "scope": scope, "source": OURS, "value": m.read(c)}
            for m in FAMILY_METRICS
        ]
    return records


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
    """What to measure: the metric groups, the setting (input size fixed), and the static options."""

    metrics: tuple[str, ...] = ("static",)
    setting: Setting = field(default_factory=Setting)
    by_stage: bool = False
    by_class: bool = False
    crosscheck: bool = False
    attention: tuple[tuple[str, str], ...] = ()  # the user's attention classes: (class, family)

    def __post_init__(self) -> None:
        for name in ("by_stage", "by_class", "crosscheck"):
            if not isinstance(getattr(self, name), bool):
                raise UserInputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.setting, Setting):
            raise UserInputError(f"setting must be a Setting, got {type(self.setting).__name__}")
        object.__setattr__(self, "metrics", check_metrics(self.metrics))
        self.setting.check_for(self.metrics)

    def check_model(self, model: Model) -> None:
        """Refuse a user's module that cannot run this request: data on the meta device, asked to run."""
        runs = {"memory", "latency"} & set(self.metrics) and self.setting.device != "meta"
        if runs and isinstance(model, nn.Module) and on_meta(model):
            raise UserInputError(
                f"{type(model).__name__} lives on the meta device (no data), so its "
                f"{' and '.join(sorted({'memory', 'latency'} & set(self.metrics)))} cannot be measured on "
                f"{self.setting.latency_device}; build it on the CPU, or ask for memory with device='meta'"
            )


@dataclass
class _Measured:
    """One model as measured for a request: its static profile, records, notes and the built module."""

    result: StaticProfile
    module: nn.Module
    records: list[dict]
    notes: list[str]


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
    setting = request.setting
    result = analyze(
        meta_module,
        setting.shape,
        name=built.name,
        attention=dict(request.attention),
        dtype=_trace_dtype(setting),
    )
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
    return _Measured(result, meta_module, records, notes)


def _measure_runtime(model: Model, request: Request, built: Built, measured: _Measured) -> None:
    """Add the runtime groups (memory, peaks) to ``measured`` and pick the module latency will time.

    Called for both models only once both have been counted, so that a model that cannot run at all is
    refused before anything runs of the other."""
    meta_module = built.module
    setting = request.setting
    records = measured.records
    runtime_module = meta_module
    on_cpu = {"memory": setting.memory_device == "cpu", "latency": setting.latency_device == "cpu"}
    if any(on_cpu[group] for group in on_cpu if group in request.metrics) and on_meta(meta_module):
        check_fits(meta_module, setting.shape, mode=setting.mode, dtype=setting.torch_dtype)
    if "memory" in request.metrics:
        memory_module = runnable(model, built, setting.memory_device)
        records += memory_records(memory_result(memory_module, setting.shape, setting))
    if "peaks" in request.metrics:
        records += _peak_records(meta_module, setting)
    if "latency" in request.metrics:
        runtime_module = runnable(model, built, setting.latency_device)
    measured.module = runtime_module


PEAK_MODES = ("infer", "train")


def _peak_records(module: nn.Module, setting: Setting) -> list[dict]:
    """Tracked peak bytes of an inference pass and of a training pass, on the meta device (no allocation;
    byte-identical to the CPU's figure)."""
    dtype = setting.torch_dtype
    records = []
    for mode in PEAK_MODES:
        try:
            peak = measure_memory(module, setting.shape, mode=mode, device="meta", dtype=dtype).peak_bytes
        except (UserInputError, ToolBug):
            raise
        except Exception as error:  # a pass the model cannot take here (batch norm on 1x1 at batch 1)
            warnings.warn(
                f"memory_peak_{mode}: the {mode} pass fails at input "
                f"{'x'.join(map(str, setting.shape))}: {type(error).__name__}: {error}",
                stacklevel=2,
            )
            peak = None
        records.append(_row(f"memory_peak_{mode}", "bytes", peak))
    return records


def _row(metric: str, unit: str, value: object) -> dict:
    return {"metric": metric, "unit": unit, "scope": "model", "source": OURS, "value": value}


def _predicted(
    sides: Sequence[_Measured], request: Request, machine: MachineModel | None, machine_path: Path | None
) -> tuple[list[dict], list[str]]:
    """The machine model's predicted latency of both sides (inference; a training pass is not priced)."""
    setting = request.setting
    if setting.mode != "infer":
        return [], ["latency_predicted: the machine model prices an inference pass; none for a training pass"]
    if machine is None:
        device, threads = setting.latency_device, setting.threads or 1
        if machine_path is None:
            machine = roofline.measure_machine(device=device, dtype=setting.dtype, threads=threads)
        else:
            machine = roofline.load_or_measure(
                machine_path, device=device, dtype=setting.dtype, threads=threads
            )
    explained = explain_time(
        (sides[0].result.name, sides[0].module), (sides[1].result.name, sides[1].module), machine=machine,
        latency=None, op_times=None, input_shape=setting.shape, require_se=False,
    )  # fmt: skip
    base, candidate = explained.base.prediction.total_s, explained.candidate.prediction.total_s
    record = {
        "metric": "latency_predicted", "unit": "s", "scope": "model", "source": "machine model",
        "base": base, "candidate": candidate, "delta": candidate - base,
        "overhead_pct": explained.predicted_pct,
    }  # fmt: skip
    gaps = {**explained.base.prediction.uncovered, **explained.candidate.prediction.uncovered}
    note = f"latency_predicted: predicted by the machine model {machine.key}, not measured"
    if gaps:
        note += f"; ops with no rule, left out of both sums: {', '.join(sorted(gaps))}"
    return [record], [note]


def _memory_note(names: Sequence[str], request: Request) -> str:
    """What the memory rows mean, and the command that explains them tensor by tensor."""
    command = " ".join(["senet-profile explain-memory", *names[-2:], f"--mode {request.setting.mode}"])
    return (
        f"memory_peak_se is what SE adds to the peak (the peak less the same model's peak with its SE "
        f"modules taken out), memory on {request.setting.memory_device}; tensor by tensor: {command}"
    )


def _frame_for(records: list[dict], columns: list[str], measured: Sequence[_Measured], request: Request):
    frame = _frame(records, columns, [m.result for m in measured])
    frame.attrs["notes"] = [note for m in measured for note in m.notes]
    frame.attrs["metrics"] = list(request.metrics)
    runtime = set(request.metrics) - {"static"}
    frame.attrs["runtime"] = request.setting.describe(request.metrics) if runtime else ""
    frame.attrs["setting"] = request.setting.as_dict()
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


def setting_of(
    setting: Setting | None,
    *,
    batch_size: int | None = None,
    input_size: int | tuple[int, int] | str | None = None,
    in_channels: int | None = None,
    budget: float | None = None,
) -> Setting:
    """The setting of an API call: ``setting`` (default ``Setting()``) with the shortcuts given applied."""
    if setting is not None and not isinstance(setting, Setting):
        raise UserInputError(f"setting must be a senet_profile.Setting, got {type(setting).__name__}")
    changes: dict[str, object] = {}
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if input_size is not None:
        changes["input_size"] = input_size_of(input_size)
    if in_channels is not None:
        changes["in_channels"] = in_channels
    if budget is not None:
        changes["budget_s"] = budget
    return (setting or Setting()).resolved(**changes)


def _request(
    metrics: tuple[str, ...],
    setting: Setting,
    by_stage: bool,
    by_class: bool,
    crosscheck: bool,
    attention: Mapping[str, str] | None,
) -> Request:
    """The request of ``profile`` and ``compare``: the groups, the setting (input size fixed), the flags."""
    return Request(
        metrics=metrics, setting=setting, by_stage=by_stage, by_class=by_class, crosscheck=crosscheck,
        attention=_attention_pairs(attention),
    )  # fmt: skip


def _check_progress(progress: object) -> None:
    if progress is not None and not callable(progress):
        raise UserInputError(f"progress must be a callable or None, got {type(progress).__name__}")


@_fenced
def profile(
    model: Model,
    *,
    name: str | None = None,
    setting: Setting | None = None,
    metrics: tuple[str, ...] | str = ("static",),
    batch_size: int | None = None,
    input_size: int | tuple[int, int] | str | None = None,
    in_channels: int | None = None,
    budget: float | None = None,
    by_stage: bool = False,
    by_class: bool = False,
    crosscheck: bool = False,
    attention: Mapping[str, str] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> pd.DataFrame:
    """One model's metrics as records: metric, unit, scope, source, value (ci_low, ci_high, samples).

    ``setting`` says where and how (``Setting``); ``batch_size``, ``input_size``, ``in_channels`` and
    ``budget`` (latency seconds) are shortcuts that override it. ``input_size`` defaults to the model's own
    (a timm model's ``pretrained_cfg``), else 224x224; ``name`` labels the model (default: the model
    argument, or the module's class name); ``attention`` maps the user's own attention classes to a family
    (``{"MyGate": "gate"}``; family ``se`` counts as SE); ``progress(pairs, halfwidth_pp)`` is called
    while latency is timed.
    """
    chosen = setting_of(
        setting, batch_size=batch_size, input_size=input_size, in_channels=in_channels, budget=budget
    )
    _check_progress(progress)
    groups = check_metrics(metrics)
    if "predicted" in groups:
        raise UserInputError("predicted compares two models' times: use compare, or explain for one pair")
    built = resolve(model, name=name)
    size, _ = _input_size(chosen.input_size, [built])
    request = _request(groups, chosen.resolved(input_size=size), by_stage, by_class, crosscheck, attention)
    request.check_model(model)
    measured = _measure(model, request, built)
    _measure_runtime(model, request, built, measured)
    records = list(measured.records)
    reason = ""
    if "memory" in request.metrics:
        measured.notes.append(_memory_note([measured.result.name], request))
    if "latency" in request.metrics:
        timing = request.setting.for_latency()
        stats = measure_single(measured.module, timing)
        records += stats.to_records(batch_size=timing.batch_size)
        reason = stats.interval().reason
        measured.notes += interval_notes("latency", reason)
        measured.notes.append(_processes_note(max(1, len(stats.process_sizes)), timing.worker_processes))
    frame = _frame_for(records, PROFILE_COLUMNS, [measured], request)
    frame.attrs["interval_na"] = {"latency": reason} if reason else {}
    return frame


@_fenced
def time_pair(
    base: Model,
    candidate: Model,
    *,
    setting: Setting | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> PairedLatency:
    """The paired, interleaved latency of ``candidate`` against ``base`` in ``setting`` (the result type
    behind ``compare``'s latency rows, for the bench and sweeps); models built with weights on the CPU."""
    chosen = setting_of(setting)
    _check_progress(progress)
    chosen.check_for(("latency",))
    built = [resolve(m) for m in (base, candidate)]
    size, _ = _input_size(chosen.input_size, built)
    timing = chosen.resolved(input_size=size).for_latency()
    modules = [runnable(m, b, timing.latency_device) for m, b in zip((base, candidate), built, strict=True)]
    return measure_paired(modules[0], modules[1], timing, progress=progress)


def _attention_pairs(attention: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if attention is None:
        return ()
    if not isinstance(attention, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attention.items()
    ):
        raise UserInputError(
            f"attention must map class names to families, e.g. {{'MyGate': 'gate'}}, got {attention!r}"
        )
    return tuple(attention.items())


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
    setting: Setting | None = None,
    metrics: tuple[str, ...] | str = ("static",),
    batch_size: int | None = None,
    input_size: int | tuple[int, int] | str | None = None,
    in_channels: int | None = None,
    budget: float | None = None,
    by_stage: bool = False,
    by_class: bool = False,
    crosscheck: bool = False,
    attention: Mapping[str, str] | None = None,
    progress: Callable[[int, float], None] | None = None,
    machine: MachineModel | None = None,
    machine_path: Path | None = None,
) -> pd.DataFrame:
    """What ``candidate`` costs over ``base``: metric, unit, scope, base, candidate, delta, overhead_pct.

    ``names`` labels the two models; ``input_size`` defaults to the base's own; the rest as ``profile``.
    Metric group ``predicted`` prices both with the machine model: ``machine`` when given, else the one
    stored at ``machine_path`` (measured there once when missing), else one measured for this call.
    """
    if not isinstance(names, tuple | list) or len(names) != 2:
        raise UserInputError(f"names is a pair (base name, candidate name), got {names!r}")
    chosen = setting_of(
        setting, batch_size=batch_size, input_size=input_size, in_channels=in_channels, budget=budget
    )
    _check_progress(progress)
    for model in (base, candidate):
        check_model_argument(model)
    built = _labelled(*(resolve(m, name=n) for m, n in zip((base, candidate), names, strict=True)))
    size, size_notes = _input_size(chosen.input_size, built)
    request = _request(
        check_metrics(metrics), chosen.resolved(input_size=size), by_stage, by_class, crosscheck, attention
    )
    for model in (base, candidate):
        request.check_model(model)
    sides = [_measure(m, request, b) for m, b in zip((base, candidate), built, strict=True)]
    for side, model, plan in zip(sides, (base, candidate), built, strict=True):
        _measure_runtime(model, request, plan, side)
    sides[0].notes.extend(size_notes)
    if "static" in request.metrics:  # a family on one side only: the other side's share is 0
        scopes = sorted({scope for side in sides for scope in _attention_shares(side.result)})
        for side in sides:
            side.records = [
                r for r in side.records if not r["scope"].startswith(("attention:", "unrecognised:"))
            ]
            side.records += _attention_records(side.result, scopes)
    records = pair_records(sides[0].records, sides[1].records)
    if "predicted" in request.metrics:
        predicted, notes = _predicted(sides, request, machine, machine_path)
        records += predicted
        sides[0].notes += notes
    paired = None
    if "memory" in request.metrics:
        sides[0].notes.append(_memory_note([side.result.name for side in sides], request))
    if "latency" in request.metrics:
        paired = measure_paired(
            sides[0].module, sides[1].module, request.setting.for_latency(), progress=progress
        )
        records += paired.to_records(batch_size=paired.options.batch_size)
        sides[0].notes += latency_notes(paired)
    frame = _frame_for(records, COMPARE_COLUMNS, sides, request)
    if paired is not None and paired.precision:  # the math as the timing read it from torch
        frame.attrs["runtime"] = request.setting.describe(request.metrics, precision=paired.precision)
    if paired is not None and paired.ci_reason:
        frame.attrs["interval_na"] = {"latency_overhead": paired.ci_reason}
    return frame


def latency_notes(paired: PairedLatency) -> list[str]:
    """Notes on a paired latency: the two overhead definitions, the interval, the heap, noise."""
    notes = [latency_labels(), *interval_notes("latency_overhead", paired.ci_reason)]
    notes.append(_processes_note(paired.processes, paired.options.worker_processes))
    if paired.heap != paired.options.allocator:
        notes.append(f"the C heap could not be held {paired.options.allocator}: {paired.heap}")
    if paired.noisy:
        notes.append(
            f"latency was noisy (IQR/median above 10 % on a side, or the CI target was not reached in "
            f"{paired.options.budget_s:g} s): read the overhead with its interval"
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
    # Rows in the order the models gave them (an outer merge sorts its keys), numbers in the row's unit.
    order = {
        k: i for i, k in enumerate(dict.fromkeys(r for f in frames for r in f[key].itertuples(index=False)))
    }
    wide = wide.iloc[sorted(range(len(wide)), key=lambda i: order[tuple(wide[key].iloc[i])])]
    wide = wide.reset_index(drop=True)
    wide.attrs = dict(frames[0].attrs)
    wide.attrs["value_columns"] = [f.attrs["models"][0] for f in frames]
    for field_name in ("models", "notes"):
        wide.attrs[field_name] = [item for frame in frames for item in frame.attrs[field_name]]
    for field_name in ("unknown_ops", "uncalled_modules"):
        wide.attrs[field_name] = {k: v for frame in frames for k, v in frame.attrs[field_name].items()}
    return wide


def _analyzed(built: Built, *, setting: Setting, attention: Mapping[str, str] | None) -> StaticProfile:
    size, _ = _input_size(setting.input_size, [built])
    shape = setting.resolved(input_size=size).shape
    pairs = dict(_attention_pairs(attention))
    result = analyze(built.module, shape, name=built.name, attention=pairs, dtype=_trace_dtype(setting))
    _warn_uncounted(result)
    return result


def _trace_dtype(setting: Setting):
    """The dtype a static trace casts to: None for fp32 (the model's own), else the setting's."""
    return None if setting.dtype == "fp32" else setting.torch_dtype


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
    setting: Setting | None = None,
    batch_size: int | None = None,
    input_size: int | tuple[int, int] | str | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The module tree to ``depth`` levels: module (indented), path, type, attention family, params, MACs,
    activations, bytes moved, each row covering its whole subtree."""
    if not is_int(depth) or depth < 0:
        raise UserInputError(f"depth must be an integer 0 or more, got {depth!r}")
    chosen = setting_of(setting, batch_size=batch_size, input_size=input_size)
    built = resolve(model, name=name)  # on meta: the tree's output shapes come from one more forward there
    result = _analyzed(built, setting=chosen, attention=attention)
    outputs = module_outputs(built.module, result.input_shape)
    return _wide_frame(module_rows(result, depth=depth, outputs=outputs), MODULE_UNITS, result)


@_fenced
def by_op(
    model: Model,
    *,
    name: str | None = None,
    setting: Setting | None = None,
    batch_size: int | None = None,
    input_size: int | tuple[int, int] | str | None = None,
    attention: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per aten op the model ran: calls, MACs, output elements and bytes moved."""
    chosen = setting_of(setting, batch_size=batch_size, input_size=input_size)
    result = _analyzed(resolve(model, name=name), setting=chosen, attention=attention)
    return _wide_frame(op_rows(result), OP_UNITS, result)
