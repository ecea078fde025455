"""John Skilling's n-D Hilbert curve ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004), in NumPy.

This module holds the plain-NumPy reference of the curve and derives from it the small finite-state tables that
the numba kernels in :mod:`rgbify.encode.kernels` walk, one octant (3 bits of the index) per level.

Skilling works on the *transposed* index: the ``n * bits``-bit index ``h``, written most significant bit first,
is dealt out to ``n`` words ``X[0..n-1]`` (``X[0]`` gets the first bit, ``X[1]`` the second, ...). His two
routines turn that transposed index into the point's axes and back, in place. Point coordinate ``x0`` is
``X[0]`` after the transform, and so on; for rgbify's depth/hilbert24 codec ``(x0, x1, x2) = (R, G, B)``.
"""

from __future__ import annotations

import functools

import numpy as np

ORDER = 8
"""Bits per axis of the curve used by depth/hilbert24 (so 2**24 points in the 256**3 RGB cube)."""
NDIM = 3


def _index_to_transpose(h: np.ndarray, ndim: int, bits: int) -> list[np.ndarray]:
    h = np.asarray(h, dtype=np.uint64)
    x = [np.zeros(h.shape, dtype=np.uint64) for _ in range(ndim)]
    for level in range(bits):  # most significant group of ndim bits first
        for i in range(ndim):
            shift = np.uint64((bits - 1 - level) * ndim + (ndim - 1 - i))
            bit = (h >> shift) & np.uint64(1)
            x[i] |= bit << np.uint64(bits - 1 - level)
    return x


def _transpose_to_index(x: list[np.ndarray], ndim: int, bits: int) -> np.ndarray:
    h = np.zeros(x[0].shape, dtype=np.uint64)
    for level in range(bits):
        for i in range(ndim):
            bit = (x[i] >> np.uint64(bits - 1 - level)) & np.uint64(1)
            h |= bit << np.uint64((bits - 1 - level) * ndim + (ndim - 1 - i))
    return h


def point_from_index(h: np.ndarray, ndim: int = NDIM, bits: int = ORDER) -> np.ndarray:
    """Skilling's TransposetoAxes: Hilbert index (any int array) -> points, uint64 array of shape h.shape + (ndim,)."""
    x = _index_to_transpose(h, ndim, bits)
    top = np.uint64(2 << (bits - 1))
    # Gray decode by H ^ (H / 2)
    t = x[ndim - 1] >> np.uint64(1)
    for i in range(ndim - 1, 0, -1):
        x[i] ^= x[i - 1]
    x[0] ^= t
    # Undo excess work
    q = np.uint64(2)
    while q != top:
        p = q - np.uint64(1)
        for i in range(ndim - 1, -1, -1):
            set_ = (x[i] & q) != 0
            t = (x[0] ^ x[i]) & p
            if i == 0:  # exchanging X[0] with itself is a no-op
                x[0] = np.where(set_, x[0] ^ p, x[0])
            else:
                x[0], x[i] = np.where(set_, x[0] ^ p, x[0] ^ t), np.where(set_, x[i], x[i] ^ t)
        q <<= np.uint64(1)
    return np.stack(x, axis=-1)


def index_from_point(points: np.ndarray, ndim: int = NDIM, bits: int = ORDER) -> np.ndarray:
    """Skilling's AxestoTranspose: points (..., ndim) non-negative ints < 2**bits -> Hilbert index, uint64."""
    pts = np.asarray(points).astype(np.uint64)
    x = [pts[..., i].copy() for i in range(ndim)]
    # Inverse undo
    q = np.uint64(1 << (bits - 1))
    while q > 1:
        p = q - np.uint64(1)
        for i in range(ndim):
            set_ = (x[i] & q) != 0
            t = (x[0] ^ x[i]) & p
            if i == 0:
                x[0] = np.where(set_, x[0] ^ p, x[0])
            else:
                x[0], x[i] = np.where(set_, x[0] ^ p, x[0] ^ t), np.where(set_, x[i], x[i] ^ t)
        q >>= np.uint64(1)
    # Gray encode
    for i in range(1, ndim):
        x[i] ^= x[i - 1]
    t = np.zeros_like(x[0])
    q = np.uint64(1 << (bits - 1))
    while q > 1:
        t = np.where((x[ndim - 1] & q) != 0, t ^ (q - np.uint64(1)), t)
        q >>= np.uint64(1)
    for i in range(ndim):
        x[i] ^= t
    return _transpose_to_index(x, ndim, bits)


