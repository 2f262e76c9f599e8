"""Run records: self-describing, append-only, atomic; corrupt files named and skipped."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from senet_profile.history import records
from senet_profile.history.records import load_records, new_record, read_record, save_record
from senet_profile.setting import METHOD_VERSION


def _figure(value: int = 1) -> dict:
    return {
        "model": "m",
        "metric": "params",
        "setting": "s",
        "unit": "params",
        "value": value,
        "deterministic": True,
    }


def test_new_record_describes_itself():
    record = new_record("bench", [_figure()], settings={"mode": "quick"})
    assert record["schema"] == records.SCHEMA and record["kind"] == "bench"
    assert {"machine_class", "cpu", "cores", "versions", "python"} <= set(record["machine"])
    assert {"torch", "torchvision"} <= set(record["machine"]["versions"])
    assert record["commit"] and record["time"].endswith("+00:00")
    assert record["settings"] == {"method_version": METHOD_VERSION, "mode": "quick"}


def test_save_and_load_round_trip(tmp_path: Path):
    record = new_record("bench", [_figure(7)])
    path = save_record(tmp_path, record)
    loaded, problems = load_records(tmp_path)
    assert problems == [] and [r.path for r in loaded] == [path]
    assert loaded[0].data == record


def test_records_are_never_overwritten(tmp_path: Path):
    record = new_record("bench", [_figure()])
    paths = {save_record(tmp_path, record) for _ in range(5)}
    assert len(paths) == 5 and len(list(tmp_path.glob("*.json"))) == 5


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"schema": 1, "kind": "bench", "time"', "not a readable JSON record"),
        ("[1, 2]", "top level is not an object"),
        ('{"schema": 1}', "kind: Field required"),
        (
            '{"schema": 99, "kind": "bench", "time": "t", "commit": "c", "machine": {"machine_class": "x"}, '
            '"figures": []}',
            "schema 99",
        ),
        (b"\xff\xfe\x00garbage", "not a readable JSON record"),
    ],
)
def test_corrupt_record_is_named_and_skipped(tmp_path: Path, content: str | bytes, needle: str):
    good = save_record(tmp_path, new_record("bench", [_figure()]))
    bad = tmp_path / "00000000-broken.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    loaded, problems = load_records(tmp_path)
    assert [r.path for r in loaded] == [good]
    assert len(problems) == 1 and str(bad) in problems[0] and needle in problems[0]
    with pytest.raises(ValueError, match=needle):
        read_record(bad)


def test_killed_write_leaves_earlier_records_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    earlier = save_record(tmp_path, new_record("bench", [_figure(1)]))
    before = earlier.read_bytes()

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # the process dies between writing the temporary file and the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_record(tmp_path, new_record("bench", [_figure(2)]))
    monkeypatch.undo()
    loaded, problems = load_records(tmp_path)
    assert problems == [] and [r.path for r in loaded] == [earlier]
    assert earlier.read_bytes() == before
    assert list(tmp_path.iterdir()) == [earlier]  # no temporary file left behind


def _save_many(folder: str, count: int) -> None:
    for index in range(count):
        save_record(Path(folder), new_record("bench", [_figure(index)]))


def test_two_writers_at_once_lose_nothing(tmp_path: Path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_save_many, args=(str(tmp_path), 10)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    loaded, problems = load_records(tmp_path)
    assert problems == [] and len(loaded) == 20


def test_kind_filter_and_order(tmp_path: Path):
    first = new_record("bench", [_figure()])
    second = {**new_record("other", [_figure()]), "time": "2999-01-01T00:00:00+00:00"}
    save_record(tmp_path, second)
    save_record(tmp_path, first)
    assert [r.data["kind"] for r in load_records(tmp_path)[0]] == ["bench", "other"]
    assert [r.data["kind"] for r in load_records(tmp_path, kind="other")[0]] == ["other"]


def test_missing_folder_is_empty(tmp_path: Path):
    assert load_records(tmp_path / "nowhere") == ([], [])


def test_saved_file_is_plain_json(tmp_path: Path):
    path = save_record(tmp_path, new_record("bench", [_figure()]))
    assert json.loads(path.read_text(encoding="utf-8"))["figures"][0]["value"] == 1
