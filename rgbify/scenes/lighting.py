"""Lights and the world: sun lamps, the sky colour or an HDRI, and poses that aim a light."""

from __future__ import annotations

import numpy as np

from rgbify.scenes.context import Context
from rgbify.scenes.spec import Light, World, matrix4


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
