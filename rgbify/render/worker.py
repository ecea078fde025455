"""Long-lived Blender worker processes: start-up paid once, recycled on a scene count or memory limit, killed and
replaced on a per-scene timeout, and never outliving the process that started them.

This module is the parent side, :class:`RenderWorker` (a context manager). The child is rgbify.render.worker_child
(``python -m rgbify.render.worker_child``): it reads length-prefixed pickled requests on stdin and answers on its
original stdout (rgbify.render.worker_protocol); everything Blender prints goes to stderr, which the parent sends
to a log file whose tail is quoted when the worker dies.

The child exits by itself when its parent dies: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux (set only when the
worker was started from the parent's main thread, since the signal follows the starting *thread*), a thread
that watches ``os.getppid()``, and end-of-file on stdin between scenes.

Importing this module does not import bpy.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

from filelock import FileLock, Timeout

import rgbify
from rgbify.render.blender_boot import check_ready, popen_blender
from rgbify.render.result import RenderResult, SceneError
from rgbify.render.worker_protocol import ENV_PARENT, ENV_PDEATHSIG, ENV_SCRATCH, recv, send
from rgbify.scenes.clip import clip_to_json
from rgbify.scenes.spec import SceneSpec, spec_to_json

__all__ = ["RenderWorker", "SceneError", "SceneTimeout", "WorkerCrashed"]

ROOT_PREFIX = "rgbify-worker-"
OWNER = ".owner"


class SceneTimeout(SceneError):
    """A scene took longer than the worker's ``timeout_s``; the worker process was killed and replaced."""


class WorkerCrashed(SceneError):
    """The worker process died while rendering a scene (its exit code and log tail are in the message)."""


# --- parent side --------------------------------------------------------------------------------------------


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(rgbify.__file__)))


def _new_root() -> tuple[str, FileLock]:
    """A new temporary folder for a worker (its log, scratch files and Blender's temporary folder) and the lock on
    its ``.owner`` file, held by this process for the folder's life. First (once per process) removes the folders
    of workers whose owner died without cleaning up (a SIGKILLed build): their lock is free."""
    _sweep_orphans()
    root = tempfile.mkdtemp(prefix=ROOT_PREFIX)
    lock = FileLock(os.path.join(root, OWNER), mode=0o600)
    lock.acquire(timeout=0)
    return root, lock


@functools.cache
def _sweep_orphans() -> None:
    for path in glob.glob(os.path.join(tempfile.gettempdir(), ROOT_PREFIX + "*")):
        _remove_if_orphaned(path)


def _remove_if_orphaned(path: str, min_age_s: float = 60.0) -> None:
    """Remove a worker folder whose ``.owner`` lock nobody holds and that has not changed for ``min_age_s``
    (a folder being created has no lock for a moment). Folders without an owner file are left alone."""
    owner = os.path.join(path, OWNER)
    if not os.path.isfile(owner):
        return
    lock = FileLock(owner)
    try:
        with lock.acquire(timeout=0):
            if time.time() - os.stat(path).st_mtime >= min_age_s:
                shutil.rmtree(path, ignore_errors=True)
    except (Timeout, OSError):
        pass  # its owner is alive (or the folder went away meanwhile)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except OSError:
            pass


