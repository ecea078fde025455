"""The ``indoor`` recipe: a rectangular or L-shaped room with walls, floor, ceiling, doors and windows,
procedural furniture against the walls and in the room, clutter on every supporting surface, ceiling lights,
lamps and sometimes sun through open windows.

Random streams (rgbify.scenes.context): the room ("room"; each wall and its openings "wall", k), each piece of
furniture ("furnish", k), each picture, the rug, each piece of clutter ("clutter", k) and of floor clutter, each
ceiling light ("light", k), the sun ("sun"), the sky ("world") draw from streams of their own."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rgbify.scenes import models
from rgbify.scenes.builder import Model, Parts, SceneBuilder, pose
from rgbify.scenes.catalog import pick, small_model
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.geometry import rot_z, translate
from rgbify.scenes.lighting import sky_world, sun_light
from rgbify.scenes.materials import emissive, sample_material
from rgbify.scenes.placement import make_camera, place_on_floor, place_on_surface
from rgbify.scenes.probe import albedo, luminance
from rgbify.scenes.spec import Light, Material, matrix4

WALL_T = 0.12


# --- room geometry -----------------------------------------------------------------------------------------

def room_polygon(rng: np.random.Generator, w: float, d: float, l_prob: float) -> np.ndarray:
    """Counter-clockwise room outline (N, 2): a w x d rectangle, or an L with one corner cut out."""
    if rng.random() >= l_prob:
        return np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=np.float64)
    cw, cd = w * rng.uniform(0.3, 0.55), d * rng.uniform(0.3, 0.55)
    poly = np.array([[0, 0], [w, 0], [w, d - cd], [w - cw, d - cd], [w - cw, d], [0, d]], dtype=np.float64)
    if rng.random() < 0.5:  # mirror in x (then reverse to stay counter-clockwise)
        poly = np.stack([w - poly[:, 0], poly[:, 1]], 1)[::-1]
    if rng.random() < 0.5:
        poly = np.stack([poly[:, 0], d - poly[:, 1]], 1)[::-1]
    return np.ascontiguousarray(poly)


def inside_polygon(poly: np.ndarray, x: float, y: float, margin: float = 0.0) -> bool:
    n = len(poly)
    inside = False
    for k in range(n):
        (x1, y1), (x2, y2) = poly[k], poly[(k + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    if not inside or margin <= 0:
        return inside
    return all(_segment_distance(poly[k], poly[(k + 1) % n], x, y) >= margin for k in range(n))


def _segment_distance(a: np.ndarray, b: np.ndarray, x: float, y: float) -> float:
    ab, ap = b - a, np.array([x, y]) - a
    t = float(np.clip(ap @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(ap - t * ab))


class Room:
    def __init__(self, poly: np.ndarray, height: float) -> None:
        self.poly = poly
        self.height = height
        self.open_doors: list[tuple[int, float, float, float]] = []
        """(wall, start, end, top) of every door left open onto a neighbouring room (rgbify.scenes.home)."""
        self.walls: list[dict] = []
        n = len(poly)
        for k in range(n):
            p, q, r = poly[k], poly[(k + 1) % n], poly[(k + 2) % n]
            u = (q - p) / np.linalg.norm(q - p)
            u2 = (r - q) / np.linalg.norm(r - q)
            convex_end = float(u[0] * u2[1] - u[1] * u2[0]) > 0
            self.walls.append({"p": p, "u": u, "n": np.array([-u[1], u[0]]), "length": float(np.linalg.norm(q - p)),
                               "yaw": math.degrees(math.atan2(u[1], u[0])), "convex_end": convex_end,
                               "openings": [], "iid": 0})

    def wall_frame(self, k: int) -> np.ndarray:
        w = self.walls[k]
        return translate(w["p"][0], w["p"][1], 0.0) @ rot_z(w["yaw"])

    def sample_xy(self, rng: np.random.Generator, margin: float) -> np.ndarray:
        lo, hi = self.poly.min(0), self.poly.max(0)
        for _ in range(100):
            x, y = rng.uniform(lo, hi)
            if inside_polygon(self.poly, x, y, margin):
                return np.array([x, y])
        return (lo + hi) / 2.0

    def contains_model(self, model: Model, world_from_model: np.ndarray, margin: float = 0.0) -> bool:
        for c, h in model.boxes:
            for sx in (-1, 1):
                for sy in (-1, 1):
                    p = world_from_model @ np.array([c[0] + sx * h[0], c[1] + sy * h[1], 0.0, 1.0])
                    if not inside_polygon(self.poly, p[0], p[1], margin):
                        return False
        return True


def _openings(ctx: Context, room: Room) -> None:
    rng, lay = ctx.rng, ctx.config.layout
    lengths = np.array([w["length"] for w in room.walls])

    def put(kind: str, width: float, bottom: float, top: float) -> bool:
        ok = lengths > width + 0.6
        if not ok.any():
            return False
        p = ok * lengths / (ok * lengths).sum()
        k = int(rng.choice(len(room.walls), p=p))
        wall = room.walls[k]
        for _ in range(8):
            x0 = rng.uniform(0.3, wall["length"] - 0.3 - width)
            if all(x0 + width + 0.3 < a or x0 > b + 0.3 for a, b, *_ in wall["openings"]):
                wall["openings"].append((x0, x0 + width, bottom, top, kind))
                return True
        return False

    h = room.height
    for _ in range(int(rng.integers(lay.doors[0], lay.doors[1] + 1))):
        put("door", rng.uniform(0.8, 1.0), 0.0, min(h - 0.2, rng.uniform(2.0, 2.15)))
    for _ in range(int(rng.integers(lay.windows[0], lay.windows[1] + 1))):
        sill = rng.uniform(0.6, 1.0)
        put("window", rng.uniform(0.6, 2.0), sill, min(h - 0.2, rng.uniform(1.9, 2.4)))


def _wall_model(room: Room, k: int) -> Model:
    wall, h, t = room.walls[k], room.height, WALL_T
    x_start, x_end = 0.0, wall["length"] + (t if wall["convex_end"] else -t)
    parts = Parts()
    cursor = x_start
    for a, b, bottom, top, kind in sorted(wall["openings"]):
        if a > cursor:
            parts.box(((cursor + a) / 2, -t / 2, h / 2), (a - cursor, t, h))
        if bottom > 0:
            parts.box(((a + b) / 2, -t / 2, bottom / 2), (b - a, t, bottom))
            if kind == "window":  # a sill sticking out into the room
                parts.box(((a + b) / 2, (0.05 - t) / 2, bottom - 0.015), (b - a + 0.1, t + 0.05, 0.03))
        parts.box(((a + b) / 2, -t / 2, (top + h) / 2), (b - a, t, h - top))
        cursor = b
    if x_end > cursor:
        parts.box(((cursor + x_end) / 2, -t / 2, h / 2), (x_end - cursor, t, h))
    return parts.model("wall", "wall", material_hint="wall")


def build_room(ctx: Context, b: SceneBuilder, size: tuple[float, float] | None = None, floor_hint: str = "floor",
               wall_hint: str = "wall", open_door_prob: float = 0.0) -> tuple[Room, int]:
    """The room: floor, ceiling, walls with their doors and windows. ``size`` (width, depth) instead of the
    recipe's ranges; the floor and walls made of the families ``floor_hint`` and ``wall_hint``; each door on an
    outer wall left open (swung 70-100 degrees into the room) with probability ``open_door_prob``, listed in
    ``room.open_doors`` for a neighbouring room behind it."""
    rng, lay = ctx.rng, ctx.config.layout
    w, d = (rng.uniform(*lay.room_width_m), rng.uniform(*lay.room_depth_m)) if size is None else size
    room = Room(room_polygon(rng, w, d, lay.l_shape_prob), float(rng.uniform(*lay.room_height_m)))
    _openings(ctx, room)
    t = WALL_T
    floor = Parts().box((0, 0, -0.05), (w + 2 * t, d + 2 * t, 0.1)).model("floor", "floor", material_hint=floor_hint)
    floor_id = b.add(floor, pose(w / 2, d / 2, 0.0), ctx.material(floor), check=False)
    ceil = Parts().box((0, 0, 0.05), (w + 2 * t, d + 2 * t, 0.1)).model("ceiling", "ceiling", material_hint="ceiling")
    b.add(ceil, pose(w / 2, d / 2, room.height), ctx.material(ceil), check=False)
    wall_mat = ctx.material(Parts().box((0, 0, 0), (1, 1, 1)).model("wall", "wall", material_hint=wall_hint), 0.35)
    for k, wall in enumerate(room.walls):
        wc = ctx.child("wall", k)
        wm = _wall_model(room, k)
        same = wc.rng.random() < 0.8  # most rooms have one wall paint
        wall["iid"] = b.add(wm, room.wall_frame(k), wall_mat if same else wc.material(wm), check=False)
        for a, bb, bottom, top, kind in wall["openings"]:
            frame = room.wall_frame(k)
            if kind == "door":
                opened = open_door_prob > 0 and _outer(room, k) and wc.rng.random() < open_door_prob
                _door(wc, b, frame, a, bb, top, float(wc.rng.uniform(70.0, 100.0)) if opened else 0.0)
                if opened:
                    room.open_doors.append((k, a, bb, top))
            elif wc.rng.random() < 0.7:  # glazed window; otherwise an open one
                pane = Parts().box(((a + bb) / 2, -t / 2, (bottom + top) / 2),
                                   (bb - a - 0.004, 0.012, top - bottom - 0.004))
                pm = pane.model("window", "window_pane", material_hint="glass")
                pane_mat = Material(base_color=(0.9, 0.95, 0.95), roughness=0.02, transmission=1.0, ior=1.5, thin=True)
                b.add(pm, frame, pane_mat, check=False)
    return room, floor_id


def _outer(room: Room, k: int) -> bool:
    """Wall ``k`` lies on the room's bounding box: nothing of the room is behind it (a neighbour fits there)."""
    wall = room.walls[k]
    p, q = wall["p"], wall["p"] + wall["u"] * wall["length"]
    lo, hi = room.poly.min(0), room.poly.max(0)
    return any(abs(p[i] - e) < 1e-6 and abs(q[i] - e) < 1e-6 for i in (0, 1) for e in (lo[i], hi[i]))


