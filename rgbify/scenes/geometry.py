"""The triangles of a scene spec: the one geometry module, used by the sampler's checks and by every renderer.

Everything that looks at a spec's surfaces builds them here: the scene sampler's ray-cast probe and its
interpenetration audit (as trimesh meshes, :meth:`TriMesh.to_trimesh`), Blender (rgbify.render.cycles hands these
arrays to ``bpy``), the pyrender raster backend, the ray-casting oracle and ``geometry.glb``. So a check sees the
very triangles that are rendered.

Conventions (rgbify/scenes/spec.py): a Primitive is centred at the object origin with full extents ``size``;
cylinders, cones and tori have their axis along +z; a plane lies in z = 0. Primitives are tessellated by this
module (not by Blender's ``primitive_*_add`` operators); polygons of inline meshes are fan-triangulated; mesh files
are read with trimesh (all their meshes merged, scene-graph transforms applied, no axis conversion) and scaled by
``scale``, and each file is read once per process while it is unchanged. A ``.npz`` mesh file is rgbify's own
format (:func:`write_mesh_npz`: triangles, material slots, UVs and the materials; what the asset importers write
into their cache, read here without trimesh).

Smooth shading uses per-vertex normals weighted by the corner angle of each adjacent triangle (what Blender
computes for a mesh without custom normals), interpolated barycentrically and renormalised across a triangle.
NumPy and trimesh only: no bpy.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import json
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rgbify.scenes.spec import Camera, InlineMesh, MeshFile, Object, Primitive, mark_round_trip_form

ROUND = 6
"""Decimals kept for inline-mesh vertices (micrometres), so specs stay compact and stable."""


class GeometryError(ValueError):
    """An object's geometry cannot be built (unreadable mesh file, bad indices); the message names it."""


@dataclass(frozen=True)
class TriMesh:
    """A triangle mesh: ``vertices`` float64 (N,3) metres, ``faces`` int64 (M,3) counter-clockwise outward;
    optionally the material slot of each face (int64 (M,), None: all slot 0) and texture coordinates per face
    corner (float64 (M,3,2), None: none)."""

    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray | None = None
    uv: np.ndarray | None = None

    def transformed(self, matrix: np.ndarray) -> TriMesh:
        """The mesh with a 4x4 affine ``matrix`` applied to its vertices."""
        m = np.asarray(matrix, dtype=np.float64)
        v = self.vertices @ m[:3, :3].T + m[:3, 3]
        if np.linalg.det(m[:3, :3]) > 0:
            return TriMesh(v, self.faces, self.face_material, self.uv)
        uv = None if self.uv is None else np.ascontiguousarray(self.uv[:, ::-1])
        return TriMesh(v, np.ascontiguousarray(self.faces[:, ::-1]), self.face_material, uv)  # outward winding

    def slots(self) -> np.ndarray:
        """The material slot of every face (zeros when the mesh has one material)."""
        return np.zeros(len(self.faces), np.int64) if self.face_material is None else self.face_material

    @property
    def triangles(self) -> np.ndarray:
        """(M, 3, 3) float64: the corners of every face."""
        return self.vertices[self.faces]

    def to_trimesh(self):  # noqa: ANN201 - trimesh.Trimesh
        """The same vertices and faces as a trimesh.Trimesh (nothing merged or reordered)."""
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False, validate=False)


# --- transforms ------------------------------------------------------------------------------------------------


def translate(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def rot_z(deg: float) -> np.ndarray:
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def rot_y(deg: float) -> np.ndarray:
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m


def rot_x(deg: float) -> np.ndarray:
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.eye(4)
    m[1:3, 1:3] = [[c, -s], [s, c]]
    return m


# --- primitives ------------------------------------------------------------------------------------------------


def _grid_faces(rows: int, cols: int, offset: int = 0, wrap: bool = True) -> np.ndarray:
    """Two triangles per cell of a (rows x cols) vertex grid laid out row-major; columns wrap around."""
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols if wrap else cols - 1), indexing="ij")
    j1 = (j + 1) % cols
    a, b = i * cols + j, i * cols + j1
    c, d = (i + 1) * cols + j1, (i + 1) * cols + j
    quads = np.stack([a, b, c, d], axis=-1).reshape(-1, 4) + offset
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def _fan(center: int, ring: np.ndarray, reverse: bool) -> np.ndarray:
    nxt = np.roll(ring, -1)
    f = np.stack([np.full_like(ring, center), ring, nxt], axis=1)
    return f[:, ::-1] if reverse else f


