"""``rgbify eval --benchmark NAME --root PATH``: score a run, or a folder of predictions, on a standard benchmark.

``evaluate_benchmark`` checks every option and input first (nothing is predicted before the whole evaluation is
known to be possible), then for each item: reads the sample, gets the prediction (``--predictions DIR``: the file
DIR/<image path with its suffix replaced by .npy>; ``--run``: rgbify.train.infer.predict_measurement), and scores it
with protocol.py. It returns the report (a dict of metric groups, with a "benchmark" group that says what was
run) and the per-image rows. Importing this module does not import torch; a run is predicted lazily.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbify.errors import UserError
from rgbify.train.benchmarks import protocol as P
from rgbify.train.benchmarks.archive import Archive
from rgbify.train.benchmarks.catalog import NORMALS_FRAMES, Benchmark, get_benchmark
from rgbify.train.benchmarks.classmaps import PUBLISHED, published_class_map, vocabulary_index
from rgbify.train.benchmarks.readers import Item, Sample, find_items, load_sample, split_fingerprint

ENSEMBLE_INVARIANCES = ("affine", "scale", "none")


@dataclass(frozen=True)
class EvalOptions:
    """How to score (docs/evaluation.md). None picks the benchmark's standard choice."""

    alignment: str | None = None  # depth benchmarks: "depth" (Marigold's least squares); others: "none"
    prediction_kind: str = "depth"  # what --predictions files hold: metric depth or (affine) disparity
    crop: str | None = None
    depth_scale: float | None = None
    normals_frame: str | None = None
    prediction_frame: str = "opencv"  # the frame of normals in --predictions files (Marigold's own: "rub")
    split_file: str | None = None
    max_items: int | None = None
    class_map: str | dict | None = None
    ensemble: int = 1
    ensemble_invariance: str | None = None  # "affine" when aligned, "none" (median in metres) otherwise
    processing_res: int | None = None  # long side; 0: native; None: the run's resolution
    seed: int = 0
    steps: int | None = None


def load_class_map(value: str | dict, bench: Benchmark, keys: str) -> tuple[dict, int | None]:
    """({our class: the benchmark's class id}, the id label 0 counts as or None) from a dict, a JSON file, or
    "published" (rgbify's vocabulary through its published tables, classmaps.py). Values may be ids or the
    benchmark's class names; ``keys`` is "names" (class names a run is asked for) or "ids" (integer labels of
    prediction files; published: rgbify's semantic labels, 1 + the position in the built-in class table)."""
    if value == PUBLISHED:
        mapping, background = published_class_map(bench)
        if keys == "ids":
            mapping = {vocabulary_index(name): i for name, i in mapping.items()}
            if background is not None:
                mapping[0] = background
        return mapping, background
    if isinstance(value, dict):
        raw, where = value, "--class-map"
    else:
        path = Path(value)
        if not path.is_file():
            raise UserError(f"--class-map {value}: no such file; give a JSON object {{our class: {bench.name} class}}")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"--class-map {value} is not JSON ({e})") from e
        where = f"--class-map {value}"
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{where}: give a non-empty JSON object {{our class: {bench.name} class id or name}}")
    names = {n: i for n, i in zip(bench.class_names, bench.class_ids, strict=True)}
    out: dict = {}
    for k, v in raw.items():
        if isinstance(v, str) and v in names:
            v = names[v]
        if isinstance(v, bool) or not isinstance(v, int) or v not in bench.class_ids:
            raise UserError(
                f"{where}: {k!r} -> {v!r} is not a {bench.name} class (ids {bench.class_ids[0]}.."
                f"{bench.class_ids[-1]} or names such as {bench.class_names[0]!r})"
            )
        if keys == "ids":
            try:
                k = int(k)
            except ValueError:
                raise UserError(
                    f"{where}: key {k!r} is not an integer label; prediction files hold integer "
                    "labels, so the map's keys are those labels"
                ) from None
        out[k] = v
    return out, None


def _map_name(value: str | dict | None) -> str | None:
    """How a report names the class map used."""
    return "given as a dict" if isinstance(value, dict) else value


def prediction_paths(root: Path, bench: Benchmark, rgb: str) -> list[Path]:
    """Where a predictions folder may hold the prediction of image ``rgb``: rgbify's name (the image's relative path,
    .npy for its suffix), then the name Marigold's infer.py gives it (``pred_<id>.npy`` beside it), so that Marigold's
    own prediction folders are scored as they are."""
    rel = Path(rgb)
    paths = [root / rel.with_suffix(".npy")]
    if bench.marigold_pred_name == "rgb_id":  # rgb_0001.png -> pred_0001.npy
        paths.append(root / rel.parent / f"pred_{Path(rel.name.split('_', 1)[-1]).stem}.npy")
    elif bench.marigold_pred_name == "id":  # 0000000069.png -> pred_0000000069.npy
        paths.append(root / rel.parent / f"pred_{rel.stem}.npy")
    return paths


