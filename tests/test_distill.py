"""rgbify distill: pseudo-labels from a tiny teacher run (resumable, marked, refused when settings differ), the
student's losses, batches and training (resume exact), predict/eval on a student run, ONNX parity, the dpt
student on a timm backbone, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from dataset_fakes import fake_dataset  # noqa: E402
from test_train import MemoryTaskDataset, cfg_for  # noqa: E402

from rgbify.cli import main as rgbify_main  # noqa: E402
from rgbify.errors import UserError  # noqa: E402
from rgbify.train.distill import losses, pseudo  # noqa: E402
from rgbify.train.distill.config import make_config  # noqa: E402
from rgbify.train.distill.data import MixedBatches, Source  # noqa: E402
from rgbify.train.distill.export import check_onnx, export_onnx  # noqa: E402
from rgbify.train.distill.predict import load_student  # noqa: E402
from rgbify.train.distill.trainer import distill  # noqa: E402
from rgbify.train.predict import load_run  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny teacher run (tiny preset, instruct, 2 DDIM steps), a fake rendered dataset and 6 unlabeled images."""
    tmp = tmp_path_factory.mktemp("distill")
    cfg = cfg_for(tmp, "instruct", steps=1, inference_steps=2, tasks=("depth", "normals", "semantic"))
    train(cfg, MemoryTaskDataset())
    data = fake_dataset(tmp, n=12, shard_size=4, h=24, w=32)
    images = tmp / "images"
    images.mkdir()
    for i in range(6):
        arr = (np.random.default_rng(i).random((30, 40, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(images / f"im{i}.png")
    return {"teacher": cfg.out, "data": str(data), "images": str(images), "tmp": tmp}


def _settings(world, **kw):
    images = pseudo.list_images(world["images"])
    step, tcfg = pseudo.teacher_meta(world["teacher"])
    base = dict(
        tasks=("depth", "normals", "semantic"), classes=("floor", "table", "lamp"), ensemble=1, steps=0, seed=0, batch=2
    )
    base.update(kw)
    return pseudo.pseudo_settings(
        world["teacher"],
        step,
        tcfg,
        base["tasks"],
        base["classes"],
        base["ensemble"],
        base["steps"],
        base["seed"],
        base["batch"],
        images,
    ), images


def _labeler(world, ensemble=1):
    run = load_run(world["teacher"], "cpu")
    return pseudo.TeacherLabeler(run, ("depth", "normals", "semantic"), ("floor", "table", "lamp"), ensemble)


def _read_all(folder):
    m = json.loads((folder / "dataset.json").read_text())
    out = {}
    for e in m["shards"]:
        with h5py.File(folder / e["file"]) as f:
            for j, idx in enumerate(f["index"][()]):
                assert int(idx) not in out, "a sample stored twice"
                out[int(idx)] = (f["depth"][j], f["normals"][j], f["semantic"][j], f["rgb"][j])
    return m, out


def test_pseudo_labels_resume_after_a_kill_loses_and_duplicates_nothing(world):
    labeler = _labeler(world)
    settings, images = _settings(world)
    whole, killed = world["tmp"] / "labels-whole", world["tmp"] / "labels-killed"
    pseudo.build_pseudo_labels(labeler, settings, images, whole, shard_size=4)
    with pytest.raises(KeyboardInterrupt):
        pseudo.build_pseudo_labels(labeler, settings, images, killed, shard_size=4, stop_after=1)
    m = json.loads((killed / "dataset.json").read_text())
    assert not m["complete"] and m["shards"] == []  # one batch of two done, in work files only
    assert len(list((killed / ".work").rglob("*.npz"))) == 2
    calls = []
    pseudo.build_pseudo_labels(labeler, settings, images, killed, shard_size=4, progress=lambda d, n: calls.append(d))
    assert calls == [4, 6]  # the first batch was not labelled again
    m1, a = _read_all(whole)
    m2, b = _read_all(killed)
    assert sorted(a) == sorted(b) == list(range(6)) and m2["complete"] and not (killed / ".work").exists()
    for i in a:
        for x, y in zip(a[i], b[i], strict=True):
            np.testing.assert_array_equal(x, y)
    p = m2["pseudo_labels"]
    assert m2["kind"] == "pseudo-labels" and p["teacher_step"] == 1 and p["teacher_mode"] == "instruct"
    assert p["image_names"] == [f"im{i}.png" for i in range(6)] and p["ensemble"] == 1 and p["steps"] == 2
    assert a[0][0].shape == (64, 64) and a[0][1].shape == (64, 64, 3) and a[0][3].shape == (64, 64, 3)
    d = a[0][0]
    assert np.isfinite(d).mean() > 0.5 and np.all(d[np.isfinite(d)] > 0) and not np.isnan(d).any()
    norms = np.linalg.norm(a[0][1], axis=-1)  # unit, or 0 where the codec found no normal
    assert np.all((np.abs(norms - 1) < 1e-3) | (norms == 0)) and (norms > 0).mean() > 0.5
    assert set(np.unique(a[0][2])) <= {0, 1, 2, 3}
    other, _ = _settings(world, ensemble=2)
    with pytest.raises(UserError, match="ensemble"):
        pseudo.build_pseudo_labels(_labeler(world, 2), other, images, killed, shard_size=4)
    with pytest.raises(UserError, match="rendered dataset"):
        pseudo.build_pseudo_labels(labeler, settings, images, world["data"], shard_size=4)


def test_ensemble_merge():
    d = np.array([[[1.0]], [[2.0]], [[np.inf]]], np.float32)[:, None]  # (M=3, B=1, 1, 1)
    assert pseudo.merge_ensemble("depth", d)[0, 0, 0] == 1.5
    n = np.zeros((2, 1, 1, 1, 3), np.float32)
    n[0, ..., 0], n[1, ..., 1] = 1, 1
    np.testing.assert_allclose(pseudo.merge_ensemble("normals", n)[0, 0, 0], [2**-0.5, 2**-0.5, 0], atol=1e-6)
    labels = np.array([2, 3, 3], np.int32).reshape(3, 1, 1, 1)
    assert pseudo.merge_ensemble("semantic", labels)[0, 0, 0] == 3


def test_losses():
    gt = torch.full((1, 4, 4), 2.0)
    gt[0, 0, 0] = float("inf")  # invalid
    assert float(losses.silog_loss(torch.log(gt.clamp(max=2.0)), gt)) < 1e-3
    twice = float(losses.silog_loss(torch.log(gt.clamp(max=2.0) * 2), gt))
    assert twice == pytest.approx(np.sqrt(1 - losses.SILOG_LAMBDA) * np.log(2), rel=1e-3)  # scale costs a little
    n = torch.zeros(1, 3, 2, 2)
    n[:, 2] = -1
    p = torch.zeros(1, 3, 2, 2)
    p[:, 0] = 1
    assert float(losses.angular_loss(p, n)) == pytest.approx(np.pi / 2, rel=1e-4)
    assert losses.angular_loss(p, torch.zeros_like(n)) is None
    logits = torch.zeros(1, 3, 2, 2)
    logits[:, 1] = 10
    labels = torch.tensor([[[1, 1], [-1, -1]]])
    assert float(losses.semantic_loss(logits, labels)) < 1e-3


def test_batches_mix_at_the_ratio_and_are_a_function_of_the_step(world):
    settings, images = _settings(world)
    labels = world["tmp"] / "labels-whole"
    if not (labels / "dataset.json").exists():
        pseudo.build_pseudo_labels(_labeler(world), settings, images, labels, shard_size=4)
    classes = ("floor", "table", "lamp")
    mix = MixedBatches(
        Source(str(labels), classes, ("depth",)), Source(world["data"], classes, ("depth",)), 0.25, 32, 8, seed=3
    )
    from_gt = np.mean([mix.batch(s)["from_gt"].float().mean().item() for s in range(40)])
    assert 0.17 < from_gt < 0.33
    a, b = mix.batch(7), mix.batch(7)
    for k in a:
        assert torch.equal(torch.nan_to_num(a[k].float()), torch.nan_to_num(b[k].float()))
    assert a["image"].shape == (8, 3, 32, 32) and a["normals"].shape == (8, 3, 32, 32)
    gt = Source(world["data"], ("table",), ("semantic",))  # floor and lamp are not the student's: 0
    it = gt.item(0, 24)
    assert set(np.unique(it["semantic"])) <= {-1, 0, 1} and (it["semantic"] == -1).any()  # -1: the edge row


def _cfg(world, out, **kw):
    base = dict(
        teacher=world["teacher"],
        images=world["images"],
        data=world["data"],
        gt_ratio=0.5,
        out=str(world["tmp"] / out),
        labels=str(world["tmp"] / "labels-cli"),
        steps=6,
        batch_size=4,
        resolution=32,
        width=8,
        shard_size=4,
        teacher_batch=2,
        checkpoint_every=3,
    )
    base.update(kw)
    return make_config(base)


def test_student_resume_is_exact(world):
    whole = distill(_cfg(world, "s-whole"), log=lambda m: None)
    assert whole["finished"] and whole["step"] == 6
    part = distill(_cfg(world, "s-part"), log=lambda m: None, stop_after_steps=3)
    assert not part["finished"] and not (world["tmp"] / "s-part" / "student.pt").exists()
    distill(_cfg(world, "s-part"), log=lambda m: None)
    a = torch.load(world["tmp"] / "s-whole" / "student.pt")
    b = torch.load(world["tmp"] / "s-part" / "student.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (world["tmp"] / "s-part" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7))
    with pytest.raises(UserError, match="--lr"):
        distill(_cfg(world, "s-part", lr=0.5), log=lambda m: None)


def test_student_learns(world):
    """On the ground truth alone (gt ratio 1), the loss of the last steps is well below that of the first."""
    distill(
        _cfg(world, "s-learn", gt_ratio=1.0, steps=60, batch_size=4, lr=3e-3, checkpoint_every=60), log=lambda m: None
    )
    rows = [json.loads(x)["loss"] for x in (world["tmp"] / "s-learn" / "log.jsonl").read_text().splitlines()]
    assert np.mean(rows[-10:]) < 0.7 * np.mean(rows[:10])


def test_cli_distill_predict_eval_and_export(world, tmp_path, capsys):
    out = tmp_path / "stu"
    args = [
        "distill",
        "--teacher",
        world["teacher"],
        "--images",
        world["images"],
        "--data",
        world["data"],
        "--gt-ratio",
        "0.5",
        "--out",
        str(out),
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--resolution",
        "32",
        "--width",
        "8",
        "--shard-size",
        "4",
        "--teacher-batch",
        "2",
        "--ensemble",
        "2",
    ]
    assert rgbify_main(args) == 0
    meta = json.loads((out / "student.json").read_text())
    assert meta["teacher"]["step"] == 1 and meta["teacher"]["ensemble"] == 2 and meta["step"] == 4
    assert meta["classes"] == ["floor", "table", "lamp"]
    labels = json.loads((out / "pseudo-labels" / "dataset.json").read_text())
    assert labels["pseudo_labels"]["ensemble"] == 2 and labels["complete"]
    assert rgbify_main(["verify", str(out / "pseudo-labels")]) == 0  # storage checks; no rendered invariants
    before = (out / "log.jsonl").read_text()
    assert rgbify_main(["distill", "--config", str(out / "config.toml")]) == 0  # the saved config: nothing to do
    assert (out / "log.jsonl").read_text() == before
    img = f"{world['images']}/im0.png"
    for task in ("depth", "normals", "semantic"):
        assert rgbify_main(["predict", "--run", str(out), "--task", task, img, "--out", str(tmp_path / "p")]) == 0
        v = np.load(tmp_path / "p" / f"im0.{task}.npy")
        assert v.shape[:2] == (30, 40)
    assert np.all(np.load(tmp_path / "p" / "im0.depth.npy") > 0)
    assert (
        rgbify_main(
            [
                "predict",
                "--run",
                str(out),
                "--task",
                "semantic",
                "--classes",
                "chair",
                img,
                "--out",
                str(tmp_path / "p"),
            ]
        )
        == 2
    )  # a student answers its own classes
    assert rgbify_main(["eval", "--run", str(out), "--data", world["data"], "--split", "all"]) == 0
    rep = json.loads((out / "eval" / "eval-all.json").read_text())
    assert rep["depth"]["images"] == 12 and "miou" in rep["semantic"] and rep["normals"]["images"] == 12
    gt = tmp_path / "gt"
    gt.mkdir()
    np.save(gt / "im0.npy", np.full((30, 40), 2.0, np.float32))
    assert rgbify_main(["eval", "--run", str(out), "--images", world["images"], "--depth-gt", str(gt)]) == 0
    capsys.readouterr()
    assert rgbify_main(["export-student", "--run", str(out), "--out", str(tmp_path / "s.onnx")]) == 0
    assert "largest difference" in capsys.readouterr().out


def test_onnx_matches_torch(world, tmp_path):
    if not (world["tmp"] / "s-whole" / "student.json").exists():
        distill(_cfg(world, "s-whole"), log=lambda m: None)
    pytest.importorskip("onnxruntime")
    run = load_student(world["tmp"] / "s-whole")
    path = export_onnx(run, tmp_path / "student.onnx")
    diffs = check_onnx(run, path, batch=3)  # a batch size other than the exported one: the axis is dynamic
    assert set(diffs) == {"depth", "normals", "semantic"} and max(diffs.values()) < 1e-4


def test_eval_benchmark_runs_a_student_as_its_saved_predictions_score(world, tmp_path, capsys):
    """`rgbify eval --benchmark nyuv2 --run STUDENT` predicts in one pass and scores exactly what `rgbify predict`
    then `eval --predictions` give (same resize, same protocol); generator-only flags are refused in one line."""
    import tarfile

    from test_eval_benchmarks import write_nyu

    if not (world["tmp"] / "s-whole" / "student.json").exists():
        distill(_cfg(world, "s-whole"), log=lambda m: None)
    student = str(world["tmp"] / "s-whole")
    write_nyu(tmp_path / "nyu.tar", n=1)
    with tarfile.open(tmp_path / "nyu.tar") as tar:
        rel = next(m.name for m in tar.getmembers() if "/rgb_" in m.name).removeprefix("./")
        (tmp_path / "img.png").write_bytes(tar.extractfile(f"./{rel}").read())
    assert rgbify_main(["predict", "--run", student, "--task", "depth", str(tmp_path / "img.png"),
                        "--out", str(tmp_path / "p")]) == 0
    saved = tmp_path / "pred" / Path(rel).with_suffix(".npy")
    saved.parent.mkdir(parents=True)
    np.save(saved, np.load(tmp_path / "p" / "img.depth.npy"))
    common = ["eval", "--benchmark", "nyuv2", "--root", str(tmp_path / "nyu.tar")]
    assert rgbify_main([*common, "--run", student, "--out", str(tmp_path / "run.json")]) == 0
    assert rgbify_main([*common, "--predictions", str(tmp_path / "pred"), "--out", str(tmp_path / "saved.json")]) == 0
    by_run, by_saved = (json.loads((tmp_path / f).read_text()) for f in ("run.json", "saved.json"))
    assert by_run["benchmark"]["student"] == "small" and by_run["depth"]["images"] == 1
    for k in ("abs_rel", "delta1", "rmse"):
        assert by_run["depth"][k] == pytest.approx(by_saved["depth"][k], rel=1e-6, abs=1e-9), k
    capsys.readouterr()
    assert rgbify_main([*common, "--run", student, "--ensemble", "2", "--out", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--ensemble" in err and not (tmp_path / "e.json").exists()


def test_dpt_head_reassembles_cnn_and_vit_strides(tmp_path):
    """The DPT head alone (no timm): four stages at a CNN's strides (4, 8, 16, 32) or a ViT's (16 x 4) give
    full-resolution answers, unit normals."""
    from rgbify.train.distill.students import DPTHead

    x = torch.zeros(2, 3, 64, 64)
    for reductions in ((4, 8, 16, 32), (16, 16, 16, 16)):
        feats = [torch.randn(2, c, 64 // r, 64 // r) for c, r in zip((8, 16, 24, 32), reductions, strict=True)]
        head = DPTHead((8, 16, 24, 32), reductions, 16, ("depth", "normals", "semantic"), 2).eval()
        outs = head(feats, x.shape[-2:])
        assert [o.shape for o in outs] == [(2, 1, 64, 64), (2, 3, 64, 64), (2, 3, 64, 64)]
        assert torch.allclose(outs[1].norm(dim=1), torch.ones(2, 64, 64), atol=1e-4)


def _timm():
    """Skip where timm cannot be imported (scripts/setup.sh says why), except in the run of
    benchmarks/dpt_timm_check.py (RGBIFY_REQUIRE_TIMM=1), whose venv has it: there it fails."""
    try:
        import timm  # noqa: F401
    except (ImportError, RuntimeError) as e:  # RuntimeError: a CUDA torchvision wheel next to a CPU-only torch
        if os.environ.get("RGBIFY_REQUIRE_TIMM") == "1":
            raise
        pytest.skip(f"timm cannot be imported here ({type(e).__name__}); run benchmarks/dpt_timm_check.py")


def test_dpt_student_on_a_timm_backbone(tmp_path):
    _timm()
    import timm

    from rgbify.train.distill.students import DPTStudent

    args = {"dims": [16, 32, 64, 128], "depths": [1, 1, 1, 1]}
    ref = timm.create_model("convnext_atto", pretrained=False, **args)
    torch.save(ref.state_dict(), tmp_path / "backbone.pth")
    net = DPTStudent(("depth", "normals", "semantic"), 3, "convnext_atto", str(tmp_path / "backbone.pth"), args, 16, 64)
    w = dict(net.backbone.named_parameters())["stem_0.weight"]
    assert torch.equal(w, ref.state_dict()["stem.0.weight"])  # loaded from the local checkpoint through timm
    outs = net(torch.zeros(2, 3, 64, 64))
    assert [o.shape for o in outs] == [(2, 1, 64, 64), (2, 3, 64, 64), (2, 4, 64, 64)]
    rand = DPTStudent(("depth",), 3, "convnext_atto", "random", args, 16, 64)
    assert not torch.equal(dict(rand.backbone.named_parameters())["stem_0.weight"], w)
    vit = DPTStudent(
        ("depth",), 0, "vit_tiny_patch16_224", "random", {"embed_dim": 32, "depth": 4, "num_heads": 2}, 16, 64
    )
    assert vit(torch.zeros(1, 3, 64, 64))[0].shape == (1, 1, 64, 64)
    with pytest.raises(UserError, match="does not fit"):
        DPTStudent(("depth",), 0, "convnext_atto", str(tmp_path / "backbone.pth"), {"dims": [8, 16, 32, 64]}, 16, 64)


def test_dpt_distill_and_onnx(world, tmp_path):
    _timm()
    cfg = _cfg(
        world,
        "s-dpt",
        student="dpt",
        backbone="convnext_atto",
        backbone_weights="random",
        backbone_args='{"dims": [16, 32, 64, 128], "depths": [1, 1, 1, 1]}',
        steps=3,
        width=16,
    )
    distill(cfg, log=lambda m: None)
    run = load_student(cfg.out)
    diffs = check_onnx(run, export_onnx(run, tmp_path / "dpt.onnx"))
    assert max(diffs.values()) < 1e-3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gt-ratio", "0.5"], "--gt-ratio 0.5 needs --data"),
        (["--student", "dpt"], "--backbone-weights"),
        (["--resolution", "48"], "--resolution 48"),
        (["--tasks", "depth,instance"], "--tasks"),
        (["--backbone-args", "[1]", "--student", "dpt", "--backbone-weights", "random"], "--backbone-args"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(world, tmp_path, capsys, extra, message):
    args = [
        "distill",
        "--teacher",
        world["teacher"],
        "--images",
        world["images"],
        "--out",
        str(tmp_path / "o"),
        "--classes",
        "floor",
    ]
    assert rgbify_main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_second_distill_into_one_out_is_refused(world, tmp_path):
    from filelock import FileLock

    cfg = _cfg(world, "s-locked")
    (world["tmp"] / "s-locked").mkdir()
    with FileLock(world["tmp"] / "s-locked" / ".lock"), pytest.raises(UserError, match="another rgbify distill"):
        distill(cfg, log=lambda m: None)


def test_bad_paths(world, tmp_path, capsys):
    base = ["distill", "--out", str(tmp_path / "o"), "--classes", "floor"]
    assert rgbify_main(base + ["--teacher", str(tmp_path), "--images", world["images"]]) == 2
    assert "no model/run.json" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert rgbify_main(base + ["--teacher", world["teacher"], "--images", str(tmp_path / "empty")]) == 2
    assert "no image files" in capsys.readouterr().err
    assert rgbify_main(["export-student", "--run", world["teacher"], "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not a student run" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bench_distill_demo_runs(tmp_path):
    """benchmarks/bench_distill.py --demo, shrunk: it prints one JSON line with both speeds and the ratios."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_distill.py"
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(bench),
            "--demo",
            "--work",
            str(tmp_path / "w"),
            "--train-samples",
            "8",
            "--images",
            "8",
            "--teacher-train-steps",
            "3",
            "--student-steps",
            "5",
            "--max-items",
            "4",
            "--teacher-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["device"] == "cpu" and r["heldout_images"] == 4 and r["teacher_steps"] == 2
    assert r["speedup_core"] > 1 and r["student_images_per_core_s"] > 0 and r["teacher_delta1"] is not None


@pytest.mark.slow
def test_sigkill_while_labelling_then_the_same_command_finishes_the_same_labels(world, tmp_path):
    """A real kill: `rgbify distill` SIGKILLed once some teacher batches are stored; the same command finishes, and
    its labels equal those of an uninterrupted run (none lost, none stored twice)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    images = tmp_path / "many"
    images.mkdir()
    for i in range(24):
        arr = (np.random.default_rng(100 + i).random((30, 40, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(images / f"m{i:02d}.png")

    def cmd(name):
        return [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "rgbify",
            "distill",
            "--teacher",
            world["teacher"],
            "--images",
            str(images),
            "--out",
            str(tmp_path / name),
            "--classes",
            "floor,table",
            "--steps",
            "1",
            "--resolution",
            "32",
            "--width",
            "8",
            "--shard-size",
            "8",
            "--teacher-batch",
            "2",
            "--device",
            "cpu",
        ]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run(cmd("a"), env=env, capture_output=True, timeout=600).returncode == 0
    p = subprocess.Popen(cmd("b"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / "b" / "pseudo-labels"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        stored = len(list(work.glob(".work/*/*.npz"))) + 8 * len(list(work.glob("shards/*.h5")))
        if stored >= 4:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (work / "dataset.json").exists() or not json.loads((work / "dataset.json").read_text())["complete"]
    assert subprocess.run(cmd("b"), env=env, capture_output=True, timeout=600).returncode == 0
    _, a = _read_all(tmp_path / "a" / "pseudo-labels")
    _, b = _read_all(work)
    assert sorted(a) == sorted(b) == list(range(24))
    for i in a:
        for x, y in zip(a[i], b[i], strict=True):
            np.testing.assert_array_equal(x, y)
