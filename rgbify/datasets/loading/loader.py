"""``ThreadLoader`` and ``ProcessLoader``: batches of a map-style dataset made by a pool of threads in the calling
process, or by worker processes that hand batches over through shared memory allocated once.

A TaskDataset item spends most of its time in code that releases the GIL (libdeflate, numba kernels, torch's
resize), so threads make items about as fast per core as one process does, with nothing to send between
processes. On 2 cores, 2 threads gave 1.5-1.9x the samples/s of 2 torch DataLoader worker processes and 1.0-1.6x
that of 2 ProcessLoader workers (docs/datasets.md).

Batches come in the order of ``keys`` (deterministic: a batch does not depend on the number of threads), each
built by ``collate`` from ``dataset[key]`` items; ``shard=(rank, world)`` keeps every ``world``-th batch starting
at ``rank``, as accelerate's BatchSamplerShard does for a DataLoader.

``ProcessLoader`` makes the same batches in worker processes (for datasets whose items hold the GIL, or to keep
reading off the training process). A torch DataLoader worker puts each batch in a new shared-memory segment that
both processes then page-fault in (about 1.5 ms of kernel time per 512-px item here); a ProcessLoader worker
stacks the batch's tensors straight into one of a few shared buffers allocated when iteration starts (other
collate functions' batches are copied in), and the calling process copies them out (a buffer is reused as soon as
its batch is copied, so a batch's tensors are never overwritten under the caller).
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import queue
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any, NamedTuple

import numpy as np

from rgbify.signals import quiet_worker


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
        keep_freed_memory: tune glibc's malloc of this process once (rgbify.datasets.loading.task_dataset.
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
            from rgbify.datasets.loading.task_dataset import collate
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
            from rgbify.datasets.loading.task_dataset import keep_freed_memory

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


class ProcessLoader(ThreadLoader):
    """ThreadLoader's batches, in the same order, made by ``workers`` worker processes (module docstring).

    The arguments are ThreadLoader's, with ``workers`` (at least 1) for ``threads``. Tensors (CPU) of a batch travel
    through shared buffers sized from one item read when iteration starts (``batch_size`` times its tensor bytes,
    plus slack); a tensor that does not fit travels as a DataLoader's would. A worker's exception is raised here;
    a worker that dies raises RuntimeError; workers exit when iteration ends or this process dies.
    """

    def __init__(self, dataset: Any, batch_size: int, keys: Iterable[Any] | None = None, workers: int = 2,
                 collate: Callable[[list], Any] | None = None, prefetch: int = 2, drop_last: bool = False,
                 shard: tuple[int, int] = (0, 1), keep_freed_memory: bool = True):
        if workers < 1:
            raise ValueError(f"workers {workers}: need at least 1 worker process (or use ThreadLoader)")
        super().__init__(dataset, batch_size, keys, workers, collate, prefetch, drop_last, shard, keep_freed_memory)

    def __iter__(self) -> Iterator[Any]:
        import torch
        import torch.multiprocessing as mp

        if self.keep_freed_memory:
            from rgbify.datasets.loading.task_dataset import keep_freed_memory

            keep_freed_memory()
        batches = self._batches()
        first = next(batches, None)
        if first is None:
            return
        per_item = _bytes_to_stack(self.dataset[first[0]])
        capacity = self.batch_size * per_item + (64 << 10)  # slack: tensors collate adds (index), alignment
        n_slots = self.threads * self.prefetch
        try:
            slots = [torch.empty(capacity, dtype=torch.uint8).share_memory_() for _ in range(n_slots)]
        except RuntimeError as e:
            raise RuntimeError(f"ProcessLoader: cannot allocate {n_slots} shared buffers of {capacity / 1e6:.1f} MB "
                               f"({e}); give /dev/shm more room (docker run --shm-size), use fewer workers or a "
                               "smaller prefetch, or use ThreadLoader") from None
        jobs, results = mp.Queue(), mp.Queue()
        procs = [mp.Process(target=_work, args=(self.dataset, self.collate, slots, jobs, results, os.getpid(),
                                                  self.keep_freed_memory), daemon=True, name=f"rgbify-loader-{i}")
                 for i in range(self.threads)]
        for p in procs:
            p.start()
        try:
            todo = itertools.chain([first], batches)
            free, done = list(range(len(slots))), {}
            sent = taken = 0
            while True:
                while free and (keys := next(todo, None)) is not None:
                    jobs.put((sent, free.pop(), keys))
                    sent += 1
                if taken == sent:
                    return
                while taken not in done:
                    seq, slot, payload = _result(results, procs)
                    done[seq] = slot, payload
                slot, payload = done.pop(taken)
                taken += 1
                batch = _unpack(payload, slots[slot])  # copied out: the slot can take the next batch
                free.append(slot)
                yield batch
        finally:
            for _ in procs:
                jobs.put(None)
            deadline = time.monotonic() + 5.0
            while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
                try:  # results still on their way keep a worker's queue thread (and so the worker) from ending
                    results.get(timeout=0.05)
                except queue.Empty:
                    pass
            for p in procs:
                if p.is_alive():
                    p.terminate()
                p.join()
            for q in (jobs, results):
                q.cancel_join_thread()
                q.close()


class _InSlot(NamedTuple):
    """A tensor written into a shared slot at byte ``offset``."""

    offset: int
    dtype: Any
    shape: tuple[int, ...]


class _Failure(NamedTuple):
    """A worker's exception and its traceback text."""

    error: BaseException
    trace: str


