"""Why an SE model needs more memory: its extra peak, tensor by tensor, in terms of its SE blocks.

In a training pass the peak comes when the forward is done and backward begins, so what a model adds to it
is mostly what it saves for backward. An SE block saves, per image: the input ``x`` of its final
``x * weights`` (the full C x H x W map, which an SE-free block does not keep: there the addition that
follows saves nothing), the pooled vector fed to the first FC, the ReLU's output, and the gate's output.
The explanation lists each of those tensors, groups them by kind, and reconciles their sum with the
measured difference of the two peaks; whatever is left is shown, not hidden.

For any pass (inference too) ``explain_peaks`` compares the storages live at each model's peak by identity:
two storages are the same tensor when the same module and op made them and the same ops keep them alive for
backward; failing that, when the same ops keep them alive (SE's product takes the place of a block's last
BN output), then when the same module and op made them, and only then by shape and bytes alone (the peaks
may fall at different points of the pass, and the models may come from different code). Each model's own
storages are listed with the module and op that made them and what keeps them alive (for SE-ResNet-50 in
training: each block's ``x``, the BN output kept by SE's ``x * s``), and their sums reconcile the peak
difference exactly.
"""

from __future__ import annotations

from collections import defaultdict
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


LIVE_COLUMNS = ["model", "module", "op", "shape", "bytes", "in_se", "kept alive by"]


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


# How two storages are the same tensor, most specific first: made by the same module and op and kept
# alive by the same ops; kept alive by the same ops (whatever made them: SE's product takes the place of
# the last BN's output as a block's output); made by the same module and op; the same size, both made in
# backward (or both in the forward); the same size alone.
_IDENTITIES = (
    lambda t: (t.shape, t.nbytes, t.module, t.op, t.held_by),
    lambda t: (t.shape, t.nbytes, t.held_by) if t.held_by else None,
    lambda t: (t.shape, t.nbytes, t.module, t.op),
    lambda t: (t.shape, t.nbytes, not t.module),  # a backward buffer with a backward buffer
    lambda t: (t.shape, t.nbytes),
)


def _match(
    ours: tuple[LiveTensor, ...], theirs: tuple[LiveTensor, ...]
) -> tuple[list[LiveTensor], list[LiveTensor]]:
    """Each side less the tensors with a counterpart at the other, matched by identity before size.

    Pass by pass (``_IDENTITIES``), a tensor is matched with one not yet matched that has its identity;
    what is left on each side is that side's own, named by what made it and what keeps it alive. The two
    sides' leftovers add up to the difference of the totals, whatever the matching.
    """
    left_ours, left_theirs = list(ours), list(theirs)
    for identity in _IDENTITIES:
        spare: dict[object, list[int]] = defaultdict(list)
        for index, tensor in enumerate(left_theirs):
            key = identity(tensor)
            if key is not None:
                spare[key].append(index)
        matched_theirs: set[int] = set()
        kept = []
        for tensor in left_ours:
            key = identity(tensor)
            if key is not None and spare.get(key):
                matched_theirs.add(spare[key].pop(0))
            else:
                kept.append(tensor)
        left_ours = kept
        left_theirs = [t for i, t in enumerate(left_theirs) if i not in matched_theirs]
    return left_ours, left_theirs


def _rows(side: str, tensors: list[LiveTensor] | tuple[LiveTensor, ...]) -> list[dict]:
    return [
        {"model": side, "module": t.module or "(top level / backward)", "op": t.op,
         "shape": "x".join(map(str, t.shape)), "bytes": t.nbytes, "in_se": t.in_se,
         "kept alive by": _kept_by(t)}
        for t in tensors
    ]  # fmt: skip


def _kept_by(tensor: LiveTensor) -> str:
    """What keeps a storage alive: the ops that saved it, SE's product named as ``x * s``."""
    if not tensor.held_by:
        return ""
    named = []
    for holder in tensor.held_by:
        module, _, op = holder.rpartition(": ")
        named.append(f"{holder} (x * s: SE's scale keeps its input x)" if op in ("mul", "addcmul")
                     and tensor.op not in ("sigmoid", "hardsigmoid", "tanh") and ".se" in f".{module}"
                     else holder)  # fmt: skip
    return "; ".join(named)


def explain_peaks(base: MemoryProfile, candidate: MemoryProfile) -> PeakExplanation:
    """Which storages are live at each model's peak, and which have no counterpart at the other's."""
    base_only, candidate_only = _match(base.peak_tensors, candidate.peak_tensors)
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
        "(`senet_profile/analysis/memory.py`). A storage live at one peak matches the same tensor at the",
        "other: made by the same module and op and kept alive by the same ops, else kept alive by the same",
        "ops, else made by the same module and op, else of the same shape and bytes; the unmatched ones add",
        "up to the peak difference exactly, each named with what keeps it alive.",
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
