"""Cycles settings study: image quality against render time, to choose the recipes' defaults.

    python benchmarks/bench_cycles_settings.py                  # 3 recipes x 2 scenes, 256x192, ~25 min on 2 cores
    python benchmarks/bench_cycles_settings.py --size 128x96 --scenes 1 --quick

For each scene (one recipe scene, camera resized, the photometric post-process off so only the renderer is judged)
it renders a reference (1024 samples, adaptive threshold 0.001, 16/8/8/16 bounces, no clamp, caustics, OIDN with the
accurate prefilter; cached in --cache by the hash of the spec it renders and of the renderer's source), then each
candidate setting, and prints the candidate's core-seconds (CPU time of this process during the RGB render only, the
scene already built and synced by an untimed 1-sample render: unlike wall time, it barely changes with other jobs on
the machine), wall seconds, PSNR (dB) and SSIM (Wang et al. 2004, Gaussian window sigma 1.5, on luma) against the
reference, each a mean over the scenes, and the core-seconds as a ratio to the build default's (16 spp) in the same
run. Settings on the Pareto front of (time, 1 - SSIM) are starred.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rgbify.render.cli import resize_camera, spec_from_recipe  # noqa: E402
from rgbify.scenes.spec import PostProcess  # noqa: E402

REFERENCE = dict(samples=1024, adaptive_threshold=0.001, max_bounces=16, diffuse_bounces=8, glossy_bounces=8,
                 transmission_bounces=16, clamp_indirect=0.0, caustics=True, light_tree=True, denoise=True,
                 denoise_prefilter="ACCURATE", world_map_resolution=1024)

BASE = "16 spp (build default)"  # `rgbify build`'s default samples; every other knob at the recipes' default
CANDIDATES: list[tuple[str, dict]] = [
    ("8 spp", dict(samples=8)),
    (BASE, dict(samples=16)),
    ("32 spp", dict(samples=32)),
    ("64 spp", dict(samples=64)),
    ("128 spp", dict(samples=128)),
    ("16 spp, no denoiser", dict(samples=16, denoise=False)),
    ("16 spp, prefilter FAST", dict(samples=16, denoise_prefilter="FAST")),
    ("16 spp, prefilter NONE", dict(samples=16, denoise_prefilter="NONE")),
    ("16 spp, adaptive 0.05", dict(samples=16, adaptive_threshold=0.05)),
    ("16 spp, adaptive 0.1", dict(samples=16, adaptive_threshold=0.1)),
    ("16 spp, bounces 4 (2/2/4)", dict(samples=16, max_bounces=4, diffuse_bounces=2, glossy_bounces=2,
                                       transmission_bounces=4)),
    ("16 spp, bounces 12 (8/8/12)", dict(samples=16, max_bounces=12, diffuse_bounces=8, glossy_bounces=8)),
    ("16 spp, light tree off", dict(samples=16, light_tree=False)),
    ("16 spp, OIDN quality BALANCED", dict(samples=16, _denoise_quality="BALANCED")),
    ("16 spp, OIDN quality FAST", dict(samples=16, _denoise_quality="FAST")),
    ("12 spp", dict(samples=12)),
    ("20 spp, OIDN quality BALANCED", dict(samples=20, _denoise_quality="BALANCED")),
    ("16 spp, clamp 0 (off)", dict(samples=16, clamp_indirect=0.0)),
    ("16 spp, clamp 3", dict(samples=16, clamp_indirect=3.0)),
    ("16 spp, caustics off", dict(samples=16, caustics=False)),
    ("16 spp, before (bounces 8/4/4/12, clamp 10)",
     dict(samples=16, max_bounces=8, diffuse_bounces=4, glossy_bounces=4, clamp_indirect=10.0)),
    # world_map_resolution is not a candidate: every candidate renders the one built scene, where Cycles keeps the
    # world's importance map (three map sizes gave identical images); benchmarks/bench_world_map.py measures it
    ("16 spp, clamp 0, adaptive 0.05", dict(samples=16, clamp_indirect=0.0, adaptive_threshold=0.05)),
    ("32 spp, clamp 0, adaptive 0.05", dict(samples=32, clamp_indirect=0.0, adaptive_threshold=0.05)),
    # Cycles settings the recipes do not carry (``_cycles``: set on scene.cycles for that render only)
    ("16 spp, path guiding", dict(samples=16, _cycles=dict(use_guiding=True, use_surface_guiding=True))),
    ("12 spp, path guiding", dict(samples=12, _cycles=dict(use_guiding=True, use_surface_guiding=True))),
    ("16 spp, sampling pattern TABULATED_SOBOL", dict(samples=16, _cycles=dict(sampling_pattern="TABULATED_SOBOL"))),
    ("16 spp, adaptive min 4, threshold 0.1", dict(samples=16, adaptive_threshold=0.1,
                                                   _cycles=dict(adaptive_min_samples=4))),
    ("16 spp, fast GI after 2 bounces", dict(samples=16, _cycles=dict(use_fast_gi=True, ao_bounces_render=2))),
    ("16 spp, fast GI after 3 bounces", dict(samples=16, _cycles=dict(use_fast_gi=True, ao_bounces_render=3))),
]
QUICK = {BASE, "64 spp", "16 spp, caustics off", "16 spp, clamp 0 (off)"}


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722]) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM of two uint8 RGB images, on luma in [0, 1] (Gaussian window, K1 = 0.01, K2 = 0.03)."""
    x, y = luma(a), luma(b)
    c1, c2 = 0.01**2, 0.03**2
    f = lambda v: gaussian_filter(v, sigma, truncate=3.5)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def render_variants(spec, variants: list[tuple[str, dict]], tmp: str) -> dict[str, tuple[np.ndarray, float, float]]:
    """Build ``spec`` once in Blender and render the RGB image under each variant of its RenderSettings:
    {name: (rgb, core-seconds, wall seconds)}."""
    from rgbify.render import cycles
    from rgbify.scenes.geometry import scene_meshes

    cycles.reset()
    built = cycles.build_scene(spec, scene_meshes(spec.objects))
    cycles._common_cycles(built.scene, "cpu", None)
    # untimed: the first render of a built scene also syncs it (BVH, shaders, the world's importance map), which the
    # first timed variant paid for before; 1 sample of the first variant's settings, so the map is the one it builds
    first = {k: v for k, v in variants[0][1].items() if not k.startswith("_")}
    warm = dataclasses.replace(spec, render=dataclasses.replace(spec.render, **{**first, "samples": 1}))
    cycles.render_rgb(built, warm, os.path.join(tmp, "rgb.png"))
    out = {}
    for name, change in variants:
        change = dict(change)
        cycles.DENOISE_QUALITY = change.pop("_denoise_quality", "HIGH")  # OIDN's quality: a renderer setting
        extra = change.pop("_cycles", {})
        before = {k: getattr(built.scene.cycles, k) for k in extra}
        for k, v in extra.items():
            setattr(built.scene.cycles, k, v)
        s = dataclasses.replace(spec, render=dataclasses.replace(spec.render, **change))
        t0, c0 = time.perf_counter(), cpu_seconds()
        rgb = cycles.render_rgb(built, s, os.path.join(tmp, "rgb.png"))
        out[name] = (rgb, cpu_seconds() - c0, time.perf_counter() - t0)
        for k, v in before.items():
            setattr(built.scene.cycles, k, v)
        print(f"  {name}: {out[name][1]:.1f} core-s, {out[name][2]:.1f} s", file=sys.stderr, flush=True)
    return out


