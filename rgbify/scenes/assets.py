"""User assets: ``--assets DIR`` holds one folder per class of mesh files, mixed into sampled scenes.

    DIR/
      mug/            -> class "mug" (a new class, appended to the class table)
        a.glb  b.obj
      chair/          -> the built-in class "chair"
        c.ply
        class.toml    -> optional: units = "cm"  size_m = [0.8, 1.0]  placement = "floor"  up = "y"
                                   license = "CC-BY-4.0"  credit = "Chair by A. Maker"

Each mesh is stood upright (glTF and OBJ files are Y-up by convention and are turned Z-up; PLY and STL are taken as
Z-up; ``up`` overrides) and keeps its materials, textures and UVs (an OBJ's MTL, a glTF's materials; a file that
describes no surface, a PLY or STL, gets a material drawn for its class). Its size, the rule:

* ``size_m = [low, high]`` in class.toml: every copy is scaled so its largest side falls in that range (the old
  behaviour, for meshes in arbitrary units);
* else ``units`` (``m``, ``cm``, ``mm``, ``in``, ``ft``): the mesh is in those units and keeps its true size;
* else glTF/GLB files are in metres (the glTF specification) and keep their size;
* else (OBJ, PLY, STL carry no units, ``units = "auto"``) the first of metres, centimetres, millimetres and inches
  in which the largest side is plausible for the class (within a third of its low and three times its high size,
  SIZE_M; other classes 2 cm-3 m) is taken; if none is, the mesh is scaled into the class's range as with size_m.

Copies of a true-size mesh vary by +-3% (SIZE_JITTER). Small assets (largest side at most 0.6 m at their true
size, or their size_m) go on supporting surfaces, larger ones on the floor or ground (``placement`` overrides).
Support surfaces (tables, shelves, seats) are found from the mesh's upward faces (rgbify.scenes.meshinfo), so
clutter can stand on an imported table; collision boxes follow its parts.

A file that cannot be read, holds no triangles, has non-finite coordinates or a degenerate size, or names a
texture that does not exist gets an :class:`AssetWarning` naming it and is skipped; with ``strict=True`` it raises
:class:`AssetError` instead. Reading happens once, in :func:`load_assets`; sampling then only draws from the loaded
library. Every sample records the assets it used (spec.meta["assets"]: file, licence and credit from class.toml).
"""

from __future__ import annotations

import functools
import re
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rgbify.scenes.builder import Model, SceneBuilder, Surface, WorldSurface
from rgbify.scenes.context import Context
from rgbify.scenes.geometry import TriMesh, load_mesh_file, mesh_file_materials, resolve_path, rot_x, translate
from rgbify.scenes.meshinfo import collision_boxes, support_surfaces
from rgbify.scenes.placement import place_on_floor, place_on_surface
from rgbify.scenes.recipe import AssetWarning
from rgbify.scenes.spec import MeshFile

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

SIZE_M: dict[str, tuple[float, float]] = {
    "table": (0.8, 1.8), "chair": (0.8, 1.0), "shelf": (1.0, 2.0), "cabinet": (0.6, 1.8), "bed": (1.9, 2.2),
    "sofa": (1.5, 2.4), "lamp": (0.3, 1.7), "rug": (1.0, 2.5), "picture": (0.3, 1.0), "pillow": (0.35, 0.6),
    "box": (0.1, 0.4), "bottle": (0.18, 0.35), "bowl": (0.12, 0.28), "book": (0.18, 0.3), "ball": (0.06, 0.3),
    "cup": (0.07, 0.13), "plate": (0.16, 0.3), "can": (0.08, 0.18), "vase": (0.15, 0.45), "fruit": (0.05, 0.12),
    "clutter": (0.05, 0.3), "pole": (4.0, 9.0), "traffic_sign": (2.0, 3.2), "car": (3.8, 4.9),
    "truck": (5.5, 8.5), "bus": (10.0, 12.5), "tree": (3.0, 10.0), "bush": (0.5, 2.0), "fence": (2.0, 10.0),
    "bench": (1.2, 2.0), "rock": (0.3, 1.8), "building": (8.0, 30.0), "door": (2.0, 2.1), "window": (0.6, 2.0),
}
DEFAULT_SIZE_M = (0.1, 0.4)
SMALL_MAX_M = 0.6
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
"""class.toml ``units``: metres per file unit."""
PLAUSIBLE_OTHER_M = (0.02, 3.0)
"""Largest side, metres, that a mesh of a class without a SIZE_M entry may have at its true size."""
SIZE_JITTER = 0.03
SURFACE_KINDS = {"table": "table", "shelf": "shelf", "cabinet": "cabinet", "bed": "bed", "sofa": "seat",
                 "chair": "seat", "box": "box", "desk": "table", "counter": "counter", "nightstand": "cabinet",
                 "dresser": "cabinet", "bench": "seat"}
