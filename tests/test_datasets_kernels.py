"""The loader's numba kernels return exactly what their NumPy references (and Pillow, and torch) return, and
TaskDataset items built with them are bit-equal to the Pillow path (``TaskDataset._augment``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rgbify.datasets import kernels
from rgbify.datasets import reference as ref
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


def _kernel_resize(rgb, box, size, flip):
    (x0, y0, cw, ch), (W, H) = box, size
    xb, xk = kernels.resample_coeffs(rgb.shape[1], float(x0), float(x0 + cw), W)
    yb, yk = kernels.resample_coeffs(rgb.shape[0], float(y0), float(y0 + ch), H)
    out = np.empty((3, H, W), np.float32)
    kernels.resize_rgb_to_unit(rgb, xb, xk, yb, yk, flip, kernels.UNIT_LUT, out)
    return out


@pytest.mark.parametrize("shape", [(24, 32), (37, 23), (1, 5), (64, 64)])
def test_resize_rgb_matches_reference_and_pillow(shape):
    h, w = shape
    rgb = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb[: h // 2, : w // 2] = (0, 255, 7)  # flat areas and a hard edge, as well as noise
    for box, size, flip in _boxes(h, w):
        x0, y0, cw, ch = box
        for axis_in, axis_out in ((w, size[0]), (h, size[1])):
            kb, kk = kernels.resample_coeffs(axis_in, 0.0, float(axis_in), axis_out)
            rb, rk = ref.resample_coeffs(axis_in, 0.0, float(axis_in), axis_out)
            np.testing.assert_array_equal(kb, rb)
            np.testing.assert_array_equal(kk, rk)
        got = _kernel_resize(rgb, box, size, flip)
        want = ref.resize_rgb(rgb, box, size, flip)
        im = Image.fromarray(rgb).resize(size, Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        pil = np.array(im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im)
        np.testing.assert_array_equal(want, pil)
        np.testing.assert_array_equal(got, ref.to_unit(want))


def test_unit_conversions_match_reference_and_torch():
    torch = pytest.importorskip("torch")
    from rgbify.datasets.torch_dataset import _to_tensor

    rgb = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8)
    out = np.empty((3, 16, 16), np.float32)
    kernels.rgb_to_unit(rgb, kernels.UNIT_LUT, out)
    np.testing.assert_array_equal(out, ref.to_unit(rgb))
    assert torch.equal(torch.from_numpy(out), _to_tensor(rgb))
    for flip in (False, True):
        crop = np.empty((3, 5, 7), np.float32)
        kernels.crop_rgb_to_unit(rgb, 3, 4, flip, kernels.UNIT_LUT, crop)
        win = rgb[3:8, 4:11]
        np.testing.assert_array_equal(crop, ref.to_unit(win[:, ::-1] if flip else win))


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


@pytest.mark.parametrize("resolution", [None, (16, 12), (5, 9), (40, 30)])
def test_items_equal_the_pillow_path(tmp_path, resolution):
    torch = pytest.importorskip("torch")
    from rgbify.datasets import TaskDataset
    from rgbify.datasets.torch_dataset import _to_tensor

    d = fake_dataset(tmp_path, n=3, h=12, w=16)
    ds = TaskDataset(d, split="all", resolution=resolution, crop_scale=(0.5, 1.0), augment=True,
                     generation_ratio=0.3)
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
            gt = ds._augment(ds.reader.read(index), rng)
            rgb = _to_tensor(gt["rgb"])
            assert torch.equal(it["target" if it["task"] == "generate" else "image"], rgb)
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
