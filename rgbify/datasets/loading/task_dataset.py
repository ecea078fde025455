"""``TaskDataset``: a torch Dataset of (input image, prompt, RGB target) items drawn from a built dataset.

Images and targets are uint8 (3, H, W) tensors, the exact colours (a target is the task's codec output, bit for
bit); a trainer scales them to [-1, 1] on its device (:func:`to_unit`), which also moves 4x fewer bytes through
DataLoader worker processes and host-to-GPU copies than float32 would.

Each item is one sample and one task drawn per item (by ``weights``), with its target encoded on the fly by
``rgbify.encode.make_task_target`` after the geometric augmentation, so targets always match the augmented image:

- random crop (scale in ``crop_scale`` of each side, aspect kept) then resize to ``resolution``: RGB bilinear
  (antialiased when shrinking; torch's uint8 kernel, within 1 of Pillow's ``crop().resize(BILINEAR)``), ground
  truth nearest (depth, normals and ids are never blended); K follows (cx, cy shifted and scaled). A crop
  resized to the output size zooms in (the focal length grows by 1/scale) while depth stays: a metric-depth item
  would show a room larger than its labels say. ``metric_depth_crop`` decides what such items get: "off" (the
  default: no crop, the flip only), "rescale" (cropped, the depth multiplied by the kept side fraction: the
  labels of a camera whose focal length did not change, Metric3D's canonical camera; K still describes the
  pixels) or "zoom" (cropped, depth unchanged). Relative depth codecs (depth/affine) and other tasks are cropped
  in every case; the crop's draws are made either way, so every other draw of the item stays the same;
- horizontal flip: the image mirrors, so a camera-frame normal's x is negated and cx becomes W - 1 - cx;
  depth is unchanged; instance pixel counts are recomputed after the crop;
- depth codec and colormap augmentation, segmentation colours and prompt phrasing are drawn per item inside
  make_task_target (options ``depth_codecs``, ``colormap_prob`` ... via ``target_options``);
- photometric augmentation of the input image only (never the target, never the ground truth), train only:
  ``color_jitter`` s draws brightness, contrast and saturation factors in [1 - s, 1 + s] and per-channel gains
  (a white-balance error) in [1 - s/4, 1 + s/4]; ``noise_std`` n adds Gaussian noise of a standard deviation
  drawn in [0, n] 8-bit levels. Drawn after every other draw of the item, so crops, codecs and targets are the
  same with it on or off;
- generation-retention items (task "generate", probability ``generation_ratio``): the input image is black
  (zeros), the prompt a caption of the scene spec, the target the RGB itself.

Randomness: item ``i`` in epoch ``e`` uses ``numpy.random.default_rng([seed, e, index])``; call ``set_epoch(e)``,
or ``get(i, e)`` (thread-safe). Reading is thread-safe: see rgbify.datasets.loading.loader.ThreadLoader.
The train/val split is by sample index (rgbify.datasets.loading.split.is_val_index), stable when a dataset grows.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rgbify.datasets.loading import kernels
from rgbify.datasets.loading.captions import caption
from rgbify.datasets.loading.split import is_val_index
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.encode import (
    PROMPT_FORMAT_CHOICES,
    TASKS,
    CubeWalk,
    NormalsCodec,
    depth_prompt,
    make_task_target,
    normals_prompt,
)
from rgbify.encode.tasks import draw_depth_codec
from rgbify.scenes.spec import spec_from_json

METRIC_DEPTH_CROPS = ("off", "rescale", "zoom")
"""TaskDataset's ``metric_depth_crop`` choices: what the random crop does to items of a metric depth codec."""
IMAGE_FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge")
GT_FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "instances")
TASK_FIELDS = {"depth": ("depth",), "normals": ("normals",), "semantic": ("semantic", "instance", "instances"),
               "instance": ("instance", "semantic", "instances"), "generate": ("spec", "instance", "instances")}


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
        color_jitter: strength of the photometric augmentation of the input image (0: none).
        noise_std: largest standard deviation, in 8-bit levels, of Gaussian noise added to the input image (0: none).
        augment: False turns crop, flip and photometric augmentation off (default: on for train, off otherwise).
        metric_depth_crop: the crop of depth items whose codec decodes to metres: "off" (not cropped), "rescale"
            (cropped, depth times the kept side fraction) or "zoom" (cropped, depth unchanged); see above.
        target_options: keyword options for make_task_target (depth_codecs, colormap_prob, flip_x, ...).
        return_gt: include the raw ground truth (gt_* and valid) in the item.
        keep_freed_memory: in DataLoader worker processes, call :func:`keep_freed_memory` once (glibc malloc keeps
            freed memory instead of returning it to the OS; 1.5-2x faster items at 512 px). Never in the main
            process: call the function yourself there if you want it.
    """

    def __init__(self, directory: str | Path, tasks: Sequence[str] = TASKS, weights: Sequence[float] | None = None,
                 split: str = "train", resolution: int | tuple[int, int] | None = None,
                 generation_ratio: float = 0.0, seed: int = 0, val_fraction: float = 0.05,
                 crop_scale: tuple[float, float] = (0.7, 1.0), hflip: float = 0.5, color_jitter: float = 0.0,
                 noise_std: float = 0.0, augment: bool | None = None,
                 target_options: Mapping[str, Any] | None = None, return_gt: bool = True,
                 keep_freed_memory: bool = True, metric_depth_crop: str = "off"):
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
        self._cdf = np.cumsum(self.weights)
        self._cdf /= self._cdf[-1]  # rng.choice(len(tasks), p=weights), without its per-call checks
        self.split = split
        if isinstance(resolution, int):
            resolution = (resolution, resolution)
        self.resolution = None if resolution is None else (int(resolution[0]), int(resolution[1]))
        self.generation_ratio = float(generation_ratio)
        self.seed = int(seed)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.hflip = float(hflip)
        if not 0.0 <= color_jitter < 1.0:
            raise ValueError(f"color_jitter {color_jitter} must lie in [0, 1)")
        if not 0.0 <= noise_std <= 64.0:
            raise ValueError(f"noise_std {noise_std} must lie in [0, 64] (8-bit levels)")
        self.color_jitter, self.noise_std = float(color_jitter), float(noise_std)
        if metric_depth_crop not in METRIC_DEPTH_CROPS:
            raise ValueError(f"metric_depth_crop {metric_depth_crop!r}: use one of {', '.join(METRIC_DEPTH_CROPS)}")
        self.metric_depth_crop = metric_depth_crop
        self.augment = (split == "train") if augment is None else bool(augment)
        self.target_options = dict(target_options or {})
        self.return_gt = return_gt
        self.keep_freed_memory = keep_freed_memory
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
        return self.get(item, self.epoch)

    def get(self, item: int, epoch: int) -> dict[str, Any]:
        """Item ``item`` as in epoch ``epoch`` (what ``set_epoch(epoch)`` then ``self[item]`` gives, without
        changing the dataset: safe from several threads at once)."""
        if self.keep_freed_memory and _TUNED_PID[0] != os.getpid() and torch.utils.data.get_worker_info():
            keep_freed_memory()  # once per DataLoader worker process
        index = self.indices[item]
        rng = np.random.default_rng([self.seed, epoch, index])
        generate = self.generation_ratio > 0 and rng.random() < self.generation_ratio
        task = "generate" if generate else self.tasks[int(self._cdf.searchsorted(rng.random(), side="right"))]
        fields = GT_FIELDS if self.return_gt else ("rgb", "K")
        fields = tuple(dict.fromkeys((*fields, *TASK_FIELDS[task])))  # only what this item needs is read
        s = self.reader.read(index, fields)
        view = self._view(s["rgb"].shape[:2], rng)
        if task == "depth" and self.metric_depth_crop != "zoom" and view.cropped:
            view, s = self._metric_depth_view(view, s, rng)
        fast = None if generate else self._fused_target(task, s, view, rng)
        gt = self._gather(s, view, skip=(task,) if fast is not None and not self.return_gt else ())
        rgb = _rgb_view(s["rgb"], view)  # uint8 (3,H,W): crop + resize + flip
        if generate:
            target = rgb
            image = torch.zeros_like(rgb)  # an all-black input image
            min_px = 0.002 * view.size[0] * view.size[1]  # objects that cover at least 0.2 % of the image
            seen = {r["id"] for r in gt["instances"] if r.get("pixel_count", 0) >= min_px}
            prompt = caption(spec_from_json(s["spec"]), visible=seen)
            decode: dict[str, Any] = {"task": "generate"}
        elif fast is not None:
            image = rgb
            target, prompt, decode = fast
        else:
            image = rgb
            target_rgb, prompt, decode = make_task_target(task, gt, rng, **self.target_options)
            target = _planes(target_rgb)
        if not generate and self.augment and (self.color_jitter or self.noise_std):
            image = photometric(image, rng, self.color_jitter, self.noise_std)
        out: dict[str, Any] = {
            "image": image, "target": target, "prompt": prompt, "task": task,
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

    def _view(self, shape: tuple[int, int], rng: np.random.Generator) -> _View:
        """Draw this item's crop box and flip (train augmentation) and derive the output size and K's change."""
        h, w = shape
        x0, y0, cw, ch, flip = 0, 0, w, h, False
        if self.augment:
            lo, hi = self.crop_scale
            scale = lo if hi <= lo else rng.uniform(lo, hi)
            ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            flip = bool(rng.random() < self.hflip)
        return _View((x0, y0, cw, ch), self.resolution or (cw, ch), flip, (h, w))

    def _metric_depth_view(self, view: _View, s: dict[str, Any], rng: np.random.Generator
                           ) -> tuple[_View, dict[str, Any]]:
        """The view and sample of a cropped depth item under ``metric_depth_crop``: unchanged when the item's codec
        (peeked with a copy of ``rng``: the draws that follow stay the same) is relative; for a metric codec the
        whole image (flip kept) under "off", or the sample with its depth times the kept side fraction under
        "rescale"."""
        codec = draw_depth_codec(copy.deepcopy(rng), **self.target_options)
        if not codec.metric:
            return view, s
        (h, w), (_, _, cw, ch) = view.shape, view.box
        if self.metric_depth_crop == "off":
            return _View((0, 0, w, h), self.resolution or (w, h), view.flip, view.shape), s
        factor = np.float32(np.sqrt(cw * ch / (w * h)))
        return view, {**s, "depth": s["depth"] * factor}  # +inf (nothing hit) stays +inf

    def _fused_target(self, task: str, s: dict[str, Any], view: _View, rng: np.random.Generator
                      ) -> tuple[torch.Tensor, str, dict[str, Any]] | None:
        """(target uint8 (3,H,W), prompt, decode params) of a depth or normals item, equal to
        ``_planes(make_task_target(task, gathered gt, rng, **target_options))`` with the same rng draws, but with
        nearest gather and encoding fused in one kernel that writes the channel-first target (cubewalk and
        normals; other depth codecs encode the gathered depth). None where this does not apply (other tasks,
        options it does not mirror, non-float32 fields): the caller then takes make_task_target's path."""
        opts = self.target_options
        if task not in ("depth", "normals") or s[task].dtype != np.float32 or opts.get("depth_valid") is not None:
            return None
        if opts.get("prompt_format") not in (None, *PROMPT_FORMAT_CHOICES):
            return None  # make_task_target raises
        (W, H), flip = view.size, view.flip
        rows, cols = view.nearest()
        out = np.empty((3, H, W), np.uint8)
        if task == "normals":
            flip_x = opts.get("flip_x", False)
            prompt, params = normals_prompt(flip_x, rng)
            if kernels.normals_planes(s["normals"], rows, cols, flip, bool(flip_x), out):
                gathered = np.empty((H, W, 3), np.float32)  # NaN/inf normals: the codec's own error
                kernels.gather_nearest3(s["normals"], rows, cols, flip, gathered)
                NormalsCodec(flip_x=bool(flip_x)).encode(gathered)
            return torch.from_numpy(out), prompt, params
        codec = draw_depth_codec(rng, **opts)  # the draws of make_task_target's depth items
        prompt, params = depth_prompt(codec, rng)
        if isinstance(codec, CubeWalk) and not kernels.cubewalk_planes(s["depth"], rows, cols, out):
            return torch.from_numpy(out), prompt, params
        gathered = np.empty((H, W), np.float32)
        kernels.gather_nearest2(s["depth"], rows, cols, gathered)
        return _planes(codec.encode(gathered)), prompt, params  # other codecs (or NaN/negative depth: raises)

    def _gather(self, s: dict[str, Any], view: _View, skip: Sequence[str] = ()) -> dict[str, Any]:
        """Every ground-truth image field of the view (nearest neighbour, never blended) but those in ``skip``, and
        K, class table and instance table (pixel counts of the view) with them; no RGB (see :func:`_rgb_view`)."""
        (x0, y0, cw, ch), (W, H), flip = view.box, view.size, view.flip
        K = np.array(s["K"], dtype=np.float64)
        K[0, 2] -= x0
        K[1, 2] -= y0
        sx, sy = W / cw, H / ch
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        if flip:
            K[0, 2] = W - 1 - K[0, 2]
        gt: dict[str, Any] = {}
        rows, cols = view.nearest()
        for k in IMAGE_FIELDS[1:]:
            if k not in s or k in skip:
                continue
            a = s[k]
            if view.identity:  # the stored array itself (a fresh array per read)
                gt[k] = a
            elif a.ndim == 2:
                gt[k] = np.empty((H, W), a.dtype)
                kernels.gather_nearest2(a, rows, cols, gt[k])
            else:  # normals: a mirrored image = mirrored camera x, so n_x is negated (never -0.0)
                gt[k] = np.empty((H, W, a.shape[2]), a.dtype)
                kernels.gather_nearest3(a, rows, cols, flip and k == "normals", gt[k])
        gt["K"] = K
        gt["class_names"] = self.classes
        if "instances" in s:
            table = json.loads(s["instances"])
            gt["instances"] = _recount(table, gt["instance"]) if "instance" in gt else table
        return gt