def _door(ctx: Context, b: SceneBuilder, frame: np.ndarray, a: float, bb: float, top: float,
          open_deg: float = 0.0) -> None:
    """A door panel in the opening (a, bb) of a wall, closed, or swung open by ``open_deg`` into the room about its
    hinge at ``a``."""
    t, w = WALL_T, bb - a
    parts = Parts().box(((a + bb) / 2, -t / 2, top / 2), (w - 0.01, 0.04, top - 0.005))
    hx = a + w * 0.85
    parts.of("metal").cylinder((hx, -t / 2 + 0.02 + 0.03, 1.0), 0.012, 0.06, axis="y", sections=10)
    parts.cylinder((hx, -t / 2 - 0.02 - 0.03, 1.0), 0.012, 0.06, axis="y", sections=10)
    dm = parts.model("door", "door", material_hint=str(ctx.rng.choice(["wood", "painted"])))
    if open_deg:  # about the hinge line (x = a + 5 mm, y = the panel's inner face), into the room (+y)
        hinge = translate(a + 0.005, -t / 2 + 0.02, 0.0)
        frame = frame @ hinge @ rot_z(open_deg) @ np.linalg.inv(hinge)
    b.add(dm, frame, ctx.material(dm), check=False)
    # keep the swing in front of the door free
    c = frame @ np.array([(a + bb) / 2, w / 2 + 0.05, 1.0, 1.0])
    b.keep_out((c[0], c[1], 1.0), (w / 2 + 0.05, w / 2 + 0.05, 1.0), math.degrees(math.atan2(frame[1, 0], frame[0, 0])))


