"""``rgbify build``: render a recipe into a sharded HDF5 dataset with a pool of Blender workers, resumably.

Sample ``i`` is a pure function of (recipe config, base seed, i): its scene is ``sample_scene(config, seed, i)`` and
it always goes into shard ``i // shard_size``. So the number of workers and the order in which they finish change
nothing in the result, and a build can be killed at any moment and run again:

- every finished sample is first written to ``DIR/.work/shard-KKKKK/IIIIIIIII.npz`` (atomically), so a kill loses
  at most the samples being rendered at that moment;
- when all samples of a shard are there, the shard is written to ``shards/shard-KKKKK.h5.tmp``, fsynced and renamed,
  then ``dataset.json`` is rewritten (atomically) to list it; then the shard's work files are removed;
- on start, every shard is checked against dataset.json (sha256); a shard that is truncated or corrupt is removed
  and re-rendered, a complete shard that dataset.json does not list yet (a kill between the rename and the
  manifest update) is adopted after checking every sample's checksum.

A larger ``--count`` extends a dataset (a short last shard is rewritten with the new samples); a different config
(recipe settings, resolution, samples, seed, shard size, assets) on an existing DIR is refused.
"""

from __future__ import annotations

import errno
import json
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

import rgbify
from rgbify.config import STRICT, Flag
from rgbify.datasets.storage import folder
from rgbify.datasets.storage.folder import SHARDS_DIR, WORK_DIR, shard_name, work_dir
from rgbify.datasets.storage.manifest import (
    DATASET_FORMAT,
    MANIFEST_NAME,
    MANIFEST_SCHEMA_VERSION,
    ManifestError,
    config_hash,
    fields_table,
    load_manifest,
    save_manifest,
)
from rgbify.datasets.storage.shards import (
    STORAGE,
    ShardError,
    ShardReader,
    check_shard,
    num_shards,
    open_shard,
    read_sample_file,
    sha256_files,
    shard_range,
    write_sample_file,
    write_shard,
)
from rgbify.errors import UserError


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '320x240' -> (320, 240) (width x height)."""
    import argparse

    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution {text!r} is not a number such as 256 or 320x240") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"resolution {text!r} must be a positive size such as 256 or 320x240")
    return parts[0], parts[1]


SCALE_OUT = ("ray", "cpus_per_task", "task_retries", "device", "workers_per_gpu", "blender")
"""The BuildConfig fields of the scale-out options (their own group in ``rgbify build --help``)."""


@dataclass(frozen=True)
class BuildConfig:
    """What to build. Every field is a flag of ``rgbify build`` (``--shard-size`` for shard_size); its docstring
    is the flag's help."""

    __pydantic_config__ = STRICT

    out: Path = Path("rgbify-dataset")
    """Dataset folder (created if missing). Running the same command again resumes or completes it."""
    recipe: str = "indoor"
    """Recipe name (`rgbify scenes list`) or path to a recipe TOML file."""
    count: int = 16
    """Number of samples. A larger count on an existing dataset extends it."""
    resolution: Annotated[tuple[int, int] | None, Flag(parse=parse_size, metavar="WxH")] = (256, 256)
    """Image size: 256 (square) or WIDTHxHEIGHT; None (in Python) keeps the recipe's."""
    samples: int | None = 16
    """Cycles samples per pixel of the RGB render (denoised); None (in Python) keeps the recipe's."""
    workers: int = 2
    """Blender worker processes rendering in parallel."""
    seed: int = 0
    """Base seed: sample i is a pure function of (recipe config, seed, i)."""
    shard_size: int = 64
    """Samples per HDF5 shard; shard k holds samples [k * shard_size, (k + 1) * shard_size)."""
    storage: Literal["compact", "fast"] = "compact"
    """compact: every image field deflated; fast: RGB stored uncompressed, 1.4-1.7x the disk and 1.2-1.45x the
    loader's rate (docs/datasets.md)."""
    assets: Path | None = None
    """Folder of user assets for the scene sampler (one sub-folder of meshes per class)."""
    max_scenes_per_worker: int = 200
    """Recycle a Blender worker after this many scenes (bounds memory growth)."""
    timeout: float = 600.0
    """Seconds a scene may take; a slower one is killed (its worker replaced) and retried."""
    retries: int = 2
    """How many times a failed scene is rendered again before the build stops."""
    ray: Annotated[str | None, Flag(nargs="?", const="local", metavar="ADDRESS")] = None
    """Run shards as Ray tasks: on a new local Ray instance (no ADDRESS; --workers tasks at a time) or on the
    cluster at ADDRESS (e.g. auto, 10.0.0.1:6379, ray://head:10001). OUT must be a folder every node sees at the
    same path."""
    cpus_per_task: int = 1
    """Ray: CPUs per shard task, also the Cycles threads of its Blender worker."""
    device: Literal["cpu", "gpu"] = "cpu"
    """Cycles device: cpu, or gpu (CUDA/OptiX; with --workers-per-gpu workers on each visible GPU, --workers is not
    used)."""
    workers_per_gpu: int = 1
    """--device gpu: Blender workers sharing each GPU (2-4 keep a GPU busy while a worker builds its scene on the
    CPU)."""
    blender: Annotated[str | None, Flag(metavar="PATH")] = None
    """Run the workers inside this Blender 4.2+ binary (blender --background --python-expr) instead of the bpy
    module; results are the same for the same Blender version."""
    task_retries: int = 3
    """Ray: re-runs of a shard task whose worker or node died."""


