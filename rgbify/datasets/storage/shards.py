"""HDF5 shards: the storage of a built dataset (one chunk per sample, per-sample checksums, atomic publishing).

A shard file ``shards/shard-KKKKK.h5`` holds the samples with indices ``[k * shard_size, (k + 1) * shard_size)``
(the last shard of a dataset may hold fewer). Every per-sample field is one HDF5 dataset whose first axis is the
sample; its chunk shape is one whole sample, so reading sample ``j`` decompresses exactly one chunk per field.

Fields (N samples of H x W pixels; frames and units as in docs/conventions.md). Every field carries its own
description as HDF5 attributes (``FIELD_ATTRS``: ``description``, ``units``, ``frame``, ``invalid``, ``codec``,
``docs``), and the file carries the class table, so ``h5dump -A shard.h5`` tells a reader what each field is:

=================  ==================  =========================================================================
name               dtype, shape        meaning
=================  ==================  =========================================================================
index              int64 (N,)          sample index in the dataset (the scene is a function of config, seed, index)
seed               int64 (N,)          base seed of the dataset
rgb                uint8 (N,H,W,3)     sRGB render
depth              float32 (N,H,W)     planar z in metres, +inf where nothing is hit
normals            float32 (N,H,W,3)   unit normals in the OpenCV camera frame, 0 where nothing is hit
instance           int32 (N,H,W)       instance id, 0 = nothing hit
semantic           int32 (N,H,W)       class index (1-based into the class table), 0 = nothing / unlabeled
edge               bool (N,H,W)        RGB pixel mixes more than one surface
K                  float64 (N,3,3)     intrinsics, pixels
world_from_camera  float64 (N,4,4)     camera (OpenCV) to world, metres
spec               uint8 vlen (N,)     the scene spec, canonical JSON (rgbify.scenes.spec.spec_from_json), UTF-8,
                                       zlib-compressed: ``zlib.decompress(f["spec"][j].tobytes()).decode()``
instances          str (N,)            JSON list of {id, class_name, class_index, object_name, pixel_count}
timings            str (N,)            JSON {phase: seconds} of the render
checksum           str (N,)            sha256 of the sample's array bytes and strings (see sample_checksum)
=================  ==================  =========================================================================

File attributes: ``rgbify_format = "rgbify-shard"``, ``schema_version``, ``shard``, ``first_index``, ``samples``,
``config_hash`` (ties the shard to its dataset.json), ``width``, ``height``; and, in shards written since they were
added (readers of schema version 1 ignore them; older shards lack them): ``classes`` (the class table: semantic
index i + 1 names classes[i]), ``conventions_version`` and ``conventions`` (where the contract is written).

Every chunk also carries HDF5's Fletcher-32 checksum, so a flipped bit raises on read instead of returning
garbage. Compression: see IMAGE_FILTERS and STORAGE (chosen by measurement, docs/datasets.md).

Reading: ``ShardReader`` reads a deflated image field straight from its one chunk (its place in the file from
HDF5's chunk index, its bytes from a read-only memory map of the file) and inflates it with libdeflate (the
``deflate`` package), 3-10x faster than through HDF5's filter pipeline, whose deflate filter grows its output
buffer step by step. zlib's own Adler-32 of the inflated bytes is checked there in place of Fletcher-32 of the
stored ones; ``ShardReader(path, direct=False)`` (used by ``rgbify verify``) reads through HDF5 and checks
Fletcher-32 as well. Any other filter pipeline or chunking is read through HDF5. The small per-sample fields (K,
world_from_camera, index, seed) are read once per shard and kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import threading
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import deflate
import h5py
import numpy as np
from h5py import h5z

from rgbify import CONVENTIONS_VERSION
from rgbify.fileio import publishing

SHARD_FORMAT = "rgbify-shard"
SHARD_SCHEMA_VERSION = 1

ARRAY_FIELDS: dict[str, tuple[str, int]] = {
    # name: (dtype, number of trailing channel dims: -1 = fixed small shape)
    "rgb": ("uint8", 3),
    "depth": ("float32", 0),
    "normals": ("float32", 3),
    "instance": ("int32", 0),
    "semantic": ("int32", 0),
    "edge": ("bool", 0),
}
MATRIX_FIELDS: dict[str, tuple[int, int]] = {"K": (3, 3), "world_from_camera": (4, 4)}
STRING_FIELDS = ("spec", "instances", "timings")
SCALAR_FIELDS = ("index", "seed")
ALL_FIELDS = (*SCALAR_FIELDS, *ARRAY_FIELDS, *MATRIX_FIELDS, *STRING_FIELDS, "checksum")

CONVENTIONS_DOC = "docs/conventions.md in the rgbify source: the contract of units, frames and codecs"

_DOC2 = "docs/conventions.md section 2 (ground truth per rendered sample)"
FIELD_ATTRS: dict[str, dict[str, str]] = {
    "index": {"description": "sample index in the dataset: the scene is a function of (recipe config, seed, index)",
              "units": "none", "frame": "none", "invalid": "none", "codec": "int64", "docs": "docs/datasets.md"},
    "seed": {"description": "base seed of the dataset", "units": "none", "frame": "none", "invalid": "none",
             "codec": "int64", "docs": "docs/datasets.md"},
    "rgb": {"description": "the rendered image: anti-aliased, denoised, the spec's view transform and post-process",
            "units": "sRGB code values 0-255", "frame": "image: (H, W, RGB), row 0 at the top",
            "invalid": "none: every pixel is rendered", "codec": "uint8 sRGB", "docs": _DOC2},
    "depth": {"description": "planar depth z of the surface hit by the ray through the pixel centre",
              "units": "metres", "frame": "OpenCV camera: +z forward along the optical axis",
              "invalid": "+inf where nothing is hit", "codec": "float32, raw", "docs": _DOC2},
    "normals": {"description": "unit shading normal (interpolated, no bump map), oriented toward the camera",
                "units": "unit vector (x, y, z)", "frame": "OpenCV camera: +x right, +y down, +z forward",
                "invalid": "(0, 0, 0) where nothing is hit", "codec": "float32, raw", "docs": _DOC2},
    "instance": {"description": "instance id of the surface at the pixel centre (walls and floors too)",
                 "units": "id (see the field instances)", "frame": "image: (H, W), row 0 at the top",
                 "invalid": "0 where nothing is hit", "codec": "int32", "docs": _DOC2},
    "semantic": {"description": "class index of the instance at the pixel centre",
                 "units": "class index: i + 1 names the file attribute classes[i]",
                 "frame": "image: (H, W), row 0 at the top", "invalid": "0 where nothing is hit or unlabeled",
                 "codec": "int32", "docs": _DOC2},
    "edge": {"description": "true where the anti-aliased RGB pixel mixes more than one surface",
             "units": "bool", "frame": "image: (H, W), row 0 at the top", "invalid": "none", "codec": "bool",
             "docs": _DOC2},
    "K": {"description": "3x3 pinhole intrinsics; a camera point (x, y, z) projects to (fx x/z + cx, fy y/z + cy)",
          "units": "pixels", "frame": "OpenCV pixels: the centre of pixel (row i, column j) is (u, v) = (j, i)",
          "invalid": "none", "codec": "float64", "docs": "docs/conventions.md section 1"},
    "world_from_camera": {"description": "4x4 rigid transform mapping camera-frame points to world points",
                          "units": "metres", "frame": "OpenCV camera -> world (Blender's: right-handed, +Z up)",
                          "invalid": "none", "codec": "float64", "docs": "docs/conventions.md section 1"},
    "spec": {"description": "the scene spec (rgbify.scenes.spec.spec_from_json reads it)", "units": "none",
             "frame": "world (Blender's: right-handed, +Z up), metres", "invalid": "none",
             "codec": "zlib-compressed UTF-8 canonical JSON: zlib.decompress(f['spec'][j].tobytes()).decode()",
             "docs": "docs/scenes.md"},
    "instances": {"description": "instance table: JSON list of {id, class_name, class_index, object_name, "
                  "pixel_count}", "units": "none", "frame": "none", "invalid": "none", "codec": "UTF-8 JSON string",
                  "docs": _DOC2},
    "timings": {"description": "render timings per phase", "units": "seconds", "frame": "none", "invalid": "none",
                "codec": "UTF-8 JSON string {phase: seconds}", "docs": "docs/rendering.md"},
    "checksum": {"description": "sha256 over the sample's fields (rgbify.datasets.storage.shards.sample_checksum)",
                 "units": "none", "frame": "none", "invalid": "none", "codec": "hex string",
                 "docs": "docs/datasets.md"},
}
"""The attributes each field's HDF5 dataset carries (``h5dump -A`` shows them): what a reader needs without rgbify.
``docs`` names the page of rgbify's documentation that holds the definition."""


