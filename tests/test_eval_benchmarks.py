"""``rgbify eval --benchmark``: readers of each benchmark's released layout, the protocols and the ensembles.

Every fixture is written here in the benchmark's exact layout and formats (Marigold's tar member names ``./path``,
16-bit PNG depth, ETH3D's headerless float32, DIODE's .npy depth and mask, Marigold's *_img.png + *_normal.npy
normals, Cityscapes' leftImg8bit/gtFine, NYUv2's HDF5 .mat files), tiny. Expected values are computed in the test
with plain NumPy (np.polyfit for the least squares), never with rgbify's metric functions.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from rgbify.errors import UserError
from rgbify.train.benchmarks import protocol as P
from rgbify.train.benchmarks.evaluate import EvalOptions, evaluate_benchmark
from tests.oracles.depth_metrics import depth_formulas

# ---------------------------------------------------------------------------------------------------------------
# fixtures in the released layouts


def _png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format=fmt)
    return b.getvalue()


def _npy_bytes(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


class Layout:
    """Writes files under a folder, or as members ``./<path>`` of a tar (as Marigold's tars are)."""

    def __init__(self, root: Path, tar: bool):
        self.root, self.tar = root, tar
        self.files: dict[str, bytes] = {}

    def add(self, rel: str, data: bytes) -> None:
        self.files[rel] = data

    def close(self) -> Path:
        if self.tar:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(self.root, "w") as t:
                for rel, data in self.files.items():
                    info = tarfile.TarInfo("./" + rel)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        else:
            for rel, data in self.files.items():
                (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                (self.root / rel).write_bytes(data)
        return self.root


def _image(h: int, w: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.random.default_rng(seed).integers(0, 40, (h, w))
    return np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), r], -1).astype(np.uint8)


