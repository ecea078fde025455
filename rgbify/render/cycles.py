"""The Cycles backend: spec -> bpy scene -> two Cycles renders -> ground-truth arrays (everything that talks to
Blender, in the current process).

This module imports bpy at import time; only :func:`rgbify.render.render` (when asked for Cycles) and the render
worker process (rgbify.render.worker_child) import it. Blender's global state is reset through one function,
:func:`reset`. The triangles handed to Blender are rgbify.scenes.geometry's, the same the scene sampler's checks
and the ray-casting oracle see.

Two renders per scene (docs/rendering.md):

- RGB: the spec's samples, OIDN denoising, Blackman-Harris pixel filter 1.5 px, view transform Standard.
- data: 1 sample, pixel filter at Blender's minimum width (0.01 px), no bounces, one trivial material for every
  object, on a grid twice as fine plus one sample (``(2W+1) x (2H+1)``) whose odd samples are exactly the pixel
  centres of the image and whose even samples are the pixel corners and edge midpoints. Passes: Position,
  Normal, IndexOB and an AOV holding the geometric (true) normal.
"""


from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import bpy
import numpy as np
from PIL import Image

from rgbify.render import shading
from rgbify.render.passes import passes_to_arrays, widen_edges
from rgbify.render.postprocess import postprocess
from rgbify.render.result import RenderResult, SceneError, instance_table, semantic_from_instance
from rgbify.scenes.geometry import GeometryError, TriMesh, file_image, resolve_path, scene_meshes, vertex_normals
from rgbify.scenes.spec import Camera, Light, Material, SceneSpec, SpecError

MAX_INSTANCE_ID = 32767
"""Blender's Object.pass_index (the IndexOB pass) holds 0..32767."""

# Blender's camera looks down its local -z with +y up; OpenCV's looks down +z with +y down.
BLENDER_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
SENSOR_WIDTH_MM = 36.0
TRUE_NORMAL_AOV = "TrueNormal"
DATA_FILTER_WIDTH = 0.01  # Blender's minimum pixel filter width


class BlenderSceneError(ValueError):
    """Blender could not build the scene from the spec (e.g. an unreadable image file); names the cause."""


def blender_version() -> str:
    return bpy.app.version_string


