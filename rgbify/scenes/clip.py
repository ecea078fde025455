"""Clips: a still scene set in motion (no bpy). A clip is a pure function of (recipe, clip config, seed, index).

The still scene of (recipe, seed, index) (rgbify.scenes.sample_scene, unchanged: clips bump no SAMPLER_VERSION)
is frame 0; the clip adds, for every frame t = 0 .. frames - 1 at ``fps``:

* the camera pose ``world_from_camera`` (OpenCV frame), from a trajectory: a hand-held walk (forward at walking
  speed with a step's bob and a smooth shake of the view), an orbit about the point the still camera looks at, a
  dolly along the optical axis, a car driving forward along the camera's horizontal heading (with a little
  vibration), or a camera that keeps still;
* the pose ``world_from_object`` of each moving object: a few vehicles, people or small things given a constant
  linear velocity (horizontal) and a turn rate about their own vertical axis;
* with ``falling_objects``, the pose of each thrown object: a few visible small things pushed off their still
  pose at frame 0 (a horizontal and an upward speed and a spin) and left to a rigid-body simulation
  (rgbify.scenes.physics.simulate_throws, PyBullet at a fixed step of at most 1/240 s that divides the frame
  interval), which records their rigid transforms at the frame times: they fly, fall off edges, bounce, roll and
  tumble against the rest of the scene. Everything else, physics-settled things included, keeps still.

Randomness: the clip draws from streams of its own, keyed like the scene's (rgbify.scenes.context.stream with the
scene's recipe name, seed, index and accepted attempt) under the phases "clip" (the trajectory) and
"clip_object" k (the k-th mover), "clip_fallers" and "clip_faller" k (the k-th thrown object), so the still
scene's draws are untouched; the simulation is deterministic (one DIRECT client, bodies in a fixed order), so a
clip is bit-equal in any process. Thrown objects collide with the static scene (its exact triangles), not with
the constant-velocity movers (they pass through them) but with each other. Nothing checks that a
constant-velocity mover or the camera stays clear of the rest of the scene over the clip (short clips at walking
and driving speeds rarely collide; the flow ground truth is exact either way).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rgbify.config import STRICT, dump, parse, parse_json
from rgbify.scenes.context import name_hash, stream
from rgbify.scenes.geometry import object_mesh
from rgbify.scenes.recipe import IntRange, Range, RecipeConfig, RecipeError, _Ranges, load_recipe
from rgbify.scenes.spec import Matrix4, SceneSpec, SpecError, matrix4, spec_from_json, spec_to_json

CLIP_VERSION = 4
"""Version of the clip sampler's output (trajectories and movers): bumped whenever the same (recipe, clip config,
seed, index) gives another clip (2: thrown objects moved by the physics, ``falling_objects``; a clip config
without them gives the clip of version 1 but for this number in its meta; 3: outdoors, the drive and the moving
vehicles follow a curved street and its grade, and a person walking a bicycle moves with it; 4: a ridden bicycle
goes forward at cycling speed, ``cycle_speed_mps``, its rider with it). The still scene of frame 0 follows
rgbify.scenes.SAMPLER_VERSION."""

TRAJECTORIES = ("auto", "static", "walk", "orbit", "dolly", "drive")
AUTO_TRAJECTORY = {"indoor": "walk", "tabletop": "orbit", "outdoor": "drive"}
"""What ``trajectory = "auto"`` means for each kind of recipe."""

VEHICLES = ("car", "truck", "bus", "bicycle", "motorcycle")
PEOPLE = ("person", "animal")
SMALL_THINGS = (
    "box",
    "bottle",
    "bowl",
    "book",
    "ball",
    "cup",
    "plate",
    "can",
    "vase",
    "fruit",
    "clutter",
    "toy",
    "chair",
    "pillow",
    "kitchenware",
    "food",
    "bag",
)
MOVERS = {"outdoor": VEHICLES + PEOPLE, "indoor": SMALL_THINGS + PEOPLE, "tabletop": SMALL_THINGS}
"""Classes whose objects may move, per kind of recipe."""


@dataclass(frozen=True)
class ClipConfig(_Ranges):
    """How a still scene is set in motion: frames, frame rate, the camera's trajectory and the moving objects."""

    __pydantic_config__ = STRICT

    frames: int = 8
    """Frames in the clip (frame 0 is the still scene's view)."""
    fps: float = 24.0
    """Frames per second: sets how far things move between frames."""
    trajectory: Literal["auto", "static", "walk", "orbit", "dolly", "drive"] = "auto"
    """Camera motion. auto: walk indoors, orbit on a tabletop, drive outdoors; static: the camera keeps still."""
    walk_speed_mps: Range = (0.4, 1.2)
    """Walk: speed along the camera's horizontal heading, m/s."""
    shake_deg: Range = (0.2, 0.8)
    """Walk: amplitude of the hand-held shake of the view (yaw, pitch, roll), degrees."""
    bob_metres: Range = (0.005, 0.02)
    """Walk: amplitude of the vertical bob of each step, metres (0 allowed: no bob)."""
    orbit_deg_per_s: Range = (10.0, 30.0)
    """Orbit: turn rate about the vertical axis through the point the still camera looks at (either way)."""
    dolly_speed_mps: Range = (0.2, 0.6)
    """Dolly: speed along the optical axis (in or out), m/s."""
    drive_speed_mps: Range = (5.0, 14.0)
    """Drive: speed along the camera's horizontal heading, m/s (18-50 km/h)."""
    moving_objects: IntRange = (1, 3)
    """Objects set moving: drawn from the visible ones of a movable class (vehicles, people, small things), each
    with a chance in proportion to the share of the view it covers."""
    vehicle_speed_mps: Range = (2.0, 10.0)
    """Speed of a moving vehicle along its length (either way), m/s."""
    person_speed_mps: Range = (0.6, 1.6)
    """Speed of a walking person or animal, m/s."""
    cycle_speed_mps: Range = (3.0, 7.0)
    """Speed of a ridden bicycle (and its rider), m/s, forward (11-25 km/h)."""
    thing_speed_mps: Range = (0.05, 0.4)
    """Speed of a moving small thing, m/s, in any horizontal direction."""
    turn_deg_per_s: Range = (-30.0, 30.0)
    """Turn rate of a moving person or small thing about its vertical axis, degrees/s (vehicles: a fifth)."""
    falling_objects: IntRange = (0, 0)
    """Objects thrown at frame 0 and left to the physics (PyBullet): drawn from the visible small things (at most
    rgbify.scenes.physics.LOOSE_M long, not already moving), each pushed off its still pose with a horizontal
    speed (``throw_speed_mps``), an upward speed (``throw_up_mps``) and a spin (``throw_spin_rad_s``); they fly,
    fall, bounce, roll and tumble against the rest of the scene (static, its exact triangles) over the clip."""
    throw_speed_mps: Range = (0.3, 1.0)
    """Thrown objects: horizontal speed at frame 0, m/s, in any direction."""
    throw_up_mps: Range = (0.3, 1.2)
    """Thrown objects: upward speed at frame 0, m/s."""
    throw_spin_rad_s: Range = (1.0, 8.0)
    """Thrown objects: spin at frame 0 about a random axis, rad/s."""
    shutter: float = 0.0
    """Motion blur of the RGB render: the fraction of the frame interval the shutter is open, centred on the
    frame's instant (0: none; 0.5: a 180-degree shutter). Ground truth never sees it (the data render is sharp)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames < 1:
            raise RecipeError(f"clip frames {self.frames} must be >= 1")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise RecipeError(f"clip fps {self.fps} must be a positive number")
        if not 0.0 <= self.shutter <= 1.0:
            raise RecipeError(f"clip shutter {self.shutter} must lie in [0, 1] (a fraction of the frame interval)")


def load_clip_config(data: dict[str, Any] | None = None, **overrides: Any) -> ClipConfig:
    """A ClipConfig from plain data (a TOML table) and keyword overrides, strictly validated."""
    d = {**(data or {}), **overrides}
    return parse(ClipConfig, {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}, "clip", RecipeError)


@dataclass(frozen=True)
class ObjectMotion:
    """The poses of one moving object, frame by frame."""

    __pydantic_config__ = STRICT

    instance_id: int
    """The object's instance id (stable across the clip)."""
    poses: tuple[Matrix4, ...]
    """``world_from_object`` at each frame."""
    linear_mps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Its velocity, world frame, m/s (recorded for reference)."""
    turn_deg_per_s: float = 0.0
    """Its turn rate about the vertical axis through its bounding box centre, degrees/s."""


@dataclass(frozen=True)
class ClipSpec:
    """A clip: the still scene (frame 0) plus per-frame camera poses and the moving objects' per-frame poses."""

    __pydantic_config__ = STRICT

    scene: SceneSpec
    """The still scene; its camera is frame 0's."""
    fps: float
    """Frames per second."""
    cameras: tuple[Matrix4, ...]
    """``world_from_camera`` (OpenCV frame) at each frame."""
    motions: tuple[ObjectMotion, ...] = ()
    shutter: float = 0.0
    """Motion blur of the RGB render, the fraction of the frame interval the shutter is open (0: none)."""
    """The moving objects; every other object keeps its pose in ``scene``."""
    meta: tuple[tuple[str, Any], ...] = ()
    """Provenance: recipe, seed, index, trajectory and its parameters, clip version."""

    def __post_init__(self) -> None:
        meta = self.meta.items() if isinstance(self.meta, dict) else self.meta
        object.__setattr__(self, "meta", tuple((str(k), _freeze(v)) for k, v in meta))
        n = len(self.cameras)
        if n < 1:
            raise SpecError("clip: cameras must hold at least one pose")
        ids = {o.instance_id for o in self.scene.objects}
        for m in self.motions:
            if len(m.poses) != n:
                raise SpecError(f"clip: object {m.instance_id} has {len(m.poses)} poses for {n} frames")
            if m.instance_id not in ids:
                raise SpecError(f"clip: moving instance {m.instance_id} is not an object of the scene")

    @property
    def frames(self) -> int:
        return len(self.cameras)

    def world_from_camera(self, t: int) -> np.ndarray:
        return np.asarray(self.cameras[t], dtype=np.float64)

    def object_poses(self, t: int) -> dict[int, np.ndarray]:
        """``world_from_object`` at frame ``t`` of every moving object, by instance id."""
        return {m.instance_id: np.asarray(m.poses[t], dtype=np.float64) for m in self.motions}

    def motion(self, t: int, u: int) -> dict[int, np.ndarray]:
        """The rigid transform (4x4, world frame) that carries each moving object's points from frame t to frame u:
        ``world_from_object(u) @ inv(world_from_object(t))``; static objects (absent) carry the identity."""
        return {
            m.instance_id: np.asarray(m.poses[u], dtype=np.float64)
            @ np.linalg.inv(np.asarray(m.poses[t], dtype=np.float64))
            for m in self.motions
        }

    def frame(self, t: int) -> SceneSpec:
        """The still scene of frame ``t``: its camera and moving objects where they are at t."""
        if not 0 <= t < self.frames:
            raise IndexError(f"frame {t} is outside the clip's {self.frames} frames")
        poses = {m.instance_id: m.poses[t] for m in self.motions}
        objects = tuple(
            dataclasses.replace(o, world_from_object=poses[o.instance_id]) if o.instance_id in poses else o
            for o in self.scene.objects
        )
        camera = dataclasses.replace(self.scene.camera, world_from_camera=self.cameras[t])
        return dataclasses.replace(self.scene, camera=camera, objects=objects)


