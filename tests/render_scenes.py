"""Small test scenes for the render tests, built straight from spec dataclasses (no recipes)."""

from __future__ import annotations

import numpy as np

from rgbify.scenes.spec import (
    Camera,
    InlineMesh,
    Light,
    Material,
    Object,
    Primitive,
    RenderSettings,
    SceneSpec,
    look_at,
    matrix4,
)


def translate(x: float, y: float, z: float, rot_z_deg: float = 0.0) -> tuple:
    c, s = np.cos(np.radians(rot_z_deg)), np.sin(np.radians(rot_z_deg))
    return matrix4([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, z], [0, 0, 0, 1]])


def oracle_scene(width: int = 64, height: int = 48, samples: int = 4) -> SceneSpec:
    """Non-square, off-centre principal point, rolled camera; flat and smooth meshes, an inline quad mesh."""
    cam = Camera.from_hfov(width, height, 60.0, look_at((3.0, -4.0, 2.5), (0.0, 0.0, 0.3), roll_deg=12.0),
                           cx=(width - 1) / 2 - 3.7 * width / 64, cy=(height - 1) / 2 + 2.1 * height / 48)
    wedge = InlineMesh(vertices=((0, 0, 0), (0.8, 0, 0), (0.8, 0.5, 0), (0, 0.5, 0), (0, 0, 0.6), (0, 0.5, 0.6)),
                       faces=((0, 3, 2, 1), (0, 1, 4), (3, 5, 2), (1, 2, 5, 4), (0, 4, 5, 3)))
    objects = (
        Object("floor", Primitive("plane", size=(8.0, 8.0, 1.0)), "floor", 1),
        Object("box", Primitive("box", size=(1.0, 0.8, 0.6)), "box", 2, world_from_object=translate(0, 0.5, 0.3, 25),
               material=Material(base_color=(0.8, 0.2, 0.1))),
        Object("ball", Primitive("sphere", size=(0.8, 0.8, 0.8), segments=16), "ball", 3, shading="smooth",
               world_from_object=translate(-0.8, -0.5, 0.4),
               material=Material(base_color=(0.9, 0.95, 1.0), transmission=1.0, roughness=0.0)),  # glass
        Object("ring", Primitive("torus", size=(0.9, 0.9, 0.25), segments=20), "ring", 4, shading="smooth",
               world_from_object=translate(0.9, -0.9, 0.125), material=Material(base_color=(0.2, 0.8, 0.2))),
        Object("wedge", wedge, "box", 5, world_from_object=translate(-1.2, 1.2, 0.0, -30)),
        Object("post", Primitive("cylinder", size=(0.3, 0.3, 1.2), segments=12), "post", 6, shading="smooth",
               world_from_object=translate(0.3, -1.6, 0.6), material=Material(alpha=0.4)),  # see-through
    )
    return SceneSpec(camera=cam, objects=objects,
                     lights=(Light("sun", world_from_light=look_at((2, -1, 5), (0, 0, 0)), power=3.0),
                             Light("point", world_from_light=translate(-2, -2, 3), power=300.0)),
                     classes=("floor", "box", "ball", "ring", "post"),
                     render=RenderSettings(samples=samples, denoise=False)).validate()


def tiny_scene(width: int = 11, height: int = 7, samples: int = 2) -> SceneSpec:
    """A 11x7 box on a floor, for fast plumbing tests."""
    cam = Camera.from_hfov(width, height, 50.0, look_at((2.0, -2.5, 1.5), (0.0, 0.0, 0.3)))
    objects = (Object("floor", Primitive("plane", size=(6.0, 6.0, 1.0)), "floor", 1),
               Object("box", Primitive("box", size=(0.8, 0.8, 0.6)), "box", 2, world_from_object=translate(0, 0, 0.3)))
    return SceneSpec(camera=cam, objects=objects, lights=(Light("sun", power=2.0),), classes=("floor", "box"),
                     render=RenderSettings(samples=samples, denoise=False)).validate()


def slow_scene() -> SceneSpec:
    """A scene that keeps a worker busy for several seconds (a 2-million-triangle smooth sphere, many samples)."""
    base = tiny_scene(width=160, height=120, samples=100000)
    ball = Object("ball", Primitive("sphere", size=(0.5, 0.5, 0.5), segments=1400), "box", 3, shading="smooth",
                  world_from_object=translate(0.5, -0.5, 0.25))
    return SceneSpec(camera=base.camera, objects=base.objects + (ball,), lights=base.lights, classes=base.classes,
                     render=base.render).validate()
