"""The time explanation: per-class table, verdicts, and the refusals (no SE, ops without a rule)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet_profile.analysis.overhead import explain_time, verdicts
from senet_profile.analysis.roofline import MachineModel, op_time
from senet_profile.analysis.trace import OpEvent
from senet_profile.catalog.se import SEBlock, SEConfig
from senet_profile.errors import UserInputError
from senet_profile.setting import Setting
from tests.test_static import Cumulative

MACHINE = MachineModel(
    device="cpu", dtype="fp32", threads=1, bandwidth=((1000, 2e10), (10**8, 1e10)),
    mac_rates={k: 3e10 for k in ("dense", "pointwise", "gemm", "grouped", "depthwise")},
    efficiency={"elementwise": 1.0, "transcendental": 0.5, "reduction": 0.8, "pooling": 0.1,
                "normalization": 0.7, "data": 1.0, "matvec": 0.2},
    fixed_s={k: 5e-6 for k in ("dense", "pointwise", "gemm", "grouped", "depthwise", "elementwise",
                                "transcendental", "reduction", "pooling", "normalization", "data", "matvec")},
    view_overhead_s=5e-7,
)  # fmt: skip
SIZE = (8, 8)


def base() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())


def candidate() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), SEBlock(16, config=SEConfig(r=4)))


def test_prediction_only_table_and_verdicts() -> None:
    explained = explain_time(
        ("base", base()),
        ("se", candidate()),
        machine=MACHINE,
        latency=None,
        op_times=None,
        input_shape=(2, 3, *SIZE),
    )
    table = explained.table.set_index("op_class")
    assert table.loc["se_scale", "bytes_base"] == 0
    x, weights = 2 * 16 * 64 * 4, 2 * 16 * 4  # batch 2: the block input, the per-channel weights
    assert table.loc["se_scale", "bytes_candidate"] == x + weights + x  # read both, write the output
    assert table.loc["total", "predicted_s_candidate"] == pytest.approx(
        explained.candidate.prediction.total_s
    )
    assert table.loc["conv", "predicted_pp"] == 0  # the same conv on both sides
    se_pp = sum(table.loc[c, "predicted_pp"] for c in table.index if c.startswith("se_"))
    assert se_pp == pytest.approx(explained.predicted_pct)
    assert explained.flops_pct == pytest.approx(2 * 16 * 4 / (64 * 16 * 27) * 100)
    assert table["measured_s_base"].isna().all()
    lines = [row["verdict"] for row in verdicts(explained)]
    assert lines == ["FLOPs predict", "machine model predicts", "floor (SE's bytes)", "launch-free (model)"]


def test_measured_explanation_names_the_most_mispredicted_class() -> None:
    explained = explain_time(
        ("base", base()), ("se", candidate()), machine=MACHINE,
        latency=Setting(input_size=SIZE, budget_s=5.0, min_pairs=20, warmup=1, processes=1),
        op_times=Setting(input_size=SIZE, repeats=3, warmup=1),
    )  # fmt: skip
    rows = {row["verdict"]: row for row in verdicts(explained)}
    assert list(rows) == [
        "FLOPs predict", "machine model predicts", "measured (paired)", "in-model SE time share",
        "SE share, training pass", "floor (SE's bytes)", "launch-free (model)", "prediction error",
    ]  # fmt: skip
    assert "backward" in rows["SE share, training pass"]["detail"]
    assert rows["prediction error"]["overhead_pct"] == pytest.approx(
        explained.predicted_pct - explained.paired.overhead_pct
    )
    worst, points = explained.worst_class
    assert f"most mispredicted class: {worst} ({points:+.2f} pp)" in rows["prediction error"]["detail"]
    assert "time attribution costs" in rows["in-model SE time share"]["detail"]


def test_two_models_without_se_are_refused() -> None:
    with pytest.raises(UserInputError, match="neither a nor b has an SE block"):
        explain_time(("a", base()), ("b", base()), machine=MACHINE, latency=None, op_times=None)


def test_candidate_must_be_the_se_model() -> None:
    with pytest.raises(UserInputError, match="the candidate must be the SE model"):
        explain_time(("se", candidate()), ("a", base()), machine=MACHINE, latency=None, op_times=None)


def test_op_without_a_rule_is_named_in_the_prediction() -> None:
    with_cumsum = nn.Sequential(candidate(), Cumulative())
    explained = explain_time(
        ("base", base()), ("odd", with_cumsum), machine=MACHINE, latency=None, op_times=None
    )
    detail = verdicts(explained)[1]["detail"]
    assert detail.startswith("NOT PREDICTED") and "cumsum x1" in detail
    unknown = OpEvent("cumsum", "unknown", "1", 0, 16, 16, bytes_read=64, bytes_written=64)
    assert op_time(MACHINE, unknown) is None


def test_what_can_be_won_back_on_the_cpu() -> None:
    explained = explain_time(
        ("base", base()), ("se", candidate()), machine=MACHINE, latency=None, op_times=None
    )
    rows = {row["verdict"]: row for row in verdicts(explained)}
    se_bytes = explained.candidate.static.total.bytes_moved_se
    peak = max(b for _, b in MACHINE.bandwidth)
    assert rows["floor (SE's bytes)"]["overhead_pct"] == pytest.approx(
        se_bytes / peak / explained.base.prediction.total_s * 100
    )
    assert 0 < rows["launch-free (model)"]["overhead_pct"] < explained.predicted_pct  # fixed costs gone


def test_compiled_overhead_is_measured_beside(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend="eager", **kw))
    options = Setting(input_size=SIZE, budget_s=0.2, min_pairs=4, warmup=1, processes=1)
    explained = explain_time(
        ("base", base()), ("se", candidate()), machine=MACHINE, latency=None, op_times=None, compiled=options
    )
    assert explained.compiled is not None and explained.compiled.options.compile
    rows = {row["verdict"]: row for row in verdicts(explained)}
    assert rows["measured, torch.compile"]["overhead_pct"] == explained.compiled.overhead_pct
