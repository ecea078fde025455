"""``rgbify build --ray [ADDRESS]``: a pool that runs one Ray task per shard, on a local Ray instance or a cluster.

The planner (in the ``rgbify build`` process, the driver) plans and publishes exactly as for a local build; only
the pool differs. Each shard job becomes one Ray task (:func:`render_shard`) that reserves ``--cpus-per-task`` CPUs
(and ``1 / --workers-per-gpu`` of a GPU with ``--device gpu``), starts one Blender worker, renders the shard's
missing samples into ``OUT/.work/shard-K/IIIIIIIII.npz`` (atomically, as a local build does), writes the whole
shard to a part file of its own and returns its name and sha256; the planner checks it and publishes it. So

- OUT must be one folder every node sees at the same path (NFS, Lustre, a mounted bucket with atomic rename);
- a task whose worker or node dies is run again by Ray (``--task-retries``); the new attempt keeps the work
  files the dead one finished, and since no task ever writes ``shard-K.h5`` itself, a dead, retried or
  duplicated attempt cannot publish a partial or second copy of a shard; leftover part files are removed;
- a killed driver is resumed by running the same command again, as for a local build;
- sample i is the same pure function of (config, seed, i) on every node, so the dataset equals a local build.

The code shipped to the workers is this driver's ``rgbify`` package (Ray ``runtime_env`` py_modules), so every
node renders with the same rgbify; nodes need the ``render`` dependencies (bpy or ``--blender``) installed. The
recipe travels with each task (the driver loads it), so a recipe file need not exist on the nodes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import rgbify
from rgbify.datasets.build.config import BuildConfig
from rgbify.datasets.build.pools import make_worker
from rgbify.datasets.build.work import Rendered, ShardJob, ShardWritten, render_sample, write_part
from rgbify.datasets.storage import folder
from rgbify.errors import UserError

LOCAL_OBJECT_STORE_BYTES = 100 * 2**20
"""Object store of a local Ray instance: tasks return small results (the samples travel through OUT)."""
ATTEMPT_PREFIX = ".attempt-"
POLL_SECONDS = 2.0


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs the ray package: pip install 'rgbify[dist]' (or pip install 'ray[default]')"
                        ) from None
    return ray


def connect(cfg: BuildConfig) -> bool:
    """Connect this process to Ray for ``cfg.ray``; returns True if it started (and must shut down) Ray."""
    ray = require_ray()
    if ray.is_initialized():  # the caller set Ray up (e.g. a notebook on a cluster): use it as it is
        return False
    package = os.path.dirname(os.path.abspath(rgbify.__file__))
    runtime_env = {"py_modules": [package], "env_vars": {"RGBIFY_RAY_TASK": "1"}}
    try:
        if cfg.ray == "local":
            ray.init(address="local", num_cpus=cfg.workers * cfg.cpus_per_task,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
        else:
            ray.init(address=cfg.ray, log_to_driver=False, runtime_env=runtime_env)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = "a local Ray instance" if cfg.ray == "local" else f"the Ray cluster at {cfg.ray!r}"
        raise UserError(f"--ray: cannot start or reach {where} ({e}); check the address (`ray status` on the "
                        "head node prints it)") from None
    return True


def task_options(cfg: BuildConfig) -> dict[str, Any]:
    """Ray options of a shard task: its CPUs, a 1/workers_per_gpu GPU share with --device gpu (Ray then sets the
    task's CUDA_VISIBLE_DEVICES), retries for dead workers or nodes only (a scene error is not retried twice)."""
    opts: dict[str, Any] = {"num_cpus": cfg.cpus_per_task, "max_retries": cfg.task_retries, "retry_exceptions": False}
    if cfg.device == "gpu":
        opts["num_gpus"] = 1.0 / cfg.workers_per_gpu
    return opts


def check_feasible(cfg: BuildConfig, nodes: list[dict[str, Any]]) -> None:
    """UserError if no live node of the cluster (``ray.nodes()``) can run a shard task, which Ray would otherwise
    leave pending for ever."""
    need = task_options(cfg)
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", n.get("alive", False))]
    if any(r.get("CPU", 0) >= need["num_cpus"] and r.get("GPU", 0) >= need.get("num_gpus", 0) for r in alive):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in alive) or "no live nodes"
    want = f"{need['num_cpus']} CPU" + (f" and {need['num_gpus']:g} GPU" if "num_gpus" in need else "")
    raise UserError(f"--ray: no node of the cluster has {want} for a shard task (nodes: {have}); lower "
                    "--cpus-per-task, or add GPU nodes / use --device cpu")


