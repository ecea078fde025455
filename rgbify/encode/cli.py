"""``rgbify encode`` and ``rgbify decode``: measurement files <-> RGB target images.

Thin: parsing here, work in :mod:`rgbify.encode` (imported inside the command functions, so ``rgbify --help``
does not load numba).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rgbify.errors import UserError

DEPTH_CODEC_HELP = (
    "depth codec: cubewalk (default, paper), hilbert24 (summary; --d-max, --gamma), colormap:viridis, "
    "colormap:plasma, colormap:inferno, colormap:gray, affine (per-image 2-98 percentile grey; decodes to relative "
    "depth in [0, 1], not metres)"
)
UNITS = """Units and frames:
  depth    planar z in metres, +inf = nothing hit. Files: .npy float32 (H,W); .exr float channel Z;
           .png 16-bit single channel in millimetres (0 = no depth, encoded as nothing hit).
  normals  unit vectors in the OpenCV camera frame (+x right, +y down, +z forward), zeros = no surface.
           Files: .npy float32 (H,W,3); .exr channels X, Y, Z. The target colours use +x right, +y up,
           +z toward the viewer: R,G,B = round((v + 1) / 2 * 255) (R negated with --flip-x).
  flow     optical flow in pixels, frame t -> t+1, +x right, +y down (OpenCV image frame). Files: .flo
           (Middlebury), .png (KITTI: 16-bit RGB, (value - 2^15) / 64, B = valid), .npy float32 (H,W,2)
           (NaN = invalid). Target: flow/signedlog (--max-flow, --scale, --fine); --wheel draws the
           Middlebury colour wheel picture instead (not decodable).
  targets  8-bit RGB: .png, or .npy uint8 (H,W,3). Decoding accepts any 8-bit RGB image.
See docs/codecs.md for every codec's formula."""


def _add_depth_options(p: argparse.ArgumentParser, decode: bool) -> None:
    p.add_argument("--codec", default="cubewalk", help=DEPTH_CODEC_HELP)
    p.add_argument("--d-max", type=float, default=None, help="hilbert24: depth in metres of the far code (100)")
    p.add_argument("--gamma", type=float, default=None, help="hilbert24: exponent of d / d_max (0.5)")
    if decode:
        p.add_argument("--robust", choices=["median3", "median5"], default=None,
                       help="decoder option: 3x3 / 5x5 median of the decoded depth (helps hilbert24 under noise)")


MAX_D_MAX = 1e5
"""Largest --d-max, metres (100 km: past any scene; a larger one leaves near depths without codes)."""
MAX_GAMMA = 4.0


def _codec(args: argparse.Namespace):
    import math

    from rgbify.encode.codecs import depth_codec

    params = {}
    if args.d_max is not None:
        if not (math.isfinite(args.d_max) and 0 < args.d_max <= MAX_D_MAX):
            raise UserError(f"--d-max {args.d_max:g} must be a depth in metres in (0, {MAX_D_MAX:g}] (the far code; "
                            "default 100)")
        params["d_max"] = args.d_max
    if args.gamma is not None:
        if not (math.isfinite(args.gamma) and 0 < args.gamma <= MAX_GAMMA):
            raise UserError(f"--gamma {args.gamma:g} must lie in (0, {MAX_GAMMA:g}] (default 0.5)")
        params["gamma"] = args.gamma
    if getattr(args, "robust", None):
        params["robust"] = args.robust
    codec = depth_codec(args.codec, **params)
    if "d_max" in params or "gamma" in params:
        _check_resolution(codec, args)
    return codec


def _check_resolution(codec, args: argparse.Namespace) -> None:
    """UserError if the given --d-max/--gamma leave near depths without codes of their own: a depth of 1 m (or half
    the far code, if that is nearer) must decode within 1 %."""
    import numpy as np

    d = min(1.0, float(getattr(codec, "d_max", 2.0)) / 2)
    back = float(codec.decode(codec.encode(np.full((1, 1), d, np.float32)))[0, 0])
    if not abs(back - d) <= 0.01 * d:
        given = f"--d-max {args.d_max or 'default'} --gamma {args.gamma or 'default'}"
        raise UserError(f"--codec {args.codec} with {given}: a depth of {d:g} m decodes as {back:g} m; lower "
                        "--d-max or --gamma")


def _distinct(args: argparse.Namespace) -> None:
    """UserError if OUT is IN (by name or by a link): writing the output would destroy the input."""
    src, dst = Path(args.input), Path(args.output)
    same = src.resolve() == dst.resolve()
    if not same and src.exists() and dst.exists():
        same = os.path.samefile(src, dst)
    if same:
        raise UserError(f"OUT {args.output} is the input file IN: writing it would destroy the input; give another "
                        "output name")


def _encode_depth(args: argparse.Namespace) -> int:
    _distinct(args)
    from rgbify.encode import io

    depth, valid = io.read_depth(args.input)
    io.write_target(args.output, _codec(args).encode(depth, valid))
    return 0


def _decode_depth(args: argparse.Namespace) -> int:
    _distinct(args)
    from rgbify.encode import io

    rgb = io.read_target(args.input)
    io.write_depth(args.output, _codec(args).decode(rgb))
    return 0


