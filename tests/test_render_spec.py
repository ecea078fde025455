"""Scene spec JSON round trip and the plain-NumPy geometry shared by Blender, the oracle and geometry.glb."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from render_scenes import oracle_scene

from rgbify.scenes.geometry import GeometryError, face_normals, object_mesh, primitive_mesh, vertex_normals
from rgbify.scenes.spec import (
    SCHEMA_VERSION,
    Camera,
    InlineMesh,
    Light,
    Material,
    MeshFile,
    Object,
    Primitive,
    RenderSettings,
    SceneSpec,
    SpecError,
    World,
    look_at,
    round_trip_form,
    spec_from_json,
    spec_hash,
    spec_to_json,
)


def full_spec() -> SceneSpec:
    base = oracle_scene()
    extra = (
        Object("mesh", MeshFile("assets/chair.glb", scale=0.01), "box", 20, shading="smooth",
               material=Material(pattern="voronoi", pattern_scale_m=0.3, color2=(0.1, 0.2, 0.3),
                                 image_texture="tex.png", emission_strength=2.0, metallic=1.0)),
        Object("tri", InlineMesh(((0, 0, 0), (1, 0, 0), (0, 1, 0)), ((0, 1, 2),)), "box", 21),
    )
    lights = (Light("spot", power=50.0, color=(1.0, 0.5, 0.2), spot_angle_deg=30.0),
              Light("area", size=2.0, temperature_k=3200.0))
    return dataclasses.replace(base, objects=base.objects + extra, lights=base.lights + lights,
                               world=World(hdri="sky.exr", hdri_rotation_deg=90.0),
                               render=RenderSettings(samples=128, denoise=False, seed=7, max_bounces=4),
                               meta=(("recipe", "indoor"), ("seed", 3), ("rejects", ["overlap", "empty"])))


def test_spec_round_trips_exactly_through_json():
    spec = full_spec()
    text = spec_to_json(spec)
    again = spec_from_json(text)
    assert again == spec
    canonical = spec_to_json(again)  # numbers typed float are floats from here on (the test's mesh gave ints)
    assert spec_to_json(spec_from_json(canonical)) == canonical
    assert spec_hash(spec_from_json(canonical)) == spec_hash(again)
    assert f'"schema_version": {SCHEMA_VERSION}' in text


def test_round_trip_form_is_the_json_round_trip():
    """The sampler's shortcut (inline meshes made by geometry.inline_mesh kept as they are) gives exactly the spec
    a JSON round trip gives: equal, same JSON text; other meshes still go through JSON; a non-finite vertex still
    fails as spec_to_json does."""
    from rgbify.scenes.geometry import inline_mesh

    rng = np.random.default_rng(3)
    v = rng.normal(size=(40, 3)) * [1e-3, 10.0, 1e4]
    v[0] = (-0.0, 0.0, 1e-7)  # signed zero, a value rounded to 0
    made = inline_mesh(v, rng.integers(0, 40, size=(30, 3)))
    slotted = inline_mesh(v[:5], [[0, 1, 2], [2, 3, 4]], np.array([1, 0]))
    base = full_spec()
    extra = (Object("made", made, "box", 30), Object("slotted", slotted, "box", 31),
             Object("given", InlineMesh(((0, 0, 0), (1, 0, 0), (0, 1, 1)), ((0, 1, 2),)), "box", 32))
    spec = dataclasses.replace(base, objects=base.objects + extra)
    want = spec_from_json(spec_to_json(spec))
    got = round_trip_form(spec)
    assert got == want and spec_to_json(got) == spec_to_json(want)
    assert got.objects[-3].geometry is made and got.objects[-2].geometry is slotted  # kept, not re-read
    assert got.objects[-1].geometry.vertices[2] == (0.0, 1.0, 1.0) and isinstance(got.objects[-1].geometry.vertices
                                                                                   [2][2], float)
    v[1, 1] = np.nan
    bad = dataclasses.replace(base, objects=base.objects + (Object("nan", inline_mesh(v, [[0, 1, 2]]), "box", 30),))
    with pytest.raises(SpecError, match="non-finite"):
        round_trip_form(bad)


def test_spec_errors_name_the_field():
    text = spec_to_json(oracle_scene()).replace('"roughness"', '"roughnes"', 1)
    with pytest.raises(SpecError, match="roughnes"):
        spec_from_json(text)
    with pytest.raises(SpecError, match="schema_version"):
        spec_from_json(spec_to_json(oracle_scene()).replace(f'"schema_version": {SCHEMA_VERSION}',
                                                            '"schema_version": 999'))
    dup = dataclasses.replace(oracle_scene(), objects=oracle_scene().objects[:2] * 2)
    with pytest.raises(SpecError, match="instance_id"):
        dup.validate()


@pytest.mark.parametrize("shape", ["box", "sphere", "cylinder", "cone", "plane", "torus"])
def test_primitives_are_outward_and_fill_their_size(shape):
    import trimesh

    size = (0.6, 1.0, 1.4)
    m = primitive_mesh(Primitive(shape, size=size, segments=12))
    lo, hi = m.vertices.min(0), m.vertices.max(0)
    expect = np.array(size) if shape != "plane" else np.array([0.6, 1.0, 0.0])
    np.testing.assert_allclose(hi - lo, expect, atol=1e-12)
    if shape != "plane":
        assert trimesh.Trimesh(m.vertices, m.faces, process=False).volume > 0  # outward winding
    assert np.all(np.linalg.norm(face_normals(m), axis=1) > 0.99)


def test_smooth_sphere_normals_are_radial():
    m = primitive_mesh(Primitive("sphere", size=(2, 2, 2), segments=32))
    n = vertex_normals(m)
    radial = m.vertices / np.linalg.norm(m.vertices, axis=1, keepdims=True)
    assert np.degrees(np.arccos(np.clip(np.sum(n * radial, 1), -1, 1))).max() < 0.5


def test_inline_polygons_are_fan_triangulated_and_checked():
    o = Object("q", InlineMesh(((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)), ((0, 1, 2, 3),)), "box", 1)
    assert object_mesh(o).faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    bad = Object("q", InlineMesh(((0, 0, 0), (1, 0, 0), (1, 1, 0)), ((0, 1, 5),)), "box", 1)
    with pytest.raises(GeometryError, match="out of range"):
        object_mesh(bad)


def test_unreadable_mesh_file_is_named(tmp_path):
    p = tmp_path / "junk.ply"
    p.write_bytes(b"\x00\x01garbage")
    with pytest.raises(GeometryError, match="junk.ply"):
        object_mesh(Object("m", MeshFile(str(p)), "box", 1))


def test_mesh_file_is_loaded_and_scaled(tmp_path):
    import trimesh

    p = tmp_path / "box.obj"
    trimesh.creation.box(extents=(1, 2, 3)).export(p)
    m = object_mesh(Object("m", MeshFile(str(p), scale=0.5), "box", 1))
    np.testing.assert_allclose(m.vertices.max(0) - m.vertices.min(0), [0.5, 1.0, 1.5])


def test_camera_from_hfov_and_look_at():
    cam = Camera.from_hfov(64, 48, 90.0, look_at((0, -5, 0), (0, 0, 0)))
    assert cam.fx == pytest.approx(32.0)
    m = np.asarray(cam.world_from_camera)
    np.testing.assert_allclose(m[:3, 2], [0, 1, 0], atol=1e-12)  # optical axis towards the target
    np.testing.assert_allclose(m[:3, 1], [0, 0, -1], atol=1e-12)  # image down = world down