"""Classes whose assets offer support surfaces (found from their upward faces), and the kind of each."""


class AssetError(ValueError):
    """Raised instead of AssetWarning when assets are loaded with strict=True."""


@dataclass(frozen=True)
class Asset:
    class_name: str
    path: str
    """Absolute path of the mesh file."""
    up_from_file: tuple[tuple[float, ...], ...]
    """Rotation taking file coordinates to Z-up (4x4)."""
    lo: tuple[float, float, float]
    """Bounds of the upright mesh at scale 1 (file units)."""
    hi: tuple[float, float, float]
    size_m: tuple[float, float] | None
    """Largest side of a copy is drawn from this range (None: the true size, ``unit_m`` metres per file unit)."""
    placement: str
    """'surface' or 'floor'."""
    unit_m: float = 1.0
    """Metres per file unit (true-size assets)."""
    boxes: tuple = ()
    """Collision boxes of the upright mesh in metres at its true size (or at largest side 1, with size_m)."""
    surfaces: tuple = ()
    """Support surfaces, (z, cx, cy, hx, hy, clear) in the same units as ``boxes``."""
    own_materials: bool = False
    """The file describes its surfaces (materials, textures): they are kept."""
    licence: str = "unknown"
    credit: str = ""

    def model(self, rng: np.random.Generator) -> Model:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        ext = hi - lo
        if self.size_m is None:
            unit = self.unit_m * float(1.0 + rng.uniform(-SIZE_JITTER, SIZE_JITTER))  # metres per box unit: 1
            s_box = unit / self.unit_m
        else:
            unit = float(rng.uniform(*self.size_m)) / float(ext.max())
            s_box = unit * float(ext.max())
        scale = round(unit, 6)
        centre = (lo + hi) / 2.0
        model_from_geometry = translate(-centre[0] * scale, -centre[1] * scale, -lo[2] * scale) @ np.asarray(
            self.up_from_file)
        boxes = [(np.asarray(c) * s_box, np.asarray(h) * s_box) for c, h in self.boxes] or \
            [(np.array([0.0, 0.0, ext[2] * scale / 2.0]), ext * scale / 2.0)]
        kind = SURFACE_KINDS.get(self.class_name, "")
        surfaces = [Surface(z * s_box, cx * s_box, cy * s_box, hx * s_box, hy * s_box, kind, clear * s_box)
                    for z, cx, cy, hx, hy, clear in self.surfaces] if kind else []
        mats = mesh_file_materials(self.path) if self.own_materials else ()
        credit = {"id": f"assets:{self.class_name}/{Path(self.path).name}", "name": Path(self.path).stem,
                  "creator": self.credit, "holder": "", "licence": self.licence, "source": self.path}
        return Model(self.class_name, f"asset_{Path(self.path).stem}", MeshFile(self.path, scale),
                     model_from_geometry, boxes, surfaces, "smooth", "object", file_materials=mats, credit=credit)


