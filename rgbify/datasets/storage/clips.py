"""Clip shards: rendered clips with their per-frame ground truth and the flow between frames, in HDF5, one chunk
per frame (the first storage piece of issue 16; docs/video.md).

A clip shard ``clips-KKKKK.h5`` holds N clips of T frames of H x W pixels. Every per-frame field is one HDF5
dataset of shape (N, T, ...) whose chunk is one frame (1, 1, ...), so reading frame t of clip j decompresses exactly
one chunk per field. Fields:

==================  ======================  =====================================================================
name                dtype, shape            meaning
==================  ======================  =====================================================================
rgb ... edge        as a still shard's,     the frame's render (docs/conventions.md section 2); instance ids are
                    with a frame axis T     the scene's, the same object keeps its id in every frame
K                   float64 (N,T,3,3)       intrinsics of each frame
world_from_camera   float64 (N,T,4,4)       camera pose of each frame
flow_fwd            float32 (N,T,H,W,2)     optical flow t -> t+1, pixels, (dx, dy), +x right, +y down
valid_fwd           bool (N,T,H,W)          hit, in view at t+1 and not occluded there (all false at t = T-1)
occluded_fwd        bool (N,T,H,W)          in view at t+1 but hidden behind a nearer surface
scene_flow_fwd      float32 (N,T,H,W,3)     the point in camera t+1 minus the point in camera t, metres
flow_bwd ...        the same four           from t to t-1 (all invalid at t = 0)
index, seed         int64 (N,)              the clip's sample index and the dataset's base seed
clip                uint8 vlen (N,)         the clip spec, zlib-compressed canonical JSON (rgbify.scenes.clip)
checksum            str (N,)                sha256 over the clip's fields (clip_checksum)
==================  ======================  =====================================================================

File attributes: ``rgbify_format = "rgbify-clip-shard"``, ``schema_version``, ``first_index``, ``samples`` (clips),
``frames``, ``fps``, ``width``, ``height``, ``config_hash``, ``classes``, ``conventions_version``, ``conventions``;
each field carries its description as attributes (``h5dump -A``). Flow, masks and scene flow are computed from the
frames' depth and ids and the clip's poses by rgbify.scenes.sceneflow (exact from geometry).

``rgbify build --clip-frames T`` writes datasets of these shards (``shards/shard-KKKKK.h5``, one clip a sample;
work files of finished clips: :func:`write_clip_file`); ``rgbify verify`` checks them (:func:`check_clip`).
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rgbify import CONVENTIONS_VERSION
from rgbify.datasets.storage.shards import (
    ARRAY_FIELDS,
    CONVENTIONS_DOC,
    FIELD_ATTRS,
    IMAGE_FILTERS,
    MATRIX_FIELDS,
    ForeignShard,
    NotHDF5,
    ShardError,
    _savez,
    check_header,
    deflated,
)
from rgbify.fileio import publishing
from rgbify.scenes.clip import ClipSpec, clip_from_json, clip_to_json
from rgbify.scenes.sceneflow import clip_flow

CLIP_FORMAT = "rgbify-clip-shard"
CLIP_SCHEMA_VERSION = 1

FLOW_FIELDS: dict[str, tuple[str, int]] = {
    f"{name}_{d}": spec
    for d in ("fwd", "bwd")
    for name, spec in (
        ("flow", ("float32", 2)),
        ("valid", ("bool", 0)),
        ("occluded", ("bool", 0)),
        ("scene_flow", ("float32", 3)),
    )
}
FRAME_FIELDS: dict[str, tuple[str, int]] = {**ARRAY_FIELDS, **FLOW_FIELDS}
FLOW_FILTERS = {
    "flow": deflated(4, shuffle=True),
    "valid": deflated(6),
    "occluded": deflated(6),
    "scene_flow": deflated(4, shuffle=True),
}

_DOC = "docs/video.md"
_WORDS = {"fwd": ("t -> t+1", "t+1"), "bwd": ("t -> t-1", "t-1")}


def _flow_attrs() -> dict[str, dict[str, str]]:
    out = {}
    for d, (pair, other) in _WORDS.items():
        out[f"flow_{d}"] = {
            "description": f"optical flow {pair}: where the pixel centre's surface point lands in frame {other}",
            "units": "pixels (dx, dy)",
            "frame": "image: +x right, +y down (OpenCV pixels)",
            "invalid": f"valid_{d} false (values 0 where nothing is hit)",
            "codec": "float32, raw",
            "docs": _DOC,
        }
        out[f"valid_{d}"] = {
            "description": f"the pixel's point is hit, in view in frame {other} and not occluded there",
            "units": "bool",
            "frame": "image: (H, W)",
            "invalid": "none",
            "codec": "bool",
            "docs": _DOC,
        }
        out[f"occluded_{d}"] = {
            "description": f"the pixel's point is in view in frame {other} but behind a nearer surface there",
            "units": "bool",
            "frame": "image: (H, W)",
            "invalid": "none",
            "codec": "bool",
            "docs": _DOC,
        }
        out[f"scene_flow_{d}"] = {
            "description": f"scene flow {pair}: the point in camera {other}'s frame minus the point in camera t's",
            "units": "metres",
            "frame": "OpenCV camera (+x right, +y down, +z forward)",
            "invalid": f"valid_{d} false",
            "codec": "float32, raw",
            "docs": _DOC,
        }
    return out


CLIP_ATTRS: dict[str, dict[str, str]] = {
    **{k: v for k, v in FIELD_ATTRS.items() if k in (*ARRAY_FIELDS, *MATRIX_FIELDS, "index", "seed")},
    **_flow_attrs(),
    "clip": {
        "description": "the clip spec (rgbify.scenes.clip.clip_from_json reads it)",
        "units": "none",
        "frame": "world (Blender's: right-handed, +Z up), metres",
        "invalid": "none",
        "codec": "zlib-compressed UTF-8 canonical JSON: zlib.decompress(f['clip'][j].tobytes()).decode()",
        "docs": _DOC,
    },
    "checksum": {
        "description": "sha256 over the clip's fields (rgbify.datasets.storage.clips.clip_checksum)",
        "units": "none",
        "frame": "none",
        "invalid": "none",
        "codec": "hex string",
        "docs": _DOC,
    },
}


def clip_sample(clip: ClipSpec, frames: Sequence[Any], index: int, seed: int) -> dict[str, Any]:
    """One clip's stored fields from its spec and its rendered frames (objects with the RenderResult attributes
    rgb, depth, normals, instance, semantic, edge, K, world_from_camera): the still fields stacked on a frame axis,
    forward and backward flow from rgbify.scenes.sceneflow."""
    if len(frames) != clip.frames:
        raise ShardError(f"clip {index}: {len(frames)} rendered frames for a clip of {clip.frames}")
    out: dict[str, Any] = {"index": int(index), "seed": int(seed), "clip": clip_to_json(clip)}
    for name in (*ARRAY_FIELDS, *MATRIX_FIELDS):
        out[name] = np.stack([np.asarray(getattr(f, name)) for f in frames])
    depths, ids = [f.depth for f in frames], [f.instance for f in frames]
    h, w = out["depth"].shape[1:3]
    n = clip.frames
    for d, step in (("fwd", 1), ("bwd", -1)):
        flow, valid = np.zeros((n, h, w, 2), np.float32), np.zeros((n, h, w), bool)
        occl, scene = np.zeros((n, h, w), bool), np.zeros((n, h, w, 3), np.float32)
        for t in range(n):
            u = t + step
            if 0 <= u < n:
                r = clip_flow(clip, depths, ids, t, u)
                flow[t], valid[t], occl[t], scene[t] = r.flow, r.valid, r.occluded, r.scene_flow
        out.update({f"flow_{d}": flow, f"valid_{d}": valid, f"occluded_{d}": occl, f"scene_flow_{d}": scene})
    return out


def clip_checksum(sample: Mapping[str, Any]) -> str:
    """sha256 over a clip's fields in a fixed order (array bytes in C order, the clip JSON as UTF-8)."""
    h = hashlib.sha256()
    for name in ("index", "seed", *FRAME_FIELDS, *MATRIX_FIELDS):
        h.update(name.encode())
        h.update(np.ascontiguousarray(sample[name]).tobytes())
    h.update(b"clip")
    h.update(str(sample["clip"]).encode())
    return h.hexdigest()