def _freeze(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, dict):
        return {k: _freeze(v) for k, v in x.items()}
    return x


def clip_to_json(clip: ClipSpec) -> str:
    """Canonical JSON of a clip (its scene as spec_to_json writes it)."""
    d = dump(clip)
    d["scene"] = json.loads(spec_to_json(clip.scene))
    return json.dumps(d, sort_keys=True, allow_nan=False)


def clip_from_json(text: str) -> ClipSpec:
    """A clip back from :func:`clip_to_json` (its scene read, and upgraded, by spec_from_json)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"clip spec is not valid JSON: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("scene"), dict):
        raise SpecError("clip spec: expected an object with a 'scene' object")
    scene = spec_from_json(json.dumps(d["scene"]))
    d["scene"] = json.loads(spec_to_json(scene))
    clip = parse_json(ClipSpec, json.dumps(d), "clip", SpecError)
    return dataclasses.replace(clip, scene=scene)


# --- sampling ------------------------------------------------------------------------------------------------


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    """3x3 rotation by ``deg`` degrees about the unit ``axis`` (right-handed)."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    r = math.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(r) * k + (1 - math.cos(r)) * (k @ k)


def _heading(m: np.ndarray) -> np.ndarray:
    """The camera's horizontal forward direction (unit, world), from its optical axis (+z of the OpenCV frame)."""
    f = m[:3, 2].copy()
    f[2] = 0.0
    n = np.linalg.norm(f)
    return f / n if n > 1e-9 else np.array([1.0, 0.0, 0.0])


