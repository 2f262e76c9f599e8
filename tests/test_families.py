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


def test_a_family_whose_layers_refuse_the_grid_size_is_left_out_of_the_grid_with_why() -> None:
    """Halo at 64x64 on ResNet-10-T: a map its block size does not divide; at 256x256 every map fits."""
    from senet_profile.history.sweep import build_grid, try_models

    with pytest.warns(UserWarning) as caught:
        small = build_grid({"pairs": ["families:resnet10t"], "input_size": 64})
    said = [str(w.message) for w in caught if str(w.message).startswith("families: halo left out")]
    assert len(said) == 1 and "HaloAttn needs each feature map's height and width divisible" in said[0]
    assert not any("'halo'" in candidate for _, candidate in small.pairs)
    try_models(small)  # every family left in runs at the grid's size: the sweep is not refused for one
    with pytest.warns(UserWarning, match="families: ge left out"):
        large = build_grid({"pairs": ["families:resnet10t"], "input_size": 256})
    assert any("'halo'" in candidate for _, candidate in large.pairs)


def test_halo_says_its_maps_are_not_divisible_by_its_block_size() -> None:
    """A genuine limit of the family: the reason names the rule, the layer and its map, as built."""
    import re

    from senet_profile import api

    table = families.static_table(families.family_list("resnet18", ["halo"]), workload=SMALL)
    note = table[table["family"] == "halo"].iloc[0]["note"]
    assert note.startswith("fails in every pass (trace, inference, training): HaloAttn needs"), note
    assert "\n" not in note and "not of the tool" in note
    found = re.search(r"block size \((\d+)\), and (\S+) gets a (\d+)x(\d+) map at input 1x3x64x64", note)
    assert found, note
    block, layer, h, w = int(found[1]), found[2], int(found[3]), int(found[4])
    module = api.resolve(families.family_argument("resnet18", "halo")).module
    assert type(module.get_submodule(layer)).__name__ == "HaloAttn"
    assert module.get_submodule(layer).block_size == block and (h % block or w % block)
    assert families.input_limit(module, (1, 3, 256, 256)) is None  # 256: every map divisible by 8


def test_every_printed_row_loads_cites_its_source_and_names_a_family_the_tool_builds() -> None:
    from senet_profile import api

    papers = families.load_paper_tables()
    assert papers, "the data file has no rivals section"
    for paper in papers:
        built = {f.family: f for f in families.family_list(paper.backbone)}
        methods = [row["method"] for row in paper.rows]
        assert len(set(methods)) == len(methods)
        assert sum(row.get("family") == families.NONE for row in paper.rows) == 1  # one plain row
        for row in paper.rows:
            printed = set(row) - {"method", "family", "no_family", "where"}
            assert printed and printed <= set(paper.columns), (row["method"], printed - set(paper.columns))
            assert all(isinstance(row[key], int | float) for key in printed)
            cited = {part.split("(")[0].strip() for part in row["where"].split(";")}
            assert cited <= set(paper.sources), (row["method"], cited - set(paper.sources))
            if row.get("family") is None:  # no counterpart here: it says why
                assert row["no_family"].strip(), row["method"]
                continue
            assert row["family"] in built, f"{row['method']}: {row['family']!r} is not built by the tool"
            assert api.resolve(built[row["family"]].model).module is not None