# --- furniture ---------------------------------------------------------------------------------------------

def against_wall(ctx: Context, b: SceneBuilder, room: Room, model: Model, floor_id: int, tries: int = 12) -> int | None:
    rng = ctx.rng
    lengths = np.array([w["length"] for w in room.walls])
    ext_x = model.extents[0]
    lo_y = min(c[1] - h[1] for c, h in model.boxes)
    ok = lengths > ext_x + 0.1
    if not ok.any():
        return None
    p = ok * lengths / (ok * lengths).sum()
    for _ in range(tries):
        k = int(rng.choice(len(room.walls), p=p))
        wall = room.walls[k]
        s = rng.uniform(ext_x / 2 + 0.02, wall["length"] - ext_x / 2 - 0.02)
        gap = rng.uniform(0.005, 0.05)
        xy = wall["p"] + wall["u"] * s + wall["n"] * (gap - lo_y)
        w = pose(xy[0], xy[1], 0.0, wall["yaw"])
        if not room.contains_model(model, w):
            continue
        iid = b.add(model, w, ctx.material(model), support=floor_id)
        if iid is not None:
            return iid
    return None


def _free_standing(ctx: Context, b: SceneBuilder, room: Room, model: Model, floor_id: int,
                   near: np.ndarray | None = None, tries: int = 15) -> tuple[int, np.ndarray] | None:
    rng = ctx.rng
    base_yaw = room.walls[0]["yaw"]
    for _ in range(tries):
        xy = room.sample_xy(rng, 0.3) if near is None else near + rng.normal(0, 0.4, 2)
        yaw = base_yaw + 90.0 * int(rng.integers(4)) + (rng.normal(0, 8) if rng.random() < 0.3 else 0.0)
        w = pose(xy[0], xy[1], 0.0, yaw)
        if not room.contains_model(model, w, 0.05):
            continue
        iid = b.add(model, w, ctx.material(model), support=floor_id)
        if iid is not None:
            return iid, w
    return None


