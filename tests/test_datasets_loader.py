"""TaskDataset geometry (crop, resize, flip keep ground truth and K consistent), split, generation items, captions.

Uses fake stored samples (tests/dataset_fakes.py); the targets' encoding is exercised in tests/test_build_e2e.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rgbify.datasets.loading.captions import caption, color_name, plural
from rgbify.scenes.spec import Camera, Material, Object, Primitive, SceneSpec
from tests.dataset_fakes import fake_dataset, fake_sample
from tests.oracles import numpy_loader as ref

torch = pytest.importorskip("torch")


def _unproject(K, u, v, z):
    return np.array([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])


def test_lazy_torch_import():
    import subprocess

    code = "import sys, rgbify.datasets; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    from rgbify.datasets import TaskDataset, collate  # noqa: F401


def test_flip_negates_normal_x_and_moves_cx(tmp_path):
    from rgbify.datasets import TaskDataset

    ds = TaskDataset(fake_dataset(tmp_path, n=2, h=12, w=16), split="all", crop_scale=(1, 1), hflip=1.0,
                     augment=True)
    s = fake_sample(0, 12, 16)
    gt = ref.augment(ds, ds.reader.read(0), np.random.default_rng(0))
    np.testing.assert_array_equal(gt["depth"], s["depth"][:, ::-1])
    np.testing.assert_array_equal(gt["normals"][..., 0], -s["normals"][:, ::-1, 0] + 0.0)
    assert not np.signbit(gt["normals"][..., 0][gt["instance"] == 0]).any()
    assert gt["K"][0, 2] == 15 - s["K"][0, 2]
    # the same 3-D point: pixel (v, u) before, (v, W-1-u) after, with x mirrored
    v, u = 7, 3
    p0 = _unproject(s["K"], u, v, s["depth"][v, u])
    p1 = _unproject(gt["K"], 15 - u, v, gt["depth"][v, 15 - u])
    np.testing.assert_allclose(p1, p0 * [-1, 1, 1])


def test_crop_and_resize_keep_K_consistent(tmp_path):
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=1, h=12, w=16)
    s = fake_sample(0, 12, 16)
    ds = TaskDataset(d, split="all", crop_scale=(0.5, 0.5), hflip=0.0, augment=True, resolution=(16, 12))
    gt = ref.augment(ds, ds.reader.read(0), np.random.default_rng(3))
    assert gt["depth"].shape == (12, 16) and gt["rgb"].shape == (12, 16, 3)
    # every output pixel samples the input pixel whose centre it maps to: same depth, same 3-D point
    for v in range(12):
        for u in range(16):
            z = gt["depth"][v, u]
            if not np.isfinite(z):
                continue
            p = _unproject(gt["K"], u, v, z)
            uu, vv = s["K"][0, 0] * p[0] / z + s["K"][0, 2], s["K"][1, 1] * p[1] / z + s["K"][1, 2]
            assert s["depth"][int(round(vv)), int(round(uu))] == z
    ids = {r["id"]: r["pixel_count"] for r in gt["instances"]}
    assert ids == {i: int((gt["instance"] == i).sum()) for i in ids}


def test_split_is_deterministic_and_disjoint(tmp_path):
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=40, shard_size=16, h=4, w=4)
    tr = TaskDataset(d, split="train", val_fraction=0.25)
    va = TaskDataset(d, split="val", val_fraction=0.25)
    assert sorted(tr.indices + va.indices) == list(range(40))
    assert 3 <= len(va) <= 18
    assert va.indices == TaskDataset(d, split="val", val_fraction=0.25).indices


def test_generation_items(tmp_path):
    from rgbify.datasets import TaskDataset, collate

    d = fake_dataset(tmp_path, n=3)
    ds = TaskDataset(d, split="all", generation_ratio=1.0, augment=False)
    it = ds[1]
    assert it["task"] == "generate" and it["prompt"].startswith("a scene with")
    assert it["image"].dtype == torch.uint8 and torch.all(it["image"] == 0)
    assert torch.equal(it["target"], torch.from_numpy(fake_sample(1)["rgb"]).permute(2, 0, 1))
    b = collate([ds[0], ds[1]])
    assert b["target"].shape == (2, 3, 6, 8) and b["gt_instance"].dtype == torch.int64
    assert isinstance(b["prompt"], list) and b["index"].tolist() == [0, 1]


def test_caption():
    def obj(i, cls, color):
        return Object(name=f"{cls}{i}", geometry=Primitive("box"), class_name=cls, instance_id=i,
                      material=Material(base_color=color))

    spec = SceneSpec(camera=Camera.from_hfov(4, 4, 60), classes=("wall", "bed", "lamp"),
                     objects=(obj(1, "wall", (0.8, 0.8, 0.8)), obj(2, "bed", (0.05, 0.5, 0.05)),
                              obj(3, "lamp", (1, 1, 1)), obj(4, "lamp", (1, 1, 1))),
                     meta=(("recipe", "indoor"), ("room_type", "bedroom")))
    assert caption(spec) == "a bedroom with a green bed and two lamps"
    assert caption(spec, visible={3}) == "a bedroom with a white lamp"
    assert plural("shelf") == "shelves" and plural("box") == "boxes" and plural("toy") == "toys"
    assert color_name((1, 0, 0)) == "red" and color_name((0.01, 0.01, 0.01)) == "black"


@pytest.mark.parametrize("seed", range(6))
def test_crop_and_flip_without_resize_is_plain_slicing(tmp_path, seed):
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=1, h=12, w=16)
    s = fake_sample(0, 12, 16)
    ds = TaskDataset(d, split="all", crop_scale=(0.5, 0.5), hflip=1.0, augment=True)
    gt = ref.augment(ds, ds.reader.read(0), np.random.default_rng(seed))
    r = np.random.default_rng(seed)  # the same draws as ref.augment: crop offsets, then the flip
    y0, x0 = int(r.integers(0, 12 - 6 + 1)), int(r.integers(0, 16 - 8 + 1))
    for k in ("depth", "instance", "semantic", "edge", "rgb"):
        np.testing.assert_array_equal(gt[k], s[k][y0:y0 + 6, x0:x0 + 8][:, ::-1])
    np.testing.assert_array_equal(gt["normals"][..., 1:], s["normals"][y0:y0 + 6, x0:x0 + 8][:, ::-1, 1:])
    assert gt["K"][0, 2] == 7 - (s["K"][0, 2] - x0)


def _same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else x[k] == y[k], k


def test_thread_loader_gives_the_dataloader_batches(tmp_path):
    """Threads change nothing but speed: the batches of 0, 1 and 3 threads equal a DataLoader's, in order."""
    from rgbify.datasets import TaskDataset, ThreadLoader, collate

    ds = TaskDataset(fake_dataset(tmp_path, n=9), split="all", resolution=(8, 6), generation_ratio=0.2)
    ds.set_epoch(3)
    want = list(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate))
    for threads in (0, 1, 3):
        loader = ThreadLoader(ds, 2, threads=threads, prefetch=1, keep_freed_memory=False)
        assert len(loader) == 5
        _same_batches(list(loader), want)
    assert len(list(ThreadLoader(ds, 2, drop_last=True, keep_freed_memory=False))) == 4
    shards = [list(ThreadLoader(ds, 2, shard=(r, 2), keep_freed_memory=False)) for r in (0, 1)]
    assert [len(ThreadLoader(ds, 2, shard=(r, 2))) for r in (0, 1)] == [3, 2]
    _same_batches(shards[0], want[0::2])
    _same_batches(shards[1], want[1::2])


