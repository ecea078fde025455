"""sample_scene: (recipe config, base seed, sample index) -> a valid SceneSpec, as a pure function.

An attempt is keyed by (recipe, seed, index, attempt) and every phase of it draws from a stream of its own
(rgbify.scenes.context); nothing reads global random state or the clock. A draft scene from the recipe's sampler
gets up to ``CAMERA_TRIES`` cameras (drawn from the attempt's "camera" stream); each view is probed by ray casting
(coverage) and its exposure estimated (relight or reject). A rejected attempt records its reason and the next
attempt starts from fresh streams. Whatever changes the scene of a (recipe, seed, index) bumps SAMPLER_VERSION.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from rgbify.scenes import physics, probe
from rgbify.scenes.assets import library_for
from rgbify.scenes.classes import class_table
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.credits import scene_credits
from rgbify.scenes.geometry import with_level_of_detail
from rgbify.scenes.home import sample_home
from rgbify.scenes.materials import list_images
from rgbify.scenes.outdoor import sample_outdoor
from rgbify.scenes.recipe import RecipeConfig, load_recipe
from rgbify.scenes.spec import (
    Camera,
    Light,
    PostProcess,
    RenderSettings,
    SceneSpec,
    World,
    round_trip_form,
)
from rgbify.scenes.tabletop import sample_tabletop

CAMERA_TRIES = 4
CYCLES_FIELDS = ("samples", "denoise", "max_bounces", "diffuse_bounces", "glossy_bounces", "transmission_bounces",
                 "adaptive_threshold", "light_tree", "clamp_indirect", "caustics", "denoise_prefilter",
                 "world_map_resolution")
"""The Cycles settings a recipe gives every scene's RenderSettings."""


class SceneSamplingError(ValueError):
    """No valid scene within the recipe's max_attempts; the message lists the reject reasons."""


SAMPLERS: dict[str, Callable[[Context], Draft]] = {"indoor": sample_home, "tabletop": sample_tabletop,
                                                    "outdoor": sample_outdoor}
"""The sampler of each recipe kind."""


def check_view(draft: Draft, rays: probe.SceneRays, camera: Camera, config: RecipeConfig,
               sensor: RenderSettings | None = None) -> tuple[probe.Coverage, probe.Exposure, probe.Probe]:
    """Coverage and exposure of one view (through ``sensor``'s exposure); raises Reject with the reason when it is
    not usable."""
    v = config.validity
    pw, ph = v.probe_resolution
    p = probe.probe(rays, camera, pw, ph)
    cov = probe.coverage(p, v.min_instance_fraction, v.near_m)
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
    lit, emit = probe.radiance(rays, p, draft.builder.lights, draft.world, draft.enclosed,
                                interior=draft.interior)
    sensor = sensor or RenderSettings()
    exp = probe.exposure(lit, emit, lc.exposure_target, lc.exposure_ok, lc.max_relight, sensor.view_transform,
                         sensor.exposure_ev)
    if exp.clipped_fraction > lc.max_clipped_fraction:
        raise Reject("overexposed", f"{exp.clipped_fraction:.2f} of pixels blown out")
    if exp.dark_fraction > lc.max_dark_fraction:
        raise Reject("underexposed", f"{exp.dark_fraction:.2f} of pixels near black")
    return cov, exp, p


def scene_temperature(lights: list[Light], world: World) -> float:
    """The colour temperature a camera would balance a scene to: the lights' temperatures weighted by their power
    (suns 10x: their irradiance lights whole scenes), with daylight (6500 K) from the sky or an HDRI."""
    weights, temps = [], []
    for li in lights:
        weights.append(li.power * (10.0 if li.kind == "sun" else 1.0))
        temps.append(li.temperature_k)
    if world.hdri or world.physical_sky:
        weights.append(0.2 * sum(weights) + 1.0)
        temps.append(6500.0)
    w = sum(weights)
    return sum(t * x for t, x in zip(temps, weights, strict=True)) / w if w > 0 else 6500.0


def sensor_settings(config: RecipeConfig, rng: np.random.Generator, lights: list[Light], world: World
                    ) -> RenderSettings:
    """The camera's colour pipeline of one scene, drawn from the recipe's [camera] and [sensor] tables: view
    transform, exposure, white balance (the scene's light temperature plus a residual) and the post-process."""
    cc, sc = config.camera, config.sensor
    wb = None
    if cc.white_balance:
        wb = round(float(np.clip(scene_temperature(lights, world) + rng.uniform(*cc.white_balance_residual_k),
                                 1800.0, 15000.0)), 1)
    post = PostProcess(noise_std=round(float(rng.uniform(*sc.noise_std)), 3),
                       jpeg_quality=int(rng.integers(sc.jpeg_quality[0], sc.jpeg_quality[1] + 1))
                       if rng.random() < sc.jpeg_prob else 0,
                       vignetting=round(float(rng.uniform(*sc.vignetting)), 3),
                       chromatic_aberration_px=round(float(rng.uniform(*sc.chromatic_aberration_px)), 3),
                       motion_blur_px=round(float(rng.uniform(*sc.motion_blur_px)), 2)
                       if rng.random() < sc.motion_blur_prob else 0.0,
                       motion_blur_angle_deg=round(float(rng.uniform(0.0, 180.0)), 1),
                       seed=int(rng.integers(0, 2**31 - 1)))
    return RenderSettings(view_transform=cc.view_transform, exposure_ev=round(float(rng.uniform(*cc.exposure_ev)), 3),
                          white_balance_k=wb, post=post)


