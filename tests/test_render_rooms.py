"""Ground truth stays exact on sampled scenes: a kitchen of Sweet Home 3D catalogue meshes (their own materials,
textures and UVs) with clutter settled by the physics step, and a street with catalogue people and cars in front
of a facade of inset windows, rendered by Cycles and compared with the independent ray-casting oracle
(tests/oracles/raycast.py) as tests/test_render_cycles.py does for its hand-made scene."""

from __future__ import annotations

import numpy as np
import pytest
from oracles.raycast import cast

from rgbify.scenes import load_recipe, sample_scene
from rgbify.scenes.catalog import find_catalogs

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender,
              pytest.mark.skipif(not find_catalogs(), reason="sweethome3d-furniture is not installed")]


def _street():
    """A sampled street seen from the sidewalk, 6 m from a catalogue person, a building front behind."""
    import dataclasses

    from rgbify.scenes.road import Road
    from rgbify.scenes.spec import Camera, look_at

    spec = sample_scene(load_recipe("outdoor", resolution=(128, 96), samples=2), 4, 0)
    street = dict(spec.meta)["street"]
    walking = {pid for _, pid in street["cyclists"]}
    person = next(o for o in spec.objects if o.class_name == "person" and o.instance_id not in walking)
    p = np.asarray(person.world_from_object)[:3, 3]
    road = Road(street["curvature_per_m"], street["grade"])  # the street may curve and rise: its own coordinates
    s, t = (float(x) for x in road.st(p[0], p[1]))
    eye = (*road.xy(s - 5.0, t - np.sign(t) * 3.0), p[2] + 1.45)
    camera = Camera.from_hfov(128, 96, 60.0, look_at(eye, (*road.xy(s, t + np.sign(t) * 4.0), p[2] + 1.85)))
    return dataclasses.replace(spec, camera=camera)


@pytest.fixture(scope="module", params=["kitchen", "street"])
def scene(request):
    if request.param == "street":
        return _street()
    cfg = load_recipe("kitchen", resolution=(128, 96), samples=2)
    for index in range(8):  # the first view with catalogue meshes and settled, tilted clutter in it
        spec = sample_scene(cfg, 3, index)
        meta = dict(spec.meta)
        physics = meta.get("physics", {})
        if meta.get("assets") and physics.get("loose", 0) > 0 and physics.get("tilted", 0) > 0:
            return spec
    pytest.fail("no kitchen of seed 3 has both catalogue meshes and tilted clutter")


@pytest.fixture(scope="module")
def rendered(scene):
    from rgbify.render import render

    return render(scene)


@pytest.fixture(scope="module")
def oracle(scene):
    return cast(scene)


def test_the_scene_is_what_it_should_test(scene, rendered):
    files = {o.instance_id for o in scene.objects if "sh3d" in str(o.geometry)}
    seen = {int(i) for i in np.unique(rendered.instance)}
    street = dict(scene.meta)["kind"] == "outdoor"
    assert len(files & seen) >= (1 if street else 2), "catalogue meshes in view"
    share = int((np.isin(rendered.instance, list(files))).sum()) / rendered.instance.size
    assert share >= (0.01 if street else 0.1)
    if street:
        ids = {o.instance_id: o.class_name for o in scene.objects}
        assert "person" in {ids.get(int(i)) for i in seen} and "building" in {ids.get(int(i)) for i in seen}


def test_depth_and_ids_match_oracle(rendered, oracle):
    n = rendered.depth.size
    assert (rendered.instance == oracle.instance).sum() >= 0.999 * n
    assert (np.isfinite(rendered.depth) == np.isfinite(oracle.depth)).sum() >= 0.999 * n
    both = np.isfinite(rendered.depth) & np.isfinite(oracle.depth)
    rel = np.abs(rendered.depth[both].astype(np.float64) - oracle.depth[both]) / oracle.depth[both]
    assert (rel <= 1e-5).sum() >= 0.999 * both.sum(), np.quantile(rel, [0.5, 0.999, 1.0])


def test_normals_match_oracle(rendered, oracle):
    same = (rendered.instance == oracle.instance) & (oracle.instance > 0)
    cos = np.clip(np.sum(rendered.normals.astype(np.float64) * oracle.normals, axis=-1), -1, 1)
    angle = np.degrees(np.arccos(cos))
    flat, smooth = same & ~oracle.smooth, same & oracle.smooth
    assert flat.sum() > 1000
    assert (angle[flat] <= 0.1).sum() >= 0.999 * flat.sum(), angle[flat].max()
    if smooth.any():
        assert (angle[smooth] <= 1.0).sum() >= 0.999 * smooth.sum(), angle[smooth].max()
