"""The ``tabletop`` recipe: a table crowded with small objects, seen from 0.3-2 m, in a simple room.

Random streams (rgbify.scenes.context): the room as the indoor recipe builds it, the table ("table"), each extra
piece of furniture ("furniture", k), each object on the table ("table_clutter", k) and on the shelves
("shelf_clutter", k), the lights and the sky."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rgbify.scenes import models
from rgbify.scenes.builder import SceneBuilder, pose
from rgbify.scenes.context import Context, Draft, Reject
from rgbify.scenes.indoor import Room, against_wall, build_room, inside_polygon, interior, light_room, scatter_clutter
from rgbify.scenes.lighting import sky_world
from rgbify.scenes.placement import make_camera
from rgbify.scenes.recipe import IndoorLayout


def sample_tabletop(ctx: Context) -> Draft:
    lay = ctx.config.layout
    b = SceneBuilder()
    room, floor_id = build_room(_room_layout(ctx.child("room")), b)
    centre = room.poly.mean(0)
    t = ctx.child("table")
    rng = t.rng
    tw, td = float(rng.uniform(*lay.table_width_m)), float(rng.uniform(*lay.table_depth_m))
    table = models.table(rng, "round" if rng.random() < 0.2 else "dining", width=tw, depth=td,
                         height=float(rng.uniform(*lay.table_height_m)))
    material = t.material(table)
    table_id = None
    for _ in range(12):  # near the middle of the room, clear of the door swings
        xy = centre + rng.normal(0.0, 0.4, 2)
        yaw = room.walls[0]["yaw"] + float(rng.uniform(-20, 20))
        w = pose(xy[0], xy[1], 0.0, yaw)
        if room.contains_model(table, w, 0.3):
            table_id = b.add(table, w, material, support=floor_id)
        if table_id is not None:
            break
    if table_id is None:
        raise Reject("layout_failed", "table does not fit")
    for k in range(int(rng.integers(lay.extra_furniture[0], lay.extra_furniture[1] + 1))):
        c = ctx.child("furniture", k)
        m = models.shelf(c.rng) if c.rng.random() < 0.5 else models.cabinet(c.rng)
        against_wall(c, b, room, m, floor_id)
    scatter_clutter(ctx, b, int(rng.integers(lay.objects[0], lay.objects[1] + 1)), kinds=("table", "box"),
                    phase="table_clutter")
    scatter_clutter(ctx, b, int(rng.integers(0, 5)), kinds=("shelf", "cabinet"), phase="shelf_clutter")
    light_room(ctx.child("lights"), b, room)
    world = sky_world(ctx.child("world"))
    top_z = table.height
    on_table = [p for p in b.placed if p.support == table_id]
    return Draft(builder=b, world=world, sample_camera=_camera_sampler(ctx, b, room, table_id, top_z, on_table),
                 meta={"table": {"width_m": round(tw, 3), "depth_m": round(td, 3), "height_m": round(top_z, 3)},
                       "objects_on_table": len(on_table)}, enclosed=True, interior=interior(b, room))


def _room_layout(ctx: Context) -> Context:
    """The tabletop room as an indoor Context: a plain rectangle, one door, a window or two."""
    lay = ctx.config.layout
    indoor = IndoorLayout(room_width_m=lay.room_size_m, room_depth_m=lay.room_size_m,
                          room_height_m=lay.room_height_m, l_shape_prob=0.0, doors=(1, 1), windows=(0, 2))
    return replace(ctx, config=replace(ctx.config, kind="indoor", layout=indoor))


def _camera_sampler(ctx: Context, b: SceneBuilder, room: Room, table_id: int, top_z: float, on_table: list):  # noqa: ANN202
    cc = ctx.config.camera

    def sample(rng: np.random.Generator):  # noqa: ANN202
        for _ in range(40):
            if on_table and rng.random() < 0.8:
                p = on_table[int(rng.integers(len(on_table)))]
                target = p.world_from_model[:3, 3].copy()
            else:
                target = next(p for p in b.placed if p.instance_id == table_id).world_from_model[:3, 3].copy()
                target[2] = top_z
            dist = float(rng.uniform(*cc.distance_m))
            el = math.radians(rng.uniform(15, 75))
            az = rng.uniform(0, 2 * math.pi)
            eye = target + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            if eye[2] > room.height - 0.2 or eye[2] < top_z + 0.05:
                continue
            probe = np.array([[eye[0], eye[1], 0.06, 0.06, 1.0, 0.0, eye[2] - 0.06, eye[2] + 0.06]])
            if b.colliding_ids(probe) or not inside_polygon(room.poly, eye[0], eye[1], 0.2):
                continue
            return make_camera(ctx, rng, eye, target, pitch_range=(-89.0, 89.0))
        raise Reject("camera_inside_geometry", "no free spot for the camera")

    return sample