def _chairs_around(ctx: Context, b: SceneBuilder, room: Room, table: Model, w: np.ndarray, floor_id: int,
                   chair: Model | None = None) -> None:
    rng = ctx.rng
    ext = table.extents
    ch = chair or models.chair(rng, stool=False)  # a set: the same chair, the same materials, around the table
    mat = ctx.material(ch)
    for side in range(4):
        if rng.random() < 0.35:
            continue
        along = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]][side], dtype=np.float64)
        half = ext[1] / 2 if side in (0, 2) else ext[0] / 2
        for pull in (rng.uniform(0.0, 0.25), 0.3, 0.45):
            local = along * (half + ch.extents[1] / 2 - 0.12 + pull)
            p = w @ np.array([local[0], local[1], 0.0, 1.0])
            to_table = w[:2, 3] - p[:2]
            yaw = math.degrees(math.atan2(-to_table[0], to_table[1])) + rng.normal(0, 6)
            wc = pose(p[0], p[1], 0.0, yaw)
            if not room.contains_model(ch, wc, 0.02):
                continue
            if b.add(ch, wc, mat, support=floor_id) is not None:
                break


def furnish(ctx: Context, b: SceneBuilder, room: Room, floor_id: int) -> None:
    """Furniture pieces, each from a stream of its own ("furnish", k): what it is, where, its material, the chairs
    around a table, a lamp's light."""
    lay = ctx.config.layout
    n = int(ctx.rng.integers(lay.furniture[0], lay.furniture[1] + 1))
    menu = ["shelf", "cabinet", "sofa", "bed", "table_set", "desk_set", "coffee", "lamp", "side", "shelf", "asset"]
    weights = np.array([3, 3, 2, 1.2, 2, 1.5, 1.2, 1.5, 1, 1, 3 if ctx.assets else 0], dtype=np.float64)
    have_bed = False
    for k in range(n):
        c = ctx.child("furnish", k)
        rng = c.rng
        what = str(rng.choice(menu, p=weights / weights.sum()))
        if what == "bed" and have_bed:
            what = "shelf"
        if what == "asset":
            c.assets.place_large(c, b, lambda r=rng: room.sample_xy(r, 0.3), floor_id,
                                   lambda m, w: room.contains_model(m, w, 0.02))
        elif what in ("shelf", "cabinet", "sofa", "bed"):
            m = {"shelf": models.shelf, "cabinet": models.cabinet, "sofa": models.sofa, "bed": models.bed}[what](rng)
            m = _from_catalog(c, what, m, k)
            iid = against_wall(c, b, room, m, floor_id)
            have_bed |= what == "bed" and iid is not None
        elif what == "lamp":
            m = _from_catalog(c, what, models.lamp(rng, floor=True), k)
            if rng.random() < 0.5:
                iid = against_wall(c, b, room, m, floor_id)
            else:
                r = _free_standing(c, b, room, m, floor_id)
                iid = r[0] if r else None
            if iid is not None:
                _lamp_light(c, b, iid)
        elif what in ("table_set", "desk_set"):
            kind = str(rng.choice(["dining", "round"])) if what == "table_set" else "desk"
            m = _from_catalog(c, kind, models.table(rng, kind), k)
            r = against_wall(c, b, room, m, floor_id) if kind == "desk" else \
                _free_standing(c, b, room, m, floor_id)
            chair = _from_catalog(c, "chair", None, k)
            if isinstance(r, tuple):
                _chairs_around(c, b, room, m, r[1], floor_id, chair)
            elif r is not None:
                _chairs_around(c, b, room, m, b.placed[-1].world_from_model, floor_id, chair)
        else:
            kind = "coffee" if what == "coffee" else "side"
            m = _from_catalog(c, kind, models.table(rng, kind), k)
            _free_standing(c, b, room, m, floor_id)