def _folder_predictor(pred_dir: str, bench: Benchmark, items: list[Item], opts: EvalOptions) -> Callable:
    root = Path(pred_dir)
    if not root.is_dir():
        raise UserError(f"--predictions {pred_dir}: no such folder")
    if opts.ensemble != 1 or opts.processing_res is not None or opts.ensemble_invariance is not None:
        raise UserError(
            "--ensemble, --ensemble-invariance and --processing-res are for --run; a predictions folder "
            "holds final answers"
        )
    paths, missing = {}, []
    for i in items:
        found = [p for p in prediction_paths(root, bench, i.rgb) if p.is_file()]
        if found:
            paths[i.rgb] = found[0]
        else:
            missing.append(prediction_paths(root, bench, i.rgb)[0])
    if missing:
        raise UserError(
            f"--predictions {pred_dir}: {len(missing)} of {len(items)} prediction files are missing, "
            f"e.g. {missing[0]} (one NAME.npy per image, at the image's relative path)"
        )
    lut = None
    if bench.task == "semantic" and opts.class_map is not None:
        lut = load_class_map(opts.class_map, bench, "ids")[0]

    signs = np.asarray(NORMALS_FRAMES[opts.prediction_frame])  # a frame's signs are their own inverse

    def predict(item: Item, sample: Sample) -> np.ndarray:
        pred = np.load(paths[item.rgb], allow_pickle=False)
        want = sample.gt.shape
        if bench.task == "normals" and pred.shape == (3, *want[:2]):  # channels first, as Marigold saves them
            pred = np.moveaxis(pred, 0, -1)
        if pred.shape != want:
            where = ", after the KB crop" if bench.kb_crop else ""
            raise UserError(
                f"--predictions: {paths[item.rgb]} has shape {pred.shape}; its ground truth is "
                f"{want} (predict at the ground truth's resolution{where})"
            )
        if bench.task == "normals":
            pred = pred * signs  # to the OpenCV frame
        if lut is not None:  # a label the map does not name is -1: a miss
            labels, inverse = np.unique(np.asarray(pred, np.int64), return_inverse=True)
            pred = np.array([lut.get(int(v), -1) for v in labels], np.int64)[inverse].reshape(pred.shape)
        return pred

    return predict


def _run_prompt(run, bench: Benchmark, opts: EvalOptions) -> tuple[str, dict, np.ndarray | None]:
    """(prompt, decode parameters, decoded label -> benchmark id table or None) of a run on ``bench`` (the run's
    target options: a marigold run's depth codec). The label table maps each asked class to the benchmark's id;
    0 (no asked class) to the map's background or -1, a miss."""
    from rgbify.train.predict import run_prompt

    if bench.task != "semantic":
        return *run_prompt(run, bench.task, None, opts.seed), None
    if opts.class_map is None:
        raise UserError(
            f"--benchmark {bench.name} with --run needs --class-map {PUBLISHED} (rgbify's classes "
            f"through the published map) or --class-map JSON {{our class name: {bench.name} class}} "
            "(the classes the prompt asks for)"
        )
    cmap, background = load_class_map(opts.class_map, bench, "names")
    prompt, decode = run_prompt(run, bench.task, list(cmap), opts.seed)
    index = {int(c["index"]): c["name"] for c in decode["classes"]}
    lut = np.full(max(index) + 1, -1, np.int64)
    for i, name in index.items():
        lut[i] = cmap[name]
    if background is not None:
        lut[0] = background
    return prompt, decode, lut


