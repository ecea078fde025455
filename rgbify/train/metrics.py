"""Evaluation metrics for decoded predictions. NumPy only: importing this module never imports torch.

Conventions follow the usual benchmark code (Eigen et al. depth metrics as Marigold reports them, DSINE/Lotus
normal metrics, dataset-accumulated mIoU, COCO panoptic quality):

- depth in metres, planar z; a pixel counts when ``valid`` is true and the ground truth is finite and > 0;
- normals are unit vectors in one shared frame (any frame, as long as prediction and ground truth agree);
  angular errors in degrees, threshold accuracies in percent;
- label maps are integer arrays of one shape; ``ignore_index`` marks unlabeled ground truth;
- optical flow is float (H, W, 2) in pixels (KITTI's EPE and Fl-all); video depth's temporal consistency is scored
  through the ground truth's flow (depth_temporal_metrics).
"""

from __future__ import annotations

import numpy as np

DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3", "i_rmse", "silog")
NORMAL_KEYS = ("mean", "median", "rmse", "a5", "a7_5", "a11_25", "a22_5", "a30")
FLOW_KEYS = ("epe", "fl_all")
FL_OUTLIER_PX = 3.0
FL_OUTLIER_REL = 0.05
MIN_DEPTH_M = 1e-3  # predictions are clipped to this before logs and ratios (the benchmarks pass their own floor)


def _depth_mask(gt_m: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    gt_m = np.asarray(gt_m)
    mask = np.isfinite(gt_m) & (gt_m > 0)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    return mask


def depth_metrics(pred_m: np.ndarray, gt_m: np.ndarray, valid: np.ndarray | None = None,
                  min_pred_m: float = MIN_DEPTH_M) -> dict[str, float]:
    """Standard depth errors of one image (or any stack of pixels), as Marigold names and computes them.

    pred_m, gt_m: float (H, W) metres; valid: bool (H, W) or None. Pixels with gt not finite or <= 0 are
    always excluded; finite predictions are clipped to ``min_pred_m`` from below. A prediction that is NaN or
    infinite on a scored pixel is never turned into a number: it is counted in ``nonfinite_pixels`` and makes
    every metric of the image NaN except delta1..3, where it counts as a miss (as in Marigold's code).
    Returns abs_rel, sq_rel, rmse (m), rmse_log, log10, delta1..3 (fraction in [0, 1]), i_rmse (1/m, of
    1/pred - 1/gt) and silog (100 * sqrt(mean e^2 - (mean e)^2), e = ln pred - ln gt), plus ``pixels`` (scored)
    and ``nonfinite_pixels``. All metrics NaN when no pixel is valid.
    """
    mask = _depth_mask(gt_m, valid)
    if not mask.any():
        return {**{k: float("nan") for k in DEPTH_KEYS}, "pixels": 0, "nonfinite_pixels": 0}
    gt = np.asarray(gt_m, dtype=np.float64)[mask]
    pred = np.asarray(pred_m, dtype=np.float64)[mask]
    finite = np.isfinite(pred)
    nonfinite = int(np.count_nonzero(~finite))
    pred = np.clip(pred[finite], min_pred_m, None)
    ratio = np.maximum(pred / gt[finite], gt[finite] / pred)
    deltas = {f"delta{k}": float(np.count_nonzero(ratio < 1.25**k) / gt.size) for k in (1, 2, 3)}
    if nonfinite:
        return {**{k: float("nan") for k in DEPTH_KEYS}, **deltas, "pixels": int(gt.size),
                "nonfinite_pixels": nonfinite}
    diff = pred - gt
    e = np.log(pred) - np.log(gt)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(e**2))),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        **deltas,
        "i_rmse": float(np.sqrt(np.mean((1.0 / pred - 1.0 / gt) ** 2))),
        "silog": float(100.0 * np.sqrt(max(np.mean(e**2) - np.mean(e) ** 2, 0.0))),
        "pixels": int(gt.size),
        "nonfinite_pixels": 0,
    }


