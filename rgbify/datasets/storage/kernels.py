"""The numba kernel the shard reader needs: HDF5's byte shuffle undone (tests/oracles/numpy_loader.py has its
NumPy twin). Compiled on first call and cached on disk; one core, ``nogil``."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def unshuffle(raw, size, out):
    """HDF5's byte shuffle undone: ``raw`` (uint8, n * size) holds byte 0 of every element, then byte 1, ...;
    ``out`` (uint8, n * size) gets the elements back in order. Returns ``out``."""
    n = raw.shape[0] // size
    if size == 4:  # float32 and int32 fields: unrolled, vectorises
        for i in range(n):
            out[4 * i] = raw[i]
            out[4 * i + 1] = raw[n + i]
            out[4 * i + 2] = raw[2 * n + i]
            out[4 * i + 3] = raw[3 * n + i]
        return out
    for b in range(size):
        for i in range(n):
            out[i * size + b] = raw[b * n + i]
    return out
