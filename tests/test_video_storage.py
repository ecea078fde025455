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
from rgbify.scenes.sceneflow import clip_flow


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
