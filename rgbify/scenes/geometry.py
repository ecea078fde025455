"""Triangle meshes for spec geometry (trimesh), used by the bpy-free checks and by the model builders.

Conventions follow rgbify/scenes/spec.py: a Primitive is centred at the object origin with full extents ``size``;
cylinders and cones have their axis along +z; a plane lies in z = 0. A MeshFile is read as trimesh reads it (no
axis conversion) and scaled by ``scale``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh

from rgbify.scenes.spec import InlineMesh, MeshFile, Object, Primitive

ROUND = 6
"""Decimals kept for inline-mesh vertices (micrometres), so specs stay compact and stable."""


def primitive_mesh(p: Primitive) -> trimesh.Trimesh:
    """The primitive as a trimesh in its object frame."""
    sx, sy, sz = p.size
    seg = max(3, int(p.segments))
    if p.shape == "box":
        return trimesh.creation.box(extents=(sx, sy, sz))
    if p.shape == "sphere":
        m = trimesh.creation.uv_sphere(radius=0.5, count=(seg, max(3, seg // 2)))
    elif p.shape == "cylinder":
        m = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=seg)
    elif p.shape == "cone":
        m = trimesh.creation.cone(radius=0.5, height=1.0, sections=seg)
        m.apply_translation((0.0, 0.0, -0.5))
    elif p.shape == "torus":
        r_major = 0.5 / (1.0 + p.minor_ratio)
        m = trimesh.creation.torus(major_radius=r_major, minor_radius=r_major * p.minor_ratio,
                                   major_sections=seg, minor_sections=max(3, seg // 2))
        m.apply_scale((1.0, 1.0, 1.0 / (2.0 * r_major * p.minor_ratio)))
        return _scaled(m, (sx, sy, sz))
    elif p.shape == "plane":
        v = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]) * (sx, sy, 1.0)
        return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)
    else:
        raise ValueError(f"unknown primitive shape {p.shape!r}")
    return _scaled(m, (sx, sy, sz))


def _scaled(m: trimesh.Trimesh, s: Sequence[float]) -> trimesh.Trimesh:
    m.apply_scale(np.asarray(s, dtype=np.float64))
    return m


def load_mesh_file(path: str, scale: float = 1.0) -> trimesh.Trimesh:
    """Read a mesh file as one triangle mesh (scene graphs flattened with their transforms), times ``scale``.
    Raises ValueError naming the file when it cannot be read or holds no triangles."""
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # noqa: BLE001 - any reader failure is reported as the file's problem
        raise ValueError(f"cannot read mesh file {path!r}: {type(e).__name__}: {e}") from None
    if isinstance(loaded, list | tuple):
        loaded = trimesh.util.concatenate([m for m in loaded if isinstance(m, trimesh.Trimesh)])
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"mesh file {path!r} holds no triangles")
    if not np.all(np.isfinite(loaded.vertices)):
        raise ValueError(f"mesh file {path!r} has non-finite vertex coordinates")
    m = loaded.copy()
    m.apply_scale(float(scale))
    return m


def inline_mesh(vertices: np.ndarray, faces: np.ndarray) -> InlineMesh:
    v = np.round(np.asarray(vertices, dtype=np.float64), ROUND)
    return InlineMesh(vertices=tuple(tuple(r) for r in v.tolist()),  # type: ignore[arg-type]
                      faces=tuple(tuple(r) for r in np.asarray(faces, dtype=np.int64).tolist()))


def object_mesh(obj: Object, mesh_cache: dict[str, trimesh.Trimesh] | None = None) -> trimesh.Trimesh:
    """The object's mesh in world coordinates."""
    g = obj.geometry
    if isinstance(g, Primitive):
        m = primitive_mesh(g)
    elif isinstance(g, InlineMesh):
        m = trimesh.Trimesh(np.asarray(g.vertices, dtype=np.float64), _triangulate(g.faces), process=False)
    elif isinstance(g, MeshFile):
        if mesh_cache is None or g.path not in mesh_cache:
            raw = load_mesh_file(g.path)
            if mesh_cache is not None:
                mesh_cache[g.path] = raw
        else:
            raw = mesh_cache[g.path]
        m = raw.copy()
        m.apply_scale(float(g.scale))
    else:
        raise ValueError(f"object {obj.name!r}: unknown geometry {type(g).__name__}")
    m.apply_transform(np.asarray(obj.world_from_object, dtype=np.float64))
    return m


def _triangulate(faces: Sequence[Sequence[int]]) -> np.ndarray:
    tris = []
    for f in faces:
        for k in range(1, len(f) - 1):  # fan: the inline meshes rgbify writes are triangles or convex polygons
            tris.append((f[0], f[k], f[k + 1]))
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


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


def rot_x(deg: float) -> np.ndarray:
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.eye(4)
    m[1:3, 1:3] = [[c, -s], [s, c]]
    return m


def rot_y(deg: float) -> np.ndarray:
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m
