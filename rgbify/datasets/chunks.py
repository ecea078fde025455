"""Fast reads of one shard chunk (one sample of an image field), bypassing HDF5's filter pipeline.

A shard's image fields are stored one sample per chunk, filtered by byte shuffle, deflate and Fletcher-32
(rgbify.datasets.shards.COMPRESSION). HDF5 inflates with zlib; ISA-L's inflate (the ``isal`` package) does the
same work 1.3-2x faster, which is most of a 512-px item's read time. :func:`read_sample` reads the raw chunk,
checks its Fletcher-32 exactly as HDF5 does, inflates with ISA-L and undoes the shuffle; any other filter
pipeline, a chunk HDF5 flagged, a checksum that does not match, or no ``isal`` installed falls back to h5py's own
read (which raises as before on a corrupt chunk). The result is bit-equal to ``dataset[j]`` (tested).

numba kernels here have plain-NumPy twins in :mod:`rgbify.datasets.reference`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numba import njit

try:
    from isal import isal_zlib as _inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency; without it h5py reads (correct, slower)
    _inflate_lib = None

_SHUFFLE, _DEFLATE, _FLETCHER32 = 2, 1, 3
_OPTS = {"cache": True, "nogil": True}


@njit(**_OPTS)
def fletcher32(data):
    """HDF5's Fletcher-32 of a uint8 array (H5_checksum_fletcher32: big-endian 16-bit words, sums folded every
    360 words)."""
    n = data.shape[0]
    words = n // 2
    sum1 = np.uint64(0)
    sum2 = np.uint64(0)
    i = 0
    while words > 0:
        tlen = min(words, 360)
        words -= tlen
        for _ in range(tlen):
            sum1 += (np.uint64(data[i]) << np.uint64(8)) | np.uint64(data[i + 1])
            i += 2
            sum2 += sum1
        sum1 = (sum1 & np.uint64(0xFFFF)) + (sum1 >> np.uint64(16))
        sum2 = (sum2 & np.uint64(0xFFFF)) + (sum2 >> np.uint64(16))
    if n % 2:
        sum1 += np.uint64(data[n - 1]) << np.uint64(8)
        sum2 += sum1
        sum1 = (sum1 & np.uint64(0xFFFF)) + (sum1 >> np.uint64(16))
        sum2 = (sum2 & np.uint64(0xFFFF)) + (sum2 >> np.uint64(16))
    sum1 = (sum1 & np.uint64(0xFFFF)) + (sum1 >> np.uint64(16))
    sum2 = (sum2 & np.uint64(0xFFFF)) + (sum2 >> np.uint64(16))
    return (sum2 << np.uint64(16)) | sum1


@njit(**_OPTS)
def unshuffle(src, itemsize, out):
    """Undo HDF5's byte shuffle: ``src`` uint8 holds byte 0 of every element, then byte 1, ...; ``out`` uint8 of
    the same length gets the elements back (trailing bytes that do not fill an element are copied as they are).
    4-byte elements are assembled as little-endian uint32 words from 4 contiguous streams (vectorises)."""
    n = src.shape[0] // itemsize
    if itemsize == 4:
        words = out[: 4 * n].view(np.uint32)
        for i in range(n):
            words[i] = (np.uint32(src[i]) | (np.uint32(src[n + i]) << np.uint32(8))
                        | (np.uint32(src[2 * n + i]) << np.uint32(16)) | (np.uint32(src[3 * n + i]) << np.uint32(24)))
    else:
        for k in range(itemsize):
            for i in range(n):
                out[i * itemsize + k] = src[k * n + i]
    for m in range(n * itemsize, src.shape[0]):
        out[m] = src[m]


def fast_plan(ds: Any) -> tuple[bool, int] | None:
    """(shuffled, itemsize) when sample chunks of h5py dataset ``ds`` can be read by :func:`read_sample`, else None:
    one sample per chunk and the filters (shuffle,) deflate, Fletcher-32 in that order."""
    if _inflate_lib is None or sys.byteorder != "little" or ds.chunks is None or ds.chunks != (1, *ds.shape[1:]):
        return None
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if filters == [_SHUFFLE, _DEFLATE, _FLETCHER32]:
        return True, ds.dtype.itemsize
    if filters == [_DEFLATE, _FLETCHER32]:
        return False, ds.dtype.itemsize
    return None


def read_sample(ds: Any, j: int, plan: tuple[bool, int]) -> np.ndarray:
    """``ds[j]`` of a dataset that :func:`fast_plan` accepted, bit-equal, through ISA-L."""
    shuffled, itemsize = plan
    mask, raw = ds.id.read_direct_chunk((j,) + (0,) * (ds.ndim - 1))
    buf = np.frombuffer(raw, np.uint8)
    if mask != 0 or len(raw) < 4 or int(fletcher32(buf[:-4])) != int.from_bytes(raw[-4:], "little"):
        return ds[j]  # let HDF5 decide (and raise on a corrupt chunk)
    nbytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * itemsize
    data = np.frombuffer(_inflate_lib.decompress(buf[:-4], bufsize=nbytes), np.uint8)
    if data.shape[0] != nbytes:
        return ds[j]
    if shuffled and itemsize > 1:
        out = np.empty(nbytes, np.uint8)
        unshuffle(data, itemsize, out)
    else:
        out = data.copy()  # a writable array of our own
    return out.view(ds.dtype).reshape(ds.shape[1:])
