"""The raster backend: pyrender through EGL (headless OpenGL) for previews and as a second, Blender-free oracle.

Renders the same triangles as Cycles (rgbify.scenes.geometry) with the same OpenCV camera, in three passes:
a segmentation pass (instance id packed into 24-bit colour, plus the depth buffer), an unlit pass whose vertex
colours are camera-frame normals, and a simply lit RGB pass (base colours, a headlight and ambient light; no
textures, shadows, transparency or HDRI). Depth comes from the 24-bit depth buffer with the near plane moved
up to the closest surface (a second pass), which keeps its relative error near 1e-6. Normals are 8-bit
colours, multisampled (about 1 degree off away from edges). The edge mask marks pixels whose 8 neighbours differ
in instance, or where inverse depth bends (a depth discontinuity or a crease): an approximation of the Cycles
mask, which follows the RGB filter footprint.
"""

from __future__ import annotations

import os
import time

import numpy as np

from rgbify.render.passes import ray_directions
from rgbify.render.result import RenderResult, SceneError, instance_table, semantic_from_instance
from rgbify.scenes.geometry import GeometryError, face_normals, scene_meshes, vertex_normals
from rgbify.scenes.spec import SceneSpec, SpecError

OPENGL_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _import_pyrender():
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import pyrender
    except Exception as e:  # missing libEGL raises ImportError, AttributeError or OSError depending on version
        raise SceneError(f"the raster backend needs pyrender with EGL (libegl1): {type(e).__name__}: {e}") from None
    return pyrender


def _object_arrays(spec: SceneSpec):
    """Per object: unwelded world triangles (T*3,3), world normals per corner (T*3,3), instance id, colour."""
    try:
        meshes = scene_meshes(spec.objects)
    except GeometryError as e:
        raise SceneError(str(e)) from None
    out = []
    for o, local in zip(spec.objects, meshes, strict=True):
        m = np.asarray(o.world_from_object, dtype=np.float64)
        world = local.transformed(m)
        if o.shading == "smooth":
            n = (vertex_normals(local) @ np.linalg.inv(m[:3, :3]))[local.faces]
        else:
            n = np.repeat(face_normals(world)[:, None, :], 3, axis=1)
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-300)
        out.append((world.vertices[world.faces].reshape(-1, 3), n.reshape(-1, 3), o.instance_id,
                    np.asarray(o.material.base_color)))
    return out


def _camera_pose(spec: SceneSpec) -> np.ndarray:
    return np.asarray(spec.camera.world_from_camera, dtype=np.float64) @ OPENGL_FROM_OPENCV


def _build(pyrender, spec: SceneSpec, objs, mode: str, znear: float, zfar: float):
    cam = spec.camera
    scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.25, 0.25, 0.25])
    rot = np.asarray(cam.world_from_camera, dtype=np.float64)[:3, :3]
    seg_map = {}
    for verts, normals, iid, color in objs:
        if mode == "normals":
            n_cam = normals @ rot
            colors = np.clip((n_cam + 1.0) * 0.5, 0.0, 1.0)
            colors = np.concatenate([colors, np.ones((len(colors), 1))], axis=1).astype(np.float32)
            prim = pyrender.Primitive(positions=verts, normals=normals, color_0=colors,
                                      indices=np.arange(len(verts)).reshape(-1, 3),
                                      material=pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                                                  doubleSided=True))
        else:
            mat = pyrender.MetallicRoughnessMaterial(baseColorFactor=[*map(float, color), 1.0], metallicFactor=0.0,
                                                     roughnessFactor=0.8, doubleSided=True)
            prim = pyrender.Primitive(positions=verts, normals=normals, indices=np.arange(len(verts)).reshape(-1, 3),
                                      material=mat)
        node = scene.add(pyrender.Mesh([prim]))
        seg_map[node] = [(iid >> 16) & 255, (iid >> 8) & 255, iid & 255]
    # pyrender puts the pixel-centre convention at half-integers: shift the OpenCV principal point by half a pixel.
    camera = pyrender.IntrinsicsCamera(cam.fx, cam.fy, cam.cx + 0.5, cam.cy + 0.5, znear=znear, zfar=zfar)
    pose = _camera_pose(spec)
    scene.add(camera, pose=pose)
    scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=pose)
    return scene, seg_map