def reset() -> None:
    """Return Blender to an empty factory state (the one place global Blender state is cleared)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


# --- scene building -----------------------------------------------------------------------------------------


def _load_image(ref: str, what: str):
    """The bpy image of an image reference: a file path, or ``PATH#K`` (the K-th image embedded in mesh file
    PATH, read through rgbify.scenes.geometry.file_image)."""
    if "#" in ref and ref.rpartition("#")[2].isdigit():
        name = f"rgbify:{ref}"
        if name in bpy.data.images:
            return bpy.data.images[name]
        try:
            im = file_image(ref).convert("RGBA")
        except GeometryError as e:
            raise BlenderSceneError(f"{what}: {e}") from None
        img = bpy.data.images.new(name, im.width, im.height, alpha=True)
        px = np.asarray(im, dtype=np.float32)[::-1] / 255.0  # Blender's rows go bottom up
        img.pixels.foreach_set(px.ravel())
        img.pack()
        return img
    path = resolve_path(ref)  # ``cache:`` references: the asset cache's files (rgbify.scenes.catalog)
    if not os.path.isfile(path):
        raise BlenderSceneError(f"{what} {ref!r} does not exist (relative paths are taken from {os.getcwd()!r})")
    try:
        return bpy.data.images.load(os.path.abspath(path), check_existing=True)
    except RuntimeError as e:
        raise BlenderSceneError(f"{what} {ref!r} could not be read by Blender: {e}") from None


def _make_material(m: Material, name: str, emission_is_light: bool = True):
    return shading.make_material(m, name, lambda ref: _load_image(ref, f"image texture of {name!r}"),
                                 emission_is_light)


def _make_mesh(name: str, mesh: TriMesh, smooth: bool):
    me = bpy.data.meshes.new(name)
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    f = np.ascontiguousarray(mesh.faces, dtype=np.int32)
    me.vertices.add(len(v))
    me.vertices.foreach_set("co", v.ravel())
    me.loops.add(f.size)
    me.loops.foreach_set("vertex_index", f.ravel())
    me.polygons.add(len(f))
    me.polygons.foreach_set("loop_start", np.arange(0, f.size, 3, dtype=np.int32))
    me.polygons.foreach_set("use_smooth", np.full(len(f), smooth, dtype=bool))
    if mesh.face_material is not None:
        me.polygons.foreach_set("material_index", np.ascontiguousarray(mesh.face_material, dtype=np.int32))
    if mesh.uv is not None:  # per face corner, in loop order (a loop is a corner here: faces are triangles)
        layer = me.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", np.ascontiguousarray(mesh.uv, dtype=np.float32).ravel())
    me.update(calc_edges=True)
    me.validate(verbose=False)
    if smooth:  # pin Blender's normals to ours, so that oracle and renderer interpolate the same vectors
        me.normals_split_custom_set_from_vertices(vertex_normals(mesh).astype(np.float32))
    return me


def _light_object(light: Light, index: int):
    kind = light.kind.upper()
    data = bpy.data.lights.new(f"light{index}", type=kind)
    data.energy = float(light.power)
    if light.color is not None:
        data.color = light.color
    else:
        data.use_temperature = True
        data.temperature = float(light.temperature_k)
    if kind in ("POINT", "SPOT"):
        data.shadow_soft_size = float(light.size)
    if kind == "SPOT":
        data.spot_size = math.radians(float(light.spot_angle_deg))
    elif kind == "AREA":
        data.size = float(light.size)
    elif kind == "SUN":
        data.angle = math.radians(float(light.size))
    ob = bpy.data.objects.new(f"light{index}", data)
    ob.matrix_world = np.asarray(light.world_from_light, dtype=np.float64).T.tolist()
    ob.visible_camera = False  # ground truth sees objects only, so the RGB must not show light sources
    return ob


def _world(spec: SceneSpec):
    world = bpy.data.worlds.new("World")
    world.use_nodes = True
    nt = world.node_tree
    bg = nt.nodes.get("Background")
    w = spec.world
    bg.inputs["Strength"].default_value = float(w.strength)
    if w.hdri:
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = _load_image(hdri_path(w.hdri), "HDRI")
        coords = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(w.hdri_rotation_deg))
        nt.links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    elif w.physical_sky:
        sky = nt.nodes.new("ShaderNodeTexSky")
        sky.sky_type = "NISHITA"
        sky.sun_disc = False  # the sun is the spec's sun lamp (its light and its shadows)
        sky.sun_elevation = math.radians(w.sun_elevation_deg)
        # Blender's sun_rotation is measured from -y toward +x... turned so it matches rgbify's azimuth from +x
        sky.sun_rotation = math.radians(90.0 - w.sun_azimuth_deg)
        sky.air_density = float(w.air_density)
        sky.dust_density = float(w.dust_density)
        nt.links.new(sky.outputs["Color"], bg.inputs["Color"])
    else:
        bg.inputs["Color"].default_value = (*w.background_color, 1.0)
    return world


def hdri_path(ref: str) -> str:
    """A World.hdri reference as a file: ``builtin:NAME`` is Blender's own studio-light HDRI NAME.exr."""
    if ref.startswith("builtin:"):
        return os.path.join(bpy.utils.resource_path("LOCAL"), "datafiles", "studiolights", "world",
                            ref.split(":", 1)[1] + ".exr")
    return ref


@dataclass
class BuiltScene:
    scene: object
    camera: object
    data_material: object
    objects: dict | None = None
    """The Blender object of each instance id."""


