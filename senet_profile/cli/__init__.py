"""The ``senet-profile`` command line, one module per command group; ``main`` is the console script."""

from senet_profile.cli import bench, explain, families, measure, present, sweep, track  # noqa: F401  (registers the commands)
from senet_profile.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
