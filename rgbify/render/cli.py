"""``rgbify render``: one scene spec (a JSON file, or a recipe sample) -> a render directory (CONVENTIONS §5)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

from rgbify.errors import UserError


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
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--resolution", help="override the camera resolution, WxH (intrinsics scale with it)")
    p.add_argument("--samples", type=int, help="override the RGB render's samples per pixel")
    p.add_argument("--backend", choices=("cycles", "raster"), default="cycles",
                   help="cycles (default): Blender Cycles; raster: fast pyrender preview through EGL")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="Cycles device; gpu = CUDA/OptiX")
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


def run_render(args: argparse.Namespace) -> int:
    from rgbify.render import SceneError, render, write_render_dir

    t0 = time.perf_counter()
    spec = load_scene_file(args.scene) if args.scene else spec_from_recipe(args.recipe, args.seed, args.index)
    spec = apply_overrides(spec, args.resolution, args.samples)
    try:
        result = render(spec, backend=args.backend, device=args.device)
    except SceneError as e:
        raise UserError(f"scene could not be rendered: {e}") from None
    result.timings["cli_setup"] = time.perf_counter() - t0 - result.timings.get("total", 0.0)
    timings = write_render_dir(result, spec, args.out)
    phases = ", ".join(f"{k} {v:.3f}s" for k, v in timings.items())
    print(f"rgbify render: wrote {os.path.abspath(args.out)} ({result.width}x{result.height}, "
          f"{len(result.instances)} instances; {phases})")
    return 0