def _octant(points: np.ndarray, level: int, bits: int) -> np.ndarray:
    """The octant code (x0 bit << 2 | x1 bit << 1 | x2 bit) of points at ``level`` (0 = the top)."""
    shift = np.uint64(bits - 1 - level)
    one = np.uint64(1)
    p = points.astype(np.uint64)
    return (((p[..., 0] >> shift) & one) << np.uint64(2)) | (((p[..., 1] >> shift) & one) << one) | (
        (p[..., 2] >> shift) & one
    )


@functools.cache
def state_tables(bits: int = ORDER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-state description of the 3-D Skilling curve of order ``bits``, derived from the reference above.

    A cell's state is the order in which the curve visits its 8 child octants (a cube symmetry is fixed by the
    ordered 8 corners it maps the base order to, so this order determines the whole sub-curve). Returns
    ``(octant, rank, next_state)``, each uint8: ``octant[s, r]`` is the octant code of the r-th child of a cell
    in state s, ``rank[s, o]`` the inverse, ``next_state[s, r]`` the state of that child. State 0 is the root.
    The exhaustive test (tests/test_encode_hilbert.py) checks the tables against an independent implementation
    over all 2**24 indices.
    """
    states: dict[tuple[int, ...], int] = {}
    reps: list[tuple[int, int]] = []  # (level, index prefix) of one cell in each state

    def orders(level: int, prefixes: np.ndarray) -> np.ndarray:
        """Child orders (len(prefixes), 8) of the cells at ``level`` with these index prefixes."""
        first = (prefixes[:, None].astype(np.uint64) * np.uint64(8) + np.arange(8, dtype=np.uint64)) << np.uint64(
            3 * (bits - 1 - level))
        return _octant(point_from_index(first, 3, bits), level, bits).astype(np.int64)

    def state_of(key: tuple[int, ...], level: int, prefix: int) -> int:
        if key not in states:
            states[key] = len(states)
            reps.append((level, prefix))
        return states[key]

    state_of(tuple(orders(0, np.array([0]))[0]), 0, 0)
    transitions: dict[int, list[int]] = {}
    s = 0
    while s < len(reps):
        level, prefix = reps[s]
        if level + 1 >= bits:
            raise RuntimeError("Hilbert state discovery reached the leaves; the curve is not self-similar")
        children = prefix * 8 + np.arange(8)
        transitions[s] = [state_of(tuple(o), level + 1, int(c)) for o, c in zip(orders(level + 1, children),
                                                                               children, strict=True)]
        s += 1
    n = len(states)
    octant = np.zeros((n, 8), dtype=np.uint8)
    for key, s in states.items():
        octant[s] = key
    rank = np.zeros((n, 8), dtype=np.uint8)
    for s in range(n):
        rank[s, octant[s]] = np.arange(8, dtype=np.uint8)
    next_state = np.array([transitions[s] for s in range(n)], dtype=np.uint8)
    return octant, rank, next_state


@functools.cache
def block_tables(levels: int = 4, bits: int = ORDER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`state_tables` composed ``levels`` levels at a time, so a kernel walks ``bits / levels`` steps.

    Returns ``(coords, rank, next_state)``: for a cell in state s and the next ``3 * levels`` index bits ``k``,
    ``coords[s, k]`` packs the next ``levels`` bits of each axis as ``x0 << 2L | x1 << L | x2`` (L = levels),
    ``rank[s, coords[s, k]] = k`` and ``next_state[s, k]`` is the state reached.
    """
    if bits % levels:
        raise ValueError(f"levels={levels} must divide the curve order {bits}")
    octant, _, nxt = state_tables(bits)
    n = len(octant)
    s = np.repeat(np.arange(n), 8**levels).reshape(n, -1)
    k = np.tile(np.arange(8**levels), (n, 1))
    x = [np.zeros_like(k) for _ in range(3)]
    for level in range(levels):
        digit = (k >> (3 * (levels - 1 - level))) & 7
        o = octant[s, digit].astype(np.int64)
        for axis in range(3):
            x[axis] = (x[axis] << 1) | ((o >> (2 - axis)) & 1)
        s = nxt[s, digit]
    coords = ((x[0] << (2 * levels)) | (x[1] << levels) | x[2]).astype(np.uint16)
    rank = np.zeros_like(coords)
    rows = np.arange(n)[:, None]
    rank[rows, coords] = np.arange(8**levels, dtype=np.uint16)[None, :]
    return coords, rank, s.astype(np.uint8)
