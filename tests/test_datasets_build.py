"""The build's planner without Blender: handed a pool that writes fake samples (tests/dataset_fakes.py), it plans,
publishes, resumes and extends as with real renders (those are tests/test_build_e2e.py and test_scale_ray.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rgbify.datasets.build.config import BuildConfig
from rgbify.datasets.build.planner import Planner
from rgbify.datasets.storage import folder
from rgbify.datasets.storage.reader import DatasetReader
from tests.dataset_fakes import FakePool, fake_sample


def cfg_for(out: Path, count: int) -> BuildConfig:
    return BuildConfig(out=out, count=count, shard_size=3, resolution=(8, 6), samples=1)


def run(cfg: BuildConfig, **kw) -> tuple[FakePool, object]:
    pool = FakePool(cfg, **kw)
    return pool, Planner(cfg, pool, log=lambda msg: None).run()


def checksums(d: Path) -> dict[int, str]:
    r = DatasetReader(d)
    out = {i: r.read(i, ["checksum"])["checksum"] for i in r.indices}
    r.close()
    return out


def test_plan_publish_resume_extend(tmp_path):
    d = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):  # killed after 4 samples: shard 0 published, sample 3 in a work file
        run(cfg_for(d, 5), die_after=4)
    m = json.loads((d / "dataset.json").read_text())
    assert [s["file"] for s in m["shards"]] == ["shards/shard-00000.h5"] and not m["complete"]
    assert sorted(p.name for p in (d / ".work/shard-00001").iterdir()) == ["000000003.npz"]
    pool, stats = run(cfg_for(d, 5))
    assert pool.rendered == [4] and (stats.done_before, stats.rendered, stats.total) == (4, 1, 5)
    assert sorted(p.name for p in d.iterdir()) == [".lock", "dataset.json", "shards"]
    pool, stats = run(cfg_for(d, 7))  # extends: the short shard 1 is rewritten with sample 5, shard 2 is new
    assert pool.rendered == [5, 6] and stats.done_before == 5
    assert sorted(p.name for p in (d / "shards").iterdir()) == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    assert checksums(d) == {i: fake_sample_checksum(i) for i in range(7)}
    pool, stats = run(cfg_for(d, 7))
    assert pool.rendered == [] and stats.rendered == 0


def fake_sample_checksum(i: int) -> str:
    from rgbify.datasets.storage.shards import normalize_sample

    return normalize_sample(fake_sample(i))["checksum"]


def test_unpublished_parts_are_removed_and_a_bad_part_is_refused(tmp_path):
    """Part files a dead pool left are removed on start; a part whose header does not fit is never published."""
    from rgbify.errors import UserError

    class OtherDataset(FakePool):
        def run(self, config, jobs):  # writes its shards with another dataset's config hash
            return super().run(config, [dataclasses.replace(job, config_hash="other") for job in jobs])

    d = tmp_path / "ds"
    cfg = cfg_for(d, 3)
    (d / "shards").mkdir(parents=True)
    (d / "shards" / f"shard-00000.h5{folder.PART}dead").write_bytes(b"half")
    with pytest.raises(UserError, match="belongs to another dataset"):
        Planner(cfg, OtherDataset(cfg), log=lambda msg: None).run()
    assert sorted(p.name for p in (d / "shards").iterdir()) == []
    pool, _ = run(cfg)
    assert pool.rendered == []  # the work files were kept
    assert sorted(p.name for p in (d / "shards").iterdir()) == ["shard-00000.h5"]


def test_a_dataset_of_another_sampler_version_is_refused(tmp_path, monkeypatch):
    """dataset.json records the scene sampler's version and the config hash covers it: a dataset without the field
    counts as version 1 (its hash unchanged) and can be extended by version 1; a build with another version into
    it is refused in one line that says why and what to do, and changes nothing."""
    from rgbify.datasets.build import planner
    from rgbify.errors import UserError

    monkeypatch.setattr(planner, "SAMPLER_VERSION", 1)  # a dataset made before version 2
    d = tmp_path / "ds"
    run(cfg_for(d, 2))
    m = json.loads((d / "dataset.json").read_text())
    assert m["sampler_version"] == 1
    del m["sampler_version"]  # as written before the field existed
    (d / "dataset.json").write_text(json.dumps(m))
    run(cfg_for(d, 4))
    extended = json.loads((d / "dataset.json").read_text())
    assert extended["sampler_version"] == 1 and extended["config_hash"] == m["config_hash"]
    before = (d / "dataset.json").read_bytes()
    monkeypatch.setattr(planner, "SAMPLER_VERSION", 2)
    with pytest.raises(UserError) as e:
        run(cfg_for(d, 5))
    assert len(str(e.value).splitlines()) == 1
    assert "scene sampler version 1" in str(e.value) and "version 2" in str(e.value) and "new --out" in str(e.value)
    assert (d / "dataset.json").read_bytes() == before
    run(cfg_for(tmp_path / "v2", 2))
    v2 = json.loads((tmp_path / "v2" / "dataset.json").read_text())
    assert v2["sampler_version"] == 2 and v2["config_hash"] != m["config_hash"]


def test_a_dataset_whose_scenes_use_third_party_models_lists_their_credits(tmp_path, monkeypatch):
    """Scenes that record catalogue models in spec.meta["assets"] get CREDITS.md and credits.json in the dataset
    (a dataset of procedural scenes has neither: test_plan_publish_resume_extend)."""
    by = {"id": "Scopia/003-bed1", "name": "Bed", "creator": "Scopia", "holder": "Scopia Visual Interfaces",
          "licence": "CC-BY-3.0", "source": "Sweet Home 3D furniture library: Scopia catalog"}
    cc0 = {"id": "BlendSwap-CC-0/027-oak-table", "name": "Oak table", "creator": "Blend Swap", "holder": "",
           "licence": "CC0-1.0", "source": "Sweet Home 3D furniture library: Blend Swap CC-0"}

    plain = fake_sample

    def with_assets(i, *a, **k):
        s = plain(i, *a, **k)
        spec = json.loads(s["spec"])
        spec["meta"].append(["assets", [by, cc0] if i % 2 else [cc0]])
        s["spec"] = json.dumps(spec)
        return s

    import tests.dataset_fakes as fakes

    monkeypatch.setattr(fakes, "fake_sample", with_assets)  # what FakePool writes
    d = tmp_path / "ds"
    run(cfg_for(d, 4))
    entries = json.loads((d / "credits.json").read_text())
    assert [(e["id"], e["samples"]) for e in entries] == [("Scopia/003-bed1", 2),
                                                          ("BlendSwap-CC-0/027-oak-table", 4)]
    text = (d / "CREDITS.md").read_text()
    assert '"Bed" by Scopia' in text and "CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/)" in text
    assert "Oak table" not in text and "1 model(s) from Sweet Home 3D furniture library: Blend Swap CC-0" in text
