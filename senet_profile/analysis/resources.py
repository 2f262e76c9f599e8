"""Will a run fit in memory? Planned on the meta device before a CPU run allocates anything.

A CPU run that asks for more memory than the machine has either fails deep inside the allocator or, under
a memory limit with overcommit, is killed without a word. So before one runs, its need is planned exactly on
the meta device (``measure_memory``: peak live bytes above parameters and input, gradients in training)
and compared with what is free: ``MemAvailable`` of ``/proc/meminfo``, and the cgroup's limit less its use
where one is set. When either cannot be read, nothing is refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from senet_profile.analysis.memory import measure_memory
from senet_profile.errors import UserInputError

MEMORY_HINT = "`--device meta` plans memory without allocating"
_CGROUP = Path("/sys/fs/cgroup")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available() -> int | None:
    pairs = (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    )
    for limit_name, usage_name in pairs:
        limit, usage = _read_int(_CGROUP / limit_name), _read_int(_CGROUP / usage_name)
        if limit is not None and usage is not None and limit < 1 << 60:  # "max" or v1's huge "no limit"
            return max(0, limit - usage)
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate: the smaller of the machine's and the cgroup's, or None."""
    known = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
    return min(known) if known else None


def needed_bytes(
    meta_model: nn.Module, input_shape: tuple[int, ...], *, mode: str, dtype: torch.dtype
) -> int:
    """Bytes one pass needs: parameters and buffers, the input, the peak above them, and gradients."""
    profile = measure_memory(meta_model, input_shape, mode=mode, device="meta", dtype=dtype)
    size = torch.empty(0, dtype=dtype).element_size()
    weights = sum(t.numel() for t in [*meta_model.parameters(), *meta_model.buffers()]) * size
    return weights + math.prod(input_shape) * size + profile.peak_bytes + profile.grad_bytes


def check_fits(meta_model: nn.Module, input_shape: tuple[int, ...], *, mode: str, dtype: torch.dtype) -> None:
    """Refuse, before allocating, a CPU run that needs more memory than is free."""
    free = available_bytes()
    if free is None:
        return
    needed = needed_bytes(meta_model, input_shape, mode=mode, dtype=dtype)
    if needed > free:
        shape = "x".join(str(n) for n in input_shape)
        kind = "a training" if mode == "train" else "an inference"
        raise UserInputError(
            f"out of memory: {kind} pass on input {shape} needs {needed:,} bytes (planned on the meta "
            f"device), but only {free:,} bytes are free; use a smaller --batch-size or input, or "
            f"{MEMORY_HINT}"
        )
