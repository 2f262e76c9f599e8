"""Kernel time per op from a torch.profiler Chrome trace: what each op of a CUDA forward cost, on both sides.

A trace (``torch.profiler`` with CPU and CUDA activities, ``export_chrome_trace``) holds the host's ops
(``cat == "cpu_op"``, nested: ``aten::conv2d`` > ``aten::convolution`` > ... ), the runtime calls that
launched kernels (``cuda_runtime``, each with a ``correlation`` id) and the kernels themselves (``kernel``,
with the same id). Each kernel is attributed to the top-level op whose host interval holds its launch, and
to the ``SE:<path>`` range (a ``record_function`` around each SE module's forward) holding it, if any; an
``ITER`` range marks each forward. Per top-level op: its kernels' count and device seconds, and its host
seconds (the op's own interval plus the gap to the next op: Python and module calls between ops).
Launches through the driver API (``cuda_driver``) are matched the same way.

Host times are under the profiler, which inflates them; ``unprofiled_scale`` says by how much to shrink
them when an unprofiled wall time of the same forward is known.
"""

from __future__ import annotations

import bisect
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from senet_profile.errors import UserInputError

# Top-level aten ops of a CNN forward -> the machine model's family (MAC ops get their kind elsewhere).
FAMILIES = {
    "aten::conv2d": "mac",
    "aten::linear": "mac",
    "aten::addmm": "mac",
    "aten::matmul": "mac",
    "aten::batch_norm": "normalization",
    "aten::relu": "elementwise",
    "aten::relu_": "elementwise",
    "aten::add": "elementwise",
    "aten::add_": "elementwise",
    "aten::mul": "elementwise",
    "aten::mul_": "elementwise",
    "aten::sigmoid": "transcendental",
    "aten::hardsigmoid": "elementwise",
    "aten::max_pool2d": "pooling",
    "aten::adaptive_avg_pool2d": "reduction",
    "aten::mean": "reduction",
    "aten::flatten": "view",
    "aten::view": "view",
    "aten::reshape": "view",
}


@dataclass(frozen=True)
class TracedOp:
    """One top-level op of one forward: name, input shapes, kernels, device and host seconds, SE range."""

    name: str
    input_dims: tuple[tuple[int, ...], ...]
    kernels: int
    device_s: float
    host_s: float
    se: str  # the SE module's path whose range holds the op, or ""

    @property
    def family(self) -> str:
        """The machine model's family of this op (``mac`` for convolutions and products), or ``unknown``."""
        return FAMILIES.get(self.name, "unknown")


@dataclass(frozen=True)
class TracedForward:
    """The ops of each forward (``ITER`` range) of one trace, and the forward's host seconds."""

    iterations: tuple[tuple[TracedOp, ...], ...]
    iteration_s: tuple[float, ...]

    @property
    def ops(self) -> tuple[TracedOp, ...]:
        """The first forward's ops (the forwards of one trace run the same ops)."""
        return self.iterations[0]

    def device_s(self) -> float:
        """Mean kernel seconds per forward."""
        return sum(op.device_s for it in self.iterations for op in it) / len(self.iterations)

    def kernels(self) -> float:
        """Mean kernels per forward."""
        return sum(op.kernels for it in self.iterations for op in it) / len(self.iterations)

    def se_kernels(self) -> tuple[float, float]:
        """Mean (kernels, kernel seconds) per forward launched inside SE ranges."""
        n = len(self.iterations)
        ops = [op for it in self.iterations for op in it if op.se]
        return sum(op.kernels for op in ops) / n, sum(op.device_s for op in ops) / n

    def mean_op(self, index: int) -> TracedOp:
        """Op ``index`` with its kernel and host seconds averaged over the forwards."""
        ops = [it[index] for it in self.iterations]
        n = len(ops)
        first = ops[0]
        return TracedOp(
            first.name, first.input_dims, first.kernels, sum(o.device_s for o in ops) / n,
            sum(o.host_s for o in ops) / n, first.se,
        )  # fmt: skip


