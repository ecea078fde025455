"""The loader's numba kernels return exactly what their NumPy references return; TaskDataset items built with them
equal the reference path (``oracles.numpy_loader.augment``: Pillow RGB within 1, ground truth exactly)."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import numpy_loader as ref

from rgbify.datasets.loading import kernels
from tests.dataset_fakes import fake_dataset

RNG = np.random.default_rng(11)


def _boxes(h, w, n=40):
    """(box, size, flip): crops of 0.3-1 of each side, output sizes that enlarge, keep and shrink (by up to 3x)."""
    for t in range(n):
        s = RNG.uniform(0.3, 1.0)
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        y0, x0 = int(RNG.integers(0, h - ch + 1)), int(RNG.integers(0, w - cw + 1))
        size = [(w, h), (cw, ch), (max(1, w // 3), max(1, h // 3)), (2 * w + 1, h + 3), (7, 5)][t % 5]
        yield (x0, y0, cw, ch), size, bool(t % 2)


@pytest.mark.parametrize("shape", [(24, 32), (37, 23), (1, 5), (64, 64), (512, 512)])
def test_rgb_view_is_pillow_bilinear_within_one(shape):
    """The loader's RGB crop + resize + mirror (torch's uint8 bilinear, antialiased when shrinking) is Pillow's
    ``crop().resize(BILINEAR)`` up to rounding: never more than 1 apart, and equal almost everywhere."""
    torch = pytest.importorskip("torch")
    from rgbify.datasets.loading.task_dataset import _rgb_view, _View

    h, w = shape
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb[: h // 2, : w // 2] = (0, 255, 7)  # flat areas and a hard edge, as well as noise
    differ = total = 0
    for box, size, flip in _boxes(h, w, n=40 if h < 100 else 10):
        got = _rgb_view(rgb, _View(box, size, flip, (h, w)))
        assert got.dtype == torch.uint8 and got.shape == (3, size[1], size[0]) and got.is_contiguous()
        want = ref.pillow_view(rgb, box, size, flip).transpose(2, 0, 1).astype(int)
        diff = np.abs(got.numpy().astype(int) - want)
        assert diff.max() <= 1, (box, size, flip)
        differ += int((diff > 0).sum())
        total += diff.size
    assert differ <= 0.02 * total


def test_to_unit_scales_uint8_to_unit_interval():
    torch = pytest.importorskip("torch")
    from rgbify.datasets import to_unit

    x = torch.arange(256, dtype=torch.uint8)
    np.testing.assert_array_equal(to_unit(x).numpy(), np.arange(256, dtype=np.float32) / np.float32(127.5) - 1)
    assert to_unit(x)[0] == -1 and to_unit(x)[-1] == 1
    f = torch.zeros(3)
    assert to_unit(f) is f


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_unshuffle_matches_reference_and_hdf5(tmp_path, size):
    h5py = pytest.importorskip("h5py")
    dtype = {1: np.uint8, 2: np.int16, 4: np.float32, 8: np.float64}[size]
    a = RNG.normal(size=(3, 37, 5)).astype(dtype)
    raw = np.ascontiguousarray(a.view(np.uint8).reshape(-1, size).T).reshape(-1)  # HDF5's byte shuffle
    from rgbify.datasets.storage.kernels import unshuffle

    got = unshuffle(raw, size, np.empty_like(raw))
    np.testing.assert_array_equal(got, ref.unshuffle(raw, size))
    np.testing.assert_array_equal(got.view(dtype).reshape(a.shape), a)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("x", data=a[None], chunks=(1, *a.shape), shuffle=True)
    with h5py.File(tmp_path / "s.h5", "r") as f:  # stored without compression: the shuffled bytes as they are
        np.testing.assert_array_equal(np.frombuffer(f["x"].id.read_direct_chunk((0, 0, 0, 0))[1], np.uint8), raw)


def test_gather_nearest_matches_reference():
    rows, cols = np.array([0, 0, 3, 5, 2]), np.array([4, 1, 1, 0, 6, 6])
    d = RNG.random((6, 7)).astype(np.float32)
    out = np.empty((5, 6), np.float32)
    kernels.gather_nearest2(d, rows, cols, out)
    np.testing.assert_array_equal(out, ref.gather_nearest(d, rows, cols))
    for negate in (False, True):
        n = RNG.normal(size=(6, 7, 3)).astype(np.float32)
        n[0] = 0.0
        out3 = np.empty((5, 6, 3), np.float32)
        kernels.gather_nearest3(n, rows, cols, negate, out3)
        want = ref.gather_nearest(n, rows, cols, negate)
        np.testing.assert_array_equal(out3, want)
        assert not np.signbit(out3[out3 == 0]).any()


def _index_sets(h, w):
    """(rows, cols) of nearest gathers: identity, a mirrored crop, an enlarging and a shrinking resize."""
    yield np.arange(h), np.arange(w)
    yield np.arange(2, h - 1), np.arange(w - 2, 0, -1)
    yield np.repeat(np.arange(h), 3)[: 2 * h + 1], np.minimum(np.arange(w + 5) * w // (w + 5), w - 1)
    yield np.arange(0, h, 3), np.arange(w - 1, -1, -2)


def _special_depths(h, w):
    d = RNG.exponential(8.0, (h, w)).astype(np.float32)
    flat = d.ravel()
    flat[::7] = np.inf
    flat[:8] = [0.0, -0.0, 1e-30, 1e30, 10.0, 3.0e38, 0.5, 100.0]
    return d


@pytest.mark.parametrize("bad", [False, True])
def test_cubewalk_planes_matches_reference(bad):
    d = _special_depths(23, 31)
    # every walk edge and the rounding points between (f = m / 1785 around each output step)
    f = (np.arange(1786) / 1785.0)[:, None] + np.array([-1e-9, 0.0, 1e-9])
    d[:, :] = 0.0
    vals = (10.0 * (1.0 / np.sqrt(np.clip(1.0 - f.ravel(), 1e-12, None)) - 1.0)).astype(np.float32)
    d.ravel()[:] = np.resize(vals, d.size)
    d.ravel()[::11] = np.inf
    if bad:
        d[3, 4], d[5, 6], d[7, 8] = np.nan, -1.0, -10.0  # -10: x = 1 + d / 10 = 0, a division by zero discarded
    for rows, cols in _index_sets(*d.shape):
        out = np.full((3, len(rows), len(cols)), 7, np.uint8)
        nbad = kernels.cubewalk_planes(d, rows, cols, out)
        expect, enbad = ref.cubewalk_planes(d, rows, cols)
        assert nbad == enbad
        np.testing.assert_array_equal(out, expect)
    assert (nbad > 0) == bad


@pytest.mark.parametrize("bad", [False, True])
def test_normals_planes_matches_reference(bad):
    n = RNG.normal(size=(19, 27, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    n = n.astype(np.float32)
    n[RNG.random(n.shape[:2]) < 0.15] = 0.0
    n[0, :6] = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, -1], [1e-7, 0, 0], [0.6, 0.8, 0]]
    n[1, 0] = [1e30, 1e30, 0]  # finite in float64
    if bad:
        n[3, 4, 1], n[5, 6, 2], n[7, 8, 0] = np.nan, np.inf, -np.inf
    for rows, cols in _index_sets(*n.shape[:2]):
        for negate0 in (False, True):
            for flip_x in (False, True):
                out = np.full((3, len(rows), len(cols)), 7, np.uint8)
                nbad = kernels.normals_planes(n, rows, cols, negate0, flip_x, out)
                expect, enbad = ref.normals_planes(n, rows, cols, negate0, flip_x)
                assert nbad == enbad
                np.testing.assert_array_equal(out, expect)
    assert (nbad > 0) == bad


@pytest.mark.parametrize("options", [{}, {"colormap_prob": 0.4, "flip_x": True,
                                          "depth_codecs": ["depth/cubewalk", "depth/hilbert24"]}])
@pytest.mark.parametrize("return_gt", [False, True])
def test_fused_targets_equal_make_task_target(tmp_path, monkeypatch, options, return_gt):
    """Depth and normals items built by the fused gather + encode + convert kernels equal, key for key, the
    items of the make_task_target path (same rng draws, prompts, decode params, targets)."""
    torch = pytest.importorskip("torch")
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=4, h=12, w=16)
    ds = TaskDataset(d, split="all", resolution=(10, 7), crop_scale=(0.5, 1.0), augment=True,
                     tasks=("depth", "normals", "semantic"), target_options=options, return_gt=return_gt)
    fused, tasks = [], set()
    for epoch in range(5):
        ds.set_epoch(epoch)
        fused += [ds[j] for j in range(len(ds))]
    monkeypatch.setattr(TaskDataset, "_fused_target", lambda *a: None)
    k = 0
    for epoch in range(5):
        ds.set_epoch(epoch)
        for j in range(len(ds)):
            a, b = fused[k], ds[j]
            k += 1
            tasks.add(a["task"])
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key], key
    assert {"depth", "normals"} <= tasks


def test_fused_targets_raise_like_the_codecs(tmp_path):
    """A NaN depth or normal in view raises the codec's own error through the fused path too."""
    from rgbify.datasets import TaskDataset
    from rgbify.datasets.loading.task_dataset import _View
    from rgbify.encode import CodecInputError

    ds = TaskDataset(fake_dataset(tmp_path, n=1, h=6, w=8), split="all", augment=False, return_gt=False)
    view = _View((0, 0, 8, 6), (8, 6), False, (6, 8))
    for task in ("depth", "normals"):
        s = ds.reader.read(ds.indices[0])
        s[task] = s[task].copy()
        s[task][2, 3] = np.nan
        with pytest.raises(CodecInputError):
            ds._fused_target(task, s, view, np.random.default_rng(0))


