"""``rgbify predict`` and ``rgbify eval`` on a student run (a folder with student.json).

The student answers every task in one forward pass at its resolution; answers are resized back to the image's
size as for a generator run (rgbify.train.infer.resize_back) and written in the same files, except the
raw RGB drawing (a student draws none): ``NAME.TASK.npy`` (depth float32 metres, normals float32 (H, W, 3) unit
OpenCV camera frame, semantic int32 with i + 1 = the student's classes[i]) and ``NAME.TASK.color.png``.
``eval`` scores the same metrics with the same formulas (rgbify.train.evaluate.MetricAccumulator) against a
dataset's stored ground truth: depth on valid pixels, normals, and semantic mIoU over the student's classes (the
ground truth's classes mapped to them by name).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train import metrics as M
from rgbify.train.distill.config import STUDENT_META
from rgbify.train.distill.data import Source, resize_image
from rgbify.train.distill.pseudo import read_image
from rgbify.train.distill.students import build_student
from rgbify.train.evaluate import MetricAccumulator
from rgbify.train.infer import resize_back
from rgbify.train.predict import IMAGE_SUFFIXES, _save_png, colourise, load_depth_gt


@dataclasses.dataclass
class StudentRun:
    model: torch.nn.Module
    meta: dict
    device: str

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.meta["tasks"])

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))


def load_student(run_dir: str | Path, device: str = "cpu") -> StudentRun:
    """The student of a run folder (student.json + student.pt), in eval mode on ``device``."""
    root = Path(run_dir)
    try:
        meta = json.loads((root / STUDENT_META).read_text())
        state = torch.load(root / "student.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise UserError(
            f"--run {run_dir}: {Path(e.filename).name} is missing; finish the run with the same "
            "`rgbify distill` command"
        ) from None
    except (OSError, ValueError, RuntimeError) as e:
        raise UserError(
            f"--run {run_dir}: the student is unreadable ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:160]}); run the same `rgbify distill` command again"
        ) from None
    model = build_student({**meta, "backbone_weights": "random"})  # the weights are student.pt's
    model.load_state_dict(state)
    return StudentRun(model.to(device).eval(), meta, device)


@torch.no_grad()
def student_answers(run: StudentRun, images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 (B, R, R, 3) at the student's resolution -> {task: depth (B, R, R) metres, normals (B, R, R, 3),
    semantic (B, R, R) int32}."""
    x = torch.from_numpy(np.array(images, np.uint8)).to(run.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    outs = run.model(x)
    res = {}
    for task, o in zip(run.tasks, outs, strict=True):
        if task == "depth":
            res[task] = torch.exp(o[:, 0]).float().cpu().numpy()
        elif task == "normals":
            res[task] = o.permute(0, 2, 3, 1).float().cpu().numpy()
        else:
            res[task] = o.argmax(1).to(torch.int32).cpu().numpy()
    return res


def predict_student_files(
    run: StudentRun, task: str, images: list[str], out_dir: str | Path, batch_size: int = 8
) -> list[dict]:
    """NAME.TASK.npy and NAME.TASK.color.png per image, and predict.json (task, classes, items)."""
    if task not in run.tasks:
        raise UserError(f"--task {task}: this student answers {','.join(run.tasks)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for start in range(0, len(images), batch_size):
        paths = images[start : start + batch_size]
        loaded = [read_image(Path(p), run.resolution) for p in paths]
        answers = student_answers(run, np.stack([a for a, _ in loaded]))[task]
        for p, (_, size), value in zip(paths, loaded, answers, strict=True):
            stem = Path(p).stem
            value = resize_back(value, size, task)
            with publishing(out / f"{stem}.{task}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, value)
            _save_png(out / f"{stem}.{task}.color.png", colourise(task, value))
            records.append({"image": str(p), "npy": str(out / f"{stem}.{task}.npy"), "prompt": None})
    with publishing(out / "predict.json") as tmp:
        tmp.write_text(
            json.dumps({"task": task, "student": True, "classes": list(run.classes), "items": records}, indent=1)
        )
    return records


def score_answers(acc: MetricAccumulator, answers: dict[str, np.ndarray], items: list[dict]) -> None:
    """Add a batch's answers (at the student's or teacher's resolution) to ``acc`` against the items' ground truth
    (``Source.raw`` items at their stored size; answers resized to it)."""
    for j, it in enumerate(items):
        size = it["depth"].shape
        gt = {"gt_depth": it["depth"], "gt_normals": it["normals"], "valid": it["valid"]}
        for task, value in answers.items():
            pred = resize_back(np.asarray(value[j]), size, task)
            acc.add(task, pred, gt, it["semantic"] if task == "semantic" else None)


def raw_items(src: Source, start: int, stop: int) -> list[dict]:
    """Ground-truth items at their stored size: rgb, depth (inf where nothing hit), normals, semantic mapped to
    the student's classes, valid (something hit, not an edge)."""
    items = []
    for k in range(start, stop):
        s = src.reader.read(src.indices[k], ("rgb", "depth", "normals", "semantic", "edge"))
        valid = np.isfinite(s["depth"]) & (s["depth"] > 0) & ~s["edge"].astype(bool)
        sem = src.lut[np.clip(s["semantic"], 0, len(src.lut) - 1)].astype(np.int32)
        items.append({"rgb": s["rgb"], "depth": s["depth"], "normals": s["normals"], "semantic": sem, "valid": valid})
    return items


def eval_student_dataset(
    run: StudentRun, data: str, split: str = "val", max_items: int | None = None, batch_size: int = 8
) -> dict:
    """The student's metrics on ``split`` of a rendered dataset (every task it answers, every sample), plus its
    images per second (the forward pass alone)."""
    src = Source(data, run.classes, run.tasks, split)
    n = len(src) if max_items is None else min(max_items, len(src))
    acc, seconds = MetricAccumulator(), 0.0
    for start in range(0, n, batch_size):
        items = raw_items(src, start, min(n, start + batch_size))
        x = np.stack([resize_image(it["rgb"], run.resolution) for it in items])
        t0 = time.perf_counter()
        answers = student_answers(run, x)
        seconds += time.perf_counter() - t0
        score_answers(acc, answers, items)
    result = acc.result()
    if "semantic" in result:
        result["semantic"]["classes"] = len(run.classes)
    result["speed"] = {"images_per_s": n / max(seconds, 1e-9), "images": n}
    return result


def eval_student_depth_folder(run: StudentRun, images_dir: str, gt_dir: str, max_items: int | None = None,
                              depth_scale: float | None = None) -> dict:
    """Depth metrics (metric and affine-aligned) on the user's images, as rgbify.train.predict.eval_depth_folder."""
    if "depth" not in run.tasks:
        raise UserError(f"this student answers {','.join(run.tasks)}, not depth")
    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    gts = {p.stem: p for p in Path(gt_dir).iterdir() if p.suffix.lower() in (".png", ".npy")}
    pairs = [(p, gts[p.stem]) for p in images if p.stem in gts][:max_items]
    if not pairs:
        raise UserError(f"no image in {images_dir} has a depth file of the same name in {gt_dir} (NAME.png or .npy)")
    metric, affine = [], []
    for img_path, gt_path in pairs:
        image, size = read_image(img_path, run.resolution)
        gt = load_depth_gt(gt_path, depth_scale, size)
        pred = resize_back(student_answers(run, image[None])["depth"][0], gt.shape, "depth")
        metric.append(M.depth_metrics(pred, gt))
        affine.append(M.depth_metrics_affine(pred, gt))
    return {
        "depth": {**M.mean_depth(metric), "images": len(pairs)},
        "depth_affine": {**M.mean_depth(affine), "images": len(pairs)},
    }
