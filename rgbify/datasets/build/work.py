"""The work of a build, as the planner hands it to a pool and a pool reports it back.

A :class:`ShardJob` is one shard to write. A pool renders each of its missing samples with :func:`render_sample`
(scene ``i`` of the recipe, rendered on a RenderWorker, written atomically to its work file ``.work/shard-K/
IIIIIIIII.npz``; a :class:`Rendered` report), then writes the whole shard with :func:`write_part` to a file of its
own, ``shards/shard-K.h5.part-TOKEN`` (a :class:`ShardWritten` report), which the planner checks and publishes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rgbify.datasets.build.config import BuildConfig
from rgbify.datasets.storage import folder
from rgbify.datasets.storage.shards import (
    STORAGE,
    ShardError,
    ShardReader,
    read_sample_file,
    write_sample_file,
    write_shard,
)
from rgbify.errors import UserError
from rgbify.fileio import disk_error
from rgbify.render import SceneError
from rgbify.scenes import sample_scene
from rgbify.scenes.spec import spec_to_json


@dataclass(frozen=True)
class ShardJob:
    """Shard ``k`` to write: it holds the samples ``samples``, of which the first ``have`` are in the published
    ``shards/shard-K.h5`` already (a short last shard that a larger count extends) and ``todo`` have no work file
    yet; ``config_hash`` ties the shard to its dataset."""

    k: int
    samples: range
    have: int
    todo: tuple[int, ...]
    config_hash: str
    classes: tuple[str, ...] | None = None
    """The dataset's class table (stored in the shard)."""
    clip_fps: float | None = None
    """A clip dataset's frame rate (its shards are clip shards, rgbify.datasets.storage.clips); None: stills."""


@dataclass(frozen=True)
class Rendered:
    """Samples a pool finished since its last report (they count in the progress bar) and what rendering them
    took: scene draws the sampler rejected, Blender worker restarts, render retries, render seconds."""

    samples: int = 0
    rejects: int = 0
    restarts: int = 0
    retried: int = 0
    seconds: float = 0.0
    blender_version: str = ""

    def __add__(self, other: Rendered) -> Rendered:
        return Rendered(self.samples + other.samples, self.rejects + other.rejects, self.restarts + other.restarts,
                        self.retried + other.retried, self.seconds + other.seconds,
                        other.blender_version or self.blender_version)


@dataclass(frozen=True)
class ShardWritten:
    """Shard ``k`` written whole to ``path`` (a part file beside its final name), whose sha256 is ``sha256``."""

    k: int
    path: Path
    sha256: str


BUILD_RESUME = "run the same command again (finished samples are kept)"
"""What to do after a build stopped on a full disk."""


class SampleFailed(RuntimeError):
    """A scene failed to render after all retries."""


