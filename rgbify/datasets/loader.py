"""Moved to ``rgbify.datasets.loading.loader`` (or use ``from rgbify.datasets import ThreadLoader``). This alias
stays only until tests/test_train.py (outside the datasets restructure) stops naming it; then delete this file."""

from rgbify.datasets.loading.loader import ProcessLoader, ThreadLoader

__all__ = ["ProcessLoader", "ThreadLoader"]
