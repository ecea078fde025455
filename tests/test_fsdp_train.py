"""FSDP through accelerate (`accelerate launch --use_fsdp`, FSDP2: torch's fully_shard, FULL_SHARD) on the tiny-dit
preset, two gloo processes on CPUs, three steps (stopped after the first and resumed from its checkpoint): the
losses and exported weights equal one straight process with doubled gradient accumulation (the same global batch),
the checkpoint is accelerate's sharded FSDP one, and RUN/model loads in the stock StableDiffusion3Pipeline.
accelerate itself enables FSDP only on GPUs; tests/fsdp_on_cpu.py lets it through that gate (see there). Without
it, FSDP on CPUs is refused in one line (exit 2)."""

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
FSDP_ENV = {
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
    "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
}  # what `accelerate launch --use_fsdp --fsdp_version 2` sets


def run(cmd: list[str], out: Path, data: Path, *extra: str, env_extra: dict | None = None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPUs even where a GPU exists
    env.update(env_extra or {})
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--base-model",
        "tiny-dit",
        "--resolution",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "3",
        "--num-workers",
        "0",
        "--warmup-steps",
        "0",  # AdamW's first update is lr x sign(gradient); steps 2 and 3 depend on the gradients' values
        "--checkpoint-every",
        "3",
        "--tasks",
        "depth,normals",
        "--eval-samples",
        "1",
        "--inference-steps",
        "1",
        "--lr",
        "1e-3",  # weights move ~1e-3 per step (AdamW), far above float noise
        *extra,
    ]
    return subprocess.run([*cmd, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{' '.join(p.args)} -> {p.returncode}\n{p.stdout}\n{p.stderr[-4000:]}"
    return p


def torchrun(n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]


def losses(run_dir: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "log.jsonl").read_text().splitlines()]


def weights(run_dir: Path, sub: str = "conditioned") -> dict[str, np.ndarray]:
    """RUN/model/conditioned: the trained transformer (transformer/: its text-to-image part, rgbify.train.dit)."""
    return safetensors.load_file(str(run_dir / "model" / sub / "diffusion_pytorch_model.safetensors"))


def initial_weights(run_dir: Path) -> dict[str, np.ndarray]:
    from rgbify.train.config import make_config
    from rgbify.train.model import build_model

    cfg = make_config(json.loads((run_dir / "model" / "run.json").read_text())["config"])
    torch.manual_seed(cfg.seed)  # as the trainer draws the random preset
    return {k: v.detach().numpy() for k, v in build_model(cfg).unet.state_dict().items()}


def test_fsdp_two_cpu_processes_match_one_and_export_a_stock_pipeline(tmp_path):
    data = fake_dataset(tmp_path, n=12, shard_size=6, h=16, w=16)
    one, two = tmp_path / "one", tmp_path / "two"
    ok(run([sys.executable, "-m", "rgbify"], one, data, "--grad-accum", "2"))
    fsdp = [*torchrun(2), str(ROOT / "tests" / "fsdp_on_cpu.py")]
    # stopped after step 1 (--exit-after), then resumed from that sharded checkpoint: resume is covered too
    ok(run(fsdp, two, data, "--grad-accum", "1", "--exit-after", "1e-9", env_extra=FSDP_ENV))
    assert len(losses(two)) == 1 and json.loads((two / "model" / "run.json").read_text())["step"] == 1
    ck = two / "checkpoints" / "latest"
    assert (ck / "pytorch_model_fsdp_0").is_dir() and (ck / "optimizer_0").is_dir()  # accelerate's FSDP save
    assert not (ck / "model.safetensors").exists()
    ok(run(fsdp, two, data, "--grad-accum", "1", "--exit-after", "0", env_extra=FSDP_ENV))
    assert json.loads((two / "model" / "run.json").read_text())["step"] == 3
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-4)
    for sub in ("transformer", "conditioned"):
        a, b = weights(one, sub), weights(two, sub)
        assert sorted(a) == sorted(b)
        worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
        print(f"{sub}: largest weight difference {worst:.2e}")
        assert worst < 1e-6, f"{sub}: weights differ by up to {worst}"
    w0 = initial_weights(two)
    moved = max(float(np.max(np.abs(b[k] - w0[k]))) for k in b)
    print(f"losses {losses(one)} vs {losses(two)}; largest change from the initial weights {moved:.2e}")
    assert moved > 1e-4  # the two steps trained: equal exports are not two copies of the initial weights

    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(two / "model", text_encoder_3=None, tokenizer_3=None)
    for model, sub in (
        (pipe.transformer, "transformer"),
        (SD3Transformer2DModel.from_pretrained(two / "model", subfolder="conditioned"), "conditioned"),
    ):
        got, want = model.state_dict(), weights(two, sub)
        assert sorted(got) == sorted(want) and all(np.array_equal(got[k].numpy(), want[k]) for k in want)
    image = pipe(
        "a cube",
        num_inference_steps=1,
        height=64,
        width=64,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()


def test_fsdp_on_cpus_is_refused_in_one_line(tmp_path):
    """accelerate would quietly train unsharded (DDP) on CPUs: rgbify says so and stops, writing no model."""
    data = fake_dataset(tmp_path, n=4, shard_size=4, h=16, w=16)
    p = run([*torchrun(2), "-m", "rgbify"], tmp_path / "run", data, env_extra=FSDP_ENV)
    assert p.returncode != 0
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("rgbify: error:")]
    assert line and "FSDP" in line[0] and "GPUs" in line[0] and "--use_fsdp" in line[0], p.stderr[-3000:]
    assert not (tmp_path / "run" / "model").exists()


WRAPPED = """
import copy, os, torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel
from rgbify.train import dit
from rgbify.train.model import build_model
from rgbify.train.config import make_config
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["PORT"], RANK="0", WORLD_SIZE="1")
dist.init_process_group("gloo")
cls = "PixArtTransformer2DModel"
c = build_model(make_config({"base_model": "tiny-pixart", "resolution": 64, "mode": "lotus"}))
sharded = fully_shard(copy.deepcopy(c.unet))
assert type(sharded).__name__ == "FSDP" + cls and dit.model_class(sharded) == cls
ddp = DistributedDataParallel(c.unet)
assert dit.model_class(ddp) == cls and dit.inner(ddp).config is c.unet.config
c.unet = ddp
assert dit.has_switch(c)
print("ok")
"""


def test_transformer_calls_see_through_ddp_and_fully_shard():
    """DDP wraps the model (no .config/.dtype); FSDP2's fully_shard renames its class to FSDP<class>: rgbify.train.dit
    dispatches on the diffusers class and reads the inner model's config in both (one gloo process)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    p = subprocess.run([sys.executable, "-c", WRAPPED], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr[-3000:]
