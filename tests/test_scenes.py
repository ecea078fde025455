"""Scene recipes: configs, determinism, validity, user assets."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh

import rgbify
from rgbify.scenes import CLASSES, list_recipes, load_recipe, sample_scene
from rgbify.scenes.recipe import RecipeConfig, RecipeError
from rgbify.scenes.spec import spec_from_json, spec_hash, spec_to_json

ROOT = Path(rgbify.__file__).resolve().parent.parent
SCENES_PKG = Path(rgbify.__file__).resolve().parent / "scenes"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- recipes and configs ------------------------------------------------------------------------------------

def test_list_recipes_default_first():
    names = list_recipes()
    assert names[0] == "indoor"
    assert set(names) >= {"indoor", "tabletop", "outdoor"}


def test_class_vocabulary():
    assert 30 <= len(CLASSES) <= 50
    assert len(set(CLASSES)) == len(CLASSES)
    assert {"wall", "floor", "ceiling", "door", "window", "ground", "road"} <= set(CLASSES)
    assert "sky" not in CLASSES


@pytest.mark.parametrize("name", ["indoor", "tabletop", "outdoor"])
def test_load_recipe_and_round_trip(name):
    cfg = load_recipe(name)
    assert cfg.name == name and cfg.kind == name
    again = RecipeConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_overrides():
    cfg = load_recipe("indoor", resolution=(256, 128), samples=16, **{"camera.fov_deg": (40, 60)},
                      layout__furniture=(1, 2))
    assert cfg.resolution == (256, 128) and cfg.samples == 16
    assert cfg.camera.fov_deg == (40.0, 60.0) and cfg.layout.furniture == (1, 2)
    spec = sample_scene(cfg, 0, 0)
    assert (spec.camera.width, spec.camera.height) == (256, 128) and spec.render.samples == 16
    assert 39.99 <= spec.camera.hfov_deg <= 60.01


@pytest.mark.parametrize("bad, match", [({"samples": 0}, "samples"), ({"nope": 1}, "nope"),
                                        ({"camera.fov_deg": (80, 40)}, "fov_deg"),
                                        ({"camera.height_m": "tall"}, "height_m")])
def test_bad_overrides_name_the_key(bad, match):
    with pytest.raises(RecipeError, match=match):
        load_recipe("indoor", **bad)


def test_unknown_recipe_and_bad_file(tmp_path):
    with pytest.raises(RecipeError, match="unknown recipe 'kitchen'"):
        load_recipe("kitchen")
    f = tmp_path / "mine.toml"
    f.write_text('kind = "indoor"\n[layout]\nrooms = 3\n')
    with pytest.raises(RecipeError, match="rooms"):
        load_recipe(f)
    f.write_text('kind = "tabletop"\nsamples = 8\n[layout]\nobjects = [5, 6]\n')
    cfg = load_recipe(str(f))
    assert cfg.name == "mine" and cfg.samples == 8 and cfg.layout.objects == (5, 6)


def test_recipes_ship_with_the_package():
    recipes = Path(rgbify.__file__).resolve().parent / "recipes"
    assert {p.stem for p in recipes.glob("*.toml")} >= {"indoor", "tabletop", "outdoor"}


# --- determinism ----------------------------------------------------------------------------------------------

CASES = [("indoor", 0, i) for i in range(7)] + [("tabletop", 5, i) for i in range(7)] + \
        [("outdoor", 11, i) for i in range(6)]

HASH_SCRIPT = """
import json, sys
from rgbify.scenes import load_recipe, sample_scene
from rgbify.scenes.spec import spec_hash
cases = json.loads(sys.argv[1])
print(json.dumps([spec_hash(sample_scene(load_recipe(r), s, i)) for r, s, i in cases]))
"""


@pytest.mark.slow
def test_twenty_specs_are_pure_functions_of_config_seed_index():
    first = [spec_hash(sample_scene(load_recipe(r), s, i)) for r, s, i in CASES]
    again = [spec_hash(sample_scene(load_recipe(r), s, i)) for r, s, i in reversed(CASES)][::-1]
    assert first == again
    assert len(set(first)) == len(first)
    # a fresh process with a different hash salt gives the same specs
    env = _env()
    env["PYTHONHASHSEED"] = "12345"
    out = subprocess.run([sys.executable, "-c", HASH_SCRIPT, json.dumps(CASES)], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == first


PINNED_SCENES = {
    2: {"indoor": ["919e23cde6bea51e", "50cc55476ce20670"], "outdoor": ["dbd3b327d619e974", "bfd9f572eb9afb68"],
        "tabletop": ["f9e67cfb67a26c4a", "9effd11367c3c37a"]},
    3: {"indoor": ["5c2bee93a13eb955", "8d28092e23ebd1cb"], "outdoor": ["66184e6f889164a0", "b56e5ce9fa164938"],
        "tabletop": ["bf73d6c619e22381", "600b10ed4b524cc4"]},
}
"""spec_hash prefixes of the scenes (recipe, seed 0, index 0 and 1) of each SAMPLER_VERSION."""


def test_sampler_version_pins_the_scenes():
    """A dataset records SAMPLER_VERSION and refuses to be extended by another one; so whatever changes the scene
    of a (recipe, seed, index) must bump it. This test fails until it is bumped and the new scenes pinned here."""
    from rgbify.scenes import SAMPLER_VERSION

    got = {r: [spec_hash(sample_scene(r, 0, i))[:16] for i in range(2)] for r in list_recipes()}
    assert got == PINNED_SCENES.get(SAMPLER_VERSION), (
        f"the sampler's output changed ({got}): bump rgbify.scenes.SAMPLER_VERSION (now {SAMPLER_VERSION}) and pin "
        "the new hashes in PINNED_SCENES")


def test_phases_and_objects_draw_from_streams_of_their_own(monkeypatch):
    """One more draw in one picture's generator leaves every other phase's draws alone: the room, the furniture
    and the lights are the same (before child streams, every later draw of the scene shifted)."""
    from rgbify.scenes import indoor, models
    from rgbify.scenes.context import Context

    def objects_and_lights(ctx):
        d = indoor.sample_indoor(ctx)
        pictures = {o.instance_id for o in d.builder.objects if o.class_name == "picture"}
        keep = [(o.class_name, o.geometry, o.world_from_object, o.material) for o in d.builder.objects
                if o.class_name in ("wall", "floor", "ceiling", "door", "window", "table", "chair", "shelf",
                                    "cabinet", "bed", "sofa") and o.instance_id not in pictures]
        return keep, d.builder.lights, len(pictures)

    ctx = Context.root(load_recipe("indoor"), 0, 4, 0)
    before = objects_and_lights(ctx)
    real = models.picture

    def picture_with_one_more_draw(rng):
        rng.random()
        return real(rng)

    monkeypatch.setattr(indoor.models, "picture", picture_with_one_more_draw)
    after = objects_and_lights(ctx)
    assert before[2] and after[0] == before[0] and after[1] == before[1]


ALLOWED_NP_RANDOM = {"default_rng", "Generator", "SeedSequence"}


def test_no_global_random_state_in_scenes():
    offenders = []
    for path in sorted(SCENES_PKG.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m == "random" or m.startswith("random.") for m in mods):
                    offenders.append(f"{path.name}:{node.lineno} imports the random module")
                if isinstance(node, ast.ImportFrom) and node.module in ("numpy.random",):
                    bad = [a.name for a in node.names if a.name not in ALLOWED_NP_RANDOM]
                    if bad:
                        offenders.append(f"{path.name}:{node.lineno} imports {bad} from numpy.random")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                    node.value.attr == "random" and node.attr not in ALLOWED_NP_RANDOM:
                offenders.append(f"{path.name}:{node.lineno} uses np.random.{node.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "default_rng" and not node.args:
                offenders.append(f"{path.name}:{node.lineno} seeds default_rng() from the OS")
            if isinstance(node, ast.Attribute) and node.attr in ("time", "time_ns", "now") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("time", "datetime") and \
                    path.name not in ("stats.py",):
                offenders.append(f"{path.name}:{node.lineno} reads the clock")
    assert not offenders, offenders


def test_seed_and_index_change_the_scene():
    cfg = load_recipe("tabletop")
    a, b, c = (spec_hash(sample_scene(cfg, s, i)) for s, i in [(0, 0), (0, 1), (1, 0)])
    assert len({a, b, c}) == 3


# --- validity --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["indoor", "tabletop", "outdoor"])
def test_specs_are_valid_and_carry_provenance(name):
    cfg = load_recipe(name)
    for index in range(3):
        spec = sample_scene(cfg, 3, index)
        spec.validate()
        assert spec_from_json(spec_to_json(spec)) == spec
        meta = dict(spec.meta)
        assert (meta["recipe"], meta["seed"], meta["index"]) == (name, 3, index)
        assert meta["attempts"] >= 1 and isinstance(meta["rejects"], tuple)
        assert spec.classes[:len(CLASSES)] == CLASSES
        assert 40.0 <= spec.camera.hfov_deg <= 90.0
        assert (spec.camera.width, spec.camera.height) == cfg.resolution
        assert meta["coverage"]["visible_instances"] >= cfg.validity.min_visible_instances
        assert meta["coverage"]["sky_fraction"] <= cfg.validity.max_sky_fraction
        assert {o.class_name for o in spec.objects} <= set(CLASSES)
        assert all(2700 <= li.temperature_k <= 6500 for li in spec.lights)
        assert spec.lights, "every scene is lit"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["indoor", "tabletop", "outdoor"])
def test_no_interpenetration_objects_rest_camera_outside(name):
    from rgbify.scenes.audit import audit as check_spec
    cfg = load_recipe(name)
    for index in range(3):
        problems = check_spec(sample_scene(cfg, 7, index))
        assert problems == [], problems


def _two_box_spec(dz: float, overlap: float):
    from rgbify.scenes.spec import Camera, Object, Primitive, SceneSpec, look_at
    floor = Object("floor", Primitive("box", (4, 4, 0.1)), "floor", 1, ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, -0.05),
                                                                        (0, 0, 0, 1)))
    a = Object("a", Primitive("box", (0.4, 0.4, 0.4)), "box", 2, ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0.2 + dz),
                                                                   (0, 0, 0, 1)))
    b = Object("b", Primitive("box", (0.4, 0.4, 0.4)), "box", 3, ((1, 0, 0, 0.4 - overlap), (0, 1, 0, 0),
                                                                   (0, 0, 1, 0.2), (0, 0, 0, 1)))
    cam = Camera.from_hfov(8, 8, 60, look_at((2, 2, 1.5), (0, 0, 0)))
    return SceneSpec(camera=cam, objects=(floor, a, b), classes=CLASSES)


def test_geometric_checker_catches_problems():
    from rgbify.scenes.audit import audit as check_spec
    assert check_spec(_two_box_spec(0.0, 0.0)) == []  # touching side by side, resting on the floor
    kinds = {p.kind for p in check_spec(_two_box_spec(0.0, 0.05))}
    assert kinds == {"interpenetration"}
    kinds = {p.kind for p in check_spec(_two_box_spec(0.1, 0.0))}
    assert kinds == {"not_resting"}


def test_rejects_are_recorded_and_exhaustion_is_reported():
    from rgbify.scenes.sample import SceneSamplingError
    cfg = load_recipe("indoor", **{"validity.min_visible_instances": 10_000, "validity.max_attempts": 2})
    with pytest.raises(SceneSamplingError, match="too_few_instances"):
        sample_scene(cfg, 0, 0)


def test_outdoor_reaches_far_and_indoor_has_little_sky():
    from rgbify.scenes.sample import sample_scene_and_probe
    far = max(float(np.max(np.where(np.isfinite(p.depth_z_m), p.depth_z_m, 0)))
              for p in (sample_scene_and_probe(load_recipe("outdoor"), 0, i)[1] for i in range(4)))
    assert far > 100.0
    spec, probe = sample_scene_and_probe(load_recipe("indoor"), 0, 0)
    assert np.mean(~np.isfinite(probe.depth_z_m)) <= 0.05
    spec, probe = sample_scene_and_probe(load_recipe("tabletop"), 0, 0)
    d = probe.depth_z_m[np.isfinite(probe.depth_z_m)]
    assert np.median(d) < 2.5


def test_materials_vary():
    """Glass, metal, many patterns at real-world scale, colours that differ, and parts with their own materials
    (legs, seats, handles, shades, tyres, windows, trunks)."""
    specs = [sample_scene(load_recipe(r), 1, i) for r in ("tabletop", "indoor", "outdoor") for i in range(3)]
    mats = [m for s in specs for o in s.objects for m in o.slots()]
    assert any(m.transmission > 0.5 for m in mats), "some glass"
    assert any(m.metallic > 0.5 for m in mats), "some metal"
    patterns = {m.pattern for m in mats}
    assert len(patterns) >= 10, patterns
    assert all(0.0005 <= m.pattern_scale_m <= 2.0 for m in mats if m.pattern != "none")
    assert any(m.bump_m > 0 for m in mats)
    assert len({m.base_color for m in mats}) > len(mats) // 2
    multi = [o for s in specs for o in s.objects if o.materials]
    assert {o.class_name for o in multi} >= {"door", "lamp", "car", "tree"}, {o.class_name for o in multi}
    assert all(len(o.geometry.face_materials) == len(o.geometry.faces) for o in multi if o.geometry.type == "mesh")


def test_light_kinds_and_camera_roll_occur():
    kinds, rolled = set(), 0
    for name in ("indoor", "outdoor"):
        for i in range(10):
            s = sample_scene(load_recipe(name), 2, i)
            kinds |= {li.kind for li in s.lights}
            m = np.asarray(s.camera.world_from_camera)
            rolled += abs(m[2, 0]) > 1e-6  # the camera x axis leaves the horizontal plane only when rolled
    assert kinds == {"area", "point", "spot", "sun"} or len(kinds) >= 3
    assert rolled >= 1


# --- exposure ----------------------------------------------------------------------------------------------------

def test_exposure_model_matches_the_cycles_calibration():
    """White-ish plane 2 m below a 100 W point light: Cycles renders 0.505 (measured with bpy 4.5)."""
    from rgbify.scenes import probe as checks
    from rgbify.scenes.spec import Camera, Light, Material, Object, Primitive, World, look_at
    plane = Object("p", Primitive("box", (40, 40, 0.01)), "floor", 1,
                   ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, -0.005), (0, 0, 0, 1)), material=Material((0.8, 0.8, 0.8)))
    cam = Camera.from_hfov(4, 4, 5, look_at((0, 0, 1), (0, 0, 0), up=(0, 1, 0)))
    rays = checks.SceneRays.build([plane])
    p = checks.probe(rays, cam, 4, 4)
    light = Light("point", ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 2), (0, 0, 0, 1)), power=100)
    lit, emit = checks.radiance(rays, p, [light], World((0, 0, 0), 0.0), enclosed=False, interreflection=False)
    assert np.allclose(lit, 0.5051, rtol=0.01)
    e = checks.exposure(lit * 0.01, emit, 0.18, (0.07, 0.45), 8.0)
    assert e.relight == 8.0  # far too dark: clamped relight
    e = checks.exposure(lit, emit, 0.18, (0.07, 0.45), 8.0)
    assert e.relight == pytest.approx(0.18 / 0.5051, rel=0.01)


# --- user assets -------------------------------------------------------------------------------------------------

@pytest.fixture()
def asset_dir(tmp_path):
    (tmp_path / "mug").mkdir()
    (tmp_path / "statue").mkdir()
    (tmp_path / "chair").mkdir()
    mug = trimesh.creation.annulus(0.04, 0.05, 0.1)
    mug.export(tmp_path / "mug" / "a.glb")
    mug.export(tmp_path / "mug" / "b.obj")
    trimesh.creation.box((0.5, 0.5, 0.9)).export(tmp_path / "chair" / "c.ply")
    trimesh.creation.icosphere().export(tmp_path / "statue" / "s.stl")
    (tmp_path / "statue" / "class.toml").write_text('size_m = [0.8, 1.2]\nplacement = "floor"\n')
    (tmp_path / "mug" / "broken.obj").write_text("not a mesh\nv 1 2\nf 1 2 3\n")
    (tmp_path / "chair" / "empty.stl").write_bytes(b"")
    return tmp_path


def test_assets_skip_bad_files_with_a_warning_naming_them(asset_dir):
    from rgbify.scenes.assets import AssetWarning, load_assets
    with pytest.warns(AssetWarning) as record:
        lib = load_assets(asset_dir)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.obj" in messages and "empty.stl" in messages
    assert sorted(lib.classes) == ["chair", "mug", "statue"]
    assert len(lib.assets) == 4 and len(lib.skipped) == 2


def test_assets_strict_fails(asset_dir):
    from rgbify.scenes.assets import AssetError, load_assets
    with pytest.raises(AssetError, match="empty.stl"):
        load_assets(asset_dir, strict=True)


def test_assets_are_mixed_in_with_plausible_sizes(asset_dir):
    from rgbify.scenes.assets import load_assets
    from rgbify.scenes.audit import audit as check_spec
    from rgbify.scenes.geometry import object_mesh
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = load_assets(asset_dir)
    seen = {}
    for name in ("indoor", "tabletop"):
        for i in range(3):
            spec = sample_scene(load_recipe(name), 0, i, lib)
            assert spec.classes == CLASSES + ("mug", "statue")
            for o in spec.objects:
                if o.geometry.type == "mesh_file":  # largest extent in the object's own frame
                    v = object_mesh(o).vertices
                    seen.setdefault(o.class_name, []).append(float((v.max(0) - v.min(0)).max()))
            assert check_spec(spec) == []
    assert "mug" in seen
    assert all(0.1 - 1e-6 <= e <= 0.4 + 1e-6 for e in seen["mug"])
    assert all(0.8 - 1e-6 <= e <= 1.2 + 1e-6 for e in seen.get("statue", []))
    # the library is deterministic: same scene twice
    a = spec_hash(sample_scene(load_recipe("tabletop"), 0, 1, lib))
    assert a == spec_hash(sample_scene(load_recipe("tabletop"), 0, 1, str(asset_dir)))
    from rgbify.scenes.assets import library_for
    assert library_for(str(asset_dir)) is library_for(asset_dir)  # a folder is read once per process


def test_glb_assets_stand_up(asset_dir):
    """A Y-up glTF mug (annulus axis along file z... exported as is) is turned so the file's +y becomes +z."""
    from rgbify.scenes.assets import load_assets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = load_assets(asset_dir)
    glb = next(a for a in lib.assets if a.path.endswith(".glb"))
    up = np.asarray(glb.up_from_file)[:3, :3]
    assert np.allclose(up @ [0, 1, 0], [0, 0, 1])


