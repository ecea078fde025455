"""The render directory of ``rgbify render --out DIR`` (CONVENTIONS §5): rgb.png, the ground-truth .npy files,
camera.json, scene.json and geometry.glb, each published atomically. NumPy, Pillow and trimesh only, no bpy."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from rgbify import CONVENTIONS_VERSION
from rgbify.fileio import publishing, publishing_dir
from rgbify.render.result import RenderResult
from rgbify.scenes.geometry import world_mesh
from rgbify.scenes.spec import SceneSpec, spec_to_dict

RENDER_DIR_SCHEMA_VERSION = 1
RENDER_FILES = ("rgb.png", "depth.npy", "normals.npy", "instance.npy", "semantic.npy", "edge.npy", "camera.json",
                "scene.json", "geometry.glb")
"""The files of a render directory; a folder holding nothing else is an earlier render, which a new one replaces."""


def is_render_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder holding only render-directory files (an earlier render to replace)."""
    try:
        names = {p.name for p in os.scandir(path)}
    except OSError:
        return False
    return bool(names) and names <= set(RENDER_FILES)


def _publish(path: str, write) -> None:
    """Write through ``write(file_object)`` and publish atomically (temporary name, fsync, rename)."""
    with publishing(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _write_json(path: str, obj: Any) -> None:
    _publish(path, lambda f: f.write((json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()))


def _write_npy(path: str, array: np.ndarray) -> None:
    _publish(path, lambda f: np.save(f, array, allow_pickle=False))


def _write_png(path: str, rgb: np.ndarray) -> None:
    _publish(path, lambda f: Image.fromarray(rgb, mode="RGB").save(f, format="PNG", compress_level=1))


def geometry_glb_bytes(spec: SceneSpec) -> bytes:
    """World-space triangles of every object as binary glTF, one node per instance named by its decimal id.

    Coordinates are rgbify world coordinates (Blender's frame, +Z up) written unchanged, not converted to glTF's
    +Y-up convention: ``trimesh.load(path)`` gives world points directly.
    """
    scene = trimesh.Scene()
    for o in spec.objects:
        m = world_mesh(o)
        tm = trimesh.Trimesh(vertices=m.vertices, faces=m.faces, process=False)
        scene.add_geometry(tm, node_name=str(o.instance_id), geom_name=str(o.instance_id))
    return scene.export(file_type="glb")


def camera_dict(result: RenderResult) -> dict[str, Any]:
    return {"K": result.K.tolist(), "world_from_camera": result.world_from_camera.tolist(),
            "width": result.width, "height": result.height,
            "frame": "OpenCV camera (+x right, +y down, +z forward); K in pixels, pixel (i, j) centre at "
                     "(u, v) = (j, i)"}


def scene_json_dict(result: RenderResult, spec: SceneSpec) -> dict[str, Any]:
    return {"schema_version": RENDER_DIR_SCHEMA_VERSION, "conventions_version": CONVENTIONS_VERSION,
            "spec": spec_to_dict(spec), "instances": result.instances, "timings": result.timings,
            "blender_version": result.blender_version, "backend": result.backend}


def write_render_dir(result: RenderResult, spec: SceneSpec, out_dir: str | os.PathLike) -> dict[str, float]:
    """Write the files of CONVENTIONS §5 into the folder ``out_dir``, whole: they are written into a temporary
    folder beside it (``.NAME.partial-HOST-PID``) that then becomes ``out_dir``, so ``out_dir`` never holds some of
    the files only (a run killed meanwhile leaves the temporary folder, which the next render there sweeps).
    ``out_dir`` may be new, an empty folder, or an earlier render (a folder of render files only), which is
    replaced; anything else raises rgbify.fileio.OutputError (a ValueError) before anything is written.

    Returns the updated timings (``write`` and ``total`` included), which are also stored in ``scene.json``.
    """
    with publishing_dir(out_dir, is_render_dir, what="render folder") as tmp:
        return _write_files(result, spec, tmp)


def _write_files(result: RenderResult, spec: SceneSpec, out: str | os.PathLike) -> dict[str, float]:
    t0 = time.perf_counter()
    out = os.fspath(out)
    _write_png(os.path.join(out, "rgb.png"), result.rgb)
    for name in ("depth", "normals", "instance", "semantic", "edge"):
        _write_npy(os.path.join(out, f"{name}.npy"), getattr(result, name))
    glb = geometry_glb_bytes(spec)
    _publish(os.path.join(out, "geometry.glb"), lambda f: f.write(glb))
    _write_json(os.path.join(out, "camera.json"), camera_dict(result))
    result.timings["write"] = time.perf_counter() - t0
    if "total" in result.timings:
        result.timings["total"] += result.timings["write"]
    _write_json(os.path.join(out, "scene.json"), scene_json_dict(result, spec))
    return result.timings
