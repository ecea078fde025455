"""The tiny preset's autoencoder: the shipped weights are what their provenance says and reconstruct targets;
`rgbify train-vae` is deterministic, writes a loadable diffusers folder and a command that repeats it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dataset_fakes import fake_dataset  # noqa: E402

from rgbify.cli import main as rgbify_main  # noqa: E402
from rgbify.encode import decode_depth, decode_normals, encode_depth, encode_normals  # noqa: E402
from rgbify.errors import UserError  # noqa: E402
from rgbify.train.config import make_config, make_vae_config  # noqa: E402
from rgbify.train.model import WEIGHTS, build_model, load_tiny_vae, tiny_vae_dir, vae_scale_down  # noqa: E402
from rgbify.train.vae import command_line, psnr, reconstruction_report, sha256_file, train_vae  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _round_trip(vae, rgb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    return ((y[0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()


def test_shipped_vae_matches_its_provenance_and_reconstructs_targets():
    folder = tiny_vae_dir()
    record = json.loads((folder / "provenance.json").read_text())
    assert record["sha256"][WEIGHTS] == sha256_file(folder / WEIGHTS)
    assert (folder / WEIGHTS).stat().st_size < 4_000_000
    assert record["command"].startswith("rgbify train-vae ") and record["datasets"]
    vae = load_tiny_vae().eval()
    assert vae_scale_down(vae) == 4 and vae.config.latent_channels == 4
    assert vae.config.scaling_factor == record["scaling_factor"]
    cfg = make_vae_config(_flags(record["command"]))  # the recorded command parses back to the recorded config
    assert cfg.to_dict() == record["config"]
    # a smooth room-like depth map (a floor and a back wall) and its normals survive the round trip
    v, u = np.mgrid[0:64, 0:64] / 63.0
    depth = np.where(v > 0.5, 1.5 / np.maximum(v - 0.45, 0.05), 4.0 + u).astype(np.float32)
    depth = np.minimum(depth, 4.0 + u).astype(np.float32)
    back = decode_depth(_round_trip(vae, encode_depth(depth)))
    assert np.median(np.abs(back - depth) / depth) < 0.05
    normals = np.zeros((64, 64, 3), np.float32)
    normals[v > 0.5] = (0.0, -1.0, 0.0)
    normals[v <= 0.5] = (0.0, 0.0, -1.0)
    n_back = decode_normals(_round_trip(vae, encode_normals(normals)))
    angle = np.degrees(np.arccos(np.clip((n_back * normals).sum(-1), -1, 1)))
    assert np.median(angle) < 5


SHEET = Path(__file__).resolve().parents[1] / "docs" / "img" / "scenes_indoor.png"
"""16 indoor renders and their inferno depth maps, 192x144 tiles (docs/scenes.md), not in the VAE's training set."""


def _sheet_tiles() -> np.ndarray:
    """The sheet's 32 pictures (16 renders, 16 depth maps), centre-cropped to 144 px and resized to 64 px."""
    from PIL import Image

    sheet = np.asarray(Image.open(SHEET).convert("RGB"))
    tiles = [sheet[r * 160 : r * 160 + 144, c * 388 + off + 24 : c * 388 + off + 168]
             for r in range(4) for c in range(4) for off in (0, 192)]
    return np.stack([np.asarray(Image.fromarray(t).resize((64, 64), Image.BICUBIC)) for t in tiles])


def test_shipped_vae_reconstructs_renders_far_better_than_a_random_one():
    from diffusers import AutoencoderKL

    from rgbify.train.model import vae_config

    tiles = _sheet_tiles()
    trained = [psnr(t, _round_trip(load_tiny_vae().eval(), t)) for t in tiles]
    torch.manual_seed(0)
    random_vae = AutoencoderKL(**vae_config()).eval()  # the same architecture, untrained
    random = [psnr(t, _round_trip(random_vae, t)) for t in tiles]
    # measured: trained 28.1 dB on the renders, 30.0 dB on the depth maps (worst tile 25.6); random about 10 dB
    assert np.mean(trained) > 25 and min(trained) > 22, trained
    assert np.mean(random) < 15 and np.mean(trained) - np.mean(random) > 12, (trained, random)


