"""``rgbify build --ray [ADDRESS]``: the same build with shards run as Ray tasks, locally or on a cluster.

The driver (the ``rgbify build`` process) plans exactly as a local build does (rgbify.datasets.build.Builder:
lock, manifest, scan and repair of published shards, reuse of finished work files); only rendering differs.
Each shard that lacks samples becomes one Ray task (:func:`render_shard`) that reserves ``--cpus-per-task`` CPUs
(and ``1 / --workers-per-gpu`` of a GPU with ``--device gpu``), starts one Blender worker, renders the shard's
missing samples into ``OUT/.work/shard-K/IIIIIIIII.npz`` (atomically, as a local build does), then writes the
whole shard to a file of its own, ``OUT/shards/shard-K.h5.ray-TOKEN`` (written to ``.tmp``, fsynced, renamed),
and returns its sha256. The driver checks that file (sha256, attributes) and publishes it: rename to
``shard-K.h5``, then dataset.json. So

- OUT must be one folder every node sees at the same path (NFS, Lustre, a mounted bucket with atomic rename);
- a task whose worker or node dies is run again by Ray (``--task-retries``); the new attempt keeps the work
  files the dead one finished, and since no task ever writes ``shard-K.h5`` itself, a dead, retried or
  duplicated attempt cannot publish a partial or second copy of a shard; leftover ``.ray-*`` files are removed;
- a killed driver is resumed by running the same command again, as for a local build;
- sample i is the same pure function of (config, seed, i) on every node, so the dataset equals a local build.

The code shipped to the workers is this driver's ``rgbify`` package (Ray ``runtime_env`` py_modules), so every
node renders with the same rgbify; nodes need the ``render`` dependencies (bpy or ``--blender``) installed.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rgbify.datasets.build import (
    BuildConfig,
    Builder,
    _disk_error,
    _rejects_of,
    load_config,
    render_sample,
)
from rgbify.datasets.storage.folder import SHARDS_DIR, shard_name, work_dir
from rgbify.datasets.storage.shards import (
    STORAGE,
    ShardError,
    ShardReader,
    check_header,
    open_shard,
    read_sample_file,
    sha256_file,
    shard_range,
    write_shard,
)
from rgbify.errors import UserError

LOCAL_OBJECT_STORE_BYTES = 100 * 2**20
"""Object store of a local Ray instance: tasks return small dicts (the samples travel through OUT)."""
ATTEMPT_PREFIX = ".attempt-"
RAY_PART = ".ray-"


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs the ray package: pip install 'rgbify[dist]' (or pip install 'ray[default]')"
                        ) from None
    return ray


def _package_dir() -> str:
    import rgbify

    return os.path.dirname(os.path.abspath(rgbify.__file__))


def connect(cfg: BuildConfig) -> bool:
    """Connect this process to Ray for ``cfg.ray``; returns True if it started (and must shut down) Ray."""
    ray = _require_ray()
    if ray.is_initialized():  # the caller set Ray up (e.g. a notebook on a cluster): use it as it is
        return False
    runtime_env = {"py_modules": [_package_dir()], "env_vars": {"RGBIFY_RAY_TASK": "1"}}
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
    recipe = Path(cfg.recipe)
    return dataclasses.replace(
        cfg, out=Path(cfg.out).resolve(), assets=Path(cfg.assets).resolve() if cfg.assets else None,
        recipe=str(recipe.resolve()) if recipe.suffix == ".toml" and recipe.is_file() else cfg.recipe)


# --- the task (runs on a Ray worker) -------------------------------------------------------------------------


def render_shard(cfg: BuildConfig, k: int, shard_size: int, count: int, have: int, config_hash: str,
                 threads: int | None = None) -> dict[str, Any]:
    """Render the missing samples of shard ``k`` and write the shard to ``shards/shard-K.h5.ray-TOKEN``.

    ``have``: samples the published shard-K.h5 already holds (a short last shard being extended); they are
    copied from it. Returns the file name, its sha256 and counts (rendered, reused work files, attempts)."""
    from rgbify.datasets.scaleout import make_worker

    out = Path(cfg.out)
    rng = shard_range(k, shard_size, count)
    wdir = work_dir(out, k)
    wdir.mkdir(parents=True, exist_ok=True)
    (wdir / f"{ATTEMPT_PREFIX}{socket.gethostname()}-{os.getpid()}-{time.time_ns()}").write_text(str(os.getpid()))
    reused, todo = 0, []
    for i in rng[have:]:
        path = wdir / f"{i:09d}.npz"
        if path.exists():
            try:
                read_sample_file(path)
                reused += 1
                continue
            except ShardError:
                path.unlink(missing_ok=True)
        todo.append(i)
    stats: dict[str, Any] = {"k": k, "rendered": 0, "reused": reused, "rejects": 0, "restarts": 0, "retried": 0,
                             "render_seconds": 0.0, "blender_version": "", "host": socket.gethostname()}
    if todo:
        config = load_config(cfg)
        with make_worker(cfg, 0, threads=threads) as worker:
            for i in todo:
                _render_sample(cfg, config, worker, i, wdir, stats)
            stats["restarts"] = worker.restarts
    stats["attempts"] = sum(1 for p in wdir.iterdir() if p.name.startswith(ATTEMPT_PREFIX))
    name = f"{shard_name(k)}{RAY_PART}{uuid.uuid4().hex[:12]}"
    path = out / SHARDS_DIR / name
    try:
        digest = write_shard(path, _sources(out, k, rng, have, wdir), shard=k, first_index=rng.start,
                             count=len(rng), config_hash=config_hash, filters=STORAGE[cfg.storage])
    except OSError as e:
        raise _disk_error(e, path) from None
    stats.update(file=name, sha256=digest, samples=len(rng))
    return stats


def _render_sample(cfg: BuildConfig, config: Any, worker: Any, i: int, wdir: Path, stats: dict[str, Any]) -> None:
    _, spec, result, tries, seconds = render_sample(cfg, config, worker, i, wdir)
    stats["render_seconds"] += seconds
    stats["rendered"] += 1
    stats["retried"] += tries
    stats["rejects"] += _rejects_of(spec)
    stats["blender_version"] = str(getattr(result, "blender_version", ""))


def _sources(out: Path, k: int, rng: range, have: int, wdir: Path):
    if have:
        with ShardReader(out / SHARDS_DIR / shard_name(k)) as old:
            for j in range(have):
                yield old.read(j)
    for i in rng[have:]:
        yield read_sample_file(wdir / f"{i:09d}.npz")


# --- the driver ----------------------------------------------------------------------------------------------


class RayBuilder(Builder):
    """Builder whose rendering runs as one Ray task per shard; planning and publishing are the local build's."""

    def __init__(self, cfg: BuildConfig, progress: Any = None, log: Callable[[str], None] = print):
        super().__init__(cfg, progress=progress, log=log)
        self.shard_attempts = 0

    def run(self):
        _require_ray()
        return super().run()

    def _render_all(self, config: Any, todo: list[int]) -> None:
        ray = _require_ray()
        K, count = self.manifest["shard_size"], self.manifest["count"]
        shards = sorted({i // K for i in todo})
        self._remove_parts()
        owns = connect(self.cfg)
        try:
            check_feasible(self.cfg, ray.nodes())
        except UserError:
            if owns:
                ray.shutdown()
            raise
        task = ray.remote(render_shard).options(**task_options(self.cfg))
        threads = None if self.cfg.device == "gpu" else self.cfg.cpus_per_task
        tcfg = task_config(self.cfg)
        refs: dict[Any, int] = {}
        if self.progress is not None:
            self.progress.start(self.stats)
        try:
            for k in shards:
                have = sum(1 for s in self.pending[k].values() if s[0] == "shard")
                refs[task.remote(tcfg, k, K, count, have, self.manifest["config_hash"], threads)] = k
            self._wait_all(ray, refs)
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        finally:
            if self.progress is not None:
                self.progress.stop(self.stats)
            if owns:
                ray.shutdown()
            self._remove_parts()

    def _wait_all(self, ray: Any, refs: dict[Any, int]) -> None:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=2.0)
            for ref in ready:
                k = refs.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    raise (cause if isinstance(cause, Exception) else e) from None
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.RayError) as e:
                    raise UserError(f"shard {k}: its Ray task failed {self.cfg.task_retries + 1} times ({e}); run "
                                    "the same command again to resume (finished samples are kept)") from None
                self._adopt(k, res)
            self.stats.done = self._count_done(refs)
            if self.progress is not None:
                self.progress.update(self.stats)

    def _count_done(self, refs: dict[Any, int]) -> int:
        """Samples published, plus work files of shards still rendering (for the progress bar)."""
        K, count = self.manifest["shard_size"], self.manifest["count"]
        done = sum(s["samples"] for s in self.manifest["shards"])
        for k in refs.values():
            wdir = work_dir(self.out, k)
            try:
                files = sum(1 for p in os.scandir(wdir) if p.name.endswith(".npz"))
            except OSError:
                files = 0
            have = sum(1 for s in self.pending.get(k, {}).values() if s[0] == "shard")
            done += min(files + have, len(shard_range(k, K, count)))
        return done

    def _adopt(self, k: int, res: dict[str, Any]) -> None:
        """Check the shard file a task wrote and publish it as shards/shard-K.h5 (rename, then dataset.json)."""
        K, count = self.manifest["shard_size"], self.manifest["count"]
        rng = shard_range(k, K, count)
        part = self.out / SHARDS_DIR / res["file"]
        rel = f"{SHARDS_DIR}/{shard_name(k)}"
        digest = sha256_file(part)
        if digest != res["sha256"]:
            raise ShardError(f"{part}: sha256 differs from what its task reported; run the same command again")
        with open_shard(part) as f:
            check_header(f, str(part), self.manifest["config_hash"], rng)
        os.replace(part, self.out / rel)
        self.pending.pop(k, None)
        bver = res.get("blender_version")
        if bver:
            self.manifest["blender_version"] = bver
        self._record_shard(k, rng, digest)
        st = self.stats
        st.rendered += res["rendered"]
        st.rejects += res["rejects"]
        st.restarts += res["restarts"]
        st.retried += res["retried"]
        st.render_seconds += res["render_seconds"]
        self.shard_attempts += max(0, res.get("attempts", 1) - 1)

    def _remove_parts(self) -> None:
        """Shard files of dead or duplicate task attempts (never published)."""
        for p in (self.out / SHARDS_DIR).glob(f"*{RAY_PART}*"):
            p.unlink(missing_ok=True)

    def _run_locked(self, config: Any):
        stats = super()._run_locked(config)
        if self.shard_attempts:
            self.log(f"{self.shard_attempts} shard task(s) ran again after an interrupted attempt (a dead worker "
                     "or node, or a killed build); their finished samples were kept")
        return stats
