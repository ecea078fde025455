"""Atomic publishing of files (write to a temporary name in the same folder, fsync, rename, fsync the folder), and
the one wording of a write that the file system refuses (a full disk, a read-only or missing folder)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rgbify.errors import UserError


class OutputError(UserError, ValueError):
    """An output path that cannot receive what a command writes (a file where a folder should be, a folder of
    other files, an unwritable place); the message names it and the fix."""


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""errnos of a full disk, a full quota, or a file over the size limit."""
REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)
"""errnos of a place that may not be written."""
BAD_PLACE = (errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG)
"""errnos of a path that cannot be a file there (a file where a folder should be, a folder where a file should be)."""


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder, so that a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def publishing(path: str | os.PathLike, tmp_suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is fsynced, renamed onto ``path`` and the
    folder fsynced, so ``path`` only ever appears complete. On any error (a full disk included) the temporary file
    is removed and ``path`` is untouched; an OSError that names no file (a failed fsync) is raised again naming
    ``path``. The temporary name is ``NAME.PID`` + ``tmp_suffix`` (two processes writing one path each write their
    own); end ``tmp_suffix`` with the real extension where a writer picks the format from the name (".tmp.png")."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{tmp_suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, os.fspath(path)) from e
        raise
    fsync_dir(path.parent)


def disk_error(e: OSError, path: str | os.PathLike | None = None, resume: str = "run the same command again"
               ) -> Exception:
    """A write the file system refused as a one-line UserError naming the file and what to do (``resume`` says what
    to run afterwards); any other OSError as it is."""
    where = os.fspath(path) if path is not None else (e.filename or "a file")
    why = e.strerror or str(e)
    if e.errno in FULL:
        return UserError(f"no space left writing {where} ({why}); free some space and {resume}")
    if e.errno in REFUSED:
        return UserError(f"cannot write {where} ({why}); make the folder writable or choose another place")
    if e.errno in BAD_PLACE:
        return UserError(f"cannot write {where} ({why}); check the path: its folder must exist (or be creatable) "
                         "and it must not be a folder")
    return e


# --- output folders: filled under a temporary name, then put in place whole --------------------------------------


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def sweep_partial(out: str | os.PathLike) -> None:
    """Remove the temporary folders that runs on this host killed while filling ``out`` left beside it (their
    process is gone)."""
    out = Path(out)
    prefix = _partial_prefix(out)
    try:
        candidates = [p for p in out.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in sorted(candidates, key=lambda p: not p.name.endswith("-old")):
        pid, _, old = p.name[len(prefix):].partition("-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if old == "old" and not out.exists():  # killed between its two renames: the earlier output goes back
            os.replace(p, out)
        else:
            shutil.rmtree(p, ignore_errors=True)


def check_output_dir(out: str | os.PathLike, ours: Callable[[Path], bool], flag: str = "--out",
                     what: str = "output") -> None:
    """UserError unless ``out`` may receive a new output folder: it does not exist (and its parent can be created
    and written), or it is an empty folder, or ``ours(out)`` says it holds an earlier output of the same command
    (which :func:`publishing_dir` replaces). Call it before the work, so that a bad ``--out`` fails at once."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{flag} {out} is a file; give a folder for the {what}")
    if out.is_dir():
        try:
            empty = not any(out.iterdir())
        except OSError as e:
            raise OutputError(f"{flag} {out}: cannot read the folder ({e.strerror})") from None
        if not empty and not ours(out):
            raise OutputError(f"{flag} {out} is a folder that holds other files (not an earlier {what}); choose "
                              "a new or empty folder")
    check_writable_parent(out, flag)


def check_writable_parent(out: str | os.PathLike, flag: str = "--out") -> None:
    """OutputError unless the folder that is to hold ``out`` exists or can be created, and can be written."""
    parent = Path(out).parent
    existing = next((p for p in (parent, *parent.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        raise OutputError(f"{flag} {out}: {existing} is a file, not a folder; choose another place")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{flag} {out}: cannot create {parent} ({e.strerror}); choose a writable place") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {out}: {parent} is not writable; choose a writable place")


@contextmanager
def publishing_dir(out: str | os.PathLike, ours: Callable[[Path], bool], flag: str = "--out",
                   what: str = "output") -> Iterator[Path]:
    """Yield a new temporary folder beside ``out`` (``.NAME.partial-HOST-PID``) to fill; on success it becomes
    ``out`` (an earlier output there, which ``ours`` recognises, is removed once the new one is in place); on any
    error, a signal that raises included, it is removed and ``out`` is untouched. A SIGKILLed run leaves only the
    temporary folder, which the next run into ``out`` sweeps (:func:`sweep_partial`). ``out`` is checked first
    (:func:`check_output_dir`)."""
    out = Path(out)
    check_output_dir(out, ours, flag, what)
    sweep_partial(out)
    tmp = out.parent / f"{_partial_prefix(out)}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        yield tmp
        fsync_dir(tmp)
        if out.is_dir() and any(out.iterdir()):
            if not ours(out):  # something else appeared meanwhile: keep it
                raise OutputError(f"{flag} {out} was filled with other files meanwhile; choose a new or empty folder")
            old = out.parent / f"{_partial_prefix(out)}{os.getpid()}-old"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.is_dir():
                out.rmdir()
            os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
