"""The distillation configuration: one frozen dataclass whose field docstrings are ``rgbify distill --help``.

Defaults, then an optional TOML file (``--config``), then flags, validated strictly by rgbify.config; saved as
``OUT/config.toml``. Importing this module does not import torch (the CLI builds its parser on every run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rgbify.config import STRICT, ConfigError, parse, read_toml, to_data

STUDENTS = ("small", "dpt")
DISTILL_TASKS = ("depth", "normals", "semantic")
STUDENT_META = "student.json"
"""A student run folder holds this file (with student.pt); ``rgbify predict`` and ``eval`` tell runs apart by it."""


@dataclass(frozen=True)
class DistillConfig:
    """Everything that determines a distillation: the teacher's pseudo-labels and the student trained on them."""

    __pydantic_config__ = STRICT

    teacher: str = ""
    """Teacher run folder written by `rgbify train` (its RUN/model is loaded)."""
    images: str = ""
    """Folder of unlabeled images (png, jpg, ...) the teacher labels."""
    out: str = ""
    """Student run folder: student.pt, student.json, config.toml, log.jsonl, checkpoint.pt."""
    labels: str = ""
    """Pseudo-label dataset folder (default OUT/pseudo-labels). Built once, resumed when killed, and reusable by other
    students: a second distill with the same teacher settings and images reads it as it is."""
    data: str = ""
    """Rendered dataset (`rgbify build`) whose ground truth is mixed in at --gt-ratio (its train split; the val split
    is left for `rgbify eval`)."""
    gt_ratio: float = 0.0
    """Fraction of training items drawn from --data's ground truth; the rest are pseudo-labels."""
    student: Literal["small", "dpt"] = "small"
    """small: a from-scratch U-Net for CPUs and tests; dpt: a DPT-style head on a timm backbone (--backbone)."""
    backbone: str = "convnext_atto"
    """dpt: the timm model name of the backbone (a ConvNeXt, a ResNet, a ViT, ...)."""
    backbone_weights: str = ""
    """dpt: a local checkpoint file of the backbone (.safetensors, .pth, .bin) loaded through timm, or 'random' for
    random initialisation. Nothing is downloaded."""
    backbone_args: str = ""
    """dpt: JSON keyword arguments for timm.create_model (e.g. '{"dims": [16, 32, 64, 128]}' for a narrower net)."""
    width: int = 32
    """Channels of the student's decoder (small: of its first encoder stage)."""
    tasks: tuple[str, ...] = DISTILL_TASKS
    """Tasks the teacher labels and the student learns (comma-separated), from depth,normals,semantic."""
    classes: tuple[str, ...] = ()
    """semantic: class names the teacher is asked for (comma-separated); default the --data dataset's class table."""
    ensemble: int = 1
    """Teacher predictions per image and task, each from its own noise seed, merged (depth median, normals mean,
    labels majority vote)."""
    teacher_steps: int = 0
    """Teacher DDIM steps (marigold/instruct; 0: the teacher run's --inference-steps)."""
    teacher_batch: int = 4
    """Images per teacher call (a label depends on its image's batch: keep it fixed when resuming)."""
    resolution: int = 64
    """Student side length in pixels (a multiple of 32); images and labels are resized to it."""
    batch_size: int = 8
    """Items per optimizer step."""
    steps: int = 1000
    """Optimizer steps (rerunning with more steps continues the run)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine decay after 5 % warm-up)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    seed: int = 0
    """Seed of the teacher's noise, the student's initial weights and the data order."""
    shard_size: int = 64
    """Pseudo-labels per HDF5 shard."""
    checkpoint_every: int = 200
    """Save a resumable checkpoint every N steps (and at the end)."""

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in DISTILL_TASKS]
        if bad or not self.tasks:
            raise ConfigError(
                f"--tasks {','.join(self.tasks)!r}: use a comma-separated subset of {','.join(DISTILL_TASKS)}"
            )
        if not 0.0 <= self.gt_ratio <= 1.0:
            raise ConfigError(f"--gt-ratio {self.gt_ratio} must lie in [0, 1]")
        if self.resolution % 32 or self.resolution < 32:
            raise ConfigError(f"--resolution {self.resolution} must be a multiple of 32 and at least 32")
        for name in ("ensemble", "teacher_batch", "batch_size", "steps", "shard_size", "checkpoint_every", "width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if self.teacher_steps < 0 or self.weight_decay < 0:
            raise ConfigError("--teacher-steps and --weight-decay must be 0 or more")
        if not 0 < self.lr <= 1:
            raise ConfigError(f"--lr {self.lr} must be a positive learning rate (at most 1; e.g. 1e-3)")

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    @property
    def labels_dir(self) -> Path:
        return Path(self.labels) if self.labels else Path(self.out) / "pseudo-labels"


RESUMABLE = ("steps", "checkpoint_every", "out", "labels", "data", "images", "teacher")
"""Fields a resumed student run may change: its length, how often it checkpoints, and where its folders lie."""


def config_differences(old: dict[str, Any], new: DistillConfig) -> list[str]:
    """``--flag old -> new`` for each field outside RESUMABLE that differs between a saved config and ``new``."""
    ref, defaults = to_data(new), to_data(DistillConfig())
    out = []
    for name, value in ref.items():
        before = old.get(name, defaults.get(name))
        if name not in RESUMABLE and before != value:
            out.append(f"--{name.replace('_', '-')} {before} -> {value}")
    return out


def make_config(overrides: dict[str, Any], toml_path: str | Path | None = None) -> DistillConfig:
    """Defaults, then the TOML file (if any), then ``overrides`` (None values skipped), validated strictly."""
    values: dict[str, Any] = dict(read_toml(toml_path)) if toml_path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return parse(DistillConfig, values, "rgbify distill", flags=True)


def is_student_run(run_dir: str | Path) -> bool:
    """True for a run folder written by ``rgbify distill`` (it holds student.json)."""
    return (Path(run_dir) / STUDENT_META).is_file()
