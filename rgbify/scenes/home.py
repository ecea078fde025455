"""The ``indoor`` sampler: a room of one of the recipe's room types (rgbify/scenes/rooms.py), doors that stand open
onto furnished neighbouring rooms, and cameras that also take close-ups and look through doorways.

A recipe of the generic room type that asks for no catalogue, no open doors and no close-ups is the room of
rgbify/scenes/indoor.py exactly (``sample_indoor``). Otherwise:

1. the room type is drawn from ``[layout] room_types`` (stream "room_type"); its size is the recipe's ranges held
   to the type's limits (a bathroom 1.8-3.6 m, a living room or office up to 15 m, a corridor 1.1-1.8 m wide);
   bathrooms and kitchens get tiled walls and floors;
2. every door on an outer wall stands open with probability ``open_door_prob`` (swung into the room) and a
   neighbouring room is built behind it (stream ("neighbour", j)): 2.5-5 m along the wall, ``neighbour_depth_m``
   deep, with its own floor, ceiling, walls, light and furniture of a room type drawn from the recipe's, the
   doorway kept free on both sides;
3. the room is furnished by its type, decorated (pictures, rugs, clutter on every surface: catalogue objects
   with probability ``catalog_prob``) and lit;
4. views: with probability ``close_up_prob`` a close-up (the camera 0.45-1.0 m from an object or a piece of
   furniture, looking down at it), with probability 0.15 where a door stands open a view through the doorway,
   else the overview and furniture views of the generic room.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rgbify.scenes import indoor, rooms
from rgbify.scenes.builder import Parts, SceneBuilder, pose
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.indoor import WALL_T, Room, build_room, decorate, interior, light_room
from rgbify.scenes.lighting import sky_world
from rgbify.scenes.placement import make_camera

DOORWAY_VIEW_PROB = 0.15
"""Where a door stands open, the share of views taken through it (into the neighbouring room)."""
STRUCTURE = ("wall", "floor", "ceiling", "door", "window", "rug", "picture", "lamp", "curtain")


def sample_home(ctx: Context) -> Draft:
    lay = ctx.config.layout
    plain = lay.room_types == ("generic",) and lay.catalog_prob == 0 and lay.open_door_prob == 0 and \
        lay.close_up_prob == 0
    if plain:
        return indoor.sample_indoor(ctx)
    catalog = ctx.catalog if lay.catalog_prob > 0 else None
    c = ctx.child("room_type")
    room_type = lay.room_types[int(c.rng.integers(len(lay.room_types)))]
    ctx = dataclasses.replace(ctx, room=room_type)
    size = None if room_type == "generic" else rooms.room_size(c.rng, room_type, lay.room_width_m, lay.room_depth_m)
    b = SceneBuilder()
    floor_hint, wall_hint = rooms.HINTS.get(room_type, ("floor", "wall"))
    room_ctx = ctx.child("room")
    if room_type == "corridor":  # more doors along a corridor
        room_ctx = dataclasses.replace(room_ctx, config=dataclasses.replace(
            ctx.config, layout=dataclasses.replace(lay, doors=(2, 5), windows=(0, 1), l_shape_prob=0.0)))
    room, floor_id = build_room(room_ctx, b, size, floor_hint, wall_hint, lay.open_door_prob)
    _furnish(ctx.child("furnish"), b, room, floor_id, room_type, catalog)
    lacking = rooms.missing(b, room_type)
    if lacking:
        raise Reject("room_lacks_furniture", f"a {room_type} without {', '.join(lacking)}")
    neighbours = []
    for j, door in enumerate(room.open_doors):
        n = _neighbour(ctx.scope("neighbour", j), b, room, door, catalog, [x[1] for x in neighbours])
        if n is not None:
            neighbours.append(n)
    decorate(ctx.child("decorate"), b, room, floor_id)
    light_room(ctx.child("lights"), b, room)
    for j, (nroom, _poly, _t) in enumerate(neighbours):
        light_room(ctx.scope("neighbour_lights", j), b, nroom)
    world = sky_world(ctx.child("world"), 1.0)
    meta = {"room": {"type": room_type, "width_m": round(float(np.ptp(room.poly[:, 0])), 3),
                     "depth_m": round(float(np.ptp(room.poly[:, 1])), 3), "height_m": round(room.height, 3),
                     "shape": "rect" if len(room.poly) == 4 else "L", "open_doors": len(room.open_doors),
                     "neighbours": [t for _r, _p, t in neighbours]}}
    others = [poly for _r, poly, _t in neighbours]
    return Draft(builder=b, world=world, sample_camera=camera_sampler(ctx, b, room, lay.close_up_prob, others),
                 meta=meta, enclosed=True, interior=interior(b, room))


def _furnish(ctx: Context, b: SceneBuilder, room: Room, floor_id: int, room_type: str, catalog) -> None:  # noqa: ANN001
    if room_type == "generic":
        indoor.furnish(ctx, b, room, floor_id)
        return
    f = rooms.Furnisher(ctx, b, room, floor_id, room_type, catalog)
    rooms.FURNISH[room_type](f)
    if room_type in rooms.CURTAINS:
        rooms.curtains(f)


def _neighbour(ctx: Context, b: SceneBuilder, room: Room, door: tuple[int, float, float, float], catalog,  # noqa: ANN001
               others: list[np.ndarray]) -> tuple[Room, np.ndarray, str] | None:
    """A furnished room behind the open door ``door`` (wall k, from a to bb) of ``room``; None if it would overlap
    another neighbour."""
    rng, lay = ctx.rng, ctx.config.layout
    k, a, bb, _top = door
    wall = room.walls[k]
    t = WALL_T
    length = wall["length"]
    width = float(min(rng.uniform(2.5, 5.0), length + 2 * t))
    if width < (bb - a) + 0.9:
        return None
    lo_s = max(-t, bb + 0.3 - width)
    hi_s = min(length + t - width, a - 0.3)
    if lo_s > hi_s:
        return None
    s0 = float(rng.uniform(lo_s, hi_s))
    depth = float(rng.uniform(*lay.neighbour_depth_m))

    def at(s: float, y: float) -> np.ndarray:
        return wall["p"] + wall["u"] * s + wall["n"] * y

    poly = np.array([at(s0, -t - depth), at(s0 + width, -t - depth), at(s0 + width, -t), at(s0, -t)])
    for other in others:
        if _overlap(poly, other):
            return None
    nroom = Room(poly, room.height)
    types = [x for x in lay.room_types if x != "corridor"] or ["bedroom"]
    room_type = types[int(rng.integers(len(types)))]
    floor_hint, wall_hint = rooms.HINTS.get(room_type, ("floor", "wall"))
    yaw = wall["yaw"]
    centre = at(s0 + width / 2, -t - depth / 2)
    slab = Parts().box((0, -t / 2, -0.05), (width + 2 * t, depth + t, 0.1))
    fm = slab.model("floor", "floor", material_hint=floor_hint)
    floor_id = b.add(fm, pose(centre[0], centre[1], 0.0, yaw), ctx.material(fm), check=False)
    cm = Parts().box((0, -t / 2, 0.05), (width + 2 * t, depth + t, 0.1)).model("ceiling", "ceiling",
                                                                                material_hint="ceiling")
    b.add(cm, pose(centre[0], centre[1], room.height, yaw), ctx.material(cm), check=False)
    wall_mat = ctx.material(Parts().box((0, 0, 0), (1, 1, 1)).model("wall", "wall", material_hint=wall_hint), 0.35)
    for kk in (0, 1, 3):  # edge 2 is the room's own wall, with the door in it
        nroom.walls[kk]["iid"] = b.add(indoor._wall_model(nroom, kk), nroom.wall_frame(kk), wall_mat, check=False)
    keep = at((a + bb) / 2, -t - 0.6)  # the doorway stays free on this side too
    b.keep_out((keep[0], keep[1], 1.0), ((bb - a) / 2 + 0.1, 0.6, 1.0), yaw)
    c = dataclasses.replace(ctx, room=room_type)
    if room_type == "generic":
        small = dataclasses.replace(c.config, layout=dataclasses.replace(lay, furniture=(2, 4)))
        indoor.furnish(dataclasses.replace(c, config=small).child("furnish"), b, nroom, floor_id)
    else:
        f = rooms.Furnisher(c.child("furnish"), b, nroom, floor_id, room_type, catalog)
        rooms.FURNISH[room_type](f)
    return nroom, poly, room_type


def _overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Two convex quadrilaterals overlap (separating axes)."""
    for poly in (p, q):
        for i in range(len(poly)):
            e = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-e[1], e[0]])
            a, b = p @ axis, q @ axis
            if a.max() <= b.min() + 1e-6 or b.max() <= a.min() + 1e-6:
                return False
    return True