def _normalize(sample: Mapping[str, Any], frames: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": np.int64(sample["index"]),
        "seed": np.int64(sample["seed"]),
        "clip": str(sample["clip"]),
    }
    rgb = np.asarray(sample["rgb"])
    if rgb.ndim != 4 or rgb.shape[3] != 3 or (frames is not None and rgb.shape[0] != frames):
        raise ShardError(f"clip {out['index']}: rgb has shape {rgb.shape}, expected ({frames or 'T'}, H, W, 3)")
    t, h, w = rgb.shape[:3]
    for name, (dtype, ch) in FRAME_FIELDS.items():
        a = np.asarray(sample[name])
        shape = (t, h, w, ch) if ch else (t, h, w)
        if a.shape != shape:
            raise ShardError(f"clip {out['index']}: {name} has shape {a.shape}, expected {shape}")
        out[name] = a.astype(dtype, copy=False)
    for name, shape in MATRIX_FIELDS.items():
        a = np.asarray(sample[name], dtype=np.float64)
        if a.shape != (t, *shape):
            raise ShardError(f"clip {out['index']}: {name} has shape {a.shape}, expected {(t, *shape)}")
        out[name] = a
    out["checksum"] = clip_checksum(out)
    return out


def _filters(name: str) -> dict[str, Any]:
    if name in IMAGE_FILTERS:
        return dict(IMAGE_FILTERS[name])
    return dict(FLOW_FILTERS[name.rsplit("_", 1)[0]])


