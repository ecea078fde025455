"""Recipe configs: typed frozen dataclasses read from the TOML files shipped in ``rgbify/recipes/``.

A recipe file has top-level fields (``name``, ``kind``, ``resolution``, ...) and one table per section
(``[camera]``, ``[lighting]``, ``[materials]``, ``[validity]``, ``[layout]``). Every field has a default, so a
recipe file only names what it changes; the docstring under each field below is its documentation. ``kind`` picks
the sampler (indoor, tabletop or outdoor) and the type of the ``[layout]`` table. Ranges are ``[low, high]`` pairs,
drawn uniformly unless a docstring says otherwise. Files are read through rgbify.config (strict: an unknown key or a
value of the wrong type is an error naming it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from rgbify.config import STRICT, ConfigError, parse, read_toml, to_data

Range = tuple[float, float]
IntRange = tuple[int, int]

KINDS = ("indoor", "tabletop", "outdoor")
NOT_RANGES = {"probe_resolution", "resolution"}
"""Pairs that are sizes (width, height), not [low, high] ranges."""


class RecipeError(ConfigError):
    """A recipe file or override is malformed; the message names the key, the value and the fix."""


class AssetWarning(UserWarning):
    """An asset file or folder (a model, an HDRI, a texture) was skipped; the message names it and says why."""


AT_LEAST = {"temperature_k": 1.0, "world_strength": 0.0, "exposure_target": 1e-6, "exposure_ok": 0.0,
            "max_relight": 1.0, "roll_max_deg": 0.0, "max_attempts": 1, "min_visible_instances": 0,
            "probe_resolution": 1}
"""Smallest value of fields that no naming rule below covers."""


def value_problem(name: str, v: Any) -> str | None:
    """What is wrong with a recipe value, by the rules its name implies (None if nothing): a [low, high] pair
    needs low <= high; ``*_prob`` and ``*_fraction`` lie in [0, 1]; a count range (two integers) is >= 0; a length
    (``*_m``) is > 0; the fields of AT_LEAST have their own lower bound."""
    pair = isinstance(v, tuple) and len(v) == 2
    values = list(v) if isinstance(v, tuple) else [v]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
        return None
    if pair and name not in NOT_RANGES and v[0] > v[1]:
        return "low is above high"
    if name.endswith(("_prob", "_fraction")) and not all(0.0 <= x <= 1.0 for x in values):
        return "must lie in [0, 1] (a probability or a share)"
    if pair and name not in NOT_RANGES and all(isinstance(x, int) for x in values) and v[0] < 0:
        return "a count cannot be negative"
    if name.endswith("_m") and not all(x > 0 for x in values):
        return "a length in metres must be positive"
    if name in AT_LEAST and not all(x >= AT_LEAST[name] for x in values):
        return f"must be at least {AT_LEAST[name]:g}"
    return None


class _Ranges:
    """Checks, on construction, every value of a section by :func:`value_problem`."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            problem = value_problem(f.name, v)
            if problem:
                shown = list(v) if isinstance(v, tuple) else v
                raise RecipeError(f"{f.name} {shown}: {problem}; fix it in the recipe file (or --set)")


@dataclass(frozen=True)
class CameraConfig(_Ranges):
    __pydantic_config__ = STRICT

    fov_deg: Range = (50.0, 90.0)
    """Horizontal field of view in degrees (when no profiles are named)."""
    profiles: tuple[Literal["nyuv2", "scannet", "kitti"], ...] = ()
    """Dataset cameras to match (rgbify/scenes/cameras.py): each view draws one and takes its horizontal FOV (and,
    for kitti, its 1.65 m mounting height in the driving views) instead of fov_deg."""
    profile_jitter_deg: float = 1.0
    """A profile's FOV varies by +- this many degrees."""
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
    view_transform: Literal["Standard", "AgX"] = "AgX"
    """Blender's view transform of the RGB render: AgX (a filmic curve, as a camera's) or Standard (clip at 1)."""
    exposure_ev: Range = (-0.4, 0.4)
    """Exposure offset of the view transform, stops (drawn per image and recorded)."""
    white_balance: bool = True
    """White-balance each image to its scene's light (the mean colour temperature of its lights, plus a residual)."""
    white_balance_residual_k: Range = (-250.0, 250.0)
    """Error of the white balance, Kelvin (recorded in the spec as white_balance_k)."""
    dof_prob: float = 0.0
    """Probability of depth of field in the RGB render (ground truth stays the pinhole's)."""
    f_number: Range = (1.8, 5.6)
    """Aperture f-number when depth of field is on; the plane in focus is the probe's median depth."""


