"""Room types: how a kitchen, a bathroom, a bedroom, a living room, an office and a corridor are furnished.

Each piece is drawn from the Sweet Home 3D catalogue (rgbify.scenes.catalog) with probability ``[layout]
catalog_prob``, else made procedurally (rgbify.scenes.models), so every room type also works without the
catalogue. What stands where follows how such rooms are arranged:

* **kitchen**: a run of base units along the longest wall (and, in two rooms out of three, round the corner onto
  the next wall): the fridge at one end, a sink unit and a stove among the counters, sometimes a dishwasher or
  washing machine; upper cabinets above the counters and a range hood over the stove; an island in large
  kitchens; a dining table with a set of chairs where there is room; the counters and the table carry kitchen
  things (kitchenware, small appliances, bottles, cups, bowls, plates, fruit, food).
* **bathroom** (1.8-3.6 m): a bathtub along a wall long enough, else a shower in a corner; a toilet; a washbasin or
  vanity with a mirror above; a towel rail; bottles, soap, brushes and towels on the basin; tiled walls and floor.
* **bedroom**: the bed's head against a wall with a nightstand (and a table lamp) on either side, a wardrobe, a
  dresser, sometimes a desk and chair or an armchair; a rug by the bed; clothes, bags and books about.
* **living** room (up to 15 m): a sofa against a wall, a coffee table in front of it with armchairs at its sides
  facing it, a TV on a cabinet on the wall opposite, bookcases, a floor lamp, plants in the corners, a rug under the
  coffee table; a dining table with chairs in large rooms.
* **office** (up to 15 m): desks with chairs (in rows in large rooms), a computer and a lamp on each desk,
  bookcases and filing cabinets along the walls, a whiteboard, plants, a meeting table in large rooms.
* **corridor** (1.1-1.8 m wide, 4-12 m long): doors along it (most open onto neighbouring rooms), a narrow
  cabinet or console, a coat rack, plants, shoes, a runner rug.

Bedrooms and living rooms hang curtains at their windows. Random streams: piece k of a room from ("furnish", k),
as the generic room (rgbify.scenes.indoor.furnish) does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rgbify.scenes import models
from rgbify.scenes.builder import Model, Parts, SceneBuilder, pose
from rgbify.scenes.catalog import Catalog
from rgbify.scenes.catalog import pick as catalog_pick
from rgbify.scenes.context import Context
from rgbify.scenes.indoor import Room, _chairs_around, _lamp_light
from rgbify.scenes.materials import sample_material

ROOM_TYPES = ("generic", "kitchen", "bathroom", "bedroom", "living", "office", "corridor")
SIZE_LIMITS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "generic": ((2.0, 15.0), (2.0, 15.0)), "kitchen": ((2.4, 6.5), (2.4, 6.0)),
    "bathroom": ((1.8, 3.6), (1.8, 3.2)), "bedroom": ((2.8, 6.0), (2.8, 5.5)),
    "living": ((3.5, 15.0), (3.0, 9.0)), "office": ((2.8, 15.0), (2.8, 10.0)), "corridor": ((4.0, 12.0), (1.1, 1.8)),
}
"""Width and depth ranges (metres) a room type is held to (intersected with the recipe's ranges)."""
HINTS = {"kitchen": ("floor", "wall"), "bathroom": ("bath_floor", "bath_wall")}
"""(floor, wall) material families by room type (others: floor, wall)."""


def room_size(rng: np.random.Generator, room_type: str, width: tuple[float, float], depth: tuple[float, float]
              ) -> tuple[float, float]:
    """(width, depth) of a room of ``room_type``: drawn log-uniformly from the recipe's ranges held to the type's
    limits."""
    (wl, wh), (dl, dh) = SIZE_LIMITS[room_type]

    def clip(r: tuple[float, float], lo: float, hi: float) -> tuple[float, float]:
        a, b = max(r[0], lo), min(r[1], hi)
        return (a, b) if a <= b else (lo, hi)

    def draw(r: tuple[float, float]) -> float:  # log-uniform: as many 3-6 m rooms as 6-12 m ones
        return math.exp(rng.uniform(math.log(r[0]), math.log(r[1])))

    return draw(clip(width, wl, wh)), draw(clip(depth, dl, dh))


class Furnisher:
    """Places pieces in one room, each drawn from the catalogue (probability ``catalog_prob``) or made."""

    def __init__(self, ctx: Context, b: SceneBuilder, room: Room, floor_id: int, room_type: str,
                 catalog: Catalog | None) -> None:
        self.ctx, self.b, self.room, self.floor_id, self.type = ctx, b, room, floor_id, room_type
        self.catalog = catalog
        self.k = 0

    def next(self) -> Context:
        """The stream of the next piece."""
        c = self.ctx.child("furnish", self.k)
        self.k += 1
        return c

    def pick(self, c: Context, classes: tuple[str, ...], make: Callable[[np.random.Generator], Model] | None,
             roles: tuple[str, ...] = ("floor",), rooms: tuple[str, ...] | None = None,
             name: Callable[[str], bool] | None = None, max_size: float | None = None,
             max_height: float | None = None, min_height: float = 0.0) -> Model | None:
        """A model of one of ``classes``: from the catalogue (of ``roles`` and ``rooms``, the room type's by default)
        with probability catalog_prob, else ``make``; None if neither gives one."""
        lay = c.config.layout
        if self.catalog is not None and lay.catalog_prob > 0 and c.rng.random() < lay.catalog_prob:
            m = catalog_pick(self.catalog, c.rng, classes, roles, rooms or (self.type,), name, max_size, max_height,
                             min_height)
            if m is not None:
                return m  # else none fits, or one the catalogue cannot give (a missing texture): made instead
        return make(c.rng) if make is not None else None

    # -- where things go -----------------------------------------------------------------------------------------
    def at_wall(self, c: Context, model: Model, k: int, s: float, z: float = 0.0, gap: float | None = None,
                materials: tuple | None = None) -> tuple[int, np.ndarray] | None:
        """``model`` with its back to wall ``k``, centred ``s`` metres along it, at height ``z``; (id, pose) or
        None if it does not fit there."""
        wall = self.room.walls[k]
        half = model.extents[0] / 2
        if s - half < 0.02 or s + half > wall["length"] - 0.02:
            return None
        if z > 0.05 and any(s + half > a - 0.05 and s - half < bb + 0.05 and z + model.height > bottom and z < top
                            for a, bb, bottom, top, _kind in wall["openings"]):
            return None  # nothing hangs in front of a window or door
        lo_y = min(cc[1] - h[1] for cc, h in model.boxes)
        g = float(c.rng.uniform(0.005, 0.03)) if gap is None else gap
        xy = wall["p"] + wall["u"] * s + wall["n"] * (g - lo_y)
        w = pose(xy[0], xy[1], z, wall["yaw"])
        if not self.room.contains_model(model, w):
            return None
        iid = self.b.add(model, w, materials or c.material(model))  # furniture: stays put (not loose for physics)
        return None if iid is None else (iid, w)

    def along_wall(self, c: Context, model: Model, walls: list[int] | None = None, z: float = 0.0, tries: int = 10
                   ) -> tuple[int, np.ndarray] | None:
        """``model`` against one of ``walls`` (default any, longer ones likelier) at a random spot."""
        lengths = np.array([w["length"] for w in self.room.walls])
        ok = np.zeros(len(lengths), bool)
        for k in (range(len(lengths)) if walls is None else walls):
            ok[k] = lengths[k] > model.extents[0] + 0.1
        if not ok.any():
            return None
        p = ok * lengths / (ok * lengths).sum()
        for _ in range(tries):
            k = int(c.rng.choice(len(lengths), p=p))
            r = self.at_wall(c, model, k, float(c.rng.uniform(0, lengths[k])), z)
            if r is not None:
                return r
        return None

    def free(self, c: Context, model: Model, xy: np.ndarray, yaw: float, margin: float = 0.05
             ) -> tuple[int, np.ndarray] | None:
        w = pose(float(xy[0]), float(xy[1]), 0.0, yaw)
        if not self.room.contains_model(model, w, margin):
            return None
        iid = self.b.add(model, w, c.material(model))  # furniture: stays put (not loose for physics)
        return None if iid is None else (iid, w)

    def free_somewhere(self, c: Context, model: Model, tries: int = 12, margin: float = 0.3
                       ) -> tuple[int, np.ndarray] | None:
        base = self.room.walls[0]["yaw"]
        for _ in range(tries):
            yaw = base + 90.0 * int(c.rng.integers(4)) + float(c.rng.normal(0, 5))
            r = self.free(c, model, self.room.sample_xy(c.rng, margin), yaw)
            if r is not None:
                return r
        return None

    def on_top(self, c: Context, model: Model, below: tuple[int, np.ndarray], dy: float = 0.0) -> int | None:
        """``model`` centred on the top support surface of the placed object ``below``, facing as it does."""
        placed = next(p for p in self.b.placed if p.instance_id == below[0])
        if not placed.model.surfaces:
            return None
        s = max(placed.model.surfaces, key=lambda x: x.z)
        if model.height > s.clear_m - 0.01 or model.extents[0] > 2 * s.hx + 0.05:
            return None
        w = below[1] @ pose(s.cx, s.cy + dy, s.z)
        return self.b.add(model, w, c.material(model), support=below[0])

    def longest_walls(self) -> list[int]:
        return sorted(range(len(self.room.walls)), key=lambda k: -self.room.walls[k]["length"])

    def corners(self) -> list[np.ndarray]:
        """Inner points 0.35 m into each corner of the room."""
        out = []
        n = len(self.room.poly)
        for k in range(n):
            a, b, c = self.room.poly[k - 1], self.room.poly[k], self.room.poly[(k + 1) % n]
            d = (a - b) / np.linalg.norm(a - b) + (c - b) / np.linalg.norm(c - b)
            p = b + d / max(np.linalg.norm(d), 1e-9) * 0.5
            if self_inside(self.room, p):
                out.append(p)
        return out


def self_inside(room: Room, p: np.ndarray) -> bool:
    from rgbify.scenes.indoor import inside_polygon

    return inside_polygon(room.poly, float(p[0]), float(p[1]), 0.2)


def facing(from_xy: np.ndarray, to_xy: np.ndarray) -> float:
    """The yaw (degrees) that turns a model's front (+y) from ``from_xy`` toward ``to_xy``."""
    d = np.asarray(to_xy) - np.asarray(from_xy)
    return math.degrees(math.atan2(-d[0], d[1]))


def front_point(w: np.ndarray, distance: float) -> np.ndarray:
    """The floor point ``distance`` metres in front (+y) of a placed model's origin."""
    return (w @ np.array([0.0, distance, 0.0, 1.0]))[:2]


def lamp_on(f: Furnisher, c: Context, below: tuple[int, np.ndarray]) -> None:
    lamp = f.pick(c, ("lamp",), lambda r: models.lamp(r, floor=False), roles=("surface",), rooms=("any",),
                  max_height=0.7)
    if lamp is None:
        return
    iid = f.on_top(c, lamp, below, dy=-0.05)
    if iid is not None:
        _lamp_light(c, f.b, iid)


def chairs_at(f: Furnisher, c: Context, table: tuple[int, np.ndarray], rooms: tuple[str, ...] | None = None) -> None:
    """A set of chairs round a placed table (one model, one material: a set)."""
    tm = next(p.model for p in f.b.placed if p.instance_id == table[0])
    ch = f.pick(c, ("chair",), lambda r: models.chair(r, stool=False), rooms=rooms,
                name=lambda n: "stool" not in n and "bar" not in n and "baby" not in n and "child" not in n,
                max_height=1.15)
    if ch is None:
        return
    _chairs_around(c, f.b, f.room, tm, table[1], f.floor_id, chair=ch)


# --- the room types ---------------------------------------------------------------------------------------------


def kitchen(f: Furnisher) -> None:
    walls = f.longest_walls()
    run_walls = [walls[0]]
    c = f.next()
    n = len(f.room.walls)
    if c.rng.random() < 0.67:  # an L-shaped run round the corner
        run_walls.append((walls[0] + (1 if c.rng.random() < 0.5 else -1)) % n)
    done: set[str] = set()
    for j, k in enumerate(run_walls):
        _kitchen_run(f, k, 0.05 + (0.65 if j > 0 else 0.0), done)
    for k in walls[1:]:  # a sink or a stove that found no room: onto the next longest free wall
        if {"sink", "stove"} <= done:
            break
        if k not in run_walls:
            run_walls.append(k)
            _kitchen_run(f, k, 0.05, done, only=("sink", "stove"))
    w, d = np.ptp(f.room.poly, axis=0)
    c = f.next()
    if min(w, d) > 3.6 and c.rng.random() < 0.6:  # an island
        island = f.pick(c, ("counter",), lambda r: models.counter(r, float(r.uniform(1.2, 1.8))),
                        name=lambda n: "island" in n)
        if island is not None:
            f.free(c, island, f.room.poly.mean(0) + c.rng.normal(0, 0.2, 2), f.room.walls[walls[0]]["yaw"], 0.9)
    c = f.next()
    table = f.pick(c, ("table",), lambda r: models.table(r, str(r.choice(["dining", "round"]))), rooms=("living",
                   "kitchen"), max_size=1.9, max_height=0.8)
    if table is not None:
        r = f.free_somewhere(c, table, margin=0.7)
        if r is not None:
            chairs_at(f, f.next(), r, rooms=("living", "kitchen"))


def _kitchen_items(c: Context, length: float, done: set[str]) -> list[str]:
    """What stands along one wall, in order: the fridge at one end, counters with a sink, a stove, an appliance
    (the sink and the stove among the first units, so that a short wall still has them)."""
    items = ["fridge"] if "fridge" not in done and c.rng.random() < 0.85 else []
    body = ["counter"] * int(max(3, (length - 0.8) // 0.5))
    for what, prob in (("sink", 1.0), ("stove", 1.0), ("appliance", 0.4)):
        free = [i for i, x in enumerate(body) if x == "counter"][:4]
        if what not in done and free and c.rng.random() < prob:
            body[free[int(c.rng.integers(len(free)))]] = what
    items += body
    return items[::-1] if c.rng.random() < 0.5 else items


def _kitchen_run(f: Furnisher, k: int, s: float, done: set[str], only: tuple[str, ...] | None = None) -> None:
    """Base units side by side along wall ``k`` from ``s``; upper cabinets over counters, a hood over the stove. A
    unit that does not fit in what is left of the wall is skipped (a narrower one after it may fit). ``only``: just
    these pieces (those not yet ``done``)."""
    wall = f.room.walls[k]
    items = _kitchen_items(f.next(), wall["length"], done)
    if only is not None:
        items = [x for x in only if x not in done]
    for what in items:
        ci = f.next()
        m = _kitchen_piece(f, ci, what)
        if m is None:
            continue
        width = float(m.extents[0])
        r, s0 = None, s
        while r is None and s + width <= wall["length"] - 0.05:
            r = f.at_wall(ci, m, k, s + width / 2, gap=0.01)
            if r is None:
                s += 0.15  # a door or a window sill in the way: move along
        if r is None:
            s = s0
            continue
        if what in ("counter", "sink") and m.height < 1.0 and ci.rng.random() < 0.8:
            _upper_cabinet(f, ci, k, s + width / 2, width)
        if what == "stove":
            _hood(f, ci, k, s + width / 2)
        done.add(what)
        s += width + 0.003


def _kitchen_piece(f: Furnisher, c: Context, what: str) -> Model | None:
    if what == "fridge":
        return f.pick(c, ("refrigerator",), models.fridge, name=lambda n: "chest" not in n)
    if what == "sink":
        return f.pick(c, ("sink",), lambda r: models.counter(r, float(r.uniform(0.8, 1.0)), "sink"),
                      max_height=1.3)
    if what == "stove":
        return f.pick(c, ("stove",), lambda r: models.counter(r, float(r.uniform(0.6, 0.9)), "stove"),
                      max_height=1.15, min_height=0.75, name=lambda n: "double" not in n and "small" not in n)
    if what == "appliance":
        return f.pick(c, ("appliance",), lambda r: models.counter(r, 0.6), max_height=0.95, min_height=0.7,
                      rooms=("kitchen", "any"), name=lambda n: "wash" in n or "dish" in n or "dryer" in n)
    return f.pick(c, ("counter",), lambda r: models.counter(r, float(r.choice([0.45, 0.6, 0.8, 1.0]))),
                  name=lambda n: "island" not in n and "corner" not in n)


def _upper_cabinet(f: Furnisher, c: Context, k: int, s: float, width: float) -> None:
    m = f.pick(c, ("cabinet",), lambda r: _made_upper(r, width), roles=("wall",), max_size=1.2)
    if m is None or m.extents[0] > width + 0.02:
        return
    z = _elevation_of(f, m, 1.45)  # a catalogue cabinet hangs at its own elevation
    if z + m.height > f.room.height - 0.05:
        return
    f.at_wall(c, m, k, s, z=z, gap=0.005)


def _elevation_of(f: Furnisher, m: Model, default: float) -> float:
    if f.catalog is None or not m.credit:
        return default
    entry = next((x for x in f.catalog.models if x.key == m.credit["id"]), None)
    return entry.elevation_m if entry is not None and entry.elevation_m > 0.5 else default


def _made_upper(rng: np.random.Generator, width: float) -> Model:
    p = Parts().box((0, 0, 0.36), (max(0.3, width - 0.01), 0.34, 0.72))
    p.of("metal").box((0, 0.18, 0.1), (0.12, 0.02, 0.015))
    return p.model("cabinet", "upper_cabinet", material_hint=str(rng.choice(["painted", "wood"])))


def _hood(f: Furnisher, c: Context, k: int, s: float) -> None:
    m = f.pick(c, ("appliance",), None, roles=("wall",), name=lambda n: "hood" in n)
    if m is not None:
        z = _elevation_of(f, m, 1.55)
        if z + m.height < f.room.height - 0.02:
            f.at_wall(c, m, k, s, z=z, gap=0.005)


def bathroom(f: Furnisher) -> None:
    walls = f.longest_walls()
    c = f.next()
    tub = f.pick(c, ("bathtub",), models.bathtub, max_size=1.85, name=lambda n: "island" not in n)
    placed_tub = None
    if tub is not None and f.room.walls[walls[0]]["length"] > tub.extents[0] + 0.1:
        wall = f.room.walls[walls[0]]
        s = tub.extents[0] / 2 + 0.03 if c.rng.random() < 0.5 else wall["length"] - tub.extents[0] / 2 - 0.03
        placed_tub = f.at_wall(c, tub, walls[0], s, gap=0.005)
    if placed_tub is None:
        shower = f.pick(c, ("shower",), models.shower, name=lambda n: "head" not in n and "door" not in n)
        if shower is not None:
            wall = f.room.walls[walls[0]]
            f.at_wall(c, shower, walls[0], shower.extents[0] / 2 + 0.03, gap=0.005) or \
                f.along_wall(c, shower)
    c = f.next()
    toilet = f.pick(c, ("toilet",), models.toilet, name=lambda n: "potty" not in n and "urinal" not in n)
    if toilet is not None:
        f.along_wall(c, toilet, walls[1:] or walls)
    c = f.next()
    sink = f.pick(c, ("sink",), models.vanity, roles=("floor", "wall"))
    if sink is not None:
        entry = _entry(f, sink)
        z = entry.elevation_m if entry is not None and entry.role == "wall" else 0.0
        r = None
        for k in [k for k in walls[1:] + walls[:1] for _ in range(4)]:  # four spots on each wall
            wall = f.room.walls[k]
            r = f.at_wall(c, sink, k, float(c.rng.uniform(0.4, max(0.5, wall["length"] - 0.4))), z=z, gap=0.005)
            if r is not None:
                _mirror_over(f, c, k, r, sink)
                break
    c = f.next()
    rail = f.pick(c, ("towel",), models.towel_rail, roles=("wall",))
    if rail is not None:
        z = _elevation_of(f, rail, float(c.rng.uniform(0.9, 1.2)))
        for _ in range(6):
            if _wall_item(f, c, rail, z):
                break
    c = f.next()
    if c.rng.random() < 0.3:
        washer = f.pick(c, ("appliance",), None, rooms=("kitchen",), name=lambda n: "wash" in n or "dryer" in n)
        if washer is not None:
            f.along_wall(c, washer)


def _entry(f: Furnisher, m: Model):  # noqa: ANN202 - the CatalogModel of a catalogue-made model, or None
    if f.catalog is None or not m.credit or not m.kind.startswith("sh3d:"):
        return None
    return next((x for x in f.catalog.models if x.key == m.credit["id"]), None)


def _wall_item(f: Furnisher, c: Context, m: Model, z: float) -> bool:
    """``m`` hung on a random wall at height ``z`` (model frame of wall items when made: centred in z)."""
    k = int(c.rng.integers(len(f.room.walls)))
    wall = f.room.walls[k]
    if wall["length"] < m.extents[0] + 0.4:
        return False
    zc = z if m.credit else z - min(cc[2] - h[2] for cc, h in m.boxes)
    return f.at_wall(c, m, k, float(c.rng.uniform(0.2 + m.extents[0] / 2, wall["length"] - 0.2 - m.extents[0] / 2)),
                     z=zc, gap=0.005) is not None


def _mirror_over(f: Furnisher, c: Context, k: int, sink: tuple[int, np.ndarray], sink_model: Model) -> None:
    top = float(sink_model.height) + (0.0 if sink[1][2, 3] < 0.05 else float(sink[1][2, 3]))
    m = models.mirror(c.rng, min(float(sink_model.extents[0]), 1.0))
    bottom = max(top + 0.15, 1.1)
    if bottom + m.extents[2] > f.room.height - 0.1:
        return
    wall = f.room.walls[k]
    s = float(np.dot(sink[1][:2, 3] - wall["p"], wall["u"]))
    mat = sample_material(c.rng, "mirror", c.config.materials, "mirror")
    f.at_wall(c, m, k, s, z=bottom + m.extents[2] / 2, gap=0.003, materials=(mat,))


def bedroom(f: Furnisher) -> None:
    _bed_with_nightstands(f, f.longest_walls())
    c = f.next()
    wardrobe = f.pick(c, ("cabinet",), lambda r: _tall_cabinet(r), rooms=("bedroom",),
                      name=lambda n: "wardrobe" in n or "cupboard" in n)
    if wardrobe is not None:
        f.along_wall(c, wardrobe)
    c = f.next()
    if c.rng.random() < 0.7:
        dresser = f.pick(c, ("dresser",), models.dresser, rooms=("bedroom", "living"),
                         name=lambda n: "changing" not in n)
        if dresser is not None:
            r = f.along_wall(c, dresser)
            if r is not None and c.rng.random() < 0.4:
                lamp_on(f, c, r)
    c = f.next()
    if c.rng.random() < 0.4:
        desk = f.pick(c, ("desk",), _made_desk, rooms=("office",), max_size=1.6)
        if desk is not None:
            r = f.along_wall(c, desk)
            if r is not None:
                _chair_at_desk(f, f.next(), r)
    c = f.next()
    if c.rng.random() < 0.5:
        chair = f.pick(c, ("chair", "sofa"), lambda r: models.sofa(r), rooms=("living", "bedroom"), max_size=1.1)
        if chair is not None:
            f.free_somewhere(c, chair, margin=0.4)
    _plants(f, int(f.next().rng.integers(0, 2)))


def _bed_with_nightstands(f: Furnisher, walls: list[int]) -> None:
    c = f.next()
    bed = f.pick(c, ("bed",), models.bed, max_size=2.4, name=lambda n: not any(
        w in n for w in ("baby", "crib", "bunk", "mezzanine", "hospital", "air mattress", "opened", "day bed")))
    if bed is None:
        return
    spots = [k for k in walls for _ in range(3)]  # the longer walls first, three spots each
    for j, k in enumerate(spots):
        wall = f.room.walls[k]
        s = float(c.rng.uniform(0.25, 0.75)) * wall["length"]
        r = f.at_wall(c, bed, k, s, gap=0.01)
        if r is None:
            continue
        stands = []
        for side in (-1, 1):
            cs = f.next()
            ns = f.pick(cs, ("nightstand",), models.nightstand)
            if ns is None:
                continue
            pos = s + side * (bed.extents[0] / 2 + ns.extents[0] / 2 + float(cs.rng.uniform(0.02, 0.08)))
            placed = f.at_wall(cs, ns, k, pos, gap=0.01)
            if placed is not None:
                stands.append((cs, placed))
        if not stands and j < len(spots) - 1:  # no room for a nightstand beside it here: another spot
            f.b.remove(r[0])
            continue
        for cs, placed in stands:
            if cs.rng.random() < 0.8:
                lamp_on(f, cs, placed)
        return


def _made_desk(rng: np.random.Generator) -> Model:
    m = models.table(rng, "desk")
    m.class_name = "desk"
    return m


def _tall_cabinet(rng: np.random.Generator) -> Model:
    for _ in range(20):
        m = models.cabinet(rng)
        if m.kind == "wardrobe":
            return m
    return m


def _chair_at_desk(f: Furnisher, c: Context, desk: tuple[int, np.ndarray]) -> None:
    dm = next(p.model for p in f.b.placed if p.instance_id == desk[0])
    ch = f.pick(c, ("chair",), lambda r: models.chair(r, stool=False), rooms=("office",), max_height=1.2)
    if ch is None:
        return
    desk_xy = desk[1][:2, 3]
    for pull in (0.0, 0.15, 0.3):
        xy = front_point(desk[1], dm.extents[1] / 2 + ch.extents[1] / 2 - 0.1 + pull)
        if f.free(c, ch, xy, facing(xy, desk_xy) + float(c.rng.normal(0, 8)), 0.02) is not None:
            return


def living(f: Furnisher) -> None:
    walls = f.longest_walls()
    w, d = np.ptp(f.room.poly, axis=0)
    area, perimeter = float(w * d), 2.0 * float(w + d)
    _sofa_group(f, walls)
    if area > 40:
        _sofa_group(f, walls[1:] + walls[:1])
    for _ in range(1 + int(perimeter // 7)):  # bookcases, sideboards, dressers along the walls
        c = f.next()
        piece = f.pick(c, ("shelf", "cabinet", "dresser"), models.shelf, rooms=("living", "office", "bedroom"),
                       name=lambda n: "wardrobe" not in n and "tv" not in n and "television" not in n)
        if piece is not None:
            r = f.along_wall(c, piece)
            if r is not None and piece.class_name != "shelf" and c.rng.random() < 0.3:
                lamp_on(f, c, r)
    if area > 30 and f.next().rng.random() < 0.5:
        c = f.next()
        piano = f.pick(c, ("other_furniture",), None, rooms=("living",), name=lambda n: "piano" in n)
        if piano is not None:
            f.along_wall(c, piano)
    c = f.next()
    if c.rng.random() < 0.6:
        lamp = f.pick(c, ("lamp",), lambda r: models.lamp(r, floor=True), roles=("floor",), rooms=("any",))
        if lamp is not None:
            r = f.free_somewhere(c, lamp, margin=0.35)
            if r is not None:
                _lamp_light(c, f.b, r[0])
    c = f.next()
    if area > 20 and c.rng.random() < 0.7:
        table = f.pick(c, ("table",), lambda r: models.table(r, "dining"), rooms=("living",), max_size=2.4,
                       max_height=0.8, name=lambda n: "coffee" not in n and "child" not in n)
        if table is not None:
            r = f.free_somewhere(c, table, margin=0.8)
            if r is not None:
                chairs_at(f, f.next(), r, rooms=("living",))
    _plants(f, 1 + int(area // 15) + int(f.next().rng.integers(0, 2)))


def _sofa_group(f: Furnisher, walls: list[int]) -> None:
    """A sofa against a wall, a coffee table (on a rug) before it, armchairs at its sides, a TV opposite."""
    c = f.next()
    sofa = f.pick(c, ("sofa",), lambda r: _big_sofa(r), rooms=("living",), max_size=3.0,
                  name=lambda n: "armchair" not in n and "convertible" not in n and "puff" not in n)
    if sofa is None:
        return
    first = int(c.rng.integers(min(2, len(walls))))
    placed = None
    for k in [walls[(first + j) % len(walls)] for j in range(len(walls)) for _ in range(3)]:  # 3 spots a wall
        placed = f.at_wall(c, sofa, k, float(c.rng.uniform(0.35, 0.65)) * f.room.walls[k]["length"], gap=0.03)
        if placed is not None:
            break
    if placed is None:
        return
    sofa_w = placed[1]
    c = f.next()
    table = f.pick(c, ("table",), lambda r: models.table(r, "coffee"), rooms=("living",), max_height=0.55)
    r = None
    if table is not None:
        gap = float(c.rng.uniform(0.35, 0.55))
        xy = front_point(sofa_w, sofa.extents[1] / 2 + gap + table.extents[1] / 2 + 0.05)
        yaw = math.degrees(math.atan2(sofa_w[1, 0], sofa_w[0, 0]))
        r = _on_rug(f, f.next(), table, xy, yaw, sofa.extents[1] / 2 + 0.05) or f.free(c, table, xy, yaw, 0.1)
    if r is not None:
        for side in (-1, 1):
            ca = f.next()
            if ca.rng.random() >= 0.55:
                continue
            arm = f.pick(ca, ("sofa", "chair"), lambda rr: models.sofa(rr), rooms=("living",), max_size=1.1,
                         name=lambda n: "armchair" in n or "chair" in n)
            if arm is not None:
                side_xy = (r[1] @ np.array([side * (table.extents[0] / 2 + arm.extents[1] / 2 + 0.35), 0, 0, 1]))[:2]
                f.free(ca, arm, side_xy, facing(side_xy, r[1][:2, 3]), 0.05)
    _tv_opposite(f, sofa_w)


def _on_rug(f: Furnisher, c: Context, table: Model, xy: np.ndarray, yaw: float, sofa_gap: float
            ) -> tuple[int, np.ndarray] | None:
    """A rug under the coffee table (clear of the sofa and everything else), the table standing on it."""
    if c.rng.random() >= 0.6:
        return None
    for shrink in (1.0, 0.8, 0.6):
        rug = models.rug(c.rng, float(table.extents[0] + shrink * c.rng.uniform(0.8, 1.4)),
                         float(min(table.extents[1] + shrink * c.rng.uniform(0.6, 1.2), 2 * sofa_gap + 0.4)))
        wr = pose(float(xy[0]), float(xy[1]), 0.0, yaw)
        if not f.room.contains_model(rug, wr, 0.1):
            continue
        rid = f.b.add(rug, wr, c.material(rug), support=f.floor_id)
        if rid is None:
            continue
        w = pose(float(xy[0]), float(xy[1]), rug.height, yaw)
        iid = f.b.add(table, w, c.material(table), support=rid)
        if iid is None:
            f.b.remove(rid)
            return None
        return iid, w
    return None


def _big_sofa(rng: np.random.Generator) -> Model:
    for _ in range(20):
        m = models.sofa(rng)
        if m.kind == "sofa":
            return m
    return m


def _tv_opposite(f: Furnisher, sofa_w: np.ndarray) -> None:
    """A TV on a cabinet against the wall the sofa faces."""
    n_sofa = sofa_w[:2, 1]  # the sofa's front direction
    k = min(range(len(f.room.walls)), key=lambda j: float(np.dot(f.room.walls[j]["n"], n_sofa)))
    if float(np.dot(f.room.walls[k]["n"], n_sofa)) > -0.7:
        return
    c = f.next()
    stand = f.pick(c, ("cabinet",), lambda r: _low_cabinet(r), rooms=("living",),
                   name=lambda n: "tv" in n or "television" in n, max_height=0.9)
    if stand is None:
        return
    wall = f.room.walls[k]
    s = float(np.dot(sofa_w[:2, 3] - wall["p"], wall["u"]))
    s = float(np.clip(s, stand.extents[0] / 2 + 0.05, wall["length"] - stand.extents[0] / 2 - 0.05))
    r = f.at_wall(c, stand, k, s, gap=0.02)
    if r is None:
        r = f.along_wall(c, stand, [k])
    if r is None:
        return
    tv = f.pick(c, ("television",), models.television, roles=("surface", "floor"), rooms=("living",),
                max_height=1.0, name=lambda n: "cabinet" not in n and "remote" not in n)
    if tv is not None:
        f.on_top(c, tv, r)


def _low_cabinet(rng: np.random.Generator) -> Model:
    for _ in range(20):
        m = models.cabinet(rng)
        if m.kind == "cabinet" and m.height < 0.8:
            return m
    return m


def office(f: Furnisher) -> None:
    w, d = np.ptp(f.room.poly, axis=0)
    area = abs(float(w * d))
    desks = _desk_rows(f) if area > 20 else []
    for _ in range(int(f.next().rng.integers(1, 3)) if not desks else 0):
        c = f.next()
        desk = f.pick(c, ("desk",), _made_desk, rooms=("office",), max_size=2.0)
        if desk is not None:
            r = f.along_wall(c, desk)
            if r is not None:
                desks.append(r)
    for r in desks:
        c = f.next()
        _chair_at_desk(f, c, r)
        comp = f.pick(c, ("computer",), models.monitor, roles=("surface",), rooms=("any", "office"))
        if comp is not None:
            f.on_top(c, comp, r, dy=-0.1)
    for _ in range(1 + int(2.0 * float(w + d) // 6)):
        c = f.next()
        piece = f.pick(c, ("shelf", "cabinet"), models.shelf, rooms=("office", "living"),
                       name=lambda n: "tv" not in n and "television" not in n)
        if piece is not None:
            f.along_wall(c, piece)
    c = f.next()
    if c.rng.random() < 0.6:
        board = models.whiteboard(c.rng)
        for _ in range(6):
            if _wall_item(f, c, board, float(c.rng.uniform(0.9, 1.1))):
                break
    if area > 25:
        c = f.next()
        table = f.pick(c, ("table",), lambda r: models.table(r, "dining"), rooms=("living", "office"),
                       max_size=2.4, max_height=0.8, name=lambda n: "coffee" not in n and "child" not in n)
        if table is not None:
            r = f.free_somewhere(c, table, margin=0.8)
            if r is not None:
                chairs_at(f, f.next(), r, rooms=("office", "living"))
    _plants(f, int(f.next().rng.integers(1, 3)))


def _desk_rows(f: Furnisher) -> list[tuple[int, np.ndarray]]:
    """Desks in rows facing one way (large offices, four in five)."""
    c = f.next()
    if c.rng.random() >= 0.8:
        return []
    desk = f.pick(c, ("desk",), _made_desk, rooms=("office",), max_size=1.8, max_height=0.8)
    if desk is None:
        return []
    yaw = f.room.walls[0]["yaw"] + 90.0 * int(c.rng.integers(4))
    lo, hi = f.room.poly.min(0) + 0.9, f.room.poly.max(0) - 0.9
    a = math.radians(yaw)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    step = np.abs(rot @ np.array([desk.extents[0] + float(c.rng.uniform(0.2, 0.6)), desk.extents[1] + 1.1]))
    out = []
    for x in np.arange(lo[0], hi[0] + 1e-9, step[0])[:6]:
        for y in np.arange(lo[1], hi[1] + 1e-9, step[1])[:5]:
            r = f.free(c, desk, np.array([x, y]), yaw, 0.1)
            if r is not None:
                out.append(r)
    return out


def corridor(f: Furnisher) -> None:
    walls = f.longest_walls()
    c = f.next()
    console = f.pick(c, ("cabinet", "dresser", "table", "shelf"), lambda r: _low_cabinet(r), rooms=("living",),
                     name=lambda n: "tv" not in n)
    if console is not None and console.extents[1] < 0.5:
        r = f.along_wall(c, console, walls[:2])
        if r is not None and c.rng.random() < 0.5:
            lamp_on(f, c, r)
    c = f.next()
    if c.rng.random() < 0.5:
        rack = f.pick(c, ("other_furniture",), None, rooms=("bedroom",), name=lambda n: "clothes rack" in n)
        if rack is not None and rack.extents[1] < 0.5:
            f.along_wall(c, rack, walls[:2])
    c = f.next()
    if c.rng.random() < 0.6:
        w, d = np.ptp(f.room.poly, axis=0)
        rug = models.rug(c.rng, float(max(w, d) * c.rng.uniform(0.4, 0.7)), float(min(w, d) * c.rng.uniform(0.5, 0.7)))
        yaw = 0.0 if w >= d else 90.0
        centre = f.room.poly.mean(0)
        wr = pose(centre[0], centre[1], 0.0, yaw)
        if f.room.contains_model(rug, wr, 0.05):
            f.b.add(rug, wr, c.material(rug), support=f.floor_id)
    _plants(f, int(f.next().rng.integers(0, 2)))


def _plants(f: Furnisher, n: int) -> None:
    corners = f.corners()
    for _ in range(n):
        c = f.next()
        plant = f.pick(c, ("plant",), None, roles=("floor",), rooms=("living", "any"))
        if plant is None or not corners:
            return
        p = corners[int(c.rng.integers(len(corners)))]
        f.free(c, plant, p, float(c.rng.uniform(0, 360)), 0.02)


def curtains(f: Furnisher) -> None:
    """Curtains at the windows: a panel either side, from above the window to just above the floor."""
    for k, wall in enumerate(f.room.walls):
        for a, bb, _bottom, top, kind in wall["openings"]:
            c = f.next()
            if kind != "window" or c.rng.random() > 0.7:
                continue
            h = min(f.room.height - 0.05, top + 0.25) - 0.02
            width = float(c.rng.uniform(0.35, 0.6))
            mats = c.material(models.curtain(c.rng, width, h))
            for x in (a - width / 2 + 0.1, bb + width / 2 - 0.1):
                m = models.curtain(c.rng, width, h)
                f.at_wall(c, m, k, float(x), z=0.02, gap=0.015, materials=mats)


ESSENTIAL: dict[str, tuple[frozenset[str], ...]] = {
    "kitchen": (frozenset({"sink"}), frozenset({"stove"})),
    "bathroom": (frozenset({"toilet"}), frozenset({"sink"}), frozenset({"bathtub", "shower"})),
    "bedroom": (frozenset({"bed"}), frozenset({"nightstand"})), "living": (frozenset({"sofa"}),),
    "office": (frozenset({"desk"}),),
}
"""What a room of the type must hold (one class of each set); a room that ends up without it is rejected and
resampled (rgbify.scenes.home)."""


def missing(b: SceneBuilder, room_type: str) -> list[str]:
    """The essential pieces (ESSENTIAL) a furnished room of ``room_type`` lacks, as 'a|b' names."""
    have = {p.model.class_name for p in b.placed}
    return ["|".join(sorted(g)) for g in ESSENTIAL.get(room_type, ()) if not g & have]


FURNISH: dict[str, Callable[[Furnisher], None]] = {"kitchen": kitchen, "bathroom": bathroom, "bedroom": bedroom,
                                                   "living": living, "office": office, "corridor": corridor}
CURTAINS = {"bedroom", "living", "office"}
