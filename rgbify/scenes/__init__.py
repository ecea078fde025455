"""Scene recipes: sample plain-data scene specs (no bpy) from a recipe, a base seed and a sample index.

    from rgbify.scenes import list_recipes, load_recipe, sample_scene, CLASSES
    config = load_recipe("indoor", resolution=(256, 256), samples=16)
    spec = sample_scene(config, seed=0, index=7)   # rgbify.scenes.spec.SceneSpec

Recipes are the TOML files in the top-level ``scenes/`` folder (shipped as ``rgbify/recipes``).
"""

from __future__ import annotations

from typing import Any

from rgbify.scenes.classes import CLASSES
from rgbify.scenes.recipe import RecipeConfig, RecipeError, list_recipes, load_recipe

__all__ = ["CLASSES", "SAMPLER_VERSION", "RecipeConfig", "RecipeError", "list_recipes", "load_recipe", "sample_scene"]

SAMPLER_VERSION = 12
"""Version of the scene sampler's output: bumped whenever the same (recipe, seed, index) gives another scene.
A dataset records it (in its config hash), so extending a dataset made by other sampler code is refused.
tests/test_scenes.py pins the scenes of each version."""


def sample_scene(config: RecipeConfig | str, seed: int, index: int, assets: Any = None):  # noqa: ANN201
    """The SceneSpec for (config, seed, index); see rgbify.scenes.sample.sample_scene."""
    from rgbify.scenes.sample import sample_scene as _sample

    return _sample(config, seed, index, assets)
