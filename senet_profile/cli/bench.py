"""``senet-profile bench``: the bench suite shipped with the package, then one run record and ``regress``.

The suite is ``bench/`` of the repository, installed as the package ``senet_profile_bench``. pytest runs it
in a fresh process with a configuration of its own (an empty ``pytest.ini`` in a temporary folder), so that
the run is the same from a clone, an editable install or a wheel, whatever project surrounds the folder it
was started in. pytest and pytest-benchmark are the ``bench`` extra, imported by the suite, never here.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from senet_profile.cli.app import app
from senet_profile.cli.track import ResultsDir, check_against_baseline, record_run
from senet_profile.errors import UserInputError
from senet_profile.history.locations import results_root

SUITE_PACKAGE = "senet_profile_bench"
NEEDED = (("pytest", "pytest"), ("pytest_benchmark", "pytest-benchmark"))  # (module, distribution)
PYTEST_USAGE_ERROR, PYTEST_NO_TESTS = 4, 5  # pytest's exit codes for bad arguments and an empty selection


def check_bench_extra() -> None:
    """Refuse in one line when pytest or pytest-benchmark is not installed."""
    missing = [distribution for module, distribution in NEEDED if find_spec(module) is None]
    if missing:
        raise UserInputError(
            f"the bench needs {' and '.join(missing)}, not installed here: pip install 'senet-profile[bench]'"
        )


def suite_folder() -> Path:
    """The installed bench suite's folder (``bench/`` itself in a clone or an editable install)."""
    spec = find_spec(SUITE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(f"the bench suite ({SUITE_PACKAGE}) is not installed; reinstall senet-profile")
    return Path(next(iter(spec.submodule_search_locations)))


def pytest_arguments(
    *, suite: Path, config: Path, benchmark_json: Path, full: bool, budget: float | None, threads: int | None,
    results: Path, extra: list[str],
) -> list[str]:  # fmt: skip
    """The pytest command line of one bench run (after ``python -m pytest``)."""
    arguments = [str(suite), "-c", str(config), "--rootdir", str(suite), "-p", "no:cacheprovider", "-ra"]
    arguments += [f"--benchmark-json={benchmark_json}", "--results", str(results)]
    arguments += ["--full"] if full else []
    arguments += ["--budget", str(budget)] if budget is not None else []
    arguments += ["--threads", str(threads)] if threads is not None else []
    return [*arguments, *extra]


def run_suite(arguments: list[str]) -> int:
    """Run pytest in a fresh process (its output goes straight to the terminal); its exit status."""
    return subprocess.run([sys.executable, "-m", "pytest", *arguments], check=False).returncode


@app.command("bench")
def bench_command(
    pytest_args: Annotated[
        list[str] | None,
        typer.Argument(metavar="PYTEST_ARGS", help="Further pytest arguments, after `--` (e.g. `-- -x`)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Time every pair (default: the quick set).")] = False,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Seconds per timed pair (default: 30, with --full 60)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch CPU threads while timing (default 1).")
    ] = None,
    results: ResultsDir = None,
) -> None:
    """Run the bench suite, record the run in RESULTS/runs/ and check it against the baseline.

    Exit 1 on a regression (as `regress`) or when the bench fails; a failed bench records nothing.
    Needs the bench extra: pip install 'senet-profile[bench]'.
    """
    from senet_profile.history import tracking

    if budget is not None and not budget > 0:
        raise UserInputError(f"--budget must be a positive number of seconds, got {budget}")
    if threads is not None and threads < 1:
        raise UserInputError(f"--threads must be a positive integer, got {threads}")
    check_bench_extra()
    suite = suite_folder()
    folders = results_root(results)
    tracking.check_destinations(folders.runs / tracking.current_class())  # before minutes of timing
    with tempfile.TemporaryDirectory(prefix="senet-profile-bench-") as temporary:
        config = Path(temporary) / "pytest.ini"
        config.write_text("[pytest]\n")
        benchmark_json = Path(temporary) / "benchmark.json"
        arguments = pytest_arguments(
            suite=suite, config=config, benchmark_json=benchmark_json, full=full, budget=budget,
            threads=threads, results=folders.root, extra=list(pytest_args or []),
        )  # fmt: skip
        status = run_suite(arguments)
        if status in (PYTEST_USAGE_ERROR, PYTEST_NO_TESTS):
            raise UserInputError(f"pytest ran no bench (exit status {status}: see above); nothing recorded")
        if status != 0:
            typer.echo(f"error: the bench failed (pytest exit status {status}); nothing recorded", err=True)
            raise typer.Exit(1)
        recorded = record_run(benchmark_json, full=full, runs_dir=folders.runs)
    check_against_baseline(current=recorded, results=folders.root)
