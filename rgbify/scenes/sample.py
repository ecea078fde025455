"""sample_scene: (recipe config, base seed, sample index) -> a valid SceneSpec, as a pure function.

Per attempt, the random stream comes from ``numpy.random.default_rng(SeedSequence([recipe_hash, seed, index,
attempt]))``; nothing reads global random state or the clock. A draft scene from the recipe's sampler gets up to
``CAMERA_TRIES`` cameras; each view is probed by ray casting (coverage) and its exposure estimated (relight or
reject). A rejected attempt records its reason and the next attempt starts from a fresh stream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from rgbify.scenes import checks
from rgbify.scenes.classes import class_table
from rgbify.scenes.common import Context, Draft, Reject
from rgbify.scenes.materials import list_images
from rgbify.scenes.recipe import RecipeConfig, load_recipe
from rgbify.scenes.spec import Camera, Light, RenderSettings, SceneSpec, spec_from_json, spec_to_json

CAMERA_TRIES = 4


class SceneSamplingError(ValueError):
    """No valid scene within the recipe's max_attempts; the message lists the reject reasons."""


def recipe_hash(name: str) -> int:
    """A stable 64-bit number for a recipe name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def sample_rng(name: str, seed: int, index: int, attempt: int = 0) -> np.random.Generator:
    if seed < 0 or index < 0:
        raise ValueError(f"seed ({seed}) and index ({index}) must be non-negative integers")
    return np.random.default_rng(np.random.SeedSequence([recipe_hash(name), int(seed), int(index), int(attempt)]))


def sampler_for(kind: str) -> Callable[[Context], Draft]:
    module = importlib.import_module(f"rgbify.scenes.{kind}")
    return getattr(module, f"sample_{kind}")


def check_view(draft: Draft, rays: checks.SceneRays, camera: Camera, config: RecipeConfig
               ) -> tuple[checks.Coverage, checks.Exposure, checks.Probe]:
    """Coverage and exposure of one view; raises Reject with the reason when it is not usable."""
    v = config.validity
    pw, ph = v.probe_resolution
    p = checks.probe(rays, camera, pw, ph)
    cov = checks.coverage(p, v.min_instance_fraction, v.near_m)
    if cov.backfacing_fraction > 0.15:
        raise Reject("camera_inside_geometry", f"{cov.backfacing_fraction:.2f} of rays see back faces")
    if cov.sky_fraction > v.max_sky_fraction:
        raise Reject("too_much_sky", f"{cov.sky_fraction:.2f} > {v.max_sky_fraction}")
    if cov.near_fraction > v.max_near_fraction:
        raise Reject("camera_too_close", f"{cov.near_fraction:.2f} of rays within {v.near_m} m")
    if cov.largest_fraction > v.max_largest_fraction:
        raise Reject("one_object_fills_view", f"{cov.largest_fraction:.2f}")
    if cov.visible_instances < v.min_visible_instances:
        raise Reject("too_few_instances", f"{cov.visible_instances} < {v.min_visible_instances}")
    lc = config.lighting
    lit, emit = checks.radiance(rays, p, draft.builder.lights, draft.world, draft.enclosed,
                                interior=draft.interior)
    exp = checks.exposure(lit, emit, lc.exposure_target, lc.exposure_ok, lc.max_relight)
    if exp.clipped_fraction > lc.max_clipped_fraction:
        raise Reject("overexposed", f"{exp.clipped_fraction:.2f} of pixels blown out")
    if exp.dark_fraction > lc.max_dark_fraction:
        raise Reject("underexposed", f"{exp.dark_fraction:.2f} of pixels near black")
    return cov, exp, p


def _relit(lights: list[Light], world: Any, factor: float) -> tuple[tuple[Light, ...], Any]:
    if factor == 1.0:
        return tuple(lights), world
    ls = tuple(dataclasses.replace(li, power=round(li.power * factor, 4)) for li in lights)
    return ls, dataclasses.replace(world, strength=round(world.strength * factor, 4))


def sample_scene(config: RecipeConfig | str, seed: int, index: int, assets: Any = None) -> SceneSpec:
    """The scene for (config, seed, index): a pure function of its arguments (and of the files in the asset,
    texture and HDRI folders they name). Resamples rejected drafts; raises SceneSamplingError after
    ``config.validity.max_attempts`` failures. ``assets`` is an AssetLibrary (rgbify.scenes.assets.load_assets)
    or a folder path (read once per process while its files are unchanged; bad files are skipped with a
    warning - load the library yourself with strict=True to fail on them instead)."""
    return sample_scene_and_probe(config, seed, index, assets)[0]


def sample_scene_and_probe(config: RecipeConfig | str, seed: int, index: int, assets: Any = None
                           ) -> tuple[SceneSpec, checks.Probe]:
    """sample_scene, also returning the ray-cast probe of the accepted view (used by `scenes stats`)."""
    if isinstance(config, str):
        config = load_recipe(config)
    if assets is not None:
        from rgbify.scenes.assets import library_for
        assets = library_for(assets)
    if assets is not None and not assets.models:
        assets = None
    images = list_images(config.materials.image_texture_dir)
    hdris = [p for p in list_images(config.lighting.hdri_dir) if p.lower().endswith((".hdr", ".exr"))]
    sampler = sampler_for(config.kind)
    rejects: list[str] = []
    for attempt in range(config.validity.max_attempts):
        rng = sample_rng(config.name, seed, index, attempt)
        ctx = Context(rng=rng, config=config, assets=assets, images=images, hdris=hdris)
        try:
            draft = sampler(ctx)
            rays = checks.SceneRays.build(draft.builder.objects, assets.mesh_cache if assets else None)
        except Reject as r:
            rejects.append(r.reason)
            continue
        for _ in range(CAMERA_TRIES):
            try:
                camera = draft.sample_camera(rng)
                cov, exp, probe = check_view(draft, rays, camera, config)
            except Reject as r:
                rejects.append(r.reason)
                continue
            lights, world = _relit(draft.builder.lights, draft.world, exp.relight)
            extra = tuple(sorted(assets.classes)) if assets else ()
            meta = {"recipe": config.name, "kind": config.kind, "seed": int(seed), "index": int(index),
                    "attempts": attempt + 1, "rejects": rejects, "coverage": cov.to_meta(),
                    "exposure": exp.to_meta(), **draft.meta}
            spec = SceneSpec(camera=camera, objects=tuple(draft.builder.objects), lights=lights, world=world,
                             render=RenderSettings(samples=config.samples, denoise=config.denoise,
                                                   seed=int(rng.integers(0, 2**31 - 1)),
                                                   max_bounces=config.max_bounces),
                             classes=class_table(extra), meta=tuple(meta.items()))
            # canonical form: exactly what a JSON round trip gives back (tuples, not lists, in meta)
            return spec_from_json(spec_to_json(spec.validate())), probe
    counts = {r: rejects.count(r) for r in sorted(set(rejects))}
    raise SceneSamplingError(f"recipe {config.name!r}, seed {seed}, index {index}: no valid scene in "
                             f"{config.validity.max_attempts} attempts (rejects: {counts}); loosen the recipe's "
                             "[validity] settings or check its [layout]")
