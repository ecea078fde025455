"""Measure the skies rgbify lights scenes with, for the sampler's bpy-free exposure estimate: rgbify/data/skies.json.

    python scripts/sky_stats.py            # needs bpy and OpenEXR (the render extra)

For each of Blender's eight CC0 studio-light HDRIs (bpy/<version>/datafiles/studiolights/world/*.exr) and for
Blender's physical sky (Nishita, sun disc off, Earth's air and dust) at sun elevations 0-90 degrees, it writes:
the mean radiance of the whole sphere and of the upper hemisphere (linear RGB, strength 1), and the irradiance
on a surface facing up, down and sideways (the mean over the four horizontal directions, rotation-invariant for
an HDRI turned about +z). The physical sky is rendered into an equirectangular image by Cycles (a panoramic
camera at the origin, nothing in the scene); the HDRIs are read directly.
rgbify.scenes.lighting reads the table; tests/test_render_cycles.py checks a row against a fresh measurement.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ELEVATIONS = list(range(0, 91, 5))


def equirect_stats(img: np.ndarray) -> dict:
    """Statistics of an equirectangular radiance image (H, W, 3), row 0 at the zenith (+z). Only rotation-invariant
    figures about +z are taken, so where the image's column 0 points does not matter."""
    h, w, _ = img.shape
    theta = (np.arange(h) + 0.5) / h * math.pi  # polar angle from +z
    phi = (np.arange(w) + 0.5) / w * 2 * math.pi
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    dirs = np.stack([st * np.cos(phi)[None], st * np.sin(phi)[None], np.broadcast_to(ct, (h, w))], -1)
    d_omega = (math.pi / h) * (2 * math.pi / w) * st  # (h, 1)
    weight = np.broadcast_to(d_omega, (h, w))

    def irradiance(n: np.ndarray) -> list[float]:
        cos = np.clip(dirs @ n, 0.0, None)
        return [float(x) for x in np.einsum("hw,hwc->c", cos * weight, img)]

    up = dirs[..., 2] > 0
    total = weight.sum()
    sides = np.mean([irradiance(np.array(v)) for v in ((1, 0, 0), (0, 1, 0), (-1, 0, 0), (0, -1, 0))], axis=0)
    return {"mean": [float(x) for x in np.einsum("hw,hwc->c", weight, img) / total],
            "mean_upper": [float(x) for x in np.einsum("hw,hwc->c", weight * up, img) / (weight * up).sum()],
            "irradiance_up": irradiance(np.array([0.0, 0.0, 1.0])),
            "irradiance_down": irradiance(np.array([0.0, 0.0, -1.0])),
            "irradiance_side": [float(x) for x in sides]}


def read_exr(path: str) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        ch = f.channels()
        names = {n.split(".")[-1]: n for n in ch}
        return np.stack([np.asarray(ch[names[c]].pixels, dtype=np.float64) for c in "RGB"], -1)


def hdri_rows() -> dict:
    from rgbify.render.cycles import bpy  # the render room is the one that imports Blender

    folder = os.path.join(bpy.utils.resource_path("LOCAL"), "datafiles", "studiolights", "world")
    rows = {}
    for name in sorted(p[:-4] for p in os.listdir(folder) if p.endswith(".exr")):
        rows[name] = equirect_stats(read_exr(os.path.join(folder, f"{name}.exr")))
    return rows


def physical_sky_rows(size: tuple[int, int] = (128, 64), samples: int = 16) -> dict:
    from rgbify.render.cycles import bpy  # the render room is the one that imports Blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    scene.world = world
    sky = world.node_tree.nodes.new("ShaderNodeTexSky")
    sky.sky_type = "NISHITA"
    sky.sun_disc = False
    world.node_tree.links.new(sky.outputs["Color"], world.node_tree.nodes["Background"].inputs["Color"])
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.data.type = "PANO"
    cam.data.panorama_type = "EQUIRECTANGULAR"
    cam.rotation_euler = (math.pi / 2, 0.0, -math.pi / 2)  # looks along +x, up +z: the image's centre is +x
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for el in ELEVATIONS:
            sky.sun_elevation = math.radians(el)
            sky.sun_rotation = 0.0
            scene.render.filepath = os.path.join(tmp, f"sky{el}.exr")
            bpy.ops.render.render(write_still=True)
            rows[str(el)] = equirect_stats(read_exr(scene.render.filepath))  # EXR rows run top (zenith) down
    return rows


def main() -> int:
    table = {"source": "scripts/sky_stats.py", "units": "linear RGB radiance (W/m^2/sr, Blender units) and "
             "irradiance (W/m^2) at world strength 1", "hdri": hdri_rows(), "physical_sky": physical_sky_rows()}
    out = ROOT / "rgbify" / "data" / "skies.json"
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out}")
    for name, row in table["hdri"].items():
        print(f"{name:>10}: mean {np.round(row['mean'], 3)}, up {np.round(row['irradiance_up'], 3)}")
    for el, row in table["physical_sky"].items():
        print(f"sky {el:>3} deg: mean_upper {np.round(row['mean_upper'], 3)}, up {np.round(row['irradiance_up'], 3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
