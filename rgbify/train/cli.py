"""``rgbify train``, ``rgbify predict`` and ``rgbify eval``. Thin: parse, build a TrainConfig, call the library.

Importing this module does not import torch (the parser is built for every ``rgbify`` command).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from rgbify.config import add_arguments, values_from
from rgbify.errors import UserError
from rgbify.fileio import check_writable_parent, publishing
from rgbify.train.benchmarks.catalog import BENCHMARKS, NORMALS_FRAMES
from rgbify.train.config import TASKS, TrainConfig, VaeConfig, make_config, make_vae_config


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``--config TOML`` and one flag per TrainConfig field (``--field-name``), its help the field's docstring."""
    p.add_argument("--config", metavar="TOML", help="TOML file of config fields (flags given here override it).")
    add_arguments(p, TrainConfig)


@contextlib.contextmanager
def _reading_data(data: str):
    """A dataset that cannot be read (a damaged shard or dataset.json met while training or scoring) becomes one
    line naming it and the fix."""
    from rgbify.datasets import DATASET_ERRORS

    try:
        yield
    except DATASET_ERRORS as e:
        raise UserError(f"--data {data}: {e}; check it with `rgbify verify {data}` and repair it by running the "
                        "`rgbify build` command that made it again") from None


def _check_dataset(data: str) -> None:
    if not (Path(data) / "dataset.json").exists():
        raise UserError(f"--data {data}: no dataset.json; build one with `rgbify build --out {data}`")


def cmd_train(args: argparse.Namespace) -> int:
    from rgbify.train.trainer import train

    cfg = make_config(values_from(args, TrainConfig), args.config)
    if not cfg.data:
        raise UserError("--data is required: a dataset folder written by `rgbify build`")
    _check_dataset(cfg.data)
    from rgbify.train.launch import maybe_relaunch

    code = maybe_relaunch(args)  # --num-processes N: N DDP processes run this command
    if code is not None:
        return code
    if not cfg.resume and (Path(cfg.out) / "checkpoints" / "latest").exists():
        print(f"rgbify: --no-resume: starting {cfg.out} over (its checkpoints, logs and model are replaced)",
              file=sys.stderr)
    with _reading_data(cfg.data):
        result = train(cfg)
    if os.environ.get("RANK", "0") != "0":  # one report per DDP run
        return 0
    state = "stopped (--exit-after); rerun the same command to resume" if result["stopped_early"] else "done"
    print(f"step {result['step']}/{cfg.steps} {state}; model at {Path(cfg.out) / 'model'}")
    if result["metrics"]:
        print(json.dumps(result["metrics"], indent=1))
    return 0


def _check_common(args: argparse.Namespace) -> None:
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps {args.steps} must be at least 1 (DDIM steps; omit it for the run's "
                        "--inference-steps)")


