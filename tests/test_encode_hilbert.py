"""depth/hilbert24 is exactly Skilling's order-8 3-D Hilbert curve (independent reference: numpy-hilbert-curve)."""

import numpy as np
import pytest

from rgbify.encode import hilbert, kernels
from rgbify.encode.codecs import Hilbert24

QMAX = (1 << 24) - 1


def _points(q: np.ndarray) -> np.ndarray:
    """Index -> RGB through the kernel, by encoding the depth whose index is q (gamma = 1, d_max = 2^24 - 1)."""
    coords, _, nxt = hilbert.block_tables(Hilbert24.block_levels)
    depth = q.astype(np.float64).reshape(1, -1)
    out = np.empty(depth.shape + (3,), np.uint8)
    kernels.hilbert_encode(depth, np.ones((1, 1), bool), False, float(QMAX), 1.0, coords, nxt, out)
    return out[0]


def _indices(rgb: np.ndarray) -> np.ndarray:
    _, rank, nxt = hilbert.block_tables(Hilbert24.block_levels)
    out = np.empty((1, len(rgb)), np.uint32)
    kernels.hilbert_index(np.ascontiguousarray(rgb.reshape(1, -1, 3)), rank, nxt, out)
    return out[0]


@pytest.mark.slow
def test_all_2_24_indices_match_numpy_hilbert_curve():
    ref = pytest.importorskip("hilbert")  # numpy-hilbert-curve (dev extra)
    chunk = 1 << 21
    for start in range(0, 1 << 24, chunk):
        q = np.arange(start, start + chunk, dtype=np.int64)
        expect = ref.decode(q, 3, 8).astype(np.uint8)
        got = _points(q)
        assert np.array_equal(got, expect), f"index -> point differs in [{start}, {start + chunk})"
        assert np.array_equal(_indices(expect), q.astype(np.uint32)), f"point -> index differs from {start}"


def test_reference_matches_hilbertcurve_package():
    hc = pytest.importorskip("hilbertcurve.hilbertcurve")
    curve = hc.HilbertCurve(p=8, n=3)
    q = np.random.default_rng(0).integers(0, 1 << 24, 2000)
    expect = np.array(curve.points_from_distances(q.tolist()))
    assert np.array_equal(hilbert.point_from_index(q), expect)
    assert np.array_equal(hilbert.index_from_point(expect), q.astype(np.uint64))


def test_state_tables_reproduce_the_reference_on_a_sample():
    q = np.random.default_rng(1).integers(0, 1 << 24, 50_000)
    assert np.array_equal(_points(q), hilbert.point_from_index(q).astype(np.uint8))
    for levels in (1, 2):
        coords, rank, nxt = hilbert.block_tables(levels)
        assert (rank[np.arange(len(coords))[:, None], coords] == np.arange(8**levels)).all()


def test_consecutive_indices_differ_by_one_step_in_one_channel():
    q = np.arange(0, 1 << 20, dtype=np.int64)
    p = _points(q).astype(np.int64)
    steps = np.abs(np.diff(p, axis=0)).sum(axis=1)
    assert (steps == 1).all()


def test_block_size_agrees():
    assert Hilbert24.block_levels == kernels.HILBERT_BLOCK_LEVELS


def test_ends_of_the_curve():
    assert _points(np.array([0]))[0].tolist() == [0, 0, 0]
    codec = Hilbert24(d_max=100.0, gamma=0.5)
    rgb = codec.encode(np.array([[np.inf, 100.0, 250.0]], np.float32))
    assert (codec.index(rgb) == QMAX).all()
    assert (codec.decode(rgb) == 100.0).all()
