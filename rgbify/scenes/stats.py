"""`rgbify scenes stats`: what a recipe makes, measured without rendering (ray-cast probes)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from rgbify.scenes.recipe import RecipeConfig
from rgbify.scenes.sample import sample_scene_and_probe
from rgbify.signals import quiet_worker, stop_pool

DEPTH_BINS_M = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, np.inf)


def _scene_summary(config: RecipeConfig, seed: int, index: int, assets: Any) -> dict[str, Any]:
    spec, probe = sample_scene_and_probe(config, seed, index, assets)
    meta = dict(spec.meta)
    d = probe.depth_z_m
    finite = d[np.isfinite(d)]
    return {"rejects": list(meta["rejects"]), "classes": [o.class_name for o in spec.objects],
            "visible": meta["coverage"]["visible_instances"], "relight": meta["exposure"]["relight"],
            "lights": len(spec.lights), "physics": meta.get("physics", {}), "street": meta.get("street"),
            "models": [_model_key(o) for o in spec.objects if o.class_name not in STRUCTURE],
            "hist": np.histogram(finite, bins=np.asarray(DEPTH_BINS_M[:-1] + (1e9,)))[0],
            "sky": int(np.sum(~np.isfinite(d))), "rays": len(d),
            "depth": (float(finite.min()), float(np.median(finite)), float(finite.max())) if len(finite) else None}


STRUCTURE = {"wall", "floor", "ceiling", "ground", "road", "sidewalk"}
"""Classes left out of the model counts (they are the room or the street, not things in it)."""


def _model_key(o: Any) -> str:
    """What a distinct model is: a mesh file (a catalogue or user model) by its path, a made one by its object
    kind (its name up to the instance number: 'dining_table', 'sofa', 'mug'...)."""
    g = o.geometry
    if getattr(g, "path", None):
        return "file:" + str(g.path)
    return "made:" + o.name.rsplit("_", 1)[0]


def _summaries(config: RecipeConfig, n: int, seed: int, assets: Any, jobs: int) -> list[dict[str, Any]]:
    if jobs <= 1 or n < 4:
        return [_scene_summary(config, seed, i, assets) for i in range(n)]
    from concurrent.futures import ProcessPoolExecutor
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=quiet_worker)
    try:
        futures = [pool.submit(_scene_summary, config, seed, i, assets) for i in range(n)]
        rows = [f.result() for f in futures]
    except BaseException:  # Ctrl-C: the workers (which ignore SIGINT) are ended, the scenes not started dropped
        stop_pool(pool, interrupted=True)
        raise
    stop_pool(pool, interrupted=False)
    return rows


def recipe_stats(config: RecipeConfig, n: int, seed: int = 0, assets: Any = None, jobs: int = 1) -> dict[str, Any]:
    """Sample ``n`` scenes (indices 0..n-1, in ``jobs`` processes) and summarise depth, classes, instances,
    exposure and rejects."""
    t0 = time.perf_counter()
    rows = _summaries(config, n, seed, assets, jobs)
    seconds = time.perf_counter() - t0
    rejects: Counter[str] = Counter()
    classes_in_scene: Counter[str] = Counter()
    instances: Counter[str] = Counter()
    for r in rows:
        rejects.update(r["rejects"])
        instances.update(r["classes"])
        classes_in_scene.update(set(r["classes"]))
    depth_hist = np.sum([r["hist"] for r in rows], axis=0)
    depths = [r["depth"] for r in rows if r["depth"] is not None]
    attempts = n + sum(rejects.values())

    def summary(x: list[float]) -> dict[str, float]:
        a = np.asarray(x, dtype=np.float64)
        return {"mean": round(float(a.mean()), 3), "min": round(float(a.min()), 3), "max": round(float(a.max()), 3)}

    return {
        "recipe": config.name, "kind": config.kind, "scenes": n, "seed": seed, "jobs": jobs,
        "seconds": round(seconds, 2), "seconds_per_scene": round(seconds / max(n, 1), 4),
        "views_tried": attempts, "reject_rate": round(sum(rejects.values()) / max(attempts, 1), 4),
        "reject_reasons": dict(rejects.most_common()),
        "depth_bins_m": [b if np.isfinite(b) else "inf" for b in DEPTH_BINS_M],
        "depth_histogram": depth_hist.tolist(),
        "sky_fraction": round(sum(r["sky"] for r in rows) / max(sum(r["rays"] for r in rows), 1), 4),
        "depth_min_m": summary([d[0] for d in depths]), "depth_median_m": summary([d[1] for d in depths]),
        "depth_max_m": summary([d[2] for d in depths]),
        "instances_per_scene": summary([len(r["classes"]) for r in rows]),
        "classes_per_scene": summary([len(set(r["classes"])) for r in rows]),
        "visible_instances_per_view": summary([r["visible"] for r in rows]),
        "lights_per_scene": summary([r["lights"] for r in rows]),
        "relight_factor": summary([r["relight"] for r in rows]),
        "classes": {c: {"scenes": classes_in_scene[c], "instances_per_scene": round(instances[c] / n, 3)}
                    for c in sorted(instances, key=lambda c: -instances[c])},
        "physics": _physics(rows),
        "models": _models(rows),
        "coverage": _coverage(instances),
        **({"streets": _streets(rows)} if any(r.get("street") for r in rows) else {}),
    }


def _models(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Distinct models (mesh files, made kinds) over the scenes, how many scenes it takes for half of them to have
    appeared, and the share of non-structure objects that are mesh files."""
    seen: set[str] = set()
    first: list[int] = []
    for k, r in enumerate(rows):
        for m in r["models"]:
            if m not in seen:
                seen.add(m)
                first.append(k)
    objects = sum(len(r["models"]) for r in rows)
    files = sum(m.startswith("file:") for r in rows for m in r["models"])
    return {"distinct": len(seen), "distinct_files": sum(m.startswith("file:") for m in seen),
            "per_1000_scenes": round(1000 * len(seen) / max(len(rows), 1), 1),
            "scenes_until_half_seen": (sorted(first)[(len(first) - 1) // 2] + 1) if first else 0,
            "file_share_of_objects": round(files / max(objects, 1), 4)}


def _coverage(instances: Counter) -> dict[str, Any]:
    """The NYU40 and Cityscapes classes the scenes' classes map to (rgbify.scenes.classes)."""
    from rgbify.scenes.classes import cityscapes_ids, nyu40_id

    known = [c for c in instances if c in _vocabulary()]
    nyu = sorted({nyu40_id(c) for c in known} - {0})
    city = sorted({cityscapes_ids(c)[1] for c in known} - {255})
    return {"nyu40": len(nyu), "nyu40_ids": nyu, "cityscapes_train": len(city), "cityscapes_train_ids": city}


def _vocabulary() -> set[str]:
    from rgbify.scenes.classes import CLASSES

    return set(CLASSES)


def _streets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Outdoor streets: shares curved, graded and on uneven ground, their radii, grades and relief, parked rows
    and cyclists per scene."""
    st = [r["street"] for r in rows if r.get("street")]
    k = [abs(float(x.get("curvature_per_m", 0.0))) for x in st]
    g = [abs(float(x.get("grade", 0.0))) for x in st]
    rel = [float(x.get("relief_m", 0.0)) for x in st]
    n = len(st)
    return {"scenes": n, "curved": round(sum(v > 0 for v in k) / n, 3),
            "radius_m_median": round(float(np.median([1 / v for v in k if v > 0])), 1) if any(k) else None,
            "graded": round(sum(v > 0 for v in g) / n, 3),
            "grade_median": round(float(np.median([v for v in g if v > 0])), 4) if any(g) else None,
            "uneven": round(sum(v > 0 for v in rel) / n, 3),
            "relief_m_median": round(float(np.median([v for v in rel if v > 0])), 2) if any(rel) else None,
            "crossing": round(sum(bool(x.get("crossing")) for x in st) / n, 3),
            "parked_rows_per_scene": round(sum(int(x.get("parked_rows", 0)) for x in st) / n, 3),
            "cyclists_per_scene": round(sum(len(x.get("cyclists", ())) for x in st) / n, 3)}


def _physics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Loose objects settled by the physics step: per scene, and the share that came to rest tilted."""
    loose = sum(int(r["physics"].get("loose", 0)) for r in rows)
    tilted = sum(int(r["physics"].get("tilted", 0)) for r in rows)
    objects = sum(len(r["classes"]) for r in rows)
    return {"loose_per_scene": round(loose / max(len(rows), 1), 2), "tilted": tilted, "loose": loose,
            "tilted_share_of_loose": round(tilted / max(loose, 1), 4), "tilted_share_of_objects":
            round(tilted / max(objects, 1), 4),
            "removed": sum(int(r["physics"].get("removed", 0)) for r in rows)}


def format_stats(s: dict[str, Any]) -> str:
    lines = [f"recipe {s['recipe']} ({s['kind']}): {s['scenes']} scenes in {s['seconds']} s with {s['jobs']} "
             f"process(es) ({s['seconds_per_scene']} s/scene); {s['views_tried']} views tried, reject rate "
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
    ph = s["physics"]
    lines.append(f"physics: {ph['loose_per_scene']:g} loose objects settled per scene; {ph['tilted']} of {ph['loose']} "
                 f"came to rest tilted ({100 * ph['tilted_share_of_loose']:.1f}%; "
                 f"{100 * ph['tilted_share_of_objects']:.1f}% of all objects); {ph['removed']} taken out")
    if "streets" in s:
        sv = s["streets"]
        lines.append(f"streets: {100 * sv['curved']:.0f}% curved (median radius {sv['radius_m_median']} m), "
                     f"{100 * sv['graded']:.0f}% graded (median |grade| {sv['grade_median']}), "
                     f"{100 * sv['uneven']:.0f}% on uneven ground (median relief {sv['relief_m_median']} m), "
                     f"{100 * sv['crossing']:.0f}% with a crossing; {sv['parked_rows_per_scene']:g} parked rows "
                     f"and {sv['cyclists_per_scene']:g} cyclists per scene")
    mo, cov = s["models"], s["coverage"]
    lines.append(f"models: {mo['distinct']} distinct ({mo['distinct_files']} mesh files; {mo['per_1000_scenes']:g} "
                 f"per 1,000 scenes), half of them seen within {mo['scenes_until_half_seen']} scenes; "
                 f"{100 * mo['file_share_of_objects']:.1f}% of objects are mesh files")
    lines.append(f"class coverage: {cov['nyu40']} of 40 NYU40 classes, {cov['cityscapes_train']} of 19 Cityscapes "
                 "train classes")
    lines.append("classes (scenes containing it, instances per scene):")
    for c, v in s["classes"].items():
        lines.append(f"  {c:<14} {v['scenes']:>5} {v['instances_per_scene']:>8.2f}")
    return "\n".join(lines)


def _fmt(d: dict[str, float]) -> str:
    return f"{d['mean']:g} (min {d['min']:g}, max {d['max']:g})"
