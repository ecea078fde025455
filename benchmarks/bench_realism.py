"""How realistic are the recipes' scenes? Measured on specs and renders, this tree against an older revision.

    python benchmarks/bench_realism.py                            # this tree: 1000 specs, 12 renders per recipe
    python benchmarks/bench_realism.py --baseline cc6762c         # also the same seeds at that revision, side by side
    python benchmarks/bench_realism.py --specs 100 --renders 2 --size 128x96      # a quick look

Each revision's numbers are collected by running this file with ``--collect`` in a process whose ``rgbify`` is that
revision's (a detached git worktree for ``--baseline``), through APIs both have: ``rgbify.scenes.sample_scene``,
``spec_to_json`` and ``rgbify.render.render``. The collector writes spec JSON lines and, for the first ``--renders``
scenes, the RGB and instance images (photometric post-process off: camera noise is not texture). All measures are
computed here, from those files:

renders (recipe's samples, --size):
- untextured: share of pixels on surfaces (instance > 0) whose 5x5 window's RGB standard deviation is under one
  8-bit level in every channel;
- grey-world R/B: mean R over mean B of each image; median, and share of images outside [0.8, 1.25];
- clipped: share of pixels with a channel at 255;
specs (--specs scenes, indices 0..N-1, seed 0):
- tilted: share of objects (not walls, floors, ceilings, roads, ground) whose up axis leans over 5 degrees;
- distinct meshes (a primitive's shape, a mesh file, a model's part, or a procedural generator's topology per class),
  distinct materials (pattern or texture, base colour quantised to eighths) and distinct classes, over the first
  1000 scenes (or all if fewer); scenes until half of all distinct meshes have appeared;
- NYU40 and Cityscapes coverage: classes of those benchmarks that the scenes' classes map to
  (rgbify.scenes.classes' published maps), out of 40 and 19.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STRUCTURAL = {"wall", "floor", "ceiling", "road", "ground", "sidewalk", "terrain", "building", "window", "door",
              "sky", "baseboard", "ceiling_light", "rug", "curtain", "facade", "grass", "table_top"}


# --- collecting (runs against whichever rgbify is importable) ------------------------------------------------


def collect(recipe: str, specs: int, renders: int, size: str, out: str) -> None:
    import dataclasses

    from rgbify.scenes import sample_scene
    from rgbify.scenes.spec import spec_to_json

    w, h = (int(v) for v in size.split("x"))
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    with open(os.path.join(out, f"{recipe}.jsonl"), "w") as f:
        for i in range(specs):
            f.write(spec_to_json(sample_scene(recipe, 0, i)) + "\n")
    print(f"{recipe}: {specs} specs in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    if not renders:
        return
    from rgbify.render import render

    for i in range(renders):
        spec = sample_scene(recipe, 0, i)
        camera = spec.camera.resized(w, h)
        if camera.fx != camera.fy and spec.camera.fx == spec.camera.fy:
            camera = dataclasses.replace(camera, fy=camera.fx)
        rs = spec.render
        if hasattr(rs, "post"):
            rs = dataclasses.replace(rs, post=type(rs.post)())
        spec = dataclasses.replace(spec, camera=camera, render=rs)
        t1 = time.perf_counter()
        r = render(spec)
        np.savez_compressed(os.path.join(out, f"{recipe}_{i:04d}.npz"), rgb=r.rgb, instance=r.instance,
                            seconds=time.perf_counter() - t1)
        print(f"{recipe} {i}: {time.perf_counter() - t1:.1f} s", file=sys.stderr, flush=True)


def collect_at(rev: str | None, args, out: str) -> None:
    """Run the collector for every recipe with ``rev``'s rgbify (None: this tree's)."""
    tree = ROOT
    if rev:
        tree = os.path.join(tempfile.gettempdir(), f"rgbify-realism-{rev}")
        if not os.path.isdir(tree):
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, rev], check=True,
                           capture_output=True)
    env = dict(os.environ, PYTHONPATH=tree)
    for recipe in args.recipes.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--collect", recipe, "--specs", str(args.specs),
               "--renders", str(args.renders), "--size", args.size, "--out", out]
        subprocess.run(cmd, check=True, env=env, cwd=tempfile.gettempdir())


# --- measuring (this tree) -------------------------------------------------------------------------------------


def untextured_share(rgb: np.ndarray, instance: np.ndarray) -> float:
    from scipy.ndimage import uniform_filter

    x = rgb.astype(np.float64)
    mean = uniform_filter(x, size=(5, 5, 1), mode="reflect")
    var = uniform_filter(x * x, size=(5, 5, 1), mode="reflect") - mean * mean
    flat = (np.sqrt(np.maximum(var, 0)) < 1.0).all(axis=2)
    surf = instance > 0
    return float(flat[surf].mean()) if surf.any() else float("nan")


def grey_world_rb(rgb: np.ndarray) -> float:
    m = rgb.reshape(-1, 3).astype(np.float64).mean(axis=0)
    return float(m[0] / max(m[2], 1e-6))


def mesh_key(o: dict) -> str:
    g = o["geometry"]
    kind = g.get("type")
    if kind == "primitive":
        return f"primitive:{g.get('shape')}"
    if kind in ("mesh_file", "file"):
        return f"file:{g.get('path')}:{g.get('part', '')}"
    n_v = len(g.get("vertices", ()))
    n_f = len(g.get("faces", ()))
    return f"inline:{o.get('class_name')}:{n_v}:{n_f}"


def material_keys(o: dict) -> list[str]:
    mats = [o["material"], *o.get("materials", ())]
    out = []
    for m in mats:
        c = tuple(int(round(v * 8)) for v in m.get("base_color", (0, 0, 0))[:3])
        out.append(f"{m.get('pattern', 'plain')}:{m.get('image_texture')}:{c}")
    return out


def tilted(o: dict) -> bool:
    R = np.asarray(o["world_from_object"], dtype=np.float64)[:3, :3]
    up = R[:, 2] / max(np.linalg.norm(R[:, 2]), 1e-12)
    return bool(up[2] < np.cos(np.radians(5.0)))


def benchmark_maps() -> tuple[dict[str, str], dict[str, str]]:
    """The published maps of this tree's vocabulary (rgbify.scenes.classes): our class -> an NYU40 class, and ->
    one of Cityscapes' 19 training classes (classes Cityscapes ignores in training are left out)."""
    from rgbify.scenes import classes as vocabulary

    nyu = {c: v for c, v in getattr(vocabulary, "NYU40", {}).items() if v}
    train = {name for name, _, train_id in getattr(vocabulary, "CITYSCAPES_LABELS", ()) if train_id != 255}
    city = {c: v for c, v in getattr(vocabulary, "CITYSCAPES", {}).items() if v in train}
    return nyu, city


