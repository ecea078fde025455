"""RenderResult and the single-render directory writer (CONVENTIONS §5). NumPy only, no bpy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rgbify import CONVENTIONS_VERSION
from rgbify.fileio import publishing
from rgbify.scenes.spec import SceneSpec, spec_to_dict

RENDER_DIR_SCHEMA_VERSION = 1


class SceneError(ValueError):
    """One scene failed to render: bad input in its spec (e.g. an unreadable mesh file, named in the message),
    a Blender error, a crashed worker or a timeout. Other scenes are unaffected."""


@dataclass
class RenderResult:
    """Ground truth of one rendered scene (CONVENTIONS §2). Image arrays are row-major (H, W, ...), row 0 on top."""

    rgb: np.ndarray
    """uint8 (H,W,3) sRGB, view transform Standard, anti-aliased, denoised."""
    depth: np.ndarray
    """float32 (H,W) planar z in metres of the surface hit by the ray through the pixel centre; +inf on a miss."""
    normals: np.ndarray
    """float32 (H,W,3) unit shading normal, OpenCV camera frame, facing the camera; 0 on a miss."""
    instance: np.ndarray
    """int32 (H,W) instance id at the pixel centre; 0 on a miss."""
    semantic: np.ndarray
    """int32 (H,W) class index (1-based into the spec's class table); 0 on a miss."""
    edge: np.ndarray
    """bool (H,W) true where the RGB pixel's filter footprint crosses an instance or depth discontinuity."""
    K: np.ndarray
    """float64 (3,3) intrinsics in pixels, OpenCV convention."""
    world_from_camera: np.ndarray
    """float64 (4,4) pose mapping OpenCV camera points to world points (metres)."""
    instances: list[dict[str, Any]] = field(default_factory=list)
    """Per object of the spec: id, class_name, class_index, object_name, pixel_count (pixels at centres)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: scene_build, rgb_render, data_render, readback, (write), total."""
    blender_version: str = ""
    backend: str = "cycles"

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])


def instance_table(spec: SceneSpec, instance: np.ndarray) -> list[dict[str, Any]]:
    counts = np.bincount(instance.ravel(), minlength=max((o.instance_id for o in spec.objects), default=0) + 1)
    return [{"id": int(o.instance_id), "class_name": o.class_name, "class_index": spec.class_index(o.class_name),
             "object_name": o.name, "pixel_count": int(counts[o.instance_id])} for o in spec.objects]


def semantic_from_instance(spec: SceneSpec, instance: np.ndarray) -> np.ndarray:
    lut = np.zeros(max((o.instance_id for o in spec.objects), default=0) + 1, dtype=np.int32)
    for o in spec.objects:
        lut[o.instance_id] = spec.class_index(o.class_name)
    return lut[instance]


# --- writing ------------------------------------------------------------------------------------------------


def _publish(path: str, write) -> None:
    """Write through ``write(file_object)`` and publish atomically (temporary name, fsync, rename)."""
    with publishing(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _write_json(path: str, obj: Any) -> None:
    _publish(path, lambda f: f.write((json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()))


def _write_npy(path: str, array: np.ndarray) -> None:
    _publish(path, lambda f: np.save(f, array, allow_pickle=False))


def _write_png(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    _publish(path, lambda f: Image.fromarray(rgb, mode="RGB").save(f, format="PNG", compress_level=1))


def geometry_glb_bytes(spec: SceneSpec) -> bytes:
    """World-space triangles of every object as binary glTF, one node per instance named by its decimal id.

    Coordinates are rgbify world coordinates (Blender's frame, +Z up) written unchanged, not converted to glTF's
    +Y-up convention: ``trimesh.load(path)`` gives world points directly.
    """
    import trimesh

    from rgbify.render.geometry import world_mesh

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
    """Write the files of CONVENTIONS §5 into ``out_dir`` (created if needed), each published atomically.

    Returns the updated timings (``write`` and ``total`` included), which are also stored in ``scene.json``.
    """
    import time

    t0 = time.perf_counter()
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
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
