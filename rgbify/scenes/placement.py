"""Placing models in a scene: on a support surface, on the floor, and the camera looking at a target."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rgbify.scenes.builder import Model, SceneBuilder, WorldSurface, pose
from rgbify.scenes.cameras import draw_fov
from rgbify.scenes.context import Context
from rgbify.scenes.geometry import rot_z, translate
from rgbify.scenes.spec import Camera, look_at


def make_camera(ctx: Context, rng: np.random.Generator, eye: np.ndarray, target: np.ndarray,
                pitch_range: tuple[float, float] | None = None, fov: float | None = None, roll: bool = True
                ) -> Camera:
    """A camera at ``eye`` looking toward ``target`` with the pitch clamped to the recipe's range, a FOV drawn from
    the recipe (its camera profiles, rgbify.scenes.cameras, or fov_deg) and an occasional roll (``roll``; drawn from
    ``rng``, the camera stream)."""
    cc = ctx.config.camera
    d = np.asarray(target, dtype=np.float64) - eye
    yaw = math.atan2(d[1], d[0])
    pitch = math.degrees(math.atan2(d[2], math.hypot(d[0], d[1])))
    lo, hi = pitch_range or cc.pitch_deg
    pitch = math.radians(min(max(pitch, lo), hi))
    direction = np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)])
    roll_deg = 0.0
    if roll and rng.random() < cc.roll_prob:
        roll_deg = float(rng.uniform(-cc.roll_max_deg, cc.roll_max_deg))
    fov = fov if fov is not None else draw_fov(rng, cc)[0]
    w, h = ctx.config.resolution
    return Camera.from_hfov(w, h, round(fov, 3), look_at(eye, eye + direction, roll_deg=round(roll_deg, 3)))


def place_on_surface(ctx: Context, b: SceneBuilder, model: Model, ws: WorldSurface, tries: int = 6,
                     name: str | None = None, yaw: float | None = None) -> int | None:
    """Drop ``model`` at a random spot of a support surface (fully on it, below its clear height)."""
    s = ws.surface
    if model.height > s.clear_m - 0.01:
        return None
    r = model.radius_xy
    if r > min(s.hx, s.hy) * 1.05 and not (r < max(s.hx, s.hy)):
        return None
    for _ in range(tries):
        mx, my = max(0.0, s.hx - r), max(0.0, s.hy - r)
        x = s.cx + ctx.rng.uniform(-mx, mx)
        y = s.cy + ctx.rng.uniform(-my, my)
        a = float(ctx.rng.uniform(0, 360)) if yaw is None else yaw
        w = ws.world_from_model @ translate(x, y, s.z) @ rot_z(a)
        if not _inside_surface(model, w, ws):
            continue
        iid = b.add(model, w, ctx.material(model), name=name, support=ws.instance_id)
        if iid is not None:
            return iid
    return None


def _inside_surface(model: Model, world_from_model: np.ndarray, ws: WorldSurface) -> bool:
    """Every collision-box corner of the model lies over the surface rectangle."""
    surface_from_model = np.linalg.inv(ws.world_from_model) @ world_from_model  # once, not per corner
    s = ws.surface
    for c, h in model.boxes:
        for sx in (-1, 1):
            for sy in (-1, 1):
                p = surface_from_model @ np.array([c[0] + sx * h[0], c[1] + sy * h[1], 0.0, 1.0])
                if abs(p[0] - s.cx) > s.hx + 1e-6 or abs(p[1] - s.cy) > s.hy + 1e-6:
                    return False
    return True


def place_on_floor(ctx: Context, b: SceneBuilder, model: Model, sample_xy: Callable[[], np.ndarray], floor_id: int,
                   tries: int = 10, yaw: float | None = None, z: float = 0.0, name: str | None = None,
                   inside: Callable[[Model, np.ndarray], bool] | None = None) -> int | None:
    for _ in range(tries):
        x, y = sample_xy()
        a = float(ctx.rng.uniform(0, 360)) if yaw is None else yaw
        w = pose(float(x), float(y), z, a)
        if inside is not None and not inside(model, w):
            continue
        iid = b.add(model, w, ctx.material(model), name=name, support=floor_id)
        if iid is not None:
            return iid
    return None
