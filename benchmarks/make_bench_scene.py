"""Writes rgbify/data/bench_scene.json: the fixed room used by bench_render.py until the default recipe exists."""

from __future__ import annotations

import os

import numpy as np

from rgbify.scenes.spec import (
    Camera,
    Light,
    Material,
    Object,
    Primitive,
    RenderSettings,
    SceneSpec,
    World,
    look_at,
    matrix4,
    spec_to_json,
)


def pose(x, y, z, rz=0.0, rx=0.0):
    cz, sz, cx, sx = np.cos(np.radians(rz)), np.sin(np.radians(rz)), np.cos(np.radians(rx)), np.sin(np.radians(rx))
    r = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, (x, y, z)
    return matrix4(m)


def build() -> SceneSpec:
    objs = []

    def add(name, geom, cls, at, shading="flat", **mat):
        objs.append(Object(name, geom, cls, len(objs) + 1, world_from_object=at, shading=shading,
                           material=Material(**mat)))

    wall = dict(base_color=(0.75, 0.72, 0.66), roughness=0.9,
                pattern="noise", pattern_scale_m=1 / 3.0, color2=(0.65, 0.62, 0.58), pattern_detail=3.0)
    add("floor", Primitive("plane", size=(6, 5, 1)), "floor", pose(0, 0, 0), base_color=(0.45, 0.3, 0.2),
        roughness=0.4, pattern="wave", pattern_scale_m=0.5, color2=(0.35, 0.22, 0.14))
    add("wall_back", Primitive("box", size=(6, 0.1, 3)), "wall", pose(0, 2.5, 1.5), **wall)
    add("wall_left", Primitive("box", size=(0.1, 5, 3)), "wall", pose(-3, 0, 1.5), **wall)
    add("wall_right", Primitive("box", size=(0.1, 5, 3)), "wall", pose(3, 0, 1.5), **wall)
    add("ceiling", Primitive("plane", size=(6, 5, 1)), "ceiling", pose(0, 0, 3, rx=180), base_color=(0.9, 0.9, 0.9))
    add("rug", Primitive("box", size=(2.4, 1.6, 0.01)), "rug", pose(0, 0.3, 0.005),
        pattern="checker", pattern_scale_m=0.25, color2=(0.1, 0.15, 0.4), base_color=(0.8, 0.75, 0.6))
    add("table_top", Primitive("box", size=(1.4, 0.8, 0.05)), "table", pose(0.2, 0.6, 0.75),
        base_color=(0.5, 0.35, 0.2), roughness=0.3)
    for i, (dx, dy) in enumerate([(-0.6, -0.33), (0.6, -0.33), (-0.6, 0.33), (0.6, 0.33)]):
        add(f"table_leg{i}", Primitive("cylinder", size=(0.06, 0.06, 0.72), segments=16), "table",
            pose(0.2 + dx, 0.6 + dy, 0.36), shading="smooth", base_color=(0.3, 0.2, 0.1))
    for i, (x, y, rz) in enumerate([(-0.8, 0.4, 90), (1.2, 0.7, -80)]):
        add(f"chair_seat{i}", Primitive("box", size=(0.45, 0.45, 0.05)), "chair", pose(x, y, 0.45, rz),
            base_color=(0.2, 0.4, 0.3))
        add(f"chair_back{i}", Primitive("box", size=(0.45, 0.05, 0.5)), "chair",
            pose(x + 0.2 * np.sin(np.radians(rz)), y - 0.2 * np.cos(np.radians(rz)), 0.72, rz),
            base_color=(0.2, 0.4, 0.3))
    add("vase", Primitive("cylinder", size=(0.16, 0.16, 0.3), segments=32), "vase", pose(0.0, 0.6, 0.925),
        shading="smooth", base_color=(0.9, 0.95, 1.0), transmission=1.0, roughness=0.05)
    add("ball", Primitive("sphere", size=(0.3, 0.3, 0.3), segments=32), "ball", pose(-1.2, -0.6, 0.15),
        shading="smooth", base_color=(0.8, 0.1, 0.1), roughness=0.2)
    add("ring", Primitive("torus", size=(0.35, 0.35, 0.08), segments=32), "ring", pose(0.5, 0.5, 0.815),
        shading="smooth", base_color=(0.9, 0.7, 0.2), metallic=1.0, roughness=0.25)
    add("shelf", Primitive("box", size=(1.2, 0.35, 1.8)), "shelf", pose(-2.2, 2.2, 0.9), base_color=(0.6, 0.6, 0.62))
    add("lamp_shade", Primitive("cone", size=(0.4, 0.4, 0.3), segments=32), "lamp", pose(2.3, 2.0, 1.6),
        shading="smooth", base_color=(0.95, 0.9, 0.7), emission_strength=3.0)
    add("lamp_pole", Primitive("cylinder", size=(0.04, 0.04, 1.5), segments=12), "lamp", pose(2.3, 2.0, 0.75),
        shading="smooth", base_color=(0.1, 0.1, 0.1), metallic=1.0)
    classes = tuple(dict.fromkeys(o.class_name for o in objs))
    cam = Camera.from_hfov(512, 512, 70.0, look_at((1.8, -2.2, 1.6), (-0.2, 0.8, 0.7)))
    lights = (Light("area", world_from_light=pose(0, 0.3, 2.9), power=60.0, size=1.0, temperature_k=4500.0),
              Light("point", world_from_light=pose(2.3, 2.0, 1.55), power=20.0, size=0.05, temperature_k=2800.0),
              Light("sun", world_from_light=pose(0, 0, 5, rz=30, rx=40), power=2.0, size=2.0))
    return SceneSpec(camera=cam, objects=tuple(objs), lights=lights, world=World(background_color=(0.3, 0.35, 0.4)),
                     render=RenderSettings(samples=64, denoise=True, seed=0), classes=classes,
                     meta=(("name", "rgbify bench room"),)).validate()


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rgbify", "data",
                        "bench_scene.json")
    with open(path, "w") as f:
        f.write(spec_to_json(build(), indent=1) + "\n")
    print(path)
