"""The ray-cast probe of a sampled view (bpy-free): a low-resolution ray casting (embree through trimesh) of the
triangles the renderer will draw (rgbify.scenes.geometry), for coverage, and an analytic exposure estimate that
relights or rejects views that would render too dark or blown out.

Exposure model (per probe ray, linear radiance where a white diffuse surface lit by irradiance pi reads 1):
    L = albedo / pi * (E_direct + E_indirect + E_sky) + emission
* E_direct sums the lights with a shadow ray each: point and spot lights give I cos(theta) / d^2 with radiant
  intensity I = P / (4 pi) (spots only inside their cone); area lights give P / pi * cos(theta_light)
  cos(theta_surface) / (d^2 + a^2 / pi) for side a; sun gives S cos(theta). Each is multiplied by the Cycles
  unit calibration ``LIGHT_UNIT`` (measured with bpy: 1.00 for every kind).
* E_indirect approximates interreflection: in a room the integrating-sphere result
  INDIRECT_GAIN * (light flux / interior area) * rho / (1 - rho), rho = ROOM_ALBEDO_SCALE x the area-weighted
  albedo of walls, floor and ceiling; outdoors the mean direct irradiance of the visible surfaces times
  rho / (1 - rho) (rho = their mean albedo) times OUTDOOR_BOUNCE.
* E_sky is the world colour's irradiance on an unoccluded surface, pi L_world (1 + n_z) / 2, times OUTDOOR_SKY
  outdoors and 0.05 indoors (windows only). Rays that hit nothing see L_world itself.
The display is Blender's "Standard" view transform: radiance clipped at 1, then the sRGB curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from rgbify.scenes import portable
from rgbify.scenes.geometry import TriMesh, world_mesh
from rgbify.scenes.lighting import sky_model
from rgbify.scenes.spec import Camera, Light, Material, Object, World

LIGHT_UNIT = {"point": 1.0, "spot": 1.0, "area": 1.0, "sun": 1.0}
"""Ratio of the irradiance Cycles delivers to the textbook value above, per light kind. Measured with bpy 4.5
(Cycles, 64 spp, white-ish Principled plane, roughness 1, specular 0, light 2 m above): point 0.997, spot
(120 degree cone) 0.997, area (0.5 m) 0.998, sun 1.000 - i.e. Blender's watts are radiometric watts."""

INDIRECT_GAIN = 1.5
"""Scale of the room interreflection term (fitted against Cycles renders; see docs/scenes.md)."""
ROOM_ALBEDO_SCALE = 0.6
"""Effective room albedo = this x the area-weighted albedo of walls, floor and ceiling (furniture, openings and
dark objects absorb; fitted together with INDIRECT_GAIN)."""
OUTDOOR_SKY = 1.0
"""Share of the open sky's irradiance (pi L_world (1 + n_z) / 2) that reaches outdoor surfaces."""
OUTDOOR_BOUNCE = 0.3
"""Outdoor interreflection as a share of the enclosed-room formula."""


LUMA = np.array([0.2126, 0.7152, 0.0722])


def luminance(c: tuple[float, float, float] | np.ndarray) -> float:
    return float(np.asarray(c, dtype=np.float64) @ LUMA)


PATTERN_SHARE = {"none": 0.0, "plaster": 0.12, "plastic": 0.03, "ceramic": 0.04, "paper": 0.12, "rubber": 0.05,
                 "marble": 0.1, "tiles": 0.1, "wood": 0.3, "skin": 0.15, "fabric": 0.4, "carpet": 0.17,
                 "cardboard": 0.2, "brushed_metal": 0.5}
"""Mean share of ``color2`` in a pattern's colour (the rest is base_color); 0.5 for patterns not listed."""


def albedo(m: Material) -> np.ndarray:
    """Effective diffuse reflectance, linear RGB (3,)."""
    a = np.asarray(m.base_color, dtype=np.float64)
    if m.pattern != "none":
        share = PATTERN_SHARE.get(m.pattern, 0.5)
        a = (1.0 - share) * a + share * np.asarray(m.color2, dtype=np.float64)
    if m.image_texture:
        a = a * 0.45  # an average image times the base colour
    if m.metallic > 0.5:
        a = a * 0.45  # a metal mostly mirrors its (darker than white) surroundings
    if m.transmission > 0.5:
        a = np.full(3, 0.25)
    return a


