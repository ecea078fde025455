"""Atomic publishing of files: write to a temporary name in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
    is removed and ``path`` is untouched. ``tmp_suffix`` is appended to the file name; end it with the real
    extension where a writer picks the format from the name (".tmp.png")."""
    path = Path(path)
    tmp = path.with_name(path.name + tmp_suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
