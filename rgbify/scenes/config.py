"""Recipe configs: typed frozen dataclasses read from the TOML files in the top-level ``scenes/`` folder.

A recipe file has top-level fields (``name``, ``kind``, ``resolution``, ...) and one table per section
(``[camera]``, ``[lighting]``, ``[materials]``, ``[validity]``, ``[layout]``). Every field has a default, so a
recipe file only names what it changes. ``kind`` picks the sampler (indoor, tabletop or outdoor) and the type of
the ``[layout]`` table. Ranges are ``[low, high]`` pairs, drawn uniformly unless a docstring says otherwise.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Range = tuple[float, float]
IntRange = tuple[int, int]

KINDS = ("indoor", "tabletop", "outdoor")
NOT_RANGES = {"probe_resolution", "resolution"}


class RecipeError(ValueError):
    """A recipe file or override is malformed; the message names the key, the value and the fix."""


@dataclass(frozen=True)
class CameraConfig:
    fov_deg: Range = (50.0, 90.0)
    """Horizontal field of view in degrees."""
    height_m: Range = (1.0, 1.8)
    """Camera height above the floor / ground in metres (tabletop: above the table top)."""
    pitch_deg: Range = (-35.0, 5.0)
    """Elevation of the optical axis in degrees (negative looks down)."""
    roll_prob: float = 0.15
    """Probability of a non-zero roll about the optical axis."""
    roll_max_deg: float = 12.0
    """Largest roll magnitude in degrees when rolled."""
    distance_m: Range = (0.4, 1.6)
    """Tabletop only: distance from the camera to the point it looks at on the table, metres."""


@dataclass(frozen=True)
class LightingConfig:
    temperature_k: Range = (2700.0, 6500.0)
    """Colour temperature of every light, Kelvin."""
    world_strength: Range = (0.2, 1.0)
    """Strength of the background (sky) colour; the HDRI strength when an HDRI is used."""
    hdri_dir: str | None = None
    """Optional folder of equirectangular .hdr/.exr files; one is drawn per scene with probability hdri_prob."""
    hdri_prob: float = 0.5
    exposure_target: float = 0.18
    """Median linear radiance (white = 1) of visible pixels that relighting aims at."""
    exposure_ok: Range = (0.07, 0.45)
    """Median estimated radiance accepted without relighting."""
    max_relight: float = 8.0
    """Largest factor by which all light powers may be scaled (up or down) to fix exposure."""
    max_clipped_fraction: float = 0.12
    """Reject if more visible pixels than this are estimated blown out (radiance >= 1) after relighting."""
    max_dark_fraction: float = 0.45
    """Reject if more pixels than this are estimated near black (radiance < 0.01) after relighting."""


@dataclass(frozen=True)
class MaterialConfig:
    glass_prob: float = 0.12
    """Probability that a glass-capable object (bottle, cup, vase, bowl, window) is transmissive."""
    metal_prob: float = 0.12
    """Probability of a metallic material where metal is plausible."""
    texture_prob: float = 0.4
    """Probability of a procedural texture (noise, voronoi, checker, wave, brick)."""
    image_texture_dir: str | None = None
    """Optional folder of .png/.jpg images used as base-colour textures with probability image_texture_prob."""
    image_texture_prob: float = 0.3


@dataclass(frozen=True)
class ValidityConfig:
    max_attempts: int = 25
    """Resample at most this many times; then the last failure is raised (SceneSamplingError)."""
    probe_resolution: IntRange = (64, 48)
    """Width and height of the ray-cast probe image used by the coverage and exposure checks."""
    min_visible_instances: int = 4
    """Instances covering at least min_instance_fraction of the probe image."""
    min_instance_fraction: float = 0.003
    max_sky_fraction: float = 0.05
    """Largest share of probe rays that hit nothing."""
    near_m: float = 0.3
    max_near_fraction: float = 0.35
    """Reject when more than this share of rays hits something closer than near_m (camera against a wall)."""
    max_largest_fraction: float = 0.85
    """Reject when a single instance covers more than this share of the image."""


@dataclass(frozen=True)
class IndoorLayout:
    room_width_m: Range = (3.0, 7.5)
    room_depth_m: Range = (3.0, 6.5)
    room_height_m: Range = (2.4, 3.1)
    l_shape_prob: float = 0.35
    """Probability of an L-shaped room (a rectangle with one corner cut out)."""
    doors: IntRange = (1, 2)
    windows: IntRange = (0, 3)
    furniture: IntRange = (6, 12)
    """Furniture pieces tried per room (some may not fit)."""
    clutter: IntRange = (8, 22)
    """Small objects tried on supporting surfaces."""
    floor_clutter: IntRange = (1, 4)
    pictures: IntRange = (0, 3)
    asset_prob: float = 0.35
    """With user assets, the probability that a placed object is drawn from them."""


@dataclass(frozen=True)
class TabletopLayout:
    table_width_m: Range = (0.9, 1.8)
    table_depth_m: Range = (0.6, 1.1)
    table_height_m: Range = (0.7, 0.8)
    objects: IntRange = (10, 26)
    """Small objects tried on the table top."""
    room_size_m: Range = (3.0, 5.0)
    room_height_m: Range = (2.4, 3.0)
    extra_furniture: IntRange = (1, 4)
    asset_prob: float = 0.35


@dataclass(frozen=True)
class OutdoorLayout:
    road_width_m: Range = (6.0, 14.0)
    road_length_m: float = 400.0
    sidewalk_width_m: Range = (1.5, 4.0)
    cross_road_prob: float = 0.35
    buildings_per_side: IntRange = (4, 12)
    building_height_m: Range = (4.0, 40.0)
    vehicles: IntRange = (4, 16)
    poles: IntRange = (2, 10)
    trees: IntRange = (2, 16)
    props: IntRange = (2, 10)
    """Benches, signs, bushes, fences and rocks."""
    ground_size_m: float = 1200.0
    asset_prob: float = 0.35


Layout = IndoorLayout | TabletopLayout | OutdoorLayout
LAYOUT_TYPES: dict[str, type] = {"indoor": IndoorLayout, "tabletop": TabletopLayout, "outdoor": OutdoorLayout}


@dataclass(frozen=True)
class RecipeConfig:
    """One recipe: everything that, with a base seed and a sample index, determines a scene."""

    name: str = "indoor"
    """Recipe name; part of the per-sample seed, so two recipes with the same settings still differ."""
    kind: str = "indoor"
    """Sampler: indoor, tabletop or outdoor."""
    description: str = ""
    resolution: IntRange = (512, 384)
    """Image width and height in pixels."""
    samples: int = 64
    """Cycles samples per pixel."""
    denoise: bool = True
    max_bounces: int = 8
    camera: CameraConfig = field(default_factory=CameraConfig)
    lighting: LightingConfig = field(default_factory=LightingConfig)
    materials: MaterialConfig = field(default_factory=MaterialConfig)
    validity: ValidityConfig = field(default_factory=ValidityConfig)
    layout: Layout = field(default_factory=IndoorLayout)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists); ``RecipeConfig.from_dict`` reads it back."""
        return _plain(self)

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "recipe") -> RecipeConfig:
        if not isinstance(d, dict):
            raise RecipeError(f"{where}: expected a table, got {type(d).__name__}")
        kind = d.get("kind", "indoor")
        if kind not in KINDS:
            raise RecipeError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
        sections = {"camera": CameraConfig, "lighting": LightingConfig, "materials": MaterialConfig,
                    "validity": ValidityConfig, "layout": LAYOUT_TYPES[kind]}
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if key in sections:
                kw[key] = _build(sections[key], value, f"{where}.{key}")
            else:
                kw[key] = value
        top = _build(RecipeConfig, {k: v for k, v in kw.items() if k not in sections}, where)
        return dataclasses.replace(top, **{k: v for k, v in kw.items() if k in sections}).checked()

    def checked(self) -> RecipeConfig:
        """Check value ranges; raise RecipeError naming the first bad one. Returns self."""
        w, h = self.resolution
        if w < 1 or h < 1:
            raise RecipeError(f"resolution {list(self.resolution)} must be two positive integers [width, height]")
        if self.samples < 1:
            raise RecipeError(f"samples {self.samples} must be >= 1")
        lo, hi = self.camera.fov_deg
        if not 1.0 <= lo <= hi < 179.0:
            raise RecipeError(f"camera.fov_deg {list(self.camera.fov_deg)} must be [low, high] within (1, 179)")
        if self.validity.max_attempts < 1:
            raise RecipeError(f"validity.max_attempts {self.validity.max_attempts} must be >= 1")
        for section in (self.camera, self.lighting, self.materials, self.validity, self.layout):
            for f in dataclasses.fields(section):
                v = getattr(section, f.name)
                if f.name not in NOT_RANGES and isinstance(v, tuple) and len(v) == 2 and v[0] > v[1]:
                    raise RecipeError(f"{type(section).__name__}.{f.name} {list(v)}: low is above high")
        return self


