"""Fault injection, storage and build (no Blender): damaged shards and manifests, foreign files, a build refused
or killed, a write that fails. The planner builds with a fake pool (tests/dataset_fakes.py), so every case runs in
this process in milliseconds; docs/reliability.md lists what each command does in each case.

The byte-flip scan: TRIALS copies of a built dataset, each with 16 random bytes of one file flipped (seeded):
``rgbify verify`` never raises and names the damaged file in a complete report; every tenth copy is then built
again, which repairs it (verify clean, every sample bit-equal to the original).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from rgbify.cli import main
from rgbify.datasets.build import planner
from rgbify.datasets.build.config import BuildConfig
from rgbify.datasets.build.planner import Planner
from rgbify.datasets.storage import folder
from rgbify.datasets.storage.manifest import load_manifest
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.datasets.storage.verify import verify
from rgbify.errors import UserError
from tests.dataset_fakes import FakeFirstScene, FakePool
from tests.fault_shims import sigint_default

TRIALS = 200
COUNT, SHARD = 6, 3


@pytest.fixture(autouse=True)
def fake_first_scene(monkeypatch):
    monkeypatch.setattr(planner, "sample_scene", FakeFirstScene)


def cfg_for(out: Path, count: int = COUNT, **kw) -> BuildConfig:
    return BuildConfig(out=out, count=count, shard_size=SHARD, resolution=(8, 6), samples=1, **kw)


def fake_build(out: Path, count: int = COUNT, **kw):
    cfg = cfg_for(out, count, **kw)
    pool = FakePool(cfg)
    notices: list[str] = []
    stats = Planner(cfg, pool, log=notices.append).run()
    return pool, stats, notices


def checksums(d: Path) -> dict[int, str]:
    r = DatasetReader(d)
    try:
        return {i: r.read(i, ["checksum"])["checksum"] for i in r.indices}
    finally:
        r.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faults") / "ds"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(planner, "sample_scene", FakeFirstScene)
        fake_build(d)
    assert verify(d).ok
    return d


def flip(path: Path, rng: np.random.Generator, n: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for pos in rng.integers(0, len(data), n):
        data[pos] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_byte_flip_scan_verify_never_raises_and_build_repairs(built, tmp_path):
    """TRIALS seeded trials: 16 bytes of a shard (or, one trial in ten, of dataset.json) flipped. verify always
    returns a report naming the damaged file (``--jobs 2`` on some trials), and a build repairs what it reports."""
    original = checksums(built)
    shard_files = sorted(p.relative_to(built) for p in (built / "shards").glob("*.h5"))
    damaged = repaired = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng([20, trial])
        d = tmp_path / f"t{trial % 4}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(built, d)
        target = Path("dataset.json") if trial % 10 == 3 else shard_files[int(rng.integers(len(shard_files)))]
        flip(d / target, rng)
        rep = verify(d, jobs=2 if trial % 25 == 0 else 1)  # never raises
        text = rep.text()
        if not rep.ok:
            damaged += 1
            assert all(str(target) in p or "dataset.json" in p or "incomplete" in p for p in rep.problems), text
        if trial % 10 == 0 or (trial % 10 == 3 and not rep.ok):
            fake_build(d)
            after = verify(d)
            assert after.ok, f"trial {trial} ({target}): not repaired:\n{after.text()}\nbefore:\n{text}"
            assert checksums(d) == original
            repaired += 1
    assert damaged > TRIALS // 2 and repaired >= TRIALS // 10


def test_verify_report_names_each_damaged_shard_and_goes_on(built, tmp_path):
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    (d / "shards/shard-00000.h5").write_bytes(b"\0" * 4096)  # nothing readable left
    rep = verify(d)
    assert rep.shards_checked == 2 and rep.samples_checked == 3  # the second shard is checked whole
    assert len(rep.problems) >= 1 and all("shard-00000.h5" in p for p in rep.problems)
    assert "rgbify build" in rep.problems[-1]
    assert "delete" not in rep.text()


def test_verify_of_a_damaged_manifest_exits_1_and_build_rebuilds_it(built, tmp_path, capsys):
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    (d / "dataset.json").write_text('{"format": "rgbify-dataset", "schema_version": 1, "shards": [}')
    assert main(["verify", str(d)]) == 1
    out = capsys.readouterr().out
    assert "dataset.json: unreadable" in out and "rebuilds dataset.json" in out
    pool, stats, notices = fake_build(d)
    assert pool.rendered == [] and any("rebuilding dataset.json" in n for n in notices)
    assert verify(d).ok and (d / "dataset.json.damaged").exists()
    assert checksums(d) == checksums(built)


def test_a_damaged_manifest_with_other_settings_is_refused_and_nothing_deleted(built, tmp_path):
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    (d / "dataset.json").write_text("{{{")
    before = sorted(p.name for p in (d / "shards").iterdir())
    with pytest.raises(UserError, match="other settings"):
        fake_build(d, seed=7)
    assert sorted(p.name for p in (d / "shards").iterdir()) == before
    assert (d / "dataset.json").read_text() == "{{{"


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "unlisted"])
def test_a_foreign_hdf5_file_at_a_shard_path_is_refused_never_deleted(built, tmp_path, listed):
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    path = d / ("shards/shard-00001.h5" if listed else "shards/shard-00002.h5")
    path.unlink(missing_ok=True)
    with h5py.File(path, "w") as f:
        f["mine"] = np.arange(5)
    mine = path.read_bytes()
    with pytest.raises(UserError) as e:
        fake_build(d, count=9)
    msg = str(e.value)
    assert path.name in msg and "never deleted" in msg and "move it out" in msg and "\n" not in msg
    assert path.read_bytes() == mine


def test_another_datasets_shard_is_refused_never_deleted(built, tmp_path):
    other = tmp_path / "other"
    fake_build(other, seed=5)
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    shutil.copy(other / "shards/shard-00001.h5", d / "shards/shard-00001.h5")
    with pytest.raises(UserError, match="belongs to another dataset.*never deleted"):
        fake_build(d)
    assert (d / "shards/shard-00001.h5").read_bytes() == (other / "shards/shard-00001.h5").read_bytes()


def test_a_manifest_listing_a_file_outside_the_dataset(built, tmp_path, capsys):
    d = tmp_path / "ds"
    shutil.copytree(built, d)
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"\x89PNG mine")
    m = json.loads((d / "dataset.json").read_text())
    m["shards"][0]["file"] = "../precious.png"
    (d / "dataset.json").write_text(json.dumps(m))
    assert main(["verify", str(d)]) == 1
    out = capsys.readouterr().out
    assert "expected shards/shard-KKKKK.h5 inside the dataset" in out and "delete" not in out
    assert outside.read_bytes() == b"\x89PNG mine"


def test_verify_of_a_users_file_never_says_delete(tmp_path, capsys):
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["verify", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "photo.png" in err[0] and "delete" not in err[0] and "dataset folder" in err[0]
    assert png.exists()


def test_verify_during_a_build_says_so(built, tmp_path, capsys):
    d = tmp_path / "ds"
    fake_build(d, count=3)
    m = json.loads((d / "dataset.json").read_text())
    m.update(count=6, complete=False)
    (d / "dataset.json").write_text(json.dumps(m))
    with folder.locked(d):  # a build holds the lock
        assert main(["verify", str(d)]) == 1
    out = capsys.readouterr().out
    assert "is writing this dataset now" in out and "run the same `rgbify build`" not in out
    assert main(["verify", str(d)]) == 1
    assert "run the same `rgbify build` command again" in capsys.readouterr().out


def test_a_refused_build_leaves_no_empty_folder(tmp_path, monkeypatch):
    d = tmp_path / "new"

    def no_scene(*args, **kw):
        raise ValueError("no valid scene in 25 attempts")

    monkeypatch.setattr(planner, "sample_scene", no_scene)
    with pytest.raises(UserError, match="no valid scene"):
        fake_build(d)
    assert not d.exists()
    assert main(["build", "--out", str(d), "--timeout", "-5", "--quiet", "--no-preview"]) == 2
    assert not d.exists()


@pytest.mark.parametrize("flag,value", [("--timeout", "-5"), ("--timeout", "0"), ("--retries", "-1"),
                                        ("--max-scenes-per-worker", "0")])
def test_build_refuses_bad_values_in_one_line(tmp_path, capsys, flag, value):
    d = tmp_path / "x"
    assert main(["build", "--out", str(d), flag, value, "--quiet", "--no-preview"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag} {value.lstrip('+')}" in err[0].replace(".0", "")
    assert not d.exists()


def test_quiet_build_still_says_it_repairs_a_shard(built, tmp_path, monkeypatch, capsys):
    from rgbify.datasets.build import planner as pl

    d = tmp_path / "ds"
    shutil.copytree(built, d)
    flip(d / "shards/shard-00001.h5", np.random.default_rng(1), n=400)
    monkeypatch.setattr(pl, "LocalPool", FakePool)
    assert main(["build", "--out", str(d), "--count", str(COUNT), "--shard-size", str(SHARD), "--resolution",
                 "8x6", "--samples", "1", "--quiet", "--no-preview"]) == 0
    err = capsys.readouterr().err
    assert "shard shards/shard-00001.h5 is corrupt" in err and "re-rendering it" in err
    assert load_manifest(d)["complete"] and verify(d).ok


BUILD_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from rgbify.datasets.build import planner
from tests.dataset_fakes import FakeFirstScene, FakePool
from tests.fault_shims import sigint_default


class SlowPool(FakePool):  # a fake render takes 50 ms: signals land while samples and shards are written
    def run(self, config, jobs):
        for report in super().run(config, jobs):
            time.sleep(0.05)
            yield report


planner.sample_scene, planner.LocalPool = FakeFirstScene, SlowPool
from rgbify.cli import main
sys.exit(main(["build", "--out", sys.argv[1], "--count", "30", "--shard-size", "4", "--resolution", "8x6",
               "--samples", "1", "--quiet", "--no-preview"]))
"""


