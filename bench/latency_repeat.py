"""Repeat `senet-profile compare resnet50 se_resnet50 --metrics latency` in fresh processes; write a table.

    python bench/latency_repeat.py [--runs 5] [--output-dir results/latency/<machine-class>]

Run it alone on the machine (under an exclusive lock where the machine is shared). It writes
``repeat-resnet50-se_resnet50-<runs>runs.md`` and ``.csv``: each run's paired overhead, 95 % CI,
half-width, pairs, wall time and how many of the other runs' estimates its interval holds, with the
verdict on the goals (half-width <= 1 pp within 60 s; every estimate inside every other interval).
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timezone
from pathlib import Path

from senet_profile.history.machine import describe_machine, git_commit
from senet_profile.history.repeat import COMMAND, coverage_table, one_run, verdict
from senet_profile.io import check_writable, write_atomic
from senet_profile.report import tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()
    machine = describe_machine()
    folder = args.output_dir or Path("results/latency") / machine.machine_class
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"repeat-resnet50-se_resnet50-{args.runs}runs"
    for path in (stem.with_suffix(".md"), stem.with_suffix(".csv")):
        check_writable(path)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_before = os.getloadavg()[0]
    runs = []
    for index in range(args.runs):
        runs.append(one_run())
        print(f"run {index + 1}: {runs[-1]}", flush=True)
    load_after = os.getloadavg()[0]
    table = coverage_table(runs)
    caption = "\n".join(
        [
            f"Command, each run a fresh process: senet-profile {' '.join(COMMAND)}.",
            f"Machine: {machine.cpu}, {machine.cores} cores ({machine.machine_class}); torch "
            f"{machine.versions['torch']}; commit {git_commit()}; started {started}; one-minute load "
            f"average {load_before:.2f} before the runs, {load_after:.2f} after (the machine has "
            f"{machine.cores} cores; above 1, other work shared them).",
            "overhead_pct: median of per-pair ratios; ci_low/ci_high: its 95 % interval; others_inside: how "
            "many of the other runs' overheads lie inside this run's interval.",
            *[f"Verdict: {line}." for line in verdict(table)],
        ]
    )
    title = f"SE latency overhead, resnet50 -> se_resnet50, {args.runs} fresh runs"
    write_atomic(stem.with_suffix(".md"), tables.render(table, "markdown", title=title, caption=caption))
    write_atomic(stem.with_suffix(".csv"), tables.render(table, "csv"))
    print(tables.render(table, "markdown", title=title, caption=caption))


if __name__ == "__main__":
    main()
