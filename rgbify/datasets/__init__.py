"""Datasets: ``rgbify build`` renders a recipe into HDF5 shards, ``verify``/``preview``/``export``/``repack`` read
them, and ``TaskDataset`` with its loaders feeds them to training (docs/datasets.md, "Code map").

Three rooms, each a subpackage: ``storage`` (the dataset on disk), ``build`` (planning and rendering it) and
``loading`` (torch items and loaders); ``cli``, ``preview`` and ``export`` use them. The names below load on first
use, so importing this package never imports torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATASET_ERRORS", "ProcessLoader", "TaskDataset", "ThreadLoader", "collate", "to_unit"]


def __getattr__(name: str) -> Any:
    if name == "DATASET_ERRORS":  # what reading a damaged or missing dataset raises (ValueError subclasses)
        from rgbify.datasets.storage.manifest import ManifestError
        from rgbify.datasets.storage.shards import ShardError

        return (ManifestError, ShardError)
    if name in ("ThreadLoader", "ProcessLoader"):
        from rgbify.datasets.loading import loader

        return getattr(loader, name)
    if name in __all__:
        from rgbify.datasets.loading import task_dataset

        return getattr(task_dataset, name)
    raise AttributeError(f"module 'rgbify.datasets' has no attribute {name!r}")
