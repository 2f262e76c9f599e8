"""Sweeps: a grid of SE pairs and settings, expanded into cases, run resumably, one record per case.

A grid names model pairs (``BASE/CANDIDATE`` of any model source, ``BASE->CANDIDATE`` where a side is a
``path/to/file.py:function``, or a catalog SE model or a shell pattern of them, each paired with its
SE-free twin, or ``families[:BACKBONE]``: every attention family of timm's registry against the plain
backbone, as ``senet-profile families`` builds them), batch sizes, modes, dtypes, compile on/off,
threads, metric groups, the device, the input size and the time budget of a timed case. It comes from
the command line or a small TOML file with the same keys (``GRID_KEYS``), and is validated whole --
every model, knob and value -- before anything runs.

A grid expands into cases of three kinds, each one pair in one process:

- ``static``: params, MACs, activations of both models at the case's input shape (per pair and batch);
- ``memory``: tracked peak (and, in training, saved) bytes of both models (per pair, batch, mode, dtype;
  a ``cpu`` grid plans memory on the meta device, byte-identical to the CPU and cheaper);
- ``latency``: the paired, interleaved SE overhead (per pair, batch, mode, dtype, compile, threads).

A sweep's id is a hash of its grid, so the same command finds the same sweep. Under ``results/sweeps/<id>/``
it keeps ``manifest.json`` (the grid and every case, written once) and one run record per finished case,
``<machine-class>/<case-id>.json``, written atomically by the driver -- the one writer -- as soon as the case
comes back, under the class of the machine that measured it. A case is done when its record exists and
reads back as a valid record of that case; a rerun after a kill runs only the missing cases, and a lock on
the sweep's folder keeps two drivers from running one sweep at once. ``figures.csv`` gathers every
figure of the sweep when it ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, TypedDict

from senet_profile.errors import UserInputError
from senet_profile.history.records import RunRecord, load_records, new_record, read_record
from senet_profile.history.schema import check_record
from senet_profile.io import (
    MAX_GRID_BYTES,
    MAX_INT,
    check_regular,
    open_lock,
    read_json,
    read_regular,
    write_atomic,
)
from senet_profile.setting import DEFAULT_BUDGET_S, Setting, overhead_pct

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEPS_DIR = Path("results/sweeps")
RECORD_KIND = "sweep"
KINDS = ("static", "memory", "latency")
GRID_KEYS = (
    "pairs",
    "batch_sizes",
    "modes",
    "dtypes",
    "compile",
    "threads",
    "metrics",
    "device",
    "input_size",
    "budget",
    "processes",
)
SWITCHES = {"on": True, "off": False, "true": True, "false": False}
MAX_CASES = 10_000  # a larger grid is refused unless the user raises the limit (--max-cases)
MAX_BUDGET_S = 7 * 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class Case:
    """One unit of work: one pair, one kind of measurement, one setting; never split across processes."""

    kind: str
    base: str
    candidate: str
    batch_size: int
    input_size: tuple[int, int] = (224, 224)
    mode: str | None = None
    dtype: str | None = None
    compile: bool | None = None
    threads: int | None = None
    device: str | None = None
    budget_s: float | None = None
    processes: int | None = None

    @property
    def timed(self) -> bool:
        """Whether the case times: it must then own its device while it runs."""
        return self.kind == "latency"

    @property
    def id(self) -> str:
        """A stable name: the kind and a hash of everything the case is."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return f"{self.kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def as_dict(self) -> dict:
        """Plain JSON-ready form."""
        return {**asdict(self), "input_size": list(self.input_size)}

    @classmethod
    def from_dict(cls, data: dict) -> Case:
        """The case ``as_dict`` wrote."""
        return cls(**{**data, "input_size": tuple(data["input_size"])})

    @property
    def setting(self) -> Setting:
        """The case's setting (the one type every measurement takes); unused fields at their defaults."""
        chosen = {
            "device": self.device, "mode": self.mode, "dtype": self.dtype, "compile": self.compile,
            "threads": self.threads, "budget_s": self.budget_s, "processes": self.processes,
        }  # fmt: skip
        return Setting(
            batch_size=self.batch_size,
            input_size=self.input_size,
            **{key: value for key, value in chosen.items() if value is not None},  # type: ignore[arg-type]
        )

    def describe(self) -> str:
        """One line: kind, pair and setting."""
        parts = [self.kind, f"{self.base} -> {self.candidate}", f"b{self.batch_size}"]
        parts += [v for v in (self.mode, self.dtype) if v]
        parts += ["compiled"] * bool(self.compile) + [f"threads={self.threads}"] * (self.threads is not None)
        return " ".join(parts + ([self.device] if self.device else []))


class _PairFields(TypedDict):
    """The fields every case of one pair and batch shares."""

    base: str
    candidate: str
    batch_size: int
    input_size: tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class Grid:
    """A validated grid: canonical pairs and the values of every axis."""

    pairs: tuple[tuple[str, str], ...]
    batch_sizes: tuple[int, ...] = (1,)
    modes: tuple[str, ...] = ("infer",)
    dtypes: tuple[str, ...] = ("fp32",)
    compile: tuple[bool, ...] = (False,)
    threads: tuple[int, ...] = (1,)
    metrics: tuple[str, ...] = ("static",)
    device: str = "cpu"
    input_size: tuple[int, int] = (224, 224)
    budget_s: float = DEFAULT_BUDGET_S
    processes: int = 1

    def as_dict(self) -> dict:
        """Plain JSON-ready form (what the sweep id hashes)."""
        return json.loads(json.dumps(asdict(self)))

    @property
    def sweep_id(self) -> str:
        """``sw-`` and a hash of the grid: the same grid is the same sweep."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return f"sw-{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    def cases(self) -> list[Case]:
        """Every case of the grid, untimed ones first, each once."""
        found: list[Case] = []
        for base, candidate in self.pairs:
            for batch in self.batch_sizes:
                common: _PairFields = {
                    "base": base, "candidate": candidate, "batch_size": batch, "input_size": self.input_size,
                }  # fmt: skip
                if "static" in self.metrics:
                    found.append(Case(kind="static", **common))
                if "memory" in self.metrics:
                    memory_device = "meta" if self.device == "cpu" else self.device
                    found += [
                        Case(kind="memory", mode=mode, dtype=dtype, device=memory_device, **common)
                        for mode in self.modes
                        for dtype in self.dtypes
                    ]
                if "latency" in self.metrics:
                    found += [
                        Case(
                            kind="latency",
                            mode=mode,
                            dtype=dtype,
                            compile=compiled,
                            threads=threads,
                            device=self.device,
                            budget_s=self.budget_s,
                            processes=self.processes,
                            **common,
                        )
                        for mode in self.modes
                        for dtype in self.dtypes
                        for compiled in self.compile
                        for threads in self.threads
                    ]
        unique = list(dict.fromkeys(found))
        return [c for c in unique if not c.timed] + [c for c in unique if c.timed]


# --- building and validating a grid -------------------------------------------------------------------


def canonical_model(text: str) -> str:
    """The canonical form of a model argument of any source; UserInputError for an unknown model or knob.

    Nothing of the model's code runs here: a catalog argument is checked against the catalog's knobs, a
    ``timm:``/``torchvision:`` name against its library's list, a ``path/to/file.py:function`` for its
    file. The models are built and tried at the grid's size by ``try_models``, outside ``--dry-run``.
    """
    from senet_profile.api import canonical_name
    from senet_profile.catalog.sources import check_source, parse_source

    source = parse_source(text)
    if source.kind != "catalog":
        check_source(source)
    return canonical_name(text)


def try_models(grid: Grid) -> None:
    """Build each model of the grid once on meta and count it at the grid's size (batch 1); UserInputError
    naming the first one that does not build or run (before the first case, so no case fails for it)."""
    from senet_profile.api import check_runs
    from senet_profile.catalog.sources import model_failure, watch_sigint

    size = "x".join(map(str, grid.input_size))
    for model in dict.fromkeys(name for pair in grid.pairs for name in pair):
        with watch_sigint() as watch:
            line: str | None
            try:
                check_runs(model, Setting(batch_size=1, input_size=grid.input_size))
            except UserInputError as error:
                line = str(error)
            except (KeyboardInterrupt, SystemExit, Exception) as error:
                line = (
                    None
                    if isinstance(error, KeyboardInterrupt) and watch.interrupted
                    else model_failure(error)
                )
                if line is None:
                    raise
            else:
                continue
        raise UserInputError(f"{model}, tried at input {size}: {line}; choose an input size it takes")


def se_twin(name: str) -> str | None:
    """The SE-free twin of a catalog model that carries SE (``se_X`` -> ``X``, ``se=off``), else None."""
    from senet_profile.catalog.registry import get_entry, list_models, parse_model_spec

    spec = parse_model_spec(name)
    entry = get_entry(spec.name)
    catalog = set(list_models())
    if any(knob.name == "se" for knob in entry.knobs):
        return canonical_model(f"{spec.name}:se=off")
    twins = [spec.name.removeprefix("se_"), f"{spec.name}_no_se"]
    twin = next((t for t in twins if t != spec.name and t in catalog), None)
    if twin is None:
        return None
    rest = str(spec).partition(":")[2]
    kept = [
        kv for kv in rest.split(",") if kv and kv.partition("=")[0] in {k.name for k in get_entry(twin).knobs}
    ]
    return canonical_model(twin + (":" + ",".join(kept) if kept else ""))


def expand_pairs(
    items: Iterable[str], *, input_size: tuple[int, int] | None = None
) -> tuple[tuple[str, str], ...]:
    """``BASE/CANDIDATE`` pairs (any source), catalog SE models and patterns (each with its twin), once.

    ``input_size``: the grid's, at which ``families`` leaves out a family that cannot run (None: not tried).
    """
    from senet_profile.catalog.registry import list_models

    pairs: list[tuple[str, str]] = []
    for item in items:
        text = item.strip()
        if text == "families" or text.startswith("families:"):  # every timm attention family on a backbone
            pairs += family_pairs(text.partition(":")[2] or "resnet50", input_size=input_size)
        elif "->" in text or "/" in text:  # BASE->CANDIDATE where a side is a path/to/file.py:function
            base, _, candidate = text.partition("->" if "->" in text else "/")
            if not base.strip() or not candidate.strip():
                raise UserInputError(f"pair {item!r} must be BASE/CANDIDATE (or BASE->CANDIDATE)")
            pairs.append((canonical_model(base.strip()), canonical_model(candidate.strip())))
        elif any(ch in text for ch in "*?["):
            matched = [(twin, name) for name in list_models(text) if (twin := se_twin(name))]
            if not matched:
                raise UserInputError(f"pattern {text!r} matches no model with SE and an SE-free twin")
            pairs += matched
        else:
            twin = se_twin(text)
            if twin is None:
                raise UserInputError(
                    f"{text!r} has no SE-free twin in the catalog; give a pair as BASE/CANDIDATE"
                )
            pairs.append((twin, canonical_model(text)))
    return tuple(dict.fromkeys(pairs))


def family_pairs(backbone: str, *, input_size: tuple[int, int] | None = None) -> list[tuple[str, str]]:
    """``families[:BACKBONE]``: each attention family of timm's registry against the plain backbone.

    Each family is built once on the meta device (timm's own code, named by the registry, not a user's
    argument); one that does not build, or (given ``input_size``) whose layers refuse the maps that size
    gives them (``report.families.INPUT_LIMITS``: halo's block size), is left out of the grid with a
    one-line warning (``senet-profile families`` lists it with its reason).
    """
    import warnings

    from senet_profile.api import resolve
    from senet_profile.report.families import NONE, family_list, input_limit

    pairs = []
    for family in family_list(backbone):
        if family.family == NONE:
            continue
        try:
            built = resolve(family.model)
        except UserInputError as error:
            warnings.warn(f"families: {family.family} left out of the grid: {error}", stacklevel=2)
            continue
        limit = input_limit(built.module, (1, 3, *input_size)) if input_size else None
        if limit is not None:
            warnings.warn(f"families: {family.family} left out of the grid: {limit[0]}", stacklevel=2)
            continue
        pairs.append((canonical_model(family.base), canonical_model(family.model)))
    return pairs


def _switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    chosen = SWITCHES.get(str(value).strip().lower())
    if chosen is None:
        raise UserInputError(f"compile must be on or off, got {value!r}")
    return chosen


def _integers(name: str, values: Sequence[object]) -> tuple[int, ...]:
    shown = ", ".join(str(v)[:20] for v in values[:5]) + (", ..." if len(values) > 5 else "")
    try:
        numbers = tuple(int(str(v)) if len(str(v)) <= 20 else MAX_INT + 1 for v in values)
    except ValueError:
        raise UserInputError(f"{name} must be positive integers, got {shown}") from None
    if any(not 0 < n <= MAX_INT for n in numbers):
        raise UserInputError(f"{name} must be positive integers up to {MAX_INT:,}, got {shown}")
    return numbers


def case_count(axes: dict[str, list], pairs: int, metrics: Sequence[str]) -> int:
    """How many cases a grid of these axes expands into (at most; duplicates counted), without expanding."""
    size = {key: max(1, len(axes.get(key) or [])) for key in ("batch_sizes", "modes", "dtypes", "compile",
                                                             "threads")}  # fmt: skip
    per_batch = ("static" in metrics) + ("memory" in metrics) * size["modes"] * size["dtypes"]
    per_batch += ("latency" in metrics) * size["modes"] * size["dtypes"] * size["compile"] * size["threads"]
    return pairs * size["batch_sizes"] * per_batch


def _listed(value: object) -> list:
    """A TOML or command-line value as a list: lists as they are, strings split on commas."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


def build_grid(values: dict, *, max_cases: int = MAX_CASES) -> Grid:
    """A validated grid from raw values (keys of ``GRID_KEYS``); UserInputError on anything wrong in it.

    A grid of more than ``max_cases`` cases is refused before its cases are listed or checked.
    """
    from senet_profile.setting import parse_input_size, parse_metrics

    unknown = sorted(set(values) - set(GRID_KEYS))
    if unknown:
        raise UserInputError(f"unknown grid key {unknown[0]!r}; the keys are {', '.join(GRID_KEYS)}")
    axes = {key: _listed(values.get(key)) for key in GRID_KEYS}
    if not axes["pairs"]:
        raise UserInputError(
            "the grid is empty: give at least one pair (--pair BASE/CANDIDATE or an SE model)"
        )
    for key in ("batch_sizes", "modes", "dtypes", "compile", "threads", "metrics"):
        if key in values and not axes[key]:
            raise UserInputError(f"the grid is empty: {key} has no values")
    metrics = parse_metrics(",".join(map(str, axes["metrics"] or ["static"])))
    size = str(values.get("input_size") or 224)
    if len(axes["pairs"]) > max_cases:
        raise UserInputError(f"the grid has {len(axes['pairs']):,} pairs, over the limit of {max_cases:,} "
                             "cases; split it, or raise the limit with --max-cases")  # fmt: skip
    pairs = expand_pairs(map(str, axes["pairs"]), input_size=parse_input_size(size))
    count = case_count(axes, len(pairs), metrics)
    if count > max_cases:
        raise UserInputError(
            f"the grid expands into {count:,} cases, over the limit of {max_cases:,}; "
            "split it into smaller grids, or raise the limit with --max-cases"
        )
    grid = Grid(
        pairs=pairs,
        batch_sizes=_integers("batch sizes", axes["batch_sizes"] or [1]),
        modes=tuple(map(str, axes["modes"] or ["infer"])),
        dtypes=tuple(map(str, axes["dtypes"] or ["fp32"])),
        compile=tuple(dict.fromkeys(_switch(v) for v in axes["compile"] or [False])),
        threads=_integers("threads", axes["threads"] or [1]),
        metrics=metrics,
        device=str(values.get("device") or "cpu"),
        input_size=parse_input_size(size),
        budget_s=_budget(values.get("budget")),
        processes=_integers("processes", _listed(values.get("processes")) or [1])[0],
    )
    Setting(processes=grid.processes)  # bounded where every setting is
    for mode in grid.modes:  # every value of every axis, even of an axis no case of the grid uses
        Setting(mode=mode)
    for dtype in grid.dtypes:
        Setting(dtype=dtype)
    Setting(device=grid.device)
    for case in grid.cases():  # every setting through the one setting's checks, before anything runs
        setting = case.setting
        setting.check_for(("latency",) if case.timed else (case.kind,))  # fp16 on the CPU, CUDA absent
        if case.timed:
            setting.for_latency()
    return grid


def _budget(value: object) -> float:
    if value is None:
        return DEFAULT_BUDGET_S
    try:
        budget = float(str(value))
    except ValueError:
        raise UserInputError(f"budget must be a number of seconds, got {value!r}") from None
    if not 0 < budget <= MAX_BUDGET_S:
        raise UserInputError(f"budget must be a positive number of seconds up to {MAX_BUDGET_S:,.0f}, "
                             f"got {value!r}")  # fmt: skip
    return budget


def read_grid_file(path: Path) -> dict:
    """The raw grid values of a TOML file (keys of ``GRID_KEYS``), or a one-line error."""
    try:
        content = read_regular(path, limit=MAX_GRID_BYTES)
    except UserInputError as error:
        raise UserInputError(f"grid file: {error}") from None
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as error:
        why = "nested too deeply" if isinstance(error, RecursionError) else str(error).splitlines()[0]
        raise UserInputError(f"grid file {path} is not valid TOML: {why}") from None
    return data


# --- one case, in a worker ----------------------------------------------------------------------------


def run_case(case: Case) -> dict:
    """Measure one case in this process: a run record (this machine, its class) of the case's figures."""
    from senet_profile.history import bench

    models = (case.base, case.candidate)
    if case.kind == "static":
        figures = bench.static_figures(models, shape=(case.batch_size, 3, *case.input_size))
    elif case.kind == "memory":
        # Grid.cases gives every memory case its mode, dtype and device
        assert case.mode is not None and case.dtype is not None and case.device is not None
        figures = bench.memory_figures(
            models,
            settings=((case.mode, case.batch_size),),
            device=case.device,
            dtype=case.dtype,
            input_size=case.input_size,
        )
    else:
        figures = [_latency_figure(case)]
    return new_record(RECORD_KIND, figures, settings={"case_id": case.id, "case": case.as_dict()})


def _latency_figure(case: Case) -> dict:
    from senet_profile import api
    from senet_profile.history.bench import BenchCase, latency_figure

    setting = case.setting.resolved(processes=case.processes or 1)
    result = api.time_pair(case.base, case.candidate, setting=setting)
    return latency_figure(BenchCase(case.base, case.candidate, setting), result)


# --- the store: manifest, finished cases, lock --------------------------------------------------------


@dataclass(frozen=True)
class SweepStore:
    """A sweep's folder: its manifest, one record per finished case (under its machine class), a lock."""

    folder: Path

    @property
    def manifest_path(self) -> Path:
        """Where the grid and the list of cases are kept."""
        return self.folder / "manifest.json"

    def ensure_manifest(self, grid: Grid, cases: Sequence[Case]) -> None:
        """Write the manifest of a new sweep; for an existing one, refuse a different grid."""
        manifest = {
            "sweep": self.folder.name,
            "grid": grid.as_dict(),
            "cases": [{"id": c.id, "describe": c.describe(), "case": c.as_dict()} for c in cases],
        }
        known = self.read_manifest()
        if known is not None:
            if known.get("grid") != manifest["grid"]:
                raise UserInputError(
                    f"sweep {self.folder.name} exists with another grid ({self.manifest_path})"
                )
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def read_manifest(self) -> dict | None:
        """The manifest (None before the sweep's first run); a one-line error when it is not a manifest.

        Read as a regular file only (a FIFO, device or link there is refused, never waited on).
        """
        if not check_regular(self.manifest_path, verb="read sweep manifest", absent_ok=True):
            return None
        try:
            known = read_json(self.manifest_path, follow=False)
        except UserInputError as error:
            raise UserInputError(
                f"corrupt sweep manifest: {error}; move it away to start the sweep anew"
            ) from None
        if not isinstance(known, dict) or not isinstance(known.get("grid"), dict):
            raise UserInputError(f"corrupt sweep manifest {self.manifest_path}: no grid in it")
        return known

    def note_replaced(self, case: Case, path: Path, why: str) -> None:
        """Say in the manifest that ``path``, unreadable, was replaced by a new record of ``case``."""
        manifest = self.read_manifest() or {}
        entry = {"case_id": case.id, "path": str(path.relative_to(self.folder)), "was": why,
                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
        manifest["replaced"] = [*manifest.get("replaced", []), entry]
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def finished(self, cases: Sequence[Case]) -> tuple[dict[str, RunRecord], list[str]]:
        """The valid record of each finished case (by id), and a line per file that is not one.

        A case whose only record is corrupt or unreadable is not finished: it runs again, and its new
        record replaces the bad file (``write``).
        """
        wanted = {c.id for c in cases}
        done: dict[str, RunRecord] = {}
        problems: list[str] = []
        unreadable: list[tuple[str, str]] = []
        for path in sorted(self.folder.glob("*/*.json")):
            case_id = path.stem
            try:
                record = read_record(path)
            except ValueError as error:
                unreadable.append((case_id, str(error)))
                continue
            if case_id not in wanted or record.data.get("settings", {}).get("case_id") != case_id:
                problems.append(f"{path}: not a record of a case of this sweep")
            elif case_id in done:
                problems.append(f"{path}: case {case_id} recorded twice (also {done[case_id].path})")
            else:
                done[case_id] = record
        for case_id, why in unreadable:
            if case_id in done:
                problems.append(f"{why}; ignored: the case is recorded in {done[case_id].path}")
            else:
                again = "; the case runs again and its new record replaces it" if case_id in wanted else ""
                problems.append(f"{why}{again}")
        return done, problems

    def write(self, case: Case, record: dict) -> Path:
        """Write one finished case's record atomically under its machine class; refuse a malformed one."""
        check_record(record)  # the run-record schema: refused here, never written
        settings, machine = record["settings"], record["machine"]
        if settings.get("case_id") != case.id:
            raise ValueError(f"the worker returned a record of another case for {case.describe()}")
        if not record["figures"]:
            raise ValueError(f"the worker's record of {case.describe()} has no figures")
        path = self.folder / str(machine["machine_class"]) / f"{case.id}.json"
        replaced = self._unusable(path, case)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(
            path,
            json.dumps(
                {**record, "settings": {**settings, "sweep": self.folder.name}}, indent=2, sort_keys=True
            )
            + "\n",
        )
        read_record(path)  # what was written reads back as a record
        if replaced:
            self.note_replaced(case, path, replaced)
        return path

    def _unusable(self, path: Path, case: Case) -> str | None:
        """Why the file at ``path`` may be replaced (corrupt), None when there is none; refuse a valid one."""
        if not check_regular(path, verb="write", absent_ok=True):
            return None
        try:
            record = read_record(path)
        except ValueError as error:
            return str(error).removeprefix(f"{path}: ")
        if record.data.get("settings", {}).get("case_id") != case.id:
            return "not a record of this case"
        raise ValueError(f"{path} exists: case {case.id} is already recorded")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the sweep's lock: a second driver of the same sweep is refused."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open_lock(self.folder / ".lock")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserInputError(
                    f"sweep {self.folder.name} is already running ({self.folder}); wait for it to end"
                ) from None
            yield
        finally:
            os.close(handle)


# --- the driver ---------------------------------------------------------------------------------------


Outcome = tuple[Case, "dict | str"]


class Executor(Protocol):
    """Runs cases and yields each one's record (or a one-line failure) as it finishes."""

    name: str

    def run(self, cases: Sequence[Case]) -> Iterator[Outcome]:
        """Each case's record, or why it failed, in the order they finish."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a Ray instance it started)."""
        ...


@dataclass
class SweepResult:
    """What a sweep run did: cases in all, already done, run now, failed (with why)."""

    sweep_id: str
    folder: Path
    total: int
    already_done: int
    ran: int = 0
    failures: list[str] = field(default_factory=list)


def estimate_s(case: Case) -> float:
    """A rough duration of a case on a small CPU, to weigh the progress bar and its time estimate."""
    if case.timed:
        return float(case.budget_s or 0) + 15.0 + 120.0 * bool(case.compile)
    return 6.0 if case.kind == "static" else 8.0


def run_sweep(
    grid: Grid,
    executor: Executor,
    *,
    sweeps_dir: Path = SWEEPS_DIR,
    sweep_id: str | None = None,
    on_start: Callable[[list[Case], list[Case], int], None] | None = None,
    on_case: Callable[[Case, Path | None, str | None], None] | None = None,
    limit: int | None = None,
) -> SweepResult:
    """Run the cases of ``grid`` not yet recorded (at most ``limit``), writing each record as it returns."""
    store = SweepStore(sweeps_dir / (sweep_id or grid.sweep_id))
    cases = grid.cases()
    store.read_manifest()  # a FIFO, link or corrupt manifest: refused before the lock file is made
    with store.locked():
        store.ensure_manifest(grid, cases)
        done, problems = store.finished(cases)
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        todo = [c for c in cases if c.id not in done][:limit]
        result = SweepResult(store.folder.name, store.folder, len(cases), len(done))
        if on_start is not None:
            on_start(cases, todo, len(done))
        for case, outcome in executor.run(todo) if todo else ():
            path, failure = None, None
            if isinstance(outcome, str):
                failure = outcome
            else:
                try:
                    path = store.write(case, outcome)
                except (ValueError, OSError) as error:
                    failure = str(error)
            if failure:
                result.failures.append(f"{case.describe()}: {failure}")
            else:
                result.ran += 1
            if on_case is not None:
                on_case(case, path, failure)
        write_figures_csv(store, cases)
    return result


def sweep_records(store: SweepStore, cases: Sequence[Case]) -> list[RunRecord]:
    """The finished cases' records, in the grid's order."""
    done, _ = store.finished(cases)
    return [done[c.id] for c in cases if c.id in done]


def write_figures_csv(store: SweepStore, cases: Sequence[Case]) -> Path | None:
    """Every figure of the sweep's finished cases as one CSV (rewritten atomically), or None if none."""
    import pandas as pd

    rows = [
        {
            **figure,
            "case_id": r.path.stem,
            "machine_class": r.machine_class,
            "time": r.data["time"],
            "commit": r.data["commit"],
        }
        for r in sweep_records(store, cases)
        for figure in r.data["figures"]
    ]
    if not rows:
        return None
    path = store.folder / "figures.csv"
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))
    return path


