"""Procedural models built from primitives, with plausible proportions (metres).

Each factory takes a Generator and returns a :class:`~rgbify.scenes.builder.Model` in its model frame (resting on
z = 0, centred on its footprint, front toward +y). Furniture keeps real-world sizes: seat heights 0.40-0.48 m,
table heights 0.70-0.78 m (coffee tables 0.35-0.50 m), shelf boards 0.25-0.40 m apart, and so on.
"""

from __future__ import annotations

import numpy as np

from rgbify.scenes.builder import Model, Parts, Surface

U = np.random.Generator  # for annotations only


def _u(rng: U, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --- furniture ---------------------------------------------------------------------------------------------

def table(rng: U, kind: str | None = None, width: float | None = None, depth: float | None = None,
          height: float | None = None) -> Model:
    kind = kind or str(rng.choice(["dining", "desk", "coffee", "side", "round"]))
    dims = {"dining": ((1.1, 2.0), (0.7, 1.0), (0.72, 0.78)), "desk": ((0.9, 1.6), (0.55, 0.8), (0.72, 0.76)),
            "coffee": ((0.7, 1.3), (0.45, 0.75), (0.35, 0.5)), "side": ((0.4, 0.6), (0.4, 0.6), (0.5, 0.65)),
            "round": ((0.7, 1.2), (0.7, 1.2), (0.72, 0.76))}[kind]
    w = width or _u(rng, *dims[0])
    d = depth or (w if kind == "round" else _u(rng, *dims[1]))
    h = height or _u(rng, *dims[2])
    t = _u(rng, 0.025, 0.05)
    p = Parts()
    if kind == "round":
        p.cylinder((0, 0, h - t / 2), w / 2, t, sections=32)
        p.of("metal" if rng.random() < 0.4 else None)
        p.cylinder((0, 0, (h - t) / 2), _u(rng, 0.03, 0.06), h - t)
        p.cylinder((0, 0, 0.015), _u(rng, 0.2, 0.3) * w, 0.03, sections=24)
        top = Surface(h, 0, 0, w * 0.33, w * 0.33, "table")
    else:
        p.box((0, 0, h - t / 2), (w, d, t))
        leg = _u(rng, 0.035, 0.07)
        inset = _u(rng, 0.02, 0.08)
        round_legs = rng.random() < 0.4
        p.of("metal" if rng.random() < 0.3 else None)
        for sx in (-1, 1):
            for sy in (-1, 1):
                c = (sx * (w / 2 - inset - leg / 2), sy * (d / 2 - inset - leg / 2), (h - t) / 2)
                if round_legs:
                    p.cylinder(c, leg / 2, h - t, sections=12)
                else:
                    p.box(c, (leg, leg, h - t))
        top = Surface(h, 0, 0, w / 2, d / 2, "table")
    return p.model("table", f"{kind}_table", [top], material_hint="wood" if rng.random() < 0.7 else "painted")


def chair(rng: U, stool: bool | None = None) -> Model:
    stool = bool(rng.random() < 0.2) if stool is None else stool
    w, d = _u(rng, 0.4, 0.5), _u(rng, 0.4, 0.5)
    h = _u(rng, 0.42, 0.48) if not stool else _u(rng, 0.45, 0.75)
    t = _u(rng, 0.03, 0.06)
    leg = _u(rng, 0.025, 0.045)
    p = Parts()
    if stool:
        p.cylinder((0, 0, h - t / 2), w / 2, t, sections=24)
    else:
        p.of("fabric" if rng.random() < 0.4 else None).box((0, 0, h - t / 2), (w, d, t))
    p.of("metal" if rng.random() < 0.25 else None)
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (w / 2 - leg), sy * (d / 2 - leg), (h - t) / 2)
            if stool:
                c = (sx * w * 0.3, sy * w * 0.3, (h - t) / 2)
            p.box(c, (leg, leg, h - t))
    if not stool:
        back_h = _u(rng, 0.35, 0.5)
        p.of(None).box((0, -d / 2 + 0.02, h + back_h / 2), (w, 0.03, back_h))
    return p.model("chair", "stool" if stool else "chair", [Surface(h, 0, 0, w * 0.3, d * 0.3, "seat", 0.3)],
                   material_hint=str(rng.choice(["wood", "painted"])))