def build_scene(spec: SceneSpec, meshes: list[TriMesh]) -> BuiltScene:
    """Create the spec's objects, lights, world and camera in the (freshly reset) current Blender scene."""
    scene = bpy.context.scene
    coll = scene.collection
    by_id = {}
    for obj, mesh in zip(spec.objects, meshes, strict=True):
        me = _make_mesh(obj.name, mesh, obj.shading == "smooth")
        slots = obj.slots()
        used = int(mesh.face_material.max()) + 1 if mesh.face_material is not None and len(mesh.faces) else 1
        if used > len(slots):
            raise BlenderSceneError(f"object {obj.name!r}: its geometry uses {used} material slots, the spec gives "
                                    f"{len(slots)} (material + materials)")
        for k, m in enumerate(slots):
            me.materials.append(_make_material(m, f"{obj.name}.material{k}", emission_is_light=not spec.lights))
        ob = bpy.data.objects.new(obj.name, me)
        ob.matrix_world = np.asarray(obj.world_from_object, dtype=np.float64).T.tolist()
        ob.pass_index = int(obj.instance_id)
        coll.objects.link(ob)
        by_id[int(obj.instance_id)] = ob
    for i, light in enumerate(spec.lights):
        coll.objects.link(_light_object(light, i))
    scene.world = _world(spec)
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    coll.objects.link(cam)
    scene.camera = cam
    return BuiltScene(scene=scene, camera=cam, data_material=_data_material(), objects=by_id)


def _data_material():
    """A black diffuse surface plus an AOV carrying the geometric normal in world space.

    (A zero-strength emission shader is not enough: Cycles then skips the data passes of some surfaces.)
    """
    mat = bpy.data.materials.new("rgbify.data")
    mat.use_nodes = True
    nt = mat.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    diffuse = nt.nodes.new("ShaderNodeBsdfDiffuse")
    diffuse.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    nt.links.new(diffuse.outputs["BSDF"], out.inputs["Surface"])
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    aov = nt.nodes.new("ShaderNodeOutputAOV")
    aov.aov_name = TRUE_NORMAL_AOV
    nt.links.new(geo.outputs["True Normal"], aov.inputs["Color"])
    return mat


def set_camera(cam, camera: Camera, scene) -> None:
    """Pose and intrinsics of the Blender camera and the render resolution, from an OpenCV camera."""
    if abs(camera.fx - camera.fy) > 1e-9 * camera.fx:
        raise BlenderSceneError(f"camera fx={camera.fx} and fy={camera.fy} differ; Blender needs square pixels "
                                "(fx == fy)")
    w, h = int(camera.width), int(camera.height)
    cam.matrix_world = (np.asarray(camera.world_from_camera, dtype=np.float64) @ BLENDER_FROM_OPENCV).T.tolist()
    data = cam.data
    _put(data, "type", "PERSP")
    _put(data, "sensor_fit", "HORIZONTAL")
    _put(data, "sensor_width", float(camera.sensor_width_mm))
    _put(data, "lens", camera.fx * float(camera.sensor_width_mm) / w)
    _put(data.dof, "use_dof", camera.f_number is not None)
    if camera.f_number is not None:
        _put(data.dof, "aperture_fstop", float(camera.f_number))
        _put(data.dof, "focus_distance", float(camera.focus_distance_m))
    # With a horizontal sensor fit, shifts are in units of the image width (Blender's viewplane).
    _put(data, "shift_x", ((w - 1) / 2.0 - camera.cx) / w)
    _put(data, "shift_y", (camera.cy - (h - 1) / 2.0) / w)
    _put(data, "clip_start", float(camera.clip_start))
    _put(data, "clip_end", float(camera.clip_end))
    r = scene.render
    for attr, value in (("resolution_x", w), ("resolution_y", h), ("resolution_percentage", 100),
                        ("pixel_aspect_x", 1.0), ("pixel_aspect_y", 1.0), ("use_border", False)):
        _put(r, attr, value)


