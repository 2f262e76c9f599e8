"""What the commands share: option types, output format choice, emitting a frame, the progress bar.

Nothing heavy is imported at module level (pandas, rich's progress, the reporters): ``--help`` and
``list`` must answer without them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from senet_profile.errors import UserInputError
from senet_profile.io import write_atomic
from senet_profile.report.formats import FORMAT_ALIASES, FORMATS, SUFFIX_FORMATS
from senet_profile.setting import DEFAULT_BUDGET_S, Setting, parse_input_size

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

STDOUT = Path("-")

InputSize = Annotated[
    str | None,
    typer.Option("--input-size", help="Input height, or HxW (default: the model's own, else 224)."),
]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Batch size (counts scale with it).")]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="table | csv | json | markdown (or md). Default: from --output's suffix (.csv, .json, .md; "
        ".txt: table), else table. With --output, an unknown suffix needs --format, and a --format the "
        "suffix contradicts is refused (.txt takes any format).",
    ),
]
PrintFormat = Annotated[
    str | None, typer.Option("--format", help="table | csv | json | markdown (or md); default table.")
]
Output = Annotated[
    Path | None,
    typer.Option("--output", help="Write to this file (atomically); '-' writes to stdout."),
]
ByStage = Annotated[
    bool, typer.Option("--by-stage", help="One row per stage (a wide table; CSV/JSON: long records).")
]
ByModule = Annotated[
    bool, typer.Option("--by-module", help="The module tree (to --depth): params, MACs, activations, bytes.")
]
Depth = Annotated[int | None, typer.Option("--depth", help="Levels of the --by-module tree (default 2).")]
ByOp = Annotated[bool, typer.Option("--by-op", help="One row per aten op: calls, MACs, elements, bytes.")]
Attention = Annotated[
    list[str] | None,
    typer.Option(
        "--attention",
        help="Your own attention class, CLASS or CLASS=FAMILY (repeatable; family se counts as SE).",
    ),
]
ByClass = Annotated[
    bool, typer.Option("--by-class", help="Add ops, MACs and bytes moved per op class (conv, SE scale...).")
]
Metrics = Annotated[
    str, typer.Option("--metrics", help="static | memory | latency | peaks, comma-separated, or all.")
]
CompareMetrics = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        help="static | memory | latency | peaks | predicted, comma-separated, or all. Default: static,peaks,"
        "predicted (counts; inference and training peak memory on meta; the machine model's predicted "
        "latency).",
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="cpu | cuda | meta (default: memory on meta, byte-identical to cpu and faster; latency on cpu).",
    ),
]
Mode = Annotated[str, typer.Option("--mode", help="infer (eval, no grad) | train (forward + backward).")]
Threads = Annotated[
    int, typer.Option("--threads", help="torch CPU threads while timing (1, as torch.utils.benchmark does).")
]
Allocator = Annotated[
    str,
    typer.Option(
        "--allocator", help="C heap while timing: 'steady' (no page faults from heap trimming) or 'as-is'."
    ),
]
Dtype = Annotated[
    str, typer.Option("--dtype", help="fp32 | bf16 | fp16 (fp16 on CUDA only) | tf32 (= fp32 --math tf32).")
]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Run in channels-last memory format.")]
Compile = Annotated[
    bool, typer.Option("--compile", help="torch.compile the models before timing (latency only).")
]
Budget = Annotated[
    float | None, typer.Option("--budget", help="Latency: stop after this many seconds at most (default 48).")
]
RemeasureMachine = Annotated[
    bool, typer.Option("--remeasure-machine", help="Measure the machine model again, even if stored.")
]
MachineDir = Annotated[
    Path | None,
    typer.Option(
        "--machine-dir",
        help="Folder of machine models, one file per machine class (default: RESULTS/machine).",
    ),
]
Repeats = Annotated[int, typer.Option("--repeats", help="Op-timed forward passes per model.")]
Processes = Annotated[
    int | None,
    typer.Option(
        "--processes",
        help="Latency: fresh worker processes the budget is split over; the interval pools them "
        "(default: 4 on the CPU, 1 on CUDA).",
    ),
]
FpMath = Annotated[
    str,
    typer.Option(
        "--math",
        help="fp32 math: default (PyTorch's own: on CUDA, TF32 convolutions) | ieee (TF32 off) | tf32 (on).",
    ),
]
CrossCheck = Annotated[
    bool, typer.Option("--crosscheck", help="Add MACs from fvcore, ptflops (both backends), torch's counter.")
]


def setting_from_options(
    *,
    input_size: str | None = None,
    budget: float | None = None,
    **options: object,
) -> Setting:
    """The one ``Setting`` of a command's options (``--input-size`` text parsed, budget defaulted)."""
    size = None if input_size is None else parse_input_size(input_size)
    chosen = {k: v for k, v in options.items() if v is not None}
    if chosen.get("dtype") == "tf32":  # --dtype tf32: fp32 tensors, TF32 math
        if chosen.get("math", "default") not in ("default", "tf32"):
            raise UserInputError(f"--dtype tf32 means fp32 with --math tf32, not --math {chosen['math']}")
        chosen |= {"dtype": "fp32", "math": "tf32"}
    return Setting(
        input_size=size,
        budget_s=DEFAULT_BUDGET_S if budget is None else budget,
        **chosen,  # type: ignore[arg-type]
    )