# --- CLI ----------------------------------------------------------------------------------------------------------

def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rgbify", *args], env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_cli_list_and_sample():
    out = _cli("scenes", "list")
    assert out.returncode == 0 and out.stdout.split()[0] == "indoor"
    out = _cli("scenes", "sample", "tabletop", "--seed", "4", "--index", "2", "--set", "samples=8")
    assert out.returncode == 0, out.stderr
    spec = spec_from_json(out.stdout)
    assert spec.render.samples == 8
    assert spec_hash(spec) == spec_hash(sample_scene(load_recipe("tabletop", samples=8), 4, 2))


def test_cli_bad_input_is_one_line_exit_2(asset_dir):
    out = _cli("scenes", "sample", "kitchen")
    assert out.returncode == 2 and "unknown recipe 'kitchen'" in out.stderr and "Traceback" not in out.stderr
    out = _cli("scenes", "sample", "indoor", "--assets", str(asset_dir), "--strict")
    assert out.returncode == 2 and "empty.stl" in out.stderr and "Traceback" not in out.stderr
    out = _cli("scenes", "sample", "indoor", "--assets", str(asset_dir))
    assert out.returncode == 0 and "broken.obj" in out.stderr and "warning" in out.stderr


def test_cli_stats(tmp_path):
    out = _cli("scenes", "stats", "outdoor", "--n", "4", "--jobs", "2", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    assert "reject rate" in out.stdout and "instances per scene" in out.stdout
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["scenes"] == 4 and sum(s["depth_histogram"]) > 0 and "building" in s["classes"]
    from rgbify.scenes.stats import recipe_stats
    one = recipe_stats(load_recipe("outdoor"), 4, jobs=1)
    assert {k: v for k, v in one.items() if "seconds" not in k and k != "jobs"} == \
        {k: v for k, v in s.items() if "seconds" not in k and k != "jobs"}


@pytest.mark.slow
def test_wheel_contains_the_recipes(tmp_path):
    pytest.importorskip("setuptools")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-300:]}")
    import zipfile
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"rgbify/recipes/indoor.toml", "rgbify/recipes/tabletop.toml", "rgbify/recipes/outdoor.toml"} <= set(names)


