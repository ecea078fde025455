"""The training loop: ``train(cfg)`` trains, or resumes, the run folder ``cfg.out``.

The modules it puts together: model.py builds the components (only the UNet trains), data.py the batch stream,
step.py the loss of a micro-batch in each mode, pipeline.py and evaluate.py sample and score at validation,
checkpoint.py saves, resumes and exports. Randomness (data order, noise, timesteps, dropout) comes from generators
seeded by (seed, step), so a resumed run reproduces the uninterrupted one exactly; under DDP optimizer step s
consumes the global micro-batches [s*A*N, (s+1)*A*N) (see rgbify.train.launch).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, is_initialized
from accelerate.utils import DistributedType
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from filelock import FileLock, Timeout

from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train.checkpoint import (
    export_model,
    latest_checkpoint,
    load_latest,
    save_checkpoint,
    saved_config,
    sweep_temporary,
)
from rgbify.train.config import RESUMABLE, TrainConfig, config_differences, config_toml
from rgbify.train.data import make_loader, open_data
from rgbify.train.evaluate import evaluate
from rgbify.train.launch import use_cpu_if_no_gpu
from rgbify.train.model import Components, PromptEncoder, build_model, make_prompts, place_frozen
from rgbify.train.parts import add_lora
from rgbify.train.step import step_generator, train_step


def train(cfg: TrainConfig, train_data=None, val_data=None) -> dict:
    """Train (or resume) the run ``cfg.out``. ``train_data``/``val_data`` default to ``cfg.data``'s splits
    (rgbify.train.data.open_data); tests pass their own datasets with the same item format.
    Returns {"step", "stopped_early", "metrics"}."""
    if not cfg.out:
        raise UserError("--out is required: the run folder to write")
    out = Path(cfg.out)
    started = time.monotonic()
    use_cpu_if_no_gpu()  # DDP over gloo when torchrun/accelerate launch started us on a machine without CUDA
    accelerator = _accelerator(cfg)
    _check_fsdp(accelerator, cfg)
    with _run_lock(out, accelerator.is_main_process):
        _check_resume(cfg, out, accelerator.is_main_process)
        return _train(cfg, out, started, accelerator, train_data, val_data)


@contextlib.contextmanager
def _run_lock(out: Path, main: bool):
    """Hold RUN/.lock (an flock: the kernel releases it when the process dies) while training: a second training
    into the same --out is refused in one line instead of both writing the run. Only the main process of a DDP
    run takes it."""
    if not main:
        yield
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the run folder ({e.strerror}); choose a writable place") from None
    lock = FileLock(out / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"--out {out}: another `rgbify train` is writing this run ({out / LOCK_NAME} is held); wait "
                        "for it to finish, or train into another --out") from None
    try:
        yield
    finally:
        lock.release()


def _check_resume(cfg: TrainConfig, out: Path, main: bool) -> None:
    """A run's settings are fixed: a resume whose config differs from the one the run's latest checkpoint was
    trained with (beyond RESUMABLE) is refused in one line. ``--no-resume`` starts the run over: the run's
    checkpoints, logs and model are removed first. Leftovers of a killed checkpoint write are swept."""
    if main:
        sweep_temporary(out)
    if cfg.resume:
        old = saved_config(out)
        diffs = config_differences(old, cfg) if old is not None else []
        if diffs:
            raise UserError(f"--out {out} holds a run trained with other settings ({'; '.join(diffs[:4])}); resume "
                            "with the run's settings (only --" + ", --".join(n.replace("_", "-") for n in RESUMABLE)
                            + " may change), start it over with --no-resume (its checkpoints are replaced), or "
                            "train into a new --out")
    elif main and latest_checkpoint(out) is not None:
        for name in ("checkpoints", "logs", "model"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("log.jsonl", "val.jsonl"):
            (out / name).unlink(missing_ok=True)


def _train(cfg: TrainConfig, out: Path, started: float, accelerator: Accelerator, train_data, val_data) -> dict:
    train_data, val_data = open_data(cfg, train_data, val_data)

    # model, optimizer, schedule, EMA
    torch.manual_seed(cfg.seed)  # initial weights of the random presets
    components = build_model(cfg)
    place_frozen(components, accelerator.device, cfg.mixed_precision)
    unet = components.unet
    if cfg.lora_rank:
        add_lora(unet, components.family, cfg.lora_rank, cfg.mixed_precision)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    optimizer = _optimizer(cfg, [p for p in unet.parameters() if p.requires_grad])
    schedule = "constant_with_warmup" if cfg.lr_schedule == "constant" and cfg.warmup_steps else cfg.lr_schedule
    lr_scheduler = get_scheduler(
        schedule, optimizer, num_warmup_steps=cfg.warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.steps * accelerator.num_processes,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    components.unet = unet
    ema = _make_ema(accelerator, unet, cfg)

    # resume, data stream, logs
    step = load_latest(accelerator, out) if cfg.resume else 0
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _trim_log(out / "log.jsonl", step)  # rows written after the checkpoint we resume from
        (out / "config.toml").write_text(config_toml(cfg))
    per_step = cfg.batch_size * cfg.grad_accum * accelerator.num_processes  # items per optimizer step, all ranks
    # The loader reads ahead (threads or worker processes: 2 batches each) into host memory while the loop trains;
    # with --num-workers 0 this thread reads every batch itself, between steps.
    batches = iter(make_loader(train_data, cfg, step * per_step,
                               shard=(accelerator.process_index, accelerator.num_processes)))
    prompts = make_prompts(components)  # a prompt is encoded once, then cached
    writer = _summary_writer(out) if accelerator.is_main_process else None

    # the loop: one optimizer step per iteration, grad_accum micro-batches each
    metrics: dict = {}
    stopped_early = False
    while step < cfg.steps:
        t0 = time.perf_counter()
        losses, item_losses, tasks = [], [], []
        for micro in range(cfg.grad_accum):
            batch = next(batches)  # uint8 (B,3,H,W) in host memory: copied to the device inside the VAE encode
            # noise keyed by the global micro-batch index: N processes x accumulation A = one process x A*N
            gen = step_generator(cfg.seed, (step * cfg.grad_accum + micro) * accelerator.num_processes
                                 + accelerator.process_index, accelerator.device)
            with accelerator.accumulate(unet):  # DDP: gradients all-reduced on the last micro-batch only
                loss, per_item = train_step(components, prompts, cfg, batch, gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
                optimizer.step()  # accelerate skips it except on the last micro-batch
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().float())  # kept on the device until the step's end
            item_losses.append(per_item.detach().float())
            tasks += batch["task"]
        # Host syncs: the step's losses (averaged over ranks on the device: an all-reduce) and per-item losses come
        # to the host in one .tolist(), which waits for the step's work. On CUDA a blocking copy from pageable host
        # memory also waits for the work queued before it: the batch's copy in the VAE encode (every micro-batch)
        # and the token ids of a prompt not yet in the PromptEncoder's cache. fp16 adds the gradient scaler's inf
        # check. EMA, gradient clipping and the LR schedule stay on the device.
        loss_t = torch.stack(losses)
        if accelerator.num_processes > 1:
            loss_t = accelerator.reduce(loss_t, reduction="mean")
        values = torch.cat([loss_t, *item_losses]).tolist()
        mean_losses, item_values = values[: len(losses)], values[len(losses) :]
        if ema is not None:
            ema.step(accelerator.unwrap_model(unet).parameters())
        step += 1
        if accelerator.is_main_process:
            per_task: dict[str, list[float]] = {}
            for task, v in zip(tasks, item_values, strict=True):
                per_task.setdefault(task, []).append(v)
            row = {"step": step, "loss": float(np.mean(mean_losses)), "lr": lr_scheduler.get_last_lr()[0],
                   "samples_per_s": per_step / (time.perf_counter() - t0),
                   "loss_per_task": {k: float(np.mean(v)) for k, v in sorted(per_task.items())}}
            _log_step(writer, out, cfg, step, row)  # one appended line; TensorBoard every --log-every steps
        time_up = cfg.exit_after > 0 and (time.monotonic() - started) / 60 >= cfg.exit_after
        # a checkpoint: the main process writes UNet, AdamW state (2x the UNet) and EMA, every rank its RNG
        # state; all ranks wait for it at barriers
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or time_up:
            save_checkpoint(accelerator, out, step, cfg.keep_checkpoints, cfg.to_dict())
        # validation samples --eval-samples items on the main process (DDIM: --inference-steps UNet calls each)
        if val_data is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
            with _full_model(accelerator, unet, ema, accelerator.device) as model:  # FSDP: all gather, main samples
                if model is not None:
                    metrics = _validate(components, cfg, val_data, model, writer, step, prompts)
        if time_up and step < cfg.steps:
            stopped_early = True
            break

    _export(accelerator, components, ema, out, cfg, step, writer)
    return {"step": step, "stopped_early": stopped_early, "metrics": metrics}


LOCK_NAME = ".lock"
"""RUN/.lock: held by the training writing the run."""


def _accelerator(cfg: TrainConfig) -> Accelerator:
    """accelerate keeps one state per process (device, process group, mixed precision) that every Accelerator
    shares, so a second run in the same process (tests, a notebook) creates another Accelerator with the same
    settings. accelerate has no public way to change the precision of that state: another precision needs a new
    process (every `rgbify train` is one)."""
    if is_initialized() and AcceleratorState().mixed_precision != cfg.mixed_precision:
        raise UserError(f"--mixed-precision {cfg.mixed_precision}: this process already trained with "
                        f"{AcceleratorState().mixed_precision!r}, and accelerate sets it once per process; train "
                        "this run in a new process")
    return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum)


def _export(accelerator: Accelerator, components: Components, ema, out: Path, cfg: TrainConfig, step: int,
            writer) -> None:
    """Export the (EMA) weights as a diffusers folder (rgbify.train.checkpoint.export_model); every rank calls it."""
    with _full_model(accelerator, components.unet, ema) as model:
        if model is not None:
            export_model(components, model, out, cfg, step)
            writer.close()
    accelerator.wait_for_everyone()


FSDP_ENV = "ACCELERATE_USE_FSDP"
"""What ``accelerate launch --use_fsdp`` (or an accelerate config with FSDP) sets for the processes it starts."""


def _fsdp(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.FSDP


def _check_fsdp(accelerator: Accelerator, cfg: TrainConfig) -> None:
    """FSDP comes from accelerate's launcher (``accelerate launch --use_fsdp``: FSDP_* environment variables that
    the Accelerator reads). accelerate 1.15 turns FSDP on only for processes a launcher started on GPUs or other
    accelerators (AcceleratorState.__init__ in accelerate/state.py sets DistributedType.FSDP only in its
    MULTI_GPU/NPU/XPU/... branch): on CPUs (DistributedType.MULTI_CPU, gloo), or in a process no launcher
    started, it silently trains without sharding, so that is refused here instead of training something other
    than what was asked. torch's FSDP2 itself runs on CPUs (tests/test_fsdp_train.py passes that gate). LoRA and
    EMA are refused under FSDP: the export rebuilds a plain model from the gathered weights (no adapters), and
    EMAModel's shadow weights would be sharded tensors that accelerate checkpoints as custom objects, untested."""
    wanted = os.environ.get(FSDP_ENV, "false").lower() in ("1", "true", "yes")
    if wanted and not _fsdp(accelerator):
        raise UserError(f"FSDP ({FSDP_ENV}={os.environ[FSDP_ENV]}, accelerate launch --use_fsdp): accelerate "
                        "enables it only for processes a launcher starts on GPUs, and this run is "
                        f"{accelerator.distributed_type} with {accelerator.num_processes} process(es) on "
                        f"{accelerator.device.type}, where it would "
                        "silently train unsharded; run accelerate launch --use_fsdp on GPUs, or drop --use_fsdp "
                        "(on CPUs: rgbify train --num-processes N runs DDP)")
    if _fsdp(accelerator) and cfg.lora_rank:
        raise UserError(f"--lora-rank {cfg.lora_rank} with FSDP: not supported (the export rebuilds a plain model "
                        "from the gathered weights); train LoRA without --use_fsdp (its optimizer state is small)")
    if _fsdp(accelerator) and cfg.ema_decay > 0:
        raise UserError(f"--ema-decay {cfg.ema_decay} with FSDP: not supported (the EMA weights would be shards "
                        "checkpointed unsharded); use --ema-decay 0 with --use_fsdp, or train without FSDP")


