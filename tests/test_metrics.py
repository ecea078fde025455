"""Metrics on hand-computed cases; rgbify.train.metrics must not import torch."""

import math
import subprocess
import sys

import numpy as np
import pytest

import rgbify
from rgbify.train.metrics import (
    depth_metrics,
    depth_metrics_affine,
    mean_depth,
    miou,
    normal_metrics,
    panoptic_quality,
)


def test_metrics_module_does_not_import_torch():
    code = "import sys, rgbify.train.metrics; assert 'torch' not in sys.modules, 'torch imported'"
    root = str(__import__("pathlib").Path(rgbify.__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": root, "PATH": ""})


def test_depth_metrics_hand_computed():
    gt = np.array([[1.0, 2.0], [4.0, np.inf]])
    pred = np.array([[2.0, 2.0], [2.0, 7.0]])  # last pixel excluded (gt inf)
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((1 / 1 + 0 + 2 / 4) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 1 + 0 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    ln2 = math.log(2)
    assert m["rmse_log"] == pytest.approx(math.sqrt((ln2**2 + 0 + ln2**2) / 3))
    assert m["log10"] == pytest.approx(2 * math.log10(2) / 3)
    assert m["delta1"] == pytest.approx(1 / 3)  # ratios 2, 1, 2
    assert m["delta2"] == pytest.approx(1 / 3)  # 1.5625
    assert m["delta3"] == pytest.approx(1 / 3)  # 1.953 < 2 still
    e = np.array([ln2, 0, -ln2])
    assert m["silog"] == pytest.approx(100 * math.sqrt(np.mean(e**2) - np.mean(e) ** 2))
    assert m["i_rmse"] == pytest.approx(math.sqrt(((1 / 2 - 1) ** 2 + 0 + (1 / 2 - 1 / 4) ** 2) / 3))  # 1/m
    assert (m["pixels"], m["nonfinite_pixels"]) == (3, 0)


def test_nonfinite_predictions_are_counted_not_turned_into_numbers():
    gt = np.array([[1.0, 2.0, 4.0, 5.0]])
    pred = np.array([[1.0, np.nan, np.inf, 5.0]])
    m = depth_metrics(pred, gt)
    assert m["nonfinite_pixels"] == 2 and m["pixels"] == 4
    assert all(math.isnan(m[k]) for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "i_rmse", "silog"))
    assert m["delta1"] == 0.5  # the two finite pixels hit, the two others are misses (as Marigold counts them)
    clean = depth_metrics(gt, gt)
    empty = depth_metrics(gt, gt, valid=np.zeros((1, 4), bool))
    mean = mean_depth([m, clean, empty])
    assert math.isnan(mean["abs_rel"]) and mean["delta1"] == pytest.approx(0.75)  # NaN is not skipped
    assert (mean["nonfinite_pixels"], mean["nonfinite_images"], mean["empty_images"]) == (2, 1, 1)
    assert mean_depth([clean, empty])["abs_rel"] == 0.0  # an image without valid pixels is left out


def test_depth_metrics_valid_mask_and_perfect():
    gt = np.array([[1.0, 3.0]])
    m = depth_metrics(gt, gt, valid=np.array([[True, False]]))
    assert m["abs_rel"] == 0 and m["delta1"] == 1 and m["silog"] == 0
    assert math.isnan(depth_metrics(gt, gt, valid=np.zeros((1, 2), bool))["rmse"])


def test_depth_metrics_affine_recovers_scale_shift():
    gt = np.array([[1.0, 2.0, 3.0, 5.0]])
    pred = (gt - 0.5) / 2.0
    m = depth_metrics_affine(pred, gt)
    assert m["scale"] == pytest.approx(2.0) and m["shift"] == pytest.approx(0.5)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-9)


def test_normal_metrics_hand_computed():
    gt = np.array([[[0, 0, -1.0], [0, 0, -1.0], [0, 0, -1.0], [0, 0, 0]]])
    a = math.radians(10)
    b = math.radians(40)
    pred = np.array([[[0, 0, -1.0], [math.sin(a), 0, -math.cos(a)], [0, 2 * math.sin(b), -2 * math.cos(b)], [1, 0, 0]]])
    m = normal_metrics(pred, gt)  # last pixel has no gt normal: excluded
    assert m["mean"] == pytest.approx(50 / 3)
    assert m["median"] == pytest.approx(10)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 100 + 1600) / 3))
    assert m["a5"] == pytest.approx(100 / 3)
    assert m["a11_25"] == pytest.approx(200 / 3)
    assert m["a30"] == pytest.approx(200 / 3)