def fine_camera(camera: Camera) -> Camera:
    """The camera of the data render: a (2W+1) x (2H+1) grid whose sample (2i+1, 2j+1) is pixel (i, j)'s centre."""
    return Camera(width=2 * camera.width + 1, height=2 * camera.height + 1, fx=2 * camera.fx, fy=2 * camera.fy,
                  cx=2 * camera.cx + 1, cy=2 * camera.cy + 1, world_from_camera=camera.world_from_camera,
                  clip_start=camera.clip_start, clip_end=camera.clip_end)  # a pinhole: no depth of field


@contextlib.contextmanager
def quiet_stdout():
    """Send what Blender prints to stdout (progress lines for every render) to /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _render_still() -> None:
    with quiet_stdout():
        bpy.ops.render.render(write_still=True)


# --- rendering ----------------------------------------------------------------------------------------------


def _common_cycles(scene, device: str, threads: int | None) -> None:
    scene.render.engine = "CYCLES"
    c = scene.cycles
    if device == "gpu":
        _enable_gpu()
        c.device = "GPU"
    else:
        c.device = "CPU"
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = int(threads)
    scene.render.use_persistent_data = True
    scene.render.film_transparent = False
    scene.render.use_compositing = False
    scene.render.use_sequencer = False


def gpu_devices() -> tuple[str, list[str]] | None:
    """(backend, device names) of the first of OptiX and CUDA that Cycles can use, selected; None if neither."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.refresh_devices()
        devices = [d for d in prefs.devices if d.type == backend]
        if devices:
            for d in prefs.devices:
                d.use = d.type == backend
            return backend, [d.name for d in devices]
    return None


def _enable_gpu() -> None:
    if gpu_devices() is not None:
        return
    raise BlenderSceneError("device 'gpu' requested but Blender found no CUDA or OptiX device; use --device cpu")


DENOISE_QUALITY = "HIGH"
"""OIDN's quality mode for the RGB render (HIGH, BALANCED, FAST): a renderer setting the benchmarks vary
(benchmarks/bench_cycles_settings.py; docs/performance.md has what each costs and loses)."""


def _put(owner, attr: str, value) -> None:  # noqa: ANN001
    """``owner.attr = value`` unless it already holds that value (floats compared as Blender stores them,
    float32): setting a property, even to its value, tags its datablock as changed, and Cycles then syncs it again
    before the next render. A clip's later renders so skip what did not change (docs/video.md, "Speed": about
    0.45 core-s less per 128x96 frame at 16 samples, pictures bit-identical)."""
    cur = getattr(owner, attr)
    same = np.float32(cur) == np.float32(value) if isinstance(value, float) else cur == value
    if not same:
        setattr(owner, attr, value)


def render_rgb(built: BuiltScene, spec: SceneSpec, path: str) -> np.ndarray:
    """The RGB render, written as an 8-bit PNG at ``path`` and returned as uint8 (H,W,3)."""
    scene = built.scene
    set_camera(built.camera, spec.camera, scene)
    rs, c = spec.render, scene.cycles
    _put(c, "samples", int(rs.samples))
    _put(c, "use_adaptive_sampling", True)
    _put(c, "adaptive_threshold", float(rs.adaptive_threshold))
    _put(c, "seed", int(rs.seed))
    _put(c, "use_denoising", bool(rs.denoise))
    if rs.denoise:
        _put(c, "denoiser", "OPENIMAGEDENOISE")
        _put(c, "denoising_prefilter", rs.denoise_prefilter)
        _put(c, "denoising_quality", DENOISE_QUALITY)
    _put(c, "pixel_filter_type", "BLACKMAN_HARRIS")
    _put(c, "filter_width", 1.5)
    _put(c, "max_bounces", int(rs.max_bounces))
    _put(c, "diffuse_bounces", int(rs.diffuse_bounces))
    _put(c, "glossy_bounces", int(rs.glossy_bounces))
    _put(c, "transmission_bounces", int(rs.transmission_bounces))
    _put(c, "use_light_tree", bool(rs.light_tree))
    _put(c, "sample_clamp_indirect", float(rs.clamp_indirect))
    _put(c, "caustics_reflective", bool(rs.caustics))
    _put(c, "caustics_refractive", bool(rs.caustics))
    if scene.world is not None and rs.world_map_resolution > 0:
        _put(scene.world.cycles, "sampling_method", "MANUAL")
        _put(scene.world.cycles, "sample_map_resolution", int(rs.world_map_resolution))
    vs = scene.view_settings
    _put(vs, "view_transform", rs.view_transform)
    _put(vs, "look", "None")
    _put(vs, "exposure", float(rs.exposure_ev))
    _put(vs, "gamma", 1.0)
    _put(vs, "use_white_balance", rs.white_balance_k is not None)
    if rs.white_balance_k is not None:
        _put(vs, "white_balance_temperature", float(rs.white_balance_k))
        _put(vs, "white_balance_tint", float(rs.white_balance_tint))
    _put(scene.display_settings, "display_device", "sRGB")
    _put(scene.render, "dither_intensity", 0.0)
    _put(scene.view_layers[0], "material_override", None)
    _put(scene.view_layers[0], "use_pass_combined", True)
    img = scene.render.image_settings
    _put(img, "file_format", "PNG")
    _put(img, "color_mode", "RGB")
    _put(img, "color_depth", "8")
    _put(img, "compression", 0)
    scene.render.filepath = path
    _render_still()
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    return postprocess(rgb, rs.post)


