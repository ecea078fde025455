"""Does the tiny generator learn from rgbify data, and which depth codec does it learn best? (docs/learning.md)

    python benchmarks/bench_learning.py                       # 1280 indoor at 96 px; 6 variants and a control at 64 px
    python benchmarks/bench_learning.py --quick               # smoke test: 24 samples at 48 px, 20 steps each
    python benchmarks/bench_learning.py --data DIR            # reuse (or complete) the dataset in DIR
    python benchmarks/bench_learning.py --jobs 7              # the variants in 7 processes at once
    python benchmarks/bench_learning.py --report-only         # report what OUT holds (a run stopped early too)

One command: builds the dataset with `rgbify build` (cached: a complete DIR is reused, a partial one completed),
then trains the ``tiny`` preset with the same steps, seed and settings on each variant (depth under cubewalk,
hilbert24, colormap:viridis and affine; normals; semantic segmentation), evaluating on the held-out val split at
a few points along the way with rgbify's own decode and metrics (rgbify.train.evaluate). Baselines are scored on
the same val items in the same run: for depth a constant mean depth (of the train split) and a per-image median
(an oracle scale), for normals a constant normal facing the camera, for semantic the majority class of the train
split. The VAE ceiling of each variant is what a generator that drew every target latent exactly would score
(the clean target through the tiny VAE). Prints the tables, writes OUT/learning.json (every figure) and
OUT/learning.png (curves against steps; Pillow only). Times are process CPU seconds (all threads) and wall
seconds; the dataset build is timed apart.

depth/affine decodes to relative depth (no scale or shift in its target or prompt), so it is scored affine-aligned
only; the other codecs both metric and affine-aligned (least-squares scale and shift per image).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name: (task, target options, what the VAE ceiling reconstructs)
    "depth/cubewalk": ("depth", {"depth_codecs": ["depth/cubewalk"]}, "depth/cubewalk"),
    "depth/hilbert24": ("depth", {"depth_codecs": ["depth/hilbert24"]}, "depth/hilbert24"),
    "depth/colormap:viridis": ("depth", {"depth_codecs": ["depth/colormap:viridis"]}, "depth/colormap:viridis"),
    "depth/affine": ("depth", {"depth_codecs": ["depth/affine"]}, "depth/affine"),
    "normals": ("normals", {}, "normals"),
    "semantic": ("semantic", {}, "semantic"),
    "semantic-fixed": ("semantic", {"semantic_colors": "fixed"}, "semantic"),
}
CONTROLS = ("semantic-fixed",)
"""Variants beyond the issue's six: semantic with a fixed colour per class (the model need not read the prompt)."""
FULL = dict(count=1280, render=96, resolution=64, steps=1000, batch_size=8, points=5)
QUICK = dict(count=24, render=48, resolution=32, steps=20, batch_size=4, points=2)
COLORS = {"depth/cubewalk": (214, 39, 40), "depth/hilbert24": (148, 103, 189), "depth/colormap:viridis": (44, 160, 44),
          "depth/affine": (31, 119, 180), "normals": (255, 127, 14), "semantic": (140, 86, 75),
          "semantic-fixed": (227, 119, 194), "baseline": (110, 110, 110), "baseline2": (170, 170, 170)}


# ----------------------------------------------------------------------------------------------- dataset
def ensure_dataset(data: Path, args: argparse.Namespace) -> dict:
    """Build (or complete, or reuse) ``data`` with `rgbify build`; returns what was done and its cost."""
    manifest = data / "dataset.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        published = sum(int(e["samples"]) for e in m.get("shards", []) if int(e["first_index"]) < args.count)
        if published >= args.count:  # the first COUNT samples are there (the rest may still be building)
            return {"built": False, "path": str(data), "count": args.count, "recipe": m.get("recipe"),
                    "seed": m.get("seed"), "resolution": [m.get("width"), m.get("height")]}
    cmd = [sys.executable, "-m", "rgbify", "build", "--out", str(data), "--recipe", "indoor", "--count",
           str(args.count), "--resolution", f"{args.render}x{args.render}", "--workers", str(args.workers), "--seed",
           str(args.data_seed), "--no-preview", "--quiet"]
    print("building the dataset:", " ".join(cmd[1:]), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"built": True, "path": str(data), "count": args.count, "recipe": "indoor", "seed": args.data_seed,
            "resolution": [args.render, args.render], "build_wall_s": round(time.perf_counter() - t, 1),
            "build_cpu_s": round(cpu, 1), "command": " ".join(["rgbify", *cmd[3:]])}