@dataclass
class SceneRays:
    """The scene's triangles, with a map from triangle to object and each triangle's albedo and emission (from its
    material slot), for ray casting."""

    mesh: trimesh.Trimesh
    tri_object: np.ndarray
    objects: tuple[Object, ...]
    intersector: object
    tri_albedo: np.ndarray
    """(T, 3) linear RGB diffuse reflectance of each triangle's material."""
    tri_emission: np.ndarray
    """(T, 3) linear RGB emitted radiance of each triangle's material."""

    @staticmethod
    def build(objects: tuple[Object, ...] | list[Object]) -> SceneRays:
        """The world-space triangles of ``objects`` (rgbify.scenes.geometry.world_mesh: what the renderer draws)."""
        meshes = [world_mesh(o) for o in objects]
        owner = [np.full(len(m.faces), k, dtype=np.int64) for k, m in enumerate(meshes)]
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
        vertices = np.concatenate([m.vertices for m in meshes]) if meshes else np.zeros((0, 3))
        faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=False)]) if meshes else \
            np.zeros((0, 3), np.int64)
        alb, emit = [], []
        for o, m in zip(objects, meshes, strict=True):
            slots = o.slots()
            table = np.array([albedo(x) for x in slots]).reshape(-1, 3)
            etable = np.array([x.emission_strength * np.asarray(x.base_color) for x in slots]).reshape(-1, 3)
            idx = np.minimum(m.slots(), len(slots) - 1)
            alb.append(table[idx])
            emit.append(etable[idx])
        mesh = TriMesh(vertices, faces).to_trimesh()
        return SceneRays(mesh, np.concatenate(owner) if owner else np.zeros(0, np.int64), tuple(objects),
                         _intersector(mesh), np.concatenate(alb) if alb else np.zeros((0, 3)),
                         np.concatenate(emit) if emit else np.zeros((0, 3)))

    def cast(self, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First hit per ray: (triangle index or -1, distance or inf)."""
        tri = np.full(len(origins), -1, dtype=np.int64)
        dist = np.full(len(origins), np.inf)
        if len(self.mesh.faces) == 0 or len(origins) == 0:
            return tri, dist
        index_tri, index_ray, loc = self.intersector.intersects_id(origins, dirs, multiple_hits=False,
                                                                   return_locations=True)
        tri[index_ray] = index_tri
        dist[index_ray] = np.linalg.norm(loc - origins[index_ray], axis=1)
        return tri, dist


def _intersector(mesh: trimesh.Trimesh) -> object:
    try:
        from trimesh.ray.ray_pyembree import RayMeshIntersector
    except ImportError:  # embreex ships wheels for x86_64 only; elsewhere trimesh's own ray caster (rtree) does it
        from trimesh.ray.ray_triangle import RayMeshIntersector
    return RayMeshIntersector(mesh)


def camera_rays(camera: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World ray origins and unit directions through the pixel centres of ``camera`` resized to width x height,
    and each ray's cosine to the optical axis (planar depth = distance * cosine)."""
    cam = camera.resized(width, height)
    j, i = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = (j - cam.cx) / cam.fx
    y = (i - cam.cy) / cam.fy
    d_cam = np.stack([x, y, np.ones_like(x)], -1).reshape(-1, 3)
    cos = 1.0 / np.linalg.norm(d_cam, axis=1)
    d_cam = d_cam * cos[:, None]
    m = np.asarray(camera.world_from_camera, dtype=np.float64)
    dirs = d_cam @ m[:3, :3].T
    origins = np.broadcast_to(m[:3, 3], dirs.shape).copy()
    return origins, dirs, cos


@dataclass
class Probe:
    width: int
    height: int
    object_index: np.ndarray
    """(H*W,) index into the scene's objects, -1 where nothing is hit."""
    triangle: np.ndarray
    """(H*W,) index of the triangle hit, -1 where nothing is hit."""
    depth_z_m: np.ndarray
    """(H*W,) planar depth, +inf where nothing is hit."""
    distance_m: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    """Face normals at the hits, turned toward the camera."""
    backfacing: np.ndarray
    dirs: np.ndarray


def probe(rays: SceneRays, camera: Camera, width: int, height: int) -> Probe:
    origins, dirs, cos = camera_rays(camera, width, height)
    tri, dist = rays.cast(origins, dirs)
    hit = tri >= 0
    obj = np.where(hit, rays.tri_object[np.maximum(tri, 0)] if len(rays.tri_object) else -1, -1)
    normals = np.zeros_like(dirs)
    back = np.zeros(len(dirs), dtype=bool)
    if hit.any():
        n = rays.mesh.face_normals[tri[hit]]
        facing = np.sum(n * dirs[hit], 1)
        back[hit] = facing > 0
        normals[hit] = np.where((facing > 0)[:, None], -n, n)
    pts = origins + dirs * np.where(hit, dist, 0.0)[:, None]
    return Probe(width, height, obj, tri, np.where(hit, dist * cos, np.inf), dist, pts, normals, back, dirs)


@dataclass
class Coverage:
    sky_fraction: float
    visible_instances: int
    near_fraction: float
    largest_fraction: float
    backfacing_fraction: float
    depth_min_m: float
    depth_max_m: float
    depth_median_m: float

    def to_meta(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in self.__dict__.items()}


def coverage(p: Probe, min_instance_fraction: float, near_m: float) -> Coverage:
    n = len(p.object_index)
    hit = p.object_index >= 0
    ids, counts = np.unique(p.object_index[hit], return_counts=True)
    frac = counts / n
    d = p.depth_z_m[hit]
    return Coverage(sky_fraction=float(1.0 - hit.mean()),
                    visible_instances=int(np.sum(frac >= min_instance_fraction)),
                    near_fraction=float(np.mean(p.distance_m < near_m)),
                    largest_fraction=float(frac.max()) if len(frac) else 0.0,
                    backfacing_fraction=float(p.backfacing.mean()),
                    depth_min_m=float(d.min()) if len(d) else math.inf,
                    depth_max_m=float(d.max()) if len(d) else math.inf,
                    depth_median_m=float(np.median(d)) if len(d) else math.inf)


# --- exposure --------------------------------------------------------------------------------------------------

def _light_dir_and_irradiance(light: Light, pts: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                              np.ndarray]:
    """Per point: unit direction toward the light, distance to it (inf for sun), unshadowed irradiance."""
    m = np.asarray(light.world_from_light, dtype=np.float64)
    axis = -m[:3, 2]  # the light shines along its local -z
    if light.kind == "sun":
        to_l = np.broadcast_to(-axis / np.linalg.norm(axis), pts.shape)
        cos_s = np.clip(np.sum(normals * to_l, 1), 0.0, None)
        return to_l, np.full(len(pts), np.inf), light.power * cos_s * LIGHT_UNIT["sun"]
    v = m[:3, 3] - pts
    d2 = np.maximum(np.sum(v * v, 1), 1e-6)
    d = np.sqrt(d2)
    to_l = v / d[:, None]
    cos_s = np.clip(np.sum(normals * to_l, 1), 0.0, None)
    if light.kind == "area":
        cos_l = np.clip(np.sum(-to_l * axis, 1), 0.0, None)
        e = light.power / math.pi * cos_l * cos_s / (d2 + light.size ** 2 / math.pi)
        return to_l, d, e * LIGHT_UNIT["area"]
    e = light.power / (4.0 * math.pi) * cos_s / d2
    if light.kind == "spot":
        cos_cone = np.sum(-to_l * axis, 1)
        e = e * (cos_cone >= math.cos(math.radians(light.spot_angle_deg) / 2.0))
    return to_l, d, e * LIGHT_UNIT[light.kind]


@dataclass
class Exposure:
    median: float
    """Median linear radiance over the probe image, sky included (before relighting)."""
    relight: float
    """Factor applied to every light power and the world strength."""
    clipped_fraction: float
    dark_fraction: float
    mean_srgb: float

    def to_meta(self) -> dict:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def light_flux(light: Light) -> float:
    """Radiant flux (W) a light sends into a room: a spot only its cone's share; a sun is left out (it enters
    through windows and is counted by the direct term)."""
    if light.kind == "spot":
        return light.power * (1.0 - math.cos(math.radians(light.spot_angle_deg) / 2.0)) / 2.0
    return 0.0 if light.kind == "sun" else light.power


def radiance(rays: SceneRays, p: Probe, lights: tuple[Light, ...] | list[Light], world: World, enclosed: bool,
             interreflection: bool = True, interior: tuple[float, float] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Estimated linear RGB radiance per probe ray (N, 3), split into (the part that scales with the lights and
    the world, emission)."""
    hit = p.object_index >= 0
    n = len(hit)
    rho = np.zeros((n, 3))
    emit = np.zeros((n, 3))
    rho[hit] = rays.tri_albedo[p.triangle[hit]]
    emit[hit] = rays.tri_emission[p.triangle[hit]]
    pts = p.points[hit] + p.normals[hit] * 1e-3
    nrm = p.normals[hit]
    e_direct = np.zeros(len(pts))
    for light in lights:
        to_l, dist, e = _light_dir_and_irradiance(light, pts, nrm)
        lit = e > 0
        if lit.any():
            _tri, d_hit = rays.cast(pts[lit], to_l[lit])
            e = e.copy()
            e[lit] = e[lit] * (d_hit >= dist[lit] - 0.05)
        e_direct += e
    bg, sky_irradiance = sky_model(world)
    e_ind = 0.0
    if interreflection and interior is not None:  # integrating-sphere model of the room
        area, rho_room = interior
        rho_room = min(rho_room * ROOM_ALBEDO_SCALE, 0.8)
        e_ind = INDIRECT_GAIN * sum(light_flux(li) for li in lights) / area * rho_room / (1.0 - rho_room)
    elif interreflection and hit.any():
        rho_mean = float(np.clip(rho[hit] @ LUMA, 0.0, 0.75).mean())
        e_ind = float(e_direct.mean()) * rho_mean / (1.0 - rho_mean) * (1.0 if enclosed else OUTDOOR_BOUNCE)
    sky = sky_irradiance(nrm) * (0.05 if enclosed else OUTDOOR_SKY)
    lit_part = np.broadcast_to(bg, (n, 3)).copy()
    e_total = e_direct + e_ind + sky
    lit_part[hit] = rho[hit] / math.pi * e_total[:, None]
    return lit_part, emit


def _srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * portable.power(x, 1 / 2.4) - 0.055)


AGX_WHITE = 16.29
"""Scene-linear value Blender's AgX view transform maps to display white (it compresses, not clips, below it)."""


def _agx_display(x: np.ndarray) -> np.ndarray:
    """An approximation of AgX's display value (0-1) of scene-linear luminance: a log2 curve over about 16.5 stops
    around middle grey, through an S-shaped contrast curve (enough for an exposure estimate, not for colour)."""
    v = np.clip((portable.log2(np.maximum(x, 1e-10)) + 12.47) / 16.5, 0.0, 1.0)
    return np.clip(v * v * (3.0 - 2.0 * v) * 1.03 - 0.015, 0.0, 1.0)


def exposure(lit: np.ndarray, emit: np.ndarray, target: float, ok: tuple[float, float],
             max_relight: float, view_transform: str = "Standard", exposure_ev: float = 0.0) -> Exposure:
    """Meter the frame (median luminance, sky included, as a camera would), pick a relight factor when it is
    outside ``ok``, and measure the result through the view transform (``exposure_ev`` stops brighter): under
    Standard pixels with any channel >= 1 are clipped, under AgX >= AGX_WHITE; luminance < 0.01 is dark."""
    lum = lit @ LUMA
    med = float(np.median(lum))
    factor = 1.0
    if not ok[0] <= med <= ok[1]:
        factor = float(np.clip(target / max(med, 1e-9), 1.0 / max_relight, max_relight))
    total = (lit * factor + emit) * 2.0 ** float(exposure_ev)
    total_lum = total @ LUMA
    agx = view_transform == "AgX"
    clip = AGX_WHITE if agx else 1.0
    shown = _agx_display(total_lum) if agx else _srgb(total).mean(1)
    return Exposure(median=med, relight=factor, clipped_fraction=float(np.mean(total.max(1) >= clip)),
                    dark_fraction=float(np.mean(total_lum < 0.01)), mean_srgb=float(np.mean(shown)))