def shelf(rng: U) -> Model:
    w, d, h = _u(rng, 0.6, 1.6), _u(rng, 0.25, 0.4), _u(rng, 0.8, 2.1)
    t = _u(rng, 0.018, 0.03)
    n = max(2, int(round(h / _u(rng, 0.3, 0.42))))
    p = Parts()
    p.box((-w / 2 + t / 2, 0, h / 2), (t, d, h)).box((w / 2 - t / 2, 0, h / 2), (t, d, h))
    p.box((0, -d / 2 + 0.005, h / 2), (w - 2 * t, 0.01, h))
    surfaces = []
    zs = np.linspace(0.05, h - t, n + 1)
    for k, z in enumerate(zs):
        p.box((0, 0.005, z + t / 2), (w - 2 * t, d - 0.01, t))
        clear = (zs[k + 1] - z - t) if k + 1 < len(zs) else 0.5
        surfaces.append(Surface(float(z + t), 0, 0.005, (w - 2 * t) / 2, (d - 0.01) / 2, "shelf", float(clear)))
    return p.model("shelf", "bookshelf", surfaces, material_hint=str(rng.choice(["wood", "painted"])))


def cabinet(rng: U) -> Model:
    tall = rng.random() < 0.3
    w, d = _u(rng, 0.5, 1.8), _u(rng, 0.4, 0.6)
    h = _u(rng, 1.7, 2.1) if tall else _u(rng, 0.5, 1.1)
    p = Parts()
    plinth = _u(rng, 0.0, 0.1)
    plinth = 0.0 if plinth < 0.02 else plinth
    if plinth > 0:
        p.box((0, 0, plinth / 2), (w - 0.04, d - 0.04, plinth))
    p.box((0, 0, plinth + (h - plinth) / 2), (w, d, h - plinth))
    doors = max(1, int(round(w / 0.5)))
    p.of("metal")  # handles
    for k in range(doors):
        x = -w / 2 + (k + 0.5) * w / doors + (0.15 * w / doors) * (1 if k % 2 == 0 else -1)
        p.box((x, d / 2 + 0.012, plinth + (h - plinth) * 0.6), (0.015, 0.024, 0.12))
    return p.model("cabinet", "wardrobe" if tall else "cabinet", [Surface(h, 0, 0, w / 2, d / 2, "cabinet")],
                   material_hint=str(rng.choice(["wood", "painted"])))


def bed(rng: U) -> Model:
    w, length = _u(rng, 0.9, 1.8), _u(rng, 1.95, 2.15)
    frame_h = _u(rng, 0.25, 0.4)
    mat_h = _u(rng, 0.15, 0.25)
    p = Parts()
    p.box((0, 0, frame_h / 2), (w, length, frame_h))  # frame and headboard: wood or painted
    head = _u(rng, 0.8, 1.2)
    p.box((0, -length / 2 + 0.03, head / 2), (w + 0.04, 0.06, head))
    p.of("fabric").box((0, 0.01, frame_h + mat_h / 2), (w - 0.04, length - 0.06, mat_h))  # mattress and covers
    top = frame_h + mat_h
    return p.model("bed", "bed", [Surface(top, 0, -length / 2 + 0.35, w / 2 - 0.05, 0.25, "bed", 0.6)],
                   material_hint=str(rng.choice(["wood", "painted"])))


def sofa(rng: U) -> Model:
    arm = rng.random() < 0.3
    w = _u(rng, 0.75, 1.0) if arm else _u(rng, 1.4, 2.4)
    d = _u(rng, 0.8, 1.0)
    seat = _u(rng, 0.4, 0.46)
    back_h = _u(rng, 0.75, 0.95)
    arm_w, arm_h = _u(rng, 0.1, 0.22), _u(rng, 0.55, 0.68)
    p = Parts()
    p.box((0, 0.05, seat / 2), (w - 2 * arm_w, d - 0.1, seat))
    p.box((0, -d / 2 + 0.1, back_h / 2), (w, 0.2, back_h))
    for sx in (-1, 1):
        p.box((sx * (w / 2 - arm_w / 2), 0.05, arm_h / 2), (arm_w, d - 0.1, arm_h))
    inner = w / 2 - arm_w - 0.05
    return p.model("sofa", "armchair" if arm else "sofa",
                   [Surface(seat, 0, -0.05, inner, 0.15, "seat", back_h - seat)], material_hint="fabric")


