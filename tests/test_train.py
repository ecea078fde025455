"""Trainer on the tiny preset at 64 px with an in-memory dataset in the TaskDataset item format (CPU, fast).

The end-to-end tests against a real `rgbify build` dataset are in tests/test_train_e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rgbify.errors import UserError  # noqa: E402
from rgbify.train.config import make_config  # noqa: E402
from rgbify.train.data import EpochItems, StepSampler, make_loader  # noqa: E402
from rgbify.train.model import PromptEncoder, build_model, tiny_tokenizer  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RES = 64


class MemoryTaskDataset(torch.utils.data.Dataset):
    """Items in the rgbify.datasets.TaskDataset format, made up from (seed, index): smooth colour fields as
    images, a grey ramp as the depth target. Generation items (image zeros, target = RGB) at ``generation_ratio``."""

    def __init__(self, n=4, res=RES, tasks=("depth", "normals"), generation_ratio=0.0, seed=0):
        self.n, self.res, self.tasks, self.gen, self.seed = n, res, tasks, generation_ratio, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        yy, xx = np.mgrid[0 : self.res, 0 : self.res] / self.res
        rgb = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), xx * yy * 2 - 1]).astype(np.float32)
        depth = (1 + 3 * yy + i).astype(np.float32)
        task = "generate" if rng.random() < self.gen else self.tasks[i % len(self.tasks)]
        if task == "generate":
            image, target = np.zeros_like(rgb), rgb
        else:
            image, target = rgb, np.repeat((depth / 5 * 2 - 1)[None], 3, 0).astype(np.float32)
        normals = np.zeros((self.res, self.res, 3), np.float32)
        normals[..., 2] = -1
        zeros = np.zeros((self.res, self.res), np.int64)
        return {"image": torch.from_numpy(image), "target": torch.from_numpy(target),
                "prompt": f"{task} as colours, item {i}", "task": task, "decode": json.dumps({"task": task}),
                "index": i, "gt_depth": depth, "gt_normals": normals, "gt_semantic": zeros, "gt_instance": zeros,
                "valid": np.ones((self.res, self.res), bool)}


def cfg_for(tmp_path, mode="instruct", **kw):
    """A tiny run's config; marigold mode trains depth alone (one task, as Marigold)."""
    tasks = ("depth",) if mode == "marigold" else ("depth", "normals")
    base = dict(out=str(tmp_path / f"run-{mode}"), mode=mode, resolution=RES, batch_size=2, steps=3, num_workers=0,
                checkpoint_every=2, warmup_steps=1, tasks=tasks)
    base.update(kw)
    return make_config(base)


def log_rows(cfg):
    return [json.loads(x) for x in open(f"{cfg.out}/log.jsonl").read().splitlines()]


def test_tiny_model_is_small_and_adapted():
    for mode in ("instruct", "lotus", "marigold"):
        components = build_model(make_config({"mode": mode, "resolution": RES, "tasks": ("depth",)}))
        n = sum(p.numel() for m in (components.unet, components.vae, components.text_encoder) for p in m.parameters())
        assert n < 3e6
        assert components.unet.config.in_channels == 8
        w = components.unet.conv_in.weight
        if mode == "instruct":
            assert torch.count_nonzero(w[:, 4:]) == 0  # image channels start at zero
        else:
            assert torch.equal(w[:, :4], w[:, 4:])  # copied and halved
        assert (components.unet.config.class_embed_type == "projection") == (mode == "lotus")


def test_tiny_tokenizer_and_long_prompts():
    tok = tiny_tokenizer()
    assert tok.decode(tok("chair (255,0,0)").input_ids, skip_special_tokens=True).replace(" ", "") == "chair(255,0,0)"
    components = build_model(make_config({"resolution": RES}))
    enc = PromptEncoder(components.tokenizer, components.text_encoder)
    long = "table = red (255,0,0); " * 20
    states, mask = enc(["depth", long])
    assert states.shape[1] % 77 == 0 and states.shape[1] > 77 * 4
    assert mask[0].sum() == 77 and mask[1].all()
    one, _ = enc(["depth"])
    assert torch.equal(one[0], states[0, :77])  # batch padding does not change a prompt's states


def test_step_sampler_resumes_the_stream():
    full = [x for _, x in zip(range(11), StepSampler(4, seed=3), strict=False)]
    assert sorted(i for _, i in full[:4]) == [0, 1, 2, 3] and {e for e, _ in full[4:8]} == {1}
    assert [x for _, x in zip(range(5), StepSampler(4, seed=3, start=6), strict=False)] == full[6:11]