@dataclass(frozen=True)
class LightingConfig(_Ranges):
    __pydantic_config__ = STRICT

    temperature_k: Range = (2700.0, 6500.0)
    """Colour temperature of every light, Kelvin."""
    world_strength: Range = (0.2, 1.0)
    """Strength of the background (sky) colour; the HDRI strength when an HDRI is used."""
    builtin_hdris: bool = True
    """Without hdri_dir: light scenes with Blender's own CC0 daylight HDRIs (city, courtyard, forest, sunrise,
    sunset), with probability hdri_prob."""
    physical_sky_prob: float = 0.0
    """Probability of Blender's physical sky (its sun matching the scene's sun lamp) instead of an HDRI or colour."""
    sky_to_sun: Range = (0.15, 0.35)
    """Physical sky: its irradiance on the ground as a share of the sun's (sets the sky's strength)."""
    hdri_dir: str | None = None
    """Optional folder of equirectangular .hdr/.exr files; one is drawn per scene with probability hdri_prob."""
    hdri_prob: float = 0.5
    """Probability of lighting a scene with an HDRI from hdri_dir (when it holds any)."""
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
class MaterialConfig(_Ranges):
    __pydantic_config__ = STRICT

    glass_prob: float = 0.12
    """Probability that a glass-capable object (bottle, cup, vase, bowl, window) is transmissive."""
    metal_prob: float = 0.12
    """Probability of a metallic material where metal is plausible."""
    texture_prob: float = 0.4
    """Probability of a procedural texture (noise, voronoi, checker, wave, brick)."""
    image_texture_dir: str | None = None
    """Optional folder of .png/.jpg images used as base-colour textures with probability image_texture_prob."""
    image_texture_prob: float = 0.3
    """Probability of an image texture from image_texture_dir (when it holds any)."""


@dataclass(frozen=True)
class SensorConfig(_Ranges):
    """What the camera adds to the RGB image after the lens (rgbify.render.postprocess); drawn per image."""

    __pydantic_config__ = STRICT

    noise_std: Range = (0.0, 0.0)
    """Read noise, standard deviation in 8-bit levels (shot noise grows with it)."""
    jpeg_prob: float = 0.0
    """Probability of JPEG compression."""
    jpeg_quality: IntRange = (70, 95)
    """JPEG quality when compressed."""
    vignetting: Range = (0.0, 0.0)
    """Brightness lost at the corners (0-1)."""
    chromatic_aberration_px: Range = (0.0, 0.0)
    """Lateral chromatic aberration at the corners, pixels."""
    motion_blur_prob: float = 0.0
    """Probability of a linear motion blur."""
    motion_blur_px: Range = (1.0, 4.0)
    """Length of the motion blur, pixels."""


@dataclass(frozen=True)
class PhysicsConfig(_Ranges):
    """Loose small objects dropped and settled by a rigid-body simulation (PyBullet; rgbify/scenes/physics.py)."""

    __pydantic_config__ = STRICT

    enabled: bool = True
    """Settle the loose objects (clutter, books, pillows, small things on the floor) before the camera is placed."""
    tip_prob: float = 0.15
    """Probability that a loose object is dropped tipped over (turned 60-110 degrees about a horizontal axis), so
    that it lands on its side, leans or rests on another object."""
    drop_m: Range = (0.002, 0.02)
    """Height above its resting place an upright object is dropped from, metres (tipped ones: enough to clear
    their support)."""
    max_seconds: float = 1.5
    """Simulated seconds at most; objects still moving then are taken out of the scene."""


