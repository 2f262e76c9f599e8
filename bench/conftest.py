"""Options of the bench suite: ``--full`` for every pair, ``--budget`` seconds per pair, ``--threads``,
``--results`` (the folder whose ``machine/`` models the timed pairs' predictions use).

Timing runs on one thread by default: on a small shared machine two threads made SE's overhead swing by
up to 9 points from one process to the next (6.7 % to 15.3 % for ResNet-50 at batch 1), far beyond each
run's own interval; one thread leaves a core to everything else and keeps runs comparable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from senet_profile.history.bench import cases
from senet_profile.history.locations import results_root

QUICK_BUDGET_S = 30.0
FULL_BUDGET_S = 60.0
DEFAULT_THREADS = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("senet-profile bench")
    group.addoption("--full", action="store_true", help="time every pair (default: the quick set)")
    group.addoption("--budget", type=float, default=None, help="seconds per pair (quick 30, full 60)")
    group.addoption("--threads", type=int, default=DEFAULT_THREADS, help="torch CPU threads while timing (1)")
    group.addoption(
        "--results", default=None, help="results folder (default: $SENET_PROFILE_RESULTS, else ./results)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        selected = cases(full=metafunc.config.getoption("--full"))
        metafunc.parametrize("case", selected, ids=[f"{c.name} {c.label}" for c in selected])


@pytest.fixture
def budget(request: pytest.FixtureRequest) -> float:
    chosen = request.config.getoption("--budget")
    return chosen or (FULL_BUDGET_S if request.config.getoption("--full") else QUICK_BUDGET_S)


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--threads")


@pytest.fixture
def full(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--full")


@pytest.fixture
def machine_dir(request: pytest.FixtureRequest) -> Path:
    """Where the machine models live: RESULTS/machine (measured once per machine class when missing)."""
    given = request.config.getoption("--results")
    return results_root(Path(given) if given else None).machine
