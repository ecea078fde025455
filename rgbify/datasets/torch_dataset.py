"""Moved to ``rgbify.datasets.loading.task_dataset``. This alias stays only until tests/test_train_e2e.py (outside
the datasets restructure) stops naming it; then delete this file."""

from rgbify.datasets.loading.task_dataset import TaskDataset, collate, to_unit

__all__ = ["TaskDataset", "collate", "to_unit"]
