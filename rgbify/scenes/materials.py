"""Materials drawn per surface: families of physically plausible PBR materials at real-world scale.

A model's parts carry a *hint* (wall, floor, wood, fabric, metal, car paint, asphalt, ...). Each hint is a family of
material kinds, each kind a procedural pattern (rgbify/render/shading.py) with ranges for its colours (sRGB HSV,
converted to linear), roughness, pattern size in metres and relief: oak and walnut planks 8-20 cm wide, ceramic tiles
15-60 cm with grey grout, woven fabric cells of a few millimetres, asphalt aggregate of a centimetre. Every instance
draws its own colour, roughness, pattern offset and relief, so two chairs of one kind differ. Glass and metal
replace a family where the class makes them plausible (``glass_prob``, ``metal_prob``).

``texture_prob`` (recipe [materials]) is the chance that a patterned kind keeps its pattern; otherwise it renders
as a flat colour of the same family (a painted or plain surface).
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbify.scenes import portable
from rgbify.scenes.recipe import AssetWarning, MaterialConfig, RecipeError
from rgbify.scenes.spec import Material

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".hdr", ".bmp")
Range = tuple[float, float]


@dataclass(frozen=True)
class Kind:
    """One kind of material: a pattern and the ranges its instances are drawn from."""

    pattern: str
    hue: Range
    sat: Range
    val: Range
    rough: Range
    scale_m: Range = (0.1, 0.1)
    """Pattern unit in metres (plank width, tile side, weave cell, aggregate size)."""
    color2: tuple[Range, Range, Range] | None = None
    """HSV ranges of the second colour; None: a darker shade of the first (0.35-0.75 of its value)."""
    bump_m: Range = (0.0, 0.0)
    rough_var: Range = (0.0, 0.0)
    metallic: Range = (0.0, 0.0)
    weight: float = 1.0


GREY_GROUT = ((0.0, 1.0), (0.0, 0.08), (0.45, 0.75))
WHITE = ((0.0, 1.0), (0.0, 0.05), (0.85, 0.97))

FAMILIES: dict[str, tuple[Kind, ...]] = {
    "wall": (
        Kind("plaster", (0.0, 1.0), (0.0, 0.2), (0.65, 0.95), (0.75, 0.95), (0.05, 0.3), bump_m=(0.0003, 0.001),
             weight=6),
        Kind("brick", (0.0, 0.07), (0.35, 0.65), (0.35, 0.65), (0.8, 0.95), (0.25, 0.25), GREY_GROUT,
             bump_m=(0.002, 0.004)),
        Kind("concrete", (0.0, 1.0), (0.0, 0.06), (0.5, 0.75), (0.8, 0.95), (0.2, 0.6), bump_m=(0.0005, 0.0015)),
        Kind("tiles", (0.0, 1.0), (0.0, 0.3), (0.6, 0.95), (0.05, 0.2), (0.1, 0.3), GREY_GROUT,
             bump_m=(0.001, 0.002), rough_var=(0.2, 0.4)),
    ),
    "ceiling": (Kind("plaster", (0.0, 1.0), (0.0, 0.05), (0.82, 0.97), (0.8, 0.95), (0.1, 0.4),
                     bump_m=(0.0002, 0.0008)),),
    "floor": (
        Kind("planks", (0.05, 0.11), (0.35, 0.75), (0.25, 0.75), (0.25, 0.55), (0.09, 0.2), bump_m=(0.0003, 0.0008),
             rough_var=(0.1, 0.2), weight=4),
        Kind("tiles", (0.0, 1.0), (0.0, 0.25), (0.35, 0.9), (0.08, 0.3), (0.3, 0.6), GREY_GROUT,
             bump_m=(0.001, 0.003), rough_var=(0.2, 0.4), weight=2),
        Kind("carpet", (0.0, 1.0), (0.05, 0.45), (0.2, 0.7), (0.85, 1.0), (0.5, 1.5), bump_m=(0.0005, 0.0015)),
        Kind("stone", (0.0, 0.15), (0.0, 0.2), (0.4, 0.8), (0.3, 0.7), (0.2, 0.6), bump_m=(0.001, 0.003)),
        Kind("marble", (0.0, 1.0), (0.0, 0.1), (0.7, 0.95), (0.05, 0.2), (0.4, 1.0), ((0.0, 1.0), (0.0, 0.1),
             (0.2, 0.5))),
        Kind("concrete", (0.0, 1.0), (0.0, 0.05), (0.45, 0.7), (0.6, 0.9), (0.2, 0.6), bump_m=(0.0005, 0.0015)),
    ),
    "wood": (
        Kind("wood", (0.05, 0.11), (0.3, 0.75), (0.2, 0.8), (0.25, 0.6), (0.015, 0.05), bump_m=(0.0001, 0.0004),
             rough_var=(0.1, 0.25), weight=4),
        Kind("plastic", (0.0, 1.0), (0.0, 0.4), (0.25, 0.95), (0.3, 0.6)),  # painted wood
    ),
    "painted": (
        Kind("plastic", (0.0, 1.0), (0.0, 0.6), (0.2, 0.95), (0.25, 0.6), (0.1, 0.3), weight=3),
        Kind("wood", (0.05, 0.11), (0.3, 0.7), (0.25, 0.75), (0.3, 0.6), (0.015, 0.05), bump_m=(0.0001, 0.0004)),
    ),
    "fabric": (
        Kind("fabric", (0.0, 1.0), (0.1, 0.6), (0.2, 0.85), (0.8, 1.0), (0.003, 0.008), bump_m=(0.0003, 0.0008),
             weight=4),
        Kind("leather", (0.02, 0.1), (0.3, 0.8), (0.08, 0.55), (0.35, 0.6), (0.01, 0.03), bump_m=(0.0003, 0.0008),
             rough_var=(0.1, 0.2)),
        Kind("carpet", (0.0, 1.0), (0.1, 0.5), (0.25, 0.8), (0.85, 1.0), (0.01, 0.03), bump_m=(0.0002, 0.0006)),
    ),
    "object": (
        Kind("plastic", (0.0, 1.0), (0.2, 0.95), (0.2, 0.95), (0.15, 0.5), (0.05, 0.2), weight=3),
        Kind("ceramic", (0.0, 1.0), (0.0, 0.6), (0.4, 0.97), (0.05, 0.2), (0.05, 0.2), weight=2),
        Kind("rubber", (0.0, 1.0), (0.0, 0.5), (0.05, 0.4), (0.7, 0.95), (0.01, 0.05)),
        Kind("wood", (0.05, 0.11), (0.3, 0.7), (0.3, 0.8), (0.3, 0.6), (0.01, 0.03), bump_m=(0.0001, 0.0003)),
    ),
    "paper": (
        Kind("paper", (0.0, 1.0), (0.05, 0.8), (0.3, 0.95), (0.6, 0.9), (0.001, 0.003), weight=3),
        Kind("cardboard", (0.07, 0.1), (0.35, 0.55), (0.45, 0.7), (0.75, 0.95), (0.004, 0.006),
             bump_m=(0.0002, 0.0005)),
    ),
    "metal": (
        Kind("brushed_metal", (0.0, 1.0), (0.0, 0.08), (0.55, 0.9), (0.15, 0.4), (0.005, 0.02), bump_m=(0.0, 0.0001),
             rough_var=(0.2, 0.4), metallic=(1.0, 1.0), weight=2),
        Kind("noise", (0.0, 1.0), (0.0, 0.12), (0.4, 0.85), (0.3, 0.6), (0.05, 0.2), metallic=(1.0, 1.0),
             rough_var=(0.1, 0.3)),
        Kind("none", (0.08, 0.14), (0.3, 0.7), (0.6, 0.9), (0.1, 0.35), metallic=(1.0, 1.0)),  # brass, copper
    ),
    "glass": (Kind("none", (0.0, 1.0), (0.0, 0.15), (0.85, 1.0), (0.0, 0.05)),),
    "ground": (
        Kind("grass", (0.2, 0.32), (0.35, 0.75), (0.2, 0.5), (0.8, 1.0), (0.05, 0.2), ((0.1, 0.16), (0.3, 0.6),
             (0.15, 0.4)), bump_m=(0.002, 0.005), weight=3),
        Kind("stone", (0.06, 0.12), (0.2, 0.5), (0.25, 0.5), (0.85, 1.0), (0.1, 0.4), bump_m=(0.002, 0.006)),
    ),
    "road": (Kind("asphalt", (0.0, 1.0), (0.0, 0.04), (0.12, 0.3), (0.75, 0.95), (0.008, 0.02), ((0.0, 1.0),
                  (0.0, 0.08), (0.35, 0.6)), bump_m=(0.0008, 0.002), rough_var=(0.1, 0.2)),),
    "concrete": (
        Kind("concrete", (0.0, 1.0), (0.0, 0.06), (0.45, 0.8), (0.75, 0.95), (0.2, 0.6), bump_m=(0.0005, 0.002),
             weight=3),
        Kind("tiles", (0.0, 0.12), (0.0, 0.3), (0.45, 0.8), (0.6, 0.9), (0.3, 0.5), GREY_GROUT,
             bump_m=(0.002, 0.004)),  # paving slabs
    ),
    "building": (
        Kind("plaster", (0.0, 1.0), (0.0, 0.35), (0.45, 0.9), (0.75, 0.95), (0.1, 0.5), bump_m=(0.0005, 0.002),
             weight=3),
        Kind("brick", (0.0, 0.07), (0.35, 0.7), (0.3, 0.65), (0.8, 0.95), (0.25, 0.25), GREY_GROUT,
             bump_m=(0.003, 0.006), weight=2),
        Kind("concrete", (0.0, 1.0), (0.0, 0.06), (0.45, 0.75), (0.75, 0.95), (0.3, 1.0), bump_m=(0.001, 0.003)),
        Kind("stone", (0.06, 0.12), (0.05, 0.3), (0.5, 0.8), (0.7, 0.95), (0.3, 0.6), bump_m=(0.002, 0.005)),
    ),
    "car": (Kind("none", (0.0, 1.0), (0.0, 0.9), (0.1, 0.95), (0.05, 0.25), metallic=(0.0, 0.9)),),
    "tyre": (Kind("rubber", (0.0, 1.0), (0.0, 0.05), (0.03, 0.08), (0.75, 0.95), (0.005, 0.01),
                  bump_m=(0.0002, 0.0005)),),
    "foliage": (Kind("foliage", (0.18, 0.34), (0.4, 0.8), (0.15, 0.5), (0.6, 0.9), (0.03, 0.08), ((0.15, 0.3),
                     (0.4, 0.8), (0.1, 0.35)), bump_m=(0.003, 0.01)),),
    "bark": (Kind("bark", (0.04, 0.1), (0.2, 0.55), (0.12, 0.35), (0.85, 1.0), (0.1, 0.3), bump_m=(0.004, 0.01)),),
    "rock": (Kind("stone", (0.0, 0.15), (0.0, 0.25), (0.25, 0.6), (0.7, 0.95), (0.1, 0.5), bump_m=(0.003, 0.01)),),
    "skin": (Kind("skin", (0.02, 0.1), (0.25, 0.7), (0.3, 0.9), (0.35, 0.6), (0.02, 0.06)),),
    "shade": (Kind("fabric", (0.05, 0.15), (0.0, 0.3), (0.75, 0.97), (0.7, 0.95), (0.002, 0.005),
                   bump_m=(0.0001, 0.0003)),),
    "facade_glass": (Kind("none", (0.5, 0.65), (0.0, 0.3), (0.03, 0.15), (0.0, 0.06)),),
    "mirror": (Kind("none", (0.0, 1.0), (0.0, 0.03), (0.85, 0.95), (0.0, 0.03), metallic=(1.0, 1.0)),),
    "stone": (  # worktops
        Kind("marble", (0.0, 1.0), (0.0, 0.1), (0.6, 0.95), (0.05, 0.2), (0.3, 0.8), ((0.0, 1.0), (0.0, 0.1),
             (0.2, 0.5)), weight=2),
        Kind("stone", (0.0, 0.15), (0.0, 0.2), (0.15, 0.7), (0.1, 0.35), (0.1, 0.4), bump_m=(0.0002, 0.0008)),
        Kind("concrete", (0.0, 1.0), (0.0, 0.05), (0.45, 0.75), (0.3, 0.6), (0.2, 0.6), bump_m=(0.0002, 0.0008)),
    ),
    "plastic": (Kind("plastic", (0.0, 1.0), (0.0, 0.5), (0.05, 0.9), (0.2, 0.5), (0.05, 0.2)),),
    "ceramic": (Kind("ceramic", (0.0, 1.0), (0.0, 0.1), (0.85, 0.97), (0.03, 0.12), (0.05, 0.2)),),
    "bath_wall": (
        Kind("tiles", (0.0, 1.0), (0.0, 0.25), (0.6, 0.95), (0.05, 0.2), (0.1, 0.3), GREY_GROUT,
             bump_m=(0.001, 0.002), rough_var=(0.2, 0.4), weight=4),
        Kind("plaster", (0.0, 1.0), (0.0, 0.15), (0.7, 0.95), (0.7, 0.9), (0.05, 0.3), bump_m=(0.0003, 0.001)),
    ),
    "bath_floor": (
        Kind("tiles", (0.0, 1.0), (0.0, 0.25), (0.3, 0.9), (0.08, 0.3), (0.1, 0.6), GREY_GROUT,
             bump_m=(0.001, 0.003), rough_var=(0.2, 0.4), weight=4),
        Kind("stone", (0.0, 0.15), (0.0, 0.2), (0.4, 0.8), (0.3, 0.7), (0.2, 0.6), bump_m=(0.001, 0.003)),
    ),
}
"""Material families by hint. Weights choose the kind; every range is drawn per instance."""

GLASS_CAPABLE = {"bottle", "cup", "vase", "bowl", "window", "plate"}
METAL_CAPABLE = {"can", "lamp", "pole", "table", "chair", "shelf", "cabinet", "bench", "fence", "box", "bowl",
                 "vase", "traffic_sign", "clutter", "cup", "ball"}


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, portable.power((c + 0.055) / 1.055, 2.4))


def hsv_color(rng: np.random.Generator, hue: Range, sat: Range, val: Range) -> tuple[float, float, float]:
    h = rng.uniform(*hue) % 1.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    lin = srgb_to_linear(np.asarray(rgb))
    return (round(float(lin[0]), 4), round(float(lin[1]), 4), round(float(lin[2]), 4))


MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"II*\x00": "tiff", b"MM\x00*": "tiff",
         b"BM": "bmp", b"\x76\x2f\x31\x01": "exr", b"#?RADIANCE": "hdr", b"#?RGBE": "hdr"}
"""First bytes of each image format Blender reads here."""


def image_problem(path: str) -> str | None:
    """Why the file at ``path`` is not a readable image (its first bytes are no known format, or an 8-bit image
    does not decode), or None. HDR and EXR files are checked by their header only."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    kind = next((k for magic, k in MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        return "is not an image (its first bytes are no PNG, JPEG, TIFF, BMP, EXR or Radiance HDR header)"
    if kind in ("exr", "hdr"):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a damaged file
        return f"does not decode as an image ({type(e).__name__})"
    return None


