"""Fault injection, the file commands (encode, decode, scenes, preview, export, repack, build's writers): a full
disk for every writer (an fsync that fails, a write that fails mid-file, and a real file-size limit that makes the
kernel refuse writes inside HDF5's and Pillow's C code), unwritable outputs, bad values. Each gives one line naming
the value and the fix, exit 2, and leaves no partial output and nothing of the user's changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import rgbify
from rgbify.cli import main
from tests.dataset_fakes import fake_dataset
from tests.fault_shims import failing_fsync, fsize_limit, sigint_default

ROOT = Path(rgbify.__file__).resolve().parents[1]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rgbify: error:"), err
    return err[0]


@pytest.fixture
def ds(tmp_path) -> Path:
    return fake_dataset(tmp_path, n=4, shard_size=2)


@pytest.fixture
def depth_file(tmp_path) -> Path:
    path = tmp_path / "d.npy"
    np.save(path, np.full((4, 5), 3.0, np.float32))
    return path


def png16_rgb(path: Path, h: int = 4, w: int = 5) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    import struct

    a = (np.arange(h * w * 3).reshape(h, w, 3) * 1000).astype(">u2")
    raw = b"".join(b"\0" + a[i].tobytes() for i in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def commands(tmp_path: Path, ds: Path, depth_file: Path) -> dict[str, tuple[list[str], Path]]:
    """Every file-writing command (no Blender, no torch) and the output it writes."""
    return {
        "encode": (["encode", "depth", str(depth_file), str(tmp_path / "t.png")], tmp_path / "t.png"),
        "decode": (["decode", "normals", str(tmp_path / "n.png"), str(tmp_path / "n.npy")], tmp_path / "n.npy"),
        "scenes sample": (["scenes", "sample", "tabletop", "--out", str(tmp_path / "s.json")], tmp_path / "s.json"),
        "preview": (["preview", str(ds), "--out", str(tmp_path / "p.png")], tmp_path / "p.png"),
        "export png": (["export", str(ds), "--out", str(tmp_path / "exp")], tmp_path / "exp"),
        "export webdataset": (["export", str(ds), "--format", "webdataset", "--out", str(tmp_path / "wds")],
                              tmp_path / "wds"),
        "repack": (["repack", str(ds), "--storage", "fast", "--out", str(tmp_path / "rp")], tmp_path / "rp"),
    }


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_a_full_disk_in_every_writer_is_one_line_and_leaves_nothing(tmp_path, ds, depth_file, capsys, monkeypatch):
    from PIL import Image

    Image.fromarray(np.full((3, 4, 3), 128, np.uint8)).save(tmp_path / "n.png")
    before = listing(tmp_path)
    for name, (args, out) in commands(tmp_path, ds, depth_file).items():
        with monkeypatch.context() as m:
            m.setattr(os, "fsync", failing_fsync)
            assert main(args) == 2, name
        line = one_error_line(capsys)
        assert "no space left" in line and str(out) in line and "run the same command again" in line, (name, line)
        assert listing(tmp_path) == before, name  # nothing half-written, nothing of the user's changed


@pytest.mark.slow
def test_a_real_file_size_limit_inside_hdf5_and_pillow(tmp_path, ds):
    """The kernel refuses writes past RLIMIT_FSIZE (EFBIG) wherever they come from: HDF5 writing a shard (which
    crashed the process before shards were built in memory), Pillow writing PNGs."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    before = listing(tmp_path)
    for args in (["repack", str(ds), "--storage", "fast", "--out", str(tmp_path / "rp")],
                 ["export", str(ds), "--out", str(tmp_path / "exp")],
                 ["preview", str(ds), "--out", str(tmp_path / "p.png")]):
        p = subprocess.run([sys.executable, "-m", "rgbify", *args], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=300, preexec_fn=fsize_limit(1500))
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], (args, p.stderr[-2000:])
        assert listing(tmp_path) == before, args