def _shake(rng: np.random.Generator, amplitude_deg: float) -> Any:
    """A smooth shake: per axis (yaw, pitch, roll) two sinusoids of 0.4-2.5 Hz with random phases, 0 at t = 0."""
    f = rng.uniform(0.4, 2.5, size=(3, 2))
    ph = rng.uniform(0, 2 * math.pi, size=(3, 2))
    amp = amplitude_deg * rng.uniform(0.5, 1.0, size=(3, 2)) / 2.0

    def at(t: float) -> np.ndarray:
        return np.sum(amp * (np.sin(2 * math.pi * f * t + ph) - np.sin(ph)), axis=1)

    return at


def _street(scene: SceneSpec) -> tuple[float, float, list[tuple[int, int]]]:
    """The still scene's street (rgbify.scenes.outdoor): curvature (1/m, its centre of curvature at (0, 1/k)),
    grade (rise per metre along x) and its cyclists' (bicycle, person) pairs; (0, 0, []) for other scenes."""
    street = dict(scene.meta).get("street", {})
    if not isinstance(street, dict):
        return 0.0, 0.0, []
    pairs = [(int(a), int(b)) for a, b in street.get("cyclists", ())]
    return float(street.get("curvature_per_m", 0.0)), float(street.get("grade", 0.0)), pairs


