"""numba kernels of the codecs: one encoder and one decoder per codec. Each has a plain-NumPy twin written straight
from the formulas (tests/oracles/numpy_codecs.py) that the tests hold it to.

Kernels are compiled on first call and cached on disk (``cache=True``), so a warm process loads them instead of
compiling. They run on one core (no ``parallel``). Encoders also validate in the same pass: they return the
number of bad input pixels and the flat index of the first one, and the caller raises.

Rounding is ``floor(x + 0.5)`` everywhere (NumPy's ``rint`` rounds half to even, which the formulas do not say).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

QMAX = (1 << 24) - 1
"""Largest hilbert24 index: the far code (d >= d_max or nothing hit)."""

CUBE_VERTICES = np.array(
    [[0, 0, 0], [255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255], [255, 255, 255]],
    dtype=np.float64,
)
"""V0..V7 of depth/cubewalk: black, red, yellow, green, cyan, blue, magenta, white."""

NORMALS_NONE_RADIUS = 46
"""Normals targets: a colour nearer than this to black decodes as no surface. Every unit normal's colour
127.5 (v + 1) lies on the sphere of radius 127.5 about mid-grey, whose nearest point to black is 93.3 away
(v = -(1, 1, 1)/sqrt 3), so the radius splits that gap in half."""

_OPTS = {"cache": True, "nogil": True}
_VEC = {**_OPTS, "error_model": "numpy"}
"""Row kernels: NumPy's error model (a float division by zero gives inf instead of raising), which lets LLVM
vectorise their loops (with Python's model every division carries a branch); their selects discard such values."""


@njit(**_OPTS)
def _walk_value(d):
    """Barron power transform f(d) = 1 - (1 + d/10)^-2 (f(inf) = 1)."""
    if d == math.inf:
        return 1.0
    x = 1.0 + d / 10.0
    return 1.0 - 1.0 / (x * x)


@njit(**_OPTS)
def _walk_depth(f):
    """Inverse of :func:`_walk_value`: d = 10 ((1 - f)^(-1/2) - 1); f >= 1 gives +inf."""
    if f >= 1.0:
        return math.inf
    return 10.0 * (1.0 / math.sqrt(1.0 - f) - 1.0)


@njit(**_VEC)
def cubewalk_row(d, o0, o1, o2):
    """The depth/cubewalk colours of one row: uint8 planes o0, o1, o2 (W,) of float64 depths ``d`` (W,) in metres
    (+inf = nothing hit). Returns the number of NaN or negative depths (encoded as nothing hit).

    colour = round(V_k + t (V_k+1 - V_k)) with p = 7 f(d), k = min(floor(p), 6), t = p - k: along edge k only one
    channel changes, by +-255, computed exactly as t 255 or 255 - t 255. Branch-free (the edge's channel values
    are selected; f(+inf) = 1 falls out of the formula), so the loop vectorises. The one cubewalk encoder: the
    image encoder below and the training loader's fused gather-and-encode kernels (rgbify.datasets) call it."""
    nbad = 0
    for j in range(d.shape[0]):
        x0 = d[j]
        good = x0 >= 0.0
        nbad += np.int64(not good)
        x = 1.0 + x0 / 10.0
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
        g = 0.0 if k == 0.0 else (up if k == 1.0 else (255.0 if k <= 3.0 else (dn if k == 4.0 else (
            0.0 if k == 5.0 else up))))
        b = 0.0 if k <= 2.0 else (up if k == 3.0 else 255.0)
        o0[j] = np.uint8(r)
        o1[j] = np.uint8(g)
        o2[j] = np.uint8(b)
    return nbad


@njit(**_OPTS)
def _first_bad(d):
    """Index of the first NaN or negative value of a row (-1 if none)."""
    for j in range(d.shape[0]):
        if not d[j] >= 0.0:
            return j
    return -1


@njit(**_OPTS)
def cubewalk_encode(depth, valid, use_valid, out):
    """depth float (H,W) metres -> out uint8 (H,W,3), a row at a time through :func:`cubewalk_row` (pixels where
    ``use_valid`` and not ``valid`` encode as nothing hit). Returns (bad pixel count, first bad flat index or -1)."""
    h, w = depth.shape
    row = np.empty(w, dtype=np.float64)
    planes = np.empty((3, w), dtype=np.uint8)
    nbad = 0
    first = -1
    for i in range(h):
        for j in range(w):
            row[j] = np.float64(depth[i, j]) if not use_valid or valid[i, j] else math.inf
        bad = cubewalk_row(row, planes[0], planes[1], planes[2])
        if bad and nbad == 0:
            first = i * w + _first_bad(row)
        nbad += bad
        for j in range(w):
            out[i, j, 0] = planes[0, j]
            out[i, j, 1] = planes[1, j]
            out[i, j, 2] = planes[2, j]
    return nbad, first


@njit(**_OPTS)
def cubewalk_decode(rgb, out):
    """uint8 (H,W,3) -> out float32 (H,W) metres: nearest point on the polyline V0..V7, +inf at white.

    Every edge of the walk runs along one axis across the full 0..255 range, so the foot of the perpendicular
    from any colour lies on the edge and its squared distance is the exact integer sum over the two fixed axes.
    """
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            r = np.int64(rgb[i, j, 0])
            g = np.int64(rgb[i, j, 1])
            b = np.int64(rgb[i, j, 2])
            r0, g0, b0 = r * r, g * g, b * b
            r1, g1, b1 = (255 - r) * (255 - r), (255 - g) * (255 - g), (255 - b) * (255 - b)
            # (distance, position along the walk in 1/255 steps) for edges 0..6
            best, pos = g0 + b0, r
            if r1 + b0 < best:
                best, pos = r1 + b0, 255 + g
            if g1 + b0 < best:
                best, pos = g1 + b0, 510 + (255 - r)
            if r0 + g1 < best:
                best, pos = r0 + g1, 765 + b
            if r0 + b1 < best:
                best, pos = r0 + b1, 1020 + (255 - g)
            if g0 + b1 < best:
                best, pos = g0 + b1, 1275 + r
            if r1 + b1 < best:
                best, pos = r1 + b1, 1530 + g
            out[i, j] = np.float32(_walk_depth(pos / 1785.0))


@njit(**_OPTS)
def _power(x, e):
    """x ** e with the common exponents done exactly as NumPy's ``array ** scalar`` does them."""
    if e == 1.0:
        return x
    if e == 0.5:
        return math.sqrt(x)
    if e == 2.0:
        return x * x
    return x**e


HILBERT_BLOCK_LEVELS = 4
"""The hilbert kernels walk the curve 4 levels (12 index bits, 4 bits per channel) per table step: 2 steps."""


@njit(**_OPTS)
def hilbert_encode(depth, valid, use_valid, d_max, gamma, coords, next_state, out):
    """depth float (H,W) metres -> out uint8 (H,W,3) along Skilling's order-8 curve. Returns (nbad, first).

    ``coords``/``next_state`` are :func:`rgbify.encode.hilbert.block_tables` for 4 levels (HILBERT_BLOCK_LEVELS).
    Works a row at a time: first the indices (arithmetic), then the table walk (loads), which keeps both loops
    short enough for the CPU to overlap pixels.
    """
    h, w = depth.shape
    nbad = 0
    first = -1
    qrow = np.empty(w, dtype=np.int64)
    for i in range(h):
        for j in range(w):
            d = np.float64(depth[i, j])
            if use_valid and not valid[i, j]:
                q = QMAX
            elif not d >= 0.0:
                if nbad == 0:
                    first = i * w + j
                nbad += 1
                q = QMAX
            elif d >= d_max:
                q = QMAX
            else:
                q = int(math.floor(_power(d / d_max, gamma) * QMAX + 0.5))
            qrow[j] = q
        for j in range(w):
            q = qrow[j]
            top = q >> 12
            c1 = np.int64(coords[0, top])
            c2 = np.int64(coords[next_state[0, top], q & 4095])
            out[i, j, 0] = ((c1 >> 8) << 4) | (c2 >> 8)
            out[i, j, 1] = (((c1 >> 4) & 15) << 4) | ((c2 >> 4) & 15)
            out[i, j, 2] = ((c1 & 15) << 4) | (c2 & 15)
    return nbad, first


@njit(**_OPTS)
def _hilbert_q(r, g, b, rank, next_state):
    top = np.int64(rank[0, ((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4)])
    low = np.int64(rank[next_state[0, top], ((r & 15) << 8) | ((g & 15) << 4) | (b & 15)])
    return (top << 12) | low


@njit(**_OPTS)
def hilbert_index(rgb, rank, next_state, out):
    """uint8 (H,W,3) -> out uint32 (H,W): the Hilbert index of each colour (4-level block tables)."""
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            out[i, j] = _hilbert_q(np.int64(rgb[i, j, 0]), np.int64(rgb[i, j, 1]), np.int64(rgb[i, j, 2]), rank,
                                   next_state)


@njit(**_OPTS)
def hilbert_decode(rgb, d_max, gamma, rank, next_state, out):
    """uint8 (H,W,3) -> out float32 (H,W) metres: d = d_max (q / (2^24 - 1))^(1 / gamma)."""
    h, w = out.shape
    inv_gamma = 1.0 / gamma
    for i in range(h):
        for j in range(w):
            q = _hilbert_q(np.int64(rgb[i, j, 0]), np.int64(rgb[i, j, 1]), np.int64(rgb[i, j, 2]), rank,
                           next_state)
            out[i, j] = np.float32(d_max * _power(q / QMAX, inv_gamma))


@njit(**_OPTS)
def colormap_encode(depth, valid, use_valid, lut, out):
    """depth float (H,W) -> out uint8 (H,W,3) = lut[round(255 f(d))]. Returns (nbad, first)."""
    h, w = depth.shape
    nbad = 0
    first = -1
    for i in range(h):
        for j in range(w):
            d = np.float64(depth[i, j])
            if use_valid and not valid[i, j]:
                f = 1.0
            elif not d >= 0.0:
                if nbad == 0:
                    first = i * w + j
                nbad += 1
                f = 1.0
            else:
                f = _walk_value(d)
            k = int(math.floor(f * 255.0 + 0.5))
            for c in range(3):
                out[i, j, c] = lut[k, c]
    return nbad, first


@njit(**_OPTS)
def colormap_decode(rgb, lut, run_centre, cell_start, cell_entries, cell_shift, out):
    """uint8 (H,W,3) -> out float32 (H,W) metres via the nearest entry of lut (int64 (256,3)), refined on the
    adjacent table segments. An entry repeated in a run of equal entries decodes to the run's centre
    (``run_centre[k]``, = k for entries that are not repeated). ``cell_start``/``cell_entries`` list, per
    colour cell (``cell_shift`` low bits per channel dropped), the entries that can be nearest to a colour in
    it (ascending), so the search scans a few entries instead of 256."""
    h, w = out.shape
    n = lut.shape[0]
    cbits = 8 - cell_shift
    for i in range(h):
        for j in range(w):
            r = np.int64(rgb[i, j, 0])
            g = np.int64(rgb[i, j, 1])
            b = np.int64(rgb[i, j, 2])
            cell = ((r >> cell_shift) << (2 * cbits)) | ((g >> cell_shift) << cbits) | (b >> cell_shift)
            best = 1 << 40
            k = 0
            for m in range(cell_start[cell], cell_start[cell + 1]):
                e = cell_entries[m]
                dr = r - lut[e, 0]
                dg = g - lut[e, 1]
                db = b - lut[e, 2]
                dist = dr * dr + dg * dg + db * db
                if dist < best:
                    best = dist
                    k = e
            x = run_centre[k]
            repeated = x != k
            best_seg = math.inf
            for nb in (k - 1, k + 1):
                if nb < 0 or nb >= n or repeated:
                    continue
                er = np.float64(lut[nb, 0] - lut[k, 0])
                eg = np.float64(lut[nb, 1] - lut[k, 1])
                eb = np.float64(lut[nb, 2] - lut[k, 2])
                ee = er * er + eg * eg + eb * eb
                if ee == 0.0:
                    continue
                t = ((r - lut[k, 0]) * er + (g - lut[k, 1]) * eg + (b - lut[k, 2]) * eb) / ee
                t = min(max(t, 0.0), 1.0)
                pr = r - (lut[k, 0] + t * er)
                pg = g - (lut[k, 1] + t * eg)
                pb = b - (lut[k, 2] + t * eb)
                dist = pr * pr + pg * pg + pb * pb
                if dist < best_seg:
                    best_seg = dist
                    x = k + t * (nb - k)
            out[i, j] = np.float32(_walk_depth(x / (n - 1)))


@njit(**_OPTS)
def affine_encode(depth, valid, use_valid, lo, hi, out):
    """depth float (H,W) metres -> out uint8 (H,W,3) grey: round(255 clip((d - lo) / (hi - lo), 0, 1)) in all three
    channels (depth/affine; ``lo``/``hi`` are the image's 2nd and 98th percentiles, found by the caller). Nothing hit
    (+inf) and masked pixels are white; when hi <= lo every finite depth is black. Returns (nbad, first)."""
    h, w = depth.shape
    nbad = 0
    first = -1
    span = hi - lo
    for i in range(h):
        for j in range(w):
            d = np.float64(depth[i, j])
            if use_valid and not valid[i, j]:
                v = 255.0
            elif not d >= 0.0:
                if nbad == 0:
                    first = i * w + j
                nbad += 1
                v = 255.0
            elif d == math.inf:
                v = 255.0
            elif span <= 0.0:
                v = 0.0
            else:
                x = (d - lo) / span
                x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
                v = math.floor(x * 255.0 + 0.5)
            out[i, j, 0] = np.uint8(v)
            out[i, j, 1] = np.uint8(v)
            out[i, j, 2] = np.uint8(v)
    return nbad, first


@njit(**_OPTS)
def affine_decode(rgb, out):
    """uint8 (H,W,3) -> out float32 (H,W) relative depth in [0, 1]: the mean of the three channels / 255 (the
    nearest grey; 0 = the image's 2nd depth percentile, 1 = its 98th)."""
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            s = np.int64(rgb[i, j, 0]) + np.int64(rgb[i, j, 1]) + np.int64(rgb[i, j, 2])
            out[i, j] = np.float32(s / 765.0)


@njit(**_VEC)
def normals_row(g, sx, o0, o1, o2):
    """The normals colours of one row: uint8 planes o0, o1, o2 (W,) of float64 OpenCV-frame normals ``g`` (3, W)
    (``sx`` = -1 for flip_x, else 1). Target frame (x, -y, -z), normalised, colour round((v + 1) / 2 255);
    zero-length, NaN or infinite normals are black (no surface). Returns the number of NaN or infinite normals.
    Branch-free (selects), so the loop vectorises. The one normals encoder: the image encoder below and the
    training loader's fused kernels call it."""
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
        o0[j] = np.uint8(r if ok else 0.0)
        o1[j] = np.uint8(gg if ok else 0.0)
        o2[j] = np.uint8(b if ok else 0.0)
    return nbad


@njit(**_OPTS)
def normals_encode(normals, flip_x, out):
    """float (H,W,3) OpenCV unit normals -> out uint8 (H,W,3), a row at a time through :func:`normals_row`.
    Returns (bad (NaN or infinite) count, first bad flat index or -1)."""
    h, w = out.shape[0], out.shape[1]
    row = np.empty((3, w), dtype=np.float64)
    planes = np.empty((3, w), dtype=np.uint8)
    sx = -1.0 if flip_x else 1.0
    nbad = 0
    first = -1
    for i in range(h):
        for j in range(w):
            for c in range(3):
                row[c, j] = normals[i, j, c]
        bad = normals_row(row, sx, planes[0], planes[1], planes[2])
        if bad and nbad == 0:
            for j in range(w):
                nn = row[0, j] * row[0, j] + row[1, j] * row[1, j] + row[2, j] * row[2, j]
                if not nn < math.inf:
                    first = i * w + j
                    break
        nbad += bad
        for j in range(w):
            out[i, j, 0] = planes[0, j]
            out[i, j, 1] = planes[1, j]
            out[i, j, 2] = planes[2, j]
    return nbad, first


@njit(**_OPTS)
def normals_decode(rgb, flip_x, out):
    """uint8 (H,W,3) -> out float32 (H,W,3) OpenCV unit normals; colours within NORMALS_NONE_RADIUS of black
    decode to (0, 0, 0) (no surface)."""
    h, w = out.shape[0], out.shape[1]
    for i in range(h):
        for j in range(w):
            r = np.int64(rgb[i, j, 0])
            g = np.int64(rgb[i, j, 1])
            b = np.int64(rgb[i, j, 2])
            if r * r + g * g + b * b < NORMALS_NONE_RADIUS * NORMALS_NONE_RADIUS:
                out[i, j, 0] = 0.0
                out[i, j, 1] = 0.0
                out[i, j, 2] = 0.0
                continue
            x = 2.0 * r / 255.0 - 1.0
            y = 2.0 * g / 255.0 - 1.0
            z = 2.0 * b / 255.0 - 1.0
            if flip_x:
                x = -x
            s = 1.0 / math.sqrt(x * x + y * y + z * z)
            out[i, j, 0] = np.float32(x * s)
            out[i, j, 1] = np.float32(-y * s)
            out[i, j, 2] = np.float32(-z * s)


@njit(**_OPTS)
def nearest_label(rgb, colors, labels, max_dist2, out):
    """uint8 (H,W,3) -> out int32 (H,W): the label of the nearest of ``colors`` (int64 (K,3)) if its squared
    distance is at most ``max_dist2``, else 0. Ties go to the first colour."""
    h, w = out.shape
    k_n = colors.shape[0]
    for i in range(h):
        for j in range(w):
            r = np.int64(rgb[i, j, 0])
            g = np.int64(rgb[i, j, 1])
            b = np.int64(rgb[i, j, 2])
            best = max_dist2 + 1
            lab = 0
            for k in range(k_n):
                dr = r - colors[k, 0]
                dg = g - colors[k, 1]
                db = b - colors[k, 2]
                dist = dr * dr + dg * dg + db * db
                if dist < best:
                    best = dist
                    lab = labels[k]
            out[i, j] = lab


# ----------------------------------------------------------------------------------------------- PNG rows
@njit(**_OPTS)
def png_unfilter(data, height, stride, bpp, out):
    """Undo PNG's per-row filters (PNG spec section 9: 0 none, 1 sub, 2 up, 3 average, 4 Paeth) of the inflated
    image ``data`` (uint8, height rows of 1 + stride bytes) into ``out`` (uint8 (height, stride)), ``bpp`` bytes per
    pixel. Returns -1, or the first row whose filter type is unknown."""
    for i in range(height):
        ft = data[i * (stride + 1)]
        base = i * (stride + 1) + 1
        if ft > 4:
            return i
        for j in range(stride):
            x = np.int32(data[base + j])
            a = np.int32(out[i, j - bpp]) if j >= bpp else np.int32(0)
            b = np.int32(out[i - 1, j]) if i > 0 else np.int32(0)
            c = np.int32(out[i - 1, j - bpp]) if (i > 0 and j >= bpp) else np.int32(0)
            if ft == 1:
                x += a
            elif ft == 2:
                x += b
            elif ft == 3:
                x += (a + b) // 2
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                if pa <= pb and pa <= pc:
                    x += a
                elif pb <= pc:
                    x += b
                else:
                    x += c
            out[i, j] = np.uint8(x & 255)
    return -1


# ----------------------------------------------------------------------------------------------- flow/signedlog
FLOW_ZERO = 127
"""flow/signedlog: R and G of zero flow (levels 0..254)."""


@njit(**_OPTS)
def _flow_log(a, inv_log_m, scale):
    """L(a, m) = ln(1 + a/scale) / ln(1 + m/scale), clipped to 1 (inv_log_m = 1 / ln(1 + m/scale))."""
    return min(math.log1p(a / scale) * inv_log_m, 1.0)


@njit(**_OPTS)
def flow_encode(flow, valid, use_valid, max_flow, scale, fine, out):
    """flow float (H, W, 2) px -> out uint8 (H, W, 3) under flow/signedlog. Pixels with valid False encode as zero
    flow; a non-finite component at a valid pixel is counted. Returns (bad count, flat index of the first)."""
    h, w = flow.shape[0], flow.shape[1]
    inv_axis = 1.0 / math.log1p(max_flow / scale)
    inv_mag = 1.0 / math.log1p(math.sqrt(2.0) * max_flow / scale)
    nbad, first = 0, -1
    for i in range(h):
        for j in range(w):
            u, v = np.float64(flow[i, j, 0]), np.float64(flow[i, j, 1])
            if use_valid and not valid[i, j]:
                u, v = 0.0, 0.0
            elif not (math.isfinite(u) and math.isfinite(v)):
                if nbad == 0:
                    first = i * w + j
                nbad += 1
                u, v = 0.0, 0.0
            u, v = min(max(u, -max_flow), max_flow), min(max(v, -max_flow), max_flow)
            for c in range(2):
                x = u if c == 0 else v
                level = math.floor(FLOW_ZERO * _flow_log(abs(x), inv_axis, scale) + 0.5)
                out[i, j, c] = np.uint8(FLOW_ZERO + level if x > 0 else FLOW_ZERO - level)
            if fine > 0:
                x = fine * _flow_log(math.hypot(u, v), inv_mag, scale)
                r = x - 2.0 * math.floor(x / 2.0)
                tri = r if r <= 1.0 else 2.0 - r
                out[i, j, 2] = np.uint8(math.floor(255.0 * tri + 0.5))
            else:
                out[i, j, 2] = 0
    return nbad, first


@njit(**_OPTS)
def flow_decode(rgb, max_flow, scale, fine, out):
    """uint8 (H, W, 3) -> out float32 (H, W, 2) px under flow/signedlog: coarse (u, v) from R and G; with fine
    folds, the magnitude is the solution of tri(x) = B/255 in [0, fine] nearest to the coarse x (the first of two
    equally near), the direction the coarse one."""
    h, w = rgb.shape[0], rgb.shape[1]
    log_axis = math.log1p(max_flow / scale)
    log_mag = math.log1p(math.sqrt(2.0) * max_flow / scale)
    axis = np.empty(256)  # R or G level -> signed component
    for level in range(256):
        d = level - FLOW_ZERO
        a = scale * math.expm1(min(abs(d) / FLOW_ZERO, 1.0) * log_axis)
        axis[level] = a if d > 0 else (-a if d < 0 else 0.0)
    for i in range(h):
        for j in range(w):
            u, v = axis[rgb[i, j, 0]], axis[rgb[i, j, 1]]
            coarse = math.hypot(u, v)
            if fine > 0 and coarse > 0:
                xc = fine * min(math.log1p(coarse / scale) / log_mag, 1.0)
                b = rgb[i, j, 2] / 255.0
                best, best_d = 0.0, np.inf
                for k in range(fine):
                    cand = k + (b if k % 2 == 0 else 1.0 - b)
                    dist = abs(cand - xc)
                    if dist < best_d:
                        best, best_d = cand, dist
                mag = scale * math.expm1(best / fine * log_mag)
                u, v = u * mag / coarse, v * mag / coarse
            out[i, j, 0] = u
            out[i, j, 1] = v
