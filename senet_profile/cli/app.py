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
    "Model arguments: NAME[:KNOB=VALUE,...], e.g. se_resnet50:r=8,stages=4,placement=pre,layout=paper. "
    "`senet-profile list` shows every name with its knobs and defaults."
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
)