def _along_road(curvature: float, grade: float, p0: np.ndarray, velocity: np.ndarray, t: float) -> np.ndarray:
    """The rigid step (4x4, world) that carries a thing at ``p0`` moving with horizontal ``velocity`` for ``t``
    seconds along the street: on a curved street about the vertical axis through the centre of curvature (the
    angular rate that keeps its distance from that centre), on a straight one in a straight line; lifted with the
    grade of the plane z = grade * x."""
    step = np.eye(4)
    if curvature == 0.0:
        d = np.array([velocity[0], velocity[1], 0.0]) * t
        step[:3, 3] = d
    else:
        c = np.array([0.0, 1.0 / curvature, 0.0])
        r = p0 - c
        omega = float(r[0] * velocity[1] - r[1] * velocity[0]) / max(float(r[0] ** 2 + r[1] ** 2), 1e-9)
        rot = _rot(np.array([0.0, 0.0, 1.0]), math.degrees(omega * t))
        step[:3, :3] = rot
        step[:3, 3] = c - rot @ c
        d = c + rot @ r - p0
    step[2, 3] += grade * d[0]
    return step


def _camera_path(
    scene: SceneSpec, cfg: ClipConfig, kind: str, rng: np.random.Generator
) -> tuple[list[np.ndarray], dict[str, Any]]:
    m0 = np.asarray(scene.camera.world_from_camera, dtype=np.float64)
    traj = AUTO_TRAJECTORY[kind] if cfg.trajectory == "auto" else cfg.trajectory
    times = [t / cfg.fps for t in range(cfg.frames)]
    up = np.array([0.0, 0.0, 1.0])
    meta: dict[str, Any] = {"trajectory": traj}
    poses = []
    if traj == "static":
        poses = [m0.copy() for _ in times]
    elif traj in ("walk", "drive"):
        speed = float(rng.uniform(*(cfg.walk_speed_mps if traj == "walk" else cfg.drive_speed_mps)))
        heading = _heading(m0)
        if traj == "walk":
            shake, bob = _shake(rng, float(rng.uniform(*cfg.shake_deg))), float(rng.uniform(*cfg.bob_metres))
            step_hz = float(rng.uniform(1.6, 2.2))
        else:  # a car's camera: a little vibration of the body
            shake, bob, step_hz = _shake(rng, 0.08), 0.002, float(rng.uniform(8.0, 14.0))
        phase = float(rng.uniform(0, 2 * math.pi))
        meta.update(speed_mps=round(speed, 4), bob_m=round(bob, 5))
        curvature, grade, _ = _street(scene) if traj == "drive" else (0.0, 0.0, [])
        for t in times:
            m = m0.copy()
            yaw, pitch, roll = shake(t)
            # shake in the camera's own frame: yaw about the world vertical, pitch about the camera's x, roll about z
            r = _rot(up, yaw) @ m0[:3, :3] @ _rot(np.array([1.0, 0, 0]), -pitch) @ _rot(np.array([0, 0, 1.0]), roll)
            lift = bob * (math.sin(2 * math.pi * step_hz * t + phase) - math.sin(phase))
            if traj == "drive" and (curvature or grade):  # along the street's curve and up or down its grade
                step = _along_road(curvature, grade, m0[:3, 3], heading * speed, t)
                m[:3, :3] = step[:3, :3] @ r
                m[:3, 3] = step[:3, :3] @ m0[:3, 3] + step[:3, 3] + up * lift
            else:
                m[:3, :3] = r
                m[:3, 3] = m0[:3, 3] + heading * speed * t + up * lift
            poses.append(m)
    elif traj == "orbit":
        rate = float(rng.uniform(*cfg.orbit_deg_per_s)) * (1 if rng.random() < 0.5 else -1)
        depth = dict(scene.meta).get("coverage", {}).get("depth_median_m", 2.0)
        depth = float(depth) if isinstance(depth, int | float) and math.isfinite(depth) else 2.0
        centre = m0[:3, 3] + m0[:3, 2] * depth
        meta.update(turn_deg_per_s=round(rate, 4), centre=[round(float(c), 4) for c in centre])
        for t in times:
            r = _rot(up, rate * t)
            m = m0.copy()
            m[:3, :3] = r @ m0[:3, :3]
            m[:3, 3] = centre + r @ (m0[:3, 3] - centre)
            poses.append(m)
    elif traj == "dolly":
        speed = float(rng.uniform(*cfg.dolly_speed_mps)) * (1 if rng.random() < 0.5 else -1)
        meta.update(speed_mps=round(speed, 4))
        for t in times:
            m = m0.copy()
            m[:3, 3] = m0[:3, 3] + m0[:3, 2] * speed * t
            poses.append(m)
    else:
        raise RecipeError(f"clip trajectory {traj!r} is not one of {list(TRAJECTORIES)}")
    return poses, meta


