"""Draw the RGB-and-depth contact sheets of docs/scenes.md: a 4x4 grid of (RGB | depth) pairs per recipe.

    python scripts/scene_sheets.py                      # all recipes -> docs/img/scenes_<recipe>.png
    python scripts/scene_sheets.py --recipes indoor --size 192x144 --samples 16 --seed 0

Scenes are sampled with rgbify.scenes.sample_scene (indices 0..15 of the seed) and rendered with
rgbify.render.render (Cycles on the CPU). Depth is shown as log-scaled planar depth (near = bright yellow, far =
dark purple, nothing hit = black) with each tile's own range printed under it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ANCHORS = np.array([[0.99, 0.91, 0.15], [0.98, 0.55, 0.04], [0.83, 0.25, 0.30], [0.55, 0.09, 0.44],
                    [0.25, 0.04, 0.42], [0.06, 0.03, 0.20]])


def depth_colours(depth_m: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(H, W, 3) uint8 colours of log depth between the tile's 1st and 99th percentile; black where nothing hit."""
    finite = np.isfinite(depth_m)
    out = np.zeros((*depth_m.shape, 3), dtype=np.uint8)
    if not finite.any():
        return out, float("nan"), float("nan")
    lo, hi = np.percentile(depth_m[finite], [1, 99])
    lo, hi = max(float(lo), 1e-3), max(float(hi), float(lo) * 1.01 + 1e-3)
    t = np.clip((np.log(np.maximum(depth_m[finite], 1e-3)) - np.log(lo)) / (np.log(hi) - np.log(lo)), 0, 1)
    x = t * (len(ANCHORS) - 1)
    k = np.minimum(x.astype(int), len(ANCHORS) - 2)
    f = (x - k)[:, None]
    out[finite] = np.round(255 * ((1 - f) * ANCHORS[k] + f * ANCHORS[k + 1])).astype(np.uint8)
    return out, lo, hi


def sheet(recipe: str, seed: int, size: tuple[int, int], samples: int, n: int = 16) -> tuple[Image.Image, dict]:
    from rgbify.render import render
    from rgbify.scenes import load_recipe, sample_scene

    w, h = size
    config = load_recipe(recipe, resolution=(w, h), samples=samples)
    label_h = 12
    cols = 4
    rows = (n + cols - 1) // cols
    img = Image.new("RGB", (cols * (2 * w + 4), rows * (h + label_h + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    info = {"recipe": recipe, "seed": seed, "size": [w, h], "samples": samples, "tiles": []}
    for i in range(n):
        t0 = time.perf_counter()
        spec = sample_scene(config, seed, i)
        result = render(spec)
        dt = time.perf_counter() - t0
        dep, lo, hi = depth_colours(result.depth)
        x0, y0 = (i % cols) * (2 * w + 4), (i // cols) * (h + label_h + 4)
        img.paste(Image.fromarray(result.rgb), (x0, y0))
        img.paste(Image.fromarray(dep), (x0 + w, y0))
        visible = len([r for r in result.instances if r["pixel_count"] > 0])
        draw.text((x0 + 2, y0 + h), f"#{i}  {visible} inst  depth {lo:.2g}-{hi:.3g} m", fill=(0, 0, 0))
        meta = dict(spec.meta)
        info["tiles"].append({"index": i, "seconds": round(dt, 2), "objects": len(spec.objects),
                              "visible_instances": visible, "depth_p1_m": lo, "depth_p99_m": hi,
                              "mean_rgb": round(float(result.rgb.mean()) / 255, 4),
                              "predicted_mean_srgb": meta["exposure"]["mean_srgb"],
                              "relight": meta["exposure"]["relight"], "attempts": meta["attempts"]})
        print(f"{recipe} #{i}: {dt:.1f} s, {len(spec.objects)} objects, {visible} visible", file=sys.stderr)
    return img, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="*", default=["indoor", "tabletop", "outdoor"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="192x144", help="tile size WxH in pixels")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--n", type=int, default=16, help="tiles per sheet (4 per row)")
    p.add_argument("--out", default="docs/img", help="output folder")
    args = p.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for recipe in args.recipes:
        img, info = sheet(recipe, args.seed, (w, h), args.samples, args.n)
        img.save(out / f"scenes_{recipe}.png", optimize=True)
        (out / f"scenes_{recipe}.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's rgbify, not an installed one
    sys.exit(main())
