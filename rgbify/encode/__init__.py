"""Encode stage: every task's answer as an RGB image, and back (docs/codecs.md).

Depth (metres), normals (OpenCV camera frame) and optical flow (pixels) through named codecs, semantic and instance
labels through colours named in the prompt, and the prompt builders. Importing this package loads numpy only; numba
kernels compile (or load from their on-disk cache) on first use. Never imports torch or bpy.
"""

from rgbify.encode.codecs import (
    COLORMAPS,
    DEPTH_CODECS,
    Affine,
    Colormap,
    CubeWalk,
    DepthCodec,
    Hilbert24,
    NormalsCodec,
    decode_depth,
    decode_normals,
    encode_depth,
    encode_normals,
    get_codec,
)
from rgbify.encode.errors import CodecInputError
from rgbify.encode.flow import FLOW_CODECS, FlowCodec, decode_flow, encode_flow, flow_codec, flow_to_color
from rgbify.encode.labels import (
    PALETTE,
    NamedColor,
    cluster_colors,
    decode_instance,
    decode_semantic,
    encode_instance,
    encode_semantic,
    instance_colors,
    instance_shades,
)
from rgbify.encode.prompts import (
    COMPACT_MAX_CLASSES,
    PROMPT_FORMAT_CHOICES,
    PROMPT_FORMATS,
    clip_prompt,
    depth_prompt,
    flow_prompt,
    frame_prompts,
    instance_prompt,
    normals_prompt,
    semantic_prompt,
)
from rgbify.encode.tasks import CLIP_TASKS, FLOW_TASK, TASKS, decode_target, make_task_target

__all__ = [
    "COLORMAPS",
    "DEPTH_CODECS",
    "FLOW_CODECS",
    "FLOW_TASK",
    "CLIP_TASKS",
    "clip_prompt",
    "frame_prompts",
    "FlowCodec",
    "decode_flow",
    "encode_flow",
    "flow_codec",
    "flow_prompt",
    "flow_to_color",
    "PALETTE",
    "PROMPT_FORMATS",
    "PROMPT_FORMAT_CHOICES",
    "COMPACT_MAX_CLASSES",
    "TASKS",
    "Affine",
    "CodecInputError",
    "Colormap",
    "CubeWalk",
    "DepthCodec",
    "Hilbert24",
    "NamedColor",
    "NormalsCodec",
    "cluster_colors",
    "decode_depth",
    "decode_instance",
    "decode_normals",
    "decode_semantic",
    "decode_target",
    "depth_prompt",
    "encode_depth",
    "encode_instance",
    "encode_normals",
    "encode_semantic",
    "get_codec",
    "instance_colors",
    "instance_prompt",
    "instance_shades",
    "make_task_target",
    "normals_prompt",
    "semantic_prompt",
]
