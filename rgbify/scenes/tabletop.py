"""The ``tabletop`` recipe: a table crowded with small objects, seen from 0.3-2 m, in a simple room."""

from __future__ import annotations

import math

import numpy as np

from rgbify.scenes import models
from rgbify.scenes.builder import Builder, pose
from rgbify.scenes.common import Context, Draft, Reject, make_camera
from rgbify.scenes.indoor import Room, _against_wall, build_room, interior, light_room, scatter_clutter


def sample_tabletop(ctx: Context) -> Draft:
    rng, lay = ctx.rng, ctx.config.layout
    b = Builder()
    room_layout = _room_layout(ctx)
    room, floor_id = build_room(room_layout, b)
    centre = room.poly.mean(0)
    tw, td = float(rng.uniform(*lay.table_width_m)), float(rng.uniform(*lay.table_depth_m))
    table = models.table(rng, "round" if rng.random() < 0.2 else "dining", width=tw, depth=td,
                         height=float(rng.uniform(*lay.table_height_m)))
    material = ctx.material(table)
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
    for _ in range(int(rng.integers(lay.extra_furniture[0], lay.extra_furniture[1] + 1))):
        m = models.shelf(rng) if rng.random() < 0.5 else models.cabinet(rng)
        _against_wall(ctx, b, room, m, floor_id)
    scatter_clutter(ctx, b, int(rng.integers(lay.objects[0], lay.objects[1] + 1)), kinds=("table", "box"))
    scatter_clutter(ctx, b, int(rng.integers(0, 5)), kinds=("shelf", "cabinet"))
    light_room(ctx, b, room)
    from rgbify.scenes.common import sky_world
    world = sky_world(ctx)
    top_z = table.height
    on_table = [p for p in b.placed if p.support == table_id]
    return Draft(builder=b, world=world, sample_camera=_camera_sampler(ctx, b, room, table_id, top_z, on_table),
                 meta={"table": {"width_m": round(tw, 3), "depth_m": round(td, 3), "height_m": round(top_z, 3)},
                       "objects_on_table": len(on_table)}, enclosed=True, interior=interior(b, room))


def _room_layout(ctx: Context) -> Context:
    """The tabletop room as an indoor Context: a plain rectangle, one door, a window or two."""
    from dataclasses import replace

    from rgbify.scenes.recipe import IndoorLayout
    lay = ctx.config.layout
    indoor = IndoorLayout(room_width_m=lay.room_size_m, room_depth_m=lay.room_size_m,
                          room_height_m=lay.room_height_m, l_shape_prob=0.0, doors=(1, 1), windows=(0, 2))
    return replace(ctx, config=replace(ctx.config, kind="indoor", layout=indoor))


def _camera_sampler(ctx: Context, b: Builder, room: Room, table_id: int, top_z: float, on_table: list):  # noqa: ANN202
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
            from rgbify.scenes.indoor import inside_polygon
            if b.colliding_ids(probe) or not inside_polygon(room.poly, eye[0], eye[1], 0.2):
                continue
            return make_camera(ctx, eye, target, pitch_range=(-89.0, 89.0))
        raise Reject("camera_inside_geometry", "no free spot for the camera")

    return sample
