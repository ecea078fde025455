"""Optical flow: the flow/signedlog codec against its one-pixel-at-a-time oracle and its locality, the Middlebury
colour wheel against its defining properties, the flow task's prompt and decode params."""

import colorsys
import json
import math

import numpy as np
import pytest

from rgbify.encode import (
    CodecInputError,
    FlowCodec,
    decode_flow,
    decode_target,
    encode_flow,
    flow_codec,
    flow_to_color,
    make_task_target,
)
from rgbify.encode.flow import color_wheel
from rgbify.encode.tasks import task_prompt
from tests.oracles import numpy_codecs as oracle


def _flows(rng, shape=(24, 31)):
    """Flow fields with magnitudes from 0.03 to 300 px in every direction, zeros and exact axes."""
    f = rng.standard_normal(shape + (2,)) * rng.choice([0.03, 0.3, 3, 30, 300], shape + (1,))
    f[0, :4] = [(0, 0), (5, 0), (0, -5), (-0.5, 0)]
    return f.astype(np.float32)


@pytest.mark.parametrize("params", [{}, {"fine": 0}, {"fine": 1}, {"max_flow": 40.0, "scale": 3.0, "fine": 7}])
def test_kernels_match_oracle(params):
    """kernels.flow_encode/flow_decode give the same bytes and float32 values as the one-pixel NumPy twin."""
    rng = np.random.default_rng(0)
    c = FlowCodec(**params)
    f = _flows(rng)
    assert np.array_equal(c.encode(f), oracle.flow_encode(f, c.max_flow, c.scale, c.fine))
    rgb = rng.integers(0, 256, (24, 31, 3), dtype=np.uint8)
    rgb[0, :3] = [(127, 127, 0), (255, 0, 255), (0, 255, 128)]
    assert np.array_equal(c.decode(rgb), oracle.flow_decode(rgb, c.max_flow, c.scale, c.fine))


def test_zero_flow_and_axes_are_exact_and_signs_symmetric():
    c = FlowCodec()
    f = np.array([[[0, 0], [3, 0], [-3, 0], [0, 3], [0, -3]]], np.float32)
    rgb = c.encode(f)
    assert rgb[0, 0].tolist() == [127, 127, 0]
    assert rgb[0, 1, 0] - 127 == 127 - rgb[0, 2, 0] > 0 and rgb[0, 1, 1] == rgb[0, 2, 1] == 127
    assert rgb[0, 3, 1] - 127 == 127 - rgb[0, 4, 1] > 0
    back = c.decode(rgb)
    assert back[0, 0].tolist() == [0, 0] and back[0, 1, 1] == 0 and back[0, 3, 0] == 0


@pytest.mark.parametrize("fine", [0, 4])
def test_round_trip_within_the_code_step(fine):
    """fine = 0: each component within half a step of the per-axis code. fine = 4: the magnitude (log domain)
    within half a fine level where the coarse magnitude picks the right fold, and never further than twice the
    coarse error (a fold point nearer to the coarse value than the true one is at most that far from it)."""
    rng = np.random.default_rng(1)
    c = FlowCodec(fine=fine)
    f = np.clip(_flows(rng, (64, 64)).astype(np.float64), -c.max_flow, c.max_flow)
    back = c.decode(c.encode(f.astype(np.float32))).astype(np.float64)
    step = (c.scale + np.abs(f)) * math.expm1(math.log1p(c.max_flow / c.scale) / 127)  # one level at |f|
    if fine == 0:
        assert (np.abs(back - f) <= 0.5 * step + 1e-4).all()
    else:
        lg = lambda a: np.log1p(np.hypot(a[..., 0], a[..., 1]) / c.scale)  # noqa: E731
        coarse = FlowCodec(fine=0).decode(c.encode(f.astype(np.float32))).astype(np.float64)
        half_fine = math.log1p(math.sqrt(2) * c.max_flow / c.scale) / (2 * 255 * fine)
        err, coarse_err = np.abs(lg(back) - lg(f)), np.abs(lg(coarse) - lg(f))
        moving = lg(coarse) > 0
        assert (err[moving] <= 2 * coarse_err[moving] + half_fine + 1e-6).all()
        assert np.median(err[moving]) <= half_fine * 1.01
        assert np.median(err[moving]) < 0.5 * np.median(coarse_err[moving])
    epe = np.hypot(*(back - f).transpose(2, 0, 1)).mean()
    assert epe < (0.8 if fine == 0 else 0.5)


