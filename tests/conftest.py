"""Fixtures shared across test files."""

import pytest


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread: the tiny model gains nothing from more, and on a loaded 2-core CI box OpenMP
    threads contending with other processes slow a step down many times over."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
