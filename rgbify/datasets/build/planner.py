"""``rgbify build``: render a recipe into a sharded HDF5 dataset, resumably. The planner decides what a dataset
lacks and publishes shards; a pool (rgbify.datasets.build.pools) renders: local Blender workers or Ray tasks.

Sample ``i`` is a pure function of (recipe config, base seed, i): its scene is ``sample_scene(config, seed, i)`` and
it always goes into shard ``i // shard_size``. So the number of workers and the order in which they finish change
nothing in the result, and a build can be killed at any moment and run again:

- every finished sample is first written to ``DIR/.work/shard-KKKKK/IIIIIIIII.npz`` (atomically), so a kill loses
  at most the samples being rendered at that moment;
- when all samples of a shard are there, the pool writes the shard to a part file (atomically), the planner checks
  it (sha256, header) and renames it to ``shards/shard-KKKKK.h5``, then rewrites ``dataset.json`` (atomically) to
  list it; then the shard's work files are removed;
- on start, every shard is checked against dataset.json (sha256); a shard that is truncated or corrupt is removed
  and re-rendered, a complete shard that dataset.json does not list yet (a kill between the rename and the
  manifest update) is adopted after checking every sample's checksum.

A larger ``--count`` extends a dataset (a short last shard is rewritten with the new samples); a different config
(recipe settings, resolution, samples, seed, shard size, assets, storage) on an existing DIR is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rgbify
from rgbify.datasets.build.config import BuildConfig, check
from rgbify.datasets.build.pools import LocalPool, Pool, find_blender
from rgbify.datasets.build.ray_pool import RayPool
from rgbify.datasets.build.work import BUILD_RESUME, Rendered, ShardJob, ShardWritten, clip_config_of
from rgbify.datasets.storage import folder
from rgbify.datasets.storage.clips import check_clip_shard, clip_fields_table, open_clip_shard
from rgbify.datasets.storage.manifest import (
    DATASET_FORMAT,
    MANIFEST_NAME,
    MANIFEST_SCHEMA_VERSION,
    ManifestCorrupt,
    ManifestError,
    config_hash,
    fields_table,
    load_manifest,
    save_manifest,
)
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.datasets.storage.shards import (
    ForeignShard,
    NotHDF5,
    ShardError,
    check_header,
    check_shard,
    nearly_equal,
    num_shards,
    open_shard,
    sha256_file,
    sha256_files,
    shard_range,
)
from rgbify.errors import UserError
from rgbify.fileio import disk_error, fsync_dir
from rgbify.scenes import SAMPLER_VERSION, load_recipe, sample_scene
from rgbify.scenes.credits import write_credits


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


def build(cfg: BuildConfig, progress: Any = None, log: Callable[[str], None] = print) -> BuildStats:
    """Build (or resume, or extend) the dataset described by ``cfg`` (see the module docstring): with Blender
    workers on this machine, or with ``cfg.ray`` set as Ray tasks, to the same result. ``progress``: an object with
    ``start(stats)``, ``update(stats)`` and ``stop(stats)`` (rgbify.datasets.build.progress.RichProgress)."""
    check(cfg)
    if cfg.blender:
        cfg = dataclasses.replace(cfg, blender=find_blender(cfg.blender))
    if cfg.clip is not None:  # read by every render call, on Ray too (from another working folder)
        cfg = dataclasses.replace(cfg, clip=Path(cfg.clip).resolve())
    pool = RayPool(cfg, log) if cfg.ray is not None else LocalPool(cfg)
    return Planner(cfg, pool, progress, log).run()


def load_config(cfg: BuildConfig) -> Any:
    """The RecipeConfig for ``cfg`` (recipe with resolution/samples overrides); UserError for an unknown recipe."""
    overrides: dict[str, Any] = {}
    if cfg.resolution is not None:
        overrides["resolution"] = tuple(cfg.resolution)
    if cfg.samples is not None:
        overrides["samples"] = cfg.samples
    try:
        return load_recipe(cfg.recipe, **overrides)
    except (ValueError, KeyError, OSError) as e:  # RecipeError is a ValueError naming the recipe and the fix
        raise UserError(str(e) if cfg.recipe in str(e) else f"--recipe {cfg.recipe!r}: {e}") from None


class Planner:
    """One run of ``rgbify build`` on a checked ``cfg``: plan what the dataset lacks, have ``pool`` render it,
    publish the shards the pool writes."""

    def __init__(self, cfg: BuildConfig, pool: Pool, progress: Any = None, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.pool = pool
        self.progress = progress
        self.log = log
        self.out = Path(cfg.out)
        self.stats = BuildStats()
        self.manifest: dict[str, Any] = {}
        self.clip_config = clip_config_of(cfg)
        self.open = open_shard if self.clip_config is None else open_clip_shard
        self.check = check_shard if self.clip_config is None else check_clip_shard

    def run(self) -> BuildStats:
        t0 = time.perf_counter()
        config = load_config(self.cfg)
        created = not self.out.exists()
        folder.prepare(self.out)
        try:
            with folder.locked(self.out):
                self.manifest = self._manifest(config)
                (self.out / folder.SHARDS_DIR).mkdir(exist_ok=True)
                folder.remove_unpublished(self.out)
                published = self._reconcile()
                self.manifest["complete"] = False
                self._save()
                jobs = self._plan(published)
                if jobs:
                    self._render(config, jobs)
                self.manifest["complete"] = True
                self._save()
                shutil.rmtree(self.out / folder.WORK_DIR, ignore_errors=True)
                self._credits()
        except BaseException:
            if created:  # a build refused or stopped before it wrote anything leaves no empty dataset folder
                folder.remove_if_empty(self.out)
            raise
        self.stats.wall_seconds = time.perf_counter() - t0
        return self.stats

    def _manifest(self, config: Any) -> dict[str, Any]:
        """This run's dataset.json: a new one, or the one in OUT if it describes the same dataset (else UserError)."""
        cfg = self.cfg
        try:
            first = sample_scene(config, cfg.seed, 0, assets=str(cfg.assets) if cfg.assets else None)
        except ValueError as e:  # SceneSamplingError: the recipe cannot produce a valid scene
            raise UserError(f"--recipe {cfg.recipe!r}: {e}") from None
        new = new_manifest(cfg, config, list(first.classes), self.clip_config)
        if not (self.out / MANIFEST_NAME).exists():
            return new
        try:
            old = load_manifest(self.out)
        except ManifestCorrupt as e:
            return self._rebuilt_manifest(new, e)
        except ManifestError as e:
            raise UserError(f"--out {self.out}: {e}") from None
        check_compatible(old, new, self.out)
        return {**old, "sampler_version": SAMPLER_VERSION, "count": max(cfg.count, old["count"])}

    def _credits(self) -> None:
        """CREDITS.md and credits.json: the third-party models the dataset's scenes use and the attributions their
        licences require (rgbify.scenes.credits; written only when some scene uses such a model)."""
        if self.clip_config is not None:
            from rgbify.datasets.storage.clips import ClipShardReader

            metas = []
            for entry in sorted(self.manifest["shards"], key=lambda e: e["first_index"]):
                with ClipShardReader(self.out / entry["file"]) as r:
                    metas += [r.clip_spec(j).scene.meta for j in range(len(r))]
            write_credits(self.out, metas)
            return
        reader = DatasetReader(self.out)
        try:
            metas = (json.loads(reader.read(i, ("spec",))["spec"]).get("meta", ()) for i in reader.indices)
            write_credits(self.out, metas)
        finally:
            reader.close()

    def _rebuilt_manifest(self, new: dict[str, Any], damage: ManifestCorrupt) -> dict[str, Any]:
        """A damaged dataset.json: this run's manifest ``new``, to be filled by the resume scan from the shards
        (each checked sample by sample), if every shard says it was built with this run's settings (else UserError:
        the settings that made the dataset are unknown, and the shards are never deleted). The damaged file is kept
        as dataset.json.damaged."""
        count = new["count"]
        for path in sorted((self.out / folder.SHARDS_DIR).glob("shard-*.h5")):
            try:
                with self.open(path) as f:
                    theirs = f.attrs.get("config_hash")
                    end = int(f.attrs["first_index"]) + int(f.attrs["samples"])
            except Exception:  # noqa: BLE001 - a damaged shard: the resume scan re-renders it
                continue
            if theirs != new["config_hash"] and not (isinstance(theirs, str)
                                                     and nearly_equal(theirs, new["config_hash"])):
                raise UserError(f"--out {self.out}: {damage}; and {folder.SHARDS_DIR}/{path.name} was built with "
                                "other settings than this command's, so dataset.json cannot be rebuilt: run the "
                                "build command that made the dataset (same recipe, resolution, samples, seed, "
                                "shard size, assets)") from None
            count = max(count, end)
        os.replace(self.out / MANIFEST_NAME, self.out / (MANIFEST_NAME + ".damaged"))
        self.log(f"{damage}: rebuilding {MANIFEST_NAME} from the shards (the damaged file is kept as "
                 f"{MANIFEST_NAME}.damaged)")
        return {**new, "count": count}

    def _reconcile(self) -> dict[int, int]:
        """Check shards/ against dataset.json and return {shard k: its samples} of the sound shards, listed or not
        (a kill between a shard's rename and the manifest's update); a missing, truncated or corrupt one is
        reported and removed, to be written again. manifest["shards"] becomes the sound ones."""
        m = self.manifest
        K, count = m["shard_size"], m["count"]
        listed = {s["file"]: s for s in m["shards"]}
        paths = [self.out / folder.shard_file(k) for k in range(num_shards(count, K))]
        digests = sha256_files(p for p in paths if p.exists())
        published: dict[int, int] = {}
        entries = []
        for k, path in enumerate(paths):
            rel = folder.shard_file(k)
            entry = listed.pop(rel, None)
            if path not in digests:
                if entry is not None:
                    self._repair(rel, f"shard {rel} listed in {MANIFEST_NAME} is missing")
                continue
            if entry is None or entry["sha256"] != digests[path]:
                try:
                    n = self.check(path, m["config_hash"], shard_range(k, K, count), prefix=True)
                except ForeignShard as e:  # someone else's file: never deleted
                    raise UserError(f"{e}; it is not part of this dataset and is never deleted: move it out of "
                                    f"{path.parent} and run the same command again") from None
                except ShardError as e:
                    if entry is None and not _is_shard(path, self.open):
                        raise UserError(f"{path} is not a shard of this dataset ({e}); move it out of "
                                        f"{path.parent}") from None
                    path.unlink()
                    self._repair(rel, f"shard {rel} is corrupt ({e})")
                    continue
                entry = {"file": rel, "samples": n, "first_index": k * K, "sha256": digests[path]}
            published[k] = int(entry["samples"])
            entries.append(entry)
        if listed:  # listed shards beyond the current count cannot exist (count never shrinks)
            raise UserError(f"{MANIFEST_NAME} lists {min(listed)}, which is not part of a {count}-sample dataset")
        m["shards"] = entries
        return published

    def _repair(self, rel: str, why: str) -> None:
        self.log(f"{why}: re-rendering it")
        self.stats.shards_repaired.append(rel)

    def _plan(self, published: dict[int, int]) -> list[ShardJob]:
        """A job for every shard that is not published whole; the statistics of what is done already."""
        m = self.manifest
        K, count = m["shard_size"], m["count"]
        jobs = []
        for k in range(num_shards(count, K)):
            samples = shard_range(k, K, count)
            have = published.get(k, 0)
            if have == len(samples):
                shutil.rmtree(folder.work_dir(self.out, k), ignore_errors=True)
                continue
            finished = folder.finished(self.out, k, samples[have:])
            todo = tuple(i for i in samples[have:] if i not in finished)
            jobs.append(ShardJob(k, samples, have, todo, m["config_hash"], tuple(m["classes"]),
                                 None if self.clip_config is None else float(self.clip_config.fps)))
        st = self.stats
        st.total = count
        st.done = st.done_before = count - sum(len(job.todo) for job in jobs)
        return jobs

    def _render(self, config: Any, jobs: list[ShardJob]) -> None:
        """Hand ``jobs`` to the pool; count what it renders and publish each shard it writes."""
        if self.progress is not None:
            self.progress.start(self.stats)
        try:
            with closing(self.pool.run(config, jobs)) as reports:
                for report in reports:
                    if isinstance(report, ShardWritten):
                        self._publish(report)
                    else:
                        self._count(report)
                    if self.progress is not None:
                        self.progress.update(self.stats)
        finally:
            if self.progress is not None:
                self.progress.stop(self.stats)
            folder.remove_unpublished(self.out)  # part files of dead or duplicate Ray task attempts

    def _count(self, r: Rendered) -> None:
        st = self.stats
        st.done += r.samples
        st.rendered += r.samples
        st.rejects += r.rejects
        st.restarts += r.restarts
        st.retried += r.retried
        st.render_seconds += r.seconds
        if r.blender_version:
            self.manifest["blender_version"] = r.blender_version  # saved with the next shard

    def _publish(self, written: ShardWritten) -> None:
        """Check the shard file a pool wrote (sha256 and header), rename it to shards/shard-K.h5, list it in
        dataset.json, drop its work files."""
        m = self.manifest
        samples = shard_range(written.k, m["shard_size"], m["count"])
        path = written.path
        try:
            if sha256_file(path) != written.sha256:
                raise ShardError(f"{path}: sha256 differs from what its writer reported")
            with self.open(path) as f:
                check_header(f, str(path), m["config_hash"], samples)
        except (ShardError, OSError) as e:
            raise UserError(f"{e}; run the same command again to write it anew") from None
        rel = folder.shard_file(written.k)
        os.replace(path, self.out / rel)
        fsync_dir(path.parent)
        m["shards"] = [s for s in m["shards"] if s["file"] != rel]
        m["shards"].append({"file": rel, "samples": len(samples), "first_index": samples.start,
                            "sha256": written.sha256})
        self._save()
        self.stats.shards_written += 1
        shutil.rmtree(folder.work_dir(self.out, written.k), ignore_errors=True)

    def _save(self) -> None:
        try:
            save_manifest(self.out, self.manifest)
        except OSError as e:
            raise disk_error(e, self.out / MANIFEST_NAME, BUILD_RESUME) from None


