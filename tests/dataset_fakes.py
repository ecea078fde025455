"""Test fixture only: synthetic samples shaped like a RenderResult, for unit tests of the storage layer.

The end-to-end tests (tests/test_build*.py) use real `rgbify build` renders; these fakes only let the shard writer,
manifest and verify be tested without Blender.
"""

from __future__ import annotations

import json

import numpy as np

from rgbify.scenes.spec import Camera, Object, Primitive, SceneSpec, spec_to_json

CLASSES = ("floor", "table", "lamp")


def fake_sample(index: int, h: int = 6, w: int = 8, seed: int = 0) -> dict:
    """A sound sample: a floor (id 1) in the lower half, a table (id 2) in a box, background above."""
    rng = np.random.default_rng(index)
    cam = Camera.from_hfov(w, h, 60.0)
    inst = np.zeros((h, w), np.int32)
    inst[h // 2:, :] = 1
    inst[1:h - 1, 1:w // 2] = 2
    class_of = {1: 1, 2: 2}
    sem = np.vectorize(lambda i: class_of.get(int(i), 0))(inst).astype(np.int32)
    hit = inst > 0
    depth = np.where(hit, 1.0 + rng.random((h, w)), np.inf).astype(np.float32)
    normals = np.zeros((h, w, 3), np.float32)
    normals[hit] = (0.0, 0.0, -1.0)
    edge = np.zeros((h, w), bool)
    edge[h // 2, :] = True
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    spec = SceneSpec(camera=cam, objects=(
        Object(name="floor", geometry=Primitive("plane"), class_name="floor", instance_id=1),
        Object(name="table", geometry=Primitive("box"), class_name="table", instance_id=2)),
        classes=CLASSES, meta=(("index", index), ("seed", seed)))
    instances = [{"id": i, "class_name": CLASSES[c - 1], "class_index": c, "object_name": CLASSES[c - 1],
                  "pixel_count": int((inst == i).sum())} for i, c in class_of.items()]
    return {"index": index, "seed": seed, "rgb": rgb, "depth": depth, "normals": normals, "instance": inst,
            "semantic": sem, "edge": edge, "K": cam.K, "world_from_camera": np.array(cam.world_from_camera),
            "spec": spec_to_json(spec), "instances": json.dumps(instances), "timings": json.dumps({"rgb": 0.1})}


def fake_dataset(tmp_path, n: int = 5, shard_size: int = 3, h: int = 6, w: int = 8, classes=CLASSES,
                 make_sample=fake_sample):
    """A published dataset folder of ``n`` fake samples (manifest + shards), as `rgbify build` lays it out;
    ``make_sample(index, h, w)`` and ``classes`` (the class table) for other content."""
    from rgbify.datasets.storage import shards as sh
    from rgbify.datasets.storage.folder import shard_file
    from rgbify.datasets.storage.manifest import fields_table, save_manifest

    d = tmp_path / "ds"
    (d / "shards").mkdir(parents=True)
    entries = []
    for k in range(sh.num_shards(n, shard_size)):
        r = sh.shard_range(k, shard_size, n)
        rel = shard_file(k)
        digest = sh.write_shard(d / rel, (make_sample(i, h, w) for i in r), shard=k, first_index=r.start,
                                count=len(r), config_hash="h", classes=classes)
        entries.append({"file": rel, "samples": len(r), "first_index": r.start, "sha256": digest})
    save_manifest(d, {"format": "rgbify-dataset", "schema_version": 1, "config_hash": "h", "classes": list(classes),
                      "shards": entries, "count": n, "width": w, "height": h, "seed": 0, "config": {},
                      "complete": True, "fields": fields_table(w, h), "shard_size": shard_size})
    return d


class FakePool:
    """A build pool (rgbify.datasets.build.pools) that renders sample i as fake_sample(i), without Blender; raises
    KeyboardInterrupt after ``die_after`` samples (a killed build)."""

    def __init__(self, cfg, die_after: int | None = None):
        from pathlib import Path

        self.out, self.storage, self.die_after = Path(cfg.out), cfg.storage, die_after
        self.rendered: list[int] = []

    def run(self, config, jobs):
        from rgbify.datasets.build.work import Rendered, write_part
        from rgbify.datasets.storage import folder
        from rgbify.datasets.storage.shards import write_sample_file

        for job in jobs:
            for i in job.todo:
                if len(self.rendered) == self.die_after:
                    raise KeyboardInterrupt
                path = folder.work_file(self.out, job.k, i)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_sample_file(path, fake_sample(i))
                self.rendered.append(i)
                yield Rendered(1)
            yield write_part(self.out, job, self.storage)


class FakeFirstScene:
    """Stands in for rgbify.scenes.sample_scene in the planner (which samples scene 0 for the class table), so that
    a fake build's dataset.json has the fake samples' class table and verifies clean."""

    classes = CLASSES

    def __init__(self, *args, **kw):
        pass
