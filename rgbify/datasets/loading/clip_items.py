"""``ClipItems``: items of T frames (or frame pairs for flow) drawn from clip shards (rgbify.datasets.storage.clips),
with one geometric augmentation for every frame of an item. NumPy only (no torch): a trainer for video models
turns the arrays into tensors; docs/video.md.

One view per item: a random crop (scale in ``crop_scale`` of each side, aspect kept), a resize to ``size`` (RGB
bilinear, Pillow; ground truth nearest: the stored pixel under each output pixel's centre, as the stills' loader),
and a horizontal flip with probability ``flip_prob``. What each field does under the view:

- depth, instance, semantic, edge: sampled, values unchanged; valid and occlusion masks: sampled, and false
  where the pixel's flow now lands outside the cropped image (out of the item's view);
- flow (u, v): sampled, then scaled by the resize (u * W / crop width, v * H / crop height); under the flip
  u is negated (the image mirrors, so a displacement to the right becomes one to the left);
- normals and scene flow (camera frame): sampled; under the flip their x is negated (the mirrored image is what a
  camera with its x axis reversed would see);
- K: cx, cy shifted and scaled with the crop and resize, fx, fy scaled; under the flip cx becomes W - 1 - cx;
- world_from_camera: as stored; a flipped item's camera frame is that pose's with x reversed
  (``world_from_camera @ diag(-1, 1, 1, 1)``, a mirror), which is what makes its flow, normals and K agree.

Kinds of items: ``"clip"``: T frames ``start, start + stride, ...`` of one clip (flow fields only with stride 1:
the stored flow runs between consecutive frames of the clip); ``"pair"``: frames t and t + 1 with the forward flow,
masks and scene flow of frame t (and the backward ones of frame t + 1). Item ``i`` in epoch ``e`` draws from
``numpy.random.default_rng([seed, e, i])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from rgbify.datasets.storage.clips import ClipShardReader

NEAREST_FIELDS = ("depth", "normals", "instance", "semantic", "edge")
FLOW_SETS = {
    "fwd": ("flow_fwd", "valid_fwd", "occluded_fwd", "scene_flow_fwd"),
    "bwd": ("flow_bwd", "valid_bwd", "occluded_bwd", "scene_flow_bwd"),
}


@dataclass(frozen=True)
class ClipView:
    """One item's geometry: crop ``box`` (x0, y0, width, height) of the stored (h, w) frames, output ``size``
    (W, H), mirrored or not."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]
    flip: bool

    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """Source row of each output row and source column of each output column (mirrored if flipped)."""
        (x0, y0, cw, ch), (w, h) = self.box, self.size
        rows = y0 + np.minimum(((np.arange(h) + 0.5) * ch / h).astype(np.intp), ch - 1)
        cols = x0 + np.minimum(((np.arange(w) + 0.5) * cw / w).astype(np.intp), cw - 1)
        return rows, (cols[::-1].copy() if self.flip else cols)

    def sample(self, a: np.ndarray) -> np.ndarray:
        """Nearest sampling of an (h, w, ...) array."""
        rows, cols = self.nearest()
        return a[rows[:, None], cols[None, :]]

    def rgb(self, rgb: np.ndarray) -> np.ndarray:
        (x0, y0, cw, ch), (w, h) = self.box, self.size
        if (cw, ch) == (w, h):
            out = rgb[y0 : y0 + ch, x0 : x0 + cw]
        else:
            out = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))
        return np.ascontiguousarray(out[:, ::-1] if self.flip else out)

    def flow(self, flow: np.ndarray) -> np.ndarray:
        (_, _, cw, ch), (w, h) = self.box, self.size
        out = self.sample(flow).astype(np.float32) * np.array([w / cw, h / ch], np.float32)
        if self.flip:
            out[..., 0] *= -1
        return out

    def vectors(self, v: np.ndarray) -> np.ndarray:
        """Camera-frame vectors (normals, scene flow): sampled, x negated under the flip."""
        out = self.sample(v).astype(np.float32)
        if self.flip:
            out[..., 0] *= -1
        return out

    def K(self, k: np.ndarray) -> np.ndarray:  # noqa: N802 - the intrinsics' usual name
        (x0, y0, cw, ch), (w, h) = self.box, self.size
        sx, sy = w / cw, h / ch
        out = np.array(k, dtype=np.float64)
        out[0, 0], out[1, 1] = k[0, 0] * sx, k[1, 1] * sy
        out[0, 2], out[1, 2] = (k[0, 2] - x0 + 0.5) * sx - 0.5, (k[1, 2] - y0 + 0.5) * sy - 0.5
        if self.flip:
            out[0, 2] = w - 1 - out[0, 2]
        return out