def write_clip_shard(
    path: str | Path,
    samples: Iterable[Mapping[str, Any]],
    *,
    first_index: int,
    count: int,
    config_hash: str,
    classes: Sequence[str],
    fps: float,
) -> str:
    """Write ``count`` clips (indices first_index, first_index + 1, ... in order; each a :func:`clip_sample` dict)
    into a new clip shard at ``path``, atomically (built in memory, written to a temporary name, fsynced, renamed);
    return its sha256. Every clip must have the same number of frames and size."""
    path = Path(path)
    if count < 1:
        raise ShardError(f"{path}: refusing to write an empty clip shard")
    with h5py.File(
        f"{path}.{uuid.uuid4().hex}", "w", driver="core", backing_store=False, libver=("v110", "latest")
    ) as f:
        checksums, clips, j, frames = [], [], -1, None
        for j, raw in enumerate(samples):
            s = _normalize(raw, frames)
            if j >= count or int(s["index"]) != first_index + j:
                raise ShardError(f"{path}: clip {s['index']} at position {j}, expected {first_index + j}")
            if j == 0:
                frames, h, w = s["rgb"].shape[:3]
                for name, (dtype, ch) in FRAME_FIELDS.items():
                    shape = (frames, h, w, ch) if ch else (frames, h, w)
                    f.create_dataset(
                        name, shape=(count, *shape), dtype=dtype, chunks=(1, 1, *shape[1:]), **_filters(name)
                    )
                for name, shape in MATRIX_FIELDS.items():
                    f.create_dataset(
                        name,
                        shape=(count, frames, *shape),
                        dtype="float64",
                        chunks=(1, frames, *shape),
                        fletcher32=True,
                    )
                f.create_dataset("index", shape=(count,), dtype="int64")
                f.create_dataset("seed", shape=(count,), dtype="int64")
                f.attrs.update(
                    {
                        "rgbify_format": CLIP_FORMAT,
                        "schema_version": CLIP_SCHEMA_VERSION,
                        "first_index": first_index,
                        "samples": count,
                        "frames": frames,
                        "fps": float(fps),
                        "width": w,
                        "height": h,
                        "config_hash": config_hash,
                        "conventions_version": CONVENTIONS_VERSION,
                        "conventions": CONVENTIONS_DOC,
                    }
                )
                f.attrs.create("classes", list(classes), dtype=h5py.string_dtype("utf-8"))
            elif s["rgb"].shape[1:3] != (f.attrs["height"], f.attrs["width"]):
                raise ShardError(
                    f"{path}: clip {s['index']} is {s['rgb'].shape[2]}x{s['rgb'].shape[1]}, the "
                    f"shard's clips {f.attrs['width']}x{f.attrs['height']}"
                )
            for name in (*FRAME_FIELDS, *MATRIX_FIELDS, "index", "seed"):
                f[name][j] = s[name]
            checksums.append(s["checksum"])
            clips.append(s["clip"])
        if j != count - 1:
            raise ShardError(f"{path}: got {j + 1} clips, expected {count}")
        ds = f.create_dataset("clip", shape=(count,), dtype=h5py.vlen_dtype(np.dtype("uint8")))
        for i, text in enumerate(clips):
            ds[i] = np.frombuffer(zlib.compress(text.encode(), 6), np.uint8)
        f.create_dataset("checksum", data=checksums, dtype=h5py.string_dtype("utf-8"))
        for name, attrs in CLIP_ATTRS.items():
            f[name].attrs.update(attrs)
        f.flush()
        image = f.id.get_file_image()
    with publishing(path) as tmp, open(tmp, "wb") as fh:
        fh.write(image)
    return hashlib.sha256(image).hexdigest()


