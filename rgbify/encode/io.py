"""Files for the encode/decode CLI: .npy, .png and .exr in and out. Bad files raise UserError (one line).

- depth: .npy float (H, W) metres (+inf nothing hit); .png 16-bit single channel millimetres (0 = no depth);
  .exr one float channel (Z, Y, R, depth or the only channel) in metres.
- normals: .npy float (H, W, 3) OpenCV camera-frame unit vectors; .exr channels X, Y, Z (or R, G, B).
- targets: .png 8-bit RGB (alpha dropped); .npy uint8 (H, W, 3).
Writers publish atomically (temporary name in the same folder, fsync, rename).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rgbify.errors import UserError
from rgbify.fileio import check_writable_parent, disk_error, publishing

DEPTH_PNG_SCALE = 1000.0
"""16-bit depth PNGs hold millimetres: value / 1000 = metres; 0 means no depth."""


def _suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    s = path.suffix.lower()
    if s not in allowed:
        raise UserError(f"{path}: {what} must be one of {', '.join(allowed)} (got '{s or 'no suffix'}')")
    return s


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None


def png_bits(img) -> int:
    """Bits per sample of an opened, not yet loaded, PNG (Pillow reads 16-bit RGB as 8-bit RGB, silently)."""
    raw = img.tile[0][3] if getattr(img, "tile", None) else ""
    raw = raw[0] if isinstance(raw, tuple) else raw
    return 16 if isinstance(raw, str) and ";16" in raw else 8


def _open_png(path: Path, want_8bit_rgb: bool = False):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        if want_8bit_rgb and img.mode in ("RGB", "RGBA") and png_bits(img) == 16:
            raise UserError(f"{path}: a 16-bit RGB PNG; RGB targets are 8-bit (reading it would drop the low byte "
                            "of every value): save it as an 8-bit RGB PNG, or as a uint8 .npy")
        img.load()
        return img
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f"{path}: not a readable PNG ({e})") from None


def _exr_channels(path: Path) -> dict[str, np.ndarray]:
    try:
        import OpenEXR
    except ImportError:
        raise UserError("reading .exr needs the OpenEXR package: pip install 'rgbify[render]'") from None
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            return {k: np.asarray(v.pixels) for k, v in f.channels().items()}
    except RuntimeError as e:
        raise UserError(f"{path}: not a readable OpenEXR file ({e})") from None


def _publish(path: Path, write: Callable[[str], None]) -> None:
    """Write through ``write(temporary path)`` and publish atomically (the suffix stays, for format detection); a
    write the file system refuses (a full disk, a folder that cannot be made) becomes a one-line UserError."""
    if path.is_dir():
        raise UserError(f"output {path} is a folder; give a file name")
    check_writable_parent(path, "output")
    try:
        with publishing(path, tmp_suffix=".tmp" + path.suffix) as tmp:
            write(str(tmp))
    except OSError as e:
        raise disk_error(e, path) from None


def _not_empty(path: Path, a: np.ndarray) -> np.ndarray:
    if a.ndim >= 2 and 0 in a.shape[:2]:
        raise UserError(f"{path}: an empty image of shape {a.shape}; give at least one pixel")
    return a


def _write_exr(path: Path, channels: dict[str, np.ndarray]) -> None:
    try:
        import OpenEXR
    except ImportError:
        raise UserError("writing .exr needs the OpenEXR package: pip install 'rgbify[render]'") from None
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}

    def write(tmp: str) -> None:
        with OpenEXR.File(header, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in channels.items()}) as f:
            f.write(tmp)

    _publish(path, write)


def _save_npy(path: Path, a: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, a)

    _publish(path, write)


def _save_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    img = Image.fromarray(a)
    _publish(path, lambda tmp: img.save(tmp, format="PNG"))


# ----------------------------------------------------------------------------------------------- depth
def read_depth(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Depth file -> (depth float (H, W) metres, valid bool (H, W) or None)."""
    path = Path(path)
    s = _suffix(path, (".npy", ".png", ".exr"), "a depth file")
    if s == ".npy":
        a = _load_npy(path)
        if a.ndim != 2 or a.dtype.kind != "f":
            raise UserError(f"{path}: expected float depth in metres of shape (H, W), got {a.dtype} {a.shape}")
        return _not_empty(path, a), None
    if s == ".png":
        img = _open_png(path)
        if img.mode not in ("I;16", "I;16B", "I"):
            raise UserError(f"{path}: a depth PNG must be 16-bit single-channel millimetres, got mode {img.mode}")
        mm = np.asarray(img).astype(np.float64)
        return (mm / DEPTH_PNG_SCALE).astype(np.float32), mm > 0
    chans = _exr_channels(path)
    for key in ("Z", "depth", "Y", "R"):
        if key in chans:
            return _not_empty(path, chans[key].astype(np.float32)), None
    if len(chans) == 1:
        return _not_empty(path, next(iter(chans.values())).astype(np.float32)), None
    raise UserError(f"{path}: no depth channel (Z, depth, Y or R) among {sorted(chans)}")


