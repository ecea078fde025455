"""One measurement from a run for one image, at a set processing resolution, optionally an ensemble of N draws.

``predict_measurement`` is what ``rgbify predict`` and ``rgbify eval --benchmark`` run for each image:
1. the image is resized (bilinear, antialiased, rounded back to 8 bits as Marigold's pipeline does) so that its long
   side is ``processing_res`` (0: kept as it is), the aspect ratio kept (as Marigold's ``resize_max_res``: each
   side times the same factor, rounded down);
2. padded at the bottom and right by repeating the edge to a multiple of the model's stride (the VAE's factor times
   the UNet's downsampling), so that any aspect ratio runs; the padding is cut off the answer again;
3. sampled ``ensemble`` times (chunks of at most ``chunk`` draws; chunk c starts from seed + c), each draw decoded
   with the prompt's decode parameters;
4. ensembled (rgbify.train.ensemble: depth with the given invariance, normals "closest"; labels are not ensembled);
5. resized to ``out_hw`` (depth and normals bilinear, normals renormalised; labels nearest). NaN and infinite values
   are not replaced: an interpolated pixel that touches one is NaN, and the scoring counts it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rgbify import encode
from rgbify.train.benchmarks.protocol import to_disparity
from rgbify.train.ensemble import ensemble_depth, ensemble_normals
from rgbify.train.parts import vae_scale_down
from rgbify.train.pipeline import sample


def model_stride(components) -> int:
    """Image side multiple the model needs: the VAE's downsampling times the UNet's."""
    vae = vae_scale_down(components.vae)
    if components.family in ("sd3", "pixart", "sana"):  # the transformer's patches
        return vae * components.unet.config.patch_size
    if components.family == "flux":  # 2x2 latents packed per token
        return vae * 2
    unet = 2 ** (len(components.unet.config.down_block_types) - 1)
    return vae * unet


def processing_size(hw: tuple[int, int], processing_res: int) -> tuple[int, int]:
    """(h, w) with the long side ``processing_res`` and the aspect ratio kept (0: ``hw`` itself)."""
    h, w = hw
    if processing_res <= 0:
        return h, w
    s = min(processing_res / w, processing_res / h)
    return max(1, int(h * s)), max(1, int(w * s))


def prepare_image(rgb: np.ndarray, processing_res: int, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """uint8 (H, W, 3) -> uint8 (1, 3, h', w') resized (aspect kept) and edge-padded to multiples of ``stride``,
    and the (h, w) of the unpadded part."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None]  # a copy: PIL arrays are read-only
    h, w = processing_size(rgb.shape[:2], processing_res)
    if (h, w) != tuple(rgb.shape[:2]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    x = x.round().clamp(0, 255)
    ph, pw = -h % stride, -w % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x.to(torch.uint8).contiguous(), (h, w)  # contiguous (NCHW): the VAE sees what a stock pipeline gives it


def resize_back(x: np.ndarray, out_hw: tuple[int, int], task: str) -> np.ndarray:
    """A decoded measurement to ``out_hw``: labels nearest; depth and normals bilinear (antialiased when shrinking),
    normals renormalised; non-finite values spread as NaN, never replaced by numbers."""
    if tuple(x.shape[:2]) == tuple(out_hw):
        return x
    if task in ("semantic", "instance"):
        t = torch.from_numpy(x.astype(np.float64))[None, None]
        return F.interpolate(t, size=out_hw, mode="nearest-exact")[0, 0].numpy().astype(x.dtype)
    t = torch.from_numpy(np.asarray(x, np.float32))
    t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=out_hw, mode="bilinear", align_corners=False, antialias=True)[0]
    if x.ndim == 2:
        return out[0].numpy()
    out = out.permute(1, 2, 0)
    norm = out.norm(dim=-1, keepdim=True)
    out = torch.where(norm > 1e-6, out / norm.clamp(min=1e-6), torch.where(torch.isnan(norm), norm, 0.0))
    return out.numpy()


def predict_measurement(
    run,
    task: str,
    rgb: np.ndarray,
    prompt: str,
    decode: dict,
    *,
    processing_res: int,
    out_hw: tuple[int, int],
    ensemble: int = 1,
    invariance: str = "none",
    seed: int = 0,
    members_as: str = "depth",
    steps: int | None = None,
    chunk: int = 4,
    keep_raw: list | None = None,
) -> np.ndarray:
    """The decoded measurement of ``task`` for uint8 (H, W, 3) ``rgb`` at ``out_hw``: depth float32 (H, W) metres
    (or, ensembled with invariance affine/scale, relative depth in [0, 1]; with ``members_as="disparity"`` the
    members are turned into disparity 1/d before the ensemble, and the answer is relative disparity), normals
    float32 (H, W, 3) OpenCV frame, labels int32. ``keep_raw``: a list that receives the raw RGB draws (uint8,
    unpadded)."""
    if ensemble > 1 and task not in ("depth", "normals"):
        raise ValueError(f"ensembles are for depth and normals, not {task}")
    image, (h, w) = prepare_image(rgb, processing_res, model_stride(run.components))
    members = []
    for c, start in enumerate(range(0, ensemble, chunk)):
        k = min(chunk, ensemble - start)
        draws = sample(
            run.components,
            run.cfg,
            image.expand(k, -1, -1, -1).contiguous(),
            [prompt] * k,
            prompts=run.prompts,
            steps=steps,
            seed=seed + c,
        ).numpy()
        for raw in draws[:, :h, :w]:
            if keep_raw is not None:
                keep_raw.append(raw)
            value = np.asarray(encode.decode_target(raw, decode))
            members.append(to_disparity(value).astype(np.float32) if members_as == "disparity" else value)
    if task == "depth":
        value = ensemble_depth(torch.from_numpy(np.stack(members)), invariance).numpy()
    elif task == "normals":
        value = ensemble_normals(torch.from_numpy(np.stack(members))).numpy()
    else:
        value = members[0]
    return resize_back(value, out_hw, task)
