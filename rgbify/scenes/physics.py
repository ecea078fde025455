"""Loose objects dropped and settled by a rigid-body simulation (PyBullet), in the bpy-free sampler.

After a sampler has placed everything (upright, collision-checked), the *loose* objects - small things standing on
furniture or on the floor (clutter, books, pillows, catalogue objects; at most ``LOOSE_M`` on their longest side,
with no light attached) - are dropped a few millimetres (``drop_m``), some of them tipped over first (``tip_prob``:
turned 60-110 degrees about a random horizontal axis, where the turned object clears its neighbours), and
simulated until they come to rest: they fall over, lean on each other and on shelf sides, slide and stack. Each
loose object is a convex hull of its triangles (its centre of mass the hull's); every other object within reach
is static, as its exact triangles (its closed convex parts - boards, legs, walls - as convex shapes, the rest as
one concave mesh), so things rest on the surfaces that are rendered. Collision
margins are 0.2 mm, so resting objects sit within a fraction of a millimetre of their support (the
interpenetration audit allows 2.5 mm). An object still moving after ``max_seconds``, one that fell out of the
scene and one that ends up sunk more than ``MAX_SINK_M`` into another is taken out.

Deterministic: one DIRECT physics client per scene, bodies created in placement order, a fixed time step and
solver, the tip and drop of object k drawn from the stream ("physics", k); so (recipe, seed, index) gives the same
scene, in any process. pybullet loads lazily (0.3 s) and its start-up line is kept off stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rgbify.scenes.builder import Placed, SceneBuilder
from rgbify.scenes.context import Context
from rgbify.scenes.geometry import object_mesh
from rgbify.scenes.recipe import PhysicsConfig

LOOSE_M = 0.6
"""Objects at most this long on their longest side, standing on something, are loose."""
STRUCTURE = {"wall", "floor", "ceiling", "door", "window", "ground", "road", "sidewalk", "building", "picture"}
TIME_STEP = 1.0 / 120.0
SOLVER_ITERATIONS = 10
MARGIN_M = 0.0002
REACH_M = 0.5
"""Static objects within this distance of a loose object's bounds take part."""
REST_SPEED = (0.005, 0.05)
"""Linear (m/s) and angular (rad/s) speeds under which every loose object counts as at rest."""
MAX_SINK_M = 0.0015
PUSH_M = 0.0005
"""Resting contacts deeper than this are pushed out after the simulation."""
TILT_DEG = 10.0
"""An object whose up axis is more than this off the vertical counts as tilted."""
ROLLING = {"ball", "fruit"}
"""Round things roll: their turn says nothing of tipping, so they are not counted as tilted."""


@dataclass
class Settled:
    """What the physics step did (recorded in spec.meta["physics"])."""

    loose: int = 0
    tipped: int = 0
    tilted: int = 0
    removed: int = 0
    seconds: float = 0.0

    def to_meta(self) -> dict[str, float | int]:
        return {"loose": self.loose, "tipped": self.tipped, "tilted": self.tilted, "removed": self.removed,
                "simulated_s": round(self.seconds, 3)}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep what C code prints (pybullet's build-time line) off this process's stdout and stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_err = os.dup(2)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's buffers go to /dev/null too, not to the restored streams
        os.dup2(saved, 1)
        os.dup2(saved_err, 2)
        os.close(saved)
        os.close(saved_err)
        os.close(devnull)


def _pybullet():  # noqa: ANN202 - the pybullet module
    if "pybullet" not in sys.modules:
        with _quiet():
            import pybullet  # noqa: F401
    return sys.modules["pybullet"]


def is_loose(p: Placed) -> bool:
    m = p.model
    return p.support != 0 and not m.lights and m.class_name not in STRUCTURE and float(m.extents.max()) <= LOOSE_M


def settle(ctx: Context, b: SceneBuilder, cfg: PhysicsConfig) -> Settled:
    """Drop and settle the loose objects of ``b`` (moving or removing them in place); see the module docstring."""
    out = Settled()
    loose = [p for p in b.placed if is_loose(p)]
    if not cfg.enabled or not loose:
        return out
    pb = _pybullet()
    objects = {o.instance_id: o for o in b.objects}
    client = pb.connect(pb.DIRECT)
    try:
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=client)
        pb.setPhysicsEngineParameter(fixedTimeStep=TIME_STEP, numSolverIterations=SOLVER_ITERATIONS,
                                     deterministicOverlappingPairs=1, physicsClientId=client)
        bounds = _add_loose(ctx, b, cfg, pb, client, loose, objects, out)
        _add_static(b, pb, client, loose, objects, bounds)
        steps = _simulate(pb, client, [x[0] for x in bounds.values()], cfg.max_seconds)
        out.seconds = steps * TIME_STEP
        _push_out(pb, client, [x[0] for x in bounds.values()])
        _read_back(b, pb, client, loose, objects, bounds, out)
    finally:
        pb.disconnect(physicsClientId=client)
    return out


