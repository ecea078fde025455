"""Optical flow files: Middlebury .flo, KITTI flow PNG and .npy, read and written (docs/video.md).

Every reader returns ``(flow, valid)``: flow float32 (H, W, 2) in pixels, (u, v) with +x right and +y down, and
valid bool (H, W); flow is 0 where valid is False. Bad files raise UserError, one line naming the file.

- .flo (Middlebury, Baker et al.): the float32 202021.25 ("PIEH"), int32 width, int32 height, then width x height
  (u, v) float32 pairs, row-major, all little-endian. Unknown flow is any component above 1e9 in magnitude; the
  writer writes 1e10 there.
- .png (KITTI 2012/2015 flow): 16-bit RGB, u = (R - 2^15) / 64, v = (G - 2^15) / 64, B = 1 where valid, 0 where
  not. Holds flow in [-512, 512) px in steps of 1/64 px. Pillow reads 16-bit RGB PNGs as 8-bit, so rgbify reads and
  writes them itself (zlib and the PNG filters; kernels.png_unfilter).
- .npy: float (H, W, 2); NaN marks invalid pixels (written so, read so).
Writers publish atomically (rgbify.encode.io).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from rgbify.encode.io import _load_npy, _publish, _save_npy, _suffix
from rgbify.errors import UserError

FLO_MAGIC = 202021.25
FLO_UNKNOWN = 1e10
"""Written at invalid pixels of a .flo; a component above FLO_UNKNOWN_THRESHOLD in magnitude reads as invalid."""
FLO_UNKNOWN_THRESHOLD = 1e9
KITTI_SCALE = 64.0
KITTI_ZERO = 1 << 15
MAX_SIDE = 1 << 16
"""Largest width or height accepted from a file header (a damaged header could ask for terabytes)."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FLOW_SUFFIXES = (".flo", ".png", ".npy")


