"""rgbify's benchmark scoring against the reference: Marigold's own metric and alignment code, and REFERENCES.md's
formulas, on the same synthetic images.

    python benchmarks/bench_eval_reference.py --marigold /path/to/Marigold [--images 20]

``--marigold`` is a checkout of prs-eth/Marigold (v1-1): its ``src/util/metric.py`` and ``src/util/alignment.py``
are imported from there (nothing of them is copied here; ``pandas``, which metric.py imports only for its
MetricTracker, is stubbed when it is not installed). For each synthetic NYUv2-sized image (ground truth 0.3-12 m
with holes and values beyond the range, an affine-in-depth and an affine-in-disparity prediction) it runs
Marigold's eval.py steps (its valid mask rule, ``align_depth_least_square`` in depth or disparity, clip to the
range, clip to 1e-6, its metric functions) and rgbify.train.benchmarks.protocol.score_depth, and prints the largest
relative difference per metric; ETH3D's fit at 1024 px is checked on a 1200 x 1800 image. Normals: Marigold's
``compute_cosine_error(masked=True)`` and its per-image metrics against protocol.NormalsScore. Ensembles:
``marigold/util/ensemble.py`` (affine and scale depth, closest normals) against rgbify.train.ensemble. Without
``--marigold`` only the formulas of ../shared/REFERENCES.md (in NumPy: tests/oracles/depth_metrics.py) are compared.
Exit status 1 when any difference exceeds 1e-5 relative (normals: 5.1e-5 absolute, Marigold rounds to 4 decimals).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rgbify.train.benchmarks import protocol as P  # noqa: E402
from rgbify.train.benchmarks.catalog import get_benchmark  # noqa: E402
from tests.oracles.depth_metrics import depth_formulas  # noqa: E402

KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3", "i_rmse", "silog")
MARIGOLD_FUNCS = (
    "abs_relative_difference",
    "squared_relative_difference",
    "rmse_linear",
    "rmse_log",
    "log10",
    "delta1_acc",
    "delta2_acc",
    "delta3_acc",
    "i_rmse",
    "silog_rmse",
)
TOL_REL = 1e-5
TOL_NORMALS_ABS = 5.1e-5  # Marigold rounds its normals metrics to 4 decimals: half of 1e-4, plus float error
TOL_ENSEMBLE_ABS = 1e-4  # BFGS on float32 costs: the same optimum, not the same last bits


def load_marigold(root: Path):
    """(metric module, alignment module) imported from a Marigold checkout."""
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = types.ModuleType("pandas")  # metric.py uses it only for MetricTracker
    mods = []
    for name in ("metric", "alignment"):
        path = root / "src" / "util" / f"{name}.py"
        if not path.is_file():
            raise SystemExit(f"--marigold {root}: no {path.relative_to(root)}; give a prs-eth/Marigold checkout")
        spec = importlib.util.spec_from_file_location(f"marigold_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def load_marigold_ensemble(root: Path):
    """marigold/util/ensemble.py of a checkout, its ``.image_util`` import (torchvision, used only to shrink
    members over 1024 px) replaced by a stub: the members here are smaller."""
    path = root / "marigold" / "util" / "ensemble.py"
    if not path.is_file():
        return None
    pkg = types.ModuleType("marigold_util")
    pkg.__path__ = []
    stub = types.ModuleType("marigold_util.image_util")

    def unused(*a, **k):
        raise RuntimeError("members over max_res are not compared here")

    stub.resize_max_res = stub.get_tv_resample_method = unused
    sys.modules.update({"marigold_util": pkg, "marigold_util.image_util": stub})
    spec = importlib.util.spec_from_file_location("marigold_util.ensemble", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compare_ensembles(ens, rng, note, n_sets: int) -> None:
    """rgbify.train.ensemble against Marigold's ensemble_depth (affine, scale) and ensemble_normals (closest)."""
    import torch

    from rgbify.train.ensemble import ensemble_depth, ensemble_normals

    for _ in range(n_sets):
        yy, xx = np.mgrid[0:60, 0:80] / 80
        base = 1 + 3 * xx + np.sin(6 * yy)
        scales, shifts = rng.uniform(0.5, 2, 5), rng.uniform(0, 1, 5)
        for invariance, shift in (("affine", True), ("scale", False)):  # scale-invariant members have no shift
            members = np.stack(
                [
                    s * base + (t if shift else 0.0) + 0.05 * rng.standard_normal(base.shape)
                    for s, t in zip(scales, shifts, strict=True)
                ]
            )
            x = torch.from_numpy(members).float()
            theirs = ens.ensemble_depth(x[:, None], scale_invariant=True, shift_invariant=shift)[0][0, 0].numpy()
            ours = ensemble_depth(x, invariance).numpy()
            note(
                "Marigold ensemble_depth (abs., [0, 1])",
                invariance,
                "depth",
                float(np.abs(ours - theirs).max()),
                TOL_ENSEMBLE_ABS,
            )
        normals = rng.standard_normal((5, 3, 30, 40))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        t = torch.from_numpy(normals).float()
        theirs = ens.ensemble_normals(t)[0][0].permute(1, 2, 0).numpy()
        ours = ensemble_normals(t.permute(0, 2, 3, 1)).numpy()
        note(
            "Marigold ensemble_normals (abs.)",
            "closest",
            "normals",
            float(np.abs(ours - theirs).max()),
            TOL_ENSEMBLE_ABS,
        )


