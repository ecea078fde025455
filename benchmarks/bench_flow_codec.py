"""How the flow codec survives the errors of a generator's output, and how fast it is.

    python benchmarks/bench_flow_codec.py [--size 256] [--seeds 3] [--picture PNG]

Flow fields: the synthetic depth maps of bench_codec_robustness.py (an indoor room, a street with sky, a table
top; planar z, ray-cast analytically) seen from a camera that moves between two frames (three motions per map: a
dolly forward, a sideways step with a pan, a hand-held shake with roll), so each flow is exact: X = d (x, y, 1),
X' = R^T (X - c), projected with the same intrinsics (70-degree lens); the sky moves by the rotation alone; pixels
that land behind the camera are left out. Static scenes only (no moving objects yet).

Each codec variant encodes the flow, the 8-bit target is perturbed (Gaussian noise of 1, 2 and 4 levels, rounded
and clipped; JPEG at quality 95, 85 and 75 with PIL's defaults, 4:2:0 chroma), decoded, and scored with
rgbify.train.metrics.flow_metrics: EPE (px) and Fl-all (%), the mean over flows of the per-flow value.
--picture writes one flow as pictures (docs/img/flow_example.png): the Middlebury colour wheel, the flow in its
colours, its flow/signedlog target, and the flow decoded from that target after JPEG 75, in the wheel's colours.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_codec_robustness import _rays, perturb, synthetic_scenes  # noqa: E402

from rgbify.encode import FlowCodec, flow_to_color  # noqa: E402
from rgbify.train.metrics import flow_metrics  # noqa: E402

CODECS = [
    ("signedlog (default: max 256, scale 1, fine 4)", FlowCodec()),
    ("signedlog fine 0 (R, G only)", FlowCodec(fine=0)),
    ("signedlog scale 4, fine 4", FlowCodec(scale=4.0)),
    ("signedlog fine 8", FlowCodec(fine=8)),
    ("linear (scale 1e5 ~ R = 127 + 127 u / 256)", FlowCodec(scale=1e5, fine=0)),
]
PERTURBATIONS = ["none", "noise 1", "noise 2", "noise 4", "jpeg 95", "jpeg 85", "jpeg 75"]


def _rot(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


MOTIONS = {  # the second camera: rotation (world_from_camera) and centre, in the first camera's frame, metres
    "dolly": (_rot(0, 0, 0), np.array([0.0, 0.0, 0.35])),
    "step+pan": (_rot(0, np.radians(4.0), 0), np.array([0.25, 0.0, 0.0])),
    "shake": (_rot(np.radians(1.5), np.radians(-1.0), np.radians(2.0)), np.array([0.02, -0.03, 0.05])),
}


def camera_flow(depth: np.ndarray, rot: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow (H, W, 2) px of a static scene of planar depth ``depth`` when the camera moves to (rot, centre)."""
    h, w = depth.shape
    x, y = _rays(h, w)
    f = 0.5 * w / np.tan(np.radians(70.0) / 2)
    ray = np.stack([x, y, np.ones_like(x)], -1)
    far = ~np.isfinite(depth)
    pts = np.where(far[..., None], ray, ray * np.where(far, 1.0, depth)[..., None])
    moved = (pts - np.where(far[..., None], 0.0, centre)) @ rot  # R^T (X - c), row vectors
    z = moved[..., 2]
    ok = z > 1e-3
    with np.errstate(divide="ignore", invalid="ignore"):
        u2, v2 = f * moved[..., 0] / z, f * moved[..., 1] / z
    flow = np.stack([u2 - f * x, v2 - f * y], -1)
    return np.where(ok[..., None], flow, 0.0).astype(np.float32), ok


