"""The ``sweep`` command: a grid of pairs and settings, run resumably on this machine or a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.common import PrintFormat, emit
from senet_profile.errors import UserInputError
from senet_profile.setting import DEFAULT_BUDGET_S

Listed = Annotated[str | None, typer.Option(help="Comma-separated values.")]


def _progress(total_s: float):
    """A rich progress bar on stderr: cases done and left, elapsed time and an estimate of the time left."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("sweep"),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[cases]} cases done, {task.fields[left]} left"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


STARTUP_S = 4.0  # a fresh process importing torch and building two models
TIMED_EXTRA_S = 4.0  # a timed case's warm-up and worker start beyond its budget
UNTIMED_S = 4.0  # static counts or memory on the meta device
DEFAULT_CASE_BUDGET_S = DEFAULT_BUDGET_S


def _estimate_s(case) -> float:
    """A rough wall time for one case, for --dry-run's estimate."""
    if case.timed:
        return STARTUP_S + TIMED_EXTRA_S + (case.budget_s or DEFAULT_CASE_BUDGET_S)
    return STARTUP_S + UNTIMED_S


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"


@app.command("sweep")
def sweep_command(
    grid_file: Annotated[
        Path | None, typer.Option("--grid", help="TOML file with the grid's keys (options below override).")
    ] = None,
    pair: Annotated[
        list[str] | None,
        typer.Option(
            "--pair", help="BASE/CANDIDATE, an SE model or a pattern like 'se_resnet*' (repeatable)."
        ),
    ] = None,
    batch_sizes: Annotated[str | None, typer.Option("--batch-sizes", help="e.g. 1,8,32.")] = None,
    modes: Annotated[str | None, typer.Option("--modes", help="infer,train.")] = None,
    dtypes: Annotated[str | None, typer.Option("--dtypes", help="fp32,bf16,fp16 (fp16: CUDA).")] = None,
    compile_: Annotated[str | None, typer.Option("--compile", help="off,on: eager and/or compiled.")] = None,
    threads: Annotated[
        str | None, typer.Option("--threads", help="torch CPU threads while timing, e.g. 1,2.")
    ] = None,
    metrics: Annotated[str | None, typer.Option("--metrics", help="static,memory,latency or all.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu | cuda.")] = None,
    input_size: Annotated[str | None, typer.Option("--input-size", help="Input height, or HxW.")] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Seconds of timing per timed case.")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes", help="Fresh processes a timed case is split over (default 1: the case's own)."
        ),
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help="local | ray.")] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster: auto or HOST:PORT (default: start one here)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Untimed cases at once (local; default: CPU count).")
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option("--results", envvar="SENET_PROFILE_RESULTS", help="Results folder (default ./results)."),
    ] = None,
    sweeps_dir: Annotated[
        Path | None, typer.Option("--sweeps-dir", help="Folder of sweeps (default: RESULTS/sweeps).")
    ] = None,
    sweep_id: Annotated[
        str | None, typer.Option("--id", help="Sweep id (default: a hash of the grid).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Run at most this many missing cases, then stop (chunks).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the cases and what is left; run nothing.")
    ] = False,
    max_cases: Annotated[
        int, typer.Option("--max-cases", help="Refuse a grid of more cases than this (guards against typos).")
    ] = 10_000,
    fmt: PrintFormat = None,
) -> None:
    """Run a grid of SE pairs and settings: resumable, each case in a fresh process, one record per case."""
    from senet_profile.history import sweep
    from senet_profile.history.locations import results_root

    sweeps_dir = sweeps_dir or results_root(results).sweeps
    values = sweep.read_grid_file(grid_file) if grid_file else {}
    given = {
        "pairs": pair,
        "batch_sizes": batch_sizes,
        "modes": modes,
        "dtypes": dtypes,
        "compile": compile_,
        "threads": threads,
        "metrics": metrics,
        "device": device,
        "input_size": input_size,
        "budget": budget,
        "processes": processes,
    }
    values |= {key: value for key, value in given.items() if value is not None}
    from senet_profile.io import check_int

    for option, number in (("--limit", limit), ("--jobs", jobs), ("--max-cases", max_cases)):
        if number is not None:
            check_int(option, number)
    grid = sweep.build_grid(values, max_cases=max_cases)
    if sweep_id is not None and (not sweep_id or "/" in sweep_id or sweep_id.startswith(".")):
        raise UserInputError(f"sweep id must be a plain folder name, got {sweep_id!r}")
    chosen_id = sweep_id or grid.sweep_id
    if dry_run:
        store = sweep.SweepStore(sweeps_dir / chosen_id)
        done, _ = store.finished(grid.cases()) if store.folder.is_dir() else ({}, [])
        cases = grid.cases()
        for case in cases:
            typer.echo(f"{'done' if case.id in done else 'todo'}  {case.id}  {case.describe()}")
        todo = [case for case in cases if case.id not in done]
        seconds = sum(_estimate_s(case) for case in todo)
        typer.echo(
            f"{len(cases)} cases: {len(cases) - len(todo)} done, {len(todo)} to run, about "
            f"{_duration(seconds)} one after another (a timed case: its budget and about "
            f"{STARTUP_S + TIMED_EXTRA_S:.0f} s; another: about {STARTUP_S + UNTIMED_S:.0f} s)"
        )
        return
    from senet_profile.history.executors import make_executor

    sweep.try_models(grid)  # each model once, on meta at the grid's size: no case fails for it later
    runner = make_executor(executor, address=address, jobs=jobs)
    try:
        result = _run_with_progress(sweep, grid, runner, sweeps_dir, chosen_id, limit)
    finally:
        runner.close()
    records = sweep.sweep_records(sweep.SweepStore(result.folder), grid.cases())
    if records:
        title = f"sweep {result.sweep_id}: SE overhead per pair and setting"
        emit(sweep.summary_frame(records), fmt=fmt, output=None, title=title)
    typer.echo(
        f"sweep {result.sweep_id}: {result.total} cases, {result.already_done} already done, "
        f"{result.ran} run now, {len(result.failures)} failed; records in {result.folder}",
        err=True,
    )
    for failure in result.failures:
        typer.echo(f"failed: {failure}", err=True)
    if result.failures:
        raise typer.Exit(1)


def _run_with_progress(sweep, grid, runner, sweeps_dir: Path, chosen_id: str, limit: int | None):
    """Run the sweep with the progress bar: weighted by each case's expected duration, so the ETA holds."""
    state: dict = {}

    def on_start(cases, todo, done) -> None:
        total = sum(sweep.estimate_s(c) for c in todo) or 1.0
        state["done"], state["cases"] = done, len(cases)
        state["bar"] = bar = _progress(total)
        bar.start()
        fields = {"done": done, "cases": len(cases), "left": len(cases) - done}
        state["task"] = bar.add_task("sweep", total=total, **fields)

    def on_case(case, path, failure) -> None:
        bar = state["bar"]
        state["done"] += failure is None
        left = state["cases"] - state["done"]
        bar.update(state["task"], advance=sweep.estimate_s(case), done=state["done"], left=left)
        bar.console.print(
            f"{'failed' if failure else 'done'}: {case.describe()}" + (f" ({failure})" if failure else "")
        )

    try:
        return sweep.run_sweep(
            grid,
            runner,
            sweeps_dir=sweeps_dir,
            sweep_id=chosen_id,
            on_start=on_start,
            limit=limit,
            on_case=on_case,
        )
    finally:
        if "bar" in state:
            state["bar"].stop()
