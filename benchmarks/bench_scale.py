"""The measured figures behind docs/scaling.md's cost model: CPU core-seconds per sample and bytes per sample.

    python benchmarks/bench_scale.py [--recipe indoor] [--resolution 512] [--samples 64] [--count 2] [--threads 2]

Renders ``--count`` samples of the recipe (sample_scene(config, 0, i)) in one Blender worker and measures, per
sample, the worker process's CPU time (user + system, from /proc: the core-seconds a render costs, which stays
meaningful on a machine shared with other jobs, unlike wall time) and the wall time; then writes the samples into
a shard exactly as ``rgbify build`` does and reports its bytes per sample. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rgbify.datasets.build.work import sample_from_result  # noqa: E402
from rgbify.datasets.storage.shards import write_shard  # noqa: E402
from rgbify.render.worker import RenderWorker  # noqa: E402
from rgbify.scenes import load_recipe, sample_scene  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="indoor")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="Cycles threads (default: all cores)")
    a = ap.parse_args()
    config = load_recipe(a.recipe, resolution=(a.resolution, a.resolution), samples=a.samples)
    rows, stored = [], []
    with RenderWorker(timeout_s=3600, threads=a.threads) as w:
        w.render(sample_scene(config, 0, 10_000))  # warm-up: Blender start-up is paid once per worker
        for i in range(a.count):
            spec = sample_scene(config, 0, i)
            c0, t0 = cpu_seconds(w.pid), time.perf_counter()
            result = w.render(spec)
            rows.append({"index": i, "cpu_s": cpu_seconds(w.pid) - c0, "wall_s": time.perf_counter() - t0,
                         "timings": {k: round(v, 3) for k, v in result.timings.items()}})
            stored.append(sample_from_result(result, spec, 0, i))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard-00000.h5"
        write_shard(path, iter(stored), shard=0, first_index=0, count=len(stored), config_hash="bench")
        size = path.stat().st_size
    cpu = sum(r["cpu_s"] for r in rows) / len(rows)
    print(json.dumps({
        "recipe": a.recipe, "resolution": a.resolution, "spp": a.samples, "threads": a.threads,
        "cores": os.cpu_count(), "load_avg": os.getloadavg(), "per_sample": rows,
        "cpu_s_per_sample": round(cpu, 2), "samples_per_core_hour": round(3600 / cpu, 1),
        "bytes_per_sample": size // len(rows), "tb_per_million": round(size / len(rows) * 1e6 / 1e12, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