@dataclass
class AssetLibrary:
    root: str
    assets: list[Asset] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """'PATH: reason' for every file or folder that was skipped."""

    @property
    def models(self) -> list[Asset]:
        return self.assets

    @property
    def classes(self) -> list[str]:
        return sorted({a.class_name for a in self.assets})

    def _pick(self, rng: np.random.Generator, placement: str) -> Asset | None:
        pool = [a for a in self.assets if a.placement == placement]
        if not pool and placement == "floor":
            pool = self.assets  # small assets may stand on the floor; large ones never go on tables
        return pool[int(rng.integers(len(pool)))] if pool else None

    def has(self, placement: str) -> bool:
        """Whether any asset goes on surfaces (``surface``) or on the floor (``floor``)."""
        return any(a.placement == placement for a in self.assets)

    def place_small(self, ctx: Context, b: SceneBuilder, ws: WorldSurface) -> int | None:
        a = self._pick(ctx.rng, "surface")
        return None if a is None else place_on_surface(ctx, b, a.model(ctx.rng), ws)

    def pick_large(self, rng: np.random.Generator) -> Model | None:
        """A model of a floor-standing asset (None: there is none)."""
        a = self._pick(rng, "floor")
        return None if a is None else a.model(rng)

    def place_large(self, ctx: Context, b: SceneBuilder, sample_xy: Callable[[], np.ndarray], floor_id: int,
                    inside: Callable[[Model, np.ndarray], bool] | None) -> int | None:
        a = self._pick(ctx.rng, "floor")
        return None if a is None else place_on_floor(ctx, b, a.model(ctx.rng), sample_xy, floor_id, inside=inside)


def _problem(lib: AssetLibrary, where: str, why: str, strict: bool) -> None:
    msg = f"asset {where}: {why}"
    if strict:
        raise AssetError(f"{msg} (fix or remove it, or run without --strict to skip it)")
    lib.skipped.append(f"{where}: {why}")
    warnings.warn(f"skipping {msg}", AssetWarning, stacklevel=3)


def _class_options(folder: Path, lib: AssetLibrary, strict: bool) -> dict:
    f = folder / "class.toml"
    if not f.is_file():
        return {}
    try:
        opts = tomllib.loads(f.read_text())
        known = {"size_m", "placement", "up", "units", "license", "credit"}
        unknown = set(opts) - known
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
        if opts.get("units", "auto") not in (*UNITS, "auto"):
            raise ValueError(f"units {opts['units']!r} must be one of {', '.join([*UNITS, 'auto'])}")
        for key in ("license", "credit"):
            if not isinstance(opts.get(key, ""), str):
                raise ValueError(f"{key} must be a string")
        if "size_m" in opts:
            lo, hi = (float(x) for x in opts["size_m"])
            if not 0 < lo <= hi:
                raise ValueError(f"size_m {opts['size_m']} must be [low, high] with 0 < low <= high")
        if opts.get("placement", "surface") not in ("surface", "floor"):
            raise ValueError(f"placement {opts['placement']!r} must be 'surface' or 'floor'")
        if opts.get("up", "y") not in ("y", "z"):
            raise ValueError(f"up {opts['up']!r} must be 'y' or 'z'")
        return opts
    except (ValueError, TypeError, tomllib.TOMLDecodeError) as e:
        _problem(lib, str(f), f"bad class options ({e}); using defaults", strict)
        return {}


def load_assets(root: str | Path, strict: bool = False) -> AssetLibrary:
    """Read every mesh under ``root`` (one sub-folder per class). Unreadable files are skipped with an
    AssetWarning naming them (or raise AssetError when ``strict``). Raises AssetError if ``root`` is not a folder."""
    rp = Path(root)
    if not rp.is_dir():
        raise AssetError(f"assets folder {str(root)!r} does not exist; pass a folder with one sub-folder per class")
    lib = AssetLibrary(root=str(rp.resolve()))
    for folder in sorted(p for p in rp.iterdir() if p.is_dir()):
        if not CLASS_NAME.match(folder.name):
            _problem(lib, str(folder), "folder name is not a class name (lower-case letters, digits, _)", strict)
            continue
        opts = _class_options(folder, lib, strict)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MESH_SUFFIXES)
        if not files:
            _problem(lib, str(folder), f"no mesh files ({', '.join(MESH_SUFFIXES)})", strict)
        for f in files:
            asset = _read_asset(lib, folder.name, f, opts, strict)
            if asset is not None:
                lib.assets.append(asset)
    return lib