def write_depth(path: str | Path, depth_m: np.ndarray) -> None:
    """float32 (H, W) metres -> .npy, .exr (channel Z) or .png (16-bit mm; +inf and beyond 65.535 m -> 0)."""
    path = Path(path)
    s = _suffix(path, (".npy", ".png", ".exr"), "a depth output")
    if s == ".npy":
        _save_npy(path, depth_m.astype(np.float32))
    elif s == ".exr":
        _write_exr(path, {"Z": depth_m})
    else:
        mm = np.floor(depth_m.astype(np.float64) * DEPTH_PNG_SCALE + 0.5)
        mm = np.where(np.isfinite(mm) & (mm <= 65535), mm, 0).astype(np.uint16)
        _save_png(path, mm)


# ----------------------------------------------------------------------------------------------- normals
def read_normals(path: str | Path) -> np.ndarray:
    """Normals file -> float (H, W, 3) OpenCV camera frame."""
    path = Path(path)
    s = _suffix(path, (".npy", ".exr"), "a normals file")
    if s == ".npy":
        a = _load_npy(path)
    else:
        chans = _exr_channels(path)
        for keys in (("X", "Y", "Z"), ("R", "G", "B")):
            if all(k in chans for k in keys):
                a = np.stack([chans[k] for k in keys], axis=-1)
                break
        else:
            raise UserError(f"{path}: needs channels X, Y, Z (or R, G, B), found {sorted(chans)}")
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype.kind != "f":
        raise UserError(f"{path}: expected float unit normals of shape (H, W, 3), got {a.dtype} {a.shape}")
    return _not_empty(path, a)


def write_normals(path: str | Path, normals_cam: np.ndarray) -> None:
    path = Path(path)
    s = _suffix(path, (".npy", ".exr"), "a normals output")
    if s == ".npy":
        _save_npy(path, normals_cam.astype(np.float32))
    else:
        _write_exr(path, {"X": normals_cam[..., 0], "Y": normals_cam[..., 1], "Z": normals_cam[..., 2]})


# ----------------------------------------------------------------------------------------------- targets
def read_target(path: str | Path) -> np.ndarray:
    """RGB target -> uint8 (H, W, 3)."""
    path = Path(path)
    s = _suffix(path, (".png", ".npy"), "an RGB target")
    if s == ".npy":
        a = _load_npy(path)
    else:
        img = _open_png(path, want_8bit_rgb=True)
        if img.mode not in ("RGB", "RGBA"):
            raise UserError(f"{path}: an RGB target must be an 8-bit RGB PNG, got mode {img.mode}")
        a = np.asarray(img.convert("RGB"))
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise UserError(f"{path}: expected a uint8 RGB image of shape (H, W, 3), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(_not_empty(path, a))


def write_target(path: str | Path, rgb: np.ndarray) -> None:
    path = Path(path)
    s = _suffix(path, (".png", ".npy"), "an RGB target output")
    if s == ".npy":
        _save_npy(path, rgb)
    else:
        _save_png(path, rgb)