def lamp(rng: U, floor: bool = True) -> Model:
    h = _u(rng, 1.3, 1.8) if floor else _u(rng, 0.3, 0.6)
    base_r = _u(rng, 0.12, 0.2) if floor else _u(rng, 0.06, 0.1)
    shade_h = _u(rng, 0.2, 0.35) if floor else _u(rng, 0.12, 0.22)
    r_top, r_bot = _u(rng, 0.08, 0.16), _u(rng, 0.15, 0.25)
    if not floor:
        r_top, r_bot = r_top * 0.6, r_bot * 0.6
    p = Parts()
    p.cylinder((0, 0, 0.0125), base_r, 0.025, sections=24)
    p.cylinder((0, 0, (h - shade_h) / 2 + 0.0125), 0.012, h - shade_h - 0.025 + 0.02, sections=8)
    wall = 0.006
    prof = [(r_bot, 0.0), (r_top, shade_h), (r_top - wall, shade_h), (r_bot - wall, 0.0)]
    shade = Parts().revolve(prof + [prof[0]], sections=24, z0=h - shade_h).meshes[0]  # (vertices, faces)
    p.of("shade").mesh(shade)
    m = p.model("lamp", "floor_lamp" if floor else "table_lamp", material_hint="metal")
    m.lights.append((np.array([0.0, 0.0, h - shade_h * 0.55]), "point"))
    return m


# --- small objects -----------------------------------------------------------------------------------------

def small_box(rng: U, scale: float = 1.0) -> Model:
    size = tuple(float(x) for x in rng.uniform(0.06, 0.4, size=3) * scale)
    p = Parts().box((0, 0, size[2] / 2), size)
    return p.model("box", "box", [Surface(size[2], 0, 0, size[0] / 2, size[1] / 2, "box", 0.3)],
                   material_hint=str(rng.choice(["paper", "object"])))


def book(rng: U, upright: bool = False, max_h: float = 0.3) -> Model:
    h = min(_u(rng, 0.18, 0.3), max_h)
    w, t = h * _u(rng, 0.65, 0.8), _u(rng, 0.015, 0.06)
    p = Parts()
    if upright:
        p.box((0, 0, h / 2), (t, w, h))
    else:
        p.box((0, 0, t / 2), (w, h, t))
    return p.model("book", "book", material_hint="paper")


def bottle(rng: U, max_h: float = 0.4) -> Model:
    h = min(_u(rng, 0.18, 0.35), max_h)
    r = _u(rng, 0.03, 0.045)
    neck_r = r * _u(rng, 0.3, 0.45)
    shoulder = h * _u(rng, 0.55, 0.7)
    prof = [(0, 0), (r, 0), (r, shoulder), (neck_r, shoulder + h * 0.15), (neck_r, h), (0, h)]
    return Parts().revolve(prof, sections=20).model("bottle", "bottle", shading="smooth", material_hint="object")


def bowl(rng: U) -> Model:
    r = _u(rng, 0.06, 0.14)
    h = r * _u(rng, 0.4, 0.7)
    t = 0.006
    prof = [(0, 0), (r * 0.5, 0), (r, h), (r - t, h), (r * 0.5 - t, t), (0, t)]
    return Parts().revolve(prof, sections=28).model("bowl", "bowl", shading="smooth", material_hint="object")


def cup(rng: U) -> Model:
    r = _u(rng, 0.03, 0.05)
    h = _u(rng, 0.07, 0.13)
    t = 0.004
    prof = [(0, 0), (r * 0.85, 0), (r, h), (r - t, h), (r * 0.85 - t, t), (0, t)]
    return Parts().revolve(prof, sections=24).model("cup", "cup", shading="smooth", material_hint="object")


def plate(rng: U) -> Model:
    r = _u(rng, 0.08, 0.15)
    prof = [(0, 0), (r * 0.6, 0), (r, 0.018), (r - 0.004, 0.02), (r * 0.6, 0.006), (0, 0.006)]
    return Parts().revolve(prof, sections=32).model("plate", "plate", shading="smooth", material_hint="object")


def can(rng: U) -> Model:
    r, h = _u(rng, 0.03, 0.05), _u(rng, 0.08, 0.18)
    return Parts().cylinder((0, 0, h / 2), r, h, sections=20).model("can", "can", material_hint="metal")


def vase(rng: U, max_h: float = 0.5) -> Model:
    h = min(_u(rng, 0.15, 0.45), max_h)
    r = h * _u(rng, 0.2, 0.35)
    belly = _u(rng, 0.25, 0.6)
    prof = [(0, 0), (r * 0.6, 0), (r, h * belly), (r * _u(rng, 0.35, 0.6), h * 0.9), (r * 0.55, h),
            (r * 0.45, h), (0, h * 0.1)]
    return Parts().revolve(prof, sections=24).model("vase", "vase", shading="smooth", material_hint="object")