def deflated(level: int, shuffle: bool = False) -> dict[str, Any]:
    """h5py filter options: gzip ``level`` (0 = stored blocks: uncompressed, still with zlib's Adler-32), after
    HDF5's byte shuffle if ``shuffle``, plus Fletcher-32."""
    return {"compression": "gzip", "compression_opts": level, "shuffle": shuffle, "fletcher32": True}


IMAGE_FILTERS: dict[str, dict[str, Any]] = {
    "rgb": deflated(6), "depth": deflated(6, shuffle=True), "normals": deflated(1), "instance": deflated(1, True),
    "semantic": deflated(1, True), "edge": deflated(6)}
"""Filters per image field, chosen by measurement (benchmarks/bench_loader.py --compression, docs/datasets.md):
level 6 makes RGB 15 % and depth 6 % smaller than level 1 and inflates them a little faster. Normals stay at level 1
and unshuffled: the float32 normals of a flat surface repeat one 12-byte value, which level 1 finds as long matches
that inflate 6x faster than level 6's. Instance and semantic ids inflate faster at level 1 (0.01 MB more)."""

STORAGE: dict[str, dict[str, dict[str, Any]]] = {
    "compact": IMAGE_FILTERS,
    "fast": {**IMAGE_FILTERS, "rgb": deflated(0)},
}
"""``rgbify build --storage``: "compact" (the default) or "fast", which stores RGB uncompressed (+0.5 MB per
512-px sample) because inflating it is a quarter of a depth item's loading time. Both read the same way."""

