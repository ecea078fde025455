"""``--class-map published``: rgbify's own classes mapped to a segmentation benchmark's, by the published tables.

The tables live with the class vocabulary (``rgbify.scenes.classes``: ``NYU40`` maps each of our classes to an
NYU40 class name or None; ``CITYSCAPES`` to a Cityscapes label name, None where a street scene never shows it).
Here they become ``{our class name: the benchmark's class id}`` in the benchmark's label space:
- nyuv2-seg40: NYU40 ids 1..40; a class mapped to None is left out (never asked for);
- cityscapes: train ids 0..18; a class mapped to a label the benchmark ignores (train id 255: "static",
  "dynamic", ...) is left out, and label 0 (no asked class painted: for a street view, what no ray of the scene hit)
  counts as "sky", as the vocabulary's ``lookup_table(..., nothing_is_sky=True)``.
"""

from __future__ import annotations

from rgbify.errors import UserError
from rgbify.train.benchmarks.catalog import Benchmark

PUBLISHED = "published"


def published_class_map(bench: Benchmark) -> tuple[dict[str, int], int | None]:
    """({our class name: benchmark id}, the benchmark id of label 0 or None) for a semantic benchmark."""
    from rgbify.scenes import classes as vocabulary

    table = {"nyu40": "NYU40", "cityscapes": "CITYSCAPES"}.get(bench.labels)
    if table is None:
        raise UserError(f"--class-map {PUBLISHED} is for semantic benchmarks; {bench.name} is {bench.task}")
    mapping = getattr(vocabulary, table, None)
    if not isinstance(mapping, dict) or not mapping:
        raise UserError(
            f"--class-map {PUBLISHED}: this rgbify has no published map to {bench.labels} "
            f"(rgbify.scenes.classes.{table}); give --class-map JSON {{our class: {bench.name} class}}"
        )
    ids = dict(zip(bench.class_names, bench.class_ids, strict=True))
    out = {}
    for ours, theirs in mapping.items():
        if theirs is None:
            continue
        if theirs in ids:
            out[ours] = ids[theirs]
    background = ids["sky"] if bench.labels == "cityscapes" else None
    return out, background


def vocabulary_index(name: str) -> int:
    """The semantic label (1 + position in the built-in class table) of one of our classes."""
    from rgbify.scenes.classes import CLASSES

    return CLASSES.index(name) + 1
