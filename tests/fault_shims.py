"""Test helpers that make writes fail the way a full disk does (no tmpfs or root needed, so they run on any CI box).

- :func:`full_disk_open`: an ``open`` for a module's namespace (``monkeypatch.setattr(module, "open", ...)``) whose
  files raise ``OSError(ENOSPC)`` once more than ``budget`` bytes were written through them in all.
- :func:`failing_fsync`: an ``os.fsync`` that raises ENOSPC (what a full NFS or delayed-allocation disk reports at
  fsync): every writer that publishes through rgbify.fileio.publishing fails there, after writing its temporary
  file.
- :func:`fsize_limit`: a ``preexec_fn`` for a subprocess that caps the size of every file it writes (RLIMIT_FSIZE,
  SIGXFSZ ignored): the kernel fails the write with EFBIG, in C libraries (HDF5, torch, Pillow) as much as in Python.
"""

from __future__ import annotations

import builtins
import errno
import resource
import signal
from typing import Any


class _FullFile:
    def __init__(self, f: Any, state: dict[str, int]):
        self._f, self._state = f, state

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B")) if not isinstance(data, str) else len(data.encode())
        if self._state["written"] + n > self._state["budget"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._state["written"] += n
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()

    def __iter__(self):
        return iter(self._f)


def full_disk_open(budget: int = 0):
    """An ``open`` whose files written to fail with ENOSPC past ``budget`` bytes in all (reads are untouched)."""
    state = {"written": 0, "budget": budget}

    def _open(file, mode="r", *args, **kw):
        f = builtins.open(file, mode, *args, **kw)
        return _FullFile(f, state) if any(c in mode for c in "wax+") else f

    return _open


def failing_fsync(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def fsize_limit(nbytes: int):
    """preexec_fn: files this process writes may not grow past ``nbytes`` (writes beyond fail with EFBIG)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process at the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return limit


def sigint_default() -> None:
    """preexec_fn for a child that a test sends Ctrl-C: SIGINT back to its default action. A shell starts background
    jobs (`cmd &`, nohup) with SIGINT ignored, the ignore is inherited, and Python then installs no KeyboardInterrupt
    handler: without this a test run from such a job would test the harness, not rgbify."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