def render_data(built: BuiltScene, spec: SceneSpec, path: str) -> dict[str, np.ndarray]:
    """The data render on the fine grid; returns float32 passes (2H+1, 2W+1, C) keyed position (world m),
    normal (world, unit shading normal), true_normal (world, geometric), index (instance id)."""
    scene = built.scene
    set_camera(built.camera, fine_camera(spec.camera), scene)  # fine_camera is a pinhole (no depth of field)
    c = scene.cycles
    _put(c, "samples", 1)
    _put(c, "use_adaptive_sampling", False)
    _put(c, "use_denoising", False)
    _put(c, "seed", 0)
    _put(c, "pixel_filter_type", "BOX")
    _put(c, "filter_width", DATA_FILTER_WIDTH)
    for attr in ("max_bounces", "diffuse_bounces", "glossy_bounces", "transmission_bounces", "volume_bounces",
                 "transparent_max_bounces"):
        _put(c, attr, 0)
    _put(c, "caustics_reflective", False)
    _put(c, "caustics_refractive", False)
    vl = scene.view_layers[0]
    _put(vl, "material_override", built.data_material)
    _put(vl, "use_pass_z", False)
    _put(vl, "use_pass_combined", False)  # the data render's colour is never used
    _put(vl, "use_pass_position", True)
    _put(vl, "use_pass_normal", True)
    _put(vl, "use_pass_object_index", True)
    if TRUE_NORMAL_AOV not in vl.aovs:
        aov = vl.aovs.add()
        aov.name = TRUE_NORMAL_AOV
        aov.type = "COLOR"
    img = scene.render.image_settings
    _put(img, "file_format", "OPEN_EXR_MULTILAYER")
    _put(img, "color_depth", "32")
    _put(img, "exr_codec", "NONE")
    scene.render.filepath = path
    _render_still()
    return read_data_exr(path, vl.name)


def read_data_exr(path: str, layer: str) -> dict[str, np.ndarray]:
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        ch = {name: np.asarray(c.pixels, dtype=np.float32) for name, c in f.channels().items()}

    def get(pass_name: str, comps: str) -> np.ndarray:
        names = [f"{layer}.{pass_name}.{k}" for k in comps]
        missing = [n for n in names if n not in ch]
        if missing:
            raise RuntimeError(f"data render {path!r} lacks channels {missing}; has {sorted(ch)}")
        return np.stack([ch[n] for n in names], axis=-1)

    return {
        "position": get("Position", "XYZ"),
        "normal": get("Normal", "XYZ"),
        "true_normal": get(TRUE_NORMAL_AOV, "RGB"),
        "index": get("IndexOB", "X")[..., 0],
    }


