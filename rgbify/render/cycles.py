"""The Cycles backend in the current process: spec -> RenderResult (imports bpy when called)."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from rgbify.render.convert import passes_to_arrays
from rgbify.render.geometry import GeometryError, object_mesh
from rgbify.render.result import RenderResult, SceneError, instance_table, semantic_from_instance
from rgbify.scenes.spec import SceneSpec, SpecError

MAX_INSTANCE_ID = 32767
"""Blender's Object.pass_index (the IndexOB pass) holds 0..32767."""


def load_meshes(spec: SceneSpec) -> list:
    """Object-frame triangles of every object; SceneError names the object and the file on failure."""
    meshes = []
    for o in spec.objects:
        try:
            meshes.append(object_mesh(o))
        except GeometryError as e:
            raise SceneError(f"object {o.name!r} (instance {o.instance_id}): {e}") from None
    return meshes


def render_cycles(spec: SceneSpec, device: str = "cpu", threads: int | None = None,
                  tmp_root: str | None = None) -> RenderResult:
    """Render ``spec`` with Cycles in this process (RGB render, then the data render); see docs/rendering.md.

    Intermediate files (the RGB PNG and the data EXR) go to a temporary folder under ``tmp_root``."""
    t0 = time.perf_counter()
    try:
        spec.validate()
    except SpecError as e:
        raise SceneError(str(e)) from None
    too_big = [o.name for o in spec.objects if o.instance_id > MAX_INSTANCE_ID]
    if too_big:
        raise SceneError(f"objects {too_big[:5]} have instance ids above {MAX_INSTANCE_ID}, the largest Blender's "
                         "object index pass holds; renumber instances from 1")
    meshes = load_meshes(spec)
    t_meshes = time.perf_counter() - t0
    from rgbify.render import blender  # imports bpy (once per process: timings["startup"])

    t_startup = time.perf_counter() - t0 - t_meshes

    try:
        with tempfile.TemporaryDirectory(prefix="rgbify-render-", dir=tmp_root) as tmp:
            rgb, passes, timings = blender.render_scene(spec, meshes, tmp, device=device, threads=threads)
    except blender.BlenderSceneError as e:
        raise SceneError(str(e)) from None
    timings["scene_build"] += t_meshes
    timings["startup"] = t_startup
    t1 = time.perf_counter()
    arrays = passes_to_arrays(passes, spec.camera, blender.fine_camera(spec.camera))
    semantic = semantic_from_instance(spec, arrays["instance"])
    result = RenderResult(
        rgb=rgb, depth=arrays["depth"], normals=arrays["normals"], instance=arrays["instance"], semantic=semantic,
        edge=arrays["edge"], K=spec.camera.K, world_from_camera=np.asarray(spec.camera.world_from_camera),
        instances=instance_table(spec, arrays["instance"]), timings=timings,
        blender_version=blender.blender_version(), backend="cycles")
    timings["readback"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return result
