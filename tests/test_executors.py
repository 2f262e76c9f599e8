"""Executors: the local runner and Ray (a local 2-CPU instance) run the same grid to the same figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from senet_profile.analysis.intervals import MIN_CI_SAMPLES
from senet_profile.errors import UserInputError
from senet_profile.history.executors import LocalExecutor, RayExecutor, make_executor
from senet_profile.history.sweep import SweepStore, build_grid, run_sweep, sweep_records

# One pair, tiny input: a static case, a memory case and one short timed case (2 pairs at least).
GRID = {
    "pairs": ["resnet18/se_resnet18"],
    "batch_sizes": [1],
    "metrics": ["static", "memory", "latency"],
    "input_size": "32",
    "budget": 0.5,
}


def _figures(sweeps_dir: Path, executor) -> dict[str, list[dict]]:
    grid = build_grid(GRID)
    result = run_sweep(grid, executor, sweeps_dir=sweeps_dir)
    assert (result.ran, result.failures) == (3, [])
    records = sweep_records(SweepStore(result.folder), grid.cases())
    return {record.data["settings"]["case"]["kind"]: record.data["figures"] for record in records}


@pytest.fixture(scope="module")
def local_figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return _figures(tmp_path_factory.mktemp("local"), LocalExecutor(jobs=2))


def _check_timed(figures: list[dict]) -> None:
    (timed,) = figures
    assert timed["metric"] == "latency_overhead"
    assert timed["model"] == "resnet18 -> se_resnet18"
    assert timed["samples"] >= 2
    if timed["samples"] >= MIN_CI_SAMPLES:
        assert timed["ci_low"] <= timed["value"] <= timed["ci_high"]
    else:  # too few pairs in half a second for an interval: none is claimed
        assert timed["ci_low"] is None and timed["ci_high"] is None


@pytest.mark.slow
def test_local_executor_runs_every_kind(local_figures: dict[str, list[dict]]) -> None:
    assert set(local_figures) == {"static", "memory", "latency"}
    params = {f["model"]: f["value"] for f in local_figures["static"] if f["metric"] == "params"}
    assert params == {"resnet18": 11_689_512, "se_resnet18": 11_778_592}
    assert all(f["setting"] == "meta infer b1 32x32" for f in local_figures["memory"])
    _check_timed(local_figures["latency"])


@pytest.mark.slow
def test_ray_executor_gives_the_same_deterministic_figures(
    tmp_path: Path, local_figures: dict[str, list[dict]]
) -> None:
    pytest.importorskip("ray")
    executor = RayExecutor(num_cpus=2)
    try:
        ray_figures = _figures(tmp_path, executor)
    finally:
        executor.close()
    assert ray_figures["static"] == local_figures["static"]
    assert ray_figures["memory"] == local_figures["memory"]
    _check_timed(ray_figures["latency"])


def test_ray_missing_is_one_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(UserInputError, match=r"needs Ray: pip install 'senet-profile\[ray\]'"):
        make_executor("ray")


def test_unreachable_address_is_refused_quickly() -> None:
    pytest.importorskip("ray")
    with pytest.raises(UserInputError, match=r"no Ray cluster reachable at 127\.0\.0\.1:9"):
        make_executor("ray", address="127.0.0.1:9")
    with pytest.raises(UserInputError, match="HOST:PORT"):
        make_executor("ray", address="nowhere")
    with pytest.raises(UserInputError, match="unknown executor"):
        make_executor("slurm")
