"""The training configuration: one typed frozen dataclass whose field docstrings are ``rgbify train --help``.

A config comes from defaults, then an optional TOML file (``--config run.toml``, keys = field names), then
command-line flags, validated strictly by rgbify.config. It is saved as ``RUN/config.toml`` next to the run so a run
can be repeated or resumed. Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rgbify.config import STRICT, ConfigError, parse, read_toml, to_data, to_toml
from rgbify.encode.tasks import TASKS

MODES = ("instruct", "lotus", "marigold")
TRANSFORMER_PRESETS = ("tiny-dit", "sd3-random", "tiny-flux", "flux-random", "tiny-pixart", "tiny-sana")
"""Presets of the transformer family (rgbify.train.dit): flow matching, SD3Transformer2DModel."""
PRESETS = ("tiny", "tiny-random", "sd2-random", *TRANSFORMER_PRESETS)
MARIGOLD_TASKS = ("depth", "normals")
MARIGOLD_DEPTH_CODEC = "depth/colormap:gray"
"""The depth codec of marigold mode: f(d) = 1 - (1 + d/10 m)^-2 as grey, the same value in R, G and B, which is the
form of Marigold's depth targets (one value repeated in three channels): diffusers' MarigoldDepthPipeline, which
averages the three channels, returns f(d) in [0, 1] (docs/training.md)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    __pydantic_config__ = STRICT

    data: str = ""
    """Dataset folder written by `rgbify build` (holds dataset.json and shards/)."""
    out: str = ""
    """Run folder: checkpoints/, model/ (diffusers layout), logs/, config.toml, log.jsonl."""
    base_model: str = "tiny"
    """'tiny' (a small UNet and text encoder with random weights, and a small VAE trained on rgbify renders and targets
    that ships with rgbify; no download), 'tiny-random' (the same with a random VAE), 'sd2-random' (SD-2-sized parts
    with random weights, for benchmarks), transformers (docs/training.md, "Transformers"): 'tiny-dit', 'tiny-flux',
    'tiny-pixart', 'tiny-sana' (tiny random SD3 / FLUX / PixArt-Sigma / SANA transformers; no download),
    'sd3-random', 'flux-random' (SD3-medium's and FLUX.1-dev's shapes, random weights); or PATH to a local
    diffusers folder: Stable Diffusion 1.x/2.x (unet/, vae/, text_encoder/, tokenizer/, scheduler/), Stable
    Diffusion 3 (T5 not used), FLUX.1, PixArt-Sigma or SANA."""
    mode: Literal["instruct", "lotus", "marigold"] = "instruct"
    """instruct: prompt chooses task, codec and colours, image latent through zero-initialised extra conv_in channels,
    generation items mixed in, conditioning dropout (runs load in diffusers' StableDiffusionInstructPix2PixPipeline);
    lotus: x0 prediction at t=T in one step with the detail preserver; marigold: one task (depth or normals) on the
    empty prompt, noise/v prediction, multi-step DDIM at inference (runs load in diffusers' Marigold pipelines)."""
    tasks: tuple[str, ...] = TASKS
    """Tasks to train on (comma-separated on the command line), from depth,normals,semantic,instance."""
    task_weights: tuple[float, ...] = ()
    """Sampling weight of each task, one per task (comma-separated; empty: equal)."""
    generation_ratio: float = 0.05
    """Fraction of items that are plain image generation (caption -> RGB) to retain generation; instruct only."""
    color_jitter: float = 0.0
    """Photometric augmentation of training input images: brightness, contrast and saturation in [1-s, 1+s] (0: off)."""
    noise_std: float = 0.0
    """Gaussian noise on training input images, standard deviation drawn in [0, this] 8-bit levels (0: off)."""
    metric_depth_crop: Literal["off", "rescale", "zoom"] = "rescale"
    """The random crop (70-100 % of each side, resized to --resolution) of depth items whose codec is metric:
    rescale (cropped, depth labels times the kept side fraction: the crop's zoom becomes a nearer scene, Metric3D's
    canonical camera; measured best, docs/learning.md), off (such items are not cropped, only flipped) or zoom
    (cropped, labels unchanged: the zoom makes the room look larger than its labels say; rgbify before 2026-12-02).
    Relative depth and other tasks are always cropped."""
    resolution: int = 512
    """Training side length in pixels (a multiple of 8; the latent is resolution/8, resolution/4 with 'tiny')."""
    batch_size: int = 4
    """Samples per device per micro-batch."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step."""
    lr: float = 3e-5
    """Peak learning rate (AdamW)."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "cosine"
    """Decay after warm-up: constant, linear or cosine."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up, in optimizer steps."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0: off)."""
    steps: int = 10000
    """Optimizer steps to train for (the run's length; resuming continues to this)."""
    seed: int = 0
    """Seed for the data order, noise and dropout; the same seed gives the same run."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """no, bf16 or fp16 (accelerate autocast)."""
    gradient_checkpointing: bool = False
    """Recompute the UNet's (transformer's: per block) activations in backward to save memory."""
    optimizer: Literal["adamw", "adafactor", "adamw8bit"] = "adamw"
    """adamw (torch), adafactor (transformers' Adafactor at --lr, factored second moment, no momentum: about 4 bytes
    per parameter less than AdamW's 8) or adamw8bit (bitsandbytes' AdamW8bit, 2 bytes of moments per parameter;
    needs bitsandbytes and, for its kernels, a GPU)."""
    lora_rank: int = 0
    """Train LoRA adapters of this rank (peft; alpha = rank) on the attention projections instead of every weight;
    the layers the mode adds or widens (conv_in / patch embedding, the lotus switch) train in full. The exported
    model has the adapters merged in (a plain diffusers model). 0: full fine-tuning."""
    ema_decay: float = 0.0
    """Exponential moving average of UNet weights (e.g. 0.999); 0 turns EMA off."""
    prompt_format: Literal["drawn", "rgb", "hex", "json", "names", "compact"] = "drawn"
    """Class colour format of semantic and instance prompts: drawn per item from rgb, hex, json and names, or one of
    them; compact ("wall red, floor lime", at most 14 classes per item) keeps every prompt within CLIP's 77 tokens,
    which stock pipelines cut prompts at (docs/training.md, "Stock pipelines")."""
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    """marigold/instruct objective of UNets: epsilon or v_prediction (lotus always predicts x0; transformers predict
    the flow velocity noise - x0)."""
    sd3_t5: bool = False
    """Stable Diffusion 3: also encode prompts with T5 (text_encoder_3/, tokenizer_3/; 4.8 B frozen parameters for
    SD3-medium), as the stock pipeline does when it has one. Off: T5 is dropped, its 256 tokens zeros (the stock
    pipeline with text_encoder_3=None)."""
    timestep_sampling: Literal["logit_normal", "mode", "uniform"] = "logit_normal"
    """Transformers (flow matching): how the training timestep is drawn (diffusers' SD3 scripts'
    compute_density_for_timestep_sampling), as an index into the scheduler's shifted schedule."""
    logit_mean: float = 0.0
    """Transformers: mean of the logit-normal timestep draw."""
    logit_std: float = 1.0
    """Transformers: standard deviation of the logit-normal timestep draw."""
    mode_scale: float = 1.29
    """Transformers: scale of the 'mode' timestep draw."""
    loss_weighting: Literal["none", "sigma_sqrt", "cosmap"] = "none"
    """Transformers: per-sample loss weight of sigma (diffusers' compute_loss_weighting_for_sd3; none: 1)."""
    multi_res_noise: float = 0.0
    """marigold/instruct: Marigold's multi-resolution (pyramid) training noise, its strength (Marigold: 0.9); 0 draws
    plain Gaussian noise."""
    multi_res_noise_annealed: bool = True
    """marigold/instruct: scale the multi-resolution noise's strength by t/T per item (Marigold's annealing)."""
    cond_dropout: float = 0.05
    """instruct: probability of dropping the prompt, the image, and both (each), for classifier-free guidance."""
    detail_preserver: bool = True
    """lotus: also train RGB reconstruction through a task switch (doubles the batch)."""
    lotus_deterministic: bool = False
    """lotus: feed zeros instead of noise (Lotus-D); default noise (Lotus-G)."""
    inference_steps: int = 10
    """marigold/instruct: DDIM steps (trailing spacing) at validation and predict."""
    checkpoint_every: int = 500
    """Save a resumable checkpoint every N optimizer steps (and at the end)."""
    keep_checkpoints: int = 3
    """Keep only the newest N step checkpoints (latest always kept)."""
    eval_every: int = 0
    """Validate every N steps on the val split (0: only at the end, if a val split exists)."""
    eval_samples: int = 8
    """Validation items per evaluation."""
    log_every: int = 10
    """Write TensorBoard scalars every N steps (log.jsonl gets every step)."""
    num_workers: int = 2
    """Loader threads (--loader threads) or worker processes (processes)."""
    loader: Literal["threads", "processes"] = "threads"
    """threads: read items in threads of the training process; processes: in worker processes
    (rgbify.datasets.ProcessLoader: batches through shared buffers)."""
    exit_after: float = 0.0
    """Save a checkpoint and stop after this many minutes (0: never); rerun to resume."""
    resume: bool = True
    """Resume from OUT/checkpoints/latest when it exists."""

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ConfigError(f"--tasks {','.join(self.tasks)!r}: use a comma-separated subset of {','.join(TASKS)}")
        if self.task_weights and len(self.task_weights) != len(self.tasks):
            raise ConfigError(f"--task-weights has {len(self.task_weights)} values for {len(self.tasks)} tasks")
        if self.resolution % 8 or self.resolution < 16:
            raise ConfigError(f"--resolution {self.resolution} must be a multiple of 8 and at least 16")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ConfigError(f"--color-jitter {self.color_jitter} must lie in [0, 1)")
        if not 0.0 <= self.noise_std <= 64.0:
            raise ConfigError(f"--noise-std {self.noise_std} must lie in [0, 64] (8-bit levels)")
        self._check_mode_options()
        if not 0.0 <= self.generation_ratio < 1.0:
            raise ConfigError(f"--generation-ratio {self.generation_ratio} must lie in [0, 1)")
        for name in ("batch_size", "grad_accum", "steps", "checkpoint_every", "inference_steps", "keep_checkpoints",
                     "eval_samples", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        for name in ("warmup_steps", "eval_every", "num_workers", "weight_decay", "max_grad_norm", "exit_after",
                     "lora_rank"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be 0 or more")
        if not 0 < self.lr <= 1:
            raise ConfigError(f"--lr {self.lr} must be a positive learning rate (at most 1; e.g. 3e-5)")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"--ema-decay {self.ema_decay} must lie in [0, 1) (0: no EMA; e.g. 0.999)")
        if not 0 <= self.cond_dropout <= 1 / 3:
            raise ConfigError(f"--cond-dropout {self.cond_dropout} must lie in [0, 1/3] (the prompt, the image and "
                              "both are each dropped with this probability)")
        if self.task_weights and (min(self.task_weights) < 0 or sum(self.task_weights) <= 0):
            raise ConfigError(f"--task-weights {','.join(map(str, self.task_weights))} must be non-negative and not "
                              "all 0")

    def _check_mode_options(self) -> None:
        """The options that only some modes take (marigold: one task; multi-resolution noise)."""
        if self.mode == "marigold" and (len(self.tasks) != 1 or self.tasks[0] not in MARIGOLD_TASKS):
            raise ConfigError(
                f"--tasks {','.join(self.tasks)}: --mode marigold trains one task, depth or normals, on "
                "the empty prompt as Marigold does; use --mode instruct or lotus for several tasks"
            )
        if not 0.0 <= self.multi_res_noise <= 1.0:
            raise ConfigError(f"--multi-res-noise {self.multi_res_noise} must lie in [0, 1] (Marigold: 0.9)")
        if self.multi_res_noise and self.mode == "lotus":
            raise ConfigError("--multi-res-noise is for --mode marigold and instruct (lotus starts from t = T)")

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    def target_options(self) -> dict[str, Any]:
        """make_task_target options of this run's targets (rgbify.encode): marigold mode's fixed depth codec, the
        prompt format if one is set."""
        options: dict[str, Any] = {"depth_codecs": (MARIGOLD_DEPTH_CODEC,)} if self.mode == "marigold" else {}
        if self.prompt_format != "drawn":
            options["prompt_format"] = self.prompt_format
        return options


RESUMABLE = ("steps", "exit_after", "resume", "data", "out", "num_workers", "loader", "eval_every", "eval_samples",
             "log_every", "checkpoint_every", "keep_checkpoints", "inference_steps")
"""Fields a resumed run may change: its length (``steps``: the LR schedule is stretched to the new length from
the step resumed), how it stops, reads, logs, validates and checkpoints, and where its dataset lies (a moved
dataset; its content must be the same for an exact resume). Every other field fixes what the run is: a resume
with another value is refused (docs/training.md)."""


def config_differences(old: dict[str, Any], new: TrainConfig) -> list[str]:
    """The fields outside RESUMABLE whose value in the run's saved config ``old`` (plain data) differs from
    ``new``'s, as ``--flag old -> new``."""
    ref = to_data(new)
    diffs = []
    for name in ref:
        if name in RESUMABLE:
            continue
        before = old.get(name, to_data(TrainConfig()).get(name))
        if before != ref[name]:
            shown = (",".join(map(str, v)) if isinstance(v, list) else v for v in (before, ref[name]))
            diffs.append("--{} {} -> {}".format(name.replace("_", "-"), *shown))
    return diffs


def make_config(overrides: dict[str, Any], toml_path: str | Path | None = None) -> TrainConfig:
    """Defaults, then the TOML file (if any), then ``overrides`` (None values skipped), validated strictly."""
    values: dict[str, Any] = dict(read_toml(toml_path)) if toml_path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return parse(TrainConfig, values, "rgbify train", flags=True)


def config_toml(cfg: TrainConfig) -> str:
    """The config as TOML text (what ``--config`` reads back)."""
    return to_toml(cfg)


@dataclass(frozen=True)
class VaeConfig:
    """Everything that determines an autoencoder run of ``rgbify train-vae`` (the tiny preset's VAE)."""

    __pydantic_config__ = STRICT

    data: tuple[str, ...] = ()
    """Dataset folders written by `rgbify build` (comma-separated); their train splits are used, the val split of
    the first one is where the reconstruction report is measured."""
    out: str = ""
    """Run folder: vae/ (the diffusers AutoencoderKL with provenance.json: what rgbify/data/tiny_vae ships),
    log.jsonl, report.json and report.md (reconstruction quality per target kind)."""
    channels: tuple[int, ...] = (16, 32, 64)
    """Width of each encoder/decoder level (comma-separated); n levels halve the side n - 1 times."""
    resolution: int = 64
    """Side length in pixels that items are cropped and resized to (as the trainer's --resolution does)."""
    patch: int = 32
    """Side of the random patch of each item the autoencoder trains on (0: the whole item). A fully convolutional
    autoencoder learns from patches at a quarter of the cost, at the scale it will see."""
    batch_size: int = 16
    """Items per step; each gives its image and its target, so a step sees twice as many pictures."""
    steps: int = 4000
    """Optimizer steps."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, linear warm-up over 2 % of the steps, cosine decay)."""
    kl_weight: float = 1e-4
    """Weight of the KL term (per latent element) against the mean absolute pixel error (pixels in [-1, 1])."""
    depth_weight: float = 2.0
    """Sampling weight of depth targets against 1 for each of normals, semantic and instance targets; every depth
    codec is drawn equally often."""
    seed: int = 0
    """Seed of the initial weights, the data order and augmentation, and the latent samples."""
    threads: int = 0
    """torch intra-op threads (0: torch's default). Runs repeat bit for bit with the same threads on the same
    machine type."""
    report_items: int = 64
    """Validation samples per target kind in the reconstruction report (0: skip the report)."""

    def __post_init__(self) -> None:
        if self.resolution % (1 << max(len(self.channels) - 1, 0)) or self.resolution < 8:
            raise ConfigError(f"--resolution {self.resolution} must be at least 8 and a multiple of "
                              f"{1 << max(len(self.channels) - 1, 0)} (2 ** (levels - 1))")
        if not 2 <= len(self.channels) <= 5 or min(self.channels) < 8 or any(c % 8 for c in self.channels):
            raise ConfigError(f"--channels {','.join(map(str, self.channels))}: give 2 to 5 widths, each a multiple "
                              "of 8 (e.g. 16,32,64)")
        for name in ("batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        step = 1 << (len(self.channels) - 1)
        if self.patch and (self.patch > self.resolution or self.patch % step or self.patch < step):
            raise ConfigError(f"--patch {self.patch} must be 0 or a multiple of {step} up to --resolution "
                              f"{self.resolution}")
        if self.lr <= 0 or self.kl_weight < 0 or self.depth_weight < 0 or self.threads < 0 or self.report_items < 0:
            raise ConfigError("--lr must be positive and --kl-weight, --depth-weight, --threads, --report-items "
                              "non-negative")

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)


def make_vae_config(overrides: dict[str, Any]) -> VaeConfig:
    """Defaults, then ``overrides`` (None values skipped), validated strictly."""
    return parse(VaeConfig, {k: v for k, v in overrides.items() if v is not None}, "rgbify train-vae", flags=True)
