"""Scoring a run on dataset items: sample, decode with the item's decode parameters, accumulate metrics per task.

The metric formulas are rgbify.train.metrics (NumPy only); ``MetricAccumulator`` pools them over a split as the
tasks need (depth per image then averaged, metric and affine-aligned; normal errors pooled over pixels, one confusion
matrix for semantic, summed matches for instance).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from rgbify import encode
from rgbify.datasets import collate
from rgbify.train import metrics as M
from rgbify.train.config import TrainConfig
from rgbify.train.model import Components, PromptEncoder
from rgbify.train.pipeline import sample


class MetricAccumulator:
    """Collects decoded predictions against ground truth per task and reduces them to one dict of metrics."""

    def __init__(self):
        self.depth: list[dict] = []
        self.depth_affine: list[dict] = []
        self.normal_err: list[np.ndarray] = []
        self.cm = np.zeros((2, 2), np.int64)
        self.pq = {"iou_sum": 0.0, "tp": 0, "fp": 0, "fn": 0}
        self.images = {"semantic": 0, "instance": 0}

    def add(self, task: str, pred, item_gt: dict, reference=None, metric: bool = True) -> None:
        """pred: the decoded prediction; item_gt: gt_depth/gt_normals/valid; reference: the decoded clean target
        (semantic/instance: what the prompt asked for, with the codec's own labels); metric: False for depth
        decoded by a relative codec (depth/affine), which is scored affine-aligned only. Every depth prediction
        is also scored after a least-squares scale and shift (``depth_affine``)."""
        valid = np.asarray(item_gt["valid"], bool)
        if task == "depth":
            if metric:
                self.depth.append(M.depth_metrics(pred, item_gt["gt_depth"], valid))
            self.depth_affine.append(M.depth_metrics_affine(pred, item_gt["gt_depth"], valid))
        elif task == "normals":
            gt = np.asarray(item_gt["gt_normals"])
            mask = valid & (np.linalg.norm(gt, axis=-1) > 0)
            self.normal_err.append(M.angular_error_deg(np.asarray(pred)[mask], gt[mask]).astype(np.float32))
        elif task == "semantic":
            self.images["semantic"] += 1
            k = int(max(np.max(pred), np.max(reference))) + 2
            if k > self.cm.shape[0]:
                self.cm = np.pad(self.cm, ((0, k - self.cm.shape[0]), (0, k - self.cm.shape[0])))
            g = np.where(valid, np.asarray(reference) + 1, 0)  # shift: 0 = invalid pixel, 1 = nothing asked for
            self.cm += M.confusion_matrix(np.asarray(pred) + 1, g, self.cm.shape[0], ignore_index=0)
        elif task == "instance":
            self.images["instance"] += 1
            q = M.panoptic_quality(np.where(valid, pred, 0), np.where(valid, reference, 0))
            self.pq["iou_sum"] += q["sq"] * q["tp"]
            for k in ("tp", "fp", "fn"):
                self.pq[k] += q[k]

    def result(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if self.depth:
            out["depth"] = {**M.mean_depth(self.depth), "images": len(self.depth)}
        if self.depth_affine:
            out["depth_affine"] = {**M.mean_depth(self.depth_affine), "images": len(self.depth_affine)}
        if self.normal_err:
            err = np.concatenate(self.normal_err).astype(np.float64)
            out["normals"] = {**M.normal_stats(err), "images": len(self.normal_err)} if err.size else {}
        if self.cm.sum():
            _, iou = M.miou_from_confusion(self.cm, ignore_index=0)
            named = iou[2:]  # index 1 is "not asked for" (black)
            out["semantic"] = {"miou": float(np.nanmean(named)) if np.isfinite(named).any() else float("nan"),
                               "pixel_acc": float(np.trace(self.cm[1:, 1:]) / self.cm[1:, 1:].sum()),
                               "images": self.images["semantic"]}
        if self.pq["tp"] + self.pq["fp"] + self.pq["fn"]:
            tp, fp, fn = self.pq["tp"], self.pq["fp"], self.pq["fn"]
            out["instance"] = {"pq": self.pq["iou_sum"] / (tp + fp / 2 + fn / 2),
                               "sq": self.pq["iou_sum"] / tp if tp else 0.0,
                               "rq": tp / (tp + fp / 2 + fn / 2), "tp": tp, "fp": fp, "fn": fn,
                               "images": self.images["instance"]}
        return out


def is_metric(params: dict) -> bool:
    """Whether decode params decode to metres (False for a depth codec whose ``metric`` is False: depth/affine)."""
    return params.get("task") != "depth" or encode.get_codec(params.get("codec", "depth/cubewalk")).metric


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3,H,W) uint8, or float in [-1,1] -> uint8 (H,W,3)."""
    if x.dtype == torch.uint8:
        return x.permute(1, 2, 0).cpu().numpy()
    return ((x.float().permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


@torch.no_grad()
def evaluate(components: Components, cfg: TrainConfig, dataset, max_items: int | None = None, batch_size: int = 4,
             grid: list | None = None, prompts: PromptEncoder | None = None, **sample_kw) -> dict:
    """Predict, decode (rgbify.encode.decode_target with the item's decode params) and score items 0..max_items-1
    of ``dataset`` (generation items are skipped). If ``grid`` is a list, (task, image, target, prediction)
    uint8 triples of the first items are appended to it. ``sample_kw`` go to ``sample`` (steps, seed, guidance)."""
    components.unet.eval()
    acc = MetricAccumulator()
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        items = [it for it in items if it["task"] != "generate"]
        if not items:
            continue
        batch = collate(items)
        pred = sample(components, cfg, batch["image"], batch["prompt"], prompts=prompts, **sample_kw).numpy()
        for it, rgb in zip(items, pred, strict=True):
            params = json.loads(it["decode"])
            target = to_uint8(it["target"])
            gt = {k: np.asarray(it[k]) for k in ("gt_depth", "gt_normals", "valid") if k in it}
            ref = encode.decode_target(target, params) if it["task"] in ("semantic", "instance") else None
            acc.add(it["task"], encode.decode_target(rgb, params), gt, ref, metric=is_metric(params))
            if grid is not None and len(grid) < 8:
                grid.append((it["task"], to_uint8(it["image"]), target, rgb))
    components.unet.train()
    return acc.result()