@dataclass
class BuildStats:
    total: int = 0
    done: int = 0
    done_before: int = 0
    rendered: int = 0
    rejects: int = 0
    restarts: int = 0
    retried: int = 0
    shards_written: int = 0
    shards_repaired: list[str] = field(default_factory=list)
    render_seconds: float = 0.0
    wall_seconds: float = 0.0


# --- validation and set-up -----------------------------------------------------------------------------------


def _check_args(cfg: BuildConfig) -> None:
    for name in ("count", "workers", "shard_size"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} {v} must be a positive integer")
    if cfg.storage not in STORAGE:
        raise UserError(f"--storage {cfg.storage!r} is not one of {', '.join(STORAGE)}")
    if cfg.samples is not None and cfg.samples < 1:
        raise UserError(f"--samples {cfg.samples} must be a positive integer")
    if cfg.resolution is not None and (len(cfg.resolution) != 2 or min(cfg.resolution) < 1):
        raise UserError(f"--resolution {cfg.resolution} must be a positive size such as 256 or 320x240")
    if cfg.assets is not None and not Path(cfg.assets).is_dir():
        raise UserError(f"--assets {cfg.assets}: not a folder")


def load_config(cfg: BuildConfig) -> Any:
    """The RecipeConfig for ``cfg`` (recipe with resolution/samples overrides); UserError for an unknown recipe."""
    from rgbify.scenes import load_recipe

    overrides: dict[str, Any] = {}
    if cfg.resolution is not None:
        overrides["resolution"] = tuple(cfg.resolution)
    if cfg.samples is not None:
        overrides["samples"] = cfg.samples
    try:
        return load_recipe(cfg.recipe, **overrides)
    except (ValueError, KeyError, OSError) as e:  # RecipeError is a ValueError naming the recipe and the fix
        raise UserError(str(e) if cfg.recipe in str(e) else f"--recipe {cfg.recipe!r}: {e}") from None


def _new_manifest(cfg: BuildConfig, config: Any, classes: list[str]) -> dict[str, Any]:
    cdict = config.to_dict()
    assets = str(Path(cfg.assets).resolve()) if cfg.assets else None
    w, h = _resolution_of(config)
    return {
        "format": DATASET_FORMAT,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "conventions_version": rgbify.CONVENTIONS_VERSION,
        "rgbify_version": rgbify.__version__,
        "blender_version": None,
        "recipe": cfg.recipe,
        "config": cdict,
        "assets": assets,
        "seed": cfg.seed,
        "shard_size": cfg.shard_size,
        "storage": cfg.storage,
        "count": cfg.count,
        "width": w,
        "height": h,
        "config_hash": config_hash(cdict, assets, cfg.seed, cfg.shard_size),
        "classes": list(classes),
        "fields": fields_table(w, h),
        "shards": [],
        "complete": False,
    }


