"""Scale-out plumbing without a cluster or a GPU: --device gpu / --workers-per-gpu worker slots and their
CUDA_VISIBLE_DEVICES, Ray task options, flag validation, `rgbify train --num-processes` command lines. The real
GPU renders at the end run only where CUDA is visible (marked gpu)."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rgbify
from rgbify.datasets.build import pools
from rgbify.datasets.build.config import BuildConfig, check
from rgbify.errors import UserError

ROOT = Path(rgbify.__file__).resolve().parents[1]


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "rgbify", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_gpu_workers_are_spread_over_gpus():
    cfg = BuildConfig(device="gpu", workers_per_gpu=2)
    envs = pools.LocalPool(cfg, gpus=["0", "3"]).envs
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "3", "0", "3"]  # --workers is not used
    with contextlib.closing(pools.make_worker(cfg, envs[1])) as w:  # not started
        assert w.device == "gpu" and w.blender is None and w.extra_env == {"CUDA_VISIBLE_DEVICES": "3"}
    assert pools.worker_envs(BuildConfig(workers=3)) == [{}, {}, {}]
    with contextlib.closing(pools.make_worker(BuildConfig(workers=3))) as w:
        assert w.device == "cpu" and w.extra_env == {}


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert pools.visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pools.visible_gpus() == []
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        pools.LocalPool(BuildConfig(device="gpu"))


def test_ray_gpu_tasks_share_gpus_and_leave_assignment_to_ray():
    from rgbify.datasets.build.ray_pool import task_options

    cfg = BuildConfig(device="gpu", workers_per_gpu=4, ray="auto", cpus_per_task=2)
    check(cfg)  # Ray places the tasks; no local GPU needed on the driver
    assert task_options(cfg) == {"num_cpus": 2, "num_gpus": 0.25, "max_retries": 3, "retry_exceptions": False}
    with contextlib.closing(pools.make_worker(cfg, threads=2)) as w:
        assert w.extra_env == {} and w.threads == 2  # Ray sets the task's CUDA_VISIBLE_DEVICES
    assert "num_gpus" not in task_options(BuildConfig(ray="local"))


@pytest.mark.parametrize("field,value,message", [
    ("cpus_per_task", 0, "--cpus-per-task 0"),
    ("workers_per_gpu", -1, "--workers-per-gpu -1"),
    ("task_retries", -2, "--task-retries -2"),
    ("device", "tpu", "--device 'tpu'"),
    ("ray", " ", "--ray"),
])
def test_bad_scale_values_are_refused(field, value, message):
    with pytest.raises(UserError, match=message.replace("'", ".")):
        check(BuildConfig(**{field: value}))


def test_cli_flags_reach_the_config():
    from rgbify.config import add_arguments, parse, values_from
    from rgbify.datasets.build.config import SCALE_OUT

    p = argparse.ArgumentParser()
    add_arguments(p, BuildConfig, only=SCALE_OUT)
    a = p.parse_args(["--ray", "--cpus-per-task", "4", "--device", "gpu", "--workers-per-gpu", "3"])
    assert values_from(a, BuildConfig) == {"ray": "local", "cpus_per_task": 4, "device": "gpu", "workers_per_gpu": 3}
    cfg = parse(BuildConfig, values_from(a, BuildConfig))
    assert (cfg.ray, cfg.cpus_per_task, cfg.task_retries, cfg.device, cfg.workers_per_gpu, cfg.blender) == \
        ("local", 4, 3, "gpu", 3, None)
    assert p.parse_args(["--ray", "10.0.0.1:6379"]).ray == "10.0.0.1:6379"
    assert p.parse_args([]).ray is None


def test_build_cli_refuses_gpu_without_gpu(tmp_path):
    p = _run("build", "--out", str(tmp_path / "o"), "--count", "1", "--device", "gpu",
             env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 2 and "no CUDA GPU is visible" in p.stderr and not (tmp_path / "o").exists()


def test_train_launch_command_reproduces_the_flags():
    from rgbify.train import launch

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    from rgbify.train.cli import add_commands

    add_commands(sub)
    args = p.parse_args(["train", "--data", "d", "--out", "o", "--grad-accum", "2", "--tasks", "depth,normals",
                         "--no-resume", "--lr", "0.001", "--num-processes", "3"])
    cmd = launch.launch_command(args, 3)
    assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m"]
    rest = cmd[6:]
    assert rest[:2] == ["rgbify", "train"] and "--num-processes" not in rest
    again = p.parse_args(rest[1:])
    for name in ("data", "out", "grad_accum", "tasks", "resume", "lr"):
        assert getattr(again, name) == getattr(args, name), name
    args.num_processes = 0
    with pytest.raises(UserError, match="--num-processes 0"):
        launch.maybe_relaunch(args)


def test_train_refuses_more_processes_than_gpus(monkeypatch):
    from rgbify.train import launch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    for k in launch.LAUNCH_ENV:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(UserError, match="only 2 GPU"):
        launch.maybe_relaunch(argparse.Namespace(num_processes=4))


# --- real GPUs (skipped without CUDA) ------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not pools.visible_gpus(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@pytest.mark.blender
@needs_gpu
def test_gpu_render_matches_cpu_geometry():
    pytest.importorskip("bpy")
    sys.path.insert(0, str(Path(__file__).parent))
    from render_scenes import tiny_scene

    from rgbify.render.worker import RenderWorker

    spec = tiny_scene()
    with RenderWorker(timeout_s=300) as w:
        cpu = w.render(spec)
    with RenderWorker(timeout_s=300, device="gpu") as w:
        gpu = w.render(spec)
    assert (cpu.instance == gpu.instance).mean() > 0.99
    hit = np.isfinite(cpu.depth) & np.isfinite(gpu.depth)
    np.testing.assert_allclose(gpu.depth[hit], cpu.depth[hit], rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.blender
@pytest.mark.slow
@needs_gpu
def test_gpu_build_with_two_workers_per_gpu(tmp_path):
    pytest.importorskip("bpy")
    out = tmp_path / "gpu"
    p = _run("build", "--out", str(out), "--count", "4", "--resolution", "32x24", "--samples", "4", "--shard-size",
             "2", "--device", "gpu", "--workers-per-gpu", "2", "--quiet", "--no-preview")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "OK" in _run("verify", str(out)).stdout


def test_ray_tasks_get_absolute_paths(tmp_path, monkeypatch):
    from rgbify.datasets.build.ray_pool import task_config

    monkeypatch.chdir(tmp_path)
    cfg = task_config(BuildConfig(out=Path("ds"), recipe="mine.toml", assets=Path("assets"), ray="local"))
    assert cfg.out == tmp_path / "ds" and cfg.assets == tmp_path / "assets"
    assert cfg.recipe == "mine.toml"  # the recipe travels with each task, loaded by the driver


def test_infeasible_ray_tasks_are_refused_before_they_hang():
    from rgbify.datasets.build.ray_pool import check_feasible

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    check_feasible(BuildConfig(ray="auto", cpus_per_task=4), nodes)
    with pytest.raises(UserError, match="no node of the cluster has 8 CPU"):
        check_feasible(BuildConfig(ray="auto", cpus_per_task=8), nodes)
    with pytest.raises(UserError, match="0.5 GPU"):
        check_feasible(BuildConfig(ray="auto", device="gpu", workers_per_gpu=2), nodes)
    check_feasible(BuildConfig(ray="auto", device="gpu", workers_per_gpu=2),
                   [{"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}])
