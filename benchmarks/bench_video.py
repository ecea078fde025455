"""Clip render benchmark: core-seconds per frame of a clip rendered in one Blender scene (built once; per frame only
the camera and the moving objects change) against rendering each frame's still spec on its own (a scene build per
frame), at the same settings, alternating the two (A, B, A, B, ...) in one process after a warm-up render.

    python benchmarks/bench_video.py                              # indoor, 128x96, 16 samples, 6 frames, 3 rounds
    python benchmarks/bench_video.py --recipe outdoor --size 256 192 --samples 32 --frames 8 --threads 2
    python benchmarks/bench_video.py --samples 1 --no-denoise          # where scene build and sync dominate
    python benchmarks/bench_video.py --floor                           # and the least a one-scene clip can cost

Prints per round and in total: core-seconds (process CPU time of every thread: resource.getrusage, children
included) and wall seconds per frame of each way, and the ratio clip / single (issue 16's goal: <= 0.8x).

``--floor`` adds a third way, in the same rotation: the clip's scene built once (not counted), each frame's RGB and
data renders done twice in a row and only the second counted (nothing changed since the first: no sync, no BVH
update), with its readback. That is what a frame costs a renderer that keeps one scene and pays nothing per frame
but path tracing, denoising and the data render; floor / single bounds what any such clip renderer can reach.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rgbify.render import cycles as cy  # noqa: E402
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


def floor(clip, device: str, threads: int | None) -> tuple[float, float, list]:  # noqa: ANN001 - a ClipSpec
    """The clip's scene built once (not counted); each frame's RGB and data renders done twice in a row, all RGB
    first as the clip does; only the second of each pair (nothing changed since the first) and the frame's
    readback counted. Returns (core-seconds, wall seconds, the RGB frames)."""
    specs = [clip.frame(t) for t in range(clip.frames)]
    moving = {m.instance_id for m in clip.motions}
    core = wall = 0.0
    rgbs: list = []
    with tempfile.TemporaryDirectory(prefix="rgbify-bench-") as tmp:
        cy.reset()
        built = cy.build_scene(specs[0], cy._checked_meshes(specs[0]))
        cy._common_cycles(built.scene, device, threads)
        for kind in ("rgb", "data"):
            for t, spec in enumerate(specs):
                cy._to_frame(built, spec, moving, None)
                for again in (False, True):
                    c0, w0 = core_seconds(), time.perf_counter()
                    if kind == "rgb":
                        rgb = cy.render_rgb(built, spec, os.path.join(tmp, "rgb.png"))
                    else:
                        cy._result(spec, rgbs[t], cy.render_data(built, spec, os.path.join(tmp, "data.exr")), {})
                    if again:
                        core += core_seconds() - c0
                        wall += time.perf_counter() - w0
                if kind == "rgb":
                    rgbs.append(rgb)
    return core, wall, rgbs


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
    ap.add_argument("--floor", action="store_true", help="also time each frame re-rendered with nothing changed")
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

    clip_rgbs: list = []

    def clip_way() -> None:
        clip_rgbs[:] = [r.rgb for r in render_clip(clip, device=args.device, threads=args.threads)]

    def single_way() -> None:
        for t in range(n):
            render_cycles(clip.frame(t), device=args.device, threads=args.threads)

    rgbs: list = []

    def floor_way() -> tuple[float, float]:
        core, wall, frames = floor(clip, args.device, args.threads)
        rgbs[:] = frames
        return core, wall

    ways = [("clip", clip_way), ("single", single_way)] + ([("floor", floor_way)] if args.floor else [])
    totals = {name: [0.0, 0.0] for name, _ in ways}
    print("| round | way | core-s / frame | wall s / frame |")
    print("|---:|---|---:|---:|")
    for r in range(args.rounds):
        order = ways[r % len(ways):] + ways[:r % len(ways)]  # rotate which goes first
        for name, fn in order:
            if name == "floor":
                core, wall = fn()
                same = all(a.tobytes() == b.tobytes() for a, b in zip(rgbs, clip_rgbs, strict=True))
                if not same:
                    sys.exit("floor way: its RGB frames differ from the clip's; the comparison is void")
            else:
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
    if args.floor:
        f = totals["floor"]
        print(
            f"floor: {f[0] / (n * args.rounds):.3f} core-s/frame; clip / floor {c[0] / f[0]:.3f}x; "
            f"floor / single {f[0] / s[0]:.3f}x core-seconds (the least a one-scene clip renderer can reach)"
        )


if __name__ == "__main__":
    main()
