"""The data of a run: its TaskDatasets and the endless, resumable batch stream the loop draws from.

The stream is a pure function of (seed, items consumed): ``StepSampler`` draws epoch e's permutation from (seed, e)
and starts at the items a checkpoint consumed; ``EpochItems`` reads item i of epoch e (per-epoch draws of crop,
codec, colours and prompt); ``make_loader`` batches it with threads or worker processes, this rank taking every
N-th batch.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from rgbify.datasets import ProcessLoader, TaskDataset, ThreadLoader, collate
from rgbify.errors import UserError
from rgbify.train.config import TrainConfig


class StepSampler(torch.utils.data.Sampler):
    """Endless (epoch, item) pairs: epoch e visits the items in a permutation drawn from (seed, e). Starting at
    ``start`` (items already consumed) resumes the stream exactly where a checkpoint left it."""

    def __init__(self, n: int, seed: int, start: int = 0):
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self):
        i = self.start
        while True:
            epoch, pos = divmod(i, self.n)
            if pos == 0 or i == self.start:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            yield epoch, int(perm[pos])
            i += 1


_EPOCH_LOCK = threading.Lock()


class EpochItems(torch.utils.data.Dataset):
    """Indexes ``dataset`` by (epoch, item): sets the dataset's epoch (TaskDataset.set_epoch: per-item draws of
    crop, codec, colours and prompt depend on it) before reading, in whichever worker process reads it."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, item = key
        if hasattr(self.dataset, "get"):  # TaskDataset: thread-safe
            return self.dataset.get(item, epoch)
        if not hasattr(self.dataset, "set_epoch"):
            return self.dataset[item]
        with _EPOCH_LOCK:  # loader threads share the dataset: its epoch and the read go together
            self.dataset.set_epoch(epoch)
            return self.dataset[item]


def build_data(cfg: TrainConfig, split: str = "train", generation_ratio: float | None = None, **kw) -> TaskDataset:
    """The rgbify.datasets.TaskDataset of ``cfg.data`` for ``split`` at ``cfg.resolution`` (crop/flip augmentation
    on for the train split only, unless ``augment=`` is given in ``kw``), its targets drawn with the run's
    ``target_options`` (marigold: the grey depth codec)."""
    if generation_ratio is None:
        generation_ratio = cfg.generation_ratio if (cfg.mode == "instruct" and split == "train") else 0.0
    return TaskDataset(
        cfg.data,
        tasks=tuple(cfg.tasks),
        weights=list(cfg.task_weights) or None,
        split=split,
        resolution=cfg.resolution,
        generation_ratio=generation_ratio,
        seed=cfg.seed,
        color_jitter=cfg.color_jitter if split == "train" else 0.0,
        noise_std=cfg.noise_std if split == "train" else 0.0,
        metric_depth_crop=cfg.metric_depth_crop,
        **{"target_options": cfg.target_options(), **kw},
    )


def open_data(cfg: TrainConfig, train_data=None, val_data=None):
    """(train, val) datasets: the given ones, or ``cfg.data``'s train split and its val split (None when the
    dataset has no val items)."""
    if train_data is None:
        train_data = build_data(cfg, "train", return_gt=False)  # training reads image, target, prompt, task
    if val_data is None and cfg.data:
        try:
            val_data = build_data(cfg, "val")
        except (ValueError, UserError):
            val_data = None
        val_data = val_data if val_data is not None and len(val_data) else None
    if len(train_data) < cfg.batch_size:
        manifest = getattr(getattr(train_data, "reader", None), "manifest", None) or {}
        if manifest and not manifest.get("complete", True):
            published = sum(int(e["samples"]) for e in manifest.get("shards", []))
            raise UserError(f"--data {cfg.data} is an unfinished dataset ({published} of {manifest.get('count')} "
                            f"samples published, {len(train_data)} in the train split): finish it with the same "
                            "`rgbify build` command (or wait for the running one)")
        raise UserError(f"--batch-size {cfg.batch_size} exceeds the {len(train_data)} training items; lower it")
    return train_data, val_data


def make_loader(dataset, cfg: TrainConfig, start_item: int, shard: tuple[int, int] = (0, 1)):
    """The endless batch stream from item ``start_item`` on, this rank's batches of ``shard`` (every world-th, as
    accelerate shards a DataLoader): a ThreadLoader (``cfg.loader == "threads"``, or no workers) or a ProcessLoader
    with ``cfg.num_workers`` worker processes. Either reads ahead (prefetch) 2 batches per thread or worker, into
    host memory, while the loop trains; with no workers the loop's own thread reads each batch when it needs it."""
    keys = StepSampler(len(dataset), cfg.seed, start_item)
    if cfg.loader == "threads" or cfg.num_workers == 0:
        return ThreadLoader(EpochItems(dataset), cfg.batch_size, keys=keys, threads=cfg.num_workers, collate=collate,
                            drop_last=True, shard=shard)
    return ProcessLoader(EpochItems(dataset), cfg.batch_size, keys=keys, workers=cfg.num_workers, collate=collate,
                         drop_last=True, shard=shard)