def task_config(cfg: BuildConfig) -> BuildConfig:
    """``cfg`` with absolute paths: Ray workers run in folders of their own (and on other machines)."""
    return dataclasses.replace(cfg, out=Path(cfg.out).resolve(),
                               assets=Path(cfg.assets).resolve() if cfg.assets else None)


# --- the task (runs on a Ray worker) -------------------------------------------------------------------------


def render_shard(cfg: BuildConfig, config: Any, job: ShardJob, threads: int | None = None) -> dict[str, Any]:
    """Render the samples of ``job`` that have no work file yet (an earlier, killed attempt may have made some) on
    one Blender worker, then write the shard to a part file. Returns the part file's name and sha256, the
    statistics of the samples rendered and the number of attempts this task took."""
    out = Path(cfg.out)
    wdir = folder.work_dir(out, job.k)
    wdir.mkdir(parents=True, exist_ok=True)
    (wdir / f"{ATTEMPT_PREFIX}{socket.gethostname()}-{os.getpid()}-{time.time_ns()}").write_text(str(os.getpid()))
    todo = [i for i in job.todo if not folder.work_file(out, job.k, i).exists()]
    stats = Rendered()
    if todo:
        with make_worker(cfg, threads=threads) as worker:
            for i in todo:
                stats += render_sample(cfg, config, worker, i, folder.work_file(out, job.k, i))
    part = write_part(out, job, cfg.storage)
    attempts = sum(1 for p in wdir.iterdir() if p.name.startswith(ATTEMPT_PREFIX))
    return {"file": part.path.name, "sha256": part.sha256, "stats": stats, "attempts": attempts}


# --- the pool (runs in the driver) ---------------------------------------------------------------------------


class RayPool:
    """One Ray task per shard job (:func:`render_shard`); reports the samples finished by polling the work files
    every POLL_SECONDS, and each shard as its task returns."""

    def __init__(self, cfg: BuildConfig, log: Callable[[str], None] = print):
        require_ray()
        self.cfg = cfg
        self.log = log

    def run(self, config: Any, jobs: Sequence[ShardJob]) -> Iterator[Rendered | ShardWritten]:
        ray = require_ray()
        cfg = self.cfg
        owns = connect(cfg)
        refs: dict[Any, ShardJob] = {}
        try:
            check_feasible(cfg, ray.nodes())
            task = ray.remote(render_shard).options(**task_options(cfg))
            threads = None if cfg.device == "gpu" else cfg.cpus_per_task
            tcfg = task_config(cfg)
            refs = {task.remote(tcfg, config, job, threads): job for job in jobs}
            seen = {job.k: 0 for job in jobs}  # samples of each job already reported
            reruns = 0
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    job = refs.pop(ref)
                    res = self._result(ray, ref, job)
                    reruns += res["attempts"] - 1
                    yield dataclasses.replace(res["stats"], samples=len(job.todo) - seen[job.k])
                    yield ShardWritten(job.k, Path(cfg.out) / folder.SHARDS_DIR / res["file"], res["sha256"])
                new = 0
                for job in refs.values():  # samples finished by tasks still running
                    n = len(folder.finished(Path(cfg.out), job.k, set(job.todo)))
                    new, seen[job.k] = new + n - seen[job.k], n
                yield Rendered(new)
            if reruns:
                self.log(f"{reruns} shard task(s) ran again after an interrupted attempt (a dead worker or node, "
                         "or a killed build); their finished samples were kept")
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
            if owns:
                ray.shutdown()

    def _result(self, ray: Any, ref: Any, job: ShardJob) -> dict[str, Any]:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, Exception) else e) from None
        except ray.exceptions.RayError as e:  # the worker or its node died on every attempt
            raise UserError(f"shard {job.k}: its Ray task failed {self.cfg.task_retries + 1} times ({e}); run the "
                            "same command again to resume (finished samples are kept)") from None
