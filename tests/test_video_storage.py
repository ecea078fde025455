"""Clip shards (rgbify.datasets.storage.clips): one chunk per frame, clip metadata, flow fields, checksums."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from oracles.raycast import cast

from rgbify.datasets.storage.clips import (
    FRAME_FIELDS,
    ClipShardReader,
    clip_sample,
    write_clip_shard,
)
from rgbify.datasets.storage.shards import ShardError
from rgbify.scenes import load_recipe
from rgbify.scenes.clip import load_clip_config, sample_clip
from rgbify.scenes.sceneflow import clip_flow, flow_between


def _frames(clip, rng):
    """Per-frame ground truth from the ray-casting oracle (no Blender), with a made-up RGB."""
    out = []
    for t in range(clip.frames):
        o = cast(clip.frame(t))
        h, w = o.depth.shape
        out.append(
            SimpleNamespace(
                rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                depth=o.depth.astype(np.float32),
                normals=o.normals.astype(np.float32),
                instance=o.instance,
                semantic=(o.instance > 0).astype(np.int32),
                edge=np.zeros((h, w), bool),
                K=clip.scene.camera.K,
                world_from_camera=clip.world_from_camera(t),
            )
        )
    return out


@pytest.fixture(scope="module")
def clips():
    config = load_recipe("tabletop", resolution=(16, 12), samples=1)
    rng = np.random.default_rng(0)
    out = []
    for index in (4, 5):
        clip = sample_clip(config, load_clip_config(frames=3), 0, index)
        out.append((clip, _frames(clip, rng)))
    return out


def test_clip_shard_round_trip_one_chunk_per_frame(tmp_path, clips):
    samples = [clip_sample(c, f, index=4 + k, seed=0) for k, (c, f) in enumerate(clips)]
    path = tmp_path / "clips-00000.h5"
    digest = write_clip_shard(path, samples, first_index=4, count=2, config_hash="abc", classes=("a", "b"), fps=24.0)
    assert len(digest) == 64 and path.exists() and not list(tmp_path.glob("*.tmp*"))
    with h5py.File(path, "r") as f:
        assert f.attrs["frames"] == 3 and f.attrs["samples"] == 2 and f.attrs["width"] == 16
        for name, (_, ch) in FRAME_FIELDS.items():
            assert f[name].chunks == ((1, 1, 12, 16, ch) if ch else (1, 1, 12, 16)), name
            assert f[name].attrs["description"] and f[name].attrs["units"]
        assert list(f.attrs["classes"]) == ["a", "b"]
    with ClipShardReader(path) as r:
        assert len(r) == 2 and r.frames == 3 and r.verify() == []
        for k, (clip, frames) in enumerate(clips):
            assert r.clip_spec(k) == clip
            for t in range(3):
                got = r.frame(k, t)
                np.testing.assert_array_equal(got["rgb"], frames[t].rgb)
                np.testing.assert_array_equal(got["depth"], frames[t].depth)
                np.testing.assert_array_equal(got["instance"], frames[t].instance)
                np.testing.assert_array_equal(got["world_from_camera"], frames[t].world_from_camera)
                depths, ids = [x.depth for x in frames], [x.instance for x in frames]
                if t + 1 < 3:
                    fwd = clip_flow(clip, depths, ids, t, t + 1)
                    np.testing.assert_array_equal(got["flow_fwd"], fwd.flow)
                    np.testing.assert_array_equal(got["valid_fwd"], fwd.valid)
                    np.testing.assert_array_equal(got["scene_flow_fwd"], fwd.scene_flow)
                    assert got["valid_fwd"].any()
                else:
                    assert not got["valid_fwd"].any()  # no frame after the last
                if t == 0:
                    assert not got["valid_bwd"].any()
                else:
                    bwd = clip_flow(clip, depths, ids, t, t - 1)
                    np.testing.assert_array_equal(got["flow_bwd"], bwd.flow)
                    np.testing.assert_array_equal(got["occluded_bwd"], bwd.occluded)
    with h5py.File(path, "r+") as f:  # a changed value (rewritten through HDF5: its Fletcher-32 stays right)
        f["flow_fwd"][1, 0, 3, 4, 0] += 1.0
    with ClipShardReader(path) as r:
        assert r.verify() == [f"{path}: clip 5 checksum mismatch"]


def test_clip_shard_refuses_bad_input(tmp_path, clips):
    clip, frames = clips[0]
    s = clip_sample(clip, frames, index=0, seed=0)
    with pytest.raises(ShardError, match="depth has shape"):
        write_clip_shard(
            tmp_path / "a.h5",
            [{**s, "depth": s["depth"][:, :5]}],
            first_index=0,
            count=1,
            config_hash="x",
            classes=(),
            fps=24.0,
        )
    with pytest.raises(ShardError, match="at position 0, expected 0"):
        write_clip_shard(
            tmp_path / "b.h5", [{**s, "index": 1}], first_index=0, count=1, config_hash="x", classes=(), fps=24.0
        )
    with pytest.raises(ShardError, match="rendered frames"):
        clip_sample(clip, frames[:2], index=0, seed=0)
    assert not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "c.h5").write_bytes(b"not hdf5")
    with pytest.raises(ShardError, match="not a readable HDF5"):
        ClipShardReader(tmp_path / "c.h5")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.attrs["rgbify_format"] = "rgbify-shard"
    with pytest.raises(ShardError, match="not an rgbify clip shard"):
        ClipShardReader(tmp_path / "d.h5")


@pytest.fixture(scope="module")
def clip_shard(tmp_path_factory, clips):
    path = tmp_path_factory.mktemp("clipshard") / "clips-00000.h5"
    samples = [clip_sample(c, f, index=k, seed=0) for k, (c, f) in enumerate(clips)]
    write_clip_shard(path, samples, first_index=0, count=2, config_hash="x", classes=(), fps=24.0)
    return path


def test_clip_items_without_augmentation_are_the_stored_frames(clip_shard, clips):
    from rgbify.datasets.loading.clip_items import ClipItems

    items = ClipItems([clip_shard], kind="clip", frames=2, stride=1)
    assert len(items) == 2 * 2  # two clips of 3 frames: windows starting at frames 0 and 1
    it = items[3]
    clip, frames = clips[1]
    assert list(it["frames"]) == [1, 2] and it["clip"] == 1 and not it["flipped"]
    np.testing.assert_array_equal(it["rgb"][0], frames[1].rgb)
    np.testing.assert_array_equal(it["depth"][1], frames[2].depth)
    fwd = clip_flow(clip, [x.depth for x in frames], [x.instance for x in frames], 1, 2)
    np.testing.assert_array_equal(it["flow_fwd"][0], fwd.flow)
    assert not it["valid_fwd"][1].any()  # frame 2's forward flow leaves the item
    strided = ClipItems([clip_shard], kind="clip", frames=2, stride=2)
    assert len(strided) == 2 and "flow_fwd" not in strided[0]
    pairs = ClipItems([clip_shard], kind="pair")
    assert len(pairs) == 4 and pairs[1]["rgb"].shape == (2, 12, 16, 3)


@pytest.mark.parametrize("flip", [False, True])
def test_clip_item_views_keep_flow_normals_and_K_consistent(clip_shard, flip):
    """A cropped (and mirrored) pair: its flow is the flow that geometry gives for its own depth, ids and K, with
    the camera mirrored when flipped; the normals face its camera."""
    from rgbify.datasets.loading.clip_items import ClipItems

    items = ClipItems(
        [clip_shard], kind="pair", crop_scale=(0.75, 0.75), size=(12, 9), flip_prob=1.0 if flip else 0.0, seed=3
    )
    for i in range(len(items)):
        it = items[i]
        assert it["flipped"] == flip and it["rgb"].shape == (2, 9, 12, 3)
        mirror = np.diag([-1.0, 1.0, 1.0, 1.0]) if flip else np.eye(4)
        r, j, t = items.items[i]
        clip = items.readers[r].clip_spec(j)
        poses = [it["world_from_camera"][k] @ mirror for k in (0, 1)]
        ours = flow_between(
            it["depth"][0], it["instance"][0], it["K"][0], poses[0], poses[1], clip.motion(t, t + 1), it["depth"][1]
        )
        np.testing.assert_allclose(it["flow_fwd"][0][ours.hit], ours.flow[ours.hit], atol=1e-3)
        hit0 = ours.hit
        mine_out = ~it["valid_fwd"][0] & ~it["occluded_fwd"][0]  # not valid, not occluded: out of the item's view
        np.testing.assert_array_equal(mine_out[hit0], ours.out_of_view[hit0])
        assert (it["valid_fwd"][0][hit0] == ours.valid[hit0]).mean() >= 0.95
        np.testing.assert_allclose(it["scene_flow_fwd"][0][ours.hit], ours.scene_flow[ours.hit], atol=1e-4)
        hit = it["depth"][0] < np.inf
        k = it["K"][0]
        h, w = hit.shape
        ii, jj = np.mgrid[0:h, 0:w]
        rays = np.stack([(jj - k[0, 2]) / k[0, 0], (ii - k[1, 2]) / k[1, 1], np.ones((h, w))], -1)
        assert np.all(np.sum(it["normals"][0] * rays, -1)[hit] < 0)  # still toward the (mirrored) camera


def test_clip_preview_writes_a_filmstrip_and_a_gif(tmp_path, clip_shard):
    from PIL import Image

    from rgbify.datasets.preview import CLIP_ROWS, PreviewError, clip_preview

    png, gif = clip_preview(clip_shard, 1, tmp_path / "strip.png", tmp_path / "clip.gif", tile_width=48)
    with Image.open(png) as im:
        w, h = im.size
        assert w > 3 * 48 and h > len(CLIP_ROWS) * 36  # three frames across, four views down (48x36 tiles)
    with Image.open(gif) as im:
        assert (
            im.n_frames == 3 and abs(im.info["duration"] - 1000 / 24) <= 10
        )  # GIF keeps centiseconds and im.size == (4 * 48 + 3 * 2, 36)
        im.seek(1)
        frame = np.asarray(im.convert("RGB"))
    flow_tile = frame[:, 2 * 50 : 2 * 50 + 48]  # the flow view of frame 1: not all black, not all white
    assert flow_tile.max() > 0 and flow_tile.min() < 255
    with pytest.raises(PreviewError, match="clip 5 is not in this shard"):
        clip_preview(clip_shard, 5, tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif", "strip.png"]


@pytest.mark.parametrize("suffix", [".png", ".flo"])
def test_clip_flow_exports_to_standard_files(tmp_path, clip_shard, suffix):
    from rgbify.datasets.export import export_clip_flow
    from rgbify.encode.flowio import read_flow

    out = tmp_path / "flow"
    assert export_clip_flow(clip_shard, out, suffix) == 2 * 2  # two clips, frames 0 -> 1 and 1 -> 2
    with ClipShardReader(clip_shard) as r:
        stored = r.frame(1, 1, ["flow_fwd", "valid_fwd"])
    flow, valid = read_flow(out / "000000001" / f"000001{suffix}")
    np.testing.assert_array_equal(valid, stored["valid_fwd"])
    np.testing.assert_allclose(flow[valid], stored["flow_fwd"][valid], atol=1 / 64 if suffix == ".png" else 0)
    assert sorted(p.name for p in (out / "000000000").iterdir()) == [f"000000{suffix}", f"000001{suffix}"]
    assert export_clip_flow(clip_shard, out, suffix, "bwd") == 4  # an earlier export is replaced
    assert (out / "000000000" / f"000002{suffix}").exists() and not (out / "000000000" / f"000000{suffix}").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    from rgbify.errors import UserError

    with pytest.raises(UserError):
        export_clip_flow(clip_shard, tmp_path / "other")
    with pytest.raises(UserError, match="flow file type"):
        export_clip_flow(clip_shard, tmp_path / "x", ".jpg")
