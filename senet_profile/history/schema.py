"""The one schema of what the history stores: run records, baselines, and the bench's figures.

Checked with pydantic on every read and before every write, so that a file of the right JSON but the wrong
shape (``"figures": [42]``, ``"machine": null``, a figure without ``model``) is refused with what is wrong,
never met later as a KeyError. Unknown extra keys are kept (a figure carries its own measurement details).

- a **figure**: ``model``, ``metric``, ``setting``, ``unit`` (non-empty strings), a finite number
  ``value``, ``deterministic``; a timing figure (not ``informational``) carries its 95 % interval
  ``ci_low <= ci_high``, or neither bound when too few samples were taken for one (then it is not
  judged). Figures are matched across records by (model, metric, setting), so a record holds each once.
- a **run record** (and a baseline, which is a copy of one): ``schema`` (1), ``kind``, ``time`` (ISO 8601
  with a time zone), ``commit``, ``machine`` (its class, CPU, cores, versions), ``settings``, ``figures``.
- a **pytest-benchmark file** as ``record`` reads it: ``benchmarks``, each one's figure in
  ``extra_info["figure"]``; at least one figure.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

SCHEMA = 1
_REQUIRED_VERSIONS = ("torch", "torchvision", "senet-profile")

Name = Annotated[StrictStr, Field(min_length=1)]
Number = StrictInt | StrictFloat


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Figure(_Open):
    """One figure: what was measured (model, metric, setting), its unit and value, and how it is judged."""

    model: Name
    metric: Name
    setting: Name
    unit: Name
    value: Number
    deterministic: StrictBool
    informational: StrictBool = False
    ci_low: Number | None = None
    ci_high: Number | None = None
    # optional details that history, regress and the sweep's summary read: typed when present
    samples: Annotated[StrictInt, Field(ge=0)] | None = None
    noisy: StrictBool | None = None
    base_median_s: Number | None = None
    candidate_median_s: Number | None = None

    @model_validator(mode="after")
    def _judgeable(self) -> Figure:
        for name in ("value", "base_median_s", "candidate_median_s"):
            number = getattr(self, name)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"{name} {number} is not a finite number")
        if self.metric == "latency_overhead":
            extra = self.model_extra or {}
            if " -> " not in self.model:
                raise ValueError(
                    f"a latency overhead's model names a pair 'base -> candidate', got {self.model!r}"
                )
            if not isinstance(extra.get("batch_size"), int) or not isinstance(extra.get("mode"), str):
                raise ValueError("a latency overhead needs its batch_size (integer) and mode (text)")
        if self.deterministic or self.informational:
            return self
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("a timing figure's interval needs both ci_low and ci_high (or neither)")
        if self.ci_low is None or self.ci_high is None:
            return self  # recorded without an interval (too few samples): shown, never judged
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)) or self.ci_low > self.ci_high:
            raise ValueError(f"interval [{self.ci_low}, {self.ci_high}] is not finite and ordered")
        return self


class Machine(_Open):
    """The machine a record was measured on; figures compare only within one ``machine_class``."""

    machine_class: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    cpu: str
    cores: Annotated[StrictInt, Field(gt=0)]
    gpu: str | None = None
    platform: str
    python: str
    versions: dict[str, str]

    @model_validator(mode="after")
    def _versions(self) -> Machine:
        missing = [name for name in _REQUIRED_VERSIONS if name not in self.versions]
        if missing:
            raise ValueError(f"versions lack {', '.join(missing)}")
        return self


class RunRecord(_Open):
    """A run record or a baseline: who measured what, when, and every figure."""

    schema_: Literal[1] = Field(alias="schema")
    kind: Name
    time: str
    commit: Name
    machine: Machine
    settings: dict[str, Any] = Field(default_factory=dict)
    figures: list[Figure]

    @model_validator(mode="after")
    def _checked(self) -> RunRecord:
        try:
            moment = datetime.fromisoformat(self.time)
        except ValueError:
            raise ValueError(f"time {self.time!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"time {self.time!r} has no time zone")
        try:
            moment.astimezone(timezone.utc)  # what the history plot's labels do
        except OverflowError:
            raise ValueError(f"time {self.time!r} is out of range in UTC") from None
        seen: set[tuple[str, str, str]] = set()
        for figure in self.figures:
            key = (figure.model, figure.metric, figure.setting)
            if key in seen:
                raise ValueError(f"figure {' / '.join(key)} appears twice")
            seen.add(key)
        return self


class Benchmark(_Open):
    """One pytest-benchmark entry; the bench hands its figure over in ``extra_info["figure"]``."""

    name: str = "?"
    extra_info: dict[str, Any] = Field(default_factory=dict)


class BenchmarkFile(_Open):
    """pytest-benchmark's JSON, as far as ``record`` reads it."""

    benchmarks: list[Benchmark]


def problem(error: ValidationError, *, limit: int = 3) -> str:
    """A pydantic error as one line: ``where: what`` for the first few problems."""
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "top level"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def check_record(data: object) -> dict:
    """``data`` itself when it is a valid run record; ValueError saying what is wrong otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"not a record (top level is not an object but {type(data).__name__})")
    if data.get("schema") not in (None, SCHEMA) and isinstance(data.get("schema"), int):
        raise ValueError(f"record schema {data['schema']!r}, expected {SCHEMA}")
    try:
        RunRecord.model_validate(data)
    except ValidationError as error:
        raise ValueError(f"malformed record: {problem(error)}") from None
    return data


def benchmark_figures(data: object) -> list[dict]:
    """The figures of a pytest-benchmark JSON document; ValueError when it has none or a malformed one."""
    try:
        parsed = BenchmarkFile.model_validate(data)
    except ValidationError as error:
        raise ValueError(f"not a pytest-benchmark file: {problem(error)}") from None
    figures = []
    for index, bench in enumerate(parsed.benchmarks):
        figure = bench.extra_info.get("figure")
        if figure is None:
            continue
        try:
            Figure.model_validate(figure)
        except ValidationError as error:
            raise ValueError(
                f"benchmark {index} ({bench.name}): malformed figure: {problem(error)}"
            ) from None
        figures.append(figure)
    if not figures:
        raise ValueError(f"no figures in its {len(parsed.benchmarks)} benchmarks (extra_info['figure'])")
    return figures
