"""What every recipe sampler receives (a Context) and returns (a Draft), and its random streams.

Randomness: one attempt at a scene is keyed by (recipe, seed, index, attempt). Each phase of a sampler (the room,
the furniture, the clutter, the lights, the camera, ...) draws from a stream of its own, and each object within a
phase from a stream of its own: ``ctx.child("furnish", k)`` is
``numpy.random.default_rng(SeedSequence([recipe, seed, index, attempt, hash("furnish"), k]))``. So a change to what
one phase or one object draws (a new furniture kind, another material) does not reshuffle the draws of any other
phase or object. Nothing reads global random state or the clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rgbify.scenes.builder import Model, SceneBuilder
from rgbify.scenes.materials import from_file, sample_material
from rgbify.scenes.recipe import RecipeConfig
from rgbify.scenes.spec import Camera, Material, World


def name_hash(name: str) -> int:
    """A stable 64-bit number for a name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def stream(key: tuple[int, ...], phase: str, *index: int) -> np.random.Generator:
    """The random stream of ``phase`` (and of object ``index`` within it) of the attempt ``key``."""
    return np.random.default_rng(np.random.SeedSequence([*key, name_hash(phase), *(int(i) for i in index)]))


class Reject(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A sampled scene or view is not usable; ``reason`` is a short stable key counted by `scenes stats`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Draft:
    """What a recipe sampler returns: the scene without its camera, and a way to draw cameras for it."""

    builder: SceneBuilder
    world: World
    sample_camera: Callable[[np.random.Generator], Camera]
    meta: dict[str, Any] = field(default_factory=dict)
    enclosed: bool = True
    """Indoor-like (light bounces inside a closed room) rather than open sky; used by the exposure estimate."""
    interior: tuple[float, float] | None = None
    """For rooms: (interior surface area in m^2, area-weighted albedo of walls, floor and ceiling)."""


@dataclass(frozen=True)
class Context:
    """Per-attempt inputs handed to every sampler, and the random stream of the phase or object at hand."""

    config: RecipeConfig
    key: tuple[int, ...]
    """(recipe name hash, seed, index, attempt): the root of every stream of this attempt."""
    rng: np.random.Generator
    """The stream of this phase or object (see :meth:`child`)."""
    assets: Any = None
    images: tuple[str, ...] = ()
    hdris: tuple[str, ...] = ()
    catalog: Any = None
    """The Sweet Home 3D catalogue library (rgbify.scenes.catalog.Catalog) when the recipe uses it."""
    room: str = "generic"
    """The room type being furnished (rgbify.scenes.rooms): which catalogue objects suit its surfaces."""

    @staticmethod
    def root(config: RecipeConfig, seed: int, index: int, attempt: int, **kw: Any) -> Context:
        if seed < 0 or index < 0:
            raise ValueError(f"seed ({seed}) and index ({index}) must be non-negative integers")
        key = (name_hash(config.name), int(seed), int(index), int(attempt))
        return Context(config=config, key=key, rng=stream(key, "scene"), **kw)

    def child(self, phase: str, *index: int) -> Context:
        """This context with the stream of ``phase`` (and of object ``index`` within it)."""
        return dataclasses.replace(self, rng=stream(self.key, phase, *index))

    def scope(self, phase: str, *index: int) -> Context:
        """As :meth:`child`, and every stream drawn from it below is its own: a part of the scene built by the same
        code as another (a neighbouring room furnished as a room is) draws other numbers than that one."""
        return dataclasses.replace(self, key=(*self.key, name_hash(phase), *(int(i) for i in index)),
                                   rng=stream(self.key, phase, *index))

    def material(self, model: Model, texture_prob: float | None = None) -> tuple[Material, ...]:
        """A material for each of the model's slots (slot 0 from its material hint, then its parts' families; a
        mesh file's slots from its own materials)."""
        if model.file_materials:
            return tuple(from_file(self.rng, fm) for fm in model.file_materials)
        hints = (model.material_hint, *model.slot_hints)
        return tuple(sample_material(self.rng, h, self.config.materials, model.class_name if k == 0 else "",
                                     list(self.images), texture_prob) for k, h in enumerate(hints))

    def temperature(self) -> float:
        return round(float(self.rng.uniform(*self.config.lighting.temperature_k)), 1)