def clip_config_of(cfg: BuildConfig) -> Any:
    """The ClipConfig of a clip build (``--clip`` TOML file with ``--clip-frames``), or None for stills; UserError
    naming the file and the bad value."""
    if not cfg.clip_frames:
        return None
    import tomllib

    from rgbify.scenes.clip import load_clip_config

    table: dict[str, Any] = {}
    if cfg.clip is not None:
        try:
            table = tomllib.loads(Path(cfg.clip).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise UserError(f"--clip {cfg.clip}: not a readable TOML file ({' '.join(str(e).split())})") from None
        table = dict(table.get("clip", table))  # a [clip] table or the fields at the top level
    try:
        return load_clip_config(table, frames=cfg.clip_frames)
    except ValueError as e:
        raise UserError(f"--clip {cfg.clip}: {e}" if cfg.clip else f"--clip-frames: {e}") from None


def render_sample(cfg: BuildConfig, config: Any, worker: Any, i: int, path: Path,
                  stop: threading.Event | None = None) -> Rendered:
    """Sample scene ``i`` of the recipe ``config`` (a clip build: clip ``i``, rgbify.scenes.clip.sample_clip),
    render it on ``worker`` (retrying ``cfg.retries`` times) and write it to the work file ``path``. Raises
    SampleFailed when the index has no valid scene or its render keeps failing; a render error while ``stop`` is
    set is re-raised as it is."""
    clip_config = clip_config_of(cfg)
    assets = str(cfg.assets) if cfg.assets else None
    try:
        if clip_config is not None:
            from rgbify.scenes.clip import sample_clip

            clip = sample_clip(config, clip_config, cfg.seed, i, assets)
            spec = clip.scene
        else:
            spec = sample_scene(config, cfg.seed, i, assets=assets)
    except ValueError as e:  # SceneSamplingError: no valid scene for this index
        raise SampleFailed(f"sample {i}: {e}") from e
    restarts, retried = worker.restarts, 0
    while True:
        t = time.perf_counter()
        try:
            result = worker.render(spec) if clip_config is None else worker.render_clip(clip)
            break
        except (SceneError, TimeoutError) as e:
            if stop is not None and stop.is_set():
                raise
            retried += 1
            if retried > cfg.retries:
                raise SampleFailed(f"sample {i} failed {retried} times, last: {e}") from e
    seconds = time.perf_counter() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if clip_config is None:
            write_sample_file(path, sample_from_result(result, spec, cfg.seed, i))
        else:
            from rgbify.datasets.storage.clips import clip_sample, write_clip_file

            write_clip_file(path, clip_sample(clip, result, i, cfg.seed))
            result = result[0]
    except OSError as e:
        raise disk_error(e, path, BUILD_RESUME) from None
    return Rendered(1, rejects_of(spec), worker.restarts - restarts, retried, seconds,
                    str(getattr(result, "blender_version", "")))


def sample_from_result(result: Any, spec: Any, seed: int, index: int) -> dict[str, Any]:
    """The stored sample of one RenderResult (rgbify.render) and its scene spec."""
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


def rejects_of(spec: Any) -> int:
    """Rejected draws (scene drafts and camera poses) before the sampler found a valid view."""
    meta = dict(spec.meta)
    rejects = meta.get("rejects")
    if isinstance(rejects, list | tuple):
        return len(rejects)
    try:
        return max(0, int(meta.get("attempts", 1)) - 1)
    except (TypeError, ValueError):
        return 0


def write_part(out: Path, job: ShardJob, storage: str) -> ShardWritten:
    """Write shard ``job.k`` of the dataset at ``out`` whole, from the published shard's first ``job.have`` samples
    and the work files of the others, to a part file of its own (atomically: it only ever appears complete)."""
    path = out / f"{folder.shard_file(job.k)}{folder.PART}{uuid.uuid4().hex[:12]}"
    if job.clip_fps is not None:
        from rgbify.datasets.storage.clips import write_clip_shard

        try:
            digest = write_clip_shard(path, _sources(out, job), first_index=job.samples.start,
                                      count=len(job.samples), config_hash=job.config_hash,
                                      classes=job.classes or (), fps=job.clip_fps)
        except OSError as e:
            raise disk_error(e, path, BUILD_RESUME) from None
        return ShardWritten(job.k, path, digest)
    try:
        digest = write_shard(path, _sources(out, job), shard=job.k, first_index=job.samples.start,
                             count=len(job.samples), config_hash=job.config_hash, filters=STORAGE[storage],
                             classes=job.classes)
    except OSError as e:
        raise disk_error(e, path, BUILD_RESUME) from None
    return ShardWritten(job.k, path, digest)


def _sources(out: Path, job: ShardJob) -> Iterator[dict[str, Any]]:
    from rgbify.datasets.storage.clips import ClipShardReader, read_clip_file

    if job.have:
        if job.clip_fps is not None:
            with ClipShardReader(out / folder.shard_file(job.k)) as clips:
                for j in range(job.have):
                    yield clips.clip(j)
        else:
            with ShardReader(out / folder.shard_file(job.k)) as old:
                for j in range(job.have):
                    yield old.read(j)
    read = read_sample_file if job.clip_fps is None else read_clip_file
    for i in job.samples[job.have:]:
        path = folder.work_file(out, job.k, i)
        try:
            yield read(path)
        except ShardError as e:
            path.unlink(missing_ok=True)
            raise UserError(f"{e}; it was removed, run the same command again to re-render sample {i}") from None
