"""Why an SE model needs more memory: its extra peak, tensor by tensor, in terms of its SE blocks.

In a training pass the peak comes when the forward is done and backward begins, so what a model adds to it
is mostly what it saves for backward. An SE block saves, per image: the input ``x`` of its final
``x * weights`` (the full C x H x W map, which an SE-free block does not keep: there the addition that
follows saves nothing), the pooled vector fed to the first FC, the ReLU's output, and the gate's output.
The explanation lists each of those tensors, groups them by kind, and reconciles their sum with the
measured difference of the two peaks; whatever is left is shown, not hidden.

For any pass (inference too) ``explain_peaks`` compares the storages live at each model's peak: two
storages match when they have the same shape and bytes, whichever op or module made them (the two peaks may
fall at different points of the pass, and the models may come from different code); each model's unmatched
storages are listed with the module and op that allocated them, and their sums reconcile the peak
difference exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from senet_profile.analysis.memory import LiveTensor, MemoryProfile

# (op that saved it, last part of the module that saved it) -> what the tensor is.
KINDS: dict[tuple[str, str], str] = {
    ("mul", ""): "block input x, kept by x * weights",
    ("conv2d", "fc1"): "pooled vector, input of the first FC",
    ("relu", "relu"): "ReLU output between the FCs (input of the second FC)",
    ("conv2d", "fc2"): "ReLU output, input of the second FC",
    ("sigmoid", "gate"): "gate output (weights), kept by the gate and by x * weights",
    ("hardsigmoid", "gate"): "gate output (weights)",
    ("tanh", "gate"): "gate output (weights)",
}


@dataclass(frozen=True)
class MemoryExplanation:
    """The peak difference, SE's saved tensors (each, and by kind) and what remains unexplained."""

    peak_delta: int
    se_saved: int
    residual: int
    tensors: pd.DataFrame
    by_kind: pd.DataFrame


def _kind(module: str, op: str, se_roots: tuple[str, ...]) -> str:
    root = max((r for r in se_roots if module == r or module.startswith(f"{r}.")), key=len, default="")
    local = module[len(root) :].lstrip(".")
    return KINDS.get((op, local), f"{op} in {local or 'the SE block'}")


def _se_roots(candidate: MemoryProfile) -> tuple[str, ...]:
    """The SE blocks' own module names: the shortest module names among SE-saved tensors' modules."""
    modules = sorted({module for module, *_ in candidate.se_saved_tensors}, key=len)
    roots: list[str] = []
    for module in modules:
        if not any(module.startswith(f"{root}.") for root in roots):
            roots.append(module)
    return tuple(roots)


def explain(base: MemoryProfile, candidate: MemoryProfile) -> MemoryExplanation:
    """Reconcile ``candidate.peak_bytes - base.peak_bytes`` with the tensors SE saved for backward."""
    roots = _se_roots(candidate)
    rows: list[dict[str, Any]] = [
        {"module": module, "op": op, "shape": "x".join(map(str, shape)), "bytes": nbytes,
         "kind": _kind(module, op, roots)}
        for module, op, shape, nbytes in candidate.se_saved_tensors
    ]  # fmt: skip
    tensors = pd.DataFrame(rows, columns=["module", "op", "shape", "bytes", "kind"])
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[row["kind"]][0] += 1
        totals[row["kind"]][1] += row["bytes"]
    by_kind = pd.DataFrame(
        [
            {"kind": kind, "tensors": n, "bytes": b}
            for kind, (n, b) in sorted(totals.items(), key=lambda i: -i[1][1])
        ],
        columns=["kind", "tensors", "bytes"],
    )
    delta = candidate.peak_bytes - base.peak_bytes
    saved = candidate.se_saved_bytes
    return MemoryExplanation(delta, saved, delta - saved, tensors, by_kind)


LIVE_COLUMNS = ["model", "module", "op", "shape", "bytes", "in_se"]


@dataclass(frozen=True)
class PeakExplanation:
    """Storages live at each model's peak, and those with no counterpart (same shape, bytes) at the other."""

    base_peak: int
    candidate_peak: int
    live: pd.DataFrame
    differing: pd.DataFrame

    @property
    def peak_delta(self) -> int:
        """Candidate's peak less the base's."""
        return self.candidate_peak - self.base_peak


def _key(tensor: LiveTensor) -> tuple[tuple[int, ...], int]:
    return (tensor.shape, tensor.nbytes)


def _unmatched(ours: tuple[LiveTensor, ...], theirs: tuple[LiveTensor, ...]) -> list[LiveTensor]:
    """``ours`` less one counterpart (same shape and bytes) in ``theirs`` per match, in order."""
    spare = Counter(_key(t) for t in theirs)
    left = []
    for tensor in ours:
        if spare[_key(tensor)]:
            spare[_key(tensor)] -= 1
        else:
            left.append(tensor)
    return left