def _visible_pixels(scene: SceneSpec, config: RecipeConfig) -> dict[int, int]:
    """Instance id -> probe pixels it covers in the still view (the recipe's probe resolution)."""
    from rgbify.scenes import probe

    rays = probe.SceneRays.build(scene.objects)
    w, h = config.validity.probe_resolution
    p = probe.probe(rays, scene.camera, w, h)
    k, n = np.unique(p.object_index[p.object_index >= 0], return_counts=True)
    return {scene.objects[int(a)].instance_id: int(b) for a, b in zip(k, n, strict=True)}


def _movers(scene: SceneSpec, cfg: ClipConfig, config: RecipeConfig, key: tuple[int, ...]) -> list[ObjectMotion]:
    movable = MOVERS[config.kind]
    curvature, grade, pairs = _street(scene)
    walked = dict(pairs)  # bicycle -> the person walking or riding it: they move together
    riders = set(walked.values())
    by_id = {o.instance_id: o for o in scene.objects}
    ridden = {b: by_id[p] for b, p in walked.items() if p in by_id and by_id[p].class_name == "rider"}
    candidates = [o for o in scene.objects if o.class_name in movable and o.instance_id not in riders]
    if not candidates or cfg.moving_objects[1] == 0:
        return []
    visible = _visible_pixels(scene, config)
    candidates = [o for o in candidates if o.instance_id in visible]
    rng = stream(key, "clip_movers")
    n = min(len(candidates), int(rng.integers(cfg.moving_objects[0], cfg.moving_objects[1] + 1)))
    # the larger an object is in the view, the likelier it moves (a clip's motion should be seen)
    weight = np.array([visible[o.instance_id] for o in candidates], dtype=np.float64)
    chosen = sorted(rng.choice(len(candidates), size=n, replace=False, p=weight / weight.sum()).tolist()) if n else []
    motions = []
    times = [t / cfg.fps for t in range(cfg.frames)]
    for k, c in enumerate(chosen):
        o = candidates[c]
        r = stream(key, "clip_object", k)
        m0 = np.asarray(o.world_from_object, dtype=np.float64)
        v = object_mesh(o).vertices @ m0[:3, :3].T + m0[:3, 3]
        lo, hi = v.min(axis=0), v.max(axis=0)
        centre = (lo + hi) / 2
        turn = float(r.uniform(*cfg.turn_deg_per_s))
        if o.class_name in VEHICLES or o.class_name in PEOPLE:
            fast = o.class_name in VEHICLES and o.instance_id not in walked
            speed = float(r.uniform(*(cfg.cycle_speed_mps if o.instance_id in ridden else
                                      cfg.vehicle_speed_mps if fast else cfg.person_speed_mps)))
            # along the object's longest horizontal axis (a vehicle's length; a person's facing is not known)
            axes = m0[:3, :2].T.copy()
            ext = [np.ptp(v @ a) for a in axes]
            d = axes[int(np.argmax(ext))] if o.class_name in VEHICLES else axes[int(r.integers(2))]
            d[2] = 0.0
            d = d / max(np.linalg.norm(d), 1e-9) * (1 if r.random() < 0.5 else -1)
            if o.instance_id in ridden:  # forward: where its rider faces (+y of the rider's model)
                ahead = np.asarray(ridden[o.instance_id].world_from_object, dtype=np.float64)[:3, 1]
                d = d if float(np.dot(d, ahead)) > 0 else -d
            if o.class_name in VEHICLES:
                turn /= 5.0
        else:
            speed = float(r.uniform(*cfg.thing_speed_mps))
            a = float(r.uniform(0, 2 * math.pi))
            d = np.array([math.cos(a), math.sin(a), 0.0])
        vel = d * speed
        on_road = config.kind == "outdoor" and (curvature or grade) and o.class_name in VEHICLES + PEOPLE
        if on_road and o.class_name in VEHICLES:  # vehicles follow the street's curve (their turn is the arc's)
            turn = math.degrees(
                float(centre[0] * vel[1] - (centre[1] - 1.0 / curvature) * vel[0])
                / max(float(centre[0] ** 2 + (centre[1] - 1.0 / curvature) ** 2), 1e-9)
            ) if curvature else 0.0
        poses = []
        for t in times:
            if on_road and o.class_name in VEHICLES:
                step = _along_road(curvature, grade, centre, vel, t)
            else:
                rot = _rot(np.array([0.0, 0.0, 1.0]), turn * t)
                step = np.eye(4)
                step[:3, :3] = rot
                step[:3, 3] = centre + vel * t - rot @ centre
                if on_road:  # people keep to the plane of the sidewalk
                    step[2, 3] += grade * vel[0] * t
            poses.append(matrix4(step @ m0))
        motions.append(
            ObjectMotion(
                instance_id=o.instance_id,
                poses=tuple(poses),
                linear_mps=tuple(round(float(x), 6) for x in (*vel[:2], grade * vel[0] if on_road else vel[2])),
                turn_deg_per_s=round(turn, 6),
            )
        )
        if o.instance_id in walked:  # the person walking this bicycle takes the same steps
            p0 = next(np.asarray(x.world_from_object, dtype=np.float64) for x in scene.objects
                      if x.instance_id == walked[o.instance_id])
            motions.append(dataclasses.replace(motions[-1], instance_id=walked[o.instance_id], poses=tuple(
                matrix4(np.asarray(p, dtype=np.float64) @ np.linalg.inv(m0) @ p0) for p in poses)))
    return motions