def test_thread_loader_endless_keys_errors_and_bad_arguments(tmp_path):
    import itertools

    from rgbify.datasets import TaskDataset, ThreadLoader

    ds = TaskDataset(fake_dataset(tmp_path, n=4), split="all")
    it = iter(ThreadLoader(ds, 3, keys=itertools.cycle(range(4)), threads=2, keep_freed_memory=False))
    assert [b["index"].tolist() for b in itertools.islice(it, 3)] == [[0, 1, 2], [3, 0, 1], [2, 3, 0]]
    it.close()  # an abandoned endless stream shuts its pool down
    with pytest.raises(IndexError):
        list(ThreadLoader(ds, 2, keys=[0, 99], threads=2, keep_freed_memory=False))
    for kw in ({"batch_size": 0}, {"threads": -1}, {"shard": (2, 2)}):
        with pytest.raises(ValueError):
            ThreadLoader(ds, **{"batch_size": 2, **kw})


def test_process_loader_gives_the_dataloader_batches(tmp_path):
    """Worker processes and shared buffers change nothing but speed: 1 and 3 workers give a DataLoader's batches
    in order (all kept: a reused buffer never changes a batch already handed out), sharded and drop_last alike."""
    from rgbify.datasets import ProcessLoader, TaskDataset, collate

    ds = TaskDataset(fake_dataset(tmp_path, n=9), split="all", resolution=(8, 6), generation_ratio=0.2)
    ds.set_epoch(3)
    want = list(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate))
    for workers in (1, 3):
        loader = ProcessLoader(ds, 2, workers=workers, prefetch=1, keep_freed_memory=False)
        assert len(loader) == 5
        _same_batches(list(loader), want)
    assert len(list(ProcessLoader(ds, 2, workers=1, drop_last=True, keep_freed_memory=False))) == 4
    _same_batches(list(ProcessLoader(ds, 2, workers=2, shard=(1, 2), keep_freed_memory=False)), want[1::2])


