"""The scene builder: models made of parts, collision-checked placement, support surfaces.

A :class:`Model` is an object before placement, in its model frame: z = 0 is the plane it rests on, x and y are
centred on its footprint, its front faces +y. Every model carries axis-aligned collision boxes (model frame) that
enclose its parts, and the rectangles on which other things may rest (``surfaces``). Placement only rotates about
+z (yaw), so two placed boxes collide when their z intervals overlap and their rotated footprints overlap
(separating-axis test). Touching (penetration below ``TOUCH_M``) is allowed: that is how objects rest.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import trimesh

from rgbify.scenes.geometry import inline_mesh, primitive_mesh, rot_x, rot_y, rot_z, translate
from rgbify.scenes.spec import Geometry, Light, Material, Object, Primitive, matrix4

TOUCH_M = 1e-3
"""Boxes may overlap by up to this much (metres) without counting as a collision."""


@dataclass
class Surface:
    """A horizontal rectangle, model frame: top at ``z``, centre (cx, cy), half extents (hx, hy); ``kind`` says
    what it is (table, shelf, bed, seat, floor, ...) and ``clear_m`` how much free height it has above."""

    z: float
    cx: float
    cy: float
    hx: float
    hy: float
    kind: str
    clear_m: float = 1.0


@dataclass
class Model:
    class_name: str
    kind: str
    geometry: Geometry
    model_from_geometry: np.ndarray
    boxes: list[tuple[np.ndarray, np.ndarray]]
    """(centre xyz, half extents xyz) collision boxes in the model frame."""
    surfaces: list[Surface] = field(default_factory=list)
    shading: str = "flat"
    material_hint: str = ""
    """Which material family slot 0 is drawn from (rgbify.scenes.materials.FAMILIES); defaults to the class name."""
    slot_hints: tuple[str, ...] = ()
    """The families of material slots 1, 2, ... (parts such as legs, a seat's cushion, wheels, window glass)."""
    lights: list[tuple[np.ndarray, str]] = field(default_factory=list)
    """Lights attached to the model: (position in the model frame, 'point' or 'spot' pointing down)."""
    file_materials: tuple = ()
    """A mesh file's own materials (rgbify.scenes.geometry.FileMaterial), slot by slot: its slots are made from
    these (rgbify.scenes.materials.from_file) instead of the hints."""
    credit: dict | None = None
    """Where an imported model comes from and its licence (recorded in spec.meta["assets"])."""

    @property
    def extents(self) -> np.ndarray:
        lo = np.min([c - h for c, h in self.boxes], axis=0)
        hi = np.max([c + h for c, h in self.boxes], axis=0)
        return hi - lo

    @property
    def radius_xy(self) -> float:
        """Radius of the model's footprint about its origin."""
        return float(max(np.hypot(abs(c[0]) + h[0], abs(c[1]) + h[1]) for c, h in self.boxes))

    @property
    def height(self) -> float:
        return float(max(c[2] + h[2] for c, h in self.boxes))


class Parts:
    """Collects solid parts in a model frame and turns them into one Model (one instance). Boxes, cylinders and
    spheres are tessellated by rgbify.scenes.geometry.primitive_mesh, the triangles the renderer makes of a
    Primitive; a model of one such part is stored as that Primitive, others as one inline mesh."""

    def __init__(self) -> None:
        self.meshes: list[tuple[np.ndarray, np.ndarray]] = []
        self.part_slots: list[str | None] = []
        """The material family of each part (None: the model's own, slot 0)."""
        self.boxes: list[tuple[np.ndarray, np.ndarray]] = []
        self.single: tuple[Primitive, np.ndarray] | None = None
        self.slot: str | None = None
        """The family the next parts are made of (see :meth:`of`)."""

    def of(self, hint: str | None) -> Parts:
        """Parts added from here on are made of material family ``hint`` (a slot of its own; None: slot 0)."""
        self.slot = hint
        return self

    def _add(self, vertices: np.ndarray, faces: np.ndarray, box: bool = True) -> Parts:
        self.meshes.append((vertices, faces))
        self.part_slots.append(self.slot)
        if box:
            lo, hi = vertices.min(0), vertices.max(0)
            self.boxes.append(((lo + hi) / 2.0, (hi - lo) / 2.0))
        if self.slot is not None:
            self.single = None
        return self

    def _add_mesh(self, m: trimesh.Trimesh, box: bool = True) -> Parts:
        return self._add(np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64), box)

    def _primitive(self, p: Primitive, model_from_part: np.ndarray, single: bool) -> Parts:
        """Add primitive ``p`` placed by ``model_from_part``; it is the model's only part if ``single`` and nothing
        came before (then the model is stored as the Primitive itself)."""
        first = len(self.meshes) == 0
        m = primitive_mesh(p).transformed(model_from_part)
        self._add(m.vertices, m.faces)
        self.single = (p, model_from_part) if single and first and self.slot is None else None
        return self

    def box(self, centre: tuple[float, float, float], size: tuple[float, float, float], yaw_deg: float = 0.0) -> Parts:
        p = Primitive("box", tuple(float(s) for s in size))  # type: ignore[arg-type]
        return self._primitive(p, translate(*centre) @ rot_z(yaw_deg), single=yaw_deg == 0.0)

    def cylinder(self, centre: tuple[float, float, float], radius: float, height: float, axis: str = "z",
                 sections: int = 16) -> Parts:
        p = Primitive("cylinder", (2 * radius, 2 * radius, height), segments=sections)
        turn = {"z": np.eye(4), "x": rot_y(90.0), "y": rot_x(90.0)}[axis]
        return self._primitive(p, translate(*centre) @ turn, single=axis == "z")

    def sphere(self, centre: tuple[float, float, float], size: tuple[float, float, float]) -> Parts:
        p = Primitive("sphere", tuple(float(s) for s in size), segments=24)  # type: ignore[arg-type]
        return self._primitive(p, translate(*centre), single=True)

    def revolve(self, profile: list[tuple[float, float]], sections: int = 24, z0: float = 0.0) -> Parts:
        """A solid of revolution about +z; ``profile`` is (radius, z) from the bottom centre to the top centre."""
        m = trimesh.creation.revolve(np.asarray(profile, dtype=np.float64), sections=sections)
        if m.volume < 0:
            m.invert()
        m.apply_translation((0.0, 0.0, z0))
        self.single = None
        return self._add_mesh(m)

    def hull(self, points: np.ndarray) -> Parts:
        m = trimesh.convex.convex_hull(np.asarray(points, dtype=np.float64))
        self.single = None
        return self._add_mesh(m)

    def mesh(self, m: trimesh.Trimesh | tuple[np.ndarray, np.ndarray], box: bool = True) -> Parts:
        self.single = None
        if isinstance(m, tuple):
            return self._add(m[0], m[1], box)
        return self._add_mesh(m, box)

    def model(self, class_name: str, kind: str, surfaces: list[Surface] | None = None, shading: str = "flat",
              material_hint: str = "") -> Model:
        """The Model of the parts: one Primitive if it is a single plain part, else one inline mesh whose faces name
        their material slot (slot 0: ``material_hint``; then each other family in the order parts came)."""
        hints = list(dict.fromkeys(h for h in self.part_slots if h is not None))
        if self.single is not None and len(self.meshes) == 1:
            geometry, model_from_geometry = self.single
        else:
            vs, fs, slots, offset = [], [], [], 0
            for (v, f), h in zip(self.meshes, self.part_slots, strict=True):
                vs.append(v)
                fs.append(f + offset)
                slots.append(np.full(len(f), 0 if h is None else hints.index(h) + 1))
                offset += len(v)
            geometry = inline_mesh(np.concatenate(vs), np.concatenate(fs), np.concatenate(slots) if hints else None)
            model_from_geometry = np.eye(4)
        return Model(class_name, kind, geometry, model_from_geometry, list(self.boxes), surfaces or [], shading,
                     material_hint or class_name, tuple(hints))


