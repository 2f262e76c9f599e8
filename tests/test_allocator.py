"""The C heap while timing: held steady on glibc (no page faults from reused blocks), or left as it is."""

from __future__ import annotations

import platform

import pytest
import torch

from senet_profile.analysis import allocator
from senet_profile.analysis.allocator import ALLOCATORS, GLIBC_DEFAULTS, STEADY, heap_held
from senet_profile.analysis.latency import minor_page_faults

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or minor_page_faults() is None, reason="needs glibc and getrusage"
)

BLOCK_BYTES = 8 * 1024 * 1024  # above glibc's mmap threshold
PAGES = BLOCK_BYTES // 4096


def _faults_per_round(rounds: int) -> list[int]:
    """Minor page faults of each round of allocating, touching and freeing three large blocks."""
    counts = []
    for _ in range(rounds):
        before = minor_page_faults()
        blocks = [torch.empty(BLOCK_BYTES // 4, dtype=torch.float32).fill_(1.0) for _ in range(3)]
        del blocks
        counts.append(minor_page_faults() - before)
    return counts


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@glibc_only
def test_steady_heap_reuses_freed_blocks_without_faulting():
    with heap_held("steady") as heap:
        assert heap == "steady"
        counts = _faults_per_round(12)
    # The heap grows over the first rounds (how many depends on what the process allocated before: the
    # aligned blocks do not always fit back into freed ones at once) and is then reused. With glibc's
    # defaults each 8 MiB block would be a fresh mapping, faulted in page by page (2,048 faults) every round.
    assert sum(counts[-4:]) < PAGES // 100, counts


@glibc_only
def test_steady_heap_is_given_back_afterwards():
    with heap_held("steady"):
        _faults_per_round(4)
        held = _resident_bytes()
    assert held - _resident_bytes() > 2 * BLOCK_BYTES  # malloc_trim returned the freed blocks


def test_as_is_changes_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: pytest.fail("as-is must not touch the C library"))
    with heap_held("as-is") as heap:
        assert heap == "as-is"


def test_without_glibc_the_heap_is_left_alone_and_says_so(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    with heap_held("steady") as heap:
        assert heap == "as-is (not glibc)"


class FakeLibc:
    """Records mallopt and malloc_trim calls; accepts mallopt only when ``accept`` is true."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.calls: list[tuple] = []

    def mallopt(self, key, value) -> int:
        self.calls.append(("mallopt", key.value, value.value))
        return int(self.accept)

    def malloc_trim(self, pad) -> int:
        self.calls.append(("malloc_trim", pad.value))
        return 1


def test_steady_sets_then_restores_glibc_defaults_and_trims(monkeypatch):
    libc = FakeLibc(accept=True)
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with heap_held("steady") as heap:
        assert heap == "steady"
        assert libc.calls == [("mallopt", key, value) for key, value in STEADY.items()]
    restored = [("mallopt", key, value) for key, value in GLIBC_DEFAULTS.items()]
    assert libc.calls[len(STEADY) :] == [*restored, ("malloc_trim", 0)]


def test_refused_mallopt_falls_back_to_defaults_and_says_so(monkeypatch):
    libc = FakeLibc(accept=False)
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with heap_held("steady") as heap:
        assert heap == "as-is (mallopt refused)"
    assert libc.calls[-len(GLIBC_DEFAULTS) :] == [("mallopt", k, v) for k, v in GLIBC_DEFAULTS.items()]


def test_allocator_names():
    assert set(ALLOCATORS) == {"steady", "as-is"}