def ball(rng: U, big: bool | None = None) -> Model:
    big = bool(rng.random() < 0.4) if big is None else big
    dia = _u(rng, 0.15, 0.3) if big else _u(rng, 0.04, 0.08)
    return Parts().sphere((0, 0, dia / 2), (dia, dia, dia)).model("ball", "ball", shading="smooth",
                                                                   material_hint="object")


def fruit(rng: U) -> Model:
    d = _u(rng, 0.05, 0.1)
    s = (d, d * _u(rng, 0.9, 1.1), d * _u(rng, 0.85, 1.2))
    return Parts().sphere((0, 0, s[2] / 2), s).model("fruit", "fruit", shading="smooth", material_hint="skin")


def convex_clutter(rng: U, size: float | None = None) -> Model:
    size = size or _u(rng, 0.05, 0.25)
    n = int(rng.integers(6, 18))
    pts = rng.normal(size=(n, 3)) * rng.uniform(0.3, 1.0, size=3)
    pts = pts / np.max(np.abs(pts)) * size / 2
    pts[:, 2] -= pts[:, 2].min()
    return Parts().hull(pts).model("clutter", "convex", material_hint="object")


def pillow(rng: U, max_w: float) -> Model:
    w = min(_u(rng, 0.35, 0.6), max_w)
    d, h = w * _u(rng, 0.55, 0.8), _u(rng, 0.08, 0.15)
    return Parts().sphere((0, 0, h / 2), (w, d, h)).model("pillow", "pillow", shading="smooth",
                                                          material_hint="fabric")


def rug(rng: U, w: float, d: float) -> Model:
    t = _u(rng, 0.005, 0.012)
    return Parts().box((0, 0, t / 2), (w, d, t)).model("rug", "rug", material_hint="fabric")


def picture(rng: U) -> Model:
    w, h, t = _u(rng, 0.3, 1.0), _u(rng, 0.25, 0.8), _u(rng, 0.015, 0.04)
    # model frame for wall items: back on y = 0, front toward +y, centred in z about its own middle
    return Parts().box((0, t / 2, 0), (w, t, h)).model("picture", "picture", material_hint="paper")


SMALL_FACTORIES = {
    "box": lambda rng: small_box(rng, 0.5), "book": book, "bottle": bottle, "bowl": bowl, "cup": cup,
    "plate": plate, "can": can, "vase": vase, "ball": lambda rng: ball(rng, False), "fruit": fruit,
    "clutter": convex_clutter, "lamp": lambda rng: lamp(rng, floor=False),
}
"""Small objects that go on surfaces, by class."""


# --- kitchens, bathrooms, bedrooms, living rooms, offices (procedural stand-ins for catalogue models) ----------

def counter(rng: U, width: float | None = None, kind: str = "counter") -> Model:
    """A kitchen base unit: carcass on a plinth, a worktop overhanging the front, door fronts with handles;
    ``kind`` sink (a steel basin set into the top) or stove (a black glass top with four rings) change the top."""
    w = width or _u(rng, 0.45, 1.0)
    d, h = _u(rng, 0.58, 0.62), _u(rng, 0.86, 0.92)
    top_t = _u(rng, 0.025, 0.04)
    p = Parts().box((0, -0.02, 0.05), (w - 0.02, d - 0.1, 0.1))  # plinth
    p.box((0, -0.015, 0.1 + (h - top_t - 0.1) / 2), (w - 0.004, d - 0.03, h - top_t - 0.1))
    p.of("wood" if rng.random() < 0.5 else "stone").box((0, 0.005, h - top_t / 2), (w, d + 0.01, top_t))
    p.of("metal")
    for k in range(max(1, int(round(w / 0.5)))):
        x = -w / 2 + (k + 0.5) * w / max(1, int(round(w / 0.5)))
        p.box((x, d / 2 - 0.015 + 0.01, h - top_t - 0.08), (min(0.3, w * 0.5), 0.02, 0.015))
    surfaces = [Surface(h, 0, 0.005, w / 2 - 0.01, (d + 0.01) / 2 - 0.01, "counter", 1.0)]
    cls = "counter"
    if kind == "sink":
        p.of("metal").box((0, 0.02, h + 0.004), (min(0.5, w - 0.1), 0.42, 0.008))  # the basin's rim
        p.cylinder((0, -d / 2 + 0.12, h + 0.15), 0.015, 0.3, sections=10)  # the tap
        surfaces = [Surface(h, 0, 0.005, w / 2 - 0.01, (d + 0.01) / 2 - 0.01, "counter", 1.0)]
        surfaces = [s for s in surfaces if w > 0.9]  # room beside the basin only on wide units
        cls = "sink"
    elif kind == "stove":
        p.of("glass").box((0, 0.02, h + 0.003), (min(0.58, w - 0.04), 0.5, 0.006))
        surfaces, cls = [], "stove"
    return p.model(cls, kind, surfaces, material_hint=str(rng.choice(["painted", "wood"])))