def split(data: Path, task: str, options: dict, args: argparse.Namespace, which: str, first: int | None = None,
          **kw):
    """The ``which`` split of the first ``first`` samples of ``data`` (default: --count)."""
    from rgbify.datasets import TaskDataset

    ds = TaskDataset(data, tasks=(task,), split=which, resolution=args.resolution, seed=args.seed,
                     val_fraction=args.val_fraction, target_options=options, **kw)
    limit = args.count if first is None else first
    ds.indices = [i for i in ds.indices if i < limit]  # the split is by index: the same items whatever DIR holds
    return ds


# ----------------------------------------------------------------------------------------------- baselines
def baselines(data: Path, args: argparse.Namespace) -> dict:
    """Every baseline scored on the val items with rgbify's MetricAccumulator (what the models are scored with)."""
    from rgbify import encode
    from rgbify.train.evaluate import MetricAccumulator

    train = split(data, "semantic", {}, args, "train", augment=False)
    depth_sum, depth_n, counts = 0.0, 0, np.zeros(1, np.int64)
    for i in range(len(train)):
        it = train[i]
        d, valid, sem = np.asarray(it["gt_depth"]), np.asarray(it["valid"]), np.asarray(it["gt_semantic"])
        ok = valid & np.isfinite(d) & (d > 0)
        depth_sum, depth_n = depth_sum + float(d[ok].sum()), depth_n + int(ok.sum())
        c = np.bincount(sem[valid].ravel(), minlength=len(counts))
        counts = np.pad(counts, (0, len(c) - len(counts))) + c
    counts[0] = 0
    mean_depth, majority = depth_sum / depth_n, int(np.argmax(counts))
    out: dict = {"train_mean_depth_m": mean_depth, "majority_class": train.classes[majority - 1]}
    val = split(data, "depth", {}, args, "val")
    mean_acc, median_acc, normals_acc = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    for i in range(len(val)):
        it = val[i]
        gt = {k: np.asarray(it[k]) for k in ("gt_depth", "gt_normals", "valid")}
        d = gt["gt_depth"]
        ok = gt["valid"] & np.isfinite(d) & (d > 0)
        mean_acc.add("depth", np.full(d.shape, mean_depth, np.float32), gt)
        median_acc.add("depth", np.full(d.shape, np.median(d[ok]) if ok.any() else mean_depth, np.float32), gt)
        facing = np.zeros(gt["gt_normals"].shape, np.float32)
        facing[..., 2] = -1.0  # OpenCV frame: toward the camera
        normals_acc.add("normals", facing, gt)
    out["depth_mean"], out["depth_median"] = mean_acc.result(), median_acc.result()
    out["normals_facing"] = normals_acc.result()
    sem_val, sem_acc = split(data, "semantic", {}, args, "val"), MetricAccumulator()
    for i in range(len(sem_val)):
        it = sem_val[i]
        target = np.asarray(it["target"]).transpose(1, 2, 0)
        ref = encode.decode_target(target, json.loads(it["decode"]))
        gt = {"valid": np.asarray(it["valid"])}
        sem_acc.add("semantic", np.full(ref.shape, majority, np.int32), gt, ref)
    out["semantic_majority"] = sem_acc.result()
    return out


def ceiling(data: Path, name: str, vae, args: argparse.Namespace) -> dict:
    """The variant's clean val targets through the model's VAE (a perfect generator's score) and decoded as they
    are (the codec's own floor)."""
    from rgbify.train.vae import reconstruction_report

    _, options, kind = VARIANTS[name]
    n = len(split(data, "depth", {}, args, "val"))  # the val items of the first --count samples (sorted: the first n)
    r = reconstruction_report(vae, data, kinds=(kind,), resolution=args.resolution, max_items=n, seed=args.seed,
                              val_fraction=args.val_fraction, options=options)[kind]
    return {"psnr_db": r["psnr_db"], "vae": r["vae"], "codec": r["codec"]}


def scale_report(run: Path, ds, max_items: int | None = None) -> dict:
    """How well the trained model of ``run`` gets each image's scale, on items of ``ds`` (a metric depth split with
    ground truth): the R2 and error (log standard deviation) of its per-image log median depth against the true
    one, and the abs_rel of its prediction rescaled to each image's true median (the structure alone)."""
    import torch

    from rgbify import encode
    from rgbify.datasets import collate
    from rgbify.train.evaluate import MetricAccumulator
    from rgbify.train.pipeline import sample
    from rgbify.train.predict import load_run

    loaded = load_run(run, "cpu")
    loaded.components.unet.eval()
    n = len(ds) if max_items is None else min(max_items, len(ds))
    log_pred, log_true, acc, structure = [], [], MetricAccumulator(), MetricAccumulator()
    for start in range(0, n, 4):
        items = [ds[i] for i in range(start, min(n, start + 4))]
        batch = collate(items)
        with torch.no_grad():
            pred = sample(loaded.components, loaded.cfg, batch["image"], batch["prompt"]).numpy()
        for it, rgb in zip(items, pred, strict=True):
            d = encode.decode_target(rgb, json.loads(it["decode"]))
            gt = {k: np.asarray(it[k]) for k in ("gt_depth", "valid")}
            ok = gt["valid"] & np.isfinite(gt["gt_depth"]) & (gt["gt_depth"] > 0) & np.isfinite(d) & (d > 0)
            if not ok.any():
                continue
            p, t = float(np.median(d[ok])), float(np.median(gt["gt_depth"][ok]))
            log_pred.append(np.log(p))
            log_true.append(np.log(t))
            acc.add("depth", d, gt)
            structure.add("depth", (d * np.float32(t / p)).astype(np.float32), gt)
    lp, lt = np.array(log_pred), np.array(log_true)
    return {"items": len(lp), "abs_rel": acc.result()["depth"]["abs_rel"],
            "structure_abs_rel": structure.result()["depth"]["abs_rel"],
            "scale_r2": float(1 - np.sum((lt - lp) ** 2) / np.sum((lt - lt.mean()) ** 2)),
            "scale_err_logstd": float(np.std(lp - lt)), "true_scale_logstd": float(np.std(lt))}