def _thrown(
    scene: SceneSpec, cfg: ClipConfig, config: RecipeConfig, key: tuple[int, ...], moving: set[int]
) -> list[ObjectMotion]:
    """The objects thrown at frame 0 and moved by the physics (see ClipConfig.falling_objects)."""
    from rgbify.scenes.physics import LOOSE_M, Throw, simulate_throws

    if cfg.falling_objects[1] == 0 or cfg.frames < 2:
        return []
    candidates = [
        o
        for o in scene.objects
        if o.class_name in SMALL_THINGS
        and o.instance_id not in moving
        and float(np.ptp(object_mesh(o).vertices, axis=0).max()) <= LOOSE_M
    ]
    if not candidates:
        return []
    visible = _visible_pixels(scene, config)
    candidates = [o for o in candidates if o.instance_id in visible]
    rng = stream(key, "clip_fallers")
    n = min(len(candidates), int(rng.integers(cfg.falling_objects[0], cfg.falling_objects[1] + 1)))
    if not n:
        return []
    weight = np.array([visible[o.instance_id] for o in candidates], dtype=np.float64)
    chosen = sorted(rng.choice(len(candidates), size=n, replace=False, p=weight / weight.sum()).tolist())
    throws = []
    for k, c in enumerate(chosen):
        r = stream(key, "clip_faller", k)
        a, speed, up = (
            float(r.uniform(0, 2 * math.pi)),
            float(r.uniform(*cfg.throw_speed_mps)),
            float(r.uniform(*cfg.throw_up_mps)),
        )
        axis = r.normal(size=3)
        spin = axis / max(float(np.linalg.norm(axis)), 1e-9) * float(r.uniform(*cfg.throw_spin_rad_s))
        lin = (speed * math.cos(a), speed * math.sin(a), up)
        throws.append(Throw(candidates[c].instance_id, lin, tuple(float(x) for x in spin)))
    poses = simulate_throws(list(scene.objects), throws, cfg.fps, cfg.frames, ignore=moving)
    return [
        ObjectMotion(
            instance_id=t.instance_id,
            poses=tuple(matrix4(p) for p in poses[t.instance_id]),
            linear_mps=tuple(round(x, 6) for x in t.linear),
        )
        for t in throws
    ]


