"""Moved: ``DatasetReader`` is ``rgbify.datasets.storage.reader.DatasetReader``. This alias stays only until
tests/test_train_e2e.py (outside the datasets restructure) imports it from there; then delete this file."""

from rgbify.datasets.storage.reader import DatasetReader

__all__ = ["DatasetReader"]
