"""Signals: SIGTERM stops a command as Ctrl-C does, and worker processes leave both to their parent.

A command's clean-up (temporary files and folders removed, Blender workers killed, locks released) runs on
KeyboardInterrupt; :func:`sigterm_as_interrupt` raises it on SIGTERM too (a batch system's kill, ``kill PID``), so
either signal ends a command with exit code 130 and one line. Worker processes (process pools, loader workers)
start with :func:`quiet_worker`: they ignore SIGINT (a Ctrl-C reaches the whole process group; the parent stops its
workers) and die silently on SIGTERM, instead of each printing a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Meanwhile, SIGTERM raises KeyboardInterrupt (in the main thread; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet_worker() -> None:
    """Initializer of a worker process: SIGINT ignored, SIGTERM back to its default (the process ends)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_pool(pool: Any, interrupted: bool) -> None:
    """Shut a ProcessPoolExecutor down without waiting: queued tasks are cancelled and, when the caller was
    interrupted, its worker processes are ended at once (else the interpreter's exit would wait for the tasks they
    are running)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    if interrupted:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
