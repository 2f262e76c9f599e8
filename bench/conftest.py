"""Options of the bench suite: ``--full`` for every pair, ``--budget`` seconds per pair, ``--threads``.

Timing runs on one thread by default: on a small shared machine two threads made SE's overhead swing by
up to 9 points from one process to the next (6.7 % to 15.3 % for ResNet-50 at batch 1), far beyond each
run's own interval; one thread leaves a core to everything else and keeps runs comparable.
"""

from __future__ import annotations

import pytest

from senet_profile.history.bench import cases

QUICK_BUDGET_S = 30.0
FULL_BUDGET_S = 60.0
DEFAULT_THREADS = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("senet-profile bench")
    group.addoption("--full", action="store_true", help="time every pair (default: the quick set)")
    group.addoption("--budget", type=float, default=None, help="seconds per pair (quick 20, full 60)")
    group.addoption("--threads", type=int, default=DEFAULT_THREADS, help="torch CPU threads while timing (1)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        selected = cases(full=metafunc.config.getoption("--full"))
        metafunc.parametrize("case", selected, ids=[f"{c.name} {c.setting}" for c in selected])


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
