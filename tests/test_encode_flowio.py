"""Flow files (.flo, KITTI PNG, .npy): round trips, byte layouts written by hand here, PNG rows under every filter,
damaged files as one-line errors naming the file, and `rgbify encode/decode flow`."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rgbify.cli import main
from rgbify.encode import FlowCodec, flow_to_color
from rgbify.encode.flowio import (
    read_flo,
    read_flow,
    read_kitti_flow,
    read_png_rgb,
    write_flo,
    write_flow,
    write_kitti_flow,
)
from rgbify.errors import UserError


def _flow(shape=(7, 11), scale=20.0, seed=0):
    rng = np.random.default_rng(seed)
    f = (rng.standard_normal(shape + (2,)) * scale).astype(np.float32)
    valid = rng.random(shape) > 0.25
    return f, valid


# ----------------------------------------------------------------------------------------------- .flo
def test_flo_layout_by_hand_and_round_trip(tmp_path):
    f = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2) - 5.5
    raw = b"PIEH" + struct.pack("<ii", 3, 2) + struct.pack("<12f", *f.ravel())
    (tmp_path / "hand.flo").write_bytes(raw)
    got, valid = read_flo(tmp_path / "hand.flo")
    assert np.array_equal(got, f) and valid.all()
    write_flo(tmp_path / "w.flo", f)
    assert (tmp_path / "w.flo").read_bytes() == raw  # the writer writes exactly this layout

    f, valid = _flow()
    write_flow(tmp_path / "a.flo", f, valid)
    on_disk = np.frombuffer((tmp_path / "a.flo").read_bytes(), "<f4", offset=12).reshape(7, 11, 2)
    assert (on_disk[~valid] == np.float32(1e10)).all()  # Middlebury's "unknown flow"
    got, got_valid = read_flow(tmp_path / "a.flo")
    assert np.array_equal(got_valid, valid)
    assert np.array_equal(got[valid], f[valid]) and (got[~valid] == 0).all()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than its 12-byte header"),
        (b"PIEX" + struct.pack("<ii", 1, 1) + b"\0" * 8, "not a Middlebury .flo file"),
        (b"PIEH" + struct.pack("<ii", 0, 5), r"width 0, height 5"),
        (b"PIEH" + struct.pack("<ii", 1 << 30, 1 << 30), "damaged .flo header"),
        (b"PIEH" + struct.pack("<ii", 4, 4) + b"\0" * 100, "needs 128 bytes after the header, the file has 100"),
    ],
)
def test_bad_flo_files_are_one_line_errors(tmp_path, data, message):
    p = tmp_path / "bad.flo"
    p.write_bytes(data)
    with pytest.raises(UserError, match=message) as e:
        read_flow(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------------------------- KITTI PNG
def test_kitti_round_trip_and_value_layout(tmp_path):
    f, valid = _flow(scale=100.0)
    write_kitti_flow(tmp_path / "k.png", f, valid)
    raw = read_png_rgb(tmp_path / "k.png")
    assert raw.dtype == np.uint16 and raw.shape == (7, 11, 3)
    assert np.array_equal(raw[..., 2], valid.astype(np.uint16))
    assert np.array_equal(raw[valid][:, :2], np.floor(f[valid].astype(np.float64) * 64 + 0.5) + 32768)
    got, got_valid = read_kitti_flow(tmp_path / "k.png")
    assert np.array_equal(got_valid, valid)
    assert np.abs(got[valid] - f[valid]).max() <= 1 / 128 + 1e-6 and (got[~valid] == 0).all()


def _png(rgb16: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit RGB PNG whose rows use the given filter types, filtered here byte by byte (PNG spec, section 9)."""
    h, w, _ = rgb16.shape
    rows = rgb16.astype(">u2").view(np.uint8).reshape(h, w * 6).astype(int)
    out = bytearray()
    for i in range(h):
        ft = filters[i % len(filters)]
        out.append(ft)
        for j in range(w * 6):
            x = rows[i, j]
            a = rows[i, j - 6] if j >= 6 else 0
            b = rows[i - 1, j] if i > 0 else 0
            c = rows[i - 1, j - 6] if i > 0 and j >= 6 else 0
            if ft == 4:
                p = a + b - c
                pred = a if abs(p - a) <= min(abs(p - b), abs(p - c)) else (b if abs(p - b) <= abs(p - c) else c)
            else:
                pred = [0, a, b, (a + b) // 2][ft]
            out.append((x - pred) % 256)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


def test_png_rows_under_every_filter(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (6, 5, 3)).astype(np.uint16)
    rgb[2:] = np.cumsum(rgb[2:] % 300, axis=1)  # smooth rows as well as random ones
    (tmp_path / "f.png").write_bytes(_png(rgb, [0, 1, 2, 3, 4, 4]))
    assert np.array_equal(read_png_rgb(tmp_path / "f.png"), rgb)
    # an 8-bit RGB PNG that Pillow (zlib, its own filter choice) wrote reads as Pillow reads it
    img = np.clip(np.cumsum(rng.integers(0, 9, (40, 50, 3)), axis=1), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "p.png")
    assert np.array_equal(read_png_rgb(tmp_path / "p.png"), np.asarray(Image.open(tmp_path / "p.png")))


def test_kitti_bad_files_and_out_of_range(tmp_path):
    f, valid = _flow()
    write_kitti_flow(tmp_path / "k.png", f, valid)
    good = (tmp_path / "k.png").read_bytes()
    cases = {
        "notpng.png": (b"hello world", "not a PNG file"),
        "trunc.png": (good[:-30], "damaged PNG"),
        "crc.png": (good[:40] + bytes([good[40] ^ 1]) + good[41:], "checksum of chunk"),
    }
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "eight.png")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "gray16.png")
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    cases["eight.png"] = (None, "16 bits per channel, this one 8")
    cases["gray16.png"] = (None, "colour type 0")
    cases["missing.png"] = (None, "no such file")
    for name, (_, message) in cases.items():
        with pytest.raises(UserError, match=message) as e:
            read_flow(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)
    big = f.copy()
    big[3, 4] = (600, 0)
    with pytest.raises(UserError, match=r"1 pixel\(s\) of flow outside KITTI's \[-512, 512\) px.*row 3, column 4"):
        write_kitti_flow(tmp_path / "big.png", big)
    assert not (tmp_path / "big.png").exists()


