"""Clip datasets through the real build (`rgbify build --clip-frames T`, issue 16; docs/video.md): tiny Blender
renders (16x12, 3 frames, 2 clips), built, killed and resumed, verified (a flipped byte and a broken invariant
caught), previewed, refused where the input is bad."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rgbify.datasets.storage.clips import ClipShardReader, check_clip, clip_checksum
from rgbify.scenes import load_recipe
from rgbify.scenes.clip import clip_to_json, load_clip_config, sample_clip
from tests.test_build_e2e import ROOT, _env, assert_gone, descendants, rgbify_cmd, run

pytest.importorskip("bpy")
pytest.importorskip("rgbify.render.worker")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

CLIPS = [
    "--recipe",
    "tabletop",
    "--clip-frames",
    "3",
    "--resolution",
    "16x12",
    "--samples",
    "1",
    "--count",
    "2",
    "--shard-size",
    "1",
    "--workers",
    "1",
]


def clips(d: Path) -> dict[int, dict]:
    m = json.loads((d / "dataset.json").read_text())
    out = {}
    for e in m["shards"]:
        with ClipShardReader(d / e["file"]) as r:
            for j in range(len(r)):
                out[e["first_index"] + j] = r.clip(j)
    return out


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clips") / "ds"
    run("build", "--out", str(d), *CLIPS, "--quiet")  # with the preview
    return d


def test_a_clip_dataset_is_built_verified_and_previewed(ds):
    m = json.loads((ds / "dataset.json").read_text())
    assert m["complete"] and m["count"] == 2 and m["frames"] == 3 and m["fps"] == 24.0
    assert m["clip"]["frames"] == 3 and m["clip_version"] >= 1
    assert m["fields"]["flow_fwd"] == {"dtype": "float32", "shape": [3, 12, 16, 2]}
    assert [(e["file"], e["samples"]) for e in m["shards"]] == [
        ("shards/shard-00000.h5", 1),
        ("shards/shard-00001.h5", 1),
    ]
    got = clips(ds)
    config = load_recipe("tabletop", resolution=(16, 12), samples=1)
    for i in range(2):  # clip i of the dataset is sample_clip(recipe, clip config, seed, i)
        assert got[i]["clip"] == clip_to_json(sample_clip(config, load_clip_config(frames=3), 0, i))
        assert got[i]["rgb"].shape == (3, 12, 16, 3) and got[i]["valid_fwd"][:2].any()
    p = run("verify", str(ds))
    assert "2 sample(s) checked" in p.stdout and p.stdout.strip().endswith("OK")
    assert (ds / "preview.png").stat().st_size > 0
    from PIL import Image

    with Image.open(ds / "preview.gif") as gif:
        assert gif.n_frames == 3


def test_verify_catches_a_flipped_byte_build_repairs_it_and_invariants(ds, tmp_path):
    d = tmp_path / "d"
    import shutil

    shutil.copytree(ds, d)
    shard = d / "shards" / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    p = run("verify", str(d), check=False)
    assert p.returncode == 1 and "shard-00001.h5: sha256 differs" in p.stdout and "shard-00000" not in p.stdout
    # the same build command repairs it: that shard alone is re-rendered, bit-equal to the original
    p = run("build", "--out", str(d), *CLIPS, "--no-preview")
    assert "shard shards/shard-00001.h5 is corrupt" in p.stderr and "1 rendered now, 1 kept" in p.stdout, p.stderr
    assert run("verify", str(d)).returncode == 0
    assert {i: c["checksum"] for i, c in clips(d).items()} == {i: c["checksum"] for i, c in clips(ds).items()}
    # an invariant the checksum cannot see (a clip written with NaN flow at a valid pixel)
    c = clips(ds)[0]
    assert check_clip(c, 3, 12, 16) == []
    bad = {**c, "flow_fwd": c["flow_fwd"].copy()}
    bad["flow_fwd"][0][bad["valid_fwd"][0]] = np.nan
    bad["valid_bwd"] = c["valid_bwd"].copy()
    bad["valid_bwd"][0, 0, 0] = True
    problems = check_clip(bad, 3, 12, 16)
    assert any("flow_fwd is not finite" in p for p in problems)
    assert any("valid_bwd is true at frame 0" in p for p in problems)
    assert check_clip(c, 4, 12, 16)  # the frame count


def test_kill_and_resume_loses_and_duplicates_no_clip(ds, tmp_path):
    """SIGKILL the whole build once its first clip is finished; the same command then renders only what is
    missing, and the dataset equals the uninterrupted one clip for clip (RGB bit-equal)."""
    d = tmp_path / "killed"
    proc = subprocess.Popen(
        rgbify_cmd("build", "--out", str(d), *CLIPS, "--quiet", "--no-preview"),
        env=_env(),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and not (list(d.glob(".work/*/*.npz")) or list(d.glob("shards/*.h5")))
    ):
        time.sleep(0.02)
    kids = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    assert_gone(kids)
    p = run("build", "--out", str(d), *CLIPS, "--no-preview")
    assert "1 rendered now, 1 kept" in p.stdout, p.stdout
    assert run("verify", str(d)).returncode == 0
    a, b = clips(ds), clips(d)
    assert sorted(b) == [0, 1]
    for i in range(2):
        assert a[i]["checksum"] == b[i]["checksum"] == clip_checksum(b[i])
    assert not (d / ".work").exists()


def test_a_clip_build_refuses_bad_input_and_other_settings(ds, tmp_path):
    for extra, words in (
        (["--clip-frames", "1"], "--clip-frames 1"),
        (["--clip-frames", "0", "--clip", "x.toml"], "--clip x.toml"),
        (["--clip-frames", "3", "--clip", str(tmp_path / "none.toml")], "no such file"),
    ):
        out = tmp_path / "new"
        p = run("build", "--out", str(out), "--count", "1", *extra, check=False)
        assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not out.exists()
    toml = tmp_path / "clip.toml"
    toml.write_text("fps = -3.0\n")
    p = run(
        "build", "--out", str(tmp_path / "new"), "--count", "1", "--clip-frames", "3", "--clip", str(toml), check=False
    )
    assert p.returncode == 2 and "fps" in p.stderr and not (tmp_path / "new").exists(), p.stderr
    # the same folder with other clip settings (or as stills) is another dataset: refused, nothing changed
    before = (ds / "dataset.json").read_text()
    toml.write_text("fps = 30.0\n")
    p = run("build", "--out", str(ds), *CLIPS, "--clip", str(toml), check=False)
    assert p.returncode == 2 and "another config" in p.stderr and "clip" in p.stderr, p.stderr
    stills = [a for a in CLIPS if a not in ("--clip-frames", "3")]
    p = run("build", "--out", str(ds), *stills, check=False)
    assert p.returncode == 2 and "another config" in p.stderr, p.stderr
    assert (ds / "dataset.json").read_text() == before
    # readers of stills refuse a clip dataset in one line
    p = run("export", str(ds), "--out", str(tmp_path / "x"), check=False)
    assert p.returncode == 2 and "dataset of clips" in p.stderr


# --- torch items of a clip dataset (rgbify.datasets.loading.clip_dataset) ------------------------------------------


def _item(ds, task, hflip, item=0, **kw):
    from rgbify.datasets.loading.clip_dataset import ClipTaskDataset

    d = ClipTaskDataset(
        ds, tasks=(task,), frames=2, split="all", hflip=hflip, crop_scale=(1.0, 1.0), augment=True, **kw
    )
    try:
        return d.get(item, 0)
    finally:
        d.close()


def test_flow_pair_items_decode_to_the_flow_and_a_flip_negates_u(ds):
    from rgbify.encode import decode_target

    a, b = _item(ds, "flow", 0.0), _item(ds, "flow", 1.0)
    assert a["task"] == "flow" and a["image"].shape == (2, 3, 12, 16) and a["target"].shape == (1, 3, 12, 16)
    assert not a["flipped"] and b["flipped"]
    fa, va = a["flow"].numpy(), a["valid"].numpy()
    assert va.sum() > 50
    decoded = decode_target(a["target"][0].permute(1, 2, 0).numpy(), json.loads(a["decode"]))
    assert np.abs(decoded[va] - fa[va]).max() < 0.05  # the flow codec's precision at these speeds
    fb, vb = b["flow"].numpy(), b["valid"].numpy()
    assert np.array_equal(vb, va[:, ::-1])
    assert np.array_equal(fb[..., 0], -fa[:, ::-1, 0]) and np.array_equal(fb[..., 1], fa[:, ::-1, 1])
    assert np.array_equal(b["image"].numpy(), a["image"].numpy()[..., ::-1])  # both frames mirrored


def test_clip_items_share_one_codec_and_prompt_and_mirror_normals(ds):
    from rgbify.encode import decode_target

    a, b = _item(ds, "normals", 0.0, item=1), _item(ds, "normals", 1.0, item=1)
    assert a["target"].shape == (2, 3, 12, 16) and len(a["frame_prompts"]) == 2
    assert a["frame_prompts"][1].startswith("Frame 2 of 2.") and "2 frames" in a["prompt"]
    params = json.loads(a["decode"])
    na = np.stack([decode_target(t.permute(1, 2, 0).numpy(), params) for t in a["target"]])
    nb = np.stack([decode_target(t.permute(1, 2, 0).numpy(), json.loads(b["decode"])) for t in b["target"]])
    hit = np.linalg.norm(na, axis=-1) > 0.5
    assert hit.sum() > 100
    mirrored = nb[:, :, ::-1]
    assert np.abs(mirrored[..., 0][hit] + na[..., 0][hit]).max() < 0.02  # x negated
    assert np.abs(mirrored[..., 1:][hit] - na[..., 1:][hit]).max() < 0.02
    # semantic: one colour table for both frames (a class keeps its colour through the clip)
    s = _item(ds, "semantic", 0.0)
    labels = [decode_target(t.permute(1, 2, 0).numpy(), json.loads(s["decode"])) for t in s["target"]]
    stored = clips(ds)[s["clip_index"]]["semantic"][s["frames"].numpy()]
    for t in range(2):
        asked = np.isin(stored[t], [c for c in np.unique(labels[t]) if c > 0])
        assert np.array_equal(np.asarray(labels[t])[asked], stored[t][asked])


def test_clip_dataset_split_tasks_and_refusals(ds, tmp_path):
    from rgbify.datasets.loading.clip_dataset import ClipTaskDataset
    from rgbify.encode import CLIP_TASKS, TASKS

    assert CLIP_TASKS == (*TASKS, "flow") and "flow" not in TASKS  # the stills' tasks stay as they are
    parts = {s: ClipTaskDataset(ds, frames=3, split=s, val_fraction=0.5) for s in ("train", "val", "all")}
    idx = {s: sorted({d.get(i, 0)["clip_index"] for i in range(len(d))}) for s, d in parts.items()}
    assert sorted(idx["train"] + idx["val"]) == idx["all"] == [0, 1]
    assert len(parts["all"]) == 2  # one window of 3 frames per clip
    for d in parts.values():
        d.close()
    with pytest.raises(ValueError, match="span 5 frames"):
        ClipTaskDataset(ds, frames=3, stride=2)
    with pytest.raises(ValueError, match="tasks"):
        ClipTaskDataset(ds, tasks=("depth", "edges"))


# --- rgbify eval --data CLIPS --predictions DIR (rgbify.train.video_eval) -------------------------------------------


def _predictions(ds: Path, out: Path, flow_shift: float = 0.0, depth_scales=(1.0, 1.0, 1.0)) -> Path:
    """Hand-made predictions: the ground truth's flow (+ ``flow_shift`` px on u) as .flo and npy, its depth (frame t
    times ``depth_scales[t]``)."""
    from rgbify.encode.flowio import write_flow

    for i, c in clips(ds).items():
        folder = out / f"{i:09d}"
        (folder / "depth").mkdir(parents=True)
        for t in range(2):
            flow = c["flow_fwd"][t] + np.array([flow_shift, 0.0], np.float32)
            write_flow(folder / f"{t:06d}{'.flo' if i == 0 else '.npy'}", flow)
        for t in range(3):
            np.save(folder / "depth" / f"{t:06d}.npy", np.nan_to_num(c["depth"][t], posinf=0.0) * depth_scales[t])
    return out


def test_eval_scores_flow_and_video_depth_of_saved_predictions(ds, tmp_path):
    def score(pred: Path, *extra: str) -> dict:
        out = tmp_path / f"{pred.name}.json"
        run("eval", "--data", str(ds), "--predictions", str(pred), "--split", "all", "--out", str(out), *extra)
        return json.loads(out.read_text())

    perfect = score(_predictions(ds, tmp_path / "perfect"))
    assert perfect["flow"]["epe"] == 0 and perfect["flow"]["fl_all"] == 0 and perfect["flow"]["pairs"] == 4
    assert perfect["flow"]["pixels"] > 100
    assert perfect["depth_temporal"]["temporal_abs_rel"] < 1e-9 and perfect["depth_temporal"]["temporal_log"] < 1e-9
    assert perfect["depth"]["abs_rel"] < 1e-9 and perfect["depth"]["delta1"] == 1.0
    shifted = score(_predictions(ds, tmp_path / "shifted", flow_shift=5.0))
    assert abs(shifted["flow"]["epe"] - 5.0) < 1e-4 and shifted["flow"]["fl_all"] == 1.0  # 5 px > 3 px and > 5 %
    flicker = score(_predictions(ds, tmp_path / "flicker", depth_scales=(1.0, 1.1, 1.0)))
    assert abs(flicker["depth_temporal"]["temporal_log"] - np.log(1.1)) < 1e-6
    scaled = _predictions(ds, tmp_path / "scaled", depth_scales=(2.0, 2.0, 2.0))
    assert score(scaled)["depth_temporal"]["temporal_log"] < 1e-9  # a constant scale: consistent, log-wise
    assert score(scaled, "--alignment", "depth")["depth_temporal"]["temporal_abs_rel"] < 1e-6
    # the ground truth exported by `rgbify export --format flow` (KITTI PNG, 1/64 px steps) scores as perfect
    exported = tmp_path / "exported"
    assert "4 flow files" in run("export", str(ds), "--format", "flow", "--out", str(exported)).stdout
    kitti = score(exported)["flow"]
    assert kitti["epe"] < 1 / 64 and kitti["fl_all"] == 0 and kitti["pixels"] == perfect["flow"]["pixels"]
    # a missing frame file: one line, exit 2
    (tmp_path / "perfect" / "000000001" / "000001.npy").unlink()
    p = run(
        "eval",
        "--data",
        str(ds),
        "--predictions",
        str(tmp_path / "perfect"),
        "--out",
        str(tmp_path / "x.json"),
        "--split",
        "all",
        check=False,
    )
    assert p.returncode == 2 and "000000001: no flow file for frame 1" in p.stderr, p.stderr
    assert not (tmp_path / "x.json").exists()


def test_clip_items_batch_through_the_thread_loader(ds):
    """One kind of item per loader (clip items of T frames, or flow pairs): batches stack with the stills' collate."""
    from rgbify.datasets import ThreadLoader, collate
    from rgbify.datasets.loading.clip_dataset import ClipTaskDataset

    for tasks, target in ((("depth", "semantic"), (2, 3, 6, 8)), (("flow",), (1, 3, 6, 8))):
        d = ClipTaskDataset(ds, tasks=tasks, frames=2, split="all", resolution=(8, 6), augment=True)
        batches = list(ThreadLoader(d, batch_size=2, threads=2, collate=collate))
        d.close()
        assert [b["image"].shape for b in batches] == [(2, 2, 3, 6, 8)] * 2
        assert all(b["target"].shape == (2, *target) and len(b["prompt"]) == 2 for b in batches)
        if tasks == ("flow",):
            assert batches[0]["flow"].shape == (2, 6, 8, 2) and batches[0]["valid"].dtype == torch.bool
