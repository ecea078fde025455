"""``rgbify render``: one scene spec (a JSON file, or a recipe sample) -> a render directory (CONVENTIONS §5)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from rgbify.errors import UserError

MAX_PIXELS = 4096 * 4096
"""Images larger than this (16.8 megapixels) need ``--allow-large``: the centre-ray data render is about four times
the image's pixels at 40 bytes each, so a mistyped size would run for hours and exhaust memory."""
BLENDER_MAX_SIDE = 65536
"""Blender's largest image side."""
BYTES_PER_PIXEL = 200
"""Rough peak memory of a Cycles render per image pixel (data render at 4x the pixels, its passes, the arrays)."""


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="render one scene into RGB + depth, normals, instance/semantic IDs (docs/rendering.md)",
        description="Render one scene spec with Blender Cycles (or the pyrender raster preview) and write rgb.png, "
        "depth/normals/instance/semantic/edge .npy, camera.json, scene.json and geometry.glb into --out.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scene", help="scene spec JSON (a bare spec, or a render directory's scene.json)")
    src.add_argument("--recipe", help="recipe name or path; renders rgbify.scenes.sample_scene(recipe, seed, index)")
    p.add_argument("--seed", type=int, default=0, help="base seed for --recipe (default 0)")
    p.add_argument("--index", type=int, default=0, help="sample index for --recipe (default 0)")
    p.add_argument("--out", required=True, help="output folder: new, empty, or an earlier render (replaced); written "
                   "whole (files go to a temporary folder beside it, renamed at the end)")
    p.add_argument("--resolution", help="override the camera resolution, WxH (intrinsics scale with it)")
    p.add_argument("--samples", type=int, help="override the RGB render's samples per pixel")
    p.add_argument("--backend", choices=("cycles", "raster"), default="cycles",
                   help="cycles (default): Blender Cycles; raster: fast pyrender preview through EGL")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="Cycles device; gpu = CUDA/OptiX")
    p.add_argument("--allow-large", action="store_true",
                   help=f"render images above {MAX_PIXELS / 1e6:.1f} megapixels (refused by default: a mistyped "
                   "size would run for hours and exhaust memory)")
    p.set_defaults(func=run_render)


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--resolution {text!r} is not WxH, e.g. 512x384") from None
    if w < 1 or h < 1:
        raise UserError(f"--resolution {text!r} must be positive, e.g. 512x384")
    return w, h


