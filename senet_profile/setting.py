"""What is measured, apart from the measurement: one frozen, validated ``Setting`` for every command.

A setting names the device, the pass, the input (batch, size, channels), the number format and its math,
the memory layout, compilation, threads, and how latency is timed (budget, CI target, processes, heap,
warm-up) and how often ops are timed (``repeats``). Every command, the API, the bench, sweeps and the GPU
check build one; its defaults and its validation live here and nowhere else. Nothing here imports torch,
so the command line can check a setting before it pays for torch.

``device=None`` means each group's own default: memory is tracked on the meta device (byte-identical to
the CPU's figure) and latency is timed on the CPU. ``input_size=None`` means the model's own default
input size (a timm model's ``pretrained_cfg``), else 224x224; ``resolved`` fixes both. ``processes=None``
means the device's default: 4 fresh worker processes on the CPU (their interval then covers what moves
between processes), 1 on CUDA (one GPU cannot be shared by timed workers at once).

``math`` is the arithmetic of fp32 convolutions and matrix products: ``default`` leaves PyTorch's own
choice in force (on CUDA, cuDNN convolutions in TF32 and matmuls in IEEE fp32), ``ieee`` turns TF32 off,
``tf32`` turns it on for both. What was actually in force is read from torch at run time and recorded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from senet_profile.errors import UserInputError

DEVICES = ("cpu", "cuda", "meta")
MODES = ("infer", "train")
DTYPE_NAMES = ("fp32", "bf16", "fp16")
MATHS = ("default", "ieee", "tf32")
ALLOCATOR_NAMES = ("steady", "as-is")
METRIC_GROUPS = ("static", "memory", "latency", "peaks", "predicted")
# What `compare` shows when no --metrics is given: the counts, both passes' peak memory (meta device, no
# allocation) and the machine model's predicted latency overhead: the question users come with, in seconds.
DEFAULT_COMPARE_METRICS = ("static", "peaks", "predicted")

DEFAULT_BUDGET_S = 48.0
DEFAULT_PROCESSES = {"cpu": 4, "cuda": 1}
DEFAULT_INPUT_SIZE = (224, 224)
DEFAULT_REPEATS = 20
# The largest batch, size, channel or thread count a setting takes: torch indexes with 64-bit integers,
# but no real input comes near 2**31 elements on a side; above it torch fails with an overflow.
MAX_COUNT = 2**31 - 1
MAX_BUDGET_S = 7 * 24 * 3600.0
MAX_PROCESSES = 256  # fresh worker processes a timed measurement may be split over
# The method's version: a change to how figures are measured bumps it, so that the regression gate never
# compares figures taken by two different methods.
METHOD_VERSION = 1


def is_int(value: object) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(name: str, value: object, *, low: int = 1, none_ok: bool = False) -> str:
    """The problem with an integer option, or ``""``."""
    if value is None and none_ok:
        return ""
    floor = {0: "0 or more", 1: "a positive integer"}.get(low, f"an integer of at least {low}")
    if not is_int(value):
        return f"{name} must be {floor if low in (0, 1) else 'an integer'}, got {value!r}"
    if value < low:  # type: ignore[operator]
        return f"{name} must be {floor}, got {value}"
    if value > MAX_COUNT:  # type: ignore[operator]
        return f"{name} must be at most {MAX_COUNT}, got {value}"
    return ""


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        return f"unknown {name} {value!r}; choose one of {', '.join(choices)}"
    return ""


def _flag(name: str, value: object) -> str:
    return "" if isinstance(value, bool) else f"{name} must be True or False, got {value!r}"


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting of a measurement: where, which pass, on what input, in which math, and how it is timed."""

    device: str | None = None
    mode: str = "infer"
    batch_size: int = 1
    input_size: tuple[int, int] | None = None
    in_channels: int = 3
    dtype: str = "fp32"
    math: str = "default"
    channels_last: bool = False
    compile: bool = False
    threads: int | None = 1
    budget_s: float = DEFAULT_BUDGET_S
    target_halfwidth_pp: float = 1.0
    processes: int | None = None
    allocator: str = "steady"
    warmup: int = 3
    min_pairs: int = 100
    repeats: int = DEFAULT_REPEATS

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list):
            object.__setattr__(self, "input_size", tuple(self.input_size))
        problem = self.problem()
        if problem:
            raise UserInputError(problem)

    def problem(self) -> str:
        """The first thing wrong with this setting that does not depend on the machine, or ``""``."""
        size = self.input_size
        size_problem = ""
        if size is not None and (
            not isinstance(size, tuple) or len(size) != 2 or any(_count("", n) for n in size)
        ):
            size_problem = f"input size must be two positive integers of at most {MAX_COUNT}, got {size!r}"
        checks = (
            "" if self.device is None else _choice("device", self.device, DEVICES),
            _choice("mode", self.mode, MODES),
            _choice("dtype", self.dtype, DTYPE_NAMES),
            _choice("math", self.math, MATHS),
            _choice("allocator", self.allocator, ALLOCATOR_NAMES),
            _count("batch size", self.batch_size),
            size_problem,
            _count("in_channels", self.in_channels),
            _count("threads", self.threads, none_ok=True),
            _count("processes", self.processes, none_ok=True),
            ""
            if self.processes is None or not is_int(self.processes) or self.processes <= MAX_PROCESSES
            else f"processes must be at most {MAX_PROCESSES}, got {self.processes}",
            _count("warm-up count", self.warmup, low=0),
            _count("min_pairs", self.min_pairs, low=2),
            _count("repeats", self.repeats, low=3),
            _flag("channels_last", self.channels_last),
            _flag("compile", self.compile),
            self._seconds_problem(),
        )
        return next((message for message in checks if message), "")

    def _seconds_problem(self) -> str:
        if not is_number(self.budget_s) or not 0 < self.budget_s <= MAX_BUDGET_S:
            limit = f"{MAX_BUDGET_S:g}"
            return f"budget must be a number of seconds above 0 and at most {limit}, got {self.budget_s!r}"
        if not is_number(self.target_halfwidth_pp) or self.target_halfwidth_pp <= 0:
            return f"the target CI half-width must be a positive number, got {self.target_halfwidth_pp!r}"
        return ""

    def check_for(self, metrics: tuple[str, ...]) -> None:
        """Refuse what this machine cannot run, or what means nothing for ``metrics`` (before any work).

        The one place every command and the API check the device, the dtype, the math and compilation.
        """
        if self.device == "cuda":
            require_cuda()
        timed = "latency" in metrics
        predicted = "predicted" in metrics
        checks = (
            (
                not predicted or self.device in (None, "cpu", "cuda"),
                "a predicted latency is for a device that runs: use --device cpu or cuda with predicted",
            ),
            (
                self.dtype != "fp16" or self.device == "cuda",
                f"dtype fp16 runs on CUDA only, not on {self.device or 'cpu'}; use bf16 or fp32",
            ),
            (
                not timed or self.device != "meta",
                "latency cannot be measured on the meta device; use --device cpu or cuda",
            ),
            (
                not self.compile or timed,
                "compile (--compile) applies to latency only; measure latency too or leave compile out",
            ),
            (
                self.math == "default" or self.dtype == "fp32",
                f"math {self.math!r} chooses how fp32 is computed; with dtype {self.dtype} leave it default",
            ),
        )
        problem = next((message for ok, message in checks if not ok), None)
        if problem:
            raise UserInputError(problem)

    @property
    def memory_device(self) -> str:
        """Where memory is tracked: the device asked for, else meta (byte-identical to the CPU's figure)."""
        return self.device or "meta"

    @property
    def latency_device(self) -> str:
        """Where latency is timed: the device asked for, else the CPU."""
        return self.device or "cpu"

    @property
    def worker_processes(self) -> int:
        """Fresh processes a latency measurement is split over: as asked, else the timing device's default."""
        if self.processes is not None:
            return self.processes
        return DEFAULT_PROCESSES.get(self.latency_device, 1)

    @property
    def size(self) -> tuple[int, int]:
        """The input's (height, width): as given, else the default 224x224."""
        return self.input_size or DEFAULT_INPUT_SIZE

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The input tensor's shape, batch first."""
        return (self.batch_size, self.in_channels, *self.size)

    @property
    def torch_dtype(self) -> Any:
        """The torch dtype of ``dtype`` (imports torch)."""
        return torch_dtype(self.dtype)

    def resolved(self, **changes: Any) -> Setting:
        """A copy with ``changes`` applied, validated again."""
        return replace(self, **changes)

    def for_latency(self, input_size: tuple[int, int] | None = None) -> Setting:
        """The setting a timer runs: device, input size and processes fixed."""
        if self.device == "meta":
            raise UserInputError("latency cannot be measured on the meta device; use --device cpu or cuda")
        return replace(
            self,
            device=self.latency_device,
            input_size=input_size or self.size,
            processes=self.worker_processes,
        )

    def describe(self, metrics: tuple[str, ...] = METRIC_GROUPS, *, precision: str = "") -> str:
        """A one-line summary for captions and run records (devices and timing settings of ``metrics``).

        ``precision``: the math the timing ran in, as read from torch (``analysis.precision``); without it
        the math asked for is named when it is not the default.
        """
        timed = "latency" in metrics
        extras = [f"threads={self.threads}" if self.threads else "threads=default"] * timed + [self.dtype]
        if precision:
            extras.append(f"math {precision}")
        elif self.math != "default":
            extras.append(f"math {self.math}")
        extras += ["channels_last"] * self.channels_last + ["compiled"] * self.compile
        extras += [f"heap {self.allocator}"] * (timed and self.latency_device == "cpu")
        processes = self.worker_processes
        extras += [f"{processes} processes" if processes > 1 else "1 process"] * timed
        device = self.device or self.latency_device
        if self.device is None and "memory" in metrics:
            device = f"memory on {self.memory_device}" + f", latency on {device}" * timed
        return f"{device}, {self.mode}, {', '.join(extras)}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (tuples as lists)."""
        data = asdict(self)
        if data["input_size"] is not None:
            data["input_size"] = list(data["input_size"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Setting:
        """The setting ``as_dict`` wrote; unknown keys are refused."""
        if not isinstance(data, dict):
            raise UserInputError(f"a setting is a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserInputError(f"unknown setting fields {', '.join(unknown)}")
        return cls(**data)


def torch_dtype(name: str) -> Any:
    """The torch dtype a dtype name stands for (imports torch)."""
    import torch

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in dtypes:
        raise UserInputError(_choice("dtype", name, DTYPE_NAMES))
    return dtypes[name]


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (imports torch)."""
    import torch

    return bool(torch.cuda.is_available())


def require_cuda(device: str = "cuda") -> None:
    """Refuse, in one line, a CUDA device asked for on a machine without one (the one place it is said)."""
    if not cuda_available():
        raise UserInputError(f"device {device!r} asked for, but there is no CUDA device on this machine")


def parse_input_size(text: str) -> tuple[int, int]:
    """``224`` or ``224x192`` (height x width) as a (height, width) pair."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise UserInputError(f"input size must be N or HxW, got {text!r}") from None
    if len(sizes) not in (1, 2) or not all(1 <= n <= MAX_COUNT for n in sizes):
        raise UserInputError(
            f"input size must be N or HxW with positive sizes (at most {MAX_COUNT}), got {text!r}"
        )
    return (sizes[0], sizes[-1])


def input_size_of(value: object) -> tuple[int, int]:
    """An API ``input_size``: an integer N (N x N), a (height, width) pair, or text ``N``/``HxW``."""
    if isinstance(value, str):
        return parse_input_size(value)
    if is_int(value):
        return (value, value)  # type: ignore[return-value]
    if isinstance(value, tuple | list) and len(value) == 2:
        return (value[0], value[1])  # checked by Setting
    raise UserInputError(f"input size must be N, (height, width) or 'HxW', got {value!r}")


def check_metrics(metrics: object) -> tuple[str, ...]:
    """Metric groups given as text (``"static,memory"``, ``"all"``) or a sequence of names, checked."""
    if isinstance(metrics, str):
        return parse_metrics(metrics)
    if not isinstance(metrics, tuple | list) or not all(isinstance(name, str) for name in metrics):
        raise UserInputError(f"metrics must be names from {', '.join(METRIC_GROUPS)}, got {metrics!r}")
    return parse_metrics(",".join(metrics))


def parse_metrics(text: str) -> tuple[str, ...]:
    """``static``, ``memory``, ``latency``, ``peaks``, ``predicted``, a comma list of them, or ``all``."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return METRIC_GROUPS
    unknown = [name for name in names if name not in METRIC_GROUPS]
    if unknown or not names:
        raise UserInputError(f"unknown metrics {text!r}; choose from {', '.join(METRIC_GROUPS)} or all")
    return tuple(name for name in METRIC_GROUPS if name in names)


def overhead_pct(base: float | None, candidate: float | None) -> float | None:
    """What ``candidate`` adds to ``base``, in percent of ``base``: ``(candidate - base) / base * 100``.

    The one overhead formula. A missing side, or a base of 0 (a share that does not exist in the base, such
    as ``params_se`` of a model without SE), has no percentage: None, never nan and never an exception.
    """
    if base is None or candidate is None or base == 0:
        return None
    return (candidate - base) / base * 100.0