def test_fine_folds_beat_coarse_alone():
    rng = np.random.default_rng(2)
    f = np.clip(_flows(rng, (64, 64)), -256, 256)
    epe = {k: np.hypot(*(FlowCodec(fine=k).decode(FlowCodec(fine=k).encode(f)) - f).transpose(2, 0, 1)).mean()
           for k in (0, 4)}
    assert epe[4] < 0.8 * epe[0]


def test_encode_is_continuous_along_any_sweep():
    """Locality of the encoder: flows 0.002 px apart get colours at most one level apart in every channel."""
    c = FlowCodec()
    mag = np.arange(0, 400, 0.002)
    for ang in (0.0, 0.7, 2.0, -2.9):
        f = np.stack([mag * np.cos(ang), mag * np.sin(ang)], -1)[None].astype(np.float32)
        assert np.abs(np.diff(c.encode(f).astype(int), axis=1)).max() <= 1


def test_decoder_error_is_at_most_twice_the_coarse_error():
    """Locality of the decoder: after one level of error in R or G, the decoded magnitude's error (log domain) is at
    most twice the coarse magnitude's error (the chosen solution of B is never further from the coarse value than
    the true one), and the direction is the coarse one."""
    rng = np.random.default_rng(3)
    c, coarse = FlowCodec(), FlowCodec(fine=0)
    f = _flows(rng, (80, 80))
    t = c.encode(f)
    lg = lambda a: np.log1p(np.hypot(a[..., 0], a[..., 1]) / c.scale)  # noqa: E731
    x_true = lg(c.decode(t))
    for ch in (0, 1):
        for s in (-1, 1):
            t2 = t.astype(int)
            t2[..., ch] += s
            t2 = np.clip(t2, 0, 254).astype(np.uint8)
            got, crs = c.decode(t2), coarse.decode(t2)
            coarse_err = np.abs(lg(crs) - x_true)  # the perturbed coarse magnitude's error
            fine_step = math.log1p(math.sqrt(2) * c.max_flow / c.scale) / (255 * c.fine)
            assert (np.abs(lg(got) - x_true) <= 2 * coarse_err + 2 * fine_step + 1e-5).all()
            moving = (np.hypot(crs[..., 0], crs[..., 1]) > 0) & (np.hypot(got[..., 0], got[..., 1]) > 0)
            cos = (got * crs).sum(-1)[moving] / (np.hypot(*got[moving].T) * np.hypot(*crs[moving].T))
            assert cos.min() > 1 - 1e-5


def test_decoding_never_raises_and_stays_in_range():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    rgb[0, 0], rgb[0, 1] = (255, 255, 255), (0, 0, 0)
    for fine in (0, 4):
        out = FlowCodec(fine=fine).decode(rgb)
        assert out.dtype == np.float32 and out.shape == (128, 128, 2) and np.isfinite(out).all()
        assert np.hypot(out[..., 0], out[..., 1]).max() <= math.sqrt(2) * 256 * 1.0001


def test_bad_input_and_valid_mask():
    f = np.ones((3, 4, 2), np.float32)
    f[1, 2] = np.nan
    with pytest.raises(CodecInputError, match=r"1 pixel\(s\) .*row 1, column 2.*valid="):
        encode_flow(f)
    valid = np.isfinite(f).all(-1)
    rgb = encode_flow(f, valid=valid)
    assert rgb[1, 2].tolist() == [127, 127, 0]
    for bad in (np.ones((3, 4), np.float32), np.ones((3, 4, 3), np.float32), np.ones((3, 4, 2), np.int32)):
        with pytest.raises(CodecInputError, match=r"shape \(H, W, 2\)"):
            encode_flow(bad)
    with pytest.raises(CodecInputError, match="uint8"):
        decode_flow(np.zeros((2, 2, 3), np.float32))
    for params in ({"max_flow": 0}, {"scale": float("inf")}, {"fine": 17}, {"fine": 1.5}):
        with pytest.raises(CodecInputError, match=list(params)[0]):
            FlowCodec(**params)
    with pytest.raises(CodecInputError, match="unknown flow codec"):
        flow_codec("flow/other")


