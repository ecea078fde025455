"""Read a built dataset by global sample index (no torch): the loaders, preview and export read through this."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rgbify.datasets.storage.manifest import load_manifest
from rgbify.datasets.storage.shards import ShardReader
from rgbify.errors import UserError


class DatasetReader:
    """All published samples of a dataset folder, addressed by global sample index."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.manifest = load_manifest(self.directory)
        if "clip" in self.manifest:
            raise UserError(f"{self.directory} is a dataset of clips (rgbify build --clip-frames), not of stills: "
                            "read it with rgbify.datasets.storage.clips.ClipShardReader or "
                            "rgbify.datasets.loading.clip_items.ClipItems (docs/video.md)")
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
