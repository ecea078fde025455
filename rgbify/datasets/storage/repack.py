"""``rgbify repack SRC --storage fast --out DST``: a copy of a dataset with its shards rewritten for another
``--storage`` choice (rgbify.datasets.storage.shards.STORAGE), without rendering anything.

The samples are unchanged (their checksums cover the arrays, not the filters), and so is the config hash: ``rgbify
build --out DST --storage <the new choice>`` extends the copy. Shards are written one at a time, each atomically,
and DST/dataset.json lists each as it lands, so a killed repack resumes where it stopped when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rgbify.datasets.storage import folder
from rgbify.datasets.storage.manifest import MANIFEST_NAME, ManifestError, load_manifest, save_manifest
from rgbify.datasets.storage.shards import STORAGE, ShardReader, sha256_files, write_shard
from rgbify.errors import UserError


def repack(src: str | Path, dst: str | Path, storage: str, log: Callable[[str], None] = print) -> int:
    """Copy the published shards of the dataset at ``src`` to ``dst`` stored as ``storage``; return the number of
    shards written now (shards a previous, interrupted run already wrote are kept)."""
    src, dst = Path(src), Path(dst)
    if storage not in STORAGE:
        raise UserError(f"--storage {storage!r} is not one of {', '.join(STORAGE)}")
    m = load_manifest(src)
    if "clip" in m:
        raise UserError(f"{src} is a dataset of clips; clip shards have one storage (compact) and are not repacked")
    if dst.resolve() == src.resolve():
        raise UserError(f"--out {dst} is the dataset being repacked; choose a new folder")
    created = not dst.exists()
    folder.prepare(dst)
    try:
        return _repack(src, dst, storage, m, log)
    except BaseException:
        if created:  # refused or stopped before its first shard: no empty folder left
            folder.remove_if_empty(dst)
        raise


def _repack(src: Path, dst: Path, storage: str, m: dict, log: Callable[[str], None]) -> int:
    with folder.locked(dst):
        done: dict[str, str] = {}
        if (dst / MANIFEST_NAME).exists():
            try:
                old = load_manifest(dst)
            except ManifestError as e:
                raise UserError(f"--out {dst}: {e}") from None
            if old.get("config_hash") != m["config_hash"] or old.get("storage", "compact") != storage:
                raise UserError(f"--out {dst} holds another dataset (or another --storage); choose a new folder")
            done = {s["file"]: s["sha256"] for s in old["shards"]}
        (dst / folder.SHARDS_DIR).mkdir(exist_ok=True)
        folder.remove_unpublished(dst)  # a shard being written when a repack was killed
        have = sha256_files(dst / f for f in done if (dst / f).exists())  # what an earlier run left in place
        out = {**m, "storage": storage, "shards": [], "complete": False}
        written = 0
        for entry in sorted(m["shards"], key=lambda s: s["first_index"]):
            path = dst / entry["file"]
            digest = done.get(entry["file"])
            if digest is None or have.get(path) != digest:
                with ShardReader(src / entry["file"]) as r:
                    n, shard = len(r), int(entry["first_index"]) // int(m["shard_size"])
                    digest = write_shard(path, (r.read(j) for j in range(n)), shard=shard,
                                         first_index=int(entry["first_index"]), count=n,
                                         config_hash=m["config_hash"], filters=STORAGE[storage],
                                         classes=m["classes"])
                written += 1
                log(f"{entry['file']}: {n} samples")
            out["shards"].append({**entry, "sha256": digest})
            save_manifest(dst, out)
        save_manifest(dst, {**out, "complete": m.get("complete", False)})
    return written