@dataclass
class Placed:
    instance_id: int
    model: Model
    world_from_model: np.ndarray
    support: int
    """Instance id this rests on (0: nothing, e.g. structure)."""


@dataclass
class WorldSurface:
    instance_id: int
    surface: Surface
    world_from_model: np.ndarray

    @property
    def area(self) -> float:
        return 4.0 * self.surface.hx * self.surface.hy


class SceneBuilder:
    """Accumulates placed objects and lights; refuses placements that collide."""

    def __init__(self) -> None:
        self.placed: list[Placed] = []
        self.objects: list[Object] = []
        self.lights: list[Light] = []
        # collision boxes, one row each: cx, cy, hx, hy, cos, sin, z0, z1, owner instance id (0 = keep-out zone)
        self._boxes = np.zeros((0, 9))
        self._next_id = 1

    # -- collision ------------------------------------------------------------------------------------------
    @staticmethod
    def world_boxes(model: Model, world_from_model: np.ndarray, lean: bool = False) -> np.ndarray:
        """Rows (cx, cy, hx, hy, cos, sin, z0, z1) of the model's boxes placed by ``world_from_model``: rectangles
        turned by its yaw, or, for a tilted pose (after the physics step), each box's world axis-aligned bounds;
        ``lean`` (a thing leaning with a slope): rectangles turned by its heading that enclose each leaning box."""
        if lean:
            return _leaning_boxes(model, world_from_model)
        if abs(world_from_model[2, 2] - 1.0) > 1e-9:
            return _tilted_boxes(model, world_from_model)
        yaw = math.atan2(world_from_model[1, 0], world_from_model[0, 0])
        c, s = np.cos(yaw), np.sin(yaw)
        rows = []
        for centre, half in model.boxes:
            w = world_from_model @ np.append(centre, 1.0)
            rows.append((w[0], w[1], half[0], half[1], c, s, w[2] - half[2], w[2] + half[2]))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 8)

    def colliding_ids(self, boxes: np.ndarray, ignore: tuple[int, ...] = ()) -> set[int]:
        """Owners of existing boxes that any of ``boxes`` (rows of world_boxes) overlaps."""
        hits: set[int] = set()
        if len(self._boxes) == 0:
            return hits
        other = self._boxes
        for b in boxes:
            zmask = (np.minimum(b[7], other[:, 7]) - np.maximum(b[6], other[:, 6])) > TOUCH_M
            if not zmask.any():
                continue
            o = other[zmask]
            overlap = _rects_overlap(b, o)
            hits.update(int(i) for i in o[overlap, 8])
        return hits - set(ignore)

    def keep_out(self, centre: tuple[float, float, float], half: tuple[float, float, float], yaw_deg: float = 0.0,
                 owner: int = 0) -> None:
        """Reserve a box no later object may enter (door swings, walkways)."""
        r = np.radians(yaw_deg)
        row = (centre[0], centre[1], half[0], half[1], np.cos(r), np.sin(r), centre[2] - half[2],
               centre[2] + half[2], owner)
        self._boxes = np.vstack([self._boxes, np.asarray(row)[None]])

    # -- placement ------------------------------------------------------------------------------------------
    def add(self, model: Model, world_from_model: np.ndarray, material: Material | tuple[Material, ...],
            name: str | None = None, support: int = 0, check: bool = True, ignore: tuple[int, ...] = (),
            solid: bool = True, lean: bool = False) -> int | None:
        """Place ``model`` made of ``material`` (or one material per slot); returns its instance id, or None (nothing
        added) when it would collide. ``solid=False``: it takes no room (ground and road surfaces that things are
        placed on by construction); ``lean``: see :meth:`world_boxes`."""
        mats = material if isinstance(material, tuple) else (material,)
        boxes = self.world_boxes(model, world_from_model, lean) if solid or check else np.zeros((0, 8))
        if check and self.colliding_ids(boxes, ignore):
            return None
        iid = self._next_id
        self._next_id += 1
        if solid:
            self._boxes = np.vstack([self._boxes, np.hstack([boxes, np.full((len(boxes), 1), iid)])])
        self.placed.append(Placed(iid, model, world_from_model, support))
        pose = world_from_model @ model.model_from_geometry
        self.objects.append(Object(name=name or f"{model.kind}_{iid:03d}", geometry=model.geometry,
                                   class_name=model.class_name, instance_id=iid, world_from_object=matrix4(pose),
                                   shading=model.shading, material=mats[0], materials=mats[1:]))  # type: ignore
        return iid

    def move(self, instance_id: int, world_from_model: np.ndarray) -> None:
        """Put a placed object somewhere else (the physics step settles loose objects): its pose, its object's
        pose and its collision boxes follow."""
        k = next(i for i, p in enumerate(self.placed) if p.instance_id == instance_id)
        p = self.placed[k]
        self.placed[k] = dataclasses.replace(p, world_from_model=world_from_model)
        j = next(i for i, o in enumerate(self.objects) if o.instance_id == instance_id)
        self.objects[j] = dataclasses.replace(self.objects[j], world_from_object=matrix4(
            world_from_model @ p.model.model_from_geometry))
        keep = self._boxes[:, 8] != instance_id
        boxes = self.world_boxes(p.model, world_from_model)
        self._boxes = np.vstack([self._boxes[keep], np.hstack([boxes, np.full((len(boxes), 1), instance_id)])])

    def remove(self, instance_id: int) -> None:
        """Take a placed object out of the scene (its id is not reused)."""
        self.placed = [p for p in self.placed if p.instance_id != instance_id]
        self.objects = [o for o in self.objects if o.instance_id != instance_id]
        self._boxes = self._boxes[self._boxes[:, 8] != instance_id]

    def surfaces(self, kinds: tuple[str, ...] | None = None) -> list[WorldSurface]:
        out = []
        for p in self.placed:
            for s in p.model.surfaces:
                if kinds is None or s.kind in kinds:
                    out.append(WorldSurface(p.instance_id, s, p.world_from_model))
        return out

    def replace_materials(self, instance_id: int, materials: tuple[Material, ...]) -> None:
        """Give the object other materials, one per slot."""
        for k, o in enumerate(self.objects):
            if o.instance_id == instance_id:
                self.objects[k] = dataclasses.replace(o, material=materials[0], materials=tuple(materials[1:]))


