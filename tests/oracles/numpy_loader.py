"""Test oracles: plain-NumPy twins of the training loader's numba kernels, and the Pillow path of its augmented
view (slow, clear; never shipped)."""

from __future__ import annotations

from typing import Any

import numpy as np


def gather_nearest(src: np.ndarray, rows: np.ndarray, cols: np.ndarray, negate0: bool = False) -> np.ndarray:
    """src[rows][:, cols] of a (h, w) or (h, w, C) array; ``negate0`` negates channel 0 (+ 0.0: no -0.0)."""
    out = src[np.ix_(rows, cols)].copy()
    if negate0:
        out[..., 0] = -out[..., 0] + 0.0
    return out


def cubewalk_planes(depth: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, int]:
    """(uint8 (3, H, W) target, bad count) of a depth item: gather, depth/cubewalk encode, channel-first."""
    from oracles import numpy_codecs as enc

    rgb, nbad, _ = enc.cubewalk_encode(gather_nearest(depth, rows, cols), None)
    return rgb.transpose(2, 0, 1), nbad


def normals_planes(normals: np.ndarray, rows: np.ndarray, cols: np.ndarray, negate0: bool, flip_x: bool
                   ) -> tuple[np.ndarray, int]:
    """(uint8 (3, H, W) target, bad count) of a normals item: gather (channel 0 negated if ``negate0``), normals
    encode with ``flip_x``, channel-first."""
    from oracles import numpy_codecs as enc

    rgb, nbad, _ = enc.normals_encode(gather_nearest(normals, rows, cols, negate0), flip_x)
    return rgb.transpose(2, 0, 1), nbad


def unshuffle(raw: np.ndarray, size: int) -> np.ndarray:
    """HDF5's byte shuffle undone: uint8 (n * size,) grouped by byte position -> the n elements' bytes in order."""
    return raw.reshape(size, -1).T.reshape(-1).copy()


def pillow_view(rgb: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool) -> np.ndarray:
    """Pillow's version of the loader's RGB view: crop ``box`` (x0, y0, w, h) of an sRGB uint8 image, resize it to
    ``size`` (bilinear), mirror it if ``flip``; uint8 (H,W,3)."""
    from PIL import Image

    x0, y0, cw, ch = box
    im = Image.fromarray(rgb).crop((x0, y0, x0 + cw, y0 + ch))
    if size != (cw, ch):
        im = im.resize(size, Image.BILINEAR)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.array(im)


def augment(ds: Any, s: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The augmented view of a stored sample as a TaskDataset ``ds`` draws it (same rng draws, same geometry):
    uint8 (H,W,3) RGB by Pillow plus the gathered ground truth, what an item is tested against."""
    view = ds._view(s["rgb"].shape[:2], rng)
    gt = ds._gather(s, view)
    gt["rgb"] = pillow_view(s["rgb"], view.box, view.size, view.flip)
    return gt