def cmd_predict(args: argparse.Namespace) -> int:
    from rgbify.train.predict import load_run, predict_files

    _check_common(args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file; give a folder for the predictions")
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise UserError(f"no such image file: {missing[0]}")
    from rgbify.train.distill.cli import is_student_run, predict_student

    if is_student_run(args.run):  # a run of `rgbify distill`
        return predict_student(args)
    decode = None
    if args.decode:
        try:
            decode = json.loads(args.decode)
        except json.JSONDecodeError as e:
            raise UserError(f"--decode is not JSON ({e}): {args.decode!r}") from e
    run = load_run(args.run, args.device)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    records = predict_files(run, args.task, args.images, args.out, classes=classes, steps=args.steps, seed=args.seed,
                            prompt=args.prompt, decode=decode, ensemble=args.ensemble,
                            ensemble_invariance=args.ensemble_invariance, processing_res=args.processing_res)
    print(f"wrote {len(records)} predictions to {args.out} (prompt: {records[0]['prompt']!r})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.benchmark:
        return _eval_benchmark(args)
    if args.predictions and args.data:
        return _eval_clip_predictions(args)
    from rgbify.train.predict import eval_dataset, eval_depth_folder, load_run, markdown_table, write_report

    _check_common(args)
    if args.root or args.predictions:
        raise UserError("--root and --predictions go with --benchmark NAME")
    if not args.run:
        raise UserError("--run RUN is required (the run to score)")
    if bool(args.images) != bool(args.depth_gt):
        raise UserError("--images and --depth-gt go together (your images and their depth ground truth)")
    if not args.data and not args.images:
        raise UserError("give --data DIR (an rgbify dataset), --images DIR --depth-gt DIR, or --benchmark NAME --root "
                        "PATH")
    if args.max_items is not None and args.max_items < 1:
        raise UserError(f"--max-items {args.max_items} must be at least 1 (omit it to score every item)")
    for flag, folder in (("--images", args.images), ("--depth-gt", args.depth_gt)):
        if folder and not Path(folder).is_dir():
            raise UserError(f"{flag} {folder}: no such folder")
    if args.data:
        _check_dataset(args.data)
    from rgbify.train.distill.config import is_student_run

    student = is_student_run(args.run)  # a run of `rgbify distill`: the same reports, no prompt
    if student:
        from rgbify.train.distill import predict as S
        from rgbify.train.predict import check_device

        run = S.load_student(args.run, check_device(args.device))
        what = f"student run {args.run} (step {run.step}, {run.meta['student']})"
    else:
        run = load_run(args.run, args.device)
        what = f"run {args.run} (step {run.step}, mode {run.cfg.mode})"
    if args.images:
        if student:
            metrics = S.eval_student_depth_folder(run, args.images, args.depth_gt, args.max_items, args.depth_scale)
        else:
            metrics = eval_depth_folder(run, args.images, args.depth_gt, args.max_items, args.seed, args.steps,
                                        depth_scale=args.depth_scale)
        name, source = "eval-depth-folder", f"images {args.images}, depth {args.depth_gt}"
    else:
        with _reading_data(args.data):
            if student:
                metrics = S.eval_student_dataset(run, args.data, args.split, args.max_items)
            else:
                metrics = eval_dataset(run, args.data, args.split, args.max_items, seed=args.seed, steps=args.steps)
        name, source = f"eval-{args.split}", f"dataset {args.data}, split {args.split}"
    out = Path(args.out) if args.out else Path(args.run) / "eval" / f"{name}.json"
    js, md = write_report(metrics, out, f"# rgbify eval: {what} on {source}\n\n")
    print(markdown_table(metrics))
    print(f"wrote {js} and {md}")
    return 0


def _eval_clip_predictions(args: argparse.Namespace) -> int:
    """``rgbify eval --data CLIPS --predictions DIR --out FILE.json``: saved video predictions (flow, per-frame
    depth) scored against a clip dataset (rgbify.train.video_eval)."""
    from rgbify.train.report import markdown_table, write_report
    from rgbify.train.video_eval import eval_clip_predictions

    if args.run or args.images or args.root:
        raise UserError("--data CLIPS --predictions DIR scores saved predictions: leave out --run, --images, --root")
    if not args.out:
        raise UserError("--predictions needs --out FILE.json (where the report goes)")
    if args.max_items is not None and args.max_items < 1:
        raise UserError(f"--max-items {args.max_items} must be at least 1 (omit it to score every clip)")
    alignment = {None: "none", "none": "none", "depth": "affine"}.get(args.alignment)
    if alignment is None:
        raise UserError(f"--alignment {args.alignment}: video depth takes none or depth (one scale and shift per "
                        "clip)")
    check_writable_parent(Path(args.out))
    metrics = eval_clip_predictions(args.data, args.predictions, args.split, alignment, args.max_items)
    js, md = write_report(metrics, Path(args.out), f"# rgbify eval: predictions {args.predictions} on clips "
                          f"{args.data}, split {args.split}\n\n")
    print(markdown_table(metrics))
    print(f"wrote {js} and {md}")
    return 0


def cmd_train_vae(args: argparse.Namespace) -> int:
    from rgbify.train.vae import train_vae

    cfg = make_vae_config(values_from(args, VaeConfig))
    record = train_vae(cfg)
    print(f"wrote {Path(cfg.out) / 'vae'} (scaling_factor {record['scaling_factor']}, "
          f"{record['cpu_seconds'] / 60:.1f} CPU minutes); copy it to rgbify/data/tiny_vae to ship it")
    if "reconstruction" in record:
        print(f"reconstruction of the val split: {Path(cfg.out) / 'report.md'}")
    return 0


def _eval_benchmark(args: argparse.Namespace) -> int:
    from rgbify.train.benchmarks.evaluate import EvalOptions, evaluate_benchmark, rows_csv
    from rgbify.train.report import markdown_table

    _check_common(args)
    if args.data or args.images or args.depth_gt:
        raise UserError("--benchmark reads --root PATH; --data, --images and --depth-gt are for the other evaluations")
    if not args.root:
        raise UserError(f"--benchmark {args.benchmark} needs --root PATH (its folder or tar; docs/evaluation.md)")
    if bool(args.run) == bool(args.predictions):
        raise UserError("give --run RUN (predict now) or --predictions DIR (score saved predictions), not both")
    if args.predictions and not args.out:
        raise UserError("--predictions needs --out FILE.json (where the report goes)")
    options = EvalOptions(alignment=args.alignment, prediction_kind=args.prediction_kind, crop=args.crop,
                          depth_scale=args.depth_scale, normals_frame=args.normals_frame,
                          prediction_frame=args.prediction_frame, split_file=args.split_file,
                          max_items=args.max_items, class_map=args.class_map, ensemble=args.ensemble,
                          ensemble_invariance=args.ensemble_invariance, processing_res=args.processing_res,
                          seed=args.seed, steps=args.steps)
    out = Path(args.out) if args.out else Path(args.run) / "eval" / f"bench-{args.benchmark}.json"
    check_writable_parent(out)  # before any work
    run = None
    if args.run:  # torch: only to predict
        from rgbify.train.distill.config import is_student_run

        if is_student_run(args.run):
            from rgbify.train.distill.predict import load_student
            from rgbify.train.predict import check_device

            run = load_student(args.run, check_device(args.device))
        else:
            from rgbify.train.predict import load_run

            run = load_run(args.run, args.device)

    def progress(n: int, total: int) -> None:  # a run predicting is slow; scoring saved predictions is not
        if n % 50 == 0 or n == total:
            print(f"{args.benchmark}: {n}/{total}", file=sys.stderr, flush=True)

    report, rows = evaluate_benchmark(args.benchmark, args.root, run=run, predictions=args.predictions,
                                      options=options, progress=progress if run else None)
    if run is None:
        what = f"predictions {args.predictions}"
    elif hasattr(run, "meta"):
        what = f"student run {args.run} (step {run.step}, {run.meta['student']})"
    else:
        what = f"run {args.run} (step {run.step}, mode {run.cfg.mode})"
    header = f"# rgbify eval: {what} on {report['benchmark']['title']} ({args.root})\n\n"
    texts = {out: json.dumps(report, indent=1), out.with_suffix(".md"): header + markdown_table(report)}
    if rows:  # per image: depth and normals
        texts[out.with_suffix(".per_image.csv")] = rows_csv(rows)
    with contextlib.ExitStack() as stack:  # all three written before any is renamed into place
        for path, text in texts.items():
            stack.enter_context(publishing(path)).write_text(text)
    print(markdown_table(report))
    print("wrote " + ", ".join(map(str, texts)))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a diffusion generator on a dataset (modes instruct, lotus, marigold)",
        description="Fine-tune a diffusion UNet on (image, prompt, RGB target) items of an rgbify dataset. "
        "Every field below can also come from --config FILE.toml. Rerunning with the same --out resumes from "
        "OUT/checkpoints/latest.",
    )
    _add_config_arguments(p)
    from rgbify.train.launch import add_arguments as add_launch_arguments

    add_launch_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "train-vae",
        help="train the tiny preset's autoencoder (a small AutoencoderKL) on rendered images and encoded targets",
        description="Train a small diffusers AutoencoderKL from scratch on the train splits of datasets: their "
        "images and targets (depth under every codec, normals, semantic and instance colours). Writes OUT/vae "
        "(with provenance.json: what rgbify/data/tiny_vae ships), OUT/log.jsonl and OUT/report.{json,md} "
        "(reconstruction quality per target kind on the first dataset's val split).",
    )
    add_arguments(p, VaeConfig)
    p.set_defaults(func=cmd_train_vae)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--steps", type=int, default=None, help="DDIM steps (marigold/instruct; default: the run's).")
    common.add_argument("--seed", type=int, default=0, help="Seed of the starting noise and of prompt colours.")
    common.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu).")

    p = sub.add_parser("predict", parents=[common], help="predict, decode and colourise a task for images",
                       description="Write NAME.TASK.rgb.png (raw prediction), NAME.TASK.npy (depth metres, unit "
                       "OpenCV-frame normals, int32 labels) and NAME.TASK.color.png per image.")
    p.add_argument("--run", required=True, help="Run folder written by `rgbify train` (uses RUN/model) or by "
                   "`rgbify distill` (a student).")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, help="Output folder.")
    p.add_argument("--classes", default=None, help="semantic: comma-separated class names; instance: one class.")
    p.add_argument("--prompt", default=None, help="Use this prompt instead of a generated one (needs --decode).")
    p.add_argument("--decode", default=None, help="JSON decode parameters that go with --prompt.")
    _add_inference_arguments(p)
    p.add_argument("--ensemble-invariance", default="none", choices=("none", "affine", "scale"),
                   help="depth ensembles: none = pixelwise median in metres; affine/scale = Marigold's aligned "
                   "ensemble, relative depth in [0, 1].")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("eval", parents=[common], help="score a run on a dataset split, your depth data or a benchmark",
                       description="Writes a JSON file and a Markdown table (default RUN/eval/NAME.json and .md); "
                       "--benchmark also writes NAME.per_image.csv. Standard benchmarks: docs/evaluation.md.")
    p.add_argument("--run", default=None, help="Run folder written by `rgbify train` (uses RUN/model) or by "
                   "`rgbify distill` (a student).")
    p.add_argument("--data", default=None, help="rgbify dataset folder.")
    p.add_argument("--split", default="val", choices=("train", "val", "all"))
    p.add_argument("--images", default=None, help="Folder of your images (NAME.png/.jpg).")
    p.add_argument("--depth-gt", default=None, help="Folder of NAME.npy (metres) or NAME.png (16-bit; needs "
                   "--depth-scale).")
    p.add_argument("--depth-scale", type=float, default=None, help="The 16-bit PNG depth value of one metre (1000: "
                   "millimetres; 256: KITTI). Benchmarks know their own; this overrides it.")
    p.add_argument("--max-items", type=int, default=None, help="Score at most this many items.")
    p.add_argument("--out", default=None, help="JSON path (the Markdown table goes next to it).")
    g = p.add_argument_group("standard benchmarks (docs/evaluation.md)")
    g.add_argument("--benchmark", default=None, choices=tuple(BENCHMARKS), metavar="NAME",
                   help=f"One of {', '.join(BENCHMARKS)}.")
    g.add_argument("--root", default=None, help="The benchmark's folder or tar file, in the layout Marigold's "
                   "evaluation (depth, normals) or the dataset's release (cityscapes, nyuv2-seg40) uses.")
    g.add_argument("--predictions", default=None, help="Score saved predictions instead of a run: DIR/<image path "
                   "with .npy for its suffix> or Marigold's DIR/<folder>/pred_<id>.npy, at the ground truth's "
                   "resolution (depth metres, relative depth or disparity, OpenCV-frame normals, integer labels).")
    g.add_argument("--alignment", default=None, choices=("none", "depth", "disparity"),
                   help="Least-squares scale and shift fitted in depth or disparity (default: depth for depth "
                   "benchmarks, as Marigold's tables; none otherwise).")
    g.add_argument("--prediction-kind", default="depth", choices=("depth", "disparity"),
                   help="What --predictions files hold.")
    g.add_argument("--crop", default=None, help="Valid-mask crop: nyuv2 eigen|none, kitti eigen|garg|none "
                   "(default: the first).")
    g.add_argument("--split-file", default=None, help="A split list in Marigold's format (image path, ground truth "
                   "path[, mask] per line) instead of every image found under --root.")
    g.add_argument("--class-map", default=None, metavar="published|JSON",
                   help="Semantic benchmarks: 'published' (rgbify's classes through the published maps to NYU40 and "
                   "Cityscapes) or a JSON file {our class: benchmark class id or name}; with --run the keys are the "
                   "class names the prompt asks for, with --predictions the integer labels of the files.")
    g.add_argument("--normals-frame", default=None, choices=tuple(NORMALS_FRAMES),
                   help="Frame of the ground-truth normal files (default: the benchmark's, rub for Marigold's set).")
    g.add_argument("--prediction-frame", default="opencv", choices=tuple(NORMALS_FRAMES),
                   help="Frame of the normals in --predictions files (rgbify's: opencv; Marigold's own predictions: "
                   "rub; (3, H, W) arrays are read too).")
    _add_inference_arguments(g)
    g.add_argument("--ensemble-invariance", default=None, choices=("none", "affine", "scale"),
                   help="Depth ensembles (default: affine when aligned, as Marigold; none otherwise).")
    p.set_defaults(func=cmd_eval)


def _add_inference_arguments(p) -> None:
    p.add_argument("--ensemble", type=int, default=1, help="Draws to ensemble (depth, normals), as Marigold's "
                   "test-time ensembling; chunks of 4 draws, chunk c from seed + c.")
    p.add_argument("--processing-res", type=int, default=None, help="Long side the image is resized to, aspect "
                   "ratio kept (0: its own size; default: the run's resolution).")
