"""Predict with a trained run, decode the drawings into measurements, and score them.

- ``load_run(run_dir)``: the exported model of a run (RUN/model) and its TrainConfig.
- ``task_prompt(task, classes)``: a prompt and its decode parameters, drawn by rgbify.encode.tasks.task_prompt.
- ``predict_files(...)``: raw RGB prediction, decoded measurement (.npy) and a colourised PNG per image.
- ``eval_dataset(...)`` / ``eval_depth_folder(...)``: metrics as a dict, written as JSON and a Markdown table.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rgbify import encode
from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train import metrics as M
from rgbify.train.config import TrainConfig, make_config
from rgbify.train.data import build_data
from rgbify.train.evaluate import evaluate
from rgbify.train.model import Components, PromptEncoder, build_model
from rgbify.train.pipeline import sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Run:
    cfg: TrainConfig
    components: Components
    prompts: PromptEncoder
    step: int


def load_run(run_dir: str | Path, device: str | None = None) -> Run:
    """Load RUN/model (written at the end of ``rgbify train`` and at ``--exit-after``) with its config."""
    model = Path(run_dir) / "model"
    meta_path = model / "run.json"
    if not meta_path.exists():
        raise UserError(f"--run {run_dir}: no model/run.json; train it with `rgbify train --out {run_dir}` first")
    try:
        meta = json.loads(meta_path.read_text())
        config = meta["config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--run {run_dir}: model/run.json is unreadable ({type(e).__name__}: {e}); export the model "
                        f"again by resuming the run: `rgbify train --out {run_dir} ...`") from None
    device = check_device(device)
    cfg = make_config({**config, "base_model": str(model)})
    components = build_model(cfg)
    for m in (components.unet, components.vae, components.text_encoder):
        m.to(device).eval()
    return Run(cfg, components, PromptEncoder(components.tokenizer, components.text_encoder), int(meta.get("step", 0)))


def check_device(device: str | None) -> str:
    """The torch device to run on: ``device`` if this machine has it (UserError naming it otherwise), else cuda if
    available, else cpu."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--device {device!r} is not a torch device ({e}); use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UserError(f"--device {device}: this machine has no CUDA device (or this torch has no CUDA); use "
                            "--device cpu")
        if dev.index is not None and dev.index >= n:
            raise UserError(f"--device {device}: only {n} CUDA device(s) (cuda:0 to cuda:{n - 1})")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError(f"--device {device}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: rgbify runs on cpu, cuda or mps")
    return device


def task_prompt(task: str, classes: list[str] | None = None, seed: int = 0, instances: int = 8,
                **options) -> tuple[str, dict]:
    """(prompt, decode_params) for ``task`` (rgbify.encode.tasks.task_prompt, drawn from ``seed``); semantic needs
    ``classes`` (decoded label i + 1 is classes[i]), instance exactly one class (the prompt offers ``instances``
    instance colours). ``options`` go to the prompt draw (e.g. depth_codecs, flip_x)."""
    classes = list(classes or [])
    if task in ("semantic", "instance") and not classes:
        raise UserError(f"--task {task} needs --classes NAME[,NAME...] (the classes to ask for)")
    if task == "instance" and len(classes) != 1:
        raise UserError(f"--task instance asks for one class per prompt; got --classes {','.join(classes)}")
    return encode.tasks.task_prompt(task, np.random.default_rng(seed), classes, instances, **options)


def run_prompt(run: Run, task: str, classes: list[str] | None = None, seed: int = 0) -> tuple[str, dict]:
    """``task_prompt`` with the run's target options (marigold: its depth codec). A marigold run predicts only the
    one task it was trained on (it sees no prompt)."""
    if run.cfg.mode == "marigold" and task not in run.cfg.tasks:
        raise UserError(f"--task {task}: this marigold-mode run predicts {run.cfg.tasks[0]} only (it is conditioned "
                        "on the empty prompt, one task per run)")
    return task_prompt(task, classes, seed, **run.cfg.target_options())


