"""numba kernels of the train loader: nearest-neighbour gathers of ground truth and fused target encoders. No torch
here.

Each has a plain-NumPy twin in tests/oracles/numpy_loader.py that the tests hold it to.
Ground truth is never blended: ``gather_nearest2``/``gather_nearest3`` copy, for every output pixel, the source
pixel its centre maps to (the rows/cols index arrays), optionally negating channel 0 (a camera-frame normal's x
under a mirror). ``cubewalk_planes``/``normals_planes`` gather and encode in one pass, writing a channel-first
uint8 (3, H, W) target, through the codecs' own row encoders (rgbify.encode.kernels.cubewalk_row and
normals_row: one encoder per codec).

Compiled on first call and cached on disk (``cache=True``); one core each (no ``parallel``), ``nogil``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rgbify.encode.kernels import cubewalk_row, normals_row

_OPTS = {"cache": True, "nogil": True}


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


@njit(**_OPTS)
def cubewalk_planes(depth, rows, cols, out):
    """Gather + encode, a row at a time: out uint8 (3, H, W) = the depth/cubewalk colour of depth[rows[i], cols[j]],
    channel-first (a depth item's target without image-sized intermediates; a row whose source row repeats the
    previous one is copied, as an enlarging crop does for up to 30 % of rows); equal to
    rgbify.encode.kernels.cubewalk_encode of the gathered depth, transposed. Returns the number of NaN or negative
    depths (the caller then takes the checked path, which raises)."""
    W = cols.shape[0]
    g = np.empty(W, dtype=np.float64)
    nbad = row_bad = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        if i > 0 and r == rows[i - 1]:  # an enlarged crop repeats source rows: copy the row just encoded
            _copy_row(out, i)
        else:
            for j in range(W):
                g[j] = depth[r, cols[j]]
            row_bad = cubewalk_row(g, out[0, i], out[1, i], out[2, i])
        nbad += row_bad
    return nbad


@njit(**_OPTS)
def normals_planes(normals, rows, cols, negate0, flip_x, out):
    """Gather + encode, a row at a time (a repeated source row copied): out uint8 (3, H, W) = the normals colour of
    normals[rows[i], cols[j]] (channel 0 negated first if ``negate0``, as gather_nearest3), channel-first; equal to
    rgbify.encode.kernels.normals_encode(gathered, flip_x), transposed. Returns the number of NaN or infinite
    normals."""
    W = cols.shape[0]
    g = np.empty((3, W), dtype=np.float64)
    sx = -1.0 if flip_x else 1.0
    nbad = row_bad = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        if i > 0 and r == rows[i - 1]:
            _copy_row(out, i)
        else:
            for j in range(W):
                c = cols[j]
                g[0, j] = np.float64(-normals[r, c, 0] + np.float32(0.0)) if negate0 else np.float64(normals[r, c, 0])
                g[1, j] = normals[r, c, 1]
                g[2, j] = normals[r, c, 2]
            row_bad = normals_row(g, sx, out[0, i], out[1, i], out[2, i])
        nbad += row_bad
    return nbad


@njit(**_OPTS)
def _copy_row(out, i):
    """Row i of a (3, H, W) target = row i - 1 (a repeated source row encodes to the same colours)."""
    for c in range(3):
        out[c, i] = out[c, i - 1]