def _ring(n: int) -> tuple[np.ndarray, np.ndarray]:
    a = 2.0 * math.pi * np.arange(n) / n
    return np.cos(a), np.sin(a)


def _box() -> TriMesh:
    v = np.array([[x, y, z] for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)], dtype=np.float64)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    f = [(q[0], q[1], q[2]) for q in quads] + [(q[0], q[2], q[3]) for q in quads]
    return TriMesh(v, np.array(f, dtype=np.int64))


def _sphere(segments: int) -> TriMesh:
    rings = max(2, segments // 2)
    cos_a, sin_a = _ring(segments)
    theta = math.pi * np.arange(1, rings) / rings  # polar angle of the inner rings
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    body = np.stack([st * cos_a, st * sin_a, np.broadcast_to(ct, (len(theta), segments))], axis=-1)
    v = np.concatenate([body.reshape(-1, 3), [[0, 0, 1], [0, 0, -1]]]) * 0.5
    top, bottom = len(v) - 2, len(v) - 1
    f = [_grid_faces(rings - 1, segments)[:, ::-1]]  # rows go downwards: flip to keep outward winding
    f.append(_fan(top, np.arange(segments), reverse=False))
    f.append(_fan(bottom, (rings - 2) * segments + np.arange(segments), reverse=True))
    return TriMesh(v, np.concatenate(f).astype(np.int64))


def _cylinder(segments: int, top_radius: float) -> TriMesh:
    """Unit-height cylinder (or cone if ``top_radius`` is 0) of base radius 0.5; caps do not share vertices."""
    cos_a, sin_a = _ring(segments)
    ring = np.stack([cos_a, sin_a], axis=1) * 0.5
    bottom = np.column_stack([ring, np.full(segments, -0.5)])
    verts = [bottom]
    if top_radius > 0:
        top = np.column_stack([ring * top_radius * 2, np.full(segments, 0.5)])
        verts.append(top)
        side = _grid_faces(2, segments)[:, ::-1][:, [0, 2, 1]]
        faces = [side]
    else:
        verts.append([[0.0, 0.0, 0.5]])
        faces = [_fan(segments, np.arange(segments), reverse=False)[:, [0, 2, 1]][:, ::-1]]
    n = sum(len(x) for x in verts)
    # separate cap rings so that smooth shading keeps the caps flat
    verts.append(bottom)
    verts.append([[0.0, 0.0, -0.5]])
    faces.append(_fan(n + segments, n + np.arange(segments), reverse=True))
    if top_radius > 0:
        m = n + segments + 1
        verts.append(np.column_stack([ring * top_radius * 2, np.full(segments, 0.5)]))
        verts.append([[0.0, 0.0, 0.5]])
        faces.append(_fan(m + segments, m + np.arange(segments), reverse=False))
    v = np.concatenate([np.asarray(x, dtype=np.float64) for x in verts])
    return TriMesh(v, np.concatenate(faces).astype(np.int64))


def _torus(segments: int, minor_ratio: float) -> TriMesh:
    major = 0.5 / (1.0 + minor_ratio)
    minor = major * minor_ratio
    minor_segments = max(3, segments // 2)
    cos_a, sin_a = _ring(segments)
    cos_b, sin_b = _ring(minor_segments)
    r = major + minor * cos_b[:, None] + 0.0 * cos_a  # (minor_segments, segments)
    z = np.broadcast_to(minor * sin_b[:, None], r.shape)
    v = np.stack([r * cos_a, r * sin_a, z], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(minor_segments), np.arange(segments), indexing="ij")
    i1, j1 = (i + 1) % minor_segments, (j + 1) % segments
    a, b, c, d = i * segments + j, i * segments + j1, i1 * segments + j1, i1 * segments + j
    quads = np.stack([a, b, c, d], axis=-1).reshape(-1, 4)
    f = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    v[:, 2] *= 0.5 / np.abs(v[:, 2]).max()  # unit extent in z, scaled by size below
    return TriMesh(v, f.astype(np.int64))


def primitive_mesh(p: Primitive) -> TriMesh:
    """The primitive's triangles in the object frame, with full extents ``p.size`` (plane: z = 0)."""
    seg = int(p.segments)
    if p.shape in ("sphere", "cylinder", "cone", "torus") and seg < 3:
        raise GeometryError(f"primitive {p.shape}: segments must be >= 3, got {seg}")
    if p.shape not in ("box", "sphere", "cylinder", "cone", "plane", "torus"):
        raise GeometryError(f"unknown primitive shape {p.shape!r}; use box, sphere, cylinder, cone, plane or torus")
    m = _unit_mesh(p.shape, 0 if p.shape in ("box", "plane") else seg,
                   float(p.minor_ratio) if p.shape == "torus" else 0.0)
    size = np.asarray(p.size, dtype=np.float64)
    if p.shape == "plane":
        size = np.array([size[0], size[1], 1.0])
    if np.any(size <= 0):
        raise GeometryError(f"primitive {p.shape}: size must be positive, got {list(p.size)}")
    return TriMesh(m.vertices * size, m.faces.copy())


@functools.lru_cache(maxsize=256)
def _unit_mesh(shape: str, seg: int, minor_ratio: float) -> TriMesh:
    """The unit-size mesh of a primitive shape, made once per process (a street's facades alone are 2000 boxes;
    :func:`primitive_mesh` scales a copy). Its arrays are read-only."""
    if shape == "box":
        m = _box()
    elif shape == "sphere":
        m = _sphere(seg)
    elif shape == "cylinder":
        m = _cylinder(seg, 0.5)
    elif shape == "cone":
        m = _cylinder(seg, 0.0)
    elif shape == "plane":
        m = TriMesh(np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], dtype=np.float64),
                    np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64))
    else:
        m = _torus(seg, minor_ratio)
    m.vertices.setflags(write=False)
    m.faces.setflags(write=False)
    return m