def _plain(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise RecipeError(f"{where}: expected a list of {len(args)} numbers, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise RecipeError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _build(cls: type, d: Any, where: str) -> Any:
    if dataclasses.is_dataclass(d):
        return d
    if not isinstance(d, dict):
        raise RecipeError(f"{where}: expected a table, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(names)}")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in d.items()})


# --- finding and loading recipes -----------------------------------------------------------------------------

def recipe_dirs() -> list[Path]:
    """Folders searched for named recipes: the packaged copy (rgbify/recipes, a link to the repository's
    top-level scenes/ folder in a checkout) and, as a fallback, the checkout's scenes/ folder."""
    here = Path(__file__).resolve().parent.parent
    dirs = [here / "recipes", here.parent / "scenes"]
    return [d for d in dirs if d.is_dir()]


def list_recipes() -> list[str]:
    """Names of the shipped recipes, the default ("indoor") first."""
    names: set[str] = set()
    for d in recipe_dirs():
        names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names, key=lambda n: (n != "indoor", n))


def recipe_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise RecipeError(f"recipe file {str(p)!r} does not exist")
        return p
    for d in recipe_dirs():
        if (d / f"{name_or_path}.toml").is_file():
            return d / f"{name_or_path}.toml"
    raise RecipeError(f"unknown recipe {str(name_or_path)!r}; choose one of {list_recipes()} or pass a .toml path")


