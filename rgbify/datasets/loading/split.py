"""The train/val split of a dataset: by sample index, so it stays the same when a dataset is extended."""

from __future__ import annotations

import hashlib


def is_val_index(index: int, val_fraction: float) -> bool:
    """True if sample ``index`` belongs to the validation split: sha256 of the index, read as a number in [0, 1),
    is below ``val_fraction``."""
    h = int.from_bytes(hashlib.sha256(f"rgbify-split:{index}".encode()).digest()[:8], "big")
    return h / 2.0**64 < val_fraction