def load_events(path: Path) -> list[dict]:
    """The ``traceEvents`` of a Chrome trace (``.json`` or ``.json.gz``), or a one-line UserInputError."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        events = json.loads(text)["traceEvents"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"{path}: not a readable Chrome trace ({type(error).__name__})") from None
    if not isinstance(events, list):
        raise UserInputError(f"{path}: not a readable Chrome trace (no event list)")
    return events


def _dims(op: dict) -> tuple[tuple[int, ...], ...]:
    dims = op.get("args", {}).get("Input Dims") or []
    return tuple(tuple(int(n) for n in d) for d in dims if isinstance(d, list))


def _top_level(ops: list[dict]) -> list[dict]:
    """Ops not nested in another op, in order of start."""
    top: list[dict] = []
    end = float("-inf")
    for op in sorted(ops, key=lambda e: (e["ts"], -e["dur"])):
        if op["ts"] >= end:
            top.append(op)
            end = op["ts"] + op["dur"]
    return top


def parse_trace(events: list[dict]) -> TracedForward:
    """Each forward's top-level ops with their kernels (count, seconds), host seconds and SE range."""
    iters = sorted((e for e in events if e.get("cat") == "user_annotation" and e.get("name") == "ITER"),
                   key=lambda e: e["ts"])  # fmt: skip
    if not iters:
        raise UserInputError(
            "the trace has no ITER range: record each forward inside record_function('ITER')"
        )
    ranges = sorted(
        (e["ts"], e["ts"] + e["dur"], e["name"][3:])
        for e in events
        if e.get("cat") == "user_annotation" and str(e.get("name", "")).startswith("SE:")
    )
    launches = {
        e["args"]["correlation"]: e["ts"]
        for e in events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
    }
    kernels = [e for e in events if e.get("cat") == "kernel"]
    cpu_ops = [e for e in events if e.get("cat") == "cpu_op"]
    iterations, spans = [], []
    for it in iters:
        start, stop = it["ts"], it["ts"] + it["dur"]
        top = _top_level([e for e in cpu_ops if start <= e["ts"] <= stop])
        starts = [op["ts"] for op in top]
        counts, seconds = [0] * len(top), [0.0] * len(top)
        for kernel in kernels:
            at = launches.get(kernel.get("args", {}).get("correlation"))
            if at is None or not start <= at <= stop:
                continue
            i = bisect.bisect_right(starts, at) - 1
            if i >= 0 and at <= top[i]["ts"] + top[i]["dur"]:
                counts[i] += 1
                seconds[i] += kernel["dur"] * 1e-6
        ops = []
        for i, op in enumerate(top):
            following = top[i + 1]["ts"] if i + 1 < len(top) else stop
            se = next((path for a, b, path in ranges if a <= op["ts"] <= b), "")
            ops.append(
                TracedOp(op["name"], _dims(op), counts[i], seconds[i], (following - op["ts"]) * 1e-6, se)
            )
        iterations.append(tuple(ops))
        spans.append((stop - start) * 1e-6)
    return TracedForward(tuple(iterations), tuple(spans))


def read_trace(path: Path) -> TracedForward:
    """``parse_trace`` of the Chrome trace at ``path``."""
    return parse_trace(load_events(path))


