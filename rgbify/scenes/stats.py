"""`rgbify scenes stats`: what a recipe makes, measured without rendering (ray-cast probes)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from rgbify.scenes.config import RecipeConfig
from rgbify.scenes.sample import sample_scene_and_probe

DEPTH_BINS_M = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, np.inf)


def recipe_stats(config: RecipeConfig, n: int, seed: int = 0, assets: Any = None) -> dict[str, Any]:
    """Sample ``n`` scenes (indices 0..n-1) and summarise depth, classes, instances, exposure and rejects."""
    t0 = time.perf_counter()
    rejects: Counter[str] = Counter()
    classes_in_scene: Counter[str] = Counter()
    instances: Counter[str] = Counter()
    depth_hist = np.zeros(len(DEPTH_BINS_M) - 1, dtype=np.int64)
    sky = 0
    total_rays = 0
    per_scene_instances, per_scene_visible, per_scene_classes, relights, lights = [], [], [], [], []
    depth_max, depth_min, depth_median = [], [], []
    for i in range(n):
        spec, probe = sample_scene_and_probe(config, seed, i, assets)
        meta = dict(spec.meta)
        rejects.update(meta["rejects"])
        names = [o.class_name for o in spec.objects]
        instances.update(names)
        classes_in_scene.update(set(names))
        per_scene_instances.append(len(names))
        per_scene_classes.append(len(set(names)))
        per_scene_visible.append(meta["coverage"]["visible_instances"])
        relights.append(meta["exposure"]["relight"])
        lights.append(len(spec.lights))
        d = probe.depth_z_m
        finite = d[np.isfinite(d)]
        depth_hist += np.histogram(finite, bins=np.asarray(DEPTH_BINS_M[:-1] + (1e9,)))[0]
        sky += int(np.sum(~np.isfinite(d)))
        total_rays += len(d)
        if len(finite):
            depth_min.append(float(finite.min()))
            depth_max.append(float(finite.max()))
            depth_median.append(float(np.median(finite)))
    seconds = time.perf_counter() - t0
    attempts = n + sum(rejects.values())

    def summary(x: list[float]) -> dict[str, float]:
        a = np.asarray(x, dtype=np.float64)
        return {"mean": round(float(a.mean()), 3), "min": round(float(a.min()), 3), "max": round(float(a.max()), 3)}

    return {
        "recipe": config.name, "kind": config.kind, "scenes": n, "seed": seed, "seconds": round(seconds, 2),
        "seconds_per_scene": round(seconds / max(n, 1), 4),
        "views_tried": attempts, "reject_rate": round(sum(rejects.values()) / max(attempts, 1), 4),
        "reject_reasons": dict(rejects.most_common()),
        "depth_bins_m": [b if np.isfinite(b) else "inf" for b in DEPTH_BINS_M],
        "depth_histogram": depth_hist.tolist(), "sky_fraction": round(sky / max(total_rays, 1), 4),
        "depth_min_m": summary(depth_min), "depth_median_m": summary(depth_median), "depth_max_m": summary(depth_max),
        "instances_per_scene": summary(per_scene_instances), "classes_per_scene": summary(per_scene_classes),
        "visible_instances_per_view": summary(per_scene_visible), "lights_per_scene": summary(lights),
        "relight_factor": summary(relights),
        "classes": {c: {"scenes": classes_in_scene[c], "instances_per_scene": round(instances[c] / n, 3)}
                    for c in sorted(instances, key=lambda c: -instances[c])},
    }


def format_stats(s: dict[str, Any]) -> str:
    lines = [f"recipe {s['recipe']} ({s['kind']}): {s['scenes']} scenes in {s['seconds']} s "
             f"({s['seconds_per_scene']} s/scene); {s['views_tried']} views tried, reject rate "
             f"{100 * s['reject_rate']:.1f}%"]
    reasons = ", ".join(f"{k} {v}" for k, v in s["reject_reasons"].items()) or "none"
    lines.append(f"reject reasons: {reasons}")
    lines.append(f"depth (planar z, ray-cast probe): scene min {_fmt(s['depth_min_m'])}; scene median "
                 f"{_fmt(s['depth_median_m'])}; scene max {_fmt(s['depth_max_m'])}; sky {s['sky_fraction']:.3f}")
    hist = np.asarray(s["depth_histogram"], dtype=np.float64)
    share = hist / max(hist.sum(), 1)
    bins = s["depth_bins_m"]
    for k, f in enumerate(share):
        label = f"{bins[k]:>6g} - {bins[k + 1]:<6g} m" if bins[k + 1] != "inf" else f"{bins[k]:>6g} +         m"
        lines.append(f"  {label} {100 * f:5.1f}% {'#' * int(round(60 * f))}")
    lines.append(f"instances per scene {_fmt(s['instances_per_scene'])}; classes per scene "
                 f"{_fmt(s['classes_per_scene'])}; visible instances per view {_fmt(s['visible_instances_per_view'])}")
    lines.append("lights per scene " + _fmt(s["lights_per_scene"]) + "; relight factor " + _fmt(s["relight_factor"]))
    lines.append("classes (scenes containing it, instances per scene):")
    for c, v in s["classes"].items():
        lines.append(f"  {c:<14} {v['scenes']:>5} {v['instances_per_scene']:>8.2f}")
    return "\n".join(lines)


def _fmt(d: dict[str, float]) -> str:
    return f"{d['mean']:g} (min {d['min']:g}, max {d['max']:g})"