def render_raster(spec: SceneSpec) -> RenderResult:
    """Render ``spec`` with pyrender (EGL). Arrays as in CONVENTIONS §2; see the module docstring for limits."""
    t0 = time.perf_counter()
    try:
        spec.validate()
    except SpecError as e:
        raise SceneError(str(e)) from None
    pyrender = _import_pyrender()
    objs = _object_arrays(spec)
    cam = spec.camera
    timings = {"scene_build": time.perf_counter() - t0}
    t1 = time.perf_counter()
    m = np.asarray(cam.world_from_camera, dtype=np.float64)
    all_z = np.concatenate([((v - m[:3, 3]) @ m[:3, :3])[:, 2] for v, *_ in objs]) if objs else np.ones(1)
    zfar = float(min(cam.clip_end, max(all_z.max(), cam.clip_start * 2) * 1.01 + 1e-3))
    renderer = pyrender.OffscreenRenderer(cam.width, cam.height)
    try:
        flags = pyrender.RenderFlags
        znear = float(cam.clip_start)
        for _ in range(2):  # second pass: near plane at the closest surface, for depth-buffer precision
            scene, seg_map = _build(pyrender, spec, objs, "seg", znear, zfar)
            seg, depth = renderer.render(scene, flags=flags.SEG, seg_node_map=seg_map)
            hit = depth > 0
            if not hit.any():
                break
            znear = max(float(cam.clip_start), 0.95 * float(depth[hit].min()))
        scene, _ = _build(pyrender, spec, objs, "normals", znear, zfar)
        ncol, _ = renderer.render(scene, flags=flags.FLAT)
        scene, _ = _build(pyrender, spec, objs, "rgb", znear, zfar)
        rgb, _ = renderer.render(scene)
    finally:
        renderer.delete()
    timings["raster_render"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    seg = seg.astype(np.int32)
    instance = np.where(hit, (seg[..., 0] << 16) | (seg[..., 1] << 8) | seg[..., 2], 0).astype(np.int32)
    depth_m = np.where(hit, depth, np.inf).astype(np.float32)
    n = ncol[..., :3].astype(np.float64) / 255.0 * 2.0 - 1.0
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    n *= np.where(np.sum(n * ray_directions(cam), axis=-1) > 0, -1.0, 1.0)[..., None]
    normals = np.where(hit[..., None], n, 0.0).astype(np.float32)
    result = RenderResult(
        rgb=np.ascontiguousarray(rgb[..., :3], dtype=np.uint8), depth=depth_m, normals=normals, instance=instance,
        semantic=semantic_from_instance(spec, instance), edge=neighbour_edges(instance, depth_m),
        K=cam.K, world_from_camera=m, instances=instance_table(spec, instance), timings=timings,
        blender_version="", backend="raster")
    timings["readback"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    return result


def neighbour_edges(instance: np.ndarray, depth: np.ndarray, tol: float = 0.005) -> np.ndarray:
    """bool (H,W): an 8-neighbour has another instance id, or inverse depth bends along a row or column.

    1/z is affine in (u, v) on a plane, so its second difference vanishes there; a depth discontinuity (or a
    crease) makes it jump. ``tol`` is relative to the pixel's own 1/z.
    """
    h, w = instance.shape
    pi = np.pad(instance, 1, mode="edge")
    edge = np.zeros((h, w), dtype=bool)
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            edge |= pi[dr:dr + h, dc:dc + w] != instance
    inv = np.where(np.isfinite(depth), 1.0 / np.maximum(depth.astype(np.float64), 1e-30), 0.0)
    p = np.pad(inv, 1, mode="edge")
    c = p[1:-1, 1:-1]
    for a, b in ((p[1:-1, :-2], p[1:-1, 2:]), (p[:-2, 1:-1], p[2:, 1:-1])):
        edge |= np.abs(a - 2 * c + b) > tol * c
    return edge