@dataclass(frozen=True)
class SECost:
    """What SE's ops cost in a traced forward (or, ``predicted``, in a machine model's forward or training
    pass): kernels (ops, predicted), kernel and host seconds, bytes, the bound."""

    kernels: float
    kernel_s: float
    host_s: float
    se_bytes: int
    peak_bandwidth: float
    forward_kernel_s: float
    se_macs: int = 0
    mac_rate: float = 0.0  # MACs per second SE's FCs could reach (0: not known)
    predicted: bool = False  # from a machine model: ``kernels`` counts ops, ``kernel_s`` is device time
    whole: str = "forward"  # what ``forward_kernel_s`` covers: "forward" or "training pass"

    @property
    def achieved_bandwidth(self) -> float:
        """SE's bytes over its kernel seconds (bytes per second)."""
        return self.se_bytes / self.kernel_s if self.kernel_s else 0.0

    @property
    def bound(self) -> str:
        """``host dispatch`` when the host takes longer to issue SE's ops than the GPU to run them; else
        ``compute`` when SE's MACs at the rate would take longer than its bytes at the peak bandwidth, else
        ``memory traffic`` (SE's squeeze and scale stream the feature map; its FCs are tiny)."""
        if self.host_s > self.kernel_s:
            return "host dispatch"
        compute = self.se_macs / self.mac_rate if self.mac_rate else 0.0
        return "compute" if compute > self.se_bytes / self.peak_bandwidth else "memory traffic"

    def detail(self) -> str:
        """One line: kernel (op) count and time, host time, achieved bandwidth against the peak."""
        ms = f"{self.kernel_s * 1e3:.3g} ms"
        counted = (
            f"{self.kernels:.0f} SE ops, {ms} of device time"
            if self.predicted
            else f"{self.kernels:.0f} kernels in SE ranges, {ms} of kernel time"
        )
        return (
            f"{counted} ({self.kernel_s / self.forward_kernel_s * 100:.1f} % of the {self.whole}'s), host "
            f"{self.host_s * 1e3:.3g} ms to issue them; {self.se_bytes / 2**30:.3g} GiB at "
            f"{self.achieved_bandwidth / 1e12:.3g} TB/s against {self.peak_bandwidth / 1e12:.3g} TB/s peak"
        )


def se_cost(
    traced: TracedForward,
    *,
    se_bytes: int,
    peak_bandwidth: float,
    host_scale: float = 1.0,
    se_macs: int = 0,
    mac_rate: float = 0.0,
) -> SECost:
    """SE's share of a traced forward (mean over forwards); host seconds shrunk by ``host_scale`` (the
    profiler's inflation, when known)."""
    kernels, kernel_s = traced.se_kernels()
    n = len(traced.iterations)
    host = sum(op.host_s for it in traced.iterations for op in it if op.se) / n * host_scale
    return SECost(kernels, kernel_s, host, se_bytes, peak_bandwidth, traced.device_s(), se_macs, mac_rate)


def by_module(traced: TracedForward) -> dict[str, float]:
    """Kernel seconds per SE module path (mean over forwards); the rest under ``""``."""
    seconds: dict[str, float] = {}
    for it in traced.iterations:
        for op in it:
            seconds[op.se] = seconds.get(op.se, 0.0) + op.device_s / len(traced.iterations)
    return seconds


def profile_forward(
    model, x, *, se_paths: tuple[str, ...], repeats: int = 3, warmup: int = 10
) -> TracedForward:
    """Kernel times of ``repeats`` forwards of ``model`` on ``x`` under torch.profiler (CUDA only), each SE
    module's forward in an ``SE:<path>`` range and each forward in ``ITER``."""
    import tempfile

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    if x.device.type != "cuda":
        raise UserInputError("kernel times are profiled on CUDA; on the CPU, op times come from host timers")
    handles, open_ranges = [], []
    modules = dict(model.named_modules())
    for path in se_paths:

        def pre(module, args, path=path):
            open_ranges.append(record_function(f"SE:{path}").__enter__())

        def post(module, args, output):
            open_ranges.pop().__exit__(None, None, None)

        handles += [modules[path].register_forward_pre_hook(pre), modules[path].register_forward_hook(post)]
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            torch.cuda.synchronize()
            with profile(
                activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True
            ) as prof:
                for _ in range(repeats):
                    with record_function("ITER"):
                        model(x)
                torch.cuda.synchronize()
        with tempfile.TemporaryDirectory() as folder:
            trace_path = Path(folder) / "trace.json"
            prof.export_chrome_trace(str(trace_path))
            return read_trace(trace_path)
    finally:
        for handle in handles:
            handle.remove()
