"""Options of the bench suite: ``--full`` for every pair, ``--budget`` seconds per pair, ``--threads``."""

from __future__ import annotations

import pytest

from senet_profile.bench import cases

QUICK_BUDGET_S = 30.0
FULL_BUDGET_S = 60.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("senet-profile bench")
    group.addoption("--full", action="store_true", help="time every pair (default: the quick set)")
    group.addoption("--budget", type=float, default=None, help="seconds per pair (quick 20, full 60)")
    group.addoption("--threads", type=int, default=None, help="torch CPU threads while timing")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        selected = cases(full=metafunc.config.getoption("--full"))
        metafunc.parametrize("case", selected, ids=[f"{c.name} {c.setting}" for c in selected])


@pytest.fixture
def budget(request: pytest.FixtureRequest) -> float:
    chosen = request.config.getoption("--budget")
    return chosen or (FULL_BUDGET_S if request.config.getoption("--full") else QUICK_BUDGET_S)


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> int | None:
    return request.config.getoption("--threads")