NOT_IN_A_ROOM = ("baby", "child", "crib", "bunk", "mezzanine", "hospital", "opened", "tv", "television", "stool",
                 "bar ")
"""Catalogue models the generic room leaves out (by words of their names)."""
CATALOG_PIECES: dict[str, dict] = {
    "shelf": {"classes": ("shelf",), "rooms": ("living", "office")},
    "cabinet": {"classes": ("cabinet", "dresser"), "rooms": ("living", "bedroom", "office")},
    "sofa": {"classes": ("sofa",), "rooms": ("living",), "max_size": 2.6},
    "bed": {"classes": ("bed",), "rooms": ("bedroom",), "max_size": 2.3},
    "lamp": {"classes": ("lamp",), "rooms": ("any", "living", "bedroom", "office")},
    "dining": {"classes": ("table",), "rooms": ("living", "kitchen"), "max_size": 2.2, "max_height": 0.8,
               "min_height": 0.65},
    "round": {"classes": ("table",), "rooms": ("living", "kitchen"), "max_size": 1.6, "max_height": 0.8,
              "min_height": 0.65},
    "desk": {"classes": ("desk",), "rooms": ("office",), "max_size": 1.8},
    "coffee": {"classes": ("table",), "rooms": ("living",), "max_height": 0.55},
    "side": {"classes": ("table",), "rooms": ("living", "bedroom"), "max_size": 0.7, "max_height": 0.75},
    "chair": {"classes": ("chair",), "rooms": ("living", "kitchen", "office"), "max_height": 1.15},
}
"""What the catalogue gives for each piece of the generic room (rgbify.scenes.catalog.pick's arguments)."""


def _from_catalog(ctx: Context, what: str, made: Model | None, k: int) -> Model | None:
    """With the catalogue, and with probability ``[layout] catalog_prob``, a catalogue model instead of ``made``
    for piece ``k`` (drawn from a stream of its own: without the catalogue the room is what it was)."""
    p = getattr(ctx.config.layout, "catalog_prob", 0.0)
    if ctx.catalog is None or p <= 0:
        return made
    c = ctx.child("catalog_" + what, k)
    if c.rng.random() >= p:
        return made
    kw = dict(CATALOG_PIECES[what])
    m = pick(ctx.catalog, c.rng, kw.pop("classes"), ("floor",),
             name=lambda n: not any(w in n for w in NOT_IN_A_ROOM), **kw)
    return m if m is not None else made


LAMP_WORDS = ("bulb", "light", "lamp", "shade", "glow", "emit", "lumi", "pantalla", "abat")
"""A catalogue lamp's materials that glow: those whose names say bulb, light, lamp, shade..."""


def _lamp_light(ctx: Context, b: SceneBuilder, iid: int) -> None:
    placed = next(p for p in b.placed if p.instance_id == iid)
    if placed.model.file_materials:
        _catalog_lamp(ctx, b, placed)
        return
    small = placed.model.kind == "table_lamp"
    for pos, _kind in placed.model.lights:
        wpos = placed.world_from_model @ np.append(pos, 1.0)
        power = ctx.rng.uniform(1, 5) if small else ctx.rng.uniform(15, 50)
        b.lights.append(Light(kind="point", world_from_light=matrix4(translate(*wpos[:3])),
                              power=round(float(power), 2), temperature_k=ctx.temperature(), size=0.05))
    # the shade (slot 1) glows, as lit fabric does
    obj = next(o for o in b.objects if o.instance_id == iid)
    if obj.materials and obj.materials[0].transmission == 0:
        shade = dataclasses.replace(obj.materials[0], emission_strength=round(float(ctx.rng.uniform(0.5, 2.5)), 3))
        b.replace_materials(iid, (obj.material, shade, *obj.materials[1:]))


