"""The student's losses, on the tasks' own quantities (not through the RGB codecs).

- depth: the scale-invariant log loss of Eigen et al. (2014), per image over valid pixels,
  ``sqrt(mean(g^2) - lam * mean(g)^2)`` with ``g = log d_pred - log d_true`` and ``lam`` = 0.85 (lam = 1 would ignore
  the global scale; 0.85 keeps metric depth learnable, as AdaBins and later metric-depth students use it);
- normals: the mean angle in radians between predicted and true unit normals over valid pixels;
- semantic: cross-entropy of the logits against the labels (ignore index -1: invalid pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SILOG_LAMBDA = 0.85


def silog_loss(log_pred: torch.Tensor, depth: torch.Tensor, lam: float = SILOG_LAMBDA) -> torch.Tensor | None:
    """log_pred (B, H, W) log metres; depth (B, H, W) metres, NaN/inf/<= 0 where invalid. None without a valid
    pixel."""
    valid = torch.isfinite(depth) & (depth > 0)
    n = valid.sum(dim=(1, 2))
    keep = n > 0
    if not keep.any():
        return None
    g = torch.where(valid, log_pred - torch.log(torch.where(valid, depth, torch.ones_like(depth))), 0.0)
    nn_ = n.clamp(min=1)
    mean = g.sum(dim=(1, 2)) / nn_
    mean_sq = (g * g).sum(dim=(1, 2)) / nn_
    per_image = torch.sqrt((mean_sq - lam * mean * mean).clamp(min=1e-8))
    return per_image[keep].mean()


def angular_loss(pred: torch.Tensor, normals: torch.Tensor) -> torch.Tensor | None:
    """pred, normals (B, 3, H, W) unit vectors; pixels whose true normal is 0 are invalid. Mean angle (radians)."""
    valid = normals.norm(dim=1) > 0.5
    if not valid.any():
        return None
    cos = (pred * normals).sum(1).clamp(-1 + 1e-6, 1 - 1e-6)
    return torch.acos(cos[valid]).mean()


def semantic_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
    """logits (B, C+1, H, W); labels (B, H, W) long, -1 = invalid."""
    if not (labels >= 0).any():
        return None
    return F.cross_entropy(logits, labels, ignore_index=-1)


def student_loss(
    outputs: tuple[torch.Tensor, ...], tasks: tuple[str, ...], batch: dict
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the tasks' losses on a batch (see data.Batch) and each task's value (a task without a valid pixel in
    the batch adds nothing)."""
    total, parts = None, {}
    for task, out in zip(tasks, outputs, strict=True):
        if task == "depth":
            loss = silog_loss(out[:, 0], batch["depth"])
        elif task == "normals":
            loss = angular_loss(out, batch["normals"])
        else:
            loss = semantic_loss(out, batch["semantic"])
        if loss is None:
            continue
        parts[task] = float(loss.detach())
        total = loss if total is None else total + loss
    if total is None:
        total = sum(o.sum() * 0.0 for o in outputs)
    return total, parts