def _student_predictor(run, bench: Benchmark, opts: EvalOptions) -> tuple[Callable, str, dict]:
    """(predict, prediction kind, what was run) for a student run (rgbify.train.distill.predict.StudentRun): one
    forward pass at the student's square resolution, answers resized back to the benchmark's image."""
    from rgbify.train.distill.data import resize_image
    from rgbify.train.distill.predict import student_answers
    from rgbify.train.infer import resize_back

    if bench.task not in run.tasks:
        raise UserError(f"--benchmark {bench.name} scores {bench.task}, but the student answers {', '.join(run.tasks)}")
    if opts.ensemble != 1 or opts.ensemble_invariance or opts.steps:
        raise UserError("--ensemble, --ensemble-invariance and --steps are for generator runs; a student answers in "
                        "one pass: omit them")
    if opts.prediction_kind != "depth":
        raise UserError("--prediction-kind is for --predictions files; a student predicts metric depth")
    if opts.processing_res not in (None, run.resolution):
        raise UserError(f"--processing-res {opts.processing_res}: a student predicts at its own resolution "
                        f"({run.resolution}); omit it")
    lut = None
    if bench.task == "semantic":  # the student's labels (0 none, i + 1 = classes[i]) -> the benchmark's ids
        if opts.class_map is None:
            raise UserError(f"--benchmark {bench.name} with a student run needs --class-map {PUBLISHED} or --class-map "
                            f"JSON {{our class name: {bench.name} class}}")
        cmap, background = load_class_map(opts.class_map, bench, "names")
        lut = np.full(len(run.classes) + 1, -1, np.int64)
        for i, name in enumerate(run.classes):
            lut[i + 1] = cmap.get(name, -1)
        if background is not None:
            lut[0] = background

    def predict(item: Item, sample: Sample) -> np.ndarray:
        answer = student_answers(run, resize_image(sample.rgb, run.resolution)[None])[bench.task][0]
        value = resize_back(answer, sample.gt.shape[:2], bench.task)
        return value if lut is None else lut[value]

    info = {"student": run.meta["student"], "processing_res": run.resolution}
    if bench.task == "semantic":
        info["class_map"] = _map_name(opts.class_map)
    return predict, "depth", info


def _run_predictor(run, bench: Benchmark, opts: EvalOptions, alignment: str) -> tuple[Callable, str, dict]:
    """(predict, prediction kind, what was run) for a loaded run (rgbify.train.predict.Run)."""
    from rgbify.train.infer import predict_measurement

    if bench.task not in run.cfg.tasks:
        raise UserError(
            f"--benchmark {bench.name} scores {bench.task}, but the run was trained on {', '.join(run.cfg.tasks)}"
        )
    if opts.ensemble < 1:
        raise UserError(f"--ensemble {opts.ensemble}: give the number of predictions to ensemble (>= 1)")
    if opts.ensemble > 1 and bench.task == "semantic":
        raise UserError("--ensemble is for depth and normals; label maps are not ensembled")
    invariance = opts.ensemble_invariance or ("affine" if alignment != "none" else "none")
    if invariance not in ENSEMBLE_INVARIANCES:
        raise UserError(f"--ensemble-invariance {invariance}: use one of {', '.join(ENSEMBLE_INVARIANCES)}")
    if invariance != "none" and alignment == "none" and opts.ensemble > 1:
        raise UserError(
            f"--ensemble-invariance {invariance} gives relative depth in [0, 1]; score it with "
            "--alignment depth or disparity, or ensemble metric depth with --ensemble-invariance none"
        )
    if opts.prediction_kind != "depth":
        raise UserError("--prediction-kind is for --predictions files; a run predicts metric depth")
    relative = opts.ensemble > 1 and invariance != "none" and bench.task == "depth"
    kind = "disparity" if relative and alignment == "disparity" else "depth"
    res = run.cfg.resolution if opts.processing_res is None else opts.processing_res
    if res < 0:
        raise UserError(f"--processing-res {res}: give the long side in pixels, or 0 for the image's own size")
    prompt, decode, lut = _run_prompt(run, bench, opts)

    def predict(item: Item, sample: Sample) -> np.ndarray:
        value = predict_measurement(
            run,
            bench.task,
            sample.rgb,
            prompt,
            decode,
            processing_res=res,
            out_hw=sample.gt.shape[:2],
            ensemble=opts.ensemble,
            invariance=invariance if bench.task == "depth" else "none",
            members_as=kind,
            seed=opts.seed,
            steps=opts.steps,
        )
        if lut is None:
            return value
        known = (value >= 0) & (value < len(lut))  # a label no asked class has: a miss
        return np.where(known, lut[np.clip(value, 0, len(lut) - 1)], -1)

    info = {
        "ensemble": opts.ensemble,
        "ensemble_invariance": invariance if opts.ensemble > 1 else None,
        "processing_res": res,
        "seed": opts.seed,
        "steps": opts.steps or run.cfg.inference_steps,
        "prompt": prompt,
    }
    if bench.task == "semantic":
        info["class_map"] = _map_name(opts.class_map)
    return predict, kind, info


