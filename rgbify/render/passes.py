"""The passes of the data render -> the ground-truth arrays of CONVENTIONS §2 (NumPy only, float64 inside).

The data render samples a grid twice as fine as the image plus one sample (``(2H+1, 2W+1)``): fine sample
``(2i+1, 2j+1)`` is the centre of pixel ``(i, j)``, the even ones its corners and edge midpoints.

Depth at a pixel centre: Cycles jitters even a 1-sample render within the pixel filter (here 0.01 fine pixels
wide), so the hit point ``P`` (Position pass) lies a few thousandths of a pixel off the centre ray. The exact
centre depth is recovered by intersecting the centre ray with the plane through ``P`` of the hit triangle
(geometric normal from an AOV): exact on flat triangles, and off by the triangle's curvature times
(0.005 px)^2 on smooth ones.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from rgbify.scenes.spec import Camera, PostProcess

EDGE_DEPTH_TOL = 0.02
"""Relative depth jump between neighbouring samples of one instance that counts as a discontinuity."""


def ray_directions(camera: Camera) -> np.ndarray:
    """Rays through pixel centres in the OpenCV camera frame, (H,W,3) float64 with z = 1."""
    v, u = np.mgrid[0:camera.height, 0:camera.width].astype(np.float64)
    return np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u)], axis=-1)


def _unit(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def centre_data(passes: dict[str, np.ndarray], fine: Camera) -> dict[str, np.ndarray]:
    """Per fine sample: hit (bool), instance id (int32), depth z (float64, +inf miss), point (camera frame, float64),
    normal (unit shading normal, camera frame, toward the camera; 0 on a miss), true normal (same, geometric)."""
    m = np.asarray(fine.world_from_camera, dtype=np.float64)
    rot, t = m[:3, :3], m[:3, 3]
    ids = np.rint(passes["index"].astype(np.float64)).astype(np.int32)
    hit = ids > 0
    p_cam = (passes["position"].astype(np.float64) - t) @ rot
    n_true = _unit(passes["true_normal"].astype(np.float64) @ rot)
    n_shade = _unit(passes["normal"].astype(np.float64) @ rot)
    r = ray_directions(fine)
    d = np.einsum("...k,...k->...", n_true, p_cam)
    denom = np.einsum("...k,...k->...", n_true, r)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_plane = d / denom
    z_hit = p_cam[..., 2]
    ok = hit & (np.abs(denom) > 1e-9) & np.isfinite(z_plane) & (np.abs(z_plane - z_hit) <= 1e-2 * np.abs(z_hit))
    z = np.where(ok, z_plane, z_hit)
    z = np.where(hit, z, np.inf)
    point = np.where(hit[..., None], r * np.where(hit, z, 0.0)[..., None], 0.0)
    toward = np.where(np.einsum("...k,...k->...", n_shade, r) > 0, -1.0, 1.0)[..., None]
    n_shade = np.where(hit[..., None], n_shade * toward, 0.0)
    toward_t = np.where(np.einsum("...k,...k->...", n_true, r) > 0, -1.0, 1.0)[..., None]
    n_true = np.where(hit[..., None], n_true * toward_t, 0.0)
    return {"hit": hit, "id": np.where(hit, ids, 0), "z": z, "point": point, "normal": n_shade,
            "true_normal": n_true, "ray": r}


def _discontinuous(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """True where neighbouring samples a and b do not lie on one continuous surface."""
    differ = a["id"] != b["id"]
    both = a["hit"] & b["hit"] & ~differ

    def rel_err(src: dict[str, np.ndarray], dst: dict[str, np.ndarray]) -> np.ndarray:
        d = np.einsum("...k,...k->...", src["true_normal"], src["point"])
        denom = np.einsum("...k,...k->...", src["true_normal"], dst["ray"])
        with np.errstate(divide="ignore", invalid="ignore"):
            pred = d / denom
            err = np.abs(pred - dst["z"]) / dst["z"]
        return np.where(np.isfinite(err), err, np.inf)

    with np.errstate(invalid="ignore"):
        jump = np.minimum(rel_err(a, b), rel_err(b, a)) > EDGE_DEPTH_TOL
    return differ | (both & jump)


def _slice(data: dict[str, np.ndarray], sl: tuple[slice, slice]) -> dict[str, np.ndarray]:
    return {k: v[sl] for k, v in data.items()}


def edge_mask(fine_data: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
    """bool (H,W): a discontinuity lies between two neighbouring fine samples within one pixel of the centre.

    The RGB pixel filter (Blackman-Harris, 1.5 px wide) reaches 0.75 px from the centre; fine samples are 0.5 px
    apart, so every discontinuity the filter can see lies between two samples at most 1 px from the centre.
    """
    all_, head, tail = slice(None), slice(0, -1), slice(1, None)
    dh = _discontinuous(_slice(fine_data, (all_, head)), _slice(fine_data, (all_, tail)))
    dv = _discontinuous(_slice(fine_data, (head, all_)), _slice(fine_data, (tail, all_)))
    edge = np.zeros((height, width), dtype=bool)
    # pixel (i, j) has centre (2i+1, 2j+1); its window spans fine rows/cols 2i-1 .. 2i+3 (clipped).
    dh_p = np.pad(dh, ((1, 1), (1, 1)))  # padded index = fine index + 1
    dv_p = np.pad(dv, ((1, 1), (1, 1)))
    for dr in range(5):  # fine rows 2i-1+dr -> padded 2i+dr
        for dc in range(4):  # horizontal pairs (c, c+1) with c in 2j-1 .. 2j+2 -> padded 2j+dc
            edge |= dh_p[dr:dr + 2 * height:2, dc:dc + 2 * width:2]
    for dr in range(4):
        for dc in range(5):
            edge |= dv_p[dr:dr + 2 * height:2, dc:dc + 2 * width:2]
    return edge


def passes_to_arrays(passes: dict[str, np.ndarray], camera: Camera, fine: Camera) -> dict[str, np.ndarray]:
    """depth float32 (H,W), normals float32 (H,W,3), instance int32 (H,W), edge bool (H,W) from the fine passes."""
    fd = centre_data(passes, fine)
    centre = (slice(1, None, 2), slice(1, None, 2))
    h, w = camera.height, camera.width
    depth = fd["z"][centre].astype(np.float32)
    normals = fd["normal"][centre].astype(np.float32)
    instance = fd["id"][centre].astype(np.int32)
    assert depth.shape == (h, w), (depth.shape, h, w)
    return {"depth": depth, "normals": normals, "instance": instance, "edge": edge_mask(fd, h, w)}


def blur_radius_px(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """Radius in pixels of the circle of confusion at each pixel's depth for the camera's depth of field (thin
    lens; 0 for a pinhole or nothing hit): c = f^2 |d - d_f| / (N d (d_f - f)) on the sensor, in pixels."""
    if camera.f_number is None:
        return np.zeros(depth.shape)
    f_mm = camera.fx * camera.sensor_width_mm / camera.width
    d = np.where(np.isfinite(depth), depth, 1e6) * 1000.0
    df = max(camera.focus_distance_m * 1000.0, f_mm * 1.001)
    c_mm = f_mm * f_mm * np.abs(d - df) / (camera.f_number * d * (df - f_mm))
    return 0.5 * c_mm / camera.sensor_width_mm * camera.width


def widen_edges(edge: np.ndarray, depth: np.ndarray, camera: Camera, post: PostProcess) -> np.ndarray:
    """The edge mask of an RGB image that depth of field, chromatic aberration or motion blur spread: a pixel mixes
    surfaces when a discontinuity lies within its own blur radius, or within the blur radius of the discontinuity's
    pixel (a blurred foreground bleeds over the background); chromatic aberration and motion blur widen every edge
    by their shift (at most half the blur's length)."""
    shift = max(float(post.chromatic_aberration_px), float(post.motion_blur_px) / 2.0)
    out = edge
    if shift > 0:
        r = int(np.ceil(shift))
        disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= shift + 0.5
        out = ndimage.binary_dilation(edge, structure=disk)
    if camera.f_number is not None and edge.any():
        radius = blur_radius_px(depth, camera)
        dist, (iy, ix) = ndimage.distance_transform_edt(~edge, return_indices=True)
        out = out | (dist <= np.maximum(radius, radius[iy, ix]) + 0.5)
    return out