@dataclass(frozen=True)
class ValidityConfig(_Ranges):
    __pydantic_config__ = STRICT

    max_attempts: int = 25
    """Resample at most this many times; then the last failure is raised (SceneSamplingError)."""
    probe_resolution: IntRange = (64, 48)
    """Width and height of the ray-cast probe image used by the coverage and exposure checks."""
    min_visible_instances: int = 4
    """Instances covering at least min_instance_fraction of the probe image."""
    min_instance_fraction: float = 0.003
    """Share of the probe image an instance must cover to count as visible."""
    max_sky_fraction: float = 0.05
    """Largest share of probe rays that hit nothing."""
    near_m: float = 0.3
    """Distance in metres below which a probe ray counts as near (see max_near_fraction)."""
    max_near_fraction: float = 0.35
    """Reject when more than this share of rays hits something closer than near_m (camera against a wall)."""
    max_largest_fraction: float = 0.85
    """Reject when a single instance covers more than this share of the image."""


@dataclass(frozen=True)
class IndoorLayout(_Ranges):
    __pydantic_config__ = STRICT

    room_width_m: Range = (3.0, 7.5)
    """Room extent along x, metres."""
    room_depth_m: Range = (3.0, 6.5)
    """Room extent along y, metres."""
    room_height_m: Range = (2.4, 3.1)
    """Floor to ceiling, metres."""
    l_shape_prob: float = 0.35
    """Probability of an L-shaped room (a rectangle with one corner cut out)."""
    doors: IntRange = (1, 2)
    """Doors per room."""
    windows: IntRange = (0, 3)
    """Windows per room (glazed or open)."""
    furniture: IntRange = (6, 12)
    """Furniture pieces tried per room (some may not fit)."""
    clutter: IntRange = (8, 22)
    """Small objects tried on supporting surfaces."""
    floor_clutter: IntRange = (1, 4)
    """Boxes and balls tried on the floor."""
    pictures: IntRange = (0, 3)
    """Framed pictures tried on the walls."""
    asset_prob: float = 0.35
    """With user assets, the probability that a placed object is drawn from them."""
    room_types: tuple[Literal["generic", "kitchen", "bathroom", "bedroom", "living", "office", "corridor"], ...] = (
        "generic",)
    """Room types (rgbify/scenes/rooms.py); each scene draws one. generic: the procedural room of sampler versions
    up to 7; a type's size is the ranges above held to its limits (bathroom 1.8-3.6 m, corridor 1.1-1.8 m wide,
    living room and office up to 15 m)."""
    catalog_prob: float = 0.0
    """Probability that a piece of furniture or a small object comes from the Sweet Home 3D catalogue (Debian:
    apt install sweethome3d-furniture); 0: procedural models only."""
    open_door_prob: float = 0.0
    """Probability that a door on an outer wall stands open onto a furnished neighbouring room."""
    neighbour_depth_m: Range = (2.5, 5.0)
    """Depth of a neighbouring room behind an open door, metres."""
    close_up_prob: float = 0.0
    """Probability that a view is a close-up: the camera 0.45-1.0 m from an object or a piece of furniture."""


@dataclass(frozen=True)
class TabletopLayout(_Ranges):
    __pydantic_config__ = STRICT

    table_width_m: Range = (0.9, 1.8)
    """Table width, metres."""
    table_depth_m: Range = (0.6, 1.1)
    """Table depth, metres."""
    table_height_m: Range = (0.7, 0.8)
    """Table top height above the floor, metres."""
    objects: IntRange = (10, 26)
    """Small objects tried on the table top."""
    room_size_m: Range = (3.0, 5.0)
    """Side of the square room, metres."""
    room_height_m: Range = (2.4, 3.0)
    """Floor to ceiling, metres."""
    extra_furniture: IntRange = (1, 4)
    """Shelves and cabinets tried against the walls."""
    asset_prob: float = 0.35
    """With user assets, the probability that a placed object is drawn from them."""


