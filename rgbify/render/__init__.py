"""Render stage: a scene spec -> RGB plus exact depth, normals, instance and semantic IDs (docs/rendering.md).

Importing this package does not import bpy; :func:`render` with the Cycles backend imports it in the calling
process (rgbify.render.cycles), and :class:`rgbify.render.worker.RenderWorker` runs Blender in a long-lived
subprocess. Rooms: result.py (what the stage returns and raises), cycles.py (Blender), raster.py (pyrender),
passes.py (raw passes -> ground truth), render_dir.py (the files of one render), worker*.py and blender_boot.py
(worker processes).
"""

from __future__ import annotations

from typing import Literal

from rgbify.render.render_dir import write_render_dir
from rgbify.render.result import RenderResult, SceneError
from rgbify.scenes.spec import SceneSpec

__all__ = ["RenderResult", "SceneError", "render", "render_clip", "write_render_dir"]

BACKENDS = ("cycles", "raster")
DEVICES = ("cpu", "gpu")


def render(spec: SceneSpec, *, backend: Literal["cycles", "raster"] = "cycles",
           device: Literal["cpu", "gpu"] = "cpu") -> RenderResult:
    """Render ``spec`` in this process and return every array of CONVENTIONS §2.

    backend "cycles": Blender Cycles (RGB render + centre-ray data render); device "gpu" uses CUDA/OptiX.
    backend "raster": pyrender through EGL (previews, a second oracle); ``device`` is ignored.
    Raises SceneError if the scene cannot be rendered (the message names the cause, e.g. an unreadable file).
    """
    if backend not in BACKENDS:
        raise ValueError(f"render backend {backend!r} is not one of {BACKENDS}")
    if device not in DEVICES:
        raise ValueError(f"render device {device!r} is not one of {DEVICES}")
    if backend == "raster":
        from rgbify.render.raster import render_raster

        return render_raster(spec)
    from rgbify.render.cycles import render_cycles

    return render_cycles(spec, device=device)


def render_clip(clip, *, device: Literal["cpu", "gpu"] = "cpu", frames: list[int] | None = None,  # noqa: ANN001
                threads: int | None = None) -> list[RenderResult]:
    """Render the frames of a clip (rgbify.scenes.clip.ClipSpec) with Cycles in one Blender scene, built once: per
    frame only the camera and the moving objects change. Returns one RenderResult per frame (instance ids are the
    scene's, stable across the clip); rgbify.scenes.sceneflow.clip_flow gives the flow between any two of them."""
    if device not in DEVICES:
        raise ValueError(f"render device {device!r} is not one of {DEVICES}")
    from rgbify.render.cycles import render_clip_cycles

    return render_clip_cycles(clip, device=device, frames=frames, threads=threads)
