"""Render-stage benchmark: per-phase times of one Cycles render and the data-render overhead.

    python benchmarks/bench_render.py                         # bundled scene, 512x512, 64 samples
    python benchmarks/bench_render.py --recipe indoor --seed 0
    python benchmarks/bench_render.py --rss-scenes 500        # also: RSS growth over 500 tiny scenes, one worker

Prints the phases (scene build, RGB render, data render, read-back and conversion, write), overhead =
(total - RGB render) / RGB render, the data render as a fraction of the RGB render, and a warm worker's second
scene (which must pay no Blender start-up). Targets (issue 3): overhead <= 15%, data render <= 10% of RGB.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rgbify.render import render, write_render_dir  # noqa: E402
from rgbify.render.cli import load_scene_file, resize_camera, spec_from_recipe  # noqa: E402
from rgbify.render.worker import RenderWorker  # noqa: E402

BENCH_SCENE = os.path.join(os.path.dirname(HERE), "rgbify", "data", "bench_scene.json")


def load_spec(args):
    spec = spec_from_recipe(args.recipe, args.seed, 0) if args.recipe else load_scene_file(args.scene)
    spec = dataclasses.replace(spec, camera=resize_camera(spec.camera, args.size, args.size),
                               render=dataclasses.replace(spec.render, samples=args.samples))
    return spec


def phase_table(timings: dict[str, float]) -> str:
    rgb = timings["rgb_render"]
    total = timings["scene_build"] + rgb + timings["data_render"] + timings["readback"] + timings["write"]
    rows = [("scene build", timings["scene_build"]), ("RGB render", rgb), ("data render", timings["data_render"]),
            ("read-back + conversion", timings["readback"]), ("write", timings["write"]), ("total", total)]
    lines = ["| phase | seconds | % of RGB render |", "|---|---:|---:|"]
    lines += [f"| {name} | {sec:.3f} | {100 * sec / rgb:.1f} |" for name, sec in rows]
    lines.append(f"\noverhead (total - RGB) / RGB = {100 * (total - rgb) / rgb:.1f}% (target <= 15%); "
                 f"data render / RGB = {100 * timings['data_render'] / rgb:.1f}% (target <= 10%)")
    return "\n".join(lines)


def bench_single(spec, repeats: int) -> None:
    warm = dataclasses.replace(spec, camera=resize_camera(spec.camera, 16, 16))
    with tempfile.TemporaryDirectory() as out:  # import bpy, trimesh, PIL once
        write_render_dir(render(warm), warm, out)
    best = None
    for _ in range(repeats):
        result = render(spec)
        with tempfile.TemporaryDirectory() as out:
            write_render_dir(result, spec, out)
        if best is None or result.timings["rgb_render"] + result.timings["data_render"] < \
                best["rgb_render"] + best["data_render"]:
            best = dict(result.timings)
    print(f"## one scene, {spec.camera.width}x{spec.camera.height}, {spec.render.samples} samples, "
          f"{len(spec.objects)} objects (best of {repeats})\n")
    print(phase_table(best))


def bench_worker(spec, size: int) -> None:
    spec = dataclasses.replace(spec, camera=resize_camera(spec.camera, size, size))
    with RenderWorker(timeout_s=1200) as w:
        t0 = time.perf_counter()
        first = w.render(spec)
        t1 = time.perf_counter()
        second = w.render(spec)
        t2 = time.perf_counter()
    first_up, second_up = first.timings["worker_startup"], second.timings["worker_startup"]
    print(f"\n## worker ({size}x{size}): first scene {t1 - t0:.2f} s (start-up {first_up:.2f} s), "
          f"second scene {t2 - t1:.2f} s (start-up {second_up:.2f} s)")


def bench_rss(spec, n: int) -> None:
    tiny = dataclasses.replace(spec, camera=resize_camera(spec.camera, 16, 16),
                               render=dataclasses.replace(spec.render, samples=4))
    rss = []
    t0 = time.perf_counter()
    with RenderWorker(max_scenes=n + 1, max_rss_mb=1e9, timeout_s=600) as w:
        for i in range(n):
            w.render(tiny)
            rss.append(w.last_rss_mb)
            if (i + 1) % 100 == 0:
                print(f"  scene {i + 1}: RSS {w.last_rss_mb:.0f} MB", flush=True)
        assert w.restarts == 0
    dt = time.perf_counter() - t0
    print(f"\n## memory: {n} scenes (16x16, 4 samples) in one worker, {dt / n * 1000:.0f} ms/scene: RSS after "
          f"scene 1 {rss[0]:.0f} MB, after scene 10 {rss[min(9, n - 1)]:.0f} MB, after scene {n} {rss[-1]:.0f} MB, "
          f"growth {rss[-1] - rss[0]:.0f} MB (target < 200 MB)")
    np.save(os.path.join(tempfile.gettempdir(), "rgbify_bench_rss.npy"), np.asarray(rss))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scene", default=BENCH_SCENE, help="scene spec JSON (default: the bundled bench scene)")
    p.add_argument("--recipe", help="use rgbify.scenes.sample_scene(recipe, seed, 0) instead of --scene")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512, help="square resolution (default 512)")
    p.add_argument("--samples", type=int, default=64, help="RGB samples per pixel (default 64)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--worker-size", type=int, default=128, help="resolution of the warm-worker check")
    p.add_argument("--rss-scenes", type=int, default=0, help="also render this many tiny scenes in one worker")
    args = p.parse_args()
    spec = load_spec(args)
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start\n")
    bench_single(spec, args.repeats)
    bench_worker(spec, args.worker_size)
    if args.rss_scenes:
        bench_rss(spec, args.rss_scenes)
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