def list_images(folder: str | None, hdr_only: bool = False) -> list[str]:
    """Readable image files in ``folder`` (sorted, absolute; only .hdr/.exr with ``hdr_only``), or [] when no
    folder is given. A file that is not a readable image is skipped with one warning naming it
    (rgbify.scenes.recipe.AssetWarning); the check is cached until the folder's files change."""
    if not folder:
        return []
    p = Path(folder)
    if not p.is_dir():
        raise RecipeError(f"image folder {folder!r} does not exist; set the recipe's image_texture_dir / hdri_dir "
                          "to an existing folder of images")
    suffixes = (".hdr", ".exr") if hdr_only else IMAGE_SUFFIXES
    files = sorted(f.resolve() for f in p.iterdir() if f.suffix.lower() in suffixes and f.is_file())
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return list(_readable(stamp))


@functools.lru_cache(maxsize=64)
def _readable(stamp: tuple[tuple[str, int, int], ...]) -> tuple[str, ...]:
    import warnings


    good = []
    for path, _, _ in stamp:
        why = image_problem(path)
        if why is None:
            good.append(path)
        else:
            warnings.warn(f"skipping image {path}: it {why}", AssetWarning, stacklevel=2)
    return tuple(good)


def _u(rng: np.random.Generator, r: Range, digits: int = 4) -> float:
    return round(float(rng.uniform(*r)), digits)