def test_thread_and_process_loaders_give_the_same_stream(tmp_path):
    """--loader threads and --loader processes yield the same batches from the same resume point; ranks of either
    take every N-th batch of that stream, as accelerate shards a DataLoader."""
    import itertools

    data = MemoryTaskDataset(n=5)

    def first(loader, n):
        return [b["index"].tolist() for b in itertools.islice(iter(loader), n)]

    threads = first(make_loader(data, cfg_for(tmp_path, num_workers=2, loader="threads"), 3), 6)
    procs = first(make_loader(data, cfg_for(tmp_path, num_workers=1, loader="processes"), 3), 6)
    assert threads == procs and len({tuple(b) for b in threads}) > 1
    for loader in ("threads", "processes"):
        cfg = cfg_for(tmp_path, num_workers=1, loader=loader)
        ranks = [first(make_loader(data, cfg, 3, shard=(r, 2)), 3) for r in (0, 1)]
        assert ranks == [threads[0::2], threads[1::2]]
    with pytest.raises(UserError, match="--loader: got 'fibres'"):
        cfg_for(tmp_path, loader="fibres")


def test_epoch_items_of_a_set_epoch_dataset_are_right_from_threads():
    """A dataset with set_epoch but no thread-safe get(item, epoch) is read under a lock by loader threads."""
    import time

    from rgbify.datasets import ThreadLoader

    class Stateful:
        epoch = 0

        def __len__(self):
            return 8

        def set_epoch(self, e):
            self.epoch = e

        def __getitem__(self, i):
            time.sleep(0.001)  # another thread would set its own epoch here
            return {"key": torch.tensor([self.epoch, i])}

    keys = [(e, i) for i in range(8) for e in range(4)]
    got = [b["key"].tolist() for b in ThreadLoader(EpochItems(Stateful()), 1, keys=keys, threads=4,
                                                   keep_freed_memory=False)]
    assert got == [[list(k)] for k in keys]


@pytest.mark.parametrize("mode", ["instruct", "lotus", "marigold"])
def test_each_mode_trains_checkpoints_and_exports(tmp_path, mode):
    cfg = cfg_for(tmp_path, mode, generation_ratio=0.3)
    data = MemoryTaskDataset(generation_ratio=0.5 if mode == "instruct" else 0.0, tasks=cfg.tasks)
    result = train(cfg, data)
    assert result["step"] == 3 and not result["stopped_early"]
    rows = log_rows(cfg)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in rows)
    ck = tmp_path / f"run-{mode}" / "checkpoints"
    assert (ck / "latest").resolve().name == "step-0000003" and (ck / "step-0000002").is_dir()
    model = tmp_path / f"run-{mode}" / "model"
    assert {p.name for p in model.iterdir()} >= {"unet", "vae", "text_encoder", "tokenizer", "scheduler", "run.json"}
    assert (model / "model_index.json").exists() == (mode != "lotus")  # the stock pipeline's (none for lotus)
    assert list((tmp_path / f"run-{mode}" / "logs").iterdir())  # TensorBoard events
    assert make_config({}, tmp_path / f"run-{mode}" / "config.toml") == cfg  # the saved config reloads


def test_instruct_mixes_generation_items(tmp_path):
    cfg = cfg_for(tmp_path, "instruct", steps=2, batch_size=4)
    train(cfg, MemoryTaskDataset(generation_ratio=0.5))
    seen = set().union(*(r["loss_per_task"] for r in log_rows(cfg)))
    assert "generate" in seen and seen - {"generate"}


