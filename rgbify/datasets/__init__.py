"""Datasets: ``rgbify build`` (parallel, resumable HDF5 shards), verify, preview, export, and the torch loader.

``TaskDataset`` and ``collate`` live in rgbify.datasets.torch_dataset, ``ThreadLoader`` and ``ProcessLoader`` in
rgbify.datasets.loader; they are loaded on first use, so importing this package never imports torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProcessLoader", "TaskDataset", "ThreadLoader", "collate", "to_unit"]


def __getattr__(name: str) -> Any:
    if name in ("ThreadLoader", "ProcessLoader"):
        from rgbify.datasets import loader

        return getattr(loader, name)
    if name in __all__:
        from rgbify.datasets import torch_dataset

        return getattr(torch_dataset, name)
    raise AttributeError(f"module 'rgbify.datasets' has no attribute {name!r}")