def _lands_inside(flow: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: each pixel moved by its flow lands within the (cropped) image's outer pixel edges."""
    h, w = flow.shape[1:3]
    ii, jj = np.mgrid[0:h, 0:w]
    x, y = jj + flow[..., 0], ii + flow[..., 1]
    return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


class ClipItems:
    """Items drawn from clip shard files: ``kind`` "clip" (``frames`` frames ``stride`` apart) or "pair"."""

    def __init__(
        self,
        shards: Sequence[str | Path],
        *,
        kind: Literal["clip", "pair"] = "clip",
        frames: int = 4,
        stride: int = 1,
        size: tuple[int, int] | None = None,
        crop_scale: tuple[float, float] = (1.0, 1.0),
        flip_prob: float = 0.0,
        seed: int = 0,
    ):
        if kind not in ("clip", "pair"):
            raise ValueError(f"kind {kind!r} must be 'clip' or 'pair'")
        if frames < 1 or stride < 1:
            raise ValueError(f"frames ({frames}) and stride ({stride}) must be >= 1")
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale {list(crop_scale)} must satisfy 0 < low <= high <= 1")
        self.readers = [ClipShardReader(p) for p in shards]
        self.kind, self.frames, self.stride = kind, (2 if kind == "pair" else frames), stride
        self.size, self.crop_scale, self.flip_prob, self.seed = size, crop_scale, flip_prob, seed
        self.epoch = 0
        span = 1 if kind == "pair" else (frames - 1) * stride
        self.items: list[tuple[int, int, int]] = []  # (reader, clip, first frame)
        for r, reader in enumerate(self.readers):
            starts = reader.frames - span
            self.items += [(r, j, s) for j in range(len(reader)) for s in range(max(starts, 0))]

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def close(self) -> None:
        for r in self.readers:
            r.close()

    def view(self, rng: np.random.Generator, shape: tuple[int, int]) -> ClipView:
        h, w = shape
        s = float(rng.uniform(*self.crop_scale))
        cw, ch = max(1, round(s * w)), max(1, round(s * h))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        flip = bool(rng.random() < self.flip_prob)
        return ClipView((x0, y0, cw, ch), self.size or (w, h), flip)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.get(i, self.epoch)

    def get(self, i: int, epoch: int) -> dict[str, Any]:
        r, j, start = self.items[i]
        reader = self.readers[r]
        rng = np.random.default_rng([self.seed, epoch, i])
        ts = [start, start + 1] if self.kind == "pair" else [start + k * self.stride for k in range(self.frames)]
        raw = [reader.frame(j, t) for t in ts]
        view = self.view(rng, raw[0]["depth"].shape)
        out: dict[str, Any] = {"frames": np.array(ts), "clip": j, "flipped": view.flip, "box": view.box}
        out["rgb"] = np.stack([view.rgb(f["rgb"]) for f in raw])
        for name in NEAREST_FIELDS:
            out[name] = np.stack([view.vectors(f[name]) if name == "normals" else view.sample(f[name]) for f in raw])
        out["K"] = np.stack([view.K(f["K"]) for f in raw])
        out["world_from_camera"] = np.stack([f["world_from_camera"] for f in raw])
        if self.kind == "pair" or self.stride == 1:
            for d, names in FLOW_SETS.items():
                flow, valid, occluded, scene = names
                out[flow] = np.stack([view.flow(f[flow]) for f in raw])
                inside = _lands_inside(out[flow])
                out[valid] = np.stack([view.sample(f[valid]) for f in raw]) & inside
                out[occluded] = np.stack([view.sample(f[occluded]) for f in raw]) & inside
                out[scene] = np.stack([view.vectors(f[scene]) for f in raw])
                if self.kind == "clip":  # the last frame's forward (first frame's backward) leaves the item
                    out[valid][-1 if d == "fwd" else 0] = False
        return out
