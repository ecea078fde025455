"""Semantic and instance targets: palette, exact round trips, robustness to noise of 8 levels, prompts."""

import json

import numpy as np
import pytest

from rgbify.encode import (
    PALETTE,
    PROMPT_FORMATS,
    decode_instance,
    decode_semantic,
    encode_instance,
    encode_semantic,
    instance_colors,
    instance_shades,
    semantic_prompt,
)
from rgbify.encode.labels import SHADE_SPACING, cluster_colors


def _noisy(rgb, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rgb + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def _scene(h=48, w=64, seed=0):
    """Blocky label maps: semantic classes 1..6 and several instances per class (some split by occlusion)."""
    rng = np.random.default_rng(seed)
    sem = np.zeros((h, w), np.int32)
    inst = np.zeros((h, w), np.int32)
    nid = 1
    for _ in range(14):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        sh, sw = rng.integers(3, 14, 2)
        c = int(rng.integers(1, 7))
        sem[y : y + sh, x : x + sw] = c
        inst[y : y + sh, x : x + sw] = nid
        nid += 1
    return sem, inst


def test_palette_is_distinct_and_named():
    cols = np.array([c.rgb for c in PALETTE] + [(0, 0, 0)], float)
    d = np.sqrt(((cols[:, None] - cols[None]) ** 2).sum(-1))
    assert d[~np.eye(len(cols), dtype=bool)].min() >= 127
    assert len({c.name for c in PALETTE}) == len(PALETTE) >= 20


@pytest.mark.parametrize("sigma", [0, 8])
def test_semantic_round_trip_exact_and_under_noise(sigma):
    sem, _ = _scene()
    classes = sorted(set(np.unique(sem)) - {0})
    colors = {c: PALETTE[i].rgb for i, c in enumerate(classes)}
    rgb = encode_semantic(sem, colors)
    assert np.array_equal(decode_semantic(_noisy(rgb, sigma) if sigma else rgb, colors), sem)


def test_semantic_other_classes_are_black_and_off_palette_is_unlabeled():
    sem, _ = _scene()
    rgb = encode_semantic(sem, {1: (255, 0, 0)})
    assert (rgb[sem != 1] == 0).all()
    dec = decode_semantic(np.full((2, 2, 3), (0, 255, 0), np.uint8), {1: (255, 0, 0)})
    assert (dec == 0).all()


def test_shades_are_distinct_and_start_with_the_class_colour():
    for c in PALETTE:
        shades = instance_shades(c.rgb)
        assert shades[0] == c.rgb and len(shades) >= 3
        pts = np.array(shades + [(0, 0, 0)], float)
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        assert d[~np.eye(len(pts), dtype=bool)].min() >= SHADE_SPACING - 1


@pytest.mark.parametrize("variant", ["shades", "distinct"])
@pytest.mark.parametrize("sigma", [0, 8])
def test_instance_round_trip_exact_and_under_noise(variant, sigma):
    sem, inst = _scene(seed=1)
    cls = int(np.bincount(sem[sem > 0]).argmax())
    ids, counts = np.unique(inst[sem == cls], return_counts=True)
    ids = [int(i) for i in ids[np.argsort(-counts, kind="stable")]]
    colors, split = instance_colors(ids, variant, PALETTE[4].rgb, np.random.default_rng(2))
    assert not split
    truth = np.where(sem == cls, inst, 0)
    rgb = encode_instance(inst, colors)
    got = decode_instance(_noisy(rgb, sigma) if sigma else rgb, colors, variant)
    assert np.array_equal(got, truth)


def test_distinct_decode_without_colours_finds_the_same_partition():
    _, inst = _scene(seed=3)
    ids = [int(i) for i in np.unique(inst) if i]
    colors, _ = instance_colors(ids, "distinct", rng=np.random.default_rng(0))
    got = decode_instance(_noisy(encode_instance(inst, colors), 8), None, "distinct")
    # same partition up to renaming
    pairs = set(zip(got.ravel().tolist(), inst.ravel().tolist(), strict=True))
    assert len(pairs) == len(np.unique(inst)) == len(np.unique(got))


def test_many_instances_get_closer_shades_then_split_into_regions():
    colors, split = instance_colors(list(range(1, 11)), "shades", (255, 0, 0))
    assert not split and len(set(colors.values())) == 10  # 10 fit at a smaller spacing
    pts = np.array(list(colors.values()), float)
    assert np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))[~np.eye(10, dtype=bool)].min() >= 40 - 1
    inst = np.zeros((5, 160), np.int32)
    for k in range(40):  # 40 separate blobs, more than the shades of one colour
        inst[1:4, 4 * k : 4 * k + 3] = k + 1
    colors, split = instance_colors(list(range(1, 41)), "shades", (255, 0, 0))
    assert split
    got = decode_instance(encode_instance(inst, colors), colors, "shades", split_regions=True)
    assert len(np.unique(got[inst > 0])) == 40 and (got[inst == 0] == 0).all()


def test_cluster_colors_orders_by_size():
    rgb = np.zeros((4, 10, 3), np.uint8)
    rgb[:, :6] = (255, 0, 0)
    rgb[:, 6:8] = (0, 0, 255)
    labels, centres = cluster_colors(rgb)
    assert labels[0, 0] == 1 and labels[0, 6] == 2 and labels[0, 9] == 0
    assert np.allclose(centres, [[255, 0, 0], [0, 0, 255]])


def test_decoding_labels_never_raises_on_any_uint8():
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert decode_semantic(rgb, {3: (255, 0, 0)}).dtype == np.int32
    assert decode_instance(rgb, {5: (255, 0, 0)}, "shades").shape == (32, 32)
    assert decode_instance(rgb, None, "distinct").shape == (32, 32)


@pytest.mark.parametrize("fmt", PROMPT_FORMATS)
def test_semantic_prompt_formats_state_every_colour(fmt):
    classes = [(3, "chair"), (7, "table")]
    colors = [(255, 0, 0), (0, 128, 255)]
    text, params = semantic_prompt(classes, colors, np.random.default_rng(0), fmt=fmt)
    assert "chair" in text and "table" in text
    expect = {"rgb": "(0, 128, 255)", "hex": "#0080FF", "json": '"table": [0, 128, 255]', "names": "table in azure"}
    assert expect[fmt] in text
    assert json.loads(json.dumps(params)) == params
    assert [c["color"] for c in params["classes"]] == [list(c) for c in colors]
    if fmt == "json":
        blob = text[text.index("{") : text.rindex("}") + 1]
        assert json.loads(blob) == {"chair": [255, 0, 0], "table": [0, 128, 255]}


def test_bad_label_input():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        encode_semantic(np.zeros((3, 4), np.float32), {1: (255, 0, 0)})
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        decode_semantic(np.zeros((3, 4), np.uint8), {1: (255, 0, 0)})
