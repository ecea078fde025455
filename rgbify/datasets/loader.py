"""``ThreadLoader``: batches of a map-style dataset made by a pool of threads in the calling process.

A TaskDataset item spends most of its time in code that releases the GIL (libdeflate, numba kernels, torch's
resize), so threads make items about as fast per core as a DataLoader worker process does, without sending each
batch through shared memory: at 512 px that transport alone costs a worker process about 2 ms of CPU per item
(a new shared-memory segment per batch, page-faulted in on both sides; docs/datasets.md). On 2 cores, 2 threads
gave 1.5x the samples/s of 2 worker processes.

Batches come in the order of ``keys`` (deterministic: a batch does not depend on the number of threads), each
built by ``collate`` from ``dataset[key]`` items; ``shard=(rank, world)`` keeps every ``world``-th batch starting
at ``rank``, as accelerate's BatchSamplerShard does for a DataLoader.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any


class ThreadLoader:
    """Iterate ``collate([dataset[k] for k in batch])`` over consecutive ``batch_size`` batches of ``keys``.

    Args:
        dataset: anything indexable by the keys (thread-safe reads: TaskDataset's are).
        batch_size: items per batch; a last, shorter batch is dropped if ``drop_last``.
        keys: the item keys in order (default: range(len(dataset))); may be endless (e.g. a sampler).
        threads: reading threads (0: read in the calling thread, no pool).
        collate: batches a list of items (default: rgbify.datasets.collate).
        prefetch: batches read ahead per thread.
        shard: (rank, world): keep batches rank, rank + world, ... of the whole sequence.
        keep_freed_memory: tune glibc's malloc of this process once (rgbify.datasets.torch_dataset.
            keep_freed_memory: freed item buffers are reused instead of page-faulted in again).
    """

    def __init__(self, dataset: Any, batch_size: int, keys: Iterable[Any] | None = None, threads: int = 2,
                 collate: Callable[[list], Any] | None = None, prefetch: int = 2, drop_last: bool = False,
                 shard: tuple[int, int] = (0, 1), keep_freed_memory: bool = True):
        if batch_size < 1 or threads < 0 or prefetch < 1:
            raise ValueError(f"batch_size {batch_size}, threads {threads}, prefetch {prefetch}: need batch_size "
                             ">= 1, threads >= 0, prefetch >= 1")
        rank, world = shard
        if not 0 <= rank < world:
            raise ValueError(f"shard {shard}: need 0 <= rank < world")
        if collate is None:
            from rgbify.datasets.torch_dataset import collate
        self.dataset, self.batch_size, self.threads = dataset, batch_size, threads
        self.keys = keys
        self.collate, self.prefetch, self.drop_last = collate, prefetch, drop_last
        self.rank, self.world = rank, world
        self.keep_freed_memory = keep_freed_memory

    def _batches(self) -> Iterator[list]:
        """This shard's batches of keys."""
        keys = iter(range(len(self.dataset)) if self.keys is None else self.keys)
        k = 0
        while batch := list(islice(keys, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            if k % self.world == self.rank:
                yield batch
            k += 1

    def __iter__(self) -> Iterator[Any]:
        if self.keep_freed_memory:
            from rgbify.datasets.torch_dataset import keep_freed_memory

            keep_freed_memory()
        if self.threads == 0:
            for batch in self._batches():
                yield self.collate([self.dataset[k] for k in batch])
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="rgbify-loader") as pool:
            pending: deque[list[Future]] = deque()
            try:
                for batch in self._batches():
                    pending.append([pool.submit(self.dataset.__getitem__, k) for k in batch])
                    if len(pending) > self.prefetch * self.threads:
                        yield self.collate([f.result() for f in pending.popleft()])
                while pending:
                    yield self.collate([f.result() for f in pending.popleft()])
            finally:  # an abandoned iterator (or an error) cancels what was not started
                for futures in pending:
                    for f in futures:
                        f.cancel()

    def __len__(self) -> int:
        n = len(self.dataset) if self.keys is None else len(self.keys)  # type: ignore[arg-type]
        batches = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(range(self.rank, batches, self.world))