@pytest.mark.slow
def test_build_signals_at_random_moments_then_resume(tmp_path):
    """SIGINT, SIGTERM and SIGKILL, three of each at seeded random moments of a (fake-pool) build: INT and TERM
    exit 130 with one line; after all nine the same command finishes, nothing is half-published and every sample
    is the one an uninterrupted build makes."""
    import signal
    import subprocess
    import sys
    import time

    from rgbify.datasets.storage.shards import normalize_sample
    from tests.dataset_fakes import fake_sample

    root = str(Path(__file__).resolve().parents[1])
    d = tmp_path / "ds"
    rng = np.random.default_rng(7)
    hit = 0
    for sig in [signal.SIGINT, signal.SIGTERM, signal.SIGKILL] * 3:
        p = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(d), root], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
        deadline = time.monotonic() + 120
        while not folder.writer_active(d) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # until the build holds the dataset's lock
        time.sleep(float(rng.uniform(0.0, 0.5)))
        if p.poll() is None:
            p.send_signal(sig)
            hit += 1
        _, err = p.communicate(timeout=60)
        if sig != signal.SIGKILL and p.returncode != 0:
            # a signal that lands after the last sample, while the interpreter exits, may end it by the default
            # action: allowed only when the build it interrupts is complete
            finished = p.returncode == -sig and verify(d).ok and len(checksums(d)) == 30
            assert finished or (p.returncode == 130 and err.strip().splitlines() == ["rgbify: interrupted"]), (
                sig, p.returncode, err[-2000:])
        assert not list((d / "shards").glob("*.tmp")) or sig == signal.SIGKILL
    assert hit >= 6
    p = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(d), root], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert verify(d).ok
    assert checksums(d) == {i: normalize_sample(fake_sample(i))["checksum"] for i in range(30)}
    assert sorted(x.name for x in d.iterdir()) == [".lock", "dataset.json", "shards"]
    assert all(x.suffix == ".h5" for x in (d / "shards").iterdir())


def test_a_manifest_temporary_file_left_by_a_kill_is_swept(tmp_path):
    """A SIGKILL while dataset.json is published leaves dataset.json.PID.tmp: the next build (even into a folder
    whose first dataset.json was never published) goes on and removes it."""
    d = tmp_path / "ds"
    (d / "shards").mkdir(parents=True)
    (d / "dataset.json.4242.tmp").write_text('{"format": "rgbify-da')
    fake_build(d)
    assert sorted(x.name for x in d.iterdir()) == [".lock", "dataset.json", "shards"] and verify(d).ok