def load_scene_file(path: str):
    from rgbify.scenes.spec import SpecError, spec_from_dict

    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise UserError(f"cannot read scene file {path!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"scene file {path!r} is not valid JSON: {e}") from None
    if isinstance(d, dict) and "spec" in d and "schema_version" in d and isinstance(d["spec"], dict):
        d = d["spec"]  # a render directory's scene.json
    try:
        return spec_from_dict(d).validate()
    except SpecError as e:
        raise UserError(f"scene file {path!r}: {e}") from None


def spec_from_recipe(recipe: str, seed: int, index: int):
    try:
        from rgbify.scenes import load_recipe, sample_scene
    except ImportError:
        raise UserError("--recipe needs rgbify.scenes.load_recipe and sample_scene, which this installation "
                        "lacks; render a JSON spec with --scene instead") from None
    try:
        config = load_recipe(recipe)
    except (ValueError, OSError, KeyError) as e:
        raise UserError(f"recipe {recipe!r}: {e}") from None
    return sample_scene(config, seed, index)


def resize_camera(camera, width: int, height: int):
    """The camera at another resolution: same horizontal FOV, principal point at the same relative position, and
    square pixels kept square (the vertical FOV follows the new aspect ratio)."""
    resized = camera.resized(width, height)
    if camera.fx == camera.fy:
        resized = dataclasses.replace(resized, fy=resized.fx)
    return resized


def apply_overrides(spec, resolution: str | None, samples: int | None):
    if resolution:
        w, h = parse_resolution(resolution)
        spec = dataclasses.replace(spec, camera=resize_camera(spec.camera, w, h))
    if samples is not None:
        if samples < 1:
            raise UserError(f"--samples {samples} must be >= 1")
        spec = dataclasses.replace(spec, render=dataclasses.replace(spec.render, samples=int(samples)))
    return spec


def check_size(camera, allow_large: bool) -> None:
    """UserError for an image Blender cannot make, or one above MAX_PIXELS without ``--allow-large``."""
    w, h = camera.width, camera.height
    if max(w, h) > BLENDER_MAX_SIDE:
        raise UserError(f"image size {w}x{h}: Blender renders at most {BLENDER_MAX_SIDE} pixels a side; give a "
                        "smaller --resolution")
    if w * h > MAX_PIXELS and not allow_large:
        raise UserError(f"image size {w}x{h} is {w * h / 1e6:.1f} megapixels, above the {MAX_PIXELS / 1e6:.1f} "
                        f"megapixel cap (it would need about {w * h * BYTES_PER_PIXEL / 2**30:.0f} GB of memory); "
                        "give a smaller --resolution, or pass --allow-large to render it anyway")


def _render(spec, backend: str, device: str):
    """Render ``spec``: Cycles in a worker process (Blender ignores Ctrl-C while it renders; the worker is killed at
    once when this process is interrupted, and its temporary folder, Blender's included, goes with it or is swept by
    the next run after a SIGKILL), the raster preview in this process."""
    from rgbify.render import render
    from rgbify.render.worker import RenderWorker

    if backend != "cycles":
        return render(spec, backend=backend, device=device)
    with RenderWorker(timeout_s=365 * 86400.0, device=device) as worker:  # no recycling after its one scene
        return worker.render(spec)


def warn_if_one_object(result, spec) -> None:
    """A frame that one object fills whole (a camera inside or against it) rendered fine but is rarely meant."""
    ids = set(result.instance.ravel().tolist())
    if len(ids) == 1 and 0 not in ids:
        (iid,) = ids
        obj = next((o for o in spec.objects if o.instance_id == iid), None)
        what = f"{obj.name!r} ({obj.class_name}, instance {iid})" if obj else f"instance {iid}"
        print(f"rgbify: warning: every pixel shows one object, {what}: the camera may be inside it or right against "
              "it; check camera.world_from_camera", file=sys.stderr)


def run_render(args: argparse.Namespace) -> int:
    from rgbify.fileio import check_output_dir, disk_error
    from rgbify.render import SceneError, write_render_dir
    from rgbify.render.render_dir import is_render_dir

    t0 = time.perf_counter()
    spec = load_scene_file(args.scene) if args.scene else spec_from_recipe(args.recipe, args.seed, args.index)
    spec = apply_overrides(spec, args.resolution, args.samples)
    check_size(spec.camera, args.allow_large)
    check_output_dir(args.out, is_render_dir, what="render folder")  # before the render, not after it
    try:  # Ctrl-C or SIGTERM (rgbify.cli) kills the worker at once and leaves --out as it was: exit 130
        result = _render(spec, args.backend, args.device)
    except SceneError as e:
        raise UserError(f"scene could not be rendered: {' | '.join(str(e).split(chr(10)))}") from None
    result.timings["cli_setup"] = time.perf_counter() - t0 - result.timings.get("total", 0.0)
    try:
        timings = write_render_dir(result, spec, args.out)
    except OSError as e:  # a full disk: the earlier render in --out (if any) is as it was
        raise disk_error(e, args.out) from None
    warn_if_one_object(result, spec)
    phases = ", ".join(f"{k} {v:.3f}s" for k, v in timings.items())
    print(f"rgbify render: wrote {os.path.abspath(args.out)} ({result.width}x{result.height}, "
          f"{len(result.instances)} instances; {phases})")
    return 0
