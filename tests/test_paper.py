"""The paper report: printed beside computed, every gap explained, the committed report current."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from senet_profile.analysis.trace import trace_ops
from senet_profile.catalog.registry import get_model
from senet_profile.cli import app
from senet_profile.report import paper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame():
    return paper.paper_report()


def _figure(figure_id: str) -> paper.PaperFigure:
    return next(f for f in paper.load_figures()[1] if f.id == figure_id)


def test_data_file_is_cited_and_ids_unique():
    citation, figures = paper.load_figures()
    assert "Squeeze-and-Excitation Networks" in citation and "1709.01507" in citation
    ids = [f.id for f in figures]
    assert len(ids) == len(set(ids))
    assert {f.quantity for f in figures} <= set(paper.QUANTITIES)
    assert {f.kind for f in figures} <= set(paper.KINDS)
    assert {f.source for f in figures} <= set(paper.SECTIONS)


def test_every_gap_is_explained(frame):
    differs = frame[frame["status"] == "differs"]
    assert not differs["note"].str.startswith("UNEXPLAINED").any(), differs["id"].tolist()
    assert (frame.loc[frame["status"] != "differs", "note"] == "").all()


def test_explanations_only_for_figures_that_differ(frame):
    """A recorded reason for a figure that now matches is stale: it must go."""
    status = dict(zip(frame["id"], frame["status"], strict=True))
    assert {key: status.get(key) for key in paper.EXPLANATIONS} == dict.fromkeys(
        paper.EXPLANATIONS, "differs"
    )


def test_computed_values_come_from_the_built_model(frame):
    row = frame[frame["id"] == "s4.resnet50.gflops"].iloc[0]
    assert row["computed"] == pytest.approx(3_857_973_248 / 1e9, abs=1e-12)
    row = frame[frame["id"] == "t10.r2.params"].iloc[0]
    # Eq. 5 without biases: 25,557,032 + (2/2) * sum N_s C_s^2 = 25,557,032 + 20,119,552.
    assert row["computed"] == pytest.approx((25_557_032 + 20_119_552) / 1e6, abs=1e-12)
    assert row["status"] == "match"
    assert row["computed_se_ops"] is None


def test_conventions_are_ordered_and_distinct(frame):
    row = frame[frame["id"] == "s4.se_resnet50.gflops"].iloc[0]
    assert row["computed"] < row["computed_se_squeeze"] < row["computed_se_ops"]
    assert row["status"] == "match with +SE squeeze"
    assert row["matched_by"] == "+SE squeeze, +SE ops"


def test_inception_resnet_is_counted_at_299(frame):
    row = frame[frame["id"] == "t2.inception_resnet_v2"].iloc[0]
    assert row["input_size"] == 299
    at_224 = paper.counts_for("inception_resnet_v2", 224).macs / 1e9
    assert row["computed"] > at_224


@pytest.mark.parametrize(
    "figure_id", ["t10.r4.params", "t10.r8.params", "t10.r32.params", "t13.stage4.params"]
)
def test_params_slips_are_not_fixed_by_fc_biases(figure_id):
    """The explanation claims biases do not close the gap: check it on the model with biases."""
    figure = _figure(figure_id)
    with_bias = replace(figure, model=figure.model.replace(",bias=off", ""))
    assert with_bias.model != figure.model
    assert paper.evaluate(with_bias)["status"] == "differs"


@pytest.mark.parametrize("figure_id", ["t2.resnet50", "t2.resnet101", "t2.resnet152", "t2.resnext50"])
def test_residual_additions_close_the_gap(figure_id):
    """The explanation for ResNet-101/152 and ResNeXt-50: MACs plus one op per residual-add element."""
    figure = _figure(figure_id)
    model = get_model(figure.model)
    trace = trace_ops(model, torch.empty(1, 3, 224, 224, device="meta"))
    adds = sum(
        e.out_elements for e in trace.events if e.op == "add" and re.fullmatch(r"layer\d\.\d+", e.module)
    )
    macs = sum(e.macs for e in trace.events)
    assert round((macs + adds) / 1e9, figure.decimals) == pytest.approx(figure.printed)


def test_committed_report_is_current(frame):
    folder = ROOT / "results" / "paper"
    message = "run `senet-profile paper` and commit results/paper/"
    assert (folder / "figures.csv").read_text(encoding="utf-8") == frame.to_csv(index=False), message
    assert (folder / "REPORT.md").read_text(encoding="utf-8") == paper.markdown_report(frame), message


def test_report_has_no_timings_or_dates(frame):
    text = paper.markdown_report(frame)
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\d+(\.\d+)? ?s\b", text)


def test_cli_paper_writes_report(tmp_path):
    result = CliRunner().invoke(app, ["paper", "--output-dir", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figures.csv").read_text(encoding="utf-8").startswith("id,source,item,model")
    assert (tmp_path / "REPORT.md").read_text(encoding="utf-8").startswith("# Squeeze-and-Excitation")


def test_cli_paper_refuses_a_file_as_folder(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep", encoding="utf-8")
    result = CliRunner().invoke(app, ["paper", "--output-dir", str(target)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error:") and target.read_text(encoding="utf-8") == "keep"


def test_counting_in_worker_processes_gives_the_same_counts() -> None:
    keys = [("resnet18", 64), ("se_resnet18", 64)]
    seen: list[tuple[int, int]] = []
    forked = paper.count_all(keys, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert forked == {key: paper.counts_for(*key) for key in keys}
    assert seen == [(1, 2), (2, 2)]


def test_se_row_is_no_match_while_its_twin_differs(frame):
    rows = frame.set_index("id")
    assert rows.loc["t2.resnet152", "status"] == "differs"
    # SE-ResNet-152 is matched by "+SE ops", but only by coincidence: ResNet-152's squeeze count equals
    # its residual-add count, so "+SE ops" equals the residual-add explanation of its twin.
    assert rows.loc["t2.se_resnet152", "matched_by"] == "+SE ops"
    assert rows.loc["t2.se_resnet152", "status"] == "differs"
    assert rows.loc["t2.se_resnet152", "note"] == rows.loc["t2.se_resnet101", "note"] == paper._FOLLOWS_BASE
    trace = trace_ops(get_model("resnet152:layout=paper"), torch.empty(1, 3, 224, 224, device="meta"))
    adds = sum(
        e.out_elements for e in trace.events if e.op == "add" and re.fullmatch(r"layer\d\.\d+", e.module)
    )
    squeeze = paper.counts_for("se_resnet152:layout=paper", 224).se_squeeze_ops
    assert adds == squeeze == 13_146_112
    # A twin that matches leaves the SE row's own status alone.
    assert rows.loc["t2.resnet50", "status"].startswith("match")
    assert rows.loc["t2.se_resnet50", "status"].startswith("match")


def test_twin_is_the_same_tables_se_free_row():
    figures = paper.load_figures()[1]
    assert paper.twin_of(_figure("t2.se_resnet152"), figures) == _figure("t2.resnet152")
    assert paper.twin_of(_figure("t2.resnet152"), figures) is None
