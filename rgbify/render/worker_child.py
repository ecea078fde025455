"""The render worker process (``python -m rgbify.render.worker_child``, or the same inside a standalone Blender via
rgbify.render.blender_boot): imports bpy once, then renders the scene specs its parent sends until told to exit.

Replies go to the original stdout (or ``RGBIFY_WORKER_REPLY_FD``); everything Blender prints goes to stderr, which
the parent sends to a log file. The child exits by itself when its parent dies: ``prctl(PR_SET_PDEATHSIG,
SIGKILL)`` on Linux, a thread that watches ``os.getppid()``, and end-of-file on stdin between scenes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time

from rgbify.render.result import SceneError
from rgbify.render.worker_protocol import ENV_PARENT, ENV_PDEATHSIG, ENV_REPLY_FD, ENV_SCRATCH, recv, send
from rgbify.scenes.clip import clip_from_json
from rgbify.scenes.spec import spec_from_json


def _set_pdeathsig() -> None:
    if sys.platform.startswith("linux") and os.environ.get(ENV_PDEATHSIG) == "1":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            scratch = os.environ.get(ENV_SCRATCH)
            if scratch:
                shutil.rmtree(os.path.dirname(scratch), ignore_errors=True)  # the parent cannot clean up now
            os._exit(3)
        time.sleep(0.5)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _handle(request: dict) -> dict:
    from rgbify.render.cycles import render_clip_cycles, render_cycles  # imported (with bpy) at start-up by main()

    try:
        if request.get("op") == "render_clip":
            clip = clip_from_json(request["clip"])
            results = render_clip_cycles(clip, device=request.get("device", "cpu"), threads=request.get("threads"),
                                         tmp_root=os.environ.get(ENV_SCRATCH), frames=request.get("frames"))
            return {"ok": True, "results": results, "rss_mb": _rss_mb()}
        spec = spec_from_json(request["spec"])
        result = render_cycles(spec, device=request.get("device", "cpu"), threads=request.get("threads"),
                               tmp_root=os.environ.get(ENV_SCRATCH))
        return {"ok": True, "result": result, "rss_mb": _rss_mb()}
    except (SceneError, ValueError) as e:
        return {"ok": False, "error": str(e), "rss_mb": _rss_mb()}
    except Exception as e:  # a Blender error must fail the scene, not the worker
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "rss_mb": _rss_mb()}


def main() -> int:
    parent = int(os.environ.get(ENV_PARENT, os.getppid()))
    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return 3
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    reply_fd = os.environ.pop(ENV_REPLY_FD, "")
    # inside a standalone Blender the replies go to a pipe of their own (Blender prints its banner to stdout)
    out = os.fdopen(int(reply_fd) if reply_fd else os.dup(1), "wb")
    os.dup2(2, 1)  # Blender prints to stdout: keep the protocol channel clean
    sys.stdout = sys.stderr
    t0 = time.perf_counter()
    import bpy  # start-up is paid here, once

    from rgbify.render import cycles  # noqa: F401

    send(out, {"ready": True, "pid": os.getpid(), "startup_s": time.perf_counter() - t0,
                "blender_version": tuple(bpy.app.version), "python": sys.executable,
                "rgbify": sys.modules["rgbify"].__file__, "numpy": sys.modules["numpy"].__version__})
    stdin = sys.stdin.buffer.fileno() if sys.stdin is not None else 0
    while True:
        try:
            request = recv(stdin)
        except EOFError:  # parent closed the pipe or died
            return 0
        if request.get("op") == "exit":
            return 0
        if request.get("op") == "ping":
            send(out, {"ok": True, "rss_mb": _rss_mb()})
            continue
        send(out, _handle(request))


if __name__ == "__main__":
    sys.exit(main())
