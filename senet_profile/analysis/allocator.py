"""The C heap's behaviour while timing: glibc's malloc held steady, or left as it is.

Why
    PyTorch's CPU tensors come from ``posix_memalign``. glibc serves large blocks with ``mmap`` and hands
    freed memory at the top of its heap back to the kernel once it exceeds a trim threshold, and it moves
    both thresholds as the process runs. Depending on what a process did before, the next forward pass
    then re-faults its activations page by page -- or does not. On a 2-vCPU VM we saw SE-ResNet-50 take
    0 or 4,300 minor page faults per batch-1 forward in two processes running the same code, and its
    overhead over ResNet-50 move from +3.3 % to +5.6 % with it; with the heap held steady five runs gave
    +4.7 to +4.9 %. The faults are a property of the process's history, not of the network.

``steady`` (the default)
    For the duration of the timing: no ``mmap`` for heap blocks and no trimming, so every block freed by
    one pass is reused by the next and no pass faults in fresh pages. Afterwards glibc's default settings
    are put back (its dynamic threshold stays off, as after any ``mallopt``) and ``malloc_trim`` returns
    the freed memory. Where the C library is not glibc, nothing is changed and the measurement says so.
``as-is``
    Leave the heap alone, to see what a process like this one pays in page faults. Each side's minor page
    faults per call are recorded either way (``page_faults``), so the effect can be seen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

# mallopt parameters and glibc's defaults for them (malloc/malloc.c).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}
STEADY = {M_TRIM_THRESHOLD: 2**31 - 1, M_MMAP_MAX: 0}


def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc, else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _set(libc: ctypes.CDLL, settings: dict[int, int]) -> bool:
    """Apply ``settings`` with ``mallopt``; whether every one was accepted."""
    accepted = [libc.mallopt(ctypes.c_int(key), ctypes.c_int(value)) == 1 for key, value in settings.items()]
    return all(accepted)


@contextmanager
def _steady() -> Iterator[str]:
    libc = _glibc()
    if libc is None:
        yield "as-is (not glibc)"
        return
    if not _set(libc, STEADY):
        _set(libc, GLIBC_DEFAULTS)
        yield "as-is (mallopt refused)"
        return
    try:
        yield "steady"
    finally:
        _set(libc, GLIBC_DEFAULTS)
        libc.malloc_trim(ctypes.c_size_t(0))


@contextmanager
def _as_is() -> Iterator[str]:
    yield "as-is"


ALLOCATORS: dict[str, Callable[[], AbstractContextManager[str]]] = {"steady": _steady, "as-is": _as_is}


def heap_held(name: str) -> AbstractContextManager[str]:
    """Hold the C heap as ``name`` says while the block runs; yields what was actually done."""
    return ALLOCATORS[name]()
