"""Fault injection, ``rgbify train``, ``predict`` and ``eval`` (tiny model, CPU): the run folder's lock, a resume
with other settings, a full disk at a checkpoint (a failing writer, and a real file-size limit inside torch and
safetensors), a damaged or unfinished dataset, bad values, ground truth that cannot be scored, and signals at
seeded random moments (the resumed run's losses equal an uninterrupted run's, bit for bit)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from test_train import MemoryTaskDataset, cfg_for  # noqa: E402

import rgbify  # noqa: E402
from rgbify.cli import main  # noqa: E402
from rgbify.errors import UserError  # noqa: E402
from rgbify.train.config import make_config  # noqa: E402
from rgbify.train.trainer import train  # noqa: E402
from tests.dataset_fakes import fake_dataset  # noqa: E402
from tests.fault_shims import fsize_limit  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(rgbify.__file__).resolve().parents[1]
TINY = ["--base-model", "tiny", "--resolution", "16", "--batch-size", "2", "--warmup-steps", "1", "--num-workers",
        "0", "--inference-steps", "1", "--tasks", "depth,normals", "--seed", "3"]


def one_error_line(capsys) -> str:
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.startswith("rgbify:")]
    assert len(err) == 1 and err[0].startswith("rgbify: error:"), err
    return err[0]


def rows(out: Path) -> list[tuple]:
    return [(r["step"], r["loss"], r["lr"]) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return fake_dataset(tmp_path_factory.mktemp("data"), n=6, shard_size=3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> str:
    cfg = cfg_for(tmp_path_factory.mktemp("run"), "marigold", steps=1, inference_steps=2)
    train(cfg, MemoryTaskDataset())
    return cfg.out


# --- the run folder: one writer, fixed settings ----------------------------------------------------------------


def test_a_second_training_into_one_run_is_refused(tmp_path):
    cfg = cfg_for(tmp_path, "marigold", steps=1)
    Path(cfg.out).mkdir(parents=True)
    fd = os.open(Path(cfg.out) / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `rgbify train` holds it
        with pytest.raises(UserError, match="another `rgbify train` is writing this run") as e:
            train(cfg, MemoryTaskDataset())
        assert "\n" not in str(e.value)
    finally:
        os.close(fd)
    assert sorted(p.name for p in Path(cfg.out).iterdir()) == [".lock"]
    assert train(cfg, MemoryTaskDataset())["step"] == 1  # the lock is free again


def test_a_resume_with_other_settings_is_refused_and_changes_nothing(tmp_path):
    cfg = cfg_for(tmp_path, "marigold", steps=2)
    train(cfg, MemoryTaskDataset())
    out = Path(cfg.out)
    before = {p: p.read_bytes() for p in (out / "config.toml", out / "log.jsonl", out / "model/run.json")}
    for change, flag in (({"resolution": 32}, "--resolution 64 -> 32"), ({"mode": "lotus"}, "--mode marigold -> lotus"),
                         ({"lr": 1e-4}, "--lr"), ({"tasks": ("normals",)}, "--tasks depth -> normals")):
        with pytest.raises(UserError) as e:
            train(make_config({**cfg.to_dict(), **change, "steps": 3}), MemoryTaskDataset())
        msg = str(e.value)
        assert flag in msg and "--no-resume" in msg and "\n" not in msg, msg
        assert {p: p.read_bytes() for p in before} == before
    # what may change: a longer run, another loader, other checkpoint and log settings
    more = make_config({**cfg.to_dict(), "steps": 3, "num_workers": 1, "checkpoint_every": 1, "log_every": 5})
    assert train(more, MemoryTaskDataset())["step"] == 3
    assert [r[0] for r in rows(out)] == [1, 2, 3]
    # --no-resume starts over with the new settings: nothing of the old run is kept
    fresh = make_config({**cfg.to_dict(), "resolution": 32, "resume": False, "steps": 1})
    assert train(fresh, MemoryTaskDataset(res=32))["step"] == 1
    assert [r[0] for r in rows(out)] == [1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-0000001"]
    assert json.loads((out / "model/run.json").read_text())["config"]["resolution"] == 32


def test_bad_train_values_are_one_line(data, tmp_path, capsys):
    for flag, value in (("--lr", "-1"), ("--lr", "0"), ("--ema-decay", "1"), ("--warmup-steps", "-1"),
                        ("--cond-dropout", "0.9"), ("--eval-samples", "0"), ("--task-weights", "0,0")):
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), *TINY, flag, value]) == 2
        assert flag in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


# --- the dataset: damaged, unfinished, missing ---------------------------------------------------------------


def test_a_damaged_shard_met_while_training_or_scoring(data, tmp_path, tiny_run, capsys):
    d = tmp_path / "d"
    import shutil

    shutil.copytree(data, d)
    shard = d / "shards/shard-00001.h5"
    shard.write_bytes(b"\0" * shard.stat().st_size)
    assert main(["train", "--data", str(d), "--out", str(tmp_path / "r"), *TINY, "--steps", "4"]) == 2
    line = one_error_line(capsys)
    assert "shard-00001.h5" in line and f"rgbify verify {d}" in line
    assert main(["eval", "--run", tiny_run, "--data", str(d), "--split", "all", "--steps", "1",
                 "--out", str(tmp_path / "e.json")]) == 2
    line = one_error_line(capsys)
    assert "shard-00001.h5" in line and "rgbify verify" in line


def test_an_unfinished_dataset_is_named_as_such(data, tmp_path, capsys):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(data, d)
    m = json.loads((d / "dataset.json").read_text())
    m.update(count=60, complete=False, shards=m["shards"][:1])
    (d / "dataset.json").write_text(json.dumps(m))
    assert main(["train", "--data", str(d), "--out", str(tmp_path / "r"), *TINY, "--batch-size", "4"]) == 2
    line = one_error_line(capsys)
    assert "unfinished dataset (3 of 60 samples published" in line and "--batch-size" not in line


def test_eval_of_a_missing_dataset(tiny_run, tmp_path, capsys):
    assert main(["eval", "--run", tiny_run, "--data", str(tmp_path / "nope")]) == 2
    assert "no dataset.json" in one_error_line(capsys)


# --- predict and eval: bad values and ground truth ------------------------------------------------------------


def _images(folder: Path, size=(40, 30)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(folder / "a.png")
    return [str(folder / "a.png")]


@pytest.mark.parametrize("gt,needle", [
    (np.full((30, 40), np.nan, np.float32), "no valid value"),
    (np.full((30, 40), -1.0, np.float32), "no valid value"),
    (np.full((60, 80), 2.0, np.float32), "is 80x60 but its image is 40x30"),
    (np.full((40, 30), 2.0, np.float32), "is 30x40 but its image is 40x30"),
    (np.full((30, 40, 3), 2.0, np.float32), "give float metres (H, W)"),
])
def test_eval_refuses_ground_truth_it_cannot_score(tiny_run, tmp_path, capsys, gt, needle):
    _images(tmp_path / "imgs")
    (tmp_path / "gt").mkdir()
    np.save(tmp_path / "gt/a.npy", gt)
    assert main(["eval", "--run", tiny_run, "--images", str(tmp_path / "imgs"), "--depth-gt", str(tmp_path / "gt"),
                 "--steps", "1", "--out", str(tmp_path / "e.json")]) == 2
    assert needle in one_error_line(capsys)
    assert not (tmp_path / "e.json").exists()


def test_predict_and_eval_bad_values(tiny_run, tmp_path, capsys):
    images = _images(tmp_path / "imgs")
    (tmp_path / "gt").mkdir()
    np.save(tmp_path / "gt/a.npy", np.full((30, 40), 2.0, np.float32))
    common = ["--run", tiny_run]
    cases = [
        (["predict", *common, "--task", "depth", *images, "--out", str(tmp_path / "p"), "--steps", "0"], "--steps 0"),
        (["eval", *common, "--images", str(tmp_path / "imgs"), "--depth-gt", str(tmp_path / "gt"), "--max-items",
          "0"], "--max-items 0"),
        (["predict", *common, "--task", "depth", *images, "--out", images[0]], "is a file"),
        (["predict", *common, "--task", "depth", *images, "--out", str(tmp_path / "p"), "--device", "banana"],
         "--device 'banana'"),
    ]
    if not torch.cuda.is_available():
        cases.append((["predict", *common, "--task", "depth", *images, "--out", str(tmp_path / "p"), "--device",
                       "cuda"], "no CUDA device"))
    for args, needle in cases:
        assert main(args) == 2, args
        assert needle in one_error_line(capsys)
    assert not (tmp_path / "p").exists()


# --- a full disk at a checkpoint -------------------------------------------------------------------------------


def test_a_failed_checkpoint_write_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    from accelerate import Accelerator

    straight = cfg_for(tmp_path / "a", "marigold", steps=3, checkpoint_every=1)
    train(straight, MemoryTaskDataset())
    cfg = cfg_for(tmp_path / "b", "marigold", steps=3, checkpoint_every=1)
    real, calls = Accelerator.save_state, []

    def full(self, path, *a, **kw):
        calls.append(path)
        if len(calls) == 2:  # what torch's zip writer raises on a full disk
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0\n"
                               "PytorchStreamWriter failed writing file data/0: file write failed")
        return real(self, path, *a, **kw)

    monkeypatch.setattr(Accelerator, "save_state", full)
    with pytest.raises(UserError) as e:
        train(cfg, MemoryTaskDataset())
    msg = str(e.value)
    assert "\n" not in msg and "step-0000002" in msg and "resumes from step 1" in msg, msg
    ck = Path(cfg.out) / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step-0000001"]
    monkeypatch.setattr(Accelerator, "save_state", real)
    assert train(cfg, MemoryTaskDataset())["step"] == 3
    assert rows(Path(cfg.out)) == rows(Path(straight.out))  # the resume is exact


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rgbify", "train", "--data", str(data), "--out", str(out), *TINY, *extra]


@pytest.mark.slow
def test_a_real_file_size_limit_at_the_first_checkpoint(data, tmp_path):
    """torch and safetensors fail inside their C++ writers (not OSError): still one line, exit 2, no temporary
    checkpoint folder left."""
    out = tmp_path / "r"
    p = subprocess.run(_train_cmd(data, out, "--steps", "2"), env=_env(), cwd=ROOT, capture_output=True, text=True,
                       timeout=600, preexec_fn=fsize_limit(500_000))
    lines = [x for x in p.stderr.strip().splitlines() if x.startswith("rgbify:") or "Traceback" in x]
    assert p.returncode == 2 and len(lines) == 1 and "cannot write" in lines[0], p.stderr[-3000:]
    assert "step-0000001" in lines[0] or "step-0000002" in lines[0]
    assert not list((out / "checkpoints").glob(".tmp-*"))


# --- signals at seeded random moments --------------------------------------------------------------------------


@pytest.mark.slow
def test_signals_at_random_moments_then_resume_bit_exactly(data, tmp_path):
    """SIGTERM, then SIGKILL, each at a seeded random moment of training; the command run again finishes, and its
    losses and learning rates equal an uninterrupted run's."""
    steps = ["--steps", "40", "--checkpoint-every", "3"]
    ref = tmp_path / "ref"
    p = subprocess.run(_train_cmd(data, ref, *steps), env=_env(), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "run"
    rng = np.random.default_rng(11)
    interrupted = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        q = subprocess.Popen(_train_cmd(data, run, *steps), env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        log = run / "log.jsonl"
        start = len(log.read_text().splitlines()) if log.exists() else 0
        while q.poll() is None and time.monotonic() < deadline:  # training has begun: a step was logged
            if log.exists() and len(log.read_text().splitlines()) > start:
                break
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.5)))
        if q.poll() is not None:
            break  # it finished first: nothing to interrupt
        t0 = time.monotonic()
        q.send_signal(sig)
        _, err = q.communicate(timeout=60)
        interrupted.append(len(log.read_text().splitlines()))
        if sig == signal.SIGTERM:
            assert q.returncode == 130 and time.monotonic() - t0 < 10, (q.returncode, err[-2000:])
            assert "rgbify: interrupted" in err and "Traceback" not in err
    p = subprocess.run(_train_cmd(data, run, *steps), env=_env(), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(interrupted) == 2 and interrupted[-1] < 40, interrupted  # both signals came during training
    assert rows(run) == rows(ref)
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_a_log_row_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    cfg = cfg_for(tmp_path, "marigold", steps=2)
    train(cfg, MemoryTaskDataset())
    log = Path(cfg.out) / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 3, "lo')
    assert train(make_config({**cfg.to_dict(), "steps": 3}), MemoryTaskDataset())["step"] == 3
    assert [r[0] for r in rows(Path(cfg.out))] == [1, 2, 3]
