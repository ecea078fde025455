"""``DIR/dataset.json``: what a dataset is (recipe config, seed, class table, versions) and which shards it has.

Fields (docs/datasets.md):
- ``format`` ("rgbify-dataset"), ``schema_version`` (this file's layout), ``conventions_version``
  (rgbify.CONVENTIONS_VERSION), ``rgbify_version``, ``blender_version``
- ``recipe`` (name or path as given), ``config`` (RecipeConfig.to_dict(): resolution, samples and everything else),
  ``assets`` (the --assets folder or null), ``seed`` (base seed), ``shard_size``, ``count`` (samples asked for)
- ``sampler_version``: rgbify.scenes.SAMPLER_VERSION of the code that sampled the scenes (absent: 1)
- ``config_hash``: sha256 of the canonical JSON of (recipe config, assets, seed, shard_size, sampler version); every
  shard carries it
- ``classes``: the class table (semantic index i + 1 names classes[i]; 0 = nothing hit / unlabeled)
- ``shards``: ``[{"file": "shards/shard-00000.h5", "samples": n, "first_index": i, "sha256": hex}, ...]``
- ``complete``: true once all ``count`` samples are in published shards
- ``fields``: per-sample field names with dtype and shape
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rgbify.datasets.storage.shards import ARRAY_FIELDS, MATRIX_FIELDS, STRING_FIELDS, ZLIB_FIELDS
from rgbify.fileio import publishing

MANIFEST_NAME = "dataset.json"
DATASET_FORMAT = "rgbify-dataset"
MANIFEST_SCHEMA_VERSION = 1


class ManifestError(ValueError):
    """dataset.json is missing, unreadable or not ours; the message names the file."""


def config_hash(config: dict[str, Any], assets: str | None, seed: int, shard_size: int,
                sampler_version: int = 1) -> str:
    """sha256 of what determines a dataset's samples. Sampler version 1 is left out of the key, so datasets built
    before the version was recorded keep their hash."""
    key: dict[str, Any] = {"config": config, "assets": assets, "seed": seed, "shard_size": shard_size}
    if sampler_version != 1:
        key["sampler_version"] = sampler_version
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def fields_table(width: int, height: int) -> dict[str, dict[str, Any]]:
    t: dict[str, dict[str, Any]] = {"index": {"dtype": "int64", "shape": []}, "seed": {"dtype": "int64", "shape": []}}
    for name, (dtype, ch) in ARRAY_FIELDS.items():
        t[name] = {"dtype": dtype, "shape": [height, width, ch] if ch else [height, width]}
    for name, shape in MATRIX_FIELDS.items():
        t[name] = {"dtype": "float64", "shape": list(shape)}
    for name in (*STRING_FIELDS, "checksum"):
        t[name] = {"dtype": "zlib+utf-8" if name in ZLIB_FIELDS else "str", "shape": []}
    return t


def load_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: {directory} is not an rgbify dataset "
                            "(build one with `rgbify build --out DIR`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: unreadable ({e})") from None
    if not isinstance(m, dict) or m.get("format") != DATASET_FORMAT:
        raise ManifestError(f"{path} is not an rgbify dataset manifest (format is not {DATASET_FORMAT!r})")
    if m.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise ManifestError(f"{path}: schema_version {m.get('schema_version')!r} is not "
                            f"{MANIFEST_SCHEMA_VERSION}; rebuild the dataset with this rgbify")
    return m


def save_manifest(directory: str | Path, manifest: dict[str, Any]) -> None:
    m = dict(manifest)
    m["shards"] = sorted(m.get("shards", []), key=lambda s: s["first_index"])
    with publishing(Path(directory) / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(m, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def num_published(manifest: dict[str, Any]) -> int:
    return sum(int(s["samples"]) for s in manifest.get("shards", []))