def photometric(image: torch.Tensor, rng: np.random.Generator, jitter: float, noise_std: float) -> torch.Tensor:
    """``image`` (uint8 (3,H,W)) with brightness, contrast, saturation and per-channel gains drawn in
    [1 - jitter, 1 + jitter] ([1 - jitter/4, 1 + jitter/4] for the gains) and Gaussian noise of a standard deviation
    drawn in [0, noise_std] levels; a new uint8 tensor (rounded, clipped to 0-255)."""
    x = image.to(torch.float32)
    if jitter:
        brightness, contrast, saturation = rng.uniform(1 - jitter, 1 + jitter, 3)
        gains = rng.uniform(1 - jitter / 4, 1 + jitter / 4, 3).astype(np.float32)
        x *= torch.from_numpy(gains * np.float32(brightness)).view(3, 1, 1)
        grey = x[0] * 0.299 + x[1] * 0.587 + x[2] * 0.114
        x = grey + float(saturation) * (x - grey)  # saturation about each pixel's grey
        x = (x - grey.mean()) * float(contrast) + grey.mean()  # contrast about the image's mean grey
    if noise_std:
        sigma = rng.uniform(0.0, noise_std)
        x += torch.from_numpy(rng.standard_normal(x.shape, dtype=np.float32)) * float(sigma)
    return x.round_().clamp_(0, 255).to(torch.uint8)


