"""``senet-profile families`` through the CLI runner: the table, the files for a reader, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from senet_profile.analysis.roofline import save
from senet_profile.history.machine import describe_machine
from tests.test_cli import ok, run
from tests.test_overhead import MACHINE

pytest.importorskip("timm")
SMALL = ("resnet18", "--input-size", "64", "--families", "se,eca,ge")


@pytest.fixture
def machine_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "machine"
    save(folder / f"{describe_machine().machine_class}.json", MACHINE)
    return folder


def test_report_csv_and_plot_for_a_reader(machine_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "families"
    result = ok("families", *SMALL, "--machine-dir", str(machine_dir), "--output-dir", str(out))
    for text in ("se (catalog)", "EcaModule", "does not build: TypeError"):
        assert text in result.stdout
    assert {p.name for p in out.iterdir()} == {
        "REPORT.md", "families.csv", "overhead_vs_params.png", "overhead_vs_params.svg",
    }  # fmt: skip
    report = (out / "REPORT.md").read_text(encoding="utf-8")
    assert report.startswith("# SE against its rivals on resnet18")
    assert "- `ge` (GatherExcite): does not build" in report  # listed with its reason, never dropped
    assert "not shown beside it" in report  # the ECA-Net table is of ResNet-50 at 224x224
    csv = (out / "families.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0].startswith("family,model,base,attn_class,params,params_delta,params_pct")
    assert [line.split(",")[0] for line in csv[1:]] == ["none", "se (catalog)", "se", "eca", "ge"]


def test_csv_to_stdout_without_prediction() -> None:
    result = ok("families", *SMALL, "--no-predict", "--metrics", "static", "--format", "csv")
    lines = result.stdout.splitlines()
    header = lines[0].split(",")
    eca = dict(zip(header, lines[4].split(","), strict=False))
    assert eca["family"] == "eca" and int(eca["params_delta"]) > 0
    assert eca["predicted_pct"] == "" and eca["peak_infer"] == ""  # not asked for


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--families", "nope"), "unknown attention family 'nope'"),
        (("resnet5O",), "unknown timm backbone"),
        (("--device", "meta"), "families times on cpu or cuda"),
        (("--metrics", "speed"), "unknown metrics"),
        (("--save", "--output-dir", "x"), "give --output-dir or --save, not both"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], message: str) -> None:
    result = run("families", *args)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_destination_that_is_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep", encoding="utf-8")
    result = run("families", *SMALL, "--output-dir", str(blocker))
    assert result.exit_code == 2 and "error: " in result.stderr
    assert blocker.read_text(encoding="utf-8") == "keep"