class ClipShardReader:
    """Read clips and single frames from a clip shard (through HDF5; one chunk per field per frame)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise ShardError(f"{self.path}: not a readable HDF5 file ({e})") from None
        kind = self.file.attrs.get("rgbify_format")
        if kind != CLIP_FORMAT:
            self.file.close()
            raise ShardError(f"{self.path}: not an rgbify clip shard (rgbify_format is {kind!r})")

    def __enter__(self) -> ClipShardReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def __len__(self) -> int:
        return int(self.file.attrs["samples"])

    @property
    def frames(self) -> int:
        return int(self.file.attrs["frames"])

    def clip_spec(self, j: int) -> ClipSpec:
        return clip_from_json(zlib.decompress(self.file["clip"][j].tobytes()).decode())

    def frame(self, j: int, t: int, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Frame ``t`` of clip ``j``: the named fields (default: every per-frame field, K and world_from_camera)."""
        if not (0 <= j < len(self) and 0 <= t < self.frames):
            raise IndexError(f"{self.path}: clip {j} frame {t} outside {len(self)} clips of {self.frames} frames")
        names = list(fields) if fields is not None else [*FRAME_FIELDS, *MATRIX_FIELDS]
        return {name: self.file[name][j, t] for name in names}

    def clip(self, j: int) -> dict[str, Any]:
        """Every field of clip ``j`` (arrays with their frame axis), as clip_sample gave it, plus its checksum."""
        out: dict[str, Any] = {name: self.file[name][j] for name in (*FRAME_FIELDS, *MATRIX_FIELDS)}
        out["index"], out["seed"] = np.int64(self.file["index"][j]), np.int64(self.file["seed"][j])
        out["clip"] = zlib.decompress(self.file["clip"][j].tobytes()).decode()
        out["checksum"] = self.file["checksum"][j].decode()
        return out

    def verify(self) -> list[str]:
        """Problems found (empty if none): every clip's checksum recomputed over what is stored."""
        problems = []
        for j in range(len(self)):
            try:
                c = self.clip(j)
            except (OSError, ValueError, zlib.error) as e:
                problems.append(f"{self.path}: clip at position {j} unreadable ({type(e).__name__}: {e})")
                continue
            if clip_checksum(c) != c["checksum"]:
                problems.append(f"{self.path}: clip {int(c['index'])} checksum mismatch")
        return problems


# --- clip datasets: work files, header and content checks -------------------------------------------------------


def write_clip_file(path: Path, sample: Mapping[str, Any]) -> None:
    """Write one finished clip (a :func:`clip_sample` dict) as an uncompressed .npz work file, atomically."""
    s = _normalize(sample, None)
    arrays = {k: (np.frombuffer(v.encode(), np.uint8) if isinstance(v, str) else np.asarray(v)) for k, v in s.items()}
    with publishing(path) as tmp, open(tmp, "wb") as fh:
        _savez(fh, arrays)


def read_clip_file(path: Path) -> dict[str, Any]:
    """A clip work file back; ShardError if it is truncated, lacks a field or its checksum does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            s = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise ShardError(f"{path}: unreadable clip file ({type(e).__name__}: {e})") from None
    missing = [f for f in ("index", "seed", "clip", "checksum", *FRAME_FIELDS, *MATRIX_FIELDS) if f not in s]
    if missing:
        raise ShardError(f"{path}: clip file lacks {missing}")
    text = ("clip", "checksum")
    out = {k: (v.tobytes().decode() if k in text else (v[()] if v.ndim == 0 else v)) for k, v in s.items()}
    if clip_checksum(out) != out["checksum"]:
        raise ShardError(f"{path}: checksum mismatch")
    return out


def open_clip_shard(path: Path) -> h5py.File:
    """Open a clip shard read-only: NotHDF5 if it is not a readable HDF5 file, ForeignShard if it is another tool's
    HDF5 file, ShardError if its header is damaged or of another schema version."""
    try:
        f = h5py.File(path, "r")
    except Exception as e:  # noqa: BLE001 - OSError, ValueError; other types on a damaged superblock
        raise NotHDF5(f"{path}: not a readable HDF5 file ({type(e).__name__})") from None
    try:
        fmt = f.attrs.get("rgbify_format")
        version = f.attrs.get("schema_version", -1)
        ours = fmt is None and any(name in f for name in ("flow_fwd", "checksum"))
    except Exception as e:  # noqa: BLE001 - damaged metadata
        f.close()
        raise ShardError(f"{path}: HDF5 header unreadable ({type(e).__name__})") from None
    if fmt != CLIP_FORMAT:
        f.close()
        if ours or fmt is not None:
            raise ShardError(f"{path}: damaged clip shard header (rgbify_format is {fmt!r})")
        raise ForeignShard(f"{path}: an HDF5 file that is not an rgbify shard (no rgbify_format attribute)")
    if version != CLIP_SCHEMA_VERSION:
        f.close()
        raise ShardError(f"{path}: clip shard schema_version {version} is not {CLIP_SCHEMA_VERSION}")
    return f


def check_clip_shard(path: Path, config_hash: str, samples: range, prefix: bool = False) -> int:
    """The clip-shard twin of rgbify.datasets.storage.shards.check_shard: header (:func:`check_header`), then every
    clip's index and checksum (each read whole, so HDF5 checks its chunks); its number of clips, or ShardError."""
    with open_clip_shard(path) as f:
        n = check_header(f, str(path), config_hash, samples, prefix)
    with ClipShardReader(path) as r:
        for j in range(n):
            try:
                c = r.clip(j)
                sound = int(c["index"]) == samples.start + j and clip_checksum(c) == c["checksum"]
            except Exception as e:  # noqa: BLE001 - a damaged field
                raise ShardError(f"{path}: clip {samples.start + j}: unreadable ({type(e).__name__})") from None
            if not sound:
                raise ShardError(f"{path}: clip {samples.start + j}: checksum mismatch")
    return n