def test_miou_hand_computed():
    gt = np.array([[0, 1, 1, 2], [2, 2, 1, 0]])
    pred = np.array([[1, 1, 0, 2], [2, 1, 1, 2]])
    # gt-labelled pixels (gt != 0): class1 at (0,1),(0,2),(1,2) -> pred 1,0,1; class2 at (0,3),(1,0),(1,1) -> 2,2,1
    # class1: TP 2, FN 1, FP 1 (pixel (1,1)) -> 2/4; class2: TP 2, FN 1, FP 0 -> 2/3
    assert miou(pred, gt, num_classes=3) == pytest.approx((0.5 + 2 / 3) / 2)


def test_panoptic_quality_hand_computed():
    gt = np.zeros((4, 4), int)
    gt[:2, :2] = 1  # 4 px
    gt[2:, 2:] = 2  # 4 px
    gt[0, 3] = 3  # 1 px, missed
    pred = np.zeros((4, 4), int)
    pred[:2, :2] = 5
    pred[0, 1] = 0  # IoU 3/4 with gt 1
    pred[2:, 2:] = 7
    pred[2, 0] = 9  # a false positive on... void ground truth: not counted
    pred[3, 0:2] = 8  # 2 px on void: not counted either
    pred[2, 2] = 6  # splits gt 2: pred 7 now 3/4 of gt 2 -> match; pred 6 one px in gt 2 -> FP
    m = panoptic_quality(pred, gt)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["sq"] == pytest.approx(0.75)
    assert m["pq"] == pytest.approx(1.5 / (2 + 0.5 + 0.5))


def test_flow_metrics_hand_computed():
    from rgbify.train.metrics import flow_metrics

    gt = np.array([[[10.0, 0.0], [0.0, 0.0]], [[100.0, 0.0], [np.nan, 1.0]]])
    pred = np.array([[[13.0, 4.0], [0.0, 2.0]], [[104.0, 0.0], [5.0, 5.0]]])
    # errors: 5 (outlier: > 3 and > 0.5), 2 (not > 3), 4 (> 3 but not > 5 % of 100); gt NaN: not scored
    m = flow_metrics(pred, gt)
    assert m["pixels"] == 3 and m["nonfinite_pixels"] == 0
    assert m["epe"] == pytest.approx((5 + 2 + 4) / 3)
    assert m["fl_all"] == pytest.approx(1 / 3)
    valid = np.array([[False, True], [True, True]])
    m = flow_metrics(pred, gt, valid)
    assert m["pixels"] == 2 and m["epe"] == pytest.approx(3.0) and m["fl_all"] == 0.0
    # a NaN prediction on a scored pixel: EPE NaN (never a number made up), counted as an outlier
    pred[0, 1] = np.nan
    m = flow_metrics(pred, gt)
    assert math.isnan(m["epe"]) and m["nonfinite_pixels"] == 1 and m["fl_all"] == pytest.approx(2 / 3)
    # zero-magnitude ground truth: an outlier needs only EPE > 3
    m = flow_metrics(np.array([[[3.5, 0.0]]]), np.zeros((1, 1, 2)))
    assert m["epe"] == pytest.approx(3.5) and m["fl_all"] == 1.0
    m = flow_metrics(pred, gt, np.zeros((2, 2), bool))
    assert m["pixels"] == 0 and math.isnan(m["epe"]) and math.isnan(m["fl_all"])
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        flow_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))


