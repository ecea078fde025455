"""The Sweet Home 3D catalogue importer: true size, frame, materials and UVs kept, support surfaces, bad input,
determinism, atomic and resumable imports; and the real catalogues where the Debian package is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from catalog_fakes import write_sh3f

import rgbify
from rgbify.scenes.catalog import (
    SYSTEM_DIRS,
    CatalogError,
    find_catalogs,
    import_catalog,
    load_catalog,
    open_catalog,
    read_properties,
)
from rgbify.scenes.geometry import load_mesh_file, mesh_file_materials, resolve_path

ROOT = Path(rgbify.__file__).resolve().parent.parent


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("RGBIFY_ASSET_CACHE", str(d))
    return d


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.endswith(".lock")}


def test_properties_parser():
    text = "# comment\n! also\nname#1=Caf\\u00e9 \\\n   table\nwidth#1 = 45\nkey: value\n"
    assert read_properties(text) == {"name#1": "Café table", "width#1": "45", "key": "value"}


def test_import_keeps_size_frame_materials_and_uvs(tmp_path, cache):
    sh3f = write_sh3f(tmp_path / "Test.sh3f")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # import_catalog reports, it does not warn
        lib = import_catalog(sh3f)
    assert [m.name for m in lib.models] == ["Test chair"]
    m = lib.models[0]
    assert (m.class_name, m.role, m.room, m.licence, m.creator) == ("chair", "floor", "office", "CC-BY-3.0",
                                                                     "Maker 1")
    assert m.holder == "Test Makers"
    mesh = load_mesh_file(m.mesh)
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    np.testing.assert_allclose(hi - lo, [0.45, 0.45, 0.9], atol=1e-6)  # the catalogue's cm, as metres
    np.testing.assert_allclose([lo[2], (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2], 0.0, atol=1e-6)
    back = mesh.vertices[mesh.vertices[:, 2] > 0.5]  # the back rest: behind the seat, at -y (front is +y)
    assert back[:, 1].max() < -0.15
    assert mesh.uv is not None and mesh.uv.shape == (len(mesh.faces), 3, 2)
    mats = {x.name: x for x in mesh_file_materials(m.mesh)}
    assert set(mats) == {"wood_seat", "metal_legs"} and sorted(set(mesh.slots())) == [0, 1]
    seat_mat, legs = mats["wood_seat"], mats["metal_legs"]
    assert seat_mat.image.startswith("cache:") and os.path.isfile(resolve_path(seat_mat.image))
    assert legs.image is None and legs.roughness < seat_mat.roughness
    # a seat to put things on, at the seat's height (2 of the chair's 4 units of 0.225 m)
    assert any(abs(z - 0.45) < 0.01 and hx > 0.1 and hy > 0.1 for z, _cx, _cy, hx, hy, _c in m.surfaces)
    seat = m.model(np.random.default_rng(0), jitter=0.0)
    assert seat.surfaces and seat.surfaces[0].kind == "seat"
    assert len(seat.boxes) >= 5  # four legs, the seat, the back: not one bounding box
    assert seat.credit == {"id": m.key, "name": "Test chair", "creator": "Maker 1", "holder": "Test Makers",
                           "licence": "CC-BY-3.0", "source": m.credit()["source"]}


def test_bad_models_are_skipped_with_one_line_each(tmp_path, cache):
    lib = import_catalog(write_sh3f(tmp_path / "Test.sh3f"))
    assert len(lib.skipped) == 3 and all("\n" not in s for s in lib.skipped)
    text = " ".join(lib.skipped)
    assert "No texture chair" in text and "gone.png" in text
    assert "NaN chair" in text and "non-finite" in text
    assert "Junk" in text
    with pytest.raises(CatalogError, match="No texture chair"):
        import_catalog(write_sh3f(tmp_path / "Other.sh3f"), strict=True)


def test_corrupt_archive_and_foreign_licence(tmp_path, cache):
    bad = tmp_path / "Bad.sh3f"
    bad.write_bytes(b"PK\x03\x04 not really a zip file" * 10)
    lib = import_catalog(bad)
    assert not lib.models and len(lib.skipped) == 1 and "Bad.sh3f" in lib.skipped[0] and "zip" in lib.skipped[0]
    with pytest.raises(CatalogError, match="Bad.sh3f"):
        import_catalog(bad, strict=True)
    nc = import_catalog(write_sh3f(tmp_path / "NC.sh3f", licence="Creative Commons Non-Commercial 4.0"))
    assert not nc.models and "neither CC0 nor CC BY" in nc.skipped[0]
    unsafe = tmp_path / "Unsafe.sh3f"
    with zipfile.ZipFile(unsafe, "w") as z:
        z.writestr("../escape.txt", "x")
    assert "unsafe path" in import_catalog(unsafe).skipped[0]
    assert not (tmp_path / "escape.txt").exists()


def test_import_is_deterministic_atomic_and_resumable(tmp_path, monkeypatch):
    sh3f = write_sh3f(tmp_path / "Test.sh3f")
    a, b = tmp_path / "a", tmp_path / "b"
    import_catalog(sh3f, cache=a)
    import_catalog(sh3f, cache=b)
    files = _files(a)
    assert files == _files(b)  # the same bytes: npz, records, index, extracted source
    assert not [f for f in files if ".tmp" in f or "/.src-" in f]
    # a stopped import: the index and one model's files are missing; the next import finishes it identically
    root = next(p for p in (a / "sh3d").iterdir() if p.is_dir())
    (root / "catalog.json").unlink()
    for p in (root / "models").glob("*-chair.*"):
        p.unlink()
    monkeypatch.setenv("RGBIFY_ASSET_CACHE", str(a))
    lib = load_catalog([str(sh3f)])  # the library: every model of the properties, nothing converted yet
    assert [m.name for m in lib.models] == ["Test chair", "No texture chair", "NaN chair", "Junk"]
    assert not (root / "models" / "001-chair.npz").exists()
    lib.models[0].model(np.random.default_rng(0))  # converted on first use
    assert (root / "models" / "001-chair.npz").is_file()
    with pytest.raises(CatalogError, match="gone.png"):
        lib.models[1].converted()
    import_catalog(sh3f)
    assert _files(a) == files
    assert any("NaN chair" in line for line in open_catalog(sh3f).skipped)  # a finished import's skips


def test_cli_catalog(tmp_path):
    sh3f = write_sh3f(tmp_path / "Test.sh3f")
    env = dict(os.environ, RGBIFY_ASSET_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = [sys.executable, "-m", "rgbify", "scenes", "catalog"]
    out = subprocess.run([*run, "import", "--dir", str(sh3f)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 models from 1 catalogue(s)" in out.stdout and "(3 skipped)" in out.stdout
    assert out.stderr.count("warning: skipping") == 3
    out = subprocess.run([*run, "list", "--dir", str(sh3f)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "chair 3" in out.stdout and "3 skipped by the last import" in out.stdout
    out = subprocess.run([*run, "import", "--dir", str(tmp_path / "nothing")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "apt install sweethome3d-furniture" in out.stderr
    other = write_sh3f(tmp_path / "Other.sh3f")
    out = subprocess.run([*run, "import", "--dir", str(other), "--strict"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


REAL = find_catalogs(SYSTEM_DIRS)
needs_catalogue = pytest.mark.skipif(not REAL, reason="the Sweet Home 3D catalogues are not installed (Debian: apt "
                                     "install sweethome3d-furniture; scripts/setup.sh does it where it can)")


@needs_catalogue
def test_real_catalogue_models_keep_their_true_size(tmp_path, cache):
    """A handful of real models (imported alone, so the test stays quick): the catalogue's size, the front toward
    +y, a table top to put things on, materials and textures kept."""
    paths = {p.stem: p for p in REAL}
    table = import_catalog(paths["BlendSwap-CC-0"], only=["Oak table", "Refrigerator"]).models
    bed = import_catalog(paths["Scopia"], only=["Scopia#bed1"]).models[0]
    for m in [*table, bed]:
        mesh = load_mesh_file(m.mesh)
        np.testing.assert_allclose(mesh.vertices.max(0) - mesh.vertices.min(0), m.size_m, rtol=1e-4)
        assert m.licence in ("CC0-1.0", "CC-BY-3.0")
    oak = next(m for m in table if m.name == "Oak table")
    assert oak.class_name == "table" and oak.role == "floor"
    top = max(oak.surfaces, key=lambda s: s[3] * s[4])
    assert abs(top[0] - oak.size_m[2]) < 0.02 and top[3] > 0.3 and top[4] > 0.3
    assert bed.class_name == "bed" and bed.licence == "CC-BY-3.0" and "Scopia" in bed.holder
    mesh = load_mesh_file(bed.mesh)
    high = mesh.vertices[mesh.vertices[:, 2] > 0.8 * bed.size_m[2]]  # the headboard stands at the back (-y)
    assert high[:, 1].mean() < 0
    mats = mesh_file_materials(bed.mesh)
    assert any(x.image and os.path.isfile(resolve_path(x.image)) for x in mats)


def test_npz_mesh_files_round_trip_and_bad_ones_are_named(tmp_path):
    from rgbify.scenes.geometry import FileMaterial, GeometryError, TriMesh, read_mesh_file, write_mesh_npz

    mesh = TriMesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]), np.array([[0, 2, 1], [0, 1, 3]]),
                   np.array([0, 1]), np.zeros((2, 3, 2)))
    mats = (FileMaterial("a", (1.0, 0.0, 0.0), 1.0, 0.5, 0.0, None), FileMaterial("b", (0.0, 1.0, 0.0), 0.5, 0.2,
                                                                                  1.0, "x.png"))
    write_mesh_npz(str(tmp_path / "m.npz"), mesh, mats)
    back, back_mats = read_mesh_file(str(tmp_path / "m.npz"))
    assert np.array_equal(back.vertices, mesh.vertices) and np.array_equal(back.faces, mesh.faces)
    assert np.array_equal(back.face_material, mesh.face_material) and back.uv.shape == (2, 3, 2)
    assert back_mats == mats
    write_mesh_npz(str(tmp_path / "again.npz"), mesh, mats)
    assert (tmp_path / "m.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(b"PK junk")
    with pytest.raises(GeometryError, match="bad.npz"):
        read_mesh_file(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "plain.npz", vertices=np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="not an rgbify mesh file"):
        read_mesh_file(str(tmp_path / "plain.npz"))