def test_npy_flow_uses_nan_for_invalid(tmp_path):
    f, valid = _flow()
    write_flow(tmp_path / "a.npy", f, valid)
    a = np.load(tmp_path / "a.npy")
    assert np.isnan(a[~valid]).all() and np.array_equal(a[valid], f[valid])
    got, got_valid = read_flow(tmp_path / "a.npy")
    assert np.array_equal(got_valid, valid)
    np.save(tmp_path / "bad.npy", np.zeros((3, 3, 3), np.float32))
    with pytest.raises(UserError, match=r"bad.npy: expected float flow in pixels of shape \(H, W, 2\)"):
        read_flow(tmp_path / "bad.npy")
    with pytest.raises(UserError, match="a flow file must be one of .flo, .png, .npy"):
        read_flow(tmp_path / "a.exr")


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_encode_decode_flow(tmp_path):
    f, valid = _flow()
    write_flow(tmp_path / "a.flo", f, valid)
    assert main(["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "t.png"), "--max-flow", "64"]) == 0
    t = np.asarray(Image.open(tmp_path / "t.png"))
    codec = FlowCodec(max_flow=64.0)
    assert np.array_equal(t, codec.encode(f, valid))
    assert main(["decode", "flow", str(tmp_path / "t.png"), str(tmp_path / "b.png"), "--max-flow", "64"]) == 0
    back, back_valid = read_flow(tmp_path / "b.png")  # KITTI PNG out: every pixel valid, 1/64 px steps
    assert back_valid.all() and np.abs(back - codec.decode(t)).max() <= 1 / 128 + 1e-6
    assert main(["decode", "flow", str(tmp_path / "t.png"), str(tmp_path / "b.flo"), "--max-flow", "64"]) == 0
    assert np.array_equal(read_flow(tmp_path / "b.flo")[0], codec.decode(t))
    assert main(["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "w.png"), "--wheel"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "w.png")), flow_to_color(f, valid=valid))


def test_cli_flow_errors_exit_2_without_output(tmp_path, capsys):
    (tmp_path / "bad.flo").write_bytes(b"PIEH" + struct.pack("<ii", 2, 2))
    f, _ = _flow()
    write_flow(tmp_path / "a.flo", f)
    for args, message in [
        (["encode", "flow", str(tmp_path / "bad.flo"), str(tmp_path / "o.png")], "bad.flo: damaged .flo"),
        (["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "o.png"), "--fine", "99"], "--fine 99"),
        (["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "o.png"), "--max-flow", "nan"], "--max-flow nan"),
        (["decode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "o.png"), "--scale", "0"], "--scale 0"),
        (["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "o.png"), "--wheel", "--wheel-max", "-1"],
         "--wheel-max -1"),
        (["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "a.flo")], "destroy the input"),
    ]:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
        assert not (tmp_path / "o.png").exists()


def test_a_full_disk_in_every_flow_writer_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import os

    from tests.fault_shims import failing_fsync

    f, _ = _flow()
    write_flow(tmp_path / "a.flo", f)
    assert main(["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "t.png")]) == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (["encode", "flow", str(tmp_path / "a.flo"), str(tmp_path / "o.png")],
                 ["decode", "flow", str(tmp_path / "t.png"), str(tmp_path / "o.flo")],
                 ["decode", "flow", str(tmp_path / "t.png"), str(tmp_path / "o.png")],
                 ["decode", "flow", str(tmp_path / "t.png"), str(tmp_path / "o.npy")]):
        with monkeypatch.context() as m:
            m.setattr(os, "fsync", failing_fsync)
            assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no space left" in err and args[-1] in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before, args