def with_depth_of_field(camera: Camera, config: RecipeConfig, rng: np.random.Generator, focus_m: float) -> Camera:
    """``camera`` with depth of field (an f-number from the recipe, focused at ``focus_m``) with probability
    ``dof_prob``; the ground truth still comes from its pinhole."""
    cc = config.camera
    if not (rng.random() < cc.dof_prob) or not np.isfinite(focus_m):
        return camera
    return dataclasses.replace(camera, f_number=round(float(rng.uniform(*cc.f_number)), 2),
                               focus_distance_m=round(float(focus_m), 4))


def _relit(lights: list[Light], world: Any, factor: float) -> tuple[tuple[Light, ...], Any]:
    if factor == 1.0:
        return tuple(lights), world
    ls = tuple(dataclasses.replace(li, power=round(li.power * factor, 4)) for li in lights)
    return ls, dataclasses.replace(world, strength=round(world.strength * factor, 4))


CATALOG_MISSING = ("the Sweet Home 3D furniture catalogue is not installed: furniture is made procedurally "
                   "(apt install sweethome3d-furniture, or set RGBIFY_SH3D_DIR to a folder of .sh3f files)")
"""The one line said, and recorded in spec.meta["catalogue"], when a recipe would draw from a missing catalogue."""


def catalog_for(config: RecipeConfig) -> Any:
    """The catalogue library when the recipe draws from it (``[layout] catalog_prob`` > 0) and it is installed, else
    None: a recipe's catalogue pieces are then made procedurally (rgbify.scenes.rooms), with one CatalogWarning."""
    if getattr(config.layout, "catalog_prob", 0.0) <= 0:
        return None
    import warnings

    from rgbify.scenes.catalog import CatalogWarning, find_catalogs, load_catalog

    if not find_catalogs():
        warnings.warn(f"recipe {config.name!r}: {CATALOG_MISSING}", CatalogWarning, stacklevel=3)
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CatalogWarning)  # models that cannot be used are replaced by made ones
        return load_catalog()


def sample_scene(config: RecipeConfig | str, seed: int, index: int, assets: Any = None) -> SceneSpec:
    """The scene for (config, seed, index): a pure function of its arguments (and of the files in the asset,
    texture and HDRI folders they name). Resamples rejected drafts; raises SceneSamplingError after
    ``config.validity.max_attempts`` failures. ``assets`` is an AssetLibrary (rgbify.scenes.assets.load_assets)
    or a folder path (read once per process while its files are unchanged; bad files are skipped with a
    warning - load the library yourself with strict=True to fail on them instead)."""
    return sample_scene_and_probe(config, seed, index, assets)[0]


def sample_scene_and_probe(config: RecipeConfig | str, seed: int, index: int, assets: Any = None
                           ) -> tuple[SceneSpec, probe.Probe]:
    """sample_scene, also returning the ray-cast probe of the accepted view (used by `scenes stats`)."""
    if isinstance(config, str):
        config = load_recipe(config)
    if assets is not None:
        assets = library_for(assets)
    if assets is not None and not assets.models:
        assets = None
    catalog = catalog_for(config)
    images = tuple(list_images(config.materials.image_texture_dir))
    hdris = tuple(list_images(config.lighting.hdri_dir, hdr_only=True))
    sampler = SAMPLERS[config.kind]
    rejects: list[str] = []
    for attempt in range(config.validity.max_attempts):
        ctx = Context.root(config, seed, index, attempt, assets=assets, images=images, hdris=hdris, catalog=catalog)
        try:
            draft = sampler(ctx)
            settled = physics.settle(ctx.child("physics"), draft.builder, config.physics)
            if settled.loose or settled.removed:
                draft.meta["physics"] = settled.to_meta()
            rays = probe.SceneRays.build(draft.builder.objects)
        except Reject as r:
            rejects.append(r.reason)
            continue
        cameras = ctx.child("camera").rng
        sensor = sensor_settings(config, ctx.child("sensor").rng, draft.builder.lights, draft.world)
        for _ in range(CAMERA_TRIES):
            try:
                camera = draft.sample_camera(cameras)
                cov, exp, view = check_view(draft, rays, camera, config, sensor)
            except Reject as r:
                rejects.append(r.reason)
                continue
            camera = with_depth_of_field(camera, config, ctx.child("lens").rng, cov.depth_median_m)
            lights, world = _relit(draft.builder.lights, draft.world, exp.relight)
            extra = tuple(sorted(assets.classes)) if assets else ()
            meta = {"recipe": config.name, "kind": config.kind, "seed": int(seed), "index": int(index),
                    "attempts": attempt + 1, "rejects": rejects, "coverage": cov.to_meta(),
                    "exposure": exp.to_meta(), **draft.meta}
            used = scene_credits(p.model.credit for p in draft.builder.placed)
            if used:  # the third-party models in the scene, their source and licence (rgbify.scenes.credits)
                meta["assets"] = used
            if catalog is None and getattr(config.layout, "catalog_prob", 0.0) > 0:
                meta["catalogue"] = CATALOG_MISSING
            render_seed = int(ctx.child("render").rng.integers(0, 2**31 - 1))
            render = dataclasses.replace(sensor, seed=render_seed, **{f: getattr(config, f) for f in CYCLES_FIELDS})
            objects = with_level_of_detail(draft.builder.objects, camera)  # mesh files small on screen
            spec = SceneSpec(camera=camera, objects=objects, lights=lights, world=world,
                             render=render, classes=class_table(extra), meta=tuple(meta.items()))
            # canonical form: what a JSON round trip gives back (tuples, not lists, in meta; spec.round_trip_form)
            return round_trip_form(spec.validate()), view
    counts = {r: rejects.count(r) for r in sorted(set(rejects))}
    raise SceneSamplingError(f"recipe {config.name!r}, seed {seed}, index {index}: no valid scene in "
                             f"{config.validity.max_attempts} attempts (rejects: {counts}); loosen the recipe's "
                             "[validity] settings or check its [layout]")