def _panning_clip(t: int = 3, h: int = 12, w: int = 16, shift: float = 2.0):
    """Depth of a slanted plane that slides ``shift`` px right per frame and recedes 0.1 m per frame: gt[k](x) =
    2 + 0.05 (x - k shift) + 0.1 k; forward flow (shift, 0) everywhere; the last ceil(shift) columns leave the view."""
    cols = np.arange(w, dtype=np.float64)[None, :].repeat(h, 0)
    gt = np.stack([2 + 0.05 * (cols - k * shift) + 0.1 * k for k in range(t)])
    flow = np.zeros((t - 1, h, w, 2))
    flow[..., 0] = shift
    valid = np.ones((t - 1, h, w), bool)
    valid[:, :, w - int(np.ceil(shift)) :] = False
    return gt, flow, valid


@pytest.mark.parametrize("shift", [2.0, 1.5])  # on pixel centres, and between them (bilinear: exact on a plane)
def test_depth_temporal_metrics_follow_the_flow(shift):
    from rgbify.train.metrics import depth_temporal_metrics

    gt, flow, valid = _panning_clip(shift=shift)
    perfect = depth_temporal_metrics(gt, gt, flow, valid)
    assert perfect["temporal_abs_rel"] < 1e-12 and perfect["temporal_log"] < 1e-12 and perfect["pairs"] == 2
    assert perfect["pixels"] == 2 * 12 * 14  # the 2 columns of each pair that leave the view are not scored
    # a constant wrong scale: the change of depth is scaled too (0.1 m per frame becomes 0.13), the ratio is not
    scaled = depth_temporal_metrics(1.3 * gt, gt, flow, valid)
    g1 = gt[:-1, :, :14] + 0.1  # gt[k+1] at p' (the plane slides with the flow and recedes 0.1 m)
    assert scaled["temporal_abs_rel"] == pytest.approx(np.mean(0.3 * 0.1 / g1)) and scaled["temporal_log"] < 1e-12
    assert depth_temporal_metrics(1.3 * gt + 0.5, gt, flow, valid, alignment="affine")["temporal_abs_rel"] < 1e-9
    # flicker: every other frame 10 % too far; a per-clip fit cannot remove it
    flicker = gt * np.array([1.0, 1.1, 1.0])[:, None, None]
    m = depth_temporal_metrics(flicker, gt, flow, valid, alignment="affine")
    assert depth_temporal_metrics(flicker, gt, flow, valid)["temporal_log"] == pytest.approx(np.log(1.1))
    assert m["temporal_log"] > 0.05
    # frames right one by one but read without following the flow: the error the warp removes
    still = depth_temporal_metrics(gt, gt, np.zeros_like(flow), valid)
    assert still["temporal_abs_rel"] < 1e-12  # the same mistake on both sides cancels...
    wrong = gt.copy()
    wrong[1:] = np.roll(gt[1:], 1, axis=2)  # ...a prediction one pixel off in the later frames does not: 0.05 m
    m = depth_temporal_metrics(wrong, gt, flow, valid)
    assert m["temporal_abs_rel"] > 0.01 and m["pixels"] < perfect["pixels"] + 1


def test_depth_temporal_metrics_nonfinite_and_shapes():
    from rgbify.train.metrics import depth_temporal_metrics

    gt, flow, valid = _panning_clip()
    pred = gt.copy()
    pred[1, 5, 6] = np.nan  # read at p' by pixel (5, 4) of pair 0 (on a pixel centre: it alone) and at p in pair 1
    m = depth_temporal_metrics(pred, gt, flow, valid)
    assert math.isnan(m["temporal_abs_rel"]) and math.isnan(m["temporal_log"]) and m["nonfinite_pixels"] == 2
    with pytest.raises(ValueError, match="T-1"):
        depth_temporal_metrics(gt, gt, flow[:1], valid)
    with pytest.raises(ValueError, match="alignment"):
        depth_temporal_metrics(gt, gt, flow, valid, alignment="scale")
