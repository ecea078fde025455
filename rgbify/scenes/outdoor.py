"""The ``outdoor`` recipe: a street with sidewalks, buildings, poles, signs, vehicles, trees and props on open
ground under the sky (rays that miss everything are sky, class 0), for driving-like depth ranges.

Random streams (rgbify.scenes.context): the street layout ("street"), its surfaces ("surfaces"), the buildings of
each side ("buildings", side), each vehicle ("vehicle", k), pole ("pole", k), tree ("tree", k), prop ("prop", k)
and asset ("asset", k), the sun ("sun") and the sky ("world")."""

from __future__ import annotations

import math

import numpy as np

from rgbify.scenes.builder import Model, Parts, SceneBuilder, Surface, pose
from rgbify.scenes.cameras import PROFILES
from rgbify.scenes.catalog import pick
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.lighting import sky_world, sun_light
from rgbify.scenes.placement import make_camera
from rgbify.scenes.spec import Material

ROAD_Z = 0.02
KERB = 0.15


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --- models ----------------------------------------------------------------------------------------------------

def vehicle(rng: np.random.Generator, cls: str) -> Model:
    if cls == "car":
        length, width, height, wheel_r, clearance = _u(rng, 3.8, 4.9), _u(rng, 1.7, 1.9), _u(rng, 1.4, 1.6), \
            _u(rng, 0.3, 0.34), 0.18
    elif cls == "truck":
        length, width, height, wheel_r, clearance = _u(rng, 5.5, 8.5), _u(rng, 2.1, 2.5), _u(rng, 2.6, 3.6), \
            _u(rng, 0.42, 0.52), 0.35
    else:
        length, width, height, wheel_r, clearance = _u(rng, 10.0, 12.5), 2.5, _u(rng, 3.0, 3.3), 0.5, 0.3
    p = Parts()
    wheel_w = 0.22 if cls == "car" else 0.3
    body_w = width - 2 * wheel_w * 0.2
    if cls == "car":
        lower = height * 0.55
        p.box((0, 0, clearance + (lower - clearance) / 2), (length, body_w, lower - clearance))
        a, b = length * _u(rng, 0.18, 0.28), length * _u(rng, 0.22, 0.32)
        top = [(-length / 2 + b, -body_w / 2 + 0.1), (length / 2 - a, -body_w / 2 + 0.1)]
        pts = []
        for x0, x1 in [(-length / 2 + 0.15, length / 2 - 0.4)]:
            for y in (-body_w / 2 + 0.02, body_w / 2 - 0.02):
                pts += [(x0, y, lower), (x1, y, lower)]
        for x, _y in top:
            for y in (-body_w / 2 + 0.12, body_w / 2 - 0.12):
                pts.append((x, y, height))
        p.of("glass").hull(np.array(pts)).of(None)  # the cabin: windows
    elif cls == "truck":
        cab = _u(rng, 1.6, 2.2)
        cab_h, box_h = height * 0.8 - clearance, height - clearance
        p.box((length / 2 - cab / 2, 0, clearance + cab_h / 2), (cab, body_w, cab_h))
        p.box((-cab / 2 - 0.05, 0, clearance + box_h / 2), (length - cab - 0.1, width, box_h))
    else:
        p.box((0, 0, clearance + (height - clearance) / 2), (length, width, height - clearance))
    axle = length / 2 - max(0.7, length * 0.17)
    p.of("tyre")
    for x in (-axle, axle):
        for y in (-1, 1):
            p.cylinder((x, y * (width / 2 - wheel_w / 2), wheel_r), wheel_r, wheel_w, axis="y", sections=16)
    return p.model(cls, cls, [Surface(height, 0, 0, length / 2 * 0.8, width / 2 * 0.8, "roof", 0.5)],
                   material_hint="car")


