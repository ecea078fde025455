"""Riders: a catalogue standing person posed on a catalogue bicycle by pure geometry.

The Sweet Home 3D catalogue has standing people and bicycles but nobody riding (its seated people sit as on a
chair: docs/scenes.md, "Streets"). :func:`rider_model` bends a standing person onto a bicycle: the bicycle's
saddle, handlebar grips and pedals are found from its mesh (:func:`bike_landmarks`), the person's hips, knees,
ankles and shoulders from its height (anthropometric ratios) and its own vertices, and each vertex is moved by a
blend of rigid limb transforms (linear blend skinning with smooth weights; no rig, no learned model):

* the legs: two-bone inverse kinematics from each hip to the ankle above its pedal, the knee bending forward and
  up, the foot kept level on the pedal; blended into the pelvis over a band below the hips and at the knees;
* the upper body leans forward about the hip axis until the shoulders are an arm's length from the grips, and each
  arm turns about its shoulder so that the hand lands on its grip (arms are the vertices nearer an arm's axis than
  the torso's, faded in below the shoulder);
* the whole rider is then lowered (or raised) until its lowest point over the saddle touches the saddle's top
  (measured by casting rays down onto the saddle), so it sits on it: nothing of it dips into the saddle from above.

Only people whose arms hang clear of the body are posed (the two Kator Legaz characters); a posed mesh is written
once per (person, bicycle) into the asset cache beside the person's converted mesh, with the person's materials
and UVs, and is scaled like the bicycle when placed (they are jittered together).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from rgbify.fileio import publishing
from rgbify.scenes import portable
from rgbify.scenes.builder import Model
from rgbify.scenes.geometry import (
    CACHE_PREFIX,
    TriMesh,
    load_mesh_file,
    mesh_file_materials,
    resolve_path,
    write_mesh_npz,
)
from rgbify.scenes.meshinfo import collision_boxes
from rgbify.scenes.road import smoothstep
from rgbify.scenes.spec import MeshFile

RIDER_FORMAT = 2
"""Version of the pose (bumped when what :func:`pose_rider` writes changes: old posed meshes are not reused)."""
RIDERS = ("KatorLegaz/062-female-01-casual-clothing", "KatorLegaz/064-male-01-suit")
"""Catalogue people that can be posed: their arms hang clear of their sides (the Reallusion people hold their hands
in front of them or cross their arms, where no arm can be told from the torso by position alone)."""
SADDLE_M = 0.06
"""A saddle's thickness: what lies higher than this below its top is on it or in it."""


@dataclass(frozen=True)
class BikeLandmarks:
    """Where a rider touches a bicycle, in its riding frame (front toward +y, bicycle at its catalogue size)."""

    saddle: np.ndarray
    """(0, y of the saddle's middle, z of its top)."""
    saddle_half_len: float
    grips: np.ndarray
    """(2, 3): the grip centres on the +x side, then the -x side."""
    pedals: np.ndarray
    """(2, 3): the pedal centres on the +x side, then the -x side, z at the pedal's top."""


def riding_frame(vertices: np.ndarray, front: int) -> np.ndarray:
    """A bicycle's model-frame vertices turned so that its front (``front`` = +1: toward +y) is toward +y."""
    return vertices if front > 0 else vertices * np.array([-1.0, -1.0, 1.0])


