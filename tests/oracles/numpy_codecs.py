"""Test oracles: plain-NumPy twins of the codec kernels in :mod:`rgbify.encode.kernels` (never shipped).

Written for clarity, straight from the formulas of docs/codecs.md; the tests check that each kernel returns the
same bytes (encoders) or the same float32 values (decoders) as its oracle. They are slow and allocate a lot.
"""

from __future__ import annotations

import math

import numpy as np

from rgbify.encode import hilbert
from rgbify.encode.codecs import run_centres
from rgbify.encode.kernels import CUBE_VERTICES, NORMALS_NONE_RADIUS, QMAX


def _round(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _bad(depth: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    d = depth.astype(np.float64)
    masked = np.zeros(d.shape, bool) if valid is None else ~valid
    with np.errstate(invalid="ignore"):
        bad = ~masked & ~(d >= 0)
    return masked, bad


def _report(bad: np.ndarray) -> tuple[int, int]:
    n = int(bad.sum())
    return n, (int(np.flatnonzero(bad.ravel())[0]) if n else -1)


def walk_value(d: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        x = 1.0 + d / 10.0
        return np.where(np.isposinf(d), 1.0, 1.0 - 1.0 / (x * x))


def walk_depth(f: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f >= 1.0, np.inf, 10.0 * (1.0 / np.sqrt(1.0 - f) - 1.0))


def cubewalk_encode(depth: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, int, int]:
    masked, bad = _bad(depth, valid)
    d = np.where(masked | bad, np.inf, depth.astype(np.float64))
    p = 7.0 * walk_value(d)
    k = np.minimum(np.floor(p).astype(np.int64), 6)
    t = (p - k)[..., None]
    a, b = CUBE_VERTICES[k], CUBE_VERTICES[k + 1]
    return _round(a + t * (b - a)).astype(np.uint8), *_report(bad)


def cubewalk_decode(rgb: np.ndarray) -> np.ndarray:
    """Nearest point on the polyline, in exact integers (the walk's edges have length 255 along one axis)."""
    c = rgb.astype(np.int64)[..., None, :]  # (H,W,1,3)
    v = CUBE_VERTICES[:-1].astype(np.int64)
    e = CUBE_VERTICES[1:].astype(np.int64) - v  # (7,3)
    proj = np.clip(((c - v) * e).sum(-1), 0, 255 * 255)  # (H,W,7), = 255 * 255 * t
    foot = v + (proj // 255)[..., None] * (e // 255)
    dist = ((c - foot) ** 2).sum(-1)
    k = np.argmin(dist, axis=-1)
    pos = 255 * k + np.take_along_axis(proj, k[..., None], -1)[..., 0] // 255  # 255 * p
    return walk_depth(pos / 1785.0).astype(np.float32)


def _power(x: np.ndarray, e: float) -> np.ndarray:
    return x**e  # NumPy does ``** 0.5`` as sqrt and ``** 2`` as a square, as the kernels do


def hilbert_index_from_depth(depth: np.ndarray, valid: np.ndarray | None, d_max: float, gamma: float):
    masked, bad = _bad(depth, valid)
    d = depth.astype(np.float64)
    far = masked | bad | ~(d < d_max)
    with np.errstate(invalid="ignore"):
        u = _power(np.where(far, 1.0, d / d_max), gamma)
    q = np.where(far, QMAX, _round(u * QMAX)).astype(np.int64)
    return q, *_report(bad)


def hilbert_encode(depth: np.ndarray, valid: np.ndarray | None, d_max: float, gamma: float):
    q, nbad, first = hilbert_index_from_depth(depth, valid, d_max, gamma)
    return hilbert.point_from_index(q).astype(np.uint8), nbad, first


def hilbert_index(rgb: np.ndarray) -> np.ndarray:
    return hilbert.index_from_point(rgb).astype(np.uint32)


def hilbert_decode(rgb: np.ndarray, d_max: float, gamma: float) -> np.ndarray:
    q = hilbert_index(rgb).astype(np.float64)
    return (d_max * _power(q / QMAX, 1.0 / gamma)).astype(np.float32)


def colormap_encode(depth: np.ndarray, valid: np.ndarray | None, lut: np.ndarray):
    masked, bad = _bad(depth, valid)
    f = walk_value(np.where(masked | bad, np.inf, depth.astype(np.float64)))
    return lut[_round(f * 255.0).astype(np.int64)].astype(np.uint8), *_report(bad)


def colormap_decode(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Brute force: nearest of all 256 entries, then the nearer of its two adjacent table segments (entries
    repeated in a run decode to the run's centre)."""
    c = rgb.astype(np.int64).reshape(-1, 3)
    lut = lut.astype(np.int64)
    n = len(lut)
    k = np.argmin(((c[:, None, :] - lut[None]) ** 2).sum(-1), axis=1)
    x = run_centres(lut)[k]
    repeated = x != k
    best = np.full(len(c), np.inf)
    for step in (-1, 1):
        nb = k + step
        ok = (nb >= 0) & (nb < n) & ~repeated
        nbc = np.clip(nb, 0, n - 1)
        e = (lut[nbc] - lut[k]).astype(np.float64)
        ee = (e * e).sum(-1)
        ok &= ee > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(((c - lut[k]) * e).sum(-1) / ee, 0.0, 1.0)
        dist = ((c - (lut[k] + t[:, None] * e)) ** 2).sum(-1)
        better = ok & (dist < best)
        best = np.where(better, dist, best)
        x = np.where(better, k + t * (nb - k), x)
    return walk_depth(x / (n - 1)).astype(np.float32).reshape(rgb.shape[:2])


def affine_encode(depth: np.ndarray, valid: np.ndarray | None, lo: float, hi: float):
    """Grey round(255 clip((d - lo) / (hi - lo), 0, 1)); +inf, masked and bad pixels white; hi <= lo: black."""
    masked, bad = _bad(depth, valid)
    d = depth.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = np.clip((d - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(d)
    grey = np.where(masked | bad | np.isposinf(d), 255.0, _round(x * 255.0))
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8), *_report(bad)


def affine_decode(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.int64).sum(-1) / 765.0).astype(np.float32)


def normals_encode(normals: np.ndarray, flip_x: bool) -> tuple[np.ndarray, int, int]:
    v = normals.astype(np.float64) * np.array([1.0, -1.0, -1.0])
    with np.errstate(invalid="ignore", over="ignore"):
        nn = (v * v).sum(-1)
    bad = ~np.isfinite(nn)
    nn = np.where(bad, 0.0, nn)
    none = nn < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        v = v * (1.0 / np.sqrt(nn))[..., None]
    if flip_x:
        v[..., 0] = -v[..., 0]
    with np.errstate(invalid="ignore"):
        rgb = _round((v + 1.0) * 0.5 * 255.0)
    rgb = np.where(none[..., None], 0.0, rgb).astype(np.uint8)
    return rgb, *_report(bad)


def normals_decode(rgb: np.ndarray, flip_x: bool) -> np.ndarray:
    v = 2.0 * rgb.astype(np.float64) / 255.0 - 1.0
    if flip_x:
        v[..., 0] = -v[..., 0]
    v = v * (1.0 / np.sqrt((v * v).sum(-1)))[..., None]
    out = (v * np.array([1.0, -1.0, -1.0])).astype(np.float32)
    out[(rgb.astype(np.int64) ** 2).sum(-1) < NORMALS_NONE_RADIUS**2] = 0.0
    return out


def nearest_label(rgb: np.ndarray, colors: np.ndarray, labels: np.ndarray, max_dist2: int) -> np.ndarray:
    c = rgb.astype(np.int64)[..., None, :]
    dist = ((c - colors.astype(np.int64)) ** 2).sum(-1)
    k = np.argmin(dist, axis=-1)
    ok = np.take_along_axis(dist, k[..., None], -1)[..., 0] <= max_dist2
    return np.where(ok, labels[k], 0).astype(np.int32)


def median_filter(a: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    p = np.pad(a.astype(np.float64), radius, mode="edge")
    h, w = a.shape
    stack = np.stack([p[i : i + h, j : j + w] for i in range(k) for j in range(k)])
    return np.median(stack, axis=0)


# ----------------------------------------------------------------------------------------------- flow/signedlog
def _flow_log(a: float, m: float, scale: float) -> float:
    return min(math.log(1.0 + a / scale) / math.log(1.0 + m / scale), 1.0)


def _flow_unlog(t: float, m: float, scale: float) -> float:
    return scale * (math.exp(t * math.log(1.0 + m / scale)) - 1.0)


def flow_encode(flow: np.ndarray, max_flow: float, scale: float, fine: int) -> np.ndarray:
    """One pixel at a time, straight from docs/codecs.md ("Flow")."""
    h, w, _ = flow.shape
    out = np.zeros((h, w, 3), np.uint8)
    for i in range(h):
        for j in range(w):
            u, v = (min(max(float(x), -max_flow), max_flow) for x in flow[i, j])
            for c, x in enumerate((u, v)):
                level = math.floor(127.0 * _flow_log(abs(x), max_flow, scale) + 0.5)
                out[i, j, c] = 127 + (level if x > 0 else -level)
            if fine:
                x = fine * _flow_log(math.hypot(u, v), math.sqrt(2.0) * max_flow, scale)
                half, frac = int(x), x - int(x)  # which half-period of the triangle wave, and where in it
                tri = frac if half % 2 == 0 else 1.0 - frac
                out[i, j, 2] = math.floor(255.0 * tri + 0.5)
    return out


def flow_decode(rgb: np.ndarray, max_flow: float, scale: float, fine: int) -> np.ndarray:
    """One pixel at a time: the coarse flow from R and G; with fine folds, the magnitude is the solution of
    tri(x) = B/255 nearest the coarse x, found by trying every half-period of the wave."""
    h, w, _ = rgb.shape
    out = np.zeros((h, w, 2), np.float32)
    m2 = math.sqrt(2.0) * max_flow
    for i in range(h):
        for j in range(w):
            comp = []
            for c in range(2):
                d = int(rgb[i, j, c]) - 127
                a = _flow_unlog(min(abs(d) / 127.0, 1.0), max_flow, scale)
                comp.append(a if d > 0 else -a if d < 0 else 0.0)
            u, v = comp
            coarse = math.hypot(u, v)
            if fine and coarse > 0:
                xc = fine * _flow_log(coarse, m2, scale)
                b = rgb[i, j, 2] / 255.0
                cands = [k + (b if k % 2 == 0 else 1.0 - b) for k in range(fine)]
                x = min(cands, key=lambda c: abs(c - xc))
                mag = _flow_unlog(x / fine, m2, scale)
                u, v = u * mag / coarse, v * mag / coarse
            out[i, j] = (u, v)
    return out