def _aligned(n: int) -> int:
    return -(-n // 64) * 64


def _map(obj: Any, kind: type | tuple[type, ...], fn: Callable[[Any], Any]) -> Any:
    """``obj`` (dicts, lists and tuples, nested) with ``fn(x)`` in place of each ``x`` of type ``kind``."""
    if isinstance(obj, kind):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map(v, kind, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):  # not a NamedTuple (_InSlot)
        return type(obj)(_map(v, kind, fn) for v in obj)
    return obj


def _bytes_to_stack(item: Any) -> int:
    """Bytes of the CPU tensors and numeric NumPy arrays in an item: what collate stacks (aligned)."""
    import torch

    total = [0]

    def count(a: Any) -> None:
        if (a.device.type == "cpu") if isinstance(a, torch.Tensor) else (a.dtype.kind in "biuf"):
            total[0] += _aligned(a.nbytes)

    _map(item, (torch.Tensor, np.ndarray), count)
    return total[0]


def _alloc(slot: Any, at: list[int], shape: tuple[int, ...], dtype: Any) -> Any:
    """A tensor of ``shape`` and ``dtype`` in ``slot`` from byte ``at[0]`` on (``at`` advanced), or None if it does
    not fit."""
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    start = _aligned(at[0])
    if start + n > slot.numel():
        return None
    at[0] = start + n
    return slot[start : start + n].view(dtype).view(shape)


def _pack(batch: Any, slot: Any, at: list[int]) -> Any:
    """``batch`` with each CPU tensor replaced by _InSlot: one already in ``slot`` (made by :func:`_alloc`) where it
    is, others copied in from byte ``at[0]`` on if they fit (else left to travel as they are)."""
    import torch

    def one(t: torch.Tensor) -> Any:
        if t.device.type != "cpu":
            return t
        n, base = t.numel() * t.element_size(), slot.data_ptr()
        if t.is_contiguous() and base <= t.data_ptr() and t.data_ptr() + n <= base + slot.numel():
            return _InSlot(t.data_ptr() - base, t.dtype, tuple(t.shape))
        dst = _alloc(slot, at, tuple(t.shape), t.dtype)
        if dst is None:
            return t
        dst.copy_(t)
        return _InSlot(dst.data_ptr() - base, t.dtype, tuple(t.shape))

    return _map(batch, torch.Tensor, one)


def _unpack(payload: Any, slot: Any) -> Any:
    """The batch :func:`_pack` made, its tensors copied out of ``slot``."""
    def one(s: _InSlot) -> Any:
        n = int(np.prod(s.shape, dtype=np.int64)) * s.dtype.itemsize
        return slot[s.offset : s.offset + n].view(s.dtype).view(s.shape).clone()

    return _map(payload, _InSlot, one)


def _result(results: Any, procs: list) -> tuple[int, int, Any]:
    """The next (seq, slot, payload) from the workers; raises a worker's exception, or RuntimeError if one died."""
    while True:
        try:
            seq, slot, payload = results.get(timeout=2.0)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                raise RuntimeError(f"loader worker process {dead[0].pid} died (exit code {dead[0].exitcode}); "
                                   "see its output above (out of memory kills show in dmesg)") from None
            continue
        if isinstance(payload, _Failure):
            raise payload.error from RuntimeError(f"in a ProcessLoader worker process:\n{payload.trace}")
        return seq, slot, payload


def _work(dataset: Any, collate: Callable, slots: list, jobs: Any, results: Any, parent: int,
          keep_freed: bool) -> None:
    """A worker process: batches from ``jobs`` (seq, slot, keys) into their slots, (seq, slot, payload) to
    ``results``, until a None job or until the parent process is gone."""
    import torch

    from rgbify.datasets.loading.task_dataset import collate as rgbify_collate

    quiet_worker()  # Ctrl-C is the training process's to handle; it stops the workers
    torch.set_num_threads(1)
    if keep_freed:
        from rgbify.datasets.loading.task_dataset import keep_freed_memory

        keep_freed_memory()
    while True:
        try:
            job = jobs.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if job is None:
            return
        seq, slot, keys = job
        try:
            items = [dataset[k] for k in keys]
            at = [0]
            if collate is rgbify_collate:  # stacked straight into the slot
                batch = collate(items, alloc=functools.partial(_alloc, slots[slot], at))
            else:
                batch = collate(items)
            payload = _pack(batch, slots[slot], at)
        except Exception as e:  # noqa: BLE001 - raised again in the calling process
            trace = traceback.format_exc()
            try:
                pickle.dumps(e)
            except Exception:  # noqa: BLE001
                e = RuntimeError(repr(e))
            payload = _Failure(e, trace)
        results.put((seq, slot, payload))
