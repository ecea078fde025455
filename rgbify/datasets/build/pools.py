"""Pools: what renders a build's samples. The planner hands a pool the shards to write and publishes what it
reports; a pool knows nothing of manifests or publishing.

The interface (:class:`Pool`) is one method, ``run(config, jobs)``: a generator of :class:`~rgbify.datasets.build.
work.Rendered` reports (samples finished, for the progress bar and the statistics) and :class:`~rgbify.datasets.
build.work.ShardWritten` reports (a shard written whole to a part file, for the planner to check and publish). It
stops its workers when it ends or is closed. :class:`LocalPool` renders with Blender worker processes on this
machine; rgbify.datasets.build.ray_pool.RayPool runs one Ray task per shard.

Worker processes are RenderWorkers (:func:`make_worker`). ``--device gpu`` runs ``--workers-per-gpu`` of them on
every visible GPU: the GPUs are the ids in ``CUDA_VISIBLE_DEVICES`` if it is set, else those ``nvidia-smi -L``
lists; worker slot ``s`` gets ``CUDA_VISIBLE_DEVICES=gpus[s % len(gpus)]`` so Cycles in that process sees only its
GPU (:func:`worker_envs`). ``--blender PATH`` runs every worker inside that Blender binary.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from rgbify.datasets.build.config import BuildConfig
from rgbify.datasets.build.work import Rendered, ShardJob, ShardWritten, render_sample, write_part
from rgbify.datasets.storage import folder
from rgbify.errors import UserError
from rgbify.render.blender_boot import check_blender
from rgbify.render.worker import RenderWorker


class Pool(Protocol):
    def run(self, config: Any, jobs: Sequence[ShardJob]) -> Iterator[Rendered | ShardWritten]:
        """Render the missing samples of ``jobs`` (recipe ``config``), write each shard to a part file, report."""
        ...


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set (empty = none), else ``nvidia-smi -L``."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(ln for ln in out.splitlines() if ln.startswith("GPU "))]


def worker_envs(cfg: BuildConfig, gpus: list[str] | None = None) -> list[dict[str, str]]:
    """The extra environment of each local worker slot: ``--workers`` slots on the CPU; with ``--device gpu``,
    ``--workers-per-gpu`` slots per visible GPU (``gpus``, default :func:`visible_gpus`), slot ``s`` on
    ``gpus[s % len(gpus)]``. UserError if no GPU is visible."""
    if cfg.device != "gpu":
        return [{} for _ in range(cfg.workers)]
    gpus = visible_gpus() if gpus is None else gpus
    if not gpus:
        raise UserError("--device gpu: no CUDA GPU is visible (CUDA_VISIBLE_DEVICES is empty or unset and "
                        "nvidia-smi lists none); use --device cpu")
    return [{"CUDA_VISIBLE_DEVICES": gpus[s % len(gpus)]} for s in range(len(gpus) * cfg.workers_per_gpu)]


def make_worker(cfg: BuildConfig, env: dict[str, str] | None = None, threads: int | None = None) -> RenderWorker:
    """A RenderWorker (not started) as ``cfg`` asks: device, Blender binary, recycling, timeout; ``env`` is added to
    its environment, ``threads`` caps Cycles' threads."""
    return RenderWorker(max_scenes=cfg.max_scenes_per_worker, timeout_s=cfg.timeout, device=cfg.device,
                        threads=threads, blender=cfg.blender, env=env or {})


def find_blender(path: str) -> str:
    """The resolved path of the ``--blender`` binary, or UserError if it is missing or older than Blender 4.2."""
    try:
        return check_blender(path)
    except ValueError as e:
        raise UserError(str(e)) from None


class LocalPool:
    """Blender worker processes on this machine, one thread driving each (:func:`worker_envs` gives their number).
    Samples are rendered in index order, each by the first free worker; a shard is written as soon as its last
    sample is done, by the thread that runs :meth:`run`."""

    def __init__(self, cfg: BuildConfig, gpus: list[str] | None = None):
        self.cfg = cfg
        self.envs = worker_envs(cfg, gpus)

    def run(self, config: Any, jobs: Sequence[ShardJob]) -> Iterator[Rendered | ShardWritten]:
        out = Path(self.cfg.out)
        for job in jobs:  # every sample is in a work file already
            if not job.todo:
                yield write_part(out, job, self.cfg.storage)
        left = {job.k: len(job.todo) for job in jobs}
        job_of = {i: job for job in jobs for i in job.todo}
        if not job_of:
            return
        todo: queue.Queue[tuple[int, Path]] = queue.Queue()
        for i, job in job_of.items():
            todo.put((i, folder.work_file(out, job.k, i)))
        shared = _RenderThreads(self.cfg, config, todo)
        threads = [threading.Thread(target=shared.work, args=(env,), name=f"render-{s}", daemon=True)
                   for s, env in enumerate(self.envs[: len(job_of)])]
        for t in threads:
            t.start()
        try:
            for _ in job_of:
                i, rendered = shared.next_done()
                yield rendered
                job = job_of[i]
                left[job.k] -= 1
                if not left[job.k]:
                    yield write_part(out, job, self.cfg.storage)
        finally:
            shared.stop_all()
            for t in threads:
                t.join(timeout=10)


class _RenderThreads:
    """What the render threads of one LocalPool run share: the queue of (sample index, work file), their reports,
    the workers to close when the run ends."""

    def __init__(self, cfg: BuildConfig, config: Any, todo: queue.Queue[tuple[int, Path]]):
        self.cfg, self.config, self.todo = cfg, config, todo
        self.done: queue.Queue[tuple[int, Rendered] | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.workers: list[RenderWorker] = []
        self.lock = threading.Lock()

    def work(self, env: dict[str, str]) -> None:
        """One render thread: a worker of its own renders samples from the queue until it is empty or the run
        stops; its errors go to the run's thread."""
        try:
            worker = make_worker(self.cfg, env)
            with self.lock:
                if self.stop.is_set():
                    worker.close()
                    return
                self.workers.append(worker)
            with worker:
                while not self.stop.is_set():
                    try:
                        i, path = self.todo.get_nowait()
                    except queue.Empty:
                        return
                    self.done.put((i, render_sample(self.cfg, self.config, worker, i, path, self.stop)))
        except BaseException as e:  # noqa: BLE001 - raised again in the run's thread
            if not self.stop.is_set():
                self.done.put(e)

    def next_done(self) -> tuple[int, Rendered]:
        """The next finished sample (index, report); raises a render thread's error."""
        got = self.done.get()
        if isinstance(got, BaseException):
            raise got
        return got

    def stop_all(self) -> None:
        self.stop.set()
        with self.lock:
            for w in self.workers:
                try:
                    w.close()
                except Exception:  # noqa: BLE001 - best effort during shutdown
                    pass