def _catalog_lamp(ctx: Context, b: SceneBuilder, placed) -> None:  # noqa: ANN001
    """A catalogue lamp: a point light at each of its light sources, its bulb and shade materials glowing."""
    small = placed.model.height < 0.9
    for pos, _kind in placed.model.lights:
        wpos = placed.world_from_model @ np.append(pos, 1.0)
        power = ctx.rng.uniform(1, 5) if small else ctx.rng.uniform(15, 50)
        b.lights.append(Light(kind="point", world_from_light=matrix4(translate(*wpos[:3])),
                              power=round(float(power), 2), temperature_k=ctx.temperature(), size=0.03))
    obj = next(o for o in b.objects if o.instance_id == placed.instance_id)
    slots = list(obj.slots())
    strength = round(float(ctx.rng.uniform(1.0, 4.0)), 3)
    for k, fm in enumerate(placed.model.file_materials):
        if k < len(slots) and any(w in fm.name.lower() for w in LAMP_WORDS):
            slots[k] = dataclasses.replace(slots[k], emission_strength=strength)
    b.replace_materials(placed.instance_id, tuple(slots))


def decorate(ctx: Context, b: SceneBuilder, room: Room, floor_id: int) -> None:
    """Pictures on walls, rugs on free floor, clutter on surfaces and the floor: each from a stream of its own."""
    rng, lay = ctx.rng, ctx.config.layout
    for j in range(int(rng.integers(lay.pictures[0], lay.pictures[1] + 1))):
        c = ctx.child("picture", j)
        pm = models.picture(c.rng)
        k = int(c.rng.integers(len(room.walls)))
        wall = room.walls[k]
        ext = pm.extents
        if wall["length"] < ext[0] + 0.4:
            continue
        s = c.rng.uniform(ext[0] / 2 + 0.2, wall["length"] - ext[0] / 2 - 0.2)
        z = c.rng.uniform(1.2, min(room.height - ext[2] / 2 - 0.15, 1.9))
        xy = wall["p"] + wall["u"] * s
        b.add(pm, pose(xy[0], xy[1], z, wall["yaw"]), sample_material(c.rng, "paper", ctx.config.materials,
                                                                       "picture", list(ctx.images), 0.9))
    c = ctx.child("rug")
    if c.rng.random() < 0.5:
        rm = models.rug(c.rng, c.rng.uniform(1.0, 2.5), c.rng.uniform(0.7, 1.8))
        place_on_floor(c, b, rm, lambda: room.sample_xy(c.rng, 0.6), floor_id, yaw=room.walls[0]["yaw"],
                       inside=lambda m, w: room.contains_model(m, w, 0.1))
    scatter_clutter(ctx, b, int(rng.integers(lay.clutter[0], lay.clutter[1] + 1)))
    for j in range(int(rng.integers(lay.floor_clutter[0], lay.floor_clutter[1] + 1))):
        c = ctx.child("floor_clutter", j)
        m = models.small_box(c.rng) if c.rng.random() < 0.6 else models.ball(c.rng, True)
        place_on_floor(c, b, m, lambda r=c.rng: room.sample_xy(r, 0.3), floor_id,
                       inside=lambda m, w: room.contains_model(m, w, 0.02))


SURFACE_MENUS = {
    "table": ("bowl", "cup", "plate", "bottle", "fruit", "book", "vase", "can", "clutter", "box", "lamp", "ball"),
    "cabinet": ("vase", "book", "box", "lamp", "bottle", "clutter", "bowl"),
    "shelf": ("books", "books", "vase", "box", "clutter", "bottle", "bowl", "cup"),
    "box": ("book", "clutter", "ball", "cup"),
    "bed": ("pillow",),
    "seat": ("pillow",),
}


