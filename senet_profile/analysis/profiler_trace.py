"""A trace of a few forwards of two models for a trace viewer (Chrome's about:tracing, Perfetto).

``torch.profiler`` records every op of a few inference forwards of the base and the candidate, one after
the other; each forward is a ``record_function`` range named after its model, and each attention module
(SE and the other known families) a range named ``<family> <module>`` (``se layer1.0.se``), so SE's time
shows as its own slices inside each block. The trace is written with ``export_chrome_trace``, then moved
into place atomically.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.autograd.profiler import record_function

from senet_profile.catalog.attention import attention_modules
from senet_profile.io import write_atomic

DEFAULT_FORWARDS = 3


@contextmanager
def attention_ranges(model: nn.Module) -> Iterator[dict[str, str]]:
    """While inside, each attention module's forward runs in a ``record_function`` range of its own.

    Yields the marked modules (name -> family).
    """
    marked = attention_modules(model)
    modules = dict(model.named_modules())
    open_ranges: dict[str, list[record_function]] = {}
    handles = []

    def enter(name: str, family: str):
        def hook(_module: nn.Module, _args: object) -> None:
            label = record_function(f"{family} {name}")
            label.__enter__()
            open_ranges.setdefault(name, []).append(label)

        return hook

    def leave(name: str):
        def hook(_module: nn.Module, _args: object, _out: object) -> None:
            open_ranges[name].pop().__exit__(None, None, None)

        return hook

    for name, family in marked.items():
        handles.append(modules[name].register_forward_pre_hook(enter(name, family)))
        handles.append(modules[name].register_forward_hook(leave(name)))
    try:
        yield marked
    finally:
        for handle in handles:
            handle.remove()


def write_trace(
    models: Sequence[tuple[str, nn.Module]],
    input_shape: tuple[int, ...],
    path: Path,
    *,
    forwards: int = DEFAULT_FORWARDS,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict[str, int]:
    """Profile ``forwards`` inference passes of each model (interleaved) and write a Chrome trace to ``path``.

    Returns how many attention modules were marked in each model. The models must hold real tensors (not
    meta); each is moved to ``device`` and ``dtype`` in place and put in eval mode.
    """
    target = torch.device(device)
    prepared = []
    for name, model in models:
        model = model.to(device=target, dtype=dtype).eval()
        prepared.append((name, model))
    x = torch.randn(tuple(input_shape), device=target, dtype=dtype)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if target.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    marked: dict[str, int] = {}
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own log lines: errors only
    with torch.inference_mode():
        for _, model in prepared:  # one warm-up forward each, outside the trace
            model(x)
        with (
            _all_ranges(prepared) as counts,
            _quiet_stderr(),
            torch.profiler.profile(activities=activities) as profiler,
        ):
            marked = counts
            for index in range(forwards):
                for name, model in prepared:
                    with record_function(f"{name} forward {index + 1}"):
                        model(x)
                if target.type == "cuda":
                    torch.cuda.synchronize()
    with tempfile.TemporaryDirectory(prefix="senet-profile-trace-") as folder:
        raw = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(raw))
        write_atomic(path, raw.read_bytes())
    return marked


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what the profiler's C++ side prints on file descriptor 2 (start and stop lines)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _all_ranges(models: Sequence[tuple[str, nn.Module]]) -> Iterator[dict[str, int]]:
    counts: dict[str, int] = {}
    with _stacked([attention_ranges(model) for _, model in models]) as marked:
        for (name, _), found in zip(models, marked, strict=True):
            counts[name] = len(found)
        yield counts


@contextmanager
def _stacked(managers: list) -> Iterator[list]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield [stack.enter_context(manager) for manager in managers]
