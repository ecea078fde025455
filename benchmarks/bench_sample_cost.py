"""What one sample costs to make at 512 px at `rgbify build`'s default quality (16 spp): this tree against an older
revision, interleaved so both see the same machine load.

    python benchmarks/bench_sample_cost.py --baseline cc6762c               # 2 samples per recipe per revision
    python benchmarks/bench_sample_cost.py --baseline cc6762c --n 1 --size 256
    python benchmarks/bench_sample_cost.py --baseline cc6762c --this-spp 12    # this tree at 12 spp, the baseline at 16

For sample index i of each recipe, it runs the baseline's and this tree's ``sample_scene`` + ``render`` one after
the other (each in a fresh process whose ``rgbify`` is that revision's, Blender imported and warmed on a 16x16
render before the clock starts), and prints per recipe the mean core-seconds (CPU time of that process: it barely
changes with other jobs on the machine) and wall seconds of one sample, and this tree over the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import dataclasses, json, os, sys, time
from rgbify.scenes import sample_scene
from rgbify.render import render

recipe, index, size, spp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def sized(spec, w, h):
    cam = spec.camera.resized(w, h)
    if cam.fx != cam.fy and spec.camera.fx == spec.camera.fy:
        cam = dataclasses.replace(cam, fy=cam.fx)
    return dataclasses.replace(spec, camera=cam)


def cpu():
    t = os.times()
    return t.user + t.system


warm = sample_scene(recipe, 0, 10_000)
render(dataclasses.replace(sized(warm, 16, 16), render=dataclasses.replace(warm.render, samples=1)))
c0, t0 = cpu(), time.perf_counter()
spec = sample_scene(recipe, 0, index)
spec = dataclasses.replace(spec, render=dataclasses.replace(spec.render, samples=spp))
h = round(size * spec.camera.height / spec.camera.width / 2) * 2
r = render(sized(spec, size, h))
print(json.dumps({"cpu": cpu() - c0, "wall": time.perf_counter() - t0, "samples": spec.render.samples,
                  "size": [size, h]}))
"""


def tree_of(rev: str | None) -> str:
    if rev is None:
        return ROOT
    tree = os.path.join(tempfile.gettempdir(), f"rgbify-realism-{rev}")
    if not os.path.isdir(tree):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, rev], check=True, capture_output=True)
    return tree


def one(tree: str, recipe: str, index: int, size: int, spp: int) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    p = subprocess.run([sys.executable, "-c", CHILD, recipe, str(index), str(size), str(spp)], env=env,
                       capture_output=True, text=True, cwd=tempfile.gettempdir())
    if p.returncode:
        raise SystemExit(f"{tree} {recipe} {index}: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare with, e.g. cc6762c")
    ap.add_argument("--recipes", default="indoor,tabletop,outdoor")
    ap.add_argument("--n", type=int, default=2, help="samples per recipe and revision (default 2)")
    ap.add_argument("--size", type=int, default=512, help="image width in pixels (default 512)")
    ap.add_argument("--spp", type=int, default=16, help="Cycles samples (default 16, `rgbify build`'s old default)")
    ap.add_argument("--this-spp", type=int, help="Cycles samples of this tree (default: --spp), for a quality-matched "
                    "comparison (docs/performance.md)")
    args = ap.parse_args(argv)
    trees = {args.baseline: tree_of(args.baseline), "this tree": tree_of(None)}
    runs: dict[tuple[str, str], list[dict]] = {}
    for recipe in args.recipes.split(","):
        for i in range(args.n):
            for label, tree in trees.items():  # interleaved: baseline, this tree, baseline, ...
                spp = args.this_spp if label == "this tree" and args.this_spp else args.spp
                r = one(tree, recipe, i, args.size, spp)
                runs.setdefault((recipe, label), []).append(r)
                print(f"{recipe} {i} {label}: {r['cpu']:.1f} core-s, {r['wall']:.1f} s ({r['samples']} spp)",
                      file=sys.stderr, flush=True)
    this = args.this_spp or args.spp
    print(f"## Seconds per sample, {args.size} px wide, {args.baseline} at {args.spp} spp, this tree at {this} spp, "
          f"{args.n} samples per recipe\n")
    print(f"| recipe | {args.baseline} core-s | this tree core-s | ratio | {args.baseline} wall s | this tree wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for recipe in args.recipes.split(","):
        b, t = runs[(recipe, args.baseline)], runs[(recipe, "this tree")]
        bc, tc = sum(r["cpu"] for r in b) / len(b), sum(r["cpu"] for r in t) / len(t)
        bw, tw = sum(r["wall"] for r in b) / len(b), sum(r["wall"] for r in t) / len(t)
        print(f"| {recipe} | {bc:.1f} | {tc:.1f} | {tc / bc:.2f} | {bw:.1f} | {tw:.1f} |")


if __name__ == "__main__":
    main()