@dataclass(frozen=True)
class OutdoorLayout(_Ranges):
    __pydantic_config__ = STRICT

    road_width_m: Range = (6.0, 14.0)
    """Carriageway width, metres."""
    road_length_m: float = 400.0
    """Length of the street, metres."""
    sidewalk_width_m: Range = (1.5, 4.0)
    """Width of each sidewalk, metres."""
    cross_road_prob: float = 0.35
    """Probability of a crossing road."""
    buildings_per_side: IntRange = (4, 12)
    """Buildings along each side of the street."""
    building_height_m: Range = (4.0, 40.0)
    """Building height, metres (drawn log-uniformly)."""
    vehicles: IntRange = (4, 16)
    """Cars, trucks and buses tried on the road."""
    poles: IntRange = (2, 10)
    """Street lamps and sign poles tried on the sidewalks."""
    trees: IntRange = (2, 16)
    """Trees tried on the sidewalks and the ground."""
    props: IntRange = (2, 10)
    """Benches, signs, bushes, fences and rocks."""
    ground_size_m: float = 1200.0
    """Side of the square ground plane, metres."""
    asset_prob: float = 0.35
    """With user assets, the probability that a placed object is drawn from them."""
    facade_prob: float = 0.0
    """Probability that a building's street front has windows set into it and a door (else a plain wall)."""
    pedestrians: IntRange = (0, 0)
    """People standing or walking on the sidewalks near the camera's stretch of street (Sweet Home 3D catalogue
    models: none without it)."""
    bicycles: IntRange = (0, 0)
    """Bicycles parked at the kerb (catalogue models: none without it)."""
    catalog_prob: float = 0.0
    """Probability that a car is a Sweet Home 3D catalogue model (true size, its own materials); 0: no catalogue."""
    curve_prob: float = 0.0
    """Probability that the street is a constant-curvature arc (else straight)."""
    curve_radius_m: Range = (150.0, 600.0)
    """Radius of a curved street's centreline, metres (drawn log-uniformly; turning left or right)."""
    grade_prob: float = 0.0
    """Probability that the street and the ground along it rise or fall (else level)."""
    grade_max: float = 0.04
    """Largest grade (rise per metre along the street's start direction), drawn uniformly in +-grade_max."""
    relief_prob: float = 0.0
    """Probability of uneven ground beyond the sidewalks and building plots (else the plane of the road)."""
    relief_m: Range = (0.3, 2.0)
    """Height of the ground's undulation, metres (flat within 8 m of the sidewalks, cross road and building plots)."""
    parked_row_prob: float = 0.0
    """Probability, per side, of a row of cars parked bumper to bumper along the kerb."""
    parked_row_cars: IntRange = (3, 8)
    """Cars tried in a parked row."""
    cyclists: IntRange = (0, 0)
    """People riding bicycles in the road lane, near the kerb (catalogue models: none without it)."""


Layout = IndoorLayout | TabletopLayout | OutdoorLayout
LAYOUT_TYPES: dict[str, type] = {"indoor": IndoorLayout, "tabletop": TabletopLayout, "outdoor": OutdoorLayout}


