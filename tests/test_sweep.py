"""Sweeps: grids validated whole before anything runs, cases expanded once, written once, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from senet_profile.errors import UserInputError
from senet_profile.history.machine import describe_machine
from senet_profile.history.sweep import Case, SweepStore, build_grid, expand_pairs, run_sweep, se_twin


def test_pairs_names_patterns_and_twins() -> None:
    assert se_twin("se_resnet50:r=8,layout=paper") == "resnet50:layout=paper"
    assert se_twin("mobilenet_v3_large") == "mobilenet_v3_large:se=off"
    assert se_twin("senet154") == "senet154_no_se"
    assert se_twin("resnet50") is None
    pairs = expand_pairs(
        ["resnet50/se_resnet50", "se_resnet5*", "mobilenet_v3_large", "resnet50->se_resnet50"]
    )
    assert pairs == (
        ("resnet50", "se_resnet50"),
        ("mobilenet_v3_large:se=off", "mobilenet_v3_large"),
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "the grid is empty"),
        ({"pairs": []}, "the grid is empty"),
        ({"pairs": ["resnet50/se_resnet50"], "batch_sizes": []}, "batch_sizes has no values"),
        ({"pairs": ["resnet50/se_resnet51"]}, "unknown model 'se_resnet51'"),
        ({"pairs": ["resnet50/se_resnet50:q=3"]}, "q"),
        ({"pairs": ["resnet50/se_resnet50"], "modes": ["infer", "fly"]}, "unknown mode 'fly'"),
        ({"pairs": ["resnet50/se_resnet50"], "dtypes": ["fp64"]}, "unknown dtype 'fp64'"),
        ({"pairs": ["resnet50/se_resnet50"], "compile": ["maybe"]}, "compile must be on or off"),
        ({"pairs": ["resnet50/se_resnet50"], "batch_sizes": [1, 0]}, "positive integers"),
        ({"pairs": ["resnet50/se_resnet50"], "colour": "red"}, "unknown grid key 'colour'"),
        ({"pairs": ["resnet50"]}, "no SE-free twin"),
        ({"pairs": ["xyz_*"]}, "matches no model"),
        ({"pairs": ["resnet50/se_resnet50"], "metrics": "latency", "device": "meta"}, "meta device"),
        ({"pairs": ["resnet50/se_resnet50"], "metrics": "latency", "dtypes": "fp16"}, "fp16"),
    ],
)
def test_bad_grids_are_refused_whole(values: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        build_grid(values)


def test_cases_once_each_untimed_first_with_stable_ids() -> None:
    grid = build_grid(
        {
            "pairs": ["resnet50/se_resnet50", "resnet50/se_resnet50"],
            "batch_sizes": "1,8",
            "modes": ["infer", "train"],
            "compile": "off,on",
            "metrics": "all",
        }
    )
    cases = grid.cases()
    kinds = [c.kind for c in cases]
    # 2 static (batch) + 4 memory (batch x mode) + 8 latency (batch x mode x compile)
    assert (kinds.count("static"), kinds.count("memory"), kinds.count("latency")) == (2, 4, 8)
    assert kinds == sorted(kinds, key=lambda k: k == "latency")
    assert len({c.id for c in cases}) == len(cases)
    again = build_grid(_raw(grid))  # the same grid, from its own stored form
    assert [c.id for c in again.cases()] == [c.id for c in cases]
    assert again.sweep_id == grid.sweep_id
    assert Case.from_dict(cases[-1].as_dict()) == cases[-1]


def _raw(grid) -> dict:
    data = grid.as_dict()
    size = "x".join(map(str, data.pop("input_size")))
    pairs = [f"{b}/{c}" for b, c in data.pop("pairs")]
    return {"pairs": pairs, "budget": data.pop("budget_s"), "input_size": size, **data}


class FakeExecutor:
    """Runs cases in this process with made-up figures; counts every case it runs."""

    name = "fake"

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, cases: Sequence[Case]) -> Iterator[tuple[Case, dict | str]]:
        for case in cases:
            self.ran.append(case.id)
            if case.batch_size == 3:
                yield case, "boom"
                continue
            figure = {
                "model": case.base,
                "metric": "params",
                "setting": "x",
                "unit": "params",
                "value": 1,
                "deterministic": True,
            }
            machine = describe_machine().as_dict() | {"machine_class": "m1"}
            yield (
                case,
                {
                    "schema": 1,
                    "kind": "sweep",
                    "time": "2026-01-01T00:00:00+00:00",
                    "commit": "abc",
                    "machine": machine,
                    "settings": {"case_id": case.id},
                    "figures": [figure],
                },
            )

    def close(self) -> None:
        pass


def test_run_sweep_writes_each_case_once_and_resumes(tmp_path: Path) -> None:
    grid = build_grid({"pairs": ["resnet18/se_resnet18"], "batch_sizes": "1,2,3", "metrics": "static"})
    first = FakeExecutor()
    assert run_sweep(grid, first, sweeps_dir=tmp_path, limit=1).ran == 1  # a chunk of one case
    result = run_sweep(grid, first, sweeps_dir=tmp_path)
    assert (result.total, result.already_done, result.ran, len(result.failures)) == (3, 1, 1, 1)
    assert "boom" in result.failures[0]
    written = sorted((result.folder / "m1").glob("*.json"))
    assert len(written) == 2
    again = FakeExecutor()
    result = run_sweep(grid, again, sweeps_dir=tmp_path)
    assert result.already_done == 2
    assert len(first.ran) == 3
    assert len(again.ran) == 1 and again.ran[0] not in {p.stem for p in written}
    store = SweepStore(result.folder)
    with pytest.raises(ValueError, match="already recorded"):
        case = next(c for c in grid.cases() if c.id == written[0].stem)
        store.write(case, json.loads(written[0].read_text()))


def test_another_grid_under_the_same_id_is_refused(tmp_path: Path) -> None:
    one = build_grid({"pairs": ["resnet18/se_resnet18"]})
    two = build_grid({"pairs": ["resnet34/se_resnet34"]})
    run_sweep(one, FakeExecutor(), sweeps_dir=tmp_path, sweep_id="mine")
    with pytest.raises(UserInputError, match="another grid"):
        run_sweep(two, FakeExecutor(), sweeps_dir=tmp_path, sweep_id="mine")


KILL_GRID = [
    "--pair",
    "resnet18/se_resnet18",
    "--pair",
    "se_mobilenet_v1",
    "--batch-sizes",
    "1,2",
    "--metrics",
    "static",
    "--input-size",
    "32",
    "--jobs",
    "2",
]


def _sweep_command(sweeps_dir: Path) -> list[str]:
    main = "from senet_profile.cli import main; main()"
    return [sys.executable, "-c", main, "sweep", *KILL_GRID, "--sweeps-dir", str(sweeps_dir), "--id", "k"]


@pytest.mark.slow
def test_sigkill_mid_grid_then_rerun_records_every_case_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    driver = subprocess.Popen(_sweep_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("*/*.json"))) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = {p.name: p.read_bytes() for p in folder.glob("*/*.json")}
    cases = json.loads((folder / "manifest.json").read_text())["cases"]
    assert len(cases) == 4
    assert 2 <= len(before) < 4, "the driver was not killed mid-grid"
    rerun = subprocess.run(_sweep_command(tmp_path), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} already done, {4 - len(before)} run now" in rerun.stderr
    after = list(folder.glob("*/*.json"))
    assert sorted(p.stem for p in after) == sorted(c["id"] for c in cases)  # every case, exactly once
    assert all(p.read_bytes() == before[p.name] for p in after if p.name in before)  # none redone


def test_pairs_from_any_model_source() -> None:
    pytest.importorskip("timm")
    grid = build_grid({"pairs": ["timm:resnet18/timm:seresnet18", "torchvision:resnet18/se_resnet18"]})
    assert grid.pairs == (("timm:resnet18", "timm:seresnet18"), ("torchvision:resnet18", "se_resnet18"))
    with pytest.raises(UserInputError, match="seresnet19"):  # checked against timm's list, not run
        build_grid({"pairs": ["timm:resnet18/timm:seresnet19"]})
