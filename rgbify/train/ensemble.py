"""Test-time ensembling of N predictions of one image, as Marigold does it (``marigold/util/ensemble.py``).

Depth (``ensemble_depth``): every member gets its own scale (and shift), found by BFGS (scipy) on Marigold's cost:
the sum over member pairs of the RMS difference of the aligned members, plus 0.02 x (|min| + |1 - max|) of their
pixelwise median (which pulls the result to [0, 1]); the fit runs on a nearest-neighbour copy at most 1024 px on
its long side; the result is the pixelwise median (torch's: the lower middle value for even N) of the aligned
members, normalised to [0, 1] (affine) or by its maximum (scale). ``invariance="none"`` is for metric predictions
(rgbify's decoded depth): no alignment, the median in the members' own units.
Normals (``ensemble_normals``): Marigold's "closest": per pixel, the member closest in angle to the normalised mean.

Unlike Marigold, a pixel where any member is NaN or infinite is NaN in the result (a median would otherwise
silently replace it with a number), and the fit uses only pixels that are finite in every member.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F

INVARIANCES = ("affine", "scale", "none")


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    return x.median(dim=0).values if reduction == "median" else x.mean(dim=0)


def _max_res_copy(x: torch.Tensor, max_res: int | None) -> torch.Tensor:
    """(N, H, W) -> a nearest-exact copy whose long side is at most ``max_res`` (Marigold's resize_max_res)."""
    h, w = x.shape[-2:]
    if max_res is None or max(h, w) <= max_res:
        return x
    s = min(max_res / w, max_res / h)
    return F.interpolate(x[None], size=(int(h * s), int(w * s)), mode="nearest-exact")[0]


def align_members(m: torch.Tensor, param: torch.Tensor, affine: bool) -> torch.Tensor:
    """Members (N, ...) times their scales param[:N] (plus their shifts param[N:] when ``affine``)."""
    n = m.shape[0]
    shape = (n,) + (1,) * (m.dim() - 1)
    return m * param[:n].view(shape) + (param[n:].view(shape) if affine else 0.0)


def ensemble_cost(aligned: torch.Tensor, reduction: str = "median", regularizer_strength: float = 0.02) -> float:
    """Marigold's ensembling cost of aligned members (N, ...): the sum over member pairs of the RMS of their
    difference, plus regularizer_strength x (|min| + |1 - max|) of their pixelwise reduction. Evaluated in the same
    order and precision as Marigold's code (one pair at a time, each RMS summed as a Python float): BFGS's
    finite-difference gradients of a float32 cost follow its last bits, so this keeps the optimum Marigold's."""
    n = aligned.shape[0]
    total = 0.0
    for i, j in torch.combinations(torch.arange(n, device=aligned.device)):
        total += (aligned[i] - aligned[j]).pow(2).mean().sqrt().item()
    if regularizer_strength > 0:
        pred = _reduce(aligned, reduction)
        total += ((0.0 - pred.min()).abs().item() + (1.0 - pred.max()).abs().item()) * regularizer_strength
    return total


def ensemble_depth(
    depth: torch.Tensor,
    invariance: str = "affine",
    reduction: str = "median",
    regularizer_strength: float = 0.02,
    max_iter: int = 50,
    tol: float = 1e-6,
    max_res: int | None = 1024,
) -> torch.Tensor:
    """Ensemble (N, H, W) depth (or disparity) maps into one (H, W) map, on their device (float32 as Marigold;
    float64 input stays float64)."""
    if invariance not in INVARIANCES:
        raise ValueError(f"invariance {invariance!r}: use one of {', '.join(INVARIANCES)}")
    if reduction not in ("median", "mean"):
        raise ValueError(f"reduction {reduction!r}: use median or mean")
    x = depth if depth.dtype == torch.float64 else depth.float()
    n = x.shape[0]
    if n == 1:
        return x[0]
    bad = ~torch.isfinite(x).all(dim=0)
    if invariance == "none":
        return _reduce(x, reduction).masked_fill(bad, float("nan"))
    x0 = x.masked_fill(bad[None], 0.0)
    fit = _max_res_copy(torch.cat([x0, bad[None].float()]), max_res)
    ok = fit[-1] < 0.5
    a = fit[:n][:, ok]  # (N, P): the pixels finite in every member
    if a.shape[1] == 0:
        return torch.full_like(x[0], float("nan"))
    affine = invariance == "affine"
    lo, hi = a.min(dim=1).values, a.max(dim=1).values
    if affine:
        s0 = 1.0 / (hi - lo).clamp(min=1e-6)
        param0 = torch.cat([s0, -s0 * lo])
    else:
        param0 = 1.0 / hi.clamp(min=1e-6)

    def align(m: torch.Tensor, param: np.ndarray) -> torch.Tensor:
        return align_members(m, torch.from_numpy(param).to(m), affine)

    def cost(param: np.ndarray) -> float:
        return ensemble_cost(align(a, param), reduction, regularizer_strength)

    res = scipy.optimize.minimize(
        cost, param0.double().cpu().numpy(), method="BFGS", tol=tol, options={"maxiter": max_iter, "disp": False}
    )
    out = _reduce(align(x0, res.x), reduction).masked_fill(bad, float("nan"))
    finite = out[~bad]
    top = finite.max()
    bottom = finite.min() if affine else torch.zeros_like(top)
    return (out - bottom) / (top - bottom).clamp(min=1e-6)


def ensemble_normals(normals: torch.Tensor, reduction: str = "closest") -> torch.Tensor:
    """Ensemble (N, H, W, 3) unit normals into (H, W, 3): per pixel the member closest to the normalised mean
    ("closest", Marigold's default) or the normalised mean ("mean")."""
    if reduction not in ("closest", "mean"):
        raise ValueError(f"reduction {reduction!r}: use closest or mean")
    x = normals.float()
    if x.shape[0] == 1:
        return x[0]
    bad = ~torch.isfinite(x).all(dim=-1).all(dim=0)
    x0 = x.masked_fill(bad[None, ..., None], 0.0)
    mean = x0.mean(dim=0)
    mean = mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    if reduction == "mean":
        out = mean
    else:
        closest = (x0 * mean[None]).sum(dim=-1).argmax(dim=0)  # (H, W) member index
        out = torch.gather(x0, 0, closest[None, ..., None].expand(1, *closest.shape, 3))[0]
    return out.masked_fill(bad[..., None], float("nan"))
