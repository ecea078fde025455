"""Render a swatch of every material family's kinds: docs/img/materials.png (rendered with rgbify.render.render).

    python scripts/material_swatches.py [--samples 32] [--tile 200] [--out docs/img/materials.png]

Each swatch is its own render of a 0.5 m box with a 0.2 m sphere on it, made of one kind of one family
(rgbify.scenes.materials FAMILIES, the first seed that draws that kind), under Blender's "courtyard" HDRI, AgX view
transform; the label names family and pattern. The box is 0.5 m so a pattern's real-world scale can be judged
(a wood plank, a tile, a weave cell).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rgbify.render import render  # noqa: E402
from rgbify.scenes.materials import FAMILIES, sample_material  # noqa: E402
from rgbify.scenes.recipe import MaterialConfig  # noqa: E402
from rgbify.scenes.spec import (  # noqa: E402
    Camera,
    Object,
    Primitive,
    RenderSettings,
    SceneSpec,
    World,
    look_at,
)


def swatches() -> list[tuple[str, object]]:
    """(label, Material) for every kind of every family, drawn with its own seed."""
    out = []
    cfg = MaterialConfig(glass_prob=0.0, metal_prob=0.0, texture_prob=1.0)
    for hint, kinds in FAMILIES.items():
        for k, kind in enumerate(kinds):
            # draw until this kind comes up (the family's weights choose kinds)
            for seed in range(500):
                m = sample_material(np.random.default_rng([seed, k]), hint, cfg)
                if m.pattern == kind.pattern and (m.metallic > 0) == (kind.metallic[1] > 0):
                    out.append((f"{hint}: {kind.pattern}", m))
                    break
    return out


def swatch_scene(m, size: int, samples: int) -> SceneSpec:
    """A 0.5 m box (one face seen square-on, one obliquely, the top) with a 0.2 m sphere on it, both of ``m``."""
    objects = (Object("box", Primitive("box", (0.5, 0.5, 0.5)), "box", 1,
                      ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0.25), (0, 0, 0, 1)), material=m),
               Object("ball", Primitive("sphere", (0.2, 0.2, 0.2), segments=48), "ball", 2,
                      ((1, 0, 0, 0.1), (0, 1, 0, -0.1), (0, 0, 1, 0.6), (0, 0, 0, 1)), shading="smooth", material=m))
    cam = Camera.from_hfov(size, size, 40.0, look_at((0.75, -1.05, 1.0), (0.0, 0.0, 0.3)))
    return SceneSpec(camera=cam, objects=objects, world=World(hdri="builtin:courtyard", strength=1.0),
                     render=RenderSettings(samples=samples, view_transform="AgX"), classes=("box", "ball"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--tile", type=int, default=200, help="side of one swatch in pixels")
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "materials.png"))
    ap.add_argument("--only", help="comma-separated parts of labels to render (e.g. 'floor,brick')")
    args = ap.parse_args()
    items = swatches()
    if args.only:
        items = [(label, m) for label, m in items if any(k in label for k in args.only.split(","))]
    t, label_h = args.tile, 14
    rows = -(-len(items) // args.cols)
    sheet = Image.new("RGB", (args.cols * t, rows * (t + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    t0 = time.perf_counter()
    for i, (label, m) in enumerate(items):
        x, y = (i % args.cols) * t, (i // args.cols) * (t + label_h)
        sheet.paste(Image.fromarray(render(swatch_scene(m, t, args.samples)).rgb), (x, y))
        draw.text((x + 3, y + t + 1), label, fill=(0, 0, 0))
    sheet.save(args.out)
    print(f"wrote {args.out}: {len(items)} swatches, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
