"""Derive a GPU machine model from recorded figures (no GPU needed), and file it under results/machine/.

    python bench/derive_gpu_machine.py [--shared ../shared/gpu-h200-2026-12] [--results results]

Reads, from the shared folder of a GPU run (its README says how each file was made): ``gpu_check.json``
(the bandwidth probes, the machine class, resnet50's paired training time at batch 256 fp32),
``compare-train-b256-bf16-cl.txt`` (resnet50's training time at batch 256 bf16 channels-last, as
``compare`` printed it), ``profiler-summary.json`` (unprofiled wall times) and ``traces.tar``
(torch.profiler Chrome traces of resnet50 and se_resnet50: batch 1 fp32, batch 256 fp32, batch 256 bf16
channels-last). See ``senet_profile.analysis.gpumodel`` for what is fitted from which trace; the base's
training times set the backward MAC rate (``gpumodel.fit_backward``), nothing of SE's.
Writes ``RESULTS/machine/<machine class>.json`` (keys ``cuda fp32 threads=1``, PyTorch's default math:
TF32 convolutions; and ``cuda bf16 channels-last threads=1``), other keys kept.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path

from senet_profile.analysis import gpumodel, roofline
from senet_profile.analysis.kerneltrace import read_trace
from senet_profile.catalog.registry import get_model
from senet_profile.errors import UserInputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "gpu-h200-2026-12"
LARGE = {"fp32": ("b256_fp32", False), "bf16": ("b256_bf16_cl", True)}
SMALL = "b1_fp32"


def base_training_s(shared: Path, check: dict) -> dict[str, float]:
    """resnet50's measured training time at batch 256 per dtype: gpu_check's record (fp32) and the
    ``compare`` printout of the bf16 channels-last run (its latency row and runtime footer checked)."""
    records = [
        r for r in check["latency"] if r.get("mode") == "train" and r.get("batch") == 256
    ]  # fmt: skip
    if len(records) != 1:
        raise ValueError("gpu_check.json: expected one training record at batch 256")
    printed = (shared / "compare-train-b256-bf16-cl.txt").read_text(encoding="utf-8")
    row = re.search(r"^│ latency\s+│ s\s+│ ([0-9.]+) ms │", printed, re.MULTILINE)
    footer = re.search(r"^Runtime: cuda, train, .*bf16, channels_last", printed, re.MULTILINE)
    if row is None or footer is None:
        raise ValueError("compare-train-b256-bf16-cl.txt: no training latency row in bf16 channels-last")
    return {"fp32": float(records[0]["base_median_s"]), "bf16": float(row.group(1)) / 1e3}


def derive_all(shared: Path) -> tuple[str, list[roofline.MachineModel]]:
    """The machine class and the derived models (fp32 at PyTorch's default math, bf16 channels-last)."""
    check = json.loads((shared / "gpu_check.json").read_text(encoding="utf-8"))
    summary = json.loads((shared / "profiler-summary.json").read_text(encoding="utf-8"))
    walls = {(r["setting"], r["model"]): r["wall_ms_unprofiled"] / 1e3 for r in summary["runs"]}
    probes = roofline.from_dict(check["machine_model"], str(shared / "gpu_check.json"))
    base, candidate = get_model("resnet50", device="cpu"), get_model("se_resnet50", device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(shared / "traces.tar") as tar:
            tar.extractall(folder, filter="data")
        trace = {
            path.name.removesuffix(".json.gz"): read_trace(path) for path in Path(folder).glob("*.json.gz")
        }
    small = trace[f"{SMALL}_resnet50"]
    training = base_training_s(shared, check)
    one, many = (1, 3, 224, 224), (256, 3, 224, 224)
    source = f"derived by bench/derive_gpu_machine.py from {shared.name} (torch {summary['torch']})"
    models = []
    for dtype, (setting, channels_last) in LARGE.items():
        machine = gpumodel.derive(
            base=base, probes=probes, large=trace[f"{setting}_resnet50"], large_shape=many, small=small,
            small_shape=one, small_wall_s=walls[(SMALL, "resnet50")], dtype=dtype,
            channels_last=channels_last, source=source,
        )  # fmt: skip
        machine = gpumodel.calibrate_classes(
            machine, candidate=candidate, large=trace[f"{setting}_se_resnet50"], large_shape=many
        )
        machine = gpumodel.fit_backward(machine, base=base, shape=many, measured_train_s=training[dtype])
        models.append(machine)
    return check["machine"]["machine_class"], models


def main(argv: list[str] | None = None) -> int:
    """Derive and file the models; one line and exit 2 on unreadable input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    try:
        machine_class, models = derive_all(args.shared)
        path = args.results / "machine" / f"{machine_class}.json"
        for machine in models:
            roofline.save(path, machine)
    except (OSError, KeyError, ValueError, UserInputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for machine in models:
        print(f"{path} [{machine.key}]: {gpumodel.fitted_parameters(machine)} figures from traces and probes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
