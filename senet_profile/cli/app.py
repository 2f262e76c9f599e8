"""The typer application and its one-line error handling: every refusal is `error: ...`, exit 2."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

from senet_profile.errors import UserInputError

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer with click as a dependency
    from click.exceptions import ClickException

GRAMMAR = (
    "Model arguments: NAME[:KNOB=VALUE,...] from the catalog (se_resnet50:r=8,stages=4), "
    "timm:NAME[:KEY=VALUE,...], torchvision:NAME[:KEY=VALUE,...], package.module:FUNCTION[:KEY=VALUE,...] "
    "or path/to/file.py:FUNCTION[:KEY=VALUE,...]. `senet-profile list` shows the catalog with its knobs; "
    "`list --source timm '*se*'` what timm offers."
)


def _one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    typer.echo(f"warning: {message}", err=True)


class _OneLineErrors(TyperGroup):
    """Runs the app with every usage or input error reported as one line and exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning
                result = super().main(*args, **kwargs)
        except UserInputError as error:
            typer.echo(f"error: {error}", err=True)
            sys.exit(2)
        except ClickException as error:
            message = error.format_message()
            if message:  # typer's no-args help raises with an empty message, after printing the help
                typer.echo(f"error: {message}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


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