def _depth(h: int, w: int, seed: int, lo: float, hi: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return lo + (hi - lo) * (0.5 * (yy + xx) + 0.5 * rng.random((h, w))) / 1.5


def write_nyu(root: Path, n: int = 2) -> dict[str, np.ndarray]:
    """Marigold's nyu_labeled_extracted.tar: test/<scene>/rgb_NNNN.png, depth_NNNN.png (mm), filled_NNNN.png."""
    lay, gts = Layout(root, tar=True), {}
    for i in range(n):
        mm = np.round(_depth(480, 640, i, 0.3, 12.0) * 1000).astype(np.uint16)  # some beyond the 10 m range
        mm[:30, :50] = 0  # no value
        stem = f"test/bedroom_{i:04d}"
        lay.add(f"{stem}/rgb_{i + 1:04d}.png", _png_bytes(_image(480, 640, i)))
        lay.add(f"{stem}/depth_{i + 1:04d}.png", _png_bytes(mm))
        lay.add(f"{stem}/filled_{i + 1:04d}.png", _png_bytes(np.maximum(mm, 500).astype(np.uint16)))
        gts[f"{stem}/rgb_{i + 1:04d}.png"] = mm.astype(np.float64) / 1000.0
    lay.close()
    return gts


def write_kitti(root: Path) -> dict[str, np.ndarray]:
    """Marigold's KITTI Eigen test layout: <date>/<drive>/image_02/data/N.png, <drive>/proj_depth/groundtruth/
    image_02/N.png (uint16, metres x 256, 0 = no LiDAR point); one image has no ground truth (skipped)."""
    lay, gts = Layout(root, tar=False), {}
    drive = "2011_09_26_drive_0002_sync"
    for i, frame in enumerate(("0000000069", "0000000054", "0000000075")):
        lay.add(f"2011_09_26/{drive}/image_02/data/{frame}.png", _png_bytes(_image(375, 1242, i)))
        if frame == "0000000075":
            continue
        d = _depth(375, 1242, i, 2.0, 95.0)  # some beyond 80 m
        v = np.round(d * 256).astype(np.uint16)
        v[np.random.default_rng(i).random(d.shape) < 0.7] = 0  # sparse, as projected LiDAR
        lay.add(f"{drive}/proj_depth/groundtruth/image_02/{frame}.png", _png_bytes(v))
        gts[f"2011_09_26/{drive}/image_02/data/{frame}.png"] = v
    lay.close()
    return gts


def write_eth3d(root: Path) -> dict[str, np.ndarray]:
    """Marigold's eth3d.tar: rgb/<scene>/images/dslr_images/DSC_N.JPG and depth/<scene>_dslr_depth/<scene>/
    ground_truth_depth/dslr_images/DSC_N.JPG, the latter headerless little-endian float32, inf = no value."""
    lay, gts = Layout(root, tar=True), {}
    for i, scene in enumerate(("office", "courtyard")):
        d = _depth(12, 18, i, 0.5, 30.0).astype(np.float32)
        d[2:4, 3:9] = np.inf
        name = f"DSC_{219 + i:04d}.JPG"
        lay.add(f"rgb/{scene}/images/dslr_images/{name}", _png_bytes(_image(12, 18, i), "JPEG"))
        lay.add(f"depth/{scene}_dslr_depth/{scene}/ground_truth_depth/dslr_images/{name}", d.astype("<f4").tobytes())
        gts[f"rgb/{scene}/images/dslr_images/{name}"] = d.astype(np.float64)
    lay.close()
    return gts


def write_scannet(root: Path) -> dict[str, np.ndarray]:
    """Marigold's ScanNet sample: <scene>/color/N.jpg and <scene>/depth/N.png (uint16 mm)."""
    lay, gts = Layout(root, tar=False), {}
    for i, scene in enumerate(("scene0406_02", "scene0088_02")):
        mm = np.round(_depth(24, 32, i, 0.4, 11.0) * 1000).astype(np.uint16)
        lay.add(f"{scene}/color/000300.jpg", _png_bytes(_image(24, 32, i), "JPEG"))
        lay.add(f"{scene}/depth/000300.png", _png_bytes(mm))
        gts[f"{scene}/color/000300.jpg"] = mm.astype(np.float64) / 1000
    lay.close()
    return gts


def write_diode(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """DIODE val as Marigold reads it: indoors|outdoor/scene_N/scan_N/NAME.png, NAME_depth.npy (H, W, 1) metres,
    NAME_depth_mask.npy (H, W)."""
    lay, gts = Layout(root, tar=True), {}
    for i, (kind, scene) in enumerate((("indoors", "00021_00189"), ("outdoor", "00022_00196"))):
        d = _depth(16, 20, i, 0.3, 400.0).astype(np.float32)
        mask = np.random.default_rng(10 + i).random(d.shape) < 0.8
        d[~mask & (np.arange(20) % 2 == 0)] = 0
        d[5, 5], d[6, 6] = 0.4, 380.0  # inside the mask, outside 0.6..350 m: scored, predictions clipped
        mask[5, 5] = mask[6, 6] = True
        base = f"{kind}/scene_{scene[:5]}/scan_{scene[6:]}/{scene}_{kind}_200_010"
        lay.add(f"{base}.png", _png_bytes(_image(16, 20, i)))
        lay.add(f"{base}_depth.npy", _npy_bytes(d[..., None]))
        lay.add(f"{base}_depth_mask.npy", _npy_bytes(mask.astype(np.float32)))
        gts[f"{base}.png"] = (d.astype(np.float64), mask)
    lay.close()
    return gts


# ---------------------------------------------------------------------------------------------------------------
# independent reference computations (plain NumPy, Marigold's formulas)


def ref_depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    return depth_formulas(pred[valid], gt[valid])


def nyu_valid(gt: np.ndarray) -> np.ndarray:
    v = (gt > 1e-3) & (gt < 10.0)
    crop = np.zeros_like(v)
    crop[45:471, 41:601] = True
    return v & crop


def _save_preds(folder: Path, preds: dict[str, np.ndarray]) -> Path:
    for rel, arr in preds.items():
        path = folder / Path(rel).with_suffix(".npy")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
    return folder


def _mean_rows(rows: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


# ---------------------------------------------------------------------------------------------------------------
# depth


def test_nyu_least_squares_crop_range_and_metrics_match_an_independent_computation(tmp_path):
    gts = write_nyu(tmp_path / "nyuv2" / "nyu_labeled_extracted.tar")
    rng = np.random.default_rng(5)
    preds, expected = {}, []
    for rel, gt in gts.items():
        pred = (0.4 * gt + 0.25 + 0.05 * rng.standard_normal(gt.shape)).astype(np.float32)
        pred[100:110, 100:300] = 40.0  # aligned far beyond 10 m: clipped to the range
        preds[rel] = pred
        valid = nyu_valid(gt)
        scale, shift = np.polyfit(pred[valid].astype(np.float64), gt[valid], 1)
        aligned = np.clip(np.clip(pred * scale + shift, 1e-3, 10.0), 1e-6, None)
        expected.append(ref_depth_metrics(aligned, gt, valid))
    _save_preds(tmp_path / "pred", preds)
    report, rows = evaluate_benchmark(
        "nyuv2", str(tmp_path / "nyuv2" / "nyu_labeled_extracted.tar"), predictions=str(tmp_path / "pred")
    )
    want = _mean_rows(expected)
    for k, v in want.items():
        assert report["depth"][k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    assert report["depth"]["abs_rel"] > 0.01  # not a trivially perfect case
    assert [r["pixels"] for r in rows] == [int(nyu_valid(g).sum()) for g in gts.values()]
    head = report["benchmark"]
    assert (head["images"], head["standard_images"], head["crop"], head["alignment"]) == (2, 654, "eigen", "depth")
    assert head["complete"] is False and head["comparable"].startswith("not comparable")
    assert head["depth_range_m"] == [1e-3, 10.0]


@pytest.mark.parametrize("name", ["nyuv2", "eth3d"])
def test_marigolds_own_prediction_folders_are_read_as_they_are(tmp_path, name):
    """Marigold's infer.py names predictions pred_<id>.npy (NYUv2: rgb_0001.png -> pred_0001.npy; others:
    DSC_0219.JPG -> pred_DSC_0219.npy) beside the image's relative folder; they score as rgbify-named ones."""
    root = tmp_path / f"{name}.tar"
    gts = write_nyu(root) if name == "nyuv2" else write_eth3d(root)
    rng = np.random.default_rng(2)
    preds = {rel: rng.random(gt.shape) + 0.5 for rel, gt in gts.items()}
    _save_preds(tmp_path / "ours", preds)
    for rel, arr in preds.items():
        stem = Path(rel).stem.split("_", 1)[1] if name == "nyuv2" else Path(rel).stem
        path = tmp_path / "marigold" / Path(rel).parent / f"pred_{stem}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
    assert not (tmp_path / "marigold" / Path(next(iter(gts))).with_suffix(".npy")).exists()
    ours = evaluate_benchmark(name, str(root), predictions=str(tmp_path / "ours"))[0]["depth"]
    theirs = evaluate_benchmark(name, str(root), predictions=str(tmp_path / "marigold"))[0]["depth"]
    assert ours == theirs and np.isfinite(ours["abs_rel"])


def test_disparity_alignment_recovers_an_affine_in_disparity_prediction(tmp_path):
    gts = write_nyu(tmp_path / "nyu.tar", n=1)
    ((rel, gt),) = gts.items()
    disparity = 0.3 / np.where(gt > 0, gt, 1.0) + 0.05  # affine in the ground truth's disparity
    _save_preds(tmp_path / "as_depth", {rel: (1.0 / disparity).astype(np.float64)})
    _save_preds(tmp_path / "as_disp", {rel: disparity})
    root = str(tmp_path / "nyu.tar")
    disp = evaluate_benchmark(
        "nyuv2", root, predictions=str(tmp_path / "as_depth"), options=EvalOptions(alignment="disparity")
    )[0]["depth"]
    assert disp["abs_rel"] < 1e-6 and disp["delta1"] == 1.0
    kind = evaluate_benchmark(
        "nyuv2",
        root,
        predictions=str(tmp_path / "as_disp"),
        options=EvalOptions(alignment="disparity", prediction_kind="disparity"),
    )[0]["depth"]
    assert kind["abs_rel"] < 1e-6
    depth = evaluate_benchmark("nyuv2", root, predictions=str(tmp_path / "as_depth"))[0]["depth"]
    valid = nyu_valid(gt)
    pred = 1.0 / disparity
    s, t = np.polyfit(pred[valid], gt[valid], 1)
    assert depth["abs_rel"] == pytest.approx(ref_depth_metrics(np.clip(pred * s + t, 1e-3, 10), gt, valid)["abs_rel"])
    assert depth["abs_rel"] > 0.01  # a depth fit cannot undo the inversion


def test_nonfinite_predictions_are_counted_never_scored_as_numbers(tmp_path):
    gts = write_nyu(tmp_path / "nyu.tar", n=2)
    preds = {rel: gt.astype(np.float32).copy() for rel, gt in gts.items()}
    first, second = list(gts)
    preds[first][200, 200:210] = np.nan
    preds[first][300, 300:303] = np.inf
    preds[first][0, 0] = np.nan  # outside the valid mask: not counted
    _save_preds(tmp_path / "pred", preds)
    valid = nyu_valid(gts[first])
    bad = int(valid[200, 200:210].sum() + valid[300, 300:303].sum())
    assert bad > 5 and not valid[0, 0]
    for alignment in ("none", "depth", "disparity"):
        report, rows = evaluate_benchmark(
            "nyuv2",
            str(tmp_path / "nyu.tar"),
            predictions=str(tmp_path / "pred"),
            options=EvalOptions(alignment=alignment),
        )
        d = report["depth"]
        assert d["nonfinite_pixels"] == bad and d["nonfinite_images"] == 1, alignment
        assert np.isnan(d["abs_rel"]) and np.isnan(d["rmse"]) and np.isnan(d["i_rmse"]), alignment
        assert rows[0]["delta1"] == pytest.approx((valid.sum() - bad) / valid.sum())  # misses, as in Marigold
        assert rows[1]["abs_rel"] == pytest.approx(0.0, abs=1e-6) and rows[1]["nonfinite_pixels"] == 0


def test_kitti_png_scale_benchmark_crop_and_eigen_garg_crops(tmp_path):
    gts = write_kitti(tmp_path / "kitti")
    top, left = 375 - 352, (1242 - 1216) // 2
    preds, metres = {}, {}
    for rel, v in gts.items():
        d = v[top : top + 352, left : left + 1216].astype(np.float64) / 256.0  # the x256 PNG read right
        metres[rel] = d
        preds[rel] = np.where(d > 0, d, 7.0)
    _save_preds(tmp_path / "pred", preds)
    report, rows = evaluate_benchmark(
        "kitti", str(tmp_path / "kitti"), predictions=str(tmp_path / "pred"), options=EvalOptions(alignment="none")
    )
    assert report["benchmark"]["images"] == 2  # the image without ground truth is left out
    assert report["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-12) and report["depth"]["delta1"] == 1.0

    def crop_valid(d, rows_frac, cols_frac):
        h, w = d.shape
        c = np.zeros(d.shape, bool)
        c[int(rows_frac[0] * h) : int(rows_frac[1] * h), int(cols_frac[0] * w) : int(cols_frac[1] * w)] = True
        return (d > 1e-5) & (d < 80) & c

    eigen = [crop_valid(metres[k], (0.3324324, 0.91351351), (0.0359477, 0.96405229)) for k in sorted(metres)]
    assert [r["pixels"] for r in rows] == [int(m.sum()) for m in eigen]
    garg_rows = evaluate_benchmark(
        "kitti",
        str(tmp_path / "kitti"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(alignment="none", crop="garg"),
    )[1]
    garg = [crop_valid(metres[k], (0.40810811, 0.99189189), (0.03594771, 0.96405229)) for k in sorted(metres)]
    assert [r["pixels"] for r in garg_rows] == [int(m.sum()) for m in garg] != [int(m.sum()) for m in eigen]
    # the same PNGs read as millimetres (the old silent default) give another, wrong, answer
    wrong = evaluate_benchmark(
        "kitti",
        str(tmp_path / "kitti"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(alignment="none", depth_scale=1000.0),
    )[0]["depth"]
    expected = []
    for rel, v in gts.items():
        g = v[top : top + 352, left : left + 1216].astype(np.float64) / 1000.0
        valid = crop_valid(g, (0.3324324, 0.91351351), (0.0359477, 0.96405229))
        expected.append(ref_depth_metrics(np.clip(preds[rel], 1e-5, 80), g, valid)["abs_rel"])
    assert wrong["abs_rel"] == pytest.approx(np.mean(expected)) and wrong["abs_rel"] > 1.0


def _eth3d_valid(d):
    return np.isfinite(d) & (d > 1e-5)


@pytest.mark.parametrize("name", ["eth3d", "scannet", "diode", "diode-indoor", "diode-outdoor"])
def test_each_depth_layout_reads_right(tmp_path, name):
    """A prediction equal to the ground truth scores zero error on exactly the pixels the protocol keeps."""
    if name == "eth3d":
        gts, root = write_eth3d(tmp_path / "eth3d.tar"), tmp_path / "eth3d.tar"
        valid = {k: _eth3d_valid(d) for k, d in gts.items()}
    elif name == "scannet":
        gts, root = write_scannet(tmp_path / "scannet"), tmp_path / "scannet"
        valid = {k: (d > 1e-3) & (d < 10) for k, d in gts.items()}
    else:
        both, root = write_diode(tmp_path / "diode_val.tar"), tmp_path / "diode_val.tar"
        part = {"diode": "", "diode-indoor": "indoors/", "diode-outdoor": "outdoor/"}[name]
        gts = {k: d for k, (d, _) in both.items() if k.startswith(part)}
        valid = {k: m & (d > 0) for k, (d, m) in both.items() if k.startswith(part)}  # the mask; no range
    preds = {k: np.where(np.isfinite(d) & (d > 0), d, 3.0) for k, d in gts.items()}
    _save_preds(tmp_path / "pred", preds)
    report, rows = evaluate_benchmark(
        name, str(root), predictions=str(tmp_path / "pred"), options=EvalOptions(alignment="none")
    )
    assert report["benchmark"]["images"] == len(gts) and [r["image"] for r in rows] == sorted(gts)
    assert [r["pixels"] for r in rows] == [int(valid[k].sum()) for k in sorted(gts)]
    if name.startswith("diode"):  # DIODE values outside 0.6..350 m are clipped: not zero error
        expected = [ref_depth_metrics(np.clip(preds[k], 0.6, 350), gts[k], valid[k])["abs_rel"] for k in sorted(gts)]
        assert report["depth"]["abs_rel"] == pytest.approx(np.mean(expected)) and report["depth"]["abs_rel"] > 0
    else:
        assert report["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-7)


def test_eth3d_fit_at_1024_px_is_the_copy_marigolds_code_makes():
    """Marigold's align_depth_least_square thins with torch's Upsample on a (1, H, W) tensor: torch reads that as
    (batch, channels, length) and thins the columns only. rgbify fits on the same copy (so ETH3D numbers agree)."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((1500, 2100))
    s = min(1024 / 1500, 1024 / 2100)
    ref = torch.nn.Upsample(scale_factor=s, mode="nearest")(torch.from_numpy(x)[None])[0].numpy()
    assert ref.shape == (1500, 1024)
    np.testing.assert_array_equal(P._nearest_copy(x, 1024), ref)
    np.testing.assert_array_equal(P._nearest_copy(x[:900, :1000], 1024), x[:900, :1000])  # small: the image itself


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    gts = write_eth3d(tmp_path / "eth3d.tar")
    _save_preds(tmp_path / "pred", {k: d for k, d in gts.items()})
    root, pred = str(tmp_path / "eth3d.tar"), str(tmp_path / "pred")
    with pytest.raises(UserError, match="--depth-scale is for benchmarks with 16-bit PNG depth"):
        evaluate_benchmark("eth3d", root, predictions=pred, options=EvalOptions(depth_scale=1000))
    with pytest.raises(UserError, match="--crop eigen: eth3d has the crops none"):
        evaluate_benchmark("eth3d", root, predictions=pred, options=EvalOptions(crop="eigen"))
    with pytest.raises(UserError, match="not one rgbify knows"):
        evaluate_benchmark("nyu", root, predictions=pred)
    with pytest.raises(UserError, match="no eth3d image with its ground truth"):
        evaluate_benchmark("eth3d", str(tmp_path / "pred"), predictions=pred)
    first = sorted(gts)[0]
    np.save(tmp_path / "pred" / Path(first).with_suffix(".npy"), np.zeros((5, 5)))
    with pytest.raises(UserError, match=r"has shape \(5, 5\)"):
        evaluate_benchmark("eth3d", root, predictions=pred)
    (tmp_path / "pred" / Path(first).with_suffix(".npy")).unlink()
    with pytest.raises(UserError, match="1 of 2 prediction files are missing"):
        evaluate_benchmark("eth3d", root, predictions=pred)


def test_eth3d_raw_depth_of_the_wrong_size_is_refused(tmp_path):
    lay = Layout(tmp_path / "eth3d", tar=False)
    lay.add("rgb/office/images/dslr_images/DSC_0001.JPG", _png_bytes(_image(12, 18, 0), "JPEG"))
    lay.add("depth/office_dslr_depth/office/ground_truth_depth/dslr_images/DSC_0001.JPG", b"\0" * 100)
    lay.close()
    _save_preds(tmp_path / "pred", {"rgb/office/images/dslr_images/DSC_0001.JPG": np.ones((12, 18))})
    with pytest.raises(UserError, match="holds 100 bytes, not the 864"):
        evaluate_benchmark("eth3d", str(tmp_path / "eth3d"), predictions=str(tmp_path / "pred"))


def test_split_file_in_marigolds_format(tmp_path):
    write_kitti(tmp_path / "kitti")
    drive = "2011_09_26_drive_0002_sync"
    lines = [
        f"2011_09_26/{drive}/image_02/data/0000000054.png {drive}/proj_depth/groundtruth/image_02/0000000054.png "
        "721.5377",
        f"2011_09_26/{drive}/image_02/data/0000000075.png None 721.5377",
    ]
    (tmp_path / "list.txt").write_text("\n".join(lines))
    rel = f"2011_09_26/{drive}/image_02/data/0000000054.png"
    _save_preds(tmp_path / "pred", {rel: np.full((352, 1216), 10.0)})
    report, rows = evaluate_benchmark(
        "kitti",
        str(tmp_path / "kitti"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(split_file=str(tmp_path / "list.txt")),
    )
    assert [r["image"] for r in rows] == [rel] and report["benchmark"]["split"].startswith("other")
    (tmp_path / "bad.txt").write_text(f"{rel} nothing/here.png\n")
    with pytest.raises(UserError, match="line 1: nothing/here.png is not in --root"):
        evaluate_benchmark(
            "kitti",
            str(tmp_path / "kitti"),
            predictions=str(tmp_path / "pred"),
            options=EvalOptions(split_file=str(tmp_path / "bad.txt")),
        )


# ---------------------------------------------------------------------------------------------------------------
# normals


def _rotate_by(n: np.ndarray, theta_deg: np.ndarray, rng) -> np.ndarray:
    """Each unit vector of (P, 3) ``n`` turned by its angle about an axis perpendicular to it."""
    axis = np.cross(n, rng.standard_normal(n.shape))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    t = np.radians(theta_deg)[:, None]
    return n * np.cos(t) + np.cross(axis, n) * np.sin(t)


def test_normals_per_image_and_pooled_with_frames(tmp_path):
    rng = np.random.default_rng(3)
    lay = Layout(tmp_path / "nyuv2" / "test", tar=False)
    preds, errs = {}, []
    for i, (h, w) in enumerate(((6, 8), (5, 9))):
        n_cv = rng.standard_normal((h, w, 3))
        n_cv[..., 2] = -np.abs(n_cv[..., 2])  # facing the camera
        n_cv /= np.linalg.norm(n_cv, axis=-1, keepdims=True)
        theta = rng.uniform(0, 40, (h, w))
        pred = _rotate_by(n_cv.reshape(-1, 3), theta.ravel(), rng).reshape(h, w, 3)
        gt = n_cv * np.array([1.0, -1.0, -1.0])  # Marigold's files: x right, y up, z toward the viewer
        gt[0, :3] = 0  # no ground truth
        lay.add(f"{i:06d}_img.png", _png_bytes(_image(h, w, i)))
        lay.add(f"{i:06d}_normal.npy", _npy_bytes(gt.astype(np.float32)))
        preds[f"{i:06d}_img.png"] = pred
        keep = np.ones((h, w), bool)
        keep[0, :3] = False
        errs.append(theta[keep])
    lay.close()
    _save_preds(tmp_path / "pred", preds)
    report, rows = evaluate_benchmark(
        "nyuv2-normals", str(tmp_path / "nyuv2" / "test"), predictions=str(tmp_path / "pred")
    )
    per, pooled = report["normals_per_image"], report["normals_pooled"]
    assert per["mean_angular_error"] == pytest.approx(np.mean([e.mean() for e in errs]), abs=1e-4)
    assert per["median_angular_error"] == pytest.approx(np.mean([np.median(e) for e in errs]), abs=1e-4)
    assert per["sub11_25_error"] == pytest.approx(np.mean([100 * np.mean(e < 11.25) for e in errs]))
    allerr = np.concatenate(errs)
    assert pooled["mean"] == pytest.approx(allerr.mean(), abs=1e-4)
    assert pooled["median"] == pytest.approx(np.median(allerr), abs=1e-4)
    assert pooled["rmse"] == pytest.approx(np.sqrt(np.mean(allerr**2)), abs=1e-4)
    assert pooled["a30"] == pytest.approx(100 * np.mean(allerr < 30)) and pooled["pixels"] == allerr.size
    assert per["mean_angular_error"] != pytest.approx(pooled["mean"], abs=1e-6)  # two different averages
    marigold = {rel: np.moveaxis(pred * np.array([1.0, -1.0, -1.0]), -1, 0) for rel, pred in preds.items()}
    _save_preds(tmp_path / "marigold", marigold)  # Marigold's own: (3, H, W) in the files' frame, at the same name
    theirs = evaluate_benchmark(
        "nyuv2-normals",
        str(tmp_path / "nyuv2" / "test"),
        predictions=str(tmp_path / "marigold"),
        options=EvalOptions(prediction_frame="rub"),
    )[0]
    assert theirs["normals_pooled"]["mean"] == pytest.approx(pooled["mean"], abs=1e-9)
    assert theirs["normals_per_image"] == pytest.approx(per) and theirs["benchmark"]["prediction_frame"] == "rub"
    wrong = evaluate_benchmark(
        "nyuv2-normals",
        str(tmp_path / "nyuv2" / "test"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(normals_frame="opencv"),
    )[0]
    assert wrong["normals_pooled"]["mean"] > 60  # the frame matters


NORMALS_LAYOUTS = {  # Marigold's normals sets: (image, ground truth) relative paths, as its data_split lists
    "scannet-normals": ("scene0001_01/001170_img.png", "scene0001_01/001170_normal.npy"),
    "ibims-normals": ("corridor_01_img.png", "corridor_01_normal.npy"),
    "diode-normals": (
        "outdoor/scene_00024/scan_00201/00024_00201_outdoor_070_030.png",
        "outdoor/scene_00024/scan_00201/00024_00201_outdoor_070_030_normal.npy",
    ),
    "oasis-normals": ("268584_ALI_img.png", "268584_ALI_normal.npy"),
}


@pytest.mark.parametrize("name", sorted(NORMALS_LAYOUTS))
@pytest.mark.parametrize("tar", [False, True])
def test_each_normals_layout_reads_right(tmp_path, name, tar):
    rgb_rel, gt_rel = NORMALS_LAYOUTS[name]
    rng = np.random.default_rng(4)
    n_cv = rng.standard_normal((5, 7, 3))
    n_cv /= np.linalg.norm(n_cv, axis=-1, keepdims=True)
    gt = n_cv * np.array([1.0, -1.0, -1.0])  # the files' frame: x right, y up, z toward the viewer
    gt[0, 0] = 0  # no ground truth
    root = tmp_path / ("set.tar" if tar else "set")
    lay = Layout(root, tar=tar)
    lay.add(rgb_rel, _png_bytes(_image(5, 7, 0)))
    lay.add(gt_rel, _npy_bytes(gt.astype(np.float32)))
    lay.add("readme.txt", b"not an image")
    lay.close()
    _save_preds(tmp_path / "pred", {rgb_rel: n_cv})
    report, rows = evaluate_benchmark(name, str(root), predictions=str(tmp_path / "pred"))
    assert [r["image"] for r in rows] == [rgb_rel] and rows[0]["pixels"] == 34
    assert report["normals_pooled"]["mean"] < 0.05 and report["normals_per_image"]["sub5_error"] == 100.0


# ---------------------------------------------------------------------------------------------------------------
# semantic


def test_cityscapes_miou_through_a_class_map(tmp_path):
    rng = np.random.default_rng(7)
    lay = Layout(tmp_path / "cityscapes", tar=False)
    label_ids = rng.choice([0, 7, 26, 23, 4], size=(2, 6, 10))  # unlabeled, road, car, sky, static
    ours = rng.choice([1, 2, 3, 9], size=(2, 6, 10))  # our labels; 9 is not in the map
    preds = {}
    for i, city in enumerate(("frankfurt", "lindau")):
        name = f"{city}_000000_{i:06d}"
        lay.add(f"leftImg8bit/val/{city}/{name}_leftImg8bit.png", _png_bytes(_image(6, 10, i)))
        lay.add(f"gtFine/val/{city}/{name}_gtFine_labelIds.png", _png_bytes(label_ids[i].astype(np.uint8)))
        preds[f"leftImg8bit/val/{city}/{name}_leftImg8bit.png"] = ours[i]
    lay.close()
    _save_preds(tmp_path / "pred", preds)
    cmap = tmp_path / "map.json"
    cmap.write_text(json.dumps({"1": "road", "2": 13, "3": "sky"}))
    report, _ = evaluate_benchmark(
        "cityscapes",
        str(tmp_path / "cityscapes"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(class_map=str(cmap)),
    )
    gt_train = {7: 0, 26: 13, 23: 10}
    g = np.vectorize(lambda v: gt_train.get(int(v), 255))(label_ids).ravel()
    p = np.vectorize(lambda v: {1: 0, 2: 13, 3: 10}.get(int(v), -1))(ours).ravel()
    keep = g != 255
    ious = []
    for c in (0, 10, 13):
        tp = np.sum((p == c) & (g == c) & keep)
        fp = np.sum((p == c) & (g != c) & keep)
        fn = np.sum((p != c) & (g == c) & keep)
        ious.append(tp / (tp + fp + fn))
    assert report["semantic"]["miou"] == pytest.approx(np.mean(ious))
    assert report["iou_per_class"]["car"] == pytest.approx(ious[2])
    assert np.isnan(report["iou_per_class"]["bus"])  # absent from both: not in the mean
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": "roads"}))
    with pytest.raises(UserError, match="'roads' is not a cityscapes class"):
        evaluate_benchmark(
            "cityscapes",
            str(tmp_path / "cityscapes"),
            predictions=str(tmp_path / "pred"),
            options=EvalOptions(class_map=str(bad)),
        )


def _write_cityscapes(root: Path, label_ids: np.ndarray) -> list[str]:
    lay, rels = Layout(root, tar=False), []
    for i, ids in enumerate(label_ids):
        name = f"lindau_000000_{i:06d}"
        lay.add(f"leftImg8bit/val/lindau/{name}_leftImg8bit.png", _png_bytes(_image(*ids.shape, i)))
        lay.add(f"gtFine/val/lindau/{name}_gtFine_labelIds.png", _png_bytes(ids.astype(np.uint8)))
        rels.append(f"leftImg8bit/val/lindau/{name}_leftImg8bit.png")
    lay.close()
    return rels


def _ref_miou(p: np.ndarray, g: np.ndarray, classes, ignore) -> float:
    keep = g != ignore
    ious = []
    for c in classes:
        tp, fp, fn = (
            np.sum((p == c) & (g == c) & keep),
            np.sum((p == c) & (g != c) & keep),
            np.sum((p != c) & (g == c) & keep),
        )
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    return float(np.mean(ious))


def test_published_class_map_scores_our_labels_on_cityscapes(tmp_path, monkeypatch):
    """--class-map published: our semantic labels (1 + position in the class table) through the vocabulary's
    published Cityscapes table; a class mapped to an ignored label ("static") or to None is a miss; label 0 (no
    class hit) is sky."""
    import rgbify.scenes.classes as vocabulary

    monkeypatch.setattr(
        vocabulary,
        "CITYSCAPES",
        {"road": "road", "car": "car", "tree": "vegetation", "bench": "static", "chair": None},
        raising=False,
    )
    ours = {n: vocabulary.CLASSES.index(n) + 1 for n in ("road", "car", "tree", "bench", "chair")}
    rng = np.random.default_rng(21)
    label_ids = rng.choice([7, 26, 21, 23, 4, 0], size=(2, 6, 9))  # road car vegetation sky static unlabeled
    rels = _write_cityscapes(tmp_path / "cityscapes", label_ids)
    pred = rng.choice([0, *ours.values()], size=(2, 6, 9))
    _save_preds(tmp_path / "pred", dict(zip(rels, pred, strict=True)))
    report, _ = evaluate_benchmark(
        "cityscapes",
        str(tmp_path / "cityscapes"),
        predictions=str(tmp_path / "pred"),
        options=EvalOptions(class_map="published"),
    )
    train = {7: 0, 26: 13, 21: 8, 23: 10}
    g = np.vectorize(lambda v: train.get(int(v), 255))(label_ids)
    to_train = {0: 10, ours["road"]: 0, ours["car"]: 13, ours["tree"]: 8}  # bench, chair: -1
    p = np.vectorize(lambda v: to_train.get(int(v), -1))(pred)
    assert report["semantic"]["miou"] == pytest.approx(_ref_miou(p, g, range(19), 255))
    assert report["benchmark"]["class_map"] == "published" and report["iou_per_class"]["sky"] > 0
    monkeypatch.delattr(vocabulary, "CITYSCAPES")
    with pytest.raises(UserError, match="no published map to cityscapes"):
        evaluate_benchmark(
            "cityscapes",
            str(tmp_path / "cityscapes"),
            predictions=str(tmp_path / "pred"),
            options=EvalOptions(class_map="published"),
        )


def test_the_vocabularys_published_maps_name_real_benchmark_classes():
    """Every target of rgbify's published tables is spelled as the benchmark spells it (else it would silently
    drop out of the map)."""
    import rgbify.scenes.classes as vocabulary
    from rgbify.train.benchmarks.catalog import CITYSCAPES_CLASSES, NYU40_CLASSES

    if not hasattr(vocabulary, "NYU40"):
        pytest.skip("this tree's class vocabulary has no published maps yet (rgbify.scenes.classes.NYU40)")
    assert set(vocabulary.NYU40) <= set(vocabulary.CLASSES)
    assert {v for v in vocabulary.NYU40.values() if v} <= set(NYU40_CLASSES)
    ignored = {n for n, _, t in getattr(vocabulary, "CITYSCAPES_LABELS", ()) if t == 255}
    assert {v for v in vocabulary.CITYSCAPES.values() if v} <= set(CITYSCAPES_CLASSES) | ignored


def test_nyu40_from_the_official_mat_files(tmp_path):
    h5py = pytest.importorskip("h5py")
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(11)
    n, h, w = 3, 5, 7
    labels = rng.integers(0, 895, (n, h, w)).astype(np.uint16)
    labels[:, 0, :] = 0
    images = rng.integers(0, 255, (n, h, w, 3)).astype(np.uint8)
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:  # MATLAB v7.3: dimensions reversed
        f["images"] = images.transpose(0, 3, 2, 1)
        f["labels"] = labels.transpose(0, 2, 1)
    map_class = (np.arange(894) % 40) + 1
    scipy_io.savemat(tmp_path / "classMapping40.mat", {"mapClass": map_class[None, :]})
    scipy_io.savemat(tmp_path / "splits.mat", {"testNdxs": np.array([[2], [3]]), "trainNdxs": np.array([[1]])})
    gt40 = np.where(labels > 0, map_class[np.maximum(labels.astype(int) - 1, 0)], 0)
    preds = {f"{i:04d}": np.where(rng.random((h, w)) < 0.6, gt40[i - 1], rng.integers(1, 41, (h, w))) for i in (2, 3)}
    _save_preds(tmp_path / "pred", preds)
    report, _ = evaluate_benchmark("nyuv2-seg40", str(tmp_path), predictions=str(tmp_path / "pred"))
    g = gt40[1:].ravel()
    p = np.stack([preds["0002"], preds["0003"]]).ravel()
    ious = []
    for c in range(1, 41):
        tp, fp, fn = (
            np.sum((p == c) & (g == c) & (g > 0)),
            np.sum((p == c) & (g != c) & (g > 0)),
            np.sum((p != c) & (g == c)),
        )
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    assert report["semantic"]["miou"] == pytest.approx(np.mean(ious)) and report["semantic"]["images"] == 2


# ---------------------------------------------------------------------------------------------------------------
# the CLI, in a subprocess


def test_cli_scores_a_predictions_folder_and_refuses_bad_input(tmp_path):
    write_kitti(tmp_path / "kitti")
    drive = "2011_09_26_drive_0002_sync"
    _save_preds(
        tmp_path / "pred",
        {f"2011_09_26/{drive}/image_02/data/{f}.png": np.full((352, 1216), 12.0) for f in ("0000000069", "0000000054")},
    )
    out = tmp_path / "report" / "kitti.json"
    cmd = [
        sys.executable,
        "-m",
        "rgbify",
        "eval",
        "--benchmark",
        "kitti",
        "--root",
        str(tmp_path / "kitti"),
        "--predictions",
        str(tmp_path / "pred"),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"]["alignment"] == "depth" and report["benchmark"]["depth_scale"] == 256
    assert np.isfinite(report["depth"]["abs_rel"]) and "i_rmse" in report["depth"]
    assert out.with_suffix(".md").exists() and len(out.with_suffix(".per_image.csv").read_text().splitlines()) == 3
    bad = subprocess.run(
        cmd[:-2] + ["--out", str(tmp_path / "r2.json"), "--depth-scale", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--depth-scale 0" in bad.stderr
    assert not (tmp_path / "r2.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# a run predicts the benchmark


def _fake_run(tasks):
    """A stand-in for rgbify.train.predict.Run: what evaluate_benchmark reads of it (predicting is faked)."""
    cfg = SimpleNamespace(tasks=tasks, resolution=64, inference_steps=2, mode="instruct", target_options=dict)
    return SimpleNamespace(cfg=cfg)


def test_a_run_is_asked_for_the_class_maps_names_and_its_labels_are_mapped(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import rgbify.train.infer

    lay = Layout(tmp_path / "cityscapes", tar=False)
    gt = np.array([[7, 7, 26, 26, 0], [23, 23, 26, 7, 0]], np.uint8)  # road, car, sky, unlabeled
    lay.add("leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png", _png_bytes(_image(2, 5, 0)))
    lay.add("gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png", _png_bytes(gt))
    lay.close()
    asked = []

    def fake_predict(run, task, rgb, prompt, decode, **kw):  # decoded labels: i + 1 = the i-th class asked for
        asked.append({c["index"]: c["name"] for c in decode["classes"]})
        return np.array([[1, 1, 2, 2, 0], [3, 3, 2, 0, 0]], np.int32)

    monkeypatch.setattr(rgbify.train.infer, "predict_measurement", fake_predict)
    run = _fake_run(("semantic",))
    cmap = {"street": "road", "automobile": "car", "heaven": 10}
    report, _ = evaluate_benchmark(
        "cityscapes", str(tmp_path / "cityscapes"), run=run, options=EvalOptions(class_map=cmap)
    )
    assert asked == [{1: "street", 2: "automobile", 3: "heaven"}]
    iou = report["iou_per_class"]
    assert (iou["road"], iou["car"], iou["sky"]) == (pytest.approx(2 / 3), 1.0, 1.0)  # road: one pixel left black
    with pytest.raises(UserError, match="needs --class-map published"):
        evaluate_benchmark("cityscapes", str(tmp_path / "cityscapes"), run=run)
    import rgbify.scenes.classes as vocabulary

    monkeypatch.setattr(
        vocabulary, "CITYSCAPES", {"road": "road", "car": "car", "bench": "static", "rug": None}, raising=False
    )
    asked.clear()
    report, _ = evaluate_benchmark(
        "cityscapes", str(tmp_path / "cityscapes"), run=run, options=EvalOptions(class_map="published")
    )
    assert asked == [{1: "road", 2: "car"}]  # the classes the benchmark scores, no ignored or unmapped ones
    iou = report["iou_per_class"]  # label 3 is no class asked for: a miss; label 0 is sky
    assert (iou["road"], iou["car"], iou["sky"]) == (pytest.approx(2 / 3), 1.0, 0.0)
    with pytest.raises(UserError, match="run was trained on semantic"):
        evaluate_benchmark("nyuv2", str(tmp_path / "cityscapes"), run=run)


def test_a_run_on_a_normals_and_a_depth_benchmark_gets_the_protocols_settings(tmp_path, monkeypatch):
    """What a run is asked for: the ground truth's size (KITTI: after the KB crop), the ensemble, its invariance
    (affine when aligned; disparity members for a disparity fit), the processing resolution; metric scoring of a
    relative ensemble is refused."""
    pytest.importorskip("torch")
    import rgbify.train.infer

    calls = []

    def fake_predict(run, task, rgb, prompt, decode, **kw):
        calls.append({"task": task, "rgb": rgb.shape, **kw})
        h, w = kw["out_hw"]
        if task == "normals":
            return np.broadcast_to(np.array([0.0, 0.0, -1.0]), (h, w, 3)).copy()
        return np.full((h, w), 5.0)

    monkeypatch.setattr(rgbify.train.infer, "predict_measurement", fake_predict)
    run = _fake_run(("depth", "normals"))
    lay = Layout(tmp_path / "normals", tar=False)
    lay.add("000000_img.png", _png_bytes(_image(6, 8, 0)))
    lay.add("000000_normal.npy", _npy_bytes(np.broadcast_to(np.array([0, 0, 1.0], np.float32), (6, 8, 3)).copy()))
    lay.close()
    report, _ = evaluate_benchmark(
        "nyuv2-normals", str(tmp_path / "normals"), run=run, options=EvalOptions(ensemble=3, processing_res=0)
    )
    assert report["normals_pooled"]["mean"] == pytest.approx(0.0, abs=1e-6)  # -z OpenCV = +z toward the viewer
    assert (calls[-1]["ensemble"], calls[-1]["processing_res"], calls[-1]["out_hw"]) == (3, 0, (6, 8))
    write_kitti(tmp_path / "kitti")
    for alignment, members in (("depth", "depth"), ("disparity", "disparity")):
        calls.clear()
        report, _ = evaluate_benchmark(
            "kitti", str(tmp_path / "kitti"), run=run, options=EvalOptions(ensemble=2, alignment=alignment, max_items=1)
        )
        assert calls[0]["rgb"] == (352, 1216, 3) and calls[0]["out_hw"] == (352, 1216)
        assert (calls[0]["invariance"], calls[0]["members_as"]) == ("affine", members)
        assert report["benchmark"]["prediction_kind"] == members and report["benchmark"]["ensemble"] == 2
    with pytest.raises(UserError, match="gives relative depth in"):
        evaluate_benchmark(
            "kitti",
            str(tmp_path / "kitti"),
            run=run,
            options=EvalOptions(ensemble=2, alignment="none", ensemble_invariance="affine"),
        )


@pytest.mark.slow
def test_cli_predicts_a_benchmark_with_a_tiny_run_and_an_ensemble(tmp_path):
    """The whole path through `rgbify eval`: a tiny run predicts NYUv2 fixtures (real codec), aspect ratio kept at
    64 px, an ensemble of 2 (Marigold's affine ensemble, then least squares), scored with the Eigen crop."""
    pytest.importorskip("torch")
    from test_train import MemoryTaskDataset, cfg_for

    from rgbify.train.trainer import train

    cfg = cfg_for(tmp_path, "marigold", steps=1, inference_steps=1)
    train(cfg, MemoryTaskDataset())
    write_nyu(tmp_path / "nyu.tar", n=1)
    out = tmp_path / "eval" / "nyu.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rgbify",
            "eval",
            "--benchmark",
            "nyuv2",
            "--root",
            str(tmp_path / "nyu.tar"),
            "--run",
            cfg.out,
            "--ensemble",
            "2",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    head = report["benchmark"]
    assert (head["ensemble"], head["ensemble_invariance"], head["processing_res"]) == (2, "affine", 64)
    assert head["alignment"] == "depth" and head["images"] == 1
    assert report["depth"]["images"] == 1 and 0 <= report["depth"]["delta1"] <= 1
    assert np.isfinite(report["depth"]["abs_rel"]) or report["depth"]["nonfinite_pixels"] > 0