# --- inline meshes and mesh files ------------------------------------------------------------------------------


def triangulate(faces: Sequence[Sequence[int]], n_vertices: int, where: str) -> np.ndarray:
    """Fan-triangulate polygons (v0, v1, v2, ...) into (M,3) int64, checking indices."""
    return _fan_triangles(faces, n_vertices, where)[0]


def _fan_triangles(faces: Sequence[Sequence[int]], n_vertices: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`triangulate`, also returning each polygon's corner count. Polygon k of n corners gives the triangles
    (v0, vt, vt+1) for t = 1 .. n-2, in order (vectorised: an outdoor scene's ground alone has 35k faces)."""
    sizes = np.fromiter(map(len, faces), np.int64, len(faces))
    if sizes.size and sizes.min() < 3:
        k = int(np.argmax(sizes < 3))
        raise GeometryError(f"{where}: face {k} has {int(sizes[k])} vertices; faces need at least 3")
    flat = np.fromiter(itertools.chain.from_iterable(faces), np.int64, int(sizes.sum()))
    if not sizes.size or sizes.max() == 3:
        f = flat.reshape(-1, 3)
    else:
        per = sizes - 2
        total = int(per.sum())
        starts = np.cumsum(sizes) - sizes
        first = np.repeat(starts, per)  # where each triangle's polygon starts in ``flat``
        t = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(per) - per, per) + 1
        f = np.stack([flat[first], flat[first + t], flat[first + t + 1]], axis=1).reshape(-1, 3)
    if f.size and (f.min() < 0 or f.max() >= n_vertices):
        raise GeometryError(f"{where}: face index out of range 0..{n_vertices - 1}")
    return f, sizes


def inline_mesh(vertices: np.ndarray, faces: np.ndarray, face_materials: np.ndarray | None = None) -> InlineMesh:
    """An InlineMesh of the spec from arrays (vertices rounded to ROUND decimals), with each face's material slot."""
    v = np.round(np.asarray(vertices, dtype=np.float64), ROUND)
    f = np.asarray(faces, dtype=np.int64)
    slots = () if face_materials is None else tuple(int(x) for x in np.asarray(face_materials).tolist())
    # rows as tuples, zipped from the columns' lists (twice as fast as a tuple per row of tolist())
    mesh = InlineMesh(vertices=tuple(zip(*v.T.tolist(), strict=True)),  # type: ignore[arg-type]
                      faces=tuple(zip(*f.T.tolist(), strict=True)), face_materials=slots)
    if v.ndim == 2 and v.shape[1] == 3 and f.ndim == 2 and np.isfinite(v).all():
        mark_round_trip_form(mesh)  # Python floats and ints from tolist(): what a JSON round trip gives back
    return mesh


@dataclass(frozen=True)
class FileMaterial:
    """One material of a mesh file, as the file describes it (an OBJ's .mtl entry, a glTF material): the sampler
    turns it into a spec Material of the object's slot."""

    name: str
    base_color: tuple[float, float, float]
    """Linear RGB (OBJ Kd, glTF baseColorFactor)."""
    alpha: float
    """1 - transparency (OBJ d, glTF alpha)."""
    roughness: float
    """From the specular exponent (OBJ Ns: 1 - sqrt(Ns / 1000), as Blender's importer) or glTF roughnessFactor."""
    metallic: float
    """glTF metallicFactor; 0 for OBJ."""
    image: str | None
    """The base-colour image: a file path, ``PATH#K`` for the K-th image embedded in the mesh file PATH, or None."""
    defined: bool = True
    """False where the file says nothing of its surface (a PLY or STL, an OBJ without an MTL): these values are
    defaults, and the sampler draws a material instead."""


CACHE_PREFIX = "cache:"
"""A path that starts with this is relative to the asset cache (:func:`asset_cache_dir`): where the catalogue
importer (rgbify.scenes.catalog) keeps its models, so that specs name them the same way on every machine."""


def asset_cache_dir() -> str:
    """The asset cache: ``$RGBIFY_ASSET_CACHE``, else ``$XDG_CACHE_HOME/rgbify/assets``, else
    ``~/.cache/rgbify/assets``."""
    root = os.environ.get("RGBIFY_ASSET_CACHE")
    if root:
        return os.path.abspath(os.path.expanduser(root))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(xdg), "rgbify", "assets")


