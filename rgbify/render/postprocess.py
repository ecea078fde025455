"""The photometric post-process of the RGB image (rgbify.scenes.spec.PostProcess): what a real camera adds after
the lens, applied to the 8-bit sRGB render only. Ground truth is never touched, and nothing moves a surface: the
effects change pixel values, not where things are (chromatic aberration shifts colour channels by at most a pixel
or two, as a lens does; motion blur smears along a direction, as a moving camera does, and marks nothing).

Order: vignetting, chromatic aberration, motion blur, noise (in linear light, shot + read noise), JPEG. Every
effect is a pure function of the image and the spec (noise is drawn from ``post.seed``). NumPy, SciPy and Pillow.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from rgbify.scenes.spec import PostProcess


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def is_identity(post: PostProcess) -> bool:
    return (post.noise_std <= 0 and post.jpeg_quality <= 0 and post.vignetting <= 0
            and post.chromatic_aberration_px <= 0 and post.motion_blur_px <= 0)


def postprocess(rgb: np.ndarray, post: PostProcess) -> np.ndarray:
    """uint8 (H,W,3) sRGB -> uint8 (H,W,3) with ``post``'s effects (returns ``rgb`` itself when there are none)."""
    if is_identity(post):
        return rgb
    h, w = rgb.shape[:2]
    lin = _to_linear(rgb.astype(np.float64) / 255.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    r = np.hypot((yy - cy) / max(cx, 1.0), (xx - cx) / max(cx, 1.0))  # 1 at the middle of the side edges
    corner = float(np.hypot(cy / max(cx, 1.0), 1.0))
    if post.vignetting > 0:  # a cos^4-like fall-off that reaches 1 - vignetting at the corners
        lin = lin * (1.0 - float(post.vignetting) * (r / corner) ** 2)[..., None]
    if post.chromatic_aberration_px > 0:  # lateral: red scaled out, blue scaled in, about the centre
        k = float(post.chromatic_aberration_px) / max(corner * cx, 1.0)
        for c, sign in ((0, 1.0), (2, -1.0)):
            s = 1.0 + sign * k
            coords = [cy + (yy - cy) / s, cx + (xx - cx) / s]
            lin[..., c] = ndimage.map_coordinates(lin[..., c], coords, order=1, mode="nearest")
    if post.motion_blur_px > 0:
        lin = _motion_blur(lin, float(post.motion_blur_px), float(post.motion_blur_angle_deg))
    if post.noise_std > 0:  # shot noise (variance grows with the signal) and read noise, in 8-bit levels
        rng = np.random.default_rng(int(post.seed))
        sigma = float(post.noise_std) / 255.0
        shot = np.sqrt(np.clip(lin, 0.0, None) * 255.0) * sigma / 4.0
        lin = lin + rng.normal(size=lin.shape) * np.sqrt(shot**2 + sigma**2)
    out = np.floor(_to_srgb(lin) * 255.0 + 0.5).astype(np.uint8)
    if post.jpeg_quality > 0:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(post.jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    return out


def _motion_blur(lin: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """A linear blur of ``length`` pixels along ``angle_deg`` (a normalised line kernel)."""
    n = max(3, int(np.ceil(length)) | 1)
    kernel = np.zeros((n, n))
    c = (n - 1) / 2.0
    a = np.radians(angle_deg)
    for t in np.linspace(-length / 2.0, length / 2.0, 4 * n):
        kernel[int(round(c - t * np.sin(a))), int(round(c + t * np.cos(a)))] += 1.0
    kernel /= kernel.sum()
    return np.stack([ndimage.convolve(lin[..., ch], kernel, mode="nearest") for ch in range(3)], axis=-1)
