"""Cycles ground truth against an independent oracle (trimesh + embreex ray casting in float64)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from oracles.raycast import cast
from render_scenes import oracle_scene, tiny_scene, translate

from rgbify.render import RenderResult, SceneError, render, write_render_dir
from rgbify.scenes.spec import Camera, MeshFile, Object, spec_to_json

pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def scene():
    return oracle_scene(96, 72, samples=2)


@pytest.fixture(scope="module")
def rendered(scene) -> RenderResult:
    return render(scene)


@pytest.fixture(scope="module")
def oracle(scene):
    return cast(scene)


def test_arrays_follow_conventions(rendered: RenderResult, scene):
    h, w = scene.camera.height, scene.camera.width
    assert rendered.rgb.shape == (h, w, 3) and rendered.rgb.dtype == np.uint8
    assert rendered.depth.shape == (h, w) and rendered.depth.dtype == np.float32
    assert rendered.normals.shape == (h, w, 3) and rendered.normals.dtype == np.float32
    assert rendered.instance.dtype == np.int32 and rendered.semantic.dtype == np.int32
    assert rendered.edge.dtype == bool and rendered.edge.shape == (h, w)
    np.testing.assert_allclose(rendered.K, scene.camera.K)
    np.testing.assert_allclose(rendered.world_from_camera, np.asarray(scene.camera.world_from_camera))
    miss = ~np.isfinite(rendered.depth)
    assert miss.any() and not miss.all()
    assert np.all(np.isposinf(rendered.depth[miss]))
    # "nothing hit" is +inf / 0 / 0 consistently
    assert np.array_equal(miss, rendered.instance == 0)
    assert np.array_equal(miss, rendered.semantic == 0)
    assert np.all(rendered.normals[miss] == 0)
    norms = np.linalg.norm(rendered.normals[~miss], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # normals face the camera: dot with the view ray < 0
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u - scene.camera.cx) / scene.camera.fx, (v - scene.camera.cy) / scene.camera.fy,
                     np.ones((h, w))], axis=-1)
    assert np.all(np.sum(rendered.normals * rays, axis=-1)[~miss] < 0)
    table = {d["id"]: d for d in rendered.instances}
    for o in scene.objects:
        assert table[o.instance_id]["class_name"] == o.class_name
        assert table[o.instance_id]["class_index"] == scene.class_index(o.class_name)
        assert table[o.instance_id]["object_name"] == o.name
        assert table[o.instance_id]["pixel_count"] == int((rendered.instance == o.instance_id).sum())
        assert np.all(rendered.semantic[rendered.instance == o.instance_id] == scene.class_index(o.class_name))
    assert rendered.blender_version.startswith("4.5")
    assert {"scene_build", "rgb_render", "data_render", "readback", "total"} <= set(rendered.timings)


def test_depth_and_ids_match_oracle(rendered: RenderResult, oracle):
    n = rendered.depth.size
    assert (rendered.instance == oracle.instance).sum() >= 0.999 * n
    assert (np.isfinite(rendered.depth) == np.isfinite(oracle.depth)).sum() >= 0.999 * n
    both = np.isfinite(rendered.depth) & np.isfinite(oracle.depth)
    rel = np.abs(rendered.depth[both].astype(np.float64) - oracle.depth[both]) / oracle.depth[both]
    assert (rel <= 1e-5).sum() >= 0.999 * both.sum(), np.quantile(rel, [0.5, 0.999, 1.0])


def test_normals_match_oracle(rendered: RenderResult, oracle):
    same = (rendered.instance == oracle.instance) & (oracle.instance > 0)
    cos = np.clip(np.sum(rendered.normals.astype(np.float64) * oracle.normals, axis=-1), -1, 1)
    angle = np.degrees(np.arccos(cos))
    flat, smooth = same & ~oracle.smooth, same & oracle.smooth
    assert flat.sum() > 1000 and smooth.sum() > 100
    assert (angle[flat] <= 0.1).sum() >= 0.999 * flat.sum(), angle[flat].max()
    assert (angle[smooth] <= 1.0).sum() >= 0.999 * smooth.sum(), angle[smooth].max()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backprojected_depth_lands_on_oracle_surface(rendered: RenderResult, oracle, scene):
    h, w = rendered.depth.shape
    v, u = np.mgrid[0:h, 0:w]
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    same = (rendered.instance == oracle.instance) & (oracle.instance > 0)
    cam_pts = (pix @ np.linalg.inv(rendered.K).T) * rendered.depth.astype(np.float64)[..., None]
    world = cam_pts @ rendered.world_from_camera[:3, :3].T + rendered.world_from_camera[:3, 3]
    # distance to the plane of the triangle the oracle hit, relative to depth
    dist = np.abs(np.sum((world - oracle.points_world) * oracle.plane_normals_world, axis=-1))
    rel = dist[same] / oracle.depth[same]
    assert (rel <= 1e-5).sum() >= 0.999 * same.sum(), rel.max()
    assert np.linalg.norm(world - oracle.points_world, axis=-1)[same].max() < 1e-3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_normals_from_depth_gradients_agree_on_planes(rendered: RenderResult, scene):
    """Self-test without the oracle: on planar patches, the normal of the back-projected depth = the normal pass."""
    h, w = rendered.depth.shape
    v, u = np.mgrid[0:h, 0:w]
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    pts = (pix @ np.linalg.inv(rendered.K).T) * rendered.depth.astype(np.float64)[..., None]
    n = rendered.normals.astype(np.float64)
    c = (slice(1, -1), slice(1, -1))
    left, right = pts[1:-1, :-2], pts[1:-1, 2:]
    up, down = pts[:-2, 1:-1], pts[2:, 1:-1]
    grad_n = np.cross(right - left, down - up)
    grad_n /= np.linalg.norm(grad_n, axis=-1, keepdims=True) + 1e-300
    ids = rendered.instance
    # planar neighbourhoods: one instance, identical shading normals (no crease, flat shading)
    same = np.ones((h - 2, w - 2), dtype=bool)
    for sl in ((slice(1, -1), slice(None, -2)), (slice(1, -1), slice(2, None)), (slice(None, -2), slice(1, -1)),
               (slice(2, None), slice(1, -1))):
        same &= (ids[sl] == ids[c]) & (np.sum(n[sl] * n[c], axis=-1) > 1 - 1e-7)
    same &= ids[c] > 0
    assert same.sum() > 1000
    angle = np.degrees(np.arccos(np.clip(np.abs(np.sum(grad_n * n[c], axis=-1)), -1, 1)))
    assert np.quantile(angle[same], 0.999) < 0.05, angle[same].max()


def test_edge_mask_covers_every_mixed_pixel(rendered: RenderResult, scene):
    """Non-edge pixels see a single instance across their whole filter footprint (oracle, 7x7 sub-samples)."""
    cam = scene.camera
    ids = []
    for dv in np.linspace(-0.75, 0.75, 7):
        for du in np.linspace(-0.75, 0.75, 7):
            shifted = dataclasses.replace(cam, cx=cam.cx - du, cy=cam.cy - dv)
            ids.append(cast(dataclasses.replace(scene, camera=shifted)).instance)
    ids = np.stack(ids)
    mixed = np.any(ids != ids[0], axis=0)
    missed = mixed & ~rendered.edge
    assert missed.sum() <= 0.001 * mixed.size, np.argwhere(missed)
    # neighbouring centres of different instances are both edge pixels
    dh = rendered.instance[:, 1:] != rendered.instance[:, :-1]
    assert np.all(rendered.edge[:, 1:][dh]) and np.all(rendered.edge[:, :-1][dh])
    assert rendered.edge.mean() < 2.5 * mixed.mean()


def test_glass_and_alpha_are_seen_as_first_surface(rendered: RenderResult, scene):
    glass = next(o for o in scene.objects if o.material.transmission == 1.0)
    see_through = next(o for o in scene.objects if o.material.alpha < 1.0)
    assert (rendered.instance == glass.instance_id).sum() > 20
    assert (rendered.instance == see_through.instance_id).sum() > 20


def test_render_dir_files(tmp_path, rendered: RenderResult, scene):
    import trimesh
    from PIL import Image

    write_render_dir(rendered, scene, tmp_path)
    names = {"rgb.png", "depth.npy", "normals.npy", "instance.npy", "semantic.npy", "edge.npy", "camera.json",
             "scene.json", "geometry.glb"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    assert np.array_equal(np.asarray(Image.open(tmp_path / "rgb.png")), rendered.rgb)
    assert np.array_equal(np.load(tmp_path / "depth.npy"), rendered.depth)
    cam = json.loads((tmp_path / "camera.json").read_text())
    assert cam["width"] == 96 and cam["height"] == 72
    np.testing.assert_array_equal(np.asarray(cam["K"]), rendered.K)
    meta = json.loads((tmp_path / "scene.json").read_text())
    assert meta["instances"] == rendered.instances
    assert {"scene_build", "rgb_render", "data_render", "readback", "write"} <= set(meta["timings"])
    glb = trimesh.load(tmp_path / "geometry.glb", force="scene")
    assert set(glb.graph.nodes_geometry) == {str(o.instance_id) for o in scene.objects}


def test_bad_mesh_file_names_the_file(tmp_path):
    spec = tiny_scene()
    bad = tmp_path / "broken.obj"
    bad.write_text("this is not an obj file\nv 1 2\nf 1 2 9\n")
    obj = Object("thing", MeshFile(str(bad)), "box", 9)
    spec = dataclasses.replace(spec, objects=spec.objects + (obj,))
    with pytest.raises(SceneError, match="broken.obj"):
        render(spec)
    gone = Object("gone", MeshFile("/nope/x.glb"), "box", 9)
    missing = dataclasses.replace(spec, objects=spec.objects[:-1] + (gone,))
    with pytest.raises(SceneError, match="/nope/x.glb"):
        render(missing)


def test_instance_ids_beyond_blender_limit_are_refused():
    spec = tiny_scene()
    big = dataclasses.replace(spec, objects=(dataclasses.replace(spec.objects[0], instance_id=40000),))
    with pytest.raises(SceneError, match="32767"):
        render(big)


def test_non_square_pixels_are_refused():
    spec = tiny_scene()
    cam = dataclasses.replace(spec.camera, fy=spec.camera.fx * 1.1)
    with pytest.raises(SceneError, match="fx"):
        render(dataclasses.replace(spec, camera=cam))


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    import os

    import rgbify

    root = os.path.dirname(os.path.dirname(os.path.abspath(rgbify.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "rgbify", *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_cli_renders_a_scene_file_with_overrides(tmp_path):
    spec = tiny_scene()
    (tmp_path / "scene.json").write_text(spec_to_json(spec))
    out = tmp_path / "out"
    p = _cli("render", "--scene", str(tmp_path / "scene.json"), "--out", str(out), "--resolution", "13x9",
             "--samples", "1")
    assert p.returncode == 0, p.stderr
    assert np.load(out / "depth.npy").shape == (9, 13)
    meta = json.loads((out / "scene.json").read_text())
    assert meta["spec"]["render"]["samples"] == 1
    assert meta["spec"]["camera"]["width"] == 13
    # a render directory's scene.json is itself a valid --scene input
    p2 = _cli("render", "--scene", str(out / "scene.json"), "--out", str(tmp_path / "again"))
    assert p2.returncode == 0, p2.stderr
    assert np.array_equal(np.load(tmp_path / "again" / "instance.npy"), np.load(out / "instance.npy"))


def test_cli_reports_bad_input_in_one_line(tmp_path):
    p = _cli("render", "--scene", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "nope.json" in p.stderr and "Traceback" not in p.stderr
    p = _cli("render", "--scene", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o"), "--resolution", "12")
    assert p.returncode == 2


def test_resized_camera_keeps_the_view():
    cam = Camera.from_hfov(64, 48, 60.0, cx=30.0, cy=20.0)
    small = cam.resized(16, 12)
    assert small.hfov_deg == pytest.approx(cam.hfov_deg)


def test_every_material_light_and_world_feature_renders(tmp_path):
    """Every pattern, an image texture, material slots, every light kind, an HDRI file, a built-in HDRI, the
    physical sky, AgX with exposure and white balance, depth of field and the post-process render; the ground
    truth of a scene with all of them still matches the oracle exactly."""
    from PIL import Image

    from rgbify.scenes.spec import PATTERNS, InlineMesh, Light, Material, PostProcess, RenderSettings, World, look_at

    tex = tmp_path / "tex.png"
    Image.fromarray((np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)).convert("RGB").save(tex)
    sky = tmp_path / "sky.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[:, None, None], (1, 32, 3))).save(sky)
    base = tiny_scene(width=24, height=16, samples=2)
    objs = [base.objects[0]] + [
        dataclasses.replace(base.objects[1], name=f"o{i}", instance_id=10 + i,
                            material=Material(pattern=k, color2=(0.1, 0.9, 0.2), bump_m=0.001, roughness_variation=0.3,
                                              pattern_seed=float(i), emission_strength=float(i % 3)))
        for i, k in enumerate(PATTERNS)]
    objs.append(dataclasses.replace(base.objects[1], name="img", instance_id=200,
                                    material=Material(image_texture=str(tex), metallic=0.5, image_scale_m=0.3)))
    two = InlineMesh(((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)), ((0, 1, 2), (1, 3, 2)), face_materials=(0, 1))
    objs.append(dataclasses.replace(base.objects[1], name="slots", instance_id=201, geometry=two,
                                    material=Material(base_color=(1, 0, 0)),
                                    materials=(Material(base_color=(0, 0, 1)),)))
    lights = (Light("point", power=50.0, color=(1.0, 0.5, 0.5)), Light("spot", look_at((0, 0, 3), (0, 0, 0)), 80.0),
              Light("area", look_at((1, 1, 3), (0, 0, 0)), 40.0, temperature_k=3000.0, size=0.5),
              Light("sun", power=1.0, size=1.0))
    spec = dataclasses.replace(base, objects=tuple(objs), lights=lights,
                               world=World(hdri=str(sky), hdri_rotation_deg=45.0, strength=0.5))
    r = render(spec)
    assert r.rgb.std() > 0 and np.isfinite(r.depth).any()
    camera = dataclasses.replace(spec.camera, f_number=2.0, focus_distance_m=3.0)
    post = PostProcess(noise_std=2.0, jpeg_quality=80, vignetting=0.3, chromatic_aberration_px=0.5,
                       motion_blur_px=2.0, seed=3)
    for world in (World(hdri="builtin:forest", strength=0.7), World(physical_sky=True, sun_elevation_deg=30.0,
                                                                      strength=0.05)):
        looks = dataclasses.replace(spec, camera=camera, world=world,
                                    render=RenderSettings(samples=2, view_transform="AgX", exposure_ev=0.5,
                                                          white_balance_k=4000.0, post=post))
        r2 = render(looks)
        assert r2.rgb.std() > 0 and not np.array_equal(r2.rgb, r.rgb)
        for name in ("depth", "normals", "instance", "semantic"):  # ground truth untouched by all of it
            assert np.array_equal(getattr(r2, name), getattr(r, name)), name
        assert (r2.edge >= r.edge).all() and r2.edge.sum() > r.edge.sum()  # blur widens the mixed-pixel mask
    missing = dataclasses.replace(spec, world=World(hdri=str(tmp_path / "nosky.hdr")))
    with pytest.raises(SceneError, match="nosky.hdr"):
        render(missing)
    bad_tex = dataclasses.replace(spec, objects=spec.objects[:-2] + (dataclasses.replace(
        spec.objects[-2], material=Material(image_texture=str(tmp_path / "notex.png"))),))
    with pytest.raises(SceneError, match="notex.png"):
        render(bad_tex)
    too_few = dataclasses.replace(spec, objects=spec.objects[:-1] + (dataclasses.replace(spec.objects[-1],
                                                                                          materials=()),))
    with pytest.raises(SceneError, match="2 material slots"):
        render(too_few)


def test_a_thin_pane_lets_the_sun_through_without_caustics():
    """A thin glass pane between the sun and the floor lets the sun light the floor by direct (next-event) light
    with caustics off, as bright as no pane times its Fresnel transmission; a refracting slab in the same place
    (thin off) leaves only caustic paths, so with caustics off the floor under it is in shadow."""
    from rgbify.scenes.spec import Light, Material, Object, Primitive, RenderSettings, World, look_at

    base = tiny_scene(width=24, height=16)
    cam = dataclasses.replace(base.camera, world_from_camera=look_at((0.0, -0.01, 4.0), (0.0, 0.0, 0.0)))
    rs = RenderSettings(samples=16, denoise=False, caustics=False)

    def floor_mean(pane: Material | None) -> float:
        objs = [base.objects[0]]
        if pane is not None:  # a 3 m pane 1 m above the floor, under the sun, seen through by the camera
            objs.append(Object("pane", Primitive("box", size=(3.0, 3.0, 0.01)), "box", 2,
                               world_from_object=translate(0, 0, 1.0), material=pane))
        spec = dataclasses.replace(base, camera=cam, objects=tuple(objs), render=rs, world=World(strength=0.0),
                                   lights=(Light("sun", power=3.0),))  # straight down
        return float(render(spec).rgb[4:12, 6:18].mean())

    glass = dict(base_color=(1.0, 1.0, 1.0), roughness=0.0, transmission=1.0, ior=1.5)
    open_sky, thin, slab = floor_mean(None), floor_mean(Material(**glass, thin=True)), floor_mean(Material(**glass))
    assert open_sky > 100
    assert 0.75 * open_sky < thin <= open_sky  # two Fresnel passes (sun through, view through) at normal incidence
    assert slab < 0.3 * open_sky


def test_surface_detail_is_for_camera_rays_and_glows_beside_lamps_are_not_lights(monkeypatch):
    """Bump and roughness variation are seen by camera rays only: with no bounces (camera rays and direct light
    alone) the picture is the same bit for bit with and without that saving, and the bump does show. A glowing
    material is sampled as a light only in a scene without lamps of its own."""
    from rgbify.render import cycles, shading
    from rgbify.scenes.geometry import scene_meshes
    from rgbify.scenes.spec import Material, RenderSettings

    base = tiny_scene(width=24, height=16)
    bumpy = Material(base_color=(0.6, 0.5, 0.4), color2=(0.2, 0.2, 0.2), pattern="stone", bump_m=0.02,
                     roughness_variation=0.4, pattern_scale_m=0.3)
    floor = dataclasses.replace(base.objects[0], material=bumpy)
    spec = dataclasses.replace(base, objects=(floor, base.objects[1]),
                               render=RenderSettings(samples=4, denoise=False, max_bounces=0))
    images = {}
    for only in (True, False):
        monkeypatch.setattr(shading, "CAMERA_ONLY_DETAIL", only)
        images[only] = render(spec).rgb
    flat = dataclasses.replace(floor, material=dataclasses.replace(bumpy, bump_m=0.0, roughness_variation=0.0))
    plain = render(dataclasses.replace(spec, objects=(flat, base.objects[1]))).rgb
    assert np.array_equal(images[True], images[False])
    assert np.abs(images[True].astype(int) - plain.astype(int)).mean() > 0.3  # renders are deterministic

    glow = dataclasses.replace(base.objects[1], material=Material(emission_strength=2.0))
    for lights, sampling in ((base.lights, "NONE"), ((), "AUTO")):
        lit = dataclasses.replace(base, objects=(base.objects[0], glow), lights=lights)
        cycles.reset()
        cycles.build_scene(lit, scene_meshes(lit.objects))
        assert cycles.bpy.data.materials["box.material0"].cycles.emission_sampling == sampling


@pytest.mark.slow
def test_cli_renders_a_recipe_sample(tmp_path):
    import rgbify.scenes

    if not hasattr(rgbify.scenes, "sample_scene"):
        pytest.skip("recipes are not available in this checkout")
    p = _cli("render", "--recipe", "indoor", "--seed", "0", "--index", "1", "--out", str(tmp_path),
             "--resolution", "11x7", "--samples", "1")
    assert p.returncode == 0, p.stderr
    meta = json.loads((tmp_path / "scene.json").read_text())
    assert dict(meta["spec"]["meta"]).get("recipe") in ("indoor", None)
    assert np.load(tmp_path / "instance.npy").shape == (7, 11)


@pytest.mark.parametrize("recipe", ["tabletop", "outdoor"])
def test_the_sampler_checks_the_triangles_blender_renders(recipe):
    """The scene sampler's probe and audit and the Cycles backend take their triangles from one place
    (rgbify.scenes.geometry): the triangles the probe casts rays at are, object by object and face by face, the
    ones Blender holds after the scene is built (to Blender's float32 precision)."""
    from rgbify.render import cycles
    from rgbify.scenes import sample_scene
    from rgbify.scenes.geometry import scene_meshes
    from rgbify.scenes.probe import SceneRays

    spec = sample_scene(recipe, 0, 2)
    rays = SceneRays.build(spec.objects)
    probed = rays.mesh.triangles  # world-space, as the probe sees them
    cycles.reset()
    cycles.build_scene(spec, scene_meshes(spec.objects))
    kinds = set()
    for k, o in enumerate(spec.objects):
        ob = cycles.bpy.data.objects[o.name]
        me = ob.data
        co = np.empty(len(me.vertices) * 3, np.float32)
        me.vertices.foreach_get("co", co)
        idx = np.empty(len(me.polygons) * 3, np.int32)
        me.polygons.foreach_get("vertices", idx)
        m = np.array(ob.matrix_world, dtype=np.float64)
        world = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
        blender_tris = world[idx.reshape(-1, 3)]
        ours = probed[rays.tri_object == k]
        assert blender_tris.shape == ours.shape, o.name
        scale = max(1.0, float(np.abs(ours).max()))
        np.testing.assert_allclose(blender_tris, ours, rtol=0, atol=2e-6 * scale, err_msg=o.name)
        kinds.add(o.geometry.type)
    assert {"primitive", "mesh"} <= kinds
    cycles.reset()


@pytest.mark.slow
@pytest.mark.parametrize("recipe,index", [("indoor", 3), ("tabletop", 1), ("outdoor", 2)])
def test_recipe_scenes_match_the_oracle_with_an_hdri_and_depth_of_field(recipe, index):
    """A whole recipe scene (its real meshes, settled clutter, part materials, window panes) under a builtin HDRI
    and a wide-open f/1.4 lens: the ground truth is still the pinhole centre ray's, equal to the ray caster's."""
    from rgbify.render.cli import resize_camera
    from rgbify.scenes import sample_scene

    spec = sample_scene(recipe, 0, index)
    cam = dataclasses.replace(resize_camera(spec.camera, 96, 72), f_number=1.4, focus_distance_m=1.0)
    world = dataclasses.replace(spec.world, hdri="builtin:forest", hdri_rotation_deg=40.0, physical_sky=False)
    spec = dataclasses.replace(spec, camera=cam, world=world,
                               render=dataclasses.replace(spec.render, samples=2, denoise=False)).validate()
    r, o = render(spec), cast(spec)
    n = r.depth.size
    same = (r.instance == o.instance) & (o.instance > 0)
    assert (r.instance == o.instance).sum() >= 0.998 * n, (r.instance != o.instance).sum()
    both = np.isfinite(r.depth) & np.isfinite(o.depth)
    assert (np.isfinite(r.depth) == np.isfinite(o.depth)).all()
    rel = np.abs(r.depth[both].astype(np.float64) - o.depth[both]) / o.depth[both]
    assert (rel <= 1e-5).sum() >= 0.998 * both.sum(), np.quantile(rel, [0.5, 0.998, 1.0])
    angle = np.degrees(np.arccos(np.clip(np.sum(r.normals.astype(np.float64) * o.normals, axis=-1), -1, 1)))
    flat, smooth = same & ~o.smooth, same & o.smooth
    assert (angle[flat] <= 0.1).sum() >= 0.998 * flat.sum(), np.quantile(angle[flat], [0.5, 0.998, 1.0])
    if smooth.sum():
        assert (angle[smooth] <= 1.0).sum() >= 0.998 * smooth.sum(), np.quantile(angle[smooth], [0.5, 0.998, 1.0])
    assert r.rgb.std() > 5  # the HDRI lit it
