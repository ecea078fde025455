"""User assets: ``--assets DIR`` holds one folder per class of mesh files, mixed into sampled scenes.

    DIR/
      mug/            -> class "mug" (a new class, appended to the class table)
        a.glb  b.obj
      chair/          -> the built-in class "chair"
        c.ply
        class.toml    -> optional: size_m = [0.8, 1.0]   placement = "floor"   up = "y"

Each mesh is scaled so that its largest extent falls in the class's plausible size range (built-in sizes below,
or ``size_m`` from ``class.toml``; unknown classes default to 0.1-0.4 m) and stood upright: glTF (.glb, .gltf)
and .obj files are Y-up by convention and are turned Z-up; .ply and .stl are taken as Z-up (``up`` overrides).
Small assets (largest size <= 0.6 m) go on supporting surfaces, larger ones on the floor or ground.

A file that cannot be read, holds no triangles or has a degenerate size gets an :class:`AssetWarning` naming it
and is skipped; with ``strict=True`` it raises :class:`AssetError` instead. Reading happens once, in
:func:`load_assets`; sampling then only draws from the loaded library.
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

from rgbify.scenes.builder import Model, SceneBuilder, WorldSurface
from rgbify.scenes.context import Context
from rgbify.scenes.geometry import load_mesh_file, rot_x, translate
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
    size_m: tuple[float, float]
    placement: str
    """'surface' or 'floor'."""

    def model(self, rng: np.random.Generator) -> Model:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        ext = hi - lo
        scale = float(rng.uniform(*self.size_m)) / float(ext.max())
        centre = (lo + hi) / 2.0
        model_from_geometry = translate(-centre[0] * scale, -centre[1] * scale, -lo[2] * scale) @ np.asarray(
            self.up_from_file)
        half = ext * scale / 2.0
        box = (np.array([0.0, 0.0, half[2]]), half)
        # no support surfaces: the top of a user mesh's bounding box need not be a flat surface
        return Model(self.class_name, f"asset_{Path(self.path).stem}", MeshFile(self.path, round(scale, 6)),
                     model_from_geometry, [box], [], "smooth", "object")


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
        pool = [a for a in self.assets if a.placement == placement] or self.assets
        return pool[int(rng.integers(len(pool)))] if pool else None

    def place_small(self, ctx: Context, b: SceneBuilder, ws: WorldSurface) -> int | None:
        a = self._pick(ctx.rng, "surface")
        return None if a is None else place_on_surface(ctx, b, a.model(ctx.rng), ws)

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
        unknown = set(opts) - {"size_m", "placement", "up"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; known: size_m, placement, up")
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
    except ValueError as e:
        _problem(lib, path, str(e).replace(f"mesh file {path!r}", "file").strip(), strict)
        return None
    up = opts.get("up", "y" if f.suffix.lower() in (".glb", ".gltf", ".obj") else "z")
    up_from_file = rot_x(90.0) if up == "y" else np.eye(4)
    v = mesh.vertices @ up_from_file[:3, :3].T
    lo, hi = v.min(0), v.max(0)
    ext = hi - lo
    if not np.all(np.isfinite(ext)) or ext.max() <= 1e-9:
        _problem(lib, path, f"degenerate size {ext.tolist()}", strict)
        return None
    size = tuple(float(x) for x in opts.get("size_m", SIZE_M.get(class_name, DEFAULT_SIZE_M)))
    placement = opts.get("placement", "surface" if size[1] <= SMALL_MAX_M else "floor")
    return Asset(class_name, path, tuple(tuple(float(x) for x in r) for r in up_from_file),
                 tuple(float(x) for x in lo), tuple(float(x) for x in hi), size, placement)  # type: ignore[arg-type]
