"""Writing results safely: check the destination first, then write atomically (temporary file, rename).

- Only regular files are written: a destination that is a directory, a symlink, a device, a FIFO or a
  socket is refused (``-`` for standard output is the command line's business, not this module's).
- A destination's folder is checked before any work: it exists (or can be created), is a folder, and a
  file can be created in it (probed by creating and removing one, since permission bits do not tell root
  or a read-only mount apart).
- Each write goes to a temporary file with a unique name in the destination's folder,
  ``.<name>.<pid>.<random>.tmp``, then ``os.replace``: a reader sees the old file or the new one, never a
  part; two writers never share a temporary, and the last rename wins. The temporary is removed on every
  error path. Temporaries left by a killed process (its pid no longer runs) are removed by the next write
  into that folder; readers never match them (they start with a dot and end in ``.tmp``).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from senet_profile.errors import UserInputError

_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY_AGE_S = 60.0  # fixed temporary names of earlier versions: stale once this old


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _existing_ancestor(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` that exists; UserInputError when a file is in the way."""
    current = folder
    while True:
        try:
            mode = current.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            if current.parent == current:
                raise UserInputError(f"cannot create folder {folder}: no existing parent") from None
            current = current.parent
            continue
        except OSError as error:
            raise UserInputError(f"cannot use folder {folder}: {error.strerror}") from None
        if not stat.S_ISDIR(mode):
            raise UserInputError(f"cannot use folder {folder}: {current} is not a folder")
        return current


def _probe(folder: Path, *, create: bool, shown: Path) -> None:
    """Create and remove a file in ``folder`` (or a folder, when ``create``); refuse on any OS error."""
    prefix = f".senet-profile-probe.{os.getpid()}."
    try:
        if create:
            os.rmdir(tempfile.mkdtemp(dir=folder, prefix=prefix, suffix=".tmp"))
        else:
            handle, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
            os.close(handle)
            os.unlink(name)
    except OSError as error:
        raise UserInputError(f"cannot write to {shown}: {error.strerror or error}") from None


def check_folder(folder: Path, *, create: bool = True) -> None:
    """Refuse, before any work, a folder that cannot be written (or created, when ``create``)."""
    folder = folder if str(folder) else Path(".")
    ancestor = _existing_ancestor(folder)
    if ancestor != folder and not create:
        raise UserInputError(f"cannot write to {folder}: folder {folder} does not exist")
    _probe(ancestor, create=ancestor != folder, shown=folder)


def check_writable(path: Path, *, create_folder: bool = False) -> None:
    """Refuse, before any work, a destination that is not (or cannot become) a regular file we may write."""
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder check below names what is missing
        mode = None
    except OSError as error:
        raise UserInputError(f"cannot write {path}: {error.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UserInputError(f"cannot write {path}: it is {_kind(mode)}, not a regular file")
    folder = path.parent if str(path.parent) else Path(".")
    if not create_folder and not folder.exists():
        raise UserInputError(f"cannot write {path}: folder {folder} does not exist")
    check_folder(folder, create=create_folder)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path, *, name: str | None = None) -> list[Path]:
    """Remove temporaries in ``folder`` left by processes that no longer run; return what was removed."""
    removed = []
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMPORARY.match(entry.name)
            legacy = name is not None and entry.name in _legacy_names(name)
            if match and not _running(int(match["pid"])):
                stale = True
            elif legacy:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_AGE_S
            else:
                continue
            if stale and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _legacy_names(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (f".{name}.tmp", f".{stem}.tmp.{suffix}" if dot else f".{name}.tmp")


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` through a unique temporary file in the same folder and a rename."""
    check_writable(path)
    remove_stale_temporaries(path.parent if str(path.parent) else Path("."), name=path.name)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, temporary = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