def align_affine(pred: np.ndarray, gt_m: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """Least-squares (scale, shift) minimising sum (scale * pred + shift - gt)^2 over valid pixels."""
    mask = _depth_mask(gt_m, valid) & np.isfinite(pred)
    if mask.sum() < 2:
        return 1.0, 0.0
    x = np.asarray(pred, dtype=np.float64)[mask]
    y = np.asarray(gt_m, dtype=np.float64)[mask]
    a = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(scale), float(shift)


def depth_metrics_affine(pred: np.ndarray, gt_m: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """Depth metrics after least-squares scale-and-shift alignment of ``pred`` to ``gt_m`` (relative depth).

    This is how affine-invariant methods (Marigold, Lotus) are scored; ``pred`` may be in any units.
    The result carries the fitted ``scale`` and ``shift`` too.
    """
    scale, shift = align_affine(pred, gt_m, valid)
    aligned = scale * np.asarray(pred, dtype=np.float64) + shift
    out = depth_metrics(aligned, gt_m, valid)
    out.update(scale=scale, shift=shift)
    return out


def angular_error_deg(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Angle in degrees between (..., 3) vectors after normalising both; zero vectors give 90 degrees."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-12)
    cos = np.clip(np.sum(p * g, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def normal_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """Angular errors of normals. pred, gt: float (H, W, 3); valid: bool (H, W) or None (then pixels with a
    non-zero ground-truth normal). Returns mean, median, rmse (degrees) and a5, a7_5, a11_25, a22_5, a30
    (percent of pixels under 5, 7.5, 11.25, 22.5, 30 degrees), pooled over pixels."""
    gt = np.asarray(gt)
    mask = np.linalg.norm(gt, axis=-1) > 0
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    if not mask.any():
        return {k: float("nan") for k in NORMAL_KEYS}
    return normal_stats(angular_error_deg(np.asarray(pred)[mask], gt[mask]))


def normal_stats(err: np.ndarray) -> dict[str, float]:
    """The NORMAL_KEYS of angular errors in degrees (a non-empty float array), pooled."""
    return {
        "mean": float(np.mean(err)),
        "median": float(np.median(err)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "a5": float(100.0 * np.mean(err < 5.0)),
        "a7_5": float(100.0 * np.mean(err < 7.5)),
        "a11_25": float(100.0 * np.mean(err < 11.25)),
        "a22_5": float(100.0 * np.mean(err < 22.5)),
        "a30": float(100.0 * np.mean(err < 30.0)),
    }


def flow_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """End-point error and KITTI's Fl-all of one flow field, over the valid pixels.

    pred, gt: float (H, W, 2) pixels; valid: bool (H, W) or None. A pixel is scored when ``valid`` is true and both
    ground-truth components are finite. epe = mean over scored pixels of |pred - gt| (Euclidean, pixels); fl_all =
    the fraction (0..1; KITTI tables print percent) of scored pixels that are outliers: EPE > 3 px and
    EPE > 5 % of |gt| (KITTI 2015's definition). A NaN or infinite prediction on a scored pixel makes epe NaN
    (``nonfinite_pixels`` counts them) and counts as an outlier in fl_all, as depth_metrics treats its deltas.
    Returns epe, fl_all, pixels, nonfinite_pixels; metrics NaN when no pixel is scored."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or g.ndim != 3 or g.shape[2] != 2:
        raise ValueError(f"flow_metrics needs pred and gt of one shape (H, W, 2), got {p.shape} and {g.shape}")
    mask = np.isfinite(g).all(axis=2)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    n = int(np.count_nonzero(mask))
    if n == 0:
        return {"epe": float("nan"), "fl_all": float("nan"), "pixels": 0, "nonfinite_pixels": 0}
    p, g = p[mask], g[mask]
    finite = np.isfinite(p).all(axis=1)
    err = np.hypot(*(p[finite] - g[finite]).T)
    mag = np.hypot(*g[finite].T)
    outliers = np.count_nonzero((err > FL_OUTLIER_PX) & (err > FL_OUTLIER_REL * mag)) + (n - finite.sum())
    return {"epe": float(err.mean()) if finite.all() else float("nan"), "fl_all": float(outliers / n),
            "pixels": n, "nonfinite_pixels": int(n - finite.sum())}


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, inside) of (H, W) ``img`` (H, W >= 2) at column ``x``, row ``y`` (pixel centres at integers):
    ``inside`` is false where the point leaves the image or a neighbour it weighs is not finite (a point on a
    pixel centre reads that pixel alone)."""
    h, w = img.shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x0 = np.clip(np.floor(np.where(inside, x, 0)), 0, w - 2).astype(np.int64)
    y0 = np.clip(np.floor(np.where(inside, y, 0)), 0, h - 2).astype(np.int64)
    fx, fy = np.where(inside, x - x0, 0), np.where(inside, y - y0, 0)
    total = np.zeros(x.shape)
    for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        value, used = img[y0 + dy, x0 + dx], weight > 0
        inside &= ~used | np.isfinite(value)
        total += np.where(used, weight * np.where(np.isfinite(value), value, 0), 0)
    return np.where(inside, total, np.nan), inside


def depth_temporal_metrics(pred: np.ndarray, gt: np.ndarray, flow: np.ndarray, valid: np.ndarray,
                           alignment: str = "none") -> dict[str, float]:
    """How consistently a video's depth predictions change from frame to frame, through the ground truth's flow.

    pred, gt: float (T, H, W) metres (pred in any units with ``alignment="affine"``); flow: float (T-1, H, W, 2)
    forward flow t -> t+1 in pixels (conventions.md); valid: bool (T-1, H, W), the pixels of frame t whose surface
    is seen in frame t+1 (not occluded, in view, not an edge). Each such pixel p is followed to p' = p + flow(p) and
    frame t+1 read there bilinearly (the prediction and the ground truth alike, so a perfect prediction scores 0);
    pixels whose neighbours at p' leave the image or lack ground truth are not scored.
    - temporal_abs_rel = mean |(pred[t+1](p') - pred[t](p)) - (gt[t+1](p') - gt[t](p))| / gt[t+1](p'): the error
      of the predicted change of depth, in the units of abs_rel;
    - temporal_log = mean |ln(pred[t+1](p') / pred[t](p)) - ln(gt[t+1](p') / gt[t](p))|: the same, scale-free (a
      wrong but constant scale scores 0; a scale that flickers from frame to frame by a factor f scores |ln f|).
    ``alignment="affine"`` first fits one least-squares scale and shift for the whole clip (not per frame: a
    per-frame fit would hide flicker). Predictions are clipped to MIN_DEPTH_M; a non-finite one on a scored pixel
    makes both metrics NaN (``nonfinite_pixels`` counts them). Returns the two metrics, pixels, pairs,
    nonfinite_pixels."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    flow = np.asarray(flow, np.float64)
    valid = np.asarray(valid, bool)
    t = gt.shape[0]
    shapes_fit = flow.shape == (t - 1, *gt.shape[1:], 2) and valid.shape == flow.shape[:3]
    if pred.shape != gt.shape or gt.ndim != 3 or not shapes_fit:
        raise ValueError(f"depth_temporal_metrics needs pred, gt (T, H, W), flow (T-1, H, W, 2) and valid "
                         f"(T-1, H, W); got {pred.shape}, {gt.shape}, {flow.shape}, {valid.shape}")
    if alignment == "affine":
        scale, shift = align_affine(pred, gt)
        pred = scale * pred + shift
    elif alignment != "none":
        raise ValueError(f"alignment {alignment!r}: use 'none' or 'affine'")
    gt = np.where(np.isfinite(gt) & (gt > 0), gt, np.nan)
    rows, cols = np.mgrid[0 : gt.shape[1], 0 : gt.shape[2]].astype(np.float64)
    errs, logs, nonfinite = [], [], 0
    for k in range(t - 1):
        x, y = cols + flow[k, ..., 0], rows + flow[k, ..., 1]
        g1, inside = _bilinear(gt[k + 1], x, y)
        mask = valid[k] & inside & np.isfinite(gt[k]) & np.isfinite(flow[k]).all(axis=-1)
        p1, _ = _bilinear(np.where(np.isfinite(pred[k + 1]), pred[k + 1], np.inf), x, y)
        p0, g0, p1, g1 = pred[k][mask], gt[k][mask], p1[mask], g1[mask]
        finite = np.isfinite(p0) & np.isfinite(p1)
        nonfinite += int(np.count_nonzero(~finite))
        p0, p1 = np.maximum(p0, MIN_DEPTH_M), np.maximum(p1, MIN_DEPTH_M)
        errs.append(np.abs((p1 - p0) - (g1 - g0)) / g1)
        logs.append(np.abs(np.log(p1 / p0) - np.log(g1 / g0)))
    err, log = np.concatenate(errs), np.concatenate(logs)
    n = int(err.size)
    scored = n > 0 and not nonfinite
    return {"temporal_abs_rel": float(err.mean()) if scored else float("nan"),
            "temporal_log": float(log.mean()) if scored else float("nan"),
            "pixels": n, "pairs": t - 1, "nonfinite_pixels": nonfinite}


def mean_depth(rows: list[dict[str, float]]) -> dict[str, float]:
    """DEPTH_KEYS averaged over images from per-image ``depth_metrics`` rows, plus the counts behind them.

    Images without a valid pixel are left out (``empty_images`` counts them); an image with a NaN or infinite
    prediction has NaN metrics (deltas aside), and they stay NaN in the average: ``nonfinite_pixels`` and
    ``nonfinite_images`` say why."""
    scored = [r for r in rows if r["pixels"] > 0]
    out = {k: float(np.mean([r[k] for r in scored])) if scored else float("nan") for k in DEPTH_KEYS}
    out["nonfinite_pixels"] = int(sum(r.get("nonfinite_pixels", 0) for r in rows))
    out["nonfinite_images"] = int(sum(1 for r in rows if r.get("nonfinite_pixels", 0)))
    out["empty_images"] = len(rows) - len(scored)
    return out


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int | None = 0) -> np.ndarray:
    """int64 (num_classes, num_classes) counts, rows = ground truth, columns = prediction. Ground-truth pixels
    equal to ``ignore_index`` are skipped; labels outside [0, num_classes) raise ValueError. Sum these over a
    dataset and pass the total to ``miou_from_confusion`` for dataset-accumulated mIoU."""
    p = np.asarray(pred).astype(np.int64).ravel()
    g = np.asarray(gt).astype(np.int64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"prediction has {p.size} pixels but ground truth {g.size}; give label maps of one shape")
    keep = g != ignore_index if ignore_index is not None else np.ones_like(g, dtype=bool)
    p, g = p[keep], g[keep]
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} labels span [{a.min()}, {a.max()}] but num_classes={num_classes}; raise it")
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou_from_confusion(cm: np.ndarray, ignore_index: int | None = 0) -> tuple[float, np.ndarray]:
    """(mIoU, per-class IoU with NaN for classes absent from both prediction and ground truth and for
    ``ignore_index``). IoU = TP / (TP + FP + FN); the mean runs over classes with a defined IoU."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denom > 0, tp / denom, np.nan)
    if ignore_index is not None and 0 <= ignore_index < len(iou):
        iou[ignore_index] = np.nan
    mean = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    return mean, iou


def miou(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int | None = 0) -> float:
    """Mean intersection over union of label maps (any shape; stack images to accumulate over a dataset).
    Pixels whose ground truth is ``ignore_index`` are skipped; a prediction of ``ignore_index`` on a labelled
    pixel counts as a miss (false negative) of that pixel's class."""
    return miou_from_confusion(confusion_matrix(pred, gt, num_classes, ignore_index), ignore_index)[0]


def panoptic_quality(pred_ids: np.ndarray, gt_ids: np.ndarray, void_id: int = 0) -> dict[str, float]:
    """Class-agnostic panoptic quality of two instance-id maps of one shape (COCO rules).

    Segments are the non-void ids. A predicted and a ground-truth segment match when their IoU > 0.5 (unique by
    construction); IoU ignores predicted pixels that fall on void ground truth. Unmatched predicted segments
    lying more than half on void are not counted as false positives.
    PQ = sum IoU(TP) / (TP + FP/2 + FN/2) = SQ * RQ. Returns pq, sq, rq, tp, fp, fn (pq NaN if nothing to score).
    """
    p = np.asarray(pred_ids).astype(np.int64).ravel()
    g = np.asarray(gt_ids).astype(np.int64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"prediction has {p.size} pixels but ground truth {g.size}; give id maps of one shape")
    p_ids, p_inv = np.unique(p, return_inverse=True)
    g_ids, g_inv = np.unique(g, return_inverse=True)
    inter = np.zeros((len(p_ids), len(g_ids)), dtype=np.int64)
    np.add.at(inter, (p_inv, g_inv), 1)
    p_area = inter.sum(axis=1)
    g_area = inter.sum(axis=0)
    g_void = np.flatnonzero(g_ids == void_id)
    p_on_void = inter[:, g_void[0]] if len(g_void) else np.zeros(len(p_ids), dtype=np.int64)
    p_seg = np.flatnonzero(p_ids != void_id)
    g_seg = np.flatnonzero(g_ids != void_id)
    matched_p, matched_g, iou_sum = set(), set(), 0.0
    for i in p_seg:
        for j in g_seg:
            if inter[i, j] == 0:
                continue
            union = p_area[i] - p_on_void[i] + g_area[j] - inter[i, j]
            iou = inter[i, j] / union
            if iou > 0.5:
                matched_p.add(i)
                matched_g.add(j)
                iou_sum += iou
    tp = len(matched_p)
    fn = len(g_seg) - len(matched_g)
    fp = sum(1 for i in p_seg if i not in matched_p and p_on_void[i] <= 0.5 * p_area[i])
    denom = tp + 0.5 * fp + 0.5 * fn
    pq = iou_sum / denom if denom > 0 else float("nan")
    sq = iou_sum / tp if tp else 0.0
    rq = tp / denom if denom > 0 else float("nan")
    return {"pq": float(pq), "sq": float(sq), "rq": float(rq), "tp": tp, "fp": fp, "fn": fn}
