"""The CUDA paths this project has not run yet, in one script of under 8 minutes on one GPU.

    python bench/gpu_check.py [--out results/gpu] [--budget 40]

For ResNet-50 against SE-ResNet-50 it records, in ``results/gpu/<device-class>/gpu_check.json``:
- memory: the tracked peak beside ``torch.cuda.max_memory_allocated``, inference b1 and a training pass b32;
- paired latency: inference at batch 1 and 256, a training pass at 256 (paper: 190 -> 209 ms, 8 Titan X);
- the machine model's bandwidths, MAC rates and fixed costs on this GPU (fp32, measured now);
- the prediction check: FLOPs and machine-model predicted overheads beside each measured one, with the error.
Without a CUDA device it writes nothing and exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from senet_profile.analysis.latency import measure_paired
from senet_profile.analysis.memory import measure_memory
from senet_profile.analysis.overhead import explain_time
from senet_profile.analysis.roofline import measure_machine
from senet_profile.catalog.registry import get_model
from senet_profile.history.machine import describe_machine
from senet_profile.io import write_atomic
from senet_profile.setting import Setting

PAIR = ("resnet50", "se_resnet50")
LATENCY_SETTINGS = (("infer", 1), ("infer", 256), ("train", 256))
MEMORY_SETTINGS = (("infer", 1), ("train", 32))


def _memory() -> list[dict]:
    rows = []
    for name in PAIR:
        for mode, batch in MEMORY_SETTINGS:
            profile = measure_memory(get_model(name), (batch, 3, 224, 224), mode=mode, device="cuda")
            rows.append({"model": name, "mode": mode, "batch": batch,
                         "tracked_peak_bytes": profile.peak_bytes,
                         "cuda_max_memory_allocated": profile.cuda_max_allocated})  # fmt: skip
    return rows


def _latency(machine, budget_s: float) -> list[dict]:
    rows = []
    base, candidate = (get_model(name, device="cpu") for name in PAIR)
    for mode, batch in LATENCY_SETTINGS:
        options = Setting(
            device="cuda", mode=mode, batch_size=batch, threads=None, budget_s=budget_s, processes=1
        )
        result = measure_paired(base, candidate, options)
        row = {"mode": mode, "batch": batch, "overhead_pct": result.overhead_pct, "ci_low": result.ci_low_pct,
               "ci_high": result.ci_high_pct, "pairs": result.pairs, "base_median_s": result.base.median_s,
               "candidate_median_s": result.candidate.median_s}  # fmt: skip
        if mode == "infer":
            explained = explain_time(
                (PAIR[0], base), (PAIR[1], candidate), machine=machine, latency=None, op_times=None,
                input_shape=(batch, 3, 224, 224),
            )  # fmt: skip
            row |= {"flops_pct": explained.flops_pct, "predicted_pct": explained.predicted_pct,
                    "prediction_error_pp": explained.predicted_pct - result.overhead_pct}  # fmt: skip
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every check and write the record; exit 2 with one line when there is no GPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu"))
    parser.add_argument("--budget", type=float, default=40.0, help="seconds per timed setting")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device on this machine; the GPU check has not run", file=sys.stderr)
        return 2
    started = time.perf_counter()
    info = describe_machine()
    folder = args.out / info.machine_class
    folder.mkdir(parents=True, exist_ok=True)
    machine = measure_machine(device="cuda", dtype="fp32", threads=1)
    record = {
        "machine": info.as_dict(),
        "machine_model": asdict(machine),
        "memory": _memory(),
        "latency": _latency(machine, args.budget),
    }
    record["wall_s"] = time.perf_counter() - started
    write_atomic(folder / "gpu_check.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {folder / 'gpu_check.json'} in {record['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
