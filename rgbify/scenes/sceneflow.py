"""Exact optical flow and scene flow between two frames of a clip, from geometry (NumPy only, float64 inside).

For each pixel (i, j) of frame t with a hit: the centre ray's hit point ``X = depth * K^-1 (j, i, 1)`` (planar depth,
docs/conventions.md) in camera t's frame, taken to the world by ``world_from_camera(t)``, moved by the rigid
motion of the object it lies on (``world_from_object(u) @ inv(world_from_object(t))``; static objects: identity),
taken into camera u's frame (``X'``) and projected with K. Then

* optical flow = projection(X') - (j, i), pixels, +x right, +y down;
* scene flow = X' - X, metres: where the point is in camera u's frame minus where it was in camera t's frame (what
  the moving camera sees: ego-motion included, so that flow = project(X + scene flow) - project(X) exactly);
* out of view: X' behind camera u (z' <= its near clip) or projected outside the image (beyond the outer pixel
  edges, [-0.5, W - 0.5) x [-0.5, H - 0.5));
* occluded: frame u's depth map shows something in front of X' there: z' is farther than every one of the four
  pixel centres around the projection (their largest depth) by more than ``rel_tol * z' + abs_tol``. On a surface
  seen at both times the true depth at the projection lies between its neighbours' (the depth of a plane is
  monotone across a pixel), so the test does not fire on visible points, only where a nearer surface covers all
  four neighbours. Pixels next to depth edges of frame u can pass as visible (a far neighbour lifts the maximum):
  the edge mask of either frame marks where to distrust it.

``valid`` = hit, in view and not occluded. Where nothing is hit (sky), flow and scene flow are 0 and invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

OCCLUSION_REL_TOL = 1e-3
"""Relative depth margin of the occlusion test (0.1 % of the point's depth: rendered depth is exact to 1e-5)."""
OCCLUSION_ABS_TOL = 1e-3
"""Absolute depth margin of the occlusion test, metres."""


@dataclass
class FlowResult:
    """Flow from frame t to frame u (u = t + 1: forward; u = t - 1: backward)."""

    flow: np.ndarray
    """float32 (H, W, 2) pixels, (u, v) = (dx, dy); 0 where nothing is hit."""
    scene_flow: np.ndarray
    """float32 (H, W, 3) metres: the point in camera u's frame minus the point in camera t's frame; 0 on a miss."""
    valid: np.ndarray
    """bool (H, W): hit, in view at u and not occluded at u."""
    occluded: np.ndarray
    """bool (H, W): in view at u but hidden there by a nearer surface."""
    out_of_view: np.ndarray
    """bool (H, W): behind camera u or outside its image."""
    hit: np.ndarray
    """bool (H, W): the pixel's centre ray hit something at t."""
    depth_at_u: np.ndarray
    """float64 (H, W): the moved point's planar depth in camera u (inf on a miss)."""


def _pixel_rays(k: np.ndarray, h: int, w: int) -> np.ndarray:
    i, j = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(j - k[0, 2]) / k[0, 0], (i - k[1, 2]) / k[1, 1], np.ones_like(i)], axis=-1)


def flow_between(
    depth_t: np.ndarray,
    instance_t: np.ndarray,
    K: np.ndarray,
    world_from_camera_t: np.ndarray,
    world_from_camera_u: np.ndarray,
    motion: Mapping[int, np.ndarray] | None = None,
    depth_u: np.ndarray | None = None,
    clip_start: float = 0.0,
    rel_tol: float = OCCLUSION_REL_TOL,
    abs_tol: float = OCCLUSION_ABS_TOL,
) -> FlowResult:
    """Flow, scene flow and masks from frame t to frame u (see the module docstring).

    ``depth_t`` planar z (+inf miss) and ``instance_t`` (0 miss) of frame t; ``K`` the intrinsics of both frames;
    ``motion`` maps a moving instance id to its rigid world-frame transform from t to u (absent ids stay put);
    ``depth_u`` frame u's depth for the occlusion test (None: nothing is marked occluded)."""
    depth_t = np.asarray(depth_t, dtype=np.float64)
    h, w = depth_t.shape
    k = np.asarray(K, dtype=np.float64)
    hit = np.isfinite(depth_t) & (np.asarray(instance_t) > 0)
    x_t = _pixel_rays(k, h, w) * np.where(hit, depth_t, 0.0)[..., None]
    mt, mu = np.asarray(world_from_camera_t, np.float64), np.asarray(world_from_camera_u, np.float64)
    world = x_t @ mt[:3, :3].T + mt[:3, 3]
    if motion:
        ids = np.asarray(instance_t)
        for iid, m in motion.items():
            sel = hit & (ids == int(iid))
            if sel.any():
                m = np.asarray(m, dtype=np.float64)
                world[sel] = world[sel] @ m[:3, :3].T + m[:3, 3]
    x_u = (world - mu[:3, 3]) @ mu[:3, :3]  # camera u from world: R^T (p - t)
    z = x_u[..., 2]
    front = hit & (z > max(float(clip_start), 1e-12))
    with np.errstate(divide="ignore", invalid="ignore"):
        pu = k[0, 0] * x_u[..., 0] / z + k[0, 2]
        pv = k[1, 1] * x_u[..., 1] / z + k[1, 2]
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    inside = front & (pu >= -0.5) & (pu < w - 0.5) & (pv >= -0.5) & (pv < h - 0.5)
    out_of_view = hit & ~inside
    occluded = np.zeros((h, w), dtype=bool)
    if depth_u is not None:
        du = np.asarray(depth_u, dtype=np.float64)
        # the four pixel centres around the projection (clamped at the border)
        u0 = np.clip(np.floor(np.where(inside, pu, 0.0)).astype(np.int64), 0, w - 1)
        v0 = np.clip(np.floor(np.where(inside, pv, 0.0)).astype(np.int64), 0, h - 1)
        u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
        far = np.maximum(np.maximum(du[v0, u0], du[v0, u1]), np.maximum(du[v1, u0], du[v1, u1]))
        occluded = inside & (z > far + rel_tol * z + abs_tol)
    flow = np.where(front[..., None], np.stack([pu - jj, pv - ii], axis=-1), 0.0)
    scene = np.where(hit[..., None], x_u - x_t, 0.0)
    return FlowResult(
        flow=flow.astype(np.float32),
        scene_flow=scene.astype(np.float32),
        valid=inside & ~occluded,
        occluded=occluded,
        out_of_view=out_of_view,
        hit=hit,
        depth_at_u=np.where(hit, z, np.inf),
    )


def clip_flow(clip, depths: list[np.ndarray], instances: list[np.ndarray], t: int, u: int) -> FlowResult:  # noqa: ANN001
    """Flow from frame t to frame u of a ClipSpec, given each frame's depth and instance maps (rendered)."""
    if not (0 <= t < clip.frames and 0 <= u < clip.frames):
        raise IndexError(f"frames {t} -> {u} are outside the clip's {clip.frames} frames")
    return flow_between(
        depths[t],
        instances[t],
        clip.scene.camera.K,
        clip.world_from_camera(t),
        clip.world_from_camera(u),
        clip.motion(t, u),
        depths[u],
        clip.scene.camera.clip_start,
    )
