"""The geometric audit of a finished SceneSpec, independent of how it was sampled (used by tests): no
interpenetration between objects, every placed object resting on a support, camera outside all geometry. It looks
at the triangles the renderer draws (rgbify.scenes.geometry.world_mesh), but for mesh files at their full detail:
a level of detail (MeshFile.lod_m, under a pixel on screen) may lift a far car or person by up to about a cell
and is not what the sampler placed.

Interpenetration: object meshes are split into their closed parts (connected components); a pair of objects
whose bounding boxes overlap interpenetrates when a vertex or face centre of one, pulled 2.5 mm inward along
its normal (so that touching is allowed), lies inside a closed part of the other. Pairs of
structural pieces (walls, floor, ceiling, ground, road, sidewalk) are not checked against each other: walls meet
at corners and the road is laid into the ground plane by design.
Resting: an object that is not structure and not wall-mounted (door, window, picture) must have, straight below
the centre of its lowest vertices, a surface of another object within 5 mm of its lowest point, or hang on a wall:
a horizontal ray from its centre reaches a wall within 3.5 cm past its own side (upper cabinets, mirrors, towel
rails, whiteboards, curtains: hooks and rails are not modelled). A rider rests when it sits on a bicycle: a ray
straight down from one of its vertices over the bicycle meets the bicycle within 5 mm (its feet need not bear
weight: a rider's pedals sit where the bicycle's mesh has them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import trimesh

from rgbify.scenes.geometry import world_mesh
from rgbify.scenes.spec import MeshFile, Object, SceneSpec

STRUCTURE = {"wall", "floor", "ceiling", "ground", "road", "sidewalk"}
MOUNTED = {"door", "window", "picture"}
TOUCH_M = 2.5e-3
REST_M = 5e-3
HANG_M = 0.035
"""A wall-hung object's back may be this far from the wall (hooks, rails, a cabinet's mounting gap)."""


@dataclass
class Problem:
    kind: str
    """'interpenetration', 'not_resting' or 'camera_inside'."""
    objects: tuple[str, ...]
    detail: str = ""


def _parts(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    parts = mesh.split(only_watertight=False)
    return [p for p in parts if len(p.faces) >= 4]


def _probe_points(part: trimesh.Trimesh) -> np.ndarray:
    """Vertices and face centres, each pulled TOUCH_M inward along its normal."""
    pts = np.concatenate([part.vertices, part.triangles_center])
    normals = np.concatenate([part.vertex_normals, part.face_normals])
    return pts - normals * TOUCH_M


def _full_detail(o: Object) -> Object:
    g = o.geometry
    return dataclasses.replace(o, geometry=dataclasses.replace(g, lod_m=0.0)) if isinstance(g, MeshFile) else o


def audit(spec: SceneSpec) -> list[Problem]:
    """Every problem the audit finds in ``spec`` (empty: the scene is physically sound)."""
    meshes = [world_mesh(_full_detail(o)).to_trimesh() for o in spec.objects]
    names = [o.name for o in spec.objects]
    classes = [o.class_name for o in spec.objects]
    bounds = np.array([m.bounds for m in meshes])
    parts = [None] * len(meshes)
    problems: list[Problem] = []

    def closed_parts(k: int) -> list[trimesh.Trimesh]:
        if parts[k] is None:
            parts[k] = [p for p in _parts(meshes[k]) if p.is_watertight]
        return parts[k]

    for a in range(len(meshes)):
        for b in range(a + 1, len(meshes)):
            if classes[a] in STRUCTURE and classes[b] in STRUCTURE:
                continue
            lo = np.maximum(bounds[a, 0], bounds[b, 0])
            hi = np.minimum(bounds[a, 1], bounds[b, 1])
            if np.any(hi - lo <= TOUCH_M):
                continue
            if _penetrates(closed_parts(a), closed_parts(b), lo, hi) or \
                    _penetrates(closed_parts(b), closed_parts(a), lo, hi):
                problems.append(Problem("interpenetration", (names[a], names[b])))
    problems += _resting(spec, meshes, names, classes, bounds)
    eye = np.asarray(spec.camera.world_from_camera)[:3, 3]
    for k in range(len(meshes)):
        if np.all(eye > bounds[k, 0]) and np.all(eye < bounds[k, 1]):
            if any(p.contains(eye[None])[0] for p in closed_parts(k)):
                problems.append(Problem("camera_inside", (names[k],)))
    return problems


def _penetrates(parts_a: list[trimesh.Trimesh], parts_b: list[trimesh.Trimesh], lo: np.ndarray, hi: np.ndarray
                ) -> bool:
    for pa in parts_a:
        pts = _probe_points(pa)
        pts = pts[np.all((pts > lo) & (pts < hi), axis=1)]
        if len(pts) == 0:
            continue
        for pb in parts_b:
            blo, bhi = pb.bounds
            sel = pts[np.all((pts > blo) & (pts < bhi), axis=1)]
            if len(sel) and pb.contains(sel).any():
                return True
    return False


def _resting(spec: SceneSpec, meshes: list[trimesh.Trimesh], names: list[str], classes: list[str],
             bounds: np.ndarray) -> list[Problem]:
    out = []
    for k, m in enumerate(meshes):
        if classes[k] in STRUCTURE or classes[k] in MOUNTED or spec.objects[k].material.emission_strength > 0:
            continue
        zmin = bounds[k, 0, 2]
        low = m.vertices[m.vertices[:, 2] < zmin + 1e-3]
        x, y = low[:, :2].mean(0)
        supported = False
        for j, other in enumerate(meshes):
            if j == k or not (bounds[j, 0, 2] - REST_M <= zmin <= bounds[j, 1, 2] + REST_M):
                continue
            if not (bounds[j, 0, 0] <= x <= bounds[j, 1, 0] and bounds[j, 0, 1] <= y <= bounds[j, 1, 1]):
                continue
            origin = np.array([[x, y, zmin + 0.05]])
            locs, _, _ = other.ray.intersects_location(origin, np.array([[0.0, 0.0, -1.0]]), multiple_hits=True)
            if len(locs) and np.any(np.abs(locs[:, 2] - zmin) <= REST_M):
                supported = True
                break
        if not supported and classes[k] == "rider":
            supported = _sits(m, [meshes[j] for j in range(len(meshes)) if classes[j] == "bicycle"])
        if not supported and not _hangs_on_wall(meshes, classes, bounds, k):
            out.append(Problem("not_resting", (names[k],), f"lowest point z={zmin:.4f} m"))
    return out


def _sits(rider: trimesh.Trimesh, bicycles: list[trimesh.Trimesh]) -> bool:
    """Some vertex of ``rider`` has a bicycle's surface within REST_M straight below it (or just inside it)."""
    for bike in bicycles:
        lo, hi = bike.bounds
        v = rider.vertices[np.all((rider.vertices[:, :2] >= lo[:2]) & (rider.vertices[:, :2] <= hi[:2]), axis=1)
                           & (rider.vertices[:, 2] >= lo[2]) & (rider.vertices[:, 2] <= hi[2] + REST_M)]
        if not len(v):
            continue
        origins = v + np.array([0.0, 0.0, REST_M])
        locs, rays, _ = bike.ray.intersects_location(origins, np.tile([0.0, 0.0, -1.0], (len(v), 1)),
                                                     multiple_hits=False)
        if len(locs) and np.any(origins[rays, 2] - locs[:, 2] <= 2 * REST_M):
            return True
    return False


def _hangs_on_wall(meshes: list[trimesh.Trimesh], classes: list[str], bounds: np.ndarray, k: int) -> bool:
    """Object k hangs on a wall: from its centre, along +-x and +-y, its bounding box's side and a wall's surface
    are within HANG_M of each other."""
    lo, hi = bounds[k]
    centre = (lo + hi) / 2.0
    half = (hi - lo) / 2.0
    for j, other in enumerate(meshes):
        if classes[j] != "wall" or np.any(bounds[j, 0] > hi + HANG_M) or np.any(bounds[j, 1] < lo - HANG_M):
            continue
        for axis in (0, 1):
            for sign in (1.0, -1.0):
                ray = np.zeros((1, 3))
                ray[0, axis] = sign
                hit, _, _ = other.ray.intersects_location(centre[None], ray, multiple_hits=False)
                if len(hit) and float(np.dot(hit[0] - centre, ray[0])) - half[axis] <= HANG_M:
                    return True
    return False
