"""Pseudo-labels: a teacher run labels a folder of images, stored as an rgbify dataset built resumably.

The folder is laid out as ``rgbify build`` lays out a dataset (docs/datasets.md): ``dataset.json``, ``shards/`` of
HDF5 shards in the same format (``rgbify.datasets.storage.shards``), ``.work/`` per-sample files while a shard is
unfinished, ``.lock`` while writing. Sample ``i`` is image ``i`` of the sorted image folder:

- ``rgb``: the image resized (bicubic) to the teacher's square resolution;
- ``depth`` (metres, +inf where the teacher gave no value), ``normals`` (unit, OpenCV camera frame), ``semantic``
  (index i + 1 names ``classes[i]``, 0 = none of them): the teacher's decoded answers, merged over the ensemble;
  a task the teacher was not asked for is +inf / 0 / 0;
- ``instance`` 0, ``edge`` False, ``K`` and ``world_from_camera`` identity (unknown for a photo); ``spec`` a JSON
  record ``{"pseudo_label": {"image": NAME, "width": W, "height": H}}``; ``timings`` the teacher's seconds.

``dataset.json`` carries ``pseudo_labels``: the teacher's run folder, step, mode, resolution and config, the tasks,
classes, ensemble size, DDIM steps, seed and batch, the image folder and names. Its ``config_hash`` covers all of
them but the teacher's folder, so the same command resumes and any other setting is refused.

Resume: a finished batch of the teacher is written at once to the work files of its samples (atomic renames); a
shard is written (atomically) when all its samples exist, then listed in ``dataset.json``, then its work files go.
A kill loses at most the batch being labelled; rerunning labels only what is missing. The teacher's noise is drawn
per batch of ``teacher_batch`` images (batches are fixed groups of indices within a shard), so a resumed build
gives the same labels as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from rgbify import encode
from rgbify.datasets.storage import folder
from rgbify.datasets.storage import shards as sh
from rgbify.datasets.storage.manifest import (
    ManifestError,
    fields_table,
    load_manifest,
    save_manifest,
)
from rgbify.errors import UserError
from rgbify.train.pipeline import sample
from rgbify.train.predict import IMAGE_SUFFIXES, Run, task_prompt


def list_images(images_dir: str | Path) -> list[Path]:
    """The image files of a folder, sorted by name (sample i is the i-th); UserError if there is none."""
    d = Path(images_dir)
    if not d.is_dir():
        raise UserError(f"--images {images_dir}: no such folder; give a folder of png/jpg images")
    paths = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserError(f"--images {images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}); add some")
    return paths


def read_image(path: Path, resolution: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (res, res, 3), bicubic, and the original (H, W); UserError naming an unreadable file."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image {path} ({type(e).__name__}: {e}); remove it or convert it") from None
    return np.asarray(img.resize((resolution, resolution), Image.BICUBIC)), (img.height, img.width)


class TeacherLabeler:
    """A teacher run's decoded answers for batches of images: per task, ``ensemble`` samples (noise seeds
    ``seed + m``) of the task's prompt, decoded and merged."""

    def __init__(
        self,
        run: Run,
        tasks: tuple[str, ...],
        classes: tuple[str, ...],
        ensemble: int = 1,
        steps: int | None = None,
        seed: int = 0,
    ):
        if "semantic" in tasks and not classes:
            raise UserError(
                "--tasks includes semantic but no classes are known: give --classes a,b,c or --data "
                "DATASET (its class table)"
            )
        self.run, self.tasks, self.classes = run, tuple(tasks), tuple(classes)
        self.ensemble, self.steps, self.seed = ensemble, steps or None, seed
        self.prompts = {t: task_prompt(t, list(classes) if t == "semantic" else None, seed) for t in self.tasks}

    @property
    def resolution(self) -> int:
        return self.run.cfg.resolution

    def __call__(self, images: np.ndarray, seed: int | None = None) -> dict[str, np.ndarray]:
        """images uint8 (B, R, R, 3) at the teacher's resolution -> {task: (B, R, R[, 3])} decoded and merged;
        ``seed`` (default the labeler's) is the first ensemble member's noise seed."""
        seed = self.seed if seed is None else seed
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        out = {}
        for task in self.tasks:
            prompt, decode = self.prompts[task]
            members = []
            for m in range(self.ensemble):
                rgb = sample(
                    self.run.components,
                    self.run.cfg,
                    x,
                    [prompt] * len(x),
                    prompts=self.run.prompts,
                    steps=self.steps,
                    seed=seed + m,
                ).numpy()
                members.append(np.stack([np.asarray(encode.decode_target(r, decode)) for r in rgb]))
            out[task] = merge_ensemble(task, np.stack(members))
        return out


