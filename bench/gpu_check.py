"""The GPU check: SE's cost on one GPU in every setting that matters, beside the machine model, in one run.

    python bench/gpu_check.py [--budget 12] [--results results] [--large-batch 256] [--no-calibrate]

First (unless ``--no-calibrate``) this GPU's machine model is calibrated from its own probes and kernel
traces (``calibrate``: streaming-add bandwidths; torch.profiler traces of ResNet-50 at batch 1 and at the
large batch in each precision, and of SE-ResNet-50 at the large batch; derived as the H200's was offline)
and filed under ``RESULTS/machine/<class>.json``. Then, for ResNet-50 against SE-ResNet-50 (paired, ABBA,
median of per-pair ratios; ``analysis.latency``):
- inference at batch 1 and ``--large-batch``, a training pass at ``--large-batch``, each in IEEE fp32, TF32
  and bf16 channels-last (the math set inside the timed process and read back: ``analysis.precision``);
- torch.compile (default mode, one compilation per model and batch) and a captured CUDA graph replayed
  (no host dispatch), inference at batch 1 and ``--large-batch``, in PyTorch's default math;
- peak memory, tracked (``analysis.memory``) beside ``torch.cuda.max_memory_allocated``, and the gap;
- the machine model's prediction for every setting whose model is stored for this machine class
  (``RESULTS/machine/<class>.json``; for a CUDA graph: the model without host dispatch), and its error.
It writes ``RESULTS/gpu/<machine class>/``: ``gpu_check.json`` (a run record through the store's schema),
``gpu_check.md`` (the table, with img/s) and ``gpu_check.png`` (measured and predicted overheads). About
13 timed settings at ``--budget`` seconds each, two compilations per model: about 6 minutes on an H200.

Every model is built with its weights on the CPU and moved by the timers (a model built on meta cannot be
moved: the first run of the old script stopped there). ``--device cpu`` runs every path on the CPU (the
tests do, with tiny models): there is no CUDA graph off CUDA, so that row times the eager call.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from senet_profile import api
from senet_profile.analysis import gpumodel, kerneltrace, roofline
from senet_profile.analysis.intervals import MIN_CI_SAMPLES, bootstrap_median_ci
from senet_profile.analysis.latency import Sampler, measure_paired, train_step
from senet_profile.analysis.memory import measure_memory
from senet_profile.analysis.overhead import explain_time, launch_free
from senet_profile.analysis.precision import fp32_math, precision_label
from senet_profile.analysis.static import in_layout
from senet_profile.catalog.attention import SE, attention_modules
from senet_profile.errors import UserInputError
from senet_profile.history.machine import describe_machine
from senet_profile.history.records import new_record
from senet_profile.history.schema import check_record
from senet_profile.io import write_atomic
from senet_profile.setting import Setting, torch_dtype

PAIR = ("resnet50", "se_resnet50")
# (label, dtype, math, channels_last)
PRECISIONS = (
    ("IEEE fp32", "fp32", "ieee", False),
    ("TF32", "fp32", "tf32", False),
    ("bf16 channels-last", "bf16", "default", True),
)
MEMORY_GAP = (
    "torch.cuda.max_memory_allocated counts what the caching allocator handed out: the tracked tensors "
    "rounded up to its blocks (512 B; large ones in 2 MiB segments) plus cuDNN's workspaces"
)


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """What the check runs: device, models, batches, input size, seconds per timed setting, where to write."""

    device: str = "cuda"
    pair: tuple[str, str] = PAIR
    large_batch: int = 256
    input_size: tuple[int, int] = (224, 224)
    budget_s: float = 12.0
    min_pairs: int = 100
    memory: tuple[tuple[str, int], ...] = (("infer", 1), ("train", 32))
    results: Path = Path("results")
    machine_class: str | None = None  # default: this machine's
    calibrate: bool = True  # derive this GPU's machine model from its own profiles first (CUDA only)


def _built(name: str) -> nn.Module:
    """The model with its weights, on the CPU (the timers move copies to the device)."""
    return api.resolve(name, device="cpu").module


def _machine(config: CheckConfig, machine_class: str, dtype: str, math: str, channels_last: bool):
    """The stored machine model of this setting, or None (with no model, no prediction)."""
    path = config.results / "machine" / f"{machine_class}.json"
    key = roofline.setting_key(config.device, dtype, 1, channels_last=channels_last, math=math)
    if not path.is_file():
        return None
    try:
        return roofline.load(path, key)
    except UserInputError:
        return None


def _predicted(models, machine, *, mode: str, batch: int, size: tuple[int, int], graph: bool = False):
    """The machine model's overhead (percent) for this setting; for a graph, without host dispatch."""
    if machine is None:
        return None
    chosen = launch_free(machine) if graph else machine
    explained = explain_time(
        *models, machine=chosen, latency=None, op_times=None, input_shape=(batch, 3, *size), mode=mode
    )
    return explained.predicted_pct