def _rival_table(paper: families.PaperTable) -> pd.DataFrame:
    """A table of the families the paper names, with arbitrary figures (the report must show these)."""
    rows = []
    named = [r["family"] for r in paper.rows if r.get("family") not in (None, families.NONE)]
    for index, family in enumerate([families.NONE, *named]):
        params, macs = 25_000_000 + 1_234_567 * index, 4_000_000_000 + 7_654_321 * index
        timed = {"measured_pct": 2.25 * index, "ci_low": 2.0 * index, "ci_high": 2.5 * index, "pairs": 40}
        rows.append(
            {"family": family, "attn_class": "", "params": params, "params_delta": params - 25_000_000,
             "params_pct": (params / 25_000_000 - 1) * 100, "macs": macs, "macs_delta": macs - 4_000_000_000,
             "macs_pct": (macs / 4_000_000_000 - 1) * 100, "predicted_pct": 1.5 * index, "note": ""}
            | (timed if index else dict.fromkeys(timed, math.nan))
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_the_report_shows_every_printed_row_beside_the_computed_one() -> None:
    paper = next(p for p in families.load_paper_tables() if p.key == "eca_net")
    table = _rival_table(paper)
    text = "\n".join(families.paper_section(table, [paper]))
    assert paper.citation in text and paper.hardware in text and paper.batch in text
    for key, source in paper.sources.items():
        assert f"- {key}: {source}" in text
    ours = {row["family"]: row for row in table.to_dict(orient="records")}
    base = next(r for r in paper.rows if r.get("family") == families.NONE)
    overheads = text.split("#### The printed overheads beside ours")[1]
    for printed in paper.rows:
        lines = [line for line in text.splitlines() if line.startswith(f"| {printed['method']} ")]
        for key, (column, scale, label) in families.COMPUTED.items():
            if key not in printed:
                continue
            line = next(line for line in lines if f"| {label} " in line)  # every printed figure has its line
            assert f"| {printed[key]:g} " in line
            if column and printed.get("family"):  # beside the figure computed from the table
                assert f"| {ours[printed['family']][column] / scale:.6g} " in line
        if printed is base:
            continue
        row = next(line for line in overheads.splitlines() if line.startswith(f"| {printed['method']} "))
        added = round(printed["params_m"] - base["params_m"], 2) * 1e6
        assert families._count(added) in row  # the printed rows' difference, computed, not typed
        if printed.get("family"):
            mine = ours[printed["family"]]
            assert families._count(mine["params_delta"]) in row and families.measured_text(mine) in row
        else:
            assert printed["no_family"] in row


def test_printed_img_per_s_become_slowdowns_beside_ours() -> None:
    """When a table prints img/s, the slowdown over its plain row is computed and shown beside ours."""
    paper = families.PaperTable(
        key="synthetic", backbone="resnet50", input_size=224, citation="A paper", table="Table 9",
        hardware="one GPU", batch="batch 64", sources={"t9": "its Table 9"},
        columns={"params_m": "params (M)", "train_fps": "training img/s", "infer_fps": "inference img/s"},
        rows=(
            {"method": "Plain", "family": "none", "params_m": 25.0, "train_fps": 1000, "infer_fps": 2000,
             "where": "t9"},
            {"method": "With SE", "family": "se", "params_m": 27.5, "train_fps": 800, "infer_fps": 1600,
             "where": "t9"},
        ),
    )  # fmt: skip
    overheads = families.paper_overheads(_rival_table(paper), paper)
    se = overheads[overheads["family"] == "se"].iloc[0]
    assert se["printed_train_slowdown_pct"] == pytest.approx((1000 / 800 - 1) * 100)
    assert se["printed_infer_slowdown_pct"] == pytest.approx((2000 / 1600 - 1) * 100)
    text = "\n".join(families.paper_section(_rival_table(paper), [paper]))
    assert "training slowdown %, printed" in text and f"{(1000 / 800 - 1) * 100:+.1f}" in text
    assert "img/s as time per image" in text and "one GPU" in text and "batch 64" in text


def test_the_plot_labels_every_family_without_overlap_and_keeps_its_intervals() -> None:
    """Eight families crowded at one added-parameter count: every label is drawn, none overlaps another."""
    names = [f"family{i}" for i in range(8)]
    rows = [{"family": families.NONE, "params_delta": 0.0, "predicted_pct": 0.0, "measured_pct": math.nan,
             "ci_low": math.nan, "ci_high": math.nan}]  # fmt: skip
    for i, name in enumerate(names):  # the same x, overheads 0.05 % apart, every other one with an interval
        y = 5.0 + 0.05 * i
        interval = (y - 1.0, y + 1.0) if i % 2 else (math.nan, math.nan)
        rows.append({"family": name, "params_delta": 2_500_000.0, "predicted_pct": y - 0.5, "measured_pct": y,
                     "ci_low": interval[0], "ci_high": interval[1]})  # fmt: skip
    figure = families.overhead_figure(pd.DataFrame(rows), title="crowded", caption="")
    axis = figure.axes[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()  # annotations take their place when drawn
    renderer = canvas.get_renderer()
    labels = {text.get_text(): text for text in axis.texts}
    assert set(labels) == set(names)  # every family labelled (the plain backbone is not drawn)
    boxes = [Text.get_window_extent(text, renderer) for text in labels.values()]  # the words, not the leader
    frame = axis.get_window_extent(renderer)
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other), "two labels overlap"
    assert len(axis.containers) == len(names) // 2  # an error bar for each family with an interval