def _is_shard(path: Path, open_: Callable[[Path], Any] = open_shard) -> bool:
    """An rgbify shard, possibly damaged (an unlisted file that is not is refused rather than deleted)."""
    try:
        open_(path).close()
        return True
    except (ForeignShard, NotHDF5):
        return False
    except ShardError:
        return True


def new_manifest(cfg: BuildConfig, config: Any, classes: list[str], clip: Any = None) -> dict[str, Any]:
    """dataset.json of a new dataset built with ``cfg`` from the recipe ``config``, with no shard yet; with
    ``clip`` (a ClipConfig) a dataset of clips: ``clip`` holds the clip config (in the config hash too), ``frames``
    and ``fps`` its frames and rate, ``fields`` the clip shards' fields."""
    cdict = config.to_dict()
    assets = str(Path(cfg.assets).resolve()) if cfg.assets else None
    w, h = (int(x) for x in config.resolution)
    if clip is not None:
        from rgbify.scenes.clip import CLIP_VERSION

        cldict = json.loads(json.dumps(dataclasses.asdict(clip)))
        key = {**cdict, "clip": cldict, "clip_version": CLIP_VERSION}
        return {**new_manifest(cfg, config, classes),
                "clip": cldict, "clip_version": CLIP_VERSION, "frames": int(clip.frames), "fps": float(clip.fps),
                "config_hash": config_hash(key, assets, cfg.seed, cfg.shard_size, SAMPLER_VERSION),
                "fields": clip_fields_table(int(clip.frames), w, h)}
    return {
        "format": DATASET_FORMAT,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "conventions_version": rgbify.CONVENTIONS_VERSION,
        "rgbify_version": rgbify.__version__,
        "blender_version": None,
        "recipe": cfg.recipe,
        "sampler_version": SAMPLER_VERSION,
        "config": cdict,
        "assets": assets,
        "seed": cfg.seed,
        "shard_size": cfg.shard_size,
        "storage": cfg.storage,
        "count": cfg.count,
        "width": w,
        "height": h,
        "config_hash": config_hash(cdict, assets, cfg.seed, cfg.shard_size, SAMPLER_VERSION),
        "classes": list(classes),
        "fields": fields_table(w, h),
        "shards": [],
        "complete": False,
    }


def check_compatible(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    """UserError unless the dataset.json ``new`` of this run may build into ``out``, whose dataset.json is ``old``:
    the same dataset (scene sampler version, config hash, storage) and no fewer samples. The message names what
    differs."""
    made_by = old.get("sampler_version", 1)  # datasets built before the version was recorded
    if made_by != new["sampler_version"]:
        raise UserError(f"--out {out} holds scenes of scene sampler version {made_by}, and this rgbify samples "
                        f"version {new['sampler_version']}: building into it would mix scenes made by different code; "
                        f"build into a new --out (or use the rgbify version that made {out})")
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
    for key in ("seed", "shard_size", "assets", "clip"):
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