class RenderWorker:
    """One long-lived Blender subprocess that renders many scene specs.

    ``max_scenes``: the process is replaced after this many scenes (bounds slow leaks).
    ``max_rss_mb``: ... or as soon as its resident memory exceeds this after a scene.
    ``timeout_s``: a scene that takes longer is abandoned, the process killed and replaced, SceneTimeout raised.
    ``startup_timeout_s``: limit for a fresh process to import bpy and report ready.
    ``device``: "cpu" or "gpu" (CUDA/OptiX) for Cycles; ``threads``: Cycles threads (None = all cores).
    ``log_path``: where the worker's stdout/stderr (Blender's messages) go; default ``worker.log`` in the
    worker's temporary folder, which also holds each process's scratch files and Blender's temporary folder and is
    removed when the worker is garbage-collected or the program exits (or, after a SIGKILL, by the next worker
    that starts on the machine).
    ``blender``: path of a standalone Blender (4.2+) binary: the worker runs inside it (``blender --background
    --python-expr ...``, see rgbify.render.blender_boot) instead of ``python -m`` with the bpy module.
    ``env``: extra environment variables for the worker process (e.g. CUDA_VISIBLE_DEVICES of its GPU).

    ``render(spec)`` returns a RenderResult or raises SceneError (the worker stays usable). ``restarts`` counts
    replacements of the process (recycling, crashes and timeouts); ``scenes_rendered`` counts successes.
    """

    def __init__(self, max_scenes: int = 500, max_rss_mb: float = 4096.0, timeout_s: float = 600.0,
                 startup_timeout_s: float = 120.0, device: str = "cpu", threads: int | None = None,
                 log_path: str | None = None, blender: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        if max_scenes < 1:
            raise ValueError(f"max_scenes must be >= 1, got {max_scenes}")
        if timeout_s <= 0 or startup_timeout_s <= 0:
            raise ValueError(f"timeouts must be positive, got timeout_s={timeout_s}, "
                             f"startup_timeout_s={startup_timeout_s}")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device {device!r} is not 'cpu' or 'gpu'")
        self.max_scenes = int(max_scenes)
        self.max_rss_mb = float(max_rss_mb)
        self.timeout_s = float(timeout_s)
        self.startup_timeout_s = float(startup_timeout_s)
        self.device = device
        self.threads = threads
        self.blender = blender
        self.extra_env = dict(env or {})
        self.child_info: dict = {}
        self.restarts = 0
        self.scenes_rendered = 0
        self.last_rss_mb = 0.0
        self._scenes_in_process = 0
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._busy = False
        self._ready = False
        self._startup_s = 0.0
        self._root, self._owner = _new_root()
        self.log_path = log_path or os.path.join(self._root, "worker.log")
        self._scratch: str | None = None
        self._finalizer = weakref.finalize(self, RenderWorker._finalize, [None], self._root, self._owner)

    @staticmethod
    def _finalize(proc_box: list, root: str, owner: FileLock) -> None:
        if proc_box[0] is not None:
            _kill(proc_box[0])
        shutil.rmtree(root, ignore_errors=True)
        owner.release(force=True)

    # lifecycle

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def __enter__(self) -> RenderWorker:
        self.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(kill=exc_type is not None)  # leaving on an error or Ctrl-C: no polite wait for a busy process

    def start(self) -> None:
        """Start the subprocess if none is running (it imports bpy in the background)."""
        self._closed = False
        if self._proc is not None and self._proc.poll() is None:
            return
        env = dict(os.environ)
        root = _package_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env[ENV_PARENT] = str(os.getpid())
        env[ENV_PDEATHSIG] = "1" if threading.current_thread() is threading.main_thread() else "0"
        os.makedirs(self._root, exist_ok=True)
        self._scratch = tempfile.mkdtemp(prefix="scratch-", dir=self._root)
        env[ENV_SCRATCH] = self._scratch
        env["TMPDIR"] = self._root  # Blender's own temporary folder (blender_*) goes in there too
        env.update(self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            if self.blender:
                self._proc = popen_blender(self.blender, root, env, log)
            else:
                self._proc = subprocess.Popen([sys.executable, "-m", "rgbify.render.worker_child"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                              close_fds=True)
        finally:
            log.close()
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, RenderWorker._finalize, [self._proc], self._root, self._owner)
        self._ready = False
        self._scenes_in_process = 0
        self._started_at = time.perf_counter()

    def _wait_ready(self) -> None:
        if self._ready:
            return
        assert self._proc is not None
        try:
            msg = recv(self._proc.stdout.fileno(), time.monotonic() + self.startup_timeout_s)
        except TimeoutError:
            self._replace(count=False)
            raise SceneError(f"the Blender worker did not start within {self.startup_timeout_s:.0f} s; "
                             f"see {self.log_path}") from None
        except EOFError:
            code = self._proc.wait()
            self._proc = None
            raise SceneError(f"the Blender worker exited with code {code} while starting: {self._log_tail()}") from None
        if not (isinstance(msg, dict) and msg.get("ready")):
            raise SceneError(f"the Blender worker sent {msg!r} instead of its ready message")
        self.child_info = msg
        if self.blender:
            try:
                check_ready(self.blender, msg)
            except SceneError:
                self.close()
                raise
        self._ready = True
        self._startup_s = time.perf_counter() - self._started_at

    def close(self, kill: bool = False) -> None:
        """Ask the subprocess to exit (kill it if it does not within 10 s; at once with ``kill``, as when a ``with``
        block is left by an exception or Ctrl-C, which Blender would ignore until its render ends). A render in
        progress in another thread then fails with SceneError, and no new process is started until ``start()`` or
        ``with``."""
        self._closed = True
        proc, self._proc = self._proc, None
        if proc is None:
            self._drop_scratch()
            return
        if proc.poll() is None and not self._busy and not kill:  # a busy worker is killed at once
            try:
                send(proc.stdin, {"op": "exit"})
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        _kill(proc)
        self._drop_scratch()

    def _drop_scratch(self) -> None:
        """Remove the finished process's scratch files (a killed render leaves its EXR there)."""
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _replace(self, count: bool = True) -> None:
        if self._proc is not None:
            _kill(self._proc)
            self._proc = None
        self._drop_scratch()
        if self._closed:
            return
        if count:
            self.restarts += 1
        self.start()

    def _log_tail(self, n: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace").strip()[-n:]
        except OSError:
            return "(no log)"

    # rendering

    def render(self, spec: SceneSpec) -> RenderResult:
        """Render one spec in the worker process; see the class docstring for failures."""
        request = {"op": "render", "spec": spec_to_json(spec), "device": self.device, "threads": self.threads}
        reply, timings = self._request(request)
        result: RenderResult = reply["result"]
        result.timings.update(timings)
        return result

    def render_clip(self, clip: Any, frames: list[int] | None = None) -> list[RenderResult]:
        """Render a clip's frames (rgbify.scenes.clip.ClipSpec) in the worker process, in one Blender scene
        (rgbify.render.cycles.render_clip_cycles); it counts as one scene toward ``max_scenes``. The worker's
        start-up and round trip are in the first frame's timings."""
        request = {"op": "render_clip", "clip": clip_to_json(clip), "frames": frames, "device": self.device,
                   "threads": self.threads}
        reply, timings = self._request(request)
        results: list[RenderResult] = reply["results"]
        results[0].timings.update(timings)
        return results

    def _request(self, request: dict) -> tuple[dict, dict[str, float]]:
        """Send one render request and wait for its reply (an ok one; failures raise as the class docstring
        says); returns it with the worker's start-up and round-trip timings."""
        if self._closed:
            raise SceneError("the worker is closed; use it in a `with` block or call start()")
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:  # died between scenes
                self._replace()
            else:
                self.start()
        startup_paid = not self._ready
        t0 = time.perf_counter()
        self._wait_ready()
        proc = self._proc
        self._busy = True
        try:
            send(proc.stdin, request)
            reply = recv(proc.stdout.fileno(), time.monotonic() + self.timeout_s)
        except TimeoutError:
            self._replace()
            raise SceneTimeout(f"scene took longer than {self.timeout_s:g} s; the worker was killed and "
                               "replaced") from None
        except (EOFError, BrokenPipeError, OSError, ValueError):
            if self._closed:
                raise SceneError("the worker was closed while it rendered this scene") from None
            code = proc.wait()
            tail = self._log_tail()
            self._replace()
            raise WorkerCrashed(f"the Blender worker died (exit code {code}) while rendering the scene; "
                                f"log tail: {tail}") from None
        finally:
            self._busy = False
        self._scenes_in_process += 1
        self.last_rss_mb = float(reply.get("rss_mb", 0.0))
        if self._scenes_in_process >= self.max_scenes or self.last_rss_mb > self.max_rss_mb:
            self.close()
            self.restarts += 1
            self.start()
        if not reply.get("ok"):
            raise SceneError(reply.get("error", "unknown error in the Blender worker"))
        self.scenes_rendered += 1
        return reply, {"worker_startup": self._startup_s if startup_paid else 0.0,
                       "worker_roundtrip": time.perf_counter() - t0}
