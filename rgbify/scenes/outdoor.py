"""The ``outdoor`` recipe: a street with sidewalks, buildings, poles, signs, vehicles, trees and props on open
ground under the sky (rays that miss everything are sky, class 0), for driving-like depth ranges.

Random streams (rgbify.scenes.context): the street layout ("street"), its surfaces ("surfaces"), the buildings of
each side ("buildings", side), each vehicle ("vehicle", k), pole ("pole", k), tree ("tree", k), prop ("prop", k)
and asset ("asset", k), the sun ("sun") and the sky ("world")."""

from __future__ import annotations

import math

import numpy as np

from rgbify.scenes import rider as riders
from rgbify.scenes.builder import Model, Parts, SceneBuilder, Surface
from rgbify.scenes.cameras import PROFILES
from rgbify.scenes.catalog import CatalogError, pick
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.geometry import GeometryError
from rgbify.scenes.lighting import sky_world, sun_light
from rgbify.scenes.placement import make_camera
from rgbify.scenes.road import Road, Terrain, smoothstep
from rgbify.scenes.spec import Material

ROAD_Z = 0.02
KERB = 0.15
RIDE_PROB = 0.75
"""Share of cyclists that ride their bicycle (where they can: :func:`_rider`); the others walk it."""

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
    """The street's layout: widths, the crossing, and (rgbify.scenes.road) its centreline (straight or an arc),
    grade and the relief of the ground beyond it. Positions along it are road coordinates (s, t)."""

    def __init__(self, rng: np.random.Generator, lay) -> None:  # noqa: ANN001
        self.width = _u(rng, *lay.road_width_m)
        self.sidewalk = _u(rng, *lay.sidewalk_width_m)
        self.length = float(lay.road_length_m)
        self.cross_x = _u(rng, 20.0, 90.0) if rng.random() < lay.cross_road_prob else None
        self.cross_w = _u(rng, *lay.road_width_m)
        k = 0.0
        if rng.random() < lay.curve_prob:
            lo, hi = lay.curve_radius_m
            k = float(rng.choice([-1.0, 1.0])) / math.exp(rng.uniform(math.log(lo), math.log(hi)))
        grade = _u(rng, -lay.grade_max, lay.grade_max) if rng.random() < lay.grade_prob else 0.0
        self.relief = _u(rng, *lay.relief_m) if rng.random() < lay.relief_prob else 0.0
        self.road = Road(k, grade)
        self.terrain: Terrain | None = None

    @property
    def kerb_y(self) -> float:
        return self.width / 2 + self.sidewalk

    def on_strip(self, m: Model, world_from_model: np.ndarray, lo: float, hi: float) -> bool:
        """Whether the base of ``m`` placed by ``world_from_model`` (the bottom corners of the boxes that reach down
        to it) lies between t = lo and t = hi (on the road, on a sidewalk: a straight body on a curve's chord)."""
        pts = []
        for c, h in m.boxes:
            if c[2] - h[2] <= 0.02:
                pts += [(c[0] + sx * h[0], c[1] + sy * h[1], c[2] - h[2], 1.0) for sx in (-1, 1) for sy in (-1, 1)]
        if not pts:
            return True
        w = np.asarray(pts) @ world_from_model.T
        _, t = self.road.st(w[:, 0], w[:, 1])
        return bool(np.all((t >= lo) & (t <= hi)))

    def cross_reach(self, sgn: int) -> float:
        """How far from the centreline the cross road runs on side ``sgn`` (on a curve's inner side: 0.6 R)."""
        k = self.road.curvature
        return self.length / 2 if k * sgn <= 0 else min(self.length / 2, 0.6 / abs(k))

    def cross_offset(self, xy: np.ndarray) -> float:
        """Distance of a world point from the cross road's centreline (inf without a crossing)."""
        if self.cross_x is None:
            return math.inf
        c = self.road.xy(self.cross_x, 0.0)
        return abs(float(np.dot(np.asarray(xy)[:2] - c, self.road.tangent(self.cross_x))))

    def in_cross(self, s: float, t: float, radius: float, margin: float = 0.0) -> bool:
        """Whether a disc of ``radius`` at road coordinates (s, t) comes within ``margin`` of the cross road."""
        return self.cross_offset(self.road.xy(s, t)) < self.cross_w / 2 + radius + margin

    def cross_end(self, t: float, side: int) -> float:
        """The s at which the line of constant ``t`` meets the cross road's edge on ``side`` (-1: before it)."""
        k, half = self.road.curvature, self.cross_w / 2
        if k == 0.0:
            return self.cross_x + side * half
        rho = 1.0 / k - t
        return self.cross_x + side * math.asin(max(-1.0, min(1.0, half / rho))) / k

    def spans(self, t0: float, t1: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """The stretches of a strip from t0 to t1 along the whole street, cut where the cross road passes: each
        (s range at t0, s range at t1)."""
        half = self.length / 2
        if self.cross_x is None:
            return [((-half, half), (-half, half))]
        return [((-half, self.cross_end(t0, -1)), (-half, self.cross_end(t1, -1))),
                ((self.cross_end(t0, 1), half), (self.cross_end(t1, 1), half))]


def _solid(b: SceneBuilder, ctx: Context, cls: str, kind: str, hint: str, mesh: tuple[np.ndarray, np.ndarray],
           support: int, material: Material | tuple[Material, ...] | None = None) -> int:
    """A structural piece (ground, road, sidewalk) of world-space triangles; it takes no room in the builder's
    collision boxes (what stands on it is placed by road coordinates)."""
    m = Parts().mesh(mesh).model(cls, kind, material_hint=hint)
    iid = b.add(m, np.eye(4), material if material is not None else ctx.material(m), support=support, solid=False)
    assert iid is not None
    return iid


def _flat_near(st: Street, plots: list[tuple[np.ndarray, float, float, float]]) -> list:
    """Distance masks (0 where the ground keeps to the road plane, 1 where it undulates freely) for the road and
    its sidewalks, the cross road and each building plot (centre xy, yaw radians, half width, half depth): flat
    within 8 m of them (more than a 5 m cell's diagonal, so no triangle reaching under them rises), faded in over
    the next 8-12 m."""
    half, road = st.length / 2, st.road

    def along(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        s, t = road.st(gx, gy)
        d = np.where(np.abs(s) <= half, np.abs(t), np.hypot(np.abs(s) - half, t))
        return smoothstep((d - st.kerb_y - 8.0) / 12.0)

    out = [along]
    if st.cross_x is not None:
        c, tan = road.xy(st.cross_x, 0.0), road.tangent(st.cross_x)

        def across(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
            d = np.abs((gx - c[0]) * tan[0] + (gy - c[1]) * tan[1]) - st.cross_w / 2
            return smoothstep((d - 8.0) / 12.0)

        out.append(across)
    for centre, yaw, hw, hd in plots:
        def plot(gx: np.ndarray, gy: np.ndarray, c=centre, a=yaw, w=hw, d=hd) -> np.ndarray:  # noqa: ANN001
            lx = (gx - c[0]) * math.cos(a) + (gy - c[1]) * math.sin(a)
            ly = -(gx - c[0]) * math.sin(a) + (gy - c[1]) * math.cos(a)
            dist = np.hypot(np.maximum(np.abs(lx) - w, 0.0), np.maximum(np.abs(ly) - d, 0.0))
            return smoothstep((dist - 8.0) / 8.0)

        out.append(plot)
    return out


def build_street(ctx: Context, b: SceneBuilder, st: Street, plots: list) -> dict[str, int]:
    lay, road = ctx.config.layout, st.road
    st.terrain = Terrain.make(road, ctx.child("terrain").rng, lay.ground_size_m, st.relief, _flat_near(st, plots))
    ids = {"ground": _solid(b, ctx, "ground", "ground", "ground", st.terrain.mesh(), 0)}
    half = st.length / 2
    ids["road"] = _solid(b, ctx, "road", "road", "road", road.ribbon((-half, half), (-half, half), -st.width / 2,
                                                                     st.width / 2, 0.0, ROAD_Z), ids["ground"])
    road_mat = b.objects[-1].material
    xs = [(-half, half)]
    if st.cross_x is not None:
        xs = [(-half, st.cross_x - st.cross_w / 2), (st.cross_x + st.cross_w / 2, half)]
        c, n = road.xy(st.cross_x, 0.0), road.xy(st.cross_x, 1.0) - road.xy(st.cross_x, 0.0)
        tan = road.tangent(st.cross_x)
        for sgn in (-1, 1):
            a, e = st.width / 2 - 0.01, st.cross_reach(sgn)
            corners = [c + sgn * u * n + v * tan * st.cross_w / 2 for u, v in ((a, -1), (e, -1), (e, 1), (a, 1))]
            _solid(b, ctx, "road", "cross_road", "road", _plane_slab(road, corners, sgn < 0), ids["ground"],
                   road_mat)
    _markings(ctx, b, st, xs, ids["road"])
    for sgn in (-1, 1):
        for s_in, s_out in st.spans(sgn * st.width / 2, sgn * st.kerb_y):
            iid = _solid(b, ctx, "sidewalk", "sidewalk", "concrete", road.ribbon(
                s_in, s_out, sgn * st.width / 2, sgn * st.kerb_y, 0.0, KERB), ids["ground"])
            ids[f"sidewalk{sgn}{s_in[0]:.0f}"] = iid
    return ids


def _plane_slab(road: Road, corners: list[np.ndarray], flip: bool, h0: float = 0.0, h1: float = ROAD_Z
                ) -> tuple[np.ndarray, np.ndarray]:
    """A closed slab over the quadrilateral ``corners`` (counter-clockwise unless ``flip``), h0 to h1 above the
    road plane."""
    if flip:
        corners = corners[::-1]
    c = np.asarray(corners, dtype=np.float64)
    z = road.z(c[:, 0])
    v = np.concatenate([np.column_stack([c, z + h0]), np.column_stack([c, z + h1])])
    f = [[4, 5, 6], [4, 6, 7], [0, 2, 1], [0, 3, 2]]
    for i in range(4):
        j = (i + 1) % 4
        f += [[i, j, 4 + j], [i, 4 + j, 4 + i]]
    return v, np.asarray(f, dtype=np.int64)


def _markings(ctx: Context, b: SceneBuilder, st: Street, xs: list[tuple[float, float]], road_id: int) -> None:
    """Painted lines (one instance of class road): a dashed centre line and solid edge lines, 1 mm thick, bent
    along the road."""
    rng, road = ctx.rng, st.road
    p = Parts()
    t, w = 0.001, float(rng.uniform(0.1, 0.15))
    dash, gap = float(rng.uniform(2.0, 4.0)), float(rng.uniform(4.0, 9.0))
    for x0, x1 in xs:
        x = x0 + 1.0
        while x + dash < x1 - 1.0:
            p.mesh(road.ribbon((x, x + dash), (x, x + dash), -w / 2, w / 2, ROAD_Z, ROAD_Z + t))
            x += dash + gap
        for sgn in (-1, 1):
            yc = sgn * (st.width / 2 - 0.3)
            p.mesh(road.ribbon((x0 + 0.25, x1 - 0.25), (x0 + 0.25, x1 - 0.25), yc - w / 2, yc + w / 2, ROAD_Z,
                               ROAD_Z + t))
    m = p.model("road", "road_markings", material_hint="painted")
    yellow = rng.random() < 0.3
    b.add(m, np.eye(4), Material(base_color=(0.8, 0.55, 0.05) if yellow else (0.8, 0.8, 0.78), roughness=0.6),
          support=road_id, solid=False)


def plan_buildings(ctx: Context, st: Street) -> list[tuple[Model, np.ndarray, tuple, tuple]]:
    """The buildings along both sides, sometimes set back behind a strip of ground: (model, world_from_model,
    materials, plot) each, plot = (centre xy, yaw radians, half width, half depth); on a curve's inner side
    spaced wider along the centreline (its fronts converge); ones that would overlap left out."""
    lay, road = ctx.config.layout, st.road
    half = st.length / 2
    out = []
    scratch = SceneBuilder()
    for sgn in (-1, 1):
        side = ctx.child("buildings", sgn + 1)
        rng = side.rng
        x = -half + _u(rng, 0, 10)
        count = 0
        target = int(rng.integers(lay.buildings_per_side[0], lay.buildings_per_side[1] + 1))
        while x < half - 8 and count < target * 3:
            w, d = _u(rng, 8, 30), _u(rng, 8, 25)
            h = math.exp(rng.uniform(math.log(lay.building_height_m[0]), math.log(lay.building_height_m[1])))
            setback = _u(rng, 0.2, 8.0)
            inner = road.curvature * sgn > 0
            if inner:  # a straight front's corners come nearer an inner kerb than its middle
                setback += (w / 2) ** 2 / (2.0 * (1.0 / abs(road.curvature) - st.kerb_y - setback))
            t = sgn * (st.kerb_y + setback + d / 2)
            fac = 1.0 / (1.0 - abs(road.curvature) * (abs(t) + d / 2)) if inner else 1.0
            sm = x + w / 2 * fac
            if not st.in_cross(sm, t, math.hypot(w / 2, d / 2), 2.0) and sm + w / 2 * fac < half:
                m = building(rng, w, d, h, lay.facade_prob)
                world = road.frame(sm, t, 0.0, 0.0 if sgn > 0 else 180.0)
                mat = side.material(m)
                if scratch.add(m, world, mat, lean=True) is not None:
                    plot = (road.xy(sm, t), road.heading(sm), w / 2, d / 2)
                    out.append((m, world, mat, plot))
            x += (w + (_u(rng, 0, 12) if rng.random() < 0.6 else _u(rng, 15, 40))) * fac
            count += 1
    return out


def populate(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int], buildings: list) -> dict:
    for m, world, mat, _plot in buildings:
        b.add(m, world, mat, support=ids["ground"], lean=True)
    rows = _parked_rows(ctx, b, st, ids)
    _vehicles(ctx, b, st, ids)
    _street_furniture(ctx, b, st, ids)
    riders: list[list[int]] = []
    if ctx.catalog is not None:
        _people_and_bicycles(ctx, b, st, ids)
        riders = _cyclists(ctx, b, st, ids)
    return {"parked_rows": rows, "cyclists": riders}


def _car(ctx: Context, c: Context, k: int, cls: str, phase: str = "catalog_vehicle") -> tuple[Model, float]:
    """A vehicle of ``cls`` (a car from the catalogue with probability catalog_prob) and the turn that lays its
    length along its model x axis."""
    m, turn = vehicle(c.rng, cls), 0.0
    if cls == "car" and ctx.catalog is not None:
        cc = ctx.child(phase, k)
        if cc.rng.random() < ctx.config.layout.catalog_prob:
            real = pick(ctx.catalog, cc.rng, ("car",), ("floor",), max_size=5.0, max_height=2.0)
            if real is not None:  # a catalogue model's length runs along its y axis
                m, turn = real, -90.0
    return m, turn


def _vehicles(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> None:
    lay = ctx.config.layout
    lane = st.width / 4
    for k in range(int(ctx.rng.integers(lay.vehicles[0], lay.vehicles[1] + 1))):
        c = ctx.child("vehicle", k)
        rng = c.rng
        cls = str(rng.choice(["car", "car", "car", "truck", "bus"]))
        m, turn = _car(ctx, c, k, cls)
        for _try in range(8):
            side = 1 if rng.random() < 0.5 else -1
            parked = rng.random() < 0.35
            y = side * (st.width / 2 - 1.2 if parked else lane + rng.normal(0, 0.25))
            xv = _u(rng, -100.0, 120.0)
            yaw = (0.0 if side < 0 else 180.0) + float(rng.normal(0, 3))
            world = st.road.frame(xv, y, ROAD_Z, yaw + turn)
            if not st.on_strip(m, world, -st.width / 2 + 0.1, st.width / 2 - 0.1):
                continue
            if b.add(m, world, c.material(m), support=ids["road"], lean=True) is not None:
                break


def _parked_rows(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> int:
    """Rows of cars parked bumper to bumper along a kerb (facing the side's traffic) on the stretch of street
    the cameras look at; a car that would stand on the crossing or against another is left out. Returns the
    number of rows."""
    lay, rows = ctx.config.layout, 0
    for sgn in (-1, 1):
        c = ctx.child("parked_row", sgn + 1)
        if c.rng.random() >= lay.parked_row_prob:
            continue
        rows += 1
        s = _u(c.rng, -125.0, 15.0)
        for k in range(int(c.rng.integers(lay.parked_row_cars[0], lay.parked_row_cars[1] + 1))):
            cc = ctx.child("parked_car", sgn + 1, k)
            m, turn = _car(ctx, cc, k, "car" if cc.rng.random() < 0.9 else "truck", "parked_catalog")
            ext = m.extents
            length, width = (ext[1], ext[0]) if turn else (ext[0], ext[1])
            sm, t = s + length / 2, sgn * (st.width / 2 - 0.15 - width / 2 - _u(cc.rng, 0.0, 0.15))
            yaw = (0.0 if sgn < 0 else 180.0) + float(cc.rng.normal(0, 1.0))
            world = st.road.frame(sm, t, ROAD_Z, yaw + turn)
            if not st.in_cross(sm, t, length / 2, 1.0) and st.on_strip(m, world, -st.width / 2 + 0.05,
                                                                         st.width / 2 - 0.05):
                b.add(m, world, cc.material(m), support=ids["road"], lean=True)
            s += length + _u(cc.rng, 0.5, 2.5)
    return rows


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


def _cyclists(ctx: Context, b: SceneBuilder, st: Street, ids: dict[str, int]) -> list[list[int]]:
    """Cyclists in the lane near the kerb, with the traffic of their side: a catalogue bicycle (its front found by
    :func:`riders.bike_front`) ridden by a catalogue adult posed on it (class rider, :func:`_rider`), or, where that
    adult cannot ride it, walked by them standing beside it on the lane's side, level with its handlebar. Two
    instances (bicycle, rider or person); returns their ids, [bicycle, rider or person] per cyclist. (The
    catalogue's seated people sit as on a chair and cannot ride: docs/scenes.md, "Streets".)"""
    lay = ctx.config.layout
    out = []
    n = int(ctx.child("cyclists").rng.integers(lay.cyclists[0], lay.cyclists[1] + 1))
    for k in range(n):
        c = ctx.child("cyclist", k)
        bike = pick(ctx.catalog, c.rng, ("bicycle",), ("floor",), min_height=0.6)
        person = pick(ctx.catalog, c.rng, ("person",), ("floor",), name=lambda s: "child" not in s)
        if bike is None or person is None:
            continue
        ride = _ride(ctx, k)
        rider = None
        if ride is not None:
            bike, person, rider = ride
        front = riders.bike_front(bike)
        bike_mat, person_mat = c.material(bike), c.material(person)
        for _ in range(8):
            side = 1 if c.rng.random() < 0.5 else -1
            s = _u(c.rng, -110.0, 40.0)
            t = side * (st.width / 2 - 0.5 - abs(float(c.rng.normal(0, 0.25))))
            yaw = (0.0 if side < 0 else 180.0) + float(c.rng.normal(0, 3))
            world = st.road.frame(s, t, ROAD_Z, yaw - 90.0 * front)
            if not st.on_strip(bike, world, -st.width / 2 + 0.1, st.width / 2 - 0.1):
                continue
            bid = b.add(bike, world, bike_mat, support=ids["road"], lean=True)
            if bid is None:
                continue
            if rider is not None:
                pid = b.add(rider, st.road.frame(s, t, ROAD_Z, yaw - 90.0), person_mat, support=bid, lean=True,
                            ignore=(bid,))
                if pid is not None:
                    out.append([bid, pid])
                    break
            beside = t - side * (bike.extents[0] / 2 + person.extents[0] / 2 + 0.08)
            ahead = s + (0.25 if side < 0 else -0.25)
            pid = b.add(person, st.road.frame(ahead, beside, ROAD_Z, yaw - 90.0), person_mat, support=ids["road"],
                        lean=True)
            if pid is None:
                b.remove(bid)
                continue
            out.append([bid, pid])
            break
    return out


def _ride(ctx: Context, k: int) -> tuple[Model, Model, Model] | None:
    """With probability RIDE_PROB, cyclist ``k`` rides: (bicycle, person, the person posed on it as a rider,
    rgbify.scenes.rider), drawn from its own stream: one of the people that can be posed and a bicycle whose
    saddle is at least riders.RIDER_SADDLE of their height up (not a child's bicycle); else (or where none can be made)
    None."""
    rc = ctx.child("rides", k)
    if rc.rng.random() >= RIDE_PROB:
        return None
    people = [m for m in ctx.catalog.select("person") if m.key in riders.RIDERS]  # type: ignore[union-attr]
    if not people:
        return None
    who = people[int(rc.rng.integers(len(people)))]
    try:
        bikes = riders.rideable(who, ctx.catalog.select("bicycle"))  # type: ignore[union-attr]
        if not bikes:
            return None
        which, _ = bikes[int(rc.rng.integers(len(bikes)))]
        bike, person = which.model(rc.rng), who.model(rc.rng, 0.0)
        return bike, person, riders.rider_model(person, who.key, bike, which.key, riders.bike_front(bike))
    except (ValueError, CatalogError, GeometryError):
        return None


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
            _on_ground(c, b, st, bush(c.rng) if kind == "bush" else rock(c.rng), ids, max_lean_deg=12.0)
    if ctx.assets:
        for k in range(int(rng.integers(1, 4))):
            c = ctx.child("asset", k)
            m = c.assets.pick_large(c.rng)
            if m is not None:
                _on_ground(c, b, st, m, ids, far=(0.5, 8.0), s_range=(-50.0, 150.0))


def _on_sidewalk(ctx: Context, b: SceneBuilder, st: Street, m: Model, ids: dict[str, int], edge: bool,
                 yaw: float | None = None, x_range: tuple[float, float] = (-80.0, 180.0), kerb: bool = False) -> None:
    """``m`` on a sidewalk: at its kerb edge facing the road (``edge``), else anywhere across it facing along it
    (or turned by ``yaw`` from the road's heading); ``kerb``: just inside the kerb, its own yaw."""
    rng = ctx.rng
    given = yaw
    for _ in range(8):
        sgn = 1 if rng.random() < 0.5 else -1
        x = _u(rng, *x_range)
        mid, spread = st.width / 2 + st.sidewalk / 2, max(0.0, st.sidewalk / 2 - m.radius_xy)
        y = sgn * (st.width / 2 + 0.4) if edge else sgn * (mid + _u(rng, -spread, spread))
        if kerb:
            y = sgn * (st.width / 2 + 0.1 + m.radius_xy)
        if st.in_cross(x, y, 2.0):
            continue
        if given is not None:
            yaw = given
        else:
            yaw = (180.0 if sgn > 0 else 0.0) if edge else \
                float(rng.choice([0.0, 180.0]) + (90.0 if sgn > 0 else -90.0))
        sup = next((v for k, v in ids.items() if k.startswith(f"sidewalk{sgn}")), ids["ground"])
        world = st.road.frame(x, y, KERB, yaw)
        lo, hi = sorted((sgn * (st.width / 2 + 0.02), sgn * (st.kerb_y - 0.02)))
        if not st.on_strip(m, world, lo, hi):
            continue
        if b.add(m, world, ctx.material(m), support=sup, lean=True) is not None:
            return


def _on_ground(ctx: Context, b: SceneBuilder, st: Street, m: Model, ids: dict[str, int],
               yaw: float | None = None, far: tuple[float, float] = (0.1, 25.0),
               s_range: tuple[float, float] = (-80.0, 200.0), max_lean_deg: float = 3.0) -> None:
    """``m`` on the ground beyond a sidewalk, ``far`` metres past the kerb, standing on the ground's triangles
    (leaning with them; tried elsewhere where its base would not sit flush, :meth:`Terrain.fits`, or where the
    ground leans more than ``max_lean_deg``: trees and posts stand near vertical); turned any way, or by ``yaw``
    from the road's heading."""
    rng = ctx.rng
    assert st.terrain is not None
    for _ in range(8):
        sgn = 1 if rng.random() < 0.5 else -1
        s = _u(rng, *s_range)
        t = sgn * (st.kerb_y + m.radius_xy + _u(rng, *far))
        if st.in_cross(s, t, m.radius_xy, 1.0):
            continue
        a = float(rng.uniform(0, 360)) if yaw is None else yaw + math.degrees(st.road.heading(s))
        x, y = st.road.xy(s, t)
        if st.terrain.normal(float(x), float(y))[2] < math.cos(math.radians(max_lean_deg)):
            continue
        world = st.terrain.frame(float(x), float(y), a)
        if not st.terrain.fits(m.boxes, world):
            continue
        if b.add(m, world, ctx.material(m), support=ids["ground"], lean=True) is not None:
            return


def sample_outdoor(ctx: Context) -> Draft:
    b = SceneBuilder()
    st = Street(ctx.child("street").rng, ctx.config.layout)
    road = st.road
    buildings = plan_buildings(ctx.child("populate"), st)
    ids = build_street(ctx.child("surfaces"), b, st, [p for *_, p in buildings])
    extra = populate(ctx.child("populate"), b, st, ids, buildings)
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
            eye = road.point(x, y, z0 + h)
            probe = np.array([[eye[0], eye[1], 0.3, 0.3, 1.0, 0.0, eye[2] - 0.3, eye[2] + 0.3]])
            if b.colliding_ids(probe):
                continue
            base = road.heading(x)
            yaw = base + (0.0 if r.random() < 0.8 else math.pi) + math.radians(r.normal(0, 12 if mode < 0.7 else 30))
            pitch = math.radians(_u(r, *cc.pitch_deg) - (15.0 if mode >= 0.9 else 0.0))
            if kitti:  # along the lane, level with the road: a camera fixed to a car
                yaw = base + (0.0 if r.random() < 0.8 else math.pi) + math.radians(r.normal(0, 3))
                pitch = math.radians(float(np.clip(r.normal(0.0, 1.0), -3.0, 3.0)))
            if mode < 0.7:  # a car's camera leans with the road's grade
                pitch += math.atan(road.slope_along(yaw))
            target = eye + np.array([math.cos(yaw), math.sin(yaw), math.tan(pitch)])
            return make_camera(ctx, r, eye, target, pitch_range=(-60.0, 30.0), roll=not kitti)
        raise Reject("camera_inside_geometry", "no free spot for the camera")

    meta = {"street": {"road_width_m": round(st.width, 3), "sidewalk_m": round(st.sidewalk, 3),
                       "crossing": st.cross_x is not None, "curvature_per_m": road.curvature, "grade": road.grade,
                       "relief_m": round(st.relief, 3), **extra}}
    return Draft(builder=b, world=world, sample_camera=sample_camera, meta=meta, enclosed=False)
