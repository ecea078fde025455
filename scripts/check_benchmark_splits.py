"""Check rgbify's benchmark catalog against Marigold's split lists (``data_split/`` of a prs-eth/Marigold checkout).

For every depth and normals benchmark: each listed image matches the catalog's image pattern, the catalog's
templates give the listed ground-truth (and DIODE mask) paths, the item count is the catalog's standard count, and
the fingerprint of the sorted image paths is the catalog's ``split_sha256`` (so ``rgbify eval --benchmark`` says
"split: reference" on exactly those images).

    python scripts/check_benchmark_splits.py /path/to/Marigold
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from rgbify.train.benchmarks.catalog import BENCHMARKS
from rgbify.train.benchmarks.readers import Item, split_fingerprint

LISTS = {
    "nyuv2": "nyu_depth/labeled/filename_list_test.txt",
    "kitti": "kitti_depth/eigen_test_files_with_gt.txt",
    "eth3d": "eth3d_depth/eth3d_filename_list.txt",
    "scannet": "scannet_depth/scannet_val_sampled_list_800_1.txt",
    "diode": "diode_depth/diode_val_all_filename_list.txt",
    "diode-indoor": "diode_depth/diode_val_indoor_filename_list.txt",
    "diode-outdoor": "diode_depth/diode_val_outdoor_filename_list.txt",
    "nyuv2-normals": "nyu_normals/nyuv2_test.txt",
    "scannet-normals": "scannet_normals/scannet_test.txt",
    "ibims-normals": "ibims_normals/ibims_test.txt",
    "diode-normals": "diode_normals/diode_test.txt",
    "oasis-normals": "oasis_normals/oasis_test.txt",
}


def check(name: str, lines: list[list[str]]) -> list[str]:
    bench = BENCHMARKS[name]
    lines = [cols for cols in lines if cols[1] != "None"]  # Marigold's KITTI list: images without ground truth
    pattern = re.compile(bench.rgb_pattern)
    problems = []
    for cols in lines:
        m = pattern.match(cols[0])
        if m is None:
            problems.append(f"{cols[0]} does not match {bench.rgb_pattern}")
        elif m.expand(bench.gt_template) != cols[1]:
            problems.append(f"{cols[0]}: ground truth {m.expand(bench.gt_template)}, the list says {cols[1]}")
        elif bench.mask_template and m.expand(bench.mask_template) != cols[2]:
            problems.append(f"{cols[0]}: mask {m.expand(bench.mask_template)}, the list says {cols[2]}")
    if len(lines) != bench.standard_images:
        problems.append(f"{len(lines)} items, the catalog says {bench.standard_images}")
    fingerprint = split_fingerprint([Item(c[0], c[1]) for c in lines])
    if fingerprint != bench.split_sha256:
        problems.append(f"fingerprint {fingerprint}, the catalog says {bench.split_sha256}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "data_split").is_dir():
        print("usage: check_benchmark_splits.py MARIGOLD_CHECKOUT (the folder holding data_split/)", file=sys.stderr)
        return 2
    failed = 0
    for name, rel in LISTS.items():
        path = Path(argv[0]) / "data_split" / rel
        if not path.is_file():
            print(f"{name:16s} MISSING {path}")
            failed += 1
            continue
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
        problems = check(name, lines)
        failed += bool(problems)
        print(f"{name:16s} {'ok' if not problems else 'FAIL'}  {len(lines)} lines  " + "; ".join(problems[:3]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
