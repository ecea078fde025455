"""End to end with real Blender renders at tiny resolution: `rgbify build` (1 and 2 workers), kill-and-resume,
orphan workers, extend, refuse, repair, verify, preview, export and the torch loader on the result.

Every build runs `sys.executable -m rgbify build` in a subprocess with PYTHONPATH set to this worktree.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

import rgbify
from rgbify.datasets.storage.reader import DatasetReader

pytest.importorskip("bpy")
pytest.importorskip("rgbify.render.worker")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

ROOT = Path(rgbify.__file__).resolve().parents[1]
TINY = ["--resolution", "32x24", "--samples", "4", "--shard-size", "3", "--quiet", "--no-preview"]
COUNT = 4
EXACT = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "world_from_camera", "spec", "instances")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def rgbify_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rgbify", *args]


def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    p = subprocess.run(rgbify_cmd(*args), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"rgbify {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def build(out: Path, *extra: str, count: int = COUNT, workers: int = 2, check: bool = True):
    return run("build", "--out", str(out), "--count", str(count), "--workers", str(workers), *TINY, *extra,
               check=check)


def assert_same(a: dict[int, dict], b: dict[int, dict], indices) -> None:
    """Samples equal in every field but the render timings, RGB included (the README promises bit-identical
    datasets for one and N workers, and across kills and resumes: Cycles is seeded per scene)."""
    for i in indices:
        for name in EXACT:
            v, w = a[i][name], b[i][name]
            assert (v == w) if isinstance(v, str) else np.array_equal(v, w), f"sample {i}: {name} differs"


def samples(d: Path) -> dict[int, dict]:
    r = DatasetReader(d)
    out = {i: r.read(i) for i in r.indices}
    r.close()
    return out


@pytest.fixture(scope="module")
def ds2(tmp_path_factory) -> Path:
    """A 4-sample dataset built with 2 workers (shards of 3: one full, one short)."""
    d = tmp_path_factory.mktemp("b") / "ds2"
    build(d, workers=2)
    return d


@pytest.fixture(scope="module")
def ds1(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("b") / "ds1"
    build(d, workers=1)
    return d


def test_build_layout_and_verify(ds2):
    m = json.loads((ds2 / "dataset.json").read_text())
    assert m["complete"] and m["count"] == COUNT and m["conventions_version"] == rgbify.CONVENTIONS_VERSION
    assert m["config"]["resolution"] == [32, 24] and m["config"]["samples"] == 4
    assert m["blender_version"] and m["classes"] and m["seed"] == 0
    assert [(s["file"], s["samples"]) for s in m["shards"]] == [("shards/shard-00000.h5", 3),
                                                               ("shards/shard-00001.h5", 1)]
    names = sorted(p.name for p in ds2.iterdir())  # credits when the scenes use catalogue or user models
    plain = [".lock", "dataset.json", "shards"]
    assert names in (plain, [".lock", "CREDITS.md", "credits.json", "dataset.json", "shards"])
    if "credits.json" in names:
        assert json.loads((ds2 / "credits.json").read_text()) and (ds2 / "CREDITS.md").read_text().strip()
    p = run("verify", str(ds2))
    assert "OK" in p.stdout and "4 sample(s) checked" in p.stdout


def test_one_worker_equals_two_workers(ds1, ds2):
    a, b = samples(ds1), samples(ds2)
    assert sorted(a) == sorted(b) == list(range(COUNT))
    assert_same(a, b, range(COUNT))  # RGB bit-equal too


def test_kill_and_resume(tmp_path, ds1):
    """SIGKILL the whole build at random moments, three times; then finish. Nothing lost, duplicated or corrupt,
    the result equals an uninterrupted build, and no worker process outlives a kill."""
    d = tmp_path / "killed"
    rnd = random.Random(1234)
    for _ in range(3):
        proc = subprocess.Popen(rgbify_cmd("build", "--out", str(d), "--count", str(COUNT), "--workers", "2",
                                           *TINY), env=_env(), cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(1.5, 7.0))
        kids = descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had already finished
            pass
        proc.wait()
        assert_gone(kids)
    build(d, workers=2)
    assert run("verify", str(d)).returncode == 0
    assert sorted(samples(d)) == list(range(COUNT))
    assert_same(samples(ds1), samples(d), range(COUNT))
    assert not (d / ".work").exists()


def test_workers_exit_when_the_build_dies(tmp_path):
    """Kill only the parent (not its group): its Blender workers notice and exit by themselves."""
    proc = subprocess.Popen(rgbify_cmd("build", "--out", str(tmp_path / "o"), "--count", "50", "--workers", "2",
                                       *TINY), env=_env(), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        kids: list[int] = []
        while time.time() < deadline and len(kids) < 2:
            time.sleep(0.5)
            kids = descendants(proc.pid)
        assert kids, "the build started no worker process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert_gone(kids, timeout=20)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_extend_refuse_and_repair(tmp_path, ds2):
    d = tmp_path / "ds"
    shutil.copytree(ds2, d)
    before = samples(d)
    # a different config on an existing dataset is refused, and nothing changes
    manifest = (d / "dataset.json").read_bytes()
    p = build(d, "--seed", "1", check=False)
    assert p.returncode == 2 and "seed 0 -> 1" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = build(d, "--storage", "fast", check=False)
    assert p.returncode == 2 and "built with --storage compact" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert (d / "dataset.json").read_bytes() == manifest
    # a larger count extends: the short last shard is rewritten, sample 4 is new, 0..3 are unchanged
    build(d, count=5)
    after = samples(d)
    assert sorted(after) == list(range(5))
    for i in before:
        assert before[i]["checksum"] == after[i]["checksum"]
    # a truncated shard is reported by verify and re-rendered (alone) by build
    s0 = (d / "shards/shard-00000.h5").read_bytes()
    p1 = d / "shards/shard-00001.h5"
    p1.write_bytes(p1.read_bytes()[: p1.stat().st_size // 2])
    p = run("verify", str(d), check=False)
    assert p.returncode == 1 and "shards/shard-00001.h5" in p.stdout and "shard-00000" not in p.stdout
    p = build(d, count=5)
    assert (d / "shards/shard-00000.h5").read_bytes() == s0
    assert run("verify", str(d)).returncode == 0
    assert_same(samples(d), after, range(5))  # the re-rendered samples 3 and 4 equal the first render


def test_fast_storage_repack_and_build(tmp_path, ds2):
    """`rgbify repack --storage fast` copies a dataset with RGB stored uncompressed (the same samples, RGB too);
    `rgbify build --storage fast` extends the copy, writing its shards the same way; a build of it with the other
    storage is refused."""
    import h5py

    d = tmp_path / "fast"
    p = run("repack", str(ds2), "--storage", "fast", "--out", str(d))
    assert "2 shard(s) written" in p.stdout
    assert json.loads((d / "dataset.json").read_text())["storage"] == "fast"
    before = samples(ds2)
    assert all(s["checksum"] == before[i]["checksum"] for i, s in samples(d).items())
    build(d, "--storage", "fast", count=5)  # renders sample 4 and rewrites the short last shard
    after = samples(d)
    assert sorted(after) == list(range(5)) and all(after[i]["checksum"] == before[i]["checksum"] for i in before)
    for k in (0, 1):
        with h5py.File(d / f"shards/shard-0000{k}.h5") as f:
            assert f["rgb"].compression_opts == 0 and f["depth"].compression_opts == 6
    p = build(d, count=5, check=False)
    assert p.returncode == 2 and "built with --storage fast; re-run with --storage fast" in p.stderr
    assert run("verify", str(d)).returncode == 0


def test_preview(ds2, tmp_path):
    from PIL import Image

    out = tmp_path / "sheet.png"
    run("preview", str(ds2), "--out", str(out), "--n", "3")
    im = Image.open(out)
    assert im.width > 7 * 96 and im.height > 3 * 20
    assert np.asarray(im).std() > 10


def test_export_png_and_webdataset(ds2, tmp_path):
    from rgbify.encode import decode_target

    run("export", str(ds2), "--format", "png", "--out", str(tmp_path / "png"), "--tasks", "depth,normals")
    rows = [json.loads(x) for x in (tmp_path / "png/metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * COUNT and {r["task"] for r in rows} == {"depth", "normals"}
    r = rows[0]
    from PIL import Image

    tgt = np.asarray(Image.open(tmp_path / "png" / r["edited_image_file_name"]))
    depth = decode_target(tgt, r["decode"])
    gt = samples(ds2)[r["index"]]["depth"]
    hit = np.isfinite(gt)
    assert np.nanmax(np.abs(depth[hit] - gt[hit]) / gt[hit]) < 0.05
    run("export", str(ds2), "--format", "webdataset", "--out", str(tmp_path / "wds"), "--shard-size", "3")
    tars = sorted((tmp_path / "wds").glob("*.tar"))
    assert len(tars) == 6  # 16 items / 3 per tar
    with tarfile.open(tars[0]) as t:
        names = t.getnames()
    assert names[:4] == ["000000000_depth.input.png", "000000000_depth.target.png", "000000000_depth.txt",
                         "000000000_depth.json"]


def test_loader_on_real_build(ds2):
    import torch

    from rgbify.datasets import TaskDataset, collate
    from rgbify.encode import decode_target

    ds = TaskDataset(ds2, tasks=("depth", "normals", "semantic", "instance"), split="all", resolution=(16, 12),
                     seed=3)
    seen = set()
    for j in range(len(ds)):
        for epoch in range(3):
            ds.set_epoch(epoch)
            it = ds[j]
            seen.add(it["task"])
            assert it["image"].shape == it["target"].shape == (3, 12, 16)
            assert it["image"].dtype == it["target"].dtype == torch.uint8
            rgb = it["target"].permute(1, 2, 0).numpy()
            dec = decode_target(rgb, json.loads(it["decode"]))
            valid = it["valid"].numpy()
            if it["task"] == "depth":
                gt = it["gt_depth"].numpy()
                assert np.median(np.abs(dec[valid] - gt[valid]) / gt[valid]) < 0.05
            elif it["task"] == "normals":
                cos = (dec[valid] * it["gt_normals"].numpy()[valid]).sum(-1)
                assert np.median(cos) > 0.99
            elif it["task"] == "semantic":
                assert np.mean(dec[valid] == it["gt_semantic"].numpy()[valid]) > 0.9 or not valid.any()
    assert len(seen) >= 3
    b = collate([ds[0], ds[1]])
    assert b["image"].shape == (2, 3, 12, 16) and b["gt_depth"].dtype == torch.float32


def test_bad_input(tmp_path, ds2):
    import h5py

    cases = [
        (["build", "--out", "/dev/null/x", "--count", "2"], "/dev/null/x"),
        (["build", "--out", str(tmp_path / "a"), "--recipe", "no-such-recipe"], "no-such-recipe"),
        (["build", "--out", str(tmp_path / "a"), "--count", "0"], "--count 0"),
        (["build", "--out", str(tmp_path / "a"), "--count", "-3"], "--count -3"),
    ]
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(4)
    cases.append((["verify", str(foreign)], str(foreign)))
    cases.append((["preview", str(foreign)], str(foreign)))
    notours = tmp_path / "notours"
    notours.mkdir()
    (notours / "data.txt").write_text("mine")
    cases.append((["build", "--out", str(notours), *TINY], str(notours)))
    # a foreign HDF5 file where a shard should be: refused, not deleted
    d = tmp_path / "ds"
    shutil.copytree(ds2, d)
    shutil.copy(foreign, d / "shards/shard-00002.h5")
    cases.append((["build", "--out", str(d), "--count", "7", "--workers", "1", *TINY], "shard-00002.h5"))
    for args, needle in cases:
        p = run(*args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rgbify: error:") and needle in lines[0], (args, p.stderr)
    assert (notours / "data.txt").read_text() == "mine" and sorted(x.name for x in notours.iterdir()) == ["data.txt"]
    assert (d / "shards/shard-00002.h5").read_bytes() == foreign.read_bytes()
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_disk_full_mid_shard(tmp_path, monkeypatch, capsys):
    """The disk fills while a shard is written: one-line error, exit 2, nothing published, nothing lost;
    the same command then finishes without re-rendering."""
    import errno

    from rgbify.cli import main
    from rgbify.datasets.build import work as b

    real = b.write_shard

    def full_disk(path, samples, **kw):
        def gen():
            for j, s in enumerate(samples):
                if j == 1:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield s

        return real(path, gen(), **kw)

    d = tmp_path / "full"
    args = ["build", "--out", str(d), "--count", "3", "--workers", "1", *TINY]
    monkeypatch.setattr(b, "write_shard", full_disk)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left" in err[0] and "shard-00000.h5" in err[0]
    assert list((d / "shards").iterdir()) == []
    assert json.loads((d / "dataset.json").read_text())["shards"] == []
    assert len(list((d / ".work/shard-00000").glob("*.npz"))) == 3
    monkeypatch.setattr(b, "write_shard", real)
    assert main([*args[:-2], "--no-preview"]) == 0  # --quiet dropped: the summary says 0 rendered now
    assert "0 rendered now, 3 kept" in capsys.readouterr().out
    assert run("verify", str(d)).returncode == 0


# --- process helpers -----------------------------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            pp = _ppid(int(p.name))
            if pp is not None:
                children.setdefault(pp, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    alive = [p for p in pids if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, f"orphan worker process(es) outlived the build: {alive}"


def test_a_scene_that_always_fails_is_named(tmp_path, monkeypatch, capsys):
    """A scene that fails every retry stops the build with one line naming the sample and the cause (exit 1);
    the samples finished before are kept."""
    from rgbify.cli import main
    from rgbify.render import worker as w

    real = w.RenderWorker.render

    def render(self, spec):
        if dict(spec.meta)["index"] == 1:
            raise w.SceneError("cannot read texture /nowhere/wood.png")
        return real(self, spec)

    monkeypatch.setattr(w.RenderWorker, "render", render)
    d = tmp_path / "f"
    assert main(["build", "--out", str(d), "--count", "3", "--workers", "1", *TINY]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sample 1 failed 3 times" in err[0] and "/nowhere/wood.png" in err[0], err
    assert (d / ".work/shard-00000/000000000.npz").exists()