def test_spec_and_task_round_trip_through_json():
    c = FlowCodec(max_flow=64.0, scale=2.0, fine=3)
    assert flow_codec(json.loads(json.dumps(c.spec()))) == c
    rng = np.random.default_rng(5)
    f = _flows(rng)
    target, prompt, params = make_task_target("flow", {"flow": f}, rng, flow_codec_spec=c.spec())
    assert params == {"task": "flow", "codec": c.spec()}
    assert "64 px" in prompt and "scale 2 px" in prompt and "3" in prompt
    assert np.array_equal(decode_target(target, json.dumps(params)), c.decode(c.encode(f)))
    text, p2 = task_prompt("flow", rng)
    assert p2 == {"task": "flow", "codec": FlowCodec().spec()} and "256 px" in text


# ----------------------------------------------------------------------------------------------- colour wheel
def _hsv(rgb):
    return np.array([colorsys.rgb_to_hsv(*(rgb[k] / 255.0)) for k in range(len(rgb))])


def test_wheel_table():
    w = color_wheel()
    assert w.shape == (55, 3)
    assert w[0].tolist() == [255, 0, 0] and w[15].tolist() == [255, 255, 0] and w[21].tolist() == [0, 255, 0]
    assert w[25].tolist() == [0, 255, 255] and w[36].tolist() == [0, 0, 255] and w[49].tolist() == [255, 0, 255]
    assert (w.max(1) == 255).all() and (w.min(1) == 0).all()  # every entry fully saturated


def test_hue_follows_direction_around_the_circle():
    """At the largest magnitude the hue turns once through 360 degrees as the direction turns once (y down: right,
    down, left, up = red, yellow-orange, cyan-blue, violet), monotonically. Like Baker et al.'s code, the wheel
    never interpolates from its last entry (255, 0, 43) back to red, so the hue jumps 10 degrees just above
    "right"; every other step of half a degree of direction is under 2 degrees of hue."""
    theta = np.linspace(-math.pi, math.pi, 721)[:-1]
    f = np.stack([np.cos(theta), np.sin(theta)], -1)[None].astype(np.float64) * 10
    rgb = flow_to_color(f.astype(np.float32))[0]
    hue = _hsv(rgb)[:, 0] * 360
    # start at "left" (theta = -pi): hue increases from there, wrapping once
    steps = np.diff(np.concatenate([hue, hue[:1]])) % 360
    assert abs(steps.sum() - 360) < 1e-6
    gap = int(np.argmax(steps))
    assert theta[gap] < 0 <= theta[gap + 1] and steps[gap] < 11 and np.delete(steps, gap).max() < 2
    right, down, left, up = (flow_to_color(np.array([[d]], np.float32))[0, 0].tolist()
                             for d in ((1, 0), (0, 1), (-1, 0), (0, -1)))
    assert right == [255, 0, 0]
    assert down[0] == 255 and down[2] == 0 and 100 < down[1] < 255  # orange-yellow
    assert left[0] == 0 and left[2] == 255  # between cyan and blue
    assert up[2] == 255 and up[1] == 0 and 0 < up[0] < 255  # violet


def test_saturation_is_magnitude_over_max_and_hue_does_not_change_with_it():
    mags = np.linspace(0, 1, 101)
    for ang in (0.3, 1.9, -2.4):
        f = np.stack([mags * math.cos(ang), mags * math.sin(ang)], -1)[None] * 7.0
        hsv = _hsv(flow_to_color(f.astype(np.float32))[0])
        assert np.abs(hsv[:, 1] - mags).max() <= 1.5 / 255  # saturation = |f| / max (8-bit floor)
        assert (hsv[:, 2] == 1).all()  # full value
        strong = mags >= 0.3
        assert np.ptp(hsv[strong, 0] * 360) < 2.0
    assert flow_to_color(np.zeros((1, 1, 2), np.float32))[0, 0].tolist() == [255, 255, 255]


def test_normalisation_max_flow_beyond_and_invalid():
    rng = np.random.default_rng(6)
    f = rng.standard_normal((9, 9, 2)).astype(np.float32)
    a, b = flow_to_color(f), flow_to_color(f * 3)
    assert np.abs(a.astype(int) - b).max() <= 1  # normalised by the largest magnitude
    c = flow_to_color(f, max_flow=float(np.hypot(f[..., 0], f[..., 1]).max()))
    assert np.abs(a.astype(int) - c).max() <= 1
    far = flow_to_color(np.array([[[2.0, 0.0]]], np.float32), max_flow=1.0)
    assert far[0, 0].tolist() == [191, 0, 0]  # beyond max_flow: the wheel colour at 75 %
    g = f.copy()
    g[0, 0] = np.nan
    valid = np.ones((9, 9), bool)
    valid[1, 1] = False
    out = flow_to_color(g, valid=valid)
    assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [0, 0, 0]
