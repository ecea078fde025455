"""What the render stage returns (RenderResult) and raises (SceneError), and the instance table. NumPy only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rgbify.scenes.spec import SceneSpec


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