_STR = h5py.string_dtype("utf-8")
_BYTES = h5py.vlen_dtype(np.dtype("uint8"))
ZLIB_FIELDS = ("spec",)
"""String fields stored zlib-compressed (a scene spec with inline meshes is 100+ kB of JSON; HDF5 filters do not
apply to variable-length strings)."""


_OPEN_LOCK = threading.Lock()


class ShardError(ValueError):
    """A shard file is missing, not ours, truncated or corrupt; the message names the file (and sample)."""


class NotHDF5(ShardError):
    """A file where a shard should be that HDF5 cannot open at all (truncated, overwritten, or not HDF5)."""


class ForeignShard(ShardError):
    """A file where a shard should be that is not one of this dataset's: an HDF5 file that is not an rgbify shard,
    or another dataset's shard. Never deleted: the build refuses and names it."""


def shard_range(k: int, shard_size: int, count: int) -> range:
    """Sample indices that shard ``k`` holds in a dataset of ``count`` samples."""
    return range(k * shard_size, min((k + 1) * shard_size, count))


def num_shards(count: int, shard_size: int) -> int:
    return -(-count // shard_size)


def sample_checksum(sample: Mapping[str, Any]) -> str:
    """sha256 over the sample's fields in a fixed order (array bytes in C order, strings as UTF-8)."""
    h = hashlib.sha256()
    for name in (*SCALAR_FIELDS, *ARRAY_FIELDS, *MATRIX_FIELDS):
        a = np.ascontiguousarray(sample[name])
        h.update(name.encode())
        h.update(a.tobytes())
    for name in STRING_FIELDS:
        h.update(name.encode())
        h.update(_as_str(sample[name]).encode())
    return h.hexdigest()


def _as_str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return str(v.item() if v.ndim == 0 else v)
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def normalize_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A sample dict with every field in its storage dtype (strings as str); raises ShardError on bad shapes."""
    out: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        out[name] = np.int64(sample[name])
    rgb = np.asarray(sample["rgb"])
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ShardError(f"sample {out['index']}: rgb has shape {rgb.shape}, expected (H, W, 3)")
    h, w = rgb.shape[:2]
    for name, (dtype, ch) in ARRAY_FIELDS.items():
        a = np.asarray(sample[name])
        shape = (h, w, ch) if ch else (h, w)
        if a.shape != shape:
            raise ShardError(f"sample {out['index']}: {name} has shape {a.shape}, expected {shape}")
        out[name] = a.astype(dtype, copy=False)
    for name, shape in MATRIX_FIELDS.items():
        a = np.asarray(sample[name], dtype=np.float64)
        if a.shape != shape:
            raise ShardError(f"sample {out['index']}: {name} has shape {a.shape}, expected {shape}")
        out[name] = a
    for name in STRING_FIELDS:
        out[name] = _as_str(sample[name])
    out["checksum"] = sample_checksum(out)
    return out


# --- per-sample work files (resume granularity: one sample) -------------------------------------------------


def write_sample_file(path: Path, sample: Mapping[str, Any]) -> None:
    """Write one finished sample as an uncompressed .npz, atomically (temporary name, fsync, rename)."""
    s = normalize_sample(sample)
    arrays = {k: (np.array(v) if not isinstance(v, str) else np.frombuffer(v.encode(), np.uint8)) for k, v in s.items()}
    with publishing(path) as tmp, open(tmp, "wb") as f:
        _savez(f, arrays)


def _savez(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez(f, **arrays)`` (the same file: an uncompressed zip of .npy members), with the zip closed on every
    path: np.savez leaves it open when a write fails (a full disk), and its ``__del__`` then prints a second
    traceback ("Exception ignored in ZipFile.__del__") after the error was reported."""
    zf = zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)
        zf.close()
    except BaseException:
        with contextlib.suppress(Exception):
            zf.close()  # writes what it can; the original error is the one raised
        zf.fp = None  # nothing left for ZipFile.__del__ to flush
        raise