def _folder_signature(root: Path) -> tuple:
    """(name, size, mtime) of every file under root: changes whenever the library would."""
    return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()))


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, signature: tuple, strict: bool) -> AssetLibrary:
    del signature  # part of the cache key only
    return load_assets(root, strict)


def library_for(assets: AssetLibrary | str | Path, strict: bool = False) -> AssetLibrary:
    """An AssetLibrary as is, or the library of a folder path, read once per process while the folder's files
    are unchanged (so passing a path to every sample_scene call does not re-read every mesh)."""
    if isinstance(assets, AssetLibrary):
        return assets
    root = Path(assets)
    if not root.is_dir():
        raise AssetError(f"assets folder {str(assets)!r} does not exist; pass a folder with one sub-folder per class")
    return _load_cached(str(root.resolve()), _folder_signature(root), strict)


def _read_asset(lib: AssetLibrary, class_name: str, f: Path, opts: dict, strict: bool) -> Asset | None:
    path = str(f.resolve())
    try:
        mesh = load_mesh_file(path)
        mats = mesh_file_materials(path)
    except ValueError as e:
        _problem(lib, path, str(e).replace(f"mesh file {path!r}", "file").strip(), strict)
        return None
    missing = [m.image for m in mats if m.image and "#" not in m.image and not Path(resolve_path(m.image)).is_file()]
    if missing:
        _problem(lib, path, f"texture {missing[0]!r} does not exist", strict)
        return None
    up = opts.get("up", "y" if f.suffix.lower() in (".glb", ".gltf", ".obj") else "z")
    up_from_file = rot_x(90.0) if up == "y" else np.eye(4)
    v = mesh.vertices @ up_from_file[:3, :3].T
    lo, hi = v.min(0), v.max(0)
    ext = hi - lo
    if not np.all(np.isfinite(ext)) or ext.max() <= 1e-9:
        _problem(lib, path, f"degenerate size {ext.tolist()}", strict)
        return None
    size, unit = _size_rule(class_name, f.suffix.lower(), float(ext.max()), opts)
    box_unit = unit if size is None else 1.0 / float(ext.max())  # boxes: metres, or largest side 1
    centre = np.array([(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0, lo[2]])
    upright = TriMesh((v - centre) * box_unit, mesh.faces)
    boxes = tuple((tuple(float(x) for x in c), tuple(float(x) for x in h)) for c, h in collision_boxes(upright))
    surfaces = ()
    if class_name in SURFACE_KINDS:
        surfaces = tuple((s.z, s.cx, s.cy, s.hx, s.hy, s.clear_m) for s in support_surfaces(upright, ""))
    largest = size[1] if size is not None else float(ext.max()) * unit
    placement = opts.get("placement", "surface" if largest <= SMALL_MAX_M else "floor")
    return Asset(class_name, path, tuple(tuple(float(x) for x in r) for r in up_from_file),
                 tuple(float(x) for x in lo), tuple(float(x) for x in hi), size, placement, unit,  # type: ignore
                 boxes, surfaces, any(m.defined for m in mats), opts.get("license", "unknown"),
                 opts.get("credit", ""))


def _size_rule(class_name: str, suffix: str, largest: float, opts: dict) -> tuple[tuple[float, float] | None, float]:
    """(size_m range to rescale into, or None for the true size; metres per file unit) by the rule of the module
    docstring."""
    if "size_m" in opts:
        return tuple(float(x) for x in opts["size_m"]), 1.0  # type: ignore[return-value]
    units = opts.get("units", "m" if suffix in (".glb", ".gltf") else "auto")
    if units != "auto":
        return None, UNITS[units]
    lo, hi = SIZE_M.get(class_name, (PLAUSIBLE_OTHER_M[0] * 3.0, PLAUSIBLE_OTHER_M[1] / 3.0))
    for unit in (1.0, 0.01, 0.001, 0.0254):
        if lo / 3.0 <= largest * unit <= hi * 3.0:
            return None, unit
    return SIZE_M.get(class_name, DEFAULT_SIZE_M), 1.0
