"""Depth and normals codecs: measurement <-> uint8 RGB target (docs/codecs.md, CONVENTIONS section 3).

Every codec is a small frozen object with ``encode``, ``decode`` and ``spec()`` (a JSON-serialisable dict that
:func:`get_codec` turns back into an equal codec). Arrays:

- depth_m: float (H, W), planar z in metres, +inf where nothing is hit.
- normals_cam: float (H, W, 3), unit normals in the OpenCV camera frame (+x right, +y down, +z forward),
  (0, 0, 0) where nothing is hit.
- rgb: uint8 (H, W, 3) target image.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from rgbify.encode.errors import CodecInputError

COLORMAPS = ("viridis", "plasma", "inferno", "gray")
"""Colormap tables shipped in rgbify/data/colormaps.npz (matplotlib 3.11.2's 256-entry tables)."""
ROBUST_OPTIONS = (None, "median3", "median5")
_NO_MASK = np.ones((1, 1), dtype=np.bool_)


# ----------------------------------------------------------------------------------------------- input checks
def _describe(a: Any) -> str:
    a = np.asarray(a) if not isinstance(a, np.ndarray) else a
    return f"{a.dtype} array of shape {a.shape}"


def check_depth(depth_m: Any, valid: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate shapes and dtypes: depth float (H, W), valid bool (H, W) or None. Values are checked by kernels."""
    if not isinstance(depth_m, np.ndarray) or depth_m.ndim != 2 or depth_m.dtype.kind != "f":
        raise CodecInputError(
            f"depth_m must be a float32 array of shape (H, W) in metres, got a {_describe(depth_m)}; "
            "convert with np.asarray(depth, dtype=np.float32)"
        )
    depth_m = np.ascontiguousarray(depth_m)
    if depth_m.dtype not in (np.float32, np.float64):
        depth_m = depth_m.astype(np.float32)
    if valid is None:
        return depth_m, None
    if not isinstance(valid, np.ndarray) or valid.dtype != np.bool_ or valid.shape != depth_m.shape:
        raise CodecInputError(
            f"valid must be a bool array of shape {depth_m.shape} (H, W) like depth_m, got a {_describe(valid)}"
        )
    return depth_m, np.ascontiguousarray(valid)


def check_rgb(rgb: Any, what: str = "rgb") -> np.ndarray:
    """Validate a target image: uint8 (H, W, 3). Any values are accepted."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CodecInputError(f"{what} must be a uint8 array of shape (H, W, 3), got a {_describe(rgb)}")
    return np.ascontiguousarray(rgb)


def raise_bad_values(nbad: int, first: int, shape: tuple[int, ...], values: np.ndarray, what: str, fix: str) -> None:
    if nbad:
        i, j = divmod(first, shape[1])
        raise CodecInputError(
            f"{what} has {nbad} pixel(s) that are {fix[0]} (first at row {i}, column {j}: {values[i, j]}); {fix[1]}"
        )


_DEPTH_FIX = ("NaN or negative", "pass valid= (False there) to encode them as 'nothing hit', or fix the depth")


# ----------------------------------------------------------------------------------------------- depth codecs
@dataclass(frozen=True, kw_only=True)
class DepthCodec:
    """Base of the depth codecs. ``robust="median3"`` (or ``"median5"``) replaces each decoded depth by the
    median of its 3x3 (5x5) neighbourhood: a decoder option against the isolated large errors that noise causes
    under hilbert24 (encoding is unchanged)."""

    robust: str | None = None
    name: ClassVar[str] = ""
    metric: ClassVar[bool] = True
    """True: decode gives metres. False (depth/affine): decode gives relative depth, which only an affine
    alignment to ground truth (rgbify.train.metrics.depth_metrics_affine) turns into metres."""

    def __post_init__(self) -> None:
        if self.robust not in ROBUST_OPTIONS:
            raise CodecInputError(f"robust={self.robust!r} is not a decoder option; use one of {ROBUST_OPTIONS}")

    def encode(self, depth_m: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """depth_m float (H, W) metres (+inf = nothing hit) -> uint8 (H, W, 3). ``valid`` False marks pixels to
        encode as nothing hit. NaN or negative depth at valid pixels raises CodecInputError."""
        depth_m, valid = check_depth(depth_m, valid)
        out = np.empty(depth_m.shape + (3,), dtype=np.uint8)
        use_valid = valid is not None
        nbad, first = self._encode(depth_m, valid if use_valid else _NO_MASK, use_valid, out)
        raise_bad_values(nbad, first, depth_m.shape, depth_m, "depth_m", _DEPTH_FIX)
        return out

    def decode(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> float32 (H, W) metres. Never raises on pixel values."""
        rgb = check_rgb(rgb)
        out = np.empty(rgb.shape[:2], dtype=np.float32)
        self._decode(rgb, out)
        if self.robust is not None:
            from scipy.ndimage import median_filter

            out = median_filter(out, size={"median3": 3, "median5": 5}[self.robust], mode="nearest")
        return out

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description; ``get_codec(codec.spec()) == codec``."""
        s: dict[str, Any] = {"name": self.name}
        s.update(self._params())
        if self.robust is not None:
            s["robust"] = self.robust
        return s

    def _params(self) -> dict[str, Any]:
        return {}

    def _encode(self, depth_m, valid, use_valid, out):  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, rgb, out):  # pragma: no cover - abstract
        raise NotImplementedError


def walk_value(depth_m: np.ndarray | float) -> np.ndarray:
    """f(d) = 1 - (1 + d/10)^-2 (Barron power transform, lambda = -3, c = 10/3): [0, inf] -> [0, 1]."""
    d = np.asarray(depth_m, dtype=np.float64)
    with np.errstate(over="ignore"):
        return np.where(np.isposinf(d), 1.0, 1.0 - 1.0 / (1.0 + d / 10.0) ** 2)


def walk_depth(f: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`walk_value`; f >= 1 gives +inf."""
    f = np.asarray(f, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f >= 1.0, np.inf, 10.0 * (1.0 / np.sqrt(np.maximum(1.0 - f, 0.0)) - 1.0))


@dataclass(frozen=True, kw_only=True)
class CubeWalk(DepthCodec):
    """depth/cubewalk (paper): f(d) walked along the RGB-cube edges black-red-yellow-green-cyan-blue-magenta-white.

    1785 codes (7 edges x 255 steps); white = +inf. Depths beyond about 587 m round to white.
    """

    name: ClassVar[str] = "depth/cubewalk"
    levels: ClassVar[int] = 7 * 255 + 1

    def _encode(self, depth_m, valid, use_valid, out):
        from rgbify.encode import kernels

        return kernels.cubewalk_encode(depth_m, valid, use_valid, out)

    def _decode(self, rgb, out):
        from rgbify.encode import kernels

        kernels.cubewalk_decode(rgb, out)

    def step_m(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Depth difference of one 8-bit step of the code at ``depth_m`` (to the next code)."""
        f = walk_value(depth_m)
        return walk_depth(np.minimum(f + 1.0 / 1785.0, 1.0)) - np.asarray(depth_m, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class Hilbert24(DepthCodec):
    """depth/hilbert24 (summary): q = round((min(d, d_max)/d_max)^gamma (2^24 - 1)) as the point q of Skilling's
    order-8 3-D Hilbert curve, (x0, x1, x2) = (R, G, B). q = 2^24 - 1 (d >= d_max or nothing hit) decodes to d_max.
    """

    d_max: float = 100.0
    gamma: float = 0.5
    name: ClassVar[str] = "depth/hilbert24"
    levels: ClassVar[int] = 1 << 24
    block_levels: ClassVar[int] = 4  # = kernels.HILBERT_BLOCK_LEVELS (not imported here: numba loads lazily)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("d_max", "gamma"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v > 0):
                raise CodecInputError(f"depth/hilbert24 {key} must be a positive finite number, got {v!r}")
        object.__setattr__(self, "d_max", float(self.d_max))
        object.__setattr__(self, "gamma", float(self.gamma))

    def _params(self) -> dict[str, Any]:
        return {"d_max": self.d_max, "gamma": self.gamma}

    def _encode(self, depth_m, valid, use_valid, out):
        from rgbify.encode import hilbert, kernels

        coords, _, nxt = hilbert.block_tables(self.block_levels)
        return kernels.hilbert_encode(depth_m, valid, use_valid, self.d_max, self.gamma, coords, nxt, out)

    def _decode(self, rgb, out):
        from rgbify.encode import hilbert, kernels

        _, rank, nxt = hilbert.block_tables(self.block_levels)
        kernels.hilbert_decode(rgb, self.d_max, self.gamma, rank, nxt, out)

    def index(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> uint32 (H, W) Hilbert indices q."""
        from rgbify.encode import hilbert, kernels

        rgb = check_rgb(rgb)
        _, rank, nxt = hilbert.block_tables(self.block_levels)
        out = np.empty(rgb.shape[:2], dtype=np.uint32)
        kernels.hilbert_index(rgb, rank, nxt, out)
        return out

    def step_m(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Depth difference of one index step at ``depth_m`` (below d_max)."""
        d = np.minimum(np.asarray(depth_m, dtype=np.float64), self.d_max)
        u = (d / self.d_max) ** self.gamma
        u1 = np.minimum(u + 1.0 / ((1 << 24) - 1), 1.0)
        return self.d_max * u1 ** (1.0 / self.gamma) - d


@functools.cache
def colormap_table(name: str) -> np.ndarray:
    """The 256x3 uint8 table of colormap ``name`` (rounded from matplotlib's float table)."""
    if name not in COLORMAPS:
        raise CodecInputError(f"unknown colormap {name!r}; use one of {', '.join(COLORMAPS)}")
    with resources.files("rgbify").joinpath("data/colormaps.npz").open("rb") as fh:
        table = np.load(fh)[name]
    lut = np.floor(table * 255.0 + 0.5).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def run_centres(lut: np.ndarray) -> np.ndarray:
    """For each table entry, the centre index of the run of equal consecutive entries it belongs to."""
    lut = lut.astype(np.int64)
    new_run = np.concatenate([[True], (np.diff(lut, axis=0) != 0).any(axis=1)])
    run = np.cumsum(new_run) - 1
    first = np.flatnonzero(new_run)
    last = np.concatenate([first[1:] - 1, [len(lut) - 1]])
    return ((first + last) / 2.0)[run]


CELL_SHIFT = 3
"""Colormap decode looks up candidates in cells of 2**CELL_SHIFT levels per channel (32**3 cells)."""


@functools.cache
def colormap_cells(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per colour cell (CELL_SHIFT), the table entries that can be nearest to a colour in the cell (CSR arrays).

    Entry e can be nearest to some point of the cell only if its smallest squared distance to the cell is at
    most the smallest, over all entries, of the largest squared distance to the cell (exact integers).
    """
    lut = colormap_table(name).astype(np.int64)
    n_cells = 256 >> CELL_SHIFT
    lo = np.arange(n_cells) << CELL_SHIFT
    hi = lo + (1 << CELL_SHIFT) - 1
    # per axis: (cell coordinate, entry) -> min / max squared distance
    mins = [np.maximum(np.maximum(lo[:, None] - lut[None, :, a], lut[None, :, a] - hi[:, None]), 0) ** 2
            for a in range(3)]
    maxs = [np.maximum(np.abs(lo[:, None] - lut[None, :, a]), np.abs(hi[:, None] - lut[None, :, a])) ** 2
            for a in range(3)]
    keep = []
    for r in range(n_cells):  # one red slice at a time keeps memory small
        dmin = mins[0][r][None, None, :] + mins[1][:, None, :] + mins[2][None, :, :]
        dmax = maxs[0][r][None, None, :] + maxs[1][:, None, :] + maxs[2][None, :, :]
        keep.append((dmin <= dmax.min(axis=-1, keepdims=True)).reshape(n_cells * n_cells, -1))
    keep_all = np.concatenate(keep)
    start = np.concatenate([[0], np.cumsum(keep_all.sum(axis=1))]).astype(np.int64)
    entries = np.nonzero(keep_all)[1].astype(np.int64)
    return start, entries


@dataclass(frozen=True, kw_only=True)
class Colormap(DepthCodec):
    """depth/colormap:NAME (paper's colormap augmentation): lut[round(255 f(d))]; decode = nearest table entry,
    refined along the adjacent table segments. Last entry = +inf."""

    cmap: str = "viridis"
    levels: ClassVar[int] = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        colormap_table(self.cmap)  # validates the name

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"depth/colormap:{self.cmap}"

    def _encode(self, depth_m, valid, use_valid, out):
        from rgbify.encode import kernels

        return kernels.colormap_encode(depth_m, valid, use_valid, colormap_table(self.cmap), out)

    def _decode(self, rgb, out):
        from rgbify.encode import kernels

        start, entries = colormap_cells(self.cmap)
        lut = colormap_table(self.cmap)
        kernels.colormap_decode(rgb, lut.astype(np.int64), run_centres(lut), start, entries, CELL_SHIFT, out)

    def step_m(self, depth_m: np.ndarray | float) -> np.ndarray:
        f = walk_value(depth_m)
        return walk_depth(np.minimum(f + 1.0 / 255.0, 1.0)) - np.asarray(depth_m, dtype=np.float64)


AFFINE_PERCENTILES = (2.0, 98.0)
"""depth/affine stretches depth between these percentiles of the image's depths (Marigold's)."""


def affine_range(depth_m: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """(lo, hi): the AFFINE_PERCENTILES of the finite, non-negative depths (at ``valid`` pixels), linear
    interpolation; (0, 0) when there are none."""
    d = np.asarray(depth_m, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(d) & (d >= 0)
    if valid is not None:
        keep &= valid
    if not keep.any():
        return 0.0, 0.0
    lo, hi = np.percentile(d[keep], AFFINE_PERCENTILES)
    return float(lo), float(hi)


@dataclass(frozen=True, kw_only=True)
class Affine(DepthCodec):
    """depth/affine (Marigold's target, in 8-bit grey): each image's depth stretched between its own 2nd and 98th
    percentiles, lo and hi, grey = round(255 clip((d - lo) / (hi - lo), 0, 1)) in all three channels; nothing hit is
    white. Decode gives relative depth in [0, 1] (the mean of the channels / 255), not metres: lo and hi are not in
    the target or the prompt, so predictions are scored after an affine alignment to ground truth only."""

    name: ClassVar[str] = "depth/affine"
    metric: ClassVar[bool] = False
    levels: ClassVar[int] = 256

    def _encode(self, depth_m, valid, use_valid, out):
        from rgbify.encode import kernels

        lo, hi = affine_range(depth_m, valid if use_valid else None)
        return kernels.affine_encode(depth_m, valid, use_valid, lo, hi, out)

    def _decode(self, rgb, out):
        from rgbify.encode import kernels

        kernels.affine_decode(rgb, out)


DEPTH_CODECS = ("depth/cubewalk", "depth/hilbert24", *(f"depth/colormap:{n}" for n in COLORMAPS), "depth/affine")
"""Names of every depth codec."""


# ----------------------------------------------------------------------------------------------- normals
@dataclass(frozen=True, kw_only=True)
class NormalsCodec:
    """normals: target frame (+x right, +y up, +z toward the viewer) = (n_x, -n_y, -n_z) of the OpenCV normal;
    R = round((x + 1)/2 255), likewise G, B; ``flip_x`` (paper's colours): R = round((1 - x)/2 255).
    No surface is black; decode reads colours within 46 of black as no surface (NORMALS_NONE_RADIUS; every
    unit normal's colour is at least 93 from black, whichever way it faces)."""

    flip_x: bool = False
    name: ClassVar[str] = "normals"

    def encode(self, normals_cam: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """float (H, W, 3) OpenCV-frame unit normals (zeros = no surface) -> uint8 (H, W, 3)."""
        from rgbify.encode import kernels

        if not isinstance(normals_cam, np.ndarray) or normals_cam.ndim != 3 or normals_cam.shape[2] != 3 or (
            normals_cam.dtype.kind != "f"
        ):
            raise CodecInputError(
                f"normals_cam must be a float32 array of shape (H, W, 3) (OpenCV camera frame unit vectors), "
                f"got a {_describe(normals_cam)}"
            )
        n = np.ascontiguousarray(normals_cam)
        if n.dtype not in (np.float32, np.float64):
            n = n.astype(np.float32)
        if valid is not None:
            if not isinstance(valid, np.ndarray) or valid.dtype != np.bool_ or valid.shape != n.shape[:2]:
                raise CodecInputError(f"valid must be a bool array of shape {n.shape[:2]}, got a {_describe(valid)}")
            n = np.where(valid[..., None], n, 0).astype(n.dtype)
        out = np.empty(n.shape, dtype=np.uint8)
        nbad, first = kernels.normals_encode(n, bool(self.flip_x), out)
        raise_bad_values(nbad, first, n.shape, n, "normals_cam", ("NaN or infinite", "set them to 0 (no surface)"))
        return out

    def decode(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> float32 (H, W, 3) OpenCV-frame unit normals, zeros where the colour is within 46
        of black (no surface)."""
        from rgbify.encode import kernels

        rgb = check_rgb(rgb)
        out = np.empty(rgb.shape, dtype=np.float32)
        kernels.normals_decode(rgb, bool(self.flip_x), out)
        return out

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "flip_x": bool(self.flip_x)}


# ----------------------------------------------------------------------------------------------- specs
def get_codec(spec: str | dict[str, Any] | DepthCodec | NormalsCodec) -> DepthCodec | NormalsCodec:
    """Build a codec from its spec: a name ("depth/cubewalk", "depth/hilbert24", "depth/colormap:viridis",
    "depth/affine", "normals"), a dict {"name": ..., **params} (e.g. {"name": "depth/hilbert24", "d_max": 100,
    "gamma": 0.5}) or that dict as a JSON string."""
    if isinstance(spec, DepthCodec | NormalsCodec):
        return spec
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise CodecInputError(f"codec spec is not valid JSON ({e}): {spec!r}") from None
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        params = dict(spec)
        name = params.pop("name")
    else:
        raise CodecInputError(f"a codec spec is a name or a dict with a 'name', got {spec!r}")
    try:
        if name == "depth/cubewalk":
            return CubeWalk(**params)
        if name == "depth/hilbert24":
            return Hilbert24(**params)
        if name == "depth/affine":
            return Affine(**params)
        if name.startswith("depth/colormap:"):
            return Colormap(cmap=name.split(":", 1)[1], **params)
        if name == "normals":
            return NormalsCodec(**params)
    except TypeError as e:
        raise CodecInputError(f"bad parameters for codec {name!r}: {params} ({e})") from None
    raise CodecInputError(f"unknown codec {name!r}; use one of {', '.join(DEPTH_CODECS)}, normals")


def depth_codec(codec: str | dict[str, Any] | DepthCodec = "cubewalk", **params: Any) -> DepthCodec:
    """A depth codec from a name (the "depth/" prefix may be left out), a spec dict or a codec, plus params."""
    if isinstance(codec, str) and not codec.startswith("depth/"):
        codec = "depth/" + codec
    if params:
        base = get_codec(codec).spec() if not isinstance(codec, dict) else dict(codec)
        base.update(params)
        codec = base
    c = get_codec(codec)
    if not isinstance(c, DepthCodec):
        raise CodecInputError(f"{codec!r} is not a depth codec; use one of {', '.join(DEPTH_CODECS)}")
    return c


def encode_depth(depth_m: np.ndarray, codec: str | dict | DepthCodec = "cubewalk", valid: np.ndarray | None = None,
                 **params: Any) -> np.ndarray:
    """Depth float (H, W) metres (+inf = nothing hit) -> uint8 (H, W, 3) target under ``codec``.

    ``codec``: "cubewalk" (default), "hilbert24" (params d_max=100, gamma=0.5), "colormap:viridis|plasma|inferno|
    gray", "affine" (per-image 2-98 percentile grey), with or without the "depth/" prefix, or a spec dict.
    ``valid``: bool (H, W); False pixels encode as nothing hit. NaN or negative depth at valid pixels raises
    CodecInputError (a ValueError).
    """
    return depth_codec(codec, **params).encode(depth_m, valid)


def decode_depth(rgb: np.ndarray, codec: str | dict | DepthCodec = "cubewalk", **params: Any) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W) metres: +inf for "nothing hit" under cubewalk and colormaps, d_max for
    the far code under hilbert24; under depth/affine relative depth in [0, 1] instead (not metres).
    ``robust="median3"``/``"median5"`` adds a 3x3/5x5 median of the decoded depth."""
    return depth_codec(codec, **params).decode(rgb)


def encode_normals(normals_cam: np.ndarray, flip_x: bool = False, valid: np.ndarray | None = None) -> np.ndarray:
    """float (H, W, 3) unit normals in the OpenCV camera frame (zeros = no surface) -> uint8 (H, W, 3)."""
    return NormalsCodec(flip_x=bool(flip_x)).encode(normals_cam, valid)


def decode_normals(rgb: np.ndarray, flip_x: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W, 3) unit normals in the OpenCV camera frame, zeros = no surface."""
    return NormalsCodec(flip_x=bool(flip_x)).decode(rgb)