def test_resume_is_bit_exact(tmp_path):
    """Stop after one step (--exit-after), resume, and get the same losses and weights as one straight run."""
    data = MemoryTaskDataset(tasks=("depth",))
    straight = cfg_for(tmp_path / "a", "marigold", steps=4, ema_decay=0.9, grad_accum=2)
    train(straight, data)
    split = cfg_for(tmp_path / "b", "marigold", steps=4, ema_decay=0.9, grad_accum=2, exit_after=1e-9)
    first = train(split, data)
    assert first["stopped_early"] and first["step"] == 1
    second = train(make_config({**split.to_dict(), "exit_after": 0.0}), data)
    assert second["step"] == 4
    a, b = log_rows(straight), log_rows(split)
    assert [(r["step"], r["loss"], r["lr"]) for r in a] == [(r["step"], r["loss"], r["lr"]) for r in b]
    from safetensors.torch import load_file

    wa = load_file(f"{straight.out}/model/unet/diffusion_pytorch_model.safetensors")
    wb = load_file(f"{split.out}/model/unet/diffusion_pytorch_model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_overfit_depth_loss_falls(tmp_path):
    """Two depth samples, lotus (x0) objective: the loss must fall well below where it starts."""
    data = MemoryTaskDataset(n=2, tasks=("depth",))
    cfg = cfg_for(tmp_path, "lotus", steps=30, lr=3e-3, warmup_steps=0, lr_schedule="constant",
                  detail_preserver=False, checkpoint_every=1000, tasks=("depth",))
    train(cfg, data)
    losses = [r["loss"] for r in log_rows(cfg)]
    start, end = np.mean(losses[:3]), np.mean(losses[-5:])
    assert end < 0.2 * start, (start, end)  # measured: 1.05 -> 0.064 (ratio 0.061)


def test_base_model_path_round_trip(tmp_path):
    """Save the tiny components in the diffusers layout, load them back as --base-model PATH, train on them."""
    from diffusers import UNet2DConditionModel

    components = build_model(make_config({"resolution": RES}))
    sd = tmp_path / "sd"
    # a plain SD layout has a 4-channel UNet: rebuild one from the tiny config
    UNet2DConditionModel(**{**components.unet.config, "in_channels": 4}).save_pretrained(sd / "unet")
    components.vae.save_pretrained(sd / "vae")
    components.text_encoder.save_pretrained(sd / "text_encoder")
    components.tokenizer.save_pretrained(sd / "tokenizer")
    components.noise_scheduler.save_pretrained(sd / "scheduler")
    cfg = cfg_for(tmp_path, "instruct", base_model=str(sd), steps=1)
    loaded = build_model(cfg)
    assert loaded.unet.config.in_channels == 8 and len(loaded.tokenizer) == 514
    assert train(cfg, MemoryTaskDataset())["step"] == 1
    # and an exported run is itself a base model
    again = build_model(cfg_for(tmp_path, "instruct", base_model=f"{cfg.out}/model"))
    assert again.unet.config.in_channels == 8
    with pytest.raises(UserError, match="no unet"):
        build_model(cfg_for(tmp_path, base_model=str(tmp_path / "nothing")))


def test_the_train_split_crops_metric_depth_as_configured(tmp_path):
    """--metric-depth-crop reaches the train split's TaskDataset (rescale by default: docs/learning.md)."""
    from rgbify.train.data import build_data
    from tests.dataset_fakes import fake_dataset

    d = str(fake_dataset(tmp_path, n=4, h=12, w=16))
    assert build_data(make_config({"data": d, "resolution": 16}), "train").metric_depth_crop == "rescale"
    for mode in ("off", "zoom"):
        assert build_data(make_config({"data": d, "resolution": 16, "metric_depth_crop": mode}),
                          "train").metric_depth_crop == mode
    with pytest.raises(UserError, match="metric-depth-crop"):
        make_config({"metric_depth_crop": "crop"})


def test_config_errors_and_toml(tmp_path):
    with pytest.raises(UserError, match="--mode"):
        make_config({"mode": "banana"})
    with pytest.raises(UserError, match="--tasks"):
        make_config({"tasks": ("depth", "smell")})
    with pytest.raises(UserError, match="--learning-rate: unknown key"):
        make_config({"learning_rate": 1})
    with pytest.raises(UserError, match="--mode marigold trains one task, depth or normals"):
        make_config({"mode": "marigold", "tasks": ("depth", "normals")})
    with pytest.raises(UserError, match="--mode marigold trains one task"):
        make_config({"mode": "marigold", "tasks": ("semantic",)})
    with pytest.raises(UserError, match="--multi-res-noise is for --mode marigold and instruct"):
        make_config({"mode": "lotus", "multi_res_noise": 0.9})
    toml = tmp_path / "c.toml"
    toml.write_text('mode = "lotus"\ntasks = ["depth"]\nsteps = 7\n')
    cfg = make_config({"steps": 9}, toml)
    assert (cfg.mode, cfg.tasks, cfg.steps) == ("lotus", ("depth",), 9)


BF16_RUN = """
import sys
from pathlib import Path
import torch
from test_train import MemoryTaskDataset, cfg_for
from rgbify.train.trainer import train

torch.set_num_threads(1)
cfg = cfg_for(Path(sys.argv[1]), "lotus", steps=1, mixed_precision="bf16", gradient_checkpointing=True, ema_decay=0.99)
assert train(cfg, MemoryTaskDataset())["step"] == 1
"""


def test_bf16_gradient_checkpointing_and_ema(tmp_path):
    """In a process of its own: accelerate sets the mixed precision once per process (the other tests: fp32)."""
    here = Path(__file__).resolve().parent
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", BF16_RUN, str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    rows = [json.loads(x) for x in (tmp_path / "run-lotus" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1] and np.isfinite(rows[0]["loss"])


def test_a_second_precision_in_one_process_is_refused(tmp_path):
    """Runs in one process share accelerate's state: the same settings train again, another precision is refused
    (one line, before anything is written)."""
    assert train(cfg_for(tmp_path / "a", "marigold", steps=1), MemoryTaskDataset(tasks=("depth",)))["step"] == 1
    assert train(cfg_for(tmp_path / "b", "marigold", steps=1), MemoryTaskDataset(tasks=("depth",)))["step"] == 1
    bf16 = cfg_for(tmp_path / "c", "marigold", steps=1, mixed_precision="bf16")
    with pytest.raises(UserError, match="--mixed-precision bf16: this process already trained with 'no'"):
        train(bf16, MemoryTaskDataset(tasks=("depth",)))
    assert not Path(bf16.out).exists()


def test_bench_flop_count_on_meta_device():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.main(["--model", "tiny", "--resolution", "64", "--flops-only"])
    assert r["tflop_per_sample"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_runs_on_gpu_in_bf16():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.main(["--model", "tiny", "--resolution", "64", "--mixed-precision", "bf16", "--steps", "2",
                    "--warmup", "1", "--device", "cuda"])
    assert r["samples_per_s"] > 0 and np.isfinite(r["last_loss"])