def clip_from_scene(scene: SceneSpec, config: RecipeConfig, clip: ClipConfig, key: tuple[int, ...]) -> ClipSpec:
    """Set ``scene`` in motion; ``key`` roots the clip's random streams (see the module docstring)."""
    cams, meta = _camera_path(scene, clip, config.kind, stream(key, "clip"))
    motions = _movers(scene, clip, config, key)
    thrown = _thrown(scene, clip, config, key, {m.instance_id for m in motions})
    if thrown:
        meta["falling"] = [m.instance_id for m in thrown]
    motions = sorted(motions + thrown, key=lambda m: m.instance_id)
    meta = {"clip_version": CLIP_VERSION, "frames": clip.frames, **meta}
    return ClipSpec(
        scene=scene,
        fps=float(clip.fps),
        shutter=float(clip.shutter),
        cameras=tuple(matrix4(c) for c in cams),
        motions=tuple(motions),
        meta=tuple(meta.items()),
    )


def sample_clip(
    config: RecipeConfig | str, clip: ClipConfig | None, seed: int, index: int, assets: Any = None
) -> ClipSpec:
    """The clip of (recipe, clip config, seed, index): the still scene sample_scene gives for (recipe, seed,
    index) as frame 0, set in motion by streams of its own."""
    from rgbify.scenes.sample import sample_scene

    if isinstance(config, str):
        config = load_recipe(config)
    clip = clip or ClipConfig()
    scene = sample_scene(config, seed, index, assets)
    attempts = int(dict(scene.meta).get("attempts", 1))
    key = (name_hash(config.name), int(seed), int(index), attempts - 1)
    out = clip_from_scene(scene, config, clip, key)
    meta = {"recipe": config.name, "seed": int(seed), "index": int(index), **dict(out.meta)}
    return dataclasses.replace(out, meta=tuple(meta.items()))
