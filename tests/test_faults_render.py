"""Fault injection, ``rgbify render``: signals at seeded random moments (SIGINT and SIGTERM stop it within a few
seconds with exit 130 and leave no output or temporary folder; after a SIGKILL the next run sweeps what was left),
bad sizes, bad --out and bad poses refused before rendering, a render folder written whole (a full disk or an
interrupt while writing leaves the earlier render as it was), the one-object warning.

The tests that run Blender are marked blender and slow; the others use a stand-in render result.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from render_scenes import slow_scene, tiny_scene

import rgbify
from rgbify.cli import main
from rgbify.render import RenderResult
from rgbify.render import cli as render_cli
from rgbify.render import render_dir as rd
from rgbify.scenes.spec import spec_to_dict, spec_to_json
from tests.fault_shims import failing_fsync, sigint_default

ROOT = Path(rgbify.__file__).resolve().parents[1]


def fake_result(spec) -> RenderResult:
    h, w = spec.camera.height, spec.camera.width
    inst = np.zeros((h, w), np.int32)
    inst[h // 2:] = 1
    return RenderResult(rgb=np.zeros((h, w, 3), np.uint8), depth=np.where(inst > 0, 2.0, np.inf).astype(np.float32),
                        normals=np.zeros((h, w, 3), np.float32), instance=inst, semantic=inst.copy(),
                        edge=np.zeros((h, w), bool), K=spec.camera.K, world_from_camera=np.eye(4),
                        instances=[], timings={"total": 0.0})


@pytest.fixture
def scene_file(tmp_path) -> Path:
    path = tmp_path / "scene.json"
    path.write_text(spec_to_json(tiny_scene()))
    return path


@pytest.fixture
def fake_render(monkeypatch):
    monkeypatch.setattr(render_cli, "_render", lambda spec, backend, device: fake_result(spec))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rgbify: error:"), err
    return err[0]


# --- refused before rendering (no Blender) --------------------------------------------------------------------


@pytest.mark.parametrize("size,needle", [("100000x100000", "at most 65536"), ("5000x4000", "--allow-large")])
def test_huge_sizes_are_refused_before_rendering(scene_file, tmp_path, capsys, size, needle):
    out = tmp_path / "out"
    assert main(["render", "--scene", str(scene_file), "--out", str(out), "--resolution", size]) == 2
    assert needle in one_error_line(capsys) and not out.exists()


def test_a_bad_out_is_refused_before_rendering(scene_file, tmp_path, capsys, monkeypatch):
    def must_not_render(*a):
        raise AssertionError("rendered before checking --out")

    monkeypatch.setattr(render_cli, "_render", must_not_render)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    a_file = tmp_path / "a.txt"
    a_file.write_text("mine")
    for out, needle in ((mine, "holds other files"), (a_file, "is a file"), (a_file / "sub", "is a file")):
        assert main(["render", "--scene", str(scene_file), "--out", str(out)]) == 2
        assert needle in one_error_line(capsys)
    assert (mine / "notes.txt").read_text() == "mine" and a_file.read_text() == "mine"


@pytest.mark.parametrize("pose,needle", [
    ([[0.0] * 4] * 3 + [[0, 0, 0, 1]], "not a rigid transform"),
    ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]], "determinant +1"),
    ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], "last row"),
])
def test_a_degenerate_camera_pose_is_refused(tmp_path, capsys, pose, needle):
    d = spec_to_dict(tiny_scene())
    d["camera"]["world_from_camera"] = pose
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    assert main(["render", "--scene", str(path), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "camera.world_from_camera" in line and needle in line and not (tmp_path / "o").exists()


# --- the render folder is written whole ------------------------------------------------------------------------


def test_render_folder_replaces_an_earlier_render_whole(scene_file, tmp_path, fake_render, capsys):
    out = tmp_path / "out"
    assert main(["render", "--scene", str(scene_file), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(rd.RENDER_FILES)
    first = (out / "scene.json").read_text()
    assert main(["render", "--scene", str(scene_file), "--out", str(out), "--samples", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(rd.RENDER_FILES)
    assert (out / "scene.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scene.json"]


def test_full_disk_or_interrupt_while_writing_keeps_the_earlier_render(scene_file, tmp_path, fake_render, capsys,
                                                                         monkeypatch):
    out = tmp_path / "out"
    assert main(["render", "--scene", str(scene_file), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", failing_fsync)
        assert main(["render", "--scene", str(scene_file), "--out", str(out), "--samples", "3"]) == 2
    line = one_error_line(capsys)
    assert "no space left" in line and str(out) in line
    real = rd._write_json

    def interrupted(path, obj):
        if path.endswith("camera.json"):
            raise KeyboardInterrupt
        real(path, obj)

    monkeypatch.setattr(rd, "_write_json", interrupted)
    assert main(["render", "--scene", str(scene_file), "--out", str(out), "--samples", "3"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scene.json"]  # no partial folder left


def test_a_partial_folder_of_a_killed_run_is_swept(scene_file, tmp_path, fake_render):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    stale = tmp_path / f".out.partial-{socket.gethostname()}-{dead.pid}"
    stale.mkdir()
    (stale / "rgb.png").write_bytes(b"half")
    assert main(["render", "--scene", str(scene_file), "--out", str(out)]) == 0
    assert not stale.exists() and (out / "scene.json").exists()


# --- Blender: signals at random moments, the sweep after SIGKILL, the one-object warning ----------------------


def _env(tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmpdir))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _start(args: list[str], tmpdir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rgbify", "render", *args], env=_env(tmpdir), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _wait_for_worker(p: subprocess.Popen, timeout: float = 120) -> list[int]:
    """The render's Blender worker process(es), once it has started one (the command is past its own start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        kids = _children(p.pid)
        if kids:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"no worker process started (exit code {p.poll()})")