DEFAULTS = Setting()


def machine_file(results: Path | None) -> Path:
    """This machine class's machine-model file: in the results folder, else in the user's cache."""
    from senet_profile.history.locations import machine_models
    from senet_profile.history.machine import describe_machine

    return machine_models(results) / f"{describe_machine().machine_class}.json"


def choose_format(fmt: str | None, output: Path | None) -> str:
    """The output format: ``--format`` (md = markdown), else ``--output``'s suffix, else table.

    An unknown suffix without ``--format`` and a ``--format`` that contradicts the suffix are refused.
    """
    given = FORMAT_ALIASES.get(fmt, fmt) if fmt else None
    if given is not None and given not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} (or md)")
    if output is None or output == STDOUT:
        return given or "table"
    suffix = output.suffix.lower()
    implied = SUFFIX_FORMATS.get(suffix)
    if given is None and implied is None:
        known = ", ".join(SUFFIX_FORMATS)
        raise UserInputError(f"cannot tell the format of {output} from its suffix ({known}); give --format")
    if given is not None and implied not in (None, given) and suffix != ".txt":  # .txt holds any text
        raise UserInputError(f"--format {fmt} contradicts the suffix of {output} ({implied})")
    return given or implied or "table"


def _caption(frame: pd.DataFrame) -> str:
    # The counting convention only under a table of counts, not under memory-only or latency-only ones.
    counts = "static" in frame.attrs.get("metrics", ["static"])
    lines = [f"Convention: {frame.attrs['convention']}."] if "convention" in frame.attrs and counts else []
    for name, ops in frame.attrs.get("unknown_ops", {}).items():
        if ops:
            listed = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))
            lines.append(f"NOT COUNTED in {name} (ops with no counting rule): {listed}.")
    for name, modules in frame.attrs.get("uncalled_modules", {}).items():
        if modules:
            lines.append(f"Never called in {name}: {', '.join(modules)}.")
    lines += [f"Note, {note}." for note in frame.attrs.get("notes", [])]
    if frame.attrs.get("runtime"):
        lines.append(f"Runtime: {frame.attrs['runtime']}.")
    return "\n".join(lines)


def _interval(low: object, high: object, unit: str) -> str:
    import pandas as pd

    if pd.isna(low) or pd.isna(high):
        return ""
    return f"[{low:+.2f}, {high:+.2f}] %" if unit == "%" else f"[{low:.4g}, {high:.4g}] {unit}"


