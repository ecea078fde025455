"""The tiny preset's autoencoder: a small diffusers ``AutoencoderKL`` trained on rgbify renders and encoded targets.

``train_vae(cfg)`` (``rgbify train-vae``) trains one from scratch on the train split of one or more datasets: every
step takes ``batch_size`` TaskDataset items (random crop and flip at ``resolution``), each with its rendered image
and its target (depth under every codec, normals, semantic and instance colours), and minimises the mean absolute
pixel error of the reconstruction of all of them plus a small KL term. The result is a diffusers folder (config,
safetensors weights) with ``provenance.json``: exactly what ``rgbify/data/tiny_vae/`` ships and the tiny preset
loads (``load_tiny_vae``). ``reconstruction_report`` measures what survives the round trip per target kind: PSNR,
and each task's own metrics of the decoded reconstruction (a perfect generator's score through this VAE).

Everything is seeded (weights, data order and augmentation, latent samples): the same config, threads and machine
type give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL

from rgbify import encode
from rgbify.datasets import TaskDataset, ThreadLoader, collate
from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train.config import VaeConfig
from rgbify.train.data import EpochItems, StepSampler
from rgbify.train.evaluate import MetricAccumulator, is_metric
from rgbify.train.model import WEIGHTS, vae_config, vae_decode, vae_encode
from rgbify.train.step import step_generator

TARGET_KINDS = ("image", *encode.DEPTH_CODECS, "normals", "semantic", "instance")
"""What the reconstruction report measures: the rendered image and every target kind."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Concat(torch.utils.data.Dataset):
    """Several TaskDatasets as one, read by (item, epoch) like a TaskDataset (thread-safe)."""

    def __init__(self, parts: list[TaskDataset]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def get(self, item: int, epoch: int) -> dict[str, Any]:
        k = int(np.searchsorted(self.starts, item, side="right")) - 1
        return self.parts[k].get(item - int(self.starts[k]), epoch)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.get(item, 0)


def _check_data(cfg: VaeConfig) -> None:
    if not cfg.data:
        raise UserError("--data is required: one or more dataset folders written by `rgbify build` (comma-separated)")
    for d in cfg.data:
        if not (Path(d) / "dataset.json").is_file():
            raise UserError(f"--data {d}: no dataset.json; build one with `rgbify build --out {d}`")
    if not cfg.out:
        raise UserError("--out is required: the run folder to write")


def training_items(cfg: VaeConfig) -> _Concat:
    """The train splits of ``cfg.data``: one task per item (depth weighted ``depth_weight``, every depth codec
    drawn equally often; instance targets in both variants), cropped, flipped and resized to ``resolution``."""
    parts = [TaskDataset(d, tasks=encode.TASKS, weights=(cfg.depth_weight, 1.0, 1.0, 1.0), split="train",
                         resolution=cfg.resolution, seed=cfg.seed, return_gt=False,
                         target_options={"depth_codecs": list(encode.DEPTH_CODECS), "instance_variant": "random"})
             for d in cfg.data]
    data = _Concat(parts)
    if len(data) < cfg.batch_size:
        raise UserError(f"--batch-size {cfg.batch_size} exceeds the {len(data)} training samples of --data; lower it")
    return data


def _dataset_record(path: str) -> dict[str, Any]:
    """What identifies a dataset: its build settings and the sha256 of its shards' hashes."""
    m = json.loads((Path(path) / "dataset.json").read_text())
    shards = "".join(s.get("sha256", "") for s in m.get("shards", []))
    return {"path": path, "recipe": m.get("recipe"), "seed": m.get("seed"), "count": m.get("count"),
            "resolution": [m.get("width"), m.get("height")],
            "samples_per_pixel": (m.get("config") or {}).get("samples"),
            "blender_version": m.get("blender_version"), "config_hash": m.get("config_hash"),
            "shards_sha256": hashlib.sha256(shards.encode()).hexdigest()}


def command_line(cfg: VaeConfig) -> str:
    """The `rgbify train-vae` command that repeats ``cfg`` (every field given)."""
    args = ["rgbify", "train-vae"]
    for key, value in cfg.to_dict().items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        args += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(args)


def train_vae(cfg: VaeConfig, log=print) -> dict[str, Any]:
    """Train the autoencoder of ``cfg`` and write OUT/vae (AutoencoderKL + provenance.json), OUT/log.jsonl and,
    unless ``report_items`` is 0, OUT/report.json and OUT/report.md. Returns the provenance record."""
    from diffusers.optimization import get_scheduler

    _check_data(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        data = training_items(cfg)
        torch.manual_seed(cfg.seed)
        vae = AutoencoderKL(**vae_config(cfg.channels, cfg.resolution))
        vae.train()
        opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
        sched = get_scheduler("cosine", opt, num_warmup_steps=max(1, cfg.steps // 50), num_training_steps=cfg.steps)
        batches = iter(ThreadLoader(EpochItems(data), cfg.batch_size, keys=StepSampler(len(data), cfg.seed),
                                    threads=1, collate=collate, drop_last=True))
        log_path = out / "log.jsonl"
        log_path.write_text("")
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        row: dict[str, Any] = {}
        for step in range(1, cfg.steps + 1):
            batch = next(batches)
            x = patches(torch.cat([batch["image"], batch["target"]]), cfg.patch, cfg.seed, step)
            post = vae.encode(x).latent_dist
            z = post.sample(generator=step_generator(cfg.seed, step, "cpu"))
            rec = vae.decode(z).sample
            l1 = (rec - x).abs().mean()
            kl = post.kl().mean() / z[0].numel()
            loss = l1 + cfg.kl_weight * kl
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if step % 10 == 0 or step == 1 or step == cfg.steps:
                row = {"step": step, "loss": loss.item(), "l1": l1.item(), "kl": kl.item(),
                       "lr": sched.get_last_lr()[0], "cpu_s": round(time.process_time() - t_cpu, 2),
                       "wall_s": round(time.perf_counter() - t_wall, 2)}
                with open(log_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                if step % 500 == 0 or step == cfg.steps:
                    log(f"step {step}/{cfg.steps}: l1 {row['l1']:.4f}, kl {row['kl']:.3f}, {row['cpu_s']:.0f} CPU s")
        vae.eval()
        vae.requires_grad_(False)
        vae.register_to_config(scaling_factor=latent_scale(vae, data, cfg))
        record = {
            "what": "the tiny preset's AutoencoderKL, trained from scratch by rgbify train-vae",
            "command": command_line(cfg),
            "config": cfg.to_dict(),
            "datasets": [_dataset_record(d) for d in cfg.data],
            "steps": cfg.steps,
            "final": {k: row[k] for k in ("l1", "kl")},
            "scaling_factor": vae.config.scaling_factor,
            "parameters": sum(p.numel() for p in vae.parameters()),
            "cpu_seconds": round(time.process_time() - t_cpu, 1),
            "wall_seconds": round(time.perf_counter() - t_wall, 1),
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "versions": {"torch": torch.__version__, "diffusers": _version("diffusers"), "numpy": np.__version__},
        }
        vae_dir = out / "vae"
        vae.save_pretrained(vae_dir, safe_serialization=True)
        record["sha256"] = {WEIGHTS: sha256_file(vae_dir / WEIGHTS)}
        if cfg.report_items:
            report = reconstruction_report(vae, cfg.data[0], resolution=cfg.resolution, max_items=cfg.report_items,
                                           seed=cfg.seed)
            record["reconstruction"] = summarise(report)
            write_report(report, out / "report.json", f"# Reconstruction of {cfg.data[0]} (val split) by {vae_dir}\n\n")
        with publishing(vae_dir / "provenance.json") as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")
        return record
    finally:
        torch.set_num_threads(threads_before)


def patches(x: torch.Tensor, size: int, seed: int, step: int) -> torch.Tensor:
    """A random ``size`` x ``size`` patch of each uint8 picture of ``x`` (B,3,H,W), drawn from (seed, step), as
    float in [-1, 1]; the whole pictures when ``size`` is 0 or H."""
    if size and size < x.shape[-1]:
        rng = np.random.default_rng([seed, step, 7])
        ij = rng.integers(0, np.array(x.shape[-2:]) - size + 1, size=(x.shape[0], 2))
        x = torch.stack([x[k, :, i : i + size, j : j + size] for k, (i, j) in enumerate(ij.tolist())])
    return x.float().div_(127.5).sub_(1.0)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


@torch.no_grad()
def latent_scale(vae, data, cfg: VaeConfig, batches: int = 8) -> float:
    """1 / std of the latent means of ``batches`` batches of training images and targets (SD's convention: the
    scaled latents have unit variance, as the noise schedule expects), to 4 significant digits."""
    keys = StepSampler(len(data), cfg.seed + 1)
    loader = ThreadLoader(EpochItems(data), cfg.batch_size, keys=keys, threads=0, collate=collate, drop_last=True)
    zs = []
    for _, batch in zip(range(batches), loader, strict=False):
        x = torch.cat([batch["image"], batch["target"]]).float().div_(127.5).sub_(1.0)
        zs.append(vae.encode(x).latent_dist.mode())
    std = torch.cat(zs).std().item()
    return float(f"{1.0 / std:.4g}")


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) float in [-1, 1] -> uint8 (B,H,W,3), rounded as rgbify.train.pipeline.sample rounds."""
    return ((x.float().permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def kind_dataset(data: str | Path, kind: str, resolution: int, seed: int = 0, split: str = "val",
                 val_fraction: float = 0.05, options: dict[str, Any] | None = None) -> TaskDataset:
    """Items of one target kind ("image", a depth codec name, "normals", "semantic", "instance") of a split,
    without augmentation, with ground truth; ``options`` add make_task_target options."""
    task = "depth" if kind.startswith("depth/") or kind == "image" else kind
    options = {**(options or {}), "depth_codecs": [kind if kind.startswith("depth/") else "depth/cubewalk"]}
    return TaskDataset(data, tasks=(task,), split=split, resolution=resolution, augment=False, seed=seed,
                       val_fraction=val_fraction, target_options=options)


@torch.no_grad()
def reconstruction_report(vae, data: str | Path, kinds: tuple[str, ...] = TARGET_KINDS, resolution: int = 64,
                          max_items: int | None = 64, seed: int = 0, split: str = "val", val_fraction: float = 0.05,
                          batch_size: int = 8, options: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per kind: the mean PSNR (dB) of the VAE round trip (encode, latent mean, decode, 8-bit) of the split's
    pictures, ``vae`` the metrics (rgbify.train.evaluate.MetricAccumulator) of the decoded reconstruction, and
    ``codec`` those of the decoded clean target (the codec's own floor). For depth, ``vae`` is what a generator
    that drew every latent exactly right would score through this VAE. ``options``: make_task_target options
    of the targets (e.g. semantic_colors)."""
    report: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        ds = kind_dataset(data, kind, resolution, seed, split, val_fraction, options)
        n = len(ds) if max_items is None else min(max_items, len(ds))
        if n == 0:
            raise UserError(f"split {split} of {data} has no samples to measure the reconstruction on")
        acc, clean, psnrs = MetricAccumulator(), MetricAccumulator(), []
        for start in range(0, n, batch_size):
            items = [ds[i] for i in range(start, min(n, start + batch_size))]
            batch = collate(items)
            x = batch["image"] if kind == "image" else batch["target"]
            rec = _to_uint8(vae_decode(vae, vae_encode(vae, x)))
            for it, orig, r in zip(items, x.permute(0, 2, 3, 1).numpy(), rec, strict=True):
                psnrs.append(psnr(orig, r))
                if kind == "image":
                    continue
                params = json.loads(it["decode"])
                gt = {k: np.asarray(it[k]) for k in ("gt_depth", "gt_normals", "valid")}
                ref = encode.decode_target(orig, params) if it["task"] in ("semantic", "instance") else None
                acc.add(it["task"], encode.decode_target(r, params), gt, ref, metric=is_metric(params))
                clean.add(it["task"], encode.decode_target(orig, params), gt, ref, metric=is_metric(params))
        report[kind] = {"psnr_db": float(np.mean(psnrs)), "images": n, "vae": acc.result(), "codec": clean.result()}
    return report


def summarise(report: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The headline figures of a reconstruction report per kind: PSNR, and for the decoded reconstruction the
    task's main metrics (depth abs_rel and delta1, metric where the codec is metric, and affine-aligned; normals mean
    angle; semantic mIoU; instance PQ)."""
    out: dict[str, dict[str, float]] = {}
    for kind, r in report.items():
        row: dict[str, float] = {"psnr_db": round(r["psnr_db"], 2)}
        for key, m in r["vae"].items():
            if key in ("depth", "depth_affine"):
                tag = "" if key == "depth" else "_affine"
                row[f"abs_rel{tag}"] = round(m["abs_rel"], 4)
                row[f"delta1{tag}"] = round(m["delta1"], 4)
            elif key == "normals":
                row["mean_angle_deg"] = round(m["mean"], 2)
            elif key == "semantic":
                row["miou"] = round(m["miou"], 4)
            elif key == "instance":
                row["pq"] = round(m["pq"], 4)
        out[kind] = row
    return out


def report_markdown(report: dict[str, dict[str, Any]]) -> str:
    """One table: a row per kind, the decoded reconstruction's headline figures next to the clean target's."""
    lines = ["| kind | PSNR dB | abs_rel | delta1 | abs_rel affine | delta1 affine | normals mean deg | mIoU | PQ | "
             "clean target: abs_rel / affine / deg / mIoU / PQ |", "|---|" + "---:|" * 9]
    clean = {k: summarise({k: {**r, "vae": r["codec"]}})[k] for k, r in report.items()}
    for kind, row in summarise(report).items():
        cells = [f"{row['psnr_db']:.1f}"] + [_cell(row.get(k)) for k in (
            "abs_rel", "delta1", "abs_rel_affine", "delta1_affine", "mean_angle_deg", "miou", "pq")]
        c = clean[kind]
        ref = " / ".join(_cell(c.get(k)) for k in ("abs_rel", "abs_rel_affine", "mean_angle_deg", "miou", "pq")
                         if k in c)
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {ref or '-'} |")
    return "\n".join(lines) + "\n"


def _cell(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def write_report(report: dict, out_json: Path, header: str = "") -> None:
    out_json.parent.mkdir(parents=True, exist_ok=True)
    with publishing(out_json) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    with publishing(out_json.with_suffix(".md")) as tmp:
        tmp.write_text(header + report_markdown(report))
