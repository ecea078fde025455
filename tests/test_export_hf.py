"""Exports that stock tools read: the PNG export is a Hugging Face ``imagefolder`` (metadata.jsonl, no file that
``datasets`` would take for a split), ``load_dataset("imagefolder", data_dir=OUT)`` loads every row with both
images decoded; every prompt fits CLIP's 77 tokens, a scene with more classes than one compact prompt lists is
split into several items that together ask for each class once.

The ``datasets`` load runs in an interpreter that has it: $RGBIFY_HF_PYTHON (a separate venv: recent ``datasets``
needs numpy 2, bpy pins 1.26; ``python benchmarks/hf_export_check.py`` makes one and runs this file with it), or
this one where ``datasets`` imports."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rgbify.datasets.export import export
from rgbify.encode import COMPACT_MAX_CLASSES, decode_target
from rgbify.scenes import CLASSES
from tests.dataset_fakes import fake_dataset as _fake_dataset
from tests.dataset_fakes import fake_sample

N_CLASSES = 21  # sample 0 shows 21 classes: two compact prompts (11 + 10)
SPLIT_WORDS = re.compile(r"(^|[^a-z])(train|training|test|testing|eval|evaluation|valid|validation|dev)([^a-z]|$)")


def _sample(index: int, h: int, w: int) -> dict:
    """fake_sample, but sample 0 shows N_CLASSES classes of rgbify's vocabulary in vertical stripes."""
    s = fake_sample(index, h, w)
    if index == 0:
        cls = (np.arange(w) * N_CLASSES // w + 1).astype(np.int32)
        s["semantic"] = np.tile(cls, (h, 1))
        s["instance"] = s["semantic"].copy()
        s["instances"] = json.dumps(
            [
                {
                    "id": int(c),
                    "class_name": CLASSES[c - 1],
                    "class_index": int(c),
                    "object_name": f"o{c}",
                    "pixel_count": h,
                }
                for c in range(1, N_CLASSES + 1)
            ]
        )
    else:  # the fake's classes floor (1) and table (2) are rgbify's 2 and 6
        s["semantic"] = np.select([s["semantic"] == 1, s["semantic"] == 2], [2, 6], 0).astype(np.int32)
    return s


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hf")
    ds = _fake_dataset(tmp, n=3, shard_size=2, h=6, w=2 * N_CLASSES, classes=CLASSES, make_sample=_sample)
    assert export(ds, tmp / "png", tasks=("depth", "normals", "semantic", "instance")) == 3 * 4 + 1
    export(ds, tmp / "wds", fmt="webdataset", tasks=("semantic",))
    return tmp


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_png_export_is_an_imagefolder_with_prompts_that_fit(exported):
    out = exported / "png"
    names = [p.relative_to(out).as_posix() for p in out.rglob("*")]
    assert not [n for n in names if SPLIT_WORDS.search(n.lower())]  # datasets would take it for a split
    rows, plain = _rows(out / "metadata.jsonl"), _rows(out / "pairs.jsonl")
    assert len(rows) == len(plain) == 13 and not (out / "train.jsonl").exists()
    asked = []
    for row, p in zip(rows, plain, strict=True):
        assert row["input_image_file_name"] == p["input_image"] and row["edited_image_file_name"] == p["edited_image"]
        assert row["edit_prompt"] == p["edit_prompt"] and json.loads(row["decode"]) == p["decode"]  # a JSON string
        assert (out / row["input_image_file_name"]).is_file() and (out / row["edited_image_file_name"]).is_file()
        if row["task"] == "semantic" and row["index"] == 0:
            target = np.asarray(Image.open(out / row["edited_image_file_name"]))
            labels = decode_target(target, row["decode"])
            mine = [c["index"] for c in p["decode"]["classes"]]
            stripes = _sample(0, 6, 2 * N_CLASSES)["semantic"]
            assert np.array_equal(labels, np.where(np.isin(stripes, mine), stripes, 0))
            asked.append(mine)
    assert [r["edited_image_file_name"] for r in rows if r["index"] == 0 and r["task"] == "semantic"] == [
        "images/000000000_semantic.png",
        "images/000000000_semantic-1.png",
    ]
    assert sorted(c for a in asked for c in a) == list(range(1, N_CLASSES + 1))  # each class once
    assert max(len(a) for a in asked) <= COMPACT_MAX_CLASSES

    pytest.importorskip("transformers")
    from rgbify.train.tokens import CLIP_WINDOW, clip_tokenizer, token_count

    tok = clip_tokenizer()
    counts = [token_count(tok, r["edit_prompt"]) for r in rows]
    assert max(counts) <= CLIP_WINDOW, max(counts)
    with tarfile.open(exported / "wds" / "rgbify-000000.tar") as t:
        keys = sorted({m.name.split(".")[0] for m in t.getmembers()})
        texts = [t.extractfile(m).read().decode() for m in t.getmembers() if m.name.endswith(".txt")]
    assert keys == ["000000000_semantic", "000000000_semantic-1", "000000001_semantic", "000000002_semantic"]
    assert max(token_count(tok, x) for x in texts) <= CLIP_WINDOW


LOADER = r"""
import hashlib, json, sys
import numpy as np
import datasets
ds = datasets.load_dataset("imagefolder", data_dir=sys.argv[1], split="train", cache_dir=sys.argv[2])
rows = []
for r in ds:
    rows.append({k: (hashlib.sha256(np.asarray(v).tobytes()).hexdigest() + f" {v.size}") if hasattr(v, "size")
                 and not isinstance(v, (str, int)) else v for k, v in r.items()})
print(json.dumps({"version": datasets.__version__, "columns": ds.column_names, "rows": rows}))
"""


def _hf_python() -> str | None:
    env = os.environ.get("RGBIFY_HF_PYTHON")
    if env:
        return env
    return sys.executable if importlib.util.find_spec("datasets") else None


def test_datasets_loads_the_png_export(exported, tmp_path):
    python = _hf_python()
    if python is None:
        pytest.skip("no interpreter with Hugging Face datasets: run python benchmarks/hf_export_check.py")
    out = exported / "png"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [python, "-c", LOADER, str(out), str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["columns"][:3] == ["input_image", "edited_image", "edit_prompt"]

    def digest(rel):
        img = Image.open(out / rel)
        return hashlib.sha256(np.asarray(img).tobytes()).hexdigest() + f" {img.size}"

    expected = sorted(
        (
            r["index"],
            r["edit_prompt"],
            digest(r["input_image_file_name"]),
            digest(r["edited_image_file_name"]),
            r["task"],
            r["decode"],
        )
        for r in _rows(out / "metadata.jsonl")
    )
    got = sorted(
        (r["index"], r["edit_prompt"], r["input_image"], r["edited_image"], r["task"], r["decode"])
        for r in loaded["rows"]
    )
    assert len(got) == len(expected) == 13 and got == expected  # every row, both images decoded