def _resolution_of(config: Any) -> tuple[int, int]:
    w, h = config.resolution
    return int(w), int(h)


def _check_compatible(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    storage = old.get("storage", "compact")  # datasets built before --storage existed
    if storage != new["storage"]:
        raise UserError(f"--storage {new['storage']}: {out} was built with --storage {storage}; re-run with "
                        f"--storage {storage}, or convert it first: rgbify repack {out} --storage {new['storage']} "
                        "--out NEW_DIR")
    if old["config_hash"] == new["config_hash"]:
        if new["count"] < old["count"]:
            raise UserError(f"--count {new['count']} is smaller than the {old['count']} samples {out} was built "
                            f"with; a dataset only grows (use --count {old['count']} or more, or a new --out)")
        return
    diffs = []
    for key in ("seed", "shard_size", "assets"):
        if old.get(key) != new.get(key):
            diffs.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    oc, nc = old.get("config", {}), new.get("config", {})
    for key in sorted(set(oc) | set(nc)):
        if oc.get(key) != nc.get(key):
            diffs.append(f"{key} {_short(oc.get(key))} -> {_short(nc.get(key))}")
    raise UserError(f"--out {out} holds a dataset built with another config ({'; '.join(diffs[:4]) or 'recipe'}); "
                    "re-run with the same settings or choose a new --out (datasets are never mixed)")


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 40 else s[:37] + "..."


# --- shards on disk: inspect, adopt, repair ------------------------------------------------------------------


def _scan_published(out: Path, manifest: dict[str, Any], count: int, stats: BuildStats,
                    log: Callable[[str], None]) -> dict[int, int]:
    """Reconcile shards/ with the manifest. Returns {shard k: samples it holds}; updates manifest["shards"]."""
    K = manifest["shard_size"]
    chash = manifest["config_hash"]
    listed = {s["file"]: s for s in manifest["shards"]}
    published: dict[int, int] = {}
    entries = []
    shard_dir = out / SHARDS_DIR
    for path in sorted(shard_dir.glob("*.h5.tmp")):
        path.unlink()  # a shard being written when the build was killed
    paths = [out / SHARDS_DIR / shard_name(k) for k in range(num_shards(count, K))]
    digests = sha256_files(p for p in paths if p.exists())
    for k, path in enumerate(paths):
        rel = f"{SHARDS_DIR}/{shard_name(k)}"
        entry = listed.pop(rel, None)
        if path not in digests:
            if entry is not None:
                log(f"shard {rel} listed in {MANIFEST_NAME} is missing: re-rendering it")
                stats.shards_repaired.append(rel)
            continue
        digest = digests[path]
        if entry is not None and entry["sha256"] == digest:
            published[k] = int(entry["samples"])
            entries.append(entry)
            continue
        try:
            n = check_shard(path, chash, shard_range(k, K, count), prefix=True)
        except ShardError as e:
            if entry is None and not _is_ours(path):
                raise UserError(f"{path} is not a shard of this dataset ({e}); move it out of {shard_dir}") from None
            log(f"shard {rel} is corrupt ({e}): re-rendering it")
            stats.shards_repaired.append(rel)
            path.unlink()
            continue
        published[k] = n
        entries.append({"file": rel, "samples": n, "first_index": k * K, "sha256": digest})
    for rel in listed:  # listed shards beyond the current count cannot exist (count never shrinks)
        raise UserError(f"{MANIFEST_NAME} lists {rel}, which is not part of a {count}-sample dataset")
    manifest["shards"] = entries
    return published


def _is_ours(path: Path) -> bool:
    try:
        open_shard(path).close()
        return True
    except ShardError:
        return False


# --- the build -----------------------------------------------------------------------------------------------


def sample_from_result(result: Any, spec: Any, seed: int, index: int) -> dict[str, Any]:
    """The stored sample of one RenderResult (rgbify.render) and its scene spec."""
    from rgbify.scenes.spec import spec_to_json

    return {
        "index": index, "seed": seed,
        "rgb": result.rgb, "depth": result.depth, "normals": result.normals,
        "instance": result.instance, "semantic": result.semantic, "edge": result.edge,
        "K": result.K, "world_from_camera": result.world_from_camera,
        "spec": spec_to_json(spec),
        "instances": json.dumps(result.instances, sort_keys=True, default=_json_default),
        "timings": json.dumps(result.timings, sort_keys=True, default=_json_default),
    }


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _rejects_of(spec: Any) -> int:
    """Rejected draws (scene drafts and camera poses) before the sampler found a valid view."""
    meta = dict(spec.meta)
    rejects = meta.get("rejects")
    if isinstance(rejects, list | tuple):
        return len(rejects)
    try:
        return max(0, int(meta.get("attempts", 1)) - 1)
    except (TypeError, ValueError):
        return 0


class Builder:
    """One run of ``rgbify build``: plan what is missing, render it with W workers, publish shards."""

    def __init__(self, cfg: BuildConfig, progress: Any = None, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.log = log
        self.progress = progress  # object with start(total, done), update(stats), stop(); see cli.py
        self.stats = BuildStats()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.workers: list[Any] = []
        self.workers_lock = threading.Lock()

    # -- plan

    def run(self) -> BuildStats:
        cfg = self.cfg
        _check_args(cfg)
        config = load_config(cfg)
        folder.prepare(self.out)
        with folder.locked(self.out):
            return self._run_locked(config)

    def _run_locked(self, config: Any) -> BuildStats:
        from rgbify.scenes import sample_scene

        cfg, out = self.cfg, self.out
        t0 = time.perf_counter()
        assets = str(cfg.assets) if cfg.assets else None
        try:
            first_spec = sample_scene(config, cfg.seed, 0, assets=assets)
        except ValueError as e:  # SceneSamplingError: the recipe cannot produce a valid scene
            raise UserError(f"--recipe {cfg.recipe!r}: {e}") from None
        manifest = _new_manifest(cfg, config, list(first_spec.classes))
        if (out / MANIFEST_NAME).exists():
            try:
                old = load_manifest(out)
            except ManifestError as e:
                raise UserError(f"--out {out}: {e}") from None
            _check_compatible(old, manifest, out)
            manifest = {**old, "count": max(cfg.count, old["count"])}
        (out / SHARDS_DIR).mkdir(exist_ok=True)
        self.manifest = manifest
        K, count = manifest["shard_size"], manifest["count"]
        published = _scan_published(out, manifest, count, self.stats, self.log)
        manifest["complete"] = False
        self._save_manifest()
        self.pending: dict[int, dict[int, Any]] = {}  # shard -> {index: source}
        todo: list[int] = []
        for k in range(num_shards(count, K)):
            rng = shard_range(k, K, count)
            have = published.get(k, 0)
            if have == len(rng):
                shutil.rmtree(work_dir(out, k), ignore_errors=True)
                continue
            sources: dict[int, Any] = {i: ("shard", k, i - rng.start) for i in rng[:have]}
            sources.update(self._work_files(k, rng))
            self.pending[k] = sources
            todo.extend(i for i in rng if i not in sources)
        st = self.stats
        st.total = count
        st.done = st.done_before = count - len(todo)
        for k in [k for k, s in self.pending.items() if len(s) == len(shard_range(k, K, count))]:
            self._publish(k)
        if todo:
            self._render_all(config, todo)
        manifest["complete"] = True
        self._save_manifest()
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
        st.wall_seconds = time.perf_counter() - t0
        return st

    def _work_files(self, k: int, rng: range) -> dict[int, Any]:
        wdir = work_dir(self.out, k)
        found: dict[int, Any] = {}
        if not wdir.is_dir():
            return found
        for p in wdir.iterdir():
            if p.name.endswith(".tmp"):
                p.unlink()
                continue
            try:
                i = int(p.stem)
            except ValueError:
                continue
            if i in rng:
                found[i] = ("file", p)
        return found

    def _save_manifest(self) -> None:
        try:
            save_manifest(self.out, self.manifest)
        except OSError as e:
            raise _disk_error(e, self.out / MANIFEST_NAME) from None

    # -- render

    def _render_all(self, config: Any, todo: list[int]) -> None:
        cfg = self.cfg
        jobs: queue.Queue[int] = queue.Queue()
        for i in todo:
            jobs.put(i)
        n_threads = min(cfg.workers, len(todo))
        threads = [threading.Thread(target=self._worker_loop, args=(config, jobs, w), name=f"render-{w}",
                                    daemon=True) for w in range(n_threads)]
        if self.progress is not None:
            self.progress.start(self.stats)
        for t in threads:
            t.start()
        try:
            remaining = len(todo)
            while remaining:
                kind, payload = self.events.get()
                if kind == "error":
                    raise payload
                self._on_sample(*payload)
                remaining -= 1
                if self.progress is not None:
                    self.progress.update(self.stats)
        finally:
            self.stop.set()
            with self.workers_lock:
                for w in self.workers:
                    _close_quietly(w)
            for t in threads:
                t.join(timeout=10)
            if self.progress is not None:
                self.progress.stop(self.stats)

    def _worker_loop(self, config: Any, jobs: queue.Queue[int], slot: int = 0) -> None:
        from rgbify.datasets.scaleout import make_worker

        cfg = self.cfg
        try:
            worker = make_worker(cfg, slot)
            with self.workers_lock:
                if self.stop.is_set():
                    return
                self.workers.append(worker)
            with worker:
                while not self.stop.is_set():
                    try:
                        i = jobs.get_nowait()
                    except queue.Empty:
                        return
                    self.events.put(("done", self._render_one(worker, config, i)))
        except BaseException as e:  # noqa: BLE001 - forwarded to the main thread, which raises it
            if not self.stop.is_set():
                self.events.put(("error", e))

    def _render_one(self, worker: Any, config: Any, i: int) -> tuple[int, Path, int, int, int, float, str]:
        restarts0 = worker.restarts
        wdir = work_dir(self.out, i // self.manifest["shard_size"])
        path, spec, result, retried, seconds = render_sample(self.cfg, config, worker, i, wdir, self.stop)
        return i, path, _rejects_of(spec), worker.restarts - restarts0, retried, seconds, \
            str(getattr(result, "blender_version", ""))

    def _on_sample(self, i: int, path: Path, rejects: int, restarts: int, retried: int, seconds: float,
                   bver: str) -> None:
        st = self.stats
        st.done += 1
        st.rendered += 1
        st.rejects += rejects
        st.restarts += restarts
        st.retried += retried
        st.render_seconds += seconds
        if bver and self.manifest.get("blender_version") != bver:
            self.manifest["blender_version"] = bver
            self._save_manifest()
        K = self.manifest["shard_size"]
        k = i // K
        self.pending[k][i] = ("file", path)
        if len(self.pending[k]) == len(shard_range(k, K, self.manifest["count"])):
            self._publish(k)

    # -- publish

    def _publish(self, k: int) -> None:
        """Write shard k from its sources, atomically; list it in dataset.json; drop its work files."""
        K, count = self.manifest["shard_size"], self.manifest["count"]
        rng = shard_range(k, K, count)
        sources = self.pending.pop(k)
        rel = f"{SHARDS_DIR}/{shard_name(k)}"
        path = self.out / rel
        try:
            digest = write_shard(path, self._iter_sources(sources, rng, path, k), shard=k, first_index=rng.start,
                                 count=len(rng), config_hash=self.manifest["config_hash"],
                                 filters=STORAGE[self.cfg.storage])
        except OSError as e:
            raise _disk_error(e, path) from None
        self._record_shard(k, rng, digest)

    def _record_shard(self, k: int, rng: range, digest: str) -> None:
        """Shard k is in place: list it in dataset.json (replacing an older entry) and drop its work files."""
        rel = f"{SHARDS_DIR}/{shard_name(k)}"
        self.manifest["shards"] = [s for s in self.manifest["shards"] if s["file"] != rel]
        self.manifest["shards"].append({"file": rel, "samples": len(rng), "first_index": rng.start,
                                        "sha256": digest})
        self._save_manifest()
        self.stats.shards_written += 1
        shutil.rmtree(work_dir(self.out, k), ignore_errors=True)

    def _iter_sources(self, sources: dict[int, Any], rng: range, path: Path, k: int) -> Iterator[dict[str, Any]]:
        old = ShardReader(path) if any(s[0] == "shard" for s in sources.values()) else None
        try:
            for i in rng:
                src = sources[i]
                if src[0] == "shard":
                    yield old.read(src[2])  # type: ignore[union-attr]
                else:
                    try:
                        yield read_sample_file(src[1])
                    except ShardError as e:
                        src[1].unlink(missing_ok=True)
                        raise UserError(f"{e}; it was removed, run the same command again to re-render "
                                        f"sample {i}") from None
        finally:
            if old is not None:
                old.close()


def render_sample(cfg: BuildConfig, config: Any, worker: Any, i: int, wdir: Path,
                  stop: threading.Event | None = None) -> tuple[Path, Any, Any, int, float]:
    """Sample scene ``i``, render it on ``worker`` (retrying ``cfg.retries`` times) and write its work file.

    Returns (work file path, spec, render result, retries used, render seconds). Raises SampleFailed when the
    index has no valid scene or its render keeps failing; a render error while ``stop`` is set is re-raised.
    """
    from rgbify.render.worker import SceneError
    from rgbify.scenes import sample_scene

    try:
        spec = sample_scene(config, cfg.seed, i, assets=str(cfg.assets) if cfg.assets else None)
    except ValueError as e:  # SceneSamplingError: no valid scene for this index
        raise SampleFailed(f"sample {i}: {e}") from e
    retried = 0
    while True:
        t = time.perf_counter()
        try:
            result = worker.render(spec)
            break
        except (SceneError, TimeoutError) as e:
            if stop is not None and stop.is_set():
                raise
            retried += 1
            if retried > cfg.retries:
                raise SampleFailed(f"sample {i} failed {retried} times, last: {e}") from e
    seconds = time.perf_counter() - t
    wdir.mkdir(parents=True, exist_ok=True)
    path = wdir / f"{i:09d}.npz"
    try:
        write_sample_file(path, sample_from_result(result, spec, cfg.seed, i))
    except OSError as e:
        raise _disk_error(e, path) from None
    return path, spec, result, retried, seconds


class SampleFailed(RuntimeError):
    """A scene failed to render after all retries."""


def _close_quietly(worker: Any) -> None:
    try:
        close = getattr(worker, "close", None)
        if close is not None:
            close()
        else:
            worker.__exit__(None, None, None)
    except Exception:  # noqa: BLE001 - best effort during shutdown
        pass


def _disk_error(e: OSError, path: Path) -> Exception:
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return UserError(f"no space left writing {path} ({e.strerror}); free some space and run the same command "
                         "again (finished samples are kept)")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {path} ({e.strerror}); make the folder writable")
    return e


def build(cfg: BuildConfig, progress: Any = None, log: Callable[[str], None] = print) -> BuildStats:
    """Build (or resume, or extend) the dataset described by ``cfg``; see the module docstring. With ``cfg.ray``
    set the shards run as Ray tasks (rgbify.datasets.ray_build) with the same result."""
    from rgbify.datasets.scaleout import resolve

    cfg = resolve(cfg)
    if cfg.ray is not None:
        from rgbify.datasets.ray_build import RayBuilder

        return RayBuilder(cfg, progress=progress, log=log).run()
    return Builder(cfg, progress=progress, log=log).run()
