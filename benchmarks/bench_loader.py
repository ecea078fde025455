"""Loader and storage benchmark: samples/s of TaskDataset at 512 px with on-the-fly encoding (in the main process,
1 and 2 worker processes of a torch DataLoader and of rgbify's ProcessLoader, 2 ThreadLoader threads), bytes per
sample on disk, and (--compression) size and read speed of HDF5 filters.

    python benchmarks/bench_loader.py --dir DATASET            # an existing 512-px dataset
    python benchmarks/bench_loader.py --build 8                # first renders 8 samples at 512 px (4 spp)
    python benchmarks/bench_loader.py --dir DATASET --compression
    python benchmarks/bench_loader.py --dir DATASET --baseline main --quick   # before/after, same process
    python benchmarks/bench_loader.py --dir DATASET --peer     # against Marigold-style PNG files
    python benchmarks/bench_loader.py --dir DATASET --storage compact,fast --quick   # rgbify build --storage

Prints one line per measurement: samples/s by the wall clock and per CPU-second of the loading process(es) (CPU
time, so a per-core rate even on a shared, loaded machine), over all rounds and for the best round (other load on
the machine only ever slows a round down, so the best round is the closest to an idle core). Target (issue 5): at
least 200 samples/s per core for depth and normals items.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rgbify.datasets.storage.manifest import load_manifest, num_published  # noqa: E402
from rgbify.datasets.storage.reader import DatasetReader  # noqa: E402
from rgbify.datasets.storage.shards import IMAGE_FILTERS, STORAGE, ShardReader, deflated, write_shard  # noqa: E402


def _all(filters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: filters for name in IMAGE_FILTERS}


CANDIDATES = {
    "none": _all({"fletcher32": True}),
    "lzf+shuffle": _all({"compression": "lzf", "shuffle": True, "fletcher32": True}),
    "gzip1": _all(deflated(1)),
    "gzip1+shuffle": _all(deflated(1, shuffle=True)),
    "gzip6+shuffle": _all(deflated(6, shuffle=True)),
    "gzip1, normals unshuffled": {name: deflated(1, shuffle=name != "normals") for name in IMAGE_FILTERS},
    "compact (chosen)": STORAGE["compact"],
    "fast": STORAGE["fast"],
}
"""Filters per image field. "compact" and "fast" are rgbify build's --storage choices (rgbify.datasets.storage.shards);
"gzip1, normals unshuffled" was the default before 2026-11-27."""


def scratch_dir(prefix: str) -> Path:
    """A new temporary folder, removed when the benchmark exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def build(n: int, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "rgbify", "build", "--out", str(out), "--count", str(n), "--resolution", "512",
           "--samples", "4", "--workers", "2", "--no-preview", "--quiet"]
    subprocess.run(cmd, env=env, check=True)


def compression(d: Path) -> None:
    """Size per sample, write time and read time (all fields of a sample, one core) of each filter candidate;
    reads both straight from the chunks (ShardReader's default) and through HDF5's filter pipeline."""
    r = DatasetReader(d)
    samples = [r.read(i) for i in r.indices]
    n = len(samples)
    with tempfile.TemporaryDirectory() as tmp:
        for name, filters in CANDIDATES.items():
            p = Path(tmp) / f"{name}.h5"
            t = time.process_time()
            write_shard(p, samples, shard=0, first_index=samples[0]["index"], count=n, config_hash="bench",
                        filters=filters)
            wt = (time.process_time() - t) / n
            rt = {}
            for direct in (True, False):
                with ShardReader(p, direct=direct) as sr:
                    sr.read(0)
                    t = time.process_time()
                    reps = 3
                    for _ in range(reps):
                        for j in range(n):
                            sr.read(j)
                    rt[direct] = (time.process_time() - t) / (reps * n)
            print(f"compression {name:14s} {p.stat().st_size / n / 1e6:7.3f} MB/sample  write {wt * 1e3:6.1f} ms"
                  f"  read {rt[True] * 1e3:6.2f} ms/sample direct, {rt[False] * 1e3:6.2f} through HDF5 (one core)")