def _for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a person reads it: constant columns dropped, the CI as one column."""
    shown = frame.copy()
    if "ci_low" in shown.columns and not shown["ci_low"].isna().all():
        # The interval is of overhead_pct where there is one (compare, history), else of the value.
        units = ["%"] * len(shown) if "overhead_pct" in shown.columns else list(shown["unit"])
        shown["95% CI"] = [
            _interval(lo, hi, u) for lo, hi, u in zip(shown["ci_low"], shown["ci_high"], units, strict=True)
        ]
    missing = frame.attrs.get("interval_na", {})
    if missing and "metric" in shown.columns:
        # An interval was asked for but too few samples were taken: say n/a (the caption says why).
        cells = shown["95% CI"] if "95% CI" in shown.columns else [""] * len(shown)
        shown["95% CI"] = ["n/a" if m in missing else c for m, c in zip(shown["metric"], cells, strict=True)]
    constant = [c for c in ("scope", "source") if c in shown.columns and shown[c].nunique() <= 1]
    empty = [c for c in ("samples",) if c in shown.columns and shown[c].isna().all()]
    shown = shown.drop(columns=constant + empty + [c for c in ("ci_low", "ci_high") if c in shown.columns])
    shown.attrs = frame.attrs
    return shown


def _widened(frame: pd.DataFrame) -> pd.DataFrame:
    """A static frame with per-stage rows as one wide table (scope x metric); any other frame as it is."""
    from senet_profile.report import wide

    if (
        "scope" not in frame.columns
        or frame["scope"].nunique() <= 1
        or frame.attrs.get("metrics") != ["static"]
    ):
        return frame
    if "value" in frame.columns:
        return wide.profile_wide(frame)
    return wide.compare_wide(frame) if "candidate" in frame.columns else frame


def warn_unused(**given: bool) -> None:
    """A one-line warning for each option given where it does nothing (name -> whether it is idle)."""
    import warnings

    for option, idle in given.items():
        if idle:
            warnings.warn(f"{option} does nothing here; ignored", stacklevel=2)


TraceFile = Annotated[
    Path | None,
    typer.Option(
        "--trace",
        help="Also write FILE: a Chrome/Perfetto trace (torch.profiler) of a few forwards of both models, "
        "each SE (attention) module a named range.",
    ),
]
Wide = Annotated[
    bool, typer.Option("--wide", help="One table of every column, however wide (default: fit the terminal).")
]


def emit(
    frame: pd.DataFrame, *, fmt: str | None, output: Path | None, title: str, wide: bool = False
) -> None:
    """Print ``frame`` in the chosen format, or write it atomically to ``output`` (``-``: stdout).

    A table fits the terminal's width (folded into several tables when it must), or is printed whole with
    ``wide``.
    """
    from senet_profile.report import tables as report

    chosen = choose_format(fmt, output)
    output = None if output == STDOUT else output
    shown = _for_display(_widened(frame)) if chosen in ("table", "markdown") else frame
    caption = _caption(frame)
    if output is None and chosen == "table":
        report.print_frame(shown, title=title, caption=caption, wide=wide)
        return
    if chosen == "table":
        text = report.table_text(shown, title=title, caption=caption, wide=wide)
    else:
        text = report.render(shown, chosen, title=title, caption=caption)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)


@contextmanager
def progress_bar(groups: tuple[str, ...], budget: float) -> Iterator[Callable[[int, float], None] | None]:
    """A rich progress bar on stderr while latency is measured: seconds of the budget spent, of the total."""
    if "latency" not in groups:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    if not Console(stderr=True).is_terminal:  # no live bar in a pipe or a log: it would leave a blank line
        yield lambda pairs, halfwidth_pp: None
        return
    bar = Progress(
        TextColumn("timing"), BarColumn(), TextColumn("{task.completed:.0f} of {task.total:.0f} s budget"),
        TextColumn("{task.fields[pairs]} pairs, CI +/-{task.fields[hw]}"), console=Console(stderr=True),
        transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task("latency", total=budget, pairs=0, hw="?")
        start = time.perf_counter()

        def update(pairs: int, halfwidth_pp: float) -> None:
            hw = "n/a" if math.isnan(halfwidth_pp) else f"{halfwidth_pp:.2f} pp"
            bar.update(task, completed=min(budget, time.perf_counter() - start), pairs=pairs, hw=hw)

        yield update


def shape_text(frame: pd.DataFrame) -> str:
    return "x".join(str(s) for s in frame.attrs["input_shape"])


@contextmanager
def count_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr for work counted in items: ``update(done, total)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not Console(stderr=True).is_terminal:  # no live bar in a pipe or a log: it would leave a blank line
        yield lambda done, total: None
        return

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def working(label: str, *, when: bool = True) -> Iterator[None]:
    """A spinner on stderr with ``label`` while something long runs (nothing when ``when`` is False)."""
    if not when:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(label):
        yield
