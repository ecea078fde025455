"""Randomized Principled BSDF materials: palettes per kind of surface, procedural textures, glass, metal."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from rgbify.scenes.recipe import MaterialConfig, RecipeError
from rgbify.scenes.spec import Material, Texture

TEXTURE_KINDS = ("noise", "voronoi", "checker", "wave", "brick")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".hdr", ".bmp")

# palette: (hue range, saturation range, value range) in sRGB HSV, roughness range, texture kinds and scale range
PALETTES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float],
                          tuple[str, ...], tuple[float, float]]] = {
    "wall": ((0.0, 1.0), (0.0, 0.25), (0.6, 0.95), (0.6, 0.95), ("noise", "wave", "brick", "checker"), (2, 10)),
    "ceiling": ((0.0, 1.0), (0.0, 0.08), (0.8, 0.97), (0.7, 0.95), ("noise",), (2, 6)),
    "floor": ((0.05, 0.12), (0.2, 0.7), (0.25, 0.8), (0.2, 0.7), ("wave", "checker", "noise", "brick"), (1, 6)),
    "wood": ((0.05, 0.11), (0.3, 0.75), (0.2, 0.75), (0.3, 0.7), ("wave", "noise"), (2, 12)),
    "painted": ((0.0, 1.0), (0.0, 0.6), (0.2, 0.95), (0.2, 0.7), ("noise",), (3, 12)),
    "fabric": ((0.0, 1.0), (0.1, 0.7), (0.2, 0.9), (0.7, 1.0), ("noise", "checker", "voronoi", "wave"), (4, 30)),
    "object": ((0.0, 1.0), (0.2, 0.95), (0.2, 0.95), (0.1, 0.8), TEXTURE_KINDS, (5, 40)),
    "paper": ((0.0, 1.0), (0.05, 0.8), (0.3, 0.95), (0.5, 0.9), ("noise", "checker", "wave"), (10, 50)),
    "metal": ((0.0, 1.0), (0.0, 0.15), (0.55, 0.95), (0.1, 0.5), ("noise",), (5, 30)),
    "glass": ((0.0, 1.0), (0.0, 0.3), (0.8, 1.0), (0.0, 0.08), (), (1, 1)),
    "ground": ((0.08, 0.3), (0.2, 0.65), (0.3, 0.65), (0.7, 1.0), ("noise", "voronoi"), (0.5, 4)),
    "road": ((0.0, 1.0), (0.0, 0.06), (0.25, 0.55), (0.6, 0.95), ("noise", "voronoi"), (1, 8)),
    "concrete": ((0.0, 1.0), (0.0, 0.08), (0.4, 0.8), (0.6, 0.95), ("noise", "brick", "checker"), (0.5, 4)),
    "building": ((0.0, 1.0), (0.0, 0.35), (0.3, 0.9), (0.4, 0.95), ("brick", "checker", "noise", "wave"), (0.3, 3)),
    "car": ((0.0, 1.0), (0.0, 0.9), (0.1, 0.95), (0.05, 0.4), (), (1, 1)),
    "foliage": ((0.18, 0.36), (0.35, 0.8), (0.15, 0.55), (0.6, 0.95), ("voronoi", "noise"), (2, 10)),
    "bark": ((0.04, 0.1), (0.3, 0.6), (0.12, 0.4), (0.7, 1.0), ("noise", "wave"), (3, 15)),
    "rock": ((0.0, 0.15), (0.0, 0.25), (0.25, 0.6), (0.6, 1.0), ("noise", "voronoi"), (2, 12)),
    "skin": ((0.02, 0.18), (0.3, 0.9), (0.4, 0.95), (0.2, 0.6), ("noise",), (10, 30)),
    "shade": ((0.05, 0.15), (0.0, 0.35), (0.75, 0.97), (0.6, 0.95), (), (1, 1)),
}

GLASS_CAPABLE = {"bottle", "cup", "vase", "bowl", "window", "plate"}
METAL_CAPABLE = {"can", "lamp", "pole", "car", "truck", "bus", "table", "chair", "shelf", "cabinet", "bench",
                 "fence", "box", "bowl", "vase", "traffic_sign", "clutter", "cup", "ball"}


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def hsv_color(rng: np.random.Generator, hue: tuple[float, float], sat: tuple[float, float],
              val: tuple[float, float]) -> tuple[float, float, float]:
    h = rng.uniform(*hue) % 1.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    lin = srgb_to_linear(np.asarray(rgb))
    return (round(float(lin[0]), 4), round(float(lin[1]), 4), round(float(lin[2]), 4))


def list_images(folder: str | None) -> list[str]:
    """Image files in ``folder`` (sorted, absolute), or [] when no folder is given."""
    if not folder:
        return []
    p = Path(folder)
    if not p.is_dir():
        raise RecipeError(f"image folder {folder!r} does not exist; set the recipe's image_texture_dir / hdri_dir "
                          "to an existing folder of images")
    return sorted(str(f.resolve()) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def sample_material(rng: np.random.Generator, palette: str, cfg: MaterialConfig, class_name: str = "",
                    images: list[str] | None = None, texture_prob: float | None = None) -> Material:
    """A random material from ``palette``; glass and metal only where ``class_name`` makes them plausible."""
    if class_name in GLASS_CAPABLE and rng.random() < cfg.glass_prob * (4.0 if class_name == "window" else 1.0):
        palette = "glass"
    elif class_name in METAL_CAPABLE and rng.random() < cfg.metal_prob:
        palette = "metal"
    hue, sat, val, rough, kinds, scales = PALETTES[palette]
    color = hsv_color(rng, hue, sat, val)
    kw: dict = {"base_color": color, "roughness": round(float(rng.uniform(*rough)), 3)}
    if palette == "glass":
        kw.update(transmission=1.0, ior=round(float(rng.uniform(1.4, 1.6)), 3), metallic=0.0)
    elif palette == "metal":
        kw.update(metallic=1.0)
    elif palette == "car":
        kw.update(metallic=round(float(rng.choice([0.0, rng.uniform(0.3, 1.0)])), 3))
    tp = cfg.texture_prob if texture_prob is None else texture_prob
    if images and rng.random() < cfg.image_texture_prob:
        kw["image_texture"] = str(images[int(rng.integers(len(images)))])
    elif kinds and rng.random() < tp:
        kind = str(kinds[int(rng.integers(len(kinds)))])
        # second colour: a darker or lighter shade of the first, sometimes a contrasting colour
        if rng.random() < 0.75:
            f = rng.uniform(0.35, 0.8) if rng.random() < 0.6 else rng.uniform(1.2, 1.8)
            c2 = tuple(round(float(min(1.0, x * f)), 4) for x in color)
        else:
            c2 = hsv_color(rng, hue, sat, val)
        kw["texture"] = Texture(kind=kind, scale=round(float(rng.uniform(*scales)), 3), color2=c2,  # type: ignore
                                detail=round(float(rng.uniform(0.0, 6.0)), 2))
    return Material(**kw)


def emissive(color: tuple[float, float, float], strength: float) -> Material:
    return Material(base_color=color, roughness=0.8, emission_strength=strength)
