"""The typer application and its one-line error handling: every refusal is `error: ...`, exit 2."""

from __future__ import annotations

import errno
import importlib
import re
import sys
import traceback
import warnings
from typing import Any, cast

import typer
from typer.core import TyperGroup

from senet_profile.errors import REPORT_LINE, ToolBug, UserInputError


def _click_exception() -> Any:
    """click's ClickException: vendored by recent typer (``typer._click``), else click itself.

    Looked up by name, so that neither the code nor its type check depends on which typer is installed.
    """
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            return importlib.import_module(module).ClickException
        except ImportError:  # pragma: no cover - the other typer generation
            continue
    raise ImportError("neither typer._click nor click provides ClickException")  # pragma: no cover


ClickException: Any = _click_exception()

GRAMMAR = (
    "Model arguments: NAME[:KNOB=VALUE,...] from the catalog (se_resnet50:r=8,stages=4), "
    "timm:NAME[:KEY=VALUE,...], torchvision:NAME[:KEY=VALUE,...], package.module:FUNCTION[:KEY=VALUE,...] "
    "or path/to/file.py:FUNCTION[:KEY=VALUE,...]. `senet-profile list` shows the catalog with its knobs; "
    "`list --source timm '*se*'` what timm offers."
)


def _one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    typer.echo(f"warning: {message}", err=True)


_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only; choose another destination",
    errno.EACCES: "permission denied; choose a destination you may write",
    errno.EPERM: "operation not permitted; choose a destination you may write",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EEXIST: "something of another kind already exists there",
    errno.EISDIR: "a folder stands where a file is needed",
}
_CPU_ALLOCATION = re.compile(r"tried to allocate (\d+) bytes")
_MEMORY_HINT = "`--device meta` plans memory without allocating (exact, byte-identical to the CPU figure)"


def os_error_line(error: OSError) -> str:
    """An OS error as one line: what failed, on which path, and what to do."""
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    reason = error.strerror or str(error)
    hint = _OS_HINTS.get(error.errno or 0)
    return f"{where + ': ' if where else ''}{reason}" + (f" ({hint})" if hint else "")


def out_of_memory_line(error: BaseException) -> str | None:
    """One line for running out of memory (MemoryError, torch's CPU or CUDA allocator), else None."""
    text = str(error)
    if isinstance(error, MemoryError):
        needed = f"tried to allocate more than this machine has ({text})" if text else "ran out of memory"
    elif type(error).__name__ == "OutOfMemoryError" or "can't allocate memory" in text:
        match = _CPU_ALLOCATION.search(text) or re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]?i?B)", text)
        amount = (f"{int(match[1]):,} bytes" if match[1].isdigit() else match[1]) if match else "more memory"
        needed = f"the run needed {amount} in one allocation, more than is free"
    else:
        return None
    return f"out of memory: {needed}; use a smaller --batch-size or input, or {_MEMORY_HINT}"


class _OneLineErrors(TyperGroup):
    """Runs the app with every usage or input error reported as one line and exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning
                # PYTHONWARNINGS=error would turn the tool's one-line warnings into tracebacks
                # a list at runtime, changed in place as before; typeshed types it a read-only Sequence
                filters = cast(list, warnings.filters)
                filters[:] = [f for f in filters if f[0] != "error"]
                result = super().main(*args, **kwargs)
        except UserInputError as error:
            typer.echo(f"error: {error}", err=True)
            sys.exit(2)
        except ClickException as error:
            message = error.format_message()
            if message:  # typer's no-args help raises with an empty message, after printing the help
                typer.echo(f"error: {message}", err=True)
            sys.exit(error.exit_code)
        except ToolBug:
            traceback.print_exc()
            typer.echo(f"error: {REPORT_LINE}", err=True)
            sys.exit(70)  # EX_SOFTWARE: an internal error
        except OSError as error:
            typer.echo(f"error: {os_error_line(error)}", err=True)
            sys.exit(2)
        except (MemoryError, RuntimeError) as error:
            line = out_of_memory_line(error)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a user model's exit or error, or a Ctrl-C, ends it in one line."""
        from senet_profile.api import guarded_stdout, watch_sigint

        with watch_sigint() as watch:
            try:
                with guarded_stdout():
                    return super().invoke(ctx)
            except (KeyboardInterrupt, SystemExit, Exception) as error:
                _model_or_interrupt(error, ctrl_c=watch.interrupted)
                raise


def _model_or_interrupt(error: BaseException, *, ctrl_c: bool) -> None:
    """Exit with one line when ``error`` came out of a user's model (2) or is a Ctrl-C (130); else return."""
    from senet_profile.api import model_failure

    line = None if isinstance(error, KeyboardInterrupt) and ctrl_c else model_failure(error)
    if line is not None:
        typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    if isinstance(error, KeyboardInterrupt):
        typer.echo("interrupted (Ctrl-C); what was already recorded is kept, rerun to go on", err=True)
        sys.exit(130)


app = typer.Typer(
    cls=_OneLineErrors,
    help="What Squeeze-and-Excitation really costs: parameters, MACs, activations. " + GRAMMAR,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: shows [pp|%] as written, and needs no rich import to print
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"senet-profile {version('senet-profile')}")
        except PackageNotFoundError:  # pragma: no cover - run from a source tree that is not installed
            typer.echo("senet-profile (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """What Squeeze-and-Excitation really costs: parameters, MACs, activations."""