def _tilted_boxes(model: Model, world_from_model: np.ndarray) -> np.ndarray:
    rows = []
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    for centre, half in model.boxes:
        pts = (centre + corners * half) @ world_from_model[:3, :3].T + world_from_model[:3, 3]
        lo, hi = pts.min(0), pts.max(0)
        rows.append(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, 1.0, 0.0,
                     lo[2], hi[2]))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 8)


def _leaning_boxes(model: Model, world_from_model: np.ndarray) -> np.ndarray:
    rows = []
    r = world_from_model[:3, :3]
    yaw = math.atan2(r[1, 0], r[0, 0])
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    for centre, half in model.boxes:
        pts = (centre + corners * half) @ r.T + world_from_model[:3, 3]
        uv = pts[:, :2] @ axes.T
        lo, hi = uv.min(0), uv.max(0)
        c = axes.T @ ((lo + hi) / 2)
        rows.append((c[0], c[1], (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, axes[0, 0], axes[0, 1],
                     pts[:, 2].min(), pts[:, 2].max()))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 8)


def _rects_overlap(b: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Separating-axis test of one rotated rectangle ``b`` against many (rows as in Builder._boxes)."""
    d = others[:, :2] - b[:2]
    axes_b = np.array([[b[4], b[5]], [-b[5], b[4]]])
    ax_o = np.stack([np.stack([others[:, 4], others[:, 5]], 1), np.stack([-others[:, 5], others[:, 4]], 1)], 1)
    sep = np.zeros(len(others), dtype=bool)
    for k in range(2):
        axis = np.broadcast_to(axes_b[k], (len(others), 2))
        sep |= _separated(axis, d, b, others, axes_b, ax_o)
        sep |= _separated(ax_o[:, k], d, b, others, axes_b, ax_o)
    return ~sep


def _separated(axis: np.ndarray, d: np.ndarray, b: np.ndarray, others: np.ndarray, axes_b: np.ndarray,
               ax_o: np.ndarray) -> np.ndarray:
    dist = np.abs(np.sum(d * axis, 1))
    rb = b[2] * np.abs(axis @ axes_b[0]) + b[3] * np.abs(axis @ axes_b[1])
    ro = others[:, 2] * np.abs(np.sum(ax_o[:, 0] * axis, 1)) + others[:, 3] * np.abs(np.sum(ax_o[:, 1] * axis, 1))
    return dist >= rb + ro - TOUCH_M


def pose(x: float, y: float, z: float, yaw_deg: float = 0.0) -> np.ndarray:
    """world_from_model for a model at (x, y, z) turned by yaw about +z."""
    return translate(x, y, z) @ rot_z(yaw_deg)