def sample_material(rng: np.random.Generator, hint: str, cfg: MaterialConfig, class_name: str = "",
                    images: list[str] | None = None, texture_prob: float | None = None) -> Material:
    """A random material of family ``hint``; glass and metal only where ``class_name`` makes them plausible."""
    if class_name in GLASS_CAPABLE and rng.random() < cfg.glass_prob * (4.0 if class_name == "window" else 1.0):
        hint = "glass"
    elif class_name in METAL_CAPABLE and rng.random() < cfg.metal_prob:
        hint = "metal"
    family = FAMILIES.get(hint, FAMILIES["object"])
    weights = np.array([k.weight for k in family], dtype=np.float64)
    kind = family[int(rng.choice(len(family), p=weights / weights.sum()))]
    color = hsv_color(rng, kind.hue, kind.sat, kind.val)
    if kind.color2 is None:
        f = rng.uniform(0.35, 0.75)
        color2 = tuple(round(float(x * f), 4) for x in color)
    else:
        color2 = hsv_color(rng, *kind.color2)
    kw: dict = {"base_color": color, "roughness": _u(rng, kind.rough, 3), "metallic": _u(rng, kind.metallic, 3),
                "pattern": kind.pattern, "color2": color2, "pattern_scale_m": _u(rng, kind.scale_m, 4),
                "pattern_detail": _u(rng, (1.0, 4.0), 2), "pattern_seed": _u(rng, (0.0, 100.0), 3),
                "roughness_variation": _u(rng, kind.rough_var, 3), "bump_m": _u(rng, kind.bump_m, 5)}
    if hint == "glass":
        kw.update(transmission=1.0, ior=_u(rng, (1.45, 1.55), 3), metallic=0.0, pattern="none", bump_m=0.0)
    tp = cfg.texture_prob if texture_prob is None else texture_prob
    if images and rng.random() < cfg.image_texture_prob:
        kw.update(image_texture=str(images[int(rng.integers(len(images)))]), pattern="none",
                  image_scale_m=_u(rng, (0.3, 1.5), 3))
    elif kw["pattern"] not in ("none", "plaster") and rng.random() >= tp:
        kw.update(pattern="none", bump_m=0.0, roughness_variation=0.0)
    return Material(**kw)


