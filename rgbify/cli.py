"""The ``rgbify`` command. Thin: each stage's module adds its subcommands; ``main(argv)`` is what tests call.

Each module listed in ``COMMAND_MODULES`` defines ``add_commands(subparsers)``, which adds subparsers whose
``func(args) -> int`` runs the command. Every command's parser is built on every run, so a stage's cli.py imports
only what its parsers need and imports the stage itself inside ``func`` (``rgbify encode`` starts in about 1 s).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import Any

from rgbify import __version__
from rgbify.errors import UserError
from rgbify.fileio import disk_error

COMMAND_MODULES = (
    "rgbify.encode.cli",
    "rgbify.render.cli",
    "rgbify.scenes.cli",
    "rgbify.datasets.cli",
    "rgbify.train.cli",
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


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # SIGTERM (a batch system's kill, `kill PID`) stops a command as Ctrl-C does: its clean-up runs, exit 130
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(e: BaseException) -> str:
    """An error message on one line (a library's message may carry newlines, e.g. HDF5's time stamps)."""
    return " ".join(str(e).split())


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