def bike_landmarks(v: np.ndarray) -> BikeLandmarks:
    """Saddle, grips and pedals of a bicycle mesh in its riding frame: the saddle is the top of the rear half near
    the middle plane, the grips the widest points of the front's upper 40%, the pedals the widest points of the
    lower part under the saddle (the crank's ends stick out past the frame and wheels)."""
    top = v[:, 2].max()
    mid = (v[:, 1].min() + v[:, 1].max()) / 2
    rear = v[(v[:, 1] < mid) & (np.abs(v[:, 0]) < 0.1)]
    zs = rear[:, 2].max()
    seat = rear[rear[:, 2] > zs - 0.05]
    saddle = np.array([0.0, (seat[:, 1].min() + seat[:, 1].max()) / 2, zs])
    high = v[(v[:, 1] > mid) & (v[:, 2] > 0.6 * top)]
    grips = []
    for sg in (1, -1):
        side = high[sg * high[:, 0] > 0]
        far = side[sg * side[:, 0] > 0.85 * np.abs(side[:, 0]).max()]
        grips.append(far.mean(0))
    low = v[(v[:, 2] < 0.6 * zs) & (np.abs(v[:, 1] - saddle[1]) < 0.45)]
    pedals = []
    for sg in (1, -1):
        side = low[sg * low[:, 0] > 0.06]
        if not len(side):
            raise ValueError("no pedal found on one side of the bicycle")
        far = side[sg * side[:, 0] > 0.75 * np.abs(side[:, 0]).max()]
        c = far.mean(0)
        near = far[np.linalg.norm(far[:, [1, 2]] - c[[1, 2]], axis=1) < 0.08]
        pedals.append(np.array([c[0], c[1], near[:, 2].max()]))
    return BikeLandmarks(saddle, float((seat[:, 1].max() - seat[:, 1].min()) / 2), np.array(grips),
                         np.array(pedals))


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, smoothstep between."""
    return smoothstep((x - lo) / (hi - lo))


def _rot(axis: np.ndarray, ang: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(ang) * k + (1 - math.cos(ang)) * k @ k


def _align(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``u`` to direction ``w``."""
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    axis = np.cross(u, w)
    s, c = np.linalg.norm(axis), float(np.dot(u, w))
    return np.eye(3) if s < 1e-12 else _rot(axis, math.atan2(s, c))


def _xf(r: np.ndarray, pivot: np.ndarray, to: np.ndarray) -> np.ndarray:
    """4x4: rotate by ``r`` about ``pivot``, then move the pivot to ``to``."""
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = to - r @ pivot
    return m


@dataclass(frozen=True)
class PoseReport:
    saddle_gap_m: float
    """Lowest distance from the rider down to the saddle, over the saddle (0: touching)."""
    pedal_gaps_m: tuple[float, float]
    """Height of each sole's lowest point above its pedal's top."""
    lean_deg: float
    knee_deg: tuple[float, float]


def person_landmarks(v: np.ndarray, h: float) -> tuple[list[tuple[float, float]], list[tuple[np.ndarray, np.ndarray]],
                                                      float]:
    """A standing person's legs ((x, y) of each shin, +x side first), arms ((shoulder joint, hand centre) each:
    the hand is what hangs beside the thigh at 40-50% of the height, the shoulder joint 3% of the height in from
    the shoulder's side at 81%) and the y of the body's middle."""
    z_sh = 0.81 * h
    legs = []
    for sg in (1, -1):
        shin = v[(sg * v[:, 0] > 0.01) & (v[:, 2] > 0.12 * h) & (v[:, 2] < 0.27 * h)]
        legs.append((float(np.median(shin[:, 0])), float(np.median(shin[:, 1]))))
    arms = []
    for sg in (1, -1):
        band = v[(sg * v[:, 0] > 0) & (v[:, 2] > 0.40 * h) & (v[:, 2] < 0.50 * h)]
        hand = band[sg * band[:, 0] > 0.095 * h]
        if len(hand) < 10:
            raise ValueError("no hand found hanging beside the body")
        shoulder = v[(sg * v[:, 0] > 0) & (np.abs(v[:, 2] - z_sh) < 0.01 * h)]
        sx = sg * (np.abs(shoulder[:, 0]).max() - 0.03 * h)
        arms.append((np.array([sx, float(np.median(shoulder[:, 1])), z_sh]), hand.mean(0)))
    y_c = float(np.mean([y for _, y in legs]))
    return legs, arms, y_c


def arm_weights(v: np.ndarray, h: float, arms: list[tuple[np.ndarray, np.ndarray]], y_c: float) -> np.ndarray:
    """(2, N) how much each vertex belongs to the +x and the -x arm (shoulder, hand centre): nearer the arm's
    axis than the torso's (each less its radius), faded in below the shoulder."""
    w_arm = np.zeros((2, len(v)))
    torso_r = 0.075 * h
    d_torso = np.hypot(v[:, 0], v[:, 1] - y_c) - torso_r
    for i, (s, hnd) in enumerate(arms):
        axis = hnd - s
        ln = np.linalg.norm(axis)
        t = np.clip((v - s) @ axis / ln**2, 0.0, 1.15)
        d_arm = np.linalg.norm(v - (s + t[:, None] * axis), axis=1) - 0.02 * h
        w = 1.0 / (1.0 + portable.exp(-(d_torso - d_arm) / (0.012 * h)))  # (the same bits on every CPU)
        w *= _smooth(t * ln, 0.0, 0.12 * h) * (np.sign(v[:, 0]) == np.sign(s[0]))
        w_arm[i] = w
    return w_arm


