"""The scoring protocols: valid masks, crops, least-squares alignment, range clipping, and the accumulators.

Depth, per image (Marigold's ``script/depth/eval.py``):
1. valid = finite ground truth inside the benchmark's range (min < d < max, both exclusive) and its valid-mask crop
   and its released mask (DIODE: the mask alone, as Marigold's DIODE reader);
2. alignment: ``none``; ``depth`` (least squares scale and shift of the prediction to the ground truth over the valid
   pixels); ``disparity`` (the same fit between disparities, 1/d, over valid pixels where both are > 0; the
   aligned disparity is clipped to >= 1e-3 and inverted). A depth prediction is turned into disparity first; a
   prediction that is already disparity (``prediction_kind="disparity"``) is fitted as it is. The fit may run on
   a nearest-neighbour copy (ETH3D: 1024 px), as Marigold's ``alignment_max_res`` (which thins only the columns);
3. the aligned prediction is clipped to the benchmark's range, then to >= 1e-6;
4. rgbify.train.metrics.depth_metrics on the valid pixels; images are averaged.
A NaN or infinite prediction on a valid pixel stays NaN through every step (the fit skips it) and is counted.

Normals: valid where the ground truth is non-zero; the prediction (OpenCV frame) is turned into the ground
truth's frame; angular errors are averaged per image (Marigold: mean_angular_error ... sub30_error) and pooled
over all pixels (DSINE and Lotus: mean, median, rmse, a5 ... a30, percent under the threshold in degrees).

Semantic: one confusion matrix over the benchmark; ground truth equal to the ignore index is skipped; a
predicted id that is not one of the benchmark's classes is a miss of the pixel's class. mIoU over classes present
in ground truth or prediction.
"""

from __future__ import annotations

import numpy as np

from rgbify.errors import UserError
from rgbify.train import metrics as M
from rgbify.train.benchmarks.catalog import NORMALS_FRAMES, Benchmark

ALIGNMENTS = ("none", "depth", "disparity")
PREDICTION_KINDS = ("depth", "disparity")
MIN_EVAL_DEPTH_M = 1e-6  # Marigold: predictions clipped to > 0 after the range clip
MIN_DISPARITY = 1e-3  # Marigold: the aligned disparity is clipped to this before it is inverted
MARIGOLD_NORMAL_KEYS = (
    "mean_angular_error",
    "median_angular_error",
    "sub5_error",
    "sub7_5_error",
    "sub11_25_error",
    "sub22_5_error",
    "sub30_error",
)
THRESHOLDS_DEG = (5.0, 7.5, 11.25, 22.5, 30.0)
MEDIAN_BIN_DEG = 1e-4  # pooled medians come from a histogram with bins this wide (exact to half of it)