def building(rng: np.random.Generator, width: float, depth: float, height: float, facade_prob: float = 0.0
             ) -> Model:
    """A block ``width`` x ``depth`` x ``height`` (its street front toward -y), sometimes a stepped or gabled roof;
    with probability ``facade_prob`` a front of inset windows and a door (:func:`_facade`)."""
    inset = _u(rng, 0.12, 0.25) if rng.random() < facade_prob and height >= 3.0 and width >= 4.0 else 0.0
    p = Parts().box((0, inset / 2, height / 2), (width, depth - inset, height))
    if inset:
        _facade(rng, p, width, depth, height, inset)
    if rng.random() < 0.4:
        h2 = height * _u(rng, 0.15, 0.4)
        p.box((0, -depth * 0.1, height + h2 / 2), (width * _u(rng, 0.5, 0.85), depth * _u(rng, 0.5, 0.75), h2))
    elif rng.random() < 0.3 and height < 12:  # gable roof
        r = _u(rng, 1.5, 4.0)
        pts = [(x, y, height) for x in (-width / 2, width / 2) for y in (-depth / 2, depth / 2)]
        pts += [(x, 0.0, height + r) for x in (-width / 2, width / 2)]
        p.hull(np.array(pts))
    return p.model("building", "building", material_hint="building")


