"""The ``rgbify`` command. Thin: each stage's module adds its subcommands; ``main(argv)`` is what tests call.

Each module listed in ``COMMAND_MODULES`` defines ``add_commands(subparsers)``, which adds subparsers whose
``func(args) -> int`` runs the command. Every command's parser is built on every run, so a stage's cli.py imports
only what its parsers need and imports the stage itself inside ``func`` (``rgbify encode`` starts in about 1 s).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rgbify import __version__
from rgbify.errors import UserError
from rgbify.fileio import disk_error
from rgbify.signals import sigterm_as_interrupt

COMMAND_MODULES = (
    "rgbify.encode.cli",
    "rgbify.render.cli",
    "rgbify.scenes.cli",
    "rgbify.datasets.cli",
    "rgbify.train.cli",
    "rgbify.train.distill.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rgbify",
        description="Render synthetic scenes into RGB + exact depth, normals and IDs; encode every task as an "
        "RGB image; build HDF5 datasets; train and evaluate a diffusion generator on them.",
    )
    parser.add_argument("--version", action="version", version=f"rgbify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with sigterm_as_interrupt():  # a batch system's kill stops a command as Ctrl-C does: clean-up, exit 130
            return int(args.func(args) or 0)
    except UserError as e:
        print(f"rgbify: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rgbify: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the last net: a refused write a command did not word itself (a full disk ...)
        err = disk_error(e)
        if not isinstance(err, UserError):
            raise
        print(f"rgbify: error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(e: BaseException) -> str:
    """An error message on one line (a library's message may carry newlines, e.g. HDF5's time stamps)."""
    return " ".join(str(e).split())



if __name__ == "__main__":
    sys.exit(main())
