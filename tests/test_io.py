"""Writing results: checked destination, atomic replacement, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from senet_profile import io
from senet_profile.errors import UserInputError
from senet_profile.io import check_folder, check_writable, write_atomic


def test_write_creates_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_atomic(target, "[1, 2]\n")
    assert target.read_text(encoding="utf-8") == "[1, 2]\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old, much longer content\n" * 10, encoding="utf-8")
    write_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_keeps_text_exactly(tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    text = "a\r\nb\n→ 9.90 %\n"
    write_atomic(target, text)
    assert target.read_bytes() == text.encode("utf-8")


def test_failed_write_leaves_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_text("old\n", encoding="utf-8")
    seen: list[str] = []

    def failing_replace(src: str, dst: object) -> None:
        seen.append(src)
        assert Path(src).read_text(encoding="utf-8") == "new\n"  # the temporary was complete
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk went away"):
        write_atomic(target, "new\n")
    assert seen
    assert Path(seen[0]).parent == tmp_path  # same folder: the rename would have been atomic
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_interrupted_write_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(src: str, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "out.json", "new\n")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_refused_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.json"
    with pytest.raises(UserInputError, match=r"cannot write .*out\.json: folder .*missing does not exist"):
        write_atomic(target, "x")
    assert not (tmp_path / "missing").exists()


def test_directory_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "results.json"
    folder.mkdir()
    with pytest.raises(UserInputError, match=r"cannot write .*results\.json: it is a directory"):
        write_atomic(folder, "x")
    assert list(folder.iterdir()) == []


def test_check_writable_accepts_a_bare_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    check_writable(Path("out.json"))
    write_atomic(Path("out.json"), "x")
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UserInputError, match="Permission denied"):
            check_writable(folder / "out.json")
    finally:
        folder.chmod(0o700)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    write_atomic(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    write_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_special_destinations_are_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("kept", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path, kind in ((link, "symbolic link"), (fifo, "FIFO"), (Path("/dev/null"), "character device")):
        with pytest.raises(UserInputError, match=kind):
            write_atomic(path, "x")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "kept" and fifo.is_fifo()


def test_temporaries_of_dead_processes_are_swept_by_the_next_write(tmp_path: Path) -> None:
    dead = tmp_path / ".out.json.999999999.abcdefgh.tmp"  # no such pid
    alive = tmp_path / f".out.json.{os.getppid()}.abcdefgh.tmp"  # a running process's
    for path in (dead, alive):
        path.write_text("partial", encoding="utf-8")
    write_atomic(tmp_path / "out.json", "x")
    assert not dead.exists() and alive.exists()


def test_a_folder_is_checked_creatable_without_being_created(tmp_path: Path) -> None:
    check_folder(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(UserInputError, match="is not a folder"):
        check_folder(tmp_path / "file" / "sub")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[" * 100_000, "nested deeper"),
        ("[" * 70 + "]" * 70, "nested deeper"),
        ('{"n": 1' + "0" * 400 + "}", "out of range"),
        ('{"n": 1e400}', "out of range"),
        ('{"n": NaN}', "NaN"),
        ('{"n": -Infinity}', "Infinity"),
        (b"\xff\xfe", "UTF-8"),
        ('{"n": ', "not valid JSON"),
    ],
)
def test_parse_json_refuses_in_one_line(text: str | bytes, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as caught:
        io.parse_json(text)
    assert "\n" not in str(caught.value)


def test_parse_json_reads_what_the_tool_writes() -> None:
    assert io.parse_json('{"a": [1, 2.5, -3], "b": {"c": null}}') == {"a": [1, 2.5, -3], "b": {"c": None}}
    assert io.parse_json("[" * 64 + "]" * 64)


@pytest.mark.parametrize("value", [0, -1, 2**31 + 1, 2**63, 1.5, "2", True, None])
def test_check_int_refuses(value: object) -> None:
    with pytest.raises(UserInputError):
        io.check_int("--batch-size", value)


def test_check_int_accepts_the_bounds() -> None:
    assert io.check_int("n", 1) == 1 and io.check_int("n", 2**31) == 2**31
