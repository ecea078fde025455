"""What the world's importance map costs: one recipe scene rendered with Blender's automatic map (1024 wide for the
builtin HDRIs) and with rgbify's default (256), alternately, each a fresh render() in this process.

    python benchmarks/bench_world_map.py                      # tabletop 0 at 256x192, 16 spp, 3 rounds
    python benchmarks/bench_world_map.py --recipe indoor --index 3 --size 512x384

Prints each render's core-seconds (CPU time of this process: it barely changes with other jobs on the machine), the
mean per setting and their ratio, and the mean absolute difference of the two settings' 8-bit images (the same
setting twice gives 0: the renders are deterministic).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rgbify.render import render  # noqa: E402
from rgbify.render.cli import resize_camera  # noqa: E402
from rgbify.scenes import sample_scene  # noqa: E402


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="tabletop")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--size", default="256x192")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    spec = sample_scene(args.recipe, 0, args.index)
    spec = dataclasses.replace(spec, camera=resize_camera(spec.camera, w, h),
                               render=dataclasses.replace(spec.render, samples=args.samples))
    if not spec.world.hdri and not spec.world.physical_sky:
        raise SystemExit(f"{args.recipe} {args.index}: the world is a flat colour, no map to measure")
    render(dataclasses.replace(spec, camera=resize_camera(spec.camera, 32, 24)))  # Blender and OIDN warmed
    times: dict[int, list[float]] = {0: [], 256: []}
    images: dict[int, np.ndarray] = {}
    for _ in range(args.rounds):
        for res in times:
            c0 = cpu()
            r = render(dataclasses.replace(spec, render=dataclasses.replace(spec.render, world_map_resolution=res)))
            times[res].append(cpu() - c0)
            images[res] = r.rgb
            print(f"  map {res or 'auto'}: {times[res][-1]:.1f} core-s", file=sys.stderr, flush=True)
    auto, ours = np.mean(times[0]), np.mean(times[256])
    diff = np.abs(images[0].astype(int) - images[256].astype(int)).mean()
    print(f"{args.recipe} {args.index}, {w}x{h}, {args.samples} spp, world {spec.world.hdri or 'physical sky'}: "
          f"automatic map {auto:.1f} core-s, 256 map {ours:.1f} core-s (x{ours / auto:.2f}); images differ by "
          f"{diff:.2f} levels on average")


if __name__ == "__main__":
    main()