def prompt_report(run: Path, ds, max_items: int | None = None) -> dict:
    """Does the trained model of ``run`` follow the prompt's colours? Each item of ``ds`` drawn twice (epochs 0
    and 1: the same image and classes, colours drawn anew for the prompt), predicted for both: how much the
    prediction changes between the two prompts (mean absolute difference, 8-bit levels) against how much the
    target does, on the valid pixels."""
    import torch

    from rgbify.datasets import collate
    from rgbify.train.evaluate import to_uint8
    from rgbify.train.pipeline import sample
    from rgbify.train.predict import load_run

    loaded = load_run(run, "cpu")
    loaded.components.unet.eval()
    n = len(ds) if max_items is None else min(max_items, len(ds))
    pred_change, target_change = [], []
    for start in range(0, n, 4):
        pair = [[ds.get(i, epoch) for i in range(start, min(n, start + 4))] for epoch in (0, 1)]
        with torch.no_grad():
            preds = [sample(loaded.components, loaded.cfg, collate(items)["image"],
                            collate(items)["prompt"]).numpy().astype(np.int16) for items in pair]
        for k, (a, b) in enumerate(zip(*pair, strict=True)):
            valid = np.asarray(a["valid"])
            ta, tb = (to_uint8(it["target"]).astype(np.int16) for it in (a, b))
            target_change.append(float(np.abs(ta - tb)[valid].mean()))
            pred_change.append(float(np.abs(preds[0][k] - preds[1][k])[valid].mean()))
    return {"items": n, "prediction_change": float(np.mean(pred_change)),
            "target_change": float(np.mean(target_change))}


