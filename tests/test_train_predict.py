"""predict / eval plumbing on a tiny run with a stand-in codec (the real codecs are exercised end to end in
tests/test_train_e2e.py): files written, shapes and dtypes, metrics present, CLI exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from test_train import MemoryTaskDataset, cfg_for  # noqa: E402

import rgbify.encode  # noqa: E402
import rgbify.encode.tasks  # noqa: E402
from rgbify.cli import main as rgbify_main  # noqa: E402
from rgbify.errors import UserError  # noqa: E402
from rgbify.train.evaluate import evaluate  # noqa: E402
from rgbify.train.predict import eval_depth_folder, load_run, predict_files, task_prompt  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fake_make_task_target(task, gt, rng, **options):
    names = ",".join(gt.get("class_names", []))
    return np.zeros((*gt["depth"].shape, 3), np.uint8), f"{task} please {names}".strip(), {"task": task}


def _fake_task_prompt(task, rng, classes=(), instances=8, **options):
    return f"{task} please {','.join(classes)}".strip(), {"task": task}


def _fake_decode_target(rgb, params):
    rgb = np.asarray(rgb, np.float32)
    task = params["task"]
    if task == "depth":
        return (1.0 + 4.0 * rgb[..., 0] / 255.0).astype(np.float32)
    if task == "normals":
        n = rgb / 127.5 - 1.0
        n[..., 2] = -np.abs(n[..., 2]) - 0.1
        return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)
    return (rgb[..., 0] > 127).astype(np.int32)


@pytest.fixture
def fake_codec(monkeypatch):
    monkeypatch.setattr(rgbify.encode, "make_task_target", _fake_make_task_target, raising=False)
    monkeypatch.setattr(rgbify.encode.tasks, "task_prompt", _fake_task_prompt)
    monkeypatch.setattr(rgbify.encode, "decode_target", _fake_decode_target, raising=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = cfg_for(tmp, "instruct", steps=1, inference_steps=2)
    train(cfg, MemoryTaskDataset())
    return cfg.out


def _write_images(folder, n=2, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = (np.random.default_rng(i).random((size[1], size[0], 3)) * 255).astype(np.uint8)
        p = folder / f"img{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    return paths


def test_task_prompt_checks_classes(fake_codec):
    assert task_prompt("semantic", ["chair", "table"])[0] == "semantic please chair,table"
    with pytest.raises(UserError, match="--classes"):
        task_prompt("semantic")
    with pytest.raises(UserError, match="one class"):
        task_prompt("instance", ["chair", "table"])


@pytest.mark.parametrize("task", ["depth", "normals", "semantic"])
def test_predict_files(tmp_path, tiny_run, fake_codec, task):
    run = load_run(tiny_run, "cpu")
    images = _write_images(tmp_path / "in")
    predict_files(run, task, images, tmp_path / "out", classes=["chair"] if task == "semantic" else None)
    value = np.load(tmp_path / "out" / f"img0.{task}.npy")
    assert value.shape[:2] == (30, 40)  # back at the input's size
    assert {"depth": np.float32, "normals": np.float32, "semantic": np.int32}[task] == value.dtype
    raw = np.asarray(Image.open(tmp_path / "out" / f"img0.{task}.rgb.png"))
    assert raw.shape == (48, 64, 3)  # 40 x 30 at the run's 64 px, aspect ratio kept (not squashed to 64 x 64)
    assert np.asarray(Image.open(tmp_path / "out" / f"img1.{task}.color.png")).shape == (30, 40, 3)
    if task == "normals":
        assert np.allclose(np.linalg.norm(value, axis=-1), 1, atol=1e-4)


def test_evaluate_and_depth_folder(tmp_path, tiny_run, fake_codec):
    run = load_run(tiny_run, "cpu")
    grid: list = []
    metrics = evaluate(run.components, run.cfg, MemoryTaskDataset(), grid=grid, steps=1)
    assert set(metrics) == {"depth", "depth_affine", "normals"} and np.isfinite(metrics["depth"]["abs_rel"])
    assert 0 <= metrics["normals"]["a30"] <= 100 and len(grid) == 4
    images = _write_images(tmp_path / "imgs", n=2)
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    Image.fromarray(np.full((30, 40), 2500, np.uint16)).save(gt_dir / "img0.png")  # 2.5 m as millimetres
    np.save(gt_dir / "img1.npy", np.full((30, 40), 3.0, np.float32))
    with pytest.raises(UserError, match="16-bit PNG of unknown scale; give --depth-scale"):
        eval_depth_folder(run, str(tmp_path / "imgs"), str(gt_dir))  # millimetres? KITTI's x256? never guessed
    m = eval_depth_folder(run, str(tmp_path / "imgs"), str(gt_dir), depth_scale=1000)
    assert m["depth"]["images"] == 2 and len(images) == 2
    assert np.isfinite(m["depth"]["abs_rel"]) and np.isfinite(m["depth_affine"]["abs_rel"])
    pred = 1.0 + 4.0 * np.asarray(Image.open(tmp_path / "imgs" / "img0.png"))[..., 0] / 255.0  # the fake decode
    assert m["depth"]["nonfinite_pixels"] == 0 and pred.shape == (30, 40)


def test_cli_predict_and_eval(tmp_path, tiny_run, fake_codec, capsys):
    images = _write_images(tmp_path / "imgs", n=1)
    assert rgbify_main(["predict", "--run", tiny_run, "--task", "depth", *images, "--out", str(tmp_path / "p"),
                        "--steps", "1", "--device", "cpu"]) == 0
    assert (tmp_path / "p" / "img0.depth.npy").exists()
    gt = tmp_path / "gt"
    gt.mkdir()
    np.save(gt / "img0.npy", np.full((30, 40), 2.0, np.float32))
    out = tmp_path / "e" / "m.json"
    assert rgbify_main(["eval", "--run", tiny_run, "--images", str(tmp_path / "imgs"), "--depth-gt", str(gt),
                        "--out", str(out), "--steps", "1", "--device", "cpu"]) == 0
    assert "abs_rel" in json.loads(out.read_text())["depth"]
    assert "| abs_rel |" in out.with_suffix(".md").read_text()
    # bad input: one line, exit 2
    assert rgbify_main(["predict", "--run", str(tmp_path / "nope"), "--task", "depth", *images, "--out", "x"]) == 2
    assert rgbify_main(["eval", "--run", tiny_run, "--images", str(tmp_path / "imgs")]) == 2
    assert "error" in capsys.readouterr().err


def test_predict_ensemble(tmp_path, tiny_run, capsys):
    """--ensemble N with the real codecs: N draws, ensembled (depth: median in metres, or Marigold's affine
    ensemble in [0, 1]; normals: the member closest to the mean); labels refuse it."""
    images = _write_images(tmp_path / "imgs", n=1, size=(50, 20))
    for task, extra in (("depth", []), ("depth", ["--ensemble-invariance", "affine"]), ("normals", [])):
        out = tmp_path / f"p-{task}-{len(extra)}"
        assert rgbify_main(["predict", "--run", tiny_run, "--task", task, *images, "--out", str(out), "--steps", "1",
                            "--device", "cpu", "--ensemble", "3", *extra]) == 0
        value = np.load(out / f"img0.{task}.npy")
        assert value.shape[:2] == (20, 50) and json.loads((out / "predict.json").read_text())["ensemble"] == 3
        if extra:
            assert 0 <= np.nanmin(value) < np.nanmax(value) <= 1 + 1e-6  # relative depth, resized back
    assert rgbify_main(["predict", "--run", tiny_run, "--task", "semantic", "--classes", "chair", *images,
                        "--out", str(tmp_path / "s"), "--ensemble", "2", "--device", "cpu"]) == 2
    assert "not ensembled" in capsys.readouterr().err


def test_validation_during_training_logs_metrics_and_grids(tmp_path, fake_codec):
    cfg = cfg_for(tmp_path, "lotus", steps=2, eval_every=1, eval_samples=2)
    result = train(cfg, MemoryTaskDataset(), val_data=MemoryTaskDataset(n=2))
    rows = [json.loads(x) for x in (tmp_path / "run-lotus" / "val.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "depth" in rows[-1]["metrics"]
    assert result["metrics"] == rows[-1]["metrics"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run-lotus" / "logs")).Reload()
    assert "val/image_target_prediction" in events.Tags()["images"]
    assert {"loss/total", "lr", "samples_per_s", "val/depth/abs_rel"} <= set(events.Tags()["scalars"])


def test_real_codecs_prompts_and_predict(tmp_path, tiny_run):
    """The real rgbify.encode prompts and decoders drive predict: label maps use the --classes order."""
    prompt, params = task_prompt("semantic", ["chair", "table"])
    assert "chair" in prompt and "table" in prompt
    assert {c["index"]: c["name"] for c in params["classes"]} == {1: "chair", 2: "table"}
    prompt, params = task_prompt("instance", ["lamp"])
    assert "lamp" in prompt and params["task"] == "instance"
    for task in ("depth", "normals"):
        assert task_prompt(task)[1]["task"] == task
    run = load_run(tiny_run, "cpu")
    images = _write_images(tmp_path / "in", n=1)
    for task, classes in (("depth", None), ("normals", None), ("semantic", ["chair", "table"]), ("instance", ["lamp"])):
        predict_files(run, task, images, tmp_path / "out", classes=classes, steps=1)
        value = np.load(tmp_path / "out" / f"img0.{task}.npy")
        assert value.shape[:2] == (30, 40)
    assert set(np.unique(np.load(tmp_path / "out" / "img0.semantic.npy"))) <= {0, 1, 2}


def test_relative_depth_is_scored_affine_aligned_only():
    """A depth/affine prediction (relative depth in [0, 1]) has no metric score; every depth item has an
    affine-aligned one, exact for a prediction affine in the ground truth."""
    from rgbify.train.evaluate import MetricAccumulator, is_metric

    gt = {"gt_depth": np.linspace(1, 5, 64, dtype=np.float32).reshape(8, 8), "valid": np.ones((8, 8), bool)}
    acc = MetricAccumulator()
    acc.add("depth", (gt["gt_depth"] - 1) / 4, gt, metric=False)
    out = acc.result()
    assert "depth" not in out and out["depth_affine"]["abs_rel"] < 1e-6 and out["depth_affine"]["images"] == 1
    acc.add("depth", gt["gt_depth"] * 2, gt)
    out = acc.result()
    assert out["depth"]["images"] == 1 and abs(out["depth"]["abs_rel"] - 1) < 1e-6
    assert out["depth_affine"]["images"] == 2
    assert not is_metric({"task": "depth", "codec": {"name": "depth/affine"}})
    assert is_metric({"task": "depth", "codec": {"name": "depth/cubewalk"}}) and is_metric({"task": "normals"})