def _gone(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"
    except OSError:
        return True


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_a_random_moment_stops_render_with_130(tmp_path, sig):
    pytest.importorskip("bpy")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    scene = tmp_path / "slow.json"
    scene.write_text(spec_to_json(slow_scene()))
    out = tmp_path / "out"
    delay = float(np.random.default_rng([4, sig]).uniform(0.0, 6.0))  # Blender's start-up, scene build or render
    p = _start(["--scene", str(scene), "--out", str(out)], tmpdir)
    workers = _wait_for_worker(p)
    time.sleep(delay)
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=10)
    finally:
        p.kill()
    took = time.monotonic() - t0
    assert p.returncode == 130 and took < 5, (p.returncode, took, err)
    assert "rgbify: interrupted" in err and "Traceback" not in err
    assert not out.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["slow.json", "tmp"]
    assert all(_gone(w) for w in workers)
    deadline = time.monotonic() + 5
    while list(tmpdir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmpdir.iterdir()) == []  # the worker's folder (Blender's blender_* inside it) is gone


@pytest.mark.blender
@pytest.mark.slow
def test_after_sigkill_the_next_render_sweeps_the_temporary_folders(tmp_path):
    pytest.importorskip("bpy")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    scene = tmp_path / "slow.json"
    scene.write_text(spec_to_json(slow_scene()))
    p = _start(["--scene", str(scene), "--out", str(tmp_path / "out")], tmpdir)
    workers = _wait_for_worker(p)
    time.sleep(float(np.random.default_rng(9).uniform(0.0, 6.0)))
    p.kill()
    p.communicate()
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(w) for w in workers)  # the worker dies with its parent
    left = list(tmpdir.glob("rgbify-worker-*"))
    assert left  # SIGKILL: nothing could clean up
    for d in left:
        os.utime(d, (time.time() - 3600, time.time() - 3600))  # the sweep leaves folders younger than a minute
    tiny = tmp_path / "tiny.json"
    tiny.write_text(spec_to_json(dataclasses.replace(tiny_scene(), render=dataclasses.replace(
        tiny_scene().render, samples=1))))
    q = _start(["--scene", str(tiny), "--out", str(tmp_path / "out")], tmpdir)
    _, err = q.communicate(timeout=300)
    assert q.returncode == 0, err
    assert not any(d.exists() for d in left)
    assert list(tmpdir.iterdir()) == []


@pytest.mark.blender
@pytest.mark.slow
def test_a_camera_inside_an_object_warns(tmp_path):
    pytest.importorskip("bpy")
    from rgbify.scenes.spec import Camera, look_at

    spec = tiny_scene(samples=1)
    inside = Camera.from_hfov(11, 7, 50.0, look_at((0.0, 0.0, 0.3), (1.0, 0.0, 0.3)))  # the box's centre
    path = tmp_path / "inside.json"
    path.write_text(spec_to_json(dataclasses.replace(spec, camera=inside)))
    p = _start(["--scene", str(path), "--out", str(tmp_path / "out")], tmp_path)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "warning: every pixel shows one object, 'box'" in err and "inside" in err


def test_a_nan_pose_made_in_python_is_refused_before_blender():
    """A spec built in Python skips the JSON validation: validate() (which render runs first) refuses NaN."""
    from rgbify.scenes.spec import SpecError

    spec = tiny_scene()
    nan = tuple(tuple(float("nan") if (i, j) == (0, 3) else v for j, v in enumerate(row))
                for i, row in enumerate(spec.camera.world_from_camera))
    bad = dataclasses.replace(spec, camera=dataclasses.replace(spec.camera, world_from_camera=nan))
    with pytest.raises(SpecError, match="world_from_camera holds NaN"):
        bad.validate()
