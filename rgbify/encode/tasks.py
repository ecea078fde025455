"""The boundary the datasets and train stages use: ground truth -> (target, prompt, decode params) and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rgbify.encode.codecs import COLORMAPS, DepthCodec, depth_codec, get_codec
from rgbify.encode.errors import CodecInputError
from rgbify.encode.flow import flow_codec
from rgbify.encode.labels import (
    INSTANCE_THRESHOLD,
    PALETTE,
    RGB,
    SEMANTIC_THRESHOLD,
    decode_instance,
    decode_semantic,
    encode_instance,
    encode_semantic,
    instance_colors,
    label_counts,
)
from rgbify.encode.prompts import (
    COMPACT,
    COMPACT_MAX_CLASSES,
    PROMPT_FORMAT_CHOICES,
    check_params,
    depth_prompt,
    flow_prompt,
    instance_prompt,
    normals_codec,
    normals_prompt,
    semantic_prompt,
)

TASKS = ("depth", "normals", "semantic", "instance")
"""The tasks of still images (datasets store them, the loader and training draw them)."""
FLOW_TASK = "flow"
"""Optical flow between two frames: make_task_target, task_prompt and decode_target take it; it is not in TASKS
because datasets do not store clips yet (docs/video.md)."""
CLIP_TASKS = (*TASKS, FLOW_TASK)
"""The tasks a clip dataset's loader draws (rgbify.datasets.loading.clip_dataset): the stills' and flow."""
INSTANCE_VARIANTS = ("shades", "distinct")


def _gt(gt: dict[str, Any], key: str) -> np.ndarray:
    if key not in gt or gt[key] is None:
        raise CodecInputError(f"ground truth has no {key!r} (keys: {sorted(gt)}); this task needs it")
    return np.asarray(gt[key])


def _class_name(gt: dict[str, Any], index: int) -> str:
    names = gt.get("class_names") or []
    return names[index - 1] if 0 < index <= len(names) else f"class {index}"


def draw_depth_codec(rng: np.random.Generator, depth_codecs: Sequence[Any] = ("depth/cubewalk",),
                     colormap_prob: float = 0.0, colormaps: Sequence[str] = COLORMAPS, **_: Any) -> DepthCodec:
    """The depth codec of one item: with probability ``colormap_prob`` a colormap drawn from ``colormaps``, else one
    of ``depth_codecs``. The one place this draw is written: make_task_target, task_prompt and the training loader's
    fused path (rgbify.datasets) call it, so all of them draw the same codec for the same stream."""
    if rng.random() < colormap_prob:
        return depth_codec(f"colormap:{colormaps[int(rng.integers(len(colormaps)))]}")
    return depth_codec(depth_codecs[int(rng.integers(len(depth_codecs)))])


SEMANTIC_COLORS = ("drawn", "fixed")
"""How semantic requests colour their classes: drawn per request (paper), or fixed by class index."""


def fixed_semantic_color(index: int) -> RGB:
    """The colour of class ``index`` under semantic_colors="fixed": PALETTE[(index - 1) % 26]."""
    return PALETTE[(int(index) - 1) % len(PALETTE)].rgb


def draw_semantic(rng: np.random.Generator, classes: Sequence[tuple[int, str]], prompt_format: str | None = None,
                  colors: str = "drawn") -> tuple[str, dict[str, Any], dict[int, RGB]]:
    """A semantic request for ``classes`` [(class index, name)]: their order in the prompt and a distinct palette
    colour each, drawn by ``rng`` (``colors="drawn"``, the paper's way); ``colors="fixed"`` lists them in index
    order, each in :func:`fixed_semantic_color` (the same colour for a class in every request; classes 26 apart
    share one). Returns (prompt, decode params, {class index: colour})."""
    if colors not in SEMANTIC_COLORS:
        raise CodecInputError(f"semantic_colors {colors!r}: use one of {', '.join(SEMANTIC_COLORS)}")
    if colors == "fixed":
        order = sorted(classes)
        chosen = [fixed_semantic_color(c) for c, _ in order]
        prompt, params = semantic_prompt(list(order), chosen, rng, prompt_format)
        return prompt, params, {c: col for (c, _), col in zip(order, chosen, strict=True)}
    order = [classes[i] for i in rng.permutation(len(classes))]
    colors = [PALETTE[i].rgb for i in rng.choice(len(PALETTE), size=len(order), replace=False)]
    prompt, params = semantic_prompt(list(order), colors, rng, prompt_format)
    return prompt, params, {c: col for (c, _), col in zip(order, colors, strict=True)}


def draw_instance(rng: np.random.Generator, class_index: int, class_name: str, ids: Sequence[int], variant: str,
                  prompt_format: str | None = None) -> tuple[str, dict[str, Any], dict[int, RGB]]:
    """An instance request for the instances ``ids`` (largest first) of one class: a class colour and the instance
    colours of ``variant`` ("shades", "distinct" or "random"), drawn by ``rng``. Returns (prompt, decode params,
    {instance id: colour})."""
    if variant == "random":
        variant = INSTANCE_VARIANTS[int(rng.integers(len(INSTANCE_VARIANTS)))]
    if variant not in INSTANCE_VARIANTS:
        raise CodecInputError(f"instance_variant {variant!r}: use one of {INSTANCE_VARIANTS} or 'random'")
    class_color = PALETTE[int(rng.integers(len(PALETTE)))].rgb
    colors, split = instance_colors(list(ids), variant, class_color, rng)
    prompt, params = instance_prompt(class_index, class_name, variant, colors,
                                     class_color if variant == "shades" else None, split, rng, prompt_format)
    return prompt, params, colors


def _depth_target(gt: dict, rng: np.random.Generator, depth_valid: Any = None, **options: Any):
    codec = draw_depth_codec(rng, **options)
    depth = _gt(gt, "depth").astype(np.float32, copy=False)
    prompt, params = depth_prompt(codec, rng)
    return codec.encode(depth, depth_valid), prompt, params


def _normals_target(gt: dict, rng: np.random.Generator, flip_x: bool = False, **_: Any):
    prompt, params = normals_prompt(flip_x, rng)
    return normals_codec(params).encode(_gt(gt, "normals").astype(np.float32, copy=False)), prompt, params


def _semantic_target(gt: dict, rng: np.random.Generator, prompt_format: str | None = None,
                     max_classes: int = len(PALETTE), semantic_classes: Sequence[int] | None = None,
                     semantic_colors: str = "drawn", **_: Any):
    semantic = _gt(gt, "semantic")
    present = [int(c) for c in label_counts(semantic)[0] if c > 0]
    if semantic_classes is not None:  # one of several prompts that split a scene's classes
        present = [c for c in present if c in set(semantic_classes)]
    if prompt_format == COMPACT:
        max_classes = min(max_classes, COMPACT_MAX_CLASSES)
    if len(present) > max_classes:
        present = sorted(rng.choice(present, size=max_classes, replace=False).tolist())
    if not present:  # nothing labeled in view: ask for one class of the table; the target is all black
        present = [int(rng.integers(1, max(len(gt.get("class_names") or []), 1) + 1))]
    prompt, params, colors = draw_semantic(rng, [(c, _class_name(gt, c)) for c in present], prompt_format,
                                           semantic_colors)
    return encode_semantic(semantic, colors), prompt, params


def _instance_target(gt: dict, rng: np.random.Generator, instance_variant: str = "shades",
                     instance_class: str | None = None, prompt_format: str | None = None, **_: Any):
    instance = _gt(gt, "instance")
    semantic = _gt(gt, "semantic")
    if instance_variant not in (*INSTANCE_VARIANTS, "random"):
        raise CodecInputError(f"instance_variant {instance_variant!r}: use one of {INSTANCE_VARIANTS} or 'random'")
    variant = instance_variant
    if variant == "random":
        variant = INSTANCE_VARIANTS[int(rng.integers(len(INSTANCE_VARIANTS)))]
    present = [int(c) for c in label_counts(np.where(instance > 0, semantic, 0))[0] if c > 0]
    if instance_class is not None:
        names = list(gt.get("class_names") or [])
        if instance_class not in names:
            raise CodecInputError(f"instance_class {instance_class!r} is not in the class table {names}")
        cls = names.index(instance_class) + 1
    elif present:
        cls = present[int(rng.integers(len(present)))]
    else:  # nothing to segment: ask for any class; the target is all black
        cls = int(rng.integers(1, max(len(gt.get("class_names") or []), 1) + 1))
    ids, counts = label_counts(np.where((semantic == cls) & (instance > 0), instance, 0))
    ids, counts = ids[ids > 0], counts[ids > 0]
    order = np.lexsort((ids, -counts))  # largest first, ties by id
    prompt, params, colors = draw_instance(rng, cls, _class_name(gt, cls), [int(i) for i in ids[order]], variant,
                                           prompt_format)
    return encode_instance(instance, colors), prompt, params


def _flow_target(gt: dict, rng: np.random.Generator, flow_codec_spec: Any = None, flow_valid: Any = None,
                 **_: Any):
    codec = flow_codec(flow_codec_spec)
    prompt, params = flow_prompt(codec, rng)
    flow = _gt(gt, "flow")
    return codec.encode(flow.astype(np.float32, copy=False), flow_valid), prompt, params


_BUILDERS = {"depth": _depth_target, "normals": _normals_target, "semantic": _semantic_target,
             "instance": _instance_target, FLOW_TASK: _flow_target}


def make_task_target(task: str, gt: dict[str, Any], rng: np.random.Generator, **options: Any
                     ) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Encode one task's ground truth as an RGB target with its prompt.

    task: "depth", "normals", "semantic", "instance" or "flow" (gt["flow"] float (H, W, 2) pixels, frame t -> t+1,
    +x right, +y down; options flow_codec_spec, a flow/signedlog spec, and flow_valid, a bool mask).
    gt: dict with depth float32 (H, W) metres (+inf nothing
    hit), normals float32 (H, W, 3) OpenCV camera frame, instance int32 (H, W), semantic int32 (H, W),
    class_names list[str] (class index i + 1 -> class_names[i]), optionally instances (table). Options:
    depth_codecs (list of codec specs, one drawn per call, default cubewalk), colormap_prob (chance of a
    colormap codec instead), colormaps, depth_valid (bool (H, W); False pixels encode as nothing hit; default
    none: +inf already means nothing hit); flip_x (normals); prompt_format (one of
    "rgb", "hex", "json", "names"; None draws one; or "compact", which fits CLIP's 77 tokens); max_classes
    (semantic: a scene with more classes is asked for a random subset; compact: at most COMPACT_MAX_CLASSES);
    semantic_classes (semantic: ask only for these of the classes present, e.g. one group of a split scene; the
    others are black in the target); instance_variant ("shades",
    "distinct" or "random"), instance_class (a class name; default: a class present, drawn by rng); semantic_colors
    ("drawn": a colour per class drawn per call, the default; "fixed": class i always in PALETTE[(i - 1) % 26]).

    Returns (target uint8 (H, W, 3), prompt str, decode_params JSON-serialisable dict for :func:`decode_target`).
    """
    if task not in _BUILDERS:
        raise CodecInputError(f"unknown task {task!r}; use one of {', '.join(TASKS)}, {FLOW_TASK}")
    fmt = options.get("prompt_format")
    if fmt is not None and fmt not in PROMPT_FORMAT_CHOICES:
        raise CodecInputError(f"prompt_format {fmt!r}: use one of {', '.join(PROMPT_FORMAT_CHOICES)} or None")
    return _BUILDERS[task](gt, rng, **options)


def task_prompt(task: str, rng: np.random.Generator, classes: Sequence[str] = (), instances: int = 8,
                **options: Any) -> tuple[str, dict[str, Any]]:
    """(prompt, decode params) asking for ``task`` on an image whose content is not known (prediction), drawn as
    make_task_target draws them: depth and normals as for any image; semantic asks for ``classes`` (decoded label
    i + 1 is classes[i]); instance for the instances of the one class ``classes[0]``, offering ``instances``
    colours. ``options`` are make_task_target's (depth_codecs, colormap_prob, flip_x, prompt_format,
    instance_variant, semantic_colors)."""
    fmt = options.get("prompt_format")
    if task == "depth":
        codec = draw_depth_codec(rng, **{k: v for k, v in options.items() if k != "prompt_format"})
        return depth_prompt(codec, rng)
    if task == "normals":
        return normals_prompt(bool(options.get("flip_x", False)), rng)
    if task == FLOW_TASK:
        return flow_prompt(options.get("flow_codec_spec"), rng)
    if task == "semantic":
        if not classes:
            raise CodecInputError("a semantic prompt needs the classes to ask for")
        return draw_semantic(rng, list(enumerate(classes, start=1)), fmt, options.get("semantic_colors", "drawn"))[:2]
    if task == "instance":
        if len(classes) != 1:
            raise CodecInputError(f"an instance prompt asks for exactly one class, got {list(classes)}")
        return draw_instance(rng, 1, classes[0], list(range(1, instances + 1)),
                             options.get("instance_variant", "shades"), fmt)[:2]
    raise CodecInputError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")


def decode_target(rgb: np.ndarray, decode_params: dict[str, Any] | str) -> np.ndarray:
    """Decode a target (or a generator's prediction of it), uint8 (H, W, 3), with the params of its prompt.

    Returns depth float32 (H, W) metres; flow float32 (H, W, 2) pixels;
    normals float32 (H, W, 3) OpenCV camera frame; semantic int32 (H, W)
    class indices of the class table (0 = unlabeled); instance int32 (H, W) instance ids (0 = none).
    """
    p = check_params(decode_params)
    task = p["task"]
    if task == "depth":
        return depth_codec(p.get("codec", "depth/cubewalk")).decode(rgb)
    if task == "normals":
        return normals_codec(p).decode(rgb)
    if task == FLOW_TASK:
        return flow_codec(p.get("codec")).decode(rgb)
    if task == "semantic":
        colors = {int(c["index"]): tuple(c["color"]) for c in p.get("classes", [])}
        return decode_semantic(rgb, colors, p.get("threshold", SEMANTIC_THRESHOLD))
    colors = {int(c["id"]): tuple(c["color"]) for c in p.get("instances", [])}
    return decode_instance(rgb, colors, p.get("variant", "shades"), p.get("threshold", INSTANCE_THRESHOLD),
                           bool(p.get("split_regions", False)))


__all__ = ["FLOW_TASK", "TASKS", "decode_target", "draw_depth_codec", "get_codec", "make_task_target", "task_prompt"]