def _encode_normals(args: argparse.Namespace) -> int:
    _distinct(args)
    from rgbify.encode import io
    from rgbify.encode.codecs import NormalsCodec

    io.write_target(args.output, NormalsCodec(flip_x=args.flip_x).encode(io.read_normals(args.input)))
    return 0


def _decode_normals(args: argparse.Namespace) -> int:
    _distinct(args)
    from rgbify.encode import io
    from rgbify.encode.codecs import NormalsCodec

    io.write_normals(args.output, NormalsCodec(flip_x=args.flip_x).decode(io.read_target(args.input)))
    return 0


def _flow_codec(args: argparse.Namespace):
    import math

    from rgbify.encode.flow import MAX_MAX_FLOW, flow_codec

    for flag, v in (("--max-flow", args.max_flow), ("--scale", args.scale)):
        if not (math.isfinite(v) and 0 < v <= MAX_MAX_FLOW):
            raise UserError(f"{flag} {v:g} must be a number of pixels in (0, {MAX_MAX_FLOW:g}] (defaults: --max-flow "
                            "256, --scale 1)")
    if not 0 <= args.fine <= 16:
        raise UserError(f"--fine {args.fine} must be a number of folds in 0..16 (default 4; 0 leaves B unused)")
    return flow_codec(None, max_flow=args.max_flow, scale=args.scale, fine=args.fine)


def _encode_flow(args: argparse.Namespace) -> int:
    _distinct(args)
    import math

    from rgbify.encode import flowio, io
    from rgbify.encode.flow import flow_to_color

    codec = None if args.wheel else _flow_codec(args)  # bad options fail before the input is read
    if args.wheel_max is not None and not (math.isfinite(args.wheel_max) and args.wheel_max > 0):
        raise UserError(f"--wheel-max {args.wheel_max:g} must be a flow magnitude in pixels > 0 (default: the "
                        "largest in the file)")
    flow, valid = flowio.read_flow(args.input)
    if args.wheel:
        rgb = flow_to_color(flow, args.wheel_max, valid)
    else:
        rgb = codec.encode(flow, valid)
    io.write_target(args.output, rgb)
    return 0


def _decode_flow(args: argparse.Namespace) -> int:
    _distinct(args)
    from rgbify.encode import flowio, io

    codec = _flow_codec(args)
    flowio.write_flow(args.output, codec.decode(io.read_target(args.input)))
    return 0


def _add_flow_options(p: argparse.ArgumentParser, decode: bool) -> None:
    p.add_argument("--max-flow", type=float, default=256.0, help="flow/signedlog: largest flow component, px (256)")
    p.add_argument("--scale", type=float, default=1.0, help="flow/signedlog: log scale, px (1)")
    p.add_argument("--fine", type=int, default=4, help="flow/signedlog: folds of the speed in B, 0 = none (4)")
    if not decode:
        p.add_argument("--wheel", action="store_true",
                       help="write the Middlebury colour-wheel picture instead of a decodable target")
        p.add_argument("--wheel-max", type=float, default=None,
                       help="--wheel: flow magnitude of full saturation, px (default: the largest in the file)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    enc = subparsers.add_parser("encode", help="encode depth, normals or flow as an RGB target image",
                                description="Encode a measurement as an RGB target image.\n\n" + UNITS,
                                formatter_class=fmt)
    dec = subparsers.add_parser("decode", help="decode an RGB target image back into depth, normals or flow",
                                description="Decode an RGB target image (any 8-bit RGB) into a measurement.\n\n"
                                + UNITS, formatter_class=fmt)
    for parser, decode in ((enc, False), (dec, True)):
        kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
        verb = "decode" if decode else "encode"
        d = kinds.add_parser("depth", help=f"{verb} metric depth", formatter_class=fmt,
                             description=f"{verb.capitalize()} metric depth.\n\n{UNITS}")
        d.add_argument("input", metavar="IN", help="RGB target (.png/.npy)" if decode else "depth (.npy/.png/.exr)")
        d.add_argument("output", metavar="OUT",
                       help="depth (.npy/.exr/.png mm)" if decode else "RGB target (.png/.npy)")
        _add_depth_options(d, decode)
        d.set_defaults(func=_decode_depth if decode else _encode_depth)
        n = kinds.add_parser("normals", help=f"{verb} surface normals", formatter_class=fmt,
                             description=f"{verb.capitalize()} surface normals.\n\n{UNITS}")
        n.add_argument("input", metavar="IN", help="RGB target (.png/.npy)" if decode else "normals (.npy/.exr)")
        n.add_argument("output", metavar="OUT", help="normals (.npy/.exr)" if decode else "RGB target (.png/.npy)")
        n.add_argument("--flip-x", action="store_true",
                       help="paper's colours: R = (1 - x)/2 (x negated, Lotus/DSINE); default R = (x + 1)/2")
        n.set_defaults(func=_decode_normals if decode else _encode_normals)
        fl = kinds.add_parser("flow", help=f"{verb} optical flow", formatter_class=fmt,
                              description=f"{verb.capitalize()} optical flow.\n\n{UNITS}")
        fl.add_argument("input", metavar="IN", help="RGB target (.png/.npy)" if decode else "flow (.flo/.png/.npy)")
        fl.add_argument("output", metavar="OUT", help="flow (.flo/.png KITTI/.npy)" if decode else "RGB (.png/.npy)")
        _add_flow_options(fl, decode)
        fl.set_defaults(func=_decode_flow if decode else _encode_flow)
