"""Prompt builders. Each returns ``(prompt_text, decode_params)``: the text a generator is conditioned on and the
JSON-serialisable parameters that :func:`rgbify.encode.decode_target` needs to decode a target drawn for it.

Every task has several phrasing templates (drawn by ``rng``); the text always states everything the decoder
uses (codec and its parameters, the colour of each class), so a target can be decoded from its prompt alone.
Class colour lists come in four formats (paper): plain names with RGB tuples ("rgb"), hex codes ("hex"), JSON
("json") and colour names ("names"), drawn at random; and a fifth, "compact" ("wall red, floor lime"), which is
never drawn, only asked for: a compact prompt fits CLIP's 77-token window (the text encoder of Stable Diffusion
and of the stock diffusers pipelines, which cut longer prompts) for any ``COMPACT_MAX_CLASSES`` classes of
rgbify's vocabulary in any palette colours (tests/test_encode_prompt_tokens.py measures it with CLIP's BPE
vocabulary). A scene with more classes is asked for in several prompts (rgbify export splits it).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rgbify.encode.codecs import Affine, Colormap, CubeWalk, DepthCodec, Hilbert24, NormalsCodec, get_codec
from rgbify.encode.errors import CodecInputError
from rgbify.encode.flow import FlowCodec, flow_codec
from rgbify.encode.labels import (
    INSTANCE_THRESHOLD,
    RGB,
    SEMANTIC_THRESHOLD,
    color_name,
)

PROMPT_FORMATS = ("rgb", "hex", "json", "names")
"""The class colour formats a prompt draws from when none is asked for."""
COMPACT = "compact"
PROMPT_FORMAT_CHOICES = (*PROMPT_FORMATS, COMPACT)
"""Every format that can be asked for."""
COMPACT_MAX_CLASSES = 14
"""The most classes one compact semantic prompt lists: its worst case (the 14 classes of rgbify's vocabulary and the
14 palette colours with the most CLIP tokens) is 75 of CLIP's 77 tokens (tests/test_prompt_tokens.py; 16 fitted
the 40-class vocabulary, 81 tokens with the 77 classes of sampler version 9)."""

_CMAP_ENDS = {"viridis": ("dark purple", "yellow"), "plasma": ("dark blue", "yellow"),
              "inferno": ("black", "pale yellow"), "gray": ("black", "white")}

DEPTH_TEMPLATES = {
    "depth/cubewalk": (
        "Metric depth map. Colour each pixel by its distance along the colour-cube walk: near black, then red, "
        "yellow, green, cyan, blue, magenta, far white.",
        "Depth estimation: encode metric depth as a walk black > red > yellow > green > cyan > blue > magenta > "
        "white (near to far, f = 1 - (1 + d/10 m)^-2); the sky and nothing hit are white.",
        "Draw the metric depth of this image, colour-cube walk from black (at the camera) to white (infinitely "
        "far).",
    ),
    "depth/hilbert24": (
        "Metric depth map, 24-bit Hilbert-curve colour code, up to {d_max:g} m, gamma {gamma:g}.",
        "Depth estimation: encode depth d as the point (d/{d_max:g} m)^{gamma:g} of the 24-bit 3-D Hilbert curve "
        "through RGB; {d_max:g} m and beyond is the curve's last colour.",
        "Draw the metric depth of this image as a Hilbert-curve RGB code (d_max {d_max:g} m, gamma {gamma:g}).",
    ),
    "depth/affine": (
        "Relative depth map in grey: black at this image's nearest 2 percent of depths, white at its farthest "
        "2 percent, linear in between.",
        "Depth estimation, affine-invariant: a grey level linear in depth, stretched between the image's 2nd "
        "(black) and 98th (white) depth percentiles.",
        "Draw the relative depth of this image in shades of grey, near black and far white.",
    ),
    "depth/colormap": (
        "Metric depth map in the {cmap} colormap, near {near} to far {far}.",
        "Depth estimation: colour depth with {cmap} ({near} at the camera, {far} infinitely far, "
        "f = 1 - (1 + d/10 m)^-2).",
        "Draw the metric depth of this image using the {cmap} colour scale.",
    ),
}

NORMALS_TEMPLATES = (
    "Surface normal map in camera space: red {x}, green up, blue toward the viewer.",
    "Estimate surface normals; colour = (normal + 1) / 2 with x pointing {xdir}, y up and z out of the image.",
    "Draw the surface normals of this image (camera frame, R = {xname}, G = up, B = toward the camera).",
)

FLOW_TEMPLATES = (
    "Optical flow to the next frame, signed-log colour code (max {max_flow:g} px, scale {scale:g} px, {fine} folds): "
    "red = rightward motion, green = downward, mid-grey = still; blue refines the speed.",
    "Estimate the optical flow between frame t and frame t+1: R and G are the horizontal and vertical motion in "
    "pixels on a log scale (127 = none, range {max_flow:g} px, scale {scale:g} px), B the speed folded {fine} times.",
    "Draw the motion of every pixel to the next frame (flow/signedlog, max {max_flow:g} px, scale {scale:g} px, "
    "{fine} folds).",
)

SEMANTIC_TEMPLATES = (
    "Semantic segmentation. Paint each class in its colour: {mapping}. Everything else black.",
    "Colour the scene by class, {mapping}; all other pixels black.",
    "Segment the image into classes with these colours: {mapping}. Unlisted classes and empty space: black.",
)

COMPACT_SEMANTIC_TEMPLATES = (
    "Segmentation: {mapping}; else black.",
    "Colour by class: {mapping}; rest black.",
)

INSTANCE_TEMPLATES = {
    "shades": (
        "Instance segmentation of {cls}: each {cls} in its own shade of {color}, the largest in {color} itself, "
        "smaller ones darker or lighter. Everything else black.",
        "Segment every {cls} instance with distinct shades of {color} (largest first); other pixels black.",
        "Find each {cls}. Colour the instances in different shades of {color}, the biggest one {color}; "
        "background black.",
    ),
    "distinct": (
        "Instance segmentation of {cls}: give each {cls} its own distinct colour. Everything else black.",
        "Segment every {cls} instance, each in a different colour; other pixels black.",
        "Find each {cls} and paint every one a different colour on a black background.",
    ),
}


CLIP_TEMPLATES = (
    "A video of {frames} frames; for every frame: {prompt}",
    "Do this for each of the {frames} frames of the clip, keeping colours the same from frame to frame: {prompt}",
    "Video, {frames} frames. Frame by frame: {prompt}",
)
"""A clip's prompt wraps the per-frame prompt of its task (one codec, one colour table for every frame)."""

