"""Depth and normals codecs: formulas, round-trip error bounds, bad input, specs."""

import json

import numpy as np
import pytest

from rgbify.encode import (
    DEPTH_CODECS,
    Affine,
    CubeWalk,
    Hilbert24,
    decode_depth,
    decode_normals,
    encode_depth,
    encode_normals,
    get_codec,
)
from rgbify.encode.codecs import affine_range, colormap_table, run_centres, walk_depth, walk_value

RNG = np.random.default_rng(3)
V = [(0, 0, 0), (255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255), (255, 0, 255), (255, 255, 255)]


def _depth_grid(hi=400.0, n=20_000):
    d = np.concatenate([np.linspace(0, 5, n // 2), np.linspace(5, hi, n // 2), [0.0]])
    return d.astype(np.float32).reshape(1, -1)


def test_cubewalk_follows_the_formula():
    d = _depth_grid(hi=500.0)
    rgb = encode_depth(d)[0].astype(np.float64)
    f = 1 - (1 + d[0].astype(np.float64) / 10) ** -2
    p = 7 * f
    i = np.minimum(np.floor(p), 6).astype(int)
    va, vb = np.array(V, float)[i], np.array(V, float)[i + 1]
    expect = np.floor(va + (p - i)[:, None] * (vb - va) + 0.5)
    assert np.array_equal(rgb, expect)
    assert encode_depth(np.array([[0.0, np.inf]], np.float32)).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    # the vertices decode to f = k / 7
    got = decode_depth(np.array([V], np.uint8))[0]
    expect_d = walk_depth(np.arange(8) / 7)
    assert np.allclose(got[:7], expect_d[:7], rtol=1e-6) and np.isposinf(got[7])


def test_cubewalk_round_trip_within_half_a_step():
    codec = CubeWalk()
    d = _depth_grid(hi=400.0)
    back = codec.decode(codec.encode(d)).astype(np.float64)
    err = np.abs(back - d)
    bound = 0.5 * codec.step_m(d) + 1e-6 * d + 1e-7
    assert (err <= bound).all(), float((err / bound).max())


def test_cubewalk_far_depths_and_inf():
    back = decode_depth(encode_depth(np.array([[600.0, 1e9, np.inf]], np.float32)))
    assert np.isposinf(back).all()


@pytest.mark.parametrize("d_max,gamma", [(100.0, 0.5), (80.0, 1.0), (20.0, 0.8)])
def test_hilbert24_round_trip_within_half_a_24_bit_step(d_max, gamma):
    codec = Hilbert24(d_max=d_max, gamma=gamma)
    d = np.concatenate([_depth_grid(hi=d_max * 0.999)[0], [d_max, d_max * 2, np.inf]]).reshape(1, -1)
    d = d.astype(np.float64)
    back = codec.decode(codec.encode(d)).astype(np.float64)
    fin = d < d_max
    q = (d[fin] / d_max) ** gamma * ((1 << 24) - 1)
    half = d_max * ((np.abs(q) + 0.5) / ((1 << 24) - 1)) ** (1 / gamma) - d[fin]  # half a step above
    assert (np.abs(back[fin] - d[fin]) <= half + 6e-8 * d[fin] + 1e-12).all()
    assert (back[~fin] == d_max).all()


@pytest.mark.parametrize("name", [c for c in DEPTH_CODECS if "colormap" in c])
def test_colormaps_round_trip_within_half_a_table_step(name):
    codec = get_codec(name)
    d = _depth_grid(hi=300.0, n=4000)
    back = codec.decode(codec.encode(d)).astype(np.float64)
    f, fb = walk_value(d), walk_value(back)
    # half a table step; where 8-bit rounding made two consecutive entries equal (viridis 112/113 and 129/130),
    # the pair decodes to its middle, so up to one step
    k = np.floor(f * 255 + 0.5).astype(int)
    repeated = run_centres(colormap_table(codec.cmap))[k] != k
    assert (np.abs(fb - f) <= np.where(repeated, 1.0, 0.5) / 255 + 1e-6).all()
    assert np.isposinf(codec.decode(codec.encode(np.array([[np.inf]], np.float32)))).all()


def test_affine_stretches_each_image_between_its_percentiles():
    """depth/affine (Marigold's normalisation, 8-bit grey): the 2nd/98th percentiles of the image's finite depths
    map to black/white, linearly between; decode gives that relative depth, so lo + v (hi - lo) recovers metres
    within half a grey step between the percentiles."""
    codec = Affine()
    d = np.exp(RNG.uniform(-1, 3, (40, 50))).astype(np.float32)
    d[0, :5] = np.inf
    lo, hi = np.percentile(d[np.isfinite(d)].astype(np.float64), [2, 98])
    assert affine_range(d) == (lo, hi)
    rgb = codec.encode(d)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert (rgb[0, :5] == 255).all() and (rgb[d <= lo] == 0).all() and (rgb[(d >= hi) & np.isfinite(d)] == 255).all()
    inside = (d > lo) & (d < hi)
    back = lo + codec.decode(rgb).astype(np.float64) * (hi - lo)
    assert (np.abs(back - d)[inside] <= 0.5 * (hi - lo) / 255 + 1e-5).all()
    # an affine change of the depth gives the same target: the codec carries no scale or shift
    assert np.array_equal(codec.encode((d * 3.0 + 2.0).astype(np.float32)), rgb)
    # a flat image is black; pixels outside ``valid`` do not count toward the percentiles
    assert (codec.encode(np.full((3, 3), 2.0, np.float32)) == 0).all()
    valid = np.ones(d.shape, bool)
    valid[:, :10] = False
    assert affine_range(d, valid) == tuple(np.percentile(d[:, 10:][np.isfinite(d[:, 10:])].astype(np.float64),
                                                         [2, 98]))
    assert (codec.encode(d, valid=valid)[:, :10] == 255).all()
    assert not codec.metric and CubeWalk().metric
    # a non-grey prediction decodes to its nearest grey
    assert codec.decode(np.array([[[10, 20, 30]]], np.uint8))[0, 0] == np.float32(60 / 765)


@pytest.mark.parametrize("codec", DEPTH_CODECS)
def test_decoding_never_raises_on_any_uint8(codec):
    rgb = RNG.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    out = decode_depth(rgb, codec)
    assert out.dtype == np.float32 and out.shape == (64, 64)
    assert not np.isnan(out).any() and (out >= 0).all()
    assert decode_depth(rgb, codec, robust="median3").shape == (64, 64)
    assert decode_depth(np.zeros((0, 5, 3), np.uint8), codec).shape == (0, 5)


@pytest.mark.parametrize("codec", DEPTH_CODECS)
def test_bad_depth_values_name_count_and_first_position(codec):
    d = np.full((7, 11), 2.0, np.float32)
    d[2, 3] = np.nan
    d[4, 5] = -1.0
    d[6, 10] = np.nan
    with pytest.raises(ValueError, match=r"3 pixel\(s\).*row 2, column 3"):
        encode_depth(d, codec)
    valid = np.ones(d.shape, bool)
    valid[[2, 4, 6], [3, 5, 10]] = False
    rgb = encode_depth(d, codec, valid=valid)
    far = encode_depth(np.full((1, 1), np.inf, np.float32), codec)[0, 0]
    assert (rgb[~valid] == far).all()
    assert (rgb[valid] == encode_depth(np.full((1, 1), 2.0, np.float32), codec)[0, 0]).all()


@pytest.mark.parametrize("bad", [
    np.zeros((4, 5), np.int32), np.zeros((4, 5, 1), np.float32), np.zeros(5, np.float32), [[1.0, 2.0]],
])
def test_bad_depth_shapes_and_dtypes(bad):
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        encode_depth(bad)


def test_bad_valid_mask_and_bad_rgb():
    with pytest.raises(ValueError, match=r"shape \(4, 5\)"):
        encode_depth(np.ones((4, 5), np.float32), valid=np.ones((4, 4), bool))
    for bad in (np.zeros((4, 5, 3), np.float32), np.zeros((4, 5), np.uint8), np.zeros((4, 5, 4), np.uint8)):
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            decode_depth(bad)
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            decode_normals(bad)


def test_specs_round_trip_through_json():
    for spec in list(DEPTH_CODECS) + [{"name": "depth/hilbert24", "d_max": 80, "gamma": 1},
                                      {"name": "depth/cubewalk", "robust": "median3"}, "normals",
                                      {"name": "normals", "flip_x": True}]:
        c = get_codec(spec)
        assert get_codec(json.loads(json.dumps(c.spec()))) == c
    assert get_codec({"name": "depth/hilbert24", "d_max": 100, "gamma": 0.5}) == Hilbert24()
    assert get_codec('{"name": "depth/hilbert24", "d_max": 80}') == Hilbert24(d_max=80)
    assert encode_depth(np.ones((2, 2), np.float32), "depth/hilbert24", d_max=10.0).shape == (2, 2, 3)
    for bad in ("depth/nope", "depth/colormap:jet", {"name": "depth/hilbert24", "d_max": -1}, {"nam": 1},
                {"name": "depth/cubewalk", "robust": "mean"}, {"name": "depth/cubewalk", "x": 1}, "{bad json"):
        with pytest.raises(ValueError):
            get_codec(bad)


def _unit_normals(n):
    v = RNG.normal(size=(n, 3))
    v[:, 2] = -np.abs(v[:, 2])  # OpenCV: facing the camera means negative z
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).reshape(1, n, 3)


@pytest.mark.parametrize("flip_x", [False, True])
def test_every_direction_round_trips_also_off_axis(flip_x):
    """A camera-facing normal at a pixel far off-axis can point away from the optical axis (B < 64)."""
    v = RNG.normal(size=(20_000, 3))
    n = (v / np.linalg.norm(v, axis=1, keepdims=True)).reshape(1, -1, 3)
    back = decode_normals(encode_normals(n.astype(np.float32), flip_x=flip_x), flip_x=flip_x)
    ang = np.degrees(np.arccos(np.clip((back * n).sum(-1), -1, 1)))
    assert ang.max() < 0.5, ang.max()
    grazing = np.array([[[0.0, 0.6, 0.8]]], np.float32)  # faces a ray 53 degrees below the axis
    assert encode_normals(grazing)[0, 0, 2] < 64
    assert np.allclose(decode_normals(encode_normals(grazing)), grazing, atol=0.01)


@pytest.mark.parametrize("flip_x", [False, True])
def test_normals_round_trip_within_half_a_degree(flip_x):
    n = _unit_normals(20_000)
    back = decode_normals(encode_normals(n.astype(np.float32), flip_x=flip_x), flip_x=flip_x)
    ang = np.degrees(np.arccos(np.clip((back * n).sum(-1), -1, 1)))
    assert ang.max() < 0.5, ang.max()


def test_normals_colours_and_no_surface():
    n = np.array([[[0, 0, -1], [1, 0, 0], [0, -1, 0], [0, 0, 0]]], np.float32)  # facing camera, right, up, none
    rgb = encode_normals(n)
    assert rgb.tolist() == [[[128, 128, 255], [255, 128, 128], [128, 255, 128], [0, 0, 0]]]
    assert encode_normals(n, flip_x=True)[0, 1].tolist() == [0, 128, 128]
    back = decode_normals(rgb)
    assert (back[0, 3] == 0).all() and np.allclose(back[0, :3], n[0, :3], atol=0.01)
    assert (decode_normals(np.full((2, 2, 3), 26, np.uint8)) == 0).all()  # 45 from black
    assert (decode_normals(np.full((2, 2, 3), 27, np.uint8)) != 0).all()  # 46.8 from black
    bad = n.copy()
    bad[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 pixel\(s\).*row 0, column 2"):
        encode_normals(bad)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        encode_normals(np.zeros((3, 4), np.float32))