def _row(label: str, mode: str, batch: int, paired_figures: dict, predicted: float | None) -> dict:
    base_s, candidate_s = paired_figures["base_s"], paired_figures["candidate_s"]
    measured = paired_figures["overhead_pct"]
    return {
        "setting": label, "mode": mode, "batch": batch, "precision": paired_figures["precision"],
        "base_ms": base_s * 1e3, "candidate_ms": candidate_s * 1e3, "overhead_pct": measured,
        "ci_low": paired_figures["ci_low"], "ci_high": paired_figures["ci_high"],
        "pairs": paired_figures["pairs"], "img_s_base": batch / base_s,
        "img_s_candidate": batch / candidate_s,
        "predicted_pct": predicted, "error_pp": None if predicted is None else predicted - measured,
    }  # fmt: skip


def _eager(models, config: CheckConfig, *, mode, batch, dtype, math, channels_last) -> dict:
    options = Setting(
        device=config.device, mode=mode, batch_size=batch, dtype=dtype, math=math,
        channels_last=channels_last,
        budget_s=config.budget_s, min_pairs=config.min_pairs, input_size=config.input_size, processes=1,
    )  # fmt: skip
    result = measure_paired(models[0][1], models[1][1], options)
    return {
        "base_s": result.base.median_s, "candidate_s": result.candidate.median_s,
        "overhead_pct": result.overhead_pct, "ci_low": result.ci_low_pct, "ci_high": result.ci_high_pct,
        "pairs": result.pairs, "precision": result.precision,
    }  # fmt: skip