def test_sampling_imports_neither_bpy_nor_torch():
    code = ("import json, sys\nfrom rgbify.scenes import load_recipe, sample_scene\n"
            "sample_scene(load_recipe('tabletop'), 0, 0)\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True,
                         timeout=300)
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not {"bpy", "torch"} & mods


@pytest.mark.blender
@pytest.mark.parametrize("name", ["indoor", "outdoor"])
def test_sampled_scenes_render_lit_and_populated(name):
    pytest.importorskip("bpy")
    from rgbify.render import render
    spec = sample_scene(load_recipe(name, resolution=(44, 33), samples=4), 0, 1)
    result = render(spec)
    assert 20 < result.rgb.mean() < 235, "neither black nor blown out"
    assert len({r["class_name"] for r in result.instances if r["pixel_count"] > 0}) >= 3
    hit = np.isfinite(result.depth)
    assert hit.mean() >= 1.0 - load_recipe(name).validity.max_sky_fraction - 0.1


def test_image_textures_and_hdris_from_folders(tmp_path):
    from PIL import Image
    (tmp_path / "tex").mkdir()
    (tmp_path / "hdri").mkdir()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(tmp_path / "tex" / "red.png")
    (tmp_path / "hdri" / "sky.hdr").write_bytes(b"#?RADIANCE\n")  # never read while sampling
    cfg = load_recipe("indoor", **{"materials.image_texture_dir": str(tmp_path / "tex"),
                                   "materials.image_texture_prob": 0.5,
                                   "lighting.hdri_dir": str(tmp_path / "hdri"), "lighting.hdri_prob": 1.0})
    spec = sample_scene(cfg, 0, 0)
    assert any(o.material.image_texture == str((tmp_path / "tex" / "red.png").resolve()) for o in spec.objects)
    assert spec.world.hdri == str((tmp_path / "hdri" / "sky.hdr").resolve())
    with pytest.raises(ValueError, match="does not exist"):
        sample_scene(load_recipe("indoor", **{"materials.image_texture_dir": str(tmp_path / "missing")}), 0, 0)