@dataclass(frozen=True)
class RecipeConfig:
    """One recipe: everything that, with a base seed and a sample index, determines a scene."""

    __pydantic_config__ = STRICT

    name: str = "indoor"
    """Recipe name; part of the per-sample seed, so two recipes with the same settings still differ."""
    kind: Literal["indoor", "tabletop", "outdoor"] = "indoor"
    """Sampler: indoor, tabletop or outdoor (also the type of the [layout] table)."""
    description: str = ""
    """One line saying what the recipe makes (shown by `rgbify scenes list`)."""
    resolution: IntRange = (512, 384)
    """Image width and height in pixels."""
    samples: int = 64
    """Cycles samples per pixel."""
    denoise: bool = True
    """Denoise the RGB render (OpenImageDenoise)."""
    max_bounces: int = 12
    """Cycles light path bounces of the RGB render (total). These Cycles defaults come from the quality/time study
    in docs/performance.md: 12/8/8/12 bounces and no indirect clamp (unbiased) cost no more than Blender's 8/4/4/12
    and clamp 10, and look the same within that study's noise."""
    diffuse_bounces: int = 8
    """Cycles diffuse bounces."""
    glossy_bounces: int = 8
    """Cycles glossy bounces."""
    transmission_bounces: int = 12
    """Cycles transmission bounces."""
    adaptive_threshold: float = 0.01
    """Cycles adaptive sampling's noise threshold."""
    light_tree: bool = True
    """Cycles' light tree."""
    clamp_indirect: float = 0.0
    """Clamp of indirect light samples (0: none)."""
    caustics: bool = True
    """Reflective and refractive caustics."""
    denoise_prefilter: Literal["ACCURATE", "FAST", "NONE"] = "ACCURATE"
    """OpenImageDenoise's prefilter of its guides."""
    world_map_resolution: int = 256
    """Width of the map Cycles importance-samples the HDRI or sky with (0: Blender's automatic, 1024 for the
    builtin HDRIs). 256 saves about 3 core-seconds per render, a quarter of a 16-spp 256 px render, for images that
    differ by a third of a level of noise (benchmarks/bench_world_map.py, docs/performance.md)."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """[camera]: field of view, height, pitch, roll."""
    lighting: LightingConfig = field(default_factory=LightingConfig)
    """[lighting]: colour temperatures, sky strength, HDRIs, exposure checks."""
    materials: MaterialConfig = field(default_factory=MaterialConfig)
    """[materials]: glass, metal and texture probabilities."""
    validity: ValidityConfig = field(default_factory=ValidityConfig)
    """[validity]: the checks a view must pass (coverage, sky, nearness, exposure)."""
    sensor: SensorConfig = field(default_factory=SensorConfig)
    """[sensor]: noise, JPEG, vignetting, chromatic aberration, motion blur of the RGB image."""
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    """[physics]: loose objects dropped and settled by a rigid-body simulation."""
    layout: Layout = field(default_factory=IndoorLayout)
    """[layout]: what the sampler of ``kind`` builds (room, table or street sizes and counts)."""

    def __post_init__(self) -> None:
        w, h = self.resolution
        if w < 1 or h < 1:
            raise RecipeError(f"resolution {list(self.resolution)} must be two positive integers [width, height]")
        if self.samples < 1:
            raise RecipeError(f"samples {self.samples} must be >= 1")
        if self.max_bounces < 0:
            raise RecipeError(f"max_bounces {self.max_bounces} must be >= 0")
        if not 0 <= self.world_map_resolution <= 16384:
            raise RecipeError(f"world_map_resolution {self.world_map_resolution} must be 0 (automatic) or a width "
                              "of at most 16384")
        lo, hi = self.camera.fov_deg
        if not 1.0 <= lo <= hi < 179.0:
            raise RecipeError(f"camera.fov_deg {list(self.camera.fov_deg)} must be [low, high] within (1, 179)")
        if self.validity.max_attempts < 1:
            raise RecipeError(f"validity.max_attempts {self.validity.max_attempts} must be >= 1")
        if not isinstance(self.layout, LAYOUT_TYPES[self.kind]):
            raise RecipeError(f"kind {self.kind!r} needs a {LAYOUT_TYPES[self.kind].__name__} layout, got "
                              f"{type(self.layout).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists); ``RecipeConfig.from_dict`` reads it back."""
        return to_data(self)

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "recipe") -> RecipeConfig:
        """A recipe from plain data (a parsed TOML file): strict, every problem named in one line."""
        if not isinstance(d, dict):
            raise RecipeError(f"{where}: expected a table, got {type(d).__name__}")
        kind = d.get("kind", "indoor")
        if kind not in KINDS:
            raise RecipeError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
        layout = parse(LAYOUT_TYPES[kind], d.get("layout", {}), f"{where}.layout", RecipeError)
        top = {k: v for k, v in d.items() if k != "layout"}
        if kind != "indoor":  # the default layout is indoor's; the real one is put in below
            top["kind"] = "indoor"
        config = parse(RecipeConfig, top, where, RecipeError)
        return dataclasses.replace(config, kind=kind, layout=layout)


# --- finding and loading recipes -----------------------------------------------------------------------------

def recipe_dir() -> Path:
    """The folder of the shipped recipes (package data: rgbify/recipes/*.toml)."""
    return Path(str(resources.files("rgbify") / "recipes"))


def list_recipes() -> list[str]:
    """Names of the shipped recipes, the default ("indoor") first."""
    return sorted((p.stem for p in recipe_dir().glob("*.toml")), key=lambda n: (n != "indoor", n))


def recipe_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise RecipeError(f"recipe file {str(p)!r} does not exist")
        return p
    if (recipe_dir() / f"{name_or_path}.toml").is_file():
        return recipe_dir() / f"{name_or_path}.toml"
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
        target[parts[-1]] = to_data(value)
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
        data = read_toml(path, RecipeError)
        data.setdefault("name", path.stem)
        config = RecipeConfig.from_dict(data, where=f"recipe file {str(path)!r}")
    return apply_overrides(config, overrides) if overrides else config
