"""How each depth codec survives the errors of a generator's output.

    python benchmarks/bench_codec_robustness.py [--size 256] [--seeds 3] [--depth-dir DIR] [--strip PNG]

Encodes depth maps with every depth codec, perturbs the 8-bit targets (Gaussian noise of 0.5, 1, 2, 4 and 8
levels, rounded and clipped; JPEG quality 95 and 75; a 2x bilinear down-and-up resize), decodes, and prints
AbsRel and delta1 per codec side by side (mean over images of the per-image metric, pixels with finite ground
truth up to 80 m, predictions clipped to [0.001, 100] m). "+median3" rows use the decoder option
``robust="median3"`` / ``"median5"``.

Depth maps: synthetic ones (an indoor room, a street, a table top, ray-cast analytically, planar z in metres)
and, with --depth-dir, every ``depth.npy`` below DIR (rendered samples, CONVENTIONS section 5).
--strip writes a PNG with each depth codec's colours from 0 to 100 m (docs/img/depth_codecs_strip.png).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rgbify.encode import DEPTH_CODECS, get_codec  # noqa: E402

CODECS = [
    ("cubewalk", "depth/cubewalk"),
    ("cubewalk+median3", {"name": "depth/cubewalk", "robust": "median3"}),
    ("hilbert24", "depth/hilbert24"),
    ("hilbert24+median3", {"name": "depth/hilbert24", "robust": "median3"}),
    ("hilbert24+median5", {"name": "depth/hilbert24", "robust": "median5"}),
] + [(c.split(":")[1], c) for c in DEPTH_CODECS if "colormap" in c]

PERTURBATIONS = ["none", "noise 0.5", "noise 1", "noise 2", "noise 4", "noise 8", "jpeg 95", "jpeg 75", "resize 2x"]
MAX_EVAL_M = 80.0
CLIP_M = (1e-3, 100.0)


# ----------------------------------------------------------------------------------------------- scenes
def _rays(h: int, w: int, fov_deg: float = 70.0):
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return (u - (w - 1) / 2) / f, (v - (h - 1) / 2) / f  # ray (x, y, 1) in the OpenCV camera frame


def _planes(x, y, planes):
    """Planar depth to the nearest of the planes (axis, offset): x = c or y = c, along rays (x, y, 1)."""
    d = np.full(x.shape, np.inf)
    for axis, c in planes:
        comp = x if axis == "x" else y if axis == "y" else np.ones_like(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = c / comp
        d = np.where((t > 0) & (t < d), t, d)
    return d


def _spheres(x, y, d, rng, n, z_range, r_range, y_max=None):
    for _ in range(n):
        cz = rng.uniform(*z_range)
        r = rng.uniform(*r_range) * cz / 3
        cx = rng.uniform(-0.6, 0.6) * cz
        cy = rng.uniform(-0.3, 0.4) * cz if y_max is None else y_max - r
        # |t (x, y, 1) - c|^2 = r^2
        a = x * x + y * y + 1
        b = -2 * (x * cx + y * cy + cz)
        cc = cx * cx + cy * cy + cz * cz - r * r
        disc = b * b - 4 * a * cc
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / (2 * a)
        d = np.where((disc > 0) & (t > 0) & (t < d), t, d)
    return d


def synthetic_scenes(h: int, w: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = _rays(h, w)
    indoor = _planes(x, y, [("y", 1.5), ("y", -1.4), ("x", 3.0), ("x", -2.5), ("z", 7.5)])
    indoor = _spheres(x, y, indoor, rng, 5, (1.0, 6.0), (0.2, 0.6))
    street = _planes(x, y, [("y", 1.6), ("x", 7.0), ("x", -6.0), ("z", 300.0)])
    street[(y < -0.05) & (np.abs(x) < 0.12 + 0.05 * seed)] = np.inf  # sky between the buildings
    street = _spheres(x, y, street, rng, 6, (5.0, 45.0), (0.3, 0.8), y_max=1.6)
    table = _planes(x, y, [("y", 0.35), ("z", 1.6)])
    table = _spheres(x, y, table, rng, 5, (0.4, 1.3), (0.05, 0.15), y_max=0.35)
    return {"indoor": indoor.astype(np.float32), "street": street.astype(np.float32),
            "tabletop": table.astype(np.float32)}


# ----------------------------------------------------------------------------------------------- study
def perturb(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "none":
        return rgb
    if kind.startswith("noise"):
        sigma = float(kind.split()[1])
        return np.clip(np.rint(rgb + rng.normal(0.0, sigma, rgb.shape)), 0, 255).astype(np.uint8)
    if kind.startswith("jpeg"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(kind.split()[1]))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    if kind == "resize 2x":
        h, w = rgb.shape[:2]
        img = Image.fromarray(rgb).resize((w // 2, h // 2), Image.BILINEAR)
        return np.asarray(img.resize((w, h), Image.BILINEAR))
    raise ValueError(kind)


def metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    m = np.isfinite(gt) & (gt > 0) & (gt <= MAX_EVAL_M)
    p = np.clip(pred[m].astype(np.float64), *CLIP_M)
    g = gt[m].astype(np.float64)
    return float(np.mean(np.abs(p - g) / g)), float(np.mean(np.maximum(p / g, g / p) < 1.25))


def run_study(depths: list[np.ndarray], seed: int = 0) -> dict[tuple[str, str], tuple[float, float]]:
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for label, spec in CODECS:
        codec = get_codec(spec)
        for kind in PERTURBATIONS:
            vals = []
            for gt in depths:
                rgb = codec.encode(gt)
                vals.append(metrics(codec.decode(perturb(rgb, kind, rng)), gt))
            out[(label, kind)] = (float(np.mean([v[0] for v in vals])), float(np.mean([v[1] for v in vals])))
    return out


def print_table(res: dict, which: int, title: str, fmt: str) -> None:
    labels = [c[0] for c in CODECS]
    print(f"\n{title}")
    print("| perturbation | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for kind in PERTURBATIONS:
        print(f"| {kind} | " + " | ".join(fmt.format(res[(lab, kind)][which]) for lab in labels) + " |")


# ----------------------------------------------------------------------------------------------- strip
def write_strip(path: Path, width: int = 1024, band: int = 36) -> None:
    """Each depth codec's colours from 0 to 100 m, one labelled band per codec, ticks every 10 m."""
    d = np.linspace(0.0, 100.0, width, dtype=np.float32)[None, :]
    names = list(DEPTH_CODECS)
    label_w, pad = 170, 18
    img = Image.new("RGB", (label_w + width + 40, pad + len(names) * (band + 6) + 4), "white")
    draw = ImageDraw.Draw(img)
    for m in range(0, 101, 10):
        xx = label_w + int(round(m / 100 * (width - 1)))
        draw.line([(xx, pad - 5), (xx, pad - 1)], fill="black")
        draw.text((xx - 8, 2), f"{m} m", fill="black")
    for k, name in enumerate(names):
        rgb = get_codec(name).encode(d)
        y0 = pad + k * (band + 6)
        img.paste(Image.fromarray(np.repeat(rgb, band, axis=0)), (label_w, y0))
        draw.text((4, y0 + band // 2 - 6), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_sheet(render_dir: Path, path: Path, seed: int = 0) -> None:
    """One rendered sample's input and every target kind, labelled, in one PNG."""
    import json

    from rgbify.encode import encode_depth, encode_normals, make_task_target

    scene = json.loads((render_dir / "scene.json").read_text())
    gt = {k: np.load(render_dir / f"{k}.npy") for k in ("depth", "normals", "semantic", "instance")}
    gt["class_names"] = list(scene["spec"]["classes"])
    gt["instances"] = scene["instances"]
    rgb = np.asarray(Image.open(render_dir / "rgb.png").convert("RGB"))
    rng = np.random.default_rng(seed)
    tiles = [("input rgb", rgb), ("depth/cubewalk", encode_depth(gt["depth"])),
             ("depth/hilbert24", encode_depth(gt["depth"], "hilbert24")),
             ("depth/colormap:viridis", encode_depth(gt["depth"], "colormap:viridis")),
             ("normals", encode_normals(gt["normals"])), ("normals flip_x", encode_normals(gt["normals"], True)),
             ("semantic", make_task_target("semantic", gt, rng)[0])]
    per_class: dict[str, int] = {}
    for row in scene["instances"]:
        if row["pixel_count"] > 0:
            per_class[row["class_name"]] = per_class.get(row["class_name"], 0) + 1
    busiest = max(per_class, key=per_class.get)  # the class with the most visible instances
    for variant in ("shades", "distinct"):
        t, _, params = make_task_target("instance", gt, rng, instance_variant=variant, instance_class=busiest)
        tiles.append((f"instance {variant}: {params['class_name']}", t))
    h, w = rgb.shape[:2]
    cols = 3
    sheet = Image.new("RGB", (cols * (w + 6), ((len(tiles) + cols - 1) // cols) * (h + 20)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, tile) in enumerate(tiles):
        x, y = (k % cols) * (w + 6), (k // cols) * (h + 20)
        sheet.paste(Image.fromarray(tile), (x, y + 16))
        draw.text((x + 2, y + 2), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="synthetic maps are size x size*4/3")
    ap.add_argument("--seeds", type=int, default=3, help="synthetic variants per scene")
    ap.add_argument("--depth-dir", type=Path, default=None, help="also use every depth.npy below this folder")
    ap.add_argument("--strip", type=Path, default=None, help="write the codec colour strip PNG here")
    ap.add_argument("--sheet", type=Path, nargs=2, metavar=("RENDER_DIR", "PNG"), default=None,
                    help="write every target kind of one rendered sample as a labelled sheet")
    args = ap.parse_args()
    if args.sheet:
        write_sheet(*args.sheet)
        print(f"wrote {args.sheet[1]}")
    if args.strip:
        write_strip(args.strip)
        print(f"wrote {args.strip}")
    depths = []
    for s in range(args.seeds):
        depths += list(synthetic_scenes(args.size, args.size * 4 // 3, s).values())
    if args.depth_dir:
        depths += [np.load(p).astype(np.float32) for p in sorted(args.depth_dir.rglob("depth.npy"))]
    print(f"{len(depths)} depth maps; metrics over finite ground truth <= {MAX_EVAL_M:g} m, "
          f"predictions clipped to [{CLIP_M[0]:g}, {CLIP_M[1]:g}] m")
    res = run_study(depths)
    print_table(res, 0, "AbsRel (lower is better)", "{:.4f}")
    print_table(res, 1, "delta1 (higher is better)", "{:.4f}")


if __name__ == "__main__":
    main()