def _facade(rng: np.random.Generator, p: Parts, width: float, depth: float, height: float, inset: float) -> None:
    """The front (y = -depth/2) of a block whose body starts ``inset`` behind it: floors (ground floor 3.3-4.5 m,
    upper ones 2.8-3.4 m) of bays 2.4-4 m wide, each with a window set ``inset`` into the wall (dark glass in a
    frame, a sill), one door on the ground floor; the wall between them as piers and bands. Collision: one box for
    the whole block."""
    n0 = len(p.boxes)
    y0, t = -depth / 2, inset
    yc = y0 + t / 2
    ground, upper = _u(rng, 3.3, 4.5), _u(rng, 2.8, 3.4)
    levels = [0.0, ground]
    while levels[-1] + upper <= height - 0.5:
        levels.append(levels[-1] + upper)
    bays = max(1, int(width // _u(rng, 2.4, 4.0)))
    bay = width / bays
    win_w = bay * _u(rng, 0.4, 0.65)
    sill, win_h = _u(rng, 0.8, 1.0), upper * _u(rng, 0.45, 0.6)
    door_bay = int(rng.integers(bays))
    xs = [-width / 2 + (k + 0.5) * bay for k in range(bays)]
    for f in range(len(levels) - 1):
        z0, z1 = levels[f], levels[f + 1]
        lo, hi = z0 + sill, min(z0 + sill + win_h, z1 - 0.3)
        if f == 0:  # shop-window height on the ground floor
            lo, hi = 0.6, z1 - 0.6
        p.of(None)
        dw = min(win_w, 1.6)
        door = (xs[door_bay] - dw / 2, xs[door_bay] + dw / 2) if f == 0 else (width / 2, width / 2)
        for a, b in ((-width / 2, door[0]), (door[1], width / 2)):  # below the windows (and beside the door)
            if b - a > 1e-3:
                p.box(((a + b) / 2, yc, (z0 + lo) / 2), (b - a, t, lo - z0))
        p.box((0, yc, (hi + z1) / 2), (width, t, z1 - hi))  # above them
        edges = [-width / 2] + [x for c in xs for x in (c - win_w / 2, c + win_w / 2)] + [width / 2]
        for a, b in zip(edges[::2], edges[1::2], strict=True):  # piers between the windows
            if b - a > 1e-3:
                p.box(((a + b) / 2, yc, (lo + hi) / 2), (b - a, t, hi - lo))
        for k, c in enumerate(xs):
            if f == 0 and k == door_bay:  # the door: from the pavement up, set into the wall
                p.of("wood" if rng.random() < 0.6 else "metal")
                p.box((c, y0 + t - 0.03, hi / 2), (dw, 0.06, hi))
                if win_w - dw > 0.02:  # wall beside a door narrower than the bay's window
                    side = (win_w - dw) / 2
                    p.of(None).box((c - dw / 2 - side / 2, yc, (lo + hi) / 2), (side, t, hi - lo))
                    p.box((c + dw / 2 + side / 2, yc, (lo + hi) / 2), (side, t, hi - lo))
                continue
            p.of("facade_glass").box((c, y0 + t - 0.02, (lo + hi) / 2), (win_w, 0.04, hi - lo))
            p.of("metal").box((c, y0 + t - 0.05, (lo + hi) / 2), (0.05, 0.04, hi - lo))  # a mullion
            p.box((c, y0 + t * 0.5 - 0.01, lo - 0.03), (win_w + 0.1, t + 0.02, 0.06))  # the sill
    p.of(None)
    top = levels[-1]
    if height - top > 1e-3:  # the parapet above the last floor
        p.box((0, yc, (top + height) / 2), (width, t, height - top))
    del p.boxes[n0:]
    p.boxes[0] = (np.array([0.0, 0.0, height / 2]), np.array([width / 2, depth / 2, height / 2]))


def street_pole(rng: np.random.Generator) -> Model:
    h = _u(rng, 5.0, 9.0)
    r = _u(rng, 0.07, 0.12)
    arm = _u(rng, 1.0, 2.5)
    p = Parts().cylinder((0, 0, h / 2), r, h, sections=12)
    p.box((0, arm / 2, h - 0.1), (0.08, arm, 0.08))
    p.box((0, arm - 0.2, h - 0.22), (0.25, 0.5, 0.12))
    return p.model("pole", "street_lamp", material_hint="metal")


def traffic_sign(rng: np.random.Generator) -> Model:
    h = _u(rng, 2.0, 3.0)
    s = _u(rng, 0.5, 0.9)
    p = Parts().cylinder((0, 0, h / 2), 0.04, h, sections=10)
    p.of("painted")  # the sign on its metal post
    if rng.random() < 0.5:
        p.cylinder((0, 0.05, h + s / 2 - 0.1), s / 2, 0.03, axis="y", sections=24)
    else:
        p.box((0, 0.05, h + s / 2 - 0.1), (s, 0.03, s))
    return p.model("traffic_sign", "sign", material_hint="metal")


def tree(rng: np.random.Generator) -> Model:
    trunk_h, trunk_r = _u(rng, 1.5, 4.0), _u(rng, 0.1, 0.3)
    p = Parts().of("bark").cylinder((0, 0, trunk_h / 2), trunk_r, trunk_h, sections=12).of(None)
    crown = _u(rng, 2.0, 6.0)
    if rng.random() < 0.3:  # conifer
        pts = [(crown / 2 * math.cos(a), crown / 2 * math.sin(a), trunk_h * 0.6) for a in np.linspace(0, 6.28, 9)[:-1]]
        pts.append((0.0, 0.0, trunk_h * 0.6 + crown * _u(rng, 1.5, 2.5)))
        p.hull(np.array(pts))
    else:
        ch = crown * _u(rng, 0.8, 1.3)
        p.sphere((0, 0, trunk_h + ch / 2 - 0.3), (crown, crown * _u(rng, 0.85, 1.15), ch))
    return p.model("tree", "tree", material_hint="foliage")


def bush(rng: np.random.Generator) -> Model:
    d = _u(rng, 0.5, 2.0)
    h = d * _u(rng, 0.5, 0.9)
    return Parts().sphere((0, 0, h / 2), (d, d * _u(rng, 0.7, 1.3), h)).model("bush", "bush", shading="smooth",
                                                                               material_hint="foliage")


def rock(rng: np.random.Generator) -> Model:
    s = _u(rng, 0.3, 1.8)
    pts = rng.normal(size=(int(rng.integers(8, 20)), 3)) * (1.0, _u(rng, 0.6, 1.0), _u(rng, 0.4, 0.8))
    pts = pts / np.abs(pts).max() * s / 2
    pts[:, 2] -= pts[:, 2].min()
    return Parts().hull(pts).model("rock", "rock", material_hint="rock")


def bench(rng: np.random.Generator) -> Model:
    w, d, h = _u(rng, 1.2, 2.0), _u(rng, 0.4, 0.55), _u(rng, 0.42, 0.48)
    p = Parts().box((0, 0, h - 0.03), (w, d, 0.06))
    p.box((0, -d / 2 + 0.03, h + 0.25), (w, 0.04, 0.35))
    p.of("metal")  # the legs
    for x in (-w / 2 + 0.1, w / 2 - 0.1):
        p.box((x, 0, (h - 0.06) / 2), (0.06, d - 0.05, h - 0.06))
    return p.model("bench", "bench", material_hint="wood")


def fence(rng: np.random.Generator, length: float) -> Model:
    h = _u(rng, 0.8, 1.6)
    p = Parts()
    n = max(2, int(length / _u(rng, 1.5, 2.5)) + 1)
    for x in np.linspace(-length / 2 + 0.05, length / 2 - 0.05, n):
        p.box((float(x), 0, h / 2), (0.08, 0.08, h))
    for z in (h * 0.35, h * 0.85):
        p.box((0, 0.06, z), (length, 0.04, 0.1))
    return p.model("fence", "fence", material_hint=str(rng.choice(["wood", "metal", "painted"])))


# --- the street ------------------------------------------------------------------------------------------------

class Street:
    def __init__(self, rng: np.random.Generator, lay) -> None:  # noqa: ANN001
        self.width = _u(rng, *lay.road_width_m)
        self.sidewalk = _u(rng, *lay.sidewalk_width_m)
        self.length = float(lay.road_length_m)
        self.cross_x = _u(rng, 20.0, 90.0) if rng.random() < lay.cross_road_prob else None
        self.cross_w = _u(rng, *lay.road_width_m)

    @property
    def kerb_y(self) -> float:
        return self.width / 2 + self.sidewalk

    def in_cross(self, x0: float, x1: float, margin: float = 0.0) -> bool:
        if self.cross_x is None:
            return False
        return x1 > self.cross_x - self.cross_w / 2 - margin and x0 < self.cross_x + self.cross_w / 2 + margin


def _slab(b: SceneBuilder, ctx: Context, cls: str, hint: str, x0: float, x1: float, y0: float, y1: float, z0: float,
          z1: float, support: int) -> int | None:
    m = Parts().box(((x0 + x1) / 2, (y0 + y1) / 2, (z1 - z0) / 2), (x1 - x0, y1 - y0, z1 - z0)).model(
        cls, cls, [Surface(z1 - z0, (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, cls, 50.0)],
        material_hint=hint)
    return b.add(m, pose(0, 0, z0), ctx.material(m), support=support)


def build_street(ctx: Context, b: SceneBuilder, st: Street) -> dict[str, int]:
    lay = ctx.config.layout
    g = lay.ground_size_m
    ground = Parts().box((0, 0, -0.25), (g, g, 0.5)).model("ground", "ground", material_hint="ground")
    ids = {"ground": b.add(ground, pose(0, 0, 0), ctx.material(ground), check=False)}
    half = st.length / 2
    ids["road"] = _slab(b, ctx, "road", "road", -half, half, -st.width / 2, st.width / 2, 0.0, ROAD_Z, ids["ground"])
    road_mat = b.objects[-1].material
    xs = [(-half, half)]
    if st.cross_x is not None:
        c0, c1 = st.cross_x - st.cross_w / 2, st.cross_x + st.cross_w / 2
        xs = [(-half, c0), (c1, half)]
        for sgn in (-1, 1):
            y0, y1 = sorted((sgn * st.width / 2, sgn * half))
            m = Parts().box(((c0 + c1) / 2, (y0 + y1) / 2, ROAD_Z / 2), (c1 - c0, y1 - y0, ROAD_Z)).model(
                "road", "cross_road", material_hint="road")
            b.add(m, pose(0, 0, 0), road_mat, support=ids["ground"])
    _markings(ctx, b, st, xs, ids["road"])
    for sgn in (-1, 1):
        y0, y1 = sorted((sgn * st.width / 2, sgn * st.kerb_y))
        for x0, x1 in xs:
            iid = _slab(b, ctx, "sidewalk", "concrete", x0, x1, y0, y1, 0.0, KERB, ids["ground"])
            ids[f"sidewalk{sgn}{x0:.0f}"] = iid or 0
    return ids


def _markings(ctx: Context, b: SceneBuilder, st: Street, xs: list[tuple[float, float]], road_id: int) -> None:
    """Painted lines (one instance of class road): a dashed centre line and solid edge lines, 1 mm thick."""
    rng = ctx.rng
    p = Parts()
    t, w = 0.001, float(rng.uniform(0.1, 0.15))
    dash, gap = float(rng.uniform(2.0, 4.0)), float(rng.uniform(4.0, 9.0))
    for x0, x1 in xs:
        x = x0 + 1.0
        while x + dash < x1 - 1.0:
            p.box((x + dash / 2, 0.0, t / 2), (dash, w, t))
            x += dash + gap
        for sgn in (-1, 1):
            p.box(((x0 + x1) / 2, sgn * (st.width / 2 - 0.3), t / 2), (x1 - x0 - 0.5, w, t))
    m = p.model("road", "road_markings", material_hint="painted")
    yellow = rng.random() < 0.3
    b.add(m, pose(0, 0, ROAD_Z), Material(base_color=(0.8, 0.55, 0.05) if yellow else (0.8, 0.8, 0.78),
                                          roughness=0.6), support=road_id)


def populate(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> None:
    lay = ctx.config.layout
    half = st.length / 2
    # buildings along both sides, sometimes set back behind a strip of ground
    for sgn in (-1, 1):
        side = ctx.child("buildings", sgn + 1)
        rng = side.rng
        x = -half + _u(rng, 0, 10)
        count = 0
        target = int(rng.integers(lay.buildings_per_side[0], lay.buildings_per_side[1] + 1))
        while x < half - 8 and count < target * 3:
            w, d = _u(rng, 8, 30), _u(rng, 8, 25)
            h = float(np.exp(rng.uniform(np.log(lay.building_height_m[0]), np.log(lay.building_height_m[1]))))
            setback = _u(rng, 0.2, 8.0)
            if not st.in_cross(x, x + w, 2.0):
                m = building(rng, w, d, h, lay.facade_prob)
                y = sgn * (st.kerb_y + setback + d / 2)
                b.add(m, pose(x + w / 2, y, 0.0, 0.0 if sgn > 0 else 180.0), side.material(m),
                      support=ids["ground"])
            x += w + (_u(rng, 0, 12) if rng.random() < 0.6 else _u(rng, 15, 40))
            count += 1
    _vehicles(ctx, b, st, ids)
    _street_furniture(ctx, b, st, ids)
    if ctx.catalog is not None:
        _people_and_bicycles(ctx, b, st, ids)


def _vehicles(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> None:
    lay = ctx.config.layout
    lane = st.width / 4
    for k in range(int(ctx.rng.integers(lay.vehicles[0], lay.vehicles[1] + 1))):
        c = ctx.child("vehicle", k)
        rng = c.rng
        cls = str(rng.choice(["car", "car", "car", "truck", "bus"]))
        m = vehicle(rng, cls)
        turn = 0.0
        if cls == "car" and ctx.catalog is not None:
            cc = ctx.child("catalog_vehicle", k)
            if cc.rng.random() < lay.catalog_prob:
                real = pick(ctx.catalog, cc.rng, ("car",), ("floor",), max_size=5.0, max_height=2.0)
                if real is not None:  # a catalogue model's length runs along its y axis
                    m, turn = real, -90.0
        for _try in range(8):
            side = 1 if rng.random() < 0.5 else -1
            parked = rng.random() < 0.35
            y = side * (st.width / 2 - 1.2 if parked else lane + rng.normal(0, 0.25))
            xv = _u(rng, -100.0, 120.0)
            yaw = (0.0 if side < 0 else 180.0) + float(rng.normal(0, 3))
            if b.add(m, pose(xv, y, ROAD_Z, yaw + turn), c.material(m), support=ids["road"]) is not None:
                break


def _people_and_bicycles(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> None:
    """Pedestrians on the sidewalks, facing along them or across (some standing, turned any way), and bicycles
    parked at the kerb, along the stretch of street the cameras look at (catalogue models)."""
    lay = ctx.config.layout
    rng = ctx.child("people").rng
    for k in range(int(rng.integers(lay.pedestrians[0], lay.pedestrians[1] + 1))):
        c = ctx.child("pedestrian", k)
        m = pick(ctx.catalog, c.rng, ("person",), ("floor",), name=lambda n: "child" not in n)
        if m is not None:
            yaw = float(c.rng.choice([0.0, 180.0]) + c.rng.normal(0, 10)) if c.rng.random() < 0.7 else \
                float(c.rng.uniform(0, 360))
            _on_sidewalk(c, b, st, m, ids, edge=False, yaw=yaw - 90.0, x_range=(-130.0, 80.0))
    for k in range(int(rng.integers(lay.bicycles[0], lay.bicycles[1] + 1))):
        c = ctx.child("bicycle", k)
        m = pick(ctx.catalog, c.rng, ("bicycle",), ("floor",), min_height=0.6)
        if m is not None:
            _on_sidewalk(c, b, st, m, ids, edge=False, yaw=float(c.rng.choice([0.0, 180.0])) - 90.0,
                         x_range=(-130.0, 80.0), kerb=True)


def _street_furniture(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> None:
    rng, lay = ctx.rng, ctx.config.layout
    for k in range(int(rng.integers(lay.poles[0], lay.poles[1] + 1))):
        c = ctx.child("pole", k)
        m = street_pole(c.rng) if c.rng.random() < 0.7 else traffic_sign(c.rng)
        _on_sidewalk(c, b, st, m, ids, edge=True)
    for k in range(int(rng.integers(lay.trees[0], lay.trees[1] + 1))):
        c = ctx.child("tree", k)
        m = tree(c.rng)
        if c.rng.random() < 0.5:
            _on_sidewalk(c, b, st, m, ids, edge=False)
        else:
            _on_ground(c, b, st, m, ids)
    for k in range(int(rng.integers(lay.props[0], lay.props[1] + 1))):
        c = ctx.child("prop", k)
        kind = str(c.rng.choice(["bench", "bush", "rock", "fence", "sign"]))
        if kind == "bench":
            _on_sidewalk(c, b, st, bench(c.rng), ids, edge=False)
        elif kind == "sign":
            _on_sidewalk(c, b, st, traffic_sign(c.rng), ids, edge=True)
        elif kind == "fence":
            _on_ground(c, b, st, fence(c.rng, _u(c.rng, 3, 15)), ids, yaw=0.0)
        else:
            _on_ground(c, b, st, bush(c.rng) if kind == "bush" else rock(c.rng), ids)
    if ctx.assets:
        for k in range(int(rng.integers(1, 4))):
            c = ctx.child("asset", k)
            c.assets.place_large(c, b, lambda r=c.rng: np.array([_u(r, -50, 150), r.choice([-1, 1]) *
                                                                 _u(r, st.kerb_y + 0.5, st.kerb_y + 8)]),
                                 ids["ground"], None)


def _on_sidewalk(ctx: Context, b: SceneBuilder, st: Street, m: Model, ids: dict[str, int], edge: bool,
                 yaw: float | None = None, x_range: tuple[float, float] = (-80.0, 180.0), kerb: bool = False) -> None:
    """``m`` on a sidewalk: at its kerb edge facing the road (``edge``), else anywhere across it facing along it
    (or turned by ``yaw``); ``kerb``: just inside the kerb, its own yaw."""
    rng = ctx.rng
    given = yaw
    for _ in range(8):
        sgn = 1 if rng.random() < 0.5 else -1
        x = _u(rng, *x_range)
        if st.in_cross(x - 2, x + 2):
            continue
        mid, spread = st.width / 2 + st.sidewalk / 2, max(0.0, st.sidewalk / 2 - m.radius_xy)
        y = sgn * (st.width / 2 + 0.4) if edge else sgn * (mid + _u(rng, -spread, spread))
        if kerb:
            y = sgn * (st.width / 2 + 0.1 + m.radius_xy)
        if given is not None:
            yaw = given
        else:
            yaw = (180.0 if sgn > 0 else 0.0) if edge else \
                float(rng.choice([0.0, 180.0]) + (90.0 if sgn > 0 else -90.0))
        sup = next((v for k, v in ids.items() if k.startswith(f"sidewalk{sgn}")), ids["ground"])
        if b.add(m, pose(x, y, KERB, yaw), ctx.material(m), support=sup) is not None:
            return


def _on_ground(ctx: Context, b: SceneBuilder, st: Street, m: Model, ids: dict[str, int],
               yaw: float | None = None) -> None:
    rng = ctx.rng
    for _ in range(8):
        sgn = 1 if rng.random() < 0.5 else -1
        x = _u(rng, -80.0, 200.0)
        y = sgn * (st.kerb_y + m.radius_xy + _u(rng, 0.1, 25.0))
        if st.in_cross(x - m.radius_xy, x + m.radius_xy, 1.0):
            continue
        a = float(rng.uniform(0, 360)) if yaw is None else yaw
        if b.add(m, pose(x, y, 0.0, a), ctx.material(m), support=ids["ground"]) is not None:
            return


def sample_outdoor(ctx: Context) -> Draft:
    b = SceneBuilder()
    st = Street(ctx.child("street").rng, ctx.config.layout)
    ids = build_street(ctx.child("surfaces"), b, st)
    populate(ctx.child("populate"), b, st, ids)
    sun = ctx.child("sun")
    el = math.radians(sun.rng.uniform(12, 70))
    az = sun.rng.uniform(0, 2 * math.pi)
    d = np.array([-math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el)])
    b.lights.append(sun_light(sun, d, sun.rng.uniform(1.5, 5.0), round(float(sun.rng.uniform(4500, 6500)), 1)))
    world = sky_world(ctx.child("world"), sun=b.lights[-1])

    def sample_camera(r: np.random.Generator):  # noqa: ANN202
        cc = ctx.config.camera
        for _ in range(30):
            mode = r.random()
            x = _u(r, -120.0, 40.0)
            kitti = mode < 0.7 and "kitti" in cc.profiles  # a car's forward camera: KITTI's height and lens
            if mode < 0.7:  # driving
                y, h = r.choice([-1, 1]) * st.width / 4 + r.normal(0, 0.3), _u(r, *cc.height_m)
                if kitti:
                    h = PROFILES["kitti"].height_m + float(r.normal(0.0, 0.02))
                z0 = ROAD_Z
            elif mode < 0.9:  # pedestrian on the sidewalk
                y, h, z0 = r.choice([-1, 1]) * _u(r, st.width / 2 + 0.3, st.kerb_y - 0.3), _u(r, 1.4, 1.8), KERB
            else:  # elevated
                y, h, z0 = _u(r, -st.width / 2, st.width / 2), _u(r, 4.0, 12.0), ROAD_Z
            eye = np.array([x, y, z0 + h])
            probe = np.array([[eye[0], eye[1], 0.3, 0.3, 1.0, 0.0, eye[2] - 0.3, eye[2] + 0.3]])
            if b.colliding_ids(probe):
                continue
            yaw = (0.0 if r.random() < 0.8 else math.pi) + math.radians(r.normal(0, 12 if mode < 0.7 else 30))
            pitch = math.radians(_u(r, *cc.pitch_deg) - (15.0 if mode >= 0.9 else 0.0))
            if kitti:  # along the lane, level: a camera fixed to a car
                yaw = (0.0 if r.random() < 0.8 else math.pi) + math.radians(r.normal(0, 3))
                pitch = math.radians(float(np.clip(r.normal(0.0, 1.0), -3.0, 3.0)))
            target = eye + np.array([math.cos(yaw), math.sin(yaw), math.tan(pitch)])
            return make_camera(ctx, r, eye, target, pitch_range=(-60.0, 30.0), roll=not kitti)
        raise Reject("camera_inside_geometry", "no free spot for the camera")

    meta = {"street": {"road_width_m": round(st.width, 3), "sidewalk_m": round(st.sidewalk, 3),
                       "crossing": st.cross_x is not None}}
    return Draft(builder=b, world=world, sample_camera=sample_camera, meta=meta, enclosed=False)
