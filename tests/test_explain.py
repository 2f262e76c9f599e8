"""SE's extra training memory, explained tensor by tensor and reconciled with the two peaks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from senet_profile.analysis.explain import explain, explain_peaks
from senet_profile.analysis.memory import measure_memory
from senet_profile.catalog.registry import get_model
from senet_profile.cli import app

# se_resnet18 at 64x64: two blocks per stage, maps of 16x16, 8x8, 4x4, 2x2 with 64..512 channels.
STAGES = ((64, 16), (128, 8), (256, 4), (512, 2))


@pytest.fixture(scope="module", params=[2, 3])
def explained(request):
    batch = request.param
    shape = (batch, 3, 64, 64)
    profiles = [
        measure_memory(get_model(m), shape, mode="train", device="meta") for m in ("resnet18", "se_resnet18")
    ]
    return batch, explain(*profiles)


def test_block_inputs_kept_by_the_scale_are_the_bulk(explained):
    batch, result = explained
    by_kind = dict(zip(result.by_kind["kind"], result.by_kind["bytes"], strict=True))
    kept = batch * 4 * sum(2 * channels * size * size for channels, size in STAGES)  # fp32, 2 blocks a stage
    assert by_kind["block input x, kept by x * weights"] == kept
    vectors = batch * 4 * sum(2 * channels for channels, _ in STAGES)
    assert by_kind["pooled vector, input of the first FC"] == vectors
    assert by_kind["gate output (weights), kept by the gate and by x * weights"] == vectors
    assert by_kind["ReLU output between the FCs (input of the second FC)"] == vectors // 16


def test_peak_difference_reconciles(explained):
    batch, result = explained
    assert result.se_saved == int(result.by_kind["bytes"].sum()) == int(result.tensors["bytes"].sum())
    # What the saved tensors leave over is one gate-sized gradient of the last stage (N x 512 fp32),
    # live at the peak when backward starts in the last SE block.
    assert result.residual == batch * 512 * 4
    assert len(result.tensors) == 4 * 8  # four tensors in each of the eight SE blocks


def test_cli_writes_the_report(tmp_path):
    out = tmp_path / "memory.md"
    result = CliRunner().invoke(
        app,
        [
            "explain-memory",
            "resnet18",
            "se_resnet18",
            "--batch-size",
            "2",
            "--input-size",
            "64",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "peak difference (candidate - base): 527,296 bytes" in text
    assert "layer4.1.se" in text


def test_inference_peaks_are_explained_tensor_by_tensor():
    result = CliRunner().invoke(
        app, ["explain-memory", "resnet50", "se_resnet50", "--mode", "infer", "--batch-size", "1"]
    )
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "- resnet50: peak 10,436,608 bytes, reached when `layer1.0.downsample.1` allocated" in text
    assert "- se_resnet50: peak 10,437,632 bytes, reached when `layer1.1.se` allocated mul" in text
    assert "peak difference (candidate - base): 1,024 bytes" in text
    differing = text.split("## Storages live at one peak and not at the other")[1].split("##")[0]
    rows = [line for line in differing.splitlines() if line.startswith(("| se_", "| resnet"))]
    assert [row.replace(" ", "") for row in rows] == [
        "|se_resnet50|layer1.1.se.gate|sigmoid|1x256x1x1|1,024|True||",
    ]


def test_peaks_reconcile_with_the_unmatched_storages():
    shape = (2, 3, 64, 64)
    for mode in ("infer", "train"):
        base, candidate = (
            measure_memory(get_model(m, device="meta"), shape, mode=mode, device="meta")
            for m in ("resnet18", "se_resnet50")
        )
        assert sum(t.nbytes for t in base.peak_tensors) == base.peak_bytes
        peaks = explain_peaks(base, candidate)
        sides, sizes = peaks.differing["model"], peaks.differing["bytes"]
        signed = [b if side == "candidate" else -b for side, b in zip(sides, sizes, strict=True)]
        assert sum(signed) == peaks.peak_delta == candidate.peak_bytes - base.peak_bytes


def test_se_resnet50_training_names_the_blocks_x_kept_by_the_scale():
    """By identity, not shape: each block's own extra is its x (the last BN's output) that x * s keeps."""
    shape = (1, 3, 64, 64)
    base, candidate = (
        measure_memory(get_model(m, device="meta"), shape, mode="train", device="meta")
        for m in ("resnet50", "se_resnet50")
    )
    differing = explain_peaks(base, candidate).differing
    assert set(differing["model"]) == {"candidate"}
    forward = differing[differing["module"] != "(top level / backward)"]
    outside_se = forward[~forward["in_se"].astype(bool)]
    # The peak falls in the last block's backward, whose x * s has already given back its x: 15 of 16.
    blocks = 3 + 4 + 6 + 3
    assert len(outside_se) == blocks - 1
    assert set(outside_se["op"]) == {"native_batch_norm"}
    assert all(module.endswith(".bn3") for module in outside_se["module"])
    assert set(differing.loc[differing["module"] == "(top level / backward)", "op"]) <= {"mul", "sum"}
    for module, kept in zip(outside_se["module"], outside_se["kept alive by"], strict=True):
        block = module.rpartition(".")[0]
        assert kept == f"{block}.se: mul (x * s: SE's scale keeps its input x)"
    assert not differing["module"].str.endswith(".conv3").any()