def stored_as(d: Path, storage: str) -> Path:
    """A copy of the dataset at ``d`` in a temporary folder, its shards rewritten with --storage ``storage``'s
    filters (the same samples: rgbify repack)."""
    from rgbify.datasets.storage.repack import repack

    out = scratch_dir(f"rgbify-{storage}-") / "ds"
    repack(d, out, storage, log=lambda msg: None)
    return out


def baseline_package(ref: str) -> tuple[Any, Any, Any, Any]:
    """(TaskDataset, collate, ThreadLoader or None, ProcessLoader or None) of the rgbify code at git ``ref``, imported
    side by side with this tree's as the package ``rgbify_baseline`` (so both run in one process, interleaved,
    under one load)."""
    tmp = scratch_dir("rgbify-baseline-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "rgbify"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "rgbify").rename(tmp / "rgbify_baseline")
    for py in (tmp / "rgbify_baseline").rglob("*.py"):
        text = re.sub(r"^(\s*)(from|import) rgbify\b", r"\1\2 rgbify_baseline", py.read_text(), flags=re.M)
        py.write_text(text)
    sys.path.insert(0, str(tmp))
    import rgbify_baseline.datasets as baseline  # its public names, whatever module holds them at that revision

    return (baseline.TaskDataset, baseline.collate, getattr(baseline, "ThreadLoader", None),
            getattr(baseline, "ProcessLoader", None))


def loader(impl: tuple[Any, ...], d: Path, tasks: tuple[str, ...], kind: str, workers: int, items: int,
           resolution: int, gt: bool, epoch: int) -> tuple[int, float, float]:
    """(items, wall seconds, CPU seconds) of loading ``items`` items (batch 4, train split settings: random crop
    0.7-1 + resize, flip 0.5) through a DataLoader with ``workers`` worker processes (kind "processes"), a
    ProcessLoader with ``workers`` worker processes ("processloader") or a ThreadLoader with ``workers`` threads
    ("threads"). CPU seconds are the loading processes' own over the timed window (after start-up and warm-up
    batches): this process's with 0 workers or with threads, else the worker processes' (from /proc), so items per
    CPU-second is a rate per core whatever else the machine runs."""
    import torch

    TaskDataset, collate, ThreadLoader, ProcessLoader = impl
    ds = TaskDataset(d, tasks=tasks, split="all", augment=True, resolution=resolution, seed=0, return_gt=gt)
    ds.set_epoch(epoch)
    ds[0]  # imports and numba kernels load here, so forked workers start with them
    warm = 2 * max(1, workers)  # start-up (process start, numba cache load) is not counted in the wall time
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=items + 4 * warm,
                                             generator=torch.Generator().manual_seed(epoch))
    if kind == "threads":
        dl = ThreadLoader(ds, 4, keys=list(sampler), threads=workers, collate=collate, keep_freed_memory=False)
    elif kind == "processloader":
        dl = ProcessLoader(ds, 4, keys=list(sampler), workers=workers, collate=collate, keep_freed_memory=False)
    else:
        dl = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate, sampler=sampler)
    it = iter(dl)
    for _ in range(warm):
        next(it)
    t, c, c_workers = time.perf_counter(), time.process_time(), _workers_cpu()
    n = 0
    for _ in range(items // 4):  # the workers are still alive at the end: their CPU time of this window only
        n += len(next(it)["prompt"])
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if workers and kind != "threads":
        cpu = _workers_cpu() - c_workers
    del it
    return n, wall, cpu


def _rate(n: int, seconds: float) -> float:
    """n / seconds; NaN for a window too short for the clock (/proc counts CPU time in 10 ms ticks)."""
    return n / seconds if seconds > 0 else float("nan")


def _workers_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's live multiprocessing children (DataLoader and
    ProcessLoader workers), from /proc: read before and after a timed window, so that worker start-up and
    shut-down are not counted."""
    import multiprocessing

    total = 0.0
    for p in multiprocessing.active_children():
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def run_loaders(d: Path, items: int, resolution: int, baseline: str | None, rounds: int, configs: list,
                storages: list[str]) -> None:
    """Every loader configuration for this tree (and the baseline's loader) on ``d``, or on ``d`` rewritten with
    each of ``storages``, interleaved round by round so that all see the same load."""
    import torch

    from rgbify.datasets import ProcessLoader, TaskDataset, ThreadLoader, collate

    torch.set_num_threads(1)
    impls = {"this tree": (TaskDataset, collate, ThreadLoader, ProcessLoader)}
    if baseline:
        impls = {f"baseline {baseline}": baseline_package(baseline), **impls}
    dirs = {f", {s} storage": stored_as(d, s) for s in storages} or {"": d}
    for s in storages:
        print(f"--storage {s}: {mb_per_sample(dirs[f', {s} storage']):.3f} MB/sample on disk")
    for tasks, gt, kind, workers in configs:
        need = {"threads": 2, "processloader": 3}.get(kind)
        runs = {name + suffix: (impl, where) for name, impl in impls.items() for suffix, where in dirs.items()
                if need is None or impl[need] is not None}
        per_round: dict[str, list[tuple[int, float, float]]] = {k: [] for k in runs}
        for r in range(rounds):  # interleaved, so all see the same load
            for name, (impl, where) in runs.items():
                per_round[name].append(loader(impl, where, tasks, kind, workers, max(4, items // rounds),
                                              resolution, gt, epoch=r))
        how = ("main process" if not workers else f"{workers} threads, 1 process" if kind == "threads" else
               f"{workers} {'DataLoader' if kind == 'processes' else 'ProcessLoader'} worker" + "s" * (workers > 1))
        for name, rs in per_round.items():
            n, wall, cpu = (sum(x) for x in zip(*rs, strict=True))
            best_wall, best_cpu = max(_rate(k, w) for k, w, _ in rs), max(_rate(k, c) for k, _, c in rs)
            print(f"loader {name:30s} {'+'.join(tasks):32s} return_gt={gt!s:5s} {how:24s}: "
                  f"{_rate(n, wall):7.1f} samples/s wall, {_rate(n, cpu):6.1f} per CPU-second of the loading "
                  f"process(es) (best of {len(rs)} rounds: {best_wall:6.1f}, {best_cpu:6.1f}) at {resolution} px",
                  flush=True)


def mb_per_sample(d: Path) -> float:
    """Megabytes of shard files per published sample of the dataset at ``d``."""
    m = load_manifest(d)
    return sum((d / s["file"]).stat().st_size for s in m["shards"]) / num_published(m) / 1e6


def peer_png(d: Path, items: int, rounds: int, resolution: int) -> None:
    """Depth items from Marigold-style files against rgbify's shards, one process, interleaved rounds. The peer
    stores RGB as PNG and depth as 16-bit PNG in millimetres (what Marigold's Hypersim and Virtual KITTI
    preprocessing writes) and reads them with Pillow, as its dataset classes do; then it makes the same crop, resize,
    flip and cubewalk target as a TaskDataset depth item with rgbify's own kernels, so only storage and decoding
    differ (and the peer skips the prompt and decode parameters). Prints bytes per sample and items per CPU-second
    of both, and their ratio."""
    import numpy as np
    import torch
    from PIL import Image

    from rgbify.datasets import TaskDataset, collate
    from rgbify.datasets.loading import kernels
    from rgbify.datasets.loading.task_dataset import _rgb_view

    torch.set_num_threads(1)
    reader = DatasetReader(d)
    tmp = scratch_dir("rgbify-peer-")
    for i in reader.indices:
        s = reader.read(i, ("rgb", "depth"))
        mm = np.where(np.isfinite(s["depth"]), np.round(s["depth"] * 1000.0), 0).clip(0, 65535).astype(np.uint16)
        Image.fromarray(s["rgb"]).save(tmp / f"{i}_rgb.png")
        Image.fromarray(mm).save(tmp / f"{i}_depth.png")
    peer_mb = sum(p.stat().st_size for p in tmp.iterdir()) / len(reader) / 1e6
    ds = TaskDataset(d, tasks=("depth",), split="all", augment=True, resolution=resolution, seed=0, return_gt=False)

    def peer_item(i: int, epoch: int) -> dict[str, Any]:
        rng = np.random.default_rng([0, epoch, i])
        rgb = np.array(Image.open(tmp / f"{i}_rgb.png").convert("RGB"))
        mm = np.asarray(Image.open(tmp / f"{i}_depth.png")).astype(np.float32)
        depth = np.where(mm > 0, mm / np.float32(1000.0), np.float32(np.inf)).astype(np.float32)
        view = ds._view(rgb.shape[:2], rng)
        target = np.empty((3, view.size[1], view.size[0]), np.uint8)
        kernels.cubewalk_planes(depth, *view.nearest(), target)
        return {"image": _rgb_view(rgb, view), "target": torch.from_numpy(target), "index": i}

    def peer_collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {k: torch.stack([b[k] for b in batch]) if k != "index" else [b[k] for b in batch] for k in batch[0]}

    ways = {"peer (PNG files, Pillow)": (peer_item, peer_collate), "rgbify (HDF5 shards)": (ds.get, collate)}
    for way in ways.values():
        way[0](reader.indices[0], 0)  # imports, numba kernels
    cpu = {k: 0.0 for k in ways}
    n = 0
    for r in range(rounds):
        keys = np.random.default_rng(r).choice(reader.indices, max(4, items // rounds))
        for name, (get, coll) in ways.items():
            t = time.process_time()
            for b in range(0, len(keys), 4):
                coll([get(int(k), r) for k in keys[b : b + 4]])
            cpu[name] += time.process_time() - t
        n += len(keys)
    rates = {k: n / c for k, c in cpu.items()}
    ours_mb = mb_per_sample(d)
    print(f"peer   Marigold-style PNG files (RGB PNG + depth uint16 PNG, mm; RGB and depth only): {peer_mb:.3f} "
          f"MB/sample, {rates['peer (PNG files, Pillow)']:6.1f} depth items per CPU-second at {resolution} px")
    print(f"rgbify HDF5 shards (every field of the sample): {ours_mb:.3f} MB/sample, "
          f"{rates['rgbify (HDF5 shards)']:6.1f} depth items per CPU-second: "
          f"{rates['rgbify (HDF5 shards)'] / rates['peer (PNG files, Pillow)']:.2f}x the peer's", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--build", type=int, default=0, help="render this many 512-px samples first")
    ap.add_argument("--compression", action="store_true")
    ap.add_argument("--items", type=int, default=400, help="items per measurement")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--baseline", metavar="GIT_REF", help="also measure the loader of this git revision, "
                    "interleaved with this tree's in the same process (e.g. --baseline main)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement")
    ap.add_argument("--quick", action="store_true", help="depth and normals items, return_gt=False only")
    ap.add_argument("--peer", action="store_true", help="depth items from Marigold-style PNG files (RGB PNG, depth "
                    "uint16 PNG in mm, Pillow) against rgbify's shards, one process")
    ap.add_argument("--storage", default="", help="comma-separated rgbify build --storage choices (compact,fast): "
                    "measure the loaders on copies of DIR rewritten with each, interleaved")
    ap.add_argument("--keep-freed-memory", action="store_true", help="call rgbify.datasets.loading.task_dataset."
                    "keep_freed_memory() in this process too (then main-process rows of both trees use it)")
    a = ap.parse_args()
    if a.keep_freed_memory:
        from rgbify.datasets.loading.task_dataset import keep_freed_memory

        keep_freed_memory()
    d = a.dir or Path(tempfile.mkdtemp(prefix="rgbify-bench-")) / "ds"
    if a.build:
        build(a.build, d)
    m = load_manifest(d)
    print(f"dataset {d}: {num_published(m)} samples at {m['width']}x{m['height']}, {mb_per_sample(d):.3f} MB/sample "
          "on disk")
    if a.compression:
        compression(d)
    if a.peer:
        peer_png(d, a.items, a.rounds, a.resolution)
        return
    task_sets = [("depth",), ("normals",)] + ([] if a.quick else [("depth", "normals", "semantic", "instance")])
    ways = [("processes", 0), ("processes", 1), ("processes", 2), ("processloader", 1), ("processloader", 2),
            ("threads", 2)]
    configs = [(t, gt, *w) for t in task_sets for gt in ((False,) if a.quick else (False, True)) for w in ways]
    storages = [s for s in a.storage.split(",") if s]
    for s in storages:
        if s not in STORAGE:
            ap.error(f"--storage {s!r} is not one of {', '.join(STORAGE)}")
    run_loaders(d, a.items, a.resolution, a.baseline, a.rounds, configs, storages)


if __name__ == "__main__":
    main()