def read_sample_file(path: Path) -> dict[str, Any]:
    """Read a work file back; raises ShardError if it is truncated or its checksum does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            s = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise ShardError(f"{path}: unreadable sample file ({type(e).__name__}: {e})") from None
    missing = [f for f in ALL_FIELDS if f not in s]
    if missing:
        raise ShardError(f"{path}: sample file lacks {missing}")
    strings = (*STRING_FIELDS, "checksum")
    out = {k: (v.tobytes().decode() if k in strings else (v[()] if v.ndim == 0 else v)) for k, v in s.items()}
    if sample_checksum(out) != out["checksum"]:
        raise ShardError(f"{path}: checksum mismatch")
    return out


# --- shard files -------------------------------------------------------------------------------------------


def write_shard(path: Path, samples: Iterable[Mapping[str, Any]], *, shard: int, first_index: int, count: int,
                config_hash: str, filters: Mapping[str, Mapping[str, Any]] | None = None,
                classes: Sequence[str] | None = None) -> str:
    """Write ``count`` samples (indices ``first_index, first_index + 1, ...`` in order) into a new shard file at
    ``path``, atomically; return its sha256. Samples are streamed: one sample's arrays are in memory at a time, and
    the compressed shard (about 0.7 MB per 512-px sample). ``classes``: the dataset's class table, stored as the file
    attribute ``classes`` (the build and repack always give it; None writes no class table).

    HDF5 builds the file in memory (its core driver, no backing store); its bytes are then written to ``path.tmp``
    by Python, fsynced and renamed. So a full disk is one clean OSError from that write: HDF5 itself, when a write
    to its file fails, raises from its close and then crashes the process (measured: a segmentation fault under a
    file-size limit). On any error the temporary file is removed and ``path`` is untouched. ``filters``: h5py filter
    options per image field (default IMAGE_FILTERS).
    """
    comp = {name: dict(v) for name, v in (IMAGE_FILTERS if filters is None else filters).items()}
    path = Path(path)
    image = _write_h5(path, samples, shard=shard, first_index=first_index, n=count, config_hash=config_hash,
                      comp=comp, classes=None if classes is None else list(classes))
    with publishing(path) as tmp, open(tmp, "wb") as f:
        f.write(image)
    return hashlib.sha256(image).hexdigest()


def _write_h5(path: Path, samples: Iterable[Mapping[str, Any]], *, shard: int, first_index: int, n: int,
              config_hash: str, comp: dict[str, dict[str, Any]], classes: list[str] | None) -> bytes:
    """The bytes of the shard file (built in memory; ``path`` only names it in messages)."""
    if n < 1:
        raise ShardError(f"{path}: refusing to write an empty shard")
    with h5py.File(f"{path}.{uuid.uuid4().hex}", "w", driver="core", backing_store=False,
                   libver=("v110", "latest")) as f:
        strings: dict[str, list[str]] = {name: [] for name in (*STRING_FIELDS, "checksum")}
        scalars: dict[str, list[int]] = {name: [] for name in SCALAR_FIELDS}
        j = -1
        for j, raw in enumerate(samples):
            s = normalize_sample(raw)
            if j >= n or int(s["index"]) != first_index + j:
                raise ShardError(f"{path}: sample {s['index']} at position {j}, expected {first_index + j} "
                                 f"(< {first_index + n})")
            if j == 0:
                h, w = s["rgb"].shape[:2]
                _create_datasets(f, n, h, w, comp)
                f.attrs.update({"rgbify_format": SHARD_FORMAT, "schema_version": SHARD_SCHEMA_VERSION,
                                "shard": shard, "first_index": first_index, "samples": n,
                                "config_hash": config_hash, "width": w, "height": h,
                                "conventions_version": CONVENTIONS_VERSION, "conventions": CONVENTIONS_DOC})
                if classes is not None:
                    f.attrs.create("classes", classes, dtype=_STR)
            for name in (*ARRAY_FIELDS, *MATRIX_FIELDS):
                f[name][j] = s[name]
            for name in strings:
                strings[name].append(s[name])
            for name in scalars:
                scalars[name].append(int(s[name]))
        if j != n - 1:
            raise ShardError(f"{path}: got {j + 1} samples, expected {n}")
        for name, vals in scalars.items():
            f.create_dataset(name, data=np.array(vals, dtype=np.int64))
        for name, vals in strings.items():
            if name in ZLIB_FIELDS:
                ds = f.create_dataset(name, shape=(len(vals),), dtype=_BYTES)
                for i, v in enumerate(vals):
                    ds[i] = np.frombuffer(zlib.compress(v.encode(), 6), np.uint8)
                ds.attrs["encoding"] = "zlib+utf-8"
            else:
                f.create_dataset(name, data=vals, dtype=_STR)
        for name in ALL_FIELDS:
            f[name].attrs.update(FIELD_ATTRS[name])
        f.flush()
        return f.id.get_file_image()


def _create_datasets(f: h5py.File, n: int, h: int, w: int, comp: dict[str, dict[str, Any]]) -> None:
    for name, (dtype, ch) in ARRAY_FIELDS.items():
        shape = (h, w, ch) if ch else (h, w)
        f.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(1, *shape), **comp[name])
    for name, shape in MATRIX_FIELDS.items():
        f.create_dataset(name, shape=(n, *shape), dtype="float64", chunks=(1, *shape), fletcher32=True)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_files(paths: Iterable[Path]) -> dict[Path, str]:
    """{path: sha256} of several files, hashed concurrently (file reads and hashlib release the GIL, so a resume
    that checks thousands of shards is bound by the disk, not by one core)."""
    paths = list(paths)
    with ThreadPoolExecutor(max(1, min(16, os.cpu_count() or 1, len(paths)))) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths), strict=True))


class ShardReader:
    """Read samples from one shard file. Opens lazily, and again in a forked or spawned process (safe in
    DataLoader worker processes: an HDF5 handle is never shared across a fork). ``direct``: read deflated image
    fields straight from their chunks (see the module's docstring); False reads everything through HDF5."""

    def __init__(self, path: str | Path, direct: bool = True):
        self.path = Path(path)
        self.direct = direct
        self._f: h5py.File | None = None
        self._map: mmap.mmap | None = None  # the file's bytes, for direct chunk reads
        self._ds: dict[str, tuple[h5py.Dataset, _Plan | None]] = {}
        self._whole: dict[str, np.ndarray] = {}  # small fields (K, world_from_camera, index, seed), read once
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "direct": self.direct, "_f": None, "_map": None, "_ds": {}, "_whole": {}, "_pid": 0}

    @property
    def file(self) -> h5py.File:
        if self._f is None or self._pid != os.getpid():
            with _OPEN_LOCK:  # threads of one loader share readers: open once
                if self._f is None or self._pid != os.getpid():
                    self._ds, self._whole = {}, {}
                    self._f = open_shard(self.path)
                    if self.direct:
                        with open(self.path, "rb") as fh:
                            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                    self._pid = os.getpid()
        return self._f

    def close(self) -> None:
        if self._f is not None:
            self._ds.clear()
            self._whole.clear()
            self._f.close()
            self._f = None
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return _attr_int(self.file, "samples", self.path)

    @property
    def first_index(self) -> int:
        return _attr_int(self.file, "first_index", self.path)

    def _where(self, j: int) -> str:
        """Sample j's global index for a message (its position in the shard when the header is unreadable)."""
        try:
            return str(self.first_index + j)
        except ShardError:
            return f"at position {j}"

    def read(self, j: int, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """Sample ``j`` of this shard (0-based within the shard) as a dict of numpy arrays and strings."""
        f = self.file
        out: dict[str, Any] = {}
        for name in ALL_FIELDS if fields is None else fields:
            try:
                ds, plan = self._ds.get(name) or self._open(f, name)
                if self.direct and (name in MATRIX_FIELDS or name in SCALAR_FIELDS):  # ~0.1 ms per h5py read
                    if name not in self._whole:
                        self._whole[name] = ds[()]
                    out[name] = self._whole[name][j].copy()
                    continue
                v = ds[j] if plan is None else _read_direct(ds, j, plan, self._map)
                if name in ZLIB_FIELDS:
                    v = zlib.decompress(v.tobytes())
            except Exception as e:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... on damage
                raise ShardError(f"{self.path}: sample {self._where(j)}: cannot read {name!r} "
                                 f"({_what(e)})") from None
            out[name] = v.decode() if isinstance(v, bytes) else v
        return out

    def _open(self, f: h5py.File, name: str) -> tuple[h5py.Dataset, _Plan | None]:
        ds = f[name]
        self._ds[name] = ds, (_direct_plan(ds) if self.direct else None)
        return self._ds[name]


class _Plan(NamedTuple):
    """How to read a sample of one dataset straight from its chunk (h5py's dataset properties are slow to ask)."""

    shuffled: bool
    trailer: int  # bytes of Fletcher-32 checksum after the data
    dtype: np.dtype
    shape: tuple[int, ...]  # one sample's
    nbytes: int


def _direct_plan(ds: h5py.Dataset) -> _Plan | None:
    """How to read sample ``j`` of ``ds`` straight from its chunk, if it can be: one chunk per sample, a native
    numeric dtype, and the filters [shuffle,] deflate[, fletcher32] in that order; else None (read through HDF5)."""
    if ds.chunks != (1, *ds.shape[1:]) or ds.dtype.kind not in "biuf" or not ds.dtype.isnative:
        return None
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    shuffled = codes[:1] == [h5z.FILTER_SHUFFLE]
    fletcher = codes[-1:] == [h5z.FILTER_FLETCHER32]
    if codes[shuffled : len(codes) - fletcher] != [h5z.FILTER_DEFLATE]:
        return None
    shape = tuple(ds.shape[1:])
    nbytes = ds.dtype.itemsize * int(np.prod(shape))
    return _Plan(shuffled and ds.dtype.itemsize > 1, 4 * fletcher, ds.dtype, shape, nbytes)


def _read_direct(ds: h5py.Dataset, j: int, plan: _Plan, file_map: mmap.mmap) -> np.ndarray:
    """Sample ``j`` of a dataset that :func:`_direct_plan` accepted: its chunk's bytes in ``file_map`` (the shard
    file mapped), less the Fletcher-32 trailer, inflated by libdeflate (which checks zlib's Adler-32), un-shuffled
    if they were shuffled. A memory map instead of ``read_direct_chunk`` saves copying the chunk (0.1 ms a field at
    512 px); a chunk past the end of a truncated file fails to inflate."""
    from rgbify.datasets.storage.kernels import unshuffle  # numba: loaded on the first read

    info = ds.id.get_chunk_info_by_coord((j, *(0,) * len(plan.shape)))
    if info.byte_offset is None:
        raise OSError(f"chunk {j} was never written")
    if info.filter_mask:  # a filter was skipped for this chunk: let HDF5 decode it
        return ds[j]
    start, stop = info.byte_offset, info.byte_offset + info.size - plan.trailer
    with memoryview(file_map) as view:
        data = deflate.zlib_decompress(view[start:stop], plan.nbytes)
    if len(data) != plan.nbytes:
        raise OSError(f"chunk {j} inflates to {len(data)} bytes, not {plan.nbytes}")
    buf = np.frombuffer(data, np.uint8)
    if plan.shuffled:
        buf = unshuffle(buf, plan.dtype.itemsize, np.empty(plan.nbytes, np.uint8))
    return buf.view(plan.dtype).reshape(plan.shape)


def _what(e: BaseException) -> str:
    """An exception as ``Type: message`` on one line."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def nearly_equal(a: str, b: str) -> bool:
    """Strings of one length that differ in at most two characters: a damaged value (a flipped byte or two), not
    another dataset's."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 2


def _attr_int(f: h5py.File, name: str, path: Path) -> int:
    try:
        return int(f.attrs[name])
    except Exception as e:  # noqa: BLE001 - a damaged attribute raises KeyError, OSError, RuntimeError, ...
        raise ShardError(f"{path}: header attribute {name!r} unreadable ({_what(e)})") from None


def open_shard(path: Path) -> h5py.File:
    """Open a shard read-only; raise ShardError if it is not a readable HDF5 file or its header is damaged,
    ForeignShard if it is an HDF5 file that is not an rgbify shard."""
    try:
        f = h5py.File(path, "r")
    except Exception as e:  # noqa: BLE001 - OSError, ValueError; other types on a damaged superblock
        raise NotHDF5(f"{path}: not a readable HDF5 file ({_what(e)})") from None
    try:
        fmt = f.attrs.get("rgbify_format")
        version = f.attrs.get("schema_version", -1)
        ours = fmt == SHARD_FORMAT
        if not ours and fmt is None:
            ours = any(name in f for name in (*ARRAY_FIELDS, "checksum"))  # a shard whose attribute was damaged
    except Exception as e:  # noqa: BLE001
        f.close()
        raise ShardError(f"{path}: HDF5 header unreadable ({_what(e)})") from None
    if fmt != SHARD_FORMAT:
        f.close()
        if ours or fmt is not None:
            raise ShardError(f"{path}: damaged shard header (rgbify_format is {fmt!r})")
        raise ForeignShard(f"{path}: an HDF5 file that is not an rgbify shard (no rgbify_format attribute)")
    try:
        version = int(version)
    except (TypeError, ValueError):
        version = None
    if version != SHARD_SCHEMA_VERSION:
        f.close()
        raise ShardError(f"{path}: shard schema_version {version} is not {SHARD_SCHEMA_VERSION}; rebuild the "
                         "dataset with the rgbify that made it, or build it anew")
    return f


def check_header(f: h5py.File, name: str, config_hash: str, samples: range, prefix: bool = False) -> int:
    """The number of samples of the open shard ``f``, once its header says it belongs where it lies: to the dataset
    whose config hash is ``config_hash``, holding the sample indices ``samples`` (with ``prefix``: a non-empty
    prefix of them, as a short last shard that a larger count extends does). Raises ShardError naming ``name``
    otherwise (ForeignShard when it is another dataset's). The one check of a shard's header: the build's resume
    scan and its publishing step, and ``rgbify verify``, use it."""
    try:
        theirs = f.attrs.get("config_hash")
        first, n = int(f.attrs.get("first_index", -1)), int(f.attrs.get("samples", -1))
    except Exception as e:  # noqa: BLE001 - a damaged attribute
        raise ShardError(f"{name}: header unreadable ({_what(e)})") from None
    if theirs != config_hash:
        if isinstance(theirs, str) and nearly_equal(theirs, config_hash):
            raise ShardError(f"{name}: damaged header (its config_hash is off by a character or two)")
        raise ForeignShard(f"{name}: belongs to another dataset (config_hash differs)")
    if first != samples.start or not (1 <= n <= len(samples) if prefix else n == len(samples)):
        want = ("a prefix of " if prefix else "") + f"[{samples.start}, {samples.stop})"
        raise ShardError(f"{name}: holds samples [{first}, {first + n}), expected {want}")
    return n


def check_shard(path: Path, config_hash: str, samples: range, prefix: bool = False) -> int:
    """:func:`check_header` of the shard file at ``path``, then every sample's index and checksum (each sample read
    whole through HDF5, so that every chunk's Fletcher-32 is checked too, as ``rgbify verify`` does); returns its
    number of samples or raises ShardError (ForeignShard for an HDF5 file that is not a shard)."""
    with open_shard(path) as f:
        n = check_header(f, str(path), config_hash, samples, prefix)
    with ShardReader(path, direct=False) as r:
        for j in range(n):
            s = r.read(j)
            try:
                sound = int(s["index"]) == samples.start + j and sample_checksum(s) == s["checksum"]
            except Exception as e:  # noqa: BLE001 - a damaged field of another shape or type
                raise ShardError(f"{path}: sample {samples.start + j}: unreadable ({_what(e)})") from None
            if not sound:
                raise ShardError(f"{path}: sample {samples.start + j}: checksum mismatch")
    return n
