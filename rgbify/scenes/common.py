"""Pieces shared by the recipe samplers: the draft they return, lights, world, camera and placement helpers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rgbify.scenes.builder import Builder, Model, WorldSurface, pose
from rgbify.scenes.geometry import rot_z, translate
from rgbify.scenes.materials import sample_material
from rgbify.scenes.recipe import RecipeConfig
from rgbify.scenes.spec import Camera, Light, World, look_at, matrix4


class Reject(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A sampled scene or view is not usable; ``reason`` is a short stable key counted by `scenes stats`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Draft:
    """What a recipe sampler returns: the scene without its camera, and a way to draw cameras for it."""

    builder: Builder
    world: World
    sample_camera: Callable[[np.random.Generator], Camera]
    meta: dict[str, Any] = field(default_factory=dict)
    enclosed: bool = True
    """Indoor-like (light bounces inside a closed room) rather than open sky; used by the exposure estimate."""
    interior: tuple[float, float] | None = None
    """For rooms: (interior surface area in m^2, area-weighted albedo of walls, floor and ceiling)."""


@dataclass
class Context:
    """Per-sample inputs handed to every sampler."""

    rng: np.random.Generator
    config: RecipeConfig
    assets: Any = None
    images: list[str] = field(default_factory=list)
    hdris: list[str] = field(default_factory=list)

    def material(self, model: Model, texture_prob: float | None = None):  # noqa: ANN201
        return sample_material(self.rng, model.material_hint, self.config.materials, model.class_name,
                               self.images, texture_prob)

    def temperature(self) -> float:
        return round(float(self.rng.uniform(*self.config.lighting.temperature_k)), 1)


def light_pose_toward(position: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """world_from_light whose local -z points along ``direction``."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    z = -d
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.95 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, position
    return m


def sun_light(ctx: Context, direction: np.ndarray, strength: float, temperature: float | None = None) -> Light:
    return Light(kind="sun", world_from_light=matrix4(light_pose_toward(np.zeros(3), direction)),
                 power=round(float(strength), 4), temperature_k=temperature or ctx.temperature(),
                 size=round(float(ctx.rng.uniform(0.5, 3.0)), 3))


def sky_world(ctx: Context, strength_scale: float = 1.0) -> World:
    rng, cfg = ctx.rng, ctx.config.lighting
    if ctx.hdris and rng.random() < cfg.hdri_prob:
        return World(background_color=(0.5, 0.5, 0.5), strength=round(float(rng.uniform(*cfg.world_strength)), 4),
                     hdri=ctx.hdris[int(rng.integers(len(ctx.hdris)))],
                     hdri_rotation_deg=round(float(rng.uniform(0, 360)), 2))
    # clear to overcast sky: blue-ish to grey, in linear RGB
    t = rng.random()
    blue = np.array([0.25, 0.45, 0.85])
    grey = np.array([0.6, 0.62, 0.65])
    c = (1 - t) * blue + t * grey
    return World(background_color=tuple(round(float(x), 4) for x in c),  # type: ignore[arg-type]
                 strength=round(float(rng.uniform(*cfg.world_strength) * strength_scale), 4))


def make_camera(ctx: Context, eye: np.ndarray, target: np.ndarray, pitch_range: tuple[float, float] | None = None,
                fov: float | None = None) -> Camera:
    """A camera at ``eye`` looking toward ``target`` with the pitch clamped to the recipe's range, a FOV drawn from
    the recipe and an occasional roll."""
    rng, cc = ctx.rng, ctx.config.camera
    d = np.asarray(target, dtype=np.float64) - eye
    yaw = math.atan2(d[1], d[0])
    pitch = math.degrees(math.atan2(d[2], math.hypot(d[0], d[1])))
    lo, hi = pitch_range or cc.pitch_deg
    pitch = math.radians(min(max(pitch, lo), hi))
    direction = np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)])
    roll = 0.0
    if rng.random() < cc.roll_prob:
        roll = float(rng.uniform(-cc.roll_max_deg, cc.roll_max_deg))
    fov = fov if fov is not None else float(rng.uniform(*cc.fov_deg))
    w, h = ctx.config.resolution
    return Camera.from_hfov(w, h, round(fov, 3), look_at(eye, eye + direction, roll_deg=round(roll, 3)))


def place_on_surface(ctx: Context, b: Builder, model: Model, ws: WorldSurface, tries: int = 6,
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
    inv = np.linalg.inv(ws.world_from_model)
    s = ws.surface
    for c, h in model.boxes:
        for sx in (-1, 1):
            for sy in (-1, 1):
                p = inv @ world_from_model @ np.array([c[0] + sx * h[0], c[1] + sy * h[1], 0.0, 1.0])
                if abs(p[0] - s.cx) > s.hx + 1e-6 or abs(p[1] - s.cy) > s.hy + 1e-6:
                    return False
    return True


def place_on_floor(ctx: Context, b: Builder, model: Model, sample_xy: Callable[[], np.ndarray], floor_id: int,
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