def pose_rider(person: np.ndarray, bike: np.ndarray) -> tuple[np.ndarray, PoseReport]:  # noqa: C901
    """The vertices of a standing ``person`` (model frame: feet on z = 0, front +y) posed on the ``bike`` (vertices
    in its riding frame), in the bicycle's riding frame; see the module docstring. ValueError when the legs cannot
    reach the pedals from the saddle."""
    bl = bike_landmarks(bike)
    v = person
    h = float(v[:, 2].max())
    z_hip, z_knee, z_ankle = 0.53 * h, 0.285 * h, 0.045 * h
    legs, arms, y_c = person_landmarks(v, h)
    l_thigh, l_shin = z_hip - z_knee, z_knee - z_ankle
    w_arm = arm_weights(v, h, arms, y_c)
    hip_c = np.array([0.0, y_c, z_hip])
    arm_len = float(np.mean([np.linalg.norm(hnd - s) for s, hnd in arms]))
    upper = np.maximum(_smooth(v[:, 2], z_hip + 0.03 * h, z_hip + 0.15 * h), w_arm.sum(0).clip(0, 1))
    best = None
    # the hip joints' height above the saddle is scanned: at each, the rider is posed, then lowered or raised
    # until it touches the saddle; the height whose feet end nearest their pedals wins
    for sit in np.linspace(0.0, 0.10 * h, 11):
        hip_to = np.array([0.0, bl.saddle[1] - 0.25 * bl.saddle_half_len, bl.saddle[2] + sit])
        knees: list[float] = []
        # torso: leant forward about the hip axis until the shoulders are an arm's length from the grips
        lean = 0.0
        for lean_deg in np.arange(0.0, 70.0, 0.5):
            r = _rot(np.array([1.0, 0, 0]), -math.radians(lean_deg))
            sh = np.array([hip_to + r @ (s - hip_c) for s, _ in arms])
            lean = lean_deg
            if np.mean(np.linalg.norm(sh - bl.grips, axis=1)) <= arm_len:
                break
        r_t = _rot(np.array([1.0, 0, 0]), -math.radians(lean))
        # (pivot, relative rotation, weight per vertex), applied in this order: feet, shins, thighs, arms, torso
        steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i, (s, hnd) in enumerate(arms):
            s_to = hip_to + r_t @ (s - hip_c)
            r_a = _align(r_t @ (hnd - s), bl.grips[i] - s_to) @ r_t
            steps.append((s, r_t.T @ r_a, w_arm[i]))
        legs_steps = []
        for i, (sg, (lx, ly)) in enumerate(zip((1, -1), legs, strict=True)):
            # legs part at the crotch over a band; lower down (the feet touch) the side of x = 0 decides
            width = np.where(v[:, 2] > 0.42 * h, 0.012 * h, 1e-4)
            side = _smooth(sg * v[:, 0] / width, -1.0, 1.0) * (1.0 - upper)
            hip = np.array([lx, ly, z_hip])
            hip_w = hip_to + (hip - hip_c)
            ankle_to = bl.pedals[i] + np.array([0.0, -0.03 * h, z_ankle])
            d = ankle_to - hip_w
            dist = float(np.linalg.norm(d))
            if dist > l_thigh + l_shin - 1e-3:
                break
            a = (l_thigh**2 - l_shin**2 + dist**2) / (2 * dist)
            hgt = math.sqrt(max(l_thigh**2 - a * a, 0.0))
            dn = d / dist
            pole = np.array([0.0, 1.0, 0.3])
            pole -= dn * np.dot(pole, dn)
            knee_to = hip_w + dn * a + pole / np.linalg.norm(pole) * hgt
            knee = np.array([lx, ly, z_knee])
            ankle = np.array([lx, ly, z_ankle])
            r_th = _align(knee - hip, knee_to - hip_w)
            r_sh = _align(ankle - knee, ankle_to - knee_to)
            knees.append(math.degrees(math.acos(np.clip(np.dot(r_th[:, 2], r_sh[:, 2]), -1, 1))))
            # the foot: turned only about z as the shin (yaw), so its sole stays level on the pedal
            f = r_sh @ np.array([0.0, 1.0, 0.0])
            r_ft = _rot(np.array([0, 0, 1.0]), math.atan2(-f[0], f[1])) if np.hypot(f[0], f[1]) > 1e-6 else np.eye(3)
            thigh = side * (1.0 - _smooth(v[:, 2], z_hip - 0.06 * h, z_hip + 0.01 * h))
            shin = side * (1.0 - _smooth(v[:, 2], z_knee - 0.02 * h, z_knee + 0.02 * h))
            foot = side * (1.0 - _smooth(v[:, 2], z_ankle + 0.01 * h, z_ankle + 0.035 * h))
            legs_steps.append([(ankle, r_sh.T @ r_ft, foot), (knee, r_th.T @ r_sh, shin), (hip, r_th, thigh)])
        if len(knees) < 2:
            continue  # a leg does not reach its pedal from this height
        steps = [st for k in range(3) for leg in legs_steps for st in leg[k:k + 1]] + steps
        steps.append((hip_c, r_t, upper))
        out = v.copy()
        for pivot, r, w in steps:
            rotvec = Rotation.from_matrix(r).as_rotvec()
            out = Rotation.from_rotvec(w[:, None] * rotvec).apply(out - pivot) + pivot
        out += hip_to - hip_c
        gap = saddle_gap(out, bike, bl)
        if not math.isfinite(gap):
            continue

        for _ in range(5):  # raising it brings more of it into the saddle's height band: measure again
            out[:, 2] -= gap
            gap = saddle_gap(out, bike, bl)
            if gap >= -1e-4:
                break
        pedal_gaps = []
        for i, sg in enumerate((1, -1)):
            foot = out[(sg * v[:, 0] > 0) & (v[:, 2] < z_ankle + 0.02 * h)]
            pedal_gaps.append(float(foot[:, 2].min() - bl.pedals[i][2]))
        score = max(abs(g) for g in pedal_gaps)
        if best is None or score < best[0]:
            best = (score, out, PoseReport(saddle_gap(out, bike, bl), (pedal_gaps[0], pedal_gaps[1]), lean,
                                           (knees[0], knees[1])))
    if best is None:
        raise ValueError("the legs do not reach the pedals from the saddle")
    return best[1], best[2]