FRAME_TEMPLATE = "Frame {t} of {frames}. {prompt}"
"""The prompt of frame t (1-based in the text) of a clip."""


def clip_prompt(prompt: str, frames: int, rng: np.random.Generator | None = None) -> str:
    """The prompt asking for a task on every frame of a clip of ``frames`` frames, from the task's per-frame
    ``prompt`` (depth_prompt, normals_prompt, semantic_prompt, instance_prompt, flow_prompt); decode params are the
    per-frame prompt's, for every frame."""
    return _pick(CLIP_TEMPLATES, rng).format(frames=int(frames), prompt=prompt)


def frame_prompts(prompt: str, frames: int) -> list[str]:
    """The prompt of each frame of a clip, naming the frame: ``FRAME_TEMPLATE`` around the task's ``prompt``."""
    return [FRAME_TEMPLATE.format(t=t + 1, frames=int(frames), prompt=prompt) for t in range(int(frames))]


def _pick(options: tuple[str, ...], rng: np.random.Generator | None) -> str:
    return options[int(rng.integers(len(options)))] if rng is not None else options[0]


def depth_prompt(codec: str | dict | DepthCodec, rng: np.random.Generator | None = None) -> tuple[str, dict]:
    """Prompt for a depth target under ``codec``; decode params {"task": "depth", "codec": spec}."""
    c = get_codec(codec)
    if isinstance(c, CubeWalk):
        text = _pick(DEPTH_TEMPLATES["depth/cubewalk"], rng)
    elif isinstance(c, Hilbert24):
        text = _pick(DEPTH_TEMPLATES["depth/hilbert24"], rng).format(d_max=c.d_max, gamma=c.gamma)
    elif isinstance(c, Affine):
        text = _pick(DEPTH_TEMPLATES["depth/affine"], rng)
    elif isinstance(c, Colormap):
        near, far = _CMAP_ENDS[c.cmap]
        text = _pick(DEPTH_TEMPLATES["depth/colormap"], rng).format(cmap=c.cmap, near=near, far=far)
    else:
        raise CodecInputError(f"{codec!r} is not a depth codec")
    return text, {"task": "depth", "codec": c.spec()}


def normals_prompt(flip_x: bool = False, rng: np.random.Generator | None = None) -> tuple[str, dict]:
    """Prompt for a normals target; decode params {"task": "normals", "flip_x": bool}."""
    xdir = "left" if flip_x else "right"
    text = _pick(NORMALS_TEMPLATES, rng).format(x=f"= facing {xdir}", xdir=xdir, xname=xdir)
    return text, {"task": "normals", "flip_x": bool(flip_x)}


def flow_prompt(codec: str | dict | FlowCodec | None = None, rng: np.random.Generator | None = None
                ) -> tuple[str, dict]:
    """Prompt for a flow target (frame t -> t+1) under the flow codec; decode params {"task": "flow", "codec":
    spec}. The text names every codec parameter, so the decoder's parameters can be read from the prompt."""
    c = flow_codec(codec)
    text = _pick(FLOW_TEMPLATES, rng).format(max_flow=c.max_flow, scale=c.scale, fine=c.fine)
    return text, {"task": "flow", "codec": c.spec()}