def resolve_path(ref: str) -> str:
    """The file a mesh or image reference names: ``cache:REL`` is REL inside the asset cache, anything else a
    path as it is."""
    if ref.startswith(CACHE_PREFIX):
        return os.path.join(asset_cache_dir(), ref[len(CACHE_PREFIX):])
    return ref


def load_mesh_file(path: str, scale: float = 1.0) -> TriMesh:
    """A mesh file as one triangle mesh times ``scale``, with each face's material slot (the file's materials, in
    the order :func:`mesh_file_materials` lists them) and its UVs where the file has them. Raises GeometryError
    naming the file when it does not exist, cannot be read, holds no triangles or has non-finite coordinates.
    Files are read once per process while their size and modification time stay the same."""
    mesh, _ = _read_path(path)
    return TriMesh(mesh.vertices * float(scale), mesh.faces, mesh.face_material, mesh.uv) if scale != 1.0 else mesh


def mesh_file_materials(path: str) -> tuple[FileMaterial, ...]:
    """The materials of a mesh file, slot by slot (slot k of :func:`load_mesh_file`'s faces)."""
    return _read_path(path)[1]


def _read_path(path: str) -> tuple[TriMesh, tuple[FileMaterial, ...]]:
    real = resolve_path(path)
    try:
        st = os.stat(real)
    except OSError:
        if path.startswith(CACHE_PREFIX):
            raise GeometryError(f"mesh file {path!r} is not in the asset cache {asset_cache_dir()!r} (run `rgbify "
                                "scenes catalog import` here, or set RGBIFY_ASSET_CACHE to the cache that has it)"
                                ) from None
        raise GeometryError(f"mesh file {path!r} does not exist (paths are relative to the working directory "
                            f"{os.getcwd()!r})") from None
    return _read_mesh(os.path.abspath(real), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_mesh(path: str, size: int, mtime_ns: int) -> tuple[TriMesh, tuple[FileMaterial, ...]]:
    del size, mtime_ns  # part of the cache key: a changed file is read again
    return read_mesh_file(path)


def read_mesh_file(path: str) -> tuple[TriMesh, tuple[FileMaterial, ...]]:
    """A mesh file's triangles and materials, read now (not cached; :func:`load_mesh_file` caches). GeometryError
    names the file when it cannot be read, holds no triangles or has non-finite coordinates."""
    if path.lower().endswith(".npz"):
        return _read_npz(path)
    import trimesh

    try:
        loaded = trimesh.load(path, process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many kinds of errors for bad files
        raise GeometryError(f"mesh file {path!r} could not be read: {type(e).__name__}: {e}") from None
    parts = _scene_parts(loaded) if isinstance(loaded, trimesh.Scene) else (
        [(np.eye(4), loaded)] if isinstance(loaded, trimesh.Trimesh) else [])
    parts = [(t, g) for t, g in parts if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not parts:
        raise GeometryError(f"mesh file {path!r} holds no triangles")
    mtl = _mtl_images(path) if path.lower().endswith(".obj") else {}
    vs, fs, slots, uvs, materials, names = [], [], [], [], [], {}
    offset = 0
    has_uv = any(getattr(g.visual, "uv", None) is not None for _, g in parts)
    for transform, g in parts:
        v = np.asarray(g.vertices, dtype=np.float64) @ transform[:3, :3].T + transform[:3, 3]
        f = np.asarray(g.faces, dtype=np.int64)
        material = getattr(g.visual, "material", None)
        key = getattr(material, "name", None) or f"material{len(names)}"
        if key not in names:
            names[key] = len(materials)
            materials.append(_file_material(material, key, path, mtl, len(materials)))
        vs.append(v)
        fs.append(f + offset)
        slots.append(np.full(len(f), names[key], np.int64))
        uv = getattr(g.visual, "uv", None)
        uvs.append(np.asarray(uv, np.float64)[f] if uv is not None and len(uv) == len(v) else np.zeros((len(f), 3, 2)))
        offset += len(v)
    vertices = np.concatenate(vs)
    if not np.all(np.isfinite(vertices)):
        raise GeometryError(f"mesh file {path!r} has non-finite vertex coordinates")
    faces = np.concatenate(fs)
    face_material = np.concatenate(slots) if len(materials) > 1 else None
    uv = np.concatenate(uvs) if has_uv else None
    for a in (vertices, faces, face_material, uv):
        if a is not None:
            a.setflags(write=False)
    return TriMesh(vertices, faces, face_material, uv), tuple(materials)


NPZ_FORMAT = "rgbify-mesh-1"
"""The ``format`` entry of a .npz mesh file."""


def write_mesh_npz(path: str, mesh: TriMesh, materials: Sequence[FileMaterial]) -> None:
    """Write ``mesh`` and its slots' ``materials`` as a .npz mesh file (arrays ``vertices`` float64 (N,3), ``faces``
    int32 (M,3), ``face_material`` int32 (M,) (absent: one slot), ``uv`` float32 (M,3,2) (absent: none) and the
    materials as JSON). The bytes are a function of the content alone (fixed zip timestamps), so an import writes
    the same file every time. Not atomic: write to a temporary name and rename (rgbify.fileio.publishing)."""
    arrays = {"format": np.frombuffer(NPZ_FORMAT.encode(), np.uint8),
              "vertices": np.ascontiguousarray(mesh.vertices, np.float64),
              "faces": np.ascontiguousarray(mesh.faces, np.int32),
              "materials": np.frombuffer(json.dumps([dataclasses.asdict(m) for m in materials],
                                                    sort_keys=True).encode(), np.uint8)}
    if mesh.face_material is not None:
        arrays["face_material"] = np.ascontiguousarray(mesh.face_material, np.int32)
    if mesh.uv is not None:
        arrays["uv"] = np.ascontiguousarray(mesh.uv, np.float32)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                       zipfile.ZIP_DEFLATED)


def _read_npz(path: str) -> tuple[TriMesh, tuple[FileMaterial, ...]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z or bytes(z["format"]).decode() != NPZ_FORMAT:
                raise ValueError(f"not an rgbify mesh file (no format {NPZ_FORMAT!r})")
            vertices = np.asarray(z["vertices"], np.float64)
            faces = np.asarray(z["faces"], np.int64)
            face_material = np.asarray(z["face_material"], np.int64) if "face_material" in z else None
            uv = np.asarray(z["uv"], np.float64) if "uv" in z else None
            materials = tuple(FileMaterial(**{**m, "base_color": tuple(m["base_color"])})
                              for m in json.loads(bytes(z["materials"]).decode()))
    except Exception as e:  # noqa: BLE001 - zipfile, numpy and json raise many kinds of errors
        raise GeometryError(f"mesh file {path!r} could not be read: {type(e).__name__}: {e}") from None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or not len(faces):
        raise GeometryError(f"mesh file {path!r} holds no triangles")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise GeometryError(f"mesh file {path!r}: face index out of range 0..{len(vertices) - 1}")
    if not np.all(np.isfinite(vertices)):
        raise GeometryError(f"mesh file {path!r} has non-finite vertex coordinates")
    slots = 1 if face_material is None else int(face_material.max()) + 1
    if face_material is not None and (len(face_material) != len(faces) or face_material.min() < 0):
        raise GeometryError(f"mesh file {path!r}: face_material does not match its faces")
    if slots > max(len(materials), 1):
        raise GeometryError(f"mesh file {path!r}: its faces use {slots} material slots, it has {len(materials)}")
    if uv is not None and uv.shape != (len(faces), 3, 2):
        raise GeometryError(f"mesh file {path!r}: uv of shape {uv.shape}, expected {(len(faces), 3, 2)}")
    for a in (vertices, faces, face_material, uv):
        if a is not None:
            a.setflags(write=False)
    return TriMesh(vertices, faces, face_material, uv), materials


def _scene_parts(scene) -> list:  # noqa: ANN001 - a trimesh.Scene
    """(transform, geometry) of every geometry node of a trimesh scene, in the file's order."""
    out = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        out.append((np.asarray(transform, dtype=np.float64), scene.geometry[name]))
    return out


def _mtl_images(obj_path: str) -> dict[str, str]:
    """{material name: absolute path of its map_Kd image} from the .mtl files an OBJ names (trimesh loads the
    images but forgets where they came from)."""
    folder = os.path.dirname(obj_path)
    images: dict[str, str] = {}
    try:
        with open(obj_path, errors="replace") as f:
            libs = [line.split(None, 1)[1].strip() for line in f if line.startswith("mtllib ") and " " in line]
    except OSError:
        return images
    for lib in libs:
        current = None
        try:
            with open(os.path.join(folder, lib), errors="replace") as f:
                for line in f:
                    key, _, rest = line.strip().partition(" ")
                    if key == "newmtl":
                        current = rest.strip()
                    elif key.lower() == "map_kd" and current and rest.strip():
                        image = rest.split()[-1]  # the file name follows any options (-s, -o, ...)
                        images[current] = os.path.normpath(os.path.join(folder, image))
        except OSError:
            continue
    return images


def _file_material(material, name: str, path: str, mtl: dict[str, str], index: int) -> FileMaterial:  # noqa: ANN001
    """What a trimesh material says of a surface (OBJ SimpleMaterial or glTF PBRMaterial)."""
    kw = getattr(material, "kwargs", {}) or {}
    if material is not None and type(material).__name__ == "PBRMaterial":
        factor = np.asarray(material.baseColorFactor if material.baseColorFactor is not None else [255] * 4, float)
        factor = factor / 255.0 if factor.max() > 1.0 else factor
        image = f"{path}#{index}" if material.baseColorTexture is not None else None
        rough = material.roughnessFactor
        metal = material.metallicFactor
        return FileMaterial(name, tuple(float(x) for x in factor[:3]), float(factor[3]) if len(factor) > 3 else 1.0,
                            1.0 if rough is None else float(rough), 0.0 if metal is None else float(metal), image,
                            material.baseColorFactor is not None or image is not None)
    kd = kw.get("kd")
    color = tuple(float(x) for x in (kd if kd is not None else [0.8, 0.8, 0.8])[:3])
    d = kw.get("d")
    alpha = float(np.asarray(d, dtype=float).ravel()[0]) if d is not None and np.size(d) else 1.0
    ns = kw.get("ns")
    ns = float(np.asarray(ns, dtype=float).ravel()[0]) if ns is not None and np.size(ns) else 50.0
    rough = float(np.clip(1.0 - np.sqrt(max(ns, 0.0) / 1000.0), 0.0, 1.0))
    image = mtl.get(name)
    if image is None and getattr(material, "image", None) is not None:
        image = f"{path}#{index}"
    return FileMaterial(name, color, float(np.clip(alpha, 0.0, 1.0)), rough, 0.0, image,  # type: ignore[arg-type]
                        kd is not None or image is not None)


def file_image(ref: str):  # noqa: ANN201 - a PIL image
    """The image of a FileMaterial.image reference: a file path, or ``PATH#K`` (the K-th material's image of mesh
    file PATH). Raises GeometryError naming it when it cannot be read."""
    from PIL import Image

    path, _, k = ref.rpartition("#") if "#" in ref and ref.rpartition("#")[2].isdigit() else (ref, "", "")
    path = resolve_path(path)
    try:
        if not k:
            with Image.open(path) as im:
                im.load()
                return im.copy()
        import trimesh

        loaded = trimesh.load(path, process=False)
        parts = _scene_parts(loaded) if isinstance(loaded, trimesh.Scene) else [(None, loaded)]
        seen: dict[str, object] = {}
        for _, g in parts:
            m = getattr(g.visual, "material", None)
            name = getattr(m, "name", None) or f"material{len(seen)}"
            seen.setdefault(name, m)
        m = list(seen.values())[int(k)]
        im = getattr(m, "image", None) or getattr(m, "baseColorTexture", None)
        if im is None:
            raise ValueError("no image")
        return im.copy()
    except Exception as e:  # noqa: BLE001 - PIL and trimesh raise many kinds of errors
        raise GeometryError(f"image {ref!r} could not be read: {type(e).__name__}: {e}") from None


# --- objects and scenes ----------------------------------------------------------------------------------------


def object_mesh(obj: Object) -> TriMesh:
    """The object's triangles in its own frame (apply ``obj.world_from_object`` for world coordinates)."""
    g = obj.geometry
    if isinstance(g, Primitive):
        return primitive_mesh(g)
    if isinstance(g, MeshFile):
        return cluster_vertices(load_mesh_file(g.path, g.scale), g.lod_m)
    if isinstance(g, InlineMesh):
        v = _vertex_array(g.vertices)
        faces, sizes = _fan_triangles(g.faces, len(v), f"object {obj.name!r}")
        slots = None
        if g.face_materials:
            if len(g.face_materials) != len(g.faces):
                raise GeometryError(f"object {obj.name!r}: {len(g.face_materials)} face_materials for "
                                    f"{len(g.faces)} faces")
            per_poly = np.asarray(g.face_materials, dtype=np.int64)
            slots = np.repeat(per_poly, sizes - 2)
        return TriMesh(v, faces, slots)
    raise GeometryError(f"object {obj.name!r}: unknown geometry {type(g).__name__}")


def _vertex_array(vertices: Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 3) float64 of an inline mesh's vertex triples (read flat: much faster than np.asarray on tuples)."""
    if set(map(len, vertices)) <= {3}:
        return np.fromiter(itertools.chain.from_iterable(vertices), np.float64, 3 * len(vertices)).reshape(-1, 3)
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3)


def cluster_vertices(mesh: TriMesh, cell_m: float) -> TriMesh:
    """The mesh with its vertices merged on a grid of ``cell_m`` metres (a level of detail): the vertices in one
    cell become their mean, faces that lose a corner go, and of faces left with the same three corners the first
    stays (Blender would merge them); material slots and per-corner UVs of the kept faces stay.
    Every vertex moves by less than one cell diagonal. ``cell_m`` 0 returns ``mesh`` itself. A pure function of
    its arguments (the same triangles in every process)."""
    if cell_m <= 0 or len(mesh.faces) == 0:
        return mesh
    key = np.floor(mesh.vertices / cell_m).astype(np.int64)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, mesh.vertices)
    faces = inverse[mesh.faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    if not keep.any():
        return mesh  # the whole mesh inside one cell: nothing sensible to keep but the mesh itself
    # faces that now share their three corners (either winding) are one face: the first stays (Blender keeps one)
    kept = np.flatnonzero(keep)
    _, first = np.unique(np.sort(faces[kept], axis=1), axis=0, return_index=True)
    keep = np.zeros(len(faces), bool)
    keep[kept[first]] = True
    used = np.unique(faces[keep])
    remap = np.full(len(counts), -1, np.int64)
    remap[used] = np.arange(len(used))
    return TriMesh((sums / counts[:, None])[used], remap[faces[keep]],
                   None if mesh.face_material is None else mesh.face_material[keep],
                   None if mesh.uv is None else mesh.uv[keep])


LOD_MAX_PX = 64.0
"""Mesh files whose bounding sphere spans less than this radius in pixels (at its nearest point to the camera, at
the spec's resolution) get a level of detail (:func:`with_level_of_detail`)."""
LOD_CELL_PX = 0.5
"""Their vertices are merged on a grid of this many pixels at that nearest point: no edge moves by a pixel."""


def with_level_of_detail(objects: Sequence[Object], camera: Camera) -> tuple[Object, ...]:
    """``objects`` with ``lod_m`` set on the mesh files that are small on screen (docs/performance.md: a catalogue
    car or person of 10-30k triangles covering a few pixels costs path tracing time for detail no pixel shows).
    The cell is LOD_CELL_PX pixels at the object's nearest possible distance, at most an eighth of its radius.
    Ground truth stays exact: every user of the spec (renderer, data passes, oracle) meshes the same merged
    triangles. A pure function of its arguments."""
    camera_from_world = np.linalg.inv(np.asarray(camera.world_from_camera, dtype=np.float64))
    f = max(float(camera.fx), float(camera.fy))
    out = []
    for o in objects:
        g = o.geometry
        if isinstance(g, MeshFile) and g.lod_m == 0.0:
            v = load_mesh_file(g.path, g.scale).vertices
            centre = (v.min(axis=0) + v.max(axis=0)) / 2.0
            radius = float(np.linalg.norm(v - centre, axis=1).max())
            m = np.asarray(o.world_from_object, dtype=np.float64)
            c = camera_from_world[:3, :3] @ (m[:3, :3] @ centre + m[:3, 3]) + camera_from_world[:3, 3]
            near = float(np.linalg.norm(c)) - radius
            if near > 0 and f * radius / near < LOD_MAX_PX:
                cell = round(min(LOD_CELL_PX * near / f, radius / 8.0), 6)
                if cell > 0:
                    o = dataclasses.replace(o, geometry=dataclasses.replace(g, lod_m=cell))
        out.append(o)
    return tuple(out)


def world_mesh(obj: Object) -> TriMesh:
    """The object's triangles in world coordinates."""
    return object_mesh(obj).transformed(np.asarray(obj.world_from_object, dtype=np.float64))


def scene_meshes(objects: Sequence[Object]) -> list[TriMesh]:
    """Object-frame triangles of every object, in order; GeometryError names the object (and file) that fails."""
    out = []
    for o in objects:
        try:
            out.append(object_mesh(o))
        except GeometryError as e:
            raise GeometryError(f"object {o.name!r} (instance {o.instance_id}): {e}") from None
    return out


# --- normals ---------------------------------------------------------------------------------------------------


def face_normals(mesh: TriMesh) -> np.ndarray:
    """Unit face normals (M,3) float64 from the counter-clockwise winding (0 for degenerate faces)."""
    t = mesh.vertices[mesh.faces]
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def vertex_normals(mesh: TriMesh) -> np.ndarray:
    """Per-vertex unit normals (N,3): face normals weighted by the triangle's corner angle at the vertex."""
    t = mesh.vertices[mesh.faces]
    fn = face_normals(mesh)
    out = np.zeros_like(mesh.vertices)
    for k in range(3):
        e1 = t[:, (k + 1) % 3] - t[:, k]
        e2 = t[:, (k + 2) % 3] - t[:, k]
        denom = np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1)
        cos = np.divide(np.einsum("ij,ij->i", e1, e2), denom, out=np.ones(len(t)), where=denom > 0)
        angle = np.arccos(np.clip(cos, -1.0, 1.0))
        np.add.at(out, mesh.faces[:, k], fn * angle[:, None])
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, length, out=np.zeros_like(out), where=length > 0)
