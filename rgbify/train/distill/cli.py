"""``rgbify distill`` and ``rgbify export-student``; ``predict_student`` serves ``rgbify predict`` when ``--run``
is a student run (``rgbify eval`` reads student runs itself). Importing this module does not import torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rgbify.config import add_arguments, values_from
from rgbify.errors import UserError
from rgbify.train.distill.config import DistillConfig, is_student_run, make_config


def _log(msg: str) -> None:
    print(f"rgbify distill: {msg}", file=sys.stderr, flush=True)


def cmd_distill(args: argparse.Namespace) -> int:
    from rgbify.train.distill.trainer import distill
    from rgbify.train.predict import check_device

    cfg = make_config(values_from(args, DistillConfig), args.config)
    result = distill(cfg, check_device(args.device), log=_log)
    print(f"step {result['step']}/{cfg.steps} done; student at {Path(cfg.out)} (loss {result['loss']:.4g})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rgbify.train.distill.export import check_onnx, export_onnx
    from rgbify.train.distill.predict import load_student

    if not is_student_run(args.run):
        raise UserError(f"--run {args.run}: not a student run (no student.json); make one with `rgbify distill`")
    if not args.out.endswith(".onnx"):
        raise UserError(f"--out {args.out}: give a file name ending in .onnx")
    run = load_student(args.run)
    path = export_onnx(run, args.out)
    diffs = check_onnx(run, path)
    print(
        f"wrote {path}; onnxruntime vs torch, largest difference: "
        + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    )
    return 0


def predict_student(args: argparse.Namespace) -> int:
    """``rgbify predict --run STUDENT``: the flags of a generator run's prompt (--prompt, --decode, --steps) do not
    apply; --classes are the student's own."""
    from rgbify.train.distill.predict import load_student, predict_student_files
    from rgbify.train.predict import check_device

    if args.prompt or args.decode:
        raise UserError("--prompt/--decode apply to generator runs; a student run answers without a prompt")
    run = load_student(args.run, check_device(args.device))
    if args.classes and [c.strip() for c in args.classes.split(",") if c.strip()] != list(run.classes):
        raise UserError(
            f"--classes {args.classes}: this student answers its own classes ({','.join(run.classes)}); omit --classes"
        )
    records = predict_student_files(run, args.task, args.images, args.out)
    print(f"wrote {len(records)} predictions to {args.out} (student run, step {run.step})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="train a fast student on a teacher run's pseudo-labels (and rendered ground truth)",
        description="The teacher labels --images into a pseudo-label dataset (resumable; OUT/pseudo-labels or "
        "--labels), then a student network trains on it, mixed with --data's ground truth at --gt-ratio. Rerun the "
        "same command to resume. docs/distillation.md.",
    )
    p.add_argument("--config", metavar="TOML", help="TOML file of config fields (flags given here override it).")
    add_arguments(p, DistillConfig)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu).")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser(
        "export-student",
        help="export a student run to ONNX and check it with onnxruntime",
        description="Write the student as ONNX (input image (B,3,R,R) in [-1,1]; outputs per task) "
        "and print the largest difference between onnxruntime's and torch's answers.",
    )
    p.add_argument("--run", required=True, help="Student run folder written by `rgbify distill`.")
    p.add_argument("--out", required=True, help="ONNX file to write (NAME.onnx).")
    p.set_defaults(func=cmd_export)
