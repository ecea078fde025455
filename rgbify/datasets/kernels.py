"""numba kernels of the train loader's augmentation (crop, resize, flip, uint8 -> float). No torch here.

Each has a plain-NumPy twin in :mod:`rgbify.datasets.reference` that tests hold it to (tests/test_datasets_kernels.py);
the RGB resize is also held to Pillow, whose ``Image.resize(size, BILINEAR, box=...)`` it reproduces bit for bit:

- ``resample_coeffs`` computes Pillow's triangle-filter taps for one axis (support 1 source pixel, widened by the
  scale when shrinking, so downscaling is antialiased), in double precision, then in 22-bit fixed point;
- ``resize_rgb_to_unit`` runs Pillow's two passes (horizontal into a uint8 row buffer, then vertical) with its
  integer rounding, and writes the result mirrored if asked, straight into a float32 (3, H, W) array in [-1, 1]
  through a 256-entry table (the same float32 values as ``torch.float(x) / 127.5 - 1``).

Ground truth is never blended: ``gather_nearest2``/``gather_nearest3`` copy, for every output pixel, the source
pixel its centre maps to (the rows/cols index arrays), optionally negating channel 0 (a camera-frame normal's x
under a mirror).

Compiled on first call and cached on disk (``cache=True``); one core each (no ``parallel``), ``nogil``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

PRECISION_BITS = 32 - 8 - 2
"""Pillow's fixed-point precision of 8-bit resampling weights."""

UNIT_LUT = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
"""uint8 value -> float32 in [-1, 1], computed in float32 exactly as torch does ``x.float().div_(127.5).sub_(1)``."""

_OPTS = {"cache": True, "nogil": True}
_VEC = {**_OPTS, "error_model": "numpy"}
"""Row kernels: NumPy's error model (a float division by zero gives inf instead of raising), which lets LLVM
vectorise their loops (with Python's model every division carries a branch); their selects discard such values."""


@njit(**_OPTS)
def _triangle(x):
    if x < 0.0:
        x = -x
    if x < 1.0:
        return 1.0 - x
    return 0.0


@njit(**_OPTS)
def resample_coeffs(in_size, in0, in1, out_size):
    """Pillow's bilinear taps for one axis: output ``i`` = sum_k coeffs[i, k] src[bounds[i, 0] + k] for k <
    bounds[i, 1], source window [in0, in1) of an axis of ``in_size`` pixels. Returns (bounds int64 (out, 2),
    coeffs int64 (out, ksize) in units of 2^-22, the window's float64 weights rounded as Pillow rounds them)."""
    scale = (in1 - in0) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int64)
    coeffs = np.zeros((out_size, ksize), dtype=np.int64)
    w = np.zeros(ksize, dtype=np.float64)
    ss = 1.0 / filterscale
    one = float(1 << PRECISION_BITS)
    for xx in range(out_size):
        center = in0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ww = 0.0
        for x in range(xmax):
            w[x] = _triangle((x + xmin - center + 0.5) * ss)
            ww += w[x]
        for x in range(xmax):
            k = w[x] / ww if ww != 0.0 else w[x]
            coeffs[xx, x] = int(0.5 + k * one) if k >= 0 else int(-0.5 + k * one)
        bounds[xx, 0] = xmin
        bounds[xx, 1] = xmax
    return bounds, coeffs


@njit(**_OPTS)
def _fixed_taps(bounds, coeffs, in_size):
    """The taps of :func:`resample_coeffs` as (index, int32 weight) arrays with one tap count for every output:
    only as many taps as carry weight somewhere (upscaling: 2 of Pillow's 3, its last weighs 0 everywhere); past
    an output's own taps the weight is 0 at a valid index."""
    n_out = bounds.shape[0]
    kx = 0
    for i in range(n_out):
        for k in range(bounds[i, 1]):
            if coeffs[i, k] != 0:
                kx = max(kx, k + 1)
    idx = np.empty((n_out, kx), dtype=np.int64)
    wt = np.zeros((n_out, kx), dtype=np.int32)
    for i in range(n_out):
        for k in range(kx):
            idx[i, k] = min(bounds[i, 0] + k, in_size - 1)
            if k < bounds[i, 1]:
                wt[i, k] = np.int32(coeffs[i, k])
    return idx, wt