def _add_loose(ctx: Context, b: SceneBuilder, cfg: PhysicsConfig, pb, client: int, loose: list[Placed],  # noqa: ANN001
               objects: dict, out: Settled) -> dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """A dynamic body per loose object: {instance id: (body, centre of mass in the object frame, world bounds lo,
    hi at the start)}."""
    bodies = {}
    for k, p in enumerate(loose):
        rng = ctx.child("physics", k).rng
        obj = objects[p.instance_id]
        verts, volume, com = _hull(object_mesh(obj).vertices)
        world = np.asarray(obj.world_from_object, dtype=np.float64)
        rot = world[:3, :3]
        pos = world[:3, :3] @ com + world[:3, 3]
        drop = float(rng.uniform(*cfg.drop_m))
        tip = rng.random() < cfg.tip_prob
        axis_angle = float(rng.uniform(0.0, 2.0 * math.pi))
        angle = math.radians(float(rng.uniform(60.0, 110.0)))
        if tip:
            turn = _axis_rotation(np.array([math.cos(axis_angle), math.sin(axis_angle), 0.0]), angle)
            new_rot = turn @ rot
            w = (verts - com) @ new_rot.T
            base = (verts - com) @ rot.T
            lift = float(base[:, 2].min() - w[:, 2].min()) + drop + 0.002
            new_pos = pos + np.array([0.0, 0.0, lift])
            lo, hi = w.min(0) + new_pos, w.max(0) + new_pos
            row = np.array([[(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, 1.0,
                             0.0, lo[2], hi[2]]])
            if not b.colliding_ids(row, ignore=(p.instance_id, p.support)):
                rot, pos = new_rot, new_pos
                out.tipped += 1
            else:
                pos = pos + np.array([0.0, 0.0, drop])
        else:
            pos = pos + np.array([0.0, 0.0, drop])
        shape = _mesh_shape(pb, client, (verts - com).tolist())
        mass = max(volume * 400.0, 0.02)
        body = pb.createMultiBody(mass, shape, basePosition=pos.tolist(), baseOrientation=_quaternion(rot),
                                  physicsClientId=client)
        size = float(np.ptp(verts, axis=0).min())
        pb.changeDynamics(body, -1, lateralFriction=0.6, rollingFriction=0.01, spinningFriction=0.01,
                          linearDamping=0.2, angularDamping=0.4, restitution=0.0, collisionMargin=MARGIN_M,
                          ccdSweptSphereRadius=max(0.25 * size, 0.002), physicsClientId=client)
        w = (verts - com) @ rot.T + pos
        bodies[p.instance_id] = (body, com, w.min(0), w.max(0))
    return bodies


def _add_static(b: SceneBuilder, pb, client: int, loose: list[Placed], objects: dict, bounds: dict) -> None:  # noqa: ANN001
    """Every other object whose bounds come within REACH_M of a loose object, static: each of its closed convex
    parts (a board, a leg, a wall) as a convex shape, which Bullet collides robustly, the rest of its triangles as
    one concave mesh (exact, but edges between its parts can let a corner slip in)."""
    from rgbify.scenes.geometry import world_mesh

    lo = np.min([x[2] for x in bounds.values()], axis=0) - REACH_M
    hi = np.max([x[3] for x in bounds.values()], axis=0) + REACH_M
    loose_ids = {p.instance_id for p in loose}
    for o in b.objects:
        if o.instance_id in loose_ids:
            continue
        mesh = world_mesh(o)
        olo, ohi = mesh.vertices.min(0), mesh.vertices.max(0)
        if np.any(ohi < lo) or np.any(olo > hi):
            continue
        convex, rest = _convex_parts(mesh.vertices, mesh.faces)
        shapes = [_mesh_shape(pb, client, v.tolist()) for v in convex]
        if len(rest):
            shapes.append(_mesh_shape(pb, client, mesh.vertices.tolist(), rest.ravel().tolist()))
        for shape in shapes:
            body = pb.createMultiBody(0.0, shape, physicsClientId=client)
            pb.changeDynamics(body, -1, lateralFriction=0.6, restitution=0.0, collisionMargin=MARGIN_M,
                              physicsClientId=client)


_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [ctypes.py_object]
_decref.restype = None


def _mesh_shape(pb, client: int, rows: list, flat: list | None = None) -> int:  # noqa: ANN001
    """``pb.createCollisionShape`` of a convex hull (vertex ``rows``, a list of [x, y, z] lists) or, with ``flat``
    (a list of triangle corner indices), a concave triangle mesh. PyBullet (3.2.7, the newest) keeps two references
    to every list it is given, the vertex list, each vertex row and the index list, and never lets them go: a
    sampler process grew by about 4.5 MB a scene, without bound (an indoor build's main process reached 8 GB in
    700 samples). What it took is counted on each list after the call and given back, so nothing is released that
    PyBullet did not take (a fixed PyBullet takes nothing)."""
    held = [rows, *rows] if flat is None else [rows, *rows, flat]

    def counts() -> list[int]:  # the same expression before and after: temporary references cancel out
        return [sys.getrefcount(x) for x in held]

    before = counts()
    if flat is None:
        shape = pb.createCollisionShape(pb.GEOM_MESH, vertices=rows, physicsClientId=client)
    else:
        shape = pb.createCollisionShape(pb.GEOM_MESH, vertices=rows, indices=flat,
                                        flags=pb.GEOM_FORCE_CONCAVE_TRIMESH, physicsClientId=client)
    taken = [a - b for a, b in zip(counts(), before, strict=True)]  # ints only: no list held in a zip tuple
    for k, n in enumerate(taken):
        for _ in range(n):
            _decref(held[k])
    return shape


def _convex_parts(vertices: np.ndarray, faces: np.ndarray, most: int = 48) -> tuple[list[np.ndarray], np.ndarray]:
    """(vertices of each connected part that is a closed convex solid, the faces of all other parts)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    count, label = connected_components(graph, directed=False)
    if count > most:
        return [], faces
    face_label = label[faces[:, 0]]
    convex, rest = [], []
    for k in range(count):
        f = faces[face_label == k]
        if not len(f):
            continue
        v = vertices[np.unique(f)]
        tri = vertices[f]
        vol = float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6.0
        hull_v, hull_vol, _ = _hull(v)
        if hull_vol > 1e-9 and abs(vol - hull_vol) <= 0.01 * hull_vol:
            convex.append(hull_v)
        else:
            rest.append(f)
    return convex, (np.concatenate(rest) if rest else np.zeros((0, 3), np.int64))


def _simulate(pb, client: int, bodies: list[int], max_seconds: float) -> int:  # noqa: ANN001
    """Step until every body is at rest or ``max_seconds``; the steps taken. Every 0.05 s the bodies at rest are
    put to sleep (a sleeping body costs nothing until something hits it, which wakes it)."""
    steps, limit = 0, int(round(max_seconds / TIME_STEP))
    while steps < limit:
        for _ in range(6):
            pb.stepSimulation(physicsClientId=client)
        steps += 6
        if steps < 12:
            continue
        resting = [body for body in bodies if _at_rest(pb, client, body)]
        if len(resting) == len(bodies):
            break
        for body in resting:
            pb.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_SLEEP, physicsClientId=client)
    return steps


def _push_out(pb, client: int, bodies: list[int], rounds: int = 4) -> None:  # noqa: ANN001
    """Move each body out of whatever it sank into by more than PUSH_M (a solver leaves resting contacts up to
    a couple of millimetres deep), along the contact normals, a few rounds."""
    for _ in range(rounds):
        pb.performCollisionDetection(physicsClientId=client)
        moved = False
        for body in bodies:
            deep = [c for c in pb.getContactPoints(bodyA=body, physicsClientId=client) if c[8] < -PUSH_M]
            if not deep:
                continue
            shift = np.zeros(3)
            for c in deep:  # normal on B points from B to A: move A along it
                n = np.asarray(c[7], dtype=np.float64)
                depth = -float(c[8]) - PUSH_M / 2
                shift = np.where(np.abs(n * depth) > np.abs(shift), n * depth, shift)
            pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=client)
            pb.resetBasePositionAndOrientation(body, (np.asarray(pos) + shift).tolist(), quat, physicsClientId=client)
            moved = True
        if not moved:
            return


def _at_rest(pb, client: int, body: int) -> bool:  # noqa: ANN001
    v, w = pb.getBaseVelocity(body, physicsClientId=client)
    return float(np.linalg.norm(v)) < REST_SPEED[0] and float(np.linalg.norm(w)) < REST_SPEED[1]


def _read_back(b: SceneBuilder, pb, client: int, loose: list[Placed], objects: dict, bounds: dict,  # noqa: ANN001
               out: Settled) -> None:
    """Move every loose object to where it came to rest, or take it out (still moving, fallen out, sunk in)."""
    floor_z = min(float(np.asarray(o.world_from_object)[2, 3]) for o in b.objects) - 1.0
    for p in loose:
        body, com, lo, hi = bounds[p.instance_id]
        pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=client)
        rot = np.asarray(pb.getMatrixFromQuaternion(quat), dtype=np.float64).reshape(3, 3)
        pos = np.asarray(pos, dtype=np.float64)
        contacts = pb.getContactPoints(bodyA=body, physicsClientId=client)
        sunk = min([c[8] for c in contacts] or [0.0]) < -MAX_SINK_M  # not pushed out in a few rounds
        moved = float(np.linalg.norm(pos - (lo + hi) / 2.0))
        if not _at_rest(pb, client, body) or pos[2] < floor_z or moved > 3.0 or sunk:
            b.remove(p.instance_id)
            out.removed += 1
            continue
        world_from_object = np.eye(4)
        world_from_object[:3, :3] = rot
        world_from_object[:3, 3] = pos - rot @ com
        world_from_model = np.round(world_from_object, 7) @ np.linalg.inv(p.model.model_from_geometry)
        b.move(p.instance_id, world_from_model)
        out.loose += 1
        up = float(np.clip(world_from_model[2, 2], -1.0, 1.0))  # the model frame's z axis: up when upright
        if p.model.class_name not in ROLLING and math.degrees(math.acos(up)) > TILT_DEG:
            out.tilted += 1


def _hull(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(hull vertices, volume, centre of mass) of the convex hull of ``points`` (a flat set: its mean)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        h = ConvexHull(points)
    except (QhullError, ValueError):
        return points, 0.0, points.mean(0)
    c0 = points[h.vertices].mean(0)
    tri = points[h.simplices]  # tetrahedra from an inner point to each hull triangle
    vol = np.abs(np.einsum("ij,ij->i", tri[:, 0] - c0, np.cross(tri[:, 1] - c0, tri[:, 2] - c0))) / 6.0
    total = float(vol.sum())
    if total <= 1e-12:
        return points[h.vertices], 0.0, c0
    centres = (tri.sum(1) + c0) / 4.0
    return points[h.vertices], total, (centres * vol[:, None]).sum(0) / total


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def _quaternion(rot: np.ndarray) -> list[float]:
    """(x, y, z, w) of a rotation matrix (pybullet's order)."""
    from scipy.spatial.transform import Rotation

    return [float(x) for x in Rotation.from_matrix(rot).as_quat()]


CLIP_STEPS_PER_S = 240.0
"""Clip physics: the internal time step is the largest 1 / (fps * n) at most 1 / CLIP_STEPS_PER_S, so every frame
time is a whole number of steps."""


@dataclass(frozen=True)
class Throw:
    """A loose object set flying at frame 0: its linear (m/s) and angular (rad/s) velocity, world frame."""

    instance_id: int
    linear: tuple[float, float, float]
    angular: tuple[float, float, float]


def simulate_throws(objects: list, throws: list[Throw], fps: float, frames: int,  # noqa: ANN001 - ObjectSpec
                    ignore: set[int] = frozenset()) -> dict[int, list[np.ndarray]]:
    """``world_from_object`` at each frame time t / fps of every thrown object (frame 0: its pose in
    ``objects``, exactly), simulated with gravity from its still pose with its velocities; every other object
    (but those in ``ignore``: things moving by other rules) is static and collided with as its exact triangles,
    as in :func:`settle`. Deterministic: one DIRECT client, bodies created in a fixed order, a fixed step."""
    from rgbify.scenes.geometry import world_mesh

    pb = _pybullet()
    by_id = {o.instance_id: o for o in objects}
    substeps = max(1, math.ceil(CLIP_STEPS_PER_S / fps))
    client = pb.connect(pb.DIRECT)
    try:
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=client)
        pb.setPhysicsEngineParameter(fixedTimeStep=1.0 / (fps * substeps), numSolverIterations=SOLVER_ITERATIONS,
                                     deterministicOverlappingPairs=1, physicsClientId=client)
        bodies, lo, hi = [], [], []
        for th in throws:
            obj = by_id[th.instance_id]
            verts, volume, com = _hull(object_mesh(obj).vertices)
            m0 = np.asarray(obj.world_from_object, dtype=np.float64)
            rot = m0[:3, :3]
            shape = _mesh_shape(pb, client, (verts - com).tolist())
            body = pb.createMultiBody(max(volume * 400.0, 0.02), shape, basePosition=(rot @ com + m0[:3, 3]).tolist(),
                                      baseOrientation=_quaternion(rot), physicsClientId=client)
            size = float(np.ptp(verts, axis=0).min())
            pb.changeDynamics(body, -1, lateralFriction=0.6, rollingFriction=0.01, spinningFriction=0.01,
                              linearDamping=0.05, angularDamping=0.1, restitution=0.2, collisionMargin=MARGIN_M,
                              ccdSweptSphereRadius=max(0.25 * size, 0.002), physicsClientId=client)
            pb.resetBaseVelocity(body, list(th.linear), list(th.angular), physicsClientId=client)
            bodies.append((body, m0, _pose(pb, client, body)))
            w = verts @ rot.T + m0[:3, 3]
            lo.append(w.min(0))
            hi.append(w.max(0))
        # static: every other object within reach (horizontally) of the thrown ones; anything below them
        reach = 1.0 + max((float(np.linalg.norm(t.linear)) for t in throws), default=0.0) * frames / fps
        box_lo, box_hi = np.min(lo, axis=0) - reach, np.max(hi, axis=0) + reach
        box_lo[2] = -np.inf
        thrown = {t.instance_id for t in throws}
        for o in objects:
            if o.instance_id in thrown or o.instance_id in ignore:
                continue
            mesh = world_mesh(o)
            if np.any(mesh.vertices.max(0) < box_lo) or np.any(mesh.vertices.min(0) > box_hi):
                continue
            convex, rest = _convex_parts(mesh.vertices, mesh.faces)
            shapes = [_mesh_shape(pb, client, v.tolist()) for v in convex]
            if len(rest):
                shapes.append(_mesh_shape(pb, client, mesh.vertices.tolist(), rest.ravel().tolist()))
            for shape in shapes:
                body = pb.createMultiBody(0.0, shape, physicsClientId=client)
                pb.changeDynamics(body, -1, lateralFriction=0.6, restitution=0.2, collisionMargin=MARGIN_M,
                                  physicsClientId=client)
        out = {t.instance_id: [np.asarray(by_id[t.instance_id].world_from_object, dtype=np.float64)] for t in throws}
        for _ in range(1, frames):
            for _ in range(substeps):
                pb.stepSimulation(physicsClientId=client)
            for th, (body, m0, b0) in zip(throws, bodies, strict=True):
                # the rigid motion of the body since frame 0, applied to the object's exact frame-0 pose
                out[th.instance_id].append(_pose(pb, client, body) @ np.linalg.inv(b0) @ m0)
    finally:
        pb.disconnect(physicsClientId=client)
    return out


def _pose(pb, client: int, body: int) -> np.ndarray:  # noqa: ANN001
    pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=client)
    m = np.eye(4)
    m[:3, :3] = np.asarray(pb.getMatrixFromQuaternion(quat), dtype=np.float64).reshape(3, 3)
    m[:3, 3] = pos
    return m
