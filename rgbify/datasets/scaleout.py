"""Scale-out options of ``rgbify build``: Ray (see ray_build.py), GPU workers and a standalone Blender binary.

``--device gpu`` runs ``--workers-per-gpu`` Blender workers on every visible GPU: the GPUs are the ids in
``CUDA_VISIBLE_DEVICES`` if it is set, else those ``nvidia-smi -L`` lists; worker slot ``s`` gets
``CUDA_VISIBLE_DEVICES=gpus[s % len(gpus)]`` so Cycles in that process sees only its GPU. Under Ray the
scheduler does this instead: a shard task asks for ``1 / workers_per_gpu`` of a GPU and Ray sets the variable.

``--blender PATH`` runs every worker inside that Blender binary (rgbify.render.blender_boot).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import Any

from rgbify.errors import UserError

DEVICES = ("cpu", "gpu")


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
    return {"max_scenes": cfg.max_scenes_per_worker, "timeout_s": cfg.timeout, "device": cfg.device,
            "threads": threads, "blender": cfg.blender, "env": env}


def make_worker(cfg: Any, slot: int = 0, threads: int | None = None) -> Any:
    """The RenderWorker for worker ``slot`` (not started)."""
    from rgbify.render.worker import RenderWorker

    return RenderWorker(**worker_kwargs(cfg, slot, threads=threads))
