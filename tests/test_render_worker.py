"""The Blender worker process: reuse, recycling, timeouts, bad specs, and no orphans when the parent dies."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from render_scenes import slow_scene, tiny_scene

from rgbify.render.worker import RenderWorker, SceneError, SceneTimeout, _new_root, _remove_if_orphaned
from rgbify.scenes.spec import MeshFile, Object

pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_import_does_not_import_bpy():
    code = "import sys, rgbify.render, rgbify.render.worker; assert 'bpy' not in sys.modules, 'bpy imported'"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("rgbify").__file__)))
    p = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=root), capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr


def test_worker_reuses_one_process_and_survives_a_bad_spec(tmp_path):
    spec = tiny_scene()
    bad = dataclasses.replace(spec, objects=spec.objects + (Object("x", MeshFile(str(tmp_path / "nope.obj")),
                                                                   "box", 7),))
    with RenderWorker(max_scenes=10, timeout_s=120) as w:
        first = w.render(spec)
        pid = w.pid
        with pytest.raises(SceneError, match="nope.obj"):
            w.render(bad)
        second = w.render(spec)
        assert w.pid == pid and w.restarts == 0 and w.scenes_rendered == 2
        assert first.timings["worker_startup"] > 0 and second.timings["worker_startup"] == 0
        assert np.array_equal(first.depth, second.depth) and np.array_equal(first.rgb, second.rgb)
        assert np.array_equal(first.instance, second.instance)
    assert _wait_gone(pid)


def test_worker_recycles_after_max_scenes():
    spec = tiny_scene()
    with RenderWorker(max_scenes=2, timeout_s=120) as w:
        w.render(spec)
        pid = w.pid
        w.render(spec)
        assert w.restarts == 1 and w.pid != pid
        assert _wait_gone(pid)
        w.render(spec)
        assert w.scenes_rendered == 3


def test_worker_recycles_above_rss_limit():
    with RenderWorker(max_rss_mb=1.0, timeout_s=120) as w:
        w.render(tiny_scene())
        assert w.restarts == 1 and w.last_rss_mb > 1.0


@pytest.mark.slow
def test_timeout_kills_and_replaces_the_process():
    slow = slow_scene()
    with RenderWorker(timeout_s=60.0, startup_timeout_s=120) as w:
        w.render(tiny_scene())  # warm (on a loaded machine a first render can take more than a second)
        w.timeout_s = 1.0
        pid = w.pid
        with pytest.raises(SceneTimeout):
            w.render(slow)
        assert w.restarts == 1 and _wait_gone(pid)
        w.timeout_s = 60.0  # the replacement's first render is a cold one (it took over 1 s under load)
        assert w.render(tiny_scene()).depth.shape == (7, 11)


PARENT = textwrap.dedent("""
    import os, sys, time
    from rgbify.render.worker import RenderWorker
    sys.path.insert(0, {tests!r})
    from render_scenes import slow_scene, tiny_scene
    w = RenderWorker(timeout_s=120)
    w.start()
    w._wait_ready()
    print(w.pid, w._root, flush=True)
    if {busy!r}:
        import threading
        spec = slow_scene()
        threading.Thread(target=w.render, args=(spec,), daemon=True).start()
        time.sleep(1.0)
    os.kill(os.getpid(), 9)
""")


@pytest.mark.slow
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "rendering"])
def test_worker_exits_when_parent_is_killed(busy):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("rgbify").__file__)))
    tests = os.path.dirname(os.path.abspath(__file__))
    code = PARENT.format(tests=tests, busy=busy)
    p = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=root), capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == -signal.SIGKILL, p.stderr
    child, root = int(p.stdout.split()[0]), p.stdout.split()[1]
    try:
        assert _wait_gone(child, 10.0), f"worker {child} outlived its parent"
        # a SIGKILLed parent cannot remove its worker's folder (Blender's temporary folder included, not left in
        # /tmp): the next worker's sweep does, as its owner lock is free
        assert any(n.startswith("blender_") for n in os.listdir(root)), os.listdir(root)
        _remove_if_orphaned(root, min_age_s=0)
        assert not os.path.exists(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sweep_leaves_the_folders_of_live_workers():
    root, owner = _new_root()
    try:
        _remove_if_orphaned(root, min_age_s=0)
        assert os.path.isdir(root)
    finally:
        owner.release()
        shutil.rmtree(root)


@pytest.mark.slow
def test_close_from_another_thread_stops_a_render_without_a_new_process():
    import threading

    w = RenderWorker(timeout_s=120)
    w.start()
    w._wait_ready()
    pid = w.pid
    errors = []

    def run():
        try:
            w.render(slow_scene())
        except SceneError as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    w.close()
    t.join(30)
    assert not t.is_alive() and errors and "closed" in str(errors[0])
    assert _wait_gone(pid) and w.pid is None and w.restarts == 0
    with pytest.raises(SceneError, match="closed"):
        w.render(tiny_scene())
