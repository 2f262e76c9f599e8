"""``report.families``: every timm attention family on one backbone, a row or a reason, papers beside it."""

from __future__ import annotations

import importlib
import inspect
import math

import pandas as pd
import pytest
from torch import nn

from senet_profile.errors import UserInputError
from senet_profile.report import families
from senet_profile.setting import Setting
from tests.test_overhead import MACHINE

pytest.importorskip("timm")
SMALL = Setting(input_size=(64, 64))


@pytest.fixture(scope="module")
def registry_table() -> pd.DataFrame:
    """Every family of the installed timm on ResNet-10-T at 64x64, static and memory (no prediction)."""
    return families.static_table(families.family_list("resnet10t"), workload=SMALL)


def test_every_registered_family_has_a_row_or_a_one_line_reason(registry_table: pd.DataFrame) -> None:
    rows = {row["family"]: row for row in registry_table.to_dict(orient="records")}
    for name in families.registered_families():
        assert name in rows, f"{name} has no row"
        row = rows[name]
        measured = not math.isnan(row["params"])
        reason = row["note"]
        assert measured or (reason and "\n" not in reason), f"{name}: no figures and no one-line reason"
        if not measured:
            assert reason.startswith(("does not build", "static trace fails", "fails in every pass")), reason


def test_the_registry_is_read_whole() -> None:
    """Every attention class the registry module imports is reached by some registered name."""
    module = importlib.import_module("timm.layers.create_attn")
    classes = {
        name for name, obj in vars(module).items() if inspect.isclass(obj) and issubclass(obj, nn.Module)
    }
    reached = {families.attention_class(name) for name in families.registered_families()}
    assert classes <= reached, classes - reached
    get_attn = module.get_attn
    with pytest.raises(AssertionError):  # a name outside the registry is refused by timm itself
        get_attn("no-such-family")


def test_rows_against_the_plain_backbone(registry_table: pd.DataFrame) -> None:
    rows = {row["family"]: row for row in registry_table.to_dict(orient="records")}
    plain = rows[families.NONE]
    assert plain["params_delta"] == 0 and plain["peak_infer_delta"] == 0
    se = rows["se"]
    assert se["params"] - plain["params"] == se["params_delta"] > 0
    assert se["params_pct"] == pytest.approx(se["params_delta"] / plain["params"] * 100)
    assert rows["eca"]["params_delta"] < rows["se"]["params_delta"]  # ECA: a few 1-D kernels per block
    assert families.CATALOG_SE not in rows  # the catalog has no se_resnet10t


def test_the_catalog_se_beside_timm_se() -> None:
    table = families.static_table(families.family_list("resnet18", ["se"]), workload=SMALL)
    rows = {row["family"]: row for row in table.to_dict(orient="records")}
    assert rows[families.CATALOG_SE]["base"] == "resnet18"  # the catalog's SE against the catalog's twin
    assert rows[families.CATALOG_SE]["params_delta"] < rows["se"]["params_delta"]  # timm rounds widths up


def test_a_failing_pass_keeps_the_row() -> None:
    """SK at batch 1 cannot train (BatchNorm on a 1x1 map): its training peak is missing, with the reason."""
    rows = families.family_list("resnet18", ["sk"])
    table = families.static_table(rows, workload=SMALL, machine=MACHINE)
    sk = table[table["family"] == "sk"].iloc[0]
    assert sk["params_delta"] > 0 and not math.isnan(sk["peak_infer"]) and not math.isnan(sk["predicted_pct"])
    assert math.isnan(sk["peak_train"]) and sk["note"].startswith("training pass fails: ValueError")


def test_unknown_family_or_backbone_is_refused() -> None:
    with pytest.raises(UserInputError, match="unknown attention family 'nope'"):
        families.family_list("resnet50", ["nope"])
    with pytest.raises(UserInputError, match="unknown timm backbone"):
        families.family_list("resnet5O")


def test_latency_is_paired_and_a_row_per_family() -> None:
    """Two small models through api.compare: the measured column is filled, with its pair count."""
    plain = "tests/small_cnn.py:small_cnn"
    rows = [
        families.Family(family=families.NONE, model=plain, base=plain),
        families.Family(family="se", model=f"{plain}:se=on", base=plain),
    ]
    workload = Setting(input_size=(16, 16))
    table = families.static_table(rows, workload=workload)
    seen: list[tuple[int, str, int]] = []
    timed = families.measure_latency(
        table,
        runtime=Setting(budget_s=1.0, processes=1),
        workload=workload,
        progress=lambda i, f, pairs, hw: seen.append((i, f, pairs)),
    )
    se = timed[timed["family"] == "se"].iloc[0]
    assert se["pairs"] > 0 and not math.isnan(se["measured_pct"]) and not math.isnan(se["medians_pct"])
    assert math.isnan(timed[timed["family"] == families.NONE].iloc[0]["measured_pct"])  # the plain row
    assert {f for _, f, _ in seen} == {"se"}


def test_eca_paper_figures_beside_the_computed_ones() -> None:
    papers = families.load_paper_tables()
    eca = next(p for p in papers if p.key == "eca_net")
    assert "1910.03151" in eca.citation and "Table 3" in eca.table and eca.hardware and eca.batch
    table = pd.DataFrame(
        [
            {"family": "none", "params": 25_557_032, "macs": 4_089_184_256, "params_delta": 0,
             "macs_delta": 0},
            {"family": "eca", "params": 25_557_118, "macs": 4_089_272_064, "params_delta": 86,
             "macs_delta": 87_808},
        ]
    )  # fmt: skip
    figures = families.paper_figures(table, [eca])
    added = figures[figures["quantity"] == "params the module adds"]
    assert added.iloc[0]["printed"] == 80 and added.iloc[0]["computed"] == 86
    assert added.iloc[0]["status"] == "differs" and "k3557" in added.iloc[0]["note"]
    assert (figures.loc[figures["status"] == "differs", "note"] != "").all()  # every gap has its reason
    matched = families.paper_figures(table.assign(params_delta=[0, 80]), [eca])
    row = matched[matched["quantity"] == "params the module adds"].iloc[0]
    assert row["status"] == "match" and row["note"] == ""


def test_a_sweep_grid_can_name_families() -> None:
    from senet_profile.history.sweep import build_grid

    with pytest.warns(UserWarning, match="families: ge left out of the grid"):
        grid = build_grid({"pairs": ["families:resnet10t"]})
    candidates = [candidate for _, candidate in grid.pairs]
    assert {base for base, _ in grid.pairs} == {"timm:resnet10t"}
    assert "timm:resnet10t:block_args={'attn_layer':'eca'}" in candidates
    assert not any("'ge'" in c for c in candidates)  # GatherExcite does not build in timm 1.0's ResNet
