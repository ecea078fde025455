"""Room types (kitchen, bathroom, bedroom, living room, office, corridor) and homes: each room holds the furniture
that belongs in it, from the Sweet Home 3D catalogue where it is installed and made procedurally where it is not;
doors stand open onto furnished neighbouring rooms; rooms are sized by type; nothing interpenetrates."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rgbify.scenes import load_recipe, sample_scene
from rgbify.scenes.catalog import find_catalogs

HAS_CATALOG = bool(find_catalogs())
needs_catalog = pytest.mark.skipif(not HAS_CATALOG, reason="sweethome3d-furniture is not installed")

RECIPES = {"kitchen": "kitchen", "bathroom": "bathroom", "bedroom": "bedroom", "living": "living_room",
           "office": "office"}
BELONGS = {  # every scene of the type has one of each group
    "kitchen": ({"counter", "sink"}, {"sink"}, {"stove"}),
    "bathroom": ({"toilet"}, {"bathtub", "shower"}, {"sink"}),
    "bedroom": ({"bed"}, {"nightstand"}),
    "living": ({"sofa"}, {"table"}),
    "office": ({"desk"}, {"chair"}),
}
MOST = {"kitchen": "refrigerator", "bedroom": "lamp", "office": "shelf"}
"""And most scenes of the type (at least half of them) have this."""


def _classes(spec) -> Counter:
    return Counter(o.class_name for o in spec.objects)


def _room_check(room_type: str, specs: list) -> None:
    for spec in specs:
        meta = dict(spec.meta)
        assert meta["room"]["type"] == room_type
        got = _classes(spec)
        for group in BELONGS[room_type]:
            assert group & set(got), (room_type, meta["index"], group, dict(got))
    if room_type in MOST:
        assert sum(MOST[room_type] in _classes(s) for s in specs) >= len(specs) / 2, room_type


@pytest.mark.parametrize("room_type", sorted(RECIPES))
def test_made_rooms_have_their_furniture(room_type):
    """Without the catalogue (catalog_prob 0) every piece is made procedurally, and still belongs."""
    cfg = load_recipe(RECIPES[room_type], layout__catalog_prob=0.0)
    specs = [sample_scene(cfg, 1, i) for i in range(4)]
    _room_check(room_type, specs)
    assert not any(dict(s.meta).get("assets") for s in specs), "nothing third-party without the catalogue"


@needs_catalog
@pytest.mark.parametrize("room_type", sorted(RECIPES))
def test_catalogue_rooms_have_their_furniture_and_credit_it(room_type):
    cfg = load_recipe(RECIPES[room_type])
    specs = [sample_scene(cfg, 2, i) for i in range(4)]
    _room_check(room_type, specs)
    catalogue = [o for s in specs for o in s.objects if "sh3d" in str(o.geometry)]
    assert len(catalogue) >= 3 * len(specs), "most furniture is the catalogue's"
    for s in specs:
        assert dict(s.meta).get("assets"), "the catalogue models used are credited"
        assert all(a["licence"] in ("CC0-1.0", "CC-BY-3.0", "CC-BY-3.0-US") for a in dict(s.meta)["assets"])


def test_room_sizes_follow_their_type():
    from rgbify.scenes.rooms import SIZE_LIMITS, room_size

    rng = np.random.default_rng(0)
    for room_type, ((wl, wh), (dl, dh)) in SIZE_LIMITS.items():
        sizes = np.array([room_size(rng, room_type, (1.0, 20.0), (1.0, 20.0)) for _ in range(300)])
        assert wl <= sizes[:, 0].min() and sizes[:, 0].max() <= wh, room_type
        assert dl <= sizes[:, 1].min() and sizes[:, 1].max() <= dh, room_type
    big = np.array([room_size(rng, "living", (3.0, 15.0), (3.0, 9.0)) for _ in range(300)])
    assert big[:, 0].max() > 12.0, "living rooms reach about 15 m"
    # a recipe's range narrower than the type's holds
    small = np.array([room_size(rng, "office", (3.0, 4.0), (3.0, 4.0)) for _ in range(50)])
    assert small.min() >= 3.0 and small.max() <= 4.0


def test_home_opens_doors_onto_furnished_neighbours_and_corridors():
    cfg = load_recipe("home", layout__catalog_prob=0.0)
    metas = [dict(sample_scene(cfg, 0, i).meta) for i in range(12)]
    types = Counter(m["room"]["type"] for m in metas)
    assert len(types) >= 4, types
    opened = [m for m in metas if m["room"]["open_doors"] > 0]
    assert opened and any(m["room"]["neighbours"] for m in opened)
    assert all(len(m["room"]["neighbours"]) <= m["room"]["open_doors"] for m in metas)
    corridor = load_recipe("home", layout__catalog_prob=0.0, layout__room_types=("corridor",))
    spec = sample_scene(corridor, 0, 0)
    room = dict(spec.meta)["room"]
    assert room["type"] == "corridor" and 1.1 <= room["depth_m"] <= 1.8 and room["width_m"] >= 4.0


def test_open_doors_swing_into_the_room():
    """Rooms are axis-aligned, so a closed door's panel lies along a world axis; an open one is turned 70-100
    degrees about its hinge: as many doors off the axes as the spec says stand open."""
    cfg = load_recipe("home", layout__catalog_prob=0.0, layout__open_door_prob=1.0)
    opened, off_axis = 0, []
    for i in range(4):
        spec = sample_scene(cfg, 5, i)
        opened += dict(spec.meta)["room"]["open_doors"]
        for door in (o for o in spec.objects if o.class_name == "door"):
            x = np.asarray(door.world_from_object)[:2, 0]
            turn = np.degrees(np.arctan2(x[1], x[0])) % 90.0
            off = min(turn, 90.0 - turn)
            if off > 0.5:
                off_axis.append(off)
    assert opened >= 2 and len(off_axis) == opened
    assert max(off_axis) <= 20.0 + 1e-6  # 70-100 degrees from the wall


def test_missing_catalogue_falls_back_to_made_furniture_with_one_line(monkeypatch, tmp_path):
    """Where sweethome3d-furniture is not installed, a catalogue recipe still samples: every piece made
    procedurally, one CatalogWarning saying how to install it, the fallback recorded in the spec."""
    from rgbify.scenes.catalog import CatalogWarning
    from rgbify.scenes.sample import CATALOG_MISSING

    monkeypatch.setenv("RGBIFY_SH3D_DIR", str(tmp_path))  # an empty folder: no catalogue
    with pytest.warns(CatalogWarning, match="apt install sweethome3d-furniture") as caught:
        spec = sample_scene(load_recipe("kitchen"), 0, 0)
    assert len([w for w in caught if issubclass(w.category, CatalogWarning)]) == 1
    meta = dict(spec.meta)
    assert meta["catalogue"] == CATALOG_MISSING and "assets" not in meta
    assert {"sink", "stove"} <= {o.class_name for o in spec.objects}
    assert not any("sh3d" in str(o.geometry) for o in spec.objects)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["kitchen", "bathroom", "bedroom", "living_room", "office", "home"])
def test_rooms_do_not_interpenetrate_and_objects_rest(recipe):
    from rgbify.scenes.audit import audit

    cfg = load_recipe(recipe) if HAS_CATALOG else load_recipe(recipe, layout__catalog_prob=0.0)
    for index in range(2):
        problems = audit(sample_scene(cfg, 7, index))
        assert problems == [], (recipe, index, problems)


def _world_bounds(o) -> np.ndarray:
    from rgbify.scenes.geometry import object_mesh

    v = object_mesh(o).vertices
    m = np.asarray(o.world_from_object)
    w = v @ m[:3, :3].T + m[:3, 3]
    return np.stack([w.min(0), w.max(0)])


@needs_catalog
def test_streets_have_pedestrians_on_sidewalks_bicycles_and_catalogue_cars():
    from rgbify.scenes.audit import _full_detail
    from rgbify.scenes.geometry import world_mesh
    from rgbify.scenes.outdoor import KERB
    from rgbify.scenes.road import Road

    cfg = load_recipe("outdoor")
    specs = [sample_scene(cfg, 4, i) for i in range(3)]
    walking = {pid for s in specs for _, pid in dict(s.meta)["street"]["cyclists"]}  # on the road, with a bicycle
    people = [(s, o) for s in specs for o in s.objects if o.class_name == "person" and o.instance_id not in walking]
    assert len(people) >= 3 * 2
    for s, o in people:
        street = dict(s.meta)["street"]
        road = Road(street["curvature_per_m"], street["grade"])  # road coordinates; the plane z = grade * x
        v = world_mesh(_full_detail(o)).vertices
        lo = v[np.argmin(v[:, 2])]
        assert abs(lo[2] - road.z(lo[0]) - KERB) < 0.01, "standing on the sidewalk"
        assert 1.4 < np.ptp(v[:, 2]) < 2.0, "true size"
        _, t = road.st(v[:, 0], v[:, 1])
        assert street["road_width_m"] / 2 - 0.05 <= np.abs(t).min(), "not on the road"
        assert np.abs(t).max() <= street["road_width_m"] / 2 + street["sidewalk_m"] + 0.05
    cars = [(s, o) for s in specs for o in s.objects if o.class_name == "car"]
    assert any("sh3d" in str(o.geometry) for _, o in cars) and any("sh3d" not in str(o.geometry) for _, o in cars)
    for s, o in cars:  # along the street: longer along its heading than across it
        if "sh3d" in str(o.geometry):
            street = dict(s.meta)["street"]
            v = world_mesh(_full_detail(o)).vertices
            sv, tv = Road(street["curvature_per_m"], 0.0).st(v[:, 0], v[:, 1])
            assert np.ptp(sv) > 1.5 * np.ptp(tv)
    bikes = sample_scene(load_recipe("outdoor", layout__bicycles=(2, 3)), 4, 0)
    assert "bicycle" in {o.class_name for o in bikes.objects}


def test_streets_without_the_catalogue_have_no_people(monkeypatch, tmp_path):
    monkeypatch.setenv("RGBIFY_SH3D_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="sweethome3d-furniture"):
        spec = sample_scene(load_recipe("outdoor"), 4, 0)
    assert not {"person", "bicycle"} & {o.class_name for o in spec.objects}
    assert not any("sh3d" in str(o.geometry) for o in spec.objects)


def test_facades_have_windows_set_into_the_wall_and_a_door():
    """A street front of inset windows: a ray toward the front through a window's centre stops ``inset`` behind
    the wall's plane (on the glass), one through a pier on the plane itself; dark glass, a door of its own
    material; one collision box for the block (and one for a roof on it)."""
    import trimesh

    from rgbify.scenes.outdoor import building

    for seed in range(4):
        rng = np.random.default_rng(seed)
        m = building(rng, 14.0, 10.0, 16.0, facade_prob=1.0)
        assert "facade_glass" in m.slot_hints and ({"wood", "metal"} & set(m.slot_hints))
        np.testing.assert_allclose(m.boxes[0][1], [7.0, 5.0, 8.0])  # the block's, then a roof's above it
        v = np.asarray(m.geometry.vertices)
        assert v[:, 0].min() >= -7.0 - 1e-9 and v[:, 0].max() <= 7.0 + 1e-9, "nothing past the block's sides"
        assert v[:, 1].min() >= -5.0 - 0.03 and v[:, 1].max() <= 5.0 + 1e-9, "only the sills stand out, 2 cm"
        assert all(c[2] - h[2] >= 16.0 - 1e-6 for c, h in m.boxes[1:])
        g = m.geometry
        mesh = trimesh.Trimesh(np.asarray(g.vertices), np.asarray(g.faces), process=False)
        slots = np.asarray(g.face_materials)
        glass = 1 + list(m.slot_hints).index("facade_glass")
        # the front's hits on a grid of rays over the upper floors
        gx, gz = np.meshgrid(np.linspace(-6.9, 6.9, 120), np.linspace(5.0, 15.0, 60))
        xs, zs = gx.ravel(), gz.ravel()
        origins = np.stack([xs, np.full_like(xs, -20.0), zs], 1)
        loc, ray, tri = mesh.ray.intersects_location(origins, np.tile([0.0, 1.0, 0.0], (len(xs), 1)),
                                                     multiple_hits=False)
        y = np.full(len(xs), np.nan)
        y[ray] = loc[:, 1]
        hit_glass = np.zeros(len(xs), bool)
        hit_glass[ray] = slots[tri] == glass
        front = -5.0
        on_wall = np.isclose(y, front, atol=1e-6)
        recessed = y > front + 0.08
        assert on_wall.any() and recessed.any(), seed
        assert np.all(recessed[hit_glass]), "the glass is set back into the wall"
        assert np.all(y[recessed] <= front + 0.25), "no deeper than the inset (0.12-0.25 m)"
        assert hit_glass[recessed].mean() > 0.9, "what lies back is glass (and a mullion)"
        assert hit_glass.sum() >= 0.1 * len(xs), "windows cover a good part of the front"
