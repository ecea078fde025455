"""Checkpoints and the exported model of a run folder.

- ``RUN/checkpoints/step-NNNNNNN/``: accelerate's state (UNet, optimizer, LR schedule, EMA, every rank's RNG) and
  trainer_state.json; ``RUN/checkpoints/latest`` links to the newest. ``save_checkpoint`` writes a hidden temporary
  folder and renames it, then replaces ``latest`` (a symlink renamed over the old one), then deletes step folders
  beyond the newest ``keep``: a run killed at any moment leaves ``latest`` on a complete checkpoint.
- ``RUN/model/``: a diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) plus run.json, written
  to a temporary folder and renamed; ``--base-model RUN/model`` and ``rgbify predict`` load it. Instruct and
  marigold runs are saved by their stock pipeline's ``save_pretrained`` (rgbify.train.pipeline.stock_pipeline), so
  model_index.json names it and ``StableDiffusionInstructPix2PixPipeline.from_pretrained(RUN/model)`` (or the
  Marigold depth / normals pipeline's) loads the run; scheduler/ is the one rgbify samples with (DDIM, trailing).

Why not accelerate's ``ProjectConfiguration(automatic_checkpoint_naming=True, total_limit=N)`` for naming and
rotation (read in accelerate 1.15's ``Accelerator.save_state`` / ``load_state``): save_state deletes the oldest
checkpoints *before* it writes the new one, and writes the new one in place as ``checkpoint_<number of saves>``;
``load_state()`` picks the folder with the highest number. A run killed while saving so leaves a partial newest
checkpoint that a resume would load (with ``total_limit=1``, no complete checkpoint at all), the folder is named
by save count rather than by step, and any other entry in checkpoints/ (our ``latest``) breaks its number parsing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rgbify.config import read_toml
from rgbify.errors import UserError
from rgbify.train.config import TrainConfig
from rgbify.train.model import RUN_FORMAT, Components
from rgbify.train.parts import merged
from rgbify.train.pipeline import stock_pipeline


def latest_checkpoint(out: Path) -> Path | None:
    """The folder ``checkpoints/latest`` points to, or None."""
    link = out / "checkpoints" / "latest"
    return link.resolve() if link.exists() else None


class CheckpointWriteError(UserError):
    """A checkpoint or the exported model could not be written (a full disk, a file-size limit, no permission)."""


def _write_failed(e: BaseException, what: Path, tmp: Path, resume_step: int | None) -> CheckpointWriteError:
    """The one-line error of a failed checkpoint (or model) write; its temporary folder is removed. torch and
    safetensors report a failed write as RuntimeError or their own error types, not OSError: any error while
    writing counts."""
    shutil.rmtree(tmp, ignore_errors=True)
    why = e.strerror if isinstance(e, OSError) and e.strerror else " ".join(str(e).split())[:200]
    then = ("the run resumes from its last checkpoint" if resume_step is None else
            f"the run resumes from step {resume_step}")
    return CheckpointWriteError(f"cannot write {what} ({type(e).__name__}: {why}); free some space (or make it "
                                f"writable) and run the same command again: {then}")


def sweep_temporary(out: Path) -> None:
    """Remove what a run killed while writing a checkpoint or the model left (hidden temporary folders)."""
    ckdir = out / "checkpoints"
    for p in (*ckdir.glob(".tmp-step-*"), out / ".model-tmp"):
        shutil.rmtree(p, ignore_errors=True)
    (ckdir / ".latest-tmp").unlink(missing_ok=True)


def save_checkpoint(accelerator, out: Path, step: int, keep: int, config: dict | None = None) -> Path:
    """accelerate state (UNet, optimizer, LR scheduler, EMA, RNG) under checkpoints/step-NNNNNNN, published by
    rename, then ``latest`` is pointed at it (symlink replaced atomically); older ones beyond ``keep`` go.
    ``config`` (the run's TrainConfig as plain data) is stored with it, for the resume check. Collective: every
    rank calls it (each writes its RNG state), the main process publishes. A failed write raises
    CheckpointWriteError (one line) and leaves the previous checkpoint as ``latest``."""
    ckdir = out / "checkpoints"
    final = ckdir / f"step-{step:07d}"
    tmp = ckdir / f".tmp-step-{step:07d}"
    previous = latest_step(out)
    try:
        if accelerator.is_main_process:
            ckdir.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()  # every rank's random_states_R.pkl is in tmp before it is renamed
        if accelerator.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "config": config}))
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise RuntimeError and their own types on a full disk
        raise _write_failed(e, final, tmp, previous) from None
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        link_tmp = ckdir / ".latest-tmp"
        if link_tmp.is_symlink():
            link_tmp.unlink()
        os.symlink(final.name, link_tmp)
        os.replace(link_tmp, ckdir / "latest")
        steps = sorted(p for p in ckdir.glob("step-*") if p.is_dir())
        for old in steps[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def latest_step(out: Path) -> int | None:
    """The step of ``checkpoints/latest`` (None without one)."""
    ck = latest_checkpoint(out)
    if ck is None:
        return None
    try:
        return int(json.loads((ck / "trainer_state.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def saved_config(out: Path) -> dict | None:
    """The config the run in ``out`` was trained with, as plain data: the one stored with its latest checkpoint
    (RUN/config.toml for checkpoints written before it was stored there); None without a checkpoint."""
    ck = latest_checkpoint(out)
    if ck is None:
        return None
    try:
        cfg = json.loads((ck / "trainer_state.json").read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        cfg = None
    if cfg is None and (out / "config.toml").exists():
        cfg = read_toml(out / "config.toml")
    return cfg


def load_latest(accelerator, out: Path) -> int:
    """Load OUT/checkpoints/latest into the accelerator's registered objects if there is one; returns its step
    (0 without a checkpoint)."""
    ck = latest_checkpoint(out)
    if ck is None:
        return 0
    accelerator.load_state(str(ck))
    return json.loads((ck / "trainer_state.json").read_text())["step"]


def export_model(components: Components, unet, out: Path, cfg: TrainConfig, step: int) -> Path:
    """A diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) at OUT/model plus run.json, written
    to a temporary folder and renamed; loadable as ``--base-model OUT/model``, by ``rgbify predict`` and, with
    model_index.json (instruct, marigold), by the stock pipeline it names."""
    tmp = out / ".model-tmp"
    final = out / "model"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        unet = merged(unet)  # a LoRA run exports its adapters merged in
        pipe = stock_pipeline(components, cfg, unet) if components.family == "unet" else None
        if components.family != "unet":  # a transformer: its pipeline folder + conditioned/ (rgbify.train.dit)
            from rgbify.train.dit import export

            export(components, unet, tmp, cfg)
        elif pipe is not None:
            pipe.save_pretrained(tmp)
        else:  # lotus: no stock pipeline; the training scheduler (its T is all one-step sampling uses)
            unet.save_pretrained(tmp / "unet")
            components.vae.save_pretrained(tmp / "vae")
            components.text_encoder.save_pretrained(tmp / "text_encoder")
            components.tokenizer.save_pretrained(tmp / "tokenizer")
            components.noise_scheduler.save_pretrained(tmp / "scheduler")
        meta = {"step": step, "run_format": RUN_FORMAT, "config": cfg.to_dict()}
        (tmp / "run.json").write_text(json.dumps(meta, indent=1))
    except Exception as e:  # noqa: BLE001 - see save_checkpoint
        raise _write_failed(e, final, tmp, step) from None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
