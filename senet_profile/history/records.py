"""Append-only, self-describing run records: one JSON file per run, never rewritten.

Each run is a new file with a unique name, written atomically (temporary file, then rename), so a run
killed halfway leaves the earlier records intact, and two runs started at once cannot lose each other's
record. Every record carries the machine and its class, the software versions, the commit and the time.
A file that cannot be read as a record (``senet_profile.history.schema``) is reported by name and
skipped, never silently used; a record is checked against the same schema before it is written.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from senet_profile.errors import UserInputError
from senet_profile.history.machine import describe_machine, git_commit
from senet_profile.history.schema import SCHEMA, check_record
from senet_profile.io import parse_json, read_regular, write_atomic
from senet_profile.setting import METHOD_VERSION

__all__ = ["SCHEMA", "RunRecord", "load_records", "new_record", "parse_record", "read_record", "record_files",
           "save_record"]  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    """A record read back from disk, with the file it came from."""

    path: Path
    data: dict

    @property
    def machine_class(self) -> str:
        """The class of machine the record was measured on."""
        return str(self.data["machine"]["machine_class"])


def new_record(
    kind: str, figures: list[dict], *, settings: dict | None = None, repo: Path | None = None
) -> dict:
    """A self-describing record of ``figures``: kind, time, commit, machine, versions and settings (the
    method's version among them: figures of two versions are never compared)."""
    return {
        "schema": SCHEMA,
        "kind": kind,
        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "commit": git_commit(repo),
        "machine": describe_machine().as_dict(),
        "settings": {"method_version": METHOD_VERSION, **(settings or {})},
        "figures": figures,
    }


def save_record(folder: Path, record: dict) -> Path:
    """Write ``record`` as a new file in ``folder`` (created if missing); the name is unique per run."""
    check_record(record)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = record["time"].replace(":", "").replace("-", "").replace("+0000", "Z")  # sorts by time
    path = folder / f"{stamp}-{record['commit']}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def parse_record(text: str | bytes, *, source: Path) -> RunRecord:
    """A record from a file's content; ValueError naming ``source`` and the problem if it is not valid."""
    try:
        data = parse_json(text)
    except ValueError as error:
        raise ValueError(f"{source}: not a readable JSON record ({error})") from None
    try:
        return RunRecord(source, check_record(data))
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def read_record(path: Path) -> RunRecord:
    """One record; ValueError naming the file and the problem if it is not a valid record."""
    try:
        content = read_regular(path)
    except UserInputError as error:
        raise ValueError(f"{path}: not a readable JSON record ({str(error).rpartition(': ')[2]})") from None
    return parse_record(content, source=path)


def record_files(folder: Path) -> list[Path]:
    """The record files of ``folder``, oldest first by name (names start with the time, so they sort)."""
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def load_records(folder: Path, *, kind: str | None = None) -> tuple[list[RunRecord], list[str]]:
    """Every valid record in ``folder`` (oldest first) and one problem line per file that was skipped."""
    records: list[RunRecord] = []
    problems: list[str] = []
    for path in record_files(folder):
        try:
            record = read_record(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        if kind is None or record.data["kind"] == kind:
            records.append(record)
    records.sort(key=lambda r: (r.data["time"], r.path.name))
    return records, problems
