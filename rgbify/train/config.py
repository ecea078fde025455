"""The training configuration: one typed dataclass whose field help texts become ``rgbify train --help``.

A config comes from defaults, then an optional TOML file (``--config run.toml``, keys = field names), then
command-line flags. It is saved as ``RUN/config.toml`` next to the run so a run can be repeated or resumed.
Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rgbify.encode.tasks import TASKS
from rgbify.errors import UserError

MODES = ("instruct", "lotus", "marigold")
PRESETS = ("tiny", "sd2-random")


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: str = _f("", "Dataset folder written by `rgbify build` (holds dataset.json and shards/).")
    out: str = _f("", "Run folder: checkpoints/, model/ (diffusers layout), logs/, config.toml, log.jsonl.")
    base_model: str = _f(
        "tiny",
        "'tiny' (random weights from small configs, no download), 'sd2-random' (SD-2-sized parts with random "
        "weights, for benchmarks) or PATH to a local diffusers Stable Diffusion 1.x/2.x folder "
        "(unet/, vae/, text_encoder/, tokenizer/, scheduler/).",
    )
    mode: str = _f(
        "instruct",
        "instruct: prompt chooses task, codec and colours, image latent through zero-initialised extra conv_in "
        "channels, generation items mixed in, conditioning dropout; lotus: x0 prediction at t=T in one step with "
        "the detail preserver; marigold: noise/v prediction, multi-step DDIM at inference.",
        choices=MODES,
    )
    tasks: tuple[str, ...] = _f(TASKS, "Comma-separated tasks to train on, from depth,normals,semantic,instance.")
    task_weights: tuple[float, ...] = _f((), "Comma-separated sampling weights, one per task (empty: equal).")
    generation_ratio: float = _f(
        0.05, "Fraction of items that are plain image generation (caption -> RGB) to retain generation; instruct only."
    )
    resolution: int = _f(512, "Training side length in pixels (a multiple of 8; the latent is resolution/8).")
    batch_size: int = _f(4, "Samples per device per micro-batch.")
    grad_accum: int = _f(1, "Micro-batches accumulated per optimizer step.")
    lr: float = _f(3e-5, "Peak learning rate (AdamW).")
    lr_schedule: str = _f(
        "cosine", "Decay after warm-up: constant, linear or cosine.", choices=("constant", "linear", "cosine")
    )
    warmup_steps: int = _f(100, "Linear learning-rate warm-up, in optimizer steps.")
    weight_decay: float = _f(1e-2, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0: off).")
    steps: int = _f(10000, "Optimizer steps to train for (the run's length; resuming continues to this).")
    seed: int = _f(0, "Seed for the data order, noise and dropout; the same seed gives the same run.")
    mixed_precision: str = _f("no", "no, bf16 or fp16 (accelerate autocast).", choices=("no", "bf16", "fp16"))
    gradient_checkpointing: bool = _f(False, "Recompute UNet activations in backward to save memory.")
    ema_decay: float = _f(0.0, "Exponential moving average of UNet weights (e.g. 0.999); 0 turns EMA off.")
    prediction_type: str = _f(
        "v_prediction",
        "marigold/instruct objective: epsilon or v_prediction (lotus always predicts x0).",
        choices=("epsilon", "v_prediction"),
    )
    cond_dropout: float = _f(
        0.05, "instruct: probability of dropping the prompt, the image, and both (each), for classifier-free guidance."
    )
    detail_preserver: bool = _f(True, "lotus: also train RGB reconstruction through a task switch (doubles the batch).")
    lotus_deterministic: bool = _f(False, "lotus: feed zeros instead of noise (Lotus-D); default noise (Lotus-G).")
    inference_steps: int = _f(10, "marigold/instruct: DDIM steps (trailing spacing) at validation and predict.")
    checkpoint_every: int = _f(500, "Save a resumable checkpoint every N optimizer steps (and at the end).")
    keep_checkpoints: int = _f(3, "Keep only the newest N step checkpoints (latest always kept).")
    eval_every: int = _f(0, "Validate every N steps on the val split (0: only at the end, if a val split exists).")
    eval_samples: int = _f(8, "Validation items per evaluation.")
    log_every: int = _f(10, "Write TensorBoard scalars every N steps (log.jsonl gets every step).")
    num_workers: int = _f(2, "Loader threads (--loader threads) or worker processes (processes).")
    loader: str = _f("threads", "threads: read items in threads of the training process; processes: in worker "
                                "processes (rgbify.datasets.ProcessLoader: batches through shared buffers).")
    exit_after: float = _f(0.0, "Save a checkpoint and stop after this many minutes (0: never); rerun to resume.")
    resume: bool = _f(True, "Resume from OUT/checkpoints/latest when it exists.")

    def __post_init__(self) -> None:
        if self.loader not in ("threads", "processes"):
            raise UserError(f"--loader {self.loader!r} is not 'threads' or 'processes'")
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise UserError(f"--tasks {','.join(self.tasks)!r}: use a comma-separated subset of {','.join(TASKS)}")
        if self.task_weights and len(self.task_weights) != len(self.tasks):
            raise UserError(f"--task-weights has {len(self.task_weights)} values for {len(self.tasks)} tasks")
        if self.resolution % 8 or self.resolution < 16:
            raise UserError(f"--resolution {self.resolution} must be a multiple of 8 and at least 16")
        if not 0.0 <= self.generation_ratio < 1.0:
            raise UserError(f"--generation-ratio {self.generation_ratio} must lie in [0, 1)")
        for name in ("batch_size", "grad_accum", "steps", "checkpoint_every", "inference_steps", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    if f.type.startswith("tuple"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        conv = float if "float" in f.type else str
        return tuple(conv(v) for v in value)
    if f.type == "bool" and isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return {"int": int, "float": float, "str": str, "bool": bool}[f.type](value)


def make_config(overrides: dict[str, Any], toml_path: str | Path | None = None) -> TrainConfig:
    """Defaults, then the TOML file (if any), then ``overrides`` (None values skipped)."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    if toml_path:
        try:
            loaded = tomllib.loads(Path(toml_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise UserError(f"cannot read config {toml_path}: {e}") from e
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"unknown config keys {unknown}; valid keys: {', '.join(fields)}")
    try:
        return TrainConfig(**{k: _coerce(fields[k], v) for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise UserError(f"bad config value: {e}") from e


def config_toml(cfg: TrainConfig) -> str:
    """The config as TOML text (flat; strings, numbers, booleans, lists)."""
    lines = []
    for k, v in cfg.to_dict().items():
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, str):
            s = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif isinstance(v, list):
            s = "[" + ", ".join(f'"{x}"' if isinstance(x, str) else repr(x) for x in v) + "]"
        else:
            s = repr(v)
        lines.append(f"{k} = {s}")
    return "\n".join(lines) + "\n"