def renderer_hash() -> str:
    """SHA-256 of rgbify/render's sources: shading changes alter the picture without changing the spec."""
    import hashlib
    import pathlib

    h = hashlib.sha256()
    for f in sorted((pathlib.Path(HERE).parent / "rgbify" / "render").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="indoor,tabletop,outdoor")
    ap.add_argument("--scenes", type=int, default=2, help="scenes per recipe")
    ap.add_argument("--size", default="256x192")
    ap.add_argument("--quick", action="store_true", help=f"only {sorted(QUICK)}")
    ap.add_argument("--only", help="semicolon-separated candidate names to run (besides the build default)")
    ap.add_argument("--save", help="folder to write the reference and the candidates' PNGs to")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rgbify-cycles-references"),
                    help="folder of reference renders, by spec hash (reused)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    candidates = [c for c in CANDIDATES if not args.quick or c[0] in QUICK]
    if args.only:
        keep = {BASE, *args.only.split(";")}
        candidates = [c for c in candidates if c[0] in keep]
    from rgbify.scenes.spec import spec_hash

    renderer = renderer_hash()  # a reference is reused only for the same spec and the same renderer code
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, _ in candidates}
    for recipe in args.recipes.split(","):
        for index in range(args.scenes):
            spec = spec_from_recipe(recipe, 0, index)
            spec = dataclasses.replace(spec, camera=resize_camera(spec.camera, w, h),
                                       render=dataclasses.replace(spec.render, post=PostProcess()))
            print(f"{recipe} scene {index}: {len(spec.objects)} objects", file=sys.stderr, flush=True)
            as_reference = dataclasses.replace(spec, render=dataclasses.replace(spec.render, **REFERENCE))
            cached = os.path.join(args.cache, f"{spec_hash(as_reference)[:32]}-{renderer[:16]}.png")
            variants = candidates if os.path.exists(cached) else [("reference", REFERENCE), *candidates]
            with tempfile.TemporaryDirectory() as tmp:
                renders = render_variants(spec, variants, tmp)
            if "reference" in renders:
                os.makedirs(args.cache, exist_ok=True)
                Image.fromarray(renders["reference"][0]).save(cached + ".tmp.png")
                os.replace(cached + ".tmp.png", cached)
            ref = np.asarray(Image.open(cached).convert("RGB"))
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                for name, (rgb, _, _) in renders.items():
                    slug = name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("/", "-")
                    Image.fromarray(rgb).save(os.path.join(args.save, f"{recipe}{index}_{slug}.png"))
            for name, _ in candidates:
                rgb, cpu, wall = renders[name]
                rows[name].append((cpu, wall, psnr(rgb, ref), ssim(rgb, ref)))
    default = np.mean([r[0] for r in rows[BASE]])  # core-s
    stats = {name: tuple(np.mean(np.array(v), axis=0)) for name, v in rows.items()}
    front = {n for n, (t, _, _, s) in stats.items()
             if not any(t2 <= t and s2 >= s and (t2, s2) != (t, s) for t2, _, _, s2 in stats.values())}
    n = args.scenes * len(args.recipes.split(","))
    print(f"## Cycles settings, {w}x{h}, mean over {n} scenes (reference: 1024 spp, OIDN)\n")
    print("| setting | core-seconds | x default | wall s | PSNR dB | SSIM | Pareto |")
    print("|---|---:|---:|---:|---:|---:|:-:|")
    for name, (t, wall, p, s) in stats.items():
        ratio = f"{t / default:.2f}"
        print(f"| {name} | {t:.1f} | {ratio} | {wall:.1f} | {p:.2f} | {s:.4f} | {'*' if name in front else ''} |")


if __name__ == "__main__":
    main()