class _Items:
    """Items {"x": float32 (3,)} with key; key 7 kills its worker process, key 8 raises KeyError."""

    def __len__(self):
        return 10

    def __getitem__(self, k):
        import os

        if k == 7:
            os._exit(3)
        if k == 8:
            raise KeyError(f"no item {k}")
        return {"x": torch.full((3,), float(k)), "k": k}


def test_process_loader_other_collate_errors_and_workers_that_die():
    import itertools
    import multiprocessing

    from rgbify.datasets import ProcessLoader

    def big(items):  # a tensor larger than the shared buffers travels the DataLoader's way
        return {"x": torch.stack([it["x"] for it in items]), "big": torch.ones(1 << 16), "k": [it["k"] for it in items]}

    got = list(ProcessLoader(_Items(), 2, keys=range(6), workers=2, collate=big, keep_freed_memory=False))
    assert [b["k"] for b in got] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(got[2]["x"], torch.tensor([[4.0] * 3, [5.0] * 3])) and got[0]["big"].sum() == 1 << 16
    it = iter(ProcessLoader(_Items(), 3, keys=itertools.cycle(range(5)), workers=2, keep_freed_memory=False))
    assert [b["k"] for b in itertools.islice(it, 3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]
    it.close()  # an abandoned endless stream stops its workers
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("rgbify-loader")]
    with pytest.raises(KeyError, match="no item 8"):
        list(ProcessLoader(_Items(), 2, keys=[0, 8], workers=2, keep_freed_memory=False))
    with pytest.raises(RuntimeError, match="exit code 3"):
        list(ProcessLoader(_Items(), 2, keys=[0, 1, 6, 7], workers=1, keep_freed_memory=False))
    with pytest.raises(ValueError, match="workers 0"):
        ProcessLoader(_Items(), 2, workers=0)