def saddle_gap(rider: np.ndarray, bike: np.ndarray, bl: BikeLandmarks, strip: float = 0.03) -> float:
    """Lowest height of the rider's vertices over the saddle's middle (within ``strip`` of its midline, where a
    rider sits; the thighs hang past its sides) above the saddle's top surface (the bicycle's highest vertex below
    each, within 1 cm sideways); vertices lower than the saddle's underside (SADDLE_M below its top) are beside
    or under it, not on it."""
    near = bike[(np.abs(bike[:, 1] - bl.saddle[1]) < bl.saddle_half_len + 0.02) & (np.abs(bike[:, 0]) < strip)
                & (bike[:, 2] > bl.saddle[2] - SADDLE_M)]
    over = rider[(rider[:, 0] >= near[:, 0].min()) & (rider[:, 0] <= near[:, 0].max())
                 & (rider[:, 1] >= near[:, 1].min()) & (rider[:, 1] <= near[:, 1].max())
                 & (rider[:, 2] > bl.saddle[2] - SADDLE_M) & (rider[:, 2] < bl.saddle[2] + 0.25)]
    if not len(over):
        return float("inf")
    from scipy.spatial import cKDTree

    tree = cKDTree(near[:, :2])
    best = float("inf")
    for p in over:
        idx = tree.query_ball_point(p[:2], 0.01)
        if idx:
            best = min(best, float(p[2] - near[idx, 2].max()))
    return best


@functools.lru_cache(maxsize=64)
def _saddle_height(path: str, front: int) -> float:
    return float(bike_landmarks(riding_frame(load_mesh_file(path).vertices, front)).saddle[2])


def saddle_height(bike: Model, front: int) -> float:
    """Height of a catalogue bicycle's saddle top at its catalogue size (its mesh at scale 1)."""
    assert isinstance(bike.geometry, MeshFile)
    return _saddle_height(bike.geometry.path, front)


