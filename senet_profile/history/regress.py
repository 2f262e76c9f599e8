"""Regression checks between a baseline run record and a current one.

- Deterministic figures (params, MACs, activations, tracked memory) must be equal: any change, up or down,
  is a regression until the baseline is updated on purpose. A threshold can loosen one (``macs:0.5%``).
- Timing figures are SE overhead ratios with 95 % intervals. One is a regression only when the current
  interval lies above the baseline's by more than the tolerance: ``current.ci_low - baseline.ci_high >
  tolerance`` (``latency_overhead:2pp``). An unchanged tree on a noisy machine passes; a real slowdown of SE
  beyond the tolerance fails.
- Timing figures are compared only between records of the same machine class; across classes each is
  reported ``unjudged`` (with why) and the deterministic figures alone are judged. A machine class with no
  baseline of its own is checked against another class's baseline for its deterministic figures: they do
  not depend on the machine, so a new CI runner still catches a changed count.
- Figures marked ``informational`` (e.g. how long the paper report took) are shown, never judged.

Thresholds are small objects parsed from strings ``METRIC:AMOUNT[pp|%]`` (``METRIC`` may be a glob).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.errors import UserInputError
from senet_profile.history.bench import figure_key

_THRESHOLD = re.compile(r"^(?P<metric>[\w*?\[\]-]+):(?P<amount>\d+(\.\d+)?)(?P<unit>pp|%)?$")
DEFAULT_TIMING_TOLERANCE_PP = 2.0


@dataclass(frozen=True)
class Threshold:
    """How far a metric may move: ``pp`` (percentage points, for overheads), ``%`` (relative) or absolute."""

    metric: str
    amount: float
    unit: str = ""

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """``latency_overhead:2pp``, ``macs:0.5%``, ``params:0``."""
        match = _THRESHOLD.match(text.strip())
        if not match:
            raise UserInputError(
                f"bad threshold {text!r}: expected METRIC:AMOUNT[pp|%], e.g. latency_overhead:2pp"
            )
        return cls(match["metric"], float(match["amount"]), match["unit"] or "")

    def applies_to(self, metric: str) -> bool:
        """Whether this threshold covers ``metric``."""
        return fnmatch.fnmatchcase(metric, self.metric)

    def allows(self, before: float, after: float) -> bool:
        """Whether moving from ``before`` to ``after`` stays within this threshold."""
        change = abs(after - before)
        limit = abs(before) * self.amount / 100 if self.unit == "%" else self.amount
        return change <= limit

    def __str__(self) -> str:
        return f"{self.metric}:{self.amount:g}{self.unit}"


@dataclass(frozen=True)
class Finding:
    """The verdict on one figure: ok, regression, improved, new, missing, allowed, info or unjudged."""

    verdict: str
    model: str
    metric: str
    setting: str
    message: str

    @property
    def failed(self) -> bool:
        """True for a regression, and for a timing figure of the baseline that this run lacks."""
        return self.verdict in ("regression", "missing")


def _fmt(value: float, unit: str) -> str:
    return f"{value:+.2f} %" if unit == "%" else f"{value:,}"


def _deterministic(base: dict, current: dict, thresholds: Sequence[Threshold]) -> tuple[str, str]:
    before, after = base["value"], current["value"]
    if before == after:
        return "ok", f"{_fmt(after, current['unit'])} unchanged"
    rule = next((t for t in thresholds if t.applies_to(current["metric"])), None)
    change = f"baseline {_fmt(before, base['unit'])}, now {_fmt(after, current['unit'])}"
    if before:
        change += f" ({(after - before) / before * 100:+.2f} %)"
    if rule is not None and rule.allows(before, after):
        return "ok", f"{change}, within {rule}"
    return "regression", f"{change}; deterministic figures must not change (update the baseline on purpose)"


def _interval(figure: dict) -> str:
    return f"{figure['value']:+.2f} % [{figure['ci_low']:+.2f}, {figure['ci_high']:+.2f}]"


def _without_interval(figure: dict) -> bool:
    """A timing figure recorded with no interval, or with one from fewer than MIN_CI_SAMPLES samples."""
    samples = figure.get("samples")
    low, high = figure.get("ci_low"), figure.get("ci_high")
    return low is None or high is None or (samples is not None and samples < MIN_CI_SAMPLES)


def _timing(base: dict, current: dict, thresholds: Sequence[Threshold]) -> tuple[str, str]:
    unjudged = [name for name, f in (("baseline", base), ("this run", current)) if _without_interval(f)]
    if unjudged:
        return "info", (
            f"{' and '.join(unjudged)} has no interval (fewer than {MIN_CI_SAMPLES} samples): not judged"
        )
    rule = next((t for t in thresholds if t.applies_to(current["metric"])), None)
    tolerance = rule.amount if rule is not None else DEFAULT_TIMING_TOLERANCE_PP
    if rule is not None and rule.unit != "pp":
        raise UserInputError(f"threshold {rule} for a timing overhead must be in percentage points (pp)")
    gap = current["ci_low"] - base["ci_high"]
    text = f"baseline {_interval(base)}, now {_interval(current)}"
    if gap > tolerance:
        return "regression", f"{text}: above the baseline's interval by {gap:.2f} pp (> {tolerance:g} pp)"
    if base["ci_low"] - current["ci_high"] > tolerance:
        return "improved", f"{text}: below the baseline's interval by more than {tolerance:g} pp"
    return "ok", f"{text}: within {tolerance:g} pp of the baseline's interval"


def _informational(old: dict | None, new: dict | None) -> str:
    shown = [f"{label} {f['value']:.3g} {f['unit']}" for label, f in (("baseline", old), ("now", new)) if f]
    return ", ".join(shown) + " (recorded, not judged)"


def compare_records(
    baseline: dict, current: dict, thresholds: Sequence[Threshold] = (), *, allow_missing: bool = False
) -> list[Finding]:
    """One finding per figure of either record; a timing figure the run lacks fails unless allowed."""
    timing_metrics = {
        f["metric"] for f in [*baseline["figures"], *current["figures"]] if not f["deterministic"]
    }
    for rule in thresholds:
        if rule.unit != "pp" and any(rule.applies_to(metric) for metric in timing_metrics):
            raise UserInputError(f"threshold {rule} for a timing overhead must be in percentage points (pp)")
    versions = [method_version(record) for record in (baseline, current)]
    if versions[0] != versions[1]:
        message = (
            f"the baseline was measured with method version {versions[0]}, this run with {versions[1]}: "
            "no figure is compared across a change of method; update the baseline on purpose"
        )
        return [Finding("info", "*", "*", "*", message)]
    same_class = baseline["machine"]["machine_class"] == current["machine"]["machine_class"]
    before = {figure_key(f): f for f in baseline["figures"]}
    after = {figure_key(f): f for f in current["figures"]}
    findings = []
    for key in list(dict.fromkeys([*before, *after])):
        model, metric, setting = key
        old, new = before.get(key), after.get(key)
        either = old or new
        assert either is not None  # the key came from one of the two records
        timing = not either["deterministic"]
        if either.get("informational"):
            findings.append(Finding("info", model, metric, setting, _informational(old, new)))
            continue
        if timing and not same_class:
            reason = (
                f"a timing figure, judged only against a baseline of its own machine class "
                f"({current['machine']['machine_class']}); the baseline is "
                f"{baseline['machine']['machine_class']}'s"
            )
            findings.append(Finding("unjudged", model, metric, setting, reason))
            continue
        if old is None:
            verdict, message = "new", "not in the baseline"
        elif new is None and timing:
            verdict = "allowed" if allow_missing else "missing"
            message = "not measured in this run" + (
                " (accepted: --allow-missing)" if allow_missing else "; pass --allow-missing to accept"
            )
        elif new is None:
            verdict, message = "regression", "not measured in this run; a deterministic figure disappeared"
        else:
            verdict, message = (_timing if timing else _deterministic)(old, new, thresholds)
        findings.append(Finding(verdict, model, metric, setting, message))
    return findings


def method_version(record: dict) -> int:
    """The measuring method's version a record was taken with (records before versions existed: 1)."""
    version = record.get("settings", {}).get("method_version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def class_note(baseline: dict, current: dict) -> str:
    """A line saying whether timing was compared, given the two records' machine classes."""
    base_class, current_class = baseline["machine"]["machine_class"], current["machine"]["machine_class"]
    if base_class == current_class:
        return f"machine class {current_class}: deterministic and timing figures compared"
    return (
        f"machine class {current_class} differs from the baseline's ({base_class}): deterministic figures "
        "(params, MACs, activations, bytes moved, memory peaks) judged, as they do not depend on the "
        "machine; timing figures are compared only within one class, so they are not judged"
    )


def no_baseline_findings(current: dict) -> list[Finding]:
    """With no baseline of any class, every figure of ``current`` is unjudged (never a pass)."""
    return [
        Finding("unjudged", f["model"], f["metric"], f["setting"], "no baseline of any machine class")
        for f in current["figures"]
    ]