def scatter_clutter(ctx: Context, b: SceneBuilder, n: int, kinds: tuple[str, ...] | None = None,
                    phase: str = "clutter") -> None:
    """``n`` small objects on the support surfaces (of ``kinds``), object k from the stream (``phase``, k)."""
    lit_supports: set[int] = set()  # at most one table lamp per piece of furniture
    for k in range(n):
        c = ctx.child(phase, k)
        rng = c.rng
        surfaces = b.surfaces(kinds)
        if not surfaces:
            return
        area = np.array([max(s.area, 0.01) for s in surfaces])
        ws = surfaces[int(rng.choice(len(surfaces), p=area / area.sum()))]
        menu = SURFACE_MENUS.get(ws.surface.kind, SURFACE_MENUS["table"])
        what = str(rng.choice(menu))
        catalog_prob = getattr(c.config.layout, "catalog_prob", 0.0)
        if c.catalog is not None and catalog_prob > 0 and what not in ("books", "pillow") and \
                rng.random() < catalog_prob:
            s = ws.surface
            m = small_model(c.catalog, rng, s.kind, c.room, s.clear_m, min(s.hx, s.hy))
            if m is not None:
                iid = place_on_surface(c, b, m, ws)
                if iid is not None and m.lights and ws.instance_id not in lit_supports:
                    _lamp_light(c, b, iid)
                    lit_supports.add(ws.instance_id)
                continue
        if c.assets and c.assets.has("surface") and rng.random() < c.config.layout.asset_prob:
            c.assets.place_small(c, b, ws)
        elif what == "books":
            _book_row(c, b, ws)
        elif what == "pillow":
            place_on_surface(c, b, models.pillow(rng, 2 * ws.surface.hx), ws, yaw=float(rng.normal(0, 10)))
        else:
            if what == "lamp" and ws.instance_id in lit_supports:
                what = "bowl"
            m = models.SMALL_FACTORIES[what](rng)
            iid = place_on_surface(c, b, m, ws)
            if iid is not None and what == "lamp":
                _lamp_light(c, b, iid)
                lit_supports.add(ws.instance_id)


def _book_row(ctx: Context, b: SceneBuilder, ws) -> None:  # noqa: ANN001
    rng, s = ctx.rng, ws.surface
    x = s.cx - s.hx + rng.uniform(0.0, s.hx)
    end = s.cx + s.hx - rng.uniform(0.0, s.hx * 0.8)
    count = 0
    while x < end and count < 14:
        bk = models.book(rng, upright=True, max_h=min(0.32, s.clear_m - 0.02))
        if bk.height > s.clear_m - 0.01 or bk.extents[1] > 2 * s.hy:
            return
        t = bk.extents[0]
        y = s.cy - s.hy + bk.extents[1] / 2 + rng.uniform(0.0, max(0.0, 2 * s.hy - bk.extents[1]) * 0.3)
        w = ws.world_from_model @ translate(x + t / 2, y, s.z) @ rot_z(float(rng.normal(0, 2)))
        if b.add(bk, w, ctx.material(bk), support=ws.instance_id) is not None:
            count += 1
        x += t + rng.uniform(0.0, 0.01)


# --- lights and camera ---------------------------------------------------------------------------------------

def light_room(ctx: Context, b: SceneBuilder, room: Room) -> None:
    """Ceiling lights (one kind and colour temperature per room; light k from the stream ("light", k)) and, through
    an open window, sometimes the sun ("sun")."""
    rng = ctx.rng
    area = float(abs(_shoelace(room.poly)))
    n = max(1, int(round(area / rng.uniform(8, 20))))
    temp = ctx.temperature()
    kind = str(rng.choice(["area", "point", "spot"], p=[0.6, 0.25, 0.15]))
    for k in range(n):
        r = ctx.child("light", k).rng
        xy = room.sample_xy(r, 0.5)
        power = area / n * r.uniform(3.0, 8.0)
        t = round(float(np.clip(temp + r.normal(0, 150), 2700, 6500)), 1)
        if kind == "area":
            size = float(r.uniform(0.3, 1.0))
            panel = Parts().box((0, 0, -0.01), (size, size, 0.02)).model("lamp", "ceiling_panel")
            for _ in range(10):  # panels must not overlap each other
                if b.add(panel, pose(xy[0], xy[1], room.height), emissive((1.0, 1.0, 1.0), 3.0)) is not None:
                    break
                xy = room.sample_xy(r, 0.5)
            else:
                continue
            b.lights.append(Light(kind="area", world_from_light=matrix4(translate(xy[0], xy[1], room.height - 0.025)),
                                  power=round(power, 2), temperature_k=t, size=round(size, 3)))
        else:
            z = room.height - r.uniform(0.2, 0.6)
            b.lights.append(Light(kind=kind, world_from_light=matrix4(translate(xy[0], xy[1], z)),  # type: ignore
                                  power=round(power * (1.5 if kind == "spot" else 1.0) * 3.0, 2), temperature_k=t,
                                  size=0.05, spot_angle_deg=round(float(r.uniform(70, 140)), 1)))
    open_windows = [(k, o) for k, w in enumerate(room.walls) for o in w["openings"] if o[4] == "window"]
    sun = ctx.child("sun")
    r = sun.rng
    if open_windows and r.random() < 0.6:
        k, _o = open_windows[int(r.integers(len(open_windows)))]
        n_in = room.walls[k]["n"]
        el = math.radians(r.uniform(15, 55))
        az = math.radians(r.uniform(-40, 40))
        c, s = math.cos(az), math.sin(az)
        horiz = np.array([c * n_in[0] - s * n_in[1], s * n_in[0] + c * n_in[1]])
        d = np.array([horiz[0] * math.cos(el), horiz[1] * math.cos(el), -math.sin(el)])
        b.lights.append(sun_light(sun, d, r.uniform(1.0, 4.0), round(float(r.uniform(4500, 6500)), 1)))