def _flags(command: str) -> dict:
    """`rgbify train-vae --a-b X ...` -> {"a_b": "X"} with the config's types (via the CLI's own parser)."""
    import argparse

    from rgbify.config import add_arguments, values_from
    from rgbify.train.config import VaeConfig

    p = argparse.ArgumentParser()
    add_arguments(p, VaeConfig)
    return values_from(p.parse_args(shlex.split(command)[2:]), VaeConfig)


def test_tiny_preset_uses_the_shipped_vae_and_tiny_random_keeps_a_random_one():
    tiny = build_model(make_config({"resolution": 64}))
    shipped = load_tiny_vae()
    assert all(torch.equal(a, b) for a, b in zip(tiny.vae.state_dict().values(), shipped.state_dict().values(),
                                                  strict=True))
    assert tiny.unet.config.sample_size == 16
    rnd = build_model(make_config({"resolution": 64, "base_model": "tiny-random"}))
    assert vae_scale_down(rnd.vae) == 8 and rnd.vae.config.scaling_factor == 5.0 and rnd.unet.config.sample_size == 8


def test_train_vae_is_deterministic_and_writes_a_loadable_folder(tmp_path):
    data = fake_dataset(tmp_path, n=12, shard_size=6, h=24, w=24)
    base = {"data": (str(data),), "channels": (8, 16), "resolution": 16, "patch": 8, "batch_size": 4, "steps": 3,
            "report_items": 0, "seed": 3}
    records = [train_vae(make_vae_config({**base, "out": str(tmp_path / name)}), log=lambda *_: None)
               for name in ("a", "b")]
    assert records[0]["sha256"] == records[1]["sha256"]  # same seed, same bytes
    other = train_vae(make_vae_config({**base, "seed": 4, "out": str(tmp_path / "c")}), log=lambda *_: None)
    assert other["sha256"] != records[0]["sha256"]
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tmp_path / "a" / "vae")
    assert vae.config.scaling_factor == records[0]["scaling_factor"] > 0
    saved = json.loads((tmp_path / "a" / "vae" / "provenance.json").read_text())
    assert saved["sha256"] == records[0]["sha256"] and saved["datasets"][0]["count"] == 12
    assert make_vae_config(_flags(command_line(make_vae_config({**base, "out": "x"})))) == make_vae_config(
        {**base, "out": "x"})
    rows = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 3] and all(np.isfinite(r["loss"]) for r in rows)
    report = reconstruction_report(vae.eval(), data, kinds=("image", "depth/cubewalk", "depth/affine", "normals",
                                                             "semantic"), resolution=16, max_items=3, split="all")
    assert report["image"]["images"] == 3 and np.isfinite(report["image"]["psnr_db"])
    assert "depth" in report["depth/cubewalk"]["vae"] and "depth" not in report["depth/affine"]["vae"]
    assert report["depth/cubewalk"]["codec"]["depth"]["abs_rel"] < 0.01  # the clean target: the codec's floor
    assert report["semantic"]["codec"]["semantic"]["miou"] == 1.0
    assert psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8)) == float("inf")


def test_train_vae_command_line_and_bad_input(tmp_path, capsys):
    data = fake_dataset(tmp_path, n=8, shard_size=8, h=16, w=16)
    args = ["train-vae", "--data", str(data), "--out", str(tmp_path / "run"), "--channels", "8,16", "--resolution",
            "16", "--patch", "0", "--batch-size", "2", "--steps", "1", "--report-items", "0"]
    assert rgbify_main(args) == 0
    assert "scaling_factor" in capsys.readouterr().out
    assert (tmp_path / "run" / "vae" / WEIGHTS).is_file()
    assert rgbify_main(["train-vae", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no dataset.json" in capsys.readouterr().err
    with pytest.raises(UserError, match="--patch 10 must be 0 or a multiple of 4"):
        make_vae_config({"patch": 10, "channels": (8, 16, 32)})
    with pytest.raises(UserError, match="--channels 12,16"):
        make_vae_config({"channels": (12, 16)})
    with pytest.raises(UserError, match=r"--batch-size 9 exceeds the \d training samples"):
        train_vae(make_vae_config({"data": (str(data),), "out": str(tmp_path / "y"), "channels": (8, 16),
                                   "resolution": 16, "patch": 0, "batch_size": 9, "steps": 1}))
