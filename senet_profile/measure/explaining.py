"""Explanations as results: where an SE model's extra time goes (``explain``), and its extra memory
(``explain_memory``), each resolved, checked and measured here, rendered by the reporter.

Both take the same ``Setting`` as every other measurement. ``explain`` reads its machine model from a file
(the command line passes the results folder's one for this machine class; ``remeasure`` measures it
again), or measures one for the call when no file is named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from senet_profile.analysis import roofline
from senet_profile.analysis.explain import MemoryReport, memory_report, to_markdown
from senet_profile.analysis.metrics import MemoryResult, memory_result
from senet_profile.analysis.overhead import TimeExplanation, explain_time, verdicts
from senet_profile.analysis.resources import check_fits
from senet_profile.errors import UserInputError
from senet_profile.measure.core import _fenced, _input_size, check_runs
from senet_profile.measure.resolve import Model, resolve
from senet_profile.setting import Setting, cuda_available

TIMED_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Explanation:
    """Where the candidate's extra time goes: the analysis, the machine model and the setting it ran in."""

    time: TimeExplanation
    machine: roofline.MachineModel
    setting: Setting

    @property
    def names(self) -> tuple[str, str]:
        """The base's and the candidate's display names."""
        return (self.time.base.name, self.time.candidate.name)

    def verdicts(self) -> list[dict]:
        """The verdict lines as records (FLOPs, machine model, measured, shares, prediction error)."""
        return verdicts(self.time)

    def describe_setting(self) -> str:
        """The setting in one line, as captions and reports show it."""
        s = self.setting
        size = s.size
        layout = ", channels-last" * s.channels_last + (f", math {s.math}" if s.math != "default" else "")
        return (
            f"{s.latency_device}, {s.mode}, batch {s.batch_size}, {s.dtype}{layout}, threads={s.threads}, "
            f"input {size[0]}x{size[1]}"
        )

    def to_frame(self) -> pd.DataFrame:
        """The per-op-class table (raw seconds and points), the verdicts below it as rows."""
        return pd.concat([self.time.table, pd.DataFrame(self.verdicts())], ignore_index=True)

    def to_records(self) -> dict[str, Any]:
        """Everything as one JSON-ready record: names, setting, machine model key, table, verdicts."""
        sides = (self.time.base, self.time.candidate)
        paired = self.time.paired
        return {
            "base": self.time.base.name,
            "candidate": self.time.candidate.name,
            "setting": self.describe_setting(),
            "setting_fields": self.setting.as_dict(),
            "machine_model": self.machine.key,
            "op_classes": json.loads(self.time.table.to_json(orient="records")),
            "verdicts": self.verdicts(),
            "op_times": {side.name: _op_time_summary(side.op_times) for side in sides if side.op_times},
            "paired": None if paired is None else paired.summary(),
        }


def _op_time_summary(times: Any) -> dict:
    """Seconds of a side's op-timed forward: ops' sum, wall, bare wall, what no op holds, attribution cost."""
    return {
        "ops_s": times.ops_s, "wall_s": times.wall_s, "bare_wall_s": times.bare_wall_s,
        "unattributed_s": times.unattributed_s, "attribution_cost_pct": times.attribution_cost_pct,
        "se_share_pct": times.se_share_pct, "se_share_ci": list(times.se_share_ci), "repeats": times.repeats,
    }  # fmt: skip


def check_explain_setting(setting: Setting, *, measure: bool = True, stored_only: bool = False) -> None:
    """Refuse, before any work, a setting ``explain`` cannot time (or, predicting only, cannot price)."""
    if setting.latency_device not in TIMED_DEVICES:
        raise UserInputError(f"explain times models: use --device cpu or cuda, not {setting.device!r}")
    if setting.mode != "infer" and measure:
        raise UserInputError("explain measures inference only; use --no-measure to predict a training pass")
    if measure or not (stored_only or setting.latency_device == "cuda"):
        setting.check_for(("latency",))  # a stored model (another machine's, a GPU's) needs no device here


def machine_model(
    setting: Setting, *, path: Path | None = None, remeasure: bool = False, stored_only: bool = False
) -> roofline.MachineModel:
    """The machine model for ``setting``: read from ``path`` (measured and stored when absent or stale,
    or when ``remeasure``), or measured for this call when no path is given.

    ``stored_only`` (another machine class's file, or CUDA with no GPU here) refuses in one line when the
    file holds none for the setting; a GPU model is filed with threads=1 (host threads do not time kernels).
    Only the default layout and math are measured here; others must be stored (derived on their machine).
    """
    device = setting.latency_device
    threads = 1 if device == "cuda" else setting.threads or 1
    key = roofline.setting_key(
        device, setting.dtype, threads, channels_last=setting.channels_last, math=setting.math
    )
    if stored_only or (device == "cuda" and not cuda_available()):
        machine = None if remeasure or path is None else roofline.load(path, key)
        if machine is None:
            raise UserInputError(f"no machine model for {key!r} in {path}; measure one on that machine")
        return machine
    if setting.channels_last or setting.math != "default":
        raise UserInputError(f"no machine model for {key!r}: only the default layout and math are measured")
    if path is None:
        return roofline.measure_machine(device=device, dtype=setting.dtype, threads=threads)
    return roofline.load_or_measure(
        path, device=device, dtype=setting.dtype, threads=threads, remeasure=remeasure
    )


