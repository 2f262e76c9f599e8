"""The paper report: printed beside computed, every gap explained, the committed CSV current."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from senet_profile import paper
from senet_profile.cli import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame():
    return paper.paper_report()


def test_data_file_is_cited_and_ids_unique():
    citation, figures = paper.load_figures()
    assert "Squeeze-and-Excitation Networks" in citation and "1709.01507" in citation
    ids = [f.id for f in figures]
    assert len(ids) == len(set(ids))
    assert {f.quantity for f in figures} <= set(paper.QUANTITIES)
    assert {f.kind for f in figures} <= set(paper.KINDS)


def test_every_gap_is_explained(frame):
    differs = frame[frame["status"] == "differs"]
    assert not differs["note"].str.startswith("UNEXPLAINED").any(), differs[["id", "counted_as"]]
    assert (frame.loc[frame["status"] == "match", "note"] == "").all()


def test_explanations_only_for_rows_that_exist():
    ids = {f.id for f in paper.load_figures()[1]}
    assert {key.split("/")[0] for key in paper.EXPLANATIONS} <= ids


def test_computed_values_come_from_the_built_model(frame):
    row = frame[(frame["id"] == "s4.resnet50.gflops") & (frame["counted_as"] == "GMACs")].iloc[0]
    assert row["computed"] == pytest.approx(3_857_973_248 / 1e9, abs=1e-12)
    row = frame[frame["id"] == "t10.r2.params"].iloc[0]
    # Eq. 5 without biases: 25,557,032 + (2/2) * sum N_s C_s^2 = 25,557,032 + 20,119,552.
    assert row["computed"] == pytest.approx((25_557_032 + 20_119_552) / 1e6, abs=1e-12)
    assert row["status"] == "match"


def test_nosqueeze_matches_with_macs_alone(frame):
    rows = frame[frame["id"] == "t16.nosqueeze.gflops"].set_index("counted_as")
    assert rows.loc["GMACs", "status"] == "match"
    assert rows.loc["GMACs + SE element ops", "status"] == "differs"


@pytest.mark.parametrize("figure_id", ["t10.r4.params", "t10.r8.params", "t10.r32.params", "t13.stage4.params"])
def test_params_slips_are_not_fixed_by_fc_biases(figure_id):
    """The explanation claims biases do not close the gap: check it on the model with biases."""
    figure = next(f for f in paper.load_figures()[1] if f.id == figure_id)
    with_bias = replace(figure, model=figure.model.replace(",bias=off", ""))
    assert with_bias.model != figure.model
    assert all(record["status"] == "differs" for record in paper.evaluate(with_bias))


def test_committed_csv_is_current(frame):
    committed = (ROOT / "results" / "paper" / "resnet50.csv").read_text(encoding="utf-8")
    assert committed == frame.to_csv(index=False), "run `senet-profile paper` and commit results/paper/"


def test_cli_paper_writes_csv(tmp_path):
    result = CliRunner().invoke(app, ["paper", "--output-dir", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "resnet50.csv").read_text(encoding="utf-8").startswith("id,source,item,model")