def camera_sampler(ctx: Context, b: SceneBuilder, room: Room, close_up_prob: float,  # noqa: ANN201
                   others: tuple[np.ndarray, ...] | list[np.ndarray] = ()):
    """Close-ups and views through open doorways, else the generic room's views; what is aimed at stands in this
    room (not in the neighbouring rooms, outlines ``others``, which are seen through doorways)."""
    mine = [p for p in b.placed if not any(indoor.inside_polygon(poly, float(p.world_from_model[0, 3]),
                                                                  float(p.world_from_model[1, 3])) for poly in others)]
    base = indoor.camera_sampler(ctx, b, room, mine)
    cc = ctx.config.camera

    def free(eye: np.ndarray, r: float = 0.12) -> bool:
        probe = np.array([[eye[0], eye[1], r, r, 1.0, 0.0, eye[2] - r, eye[2] + r]])
        return not b.colliding_ids(probe) and indoor.inside_polygon(room.poly, eye[0], eye[1], 0.15)

    def close_up(rng: np.random.Generator):  # noqa: ANN202
        targets = [p for p in mine if p.model.class_name not in STRUCTURE]
        for _ in range(12):
            if not targets:
                break
            p = targets[int(rng.integers(len(targets)))]
            lo = p.world_from_model[:3, 3]
            target = lo + np.array([0.0, 0.0, min(p.model.height, 1.4) * 0.6])
            dist = float(rng.uniform(0.45, 1.0))
            a = float(rng.uniform(0, 2 * math.pi))
            h = float(np.clip(target[2] + rng.uniform(0.25, 0.7), cc.height_m[0], cc.height_m[1]))
            eye = np.array([target[0] + dist * math.cos(a), target[1] + dist * math.sin(a), h])
            if free(eye):
                return make_camera(ctx, rng, eye, target, pitch_range=(-65.0, 10.0))
        return None

    def doorway(rng: np.random.Generator):  # noqa: ANN202
        k, a, bb, _top = room.open_doors[int(rng.integers(len(room.open_doors)))]
        wall = room.walls[k]
        mid = wall["p"] + wall["u"] * (a + bb) / 2
        for _ in range(12):
            dist = float(rng.uniform(1.2, 4.0))
            side = float(rng.normal(0.0, 0.6))
            xy = mid + wall["n"] * dist + wall["u"] * side
            eye = np.array([xy[0], xy[1], float(rng.uniform(*cc.height_m))])
            if free(eye):
                beyond = mid - wall["n"] * float(rng.uniform(1.0, 2.5))
                return make_camera(ctx, rng, eye, np.array([beyond[0], beyond[1], eye[2] - 0.3]))
        return None

    def sample(rng: np.random.Generator):  # noqa: ANN202
        u = rng.random()
        cam = None
        if u < close_up_prob:
            cam = close_up(rng)
        elif room.open_doors and u < close_up_prob + DOORWAY_VIEW_PROB:
            cam = doorway(rng)
        return cam if cam is not None else base(rng)

    return sample
