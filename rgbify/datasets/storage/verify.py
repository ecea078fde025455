"""``rgbify verify DIR``: check a dataset's manifest, shard files and every sample against the conventions.

Checks: dataset.json schema; each shard listed exists, its sha256 matches, it is an rgbify shard of this dataset
(config_hash), it holds the indices the manifest says, its class table (where the shard stores one) is the
manifest's; every field has the documented shape and dtype; per sample:
the stored checksum matches the data (and HDF5's per-chunk Fletcher-32 checksums), no NaN anywhere, and the
invariants of docs/conventions.md:

- depth is finite and positive exactly where something was hit (instance > 0), +inf elsewhere;
- normals are unit vectors facing the camera where something was hit, 0 elsewhere;
- semantic is 0 where nothing was hit and equals each instance's class index (instance table), the class index
  names the same class in the dataset's class table, and pixel counts match;
- K is a finite pinhole matrix, world_from_camera a rigid transform; the scene spec parses.

Problems name the shard and the sample. ``verify`` returns them; the CLI prints a report and exits 1 if any.
Each shard is checked inside an error boundary of its own, and each sample inside one of its own: a damaged file
(HDF5 raises KeyError, RuntimeError, OSError, UnicodeDecodeError ... on damaged metadata) becomes a problem of that
shard or sample, and the report of every other shard is complete. A checking process that dies (with ``jobs`` > 1)
is reported as a problem of the shards it held. Every problem is one that ``rgbify build`` with the dataset's
settings repairs (it re-renders a damaged shard, or rebuilds a damaged dataset.json from the shards).
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rgbify.datasets.storage.folder import SHARDS_DIR, writer_active
from rgbify.datasets.storage.manifest import MANIFEST_NAME, ManifestCorrupt, fields_table, load_manifest
from rgbify.datasets.storage.shards import (
    ShardError,
    ShardReader,
    check_header,
    open_shard,
    sample_checksum,
    sha256_file,
)
from rgbify.scenes.spec import spec_from_json
from rgbify.signals import quiet_worker, stop_pool

NORMAL_UNIT_TOL = 1e-3
FACING_TOL = 1e-3


@dataclass
class Report:
    directory: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples_checked: int = 0
    shards_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"{self.directory}: {self.shards_checked} shard(s), {self.samples_checked} sample(s) checked"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        lines.append("OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)")
        return "\n".join(lines)


REBUILD = "run the `rgbify build` command that made the dataset again to repair it"


def verify(directory: str | Path, max_problems_per_shard: int = 20, jobs: int = 1) -> Report:
    """Check the dataset in ``directory``; raises ManifestError if it holds no dataset.json (or another tool's),
    reports a damaged one as a problem. ``jobs``: shards checked at once, in that many processes (h5py reads hold
    the GIL)."""
    d = Path(directory)
    rep = Report(d)
    busy = writer_active(d)
    if busy:
        rep.notes.append("a build or repack is writing this dataset now (its .lock is held): this report shows it "
                         "mid-way; run verify again when that command has finished")
    try:
        m = load_manifest(d)
    except ManifestCorrupt as e:
        rep.problems.append(f"{e}; {REBUILD} (it rebuilds {MANIFEST_NAME} from the shards)")
        return rep
    entries = sorted(m["shards"], key=lambda s: s["first_index"])
    jobs = max(1, min(jobs, len(entries)))
    check = functools.partial(_checked_shard, d, {**{k: m[k] for k in ("config_hash", "classes", "width", "height")},
                                                  "pseudo": isinstance(m.get("pseudo_labels"), dict),
                                                  "frames": m.get("frames") if "clip" in m else None})
    expected_start = 0
    for entry, (problems, samples) in zip(entries, _map_shards(check, entries, jobs), strict=True):
        if entry["first_index"] != expected_start:
            rep.problems.append(f"{entry['file']}: starts at sample {entry['first_index']}, expected "
                                f"{expected_start} (gap or overlap between shards)")
        expected_start = entry["first_index"] + entry["samples"]
        rep.problems += problems[:max_problems_per_shard]
        if len(problems) > max_problems_per_shard:
            rep.problems.append(f"{entry['file']}: {len(problems) - max_problems_per_shard} more problem(s) "
                                "not shown")
        rep.samples_checked += samples
        rep.shards_checked += 1
    if expected_start != m["count"] or not m.get("complete", False):
        fix = ("the build writing it now will finish it" if busy else
               "run the same `rgbify build` command again to finish it")
        rep.problems.append(f"incomplete: {expected_start} of {m['count']} samples are in published shards; {fix}")
    listed = {Path(e["file"]).name for e in m["shards"]}
    for p in sorted((d / SHARDS_DIR).glob("*")) if (d / SHARDS_DIR).is_dir() else []:
        if p.name not in listed:
            rep.notes.append(f"{SHARDS_DIR}/{p.name} is not listed in {MANIFEST_NAME} (ignored by readers)")
    return rep


def _map_shards(check: Any, entries: list[dict[str, Any]], jobs: int) -> list[tuple[list[str], int]]:
    """``check`` of every entry, in order; with ``jobs`` > 1 in forked processes. A process that dies (a crash in
    the HDF5 library on a damaged file) fails the shards it held: each of those is checked again in a process of
    its own, so that only the shard that crashes it is reported as such."""
    if jobs == 1:
        return [check(e) for e in entries]
    ctx = multiprocessing.get_context("fork")  # no shard is open yet; spawn would re-run the caller's script
    results: list[tuple[list[str], int] | None] = [None] * len(entries)
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=quiet_worker)
    try:
        futures = [pool.submit(check, e) for e in entries]
        for i, fut in enumerate(futures):
            with contextlib.suppress(BrokenProcessPool):
                results[i] = fut.result()
    except BaseException:  # Ctrl-C: the workers (which ignore SIGINT) are ended, the shards not started dropped
        stop_pool(pool, interrupted=True)
        raise
    stop_pool(pool, interrupted=False)
    for i, entry in enumerate(entries):
        if results[i] is None:
            with ProcessPoolExecutor(1, mp_context=ctx, initializer=quiet_worker) as alone:
                try:
                    results[i] = alone.submit(check, entry).result()
                except BrokenProcessPool:
                    results[i] = ([f"{entry['file']}: reading it crashed the checking process (a damaged HDF5 "
                                   f"file); {REBUILD}"], 0)
    return results  # type: ignore[return-value]


def _checked_shard(d: Path, m: dict[str, Any], entry: dict[str, Any]) -> tuple[list[str], int]:
    """:func:`_check_shard` inside an error boundary: whatever reading a damaged file raises becomes a problem of
    this shard."""
    try:
        return _check_shard(d, m, entry)
    except Exception as e:  # noqa: BLE001 - the boundary: one shard's damage never ends the report
        return [f"{entry['file']}: unreadable ({type(e).__name__}: {' '.join(str(e).split())}); {REBUILD}"], 0


def _check_shard(d: Path, m: dict[str, Any], entry: dict[str, Any]) -> tuple[list[str], int]:
    """(problems, samples checked) of one shard listed in the manifest (a clip shard's: :func:`_check_clip_shard`)."""
    if m.get("frames") is None:
        return _check_still_shard(d, m, entry)
    rel = entry["file"]
    path = d / rel
    if not path.is_file():
        return [f"{rel}: missing; {REBUILD}"], 0
    problems = []
    if sha256_file(path) != entry.get("sha256"):
        problems.append(f"{rel}: sha256 differs from {MANIFEST_NAME} (truncated or modified file)")
    return _check_clip_shard(path, rel, m, entry, problems)


def _check_still_shard(d: Path, m: dict[str, Any], entry: dict[str, Any]) -> tuple[list[str], int]:
    """(problems, samples checked) of one shard listed in the manifest; ``m``: the manifest's config_hash, classes,
    width and height."""
    problems: list[str] = []
    samples = 0
    rel = entry["file"]
    path = d / rel
    if not path.is_file():
        problems.append(f"{rel}: missing; {REBUILD}")
        return problems, samples
    if sha256_file(path) != entry.get("sha256"):
        problems.append(f"{rel}: sha256 differs from {MANIFEST_NAME} (truncated or modified file)")
    try:
        f = open_shard(path)
    except ShardError as e:
        problems.append(f"{e}; {REBUILD}")
        return problems, samples
    first, n = entry["first_index"], entry["samples"]
    with f:
        try:
            check_header(f, rel, m["config_hash"], range(first, first + n))
        except ShardError as e:
            problems.append(str(e))
            return problems, samples
        stored = f.attrs.get("classes")  # shards written before the attribute existed lack it
        if stored is not None and [c.decode() if isinstance(c, bytes) else c for c in stored] != list(m["classes"]):
            problems.append(f"{rel}: its class table (attribute classes) differs from {MANIFEST_NAME}'s")
        for name, spec in fields_table(m["width"], m["height"]).items():
            try:
                problem = _field_problem(f, name, spec, n)
            except Exception as e:  # noqa: BLE001 - damaged metadata of this field
                problem = f"field {name!r} unreadable ({type(e).__name__}: {' '.join(str(e).split())})"
            if problem:
                problems.append(f"{rel}: {problem}")
        if problems and any(p.startswith(f"{rel}: field") for p in problems):
            return problems, samples
    classes = list(m["classes"])
    # a teacher's pseudo-labels (rgbify distill) are stored like renders but hold none of their invariants
    invariants = (lambda s, c: []) if m.get("pseudo") else check_sample
    with ShardReader(path, direct=False) as r:
        for j in range(n):
            where = f"{rel}: sample {first + j}"
            try:
                s = r.read(j)
            except ShardError as e:
                problems.append(str(e))
                continue
            samples += 1
            try:
                if int(s["index"]) != first + j:
                    problems.append(f"{where}: stored index is {int(s['index'])}")
                if sample_checksum(s) != s["checksum"]:
                    problems.append(f"{where}: checksum mismatch (data changed after it was written)")
                problems.extend(f"{where}: {p}" for p in invariants(s, classes))
            except Exception as e:  # noqa: BLE001 - a damaged value of an unexpected type or shape
                problems.append(f"{where}: unreadable ({type(e).__name__}: {' '.join(str(e).split())})")
    return problems, samples


def _check_clip_shard(path: Path, rel: str, m: dict[str, Any], entry: dict[str, Any],
                      problems: list[str]) -> tuple[list[str], int]:
    """:func:`_check_shard` of a clip dataset's shard (rgbify.datasets.storage.clips): header, class table, then
    every clip's index, checksum and cheap invariants (:func:`~rgbify.datasets.storage.clips.check_clip`)."""
    from rgbify.datasets.storage.clips import ClipShardReader, check_clip, clip_checksum, open_clip_shard

    first, n = entry["first_index"], entry["samples"]
    try:
        f = open_clip_shard(path)
    except ShardError as e:
        problems.append(f"{e}; {REBUILD}")
        return problems, 0
    with f:
        try:
            check_header(f, rel, m["config_hash"], range(first, first + n))
        except ShardError as e:
            problems.append(str(e))
            return problems, 0
        stored = [c.decode() if isinstance(c, bytes) else c for c in f.attrs.get("classes", [])]
        if stored != list(m["classes"]):
            problems.append(f"{rel}: its class table (attribute classes) differs from {MANIFEST_NAME}'s")
        if int(f.attrs.get("frames", -1)) != m["frames"]:
            problems.append(f"{rel}: holds clips of {f.attrs.get('frames')} frames, {MANIFEST_NAME} says {m['frames']}")
            return problems, 0
    samples = 0
    with ClipShardReader(path) as r:
        for j in range(n):
            where = f"{rel}: clip {first + j}"
            try:
                c = r.clip(j)
                samples += 1
                if int(c["index"]) != first + j:
                    problems.append(f"{where}: stored index is {int(c['index'])}")
                if clip_checksum(c) != c["checksum"]:
                    problems.append(f"{where}: checksum mismatch (data changed after it was written)")
                problems.extend(f"{where}: {p}" for p in check_clip(c, m["frames"], m["height"], m["width"]))
            except Exception as e:  # noqa: BLE001 - a damaged chunk or value: a problem of this clip
                problems.append(f"{where}: unreadable ({type(e).__name__}: {' '.join(str(e).split())})")
    return problems, samples


def _field_problem(f: Any, name: str, spec: dict[str, Any], n: int) -> str | None:
    if name not in f:
        return f"field {name!r} missing"
    ds = f[name]
    want_dtype = spec["dtype"]
    got_dtype = "str" if ds.dtype.kind in "OS" else str(ds.dtype)
    if ds.attrs.get("encoding") == "zlib+utf-8":
        got_dtype = "zlib+utf-8"
    if ds.shape != (n, *spec["shape"]) or got_dtype != want_dtype:
        return f"field {name!r} is {got_dtype} {ds.shape}, expected {want_dtype} {(n, *spec['shape'])}"
    return None


def check_sample(s: dict[str, Any], classes: list[str]) -> list[str]:
    """Invariant violations of one sample (see the module docstring); empty if it is sound."""
    probs: list[str] = []
    depth, normals = s["depth"], s["normals"]
    inst, sem = s["instance"], s["semantic"]
    for name in ("depth", "normals", "K", "world_from_camera"):
        nan = int(np.isnan(s[name]).sum())
        if nan:
            probs.append(f"{name} has {nan} NaN value(s)")
    hit = inst > 0
    if np.any(inst < 0) or np.any(sem < 0):
        probs.append("negative instance or semantic ids")
    bad = hit & ~(np.isfinite(depth) & (depth > 0))
    if bad.any():
        probs.append(f"{int(bad.sum())} hit pixel(s) without finite positive depth")
    bad = ~hit & ~np.isposinf(depth)
    if bad.any():
        probs.append(f"{int(bad.sum())} pixel(s) with instance 0 but depth not +inf")
    norm = np.linalg.norm(normals, axis=-1)
    bad = hit & (np.abs(norm - 1) > NORMAL_UNIT_TOL)
    if bad.any():
        probs.append(f"{int(bad.sum())} hit pixel(s) with non-unit normals (|n| off by up to "
                     f"{float(np.abs(norm - 1)[bad].max()):.3g})")
    if np.any(normals[~hit] != 0):
        probs.append("non-zero normals where nothing was hit")
    probs += _check_camera(s, normals, hit)
    probs += _check_instances(s, inst, sem, hit, classes)
    try:
        spec = spec_from_json(s["spec"])
        if list(spec.classes) != classes:
            probs.append("the scene spec's class table differs from the dataset's")
    except ValueError as e:
        probs.append(f"scene spec does not parse ({e})")
    return probs


def _check_camera(s: dict[str, Any], normals: np.ndarray, hit: np.ndarray) -> list[str]:
    probs = []
    K, T = s["K"], s["world_from_camera"]
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        probs.append(f"K is not a pinhole matrix: {K.tolist()}")
        return probs
    R = T[:3, :3]
    if not (np.all(np.isfinite(T)) and np.allclose(T[3], [0, 0, 0, 1]) and np.allclose(R @ R.T, np.eye(3), atol=1e-6)):
        probs.append("world_from_camera is not a rigid transform")
    h, w = hit.shape
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((h, w))], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    facing = np.einsum("hwc,hwc->hw", normals, rays)
    bad = hit & (facing > FACING_TOL)
    if bad.any():
        probs.append(f"{int(bad.sum())} normal(s) face away from the camera")
    return probs


def _check_instances(s: dict[str, Any], inst: np.ndarray, sem: np.ndarray, hit: np.ndarray,
                     classes: list[str]) -> list[str]:
    probs = []
    if np.any(sem[~hit] != 0):
        probs.append("semantic is non-zero where nothing was hit")
    try:
        table = json.loads(s["instances"])
    except json.JSONDecodeError as e:
        return [f"instance table is not JSON ({e})"]
    ids, counts = np.unique(inst[hit], return_counts=True)
    pixel_counts = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    known = set()
    for row in table:
        iid, ci, cname = int(row["id"]), int(row["class_index"]), row["class_name"]
        known.add(iid)
        if not (1 <= ci <= len(classes)) or classes[ci - 1] != cname:
            probs.append(f"instance {iid}: class {cname!r} index {ci} disagrees with the class table")
        n = pixel_counts.get(iid, 0)
        if int(row.get("pixel_count", n)) != n:
            probs.append(f"instance {iid}: pixel_count {row.get('pixel_count')} but {n} pixels in the image")
        if n:
            wrong = int(np.count_nonzero(sem[inst == iid] != ci))
            if wrong:
                probs.append(f"instance {iid} ({cname}): {wrong} pixel(s) with semantic != {ci}")
    unknown = sorted(set(pixel_counts) - known)
    if unknown:
        probs.append(f"instance id(s) {unknown[:5]} in the image but not in the instance table")
    return probs