@contextlib.contextmanager
def _full_model(accelerator: Accelerator, unet, ema: EMAModel | None, device=None):
    """The trained network as a plain diffusers model holding the (EMA) weights, on the main process, for the
    duration; None on the other ranks. Collective under FSDP: every rank takes part in gathering the shards
    (accelerator.get_state_dict: full tensors on the main process), which the main process loads into a new,
    unsharded instance of the model's class (a forward pass of the sharded module on one rank would wait forever
    for the others); it lies in host memory, or on ``device`` (validation samples on the GPU: a second, full copy of
    the weights there for the duration). Without FSDP it is the unwrapped module itself, with the EMA weights
    swapped in."""
    base = accelerator.unwrap_model(unet)
    if not _fsdp(accelerator):
        if not accelerator.is_main_process:
            yield None
            return
        with _ema_weights(ema, base):
            yield base
        return
    state = accelerator.get_state_dict(unet)
    if not accelerator.is_main_process:
        yield None
        return
    from torch.distributed.fsdp import FSDPModule

    cls = next(c for c in type(base).__mro__ if not issubclass(c, FSDPModule))  # fully_shard subclasses it
    plain = cls.from_config(base.config)
    plain.load_state_dict(state)
    plain.train(base.training)
    yield plain.to(device=device, dtype=next(iter(state.values())).dtype)