def format_mapping(names: list[str], colors: list[RGB], fmt: str) -> str:
    """'chair (255, 0, 0), table (0, 128, 255)' in one of PROMPT_FORMAT_CHOICES."""
    if fmt == "rgb":
        return ", ".join(f"{n} ({r}, {g}, {b})" for n, (r, g, b) in zip(names, colors, strict=True))
    if fmt == "hex":
        return ", ".join(f"{n} #{r:02X}{g:02X}{b:02X}" for n, (r, g, b) in zip(names, colors, strict=True))
    if fmt == "json":
        return json.dumps({n: list(c) for n, c in zip(names, colors, strict=True)})
    if fmt == "names":
        return ", ".join(f"{n} in {color_name(c)}" for n, c in zip(names, colors, strict=True))
    if fmt == COMPACT:
        return ", ".join(f"{n} {color_name(c)}" for n, c in zip(names, colors, strict=True))
    raise CodecInputError(f"unknown prompt format {fmt!r}; use one of {', '.join(PROMPT_FORMAT_CHOICES)}")


def format_color(rgb: RGB, fmt: str) -> str:
    """One colour in one of PROMPT_FORMAT_CHOICES: '(255, 0, 0)', '#FF0000', '[255, 0, 0]' or 'red' (names and
    compact)."""
    r, g, b = (int(v) for v in rgb)
    return {"rgb": f"({r}, {g}, {b})", "hex": f"#{r:02X}{g:02X}{b:02X}", "json": json.dumps([r, g, b]),
            "names": color_name((r, g, b)), COMPACT: color_name((r, g, b))}[fmt]


def semantic_prompt(classes: list[tuple[int, str]], colors: list[RGB], rng: np.random.Generator | None = None,
                    fmt: str | None = None, threshold: float = SEMANTIC_THRESHOLD) -> tuple[str, dict]:
    """Prompt asking for ``classes`` [(class index, name)] in ``colors``; ``fmt`` None draws one of PROMPT_FORMATS
    by rng; "compact" takes at most COMPACT_MAX_CLASSES classes.

    Decode params: {"task": "semantic", "classes": [{"index", "name", "color"}], "threshold"}."""
    if len(classes) != len(colors):
        raise CodecInputError(f"semantic_prompt: {len(classes)} classes but {len(colors)} colours")
    if fmt is None:
        fmt = _pick(PROMPT_FORMATS, rng)
    if fmt == COMPACT and len(classes) > COMPACT_MAX_CLASSES:
        raise CodecInputError(f"a compact semantic prompt lists at most {COMPACT_MAX_CLASSES} classes (CLIP's 77 "
                              f"tokens), got {len(classes)}: ask for them in several prompts")
    mapping = format_mapping([n for _, n in classes], [tuple(c) for c in colors], fmt)
    templates = COMPACT_SEMANTIC_TEMPLATES if fmt == COMPACT else SEMANTIC_TEMPLATES
    text = _pick(templates, rng).format(mapping=mapping)
    params = {
        "task": "semantic",
        "classes": [{"index": int(i), "name": n, "color": [int(v) for v in c]}
                    for (i, n), c in zip(classes, colors, strict=True)],
        "threshold": float(threshold),
        "format": fmt,
    }
    return text, params


def instance_prompt(class_index: int, class_name: str, variant: str, instance_colors: dict[int, RGB],
                    class_color: RGB | None = None, split_regions: bool = False,
                    rng: np.random.Generator | None = None, fmt: str | None = None,
                    threshold: float = INSTANCE_THRESHOLD) -> tuple[str, dict]:
    """Prompt for the instances of one class. Decode params: {"task": "instance", "variant", "class_index",
    "class_name", "instances": [{"id", "color"}] (largest first), "threshold", "split_regions"}."""
    if variant not in INSTANCE_TEMPLATES:
        raise CodecInputError(f"unknown instance variant {variant!r}; use 'shades' or 'distinct'")
    color = ""
    if variant == "shades":
        if class_color is None:
            raise CodecInputError("instance variant 'shades' needs class_color")
        if fmt is None:
            fmt = _pick(PROMPT_FORMATS, rng)
        color = format_color(tuple(class_color), fmt)
    text = _pick(INSTANCE_TEMPLATES[variant], rng).format(cls=class_name, color=color)
    params = {
        "task": "instance",
        "variant": variant,
        "class_index": int(class_index),
        "class_name": class_name,
        "instances": [{"id": int(i), "color": [int(v) for v in c]} for i, c in instance_colors.items()],
        "threshold": float(threshold),
        "split_regions": bool(split_regions),
    }
    if class_color is not None:
        params["class_color"] = [int(v) for v in class_color]
    return text, params


def check_params(params: Any) -> dict[str, Any]:
    """Validate decode params enough to decode with them; returns them as a dict (parses a JSON string)."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as e:
            raise CodecInputError(f"decode params are not valid JSON ({e}): {params[:80]!r}") from None
    if not isinstance(params, dict) or params.get("task") not in ("depth", "normals", "semantic", "instance",
                                                                    "flow"):
        raise CodecInputError(
            f"decode params need 'task' in depth, normals, semantic, instance, flow; got {str(params)[:120]!r}"
        )
    return params


def normals_codec(params: dict[str, Any]) -> NormalsCodec:
    return NormalsCodec(flip_x=bool(params.get("flip_x", False)))