class _View:
    """One item's geometry: crop ``box`` (x0, y0, w, h) of a stored (h, w) image, output ``size`` (W, H), mirror."""

    def __init__(self, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool, shape: tuple[int, int]):
        self.box, self.size, self.flip, self.shape = box, size, flip, shape
        self.cropped = box != (0, 0, shape[1], shape[0])
        self.identity = not flip and not self.cropped and size == (shape[1], shape[0])
        self._nearest: tuple[np.ndarray, np.ndarray] | None = None

    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """Source row of each output row and source column of each output column (mirrored if flipped): the
        stored pixel under each output pixel's centre (computed once per view)."""
        if self._nearest is None:
            (x0, y0, cw, ch), (W, H) = self.box, self.size
            rows = y0 + np.minimum(((np.arange(H) + 0.5) * ch / H).astype(np.intp), ch - 1)
            cols = x0 + np.minimum(((np.arange(W) + 0.5) * cw / W).astype(np.intp), cw - 1)
            self._nearest = rows, (cols[::-1].copy() if self.flip else cols)
        return self._nearest


def _rgb_view(rgb: np.ndarray, view: _View) -> torch.Tensor:
    """The view of an sRGB uint8 (h,w,3) image as a uint8 (3,H,W) tensor: crop, bilinear resize (torch's uint8
    kernel, antialiased when shrinking), mirror."""
    (x0, y0, cw, ch), (W, H) = view.box, view.size
    t = torch.from_numpy(rgb[y0 : y0 + ch, x0 : x0 + cw]).permute(2, 0, 1)
    if (W, H) != (cw, ch):
        t = torch.nn.functional.interpolate(t[None], size=(H, W), mode="bilinear", antialias=True,
                                            align_corners=False)[0]
    if view.flip:
        t = t.flip(-1)
    return t.contiguous()


