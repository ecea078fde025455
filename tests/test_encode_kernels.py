"""Every numba kernel returns exactly what its plain-NumPy reference returns."""

import numpy as np
import pytest
from oracles import numpy_codecs as ref

from rgbify.encode import get_codec, hilbert, kernels
from rgbify.encode.codecs import CELL_SHIFT, COLORMAPS, Hilbert24, colormap_cells, colormap_table, run_centres

RNG = np.random.default_rng(7)
NO_MASK = np.ones((1, 1), bool)


def _depths(dtype):
    with np.errstate(over="ignore"):
        return _depths_unchecked(dtype)


def _depths_unchecked(dtype):
    d = np.concatenate([
        RNG.uniform(0, 2, 400), RNG.uniform(0, 120, 400), np.exp(RNG.uniform(-8, 8, 400)),
        [0.0, 1e-9, 10.0, 100.0, 99.99999, 587.0, 1e6, 1e300, np.inf, -1.0, np.nan, -np.inf],
    ]).astype(dtype)
    d = d[: (len(d) // 32) * 32].reshape(-1, 32)
    valid = RNG.random(d.shape) > 0.1
    valid[~(d >= 0)] = False
    return d, valid


def _any_rgb(n=20_000):
    rgb = RNG.integers(0, 256, (n, 3)).astype(np.uint8)
    corners = np.array(np.meshgrid([0, 1, 127, 128, 254, 255], [0, 1, 127, 128, 254, 255],
                                   [0, 1, 127, 128, 254, 255])).reshape(3, -1).T.astype(np.uint8)
    return np.concatenate([rgb, corners])[None]


def _encode(kernel, d, valid, *args):
    out = np.empty(d.shape + (3,), np.uint8)
    if valid is None:
        res = kernel(d, NO_MASK, False, *args, out)
    else:
        res = kernel(d, valid, True, *args, out)
    return out, tuple(res)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_cubewalk_encode(dtype, masked):
    d, valid = _depths(dtype)
    v = valid if masked else None
    out, res = _encode(kernels.cubewalk_encode, d, v)
    expect, *eres = ref.cubewalk_encode(d, v)
    assert np.array_equal(out, expect) and res == tuple(eres)


def test_cubewalk_decode():
    rgb = _any_rgb()
    out = np.empty(rgb.shape[:2], np.float32)
    kernels.cubewalk_decode(rgb, out)
    assert np.array_equal(out, ref.cubewalk_decode(rgb))


@pytest.mark.parametrize("d_max,gamma", [(100.0, 0.5), (80.0, 1.0), (20.0, 0.37), (100.0, 2.0)])
@pytest.mark.parametrize("masked", [False, True])
def test_hilbert_encode(d_max, gamma, masked):
    d, valid = _depths(np.float32)
    v = valid if masked else None
    coords, _, nxt = hilbert.block_tables(Hilbert24.block_levels)
    out, res = _encode(kernels.hilbert_encode, d, v, d_max, gamma, coords, nxt)
    expect, *eres = ref.hilbert_encode(d, v, d_max, gamma)
    assert np.array_equal(out, expect) and res == tuple(eres)


@pytest.mark.parametrize("d_max,gamma", [(100.0, 0.5), (20.0, 0.37)])
def test_hilbert_decode_and_index(d_max, gamma):
    rgb = _any_rgb()
    _, rank, nxt = hilbert.block_tables(Hilbert24.block_levels)
    out = np.empty(rgb.shape[:2], np.float32)
    kernels.hilbert_decode(rgb, d_max, gamma, rank, nxt, out)
    assert np.array_equal(out, ref.hilbert_decode(rgb, d_max, gamma))
    idx = np.empty(rgb.shape[:2], np.uint32)
    kernels.hilbert_index(rgb, rank, nxt, idx)
    assert np.array_equal(idx, ref.hilbert_index(rgb))


@pytest.mark.parametrize("name", COLORMAPS)
def test_colormap_kernels(name):
    lut = colormap_table(name)
    d, valid = _depths(np.float64)
    out, res = _encode(kernels.colormap_encode, d, valid, lut)
    expect, *eres = ref.colormap_encode(d, valid, lut)
    assert np.array_equal(out, expect) and res == tuple(eres)
    rgb = np.concatenate([_any_rgb(5000), lut[None]], axis=1)
    got = np.empty(rgb.shape[:2], np.float32)
    start, entries = colormap_cells(name)
    kernels.colormap_decode(rgb, lut.astype(np.int64), run_centres(lut), start, entries, CELL_SHIFT, got)
    assert np.array_equal(got, ref.colormap_decode(rgb, lut))


@pytest.mark.parametrize("flip_x", [False, True])
def test_normals_kernels(flip_x):
    n = RNG.normal(size=(40, 50, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    n[0, :5] = 0
    n[1, 0] = [np.nan, 0, 1]
    n[1, 1] = [np.inf, 0, 0]
    n[2, 0] = [3.0, 4.0, 0.0]  # not unit: normalised
    for dtype in (np.float32, np.float64):
        nd = n.astype(dtype)
        out = np.empty(nd.shape, np.uint8)
        res = kernels.normals_encode(nd, flip_x, out)
        expect, *eres = ref.normals_encode(nd, flip_x)
        assert np.array_equal(out, expect) and tuple(res) == tuple(eres) == (2, 50)
    rgb = _any_rgb()
    got = np.empty(rgb.shape, np.float32)
    kernels.normals_decode(rgb, flip_x, got)
    assert np.array_equal(got, ref.normals_decode(rgb, flip_x))


def test_nearest_label():
    rgb = _any_rgb()
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255], [128, 128, 128], [128, 128, 128]], np.int64)
    labels = np.array([0, 3, 9, 4, 5], np.int32)
    for max_d2 in (0, 3600, 10_000, 10**6):
        out = np.empty(rgb.shape[:2], np.int32)
        kernels.nearest_label(rgb, colors, labels, max_d2, out)
        assert np.array_equal(out, ref.nearest_label(rgb, colors, labels, max_d2))


@pytest.mark.parametrize("robust,radius", [("median3", 1), ("median5", 2)])
def test_robust_decode_is_the_median_of_the_plain_decode(robust, radius):
    rgb = RNG.integers(0, 256, (17, 23, 3)).astype(np.uint8)
    rgb[3, 4] = 255  # white: +inf under cubewalk
    plain = get_codec("depth/cubewalk").decode(rgb)
    got = get_codec({"name": "depth/cubewalk", "robust": robust}).decode(rgb)
    assert got.dtype == np.float32
    assert np.array_equal(got, ref.median_filter(plain, radius).astype(np.float32))
    one = get_codec({"name": "depth/cubewalk", "robust": robust}).decode(np.full((1, 1, 3), 7, np.uint8))
    assert one.shape == (1, 1) and np.isfinite(one).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("lo,hi", [(0.5, 7.0), (3.0, 3.0), (2.0, 1.0), (0.0, 1e6)])
def test_affine_encode(dtype, masked, lo, hi):
    d, valid = _depths(dtype)
    v = valid if masked else None
    out, res = _encode(kernels.affine_encode, d, v, lo, hi)
    expect, *eres = ref.affine_encode(d, v, lo, hi)
    assert np.array_equal(out, expect) and res == tuple(eres)


def test_affine_decode():
    rgb = _any_rgb()
    out = np.empty(rgb.shape[:2], np.float32)
    kernels.affine_decode(rgb, out)
    assert np.array_equal(out, ref.affine_decode(rgb))
