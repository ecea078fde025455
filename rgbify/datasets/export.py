"""``rgbify export DIR``: (input image, target image, prompt) triples for other trainers.

- ``--format png``: ``OUT/images/IIIIIIIII.png`` (input RGB, once per sample) and ``OUT/images/IIIIIIIII_TASK.png``
  (target), plus two JSON-lines indexes of the same rows:
  ``metadata.jsonl`` with ``input_image_file_name``, ``edited_image_file_name``, ``edit_prompt`` (Hugging Face
  ``imagefolder`` layout with two image columns: ``datasets.load_dataset("imagefolder", data_dir=OUT)`` loads
  every row with both images decoded, and diffusers' InstructPix2Pix example reads it with
  ``--train_data_dir OUT --original_image_column input_image --edited_image_column edited_image
  --edit_prompt_column edit_prompt``), and ``pairs.jsonl`` with plain ``input_image``, ``edited_image`` (paths
  relative to OUT) and ``edit_prompt`` for simpler loaders. Every row also has ``task``, ``index`` and ``decode``
  (the decode parameters, for rgbify.encode.decode_target; in metadata.jsonl as a JSON string, so that every row
  has one Arrow type).
- ``--format webdataset``: ``OUT/rgbify-NNNNNN.tar`` with members ``KEY.input.png``, ``KEY.target.png``,
  ``KEY.txt`` (prompt) and ``KEY.json`` (task, index, decode), KEY = ``IIIIIIIII_TASK``.

Every prompt fits CLIP's 77-token window, which stock pipelines and scripts cut prompts at: semantic and instance
prompts are written in the compact format (rgbify.encode.prompts), and a scene with more than
``COMPACT_MAX_CLASSES`` classes gets several semantic items, ``IIIIIIIII_semantic.png``,
``IIIIIIIII_semantic-1.png``, ..., each asking for a share of its classes (the others black in its target).

Item draws (codec, colours, phrasing) use ``numpy.random.default_rng([seed, index, task number])``.

The export is written whole: into a temporary folder beside OUT (``.NAME.partial-HOST-PID``) that becomes OUT at
the end, with ``OUT/.rgbify-export.json`` (dataset, format, tasks, seed, items) marking it as an export. OUT may be
new, an empty folder, or an earlier export, which is replaced once the new one is complete; any other folder is
refused before anything is read. A killed export leaves only the temporary folder, which the next export there
sweeps.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rgbify.datasets.storage.clips import ClipShardReader
from rgbify.datasets.storage.manifest import load_manifest
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.encode import COMPACT_MAX_CLASSES, TASKS, make_task_target
from rgbify.encode.flowio import FLOW_SUFFIXES, write_flow
from rgbify.encode.prompts import COMPACT
from rgbify.errors import UserError
from rgbify.fileio import check_output_dir, publishing, publishing_dir

MARKER = ".rgbify-export.json"
PLAIN_INDEX = "pairs.jsonl"
"""The plain index of a PNG export. Not ``train.jsonl``, as it was: Hugging Face ``datasets`` takes a file with
"train" in its name for the whole train split, and ``load_dataset("imagefolder", data_dir=OUT)`` then found no
images."""
_TAR = re.compile(r"rgbify-\d{6}\.tar")


def is_export_dir(path: Path) -> bool:
    """An earlier export: a folder with the marker file, or (an export made before the marker existed) holding only
    the names an export writes."""
    names = {p.name for p in Path(path).iterdir()}
    if MARKER in names:
        return True
    return bool(names) and all(n in ("images", "metadata.jsonl", "train.jsonl", PLAIN_INDEX) or _TAR.fullmatch(n)
                               for n in names)


def _items(directory: Path, tasks: Sequence[str], seed: int) -> Iterator[tuple[int, np.ndarray, list[tuple]]]:
    """(index, input RGB, rows) of every sample; a row is (name, task, target, prompt, decode), name the task, or
    for the later prompts of a scene split into several, ``semantic-K``."""
    reader = DatasetReader(directory)
    try:
        for index in reader.indices:
            s = reader.read(index)
            gt = _ground_truth(s, reader.classes)
            rows = []
            for task in tasks:
                rng = np.random.default_rng([seed, index, TASKS.index(task)])
                for k, options in enumerate(_prompt_groups(task, gt, rng)):
                    target, prompt, decode = make_task_target(task, gt, rng, prompt_format=COMPACT, **options)
                    rows.append((f"{task}-{k}" if k else task, task, target, prompt, decode))
            yield index, s["rgb"], rows
    finally:
        reader.close()


def _prompt_groups(task: str, gt: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    """make_task_target options of each prompt of ``task`` for one sample: one prompt, but a semantic target whose
    scene shows more than COMPACT_MAX_CLASSES classes is split into prompts of at most that many classes each (in
    a random order, each class in one of them), so that every prompt fits CLIP's 77 tokens."""
    if task != "semantic":
        return [{}]
    present = [int(c) for c in np.unique(gt["semantic"]) if c > 0]
    if len(present) <= COMPACT_MAX_CLASSES:
        return [{}]
    order = rng.permutation(present).tolist()
    n = -(-len(order) // COMPACT_MAX_CLASSES)  # groups of near-equal size
    return [{"semantic_classes": order[k::n]} for k in range(n)]


def _ground_truth(sample: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """The ``gt`` dict of rgbify.encode.make_task_target for one stored sample."""
    return {"rgb": sample["rgb"], "depth": sample["depth"], "normals": sample["normals"],
            "instance": sample["instance"], "semantic": sample["semantic"], "edge": sample["edge"],
            "K": sample["K"], "class_names": classes, "instances": json.loads(sample["instances"])}


def _png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def export(directory: str | Path, out: str | Path, fmt: str = "png", tasks: Sequence[str] = TASKS, seed: int = 0,
           shard_size: int = 1000) -> int:
    """Export every published sample of ``directory`` once per task; return the number of items written."""
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise UserError(f"--tasks {','.join(tasks)}: each must be one of {','.join(TASKS)}")
    if shard_size < 1:
        raise UserError(f"--shard-size {shard_size} must be a positive integer")
    if fmt not in ("png", "webdataset"):
        raise UserError(f"--format {fmt!r} must be png or webdataset")
    out = Path(out)
    check_output_dir(out, is_export_dir, what="export")
    reader = DatasetReader(directory)  # a bad dataset is refused before anything is written
    reader.close()
    with publishing_dir(out, is_export_dir, what="export") as tmp:
        if fmt == "png":
            n = _export_png(Path(directory), tmp, tasks, seed)
        else:
            n = _export_wds(Path(directory), tmp, tasks, seed, shard_size)
        marker = {"dataset": str(Path(directory).resolve()), "format": fmt, "tasks": list(tasks), "seed": seed,
                  "items": n}
        with publishing(tmp / MARKER) as m:
            m.write_text(json.dumps(marker, indent=1) + "\n")
    return n


def _export_png(directory: Path, out: Path, tasks: Sequence[str], seed: int) -> int:
    (out / "images").mkdir(exist_ok=True)
    n = 0
    with (publishing(out / "metadata.jsonl") as meta_tmp, publishing(out / PLAIN_INDEX) as plain_tmp,
          open(meta_tmp, "w") as meta, open(plain_tmp, "w") as plain):
        for index, rgb, rows in _items(directory, tasks, seed):
            inp = f"images/{index:09d}.png"
            Image.fromarray(rgb).save(out / inp)
            for name, task, target, prompt, decode in rows:
                tgt = f"images/{index:09d}_{name}.png"
                Image.fromarray(target).save(out / tgt)
                common = {"edit_prompt": prompt, "task": task, "index": index}
                meta.write(json.dumps({"input_image_file_name": inp, "edited_image_file_name": tgt, **common,
                                       "decode": json.dumps(decode)}) + "\n")  # a string: one Arrow type
                plain.write(json.dumps({"input_image": inp, "edited_image": tgt, **common, "decode": decode}) + "\n")
                n += 1
    return n


def _wds_records(directory: Path, tasks: Sequence[str], seed: int) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: file bytes}) of every exported item, streamed."""
    for index, rgb, rows in _items(directory, tasks, seed):
        inp = _png_bytes(rgb)
        for name, task, target, prompt, decode in rows:
            meta: dict[str, Any] = {"task": task, "index": index, "decode": decode}
            yield f"{index:09d}_{name}", {"input.png": inp, "target.png": _png_bytes(target),
                                          "txt": prompt.encode(), "json": json.dumps(meta).encode()}


def _export_wds(directory: Path, out: Path, tasks: Sequence[str], seed: int, shard_size: int) -> int:
    records = _wds_records(directory, tasks, seed)
    n = part = 0
    for first in records:  # one tar of up to shard_size items per pass, each published whole
        with publishing(out / f"rgbify-{part:06d}.tar") as tmp, tarfile.open(tmp, "w") as tar:
            for key, files in itertools.chain([first], itertools.islice(records, shard_size - 1)):
                for ext, data in files.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime = len(data), 0
                    tar.addfile(info, io.BytesIO(data))
                n += 1
        part += 1
    return n


# --- clips: flow files -----------------------------------------------------------------------------------------

CLIP_FLOW_MARKER = ".rgbify-clip-flow.json"


def is_clip_flow_dir(path: Path) -> bool:
    return (Path(path) / CLIP_FLOW_MARKER).is_file()


def export_clip_flow(source: str | Path, out: str | Path, suffix: str = ".png", direction: str = "fwd") -> int:
    """Write the ground-truth flow of every clip of a clip shard (rgbify.datasets.storage.clips), or of every
    published clip of a clip dataset (``source`` its folder: ``rgbify export DIR --format flow``), as standard flow
    files, ``OUT/CCCCCCCCC/TTTTTT.png`` (KITTI 16-bit PNG, its valid bit from the clip's valid mask), ``.flo``
    (Middlebury; invalid pixels as its "unknown" value) or ``.npy`` (NaN where invalid): clip CCCCCCCCC's flow
    from frame T to T+1 (``direction`` "fwd") or T-1 ("bwd"), frames without a neighbour skipped. The folder is
    written whole (rgbify.fileio.publishing_dir). Returns the number of files."""
    if suffix not in FLOW_SUFFIXES:
        raise UserError(f"flow file type {suffix!r} is not one of {sorted(FLOW_SUFFIXES)}")
    if direction not in ("fwd", "bwd"):
        raise UserError(f"flow direction {direction!r} is not 'fwd' (t -> t+1) or 'bwd' (t -> t-1)")
    shards = [Path(source)]
    if Path(source).is_dir():
        m = load_manifest(source)
        if "clip" not in m:
            raise UserError(f"{source} is a dataset of stills: it holds no flow (build clips with rgbify build "
                            "--clip-frames T)")
        shards = [Path(source) / e["file"] for e in sorted(m["shards"], key=lambda e: e["first_index"])]
    n = 0
    with publishing_dir(out, is_clip_flow_dir, flag="out", what="flow export") as tmp:
        for shard in shards:
            with ClipShardReader(shard) as reader:
                frames = range(reader.frames - 1) if direction == "fwd" else range(1, reader.frames)
                for j in range(len(reader)):
                    index = int(reader.file["index"][j])
                    folder = tmp / f"{index:09d}"
                    folder.mkdir()
                    for t in frames:
                        f = reader.frame(j, t, [f"flow_{direction}", f"valid_{direction}"])
                        write_flow(folder / f"{t:06d}{suffix}", f[f"flow_{direction}"], f[f"valid_{direction}"])
                        n += 1
        (tmp / CLIP_FLOW_MARKER).write_text(json.dumps({"source": str(source), "direction": direction,
                                                         "suffix": suffix, "files": n}))
    return n
