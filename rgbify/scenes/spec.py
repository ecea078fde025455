"""The scene spec: frozen, JSON-serialisable plain data that fully describes one scene to render.

Nothing here imports bpy. Units are metres, angles degrees, colours linear RGB in [0, 1]. The world frame is
Blender's (right-handed, +Z up). Every pose is a 4x4 row-major matrix stored as a tuple of 4 tuples of 4 floats.
The camera pose ``world_from_camera`` maps OpenCV camera-frame points (+x right, +y down, +z forward) to world
points (see docs/conventions.md).

A spec round-trips exactly through :func:`spec_to_json` / :func:`spec_from_json`, and :func:`spec_hash` gives a
stable digest of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rgbify.config import STRICT, ConfigError, dump, parse, parse_json

SCHEMA_VERSION = 2
"""2: procedural materials and material slots, mesh-file materials, physical sky, depth of field, view
transform, white balance and a photometric post-process (version 1 specs are read and upgraded)."""

Matrix4 = tuple[tuple[float, float, float, float], ...]
Vec3 = tuple[float, float, float]

IDENTITY4: Matrix4 = ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0))


class SpecError(ConfigError):
    """A scene spec (or its JSON) is malformed; the message names the field and the offending value."""


def matrix4(m: Any) -> Matrix4:
    """Turn any 4x4 array-like into the spec's tuple-of-tuples form (float64 values)."""
    a = np.asarray(m, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise SpecError(f"expected a finite 4x4 matrix, got shape {a.shape}")
    return tuple(tuple(float(x) for x in row) for row in a)  # type: ignore[return-value]


def look_at(eye: Any, target: Any, up: Any = (0.0, 0.0, 1.0), roll_deg: float = 0.0) -> Matrix4:
    """``world_from_camera`` (OpenCV frame) for a camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that appears up in the image (before ``roll_deg``, which rotates the camera
    about its optical axis, positive = clockwise as seen in the image).
    """
    eye_w, target_w, up_w = (np.asarray(x, dtype=np.float64) for x in (eye, target, up))
    z = target_w - eye_w
    if np.linalg.norm(z) < 1e-12:
        raise SpecError(f"look_at: eye {list(eye_w)} and target {list(target_w)} coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up_w)
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: pick any perpendicular
        x = np.cross(z, np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = math.radians(roll_deg)
    c, s = math.cos(r), math.sin(r)
    x, y = c * x + s * y, -s * x + c * y
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye_w
    return matrix4(m)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in OpenCV pixel convention (pixel (i, j) centre is at (u, v) = (j, i))."""

    __pydantic_config__ = STRICT

    width: int
    """Image width in pixels."""
    height: int
    """Image height in pixels."""
    fx: float
    """Focal length in pixels along x."""
    fy: float
    """Focal length in pixels along y (equal to fx for square pixels; Blender needs fx == fy)."""
    cx: float
    """Principal point x in pixels; centred is (width - 1) / 2."""
    cy: float
    """Principal point y in pixels; centred is (height - 1) / 2."""
    world_from_camera: Matrix4 = IDENTITY4
    """4x4 pose mapping OpenCV camera-frame points (metres) to world points (metres)."""
    clip_start: float = 0.01
    """Near clip distance in metres."""
    clip_end: float = 10000.0
    """Far clip distance in metres."""
    f_number: float | None = None
    """Depth of field of the RGB render: the aperture's f-number (None: a pinhole, everything sharp). Ground truth
    always comes from the pinhole centre rays."""
    focus_distance_m: float = 2.0
    """Depth of field: distance of the plane in focus, metres along the optical axis."""
    sensor_width_mm: float = 36.0
    """Depth of field: the sensor width the focal length in pixels is converted with (sets the blur's size)."""

    @staticmethod
    def from_hfov(width: int, height: int, hfov_deg: float, world_from_camera: Any = IDENTITY4,
                  cx: float | None = None, cy: float | None = None) -> Camera:
        """A camera with square pixels and the given horizontal field of view (degrees)."""
        if not 0.0 < hfov_deg < 180.0:
            raise SpecError(f"horizontal FOV must be in (0, 180) degrees, got {hfov_deg}")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return Camera(width=int(width), height=int(height), fx=f, fy=f,
                      cx=(width - 1) / 2.0 if cx is None else float(cx),
                      cy=(height - 1) / 2.0 if cy is None else float(cy),
                      world_from_camera=matrix4(world_from_camera))

    @property
    def K(self) -> np.ndarray:
        """3x3 float64 intrinsics in pixels."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.fx)))

    def resized(self, width: int, height: int) -> Camera:
        """The same view at another resolution (intrinsics scaled about pixel edges)."""
        sx, sy = width / self.width, height / self.height
        return dataclasses.replace(self, width=int(width), height=int(height), fx=self.fx * sx, fy=self.fy * sy,
                                   cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5)


@dataclass(frozen=True)
class Primitive:
    """A primitive solid centred at the object origin, with full extents ``size`` (metres) along x, y, z."""

    __pydantic_config__ = STRICT

    shape: Literal["box", "sphere", "cylinder", "cone", "plane", "torus"]
    """box, sphere (UV), cylinder and cone (axis +z), plane (z = 0, size z ignored), torus (axis +z)."""
    size: Vec3 = (1.0, 1.0, 1.0)
    """Full extents in metres along the object's x, y, z axes."""
    segments: int = 32
    """Segments around curved primitives."""
    minor_ratio: float = 0.25
    """Torus only: tube radius as a fraction of the major radius."""
    type: Literal["primitive"] = "primitive"


@dataclass(frozen=True)
class MeshFile:
    """A mesh file (.obj with its .mtl, .glb/.gltf, .ply, .stl) loaded as is and then scaled uniformly. Its own
    materials are the object's material slots in the order rgbify.scenes.geometry lists them (the spec's Object
    carries one Material per slot); its UV coordinates are kept for image textures."""

    __pydantic_config__ = STRICT

    path: str
    """Path to the file (absolute, or relative to the working directory at render time)."""
    scale: float = 1.0
    """Uniform scale applied to the file's vertices (file units to metres)."""
    lod_m: float = 0.0
    """Level of detail: the vertices are merged on a grid of cells this wide (object-frame metres, after ``scale``;
    rgbify.scenes.geometry.cluster_vertices) in every use of the mesh - render, ground truth, oracle; 0: the file's
    triangles as they are. The recipes set it for mesh files small on screen
    (rgbify.scenes.geometry.with_level_of_detail)."""
    type: Literal["mesh_file"] = "mesh_file"


@dataclass(frozen=True)
class InlineMesh:
    """A triangle or polygon mesh given in the spec itself (object-frame metres)."""

    __pydantic_config__ = STRICT

    vertices: tuple[Vec3, ...]
    """Vertex positions, metres, object frame."""
    faces: tuple[tuple[int, ...], ...]
    """Polygons as vertex indices (counter-clockwise seen from outside)."""
    face_materials: tuple[int, ...] = ()
    """Material slot of each polygon (0: the object's ``material``, k: ``materials[k - 1]``); empty: all slot 0."""
    type: Literal["mesh"] = "mesh"


Geometry = Primitive | MeshFile | InlineMesh

PATTERNS = ("none", "noise", "voronoi", "checker", "wave", "brick", "wood", "planks", "plaster", "fabric", "leather",
            "tiles", "stone", "marble", "concrete", "asphalt", "brushed_metal", "plastic", "ceramic", "paper",
            "cardboard", "rubber", "foliage", "bark", "skin", "carpet", "grass")
"""Procedural patterns of a Material (their node graphs: rgbify/render/shading.py; docs/rendering.md)."""

Pattern = Literal["none", "noise", "voronoi", "checker", "wave", "brick", "wood", "planks", "plaster", "fabric",
                  "leather", "tiles", "stone", "marble", "concrete", "asphalt", "brushed_metal", "plastic", "ceramic",
                  "paper", "cardboard", "rubber", "foliage", "bark", "skin", "carpet", "grass"]


@dataclass(frozen=True)
class Material:
    """A Principled BSDF surface, its colour, roughness and relief optionally driven by a procedural pattern laid out
    in object space at real-world scale (no UVs needed), or by an image."""

    __pydantic_config__ = STRICT

    base_color: Vec3 = (0.8, 0.8, 0.8)
    """Linear RGB in [0, 1]."""
    roughness: float = 0.5
    """Principled roughness in [0, 1]."""
    metallic: float = 0.0
    """Principled metallic in [0, 1]."""
    transmission: float = 0.0
    """1.0 = glass-like. Depth and IDs see the first surface hit, transparent or not (docs/conventions.md)."""
    ior: float = 1.45
    """Index of refraction."""
    thin: bool = False
    """A thin transparent sheet (a window pane, a car window): seen through without refraction, lit through by
    lamps and the sun without caustics, reflecting at its surface (Fresnel of ``ior``); with ``transmission`` > 0."""
    alpha: float = 1.0
    """Alpha below 1 is rendered in the RGB; depth and IDs still see the surface."""
    emission_strength: float = 0.0
    """Emission of the base colour (W/m^2-ish, Blender units)."""
    pattern: Pattern = "none"
    """Procedural pattern mixing ``base_color`` with ``color2`` (and varying roughness and relief)."""
    color2: Vec3 = (0.0, 0.0, 0.0)
    """The pattern's second colour (grain, grout, veins, weave, speckles), linear RGB."""
    pattern_scale_m: float = 0.2
    """Size of the pattern's features in metres of the object's own frame (a plank, a tile, a weave cell)."""
    pattern_detail: float = 2.0
    """Noise octaves of the pattern (0-15)."""
    pattern_seed: float = 0.0
    """Offset of the pattern in its space: two objects of one material do not look stamped."""
    roughness_variation: float = 0.0
    """How far the pattern moves roughness from ``roughness`` (0-1)."""
    bump_m: float = 0.0
    """Relief of the pattern, metres (a bump map of the RGB render; ground-truth normals never see it)."""
    image_texture: str | None = None
    """Optional image used as base colour."""
    image_mapping: Literal["box", "uv"] = "box"
    """box: projected on the object's frame at ``image_scale_m`` metres a repeat; uv: the mesh file's UVs."""
    image_scale_m: float = 1.0
    """Box mapping: metres one repeat of the image covers."""


@dataclass(frozen=True)
class Object:
    """One instance in the scene."""

    __pydantic_config__ = STRICT

    name: str
    """Object name (unique in the scene)."""
    geometry: Primitive | MeshFile | InlineMesh
    """Its shape, in the object frame."""
    class_name: str
    """Semantic class; must be in the scene's ``classes`` table."""
    instance_id: int
    """Instance id, >= 1, unique in the scene."""
    world_from_object: Matrix4 = IDENTITY4
    """Pose: object-frame points to world points (no scale: sizes are in the geometry)."""
    shading: Literal["flat", "smooth"] = "flat"
    """Flat: face normals; smooth: angle-weighted vertex normals (rgbify.scenes.geometry)."""
    material: Material = field(default_factory=Material)
    """The material of slot 0 (every face, unless the geometry names other slots)."""
    materials: tuple[Material, ...] = ()
    """Materials of slots 1, 2, ...: the parts of a model (legs, seat, frame), a mesh file's own materials."""

    def slots(self) -> tuple[Material, ...]:
        """Every material slot: (material, *materials)."""
        return (self.material, *self.materials)


@dataclass(frozen=True)
class Light:

    __pydantic_config__ = STRICT

    kind: Literal["point", "spot", "area", "sun"]
    world_from_light: Matrix4 = IDENTITY4
    """Pose; spot, area and sun lights shine along the light's local -z (Blender convention)."""
    power: float = 100.0
    """Watts for point, spot and area lights; irradiance (W/m^2) for sun."""
    color: Vec3 | None = None
    """Linear RGB; if None, ``temperature_k`` sets the colour."""
    temperature_k: float = 5000.0
    size: float = 0.1
    """Radius (point/spot), side length (area, metres) or angular diameter in degrees (sun)."""
    spot_angle_deg: float = 45.0


@dataclass(frozen=True)
class World:
    """What rays that leave the scene see: a colour, an HDRI, or a physical sky."""

    __pydantic_config__ = STRICT

    background_color: Vec3 = (0.05, 0.05, 0.05)
    """Linear RGB of the environment seen by rays that hit nothing (when neither an HDRI nor a physical sky)."""
    strength: float = 1.0
    """Multiplier of the environment's radiance."""
    hdri: str | None = None
    """An equirectangular HDR/EXR file lighting the scene (and seen as background): a path, or ``builtin:NAME``
    for one of the CC0 HDRIs Blender ships (rgbify.scenes.lighting.BUILTIN_HDRIS)."""
    hdri_rotation_deg: float = 0.0
    """Rotation of the HDRI about +z."""
    physical_sky: bool = False
    """Blender's physical sky (Nishita) instead of a colour; its sun matches ``sun_elevation_deg``/``azimuth``."""
    sun_elevation_deg: float = 45.0
    """Physical sky: the sun's elevation above the horizon."""
    sun_azimuth_deg: float = 0.0
    """Physical sky: the sun's azimuth, degrees counter-clockwise from +x."""
    air_density: float = 1.0
    """Physical sky: air (Rayleigh scattering) relative to Earth's."""
    dust_density: float = 1.0
    """Physical sky: dust (Mie scattering, haze) relative to Earth's."""


@dataclass(frozen=True)
class PostProcess:
    """A photometric post-process applied to the RGB image only (after the view transform, in 8-bit sRGB): what a
    camera adds. Ground truth is never touched. Every effect off by default; drawn from ``seed``."""

    __pydantic_config__ = STRICT

    noise_std: float = 0.0
    """Read noise, standard deviation in 8-bit levels (also scales shot noise: sqrt(level) * noise_std / 4)."""
    jpeg_quality: int = 0
    """JPEG compression at this quality (1-95); 0 = none."""
    vignetting: float = 0.0
    """Light fall-off at the corners: the brightness there is 1 - vignetting (cos^4-like profile)."""
    chromatic_aberration_px: float = 0.0
    """Lateral chromatic aberration: red and blue scaled about the centre by +- this many pixels at the corner."""
    motion_blur_px: float = 0.0
    """Length of a linear motion blur, pixels."""
    motion_blur_angle_deg: float = 0.0
    """Direction of the motion blur in the image, degrees."""
    seed: int = 0
    """Seed of the noise."""


@dataclass(frozen=True)
class RenderSettings:
    """How the RGB image is made: Cycles settings and the camera's colour pipeline."""

    __pydantic_config__ = STRICT

    samples: int = 64
    """Cycles samples per pixel for the RGB render."""
    denoise: bool = True
    """OIDN denoising of the RGB render."""
    seed: int = 0
    """Cycles noise seed."""
    max_bounces: int = 8
    """Light path bounces (total)."""
    diffuse_bounces: int = 4
    """Diffuse bounces (Blender's default 4)."""
    glossy_bounces: int = 4
    """Glossy bounces (Blender's default 4)."""
    transmission_bounces: int = 12
    """Transmission bounces (Blender's default 12)."""
    adaptive_threshold: float = 0.01
    """Adaptive sampling's noise threshold (Blender's default 0.01; higher stops sooner)."""
    light_tree: bool = True
    """Cycles' light tree (many-light sampling)."""
    clamp_indirect: float = 10.0
    """Clamp of indirect light samples (0: none; Blender's default 10)."""
    caustics: bool = True
    """Reflective and refractive caustics (Blender's default on)."""
    denoise_prefilter: Literal["ACCURATE", "FAST", "NONE"] = "ACCURATE"
    """OpenImageDenoise's prefilter of its albedo and normal guides."""
    world_map_resolution: int = 0
    """Width of the map Cycles importance-samples an HDRI or sky world with (0: Blender's automatic choice)."""
    view_transform: Literal["Standard", "AgX"] = "Standard"
    """Blender's view transform from scene light to display: Standard (clip at 1) or AgX (a filmic curve)."""
    exposure_ev: float = 0.0
    """Exposure of the view transform, stops."""
    white_balance_k: float | None = None
    """White balance: the colour temperature (Kelvin) rendered as white; None: no white balance."""
    white_balance_tint: float = 0.0
    """White balance tint (green-magenta), Blender's units."""
    post: PostProcess = field(default_factory=PostProcess)
    """The photometric post-process of the RGB image."""


@dataclass(frozen=True)
class SceneSpec:
    """One scene to render: camera, objects, lights, world and render settings."""

    __pydantic_config__ = STRICT

    camera: Camera
    """The pinhole camera (OpenCV frame)."""
    objects: tuple[Object, ...]
    """Every instance in the scene."""
    lights: tuple[Light, ...] = ()
    """Light sources (not seen by the camera)."""
    world: World = field(default_factory=World)
    """What rays that hit nothing see, and the environment light."""
    render: RenderSettings = field(default_factory=RenderSettings)
    """Cycles settings of the RGB render."""
    classes: tuple[str, ...] = ()
    """Class table: semantic index i + 1 names ``classes[i]``; 0 is nothing hit / unlabeled."""
    meta: tuple[tuple[str, Any], ...] = ()
    """Free-form provenance as (key, value) pairs, e.g. recipe, seed, index. JSON values only."""
    schema_version: int = SCHEMA_VERSION
    """Version of this layout (rgbify.scenes.spec.SCHEMA_VERSION)."""

    def __post_init__(self) -> None:
        # meta may be given as a dict or with list values; store it in the canonical (JSON round-trip) form:
        # a tuple of (key, value) pairs whose lists are tuples, so that spec == spec_from_json(spec_to_json(spec)).
        meta = self.meta.items() if isinstance(self.meta, dict) else self.meta
        object.__setattr__(self, "meta", tuple((str(k), _freeze(v)) for k, v in meta))

    def class_index(self, class_name: str) -> int:
        try:
            return self.classes.index(class_name) + 1
        except ValueError:
            raise SpecError(f"class {class_name!r} is not in the scene's class table {list(self.classes)}; "
                            "add it to `classes`") from None

    def validate(self) -> SceneSpec:
        """Check ids, classes and numbers; raise SpecError naming the first problem. Returns self."""
        seen: set[int] = set()
        for o in self.objects:
            if o.instance_id < 1 or o.instance_id in seen:
                raise SpecError(f"object {o.name!r}: instance_id {o.instance_id} must be >= 1 and unique")
            seen.add(o.instance_id)
            self.class_index(o.class_name)
        c = self.camera
        if c.width < 1 or c.height < 1 or not (c.fx > 0 and c.fy > 0):
            raise SpecError(f"camera: bad size {c.width}x{c.height} or focal ({c.fx}, {c.fy})")
        if not all(math.isfinite(v) for v in (c.fx, c.fy, c.cx, c.cy)):
            raise SpecError(f"camera: fx, fy, cx, cy must be finite, got ({c.fx}, {c.fy}, {c.cx}, {c.cy})")
        if not (0 < c.clip_start < c.clip_end and math.isfinite(c.clip_end)):
            raise SpecError(f"camera: clip_start {c.clip_start} and clip_end {c.clip_end} must satisfy "
                            "0 < clip_start < clip_end")
        problem = _pose_problem(c.world_from_camera)
        if problem:
            raise SpecError(f"camera.world_from_camera {problem}; give a rotation (orthonormal, determinant +1) "
                            "and a translation, e.g. from rgbify.scenes.spec.look_at")
        for o in self.objects:
            lod = getattr(o.geometry, "lod_m", 0.0)
            if not (math.isfinite(lod) and lod >= 0):
                raise SpecError(f"object {o.name!r}: geometry.lod_m must be a finite number >= 0 (0: no level of "
                                f"detail), got {lod}")
        if self.render.samples < 1:
            raise SpecError(f"render.samples must be >= 1, got {self.render.samples}")
        if not 0 <= self.render.world_map_resolution <= 16384:
            raise SpecError(f"render.world_map_resolution must be 0 (automatic) to 16384, got "
                            f"{self.render.world_map_resolution}")
        return self


def _pose_problem(m: Any) -> str | None:
    """What makes ``m`` no rigid camera pose (None if it is one): NaN, infinite, not orthonormal, a mirror."""
    a = np.asarray(m, dtype=np.float64)
    if a.shape != (4, 4):
        return f"has shape {a.shape}, not (4, 4)"
    if not np.all(np.isfinite(a)):
        return "holds NaN or infinite values"
    if not np.allclose(a[3], (0.0, 0.0, 0.0, 1.0)):
        return f"has last row {a[3].tolist()}, not [0, 0, 0, 1]"
    r = a[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
        return "is not a rigid transform (its 3x3 rotation is not orthonormal with determinant +1)"
    return None


def _freeze(x: Any) -> Any:
    """Lists (at any depth, also inside dicts) become tuples: the form a JSON round trip produces."""
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, dict):
        return {k: _freeze(v) for k, v in x.items()}
    return x


# --- JSON ---------------------------------------------------------------------------------------------------


def spec_to_dict(spec: SceneSpec) -> dict[str, Any]:
    return dump(spec)


def spec_to_json(spec: SceneSpec, indent: int | None = None) -> str:
    try:
        return json.dumps(spec_to_dict(spec), indent=indent, sort_keys=True, allow_nan=False)
    except ValueError as e:
        raise SpecError(f"non-finite number in scene spec ({e})") from None


def upgrade(d: Any) -> Any:
    """A spec dict of an older schema_version as the current version's (datasets keep the specs they were built
    with: reading them must not fail). Version 1 -> 2: a material's ``texture`` {kind, scale, color2, detail}
    becomes the pattern fields (``pattern_scale_m`` = 1 / scale)."""
    if not isinstance(d, dict) or d.get("schema_version") != 1:
        return d
    d = json.loads(json.dumps(d))
    for o in d.get("objects", []):
        m = o.get("material") if isinstance(o, dict) else None
        if isinstance(m, dict) and "texture" in m:
            t = m.pop("texture")
            if isinstance(t, dict):
                m.update(pattern=t.get("kind", "noise"), color2=t.get("color2", [0, 0, 0]),
                         pattern_scale_m=1.0 / float(t.get("scale", 5.0)), pattern_detail=t.get("detail", 2.0))
    d["schema_version"] = SCHEMA_VERSION
    return d


def _check_version(d: Any) -> None:
    version = d.get("schema_version") if isinstance(d, dict) else None
    if version != SCHEMA_VERSION:
        raise SpecError(f"scene spec schema_version {version!r} is not supported (this rgbify reads "
                        f"1 to {SCHEMA_VERSION}); re-sample the scene with this version")


def spec_from_dict(d: dict[str, Any]) -> SceneSpec:
    d = upgrade(d)
    _check_version(d)
    return parse(SceneSpec, d, "spec", SpecError)


def spec_from_json(text: str) -> SceneSpec:
    try:
        spec = parse_json(SceneSpec, text, "spec", SpecError)
    except SpecError:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"scene spec is not valid JSON: {e}") from None
        if isinstance(d, dict) and d.get("schema_version") != SCHEMA_VERSION:
            return spec_from_dict(d)  # an older version (upgraded), or the message that says the version is wrong
        raise
    _check_version({"schema_version": spec.schema_version})
    return spec


_ROUND_TRIP_MESHES: weakref.WeakValueDictionary[int, InlineMesh] = weakref.WeakValueDictionary()
_NO_MESH = InlineMesh(vertices=(), faces=())


def mark_round_trip_form(mesh: InlineMesh) -> InlineMesh:
    """Record that ``mesh`` is already what a JSON round trip makes of it (tuples of finite Python floats and of
    Python ints, rows of three vertex coordinates): :func:`round_trip_form` keeps it as it is. Only for meshes
    built so (rgbify.scenes.geometry.inline_mesh); returns ``mesh``."""
    _ROUND_TRIP_MESHES[id(mesh)] = mesh
    return mesh


def round_trip_form(spec: SceneSpec) -> SceneSpec:
    """``spec_from_json(spec_to_json(spec))`` (the canonical form of a spec: tuples, Python numbers), with the
    inline meshes recorded by :func:`mark_round_trip_form` kept as they are instead of sent through JSON (they are
    fixed points of the round trip, and a street's meshes made it 40% of sampling a scene). Raises SpecError as
    the round trip does."""
    kept: dict[int, InlineMesh] = {}
    objects = []
    for k, o in enumerate(spec.objects):
        g = o.geometry
        if isinstance(g, InlineMesh) and _ROUND_TRIP_MESHES.get(id(g)) is g:
            kept[k] = g
            o = dataclasses.replace(o, geometry=_NO_MESH)
        objects.append(o)
    if not kept:
        return spec_from_json(spec_to_json(spec))
    out = spec_from_json(spec_to_json(dataclasses.replace(spec, objects=tuple(objects))))
    return dataclasses.replace(out, objects=tuple(dataclasses.replace(o, geometry=kept[k]) if k in kept else o
                                                  for k, o in enumerate(out.objects)))


def spec_hash(spec: SceneSpec) -> str:
    """sha256 hex digest of the canonical JSON of the spec."""
    return hashlib.sha256(spec_to_json(spec).encode()).hexdigest()