@pytest.mark.slow
def test_a_full_disk_under_a_build_keeps_finished_samples(tmp_path):
    """A build (fake pool, this process's writers) whose disk fills at a seeded random byte: one line, the same
    command then finishes; under a real file-size limit too (a subprocess)."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from rgbify.datasets.build import planner
from rgbify.datasets.build.config import BuildConfig
from rgbify.errors import UserError
from tests.dataset_fakes import FakeFirstScene, FakePool
planner.sample_scene = FakeFirstScene
cfg = BuildConfig(out=Path(sys.argv[1]), count=5, shard_size=2, resolution=(8, 6), samples=1)
try:
    planner.Planner(cfg, FakePool(cfg), log=print).run()
except UserError as e:
    print("rgbify: error:", e, file=sys.stderr)
    sys.exit(2)
"""
    d = tmp_path / "ds"
    p = subprocess.run([sys.executable, "-c", script, str(d)], capture_output=True, text=True, timeout=300,
                       preexec_fn=fsize_limit(9000))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], p.stderr[-2000:]
    assert "shard-0000" in lines[0] and not list((d / "shards").glob("*.h5"))
    kept = sorted(x.name for x in (d / ".work").rglob("*.npz"))
    assert kept  # finished samples are kept
    p = subprocess.run([sys.executable, "-c", script, str(d)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    from rgbify.datasets.storage.manifest import load_manifest

    assert load_manifest(d)["complete"]


@pytest.mark.parametrize("name", ["encode", "scenes sample", "preview", "export png", "repack"])
def test_an_unwritable_output_is_refused_before_the_work(tmp_path, ds, depth_file, capsys, name):
    a_file = tmp_path / "a.txt"
    a_file.write_text("mine")
    args, out = commands(tmp_path, ds, depth_file)[name]
    args = [str(a_file / out.name) if x == str(out) else x for x in args]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert str(a_file) in line and "Traceback" not in line
    assert a_file.read_text() == "mine"


def test_preview_out_never_replaces_what_is_not_a_png(tmp_path, ds, capsys):
    txt = tmp_path / "notes.txt"
    txt.write_text("mine")
    manifest = (ds / "dataset.json").read_bytes()
    shard = (ds / "shards/shard-00000.h5").read_bytes()
    for out, needle in ((ds / "dataset.json", "ends in .png"), (ds / "shards/shard-00000.h5", "ends in .png"),
                        (txt, "ends in .png"), (ds, "ends in .png"), (tmp_path, "ends in .png")):
        assert main(["preview", str(ds), "--out", str(out)]) == 2
        assert needle in one_error_line(capsys).replace("ending in .png", "ends in .png")
    (tmp_path / "dir.png").mkdir()
    assert main(["preview", str(ds), "--out", str(tmp_path / "dir.png")]) == 2
    assert "is a folder" in one_error_line(capsys)
    assert (ds / "dataset.json").read_bytes() == manifest and (ds / "shards/shard-00000.h5").read_bytes() == shard
    assert txt.read_text() == "mine"


def test_export_owns_its_folder(tmp_path, ds, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"mine")
    assert main(["export", str(ds), "--out", str(foreign)]) == 2
    assert "holds other files" in one_error_line(capsys)
    assert listing(foreign) == ["photo.jpg"]
    out = tmp_path / "exp"
    assert main(["export", str(ds), "--out", str(out), "--tasks", "depth,normals"]) == 0
    assert json.loads((out / ".rgbify-export.json").read_text())["items"] == 8
    assert main(["export", str(ds), "--out", str(out), "--tasks", "depth"]) == 0  # replaces the earlier export
    rows = (out / "metadata.jsonl").read_text().splitlines()
    images = sorted(p.name for p in (out / "images").iterdir())
    assert len(rows) == 4 and images == sorted([f"{i:09d}.png" for i in range(4)] +
                                               [f"{i:09d}_depth.png" for i in range(4)])  # no orphans
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "exp", "mine"]


def test_an_interrupted_export_leaves_no_folder(tmp_path, ds, monkeypatch, capsys):
    from rgbify.datasets import export as ex

    real = ex._png_bytes
    calls = []

    def interrupted(rgb):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(rgb)

    monkeypatch.setattr(ex, "_png_bytes", interrupted)
    assert main(["export", str(ds), "--format", "webdataset", "--out", str(tmp_path / "wds")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize("args,needle", [
    (["encode", "depth", "{d}", "{t}/o.png", "--codec", "hilbert24", "--d-max", "1e308"], "--d-max 1e+308"),
    (["encode", "depth", "{d}", "{t}/o.png", "--codec", "hilbert24", "--d-max", "1e5", "--gamma", "4"],
     "a depth of 1 m decodes as 0 m"),
    (["encode", "depth", "{d}", "{t}/o.png", "--codec", "hilbert24", "--gamma", "-1"], "--gamma -1"),
    (["encode", "depth", "{d}", "{d}"], "would destroy the input"),
    (["encode", "depth", "{t}/empty.npy", "{t}/o.png"], "empty image of shape (0, 0)"),
    (["decode", "depth", "{t}/rgb16.png", "{t}/o.npy"], "16-bit RGB PNG"),
    (["decode", "normals", "{t}/rgb16.png", "{t}/rgb16.png"], "would destroy the input"),
])
def test_encode_bad_values(tmp_path, depth_file, capsys, args, needle):
    np.save(tmp_path / "empty.npy", np.zeros((0, 0), np.float32))
    png16_rgb(tmp_path / "rgb16.png")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    args = [a.format(d=depth_file, t=tmp_path) for a in args]
    assert main(args) == 2
    assert needle in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("toml,needle", [
    ('kind = "tabletop"\n[layout]\nobjects = [-5, -1]\n', "objects [-5, -1]: a count cannot be negative"),
    ("[materials]\nglass_prob = 7\n", "glass_prob 7.0: must lie in [0, 1]"),
    ("[validity]\nmax_sky_fraction = -0.1\n", "max_sky_fraction -0.1: must lie in [0, 1]"),
    ("[layout]\nroom_width_m = [0.0, 3.0]\n", "room_width_m [0.0, 3.0]: a length in metres must be positive"),
    ("[lighting]\ntemperature_k = [-10.0, 6500.0]\n", "temperature_k [-10.0, 6500.0]: must be at least 1"),
    ("max_bounces = -1\n", "max_bounces -1 must be >= 0"),
])
def test_recipe_values_are_checked(tmp_path, capsys, toml, needle):
    recipe = tmp_path / "r.toml"
    recipe.write_text(toml)
    assert main(["scenes", "sample", str(recipe)]) == 2
    assert needle in one_error_line(capsys)
    out = tmp_path / "ds"
    assert main(["build", "--recipe", str(recipe), "--out", str(out), "--quiet", "--no-preview"]) == 2
    assert needle in one_error_line(capsys) and not out.exists()


def test_shipped_recipes_pass_the_value_checks():
    from rgbify.scenes import list_recipes, load_recipe

    assert all(load_recipe(name).name == name for name in list_recipes())


@pytest.mark.slow
def test_ctrl_c_of_a_process_pool_command_is_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: `rgbify scenes stats --jobs 2` ends its pool workers (which ignore
    SIGINT) and exits 130 with one line at once, not a traceback per worker after the running scenes end."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-m", "rgbify", "scenes", "stats", "tabletop", "--n", "99999", "--jobs", "2"],
                         env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=sigint_default)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the pool's workers have started
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        if len(kids) >= 2:
            break
        time.sleep(0.1)
    time.sleep(float(np.random.default_rng(5).uniform(0.5, 3.0)))
    t0 = time.monotonic()
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and time.monotonic() - t0 < 5 and err.strip() == "rgbify: interrupted", err[-2000:]


# --- rgbify eval --benchmark (scoring saved predictions: NumPy only) ---------------------------------------------


def test_eval_benchmark_damaged_files_full_disk_and_bad_values(tmp_path, monkeypatch, capsys):
    """A damaged benchmark file, a full disk while the report is written, and every option that does not apply:
    one line naming the value and the fix, exit 2, no report (the JSON, Markdown and CSV appear together)."""
    from test_eval_benchmarks import _save_preds, write_kitti

    gts = write_kitti(tmp_path / "kitti")
    _save_preds(tmp_path / "pred", {rel: np.full((352, 1216), 9.0) for rel in gts})
    (tmp_path / "reports").mkdir()
    out = tmp_path / "reports" / "kitti.json"
    base = ["eval", "--benchmark", "kitti", "--root", str(tmp_path / "kitti"), "--predictions", str(tmp_path / "pred"),
            "--out", str(out)]
    before = listing(tmp_path)
    cases = [
        (["--depth-scale", "0"], "--depth-scale 0.0: give the PNG value of one metre"),
        (["--crop", "middle"], "--crop middle: kitti has the crops eigen, garg, none"),
        (["--normals-frame", "rub"], "--normals-frame is for normals benchmarks"),
        (["--class-map", "published"], "--class-map is for semantic benchmarks"),
        (["--ensemble", "3"], "are for --run; a predictions folder holds final answers"),
        (["--split-file", str(tmp_path / "nope.txt")], "no such file"),
        (["--max-items", "0"], "--max-items 0"),
    ]
    for extra, needle in cases:
        assert main(base + extra) == 2, extra
        assert needle in one_error_line(capsys), extra
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", failing_fsync)
        assert main(base) == 2
    line = one_error_line(capsys)
    assert "no space left" in line and "run the same command again" in line, line
    gt = tmp_path / "kitti" / "2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000054.png"
    gt.write_bytes(gt.read_bytes()[:200])  # cut short
    assert main(base) == 2
    line = one_error_line(capsys)
    assert "cannot read image" in line and "groundtruth/image_02/0000000054.png" in line, line
    assert listing(tmp_path) == before  # no report, no temporary file