def render_scene(spec: SceneSpec, meshes: list[TriMesh], tmpdir: str, device: str = "cpu",
                 threads: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Reset Blender, build the scene, render RGB and data; returns (rgb, data passes, timings)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    reset()
    built = build_scene(spec, meshes)
    _common_cycles(built.scene, device, threads)  # engine, device, threads: the same for both renders
    t1 = time.perf_counter()
    timings["scene_build"] = t1 - t0
    rgb = render_rgb(built, spec, os.path.join(tmpdir, "rgb.png"))
    t2 = time.perf_counter()
    timings["rgb_render"] = t2 - t1
    data = render_data(built, spec, os.path.join(tmpdir, "data.exr"))
    timings["data_render"] = time.perf_counter() - t2
    return rgb, data, timings


# --- the backend ---------------------------------------------------------------------------------------------


def render_cycles(spec: SceneSpec, device: str = "cpu", threads: int | None = None,
                  tmp_root: str | None = None) -> RenderResult:
    """Render ``spec`` with Cycles in this process (RGB render, then the data render); see docs/rendering.md.

    Intermediate files (the RGB PNG and the data EXR) go to a temporary folder under ``tmp_root``. Raises SceneError
    naming the cause (an unreadable mesh or image file, bad ids)."""
    t0 = time.perf_counter()
    meshes = _checked_meshes(spec)
    t_meshes = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="rgbify-render-", dir=tmp_root) as tmp:
            rgb, passes, timings = render_scene(spec, meshes, tmp, device=device, threads=threads)
    except BlenderSceneError as e:
        raise SceneError(str(e)) from None
    timings["scene_build"] += t_meshes
    t1 = time.perf_counter()
    result = _result(spec, rgb, passes, timings)
    timings["readback"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return result


def _checked_meshes(spec: SceneSpec) -> list[TriMesh]:
    try:
        spec.validate()
    except SpecError as e:
        raise SceneError(str(e)) from None
    too_big = [o.name for o in spec.objects if o.instance_id > MAX_INSTANCE_ID]
    if too_big:
        raise SceneError(f"objects {too_big[:5]} have instance ids above {MAX_INSTANCE_ID}, the largest Blender's "
                         "object index pass holds; renumber instances from 1")
    try:
        return scene_meshes(spec.objects)
    except GeometryError as e:
        raise SceneError(str(e)) from None


def _result(spec: SceneSpec, rgb: np.ndarray, passes: dict[str, np.ndarray], timings: dict[str, float]
            ) -> RenderResult:
    arrays = passes_to_arrays(passes, spec.camera, fine_camera(spec.camera))
    arrays["edge"] = widen_edges(arrays["edge"], arrays["depth"], spec.camera, spec.render.post)
    semantic = semantic_from_instance(spec, arrays["instance"])
    return RenderResult(
        rgb=rgb, depth=arrays["depth"], normals=arrays["normals"], instance=arrays["instance"], semantic=semantic,
        edge=arrays["edge"], K=spec.camera.K, world_from_camera=np.asarray(spec.camera.world_from_camera),
        instances=instance_table(spec, arrays["instance"]), timings=timings,
        blender_version=blender_version(), backend="cycles")


def _to_frame(built: BuiltScene, frame: SceneSpec, moving: set[int], animated_frame: int | None) -> None:
    """Move the moving objects of a built clip to their poses in ``frame`` (the camera is set by each render), or,
    when the clip is animated (motion blur), go to that frame of the animation."""
    if animated_frame is not None:
        built.scene.frame_set(int(animated_frame))
        return
    for o in frame.objects:
        if o.instance_id in moving:
            built.objects[o.instance_id].matrix_world = np.asarray(o.world_from_object, dtype=np.float64).T.tolist()


def _keyframe(ob, matrix: np.ndarray, frame: int) -> None:
    """Key ``ob``'s location and rotation (a quaternion, kept on the side of the previous key so that linear
    interpolation takes the short way) at ``frame`` from a rigid 4x4 world matrix."""
    ob.rotation_mode = "QUATERNION"
    previous = tuple(ob.rotation_quaternion)
    ob.matrix_world = matrix.T.tolist()
    q = np.array(ob.rotation_quaternion)
    if frame > 0 and float(np.dot(q, previous)) < 0:
        ob.rotation_quaternion = tuple(-q)
    ob.keyframe_insert("location", frame=frame)
    ob.keyframe_insert("rotation_quaternion", frame=frame)


def _animate(built: BuiltScene, clip) -> None:  # noqa: ANN001 - a ClipSpec
    """Key the camera and the moving objects at every frame of the clip (Blender frame t = clip frame t), linear
    between keys and extrapolated linearly beyond them: what Cycles' motion blur samples within the shutter."""
    obs = [(built.camera, [clip.world_from_camera(t) @ BLENDER_FROM_OPENCV for t in range(clip.frames)])]
    for m in clip.motions:
        obs.append((built.objects[m.instance_id], [np.asarray(p, dtype=np.float64) for p in m.poses]))
    for ob, poses in obs:
        for t, pose in enumerate(poses):
            _keyframe(ob, pose, t)
        for fc in ob.animation_data.action.fcurves:
            fc.extrapolation = "LINEAR"
            for kp in fc.keyframe_points:
                kp.interpolation = "LINEAR"


def render_clip_cycles(clip, device: str = "cpu", threads: int | None = None,  # noqa: ANN001 - a ClipSpec
                       tmp_root: str | None = None, frames: list[int] | None = None) -> list[RenderResult]:
    """Render the frames of a clip (rgbify.scenes.clip.ClipSpec) in one Blender scene: the scene is built once;
    per frame only the camera and the moving objects' transforms change. All RGB renders come first, then all
    data renders (one switch of the render settings, not one per frame). Each frame's RenderResult is what
    render_cycles gives for ``clip.frame(t)``; its timings hold that frame's share: its own renders plus the
    scene build divided among the frames."""
    t0 = time.perf_counter()
    which = list(range(clip.frames)) if frames is None else list(frames)
    specs = [clip.frame(t) for t in which]
    meshes = _checked_meshes(specs[0])
    moving = {m.instance_id for m in clip.motions}
    rgbs, passes, times = [], [], [dict() for _ in specs]
    try:
        with tempfile.TemporaryDirectory(prefix="rgbify-clip-", dir=tmp_root) as tmp:
            reset()
            built = build_scene(specs[0], meshes)
            _common_cycles(built.scene, device, threads)
            blur = clip.shutter > 0
            if blur:  # the animation drives the poses at each frame (exact at its keys), Cycles blurs the RGB
                _animate(built, clip)
                built.scene.render.motion_blur_shutter = float(clip.shutter)
                built.scene.render.motion_blur_position = "CENTER"
            build = time.perf_counter() - t0
            for k, spec in enumerate(specs):
                t1 = time.perf_counter()
                _to_frame(built, spec, moving, which[k] if blur else None)
                built.scene.render.use_motion_blur = blur
                rgbs.append(render_rgb(built, spec, os.path.join(tmp, f"rgb{k}.png")))
                times[k]["rgb_render"] = time.perf_counter() - t1
            built.scene.render.use_motion_blur = False  # ground truth: the instant of the frame, sharp
            for k, spec in enumerate(specs):
                t1 = time.perf_counter()
                _to_frame(built, spec, moving, which[k] if blur else None)
                passes.append(render_data(built, spec, os.path.join(tmp, f"data{k}.exr")))
                times[k]["data_render"] = time.perf_counter() - t1
    except BlenderSceneError as e:
        raise SceneError(str(e)) from None
    results = []
    for k, spec in enumerate(specs):
        t1 = time.perf_counter()
        times[k]["scene_build"] = build / len(specs)
        results.append(_result(spec, rgbs[k], passes[k], times[k]))
        times[k]["readback"] = time.perf_counter() - t1
        times[k]["total"] = sum(times[k][x] for x in ("scene_build", "rgb_render", "data_render", "readback"))
    return results
