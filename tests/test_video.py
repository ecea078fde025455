"""Clips (rgbify.scenes.clip), exact flow from geometry (rgbify.scenes.sceneflow) and clip renders (one Blender
session), held to the ray-casting oracle at both times and to depth + poses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from oracles.raycast import cast, cast_rays

from rgbify.scenes import load_recipe, sample_scene
from rgbify.scenes.clip import (
    ClipConfig,
    RecipeError,
    clip_from_json,
    clip_to_json,
    load_clip_config,
    sample_clip,
)
from rgbify.scenes.sceneflow import clip_flow, flow_between
from rgbify.scenes.spec import SpecError

CLIPS = {"indoor": 4, "tabletop": 4, "outdoor": 11}
"""Recipe -> sample index whose clip has moving objects in view at 32x24."""
FALLING = {"moving_objects": (0, 0), "falling_objects": (1, 1)}
"""A tabletop clip whose only mover is a thrown object moved by the physics (key "falling" of rendered_clips)."""


def _clip(recipe: str, index: int, **kw):
    return sample_clip(
        load_recipe(recipe, resolution=(32, 24), samples=1, denoise=False), load_clip_config(frames=3, **kw), 0, index
    )


def _rigid(m) -> bool:
    a = np.asarray(m)
    return np.allclose(a[:3, :3] @ a[:3, :3].T, np.eye(3), atol=1e-6) and np.linalg.det(a[:3, :3]) > 0


@pytest.mark.parametrize("trajectory", ["walk", "orbit", "dolly", "drive", "static"])
def test_clip_is_a_pure_function_and_frame_zero_is_the_still(trajectory):
    config = load_recipe("tabletop", resolution=(32, 24), samples=1)
    a = sample_clip(config, ClipConfig(frames=4, trajectory=trajectory), 0, 4)
    b = sample_clip(config, ClipConfig(frames=4, trajectory=trajectory), 0, 4)
    assert a == b and clip_from_json(clip_to_json(a)) == a
    assert a.frame(0) == sample_scene(config, 0, 4)  # the still scene is untouched (no SAMPLER_VERSION change)
    assert a.frames == 4 and dict(a.meta)["trajectory"] == trajectory
    assert all(_rigid(c) for c in a.cameras) and all(_rigid(p) for m in a.motions for p in m.poses)
    moved = [np.linalg.norm(a.world_from_camera(3)[:3, 3] - a.world_from_camera(0)[:3, 3])]
    assert (moved[0] == 0) == (trajectory == "static")
    ids = {o.instance_id for o in a.scene.objects}
    assert {m.instance_id for m in a.motions} <= ids and len(a.motions) >= 1
    # an object's motion between frames is rigid and composes: t -> u -> w equals t -> w
    m01, m12, m02 = a.motion(0, 1), a.motion(1, 2), a.motion(0, 2)
    for k in m01:
        np.testing.assert_allclose(m12[k] @ m01[k], m02[k], atol=1e-9)
    other = sample_clip(config, ClipConfig(frames=4, trajectory=trajectory), 0, 5)
    assert other.cameras != a.cameras


def test_drive_and_vehicles_follow_a_curved_graded_street():
    """Outdoors the drive keeps its distance from the street's centre of curvature and its height above the road's
    plane (z = grade * x), turning with the road; moving vehicles do the same; a walked bicycle's person moves
    with it (the same rigid steps)."""
    from rgbify.scenes.clip import _street

    cfg = load_recipe("outdoor", resolution=(32, 24), samples=1)
    for index in range(12):
        scene = sample_scene(cfg, 3, index)
        k, grade, _ = _street(scene)
        if k and grade:
            break
    else:
        pytest.fail("no curved, graded street in 12 scenes")
    clip = sample_clip(cfg, load_clip_config(frames=6, trajectory="drive", moving_objects=(3, 3)), 3, index)
    centre = np.array([0.0, 1.0 / k])

    def radius_height(m):
        p = np.asarray(m)[:3, 3]
        return np.linalg.norm(p[:2] - centre), p[2] - grade * p[0]

    r0, h0 = radius_height(clip.world_from_camera(0))
    for t in range(1, 6):
        r, h = radius_height(clip.world_from_camera(t))
        assert abs(r - r0) < 1e-6 and abs(h - h0) < 0.01  # (the car's vibration: a 2 mm bob)
    assert np.linalg.norm(clip.world_from_camera(5)[:3, 3] - clip.world_from_camera(0)[:3, 3]) > 0.5
    by_id = {o.instance_id: o for o in clip.scene.objects}
    for m in clip.motions:
        if by_id[m.instance_id].class_name in ("car", "truck", "bus"):
            r = [radius_height(p) for p in m.poses]
            # about a vertical axis: every point keeps its radius; its height above the plane within a few mm
            assert max(abs(a[0] - r[0][0]) for a in r) < 1e-6 and max(abs(a[1] - r[0][1]) for a in r) < 0.01


def test_a_ridden_bicycle_goes_forward_at_cycling_speed_with_its_rider():
    """A moving ridden bicycle goes the way its rider faces at cycle_speed_mps, its rider taking the same steps
    (outdoor seed 0 index 5, the camera moved to look at a rider; where the catalogue is)."""
    from rgbify.scenes.catalog import find_catalogs
    from rgbify.scenes.clip import _movers
    from rgbify.scenes.spec import look_at

    if not find_catalogs():
        return
    config = load_recipe("outdoor", resolution=(64, 48), samples=1)
    spec = sample_scene(config, 0, 5)
    by_id = {o.instance_id: o for o in spec.objects}
    bid, rid = next((b, p) for b, p in dict(spec.meta)["street"]["cyclists"] if by_id[p].class_name == "rider")
    pose = np.asarray(by_id[rid].world_from_object)
    centre = pose[:3, 3] + np.array([0.0, 0.0, 0.8])
    eye = centre + 2.0 * np.cross(pose[:3, 1], [0.0, 0.0, 1.0]) + np.array([0.0, 0.0, 0.5])
    spec = dataclasses.replace(spec, camera=dataclasses.replace(spec.camera, world_from_camera=look_at(eye, centre)))
    cc = load_clip_config(frames=3, trajectory="static", moving_objects=(6, 6))
    lo, hi = cc.cycle_speed_mps
    moved = 0
    for key in range(4):
        motions = {m.instance_id: m for m in _movers(spec, cc, config, (0, 5, key))}
        if bid not in motions:
            continue
        moved += 1
        v = np.array(motions[bid].linear_mps[:2])
        assert lo <= np.linalg.norm(v) <= hi and float(v @ pose[:2, 1]) > 0
        for t in range(3):
            step = [np.asarray(motions[i].poses[t]) @ np.linalg.inv(np.asarray(motions[i].poses[0]))
                    for i in (bid, rid)]
            np.testing.assert_allclose(step[0], step[1], atol=1e-9)
    assert moved


def test_thrown_objects_fall_by_the_physics_deterministically():
    """falling_objects: a thrown small thing's per-frame poses come from PyBullet, rigid, frame 0 the still's pose,
    bit-equal when sampled again here and in another process."""
    import hashlib
    import subprocess
    import sys

    from rgbify.scenes.geometry import object_mesh

    cc = load_clip_config(frames=12, **FALLING)
    config = load_recipe("tabletop", resolution=(32, 24), samples=1)
    a = sample_clip(config, cc, 0, 4)
    assert a == sample_clip(config, cc, 0, 4) and clip_from_json(clip_to_json(a)) == a
    assert a.frame(0) == sample_scene(config, 0, 4)
    (iid,) = dict(a.meta)["falling"]
    (m,) = a.motions
    assert m.instance_id == iid and all(_rigid(p) for p in m.poses)
    (obj,) = [o for o in a.scene.objects if o.instance_id == iid]
    c = object_mesh(obj).vertices.mean(0)
    z = [float((np.asarray(p)[:3, :3] @ c + np.asarray(p)[:3, 3])[2]) for p in m.poses]  # its centroid's height
    assert z[1] > z[0] and min(z) < z[0] - 0.05, z  # thrown up, then it falls (off the table's edge)
    assert not np.allclose(np.asarray(m.poses[-1])[:3, :3], np.asarray(m.poses[0])[:3, :3])  # and tumbles
    code = (
        "import hashlib; from rgbify.scenes import load_recipe; "
        "from rgbify.scenes.clip import load_clip_config, sample_clip, clip_to_json; "
        "c = sample_clip(load_recipe('tabletop', resolution=(32, 24), samples=1), "
        f"load_clip_config(frames=12, **{FALLING!r}), 0, 4); "
        "print(hashlib.sha256(clip_to_json(c).encode()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == hashlib.sha256(clip_to_json(a).encode()).hexdigest()


def test_clip_config_is_checked():
    with pytest.raises(RecipeError, match="frames"):
        ClipConfig(frames=0)
    with pytest.raises(RecipeError, match="drive_speed_mps"):
        load_clip_config(drive_speed_mps=(9.0, 3.0))
    with pytest.raises(RecipeError, match="trajectory"):
        load_clip_config(trajectory="fly")


def test_flow_of_a_static_scene_is_the_ego_motion_of_its_depth():
    """Camera motion only, oracle depth: flow_between against the textbook formula written out here, and a point
    pushed behind the camera counts as out of view."""
    clip = _clip("indoor", 4, moving_objects=(0, 0))
    o0, o1 = cast(clip.frame(0)), cast(clip.frame(1))
    k = clip.scene.camera.K
    r = flow_between(
        o0.depth, o0.instance, k, clip.world_from_camera(0), clip.world_from_camera(1), clip.motion(0, 1), o1.depth
    )
    rel = np.linalg.inv(clip.world_from_camera(1)) @ clip.world_from_camera(0)
    h, w = o0.depth.shape
    for i, j in [(3, 4), (12, 16), (20, 30), (0, 0), (23, 31)]:
        if not np.isfinite(o0.depth[i, j]):
            continue
        x = o0.depth[i, j] * np.linalg.solve(k, [j, i, 1.0])
        y = rel[:3, :3] @ x + rel[:3, 3]
        p = k @ (y / y[2])
        np.testing.assert_allclose(r.flow[i, j], [p[0] - j, p[1] - i], atol=1e-4)
        np.testing.assert_allclose(r.scene_flow[i, j], y - x, atol=1e-5)
    assert r.valid.mean() > 0.8
    away = np.eye(4)
    away[:3, 3] = clip.world_from_camera(0)[:3, 2] * 1e3  # the camera moves 1 km forward: all behind it
    r2 = flow_between(o0.depth, o0.instance, k, clip.world_from_camera(0), clip.world_from_camera(0) @ away)
    assert r2.out_of_view[r2.hit].all() and not r2.valid.any()


# --- with Blender ---------------------------------------------------------------------------------------------


def _oracle_flow(clip, t: int, u: int):
    """Independent flow t -> u: cast the centre rays at t (trimesh + Embree, float64 hits), move each hit by its
    object's motion, project with camera u; visible where a ray cast at u from camera u's centre toward the moved
    point hits nothing before it."""
    a = cast(clip.frame(t))
    pts = a.points_world.reshape(-1, 3).copy()
    ids = a.instance.reshape(-1)
    for iid, m in clip.motion(t, u).items():
        sel = ids == iid
        pts[sel] = pts[sel] @ m[:3, :3].T + m[:3, 3]
    mu = clip.world_from_camera(u)
    x = (pts - mu[:3, 3]) @ mu[:3, :3]
    k = clip.scene.camera.K
    h, w = a.depth.shape
    hit = ids > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pu, pv = k[0, 0] * x[:, 0] / x[:, 2] + k[0, 2], k[1, 1] * x[:, 1] / x[:, 2] + k[1, 2]
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    flow = np.stack([pu - jj.ravel(), pv - ii.ravel()], axis=-1)
    inside = hit & (x[:, 2] > 0) & (pu >= -0.5) & (pu < w - 0.5) & (pv >= -0.5) & (pv < h - 0.5)
    origin = np.broadcast_to(mu[:3, 3], pts.shape)
    s, _ = cast_rays(clip.frame(u), origin[inside], pts[inside] - origin[inside])
    visible = np.zeros(len(ids), dtype=bool)
    visible[inside] = s >= 1.0 - 1e-4  # the ray reaches the point (s = 1) before hitting anything else
    return flow.reshape(h, w, 2), visible.reshape(h, w), inside.reshape(h, w), a


@pytest.fixture(scope="module")
def rendered_clips():
    pytest.importorskip("bpy")
    from rgbify.render import render_clip

    out = {}
    for recipe, index in CLIPS.items():
        clip = _clip(recipe, index)
        out[recipe] = (clip, render_clip(clip))
    clip = _clip("tabletop", 4, **FALLING)
    out["falling"] = (clip, render_clip(clip))
    return out


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.parametrize("recipe", [*CLIPS, "falling"])
def test_flow_matches_the_ray_casting_oracle_at_both_times(rendered_clips, recipe):
    clip, frames = rendered_clips[recipe]
    depths, inst = [f.depth for f in frames], [f.instance for f in frames]
    moving_ids = [m.instance_id for m in clip.motions]
    compared_moving = 0
    for t, u in [(0, 1), (1, 2), (1, 0), (2, 1)]:
        ours = clip_flow(clip, depths, inst, t, u)
        flow, visible, inside, o = _oracle_flow(clip, t, u)
        edge = frames[t].edge | frames[u].edge
        same = (o.instance == inst[t]) & ~edge
        agree = ours.valid & visible & same
        assert agree.sum() > 0.5 * same.sum(), (recipe, t, u, agree.sum(), same.sum())
        err = np.linalg.norm(ours.flow[agree] - flow[agree], axis=-1)
        assert err.max() <= 0.01, (recipe, t, u, np.sort(err)[-5:])
        np.testing.assert_array_equal(ours.out_of_view[same], (o.instance > 0)[same] & ~inside[same])
        # the occlusion mask: on non-edge pixels where both see the same surface, ours agrees with the oracle's
        # visibility test almost everywhere (misses only next to depth edges of frame u)
        both = same & inside & ours.hit
        assert (ours.valid[both] == visible[both]).mean() >= 0.97, (recipe, t, u)
        compared_moving += int(np.isin(inst[t][agree], moving_ids).sum())
        assert np.abs(ours.flow[agree]).max() > 0.2  # the camera moved: not a trivial zero flow
    assert compared_moving > 0, f"{recipe}: no moving object's pixels were compared"


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(CLIPS))
def test_static_surfaces_land_on_the_next_frames_depth(rendered_clips, recipe):
    """Depth + poses: a static, flat surface pixel of frame t moved by the camera's motion lands where frame u's
    own rendered depth map shows it at the depth it arrives with (inverse depth is affine across a plane, so
    bilinear interpolation of 1/depth among four pixels of one plane face is exact)."""
    clip, frames = rendered_clips[recipe]
    moving = [m.instance_id for m in clip.motions]
    checked = 0
    for t, u in [(0, 1), (1, 2), (2, 1)]:
        ours = clip_flow(clip, [f.depth for f in frames], [f.instance for f in frames], t, u)
        h, w = frames[t].depth.shape
        ii, jj = np.mgrid[0:h, 0:w]
        pu, pv = jj + ours.flow[..., 0], ii + ours.flow[..., 1]
        ok = ours.valid & ~frames[t].edge & ~np.isin(frames[t].instance, moving)
        u0 = np.clip(np.floor(pu).astype(int), 0, w - 2)
        v0 = np.clip(np.floor(pv).astype(int), 0, h - 2)
        fu, fv = pu - u0, pv - v0
        du, iu, nu = frames[u].depth, frames[u].instance, frames[u].normals
        corners = [(v0, u0), (v0, u0 + 1), (v0 + 1, u0), (v0 + 1, u0 + 1)]
        k = clip.scene.camera.K
        ray = np.stack([(jj - k[0, 2]) / k[0, 0], (ii - k[1, 2]) / k[1, 1], np.ones((h, w))], axis=-1)
        with np.errstate(invalid="ignore"):
            point = ray * du[..., None].astype(np.float64)
            for cv, cu in corners:  # all four on the pixel's object, on one plane of frame u, not an edge
                ok &= (iu[cv, cu] == frames[t].instance) & ~frames[u].edge[cv, cu]
                ok &= np.sum(nu[cv, cu] * nu[v0, u0], axis=-1) > 1 - 1e-7
                off = np.abs(np.sum(nu[v0, u0] * (point[cv, cu] - point[v0, u0]), axis=-1))
                ok &= off <= 1e-5 * du[v0, u0]
            # and the pixel itself lies inside a plane at t (its four neighbours on its plane): a sub-pixel
            # feature (a window frame in a wall) hit by one pixel centre only would land off the plane at u
            dt, nt = frames[t].depth.astype(np.float64), frames[t].normals
            pt = ray * dt[..., None]
            for di, dj in [(-1, 0), (1, 0), (0, -1), (0, 1)]:
                ni, nj = np.clip(ii + di, 0, h - 1), np.clip(jj + dj, 0, w - 1)
                ok &= frames[t].instance[ni, nj] == frames[t].instance
                ok &= np.sum(nt[ni, nj] * nt, axis=-1) > 1 - 1e-7
                ok &= np.abs(np.sum(nt * (pt[ni, nj] - pt), axis=-1)) <= 1e-5 * dt
            ok &= (pu >= 0) & (pu <= w - 1) & (pv >= 0) & (pv <= h - 1)
            inv = [1.0 / du[cv, cu].astype(np.float64) for cv, cu in corners]
            lerp = (1 - fv) * ((1 - fu) * inv[0] + fu * inv[1]) + fv * ((1 - fu) * inv[2] + fu * inv[3])
            rel = np.abs(lerp * ours.depth_at_u - 1.0)
        assert ok.sum() > 20, (recipe, t, u, ok.sum())
        assert rel[ok].max() < 1e-4, (recipe, t, u, np.sort(rel[ok])[-5:])
        checked += int(ok.sum())
    assert checked > 100


@pytest.mark.blender
def test_clip_frames_render_like_single_frames(rendered_clips):
    """A frame of a clip render (scene built once, transforms changed) gives the same ground truth as rendering
    that frame's still spec on its own; instance ids are the scene's in every frame."""
    from rgbify.render import render

    clip, frames = rendered_clips["tabletop"]
    alone = render(clip.frame(2))
    np.testing.assert_array_equal(frames[2].instance, alone.instance)
    np.testing.assert_allclose(frames[2].depth, alone.depth, rtol=1e-5)
    np.testing.assert_allclose(frames[2].normals, alone.normals, atol=1e-4)
    ids = {o.instance_id for o in clip.scene.objects}
    for f in frames:
        assert set(np.unique(f.instance)) - {0} <= ids
    assert not np.array_equal(frames[0].instance, frames[2].instance)  # things moved


@pytest.mark.blender
def test_shutter_blurs_the_rgb_only():
    """A clip with an open shutter (Cycles' motion blur over the keyed camera path) gives blurred RGB (less detail
    across the motion) and the same sharp ground truth as the clip without it."""
    pytest.importorskip("bpy")
    from rgbify.render import render_clip

    config = load_recipe("tabletop", resolution=(48, 36), samples=32, denoise=True)
    renders = {}
    for shutter in (0.0, 1.0):
        cc = load_clip_config(frames=3, trajectory="orbit", orbit_deg_per_s=(300.0, 300.0), shutter=shutter)
        renders[shutter] = render_clip(sample_clip(config, cc, 0, 4))
    for sharp, blurred in zip(renders[0.0], renders[1.0], strict=True):
        np.testing.assert_array_equal(sharp.instance, blurred.instance)
        np.testing.assert_allclose(sharp.depth, blurred.depth, rtol=1e-5)
        detail = [np.abs(np.diff(x.rgb.astype(float), axis=1)).mean() for x in (sharp, blurred)]
        assert detail[1] < 0.92 * detail[0], detail


def test_clip_spec_is_checked():
    clip = _clip("tabletop", 4)
    with pytest.raises(SpecError, match="has 3 poses for 4 frames"):
        dataclasses.replace(clip, cameras=clip.cameras[:2] + clip.cameras[:2])
    bad = dataclasses.replace(clip.motions[0], instance_id=9999)
    with pytest.raises(SpecError, match="not an object of the scene"):
        dataclasses.replace(clip, motions=(bad,))
    with pytest.raises(SpecError, match="not valid JSON"):
        clip_from_json("{")
    with pytest.raises(IndexError):
        clip.frame(3)
    with pytest.raises(RecipeError, match="shutter"):
        ClipConfig(shutter=1.5)


@pytest.mark.blender
def test_a_render_worker_renders_a_clip(rendered_clips):
    """RenderWorker.render_clip: the clip rendered in the worker process (one Blender scene) gives the ground truth
    of the in-process render."""
    from rgbify.render.worker import RenderWorker

    clip, frames = rendered_clips["tabletop"]
    with RenderWorker() as worker:
        got = worker.render_clip(clip, frames=[1, 2])
        assert worker.scenes_rendered == 1
    assert len(got) == 2 and got[0].timings["worker_roundtrip"] > 0
    for mine, theirs in zip(got, frames[1:], strict=True):
        np.testing.assert_array_equal(mine.instance, theirs.instance)
        np.testing.assert_allclose(mine.depth, theirs.depth, rtol=1e-5)
