"""rgbify encode/decode: files in and out, help text, one-line errors with exit code 2. (The warm start time is
measured by benchmarks/bench_encode.py, against its 1.5 s limit: a wall-clock assertion fails on a loaded machine.)
EXR files need the OpenEXR package (the render extra); without it those tests skip."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from rgbify.cli import main
from rgbify.encode import decode_depth, encode_depth

needs_exr = pytest.mark.skipif(importlib.util.find_spec("OpenEXR") is None,
                               reason="EXR files need the OpenEXR package (pip install 'rgbify[render]')")


def _depth():
    d = np.linspace(0.3, 40, 7 * 11, dtype=np.float32).reshape(7, 11)
    d[0, 0] = np.inf
    return d


@pytest.mark.parametrize("codec", ["cubewalk", "hilbert24", "colormap:plasma"])
def test_depth_npy_png_npy(tmp_path, codec):
    np.save(tmp_path / "d.npy", _depth())
    assert main(["encode", "depth", str(tmp_path / "d.npy"), str(tmp_path / "t.png"), "--codec", codec]) == 0
    rgb = np.asarray(Image.open(tmp_path / "t.png"))
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 11, 3)
    assert np.array_equal(rgb, encode_depth(_depth(), codec))
    assert main(["decode", "depth", str(tmp_path / "t.png"), str(tmp_path / "back.npy"), "--codec", codec]) == 0
    assert np.array_equal(np.load(tmp_path / "back.npy"), decode_depth(rgb, codec))


@needs_exr
def test_hilbert_params_and_exr_and_mm_png(tmp_path):
    d = _depth()
    Image.fromarray(np.where(np.isfinite(d), np.rint(d * 1000), 0).astype(np.uint16)).save(tmp_path / "d.png")
    args = ["--codec", "hilbert24", "--d-max", "50", "--gamma", "1"]
    assert main(["encode", "depth", str(tmp_path / "d.png"), str(tmp_path / "t.npy"), *args]) == 0
    t = np.load(tmp_path / "t.npy")
    assert np.array_equal(t[0, 0], encode_depth(np.full((1, 1), np.inf, np.float32), "hilbert24", d_max=50.0)[0, 0])
    assert main(["decode", "depth", str(tmp_path / "t.npy"), str(tmp_path / "b.exr"), *args, "--robust",
                 "median3"]) == 0
    assert main(["decode", "depth", str(tmp_path / "t.npy"), str(tmp_path / "b.png"), *args]) == 0
    mm = np.asarray(Image.open(tmp_path / "b.png")).astype(np.float64)
    fin = np.isfinite(d) & (d < 50)
    assert np.allclose(mm[fin] / 1000, d[fin], atol=0.002)
    assert main(["encode", "depth", str(tmp_path / "b.exr"), str(tmp_path / "t2.png")]) == 0


@needs_exr
@pytest.mark.parametrize("flip", [[], ["--flip-x"]])
def test_normals_npy_and_exr(tmp_path, flip):
    n = np.zeros((7, 11, 3), np.float32)
    n[..., 2] = -1
    n[0, 0] = 0
    np.save(tmp_path / "n.npy", n)
    assert main(["encode", "normals", str(tmp_path / "n.npy"), str(tmp_path / "n.png"), *flip]) == 0
    assert main(["decode", "normals", str(tmp_path / "n.png"), str(tmp_path / "n.exr"), *flip]) == 0
    assert main(["decode", "normals", str(tmp_path / "n.png"), str(tmp_path / "back.npy"), *flip]) == 0
    assert np.allclose(np.load(tmp_path / "back.npy"), n, atol=0.01)
    assert main(["encode", "normals", str(tmp_path / "n.exr"), str(tmp_path / "n2.png"), *flip]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "n2.png")), np.asarray(Image.open(tmp_path / "n.png")))


def test_help_states_units_and_frames(capsys):
    with pytest.raises(SystemExit):
        main(["encode", "depth", "--help"])
    out = capsys.readouterr().out
    assert "metres" in out and "millimetres" in out and "OpenCV camera frame" in out and "hilbert24" in out


def test_bad_files_give_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "bad.npy").write_bytes(b"nope")
    np.save(tmp_path / "rgb.npy", np.zeros((4, 5, 3), np.float32))
    np.save(tmp_path / "nan.npy", np.full((4, 5), np.nan, np.float32))
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    cases = [
        ["encode", "depth", str(tmp_path / "missing.npy"), str(tmp_path / "o.png")],
        ["encode", "depth", str(tmp_path / "bad.npy"), str(tmp_path / "o.png")],
        ["encode", "depth", str(tmp_path / "rgb.npy"), str(tmp_path / "o.png")],
        ["encode", "depth", str(tmp_path / "nan.npy"), str(tmp_path / "o.png")],
        ["encode", "depth", str(tmp_path / "rgb.png"), str(tmp_path / "o.png")],
        ["encode", "depth", str(tmp_path / "bad.png"), str(tmp_path / "o.png")],
        ["decode", "depth", str(tmp_path / "bad.png"), str(tmp_path / "o.npy")],
        ["decode", "depth", str(tmp_path / "rgb.npy"), str(tmp_path / "o.npy")],
        ["decode", "depth", str(tmp_path / "rgb.png"), str(tmp_path / "o.txt")],
        ["decode", "depth", str(tmp_path / "rgb.png"), str(tmp_path / "o.npy"), "--codec", "jet"],
        ["encode", "normals", str(tmp_path / "rgb.png"), str(tmp_path / "o.png")],
        ["decode", "normals", str(tmp_path / "bad.png"), str(tmp_path / "o.npy")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("rgbify: error: ") and err.count("\n") == 1, err
    assert not list(tmp_path.glob("o.*"))