def merge_ensemble(task: str, members: np.ndarray) -> np.ndarray:
    """(M, B, H, W[, 3]) decoded answers -> (B, H, W[, 3]): depth the median of the finite positive values (+inf
    where none), normals the renormalised mean, labels the most frequent (ties: the smallest label)."""
    if len(members) == 1:
        return members[0]
    if task == "depth":
        d = np.where(np.isfinite(members) & (members > 0), members, np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(d, axis=0)
        return np.where(np.isfinite(med), med, np.inf).astype(np.float32)
    if task == "normals":
        s = members.sum(axis=0)
        n = np.linalg.norm(s, axis=-1, keepdims=True)
        return np.where(n > 1e-6, s / np.maximum(n, 1e-6), 0.0).astype(np.float32)
    k = int(members.max()) + 1
    votes = np.stack([(members == c).sum(axis=0) for c in range(k)])
    return votes.argmax(axis=0).astype(np.int32)


def pseudo_settings(
    teacher_dir: str,
    teacher_step: int,
    teacher_config: dict[str, Any],
    tasks,
    classes,
    ensemble: int,
    steps: int,
    seed: int,
    batch: int,
    images: list[Path],
) -> dict[str, Any]:
    """What determines the pseudo-labels (dataset.json's ``pseudo_labels``); ``steps`` 0 means the teacher's own."""
    return {
        "teacher_run": str(Path(teacher_dir).resolve()),
        "teacher_step": int(teacher_step),
        "teacher_mode": teacher_config.get("mode"),
        "teacher_resolution": teacher_config.get("resolution"),
        "teacher_config": teacher_config,
        "tasks": list(tasks),
        "classes": list(classes),
        "ensemble": ensemble,
        "steps": steps or teacher_config.get("inference_steps"),
        "seed": seed,
        "teacher_batch": batch,
        "images": str(images[0].parent.resolve()),
        "image_names": [p.name for p in images],
    }


def teacher_meta(teacher_dir: str | Path) -> tuple[int, dict[str, Any]]:
    """(step, config as plain data) of a teacher run, from RUN/model/run.json (no model is loaded)."""
    path = Path(teacher_dir) / "model" / "run.json"
    try:
        meta = json.loads(path.read_text())
        return int(meta.get("step", 0)), dict(meta["config"])
    except FileNotFoundError:
        raise UserError(
            f"--teacher {teacher_dir}: no model/run.json; train it with `rgbify train --out {teacher_dir}` first"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--teacher {teacher_dir}: model/run.json is unreadable ({type(e).__name__}: {e})") from None


def labels_complete(out: str | Path, settings: dict[str, Any], shard_size: int) -> bool:
    """True if ``out`` holds finished pseudo-labels made with ``settings`` (the teacher need not be loaded)."""
    try:
        m = load_manifest(out)
    except ManifestError:
        return False
    return bool(m.get("complete")) and m["config_hash"] == settings_hash(settings, shard_size)


def settings_hash(settings: dict[str, Any], shard_size: int) -> str:
    """sha256 of the settings that make the labels (not where the teacher's folder lies)."""
    key = {k: v for k, v in settings.items() if k not in ("teacher_run", "images")}
    key["shard_size"] = shard_size
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _sample(
    index: int,
    image: np.ndarray,
    size: tuple[int, int],
    name: str,
    labels: dict[str, np.ndarray],
    j: int,
    seconds: float,
) -> dict[str, Any]:
    r = image.shape[0]
    depth = labels["depth"][j] if "depth" in labels else np.full((r, r), np.inf, np.float32)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.inf).astype(np.float32)
    return {
        "index": index,
        "seed": 0,
        "rgb": image,
        "depth": depth,
        "normals": labels["normals"][j] if "normals" in labels else np.zeros((r, r, 3), np.float32),
        "semantic": labels["semantic"][j] if "semantic" in labels else np.zeros((r, r), np.int32),
        "instance": np.zeros((r, r), np.int32),
        "edge": np.zeros((r, r), bool),
        "K": np.eye(3),
        "world_from_camera": np.eye(4),
        "spec": json.dumps({"pseudo_label": {"image": name, "width": size[1], "height": size[0]}}),
        "instances": "[]",
        "timings": json.dumps({"teacher": round(seconds, 4)}),
    }


def build_pseudo_labels(
    labeler: TeacherLabeler,
    settings: dict[str, Any],
    images: list[Path],
    out: str | Path,
    shard_size: int = 64,
    progress=None,
    stop_after: int | None = None,
) -> dict:
    """Label ``images`` (``list_images`` of the folder) into the pseudo-label dataset ``out`` (created, or resumed)
    with ``settings`` (``pseudo_settings``); returns its manifest. ``progress(done, total)`` is called after each
    batch. ``stop_after``: raise KeyboardInterrupt after that many batches (what a kill does; for tests)."""
    out = Path(out)
    batch = int(settings["teacher_batch"])
    chash = settings_hash(settings, shard_size)
    folder.prepare(out)
    (out / folder.SHARDS_DIR).mkdir(exist_ok=True)
    with folder.locked(out):
        folder.remove_unpublished(out)
        manifest = _open_manifest(out, settings, chash, shard_size, len(images), labeler.resolution)
        listed = {e["first_index"] for e in manifest["shards"]}
        n, res = len(images), labeler.resolution
        batches = 0
        done = sum(int(e["samples"]) for e in manifest["shards"])
        for k in range(sh.num_shards(n, shard_size)):
            rng = sh.shard_range(k, shard_size, n)
            if rng.start in listed and (out / folder.shard_file(k)).is_file():
                shutil.rmtree(folder.work_dir(out, k), ignore_errors=True)
                continue
            have = folder.finished(out, k, set(rng))
            done += len(have)
            for start in range(rng.start, rng.stop, batch):
                group = list(range(start, min(start + batch, rng.stop)))
                if all(i in have for i in group):
                    continue
                if stop_after is not None and batches >= stop_after:
                    raise KeyboardInterrupt
                loaded = [read_image(images[i], res) for i in group]
                t0 = time.perf_counter()
                labels = labeler(np.stack([a for a, _ in loaded]), seed=labeler.seed + 1000 * (start // batch))
                dt = (time.perf_counter() - t0) / len(group)
                folder.work_dir(out, k).mkdir(parents=True, exist_ok=True)
                for j, i in enumerate(group):
                    s = _sample(i, loaded[j][0], loaded[j][1], images[i].name, labels, j, dt)
                    sh.write_sample_file(folder.work_file(out, k, i), s)
                batches += 1
                done += len([i for i in group if i not in have])
                if progress:
                    progress(done, n)
            _publish_shard(out, k, rng, chash, manifest)
        manifest["complete"] = True
        save_manifest(out, manifest)
        shutil.rmtree(out / folder.WORK_DIR, ignore_errors=True)  # empty by now
    return manifest


def _publish_shard(out: Path, k: int, rng: range, chash: str, manifest: dict) -> None:
    samples = (sh.read_sample_file(folder.work_file(out, k, i)) for i in rng)
    digest = sh.write_shard(
        out / folder.shard_file(k), samples, shard=k, first_index=rng.start, count=len(rng), config_hash=chash
    )
    manifest["shards"] = [e for e in manifest["shards"] if e["first_index"] != rng.start]
    manifest["shards"].append(
        {"file": folder.shard_file(k), "samples": len(rng), "first_index": rng.start, "sha256": digest}
    )
    save_manifest(out, manifest)
    shutil.rmtree(folder.work_dir(out, k), ignore_errors=True)


def _open_manifest(out: Path, settings: dict, chash: str, shard_size: int, count: int, res: int) -> dict:
    """The existing pseudo-label manifest of ``out`` (refused if other settings made it), or a new one."""
    if (out / "dataset.json").exists():
        try:
            m = load_manifest(out)
        except ManifestError as e:
            raise UserError(f"--labels {out}: {e}; remove the folder to label the images anew") from None
        theirs = m.get("pseudo_labels")
        if not isinstance(theirs, dict):
            raise UserError(f"--labels {out} is a rendered dataset, not pseudo-labels; give another --labels folder")
        if m["config_hash"] != chash:
            diff = sorted(k for k in settings if k not in ("teacher_run", "images") and theirs.get(k) != settings[k])
            raise UserError(
                f"--labels {out} holds pseudo-labels made with other settings ({', '.join(diff)} "
                "differ); give a new --labels folder or the settings it was made with"
            )
        m["pseudo_labels"] = settings
        return m
    m = {
        "format": "rgbify-dataset",
        "schema_version": 1,
        "kind": "pseudo-labels",
        "pseudo_labels": settings,
        "config_hash": chash,
        "config": {"pseudo_labels": True},
        "classes": list(settings["classes"]),
        "shards": [],
        "count": count,
        "width": res,
        "height": res,
        "seed": int(settings["seed"]),
        "shard_size": shard_size,
        "complete": False,
        "fields": fields_table(res, res),
    }
    save_manifest(out, m)
    return m
