"""Predict with a trained run, decode the drawings into measurements, and score them.

- ``load_run(run_dir)``: the exported model of a run (RUN/model) and its TrainConfig.
- ``task_prompt(task, classes)``: a prompt and its decode parameters, drawn by rgbify.encode.tasks.task_prompt.
- ``predict_files(...)``: raw RGB prediction, decoded measurement (.npy) and a colourised PNG per image (aspect
  ratio kept, optionally an ensemble; rgbify.train.infer).
- ``eval_dataset(...)`` / ``eval_depth_folder(...)``: metrics as a dict, written as JSON and a Markdown table.
  Standard benchmarks (``rgbify eval --benchmark``) are rgbify.train.benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
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
from rgbify.train.ensemble import INVARIANCES
from rgbify.train.evaluate import evaluate
from rgbify.train.infer import predict_measurement
from rgbify.train.model import Components, PromptEncoder, build_model, make_prompts
from rgbify.train.report import markdown_table, write_report  # noqa: F401 (the CLI and users import them here)

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
    for m in (components.unet, *components.frozen()):
        m.to(device).eval()
    return Run(cfg, components, make_prompts(components), int(meta.get("step", 0)))


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
    """(3, res, res) float in [-1, 1] (bicubic resize, square) and the original (H, W): the input of a stock
    pipeline's own resizing, for comparisons; ``rgbify predict`` keeps the aspect ratio (rgbify.train.infer)."""
    try:
        img = Image.open(path).convert("RGB")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e
    size = (img.height, img.width)
    arr = np.asarray(img.resize((resolution, resolution), Image.BICUBIC), dtype=np.float32)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous(), size  # contiguous: as stock pipelines


def _image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file, from its header."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


