"""``rgbify distill``: pseudo-labels from the teacher, then the student's training loop.

A student run folder (``OUT``):

    OUT/config.toml        the DistillConfig (``--config`` reads it back)
    OUT/student.json       what the student is (architecture, tasks, classes, resolution) and where it came from
                           (teacher run, step, pseudo-label settings hash, data, step trained)
    OUT/student.pt         the student's weights (torch state dict)
    OUT/checkpoint.pt      weights, optimizer, LR schedule and step, for resuming
    OUT/log.jsonl          one row per step: loss and each task's loss, lr
    OUT/pseudo-labels/     the pseudo-label dataset (unless --labels puts it elsewhere)
    OUT/.lock              held while a distill writes the run

Resume: rerun the same command. The pseudo-labels continue where they stopped; the student continues from
``checkpoint.pt`` (written atomically every ``checkpoint_every`` steps and at the end). Batches are a pure function
of (seed, step) (data.MixedBatches), so the resumed run sees the batches the uninterrupted run would. A resume with
other settings than ``config.RESUMABLE`` allows is refused naming them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from rgbify.config import to_toml
from rgbify.errors import UserError
from rgbify.fileio import publishing
from rgbify.train.distill import pseudo
from rgbify.train.distill.config import STUDENT_META, DistillConfig, config_differences
from rgbify.train.distill.data import MixedBatches, Source
from rgbify.train.distill.losses import student_loss
from rgbify.train.distill.students import build_student, parameter_count


def student_meta(cfg: DistillConfig, classes: tuple[str, ...], settings: dict, step: int) -> dict:
    """student.json: enough to rebuild the network (``students.build_student``) and to trace it to its teacher."""
    return {
        "format": "rgbify-student",
        "student": cfg.student,
        "tasks": list(cfg.tasks),
        "classes": list(classes),
        "width": cfg.width,
        "resolution": cfg.resolution,
        "backbone": cfg.backbone,
        "backbone_args": cfg.backbone_args,
        "step": step,
        "teacher": {
            "run": settings["teacher_run"],
            "step": settings["teacher_step"],
            "mode": settings["teacher_mode"],
            "ensemble": settings["ensemble"],
            "steps": settings["steps"],
        },
        "labels": str(cfg.labels_dir.resolve()),
        "labels_hash": pseudo.settings_hash(settings, cfg.shard_size),
        "data": cfg.data,
        "gt_ratio": cfg.gt_ratio,
        "config": cfg.to_dict(),
    }


def _classes(cfg: DistillConfig) -> tuple[str, ...]:
    if cfg.classes or "semantic" not in cfg.tasks:
        return tuple(cfg.classes)
    if cfg.data:
        from rgbify.datasets.storage.manifest import ManifestError, load_manifest

        try:
            return tuple(load_manifest(cfg.data)["classes"])
        except ManifestError as e:
            raise UserError(f"--data {cfg.data}: {e}") from None
    raise UserError(
        "--tasks includes semantic: give --classes a,b,c (the classes to ask the teacher for) or --data "
        "DATASET (its class table)"
    )


def check_inputs(cfg: DistillConfig) -> None:
    """Bad values named before any work."""
    if not cfg.teacher or not cfg.images or not cfg.out:
        raise UserError("rgbify distill needs --teacher RUN --images DIR --out RUN2")
    if cfg.gt_ratio > 0 and not cfg.data:
        raise UserError(f"--gt-ratio {cfg.gt_ratio} needs --data DATASET (the rendered ground truth to mix in)")
    if cfg.data and not (Path(cfg.data) / "dataset.json").is_file():
        raise UserError(f"--data {cfg.data}: no dataset.json; build one with `rgbify build --out {cfg.data}`")
    if cfg.student == "dpt" and not cfg.backbone_weights:
        raise UserError(
            "--student dpt needs --backbone-weights PATH (a local timm checkpoint of --backbone) or "
            "--backbone-weights random"
        )
    if cfg.backbone_args:
        try:
            args = json.loads(cfg.backbone_args)
        except json.JSONDecodeError as e:
            raise UserError(f"--backbone-args is not JSON ({e}): {cfg.backbone_args!r}") from None
        if not isinstance(args, dict):
            raise UserError(f"--backbone-args {cfg.backbone_args!r}: give a JSON object of timm.create_model keywords")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {cfg.out} is a file; give a folder for the student run")
    pseudo.teacher_meta(cfg.teacher)
    pseudo.list_images(cfg.images)
    _classes(cfg)


def make_labels(cfg: DistillConfig, classes: tuple[str, ...], device: str, log=print, stop_after=None) -> dict:
    """The pseudo-label dataset of ``cfg`` (built, resumed, or found finished without loading the teacher);
    returns its settings."""
    from rgbify.train.predict import load_run

    images = pseudo.list_images(cfg.images)
    step, tcfg = pseudo.teacher_meta(cfg.teacher)
    settings = pseudo.pseudo_settings(
        cfg.teacher,
        step,
        tcfg,
        cfg.tasks,
        classes,
        cfg.ensemble,
        cfg.teacher_steps,
        cfg.seed,
        cfg.teacher_batch,
        images,
    )
    if pseudo.labels_complete(cfg.labels_dir, settings, cfg.shard_size):
        log(f"pseudo-labels: {cfg.labels_dir} is complete ({len(images)} images)")
        return settings
    run = load_run(cfg.teacher, device)
    labeler = pseudo.TeacherLabeler(run, cfg.tasks, classes, cfg.ensemble, cfg.teacher_steps or None, cfg.seed)
    pseudo.build_pseudo_labels(
        labeler,
        settings,
        images,
        cfg.labels_dir,
        cfg.shard_size,
        progress=lambda d, n: log(f"pseudo-labels: {d}/{n} images"),
        stop_after=stop_after,
    )
    del run, labeler
    return settings


def _schedule(step: int, total: int) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def distill(
    cfg: DistillConfig,
    device: str = "cpu",
    log=print,
    stop_labels_after: int | None = None,
    stop_after_steps: int | None = None,
) -> dict:
    """Pseudo-labels, then the student: returns {"step", "loss", "student"}. ``stop_after_steps``: stop (with a
    checkpoint) after that many steps of this call, as a kill after a checkpoint would; for tests."""
    check_inputs(cfg)
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {cfg.out}: cannot create the folder ({e.strerror}); choose a writable place") from None
    lock = FileLock(out / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"--out {cfg.out}: another rgbify distill is writing this run; wait for it") from None
    try:
        return _distill(cfg, device, log, stop_labels_after, stop_after_steps)
    finally:
        lock.release()


def _distill(cfg, device, log, stop_labels_after, stop_after_steps) -> dict:
    out = Path(cfg.out)
    ck_path = out / "checkpoint.pt"
    ck = torch.load(ck_path, map_location="cpu", weights_only=False) if ck_path.exists() else None
    if ck is not None:
        diffs = config_differences(ck["config"], cfg)
        if diffs:
            raise UserError(
                f"--out {cfg.out} was distilled with other settings ({'; '.join(diffs)}); use the same "
                "settings to resume, or a new --out"
            )
    classes = _classes(cfg)
    settings = make_labels(cfg, classes, device, log, stop_labels_after)
    pseudo_src = Source(str(cfg.labels_dir), classes, cfg.tasks)
    gt_src = Source(cfg.data, classes, cfg.tasks, "train") if cfg.data and cfg.gt_ratio > 0 else None
    batches = MixedBatches(pseudo_src, gt_src, cfg.gt_ratio, cfg.resolution, cfg.batch_size, cfg.seed)

    torch.manual_seed(cfg.seed)
    meta = student_meta(cfg, classes, settings, 0)
    model = build_student({**meta, "backbone_weights": cfg.backbone_weights}).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, cfg.steps))
    step = 0
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step = int(ck["step"])
        log(f"resuming {cfg.out} from step {step}")
        _trim_log(out / "log.jsonl", step)
    with publishing(out / "config.toml") as tmp:
        tmp.write_text(to_toml(cfg))
    log(
        f"student {cfg.student}: {parameter_count(model) / 1e6:.2f} M parameters; {len(pseudo_src)} pseudo-labelled "
        f"images" + (f", {len(gt_src)} ground-truth samples at ratio {cfg.gt_ratio}" if gt_src else "")
    )
    model.train()
    loss_value, ran = float("nan"), 0
    rows = []
    while step < cfg.steps:
        b = {k: v.to(device) for k, v in batches.batch(step).items()}
        outputs = model(b["image"])
        loss, parts = student_loss(outputs, cfg.tasks, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        ran += 1
        loss_value = float(loss.detach())
        rows.append({"step": step, "loss": loss_value, "loss_per_task": parts, "lr": sched.get_last_lr()[0]})
        done = step == cfg.steps or (stop_after_steps is not None and ran >= stop_after_steps)
        if step % cfg.checkpoint_every == 0 or done:
            _save_checkpoint(ck_path, model, opt, sched, step, cfg)
            _append_log(out / "log.jsonl", rows)
            rows = []
        if done:
            break
    if step >= cfg.steps:
        meta = student_meta(cfg, classes, settings, step)
        with publishing(out / "student.pt") as tmp:
            torch.save(model.state_dict(), tmp)
        with publishing(out / STUDENT_META) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    return {"step": step, "loss": loss_value, "student": str(out / "student.pt"), "finished": step >= cfg.steps}


def _append_log(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def _save_checkpoint(path: Path, model, opt, sched, step: int, cfg: DistillConfig) -> None:
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "step": step,
        "config": cfg.to_dict(),
    }
    try:
        with publishing(path) as tmp:
            torch.save(state, tmp)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError on a full disk
        raise UserError(
            f"cannot write {path} ({type(e).__name__}: {' '.join(str(e).split())[:160]}); free some "
            "space and run the same command again"
        ) from None


def _trim_log(path: Path, step: int) -> None:
    """Drop rows past the checkpoint resumed from (a kill between the checkpoint and the log leaves none, but a
    kill while appending may)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    with publishing(path) as tmp:
        tmp.write_text("".join(x + "\n" for x in keep))