def load_image(path: str | Path, resolution: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(3, res, res) float in [-1, 1] (bicubic resize) and the original (H, W)."""
    try:
        img = Image.open(path).convert("RGB")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e
    size = (img.height, img.width)
    arr = np.asarray(img.resize((resolution, resolution), Image.BICUBIC), dtype=np.float32)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous(), size  # contiguous: as stock pipelines


def resize_measurement(x: np.ndarray, size: tuple[int, int], task: str) -> np.ndarray:
    """Decoded measurement back to the input's (H, W): labels nearest, depth/normals bilinear (normals renormed)."""
    h, w = size
    if x.shape[:2] == (h, w):
        return x
    if task in ("semantic", "instance"):
        return np.asarray(Image.fromarray(x.astype(np.int32), mode="I").resize((w, h), Image.NEAREST)).astype(x.dtype)

    def one(c: np.ndarray) -> np.ndarray:
        c = np.where(np.isfinite(c), c, 1e6).astype(np.float32)
        return np.asarray(Image.fromarray(c, mode="F").resize((w, h), Image.BILINEAR))

    if x.ndim == 2:
        return one(x)
    out = np.stack([one(x[..., i]) for i in range(x.shape[-1])], axis=-1)
    norm = np.linalg.norm(out, axis=-1, keepdims=True)
    return np.where(norm > 1e-6, out / np.maximum(norm, 1e-6), 0.0).astype(np.float32)


# a dark-to-bright ramp for inverse depth (near = bright): blue-black, purple, red, orange, pale yellow
_DEPTH_STOPS = np.array([[13, 8, 50], [110, 30, 130], [200, 50, 80], [245, 140, 40], [252, 245, 170]], np.float64)


def colourise(task: str, x: np.ndarray) -> np.ndarray:
    """uint8 (H,W,3) picture of a decoded measurement: depth as inverse depth (2-98 percentile stretch) along a
    dark-to-bright ramp, normals in the usual normal-map colours ((n_x, -n_y, -n_z) + 1) / 2 of the OpenCV normal,
    labels in a fixed hashed palette with 0 black."""
    if task == "depth":
        d = np.where(np.isfinite(x) & (x > 0), x, np.nan)
        inv = 1.0 / d
        lo, hi = np.nanpercentile(inv, [2, 98]) if np.isfinite(inv).any() else (0.0, 1.0)
        v = np.nan_to_num(np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1), nan=0.0) * (len(_DEPTH_STOPS) - 1)
        i = np.minimum(v.astype(np.int64), len(_DEPTH_STOPS) - 2)
        rgb = _DEPTH_STOPS[i] + (v - i)[..., None] * (_DEPTH_STOPS[i + 1] - _DEPTH_STOPS[i])
        rgb[~np.isfinite(d)] = 0
        return rgb.round().astype(np.uint8)
    if task == "normals":
        n = np.asarray(x, np.float64) * np.array([1.0, -1.0, -1.0])
        rgb = ((n + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        rgb[np.linalg.norm(x, axis=-1) == 0] = 0
        return rgb
    ids = np.asarray(x, dtype=np.int64)
    h = (ids * 2654435761) & 0xFFFFFF
    rgb = np.stack([(h >> 16) & 255, (h >> 8) & 255, h & 255], axis=-1).astype(np.uint8) | 64
    rgb[ids == 0] = 0
    return rgb


def _save_png(path: Path, rgb: np.ndarray) -> None:
    with publishing(path, ".tmp.png") as tmp:
        Image.fromarray(rgb).save(tmp)


def predict_files(run: Run, task: str, images: list[str], out_dir: str | Path, classes: list[str] | None = None,
                  steps: int | None = None, seed: int = 0, batch_size: int = 4,
                  prompt: str | None = None, decode: dict | None = None) -> list[dict]:
    """For each image write OUT/NAME.<task>.rgb.png (the raw prediction at the model's resolution),
    OUT/NAME.<task>.npy (decoded, at the image's size: depth float32 metres, normals float32 (H,W,3) unit OpenCV
    camera frame, semantic/instance int32 labels) and OUT/NAME.<task>.color.png. Returns one record per image."""
    if prompt is None:
        prompt, decode = run_prompt(run, task, classes, seed)
    elif decode is None:
        raise UserError("--prompt needs --decode JSON (the decode parameters that go with it)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for start in range(0, len(images), batch_size):
        paths = images[start : start + batch_size]
        loaded = [load_image(p, run.cfg.resolution) for p in paths]
        images_t = torch.stack([t for t, _ in loaded])
        rgbs = sample(run.components, run.cfg, images_t, [prompt] * len(paths), prompts=run.prompts, steps=steps,
                      seed=seed).numpy()
        for p, (_, size), rgb in zip(paths, loaded, rgbs, strict=True):
            stem = Path(p).stem
            value = resize_measurement(np.asarray(encode.decode_target(rgb, decode)), size, task)
            _save_png(out / f"{stem}.{task}.rgb.png", rgb)
            with publishing(out / f"{stem}.{task}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, value)
            _save_png(out / f"{stem}.{task}.color.png", colourise(task, value))
            records.append({"image": str(p), "npy": str(out / f"{stem}.{task}.npy"), "prompt": prompt})
    with publishing(out / "predict.json") as tmp:
        tmp.write_text(json.dumps({"task": task, "decode": decode, "items": records}, indent=1))
    return records


def eval_dataset(run: Run, data: str, split: str = "val", max_items: int | None = None, **kw) -> dict:
    """Metrics of ``run`` on ``split`` of the dataset at ``data``: every sample is scored on every task of the
    run (one pass per task, no augmentation, at the run's resolution); ``max_items`` caps the samples per task."""
    metrics: dict = {}
    for task in run.cfg.tasks:
        cfg = dataclasses.replace(run.cfg, data=data, tasks=(task,), task_weights=())
        ds = build_data(cfg, split, generation_ratio=0.0, augment=False)
        if len(ds) == 0:
            raise UserError(f"--split {split} of {data} has no samples; try --split all")
        metrics.update(evaluate(run.components, run.cfg, ds, max_items=max_items, prompts=run.prompts, **kw))
    return metrics


def load_depth_gt(path: Path, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """float32 metres from .npy (metres) or a 16-bit PNG (millimetres; 0 = no value -> NaN). UserError naming the
    file if it is unreadable, not one depth map, of another size than its image (``image_size``, (H, W): ground
    truth is never resized), or without a single valid value."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 2 or arr.dtype.kind not in "fiu":
                raise UserError(f"depth ground truth {path} is {arr.dtype} {arr.shape}; give float metres (H, W)")
            d = arr.astype(np.float32)
        else:
            arr = np.asarray(Image.open(path))
            if arr.dtype != np.uint16 and arr.dtype != np.int32 or arr.ndim != 2:
                raise UserError(f"depth ground truth {path} is {arr.dtype} {arr.shape}; give a 16-bit single-channel "
                                "PNG in millimetres or .npy metres")
            d = arr.astype(np.float32) / 1000.0
            d[arr == 0] = np.nan
    except (OSError, ValueError) as e:
        raise UserError(f"depth ground truth {path} is unreadable ({type(e).__name__}: {e})") from None
    if image_size is not None and d.shape != tuple(image_size):
        raise UserError(f"depth ground truth {path} is {d.shape[1]}x{d.shape[0]} but its image is "
                        f"{image_size[1]}x{image_size[0]}; give ground truth of the image's size (it is never "
                        "resized)")
    if not np.any(np.isfinite(d) & (d > 0)):
        raise UserError(f"depth ground truth {path} has no valid value (all NaN, infinite, zero or negative); "
                        "remove it or fix it")
    return d


def eval_depth_folder(run: Run, images_dir: str, gt_dir: str, max_items: int | None = None, seed: int = 0,
                      steps: int | None = None) -> dict:
    """Depth metrics (metric and affine-aligned) on the user's images: IMAGES/NAME.* against GT/NAME.png|.npy."""
    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    gts = {p.stem: p for p in Path(gt_dir).iterdir() if p.suffix.lower() in (".png", ".npy")}
    if max_items is not None and max_items < 1:
        raise UserError(f"--max-items {max_items} must be at least 1")
    pairs = [(p, gts[p.stem]) for p in images if p.stem in gts][:max_items]
    if not pairs:
        raise UserError(f"no image in {images_dir} has a depth file of the same name in {gt_dir} (NAME.png or .npy)")
    prompt, decode = run_prompt(run, "depth", seed=seed)
    metric, affine = [], []
    for img_path, gt_path in pairs:
        image, size = load_image(img_path, run.cfg.resolution)
        gt = load_depth_gt(gt_path, size)  # checked before the model runs
        rgb = sample(run.components, run.cfg, image[None], [prompt], prompts=run.prompts, steps=steps, seed=seed)[0]
        pred = resize_measurement(np.asarray(encode.decode_target(rgb.numpy(), decode)), gt.shape, "depth")
        metric.append(M.depth_metrics(pred, gt))
        affine.append(M.depth_metrics_affine(pred, gt))
    return {"depth": {**M.mean_depth(metric), "images": len(pairs)},
            "depth_affine": {**M.mean_depth(affine), "images": len(pairs)}}


def markdown_table(metrics: dict) -> str:
    """One Markdown table per task: metric names as columns."""
    lines = []
    for task, vals in metrics.items():
        keys = list(vals)
        lines += [f"### {task}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        cells = [f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v) for v in vals.values()]
        lines += ["| " + " | ".join(cells) + " |", ""]
    return "\n".join(lines)


def write_report(metrics: dict, out_json: Path, header: str = "") -> tuple[Path, Path]:
    """Write metrics as JSON and a Markdown table next to it (same stem, .md); atomic renames."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    md = out_json.with_suffix(".md")
    for path, text in ((out_json, json.dumps(metrics, indent=1)), (md, header + markdown_table(metrics))):
        with publishing(path) as tmp:
            tmp.write_text(text)
    return out_json, md