def crop_mask(bench: Benchmark, crop: str, hw: tuple[int, int]) -> np.ndarray | None:
    """The valid-mask crop ``crop`` of ``bench`` for an (H, W) ground truth, or None for "none".

    NYUv2 "eigen": rows 45:471, columns 41:601 of the 480 x 640 image. KITTI (on the 352 x 1216 benchmark crop,
    as fractions of its size, as in BTS and Marigold): "garg" rows 0.40810811..0.99189189, columns
    0.03594771..0.96405229; "eigen" rows 0.3324324..0.91351351, columns 0.0359477..0.96405229."""
    if crop == "none":
        return None
    if crop not in bench.crops:
        raise UserError(f"--crop {crop}: {bench.name} has the crops {', '.join(bench.crops)}")
    h, w = hw
    m = np.zeros((h, w), bool)
    if bench.name == "nyuv2":
        if (h, w) != (480, 640):
            raise UserError(f"NYUv2's Eigen crop is defined on 640x480 images; this one is {w}x{h}")
        m[45:471, 41:601] = True
    elif crop == "garg":
        m[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
    else:
        m[int(0.3324324 * h) : int(0.91351351 * h), int(0.0359477 * w) : int(0.96405229 * w)] = True
    return m


def valid_depth_mask(bench: Benchmark, gt: np.ndarray, crop: str, mask: np.ndarray | None = None) -> np.ndarray:
    valid = np.isfinite(gt)
    if bench.range_in_mask:
        valid &= (gt > bench.min_depth) & (gt < bench.max_depth)
    else:
        valid &= gt > 0
    if mask is not None:
        valid &= mask
    c = crop_mask(bench, crop, gt.shape)
    return valid if c is None else valid & c


def to_disparity(x: np.ndarray) -> np.ndarray:
    """1/x where x > 0, 0 where x <= 0 (Marigold's depth2disparity); NaN where x is not finite."""
    x = np.asarray(x, np.float64)
    out = np.where(np.isfinite(x), 0.0, np.nan)
    pos = np.isfinite(x) & (x > 0)
    out[pos] = 1.0 / x[pos]
    return out


def _nearest_copy(x: np.ndarray, max_res: int | None) -> np.ndarray:
    """The copy Marigold's ``align_depth_least_square(max_resolution=...)`` fits on: with s = min(max_res / H,
    max_res / W) < 1 it calls torch's Upsample(scale_factor=s, mode="nearest") on a (1, H, W) tensor, which torch
    reads as (batch, channels, length): only the columns are thinned (W -> floor(W s), source column floor(j / s)),
    every row is kept. Reproduced as it is, so that ETH3D numbers are Marigold's."""
    h, w = x.shape[:2]
    if max_res is None:
        return x
    s = min(max_res / h, max_res / w)
    if s >= 1:
        return x
    cols = np.minimum((np.arange(int(np.floor(w * s))) / s).astype(np.int64), w - 1)
    return x[:, cols]


def fit_scale_shift(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray, max_res: int | None = None
) -> tuple[float, float]:
    """Least-squares (scale, shift) minimising sum (scale * pred + shift - target)^2 over ``mask`` (float64)."""
    p, t, m = (_nearest_copy(a, max_res) for a in (pred, target, mask))
    x = np.asarray(p, np.float64)[m]
    y = np.asarray(t, np.float64)[m]
    if x.size == 0:
        return float("nan"), float("nan")
    a = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(scale), float(shift)


def align_depth(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, alignment: str, kind: str = "depth", max_res: int | None = None
) -> tuple[np.ndarray, float, float]:
    """(depth in metres, scale, shift) of a prediction under ``alignment`` (module docstring)."""
    pred = np.asarray(pred, np.float64)
    finite = np.isfinite(pred)
    if alignment == "none":
        return (pred if kind == "depth" else 1.0 / np.clip(pred, MIN_DISPARITY, None)), 1.0, 0.0
    if alignment == "depth":
        if kind != "depth":
            raise UserError(
                "--alignment depth fits depth predictions; fit disparity predictions with --alignment disparity"
            )
        scale, shift = fit_scale_shift(pred, gt, valid & finite, max_res)
        return pred * scale + shift, scale, shift
    if alignment != "disparity":
        raise UserError(f"--alignment {alignment}: use one of {', '.join(ALIGNMENTS)}")
    disp = pred if kind == "disparity" else to_disparity(pred)
    gt_disp = to_disparity(gt)
    fit = valid & (gt_disp > 0) & np.isfinite(disp) & (disp > 0)
    scale, shift = fit_scale_shift(disp, gt_disp, fit, max_res)
    aligned = np.clip(disp * scale + shift, MIN_DISPARITY, None)  # NaN stays NaN
    return 1.0 / aligned, scale, shift


def score_depth(
    bench: Benchmark,
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    alignment: str,
    kind: str = "depth",
    max_res: int | None = None,
) -> dict:
    """One image's depth_metrics row (plus scale, shift) under the benchmark's protocol."""
    depth, scale, shift = align_depth(pred, gt, valid, alignment, kind, max_res)
    finite = np.isfinite(depth)
    depth = np.where(finite, np.clip(depth, bench.min_depth, bench.max_depth), depth)  # inf is not clipped to max
    depth = np.where(finite, np.clip(depth, MIN_EVAL_DEPTH_M, None), depth)
    row = M.depth_metrics(depth, gt, valid, min_pred_m=MIN_EVAL_DEPTH_M)
    row.update(scale=scale, shift=shift)
    return row


def summarize_depth(rows: list[dict]) -> dict:
    return {**M.mean_depth(rows), "images": len(rows)}


class NormalsScore:
    """Angular errors of normals per image (Marigold) and pooled over pixels (DSINE, Lotus)."""

    def __init__(self, frame: str):
        self.signs = np.asarray(NORMALS_FRAMES[frame])
        self.rows: list[dict] = []
        self.n = 0
        self.sum = 0.0
        self.sum_sq = 0.0
        self.under = np.zeros(len(THRESHOLDS_DEG), np.int64)
        self.hist = np.zeros(int(round(180.0 / MEDIAN_BIN_DEG)) + 1, np.int64)
        self.nonfinite = 0

    def add(self, pred_opencv: np.ndarray, gt: np.ndarray) -> dict:
        """pred_opencv: (H, W, 3) normals in the OpenCV camera frame; gt: (H, W, 3) in the benchmark's frame."""
        valid = np.isfinite(gt).all(axis=-1) & (np.linalg.norm(np.nan_to_num(gt), axis=-1) > 0)
        pred = np.asarray(pred_opencv, np.float64)[valid] * self.signs
        bad = ~np.isfinite(pred).all(axis=-1)
        err = M.angular_error_deg(np.where(bad[:, None], 0.0, pred), gt[valid])
        err[bad] = np.nan
        under = np.array([np.count_nonzero(err < t) for t in THRESHOLDS_DEG])
        row = {"pixels": int(err.size), "nonfinite_pixels": int(bad.sum())}
        if err.size:
            has_nan = bool(bad.any())
            row.update(
                mean_angular_error=float("nan") if has_nan else float(np.mean(err)),
                median_angular_error=float("nan") if has_nan else float(np.median(err)),
                **{k: float(100.0 * u / err.size) for k, u in zip(MARIGOLD_NORMAL_KEYS[2:], under, strict=True)},
            )
            self.rows.append(row)
        self.n += err.size
        self.nonfinite += int(bad.sum())
        good = err[~bad]
        self.sum += float(good.sum())
        self.sum_sq += float((good**2).sum())
        self.under += under
        np.add.at(self.hist, np.minimum((good / MEDIAN_BIN_DEG).astype(np.int64), len(self.hist) - 1), 1)
        return row

    def _pooled_median(self) -> float:
        cum = np.cumsum(self.hist)
        lo, hi = (self.n - 1) // 2, self.n // 2
        centre = (np.searchsorted(cum, [lo + 1, hi + 1]) + 0.5) * MEDIAN_BIN_DEG
        return float(np.mean(centre))

    def result(self) -> dict[str, dict]:
        per_image = {
            k: float(np.mean([r[k] for r in self.rows])) if self.rows else float("nan") for k in MARIGOLD_NORMAL_KEYS
        }
        per_image.update(images=len(self.rows), nonfinite_images=sum(1 for r in self.rows if r["nonfinite_pixels"]))
        pooled: dict = {k: float("nan") for k in M.NORMAL_KEYS}
        if self.n:
            if not self.nonfinite:
                pooled.update(
                    mean=self.sum / self.n, median=self._pooled_median(), rmse=float(np.sqrt(self.sum_sq / self.n))
                )
            pooled.update({k: float(100.0 * u / self.n) for k, u in zip(M.NORMAL_KEYS[3:], self.under, strict=True)})
        pooled.update(pixels=int(self.n), nonfinite_pixels=int(self.nonfinite))
        return {"normals_per_image": per_image, "normals_pooled": pooled}


class SegmentationScore:
    """One confusion matrix over a benchmark in its own label space (``class_ids``; ``ignore_index`` skipped)."""

    def __init__(self, bench: Benchmark):
        self.bench = bench
        self.ids = np.asarray(bench.class_ids, np.int64)
        self.k = len(self.ids)
        self.cm = np.zeros((self.k + 1, self.k + 1), np.int64)  # the last row/column: not one of the classes
        self.images = 0

    def _index(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, np.int64)
        pos = np.clip(np.searchsorted(self.ids, labels), 0, self.k - 1)
        return np.where(self.ids[pos] == labels, pos, self.k)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        keep = np.asarray(gt) != self.bench.ignore_index
        g = self._index(np.asarray(gt)[keep])
        if np.any(g == self.k):
            bad = np.asarray(gt)[keep][g == self.k][0]
            raise UserError(f"{self.bench.name}: ground-truth label {bad} is not one of its classes")
        self.cm += M.confusion_matrix(self._index(np.asarray(pred)[keep]), g, self.k + 1, ignore_index=None)
        self.images += 1

    def result(self) -> dict[str, dict]:
        miou, iou = M.miou_from_confusion(self.cm, ignore_index=self.k)
        labelled = self.cm[: self.k].sum()
        return {
            "semantic": {
                "miou": miou,
                "pixel_acc": float(np.trace(self.cm[: self.k, : self.k]) / labelled) if labelled else float("nan"),
                "classes": self.k,
                "images": self.images,
            },
            "iou_per_class": {n: float(v) for n, v in zip(self.bench.class_names, iou[: self.k], strict=True)},
        }


def check_protocol(
    bench: Benchmark, alignment: str, kind: str, crop: str | None, depth_scale: float | None, normals_frame: str | None
) -> tuple[str, str]:
    """Refuse options that do not apply to ``bench``; returns the (crop, normals frame) to use."""
    if alignment not in ALIGNMENTS:
        raise UserError(f"--alignment {alignment}: use one of {', '.join(ALIGNMENTS)}")
    if kind not in PREDICTION_KINDS:
        raise UserError(f"--prediction-kind {kind}: use one of {', '.join(PREDICTION_KINDS)}")
    if bench.task != "depth" and (alignment != "none" or kind != "depth"):
        raise UserError(
            f"--alignment/--prediction-kind are for depth benchmarks; {bench.name} is {bench.task}: "
            "use --alignment none"
        )
    if depth_scale is not None:
        if bench.depth_format != "png16":
            raise UserError(
                f"--depth-scale is for benchmarks with 16-bit PNG depth; {bench.name} stores "
                f"{'no depth' if bench.task != 'depth' else 'float metres'}"
            )
        if not depth_scale > 0:
            raise UserError(f"--depth-scale {depth_scale}: give the PNG value of one metre (> 0), e.g. 1000 or 256")
    crop = crop or bench.crops[0]
    if crop not in bench.crops:
        raise UserError(f"--crop {crop}: {bench.name} has the crops {', '.join(bench.crops)}")
    frame = normals_frame or bench.normals_frame
    if normals_frame is not None and bench.task != "normals":
        raise UserError(f"--normals-frame is for normals benchmarks; {bench.name} is {bench.task}")
    if frame and frame not in NORMALS_FRAMES:
        raise UserError(f"--normals-frame {frame}: use one of {', '.join(NORMALS_FRAMES)}")
    return crop, frame