HINTS = (("glass", ("glass", "cristal", "vidrio", "verre", "window", "pane", "crystal", "vitre")),
         ("mirror", ("mirror", "espejo", "miroir")),
         ("metal", ("metal", "chrome", "steel", "inox", "iron", "alumin", "brass", "gold", "silver", "copper",
                    "acero", "hierro", "metall", "argent", "nickel", "zinc")),
         ("tyre", ("tire", "tyre", "rubber", "goma", "neumatic")),
         ("foliage", ("leaf", "leaves", "foliage", "hoja", "grass", "plant", "feuille")),
         ("bark", ("bark", "trunk", "tronco", "corteza")),
         ("wood", ("wood", "madera", "fusta", "bois", "oak", "walnut", "pine", "teak", "timber", "plank", "parquet",
                   "cherry", "maple", "beech", "birch", "holz")),
         ("fabric", ("fabric", "cloth", "tela", "tissu", "textile", "cushion", "pillow", "sheet", "blanket", "cotton",
                     "linen", "velvet", "wool", "mattress", "couch", "curtain", "towel", "carpet", "rug", "leather",
                     "cuir", "piel")),
         ("skin", ("skin", "piel_h", "face", "body")),
         ("stone", ("marble", "stone", "granite", "piedra", "marmol")),
         ("ceramic", ("ceramic", "porcelain", "ceramica", "tile", "enamel")),
         ("paper", ("paper", "papel", "cardboard", "carton")),
         ("plastic", ("plastic", "plastico", "acryl", "vinyl")))
