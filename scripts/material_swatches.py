"""Render a swatch of every material family's kinds: docs/img/materials.png (rendered with rgbify.render.render).

    python scripts/material_swatches.py [--samples 32] [--size 1200x900] [--out docs/img/materials.png]

Each swatch is a 0.5 m box with a 0.2 m sphere on it, made of one kind of one family (rgbify.scenes.materials
FAMILIES), drawn with seed 0, under Blender's "courtyard" HDRI, AgX view transform; the label names family and
pattern. The boxes are 0.5 m so a pattern's real-world scale can be judged (a wood plank, a tile, a weave cell).
"""

from __future__ import annotations

import argparse
import sys
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


def scene(items: list, cols: int, w: int, h: int, samples: int) -> tuple[SceneSpec, list[tuple[float, float]]]:
    objects, centres = [], []
    rows = -(-len(items) // cols)
    for i, (_, m) in enumerate(items):
        x, y = (i % cols) * 0.75, -(i // cols) * 1.0
        centres.append((x, y))
        objects.append(Object(f"box{i}", Primitive("box", (0.5, 0.5, 0.5)), "box", 2 * i + 1,
                              ((1, 0, 0, x), (0, 1, 0, y), (0, 0, 1, 0.25), (0, 0, 0, 1)), material=m))
        objects.append(Object(f"ball{i}", Primitive("sphere", (0.2, 0.2, 0.2), segments=48), "ball", 2 * i + 2,
                              ((1, 0, 0, x + 0.12), (0, 1, 0, y - 0.12), (0, 0, 1, 0.6), (0, 0, 0, 1)),
                              shading="smooth", material=m))
    cx, cy = (cols - 1) * 0.375, -(rows - 1) * 0.5
    eye = (cx, cy - 0.55 * rows - 1.0, 0.8 * rows + 1.0)
    cam = Camera.from_hfov(w, h, 62.0, look_at(eye, (cx, cy, 0.0)))
    spec = SceneSpec(camera=cam, objects=tuple(objects), world=World(hdri="builtin:courtyard", strength=1.0),
                     render=RenderSettings(samples=samples, view_transform="AgX"), classes=("box", "ball"))
    return spec, centres


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--size", default="1200x900")
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "materials.png"))
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    items = swatches()
    spec, centres = scene(items, args.cols, w, h, args.samples)
    result = render(spec)
    img = Image.fromarray(result.rgb)
    draw = ImageDraw.Draw(img)
    K = np.asarray(result.K)
    cam_from_world = np.linalg.inv(np.asarray(result.world_from_camera))
    for (label, _), (x, y) in zip(items, centres, strict=True):
        p = cam_from_world @ np.array([x - 0.3, y - 0.3, 0.0, 1.0])
        u, v = K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2]
        draw.text((u, v + 2), label, fill=(255, 255, 255))
    img.save(args.out)
    print(f"wrote {args.out}: {len(items)} swatches, {result.timings['total']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