@pytest.mark.parametrize("resolution", [None, (16, 12), (5, 9), (40, 30)])
def test_items_match_the_pillow_path(tmp_path, resolution):
    """Items' RGB is Pillow's view within 1 (see test_rgb_view_is_pillow_bilinear_within_one); ground truth and K
    are exactly the reference's (``oracles.numpy_loader.augment``, same rng draws)."""
    torch = pytest.importorskip("torch")
    from rgbify.datasets import TaskDataset

    d = fake_dataset(tmp_path, n=3, h=12, w=16)
    ds = TaskDataset(d, split="all", resolution=resolution, crop_scale=(0.5, 1.0), augment=True,
                     generation_ratio=0.3, metric_depth_crop="zoom")  # depth items cropped too, as the reference
    for epoch in range(4):
        ds.set_epoch(epoch)
        for j in range(len(ds)):
            it = ds[j]
            index = ds.indices[j]
            rng = np.random.default_rng([ds.seed, epoch, index])
            if ds.generation_ratio > 0:
                rng.random()
            if it["task"] != "generate":
                rng.choice(len(ds.tasks), p=ds.weights)
            gt = ref.augment(ds, ds.reader.read(index), rng)
            rgb = it["target" if it["task"] == "generate" else "image"]
            assert rgb.dtype == torch.uint8 and it["target"].dtype == torch.uint8
            diff = np.abs(rgb.permute(1, 2, 0).numpy().astype(int) - gt["rgb"])
            assert diff.max() <= 1
            assert torch.equal(it["gt_depth"], torch.from_numpy(gt["depth"]))
            assert torch.equal(it["gt_normals"], torch.from_numpy(gt["normals"]))
            assert torch.equal(it["K"], torch.from_numpy(gt["K"].astype(np.float32)))


def test_worker_processes_give_the_same_batches(tmp_path):
    """With keep_freed_memory (on by default) the worker tunes its malloc; batches are unchanged, and collate
    stacks into shared memory there."""
    torch = pytest.importorskip("torch")
    from rgbify.datasets import TaskDataset, collate

    d = fake_dataset(tmp_path, n=4, h=12, w=16)
    ds = TaskDataset(d, split="all", resolution=(8, 6), augment=True)
    main = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0, collate_fn=collate))
    work = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate))
    for a, b in zip(main, work, strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