def synthetic(rng, h: int = 480, w: int = 640) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground truth m, affine-in-depth prediction, affine-in-disparity prediction), float32 as Marigold reads."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    gt = 0.3 + 11.7 * (0.6 * yy + 0.4 * xx) ** 1.3 + 0.3 * rng.random((h, w))
    gt[rng.random((h, w)) < 0.05] = 0  # holes
    noise = 1 + 0.05 * rng.standard_normal((h, w))
    depth_pred = (0.3 * gt * noise + 0.1).astype(np.float32)
    disp_pred = (0.7 / np.where(gt > 0, gt, 1.0) * noise + 0.02).astype(np.float32)
    return gt.astype(np.float32), depth_pred, disp_pred


def marigold_depth(metric, alignment, bench, gt, pred, valid, how: str, max_res=None) -> dict[str, float]:
    """Marigold's script/depth/eval.py steps for one image, with its functions."""
    import torch

    if how == "least_square":
        pred = alignment.align_depth_least_square(gt, pred, valid, True, max_res)[0]
    else:
        gt_disp, gt_pos = alignment.depth2disparity(gt, return_mask=True)
        fit = valid & gt_pos & (pred > 0)
        disp = alignment.align_depth_least_square(gt_disp, pred, fit, True, max_res)[0]
        pred = alignment.disparity2depth(np.clip(disp, 1e-3, None))
    pred = np.clip(np.clip(pred, bench.min_depth, bench.max_depth), 1e-6, None)
    p, g, m = torch.from_numpy(np.asarray(pred)), torch.from_numpy(gt), torch.from_numpy(valid)
    return {k: float(getattr(metric, f)(p.clone(), g.clone(), m)) for k, f in zip(KEYS, MARIGOLD_FUNCS, strict=True)}


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marigold", type=Path, default=None, help="A prs-eth/Marigold checkout.")
    ap.add_argument("--images", type=int, default=20)
    args = ap.parse_args()
    metric = alignment = None
    if args.marigold:
        metric, alignment = load_marigold(args.marigold)
    rng = np.random.default_rng(0)
    nyu = get_benchmark("nyuv2")
    worst: dict[tuple[str, str, str], tuple[float, float]] = {}

    def note(what: str, how: str, k: str, d: float, tol: float = TOL_REL) -> None:
        worst[(what, how, k)] = (max(worst.get((what, how, k), (0.0, tol))[0], d), tol)

    for _ in range(args.images):
        gt, depth_pred, disp_pred = synthetic(rng)
        valid = P.valid_depth_mask(nyu, gt.astype(np.float64), "eigen")
        for how, pred, alignment_name, kind in (
            ("least_square", depth_pred, "depth", "depth"),
            ("least_square_disparity", disp_pred, "disparity", "disparity"),
        ):
            ours = P.score_depth(nyu, pred, gt.astype(np.float64), valid, alignment_name, kind)
            aligned = P.align_depth(pred, gt.astype(np.float64), valid, alignment_name, kind)[0]
            aligned = np.clip(np.clip(aligned, nyu.min_depth, nyu.max_depth), 1e-6, None)
            ref = depth_formulas(aligned[valid], gt.astype(np.float64)[valid])
            for k in KEYS:
                note("REFERENCES.md formulas", how, k, rel(ours[k], ref[k]))
            if metric is not None:
                theirs = marigold_depth(metric, alignment, nyu, gt, pred, valid, how)
                for k in KEYS:
                    note("Marigold eval.py", how, k, rel(ours[k], theirs[k]))
    if metric is not None:  # ETH3D: the least squares fitted on a nearest-neighbour copy at most 1024 px
        eth = get_benchmark("eth3d")
        gt, depth_pred, _ = synthetic(rng, 1200, 1800)
        valid = P.valid_depth_mask(eth, gt.astype(np.float64), "none")
        ours = P.score_depth(eth, depth_pred, gt.astype(np.float64), valid, "depth", "depth", eth.alignment_max_res)
        theirs = marigold_depth(metric, alignment, eth, gt, depth_pred, valid, "least_square", eth.alignment_max_res)
        for k in KEYS:
            note("Marigold eval.py, ETH3D 1024 px fit", "least_square", k, rel(ours[k], theirs[k]))
        import torch

        for _ in range(args.images):  # normals, per image
            h, w = 48, 64
            gt_n = rng.standard_normal((h, w, 3))
            gt_n /= np.linalg.norm(gt_n, axis=-1, keepdims=True)
            gt_n[rng.random((h, w)) < 0.1] = 0
            pred = gt_n + 0.3 * rng.standard_normal((h, w, 3))
            score = P.NormalsScore("opencv")
            row = score.add(pred, gt_n)
            err = metric.compute_cosine_error(
                torch.from_numpy(pred.transpose(2, 0, 1)), torch.from_numpy(gt_n.transpose(2, 0, 1)), masked=True
            )
            for k in P.MARIGOLD_NORMAL_KEYS:
                d = abs(row[k] - float(getattr(metric, k)(err)))
                note("Marigold normals (abs., 4 decimals)", "per image", k, d, TOL_NORMALS_ABS)
    ens = load_marigold_ensemble(args.marigold) if args.marigold else None
    if ens is not None:
        compare_ensembles(ens, rng, note, max(3, args.images // 4))
    print(f"{'compared with':38s} {'alignment':24s} {'metric':22s} max difference (tolerance)")
    failed = False
    for (what, how, k), (d, tol) in worst.items():
        failed |= d > tol
        print(f"{what:38s} {how:24s} {k:22s} {d:.2e} ({tol:.0e}){'  <-- over' if d > tol else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
