"""--trace: a Chrome/Perfetto trace of a few forwards of both models, SE modules marked as ranges."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from senet_profile.analysis.profiler_trace import DEFAULT_FORWARDS, attention_ranges, write_trace
from senet_profile.catalog.registry import get_model
from senet_profile.cli import app

SHIPPED = Path(__file__).resolve().parents[1] / "results"


def _names(path: Path) -> list[str]:
    events = json.loads(path.read_text(encoding="utf-8"))["traceEvents"]
    return [event.get("name", "") for event in events]


def test_trace_marks_each_se_module_in_each_forward(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    models = [(name, get_model(name, device="cpu")) for name in ("resnet18", "se_resnet18")]
    marked = write_trace(models, (1, 3, 32, 32), path)
    assert marked == {"resnet18": 0, "se_resnet18": 8}
    names = _names(path)
    se_ranges = [n for n in names if n.startswith("se layer")]
    assert len(se_ranges) == 8 * DEFAULT_FORWARDS and "se layer1.0.se" in se_ranges
    for name in ("resnet18", "se_resnet18"):
        assert sum(n.startswith(f"{name} forward ") for n in names) == DEFAULT_FORWARDS
    assert any(n.startswith("aten::") for n in names)  # the ops themselves, inside the ranges


def test_ranges_are_removed_afterwards() -> None:
    model = get_model("se_resnet18", device="cpu")
    with attention_ranges(model) as marked:
        assert len(marked) == 8
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_explain_and_compare_write_a_trace(tmp_path: Path) -> None:
    machine = tmp_path / "machine"
    shutil.copytree(SHIPPED / "machine", machine)
    trace = tmp_path / "explain.json"
    args = ["explain", "resnet18", "se_resnet18", "--no-measure", "--input-size", "32", "--machine-dir"]
    result = CliRunner().invoke(app, [*args, str(machine), "--trace", str(trace)])
    assert result.exit_code == 0, result.stderr
    assert "se layer4.1.se" in _names(trace) and f"wrote {trace}" in result.stderr
    refused = CliRunner().invoke(app, ["compare", "resnet18", "se_resnet18", "--trace", str(tmp_path / "t")])
    assert refused.exit_code == 2 and "--metrics latency" in refused.stderr
    assert not (tmp_path / "t").exists()
    timed = tmp_path / "compare.json"
    result = CliRunner().invoke(app, ["compare", "resnet18", "se_resnet18", "--metrics", "latency",
                                      "--input-size", "32", "--budget", "2", "--processes", "1",
                                      "--trace", str(timed)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sum(n.startswith("se_resnet18 forward") for n in _names(timed)) == DEFAULT_FORWARDS