@njit(**_OPTS)
def _horizontal_row(rgb, y, xi, xc, row):
    """Source row ``y`` of uint8 (h, w, 3) resampled along x into int32 ``row`` (W * 3), rounded to 0..255."""
    n_w, kx = xi.shape
    half = np.int32(1 << (PRECISION_BITS - 1))
    if kx == 2:  # upscaling, the loader's usual case: the two taps unrolled
        src = rgb[y]
        for xx in range(n_w):
            a, b = xi[xx, 0], xi[xx, 1]
            ca, cb = xc[xx, 0], xc[xx, 1]
            s0 = half + np.int32(src[a, 0]) * ca + np.int32(src[b, 0]) * cb
            s1 = half + np.int32(src[a, 1]) * ca + np.int32(src[b, 1]) * cb
            s2 = half + np.int32(src[a, 2]) * ca + np.int32(src[b, 2]) * cb
            row[3 * xx] = min(max(s0 >> PRECISION_BITS, 0), 255)
            row[3 * xx + 1] = min(max(s1 >> PRECISION_BITS, 0), 255)
            row[3 * xx + 2] = min(max(s2 >> PRECISION_BITS, 0), 255)
        return
    for xx in range(n_w):
        s0 = half
        s1 = half
        s2 = half
        for k in range(kx):
            c = xc[xx, k]
            x = xi[xx, k]
            s0 += np.int32(rgb[y, x, 0]) * c
            s1 += np.int32(rgb[y, x, 1]) * c
            s2 += np.int32(rgb[y, x, 2]) * c
        row[3 * xx] = min(max(s0 >> PRECISION_BITS, 0), 255)
        row[3 * xx + 1] = min(max(s1 >> PRECISION_BITS, 0), 255)
        row[3 * xx + 2] = min(max(s2 >> PRECISION_BITS, 0), 255)


@njit(**_OPTS)
def resize_rgb_to_unit(rgb, xb, xk, yb, yk, flip, lut, out):
    """uint8 (h, w, 3) -> out float32 (3, H, W): Pillow's two-pass resample with taps (xb, xk) along x and
    (yb, yk) along y (from :func:`resample_coeffs`), mirrored left-right if ``flip``, mapped through ``lut``.

    Sums are int32 as in Pillow (weights sum to about 2^22, so 255 of them stay below 2^31). Horizontally
    resampled rows are kept in a small ring (an output row's window only moves down), so no image-sized buffer
    is allocated; the vertical pass runs along whole rows (contiguous: vectorised); zero-weight taps are skipped."""
    H, W = out.shape[1], out.shape[2]
    xi, xc = _fixed_taps(xb, xk, rgb.shape[1])
    ring = yk.shape[1]
    rows = np.empty((ring, W * 3), dtype=np.int32)
    tag = np.full(ring, -1, dtype=np.int64)
    half = np.int32(1 << (PRECISION_BITS - 1))
    acc = np.empty(W * 3, dtype=np.int32)
    for yy in range(H):
        acc[:] = half
        for k in range(yb[yy, 1]):
            c = np.int32(yk[yy, k])
            if c == 0:
                continue
            y = yb[yy, 0] + k
            slot = y % ring
            if tag[slot] != y:
                _horizontal_row(rgb, y, xi, xc, rows[slot])
                tag[slot] = y
            src = rows[slot]
            for m in range(W * 3):
                acc[m] += src[m] * c
        for ch in range(3):
            plane = out[ch, yy]
            for xx in range(W):
                v = lut[min(max(acc[3 * xx + ch] >> PRECISION_BITS, 0), 255)]
                if flip:
                    plane[W - 1 - xx] = v
                else:
                    plane[xx] = v


@njit(**_OPTS)
def crop_rgb_to_unit(rgb, y0, x0, flip, lut, out):
    """uint8 (h, w, 3) -> out float32 (3, H, W): the H x W window at (y0, x0), mirrored if ``flip``, via lut."""
    H, W = out.shape[1], out.shape[2]
    for yy in range(H):
        for xx in range(W):
            xo = W - 1 - xx if flip else xx
            for c in range(3):
                out[c, yy, xo] = lut[rgb[y0 + yy, x0 + xx, c]]


@njit(**_OPTS)
def rgb_to_unit(rgb, lut, out):
    """uint8 (H, W, 3) -> out float32 (3, H, W) = lut[rgb] channel-first."""
    H, W = out.shape[1], out.shape[2]
    for yy in range(H):
        for xx in range(W):
            for c in range(3):
                out[c, yy, xx] = lut[rgb[yy, xx, c]]