def _graphed(model: nn.Module, x: torch.Tensor, device: str):
    """A call of ``model`` on ``x`` as a captured CUDA graph's replay (off CUDA: the eager call)."""
    if device != "cuda":
        return partial(model, x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # cuDNN picks its algorithms before the capture
            model(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay


def _paired_steps(steps, sync, config: CheckConfig) -> dict:
    """ABBA pairs of two prepared calls until the budget: medians and the median of per-pair ratios."""
    for step in steps:  # warm-up (compilation, autotuning), outside the budget
        for _ in range(3):
            step()
    sync()
    sides = [Sampler(step, sync, 1) for step in steps]
    deadline = time.perf_counter() + config.budget_s
    while time.perf_counter() < deadline or len(sides[0].times) < 2:
        for first, second in ((0, 1), (1, 0)):
            sides[first].sample()
            sides[second].sample()
        if len(sides[0].times) >= config.min_pairs:
            break
    ratios = [(c / b - 1) * 100 for b, c in zip(sides[0].times, sides[1].times, strict=True)]
    low, high = bootstrap_median_ci(ratios) if len(ratios) >= MIN_CI_SAMPLES else (None, None)
    stats = [side.stats() for side in sides]
    return {
        "base_s": stats[0].median_s, "candidate_s": stats[1].median_s,
        "overhead_pct": float(np.median(ratios)),
        "ci_low": low, "ci_high": high, "pairs": len(ratios),
    }  # fmt: skip


def _replayed(models, config: CheckConfig, *, batch: int, compiled: list | None) -> dict:
    """Inference in PyTorch's default math: the ``compiled`` models, or (None) CUDA graphs replayed."""
    sync = torch.cuda.synchronize if config.device == "cuda" else (lambda: None)
    x = torch.randn(batch, 3, *config.input_size, device=config.device)
    how = "compiled" if compiled is not None else "graph"
    with torch.inference_mode():
        if compiled is not None:
            steps = [partial(model, x) for model in compiled]
        else:
            steps = [
                _graphed(model.to(config.device).eval(), x, config.device) for _, model in _copies(models)
            ]
        figures = _paired_steps(steps, sync, config)
    label = precision_label(device=config.device, dtype="fp32", channels_last=False)
    return figures | {"precision": f"{label}, {'torch.compile' if how == 'compiled' else 'CUDA graph'}"}


def _copies(models: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    return [(name, copy.deepcopy(model)) for name, model in models]


def _compiled(models: list[tuple[str, nn.Module]], config: CheckConfig) -> list:
    """Each model compiled for one batch size (static shapes: a dynamic batch specialises batch 1 apart and
    was 100x slower there on the CPU), on the device, in eval mode."""
    return [torch.compile(model.to(config.device).eval(), dynamic=False) for _, model in _copies(models)]


def _memory(config: CheckConfig) -> list[dict]:
    rows = []
    for name in config.pair:
        for mode, batch in config.memory:
            profile = measure_memory(
                _built(name), (batch, 3, *config.input_size), mode=mode, device=config.device
            )
            cuda = profile.cuda_max_allocated
            rows.append({
                "model": name, "mode": mode, "batch": batch, "tracked_peak_bytes": profile.peak_bytes,
                "cuda_max_memory_allocated": cuda,
                "gap_bytes": None if cuda is None else cuda - profile.peak_bytes,
            })  # fmt: skip
    return rows


def _on_device(
    model: nn.Module, batch: int, dtype: str, channels_last: bool, config: CheckConfig, *, train: bool
):
    """A copy of ``model`` on the device in ``dtype`` and layout (train or eval mode), an input for it, and
    the device's synchronisation."""
    work = copy.deepcopy(model).to(device=config.device, dtype=torch_dtype(dtype)).train(train)
    x = torch.randn(batch, 3, *config.input_size, device=config.device, dtype=torch_dtype(dtype))
    work, x = in_layout(work, x, channels_last=channels_last)
    sync = torch.cuda.synchronize if config.device == "cuda" else (lambda: None)
    return work, x, sync


def _profile_on_device(model: nn.Module, batch: int, dtype: str, channels_last: bool, config: CheckConfig):
    """``model``'s kernel trace on the device (SE ranges, 3 forwards after 10), and its unprofiled wall."""
    work, x, sync = _on_device(model, batch, dtype, channels_last, config, train=False)
    se_paths = tuple(path for path, kind in attention_modules(work).items() if kind == SE)
    with torch.no_grad():
        for _ in range(10):
            work(x)
        sync()
        start = time.perf_counter()
        for _ in range(20):
            work(x)
        sync()
        wall = (time.perf_counter() - start) / 20
    return kerneltrace.profile_forward(work, x, se_paths=se_paths), wall


def _train_time_on_device(model: nn.Module, batch: int, dtype: str, channels_last: bool, config: CheckConfig):
    """Median seconds of ``model``'s training step (forward, sum loss, backward) on the device, 10 steps
    after 3 (the base's figure that sets the backward MAC rate: ``gpumodel.fit_backward``)."""
    work, x, sync = _on_device(model, batch, dtype, channels_last, config, train=True)
    step = train_step(work, x)
    times = []
    for repeat in range(13):
        sync()
        start = time.perf_counter()
        step()
        sync()
        if repeat >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _mixed_rate_on_device(dtype: str, shape: tuple[int, int, int, int], config: CheckConfig) -> float:
    """``roofline.measure_mixed_rate`` on the check's device."""
    return roofline.measure_mixed_rate(device=config.device, dtype=dtype, shape=shape)


def calibrate(
    config: CheckConfig,
    *,
    base: nn.Module,
    candidate: nn.Module,
    machine_class: str,
    profile=None,
    probes: roofline.MachineModel | None = None,
    train_time=None,
    mixed_rate=None,
) -> list[roofline.MachineModel]:
    """This GPU's machine model for every precision, from its own probes and profiles, filed under
    ``RESULTS/machine/<class>.json``: the streaming-add bandwidths of ``measure_machine``, then the base
    model's kernel traces (batch 1 fp32; the large batch in each precision) and the SE model's at the
    large batch, derived as ``bench/derive_gpu_machine.py`` derives the H200's from its shared traces, and
    the base's training step at the large batch (its backward MAC rate) and an add across layouts (the
    mixed-layout element rate).
    ``profile(model, batch, dtype, channels_last) -> (trace, unprofiled wall seconds)``;
    ``train_time(model, batch, dtype, channels_last) -> seconds``; ``mixed_rate(dtype, shape) ->
    elements per second`` of an add across layouts (``roofline.measure_mixed_rate``) at a stage-1 shape."""
    profile = profile or partial(_profile_on_device, config=config)
    train_time = train_time or partial(_train_time_on_device, config=config)
    mixed_rate = mixed_rate or partial(_mixed_rate_on_device, config=config)
    probes = probes or roofline.measure_machine(device=config.device, dtype="fp32")
    one, many = (1, 3, *config.input_size), (config.large_batch, 3, *config.input_size)
    small, small_wall = profile(base, 1, "fp32", False)
    path = config.results / "machine" / f"{machine_class}.json"
    models = []
    for _, dtype, math, channels_last in PRECISIONS:
        with fp32_math(math):
            large, _ = profile(base, config.large_batch, dtype, channels_last)
            large_se, _ = profile(candidate, config.large_batch, dtype, channels_last)
            trained_s = train_time(base, config.large_batch, dtype, channels_last)
            mixed = mixed_rate(dtype, (config.large_batch, 256, *(side // 4 for side in config.input_size)))
        machine = gpumodel.derive(
            base=base, probes=probes, large=large, large_shape=many, small=small, small_shape=one,
            small_wall_s=small_wall, dtype=dtype, channels_last=channels_last,
            source="calibrated by bench/gpu_check.py from this GPU's probes and kernel traces",
        )  # fmt: skip
        machine = gpumodel.calibrate_classes(
            replace(machine, math=math, mixed_elements_per_s=mixed), candidate=candidate, large=large_se,
            large_shape=many,
        )  # fmt: skip
        machine = gpumodel.fit_backward(machine, base=base, shape=many, measured_train_s=trained_s)
        roofline.save(path, machine)
        models.append(machine)
    return models


def run_check(config: CheckConfig) -> dict:
    """Every timed setting, the memory rows and the predictions; the report as a dict."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("no CUDA device on this machine; the GPU check has not run")
    started = time.perf_counter()
    info = describe_machine()
    machine_class = config.machine_class or info.machine_class
    models = [(name, _built(name)) for name in config.pair]
    size, large = config.input_size, config.large_batch
    calibrated = []
    if config.calibrate and config.device == "cuda":  # kernel traces exist on CUDA only
        calibrated = calibrate(config, base=models[0][1], candidate=models[1][1], machine_class=machine_class)
    rows = []
    for label, dtype, math, channels_last in PRECISIONS:
        machine = _machine(config, machine_class, dtype, math, channels_last)
        if machine is None and math == "tf32":  # PyTorch's default: TF32 convolutions, IEEE matmuls
            machine = _machine(config, machine_class, dtype, "default", channels_last)
        for mode, batch in (("infer", 1), ("infer", large), ("train", large)):
            figures = _eager(models, config, mode=mode, batch=batch, dtype=dtype, math=math,
                             channels_last=channels_last)  # fmt: skip
            predicted = _predicted(models, machine, mode=mode, batch=batch, size=size)
            rows.append(_row(f"{mode} b{batch} {label}", mode, batch, figures, predicted))
    default = _machine(config, machine_class, "fp32", "default", False) or _machine(
        config, machine_class, "fp32", "tf32", False
    )  # PyTorch's default math is TF32 convolutions
    for how in ("compiled", "graph"):
        for batch in (1, large):
            compiled = _compiled(models, config) if how == "compiled" else None
            with fp32_math("default"):
                figures = _replayed(models, config, batch=batch, compiled=compiled)
            predicted = None if how == "compiled" else _predicted(
                models, default, mode="infer", batch=batch, size=size, graph=True
            )  # fmt: skip
            rows.append(_row(f"infer b{batch} {how}", "infer", batch, figures, predicted))
    return {
        "machine": info.as_dict() | {"machine_class": machine_class},
        "pair": list(config.pair),
        "device": config.device,
        "latency": rows,
        "memory": _memory(config),
        "memory_gap": MEMORY_GAP,
        "calibrated": [m.key for m in calibrated],
        "wall_s": time.perf_counter() - started,
    }


def figures(report: dict) -> list[dict]:
    """The report's figures in the store's schema (one per latency setting and memory row)."""
    pair = " -> ".join(report["pair"])
    out = []
    for row in report["latency"]:
        out.append({
            "model": pair, "metric": "latency_overhead", "setting": f"{report['device']} {row['setting']}",
            "unit": "%", "value": row["overhead_pct"], "deterministic": False, "ci_low": row["ci_low"],
            "ci_high": row["ci_high"], "batch_size": row["batch"], "mode": row["mode"],
            "precision": row["precision"], "samples": row["pairs"], "predicted_pct": row["predicted_pct"],
            "base_s": row["base_ms"] / 1e3, "candidate_s": row["candidate_ms"] / 1e3,
        })  # fmt: skip
    for row in report["memory"]:
        setting = f"{report['device']} {row['mode']} b{row['batch']}"
        out.append({"model": row["model"], "metric": "memory_peak", "setting": setting, "unit": "bytes",
                    "value": row["tracked_peak_bytes"], "deterministic": True})  # fmt: skip
        if row["cuda_max_memory_allocated"] is not None:
            out.append({"model": row["model"], "metric": "memory_peak_cuda", "setting": setting,
                        "unit": "bytes", "value": row["cuda_max_memory_allocated"], "deterministic": True,
                        "source": "torch.cuda.max_memory_allocated"})  # fmt: skip
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f} %"


def markdown(report: dict) -> str:
    """The report as Markdown: the latency table (with img/s and the model's error) and the memory table."""
    machine = report["machine"]
    lines = [
        f"# GPU check: {' -> '.join(report['pair'])} on {machine.get('gpu') or report['device']}",
        "",
        f"Machine class `{machine['machine_class']}`, torch {machine['versions'].get('torch', '?')}; "
        f"produced by `bench/gpu_check.py` in {report['wall_s']:.0f} s. Paired (ABBA) medians; overhead = "
        "median of per-pair ratios with its 95 % interval; predicted = the machine model stored for the "
        "setting (a CUDA graph: without host dispatch); – = no model stored for that setting.",
        "",
        "| setting | math | base ms | SE ms | base img/s | SE img/s | SE overhead | 95 % CI | pairs "
        "| predicted | error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in report["latency"]:
        ci = "–" if r["ci_low"] is None else f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"
        error = "–" if r["error_pp"] is None else f"{r['error_pp']:+.1f} pp"
        lines.append(
            f"| {r['setting']} | {r['precision']} | {r['base_ms']:.2f} | {r['candidate_ms']:.2f} | "
            f"{r['img_s_base']:,.0f} | {r['img_s_candidate']:,.0f} | {_pct(r['overhead_pct'])} | {ci} | "
            f"{r['pairs']} | {_pct(r['predicted_pct'])} | {error} |"
        )
    lines += ["", "## Peak memory", "", f"{report['memory_gap']}.", "",
              "| model | pass | tracked peak (B) | max_memory_allocated (B) | gap (B) |",
              "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for m in report["memory"]:
        cuda = "–" if m["cuda_max_memory_allocated"] is None else f"{m['cuda_max_memory_allocated']:,}"
        gap = "–" if m["gap_bytes"] is None else f"{m['gap_bytes']:,}"
        lines.append(
            f"| {m['model']} | {m['mode']} b{m['batch']} | {m['tracked_peak_bytes']:,} | {cuda} | {gap} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Measured and predicted overhead per setting, as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["latency"]
    fig, ax = plt.subplots(figsize=(10, 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["overhead_pct"] for r in rows], width=0.4, label="measured")
    ax.bar([x + 0.2 for x in xs], [r["predicted_pct"] or 0.0 for r in rows], width=0.4, label="machine model")
    ax.set_xticks(list(xs), [r["setting"] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("SE overhead (%)")
    ax.set_title(f"{' -> '.join(report['pair'])}, {report['machine']['machine_class']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(report: dict, folder: Path) -> list[Path]:
    """``gpu_check.json`` (a run record, checked against the store's schema), ``.md`` and ``.png``."""
    record = new_record("gpu-check", figures(report), settings={"report": report})
    check_record(record)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "gpu_check.json", folder / "gpu_check.md", folder / "gpu_check.png"]
    write_atomic(paths[0], json.dumps(record, indent=2, default=str) + "\n")
    write_atomic(paths[1], markdown(report))
    plot(report, paths[2])
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run the check and write its files; one line and exit 2 when it cannot run (no GPU, bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--budget", type=float, default=12.0, help="seconds per timed setting")
    parser.add_argument("--large-batch", type=int, default=256)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--no-calibrate", action="store_true", help="keep the stored machine models")
    args = parser.parse_args(argv)
    config = CheckConfig(device=args.device, budget_s=args.budget, large_batch=args.large_batch,
                         results=args.results, calibrate=not args.no_calibrate)  # fmt: skip
    try:
        report = run_check(config)
        paths = write(report, args.results / "gpu" / report["machine"]["machine_class"])
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, paths))} in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