def _check_flow_array(flow: np.ndarray, valid: np.ndarray | None, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(flow, np.ndarray) or flow.ndim != 3 or flow.shape[2] != 2 or flow.dtype.kind != "f":
        raise UserError(f"{path}: flow to write must be a float array of shape (H, W, 2), got "
                        f"{getattr(flow, 'dtype', type(flow))} {getattr(flow, 'shape', '')}")
    if 0 in flow.shape[:2]:
        raise UserError(f"{path}: an empty flow of shape {flow.shape}; give at least one pixel")
    ok = np.isfinite(flow).all(axis=2)
    if valid is not None:
        if valid.shape != flow.shape[:2] or valid.dtype != np.bool_:
            raise UserError(f"{path}: valid must be a bool array of shape {flow.shape[:2]}, got {valid.dtype} "
                            f"{valid.shape}")
        ok &= valid
    return np.where(ok[..., None], flow, 0.0).astype(np.float32), ok


# ----------------------------------------------------------------------------------------------- .flo
def read_flo(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Middlebury .flo -> (flow float32 (H, W, 2), valid bool (H, W))."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) < 12:
        raise UserError(f"{path}: not a Middlebury .flo file ({len(raw)} bytes, shorter than its 12-byte header)")
    magic, w, h = struct.unpack("<fii", raw[:12])
    if magic != np.float32(FLO_MAGIC):
        raise UserError(f"{path}: not a Middlebury .flo file (first 4 bytes {raw[:4]!r}, expected b'PIEH', the "
                        "float32 202021.25)")
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise UserError(f"{path}: damaged .flo header: width {w}, height {h} (each must be in 1..{MAX_SIDE})")
    need = 8 * w * h
    if len(raw) - 12 != need:
        raise UserError(f"{path}: damaged .flo: a {w}x{h} flow needs {need} bytes after the header, the file has "
                        f"{len(raw) - 12}")
    flow = np.frombuffer(raw, dtype="<f4", offset=12).reshape(h, w, 2).astype(np.float32)
    valid = (np.abs(flow) < FLO_UNKNOWN_THRESHOLD).all(axis=2)  # NaN compares False: invalid
    return np.where(valid[..., None], flow, 0.0).astype(np.float32), valid


def write_flo(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """float (H, W, 2) pixels -> Middlebury .flo; invalid (valid False or not finite) pixels get 1e10."""
    path = Path(path)
    f, ok = _check_flow_array(flow, valid, path)
    f = np.where(ok[..., None], f, np.float32(FLO_UNKNOWN)).astype("<f4")
    h, w = f.shape[:2]
    data = struct.pack("<fii", FLO_MAGIC, w, h) + f.tobytes()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    _publish(path, write)


# ----------------------------------------------------------------------------------------------- PNG
def _png_chunks(raw: bytes, path: Path):
    if raw[:8] != PNG_SIGNATURE:
        raise UserError(f"{path}: not a PNG file (first bytes {raw[:8]!r})")
    pos = 8
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise UserError(f"{path}: damaged PNG (truncated chunk header at byte {pos})")
        n, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        end = pos + 8 + n + 4
        if end > len(raw):
            raise UserError(f"{path}: damaged PNG (chunk {kind!r} at byte {pos} runs past the end of the file)")
        body = raw[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack(">I", raw[end - 4:end])[0]:
            raise UserError(f"{path}: damaged PNG (checksum of chunk {kind!r} at byte {pos} does not match)")
        yield kind, body
        if kind == b"IEND":
            return
        pos = end
    raise UserError(f"{path}: damaged PNG (no IEND chunk: truncated)")


def read_png_rgb(path: str | Path) -> np.ndarray:
    """A non-interlaced RGB PNG of 8 or 16 bits -> uint8 or uint16 (H, W, 3). Other PNGs raise UserError."""
    from rgbify.encode import kernels

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    header, idat = None, []
    for kind, body in _png_chunks(raw, path):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise UserError(f"{path}: damaged PNG (no IHDR chunk)")
    w, h, depth, color, _, _, interlace = header
    if color != 2 or depth not in (8, 16) or interlace:
        raise UserError(f"{path}: a flow PNG must be a non-interlaced RGB PNG of 16 bits (KITTI), got colour type "
                        f"{color}, {depth} bits{', interlaced' if interlace else ''}")
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise UserError(f"{path}: damaged PNG header: width {w}, height {h}")
    try:
        data = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as e:
        raise UserError(f"{path}: damaged PNG (image data does not inflate: {e})") from None
    bpp = 3 * depth // 8
    stride = w * bpp
    if data.size != h * (stride + 1):
        raise UserError(f"{path}: damaged PNG (image data of {data.size} bytes, a {w}x{h} image needs "
                        f"{h * (stride + 1)})")
    out = np.empty((h, stride), dtype=np.uint8)
    bad_row = kernels.png_unfilter(data, h, stride, bpp, out)
    if bad_row >= 0:
        raise UserError(f"{path}: damaged PNG (row {bad_row} has unknown filter type {data[bad_row * (stride + 1)]})")
    if depth == 8:
        return out.reshape(h, w, 3)
    return out.view(">u2").reshape(h, w, 3).astype(np.uint16)


def png_rgb16_bytes(rgb: np.ndarray) -> bytes:
    """uint16 (H, W, 3) -> a 16-bit RGB PNG file's bytes (filter 'sub' on every row, zlib level 6)."""
    h, w, _ = rgb.shape
    rows = np.ascontiguousarray(rgb.astype(">u2")).view(np.uint8).reshape(h, w * 6)
    sub = rows.copy()
    sub[:, 6:] = rows[:, 6:] - rows[:, :-6]  # uint8 arithmetic wraps modulo 256, as the filter wants
    filtered = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)) + chunk(b"IEND", b""))


def read_kitti_flow(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """KITTI flow PNG (16-bit RGB) -> (flow float32 (H, W, 2), valid bool (H, W))."""
    path = Path(path)
    a = read_png_rgb(path)
    if a.dtype != np.uint16:
        raise UserError(f"{path}: a KITTI flow PNG has 16 bits per channel, this one 8 (an 8-bit PNG is an image, "
                        "perhaps a flow/signedlog target: rgbify decode flow reads those)")
    valid = a[..., 2] > 0
    flow = (a[..., :2].astype(np.float64) - KITTI_ZERO) / KITTI_SCALE
    return np.where(valid[..., None], flow, 0.0).astype(np.float32), valid


def write_kitti_flow(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """float (H, W, 2) pixels -> KITTI flow PNG. Flow outside [-512, 512) px cannot be stored: CodecInputError."""
    path = Path(path)
    f, ok = _check_flow_array(flow, valid, path)
    q = np.floor(f.astype(np.float64) * KITTI_SCALE + 0.5) + KITTI_ZERO
    out_of_range = ok & ((q < 0) | (q > 65535)).any(axis=2)
    if out_of_range.any():
        i, j = np.argwhere(out_of_range)[0]
        raise UserError(f"{path}: {int(out_of_range.sum())} pixel(s) of flow outside KITTI's [-512, 512) px (first at "
                        f"row {i}, column {j}: {f[i, j]}); write a .flo or .npy instead")
    rgb = np.empty(f.shape[:2] + (3,), dtype=np.uint16)
    rgb[..., :2] = np.where(ok[..., None], q, KITTI_ZERO)
    rgb[..., 2] = ok
    data = png_rgb16_bytes(rgb)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    _publish(path, write)


# ----------------------------------------------------------------------------------------------- dispatch
def read_flow(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """.flo, KITTI .png or .npy -> (flow float32 (H, W, 2) pixels, valid bool (H, W))."""
    path = Path(path)
    s = _suffix(path, FLOW_SUFFIXES, "a flow file")
    if s == ".flo":
        return read_flo(path)
    if s == ".png":
        return read_kitti_flow(path)
    a = _load_npy(path)
    if a.ndim != 3 or a.shape[2] != 2 or a.dtype.kind != "f":
        raise UserError(f"{path}: expected float flow in pixels of shape (H, W, 2), got {a.dtype} {a.shape}")
    if 0 in a.shape[:2]:
        raise UserError(f"{path}: an empty flow of shape {a.shape}; give at least one pixel")
    valid = np.isfinite(a).all(axis=2)
    return np.where(valid[..., None], a, 0.0).astype(np.float32), valid


def write_flow(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write flow as .flo, KITTI .png or .npy (NaN at invalid pixels), by the suffix."""
    path = Path(path)
    s = _suffix(path, FLOW_SUFFIXES, "a flow output")
    if s == ".flo":
        write_flo(path, flow, valid)
    elif s == ".png":
        write_kitti_flow(path, flow, valid)
    else:
        f, ok = _check_flow_array(flow, valid, path)
        _save_npy(path, np.where(ok[..., None], f, np.nan).astype(np.float32))