def evaluate_benchmark(
    name: str,
    root: str,
    *,
    run=None,
    predictions: str | None = None,
    options: EvalOptions = EvalOptions(),
    progress: Callable | None = None,
) -> tuple[dict, list]:
    """(report, per-image rows) of a run or a predictions folder on benchmark ``name`` read from ``root``."""
    bench = get_benchmark(name)
    if (run is None) == (predictions is None):
        raise UserError("give --run RUN (predict now) or --predictions DIR (score saved predictions), not both")
    alignment = options.alignment or ("depth" if bench.task == "depth" else "none")
    crop, frame = P.check_protocol(
        bench, alignment, options.prediction_kind, options.crop, options.depth_scale, options.normals_frame
    )
    if options.prediction_frame not in NORMALS_FRAMES:
        raise UserError(f"--prediction-frame {options.prediction_frame}: use one of {', '.join(NORMALS_FRAMES)}")
    if options.prediction_frame != "opencv" and (bench.task != "normals" or run is not None):
        raise UserError(
            "--prediction-frame is for --predictions files of a normals benchmark (a run predicts in the OpenCV frame)"
        )
    if options.class_map is not None and bench.task != "semantic":
        raise UserError(f"--class-map is for semantic benchmarks; {bench.name} is {bench.task}")
    if options.max_items is not None and options.max_items < 1:
        raise UserError(f"--max-items {options.max_items}: give a positive number")
    if run is not None:  # the run and its options are checked before any file is read
        if hasattr(run, "meta"):  # a student run (rgbify distill)
            predict, kind, info = _student_predictor(run, bench, options)
        else:
            predict, kind, info = _run_predictor(run, bench, options, alignment)
    archive = Archive(root)
    try:
        items = find_items(bench, archive, options.split_file)
        fingerprint = split_fingerprint(items)
        items = items[: options.max_items] if options.max_items else items
        if run is None:
            predict, kind = _folder_predictor(predictions, bench, items, options), options.prediction_kind
            info = {"predictions": str(predictions)}
            if bench.task == "semantic":
                info["class_map"] = _map_name(options.class_map)
        report, rows = _score(bench, archive, items, predict, alignment, kind, crop, frame, options, progress)
    finally:
        archive.close()
    reference = bench.split_sha256 is not None and fingerprint == bench.split_sha256
    complete = len(items) == bench.standard_images and (reference or bench.split_sha256 is None)
    head = {
        "name": bench.name,
        "title": bench.title,
        "task": bench.task,
        "root": str(root),
        "images": len(items),
        "standard_images": bench.standard_images,
        "complete": complete,
        "split": "reference"
        if reference
        else f"other (not {bench.split_source})"
        if bench.split_sha256
        else bench.split_source,
        "split_fingerprint": fingerprint,
    }
    if bench.task == "depth":
        head.update(
            crop=crop,
            depth_range_m=list(bench.depth_range_m),
            alignment=alignment,
            prediction_kind=kind,
            alignment_max_res=bench.alignment_max_res,
            depth_scale=options.depth_scale or bench.png_scale,
        )
    elif bench.task == "normals":
        head.update(normals_frame=frame)
        if run is None:
            head.update(prediction_frame=options.prediction_frame)
    else:
        head.update(ignore_index=bench.ignore_index)
    head.update(info)
    head["comparable"] = bench.comparable if complete else "not comparable: not the whole standard split"
    return {"benchmark": head, **report}, rows


def _score(
    bench: Benchmark,
    archive: Archive,
    items: list[Item],
    predict: Callable,
    alignment: str,
    kind: str,
    crop: str,
    frame: str,
    opts: EvalOptions,
    progress: Callable | None,
) -> tuple[dict, list]:
    rows: list[dict] = []
    normals = P.NormalsScore(frame) if bench.task == "normals" else None
    seg = P.SegmentationScore(bench) if bench.task == "semantic" else None
    for n, item in enumerate(items):
        sample = load_sample(bench, archive, item, opts.depth_scale)
        pred = predict(item, sample)
        if bench.task == "depth":
            valid = P.valid_depth_mask(bench, sample.gt, crop, sample.mask)
            row = P.score_depth(bench, pred, sample.gt, valid, alignment, kind, bench.alignment_max_res)
            rows.append({"image": item.rgb, **row})
        elif normals is not None:
            rows.append({"image": item.rgb, **normals.add(pred, sample.gt)})
        else:
            seg.add(pred, sample.gt)
        if progress is not None:
            progress(n + 1, len(items))
    if bench.task == "depth":
        return {"depth": P.summarize_depth(rows)}, rows
    if normals is not None:
        return normals.result(), rows
    return seg.result(), rows


def rows_csv(rows: list[dict]) -> str:
    """Per-image rows as CSV (the union of their keys as columns, in first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]

    def cell(v) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else repr(v)
        return str(v).replace(",", ";")

    return "\n".join([",".join(keys)] + [",".join(cell(r.get(k, "")) for k in keys) for r in rows]) + "\n"
