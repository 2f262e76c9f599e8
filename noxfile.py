"""Sessions: ``tests`` (the README's test command), ``lint`` (ruff) and ``bench`` (the tracked benchmarks)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Install the package with its test extra and run pytest (arguments after -- go to pytest)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Static analysis of the catalog plus the latency benchmarks; one run record; fail on a regression.

    ``nox -s bench`` runs the quick set (a few minutes on 2 cores); ``nox -s bench -- --full`` every pair.
    Other arguments after ``--`` go to pytest (e.g. ``--budget 30``, ``--threads 1``).
    """
    session.install("-e", ".")
    _compile_bytecode(session)
    benchmark_json = Path(session.create_tmp()) / "benchmark.json"
    pytest_args = ["-p", "no:cacheprovider", f"--benchmark-json={benchmark_json}", *session.posargs]
    session.run("pytest", "bench", *pytest_args)
    full = ["--full"] if "--full" in session.posargs else []
    session.run("senet-profile", "record", "--benchmark-json", str(benchmark_json), *full)
    session.run("senet-profile", "regress")


def _compile_bytecode(session: nox.Session) -> None:
    """Compile the session's site-packages once (fast when already compiled).

    uv does not compile at install, and where ``PYTHONDONTWRITEBYTECODE`` is set nothing is cached at
    import either: every process would then spend about 8 s compiling torch, inside the wall times of the
    CLI runs the bench records.
    """
    site = session.run(
        "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", silent=True
    )
    compile_all = ("python", "-m", "compileall", "-q", "-j", "0", str(site).strip())
    session.run(*compile_all, silent=True, success_codes=[0, 1])
