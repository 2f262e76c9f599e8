"""The one error type that means "the user asked for something impossible"."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from a user: the CLI prints it as one line and exits with status 2."""


class ToolBug(RuntimeError):
    """A failure inside senet-profile's own counting or timing, not in the user's input or model.

    It keeps its traceback (the command line prints it, with a line asking for a report) and is never
    turned into a ``UserInputError``.
    """


REPORT_LINE = (
    "this is a bug in senet-profile, not in your input or your model: please report it with the "
    "traceback above"
)