def fridge(rng: U) -> Model:
    w, d, h = _u(rng, 0.55, 0.9), _u(rng, 0.6, 0.75), _u(rng, 1.7, 2.0)
    p = Parts().box((0, 0, h / 2), (w, d, h))
    split = h * _u(rng, 0.3, 0.4)
    p.of("metal").box((w / 2 - 0.08, d / 2 + 0.02, split + 0.35), (0.02, 0.04, 0.5))
    p.box((w / 2 - 0.08, d / 2 + 0.02, split - 0.2), (0.02, 0.04, 0.25))
    return p.model("refrigerator", "fridge", [Surface(h, 0, 0, w / 2 - 0.02, d / 2 - 0.02, "cabinet", 0.3)],
                   material_hint="metal" if rng.random() < 0.4 else "painted")


def toilet(rng: U) -> Model:
    h = _u(rng, 0.38, 0.42)
    p = Parts().revolve([(0, 0), (0.12, 0), (0.17, h * 0.7), (0.19, h), (0.0, h)], sections=24, z0=0.0)
    p.box((0, -0.28, h + 0.18), (0.36, 0.16, 0.36))  # the cistern, against the wall
    p.box((0, -0.22, h * 0.5), (0.2, 0.12, h))
    return p.model("toilet", "toilet", material_hint="object")


def bathtub(rng: U) -> Model:
    w, d, h = _u(rng, 1.5, 1.8), _u(rng, 0.7, 0.8), _u(rng, 0.5, 0.6)
    t = 0.06
    p = Parts().box((0, 0, 0.05), (w, d, 0.1))
    p.box((0, -d / 2 + t / 2, h / 2), (w, t, h)).box((0, d / 2 - t / 2, h / 2), (w, t, h))
    p.box((-w / 2 + t / 2, 0, h / 2), (t, d - 2 * t, h)).box((w / 2 - t / 2, 0, h / 2), (t, d - 2 * t, h))
    return p.model("bathtub", "bathtub", material_hint="object")


def shower(rng: U) -> Model:
    s, h = _u(rng, 0.8, 1.0), _u(rng, 1.9, 2.05)
    p = Parts().box((0, 0, 0.04), (s, s, 0.08))
    p.of("glass").box((0, s / 2 - 0.005, 0.08 + (h - 0.08) / 2), (s, 0.01, h - 0.08))
    p.box((s / 2 - 0.005, 0, 0.08 + (h - 0.08) / 2), (0.01, s - 0.02, h - 0.08))
    p.of("metal").cylinder((0, -s / 2 + 0.05, h - 0.1), 0.08, 0.02, sections=16)
    return p.model("shower", "shower", material_hint="object")


def vanity(rng: U) -> Model:
    w = _u(rng, 0.5, 1.2)
    m = counter(rng, w, "sink")
    m.class_name, m.kind = "sink", "vanity"
    return m


def mirror(rng: U, width: float | None = None) -> Model:
    """A wall mirror (model frame as pictures: back on y = 0, front toward +y, centred in z)."""
    w, h = width or _u(rng, 0.5, 1.0), _u(rng, 0.6, 1.0)
    return Parts().box((0, 0.01, 0), (w, 0.02, h)).model("mirror", "mirror", material_hint="mirror")


def nightstand(rng: U) -> Model:
    w, d, h = _u(rng, 0.4, 0.55), _u(rng, 0.35, 0.45), _u(rng, 0.45, 0.6)
    p = Parts().box((0, 0, h / 2), (w, d, h))
    p.of("metal").box((0, d / 2 + 0.01, h * 0.75), (0.1, 0.02, 0.015))
    return p.model("nightstand", "nightstand", [Surface(h, 0, 0, w / 2 - 0.01, d / 2 - 0.01, "cabinet", 1.0)],
                   material_hint=str(rng.choice(["wood", "painted"])))


