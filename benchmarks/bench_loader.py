"""Loader and storage benchmark: samples/s of TaskDataset at 512 px with on-the-fly encoding (main process and
2 loader processes), bytes per sample on disk, and (--compression) size and read speed of HDF5 filter choices.

    python benchmarks/bench_loader.py --dir DATASET            # an existing 512-px dataset
    python benchmarks/bench_loader.py --build 8                # first renders 8 samples at 512 px (4 spp)
    python benchmarks/bench_loader.py --dir DATASET --compression

Prints one line per measurement. Target (issue 5): at least 200 samples/s per core for depth and normals items.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rgbify.datasets.reader import DatasetReader  # noqa: E402
from rgbify.datasets.shards import ShardReader, write_shard  # noqa: E402

CANDIDATES = {
    "none": {"fletcher32": True},
    "lzf+shuffle": {"compression": "lzf", "shuffle": True, "fletcher32": True},
    "gzip1": {"compression": "gzip", "compression_opts": 1, "fletcher32": True},
    "gzip1+shuffle": {"compression": "gzip", "compression_opts": 1, "shuffle": True, "fletcher32": True},
    "gzip4+shuffle": {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True},
    "gzip6+shuffle": {"compression": "gzip", "compression_opts": 6, "shuffle": True, "fletcher32": True},
}


def build(n: int, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "rgbify", "build", "--out", str(out), "--count", str(n), "--resolution", "512",
           "--samples", "4", "--workers", "2", "--no-preview", "--quiet"]
    subprocess.run(cmd, env=env, check=True)


def compression(d: Path) -> None:
    r = DatasetReader(d)
    samples = [r.read(i) for i in r.indices]
    n = len(samples)
    with tempfile.TemporaryDirectory() as tmp:
        for name, comp in CANDIDATES.items():
            p = Path(tmp) / f"{name}.h5"
            t = time.perf_counter()
            write_shard(p, samples, shard=0, first_index=samples[0]["index"], count=n, config_hash="bench",
                        compression=comp)
            wt = (time.perf_counter() - t) / n
            with ShardReader(p) as sr:
                sr.read(0)
                t = time.perf_counter()
                reps = 3
                for _ in range(reps):
                    for j in range(n):
                        sr.read(j)
                rt = (time.perf_counter() - t) / (reps * n)
            print(f"compression {name:14s} {p.stat().st_size / n / 1e6:7.3f} MB/sample  write {wt * 1e3:6.1f} ms"
                  f"  read {rt * 1e3:6.2f} ms/sample ({1 / rt:6.0f} samples/s, one core)")


def loader(d: Path, tasks: tuple[str, ...], workers: int, items: int, resolution: int,
           gt: bool) -> tuple[float, float]:
    """Items per second through a DataLoader (batch 4, train split settings: random crop 0.7-1, flip 0.5), by the
    wall clock and (main-process loading only) by this process's CPU time, i.e. per core whatever the load."""
    import torch

    from rgbify.datasets import TaskDataset, collate

    ds = TaskDataset(d, tasks=tasks, split="all", augment=True, resolution=resolution, seed=0, return_gt=gt)
    warm = 2 * max(1, workers)  # start-up (process spawn, numba JIT or cache load) is not counted
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=items + 4 * warm)
    dl = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate, sampler=sampler)
    it = iter(dl)
    for _ in range(warm):
        next(it)
    t, c = time.perf_counter(), time.process_time()
    n = 0
    for b in it:
        n += len(b["prompt"])
    return n / (time.perf_counter() - t), (n / (time.process_time() - c) if workers == 0 else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--build", type=int, default=0, help="render this many 512-px samples first")
    ap.add_argument("--compression", action="store_true")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--resolution", type=int, default=512)
    a = ap.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="rgbify-bench-")) / "ds"
    if a.build:
        build(a.build, d)
    import json

    m = json.loads((d / "dataset.json").read_text())
    size = sum((d / s["file"]).stat().st_size for s in m["shards"])
    count = sum(s["samples"] for s in m["shards"])
    print(f"dataset {d}: {count} samples at {m['width']}x{m['height']}, {size / count / 1e6:.3f} MB/sample on disk")
    if a.compression:
        compression(d)
    import torch

    torch.set_num_threads(1)
    for tasks in (("depth",), ("normals",), ("depth", "normals", "semantic", "instance")):
        for gt in (False, True):
            for workers in (0, 2):
                rate, cpu_rate = loader(d, tasks, workers, a.items, a.resolution, gt)
                cores = max(1, workers)
                cpu = f", {cpu_rate:6.1f} per CPU-second" if workers == 0 else ""
                print(f"loader {'+'.join(tasks):32s} return_gt={gt!s:5s} {workers} loader process(es): "
                      f"{rate:7.1f} samples/s wall ({rate / cores:6.1f} per process{cpu}) at {a.resolution} px",
                      flush=True)


if __name__ == "__main__":
    main()
