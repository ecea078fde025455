"""``BuildConfig``: what ``rgbify build`` makes, every field a flag. Imports only rgbify.config and the standard
library: the CLI builds ``rgbify build --help`` from it on every run."""

from __future__ import annotations

import argparse
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from rgbify.config import STRICT, Flag
from rgbify.errors import UserError

Storage = Literal["compact", "fast"]
"""The --storage choices (the filters of each: rgbify.datasets.storage.shards.STORAGE)."""
Device = Literal["cpu", "gpu"]


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '320x240' -> (320, 240) (width x height)."""
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
    storage: Storage = "compact"
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
    device: Device = "cpu"
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
    clip_frames: int = 0
    """Build a dataset of clips of this many frames (2 or more; each sample is a clip: its frames' renders, the
    exact flow, scene flow and masks between them; docs/video.md); 0: stills."""
    clip: Annotated[Path | None, Flag(metavar="TOML")] = None
    """With --clip-frames: a TOML file of clip settings (fps, trajectory, speeds, moving objects, shutter: the
    fields of rgbify.scenes.clip.ClipConfig); --clip-frames sets the frames."""


def check(cfg: BuildConfig) -> None:
    """Raise UserError naming the first value of ``cfg`` that cannot be built (configs made in Python skip the
    validation that flags and files get)."""
    for name in ("count", "workers", "shard_size", "cpus_per_task", "workers_per_gpu"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} {v} must be a positive integer")
    for name in ("task_retries", "retries"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 0:
            raise UserError(f"--{name.replace('_', '-')} {v} must be 0 or more")
    if not isinstance(cfg.max_scenes_per_worker, int) or cfg.max_scenes_per_worker < 1:
        raise UserError(f"--max-scenes-per-worker {cfg.max_scenes_per_worker} must be a positive integer")
    if not (isinstance(cfg.timeout, int | float) and math.isfinite(cfg.timeout) and cfg.timeout > 0):
        raise UserError(f"--timeout {cfg.timeout} must be a positive number of seconds (default 600)")
    for name, kind in (("storage", Storage), ("device", Device)):
        if getattr(cfg, name) not in typing.get_args(kind):
            raise UserError(f"--{name} {getattr(cfg, name)!r} is not one of {', '.join(typing.get_args(kind))}")
    if cfg.samples is not None and cfg.samples < 1:
        raise UserError(f"--samples {cfg.samples} must be a positive integer")
    if cfg.resolution is not None and (len(cfg.resolution) != 2 or min(cfg.resolution) < 1):
        raise UserError(f"--resolution {cfg.resolution} must be a positive size such as 256 or 320x240")
    if cfg.assets is not None and not Path(cfg.assets).is_dir():
        raise UserError(f"--assets {cfg.assets}: not a folder")
    _check_clip(cfg)
    if cfg.ray is not None and not str(cfg.ray).strip():
        raise UserError("--ray '': give a cluster address (e.g. auto or 10.0.0.1:6379), or --ray alone for a "
                        "local Ray instance")


def _check_clip(cfg: BuildConfig) -> None:
    if not isinstance(cfg.clip_frames, int) or cfg.clip_frames < 0 or cfg.clip_frames == 1:
        raise UserError(f"--clip-frames {cfg.clip_frames} must be 2 or more (a clip), or 0 for stills")
    if cfg.clip_frames and cfg.storage != "compact":
        raise UserError(f"--storage {cfg.storage}: clip shards have one storage (compact) so far; leave --storage out")
    if cfg.clip is not None and not cfg.clip_frames:
        raise UserError(f"--clip {cfg.clip}: clip settings need --clip-frames T (2 or more)")
    if cfg.clip is not None and not Path(cfg.clip).is_file():
        raise UserError(f"--clip {cfg.clip}: no such file (a TOML file of clip settings, docs/video.md)")