def _shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def camera_sampler(ctx: Context, b: SceneBuilder, room: Room, targets: list | None = None):  # noqa: ANN201
    """Cameras in free space: most stand near a wall and look across the room (overview), the rest look at a
    piece of furniture or clutter (of ``targets``, default everything placed) from at least a metre away."""
    if targets is None:
        targets = b.placed
    targets = [p for p in targets if p.model.class_name not in ("wall", "floor", "ceiling", "lamp", "rug", "door",
                                                                 "window")]
    centroid = room.poly.mean(0)

    def free_eye(rng: np.random.Generator, margin: float) -> np.ndarray:
        cc = ctx.config.camera
        for _ in range(40):
            xy = room.sample_xy(rng, margin)
            h = float(min(rng.uniform(*cc.height_m), room.height - 0.3))
            probe = np.array([[xy[0], xy[1], 0.2, 0.2, 1.0, 0.0, h - 0.2, h + 0.2]])
            if not b.colliding_ids(probe):
                return np.array([xy[0], xy[1], h])
        raise Reject("camera_inside_geometry", "no free spot for the camera")

    def sample(rng: np.random.Generator):  # noqa: ANN202
        eye = free_eye(rng, 0.35)
        target = None
        if targets and rng.random() < 0.65:
            for _ in range(10):
                tp = targets[int(rng.integers(len(targets)))]
                t = tp.world_from_model[:3, 3] + np.array([0, 0, tp.model.height / 2])
                if np.linalg.norm(t[:2] - eye[:2]) > 1.0:
                    target = t + np.append(rng.normal(0, 0.3, 2), 0.0)
                    break
        if target is None:  # look across the room, past its middle
            away = centroid - eye[:2]
            if np.linalg.norm(away) < 0.5:
                a = rng.uniform(0, 2 * math.pi)
                away = np.array([math.cos(a), math.sin(a)])
            yaw = math.atan2(away[1], away[0]) + math.radians(rng.normal(0, 35))
            target = eye + np.array([math.cos(yaw), math.sin(yaw), math.tan(math.radians(rng.uniform(-25, 0)))])
        return make_camera(ctx, rng, eye, target)

    return sample


def sample_indoor(ctx: Context) -> Draft:
    b = SceneBuilder()
    room, floor_id = build_room(ctx.child("room"), b)
    furnish(ctx.child("furnish"), b, room, floor_id)
    decorate(ctx.child("decorate"), b, room, floor_id)
    light_room(ctx.child("lights"), b, room)
    world = sky_world(ctx.child("world"), 1.0)
    meta = {"room": {"width_m": round(float(np.ptp(room.poly[:, 0])), 3),
                     "depth_m": round(float(np.ptp(room.poly[:, 1])), 3), "height_m": round(room.height, 3),
                     "shape": "rect" if len(room.poly) == 4 else "L"}}
    return Draft(builder=b, world=world, sample_camera=camera_sampler(ctx, b, room), meta=meta, enclosed=True,
                 interior=interior(b, room))


def interior(b: SceneBuilder, room: Room) -> tuple[float, float]:
    """(interior surface area, area-weighted luminance albedo of floor, ceiling and walls) of the room."""
    floor_area = abs(_shoelace(room.poly))
    wall_area = sum(w["length"] for w in room.walls) * room.height
    area = {"floor": floor_area, "ceiling": floor_area, "wall": wall_area}
    by_class: dict[str, list[float]] = {}
    for o in b.objects:
        if o.class_name in area:
            by_class.setdefault(o.class_name, []).append(luminance(albedo(o.material)))
    total = sum(area.values())
    rho = sum(area[c] * float(np.mean(v)) for c, v in by_class.items()) / total
    return float(total), float(rho)