def _optimizer(cfg: TrainConfig, params: list) -> torch.optim.Optimizer:
    """The optimizer of ``--optimizer`` over the trained parameters."""
    if cfg.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=cfg.lr, weight_decay=cfg.weight_decay, scale_parameter=False, relative_step=False,
                         warmup_init=False)
    if cfg.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise UserError("--optimizer adamw8bit needs bitsandbytes (pip install bitsandbytes; its 8-bit kernels "
                            "need a GPU); use --optimizer adamw or adafactor") from None
        return bnb.optim.AdamW8bit(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_ema(accelerator: Accelerator, unet, cfg: TrainConfig) -> EMAModel | None:
    """The UNet's EMA (diffusers' EMAModel), saved and loaded with the accelerate state; None with no decay."""
    if cfg.ema_decay <= 0:
        return None
    base = accelerator.unwrap_model(unet)
    ema = EMAModel(base.parameters(), decay=cfg.ema_decay, model_cls=type(base), model_config=base.config)
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    return ema


@contextlib.contextmanager
def _ema_weights(ema: EMAModel | None, module):
    """Swap the EMA weights into ``module`` for the duration (no-op without EMA)."""
    if ema is None:
        yield
        return
    ema.store(module.parameters())
    ema.copy_to(module.parameters())
    try:
        yield
    finally:
        ema.restore(module.parameters())


def _summary_writer(out: Path):
    from torch.utils.tensorboard import SummaryWriter  # tensorboard: only the main process of a run loads it

    return SummaryWriter(str(out / "logs"))


def _log_row(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _trim_log(path: Path, step: int) -> None:
    """Drop log rows after ``step``, and a row a kill cut short."""
    if path.exists():
        rows = [ln for ln in path.read_text(errors="replace").splitlines() if _row_step(ln) <= step]
        with publishing(path) as tmp:
            tmp.write_text("".join(r + "\n" for r in rows))


def _row_step(line: str) -> float:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def _log_step(writer, out: Path, cfg: TrainConfig, step: int, row: dict) -> None:
    _log_row(out / "log.jsonl", row)
    if step % cfg.log_every == 0 or step == 1:
        writer.add_scalar("loss/total", row["loss"], step)
        for k, v in row["loss_per_task"].items():
            writer.add_scalar(f"loss/{k}", v, step)
        writer.add_scalar("lr", row["lr"], step)
        writer.add_scalar("samples_per_s", row["samples_per_s"], step)


def _image_grid(grid: list) -> np.ndarray:
    """Rows of [image | target | prediction], uint8 (H*rows, W*3, 3)."""
    return np.concatenate([np.concatenate(row[1:], axis=1) for row in grid], axis=0)


def _validate(components: Components, cfg: TrainConfig, val_data, model, writer, step: int,
              prompts: PromptEncoder) -> dict:
    """Score ``model`` (the plain network with the (EMA) weights, from _full_model) on the first --eval-samples
    items of ``val_data``: val.jsonl, TensorBoard scalars and an image grid. Main process only."""
    grid: list = []
    wrapped, components.unet = components.unet, model  # sample with the plain module (no DDP/FSDP collectives)
    try:
        metrics = evaluate(components, cfg, val_data, max_items=cfg.eval_samples, grid=grid, prompts=prompts)
    finally:
        components.unet = wrapped
    for task, vals in metrics.items():
        for k, v in vals.items():
            if isinstance(v, float) and math.isfinite(v):
                writer.add_scalar(f"val/{task}/{k}", v, step)
    if grid:
        writer.add_image("val/image_target_prediction", _image_grid(grid), step, dataformats="HWC")
    _log_row(Path(cfg.out) / "val.jsonl", {"step": step, "metrics": metrics})
    return metrics