def sweep_runs_of_class(sweeps_dir: Path, machine_class: str) -> tuple[list[RunRecord], list[str]]:
    """Every valid case record of every sweep measured on ``machine_class``, oldest first."""
    records: list[RunRecord] = []
    problems: list[str] = []
    for folder in sorted(p for p in sweeps_dir.glob(f"*/{machine_class}") if p.is_dir()):
        found, skipped = load_records(folder, kind=RECORD_KIND)
        records += found
        problems += skipped
    records.sort(key=lambda r: (r.data["time"], r.path.name))
    return records, problems


def summary_frame(records: Sequence[RunRecord]):
    """One row per pair, metric and setting: base, candidate, SE's overhead (%) and, when timed, its CI."""
    import pandas as pd

    rows = []
    for record in records:
        case = record.data["settings"]["case"]
        by_model = {(f["model"], f["metric"], f["setting"]): f for f in record.data["figures"]}
        common = {"pair": f"{case['base']} -> {case['candidate']}", "machine_class": record.machine_class}
        for figure in record.data["figures"]:
            if figure["metric"] == "latency_overhead":
                base, candidate = figure.get("base_median_s"), figure.get("candidate_median_s")
                rows.append({**common, "metric": "latency", "unit": "s", "setting": figure["setting"],
                             "base": base, "candidate": candidate,
                             "overhead_pct": figure["value"], "ci_low": figure.get("ci_low"),
                             "ci_high": figure.get("ci_high"), "samples": figure.get("samples")})  # fmt: skip
            elif figure["model"] == case["base"]:
                match = by_model.get((case["candidate"], figure["metric"], figure["setting"]))
                if match is None:
                    continue
                base, candidate = figure["value"], match["value"]
                pct = overhead_pct(base, candidate)
                rows.append({**common, "metric": figure["metric"], "unit": figure["unit"],
                             "setting": figure["setting"], "base": base, "candidate": candidate,
                             "overhead_pct": pct})  # fmt: skip
    # the unit of base and candidate: tables print them scaled (4.092 G, 13.78 MiB, 361.9 ms)
    columns = ["pair", "metric", "unit", "setting", "base", "candidate", "overhead_pct", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "samples", "machine_class"], dtype=object)
