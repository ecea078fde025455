"""Multi-process training: `rgbify train --num-processes 2` (torchrun, DDP over gloo on CPUs) for two steps equals
one process with doubled gradient accumulation (same batches, noise and averaged gradients) within float
tolerance. Tiny preset, 64 px, a small synthetic dataset on disk (tests/dataset_fakes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rgbify

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
safetensors = pytest.importorskip("safetensors.numpy")

from dataset_fakes import fake_dataset  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(rgbify.__file__).resolve().parents[1]


def train(out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPUs even where a GPU exists
    args = ["train", "--data", str(data), "--out", str(out), "--resolution", "64", "--batch-size", "2", "--steps",
            "2", "--num-workers", "0", "--warmup-steps", "1", "--checkpoint-every", "2", "--tasks",
            "depth,normals", "--eval-samples", "1", "--inference-steps", "1", *extra]
    p = subprocess.run([sys.executable, "-m", "rgbify", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, f"rgbify {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr[-4000:]}"
    return p


def weights(run: Path) -> dict[str, np.ndarray]:
    return safetensors.load_file(str(run / "model" / "unet" / "diffusion_pytorch_model.safetensors"))


def losses(run: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()]


def test_two_gloo_processes_match_one_with_double_accumulation(tmp_path):
    data = fake_dataset(tmp_path, n=12, shard_size=6, h=16, w=16)
    one = tmp_path / "one"
    two = tmp_path / "two"
    train(one, data, "--grad-accum", "2")
    train(two, data, "--grad-accum", "1", "--num-processes", "2")
    assert json.loads((two / "model" / "run.json").read_text())["step"] == 2
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-4)
    a, b = weights(one), weights(two)
    assert sorted(a) == sorted(b)
    worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    print(f"losses {losses(one)} vs {losses(two)}; largest weight difference {worst:.2e}")
    assert worst < 1e-5, f"weights differ by up to {worst}"
