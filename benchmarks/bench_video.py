"""Clip render benchmark: core-seconds per frame of a clip rendered in one Blender scene (built once; per frame only
the camera and the moving objects change) against rendering each frame's still spec on its own (a scene build per
frame), at the same settings, alternating the two (A, B, A, B, ...) in one process after a warm-up render.

    python benchmarks/bench_video.py                              # indoor, 128x96, 16 samples, 6 frames, 3 rounds
    python benchmarks/bench_video.py --recipe outdoor --size 256 192 --samples 32 --frames 8 --threads 2
    python benchmarks/bench_video.py --samples 1 --no-denoise          # where scene build and sync dominate

Prints per round and in total: core-seconds (process CPU time of every thread: resource.getrusage, children
included) and wall seconds per frame of each way, and the ratio clip / single (issue 16's goal: <= 0.8x).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rgbify.render import render_clip  # noqa: E402
from rgbify.render.cycles import render_cycles  # noqa: E402
from rgbify.scenes import load_recipe  # noqa: E402
from rgbify.scenes.clip import load_clip_config, sample_clip  # noqa: E402


def core_seconds() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def measure(fn) -> tuple[float, float]:  # noqa: ANN001
    c0, w0 = core_seconds(), time.perf_counter()
    fn()
    return core_seconds() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="indoor")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=int, default=4)
    ap.add_argument("--size", type=int, nargs=2, default=(128, 96), metavar=("W", "H"))
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument(
        "--no-denoise",
        action="store_true",
        help="turn OpenImageDenoise off (as ground-truth-only or preview builds might)",
    )
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="Cycles threads (default: Blender's choice)")
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = ap.parse_args()

    config = load_recipe(args.recipe, resolution=tuple(args.size), samples=args.samples, denoise=not args.no_denoise)
    clip = sample_clip(config, load_clip_config(frames=args.frames), args.seed, args.index)
    n = clip.frames
    print(
        f"{args.recipe} seed {args.seed} index {args.index}: {len(clip.scene.objects)} objects, "
        f"{len(clip.motions)} moving, trajectory {dict(clip.meta)['trajectory']}, {n} frames at "
        f"{args.size[0]}x{args.size[1]}, {args.samples} samples, denoise {not args.no_denoise}, "
        f"device {args.device}, threads {args.threads}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    render_cycles(clip.frame(0), device=args.device, threads=args.threads)  # warm-up: bpy, kernels, caches
    render_clip(clip, device=args.device, threads=args.threads, frames=[0, 1])  # and the clip's code path

    def clip_way() -> None:
        render_clip(clip, device=args.device, threads=args.threads)

    def single_way() -> None:
        for t in range(n):
            render_cycles(clip.frame(t), device=args.device, threads=args.threads)

    totals = {"clip": [0.0, 0.0], "single": [0.0, 0.0]}
    print("| round | way | core-s / frame | wall s / frame |")
    print("|---:|---|---:|---:|")
    for r in range(args.rounds):
        order = [("clip", clip_way), ("single", single_way)]
        if r % 2:
            order.reverse()  # alternate which goes first
        for name, fn in order:
            core, wall = measure(fn)
            totals[name][0] += core
            totals[name][1] += wall
            print(f"| {r} | {name} | {core / n:.3f} | {wall / n:.3f} |", flush=True)
    c, s = totals["clip"], totals["single"]
    print(
        f"\nclip: {c[0] / (n * args.rounds):.3f} core-s/frame, {c[1] / (n * args.rounds):.3f} wall s/frame; "
        f"single: {s[0] / (n * args.rounds):.3f} core-s/frame, {s[1] / (n * args.rounds):.3f} wall s/frame"
    )
    print(
        f"ratio clip / single: {c[0] / s[0]:.3f}x core-seconds, {c[1] / s[1]:.3f}x wall (goal <= 0.8x); "
        f"load average now {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