def read_rgb(path: str | Path) -> np.ndarray:
    """uint8 (H, W, 3) of an image file."""
    try:
        return np.asarray(Image.open(path).convert("RGB"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


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
                  steps: int | None = None, seed: int = 0, prompt: str | None = None, decode: dict | None = None,
                  ensemble: int = 1, ensemble_invariance: str = "none",
                  processing_res: int | None = None) -> list[dict]:
    """For each image write OUT/NAME.<task>.rgb.png (the raw prediction at the processing resolution; the first
    draw of an ensemble), OUT/NAME.<task>.npy (decoded, at the image's size: depth float32 metres, normals float32
    (H,W,3) unit OpenCV camera frame, semantic/instance int32 labels) and OUT/NAME.<task>.color.png. Images are
    processed with their aspect ratio kept, the long side at ``processing_res`` (default: the run's resolution;
    rgbify.train.infer). ``ensemble`` > 1 (depth, normals) ensembles that many draws as Marigold does; depth with
    ``ensemble_invariance`` "none" keeps metres (pixelwise median), "affine"/"scale" give relative depth in [0, 1].
    Returns one record per image."""
    if prompt is None:
        prompt, decode = run_prompt(run, task, classes, seed)
    elif decode is None:
        raise UserError("--prompt needs --decode JSON (the decode parameters that go with it)")
    if ensemble < 1:
        raise UserError(f"--ensemble {ensemble}: give the number of draws to ensemble (>= 1)")
    if ensemble > 1 and task not in ("depth", "normals"):
        raise UserError(f"--ensemble is for depth and normals; {task} label maps are not ensembled")
    if ensemble_invariance not in INVARIANCES:
        raise UserError(f"--ensemble-invariance {ensemble_invariance}: use one of {', '.join(INVARIANCES)}")
    res = run.cfg.resolution if processing_res is None else processing_res
    if res < 0:
        raise UserError(f"--processing-res {res}: give the long side in pixels, or 0 for the image's own size")
    rgbs = [read_rgb(p) for p in images]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for p, rgb in zip(images, rgbs, strict=True):
        raw: list = []
        value = predict_measurement(run, task, rgb, prompt, decode, processing_res=res, out_hw=rgb.shape[:2],
                                    ensemble=ensemble, invariance=ensemble_invariance, seed=seed, steps=steps,
                                    keep_raw=raw)
        stem = Path(p).stem
        _save_png(out / f"{stem}.{task}.rgb.png", raw[0])
        with publishing(out / f"{stem}.{task}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, value)
        _save_png(out / f"{stem}.{task}.color.png", colourise(task, value))
        records.append({"image": str(p), "npy": str(out / f"{stem}.{task}.npy"), "prompt": prompt})
    meta = {"task": task, "decode": decode, "ensemble": ensemble, "processing_res": res, "items": records}
    if ensemble > 1 and task == "depth":
        meta["ensemble_invariance"] = ensemble_invariance
    with publishing(out / "predict.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
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


def load_depth_gt(path: Path, depth_scale: float | None = None, image_size: tuple[int, int] | None = None
                  ) -> np.ndarray:
    """float64 metres from .npy (metres) or a 16-bit PNG (value / ``depth_scale``; 0 = no value -> NaN). A PNG's
    scale is not guessed: without ``depth_scale`` it is an error (1000 for millimetres as NYUv2 and ScanNet, 256 for
    KITTI). UserError naming the file if it is unreadable, not one depth map, of another size than its image
    (``image_size``, (H, W): ground truth is never resized), or without a single valid value."""
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 2 or arr.dtype.kind not in "fiu":
                raise UserError(f"depth ground truth {path} is {arr.dtype} {arr.shape}; give float metres (H, W)")
            d = arr.astype(np.float64)
        else:
            img = Image.open(path)
            arr = np.asarray(img)
            if img.mode not in ("I;16", "I;16B", "I") or arr.ndim != 2:
                raise UserError(f"depth ground truth {path} is a {img.mode} image; give a 16-bit single-channel PNG "
                                "or .npy metres")
            if depth_scale is None:
                raise UserError(f"depth ground truth {path} is a 16-bit PNG of unknown scale; give --depth-scale "
                                "(the value of one metre: 1000 for millimetres as NYUv2 and ScanNet, 256 for KITTI)")
            if not depth_scale > 0:
                raise UserError(f"--depth-scale {depth_scale}: give the PNG value of one metre (> 0), e.g. 1000 or "
                                "256")
            d = arr.astype(np.float64) / depth_scale
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
                      steps: int | None = None, depth_scale: float | None = None) -> dict:
    """Depth metrics (metric and affine-aligned) on the user's images: IMAGES/NAME.* against GT/NAME.png|.npy,
    predicted at the run's resolution with the aspect ratio kept and resized back to the ground truth."""
    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    gts = {p.stem: p for p in Path(gt_dir).iterdir() if p.suffix.lower() in (".png", ".npy")}
    if max_items is not None and max_items < 1:
        raise UserError(f"--max-items {max_items} must be at least 1")
    pairs = [(p, gts[p.stem]) for p in images if p.stem in gts][:max_items]
    if not pairs:
        raise UserError(f"no image in {images_dir} has a depth file of the same name in {gt_dir} (NAME.png or .npy)")
    gt_maps = [load_depth_gt(gt, depth_scale, _image_size(img)) for img, gt in pairs]  # all checked before predicting
    prompt, decode = run_prompt(run, "depth", seed=seed)
    metric, affine = [], []
    for (img_path, _), gt in zip(pairs, gt_maps, strict=True):
        pred = predict_measurement(run, "depth", read_rgb(img_path), prompt, decode, processing_res=run.cfg.resolution,
                                   out_hw=gt.shape, seed=seed, steps=steps)
        metric.append(M.depth_metrics(pred, gt))
        affine.append(M.depth_metrics_affine(pred, gt))
    return {"depth": {**M.mean_depth(metric), "images": len(pairs)},
            "depth_affine": {**M.mean_depth(affine), "images": len(pairs)}}
