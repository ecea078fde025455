"""``rgbify eval --data CLIPS --predictions DIR``: score saved video predictions against a clip dataset (``rgbify
build --clip-frames T``; docs/video.md): optical flow by EPE and Fl-all (rgbify.train.metrics.flow_metrics), video
depth by its temporal consistency through the ground truth's flow (depth_temporal_metrics) and per frame
(depth_metrics).

Layout of DIR, one folder per clip named by the clip's dataset index (nine digits, as ``export_clip_flow`` writes
the ground truth, so an exported ground truth scores as a perfect prediction):

- ``DIR/CCCCCCCCC/TTTTTT.flo|.png|.npy``: forward flow of frame T -> T+1 (Middlebury, KITTI 16-bit PNG, or float
  (H, W, 2) pixels); a pixel the file marks invalid (KITTI's valid bit, NaN in .npy, Middlebury's unknown) is a
  missing prediction: it counts as an outlier and makes EPE NaN, as a NaN prediction does;
- ``DIR/CCCCCCCCC/depth/TTTTTT.npy``: float (H, W) depth of frame T, metres (any units with ``alignment="affine"``).

Scored pixels: flow where the ground truth is valid (hit, in view, not occluded) and not an edge pixel; temporal
depth the same pixels of frames 0 .. T-2. Clips without a folder are not scored (``clips_missing`` counts them);
a clip folder lacking a frame's file, or a file of the wrong shape, is a UserError naming it. Flow figures are
pixel-weighted means over all scored pairs, EPE as KITTI's (the mean over pixels), Fl-all a fraction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rgbify.datasets.loading.split import is_val_index
from rgbify.datasets.storage.clips import ClipShardReader
from rgbify.datasets.storage.manifest import load_manifest
from rgbify.encode.flowio import FLOW_SUFFIXES, read_flow
from rgbify.errors import UserError
from rgbify.train.metrics import depth_metrics, depth_metrics_affine, depth_temporal_metrics, flow_metrics


def _flow_file(folder: Path, t: int) -> Path | None:
    found = [folder / f"{t:06d}{s}" for s in FLOW_SUFFIXES if (folder / f"{t:06d}{s}").is_file()]
    if len(found) > 1:
        raise UserError(
            f"{folder}: frame {t} has {len(found)} flow files ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def _load_depth(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npy file ({type(e).__name__})") from None
    a = np.squeeze(a)
    if a.shape != shape or a.dtype.kind != "f":
        raise UserError(
            f"{path}: expected float depth of shape {shape} (the dataset's frames), got {a.dtype} {a.shape}"
        )
    return a.astype(np.float64)


def eval_clip_predictions(
    data: str | Path,
    predictions: str | Path,
    split: str = "all",
    alignment: str = "none",
    max_items: int | None = None,
    val_fraction: float = 0.05,
) -> dict[str, Any]:
    """Metrics of the predictions in ``predictions`` (module docstring) on the clips of the clip dataset ``data``
    in ``split`` ("train", "val", "all"; by clip index as the loader splits): {"flow": {...}, "depth": {...},
    "depth_temporal": {...}} with the groups that have predictions. ``alignment``: "none" or "affine" (one scale
    and shift per clip) for depth."""
    data, predictions = Path(data), Path(predictions)
    m = load_manifest(data)
    if "clip" not in m:
        raise UserError(
            f"--data {data} is a dataset of stills; --predictions DIR without --benchmark scores video "
            "predictions against a clip dataset (rgbify build --clip-frames T)"
        )
    if not predictions.is_dir():
        raise UserError(f"--predictions {predictions}: no such folder")
    if alignment not in ("none", "affine"):
        raise UserError(f"--alignment {alignment}: video depth takes none or affine")
    flow_rows: list[dict[str, float]] = []
    depth_rows: list[dict[str, float]] = []
    temporal_rows: list[dict[str, float]] = []
    scored = missing = 0
    for entry in sorted(m["shards"], key=lambda e: e["first_index"]):
        with ClipShardReader(data / entry["file"]) as reader:
            for j in range(len(reader)):
                index = entry["first_index"] + j
                if split != "all" and is_val_index(index, val_fraction) != (split == "val"):
                    continue
                if max_items is not None and scored >= max_items:
                    break
                folder = predictions / f"{index:09d}"
                if not folder.is_dir():
                    missing += 1
                    continue
                scored += 1
                c = reader.clip(j)
                _score_clip(folder, c, alignment, flow_rows, depth_rows, temporal_rows)
    if not scored:
        raise UserError(
            f"--predictions {predictions}: no folder of a clip of {data}'s {split} split (expected "
            "DIR/CCCCCCCCC/ named by clip index, e.g. 000000000/000000.flo and 000000000/depth/000000.npy)"
        )
    out: dict[str, Any] = {}
    if flow_rows:
        out["flow"] = _pooled(flow_rows, ("epe", "fl_all"), "pairs")
    if temporal_rows:
        out["depth_temporal"] = _pooled(temporal_rows, ("temporal_abs_rel", "temporal_log"), "clips")
    if depth_rows:
        keys = [k for k in depth_rows[0] if isinstance(depth_rows[0][k], float)]
        out["depth"] = {k: float(np.mean([r[k] for r in depth_rows])) for k in keys} | {"frames": len(depth_rows)}
    for group in out.values():
        group["clips"] = scored
        group["clips_missing"] = missing
    return out


def _score_clip(
    folder: Path, c: dict[str, Any], alignment: str, flow_rows: list, depth_rows: list, temporal_rows: list
) -> None:
    frames, h, w = c["depth"].shape
    scored = c["valid_fwd"] & ~c["edge"]
    flows = [_flow_file(folder, t) for t in range(frames - 1)]
    if any(flows):
        for t, path in enumerate(flows):
            if path is None:
                raise UserError(
                    f"{folder}: no flow file for frame {t} ({t:06d}.flo, .png or .npy); this clip has "
                    f"{frames} frames, so frames 0-{frames - 2} need one"
                )
            pred, pred_valid = read_flow(path)
            if pred.shape != (h, w, 2):
                raise UserError(f"{path}: flow of shape {pred.shape}, the dataset's frames are {(h, w, 2)}")
            pred = np.where(pred_valid[..., None], pred, np.nan)
            flow_rows.append(flow_metrics(pred, c["flow_fwd"][t], scored[t]))
    dfolder = folder / "depth"
    if dfolder.is_dir():
        paths = [dfolder / f"{t:06d}.npy" for t in range(frames)]
        absent = [p.name for p in paths if not p.is_file()]
        if absent:
            raise UserError(f"{dfolder}: lacks {', '.join(absent)} (one depth .npy per frame of the clip)")
        pred = np.stack([_load_depth(p, (h, w)) for p in paths])
        gt = c["depth"].astype(np.float64)
        temporal_rows.append(depth_temporal_metrics(pred, gt, c["flow_fwd"][:-1], scored[:-1], alignment))
        hit = (c["instance"] > 0) & ~c["edge"]
        for t in range(frames):
            row = (depth_metrics if alignment == "none" else depth_metrics_affine)(pred[t], gt[t], hit[t])
            depth_rows.append({k: v for k, v in row.items() if k not in ("scale", "shift")})


def _pooled(rows: list[dict[str, float]], keys: tuple[str, ...], count: str) -> dict[str, Any]:
    """Pixel-weighted means of ``keys`` over rows (a row's NaN makes the mean NaN), with the pixel counts."""
    pixels = np.array([r["pixels"] for r in rows], dtype=np.float64)
    total = float(pixels.sum())
    out: dict[str, Any] = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], dtype=np.float64)
        used = pixels > 0
        out[k] = float((vals[used] * pixels[used]).sum() / total) if total else float("nan")
    out["pixels"] = int(total)
    out["nonfinite_pixels"] = int(sum(r.get("nonfinite_pixels", 0) for r in rows))
    out[count] = len(rows)
    return out
