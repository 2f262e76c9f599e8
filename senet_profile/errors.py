"""The one error type that means "the user asked for something impossible"."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from a user: the CLI prints it as one line and exits with status 2."""