@_fenced
def explain(
    base: Model,
    candidate: Model,
    *,
    setting: Setting | None = None,
    measure: bool = True,
    machine_path: Path | None = None,
    machine: roofline.MachineModel | None = None,
    remeasure_machine: bool = False,
    stored_machine_only: bool = False,
    compiled: bool = False,
    progress: Callable[[int, float], None] | None = None,
) -> Explanation:
    """Why ``candidate`` takes longer than ``base``: MACs, bytes, predicted and measured time per op class.

    ``setting`` (default ``Setting()``: CPU, batch 1, one thread) says where and how; its ``budget_s`` is the
    paired latency's budget and ``repeats`` the op-timed forwards. ``measure=False`` predicts only. The
    machine model is ``machine`` when given, else read from ``machine_path`` (measured and stored there when
    missing), else measured for the call. Every model source works (catalog, ``timm:``, ``torchvision:``,
    functions, modules). ``compiled`` also measures the paired overhead under ``torch.compile``;
    ``stored_machine_only`` reads the machine model from ``machine_path`` without measuring one (another
    machine class's, e.g. a GPU's derived from its traces).
    """
    chosen = setting or Setting()
    if not isinstance(chosen, Setting):
        raise UserInputError(f"setting must be a senet_profile.Setting, got {type(chosen).__name__}")
    check_explain_setting(chosen, measure=measure, stored_only=stored_machine_only or machine is not None)
    if compiled and not measure:
        raise UserInputError("--compiled measures; it cannot be combined with --no-measure")
    planned = [resolve(m) for m in (base, candidate)]
    size, _ = _input_size(chosen.input_size, planned)
    chosen = chosen.resolved(input_size=size, device=chosen.latency_device)
    for plan in planned:
        check_runs(plan, chosen)  # an input too small is refused before anything is measured
    if machine is None:
        machine = machine_model(
            chosen, path=machine_path, remeasure=remeasure_machine, stored_only=stored_machine_only
        )
    # timed models are built on the CPU with weights; the timers move copies to the device
    models = [resolve(m, device="cpu") for m in (base, candidate)] if measure else planned
    sides = [(b.name, b.module) for b in models]
    time_explanation = explain_time(
        sides[0],
        sides[1],
        machine=machine,
        latency=chosen.for_latency() if measure else None,
        op_times=chosen if measure else None,
        input_shape=chosen.shape,
        progress=progress,
        mode=chosen.mode,
        compiled=chosen.for_latency() if compiled and measure else None,
    )
    return Explanation(time=time_explanation, machine=machine, setting=chosen)


@dataclass(frozen=True)
class MemoryExplanation:
    """Why the candidate's peak memory differs from the base's: both passes and the tensors behind it."""

    names: tuple[str, str]
    base: MemoryResult
    candidate: MemoryResult
    report: MemoryReport
    setting: Setting

    def to_markdown(self) -> str:
        """The report as Markdown."""
        shape = "x".join(map(str, self.setting.shape))
        title = (
            f"Memory: {self.names[1]} over {self.names[0]}, {self.setting.mode}, input {shape}, "
            f"{self.setting.memory_device}"
        )
        return to_markdown(self.report, title=title)


@_fenced
def explain_memory(base: Model, candidate: Model, *, setting: Setting | None = None) -> MemoryExplanation:
    """The tensors live at each model's peak, SE's part of them (``setting``: default training, batch 8)."""
    chosen = setting or Setting(mode="train", batch_size=8)
    if not isinstance(chosen, Setting):
        raise UserInputError(f"setting must be a senet_profile.Setting, got {type(chosen).__name__}")
    chosen.check_for(("memory",))
    planned = [resolve(m) for m in (base, candidate)]  # on meta: no data yet
    size, _ = _input_size(chosen.input_size, planned)
    chosen = chosen.resolved(input_size=size)
    for plan in planned:
        check_runs(plan, chosen)  # an input too small is refused as `profile` does
        if chosen.memory_device == "cpu":
            check_fits(plan.module, chosen.shape, mode=chosen.mode, dtype=chosen.torch_dtype)
    where = "meta" if chosen.memory_device == "meta" else "cpu"
    built = planned if where == "meta" else [resolve(m, device="cpu") for m in (base, candidate)]
    base_result, candidate_result = (memory_result(b.module, chosen.shape, chosen) for b in built)
    names = (built[0].name, built[1].name)
    report = memory_report(names, base_result.profile, candidate_result.profile, candidate_result.without_se)
    return MemoryExplanation(names, base_result, candidate_result, report, chosen)
