"""Plain-NumPy references of the numba kernels in :mod:`rgbify.datasets.kernels` (tests only; slow, clear).

The resize follows Pillow's ``Image.resize(size, Image.BILINEAR, box=...)`` for 8-bit images (libImaging
Resample.c): per axis a triangle filter of support 1 source pixel, widened by the scale when shrinking; weights
normalised to sum 1, then rounded to 22-bit fixed point; a horizontal pass (rounded to uint8), then a vertical pass.
"""

from __future__ import annotations

import numpy as np

PRECISION_BITS = 22


def resample_coeffs(in_size: int, in0: float, in1: float, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(bounds int64 (out, 2) = first source index and tap count, coeffs int64 (out, ksize)) of one axis."""
    scale = (in1 - in0) / out_size
    filterscale = max(scale, 1.0)
    support = filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    coeffs = np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = in0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        n = min(int(center + support + 0.5), in_size) - xmin
        w = [max(0.0, 1.0 - abs((x + xmin - center + 0.5) * (1.0 / filterscale))) for x in range(n)]
        ww = 0.0
        for v in w:  # summed in order, as Pillow does
            ww += v
        for x, v in enumerate(w):
            k = v / ww if ww != 0.0 else v
            coeffs[xx, x] = int(0.5 + k * (1 << PRECISION_BITS))  # k >= 0 for the triangle filter
        bounds[xx] = xmin, n
    return bounds, coeffs


def _pass(a: np.ndarray, bounds: np.ndarray, coeffs: np.ndarray, axis: int) -> np.ndarray:
    """One resampling pass along ``axis`` of a uint8 (h, w, 3) image, rounded and clipped to uint8."""
    a = np.moveaxis(a.astype(np.int64), axis, 0)
    out = np.empty((len(bounds), *a.shape[1:]), np.int64)
    for i, (start, n) in enumerate(bounds):
        out[i] = (1 << (PRECISION_BITS - 1)) + np.tensordot(coeffs[i, :n], a[start:start + n], axes=1)
    return np.moveaxis(np.clip(out >> PRECISION_BITS, 0, 255).astype(np.uint8), 0, axis)


def resize_rgb(rgb: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool) -> np.ndarray:
    """uint8 (h, w, 3): the window ``box`` (x0, y0, w, h) resized to ``size`` (W, H), mirrored if ``flip``."""
    (x0, y0, cw, ch), (W, H) = box, size
    h, w = rgb.shape[:2]
    xb, xk = resample_coeffs(w, float(x0), float(x0 + cw), W)
    yb, yk = resample_coeffs(h, float(y0), float(y0 + ch), H)
    out = _pass(_pass(rgb, xb, xk, axis=1), yb, yk, axis=0)
    return out[:, ::-1] if flip else out


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W) = x / 127.5 - 1 in float32."""
    return rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def gather_nearest(src: np.ndarray, rows: np.ndarray, cols: np.ndarray, negate0: bool = False) -> np.ndarray:
    """src[rows][:, cols] of a (h, w) or (h, w, C) array; ``negate0`` negates channel 0 (+ 0.0: no -0.0)."""
    out = src[np.ix_(rows, cols)].copy()
    if negate0:
        out[..., 0] = -out[..., 0] + 0.0
    return out


def cubewalk_unit(depth: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, int]:
    """(float32 (3, H, W) target, bad count) of a depth item: gather, depth/cubewalk encode, x / 127.5 - 1."""
    from rgbify.encode import reference as enc

    rgb, nbad, _ = enc.cubewalk_encode(gather_nearest(depth, rows, cols), None)
    return to_unit(rgb), nbad


def normals_unit(normals: np.ndarray, rows: np.ndarray, cols: np.ndarray, negate0: bool, flip_x: bool
                 ) -> tuple[np.ndarray, int]:
    """(float32 (3, H, W) target, bad count) of a normals item: gather (channel 0 negated if ``negate0``),
    normals encode with ``flip_x``, x / 127.5 - 1."""
    from rgbify.encode import reference as enc

    rgb, nbad, _ = enc.normals_encode(gather_nearest(normals, rows, cols, negate0), flip_x)
    return to_unit(rgb), nbad
