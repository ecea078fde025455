"""Read a built dataset by global sample index (no torch): used by the torch dataset, preview and export."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rgbify.datasets.manifest import load_manifest
from rgbify.datasets.shards import ShardReader


def is_val_index(index: int, val_fraction: float) -> bool:
    """Deterministic split by sample index (stable when a dataset is extended): sha256 of the index as a number
    in [0, 1) below ``val_fraction`` means validation."""
    h = int.from_bytes(hashlib.sha256(f"rgbify-split:{index}".encode()).digest()[:8], "big")
    return h / 2.0**64 < val_fraction


class DatasetReader:
    """All published samples of a dataset folder, addressed by global sample index."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.manifest = load_manifest(self.directory)
        entries = sorted(self.manifest["shards"], key=lambda s: s["first_index"])
        self._starts = [int(e["first_index"]) for e in entries]
        self._counts = [int(e["samples"]) for e in entries]
        self._readers = [ShardReader(self.directory / e["file"]) for e in entries]
        self.classes: list[str] = list(self.manifest["classes"])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_readers"] = [ShardReader(r.path) for r in self._readers]
        return state

    @property
    def indices(self) -> list[int]:
        return [s + j for s, n in zip(self._starts, self._counts, strict=True) for j in range(n)]

    def __len__(self) -> int:
        return sum(self._counts)

    def read(self, index: int, fields: Iterable[str] | None = None) -> dict[str, Any]:
        k = bisect.bisect_right(self._starts, index) - 1
        if k < 0 or index >= self._starts[k] + self._counts[k]:
            raise IndexError(f"sample {index} is not in {self.directory} (published: {len(self)} samples)")
        return self._readers[k].read(index - self._starts[k], fields)

    def close(self) -> None:
        for r in self._readers:
            r.close()


def ground_truth(sample: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """The ``gt`` dict of rgbify.encode.make_task_target for one stored sample."""
    import json

    return {"rgb": sample["rgb"], "depth": sample["depth"], "normals": sample["normals"],
            "instance": sample["instance"], "semantic": sample["semantic"], "edge": sample["edge"],
            "K": sample["K"], "class_names": classes, "instances": json.loads(sample["instances"])}