def check_clip(c: Mapping[str, Any], frames: int, height: int, width: int) -> list[str]:
    """Problems of one stored clip (:meth:`ClipShardReader.clip`) beyond its checksum, the cheap invariants: the
    frame count and every field's shape, flow and scene flow finite where valid and 0 where not, no valid forward
    flow at the last frame nor backward flow at the first, valid and occluded never both true, depth finite and
    positive where something was hit."""
    problems = []
    for name, (_, ch) in FRAME_FIELDS.items():
        shape = (frames, height, width, ch) if ch else (frames, height, width)
        if np.shape(c[name]) != shape:
            problems.append(f"{name} has shape {np.shape(c[name])}, expected {shape}")
    for name, shape in MATRIX_FIELDS.items():
        if np.shape(c[name]) != (frames, *shape):
            problems.append(f"{name} has shape {np.shape(c[name])}, expected {(frames, *shape)}")
    if problems:
        return problems
    try:
        spec_frames = clip_from_json(str(c["clip"])).frames
    except Exception as e:  # noqa: BLE001 - SpecError, ValueError
        return [f"clip spec unreadable ({type(e).__name__}: {' '.join(str(e).split())[:120]})"]
    if spec_frames != frames:
        problems.append(f"its clip spec has {spec_frames} frames, the shard {frames}")
    hit = c["instance"] > 0
    for d, edge in (("fwd", frames - 1), ("bwd", 0)):
        problems += _flow_problems(c, d, edge, hit)
    depth = c["depth"]
    if not (np.isfinite(depth[hit]).all() and (depth[hit] > 0).all()):
        problems.append("depth is not finite and positive everywhere an object was hit")
    if (c["valid_fwd"] & ~hit).any() or (c["valid_bwd"] & ~hit).any():
        problems.append("flow is valid where nothing was hit")
    return problems


def clip_fields_table(frames: int, width: int, height: int) -> dict[str, dict[str, Any]]:
    """dataset.json's ``fields`` of a clip dataset: each field's dtype and shape per clip."""
    t: dict[str, dict[str, Any]] = {"index": {"dtype": "int64", "shape": []}, "seed": {"dtype": "int64", "shape": []}}
    for name, (dtype, ch) in FRAME_FIELDS.items():
        t[name] = {"dtype": dtype, "shape": [frames, height, width, ch] if ch else [frames, height, width]}
    for name, shape in MATRIX_FIELDS.items():
        t[name] = {"dtype": "float64", "shape": [frames, *shape]}
    t["clip"] = {"dtype": "zlib+utf-8", "shape": []}
    t["checksum"] = {"dtype": "str", "shape": []}
    return t


def _flow_problems(c: Mapping[str, Any], d: str, edge: int, hit: np.ndarray) -> list[str]:
    problems = []
    valid, flow, scene = c[f"valid_{d}"], c[f"flow_{d}"], c[f"scene_flow_{d}"]
    for name, a in ((f"flow_{d}", flow), (f"scene_flow_{d}", scene)):
        if not np.isfinite(a[valid]).all():
            problems.append(f"{name} is not finite at {int((~np.isfinite(a[valid])).any(-1).sum())} valid pixels")
        if np.any(a[~hit] != 0):
            problems.append(f"{name} is not 0 at {int((a[~hit] != 0).any(-1).sum())} pixels where nothing was hit")
    if valid[edge].any():
        problems.append(f"valid_{d} is true at frame {edge}, which has no frame beyond it")
    both = valid & c[f"occluded_{d}"]
    if both.any():
        problems.append(f"valid_{d} and occluded_{d} both true at {int(both.sum())} pixels")
    return problems
