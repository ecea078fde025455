"""`rgbify build --ray`: on a local Ray instance and on a two-node Ray cluster (ray.cluster_utils, one CPU per
node), compared sample by sample with a local build; a Ray worker SIGKILLed mid-shard is retried and no partial or
duplicate shard is published. Tiny renders (16x12 px, 2 samples per pixel), 3-sample shards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rgbify
from rgbify.datasets.storage.reader import DatasetReader

pytest.importorskip("bpy")
pytest.importorskip("ray")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

ROOT = Path(rgbify.__file__).resolve().parents[1]
TINY = ["--resolution", "16x12", "--samples", "2", "--shard-size", "3", "--no-preview"]
EXACT = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "world_from_camera", "spec", "instances")
STORE = 80 * 2**20  # Ray's smallest object store; tasks return small dicts


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["RAY_DEDUP_LOGS"] = "0"
    return env


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rgbify", *args]


def run(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd(*args), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"rgbify {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr[-4000:]}")
    return p


def build(out: Path, count: int, *extra: str) -> subprocess.CompletedProcess:
    return run("build", "--out", str(out), "--count", str(count), *TINY, "--quiet", *extra)


def samples(d: Path) -> dict[int, dict]:
    r = DatasetReader(d)
    out = {i: r.read(i) for i in r.indices}
    r.close()
    return out


def assert_same(a: dict[int, dict], b: dict[int, dict]) -> None:
    assert sorted(a) == sorted(b)
    for i in a:
        for name in EXACT:
            v, w = a[i][name], b[i][name]
            assert (v == w) if isinstance(v, str) else np.array_equal(v, w), f"sample {i}: {name} differs"


def assert_clean(d: Path, shards: int) -> None:
    m = json.loads((d / "dataset.json").read_text())
    files = [s["file"] for s in m["shards"]]
    assert m["complete"] and len(files) == len(set(files)) == shards
    assert sorted(p.name for p in (d / "shards").iterdir()) == [f"shard-{k:05d}.h5" for k in range(shards)]
    assert not (d / ".work").exists()
    assert "OK" in run("verify", str(d)).stdout


@pytest.fixture(scope="module")
def local_ref(tmp_path_factory) -> Path:
    """The reference: a 4-sample local build (2 Blender worker processes, no Ray)."""
    d = tmp_path_factory.mktemp("scale") / "local"
    build(d, 4, "--workers", "2")
    return d


def children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_local_ray_killed_worker_is_retried(tmp_path, local_ref):
    """`--ray` alone (a local Ray instance): SIGKILL the Ray worker process rendering shard 0 once its first
    sample is done. Ray runs the task again, the new attempt keeps the finished sample, the build succeeds and
    equals the local build; the killed worker's Blender process is gone; no partial or second shard exists."""
    d = tmp_path / "killed"
    proc = subprocess.Popen(cmd("build", "--out", str(d), "--count", "3", *TINY, "--workers", "1", "--ray"),
                            env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wdir = d / ".work" / "shard-00000"
        deadline = time.time() + 300
        victim = None
        while time.time() < deadline and proc.poll() is None:
            attempts = list(wdir.glob(".attempt-*")) if wdir.is_dir() else []
            if attempts and list(wdir.glob("*.npz")):
                victim = int(attempts[0].read_text())
                break
            time.sleep(0.2)
        assert victim is not None, "the shard task never finished a sample"
        blenders = children(victim)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-4000:]
    assert "1 shard task(s) ran again after an interrupted attempt" in err
    deadline = time.time() + 20
    while any(alive(p) for p in blenders) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(alive(p) for p in blenders), "the killed worker's Blender process outlived it"
    assert_clean(d, 1)
    ref = samples(local_ref)
    assert_same(samples(d), {i: ref[i] for i in range(3)})


@pytest.fixture(scope="module")
def cluster():
    """A local two-node Ray cluster, one CPU each (the pytest process is not its driver)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": STORE,
                                                      "include_dashboard": False})
    c.add_node(num_cpus=1, object_store_memory=STORE)
    c.wait_for_nodes()
    try:
        yield c.address
    finally:
        c.shutdown()


def test_cluster_build_extend_resume_equal_local(tmp_path, local_ref, cluster):
    """Build 2 samples on the cluster (a short shard), extend to 4 (the short shard is rewritten by a task that
    copies its published samples, a second shard runs on the other node), run again (nothing to do): the
    dataset equals the local build sample by sample and verifies."""
    d = tmp_path / "cluster"
    build(d, 2, "--ray", cluster)
    assert_clean(d, 1)
    build(d, 4, "--ray", cluster)
    assert_clean(d, 2)
    again = run("build", "--out", str(d), "--count", "4", *TINY, "--ray", cluster)
    assert "(0 rendered now, 4 kept)" in again.stdout
    assert_same(samples(d), samples(local_ref))
    m, ref = (json.loads((p / "dataset.json").read_text()) for p in (d, local_ref))
    assert m["config_hash"] == ref["config_hash"] and m["blender_version"] == ref["blender_version"]


def test_cluster_clip_build_equals_local(tmp_path, cluster):
    """Clips (`--clip-frames 3`) as Ray tasks on the cluster: 1 clip, extended to 2 (its short clip shard rewritten
    by a task from the published clip), equal clip for clip (RGB included) to a local build, and verified."""
    from rgbify.datasets.storage.clips import ClipShardReader

    clip = ["--clip-frames", "3", "--recipe", "tabletop", "--samples", "1", "--shard-size", "2"]
    local, d = tmp_path / "local", tmp_path / "ray"
    run("build", "--out", str(local), "--count", "2", *TINY, *clip, "--workers", "1", "--quiet")
    run("build", "--out", str(d), "--count", "1", *TINY, *clip, "--ray", cluster, "--quiet")
    run("build", "--out", str(d), "--count", "2", *TINY, *clip, "--ray", cluster, "--quiet")
    assert "OK" in run("verify", str(d)).stdout and not (d / ".work").exists()
    with ClipShardReader(local / "shards/shard-00000.h5") as a, ClipShardReader(d / "shards/shard-00000.h5") as b:
        assert len(a) == len(b) == 2
        assert [a.clip(j)["checksum"] for j in range(2)] == [b.clip(j)["checksum"] for j in range(2)]
