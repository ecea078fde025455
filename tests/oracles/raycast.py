"""Test oracle: independent ground truth without Blender, by ray casting with trimesh + embreex.

Embree (float32) only picks the triangle hit by each pixel-centre ray; the hit itself is recomputed in float64
(Moller-Trumbore) so that depth can be compared with a relative tolerance of 1e-5. Shading normals follow the
convention of :mod:`rgbify.scenes.geometry` (flat: face normal; smooth: angle-weighted vertex normals,
interpolated barycentrically and renormalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rgbify.render.passes import ray_directions
from rgbify.scenes.geometry import face_normals, object_mesh, vertex_normals
from rgbify.scenes.spec import SceneSpec


@dataclass
class OracleResult:
    depth: np.ndarray
    """float64 (H,W) planar z, +inf on a miss."""
    normals: np.ndarray
    """float64 (H,W,3) OpenCV camera frame, toward the camera, 0 on a miss."""
    instance: np.ndarray
    """int32 (H,W), 0 on a miss."""
    smooth: np.ndarray
    """bool (H,W): the hit triangle is smooth-shaded."""
    points_world: np.ndarray
    """float64 (H,W,3) world hit points (0 on a miss)."""
    plane_normals_world: np.ndarray
    """float64 (H,W,3) unit geometric normal of the hit triangle in world space (0 on a miss)."""


def _scene_triangles(spec: SceneSpec):
    """Camera-frame triangles (T,3,3), per-triangle instance ids, smooth flags and camera-frame vertex normals."""
    m = np.asarray(spec.camera.world_from_camera, dtype=np.float64)
    camera_from_world = np.linalg.inv(m)
    tris, ids, smooth, vnorm = [], [], [], []
    for o in spec.objects:
        local = object_mesh(o)
        cam_from_obj = camera_from_world @ np.asarray(o.world_from_object, dtype=np.float64)
        mesh = local.transformed(cam_from_obj)
        tris.append(mesh.vertices[mesh.faces])
        ids.append(np.full(len(mesh.faces), o.instance_id, dtype=np.int32))
        smooth.append(np.full(len(mesh.faces), o.shading == "smooth"))
        if o.shading == "smooth":  # object-space normals, carried by the inverse transpose (as Blender does)
            vn = vertex_normals(local) @ np.linalg.inv(cam_from_obj[:3, :3])
            vnorm.append(vn[local.faces])
        else:
            vnorm.append(np.repeat(face_normals(mesh)[:, None, :], 3, axis=1))
    return np.concatenate(tris), np.concatenate(ids), np.concatenate(smooth), np.concatenate(vnorm)


def cast(spec: SceneSpec) -> OracleResult:
    """Cast one ray through every pixel centre of ``spec.camera``."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    cam = spec.camera
    tris, ids, smooth, vnorm = _scene_triangles(spec)
    mesh = trimesh.Trimesh(vertices=tris.reshape(-1, 3), faces=np.arange(len(tris) * 3).reshape(-1, 3), process=False)
    rays = ray_directions(cam).reshape(-1, 3)
    index = RayMeshIntersector(mesh).intersects_first(np.zeros_like(rays), rays / np.linalg.norm(rays, axis=1)[:, None])
    hit = index >= 0
    tri = tris[np.where(hit, index, 0)]
    # float64 Moller-Trumbore along r = (x, y, 1): the ray parameter is the planar depth z.
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(rays, e2)
    det = np.einsum("ij,ij->i", e1, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = -tri[:, 0]
        bu = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        bv = np.einsum("ij,ij->i", rays, q) * inv
        z = np.einsum("ij,ij->i", e2, q) * inv
    hit &= np.isfinite(z) & (z > 0)
    ng = np.cross(e1, e2)
    ng /= np.maximum(np.linalg.norm(ng, axis=1, keepdims=True), 1e-300)
    vn = vnorm[np.where(hit, index, 0)]
    n = (1 - bu - bv)[:, None] * vn[:, 0] + bu[:, None] * vn[:, 1] + bv[:, None] * vn[:, 2]
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    n *= np.where(np.einsum("ij,ij->i", n, rays) > 0, -1.0, 1.0)[:, None]
    ng *= np.where(np.einsum("ij,ij->i", ng, rays) > 0, -1.0, 1.0)[:, None]
    m = np.asarray(cam.world_from_camera, dtype=np.float64)
    pts_world = (rays * z[:, None]) @ m[:3, :3].T + m[:3, 3]
    h, w = cam.height, cam.width
    hit2 = hit[:, None]
    return OracleResult(
        depth=np.where(hit, z, np.inf).reshape(h, w),
        normals=np.where(hit2, n, 0.0).reshape(h, w, 3),
        instance=np.where(hit, ids[np.where(hit, index, 0)], 0).astype(np.int32).reshape(h, w),
        smooth=(hit & smooth[np.where(hit, index, 0)]).reshape(h, w),
        points_world=np.where(hit2, pts_world, 0.0).reshape(h, w, 3),
        plane_normals_world=np.where(hit2, ng @ m[:3, :3].T, 0.0).reshape(h, w, 3),
    )


def world_triangles(spec: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    """World-frame triangles (T,3,3) float64 of every object of ``spec`` and each triangle's instance id."""
    tris, ids = [], []
    for o in spec.objects:
        mesh = object_mesh(o).transformed(np.asarray(o.world_from_object, dtype=np.float64))
        tris.append(mesh.vertices[mesh.faces])
        ids.append(np.full(len(mesh.faces), o.instance_id, dtype=np.int32))
    return np.concatenate(tris), np.concatenate(ids)


def cast_rays(spec: SceneSpec, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First hit of world rays (N,3) in the scene of ``spec``: (ray parameter t in units of ``dirs``, float64,
    +inf on a miss; instance id, 0 on a miss). Embree picks the triangle, float64 Moller-Trumbore gives t."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    tris, ids = world_triangles(spec)
    origin = np.asarray(origins, dtype=np.float64)
    d = np.asarray(dirs, dtype=np.float64)
    # cast relative to the first origin, so that Embree's float32 sees small coordinates
    shift = origin[0]
    local = tris - shift
    mesh = trimesh.Trimesh(vertices=local.reshape(-1, 3), faces=np.arange(len(tris) * 3).reshape(-1, 3),
                           process=False)
    unit = d / np.linalg.norm(d, axis=1)[:, None]
    index = RayMeshIntersector(mesh).intersects_first(origin - shift, unit)
    hit = index >= 0
    tri = local[np.where(hit, index, 0)]
    o = origin - shift
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(d, e2)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.einsum("ij,ij->i", e1, p)
        q = np.cross(o - tri[:, 0], e1)
        t = np.einsum("ij,ij->i", e2, q) * inv
    hit &= np.isfinite(t) & (t > 0)
    return np.where(hit, t, np.inf), np.where(hit, ids[np.where(hit, index, 0)], 0).astype(np.int32)