def _rows(side: str, tensors: list[LiveTensor] | tuple[LiveTensor, ...]) -> list[dict]:
    return [
        {"model": side, "module": t.module or "(top level / backward)", "op": t.op,
         "shape": "x".join(map(str, t.shape)), "bytes": t.nbytes, "in_se": t.in_se}
        for t in tensors
    ]  # fmt: skip


def explain_peaks(base: MemoryProfile, candidate: MemoryProfile) -> PeakExplanation:
    """Which storages are live at each model's peak, and which have no counterpart at the other's."""
    base_only = _unmatched(base.peak_tensors, candidate.peak_tensors)
    candidate_only = _unmatched(candidate.peak_tensors, base.peak_tensors)
    live = pd.DataFrame(
        _rows("base", base.peak_tensors) + _rows("candidate", candidate.peak_tensors), columns=LIVE_COLUMNS
    )
    differing = pd.DataFrame(
        _rows("base", base_only) + _rows("candidate", candidate_only), columns=LIVE_COLUMNS
    )
    return PeakExplanation(base.peak_bytes, candidate.peak_bytes, live, differing)


@dataclass(frozen=True)
class MemoryReport:
    """Everything ``explain-memory`` prints: both peaks, SE's part of the difference, saved tensors."""

    base_name: str
    candidate_name: str
    peaks: PeakExplanation
    se_part: PeakExplanation | None  # the candidate against itself with SE taken out; None without SE
    saved: MemoryExplanation | None  # training only
    base_at: LiveTensor | None
    candidate_at: LiveTensor | None


def memory_report(
    names: tuple[str, str],
    base: MemoryProfile,
    candidate: MemoryProfile,
    candidate_without_se: MemoryProfile | None,
) -> MemoryReport:
    """Explain ``candidate``'s peak against ``base``'s, and against its own peak without SE."""
    return MemoryReport(
        base_name=names[0],
        candidate_name=names[1],
        peaks=explain_peaks(base, candidate),
        se_part=None if candidate_without_se is None else explain_peaks(candidate_without_se, candidate),
        saved=explain(base, candidate) if candidate.mode == "train" else None,
        base_at=base.peak_at,
        candidate_at=candidate.peak_at,
    )


def _with_commas(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    shown = frame.assign(bytes=[f"{b:,}" for b in frame["bytes"]])
    return shown.to_markdown(index=False, disable_numparse=True)


def _where(tensor: LiveTensor | None) -> str:
    if tensor is None:
        return "nothing allocated"
    shape = "x".join(map(str, tensor.shape))
    return f"reached when `{tensor.module or '(top level / backward)'}` allocated {tensor.op} {shape}"


def _renamed(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    return frame.assign(model=[names[m] for m in frame["model"]])


def to_markdown(report: MemoryReport, *, title: str) -> str:
    """The report as Markdown: the peaks, SE's part, the differing tensors, saved tensors, every live one."""
    names = {"base": report.base_name, "candidate": report.candidate_name}
    peaks = report.peaks
    lines = [
        f"# {title}",
        "",
        "Generated by `senet-profile explain-memory` from exact storage accounting",
        "(`senet_profile/analysis/memory.py`). A storage live at one peak matches one of the same shape and",
        "bytes at the other, whichever op made it; the unmatched ones add up to the peak difference exactly.",
        "",
        f"- {report.base_name}: peak {peaks.base_peak:,} bytes, {_where(report.base_at)}",
        f"- {report.candidate_name}: peak {peaks.candidate_peak:,} bytes, {_where(report.candidate_at)}",
        f"- peak difference (candidate - base): {peaks.peak_delta:,} bytes",
    ]
    if report.se_part is not None:
        lines.append(
            f"- what SE adds to {report.candidate_name}'s peak (its peak less its peak with the SE modules "
            f"taken out, `memory_peak_se`): {report.se_part.peak_delta:,} bytes"
        )
    lines += ["", "## Storages live at one peak and not at the other", "", _with_commas(
        _renamed(peaks.differing, names))]  # fmt: skip
    if report.se_part is not None and report.se_part.differing.drop(columns="model").equals(
        peaks.differing.drop(columns="model")
    ):
        lines += ["", f"The base is {report.candidate_name} without SE: what SE adds is the table above."]
    elif report.se_part is not None:
        se_names = {"base": f"{report.candidate_name} without SE", "candidate": report.candidate_name}
        lines += [
            "",
            f"## What SE adds: {report.candidate_name} against itself with the SE modules taken out",
            "",
            _with_commas(_renamed(report.se_part.differing, se_names)),
        ]
    if report.saved is not None:
        saved = report.saved
        lines += [
            "",
            "## SE's saved tensors (training)",
            "",
            f"- saved for backward inside SE blocks: {saved.se_saved:,} bytes",
            f"- peak difference not explained by SE's saved tensors: {saved.residual:,} bytes",
            "",
            _with_commas(saved.by_kind),
            "",
            "### Every tensor SE saved for backward",
            "",
            _with_commas(saved.tensors),
        ]
    lines += ["", "## Every storage live at each peak", "", _with_commas(_renamed(peaks.live, names)), ""]
    return "\n".join(lines)
