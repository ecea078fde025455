"""Optical flow: the target codec ``flow/signedlog`` and the Middlebury colour wheel (docs/codecs.md, "Flow").

Flow is float (H, W, 2) in pixels, (u, v) = (dx, dy) with +x right and +y down (OpenCV image frame,
docs/conventions.md section 1): the pixel at (row i, column j) in frame t moves to (i + v, j + u) in frame t + 1.

``flow/signedlog`` (rgbify's codec): R and G carry u and v through a signed logarithm scaled to the flow range,
B carries the flow magnitude a second time, folded ``fine`` times (a triangle wave), to raise the precision of the
magnitude. The code is continuous (a small change of the flow is a small change of the colour), and the decoder
picks the solution of B nearest to the coarse magnitude, so its magnitude error (log domain) is at most twice the
coarse channels' error: locality-preserving both ways. The numba kernels are kernels.flow_encode and flow_decode,
held to a one-pixel NumPy twin in tests/oracles/numpy_codecs.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rgbify.encode.codecs import check_rgb, raise_bad_values
from rgbify.encode.errors import CodecInputError

MAX_MAX_FLOW = 1e5


def _describe(a: Any) -> str:
    a = np.asarray(a)
    return f"{a.dtype} array of shape {a.shape}"


def check_flow(flow: Any, valid: Any = None, what: str = "flow") -> tuple[np.ndarray, np.ndarray]:
    """float (H, W, 2) pixels and an optional bool (H, W) mask -> (float64 flow, valid mask). Pixels that are not
    finite count as invalid only when ``valid`` is given (False there); otherwise they raise CodecInputError."""
    if not isinstance(flow, np.ndarray) or flow.ndim != 3 or flow.shape[2] != 2 or flow.dtype.kind != "f":
        raise CodecInputError(f"{what} must be a float32 array of shape (H, W, 2) in pixels (u right, v down), got a "
                              f"{_describe(flow)}")
    f = flow.astype(np.float64)
    finite = np.isfinite(f).all(axis=2)
    if valid is None:
        if not finite.all():
            i, j = np.argwhere(~finite)[0]
            raise CodecInputError(f"{what} has {int((~finite).sum())} pixel(s) that are NaN or infinite (first at row "
                                  f"{i}, column {j}: {flow[i, j]}); pass valid= (False there) to encode them as zero "
                                  "flow, or fix the flow")
        return f, finite
    if not isinstance(valid, np.ndarray) or valid.dtype != np.bool_ or valid.shape != flow.shape[:2]:
        raise CodecInputError(f"valid must be a bool array of shape {flow.shape[:2]} like the flow, got a "
                              f"{_describe(valid)}")
    return f, valid & finite


def _check_shape(flow: Any) -> np.ndarray:
    if not isinstance(flow, np.ndarray) or flow.ndim != 3 or flow.shape[2] != 2 or flow.dtype.kind != "f":
        raise CodecInputError(f"flow must be a float32 array of shape (H, W, 2) in pixels (u right, v down), got a "
                              f"{_describe(flow)}")
    f = np.ascontiguousarray(flow)
    return f if f.dtype in (np.float32, np.float64) else f.astype(np.float32)


_FLOW_FIX = ("NaN or infinite", "pass valid= (False there) to encode them as zero flow, or fix the flow")


@dataclass(frozen=True, kw_only=True)
class FlowCodec:
    """flow/signedlog: with L(a, m) = ln(1 + a/scale) / ln(1 + m/scale),

    R = 127 + sign(u) round(127 L(|u|, max_flow)), G likewise with v (levels 0..254; 127 is zero flow; components
    beyond max_flow clip), B = round(255 tri(fine L(|(u, v)|, sqrt(2) max_flow))), tri the triangle wave of
    period 2 (0, 1, 0, ...). ``fine = 0`` leaves B at 0 (R and G alone). Decode: (u, v) from R and G, then the
    magnitude refined by B: of the points in [0, fine] where the triangle wave equals B / 255, the one nearest to
    fine L(coarse magnitude); the direction stays R and G's.
    """

    max_flow: float = 256.0
    scale: float = 1.0
    fine: int = 4
    name: ClassVar[str] = "flow/signedlog"

    def __post_init__(self) -> None:
        for key, hi in (("max_flow", MAX_MAX_FLOW), ("scale", MAX_MAX_FLOW)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and 0 < v <= hi):
                raise CodecInputError(f"flow codec {key} must be a number of pixels in (0, {hi:g}], got {v!r}")
            object.__setattr__(self, key, float(v))
        if isinstance(self.fine, bool) or not isinstance(self.fine, int) or not 0 <= self.fine <= 16:
            raise CodecInputError(f"flow codec fine must be an integer number of folds in [0, 16], got {self.fine!r}")

    def encode(self, flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """float (H, W, 2) pixels -> uint8 (H, W, 3). Pixels where ``valid`` is False encode as zero flow; the
        target does not mark them (validity travels beside it, as in KITTI). A NaN or infinite component at a
        valid pixel raises CodecInputError naming how many and the first."""
        from rgbify.encode import kernels

        f = _check_shape(flow)
        use_valid = valid is not None
        if use_valid and (not isinstance(valid, np.ndarray) or valid.dtype != np.bool_ or valid.shape != f.shape[:2]):
            raise CodecInputError(f"valid must be a bool array of shape {f.shape[:2]} like the flow, got a "
                                  f"{_describe(valid)}")
        out = np.empty(f.shape[:2] + (3,), dtype=np.uint8)
        mask = np.ascontiguousarray(valid) if use_valid else np.ones((1, 1), dtype=np.bool_)
        nbad, first = kernels.flow_encode(f, mask, use_valid, self.max_flow, self.scale, self.fine, out)
        raise_bad_values(nbad, first, f.shape[:2], f, "flow", _FLOW_FIX)
        return out

    def decode(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> float32 (H, W, 2) pixels. Accepts any colours (R or G of 255 reads as 254)."""
        from rgbify.encode import kernels

        rgb = check_rgb(rgb)
        out = np.empty(rgb.shape[:2] + (2,), dtype=np.float32)
        kernels.flow_decode(rgb, self.max_flow, self.scale, self.fine, out)
        return out

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "max_flow": self.max_flow, "scale": self.scale, "fine": self.fine}


