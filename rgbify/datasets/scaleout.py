"""Scale-out options of ``rgbify build``: Ray (see ray_build.py), GPU workers and a standalone Blender binary.

``--device gpu`` runs ``--workers-per-gpu`` Blender workers on every visible GPU: the GPUs are the ids in
``CUDA_VISIBLE_DEVICES`` if it is set, else those ``nvidia-smi -L`` lists; worker slot ``s`` gets
``CUDA_VISIBLE_DEVICES=gpus[s % len(gpus)]`` so Cycles in that process sees only its GPU. Under Ray the
scheduler does this instead: a shard task asks for ``1 / workers_per_gpu`` of a GPU and Ray sets the variable.

``--blender PATH`` runs every worker inside that Blender binary (rgbify.render.blender_boot).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
from typing import Any

from rgbify.errors import UserError

DEVICES = ("cpu", "gpu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The scale-out flags of ``rgbify build``."""
    g = p.add_argument_group("scale-out (docs/scaling.md)")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run shards as Ray tasks: on a new local Ray instance (no ADDRESS; --workers tasks at a "
                   "time) or on the cluster at ADDRESS (e.g. auto, 10.0.0.1:6379, ray://head:10001). OUT must be "
                   "a folder every node sees at the same path")
    g.add_argument("--cpus-per-task", type=int, default=1,
                   help="Ray: CPUs per shard task, also the Cycles threads of its Blender worker (default 1)")
    g.add_argument("--task-retries", type=int, default=3,
                   help="Ray: re-runs of a shard task whose worker or node died (default 3)")
    g.add_argument("--device", choices=DEVICES, default="cpu", help="Cycles device: cpu (default) or gpu "
                   "(CUDA/OptiX; with --workers-per-gpu workers on each visible GPU, --workers is not used)")
    g.add_argument("--workers-per-gpu", type=int, default=1,
                   help="--device gpu: Blender workers sharing each GPU (default 1; 2-4 keep a GPU busy while "
                   "a worker builds its scene on the CPU)")
    g.add_argument("--blender", default=None, metavar="PATH",
                   help="run the workers inside this Blender 4.2+ binary (blender --background --python-expr) "
                   "instead of the bpy module; results are the same for the same Blender version")


def config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """BuildConfig fields from the parsed flags of add_arguments."""
    return {"ray": args.ray, "cpus_per_task": args.cpus_per_task, "task_retries": args.task_retries,
            "device": args.device, "workers_per_gpu": args.workers_per_gpu, "blender": args.blender}


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


def gpu_of_slot(slot: int, gpus: list[str]) -> str:
    return gpus[slot % len(gpus)]


def resolve(cfg: Any, gpus: list[str] | None = None) -> Any:
    """Check the scale-out fields of a BuildConfig; for a local ``--device gpu`` build set ``workers`` to
    GPUs x workers_per_gpu. Raises UserError naming the bad value."""
    for name in ("cpus_per_task", "workers_per_gpu"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} {v} must be a positive integer")
    if not isinstance(cfg.task_retries, int) or cfg.task_retries < 0:
        raise UserError(f"--task-retries {cfg.task_retries} must be 0 or more")
    if cfg.device not in DEVICES:
        raise UserError(f"--device {cfg.device!r} is not one of {', '.join(DEVICES)}")
    if cfg.ray is not None and not str(cfg.ray).strip():
        raise UserError("--ray '': give a cluster address (e.g. auto or 10.0.0.1:6379), or --ray alone for a "
                        "local Ray instance")
    if cfg.blender:
        from rgbify.render.blender_boot import check_blender

        try:
            cfg = dataclasses.replace(cfg, blender=check_blender(cfg.blender))
        except ValueError as e:
            raise UserError(str(e)) from None
    if cfg.device == "gpu" and cfg.ray is None:
        gpus = visible_gpus() if gpus is None else gpus
        if not gpus:
            raise UserError("--device gpu: no CUDA GPU is visible (CUDA_VISIBLE_DEVICES is empty or unset and "
                            "nvidia-smi lists none); use --device cpu")
        cfg = dataclasses.replace(cfg, workers=len(gpus) * cfg.workers_per_gpu)
    return cfg


def worker_kwargs(cfg: Any, slot: int, gpus: list[str] | None = None, threads: int | None = None) -> dict[str, Any]:
    """RenderWorker arguments for worker ``slot`` of a build."""
    env: dict[str, str] = {}
    if cfg.device == "gpu" and cfg.ray is None:
        gpus = visible_gpus() if gpus is None else gpus
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpu_of_slot(slot, gpus)
    return {"max_scenes": cfg.max_scenes_per_worker, "timeout_s": cfg.timeout_s, "device": cfg.device,
            "threads": threads, "blender": cfg.blender, "env": env}


def make_worker(cfg: Any, slot: int = 0, threads: int | None = None) -> Any:
    """The RenderWorker for worker ``slot`` (not started)."""
    from rgbify.render.worker import RenderWorker

    return RenderWorker(**worker_kwargs(cfg, slot, threads=threads))