def _planes(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H,W,3) -> uint8 (3,H,W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """A batch or item of uint8 images or targets -> float32 in [-1, 1] (x / 127.5 - 1), on x's device; float
    input is returned as it is."""
    return x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x


_TUNED_PID = [0]


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in this process (mallopt: M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD
    512 MiB) instead of returning it to the OS and page-faulting it in again: a 512-px depth item allocates about
    3.5 MB of fresh buffers (inflated RGB and depth, image, target). Process-wide, so TaskDataset does it only in
    its DataLoader worker processes (ThreadLoader does it in its process unless told not to). Returns False (and
    changes nothing) where the C library is not glibc."""
    _TUNED_PID[0] = os.getpid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 512 << 20))


def _recount(table: list[dict[str, Any]], inst: np.ndarray) -> list[dict[str, Any]]:
    """The instance table with pixel counts of the (cropped, resized) instance map; absent instances dropped."""
    n = np.bincount(inst.ravel().astype(np.intp, copy=False)) if inst.size else np.zeros(1, np.intp)
    return [{**row, "pixel_count": int(n[row["id"]])} for row in table if row["id"] < len(n) and n[row["id"]] > 0]


def collate(items: list[dict[str, Any]], alloc: Any = None) -> dict[str, Any]:
    """Batch TaskDataset items: tensors stacked, prompt/task/decode as lists of str, index as a tensor.

    In a DataLoader worker process tensors are stacked straight into shared memory (torch's default_collate
    does so), which saves the copy into shared memory that sending the batch to the main process would make.
    ``alloc(shape, dtype)``, where given, returns the tensor to stack into, or None (rgbify.datasets.ProcessLoader's
    workers stack into their shared buffers)."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], torch.Tensor):
            dst = None
            if alloc is not None and all(v.shape == vals[0].shape and v.dtype == vals[0].dtype for v in vals):
                dst = alloc((len(vals), *vals[0].shape), vals[0].dtype)
            out[key] = torch.utils.data.default_collate(vals) if dst is None else torch.stack(vals, out=dst)
        elif key == "index":
            out[key] = torch.tensor(vals, dtype=torch.int64)
        else:
            out[key] = vals
    return out