def measure(folder: str, recipe: str) -> dict:
    specs = [json.loads(line) for line in open(os.path.join(folder, f"{recipe}.jsonl"))]
    meshes_seen: set[str] = set()
    first_seen: list[int] = []
    mats: set[str] = set()
    classes: set[str] = set()
    n_obj = n_tilt = 0
    for i, d in enumerate(specs[:1000]):
        for o in d["objects"]:
            cls = o.get("class_name", "")
            classes.add(cls)
            k = mesh_key(o)
            if k not in meshes_seen:
                meshes_seen.add(k)
                first_seen.append(i)
            mats.update(material_keys(o))
            if cls not in STRUCTURAL:
                n_obj += 1
                n_tilt += tilted(o)
    half = first_seen[(len(first_seen) - 1) // 2] + 1 if first_seen else 0
    nyu, city = benchmark_maps()
    out = {"scenes": min(len(specs), 1000), "tilted": n_tilt / max(n_obj, 1), "objects": n_obj,
           "meshes": len(meshes_seen), "materials": len(mats), "classes": len(classes), "half_meshes_at": half,
           "nyu40": len({nyu[c] for c in classes if nyu.get(c)}) if nyu else None,
           "cityscapes": len({city[c] for c in classes if city.get(c)}) if city else None}
    renders = sorted(f for f in os.listdir(folder) if f.startswith(f"{recipe}_") and f.endswith(".npz"))
    if renders:
        rb, flat, clip, sec = [], [], [], []
        for f in renders:
            z = np.load(os.path.join(folder, f))
            rgb, inst = z["rgb"], z["instance"]
            flat.append(untextured_share(rgb, inst))
            rb.append(grey_world_rb(rgb))
            clip.append(float((rgb == 255).any(axis=2).mean()))
            sec.append(float(z["seconds"]))
        rb_a = np.array(rb)
        out.update(renders=len(renders), untextured=float(np.nanmean(flat)), rb_median=float(np.median(rb_a)),
                   rb_outside=float(((rb_a < 0.8) | (rb_a > 1.25)).mean()), clipped=float(np.mean(clip)),
                   render_s=float(np.mean(sec)))
    return out


ROWS = [("untextured surface pixels", "untextured", "{:.1%}"), ("grey-world R/B, median", "rb_median", "{:.2f}"),
        ("images with R/B outside [0.8, 1.25]", "rb_outside", "{:.0%}"), ("clipped pixels", "clipped", "{:.1%}"),
        ("tilted objects", "tilted", "{:.1%}"), ("distinct meshes", "meshes", "{}"),
        ("distinct materials", "materials", "{}"), ("distinct classes", "classes", "{}"),
        ("scenes until half the meshes appeared", "half_meshes_at", "{}"),
        ("NYU40 classes covered (of 40)", "nyu40", "{}"),
        ("Cityscapes classes covered (of 19)", "cityscapes", "{}"), ("seconds per render", "render_s", "{:.1f}")]


def table(recipe: str, cols: dict[str, dict]) -> str:
    names = list(cols)
    lines = [f"### {recipe}\n", "| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key, fmt in ROWS:
        vals = [cols[n].get(key) for n in names]
        if all(v is None for v in vals):
            continue
        lines.append(f"| {label} | " + " | ".join("-" if v is None else fmt.format(v) for v in vals) + " |")
    first = cols[names[0]]
    lines.append(f"\n{first['scenes']} scenes' specs, {first.get('renders', 0)} renders")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="indoor,tabletop,outdoor")
    ap.add_argument("--specs", type=int, default=1000, help="scene specs per recipe (default 1000)")
    ap.add_argument("--renders", type=int, default=12, help="renders per recipe (default 12)")
    ap.add_argument("--size", default="256x192", help="render size WxH (default 256x192)")
    ap.add_argument("--baseline", help="git revision to measure too, e.g. cc6762c")
    ap.add_argument("--work", help="folder for the collected files (default: a temporary one); reused if present")
    ap.add_argument("--json", dest="json_out", help="write the numbers as JSON here")
    ap.add_argument("--collect", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.collect:
        collect(args.collect, args.specs, args.renders, args.size, args.out)
        return
    work = args.work or tempfile.mkdtemp(prefix="rgbify-realism-")
    revs = {"this tree": None, **({args.baseline: args.baseline} if args.baseline else {})}
    results: dict[str, dict[str, dict]] = {}
    for label, rev in revs.items():
        folder = os.path.join(work, rev or "head")
        if not os.path.exists(os.path.join(folder, f"{args.recipes.split(',')[-1]}.jsonl")):
            collect_at(rev, args, folder)
        for recipe in args.recipes.split(","):
            results.setdefault(recipe, {})[label] = measure(folder, recipe)
    for recipe, cols in results.items():
        order = {k: cols[k] for k in reversed(list(cols))}  # baseline first, then this tree
        print(table(recipe, order) + "\n")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