def dresser(rng: U) -> Model:
    w, d, h = _u(rng, 0.8, 1.6), _u(rng, 0.4, 0.55), _u(rng, 0.75, 1.0)
    p = Parts().box((0, 0, h / 2), (w, d, h))
    p.of("metal")
    for k in range(3):
        p.box((0, d / 2 + 0.01, h * (0.2 + 0.28 * k)), (0.2, 0.02, 0.02))
    return p.model("dresser", "dresser", [Surface(h, 0, 0, w / 2 - 0.01, d / 2 - 0.01, "cabinet", 1.0)],
                   material_hint=str(rng.choice(["wood", "painted"])))


def television(rng: U) -> Model:
    """A flat screen on a foot, to stand on a TV cabinet."""
    w = _u(rng, 0.7, 1.3)
    h = w * 9 / 16
    p = Parts().box((0, 0, 0.01), (0.3, 0.2, 0.02)).box((0, -0.02, 0.07), (0.05, 0.03, 0.12))
    p.box((0, 0, 0.12 + h / 2), (w, 0.05, h))
    p.of("glass").box((0, 0.026, 0.12 + h / 2), (w - 0.02, 0.002, h - 0.02))  # the black screen's glass
    return p.model("television", "television", material_hint="plastic")


def monitor(rng: U) -> Model:
    w = _u(rng, 0.45, 0.65)
    h = w * 9 / 16
    p = Parts().box((0, 0, 0.01), (0.22, 0.18, 0.02)).box((0, -0.03, 0.12), (0.04, 0.03, 0.22))
    p.box((0, 0, 0.1 + h / 2), (w, 0.03, h))
    return p.model("computer", "monitor", material_hint="object")


def whiteboard(rng: U) -> Model:
    w, h = _u(rng, 1.2, 2.4), _u(rng, 0.9, 1.2)
    p = Parts().of("metal").box((0, 0.01, 0), (w, 0.02, h)).of(None).box((0, 0.021, 0), (w - 0.04, 0.003, h - 0.04))
    return p.model("whiteboard", "whiteboard", material_hint="ceramic")


def curtain(rng: U, width: float, height: float) -> Model:
    """A hanging curtain panel in folds: a sheet 8 mm thick along a sine of 8-15 cm period (model frame: its back
    at y = 0, front toward +y, from z = 0 up to ``height``)."""
    period, amp, t = _u(rng, 0.08, 0.15), _u(rng, 0.02, 0.04), 0.008
    n = max(8, int(width / period * 8))
    x = np.linspace(-width / 2, width / 2, n)
    y = amp + amp * np.sin(2 * np.pi * x / period)
    front = np.stack([x, y + t / 2], 1)
    back = np.stack([x, y - t / 2], 1)
    ring = np.concatenate([front, back[::-1]])  # a closed outline, counter-clockwise seen from above
    if _signed_area(ring) < 0:
        ring = ring[::-1]
    m = len(ring)
    verts = np.concatenate([np.column_stack([ring, np.zeros(m)]), np.column_stack([ring, np.full(m, height)])])
    faces = []
    for i in range(m):
        j = (i + 1) % m
        faces += [(i, j, m + j), (i, m + j, m + i)]
    half = n  # caps: quads between the front and back curves
    for i in range(half - 1):
        a, b2, c, d = i, i + 1, m - 2 - i, m - 1 - i
        faces += [(a, c, b2), (a, d, c), (m + a, m + b2, m + c), (m + a, m + c, m + d)]
    return Parts().mesh((verts, np.asarray(faces, dtype=np.int64))).model("curtain", "curtain",
                                                                          material_hint="fabric")


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def towel_rail(rng: U) -> Model:
    """A rail with a folded towel on it (model frame of wall items: back on y = 0, centred in z)."""
    w = _u(rng, 0.4, 0.7)
    p = Parts().of("metal").cylinder((0, 0.06, 0.1), 0.01, w, axis="x", sections=10)
    p.box((-w / 2, 0.03, 0.1), (0.02, 0.06, 0.02)).box((w / 2, 0.03, 0.1), (0.02, 0.06, 0.02))
    p.of(None).box((0, 0.06, -0.1), (w * 0.8, 0.03, 0.38))
    return p.model("towel", "towel_rail", material_hint="fabric")