def apply_overrides(config: RecipeConfig, overrides: dict[str, Any]) -> RecipeConfig:
    """Override fields by name: top-level (``samples=16``) or in a section (``"camera.fov_deg": (40, 60)``,
    or ``camera__fov_deg`` as a keyword)."""
    d = config.to_dict()
    for key, value in overrides.items():
        parts = key.replace("__", ".").split(".")
        target = d
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                raise RecipeError(f"override {key!r}: {p!r} is not a section of the recipe")
            target = target[p]
        if parts[-1] not in target:
            raise RecipeError(f"override {key!r}: no such field; known: {sorted(target)}")
        target[parts[-1]] = _plain(value) if isinstance(value, tuple | list) else value
    return RecipeConfig.from_dict(d, where=f"recipe {config.name!r} with overrides")


def load_recipe(name_or_path: str | Path | RecipeConfig = "indoor", **overrides: Any) -> RecipeConfig:
    """Load a recipe by name (see :func:`list_recipes`) or from a TOML path, then apply ``overrides``.

    ``load_recipe("indoor", resolution=(256, 256), samples=16)``; section fields as
    ``**{"camera.fov_deg": (40, 60)}`` or ``camera__fov_deg=(40, 60)``.
    """
    if isinstance(name_or_path, RecipeConfig):
        config = name_or_path
    else:
        path = recipe_path(name_or_path)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise RecipeError(f"cannot read recipe file {str(path)!r}: {e}") from None
        data.setdefault("name", path.stem)
        config = RecipeConfig.from_dict(data, where=f"recipe file {str(path)!r}")
    return apply_overrides(config, overrides) if overrides else config
