"""``TaskDataset``: a torch Dataset of (input image, prompt, RGB target) items drawn from a built dataset.

Each item is one sample and one task drawn per item (by ``weights``), with its target encoded on the fly by
``rgbify.encode.make_task_target`` after the geometric augmentation, so targets always match the augmented image:

- random crop (scale in ``crop_scale`` of each side, aspect kept) then resize to ``resolution``: RGB bilinear,
  ground truth nearest (depth, normals and ids are never blended); K follows (cx, cy shifted and scaled);
- horizontal flip: the image mirrors, so a camera-frame normal's x is negated and cx becomes W - 1 - cx;
  depth is unchanged; instance pixel counts are recomputed after the crop;
- depth codec and colormap augmentation, segmentation colours and prompt phrasing are drawn per item inside
  make_task_target (options ``depth_codecs``, ``colormap_prob`` ... via ``target_options``);
- generation-retention items (task "generate", probability ``generation_ratio``): the input image is zeros, the
  prompt a caption of the scene spec, the target the RGB itself.

Randomness: item ``i`` in epoch ``e`` uses ``numpy.random.default_rng([seed, e, index])``; call ``set_epoch(e)``.
The train/val split is by sample index (rgbify.datasets.reader.is_val_index), stable when a dataset grows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rgbify.datasets.reader import DatasetReader, is_val_index

TASKS = ("depth", "normals", "semantic", "instance")
IMAGE_FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge")
GT_FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "instances")
TASK_FIELDS = {"depth": ("depth",), "normals": ("normals",), "semantic": ("semantic", "instance"),
               "instance": ("instance", "semantic"), "generate": ("spec", "instance")}


class TaskDataset(Dataset):
    """Items of (image, prompt, target) for the tasks of rgbify.encode, read from ``directory``.

    Args:
        directory: a dataset folder built by ``rgbify build``.
        tasks: tasks to draw from ("depth", "normals", "semantic", "instance").
        weights: relative probability of each task (default: uniform).
        split: "train", "val" or "all" (split by sample index, ``val_fraction`` of samples in val).
        resolution: output (width, height) or an int for square; None keeps the stored size (after the crop).
        generation_ratio: probability that an item is a generation-retention item (task "generate").
        seed: seed of every per-item draw (with the epoch and the sample index).
        crop_scale: (min, max) fraction of each side kept by the random crop; (1, 1) = no crop.
        hflip: probability of a horizontal flip.
        augment: False turns crop and flip off (default: on for train, off otherwise).
        target_options: keyword options for make_task_target (depth_codecs, colormap_prob, flip_x, ...).
        return_gt: include the raw ground truth (gt_* and valid) in the item.
    """

    def __init__(self, directory: str | Path, tasks: Sequence[str] = TASKS, weights: Sequence[float] | None = None,
                 split: str = "train", resolution: int | tuple[int, int] | None = None,
                 generation_ratio: float = 0.0, seed: int = 0, val_fraction: float = 0.05,
                 crop_scale: tuple[float, float] = (0.7, 1.0), hflip: float = 0.5, augment: bool | None = None,
                 target_options: Mapping[str, Any] | None = None, return_gt: bool = True):
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise ValueError(f"tasks {list(tasks)}: each must be one of {TASKS}")
        if weights is not None and (len(weights) != len(tasks) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"weights {list(weights)} must be {len(tasks)} non-negative numbers, not all 0")
        if split not in ("train", "val", "all"):
            raise ValueError(f"split {split!r} must be 'train', 'val' or 'all'")
        if not 0.0 <= generation_ratio <= 1.0:
            raise ValueError(f"generation_ratio {generation_ratio} must be in [0, 1]")
        self.reader = DatasetReader(directory)
        self.tasks = tuple(tasks)
        w = np.ones(len(tasks)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.split = split
        if isinstance(resolution, int):
            resolution = (resolution, resolution)
        self.resolution = None if resolution is None else (int(resolution[0]), int(resolution[1]))
        self.generation_ratio = float(generation_ratio)
        self.seed = int(seed)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.hflip = float(hflip)
        self.augment = (split == "train") if augment is None else bool(augment)
        self.target_options = dict(target_options or {})
        self.return_gt = return_gt
        self.epoch = 0
        all_idx = self.reader.indices
        if split == "all":
            self.indices = all_idx
        else:
            self.indices = [i for i in all_idx if is_val_index(i, val_fraction) == (split == "val")]
        self.classes = self.reader.classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, Any]:
        index = self.indices[item]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        generate = self.generation_ratio > 0 and rng.random() < self.generation_ratio
        task = "generate" if generate else self.tasks[int(rng.choice(len(self.tasks), p=self.weights))]
        fields = GT_FIELDS if self.return_gt else ("rgb", "K", "instances")
        fields = tuple(dict.fromkeys((*fields, *TASK_FIELDS[task])))  # only what this item needs is read
        s = self.reader.read(index, fields)
        gt = self._augment(s, rng)
        if generate:
            from rgbify.datasets.captions import caption
            from rgbify.scenes.spec import spec_from_json

            target = gt["rgb"]
            image = np.zeros_like(target)
            min_px = 0.002 * target.shape[0] * target.shape[1]  # objects that cover at least 0.2 % of the image
            seen = {r["id"] for r in gt["instances"] if r.get("pixel_count", 0) >= min_px}
            prompt = caption(spec_from_json(s["spec"]), visible=seen)
            decode: dict[str, Any] = {"task": "generate"}
        else:
            from rgbify.encode import make_task_target

            image = gt["rgb"]
            target, prompt, decode = make_task_target(task, gt, rng, **self.target_options)
        out: dict[str, Any] = {
            "image": _to_tensor(image), "target": _to_tensor(target), "prompt": prompt, "task": task,
            "decode": json.dumps(decode, sort_keys=True), "index": index,
            "K": torch.from_numpy(gt["K"].astype(np.float32)),
        }
        if self.return_gt:
            out.update({
                "gt_depth": torch.from_numpy(gt["depth"]), "gt_normals": torch.from_numpy(gt["normals"]),
                "gt_semantic": torch.from_numpy(gt["semantic"].astype(np.int64)),
                "gt_instance": torch.from_numpy(gt["instance"].astype(np.int64)),
                "valid": torch.from_numpy((gt["instance"] > 0) & ~gt["edge"]),
            })
        return out

    def _augment(self, s: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Crop, resize and flip every image field alike (one gather per array), and K with them."""
        K = np.array(s["K"], dtype=np.float64)
        h, w = s["rgb"].shape[:2]
        x0, y0, cw, ch, flip = 0, 0, w, h, False
        if self.augment:
            lo, hi = self.crop_scale
            scale = lo if hi <= lo else rng.uniform(lo, hi)
            ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            flip = bool(rng.random() < self.hflip)
        W, H = self.resolution or (cw, ch)
        K[0, 2] -= x0
        K[1, 2] -= y0
        sx, sy = W / cw, H / ch
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        if flip:
            K[0, 2] = W - 1 - K[0, 2]
        gt: dict[str, Any] = {"rgb": _rgb_view(s["rgb"], (x0, y0, cw, ch), (W, H), flip)}
        if (W, H) != (cw, ch):  # nearest neighbour: the output pixel centre's source pixel, never a blend
            rows = y0 + np.minimum(((np.arange(H) + 0.5) * ch / H).astype(np.intp), ch - 1)
            cols = x0 + np.minimum(((np.arange(W) + 0.5) * cw / W).astype(np.intp), cw - 1)
            idx: Any = np.ix_(rows, cols[::-1] if flip else cols)
        else:  # a crop and/or a mirror: plain slicing, then one contiguous copy
            idx = (slice(y0, y0 + ch), slice(x0 + cw - 1, x0 - 1 if x0 else None, -1) if flip else slice(x0, x0 + cw))
        for k in IMAGE_FIELDS[1:]:
            if k in s:
                gt[k] = np.ascontiguousarray(s[k][idx])
        if flip and "normals" in gt:  # mirrored image = mirrored camera x: negate n_x (+ 0.0 turns -0.0 into 0.0)
            gt["normals"][..., 0] *= -1
            gt["normals"][..., 0] += 0.0
        gt["K"] = K
        gt["class_names"] = self.classes
        table = json.loads(s["instances"])
        gt["instances"] = _recount(table, gt["instance"]) if "instance" in gt else table
        return gt