@njit(**_OPTS)
def gather_nearest2(src, rows, cols, out):
    """out (H, W)[i, j] = src[rows[i], cols[j]] of a (h, w) array."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(cols.shape[0]):
            out[i, j] = src[r, cols[j]]


@njit(**_OPTS)
def gather_nearest3(src, rows, cols, negate0, out):
    """out (H, W, C)[i, j] = src[rows[i], cols[j]] of a (h, w, C) array; with ``negate0`` channel 0 is negated
    (+ 0.0, so that no -0.0 appears)."""
    n_c = src.shape[2]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(cols.shape[0]):
            c0 = cols[j]
            for c in range(n_c):
                out[i, j, c] = src[r, c0, c]
            if negate0:
                out[i, j, 0] = -out[i, j, 0] + 0.0


@njit(**_VEC)
def _unit(v):
    """An integer colour value 0..255 held in a float64 -> float32 in [-1, 1], the same float32 as UNIT_LUT[v]."""
    return np.float32(v) / np.float32(127.5) - np.float32(1.0)


@njit(**_VEC)
def _cubewalk_row(g, o0, o1, o2):
    """Planes o0, o1, o2 (W,) = the depth/cubewalk colours of float64 depths ``g`` (W,) through _unit. The
    arithmetic of rgbify.encode.kernels.cubewalk_encode without its branches (the edge's channel values are
    selected, f(+inf) = 1 falls out of the formula), so the loop vectorises. Returns the NaN/negative count."""
    nbad = 0
    for j in range(g.shape[0]):
        d = g[j]
        good = d >= 0.0
        nbad += np.int64(not good)
        x = 1.0 + d / 10.0
        f = 1.0 - 1.0 / (x * x) if good else 1.0
        p = 7.0 * f
        fl = np.floor(p)
        k = 6.0 if fl > 6.0 else fl
        t = (p - k) * 255.0
        up = np.floor(t + 0.5)
        dn = np.floor(255.0 - t + 0.5)
        # edges V0..V7: R rises on 0 and 5, falls on 2; G rises on 1 and 6, falls on 4; B rises on 3
        r = up if k == 0.0 else (255.0 if k == 1.0 else (dn if k == 2.0 else (0.0 if k <= 4.0 else (
            up if k == 5.0 else 255.0))))
        gg = 0.0 if k == 0.0 else (up if k == 1.0 else (255.0 if k <= 3.0 else (dn if k == 4.0 else (
            0.0 if k == 5.0 else up))))
        b = 0.0 if k <= 2.0 else (up if k == 3.0 else 255.0)
        o0[j] = _unit(r)
        o1[j] = _unit(gg)
        o2[j] = _unit(b)
    return nbad


@njit(**_OPTS)
def cubewalk_unit(depth, rows, cols, out):
    """Gather + encode + convert, a row at a time: out float32 (3, H, W) = the depth/cubewalk colour of
    depth[rows[i], cols[j]] as x / 127.5 - 1, channel-first (a depth item's target without image-sized
    intermediates); equal to rgbify.encode.kernels.cubewalk_encode of the gathered depth, then UNIT_LUT. Returns
    the number of NaN or negative depths (the caller then takes the checked path, which raises)."""
    W = cols.shape[0]
    g = np.empty(W, dtype=np.float64)
    nbad = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(W):
            g[j] = depth[r, cols[j]]
        nbad += _cubewalk_row(g, out[0, i], out[1, i], out[2, i])
    return nbad


@njit(**_VEC)
def _normals_row(g, sx, o0, o1, o2):
    """Planes o0, o1, o2 (W,) = normals colours of float64 OpenCV normals ``g`` (3, W) through _unit: the
    arithmetic of rgbify.encode.kernels.normals_encode (``sx`` = -1 for flip_x) with its branches turned into
    selects (zero-length, NaN or infinite normals select black), so the loop vectorises. Returns the NaN/infinite
    count."""
    nbad = 0
    for j in range(g.shape[1]):
        x = g[0, j]
        y = -g[1, j]
        z = -g[2, j]
        nn = x * x + y * y + z * z
        finite = nn < math.inf  # False for NaN too
        nbad += np.int64(not finite)
        ok = finite & (nn >= 1e-12)
        s = 1.0 / math.sqrt(nn if ok else 1.0)
        r = np.floor((sx * (x * s) + 1.0) * 0.5 * 255.0 + 0.5)
        gg = np.floor((y * s + 1.0) * 0.5 * 255.0 + 0.5)
        b = np.floor((z * s + 1.0) * 0.5 * 255.0 + 0.5)
        o0[j] = _unit(r if ok else 0.0)
        o1[j] = _unit(gg if ok else 0.0)
        o2[j] = _unit(b if ok else 0.0)
    return nbad


@njit(**_OPTS)
def normals_unit(normals, rows, cols, negate0, flip_x, out):
    """Gather + encode + convert, a row at a time: out float32 (3, H, W) = the normals colour of
    normals[rows[i], cols[j]] (channel 0 negated first if ``negate0``, as gather_nearest3) as x / 127.5 - 1,
    channel-first; equal to rgbify.encode.kernels.normals_encode(gathered, flip_x), then UNIT_LUT. Returns the
    number of NaN or infinite normals."""
    W = cols.shape[0]
    g = np.empty((3, W), dtype=np.float64)
    sx = -1.0 if flip_x else 1.0
    nbad = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(W):
            c = cols[j]
            g[0, j] = np.float64(-normals[r, c, 0] + np.float32(0.0)) if negate0 else np.float64(normals[r, c, 0])
            g[1, j] = normals[r, c, 1]
            g[2, j] = normals[r, c, 2]
        nbad += _normals_row(g, sx, out[0, i], out[1, i], out[2, i])
    return nbad
