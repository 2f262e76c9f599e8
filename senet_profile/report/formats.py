"""The output formats and the file suffixes that imply them (no heavy imports: the CLI reads this early)."""

from __future__ import annotations

FORMATS = ("table", "csv", "json", "markdown")
FORMAT_ALIASES = {"md": "markdown"}
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".txt": "table"}


def format_for_path(path: str) -> str:
    """The output format implied by a file name's suffix (table for unknown suffixes)."""
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    return SUFFIX_FORMATS.get(suffix, "table")