def _rgb_view(rgb: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool) -> np.ndarray:
    """Crop ``box`` (x0, y0, w, h) of an sRGB uint8 image, resize it to ``size`` (bilinear), mirror it if ``flip``."""
    x0, y0, cw, ch = box
    h, w = rgb.shape[:2]
    if (x0, y0, cw, ch) == (0, 0, w, h) and size == (w, h) and not flip:
        return rgb
    im = Image.fromarray(rgb)
    if size != (cw, ch):
        im = im.resize(size, Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    elif (cw, ch) != (w, h):
        im = im.crop((x0, y0, x0 + cw, y0 + ch))
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.array(im)


def _recount(table: list[dict[str, Any]], inst: np.ndarray) -> list[dict[str, Any]]:
    """The instance table with pixel counts of the (cropped, resized) instance map; absent instances dropped."""
    n = np.bincount(inst.ravel().astype(np.intp, copy=False)) if inst.size else np.zeros(1, np.intp)
    return [{**row, "pixel_count": int(n[row["id"]])} for row in table if row["id"] < len(n) and n[row["id"]] > 0]


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H,W,3) -> float32 (3,H,W) in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    return t.div_(127.5).sub_(1.0)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch TaskDataset items: tensors stacked, prompt/task/decode as lists of str, index as a tensor."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif key == "index":
            out[key] = torch.tensor(vals, dtype=torch.int64)
        else:
            out[key] = vals
    return out
