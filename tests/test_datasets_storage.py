"""The storage layer without Blender: shard writer/reader, work files, manifest, verify, disk-full handling."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from rgbify.datasets.storage import shards as sh
from rgbify.datasets.storage.manifest import ManifestError, load_manifest
from rgbify.datasets.storage.verify import check_sample, verify
from tests.dataset_fakes import CLASSES, fake_dataset, fake_sample

FIELDS = ("rgb", "depth", "normals", "instance", "semantic", "edge", "K", "world_from_camera")


def _write(path, first=0, n=3, chash="abc"):
    return sh.write_shard(path, (fake_sample(i) for i in range(first, first + n)), shard=0, first_index=first,
                          count=n, config_hash=chash)


def test_shard_round_trip_one_chunk_per_sample(tmp_path):
    p = tmp_path / "shard-00000.h5"
    digest = _write(p)
    assert digest == sh.sha256_file(p)
    assert not (tmp_path / "shard-00000.h5.tmp").exists()
    with h5py.File(p) as f:
        assert f["rgb"].chunks == (1, 6, 8, 3) and f["depth"].chunks == (1, 6, 8)
        assert f["rgb"].fletcher32 and f.attrs["rgbify_format"] == "rgbify-shard"
    with sh.ShardReader(p) as r:
        assert len(r) == 3
        for j in range(3):
            got, want = r.read(j), fake_sample(j)
            for name in FIELDS:
                assert got[name].dtype == sh.normalize_sample(want)[name].dtype
                np.testing.assert_array_equal(got[name], want[name])
            assert got["spec"] == want["spec"] and int(got["index"]) == j
            assert sh.sample_checksum(got) == got["checksum"]


def test_direct_chunk_reads_equal_hdf5_reads(tmp_path):
    """ShardReader's direct path (libdeflate on the raw chunk, un-shuffle; small fields read once per shard)
    returns what HDF5 returns, writable, for the default filters, --storage fast and others; pipelines it does not
    know (lzf) are read through HDF5."""
    for filters in (None, sh.STORAGE["fast"], {n: {"compression": "lzf", "shuffle": True} for n in sh.IMAGE_FILTERS},
                    {n: {"compression": "gzip", "compression_opts": 1} for n in sh.IMAGE_FILTERS}):
        p = tmp_path / "shard-00000.h5"
        p.unlink(missing_ok=True)
        sh.write_shard(p, (fake_sample(i) for i in range(3)), shard=0, first_index=0, count=3, config_hash="abc",
                       filters=filters)
        with sh.ShardReader(p) as fast, sh.ShardReader(p, direct=False) as slow:
            fast.read(0)
            planned = {name: plan is not None for name, (_, plan) in fast._ds.items()}
            assert planned["depth"] == planned["normals"] == planned["rgb"] == ("lzf" not in str(filters))
            for j in range(3):
                a, b = fast.read(j), slow.read(j)
                for name in FIELDS:
                    assert a[name].dtype == b[name].dtype and a[name].flags.writeable
                    np.testing.assert_array_equal(a[name], b[name])
                assert (a["index"], a["seed"]) == (b["index"], b["seed"]) == (j, b["seed"])
                a["K"][0, 0] = -1.0  # small fields are read once per shard: each read gets its own copy
                assert fast.read(j, ["K"])["K"][0, 0] == b["K"][0, 0]
        if filters is None:
            with h5py.File(p) as f:
                assert not f["normals"].shuffle and f["depth"].shuffle  # the defaults (see IMAGE_FILTERS)


def test_fast_storage_keeps_rgb_uncompressed(tmp_path):
    """--storage fast: RGB in deflate's stored blocks (a chunk as large as the pixels plus a few bytes), every other
    field as the default; the samples read back equal."""
    a, b = tmp_path / "compact.h5", tmp_path / "fast.h5"
    sh.write_shard(a, (fake_sample(i, 48, 64) for i in range(2)), shard=0, first_index=0, count=2, config_hash="x")
    sh.write_shard(b, (fake_sample(i, 48, 64) for i in range(2)), shard=0, first_index=0, count=2, config_hash="x",
                   filters=sh.STORAGE["fast"])
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert fb["rgb"].compression_opts == 0 and fa["rgb"].compression_opts == 6
        assert 48 * 64 * 3 < fb["rgb"].id.get_chunk_info(0).size < 48 * 64 * 3 + 64
        assert all(fa[n].compression_opts == fb[n].compression_opts for n in sh.ARRAY_FIELDS if n != "rgb")
    with sh.ShardReader(a) as ra, sh.ShardReader(b) as rb:
        for j in range(2):
            assert sh.sample_checksum(rb.read(j)) == ra.read(j)["checksum"] == rb.read(j)["checksum"]


@pytest.mark.parametrize("field,filters", [("depth", None), ("rgb", "fast")])
def test_direct_read_of_a_corrupt_chunk_raises_shard_error(tmp_path, field, filters):
    """A flipped byte in a chunk (deflated, or RGB in stored blocks) fails zlib's Adler-32 on the direct path and
    Fletcher-32 through HDF5."""
    p = tmp_path / "shard-00000.h5"
    sh.write_shard(p, (fake_sample(i) for i in range(3)), shard=0, first_index=0, count=3, config_hash="abc",
                   filters=sh.STORAGE.get(filters))
    with h5py.File(p) as f:
        ds = f[field]
        offset = ds.id.get_chunk_info_by_coord((1, *(0,) * (ds.ndim - 1))).byte_offset
    raw = bytearray(p.read_bytes())
    raw[offset + 20] ^= 0xFF
    p.write_bytes(bytes(raw))
    for direct in (True, False):
        with sh.ShardReader(p, direct=direct) as r:
            r.read(0)
            with pytest.raises(sh.ShardError, match=f"sample 1: cannot read '{field}'"):
                r.read(1, (field,))


def test_work_file_round_trip_and_corruption(tmp_path):
    p = tmp_path / "000000005.npz"
    sh.write_sample_file(p, fake_sample(5))
    s = sh.read_sample_file(p)
    np.testing.assert_array_equal(s["depth"], fake_sample(5)["depth"])
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(sh.ShardError, match="unreadable"):
        sh.read_sample_file(p)


def test_wrong_order_or_count_is_refused_and_nothing_published(tmp_path):
    p = tmp_path / "s.h5"
    with pytest.raises(sh.ShardError, match="expected 1"):
        sh.write_shard(p, [fake_sample(0), fake_sample(2)], shard=0, first_index=0, count=2, config_hash="x")
    with pytest.raises(sh.ShardError, match="got 1 samples, expected 2"):
        sh.write_shard(p, [fake_sample(0)], shard=0, first_index=0, count=2, config_hash="x")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_mid_shard_publishes_nothing(tmp_path, monkeypatch):
    """A write that fails half-way (ENOSPC) leaves neither a shard nor a temporary file."""
    p = tmp_path / "s.h5"
    old = _write(p)

    def samples():
        yield fake_sample(0)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        sh.write_shard(p, samples(), shard=0, first_index=0, count=3, config_hash="abc")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s.h5"]
    assert sh.sha256_file(p) == old


def test_foreign_hdf5_is_refused(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(sh.ShardError, match="not an rgbify shard"):
        sh.open_shard(p)
    q = tmp_path / "garbage.h5"
    q.write_bytes(b"not hdf5 at all")
    with pytest.raises(sh.ShardError, match="not a readable HDF5"):
        sh.open_shard(q)


def test_shards_describe_themselves(tmp_path):
    """Every field carries description, units, frame, invalid value, codec and a pointer to the docs; the file carries
    the class table and where the conventions are written; h5dump -A (no rgbify, no Python) shows all of it."""
    d = fake_dataset(tmp_path)
    p = d / "shards" / "shard-00000.h5"
    with h5py.File(p) as f:
        assert list(f.attrs["classes"]) == list(CLASSES)
        assert f.attrs["conventions"].startswith("docs/conventions.md") and f.attrs["conventions_version"] == "1"
        for name in sh.ALL_FIELDS:
            attrs = dict(f[name].attrs)
            assert {"description", "units", "frame", "invalid", "codec", "docs"} <= set(attrs), name
            assert all(isinstance(v, str) and v for k, v in attrs.items() if k != "encoding"), name
        assert f["depth"].attrs["units"] == "metres" and "+inf" in f["depth"].attrs["invalid"]
        assert "OpenCV" in f["normals"].attrs["frame"] and "(0, 0, 0)" in f["normals"].attrs["invalid"]
        assert "classes[i]" in f["semantic"].attrs["units"] and "zlib" in f["spec"].attrs["codec"]
    with sh.ShardReader(p) as r:  # the attributes change nothing a reader reads
        assert set(r.read(0)) == set(sh.ALL_FIELDS)
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed (apt install hdf5-tools; scripts/setup.sh does where apt exists)")
    text = subprocess.run([h5dump, "-A", str(p)], capture_output=True, text=True, check=True).stdout
    for needle in ('"metres"', "+inf where nothing is hit", "OpenCV camera: +x right, +y down, +z forward",
                   "zlib-compressed UTF-8", '"floor", "table", "lamp"', "docs/conventions.md section 2"):
        assert needle in text, needle


def test_verify_checks_the_shard_class_table(tmp_path):
    d = fake_dataset(tmp_path)
    m = load_manifest(d)
    m["classes"] = ["floor", "table", "chair"]
    (d / "dataset.json").write_text(json.dumps(m))
    text = verify(d).text()
    assert "shards/shard-00000.h5: its class table (attribute classes) differs from dataset.json's" in text


def test_verify_cleanfake_dataset(tmp_path):
    rep = verify(fake_dataset(tmp_path))
    assert rep.ok, rep.text()
    assert rep.samples_checked == 5 and rep.shards_checked == 2


def test_verify_names_shard_and_sample_of_corruption(tmp_path):
    d = fake_dataset(tmp_path)
    p = d / "shards" / "shard-00001.h5"
    with h5py.File(p, "r+") as f:  # change one depth value of sample 4 (shard 1, position 1)
        a = f["depth"][1]
        a[0, 0] = np.nan
        f["depth"][1] = a
    rep = verify(d)
    assert not rep.ok
    text = rep.text()
    assert "shards/shard-00001.h5: sha256 differs" in text
    assert "shards/shard-00001.h5: sample 4: checksum mismatch" in text
    assert "sample 4: depth has 1 NaN" in text
    assert "shard-00000" not in text
    assert verify(d, jobs=2).text() == text  # shards checked in worker processes: the same report, same order
    assert verify(d, jobs=2, max_problems_per_shard=1).text() == verify(d, max_problems_per_shard=1).text()


def test_verify_truncated_shard(tmp_path):
    d = fake_dataset(tmp_path)
    p = d / "shards" / "shard-00000.h5"
    p.write_bytes(p.read_bytes()[:2000])
    rep = verify(d)
    assert not rep.ok and "shards/shard-00000.h5" in rep.text()


def test_check_sample_invariants():
    s = sh.normalize_sample(fake_sample(0))
    assert check_sample(s, list(CLASSES)) == []
    bad = dict(s)
    bad["semantic"] = s["semantic"].copy()
    bad["semantic"][5, 0] = 3  # floor pixel labelled lamp
    bad["normals"] = s["normals"] * 2
    bad["depth"] = s["depth"].copy()
    bad["depth"][0, 0] = 2.0  # nothing hit but finite depth
    probs = " | ".join(check_sample(bad, list(CLASSES)))
    assert "instance 1 (floor): 1 pixel(s) with semantic != 1" in probs
    assert "non-unit normals" in probs
    assert "instance 0 but depth not +inf" in probs
    flipped = dict(s, normals=-s["normals"])
    assert any("face away" in p for p in check_sample(flipped, list(CLASSES)))


def test_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="not an rgbify dataset"):
        load_manifest(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ManifestError, match="not an rgbify dataset manifest"):
        load_manifest(tmp_path)


def test_cli_verify_exit_codes(tmp_path, capsys):
    from rgbify.cli import main

    d = fake_dataset(tmp_path)
    assert main(["verify", str(d)]) == 0
    assert "OK" in capsys.readouterr().out
    p = d / "shards" / "shard-00000.h5"
    p.write_bytes(p.read_bytes()[:-100])
    assert main(["verify", str(d)]) == 1
    assert "PROBLEM: shards/shard-00000.h5" in capsys.readouterr().out
    foreign = tmp_path / "x.h5"
    with h5py.File(foreign, "w") as f:
        f["a"] = 1
    assert main(["verify", str(foreign)]) == 2
    assert "not an rgbify shard" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "is not an rgbify dataset" in capsys.readouterr().err
    assert main(["verify", str(d), "--jobs", "0"]) == 2
    assert "--jobs 0 must be a positive integer" in capsys.readouterr().err


def test_resolution_argument():
    import argparse

    from rgbify.datasets.build.config import parse_size as _resolution

    assert _resolution("256") == (256, 256) and _resolution("320x240") == (320, 240)
    for bad in ("0", "x", "3x4x5", "-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            _resolution(bad)


@pytest.mark.parametrize("budget", [0, 700, 5000])
def test_work_file_write_failure_leaves_nothing(tmp_path, monkeypatch, budget):
    """The disk fills while a work file is written (at its first byte, inside a member, at the zip's directory):
    OSError, no file left, and no second report from an unclosed zip ("Exception ignored in ZipFile.__del__")."""
    import gc
    import sys

    from tests.fault_shims import full_disk_open

    monkeypatch.setattr(sh, "open", full_disk_open(budget), raising=False)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(OSError) as e:
        sh.write_sample_file(tmp_path / "000000001.npz", fake_sample(1))
    assert e.value.errno == errno.ENOSPC
    gc.collect()
    assert unraisable == []
    assert list(tmp_path.iterdir()) == []


def test_repack_resumes_and_refuses(tmp_path, monkeypatch):
    """repack: the copy holds the same samples stored as asked and verifies; a repack killed mid-way resumes and
    writes only the shards still missing; a second run writes none; it never writes over the source or a folder
    that is not a repack of the same dataset."""
    from rgbify.datasets.storage import repack as rp
    from rgbify.datasets.storage.reader import DatasetReader
    from rgbify.errors import UserError

    src = fake_dataset(tmp_path, n=7, shard_size=3)
    dst = tmp_path / "fast"
    real, calls = rp.write_shard, []

    def dies_on_the_second(*a, **k):
        calls.append(a[0])
        if len(calls) == 2:
            raise OSError("killed")
        return real(*a, **k)

    monkeypatch.setattr(rp, "write_shard", dies_on_the_second)
    with pytest.raises(OSError, match="killed"):
        rp.repack(src, dst, "fast", log=lambda m: None)
    monkeypatch.setattr(rp, "write_shard", real)
    assert rp.repack(src, dst, "fast", log=lambda m: None) == 2  # shards 1 and 2; shard 0 was kept
    assert rp.repack(src, dst, "fast", log=lambda m: None) == 0
    m = load_manifest(dst)
    assert m["storage"] == "fast" and m["complete"] and m["config_hash"] == load_manifest(src)["config_hash"]
    assert not verify(dst).problems
    a, b = DatasetReader(src), DatasetReader(dst)
    for i in range(7):
        x, y = a.read(i), b.read(i)
        assert x["checksum"] == y["checksum"] and all(np.array_equal(x[f], y[f]) for f in FIELDS)
    with h5py.File(dst / "shards/shard-00001.h5") as f:
        assert f["rgb"].compression_opts == 0 and f.attrs["shard"] == 1 and f.attrs["first_index"] == 3
    for out, storage, needle in ((src, "fast", "is the dataset being repacked"),
                                 (dst, "compact", "holds another dataset"),
                                 (tmp_path, "fast", "is not empty and is not an rgbify dataset")):
        with pytest.raises(UserError, match=needle):
            rp.repack(src, out, storage, log=lambda m: None)


def test_sha256_files_equal_one_at_a_time(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(np.random.default_rng(i).bytes(3 << 20 if i == 2 else 1000 * i))
    assert sh.sha256_files(paths) == {p: sh.sha256_file(p) for p in paths}
    assert sh.sha256_files([]) == {}


def test_the_header_check(tmp_path):
    """One check of a shard's header (resume scan, publishing, verify): the dataset's config hash and the samples
    it must hold, exactly or (a short last shard being extended) as a non-empty prefix."""
    p = tmp_path / "shard-00001.h5"
    _write(p, first=3, n=2)
    with sh.open_shard(p) as f:
        assert sh.check_header(f, "s1", "abc", range(3, 5)) == 2
        assert sh.check_header(f, "s1", "abc", range(3, 6), prefix=True) == 2
        with pytest.raises(sh.ShardError, match="s1: belongs to another dataset"):
            sh.check_header(f, "s1", "other", range(3, 5))
        with pytest.raises(sh.ShardError, match=r"s1: holds samples \[3, 5\), expected \[3, 6\)"):
            sh.check_header(f, "s1", "abc", range(3, 6))
        with pytest.raises(sh.ShardError, match=r"expected a prefix of \[0, 3\)"):
            sh.check_header(f, "s1", "abc", range(0, 3), prefix=True)
    assert sh.check_shard(p, "abc", range(3, 5)) == 2


def test_a_second_writer_is_refused(tmp_path):
    from rgbify.datasets.storage import folder
    from rgbify.errors import UserError

    folder.prepare(tmp_path / "ds")
    with folder.locked(tmp_path / "ds"):
        with pytest.raises(UserError, match="another rgbify process"):
            with folder.locked(tmp_path / "ds"):
                pass
    with folder.locked(tmp_path / "ds"):  # released
        pass
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [".lock"]


def test_storage_choices_are_the_filters_the_shards_know():
    """`rgbify build --storage` (a standard-library config, for a fast --help) offers exactly the filter sets."""
    import typing

    from rgbify.datasets.build.config import Storage

    assert typing.get_args(Storage) == tuple(sh.STORAGE)
