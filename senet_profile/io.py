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
import errno
import json
import math
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


# --- reading: regular files only, bounded; JSON hardened; numbers bounded --------------------------------

MAX_READ_BYTES = 64 * 1024 * 1024  # a record, manifest or machine model is kilobytes; a grid far less
MAX_GRID_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_INT = 2**31  # batch sizes, input sizes, thread and process counts: torch's int32 indexing at most
_JSON_INT_DIGITS = 30  # no count the tool writes comes near this; 10**400 is refused, not overflowed


def check_regular(path: Path, *, verb: str = "read", absent_ok: bool = False) -> bool:
    """Refuse ``path`` unless it is a regular file (not followed when a link); False when absent and allowed.

    A symbolic link is refused too: for writes it is never followed, and for reads the check is the one
    the file's opener repeats on the open handle.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if absent_ok:
            return False
        raise UserInputError(f"cannot {verb} {path}: no such file") from None
    except OSError as error:
        raise UserInputError(f"cannot {verb} {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise UserInputError(f"cannot {verb} {path}: it is {_kind(mode)}, not a regular file")
    return True


def read_regular(path: Path, *, limit: int = MAX_READ_BYTES, follow: bool = True) -> bytes:
    """The bytes of a regular file, at most ``limit``; UserInputError (one line) for anything else.

    The file is opened without blocking (a FIFO never hangs the tool) and checked on the open handle, so
    a file swapped for a FIFO or a device between check and open is refused too; a link is followed
    only when ``follow`` (a file the user names), and only to a regular file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    flags |= 0 if follow else getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise UserInputError(f"cannot read {path}: no such file") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserInputError(f"cannot read {path}: it is a symbolic link, not a regular file") from None
        raise UserInputError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise UserInputError(f"cannot read {path}: it is {_kind(mode)}, not a regular file")
        if os.fstat(handle).st_size > limit:
            raise UserInputError(f"cannot read {path}: larger than {limit:,} bytes")
        chunks, size = [], 0
        while chunk := os.read(handle, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UserInputError(f"cannot read {path}: larger than {limit:,} bytes")
        return b"".join(chunks)
    except OSError as error:
        raise UserInputError(f"cannot read {path}: {error.strerror or error}") from None
    finally:
        os.close(handle)


def open_lock(path: Path) -> int:
    """A descriptor of the lock file ``path``, created if absent; never a link, FIFO or device, never emptied.

    Opened without following links and without truncating, and checked on the handle: a symbolic link
    there is refused with its target untouched.
    """
    check_regular(path, verb="use lock file", absent_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as error:
        why = "it is a symbolic link" if error.errno == errno.ELOOP else (error.strerror or str(error))
        raise UserInputError(f"cannot use lock file {path}: {why}") from None
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise UserInputError(f"cannot use lock file {path}: it is {_kind(mode)}, not a regular file")
    return handle


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _JSON_INT_DIGITS:
        raise ValueError(f"number {text[:12]}... is out of range")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:24]} is out of range")
    return value


def _json_constant(text: str) -> object:
    raise ValueError(f"{text} is not a number JSON allows")


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def parse_json(content: str | bytes) -> object:
    """JSON, hardened: ValueError (one line) for bad syntax or encoding, nesting over 64 levels, integers
    over 30 digits, numbers out of a float's range, NaN/Infinity -- never RecursionError or OverflowError."""
    try:
        text = content.decode("utf-8") if isinstance(content, bytes) else content
        data = json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def read_json(path: Path, *, limit: int = MAX_READ_BYTES, follow: bool = True) -> object:
    """A regular file's JSON, bounded and hardened; UserInputError naming the file, in one line."""
    content = read_regular(path, limit=limit, follow=follow)
    try:
        return parse_json(content)
    except ValueError as error:
        raise UserInputError(f"{path}: {error}") from None


def check_int(name: str, value: object, *, low: int = 1, high: int = MAX_INT) -> int:
    """``value`` as an int within [low, high]; UserInputError (naming ``name``) for anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise UserInputError(f"{name} must be between {low} and {high:,}, got {value}")
    return value


# --- private temporary folders: named by pid, so the next run removes a killed run's ---------------------

_TEMP_FOLDER = re.compile(r"^senet-profile-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def remove_stale_temp_folders(root: Path | None = None) -> list[Path]:
    """Remove the temporary folders (``senet-profile-<pid>-*``) of runs whose process no longer runs."""
    import shutil

    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root or tempfile.gettempdir()):
            match = _TEMP_FOLDER.match(entry.name)
            if match and entry.is_dir(follow_symlinks=False) and not _running(int(match["pid"])):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def temp_folder(root: Path | None = None):
    """A private temporary folder named after this process, removed on exit (Ctrl-C included); the
    folders of earlier runs that were killed are removed first."""
    import shutil

    remove_stale_temp_folders(root)
    folder = Path(tempfile.mkdtemp(prefix=f"senet-profile-{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Python statements a worker process runs first: ignore Ctrl-C (its parent stops it, so a Ctrl-C prints one
# line, not a traceback per worker) and, on Linux, die with its parent (a killed run leaves no worker timing).
WORKER_PREAMBLE = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "import ctypes, sys; "
    "sys.platform.startswith('linux') and ctypes.CDLL(None).prctl(1, signal.SIGKILL)"
)
