"""Sessions: ``tests`` (the README's test command), ``lint`` (ruff), ``typecheck`` (mypy) and ``bench``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
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
def typecheck(session: nox.Session) -> None:
    """mypy over the package (``py.typed`` ships: users' type checkers read these hints)."""
    session.install("-e", ".", "mypy>=1.8")
    session.run("mypy", "senet_profile")


@nox.session
def bench(session: nox.Session) -> None:
    """The bench through ``senet-profile bench``: static figures, latency pairs, one run record, regress.

    ``nox -s bench`` runs the quick set (a few minutes on 2 cores); ``nox -s bench -- --full`` every pair.
    Arguments after ``--`` go to ``senet-profile bench`` (``--budget 30``, ``--threads 1``, ``--results DIR``;
    pytest's own after a second ``--``).
    """
    session.install("-e", ".[bench]")
    _compile_bytecode(session)
    session.run("senet-profile", "bench", *session.posargs)


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