def test_process_loader_workers_exit_when_their_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import time

    code = """if True:
        import itertools, os, sys, time, torch
        sys.path.insert(0, os.getcwd())
        from rgbify.datasets import ProcessLoader
        from tests.test_datasets_loader import _Items
        it = iter(ProcessLoader(_Items(), 2, keys=itertools.cycle(range(6)), workers=2, keep_freed_memory=False))
        next(it)
        import multiprocessing
        print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
        time.sleep(60)
    """
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def test_bench_loader_runs_every_way(tmp_path):
    """benchmarks/bench_loader.py on a tiny dataset: a line per loading way, task and storage; the peer comparison."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    d = fake_dataset(tmp_path, n=6)
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_loader.py"), "--dir", str(d), "--quick",
                          "--items", "8", "--rounds", "1", "--resolution", "8", "--storage", "compact,fast"],
                         capture_output=True, text=True, check=True).stdout
    for how in ("main process", "1 DataLoader worker", "2 DataLoader workers", "1 ProcessLoader worker",
                "2 ProcessLoader workers", "2 threads, 1 process"):
        for storage in ("compact", "fast"):
            assert sum(f"{storage} storage" in line and how + " " in line for line in out.splitlines()) == 2, out
    assert "MB/sample on disk" in out and "--storage fast:" in out
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_loader.py"), "--dir", str(d), "--peer",
                          "--items", "8", "--rounds", "1", "--resolution", "8"],
                         capture_output=True, text=True, check=True).stdout
    assert "peer   Marigold-style PNG files" in out and "x the peer's" in out


def test_get_is_set_epoch_then_getitem_and_thread_safe(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from rgbify.datasets import TaskDataset

    ds = TaskDataset(fake_dataset(tmp_path, n=6), split="all", resolution=(8, 6), generation_ratio=0.3)
    keys = [(e, i) for e in range(3) for i in range(len(ds))]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda k: ds.get(k[1], k[0]), keys * 3))
    for (e, i), got in zip(keys * 3, threaded, strict=True):
        ds.set_epoch(e)
        _same_batches([got], [ds[i]])


def test_photometric_augmentation_changes_the_input_image_only(tmp_path):
    """Colour jitter and noise change the input image (train split), never the target or the ground truth, and
    leave every other draw of the item alone (same crop, codec, prompt, target as with them off)."""
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=4, h=24, w=32)
    plain = TaskDataset(d, split="all", augment=True, tasks=("depth", "normals"))
    jit = TaskDataset(d, split="all", augment=True, tasks=("depth", "normals"), color_jitter=0.3, noise_std=4.0)
    changed = 0
    for i in range(4):
        a, b = plain[i], jit[i]
        assert a["prompt"] == b["prompt"] and torch.equal(a["target"], b["target"])
        assert torch.equal(a["gt_depth"], b["gt_depth"]) and torch.equal(a["gt_normals"], b["gt_normals"])
        diff = (a["image"].float() - b["image"].float()).abs()
        changed += int(diff.mean() > 1.0)
        assert b["image"].dtype == torch.uint8 and b["image"].shape == a["image"].shape
    assert changed == 4
    off = TaskDataset(d, split="all", augment=False, color_jitter=0.3, noise_std=4.0)
    ref_ds = TaskDataset(d, split="all", augment=False)
    assert torch.equal(off[0]["image"], ref_ds[0]["image"])  # augment=False (val) turns it off
    with pytest.raises(ValueError, match="color_jitter 1.5"):
        TaskDataset(d, color_jitter=1.5)


def test_photometric_statistics():
    """Brightness scales the mean; saturation 0 would grey; noise of sigma s adds variance s^2 (within 10 %)."""
    from rgbify.datasets.loading.task_dataset import photometric

    flat = torch.full((3, 64, 64), 128, dtype=torch.uint8)
    noisy = photometric(flat, np.random.default_rng(0), 0.0, 8.0)
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.0, 8.0)
    assert abs(noisy.float().std().item() - sigma) < 0.1 * sigma + 0.3
    img = torch.from_numpy(np.random.default_rng(1).integers(60, 140, (3, 32, 32), dtype=np.uint8))
    out = photometric(img, np.random.default_rng(2), 0.4, 0.0)
    b, c, s = np.random.default_rng(2).uniform(0.6, 1.4, 3)
    gains = np.random.default_rng(2).uniform(0.9, 1.1, 6)[3:]
    # the mean grey is scaled by brightness x mean gain (contrast and saturation keep the mean grey)
    grey = lambda x: (x.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0).mean().item()  # noqa: E731
    expect = grey(img.float() * torch.from_numpy(gains * b).float().view(3, 1, 1))
    assert abs(grey(out) - expect) < 1.0


@pytest.mark.parametrize("codec", ["depth/cubewalk", "depth/colormap:viridis", "depth/affine"])
def test_metric_depth_is_not_zoomed_by_the_crop(tmp_path, codec):
    """A crop resized to the output size zooms in while depth stays. Metric depth items are left whole by default
    ("off"), or cropped with depth times the kept side fraction ("rescale"), or zoomed as before ("zoom"); a
    relative codec is cropped whatever the setting. Every other draw of the item (flip, prompt) is the same."""
    from rgbify import encode
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=4, h=12, w=16)
    kw = dict(split="all", crop_scale=(0.5, 0.5), hflip=0.5, augment=True, resolution=(16, 12), tasks=("depth",),
              target_options={"depth_codecs": [codec]})
    off, rescale, zoom = (TaskDataset(d, metric_depth_crop=m, **kw) for m in ("off", "rescale", "zoom"))
    whole = TaskDataset(d, split="all", augment=False, resolution=(16, 12), tasks=("depth",),
                        target_options={"depth_codecs": [codec]})
    metric = encode.get_codec(codec).metric
    for epoch in range(3):
        for j in range(len(off)):
            o, r, z, w = off.get(j, epoch), rescale.get(j, epoch), zoom.get(j, epoch), whole.get(j, epoch)
            assert o["prompt"] == r["prompt"] == z["prompt"]
            assert o["decode"] == r["decode"] == z["decode"]
            assert torch.equal(z["K"][:2, :2], 2 * w["K"][:2, :2])  # the crop doubles the focal length
            if not metric:
                for a in (o, r):
                    assert torch.equal(a["gt_depth"], z["gt_depth"]) and torch.equal(a["target"], z["target"])
                continue
            flipped = torch.equal(o["image"], w["image"].flip(-1)) and not torch.equal(o["image"], w["image"])
            expect = w["gt_depth"].flip(-1) if flipped else w["gt_depth"]
            assert torch.equal(o["gt_depth"], expect) and torch.equal(o["K"][:2, :2], w["K"][:2, :2])
            assert torch.equal(r["gt_depth"], z["gt_depth"] * 0.5)  # +inf (nothing hit) stays +inf
            assert torch.equal(r["K"], z["K"]) and torch.equal(r["image"], z["image"])
            for a in (o, r, z):  # the target encodes the item's gt_depth
                dec = encode.decode_target(a["target"].permute(1, 2, 0).numpy(), json.loads(a["decode"]))
                ok = torch.isfinite(a["gt_depth"]).numpy()
                np.testing.assert_allclose(dec[ok], a["gt_depth"].numpy()[ok], rtol=0.05)  # viridis: 8-bit steps
    with pytest.raises(ValueError, match="metric_depth_crop 'crop'"):
        TaskDataset(d, metric_depth_crop="crop")