@functools.lru_cache(maxsize=64)
def _boxes(ref: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return collision_boxes(load_mesh_file(ref))


def rider_model(person: Model, person_key: str, bike: Model, bike_key: str, front: int) -> Model:
    """A Model of class "rider": ``person`` (a catalogue model, its mesh at scale 1) posed on ``bike`` (placed with
    the bicycle's pose turned by 90 degrees times ``front``, its riding frame; scaled as the bicycle). The posed mesh
    is made once and kept in the asset cache. ValueError when it cannot be posed."""
    assert isinstance(person.geometry, MeshFile) and isinstance(bike.geometry, MeshFile)
    ref = person.geometry.path.replace("/models/", "/riders/")
    ref = ref[:-4] + f"--{bike_key.replace('/', '-')}-f{front:+d}-r{RIDER_FORMAT}.npz"
    path = Path(resolve_path(ref))
    if not path.is_file():
        mesh = load_mesh_file(person.geometry.path)
        bike_v = riding_frame(load_mesh_file(bike.geometry.path).vertices, front)
        posed, _ = pose_rider(mesh.vertices, bike_v)
        path.parent.mkdir(parents=True, exist_ok=True)
        with publishing(path) as tmp:
            write_mesh_npz(str(tmp), TriMesh(posed, mesh.faces, mesh.face_material, mesh.uv),
                           mesh_file_materials(person.geometry.path))
    s = bike.geometry.scale
    boxes = [(c * s, hh * s) for c, hh in _boxes(ref)]
    assert ref.startswith(CACHE_PREFIX)
    return Model("rider", f"rider:{person_key}", MeshFile(ref, s), np.eye(4), boxes, [], "smooth", "person",
                 file_materials=mesh_file_materials(ref), credit=person.credit)


RIDER_SADDLE = 0.4
"""A bicycle is ridden only when its saddle is at least this share of the rider's height up: on a child's bicycle
(saddle 0.55 m) an adult's knees come up to the chest."""


def bike_front(bike: Model) -> int:
    """+1 when the bicycle (its length along its model y) has its front toward +y, else -1: the end where its
    handlebar, the widest thing in its upper 40%, is."""
    from types import SimpleNamespace

    from rgbify.scenes.geometry import object_mesh

    v = object_mesh(SimpleNamespace(geometry=bike.geometry, name=bike.kind)).transformed(  # type: ignore[arg-type]
        bike.model_from_geometry).vertices
    high = v[v[:, 2] > 0.6 * v[:, 2].max()]
    bar = high[np.abs(high[:, 0]) > 0.7 * np.abs(high[:, 0]).max()]
    return 1 if bar[:, 1].mean() > (v[:, 1].min() + v[:, 1].max()) / 2 else -1


def rideable(who, bicycles) -> list[tuple[object, int]]:  # noqa: ANN001 - rgbify.scenes.catalog.CatalogModel
    """The catalogue ``bicycles`` that person ``who`` can ride, each with its front (:func:`bike_front`): adult ones
    (at least 0.6 m tall) whose saddle is at least RIDER_SADDLE of their height up."""
    unjittered = np.random.default_rng(0)  # (models at catalogue size: nothing is drawn from it)
    out = []
    for which in bicycles:
        if which.size_m[2] < 0.6:
            continue
        bike = which.model(unjittered, 0.0)
        front = bike_front(bike)
        if saddle_height(bike, front) >= RIDER_SADDLE * who.size_m[2]:
            out.append((which, front))
    return out


def pose_all(catalog) -> int:  # noqa: ANN001 - a rgbify.scenes.catalog.Catalog
    """Make the posed mesh of every rider the outdoor sampler can draw (each person of RIDERS on each bicycle it
    can ride) in the asset cache, as `rgbify scenes catalog import` does, so that a spec naming one renders on a
    machine that did not sample it. Returns how many there are."""
    unjittered = np.random.default_rng(0)
    n = 0
    for who in (m for m in catalog.select("person") if m.key in RIDERS):
        for which, front in rideable(who, catalog.select("bicycle")):
            try:
                rider_model(who.model(unjittered, 0.0), who.key, which.model(unjittered, 0.0), which.key, front)
            except ValueError:  # (the sampler lets them walk)
                continue
            n += 1
    return n
