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
import re
from pathlib import Path
from typing import Any

from rgbify.datasets.storage.shards import ARRAY_FIELDS, MATRIX_FIELDS, STRING_FIELDS, ZLIB_FIELDS, nearly_equal
from rgbify.fileio import publishing

MANIFEST_NAME = "dataset.json"
DATASET_FORMAT = "rgbify-dataset"
MANIFEST_SCHEMA_VERSION = 1


class ManifestError(ValueError):
    """dataset.json is missing, unreadable or not ours; the message names the file."""


class ManifestCorrupt(ManifestError):
    """dataset.json exists but cannot be read or holds malformed fields (a damaged file, not another tool's):
    ``rgbify verify`` reports it as a problem and ``rgbify build`` with the dataset's settings rebuilds it from the
    shards."""


SHARD_FILE = re.compile(r"shards/shard-\d{5,}\.h5")
"""How dataset.json names a shard: always a file in the dataset's own shards/ folder."""

_INT_FIELDS = {"count": 0, "width": 1, "height": 1, "seed": None, "shard_size": 1}
"""Integer fields of dataset.json and their smallest value (None: any)."""


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


def load_manifest(directory: str | Path, check: bool = True) -> dict[str, Any]:
    """dataset.json of ``directory``. ManifestError if there is none, if it is another tool's file or of another
    schema version; ManifestCorrupt if it is damaged (unreadable bytes, not JSON, or, with ``check``, a field that
    is missing or malformed: see :func:`check_manifest`)."""
    path = Path(directory) / MANIFEST_NAME
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: {directory} is not an rgbify dataset "
                            "(build one with `rgbify build --out DIR`)") from None
    except IsADirectoryError:
        raise ManifestError(f"{path} is a folder, not an rgbify dataset manifest") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ManifestCorrupt(f"{path}: unreadable ({type(e).__name__}: {_one_line(e)})") from None
    if not isinstance(m, dict):
        raise ManifestCorrupt(f"{path}: holds a JSON {type(m).__name__}, not an object")
    if m.get("format") != DATASET_FORMAT:
        if isinstance(m.get("format"), str) and nearly_equal(m["format"], DATASET_FORMAT):  # a damaged byte
            raise ManifestCorrupt(f"{path}: format {m['format']!r} is damaged (expected {DATASET_FORMAT!r})")
        raise ManifestError(f"{path} is not an rgbify dataset manifest (format is not {DATASET_FORMAT!r})")
    if m.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise ManifestError(f"{path}: schema_version {m.get('schema_version')!r} is not "
                            f"{MANIFEST_SCHEMA_VERSION}; rebuild the dataset with this rgbify")
    if check:
        problem = check_manifest(m)
        if problem:
            raise ManifestCorrupt(f"{path}: {problem}")
    return m


def check_manifest(m: dict[str, Any]) -> str | None:
    """The first malformed field of a parsed dataset.json (what readers rely on: the counts, sizes, class table
    and shard list), or None. Shard files must lie in the dataset's own shards/ folder."""
    for key, low in _INT_FIELDS.items():
        v = m.get(key)
        if not _is_int(v) or (low is not None and v < low):
            return f"{key} is {_short(v)}, expected an integer" + (f" >= {low}" if low is not None else "")
    for key, kind in (("config_hash", str), ("config", dict), ("classes", list), ("shards", list)):
        if not isinstance(m.get(key), kind):
            return f"{key} is {_short(m.get(key))}, expected a JSON {kind.__name__}"
    if not all(isinstance(c, str) for c in m["classes"]):
        return "classes holds a value that is not a class name"
    if not isinstance(m.get("complete", False), bool):
        return f"complete is {_short(m.get('complete'))}, expected true or false"
    for e in m["shards"]:
        if not isinstance(e, dict):
            return f"shards holds {_short(e)}, expected an object"
        f = e.get("file")
        if not isinstance(f, str) or not SHARD_FILE.fullmatch(f):
            return f"shards lists file {_short(f)}, expected shards/shard-KKKKK.h5 inside the dataset"
        if not (_is_int(e.get("samples")) and e["samples"] >= 1 and _is_int(e.get("first_index"))
                and e["first_index"] >= 0 and isinstance(e.get("sha256"), str)):
            return f"shard entry of {f} is malformed ({_short(e)})"
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())



def save_manifest(directory: str | Path, manifest: dict[str, Any]) -> None:
    m = dict(manifest)
    m["shards"] = sorted(m.get("shards", []), key=lambda s: s["first_index"])
    with publishing(Path(directory) / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(m, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def num_published(manifest: dict[str, Any]) -> int:
    return sum(int(s["samples"]) for s in manifest.get("shards", []))