FLOW_CODECS = ("flow/signedlog",)


def flow_codec(spec: str | dict[str, Any] | FlowCodec | None = None, **params: Any) -> FlowCodec:
    """A flow codec from its spec ({"name": "flow/signedlog", "max_flow": ..., "scale": ..., "fine": ...}, the name
    alone, or a codec) plus keyword params that override the spec's."""
    if isinstance(spec, FlowCodec):
        spec = spec.spec()
    if spec is None:
        spec = {"name": FlowCodec.name}
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise CodecInputError(f"a flow codec spec is a name or a dict with a 'name', got {spec!r}")
    p = {**spec, **params}
    name = p.pop("name", FlowCodec.name)
    if name not in FLOW_CODECS:
        raise CodecInputError(f"unknown flow codec {name!r}; use one of {', '.join(FLOW_CODECS)}")
    try:
        return FlowCodec(**p)
    except TypeError as e:
        raise CodecInputError(f"bad parameters for codec {name!r}: {p} ({e})") from None


def encode_flow(flow: np.ndarray, codec: str | dict | FlowCodec | None = None, valid: np.ndarray | None = None,
                **params: Any) -> np.ndarray:
    """Flow float (H, W, 2) pixels (+x right, +y down) -> uint8 (H, W, 3) target under flow/signedlog."""
    return flow_codec(codec, **params).encode(flow, valid)


def decode_flow(rgb: np.ndarray, codec: str | dict | FlowCodec | None = None, **params: Any) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W, 2) pixels."""
    return flow_codec(codec, **params).decode(rgb)


# ----------------------------------------------------------------------------------------------- colour wheel
WHEEL_SEGMENTS = (("red", "yellow", 15), ("yellow", "green", 6), ("green", "cyan", 4), ("cyan", "blue", 11),
                  ("blue", "magenta", 13), ("magenta", "red", 6))
"""Baker et al.'s Middlebury wheel: 55 colours, the hue circle sampled in 6 stretches of these lengths."""
_PURE = {"red": (255, 0, 0), "yellow": (255, 255, 0), "green": (0, 255, 0), "cyan": (0, 255, 255),
         "blue": (0, 0, 255), "magenta": (255, 0, 255)}


def color_wheel() -> np.ndarray:
    """The 55 x 3 float table of the Middlebury wheel (0..255), entry k at angle 2 pi k / 55 from red."""
    rows = []
    for a, b, n in WHEEL_SEGMENTS:
        ca, cb = np.array(_PURE[a], float), np.array(_PURE[b], float)
        for k in range(n):
            rows.append(ca + (cb - ca) * np.floor(255.0 * k / n) / 255.0)
    return np.array(rows)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """Middlebury colour coding (Baker et al. 2011) of float (H, W, 2) flow -> uint8 (H, W, 3), for pictures only
    (not decodable: use flow/signedlog for targets).

    Hue from the direction (right red, down yellow-orange, left cyan-blue, up violet), saturation from the
    magnitude divided by ``max_flow`` (default: the largest valid magnitude): zero flow is white, the largest is
    the full wheel colour, beyond ``max_flow`` the full colour darkened to 75 %. Invalid (``valid`` False or not
    finite) pixels are black."""
    if valid is None and isinstance(flow, np.ndarray) and flow.ndim == 3:
        valid = np.ones(flow.shape[:2], dtype=bool)  # non-finite pixels become black instead of raising
    f, ok = check_flow(flow, valid)
    u, v = np.where(ok, f[..., 0], 0.0) + 0.0, np.where(ok, f[..., 1], 0.0) + 0.0  # + 0.0: no -0.0 (atan2's sign)
    rad = np.hypot(u, v)
    if max_flow is None:
        max_flow = float(rad.max()) if rad.size else 0.0
    if not (math.isfinite(max_flow) and max_flow >= 0):
        raise CodecInputError(f"max_flow must be a finite number of pixels >= 0, got {max_flow!r}")
    rad = rad / max_flow if max_flow > 0 else np.zeros_like(rad)
    wheel = color_wheel() / 255.0
    n = len(wheel)
    angle = np.arctan2(-v, -u) / math.pi  # (-1, 1]: -1 and 1 both point right
    pos = (angle + 1.0) / 2.0 * (n - 1)
    k0 = np.floor(pos).astype(np.int64)
    k1 = (k0 + 1) % n
    w = (pos - k0)[..., None]
    col = (1.0 - w) * wheel[k0 % n] + w * wheel[k1]
    r = rad[..., None]
    col = np.where(r <= 1.0, 1.0 - r * (1.0 - col), col * 0.75)
    out = np.floor(255.0 * col).astype(np.uint8)
    out[~ok] = 0
    return out