"""Material name keywords -> the material family (rgbify.scenes.materials) an untextured part is made of."""


def material_hint(name: str) -> str:
    """The family a file material's name suggests ('' for none)."""
    low = name.lower()
    for hint, words in HINTS:
        if any(w in low for w in words):
            return hint
    return ""


FILE_FAMILY_KINDS = {"wood": "wood", "fabric": "fabric", "metal": "metal", "stone": "floor", "ceramic": "object",
                     "paper": "paper", "plastic": "object", "foliage": "foliage", "bark": "bark", "tyre": "tyre",
                     "skin": "skin"}
"""File material hint (rgbify.scenes.catalog.material_hint) -> the family whose pattern an untextured part gets."""


def from_file(rng: np.random.Generator, fm: object, hint: str | None = None) -> Material:
    """The spec Material of a mesh file's material (rgbify.scenes.geometry.FileMaterial): its image through the
    file's UVs, its colour, roughness and transparency; an untextured part whose name says what it is made of
    (``hint``: wood, fabric, metal, glass, ...) gets that family's procedural pattern at real-world scale, tinted
    with the file's colour, so it does not render as a flat colour."""
    hint = material_hint(fm.name) if hint is None else hint  # type: ignore[attr-defined]
    base = tuple(float(np.clip(x, 0.0, 1.0)) for x in fm.base_color)  # type: ignore[attr-defined]
    rough = float(np.clip(fm.roughness, 0.02, 1.0))  # type: ignore[attr-defined]
    alpha = float(np.clip(fm.alpha, 0.0, 1.0))  # type: ignore[attr-defined]
    metallic = float(np.clip(fm.metallic, 0.0, 1.0))  # type: ignore[attr-defined]
    if hint == "glass" or (alpha < 0.6 and fm.image is None):  # type: ignore[attr-defined]
        return Material(base_color=tuple(round(0.6 + 0.4 * x, 4) for x in base), roughness=0.02,  # type: ignore
                        transmission=1.0, ior=1.5)
    if hint == "mirror":
        return Material(base_color=(0.9, 0.9, 0.9), roughness=0.0, metallic=1.0)
    if fm.image is not None:  # type: ignore[attr-defined]
        return Material(base_color=(1.0, 1.0, 1.0), roughness=round(rough, 3), metallic=round(metallic, 3),
                        alpha=round(alpha, 3), image_texture=fm.image, image_mapping="uv")  # type: ignore
    if hint == "metal":
        metallic = 1.0
    family = FILE_FAMILY_KINDS.get(hint)
    if family is None:
        return Material(base_color=base, roughness=round(rough, 3), metallic=round(metallic, 3),  # type: ignore
                        alpha=round(alpha, 3), pattern="plastic", pattern_scale_m=0.1,
                        pattern_seed=round(float(rng.uniform(0, 100)), 3), roughness_variation=0.1)
    fam = FAMILIES[family]
    weights = np.array([k.weight for k in fam], dtype=np.float64)
    kind = fam[int(rng.choice(len(fam), p=weights / weights.sum()))]
    f = float(rng.uniform(0.45, 0.75))
    color2 = tuple(round(x * f, 4) for x in base)
    return Material(base_color=base, roughness=round(float(np.clip(0.5 * rough + 0.5 * rng.uniform(*kind.rough),
                                                                        0.02, 1.0)), 3),  # type: ignore[arg-type]
                    metallic=round(max(metallic, float(rng.uniform(*kind.metallic))), 3), alpha=round(alpha, 3),
                    pattern=kind.pattern if kind.pattern != "none" else "noise", color2=color2,  # type: ignore
                    pattern_scale_m=_u(rng, kind.scale_m, 4), pattern_detail=_u(rng, (1.0, 4.0), 2),
                    pattern_seed=_u(rng, (0.0, 100.0), 3), roughness_variation=_u(rng, kind.rough_var, 3),
                    bump_m=_u(rng, kind.bump_m, 5))


def emissive(color: tuple[float, float, float], strength: float) -> Material:
    return Material(base_color=color, roughness=0.8, emission_strength=strength)
