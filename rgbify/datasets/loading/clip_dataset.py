"""``ClipTaskDataset``: a torch Dataset of (frames, prompt, RGB targets) items drawn from a clip dataset (``rgbify
build --clip-frames T``; docs/video.md), the video twin of rgbify.datasets.loading.task_dataset.TaskDataset.

Each item is one task drawn per item (by ``weights``) from ``tasks`` (default rgbify.encode.CLIP_TASKS: the stills'
tasks and "flow") on one window of a clip, with one crop, resize and flip for every frame of the item
(rgbify.datasets.loading.clip_items.ClipItems does the geometry: flow scaled by the resize and u negated by the
flip, normals' x negated by the flip, K following):

- "depth", "normals", "semantic", "instance": a **clip item**, ``frames`` frames ``stride`` apart. The targets of
  all frames come from one call of ``rgbify.encode.make_task_target`` on the frames stacked top to bottom, so one
  codec, one colour table and one prompt serve every frame (a class keeps its colour, an instance its shade, depth
  one range through the clip), then are cut back into frames. ``prompt`` is the clip's
  (rgbify.encode.clip_prompt around the per-frame prompt), ``frame_prompts`` each frame's
  (rgbify.encode.frame_prompts); ``decode`` the per-frame decode parameters (the same for every frame).
- "flow": a **frame-pair item**, frames t and t + 1 of the window's clip (t the window's first frame), the target
  the forward flow of frame t through the flow codec (invalid pixels as the codec writes them), with ``flow``
  (float32 (H, W, 2) px) and ``valid`` (bool) for scoring.

Items: ``image`` uint8 (F, 3, H, W) (F = ``frames``, or 2 for flow), ``target`` uint8 (F, 3, H, W) (flow: (1, 3,
H, W)), ``prompt``, ``frame_prompts``, ``task``, ``decode``, ``frames`` (the clip's frame numbers), ``clip_index``
(the dataset's sample index), ``K`` float32 (F, 3, 3), ``flipped``; flow items also ``flow`` and ``valid``. The
train/val split is by clip index (rgbify.datasets.loading.split.is_val_index), as the stills' by sample index.
Randomness: item ``i`` in epoch ``e`` draws from ``numpy.random.default_rng([seed, e, i])``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rgbify.datasets.loading.clip_items import ClipItems
from rgbify.datasets.loading.split import is_val_index
from rgbify.datasets.storage.manifest import load_manifest
from rgbify.encode import CLIP_TASKS, FLOW_TASK, clip_prompt, frame_prompts, make_task_target
from rgbify.errors import UserError


class ClipTaskDataset(Dataset):
    """Items of (frames, prompt, targets) for ``tasks`` (a subset of rgbify.encode.CLIP_TASKS) from the clip dataset
    in ``directory``; see the module docstring. ``resolution``: output (width, height), an int for square, or None
    (the stored size after the crop); ``crop_scale`` and ``hflip`` as TaskDataset's (augment=False or a split other
    than train turns them off); ``target_options``: make_task_target's options (depth_codecs, prompt_format ...)."""

    def __init__(
        self,
        directory: str | Path,
        tasks: Sequence[str] = CLIP_TASKS,
        weights: Sequence[float] | None = None,
        frames: int = 4,
        stride: int = 1,
        split: str = "train",
        resolution: int | tuple[int, int] | None = None,
        seed: int = 0,
        val_fraction: float = 0.05,
        crop_scale: tuple[float, float] = (0.7, 1.0),
        hflip: float = 0.5,
        augment: bool | None = None,
        target_options: Mapping[str, Any] | None = None,
    ):
        unknown = [t for t in tasks if t not in CLIP_TASKS]
        if unknown or not tasks:
            raise ValueError(f"tasks {list(tasks)}: each must be one of {CLIP_TASKS}")
        if weights is not None and (len(weights) != len(tasks) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"weights {list(weights)} must be {len(tasks)} non-negative numbers, not all 0")
        if split not in ("train", "val", "all"):
            raise ValueError(f"split {split!r} must be 'train', 'val' or 'all'")
        self.directory = Path(directory)
        m = load_manifest(self.directory)
        if "clip" not in m:
            raise UserError(
                f"{self.directory} is a dataset of stills, not clips: use rgbify.datasets.loading."
                "TaskDataset, or build clips with rgbify build --clip-frames T"
            )
        if frames < 2 and any(t != FLOW_TASK for t in tasks):
            raise ValueError(f"frames {frames} must be 2 or more")
        if (frames - 1) * stride + 1 > m["frames"]:
            raise ValueError(
                f"frames {frames} with stride {stride} span {(frames - 1) * stride + 1} frames; the "
                f"dataset's clips have {m['frames']}"
            )
        entries = sorted(m["shards"], key=lambda e: e["first_index"])
        if isinstance(resolution, int):
            resolution = (resolution, resolution)
        augment = (split == "train") if augment is None else augment
        common = {
            "size": None if resolution is None else (int(resolution[0]), int(resolution[1])),
            "crop_scale": tuple(crop_scale) if augment else (1.0, 1.0),
            "flip_prob": hflip if augment else 0.0,
            "seed": seed,
        }
        shards = [self.directory / e["file"] for e in entries]
        self.clips = ClipItems(shards, kind="clip", frames=frames, stride=stride, **common)
        self.pairs = ClipItems(shards, kind="pair", **common)
        self.tasks = tuple(tasks)
        w = np.ones(len(tasks)) if weights is None else np.asarray(weights, dtype=np.float64)
        self._cdf = np.cumsum(w / w.sum())
        self.frames, self.stride, self.seed = int(frames), int(stride), int(seed)
        self.classes: list[str] = list(m["classes"])
        firsts = [int(e["first_index"]) for e in entries]
        self.clip_index = lambda r, j: firsts[r] + j
        pair_of = {key: n for n, key in enumerate(self.pairs.items)}
        self.items = [
            (n, pair_of[key])
            for n, key in enumerate(self.clips.items)
            if split == "all" or is_val_index(self.clip_index(*key[:2]), val_fraction) == (split == "val")
        ]
        self.target_options = dict(target_options or {})
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.get(item, self.epoch)

    def close(self) -> None:
        self.clips.close()
        self.pairs.close()

    def get(self, item: int, epoch: int) -> dict[str, Any]:
        clip_item, pair_item = self.items[item]
        rng = np.random.default_rng([self.seed, epoch, item])
        task = self.tasks[min(int(np.searchsorted(self._cdf, rng.random(), side="right")), len(self.tasks) - 1)]
        source = self.pairs if task == FLOW_TASK else self.clips
        index = pair_item if task == FLOW_TASK else clip_item
        x = source.get(index, epoch)
        r, j, _ = source.items[index]
        n, h, w = x["depth"].shape
        out: dict[str, Any] = {
            "task": task,
            "frames": torch.from_numpy(x["frames"]),
            "clip_index": self.clip_index(r, j),
            "flipped": bool(x["flipped"]),
            "image": torch.from_numpy(np.ascontiguousarray(x["rgb"].transpose(0, 3, 1, 2))),
            "K": torch.from_numpy(x["K"].astype(np.float32)),
        }
        if task == FLOW_TASK:
            flow, valid = x["flow_fwd"][0], x["valid_fwd"][0]
            target, prompt, decode = make_task_target(
                FLOW_TASK, {"flow": flow}, rng, flow_valid=valid, **self.target_options
            )
            out.update(
                target=torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1)))[None],
                prompt=prompt,
                frame_prompts=[prompt],
                decode=json.dumps(decode),
                flow=torch.from_numpy(flow),
                valid=torch.from_numpy(valid),
            )
            return out
        gt = {
            "depth": x["depth"].reshape(n * h, w),
            "normals": x["normals"].reshape(n * h, w, 3),
            "instance": x["instance"].reshape(n * h, w),
            "semantic": x["semantic"].reshape(n * h, w),
            "class_names": self.classes,
        }
        opts = {k: v for k, v in self.target_options.items() if k != "flip_x"}  # normals are mirrored already
        target, prompt, decode = make_task_target(task, gt, rng, **opts)
        frames_target = target.reshape(n, h, w, 3).transpose(0, 3, 1, 2)
        out.update(
            target=torch.from_numpy(np.ascontiguousarray(frames_target)),
            prompt=clip_prompt(prompt, n, rng),
            frame_prompts=frame_prompts(prompt, n),
            decode=json.dumps(decode),
        )
        return out