# ----------------------------------------------------------------------------------------------- training
def train_variant(name: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    import torch

    from rgbify.train import trainer
    from rgbify.train.config import make_config
    from rgbify.train.evaluate import evaluate
    from rgbify.train.model import build_model

    task, options, _ = VARIANTS[name]
    run = out / "runs" / name.replace("/", "-").replace(":", "-")
    train_ds = split(data, task, options, args, "train", first=args.train_count, return_gt=False,
                     crop_scale=(args.crop, 1.0), metric_depth_crop=args.metric_depth_crop)
    val_ds = split(data, task, options, args, "val")
    cfg = make_config({
        "data": str(data), "out": str(run), "base_model": args.model, "mode": "lotus", "lotus_deterministic": True,
        "detail_preserver": False, "tasks": (task,), "resolution": args.resolution, "batch_size": args.batch_size,
        "steps": args.steps, "lr": args.lr, "warmup_steps": max(1, args.steps // 50), "lr_schedule": "cosine",
        "weight_decay": args.weight_decay, "seed": args.seed, "checkpoint_every": args.steps, "keep_checkpoints": 1,
        "eval_every": max(1, args.steps // args.points), "eval_samples": len(val_ds), "num_workers": 1,
        "resume": False,
    })
    torch.manual_seed(cfg.seed)  # the untrained model, as train() builds it: the curves' step 0
    untrained = build_model(cfg)
    start = evaluate(untrained, cfg, val_ds)
    eval_cpu = [0.0]

    def timed_evaluate(*a, **kw):  # the trainer's validations, timed apart from training
        t = time.process_time()
        try:
            return evaluate(*a, **kw)
        finally:
            eval_cpu[0] += time.process_time() - t

    t_cpu, t_wall = time.process_time(), time.perf_counter()
    trainer.evaluate = timed_evaluate
    try:
        trainer.train(cfg, train_ds, val_ds)
    finally:
        trainer.evaluate = evaluate
    cpu, wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
    scale = None
    if task == "depth" and options["depth_codecs"] != ["depth/affine"]:  # metric: how well is each image's scale got?
        t = time.process_time()
        seen = split(data, task, options, args, "train", first=args.train_count, augment=False)
        scale = {"val": scale_report(run, val_ds), "train": scale_report(run, seen, max_items=len(val_ds)),
                 "cpu_s": 0.0}
        scale["cpu_s"] = round(time.process_time() - t, 1)
    prompts = None
    if task == "semantic":  # does the prediction follow the prompt's colours?
        t = time.process_time()
        prompts = prompt_report(run, val_ds)
        prompts["cpu_s"] = round(time.process_time() - t, 1)
    curve = [{"step": 0, "metrics": start}]
    curve += [json.loads(x) for x in (run / "val.jsonl").read_text().splitlines()]
    loss = [[r["step"], r["loss"]] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]
    print(f"{name}: {args.steps} steps in {(cpu - eval_cpu[0]) / 60:.2f} CPU min, its {len(curve) - 1} "
          f"validations {eval_cpu[0] / 60:.2f} CPU min ({wall / 60:.2f} min wall in all)", flush=True)
    return {"task": task, "options": options, "run": str(run), "cpu_s": round(cpu - eval_cpu[0], 1),
            "eval_cpu_s": round(eval_cpu[0], 1), "wall_s": round(wall, 1), "final": curve[-1]["metrics"],
            "curve": curve, "loss": loss, "val_items": len(val_ds), "train_items": len(train_ds),
            "scale": scale, "prompts": prompts, "vae": untrained.vae}


# ----------------------------------------------------------------------------------------------- report
def headline(task: str, m: dict) -> dict:
    """The figures the tables show, from an evaluate() result."""
    if task == "depth":
        out = {}
        if "depth" in m:
            out.update(abs_rel=m["depth"]["abs_rel"], delta1=m["depth"]["delta1"])
        out.update(abs_rel_affine=m["depth_affine"]["abs_rel"], delta1_affine=m["depth_affine"]["delta1"])
        return out
    if task == "normals":
        return {"mean_deg": m["normals"]["mean"], "a11_25": m["normals"]["a11_25"]}
    return {"miou": m["semantic"]["miou"], "pixel_acc": m["semantic"]["pixel_acc"]}


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def tables(result: dict) -> str:
    b, v = result["baselines"], result["variants"]
    mean, med = headline("depth", b["depth_mean"]), headline("depth", b["depth_median"])
    lines = ["| depth | abs_rel | delta1 | abs_rel affine | delta1 affine | abs_rel / mean-depth's | "
             "abs_rel / median's | affine abs_rel / baselines' | VAE ceiling abs_rel (affine) | train CPU min |",
             "|---|" + "---:|" * 9]
    for name, r in v.items():
        if r["task"] != "depth":
            continue
        h, c = headline("depth", r["final"]), headline("depth", r["ceiling"]["vae"])
        ratio = (lambda a, base: None if a is None else a / base)  # noqa: E731
        lines.append(f"| {name} | {_f(h.get('abs_rel'))} | {_f(h.get('delta1'))} | {_f(h['abs_rel_affine'])} | "
                     f"{_f(h['delta1_affine'])} | {_f(ratio(h.get('abs_rel'), mean['abs_rel']), '.2f')} | "
                     f"{_f(ratio(h.get('abs_rel'), med['abs_rel']), '.2f')} | "
                     f"{_f(h['abs_rel_affine'] / mean['abs_rel_affine'], '.2f')} | "
                     f"{_f(c.get('abs_rel'))} ({_f(c['abs_rel_affine'])}) | {r['cpu_s'] / 60:.2f} |")
    lines.append(f"| baseline: train mean depth ({b['train_mean_depth_m']:.2f} m) | {_f(mean['abs_rel'])} | "
                 f"{_f(mean['delta1'])} | {_f(mean['abs_rel_affine'])} | {_f(mean['delta1_affine'])} | 1 | | 1 | | |")
    lines.append(f"| baseline: per-image median (oracle) | {_f(med['abs_rel'])} | {_f(med['delta1'])} | "
                 f"{_f(med['abs_rel_affine'])} | {_f(med['delta1_affine'])} | | 1 | | | |")
    lines += ["", "| task | model | baseline | model / baseline | VAE ceiling | train CPU min |",
              "|---|---:|---:|---:|---:|---:|"]
    majority = f"majority ({b['majority_class']})"
    for name, key, base, label in (("normals", "mean_deg", b["normals_facing"], "facing the camera"),
                                   ("semantic", "miou", b["semantic_majority"], majority),
                                   ("semantic-fixed", "miou", b["semantic_majority"], majority)):
        if name not in v:
            continue
        r = v[name]
        task = r["task"]
        h, bh, c = headline(task, r["final"]), headline(task, base), headline(task, r["ceiling"]["vae"])
        unit = "mean angle deg" if name == "normals" else "mIoU"
        lines.append(f"| {name} ({unit}; baseline: {label}) | {h[key]:.3f} | {bh[key]:.3f} | "
                     f"{h[key] / bh[key]:.2f} | {c[key]:.3f} | {r['cpu_s'] / 60:.2f} |")
    depth = {n: headline("depth", r["final"])["abs_rel_affine"] for n, r in v.items() if r["task"] == "depth"}
    if depth:
        best = min(depth, key=depth.get)
        others = ", ".join(f"{n} {depth[n] / depth[best]:.2f}x" for n in sorted(depth, key=depth.get) if n != best)
        lines += ["", f"Best depth codec by affine-aligned abs_rel: {best} ({depth[best]:.3f})"
                  + (f"; the others' abs_rel relative to it: {others}." if others else ".")]
    scales = {n: r["scale"] for n, r in v.items() if r.get("scale")}
    if scales:
        lines += ["", "Per-image scale of the metric codecs (log median depth; R2 of the model's against the truth, "
                  "held-out items and as many train items): "
                  + "; ".join(f"{n} R2 {sc['val']['scale_r2']:.2f} held out, {sc['train']['scale_r2']:.2f} train "
                              f"(error {sc['val']['scale_err_logstd']:.2f} against {sc['val']['true_scale_logstd']:.2f}"
                              f" log-std; abs_rel at the true scale {sc['val']['structure_abs_rel']:.3f})"
                              for n, sc in scales.items()) + "."]
    follow = {n: r["prompts"] for n, r in v.items() if r.get("prompts")}
    if follow:
        lines += ["", "Prompt following (each held-out item twice, colours drawn anew: mean change of the prediction "
                  "against the target's, 8-bit levels): "
                  + "; ".join(f"{n} {p['prediction_change']:.1f} against {p['target_change']:.1f}"
                              for n, p in follow.items()) + "."]
    t, d = result["totals"], result["dataset"]
    controls = [n for n in v if n in CONTROLS]
    lines += [f"Training: {t['train_cpu_s'] / 60:.1f} CPU min for {len(v)} variants of {result['settings']['steps']} "
              f"steps" + (f" ({t['train_cpu_s_without_controls'] / 60:.1f} without the control {', '.join(controls)})"
                          if controls else "")
              + f"; with validations, baselines and VAE ceilings {t['cpu_s'] / 60:.1f} CPU min "
              f"({t['wall_s'] / 60:.1f} min wall, {result['settings']['jobs']} processes). "
              f"Dataset: {d['count']} {d['recipe']} samples at "
              f"{d['resolution'][0]}x{d['resolution'][1]}, seed {d['seed']} ({d['path']}"
              + (f"; built in {d['build_cpu_s'] / 60:.1f} CPU min of the children" if d.get("built") else ", reused")
              + f"), val items {next(iter(v.values()))['val_items'] if v else 0}"
              + (f", trained on the train items of the first {result['settings']['train_count']} samples only"
                 if result["settings"].get("train_count", d["count"]) < d["count"] else "") + "."
              + (f" Not run: {', '.join(result['missing'])}." if result.get("missing") else "")]
    if cut := sorted({r["cut_at_step"] for r in v.values() if "cut_at_step" in r}):
        lines += [f"CUT SHORT: variants stopped before step {result['settings']['steps']} are reported at step "
                  f"{cut[0]}, the last validation all of them reached (their CPU minutes include validations)."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- plot (Pillow)
def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], title: str, series: list, log_y=False) -> None:
    """A line chart in ``box`` (x0, y0, x1, y1): series of (label, xs, ys, colour, dashed)."""
    x0, y0, x1, y1 = box
    left, bottom, top = x0 + 52, y1 - 34, y0 + 22
    right = x1 - 10
    draw.text((x0 + 6, y0 + 4), title, fill="black")
    pts = [(x, y) for _, xs, ys, _, _ in series for x, y in zip(xs, ys, strict=True) if y is not None
           and np.isfinite(y) and (y > 0 or not log_y)]
    if not pts:
        return
    xmax = max(x for x, _ in pts) or 1
    ys = np.array([y for _, y in pts], float)
    tr = np.log10 if log_y else (lambda a: a)
    lo, hi = float(tr(ys).min()), float(tr(ys).max())
    pad = (hi - lo) * 0.08 or 0.1
    lo, hi = lo - pad, hi + pad

    def xy(x, y):
        return left + (right - left) * x / xmax, bottom - (bottom - top) * (float(tr(y)) - lo) / (hi - lo)

    draw.rectangle([left, top, right, bottom], outline="black")
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        yy = bottom - (bottom - top) * k / 4
        draw.line([(left - 4, yy), (left, yy)], fill="black")
        draw.text((x0 + 2, yy - 6), f"{10**v if log_y else v:.3g}", fill="black")
        xx = left + (right - left) * k / 4
        draw.line([(xx, bottom), (xx, bottom + 4)], fill="black")
        draw.text((xx - 10, bottom + 6), f"{xmax * k / 4:.0f}", fill="black")
    draw.text(((left + right) / 2 - 14, bottom + 20), "steps", fill="black")
    ly = top + 4
    for label, xs, ys_, color, dashed in series:
        line = [xy(x, y) for x, y in zip(xs, ys_, strict=True) if y is not None and np.isfinite(y)
                and (y > 0 or not log_y)]
        for a, b in zip(line, line[1:], strict=False):
            if dashed:
                n = max(int(abs(b[0] - a[0]) / 8), 1)
                for k in range(0, n, 2):
                    p = (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n)
                    q = (a[0] + (b[0] - a[0]) * (k + 1) / n, a[1] + (b[1] - a[1]) * (k + 1) / n)
                    draw.line([p, q], fill=color, width=2)
            else:
                draw.line([a, b], fill=color, width=2)
        if not dashed and len(line) <= 30:
            for p in line:
                draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
        draw.line([(right - 150, ly + 6), (right - 130, ly + 6)], fill=color, width=2)
        draw.text((right - 126, ly), label, fill="black")
        ly += 13


def plot(result: dict, path: Path) -> None:
    v, b = result["variants"], result["baselines"]
    steps = result["settings"]["steps"]
    flat = lambda value: ([0, steps], [value, value])  # noqa: E731

    def curve(name, fn):
        rows = v[name]["curve"]
        return [r["step"] for r in rows], [fn(r["metrics"]) for r in rows]

    depth = [n for n in v if v[n]["task"] == "depth"]
    panels = [
        ("depth abs_rel, metric (log scale; lower is better)", [
            (n, *curve(n, lambda m: m.get("depth", {}).get("abs_rel")), COLORS[n], False) for n in depth
            if n != "depth/affine"] + [
            ("mean depth", *flat(b["depth_mean"]["depth"]["abs_rel"]), COLORS["baseline"], True),
            ("image median", *flat(b["depth_median"]["depth"]["abs_rel"]), COLORS["baseline2"], True)], True),
        ("depth abs_rel, affine-aligned (lower is better)", [
            (n, *curve(n, lambda m: m["depth_affine"]["abs_rel"]), COLORS[n], False) for n in depth] + [
            ("constant (aligned)", *flat(b["depth_mean"]["depth_affine"]["abs_rel"]), COLORS["baseline"], True)],
         False),
        ("depth delta1, affine-aligned (higher is better)", [
            (n, *curve(n, lambda m: m["depth_affine"]["delta1"]), COLORS[n], False) for n in depth] + [
            ("constant (aligned)", *flat(b["depth_mean"]["depth_affine"]["delta1"]), COLORS["baseline"], True)],
         False),
    ]
    if "normals" in v:
        panels.append(("normals mean angle, degrees (lower is better)", [
            ("normals", *curve("normals", lambda m: m["normals"]["mean"]), COLORS["normals"], False),
            ("facing the camera", *flat(b["normals_facing"]["normals"]["mean"]), COLORS["baseline"], True)], False))
    sem = [n for n in v if v[n]["task"] == "semantic"]
    if sem:
        panels.append(("semantic mIoU (higher is better)", [
            (n, *curve(n, lambda m: m["semantic"]["miou"]), COLORS[n], False) for n in sem] + [
            ("majority class", *flat(b["semantic_majority"]["semantic"]["miou"]), COLORS["baseline"], True)], False))
    panels.append(("training loss (latent MSE, log scale)", [
        (n, [s for s, _ in r["loss"]], _smooth([x for _, x in r["loss"]]), COLORS[n], False)
        for n, r in v.items()], True))
    w, h, cols = 460, 300, 3
    rows = (len(panels) + cols - 1) // cols
    img = Image.new("RGB", (cols * w, rows * h), "white")
    draw = ImageDraw.Draw(img)
    for k, (title, series, log_y) in enumerate(panels):
        if title.startswith("training loss"):  # every step is a point: draw lines only
            series = [(label, xs[:: max(len(xs) // 100, 1)], ys[:: max(len(xs) // 100, 1)], c, d)
                      for label, xs, ys, c, d in series]
        x, y = (k % cols) * w, (k // cols) * h
        _panel(draw, (x, y, x + w, y + h), title, series, log_y)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _smooth(ys: list[float], k: int = 25) -> list[float]:
    """Running mean over ``k`` steps (the per-step loss of a batch of 8 is noisy)."""
    a = np.asarray(ys, float)
    c = np.cumsum(np.concatenate([[0.0], a]))
    return [float((c[i + 1] - c[max(0, i + 1 - k)]) / (i + 1 - max(0, i + 1 - k))) for i in range(len(a))]


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    ap.add_argument("--data", type=Path, default=None,
                    help="dataset folder: reused when complete, else built or completed there (default: "
                         "data/bench-learning-indoor-COUNT-RENDERpx-sSEED)")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: out/bench-learning[-quick])")
    ap.add_argument("--count", type=int, default=None,
                    help=f"samples: the first COUNT of DIR, built there if missing ({FULL['count']}); the held-out "
                         "items are those of these samples")
    ap.add_argument("--train-count", type=int, default=None,
                    help="train on the train items of the first TRAIN_COUNT samples only (default: --count); the "
                         "held-out items and the baselines stay those of --count, so runs with different "
                         "TRAIN_COUNT are scored on the same items")
    ap.add_argument("--render", type=int, default=None, help=f"render side in pixels ({FULL['render']})")
    ap.add_argument("--resolution", type=int, default=None, help=f"training side in pixels ({FULL['resolution']})")
    ap.add_argument("--steps", type=int, default=None, help=f"optimizer steps per variant ({FULL['steps']})")
    ap.add_argument("--batch-size", type=int, default=None, help=f"items per step ({FULL['batch_size']})")
    ap.add_argument("--points", type=int, default=None, help=f"evaluations along each run ({FULL['points']})")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay, 2%% warm-up)")
    ap.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (rgbify train's default)")
    ap.add_argument("--crop", type=float, default=0.7,
                    help="smallest side fraction kept by the train split's random crop (1: no crop); metric depth "
                         "items as --metric-depth-crop says")
    ap.add_argument("--metric-depth-crop", choices=("off", "rescale", "zoom"), default="rescale",
                    help="with --crop below 1, what metric depth items get: rescale (cropped, depth times the kept "
                         "side fraction, as rgbify train does), off (no crop) or zoom (labels unchanged: the crop's "
                         "zoom changes the focal length, a scale the model cannot see); rgbify.datasets.TaskDataset")
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, data order, augmentation)")
    ap.add_argument("--data-seed", type=int, default=1,
                    help="rgbify build --seed (1: scenes the shipped VAE, trained on seed 0, never saw)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="share of samples held out (by index hash)")
    ap.add_argument("--model", default="tiny", help="base model preset (tiny; tiny-random as a control)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--workers", type=int, default=2, help="rgbify build --workers")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--jobs", type=int, default=1,
                    help="variants trained in this many processes at once (each --threads threads); CPU figures "
                         "are the same, wall time shorter where cores are free")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: report the variants already in OUT/variants (e.g. of a run cut short)")
    ap.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)  # a --jobs child
    args = ap.parse_args(argv)
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    if bad := [n for n in names if n not in VARIANTS]:
        ap.error(f"--variants: unknown {bad}; use a subset of {','.join(VARIANTS)}")
    if not 0 < args.crop <= 1:
        ap.error(f"--crop {args.crop}: give a fraction in (0, 1] (1: no crop)")
    args.train_count = args.count if args.train_count is None else args.train_count
    if not 0 < args.train_count <= args.count:
        ap.error(f"--train-count {args.train_count}: give 1 to --count ({args.count})")
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give 1 or more")
    args.data = args.data or ROOT / "data" / f"bench-learning-indoor-{args.count}-{args.render}px-s{args.data_seed}"
    out = args.out or ROOT / "out" / ("bench-learning-quick" if args.quick else "bench-learning")
    args.out = out

    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # "Writing model shards" at every export
    torch.set_num_threads(args.threads)
    dataset = ensure_dataset(Path(args.data), args)
    t_wall = time.perf_counter()
    key = settings_key(args)
    if not args.report_only:
        if args.jobs > 1 and len(names) > 1:
            children = [subprocess.Popen(child_command(args, names[k :: args.jobs]), cwd=ROOT)
                        for k in range(min(args.jobs, len(names)))]
            load_or_score_baselines(out, key, args)  # meanwhile
            if any(c.wait() for c in children):
                sys.exit("a --jobs child failed: see its output above; rerun to retry")
        else:
            if not args.no_report:
                load_or_score_baselines(out, key, args)
            for name in names:
                run_variant(name, out, key, args)
    if args.no_report:
        return {}
    result = collect(out, key, dataset, load_or_score_baselines(out, key, args), names, args)
    result["totals"]["wall_s"] = round(time.perf_counter() - t_wall, 1)
    (out / "learning.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out / "learning.png")
    text = tables(result)
    (out / "learning.md").write_text(text + "\n")
    print(text)
    print(f"wrote {out / 'learning.json'}, {out / 'learning.md'} and {out / 'learning.png'}")
    return result


SETTINGS = ("data", "count", "train_count", "resolution", "steps", "batch_size", "points", "lr", "weight_decay",
            "crop", "metric_depth_crop", "seed", "val_fraction", "model", "threads")
"""What a variant's result depends on (besides its name): a result is reused or reported only under these."""


def settings_key(args: argparse.Namespace) -> dict:
    return {k: str(Path(getattr(args, k)).resolve()) if k == "data" else getattr(args, k) for k in SETTINGS}


def child_command(args: argparse.Namespace, names: list[str]) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--variants", ",".join(names), "--no-report"]
    for k in (*SETTINGS, "out", "render", "data_seed", "workers"):
        cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    return cmd


def _variant_file(out: Path, name: str) -> Path:
    return out / "variants" / (name.replace("/", "-").replace(":", "-") + ".json")


def load_or_score_baselines(out: Path, key: dict, args: argparse.Namespace) -> dict:
    """The baselines of OUT/baselines.json when scored under ``key``'s data and split, else scored now and saved."""
    path = out / "baselines.json"
    split_key = {k: key[k] for k in ("data", "count", "resolution", "seed", "val_fraction")}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == split_key:
            return saved
    t = time.process_time()
    b = baselines(Path(args.data), args)
    b.update(key=split_key, cpu_s=round(time.process_time() - t, 1))
    _write_json(path, b)
    return b


def run_variant(name: str, out: Path, key: dict, args: argparse.Namespace) -> dict:
    """Train one variant and score its VAE ceiling; saved to OUT/variants/NAME.json as soon as it is done."""
    r = train_variant(name, Path(args.data), out, args)
    t = time.process_time()
    r["ceiling"] = ceiling(Path(args.data), name, r.pop("vae"), args)
    r["ceiling_cpu_s"] = round(time.process_time() - t, 1)
    r["key"] = key
    _write_json(_variant_file(out, name), r)
    return r


def collect(out: Path, key: dict, dataset: dict, base: dict, names: list[str], args: argparse.Namespace) -> dict:
    """Every requested variant saved in OUT/variants under ``key``, with the baselines and totals."""
    variants, missing = {}, []
    for name in names:
        path = _variant_file(out, name)
        r = json.loads(path.read_text()) if path.exists() else None
        if r is None or r.get("key") != key:
            missing.append(name)
            continue
        variants[name] = r
    if args.report_only and missing:  # a run cut short: what its validations reached
        cut = {n: r for n in missing if (r := cut_variant(n, out, args)) is not None}
        if cut:
            common = min(r["curve"][-1]["step"] for r in cut.values())
            for name, r in cut.items():
                r["curve"] = [row for row in r["curve"] if row["step"] <= common]
                r["final"], r["cut_at_step"] = r["curve"][-1]["metrics"], common
                variants[name] = r
                missing.remove(name)
    if missing:
        print(f"not reported (no result under these settings in {out / 'variants'}): {', '.join(missing)}")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update(mode="lotus", lotus_deterministic=True, detail_preserver=False)
    main_six = [r for n, r in variants.items() if n not in CONTROLS]
    every = sum(r["cpu_s"] + r["eval_cpu_s"] + r["ceiling_cpu_s"] for r in variants.values())
    totals = {"cpu_s": round(every + base["cpu_s"], 1),
              "train_cpu_s": round(sum(r["cpu_s"] for r in variants.values()), 1),
              "train_cpu_s_without_controls": round(sum(r["cpu_s"] for r in main_six), 1),
              "variant_wall_s": round(sum(r["wall_s"] for r in variants.values()), 1)}
    return {"dataset": dataset, "settings": settings, "baselines": base, "variants": variants, "totals": totals,
            "missing": missing}


def cut_variant(name: str, out: Path, args: argparse.Namespace) -> dict | None:
    """A variant whose run was stopped before it finished, from its run folder: its validations (val.jsonl) and
    losses; CPU seconds (training and validations together) from OUT/cpu_at_cut.json when recorded there."""
    from rgbify.train.config import make_config
    from rgbify.train.model import build_model

    run = out / "runs" / name.replace("/", "-").replace(":", "-")
    if not (run / "val.jsonl").exists() or not (run / "val.jsonl").read_text().strip():
        return None
    task, options, _ = VARIANTS[name]
    curve = [json.loads(x) for x in (run / "val.jsonl").read_text().splitlines()]
    loss = [[r["step"], r["loss"]] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]
    cpu_file = out / "cpu_at_cut.json"
    cpu = json.loads(cpu_file.read_text()).get(name) if cpu_file.exists() else None
    t = time.process_time()
    vae = build_model(make_config({"base_model": args.model, "resolution": args.resolution, "out": "unused"})).vae
    ceil = ceiling(Path(args.data), name, vae, args)
    return {"task": task, "options": options, "run": str(run), "cpu_s": cpu or float("nan"), "eval_cpu_s": 0.0,
            "wall_s": float("nan"), "curve": curve, "loss": loss, "train_items": None,
            "val_items": len(split(Path(args.data), task, options, args, "val")),
            "ceiling": ceil, "ceiling_cpu_s": round(time.process_time() - t, 1), "cpu_includes_validations": True}


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