def flows(size: int, seeds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for seed in range(seeds):
        for depth in synthetic_scenes(size, size * 4 // 3, seed).values():
            for rot, centre in MOTIONS.values():
                out.append(camera_flow(depth.astype(np.float64), rot, centre))
    return out


def run_study(fields, seed: int = 0) -> dict[tuple[str, str], tuple[float, float]]:
    rng = np.random.default_rng(seed)
    res = {}
    for label, codec in CODECS:
        for kind in PERTURBATIONS:
            rows = [flow_metrics(codec.decode(perturb(codec.encode(f, ok), kind, rng)), f, ok) for f, ok in fields]
            res[label, kind] = (float(np.mean([r["epe"] for r in rows])),
                                100.0 * float(np.mean([r["fl_all"] for r in rows])))
    return res


def speed(side: int = 1024, repeats: int = 3) -> tuple[float, float]:
    """Best-of encode and decode Mpix per CPU second (os.times user + sys) of the default codec."""
    rng = np.random.default_rng(0)
    f = (rng.standard_normal((side, side, 2)) * 20).astype(np.float32)
    codec = FlowCodec()
    rgb = codec.encode(f)
    best = [np.inf, np.inf]
    for _ in range(repeats):
        for k, fn in enumerate((lambda: codec.encode(f), lambda: codec.decode(rgb))):
            t0 = os.times()
            fn()
            t1 = os.times()
            best[k] = min(best[k], (t1.user - t0.user) + (t1.system - t0.system))
    return tuple(side * side / 1e6 / max(b, 1e-9) for b in best)


def write_picture(path: Path, size: int = 192) -> None:
    depth = synthetic_scenes(size, size * 4 // 3, 0)["indoor"].astype(np.float64)
    flow, ok = camera_flow(depth, *MOTIONS["step+pan"])
    codec = FlowCodec()
    target = codec.encode(flow, ok)
    back = codec.decode(perturb(target, "jpeg 75", np.random.default_rng(0)))
    top = float(np.hypot(flow[..., 0], flow[..., 1])[ok].max())
    r = np.linspace(-1, 1, size)
    wheel = np.stack(np.meshgrid(r, r), -1).astype(np.float32)  # (u, v) = (column, row) offsets: +y down
    inside = np.hypot(wheel[..., 0], wheel[..., 1]) <= 1
    panels = [("colour wheel (+x right, +y down)", flow_to_color(wheel, 1.0, inside)),
              ("flow, Middlebury colours", flow_to_color(flow, top, ok)),
              ("flow/signedlog target", target),
              ("decoded after JPEG 75", flow_to_color(back, top, ok))]
    pad, label = 8, 16
    width = sum(p.shape[1] for _, p in panels) + pad * (len(panels) + 1)
    img = Image.new("RGB", (width, size + label + 2 * pad), "white")
    draw = ImageDraw.Draw(img)
    x = pad
    for name, p in panels:
        img.paste(Image.fromarray(p), (x, label + pad))
        draw.text((x, 3), name, fill="black")
        x += p.shape[1] + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="flow height in pixels (width 4/3 of it)")
    ap.add_argument("--seeds", type=int, default=3, help="synthetic scene seeds (3 maps x 3 motions each)")
    ap.add_argument("--picture", type=Path, default=None, help="also write one flow as pictures to this PNG")
    args = ap.parse_args()
    if args.picture:
        write_picture(args.picture)
    t0 = time.time()
    fields = flows(args.size, args.seeds)
    mags = np.concatenate([np.hypot(f[..., 0], f[..., 1])[ok] for f, ok in fields])
    print(f"{len(fields)} flows of {args.size}x{args.size * 4 // 3}; |flow| px: median {np.median(mags):.1f}, "
          f"95th percentile {np.percentile(mags, 95):.1f}, max {mags.max():.1f}")
    res = run_study(fields)
    for which, title, fmt in ((0, "EPE (px, lower is better)", "{:.3f}"), (1, "Fl-all (%, lower is better)",
                                                                           "{:.2f}")):
        print(f"\n{title}\n")
        print("| perturbation | " + " | ".join(label for label, _ in CODECS) + " |")
        print("|---|" + "---:|" * len(CODECS))
        for kind in PERTURBATIONS:
            print(f"| {kind} | " + " | ".join(fmt.format(res[label, kind][which]) for label, _ in CODECS) + " |")
    enc, dec = speed()
    print(f"\nspeed (1024x1024, best of 3, per CPU second): encode {enc:.1f} Mpix/s, decode {dec:.1f} Mpix/s")
    print(f"(took {time.time() - t0:.0f} s wall)")


if __name__ == "__main__":
    main()
