"""Throughput of every depth codec on a 1024x1024 depth map, on one core, and hilbert24 against numpy-hilbert-curve.

    python benchmarks/bench_encode.py [--size 1024] [--repeat 15] [--peer-pixels 262144]

Prints Mpix/s of encode and decode per codec (best of --repeat, after a warm-up call that loads or compiles the
numba kernels), the same for normals, and, measured in the same run, the hilbert24 pipeline with the curve step
done by the ``numpy-hilbert-curve`` package (``hilbert.decode`` / ``hilbert.encode``) on --peer-pixels pixels,
with the ratio. Finally it times a warm ``rgbify encode depth`` command (a fresh interpreter) end to end, against
its 1.5 s limit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rgbify.encode import DEPTH_CODECS, decode_normals, encode_normals, get_codec  # noqa: E402

QMAX = (1 << 24) - 1
WARM_START_LIMIT_S = 1.5
"""The target for a warm `rgbify encode` (a fresh interpreter with the kernels cached)."""


def synthetic_depth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth scene-like depth map in metres (ground plane, walls, a few spheres), 0.3..90 m, a little sky."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    y = (v - h / 2) / (h / 2)
    d = np.where(y > 0.02, 1.6 / np.maximum(y, 1e-3), np.inf)  # ground plane, camera 1.6 m high
    d = np.minimum(d, 12.0 + 6.0 * np.sin(u / w * 3.0))  # far wall
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.2) * h
        z0 = rng.uniform(0.5, 9.0)
        rr = ((v - cy) ** 2 + (u - cx) ** 2) / r**2
        d = np.where(rr < 1, np.minimum(d, z0 - 0.3 * np.sqrt(np.maximum(1 - rr, 0)) * z0 * 0.2), d)
    d[: h // 10] = np.where(u[: h // 10] > w / 2, np.inf, 90.0 * (1 - u[: h // 10] / w))  # sky and far hills
    return np.clip(d, 0.3, None).astype(np.float32)


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up: loads the cached kernels or compiles them
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peer_hilbert(depth: np.ndarray, d_max: float = 100.0, gamma: float = 0.5):
    """hilbert24 with numpy-hilbert-curve doing the curve: (encode function, decode function)."""
    import hilbert

    def enc():
        d = depth.astype(np.float64)
        u = np.minimum(d, d_max) / d_max
        q = np.where(d < d_max, np.floor(u**gamma * QMAX + 0.5), QMAX).astype(np.int64)
        return hilbert.decode(q.ravel(), 3, 8).astype(np.uint8).reshape(depth.shape + (3,))

    rgb = enc()

    def dec():
        q = hilbert.encode(rgb.reshape(-1, 3).astype(np.int64), 3, 8).reshape(depth.shape)
        return (d_max * (q / QMAX) ** (1 / gamma)).astype(np.float32)

    return enc, dec, rgb


def warm_cli_seconds(depth: np.ndarray) -> list[float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "d.npy", depth[:64, :64])
        for k in range(4):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rgbify", "encode", "depth", f"{tmp}/d.npy", f"{tmp}/t{k}.png",
                            "--codec", "hilbert24"], env=env, check=True)
            out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=15, help="timed calls per codec (best counts)")
    ap.add_argument("--peer-pixels", type=int, default=1 << 18, help="pixels given to numpy-hilbert-curve")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    n = args.size
    mpix = n * n / 1e6
    depth = synthetic_depth(n, n)
    print(f"{n}x{n} depth map, one core, best of {args.repeat}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'codec':<26}{'encode Mpix/s':>14}{'decode Mpix/s':>14}")
    rates = {}
    for name in DEPTH_CODECS:
        codec = get_codec(name)
        rgb = codec.encode(depth)
        te = best_of(lambda codec=codec: codec.encode(depth), args.repeat)
        td = best_of(lambda codec=codec, rgb=rgb: codec.decode(rgb), args.repeat)
        rates[name] = (mpix / te, mpix / td)
        print(f"{name:<26}{mpix / te:>14.1f}{mpix / td:>14.1f}")
    for opt in ("median3", "median5"):
        robust = get_codec({"name": "depth/hilbert24", "robust": opt})
        rgb = robust.encode(depth)
        rate = mpix / best_of(lambda robust=robust, rgb=rgb: robust.decode(rgb), args.repeat)
        print(f"{'depth/hilbert24 +' + opt:<26}{'':>14}{rate:>14.1f}")
    nrm = np.dstack([np.zeros_like(depth), np.zeros_like(depth), -np.ones_like(depth)])
    nrgb = encode_normals(nrm)
    te = best_of(lambda: encode_normals(nrm), args.repeat)
    td = best_of(lambda: decode_normals(nrgb), args.repeat)
    print(f"{'normals':<26}{mpix / te:>14.1f}{mpix / td:>14.1f}")

    side = int(np.sqrt(args.peer_pixels))
    sub = depth[:side, :side]
    enc, dec, peer_rgb = peer_hilbert(sub)
    h24 = get_codec("depth/hilbert24")
    assert np.array_equal(peer_rgb, h24.encode(sub)), "numpy-hilbert-curve and rgbify disagree"
    pe = sub.size / 1e6 / best_of(enc, 2)
    pd = sub.size / 1e6 / best_of(dec, 2)
    ours_e, ours_d = rates["depth/hilbert24"]
    print(f"hilbert24 with numpy-hilbert-curve ({side}x{side}): encode {pe:.2f} Mpix/s, decode {pd:.2f} Mpix/s")
    print(f"hilbert24 speed-up over numpy-hilbert-curve: encode {ours_e / pe:.0f}x, decode {ours_d / pd:.0f}x")
    cli = warm_cli_seconds(depth)
    warm = min(cli[1:])
    print("`rgbify encode depth` wall time, fresh interpreter each: " + ", ".join(f"{t:.2f} s" for t in cli)
          + f" (warm: {warm:.2f} s; limit {WARM_START_LIMIT_S} s: {'ok' if warm < WARM_START_LIMIT_S else 'OVER'})")


if __name__ == "__main__":
    main()
