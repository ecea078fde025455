"""The render worker's wire protocol, shared by the parent (rgbify.render.worker), the child
(rgbify.render.worker_child) and the Blender boot code (rgbify.render.blender_boot): length-prefixed pickles on a
pipe, and the environment variables the parent hands the child. Importing it imports neither bpy nor numpy."""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">Q")
ENV_PARENT = "RGBIFY_WORKER_PARENT"
"""The parent's pid: the child exits when its parent is gone."""
ENV_PDEATHSIG = "RGBIFY_WORKER_PDEATHSIG"
""""1": the child asks Linux to SIGKILL it when the thread that started it ends (set from the main thread only)."""
ENV_SCRATCH = "RGBIFY_WORKER_SCRATCH"
"""The child's scratch folder (intermediate PNG/EXR files)."""
ENV_REPLY_FD = "RGBIFY_WORKER_REPLY_FD"
"""Inside a standalone Blender: the file descriptor the replies go to (Blender prints its banner on stdout)."""


def send(f: Any, obj: Any) -> None:
    """Write one message (a pickle with its length) to the file object ``f``."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(HEADER.pack(len(data)) + data)
    f.flush()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 22))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None) -> Any:
    """Read one message from the file descriptor ``fd``; TimeoutError after ``deadline`` (time.monotonic()),
    EOFError when the other side closed the pipe."""
    (n,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, n, deadline))
