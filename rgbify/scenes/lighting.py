"""Lights and the world: sun lamps, the sky (a colour, one of Blender's HDRIs, or a physical sky), poses that aim
a light, and the sky's radiance and irradiance for the sampler's exposure estimate (rgbify/data/skies.json, measured
by scripts/sky_stats.py)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable
from importlib import resources

import numpy as np

from rgbify.scenes.context import Context
from rgbify.scenes.spec import Light, World, matrix4

BUILTIN_HDRIS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
"""The CC0 HDRIs Blender ships (bpy/<version>/datafiles/studiolights/world; Poly Haven originals by Greg Zaal),
named ``builtin:NAME`` in a spec."""
DAYLIGHT_HDRIS = ("city", "courtyard", "forest", "sunrise", "sunset")
"""The outdoor ones, for skies seen out of doors and through windows."""
LUMA = np.array([0.2126, 0.7152, 0.0722])


@functools.cache
def sky_table() -> dict:
    """rgbify/data/skies.json: mean radiance and irradiance (up, down, sideways) of the built-in HDRIs and of the
    physical sky per sun elevation, at world strength 1."""
    with resources.files("rgbify").joinpath("data/skies.json").open("r") as f:
        return json.load(f)


def _row(world: World) -> dict | None:
    t = sky_table()
    if world.hdri and world.hdri.startswith("builtin:"):
        return t["hdri"].get(world.hdri.split(":", 1)[1])
    if world.physical_sky:
        el = float(np.clip(world.sun_elevation_deg, 0.0, 90.0))
        lo = int(el // 5) * 5
        hi = min(lo + 5, 90)
        a, b = t["physical_sky"][str(lo)], t["physical_sky"][str(hi)]
        w = (el - lo) / 5.0 if hi != lo else 0.0
        return {k: list((1 - w) * np.asarray(a[k]) + w * np.asarray(b[k])) for k in a}
    return None


def sky_model(world: World) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(linear RGB radiance seen by rays that leave the scene, normals (N, 3) -> luminance irradiance (N,)) of the
    world at its strength: from the measured table for built-in HDRIs and the physical sky, from the colour for a
    plain sky; a user's HDRI file (not measured) is taken as a grey of radiance 0.5."""
    s = float(world.strength)
    row = _row(world)
    if row is None:
        bg = (np.asarray(world.background_color, dtype=np.float64) if not world.hdri else np.full(3, 0.5)) * s
        lum = float(bg @ LUMA)
        return bg, lambda n: math.pi * lum * (1.0 + n[:, 2]) / 2.0
    bg = np.asarray(row["mean_upper"]) * s
    up, down, side = (float(np.asarray(row[k]) @ LUMA) * s for k in ("irradiance_up", "irradiance_down",
                                                                      "irradiance_side"))

    def irradiance(n: np.ndarray) -> np.ndarray:
        z = n[:, 2]
        return side + np.where(z > 0, z * (up - side), -z * (down - side))

    return bg, irradiance


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


def sky_world(ctx: Context, strength_scale: float = 1.0, sun: Light | None = None) -> World:
    """The world of a scene: with probability ``physical_sky_prob`` (and a ``sun``) Blender's physical sky with
    that sun, as bright as ``sky_to_sun`` says; else with probability ``hdri_prob`` an HDRI (from ``hdri_dir``,
    or one of Blender's daylight HDRIs), turned at random; else a clear-to-overcast sky colour."""
    rng, cfg = ctx.rng, ctx.config.lighting
    if sun is not None and rng.random() < cfg.physical_sky_prob:
        return physical_sky(ctx, sun)
    hdris = list(ctx.hdris) or ([f"builtin:{n}" for n in DAYLIGHT_HDRIS] if cfg.builtin_hdris else [])
    if hdris and rng.random() < cfg.hdri_prob:
        return World(background_color=(0.5, 0.5, 0.5), strength=round(float(rng.uniform(*cfg.world_strength)), 4),
                     hdri=hdris[int(rng.integers(len(hdris)))],
                     hdri_rotation_deg=round(float(rng.uniform(0, 360)), 2))
    # clear to overcast sky: blue-ish to grey, in linear RGB
    t = rng.random()
    blue = np.array([0.25, 0.45, 0.85])
    grey = np.array([0.6, 0.62, 0.65])
    c = (1 - t) * blue + t * grey
    return World(background_color=tuple(round(float(x), 4) for x in c),  # type: ignore[arg-type]
                 strength=round(float(rng.uniform(*cfg.world_strength) * strength_scale), 4))


def physical_sky(ctx: Context, sun: Light) -> World:
    """Blender's physical sky lit by ``sun`` (its elevation and azimuth), its strength set so that the sky's
    irradiance on the ground is ``sky_to_sun`` of the sun's (measured table: rgbify/data/skies.json)."""
    m = np.asarray(sun.world_from_light, dtype=np.float64)
    to_sun = m[:3, 2] / np.linalg.norm(m[:3, 2])  # a sun lamp shines along its local -z
    el = math.degrees(math.asin(float(np.clip(to_sun[2], -1.0, 1.0))))
    az = math.degrees(math.atan2(to_sun[1], to_sun[0]))
    world = World(physical_sky=True, sun_elevation_deg=round(max(el, 0.0), 3), sun_azimuth_deg=round(az, 3),
                  air_density=round(float(ctx.rng.uniform(0.8, 1.5)), 3),
                  dust_density=round(float(ctx.rng.uniform(0.5, 3.0)), 3))
    _, e_sky = sky_model(world)
    sky_up = float(e_sky(np.array([[0.0, 0.0, 1.0]]))[0])
    sun_up = float(sun.power) * max(to_sun[2], 0.05) * float(luminance_of(sun))
    ratio = float(ctx.rng.uniform(*ctx.config.lighting.sky_to_sun))
    return dataclasses.replace(world, strength=round(ratio * sun_up / max(sky_up, 1e-6), 5))


def luminance_of(light: Light) -> float:
    """The luminance of a light's colour (its temperature's blackbody colour is taken as white: 1)."""
    return 1.0 if light.color is None else float(np.asarray(light.color) @ LUMA)