def test_images_that_are_not_images_are_skipped_with_one_line(tmp_path):
    """An HDRI that is not an image, a PNG cut short and a text file named .jpg are skipped, each with one warning
    naming it; the good files are still used."""
    import warnings

    from PIL import Image

    from rgbify.scenes.assets import AssetWarning

    (tmp_path / "tex").mkdir()
    (tmp_path / "hdri").mkdir()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(tmp_path / "tex" / "red.png")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "tex" / "cut.png")
    data = (tmp_path / "tex" / "cut.png").read_bytes()
    (tmp_path / "tex" / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "tex" / "notes.jpg").write_text("not a picture")
    (tmp_path / "hdri" / "sky.hdr").write_bytes(b"#?RADIANCE\n")
    (tmp_path / "hdri" / "fake.exr").write_text("<html>404</html>")
    cfg = load_recipe("indoor", **{"materials.image_texture_dir": str(tmp_path / "tex"),
                                   "materials.image_texture_prob": 1.0,
                                   "lighting.hdri_dir": str(tmp_path / "hdri"), "lighting.hdri_prob": 1.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        specs = [sample_scene(cfg, 0, i) for i in range(3)]
    msgs = sorted(str(w.message) for w in caught if issubclass(w.category, AssetWarning))
    assert len(msgs) == 3 and all("\n" not in m for m in msgs)  # once per file, not once per scene
    assert [m.split(":")[0].rsplit("/", 1)[1] for m in msgs] == ["fake.exr", "cut.png", "notes.jpg"]
    used = {o.material.image_texture for s in specs for o in s.objects} - {None}
    assert used == {str((tmp_path / "tex" / "red.png").resolve())}
    assert {s.world.hdri for s in specs} == {str((tmp_path / "hdri" / "sky.hdr").resolve())}
