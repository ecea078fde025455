"""Subcommands ``rgbify build``, ``verify``, ``preview``, ``export`` and ``repack``. The parsers are built on every
``rgbify`` run, so this module and ``add_commands`` import only the standard library, rgbify.config and the build
config; each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

from rgbify.config import add_arguments, parse, values_from
from rgbify.datasets.build.config import SCALE_OUT, BuildConfig, Storage
from rgbify.errors import UserError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="render a recipe into a sharded HDF5 dataset (resumable, parallel)",
                       description="Render COUNT scenes of a recipe with WORKERS Blender processes into "
                       "OUT/dataset.json + OUT/shards/*.h5, then write OUT/preview.png. Run the same command "
                       "again to resume after a kill; a larger --count extends the dataset.")
    add_arguments(p, BuildConfig, skip=SCALE_OUT)
    add_arguments(p.add_argument_group("scale-out (docs/scaling.md)"), BuildConfig, only=SCALE_OUT)
    p.add_argument("--no-preview", action="store_true", help="do not write OUT/preview.png at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary (notices such as a "
                   "shard being repaired are still printed)")
    p.set_defaults(func=_build)

    p = sub.add_parser("verify", help="check a dataset: checksums, shapes, dtypes, NaNs and invariants",
                       description="Check every shard and sample of a dataset; print a report naming shard and "
                       "sample of each problem; exit 1 if there is any.")
    p.add_argument("dir", type=Path, help="dataset folder")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="shards checked at once, each in a process of its own (default: the number of CPUs)")
    p.set_defaults(func=_verify)

    p = sub.add_parser("preview", help="write a contact sheet of a dataset (RGB and every target)")
    p.add_argument("dir", type=Path, help="dataset folder")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default DIR/preview.png)")
    p.add_argument("--n", type=int, default=8, help="number of samples (rows), spread over the dataset")
    p.set_defaults(func=_preview)

    p = sub.add_parser("export", help="write (input, target, prompt) triples for other trainers",
                       description="png: OUT/images/*.png + OUT/metadata.jsonl (columns input_image, "
                       "edit_prompt, edited_image: a Hugging Face imagefolder, load_dataset('imagefolder', "
                       "data_dir=OUT), which diffusers' InstructPix2Pix example reads); webdataset: OUT/*.tar "
                       "shards. Every prompt fits CLIP's 77 tokens (a scene of more than 14 classes gives several "
                       "semantic items).")
    p.add_argument("dir", type=Path, help="dataset folder")
    p.add_argument("--format", choices=("png", "webdataset", "flow"), default="png",
                   help="flow: a clip dataset's ground-truth flow as standard files, OUT/CCCCCCCCC/TTTTTT.png (KITTI; "
                   "--flow-file flo or npy for the others), the layout `rgbify eval --predictions` reads")
    p.add_argument("--flow-file", choices=("png", "flo", "npy"), default="png", help="--format flow: file type")
    p.add_argument("--direction", choices=("fwd", "bwd"), default="fwd",
                   help="--format flow: forward (t -> t+1) or backward (t -> t-1) flow")
    p.add_argument("--out", type=Path, required=True, help="output folder: new, empty, or an earlier export (replaced "
                   "whole once the new one is complete)")
    p.add_argument("--tasks", default="depth,normals,semantic,instance",
                   help="comma-separated tasks to export (each sample gives one triple per task, semantic "
                   "one per 14 classes it shows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-item draws (codec, colours, prompt)")
    p.add_argument("--shard-size", type=int, default=1000, help="webdataset: items per tar file")
    p.set_defaults(func=_export)

    p = sub.add_parser("repack", help="copy a dataset with its shards stored another way (--storage)",
                       description="Rewrite the shards of DIR into OUT with another --storage choice; the samples "
                       "and the config stay, nothing is rendered. Run it again to resume.")
    p.add_argument("dir", type=Path, help="dataset folder")
    p.add_argument("--storage", choices=typing.get_args(Storage), required=True, help="storage of the copy")
    p.add_argument("--out", type=Path, required=True, help="folder of the copy (new, or a repack to resume)")
    p.set_defaults(func=_repack)


def _build(args: argparse.Namespace) -> int:
    from rgbify.datasets.build.planner import build
    from rgbify.datasets.build.progress import RichProgress
    from rgbify.datasets.build.work import SampleFailed

    cfg = parse(BuildConfig, values_from(args, BuildConfig), "rgbify build", flags=True)
    log = lambda msg: print(f"rgbify: {msg}", file=sys.stderr)  # noqa: E731 - notices (a repair) even with --quiet
    try:  # SIGTERM stops it as Ctrl-C does (rgbify.cli): finished samples are kept
        stats = build(cfg, progress=RichProgress(enabled=not args.quiet), log=log)
    except SampleFailed as e:  # a scene that fails every retry: say which, keep what is done
        print(f"rgbify: error: {e}; finished samples are kept, run the same command again to retry", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{cfg.out}: {stats.total} samples ({stats.rendered} rendered now, {stats.done_before} kept), "
              f"{stats.rejects} rejected scene draws, {stats.restarts} worker restarts, "
              f"{stats.wall_seconds:.1f} s")
    if not args.no_preview:
        from rgbify.datasets.preview import contact_sheet

        sheet = contact_sheet(cfg.out, cfg.out / "preview.png")
        if not args.quiet:
            print(f"contact sheet: {sheet}")
    return 0


def _repack(args: argparse.Namespace) -> int:
    from rgbify.datasets.storage.repack import repack

    with _reading(args.dir):
        written = repack(args.dir, args.out, args.storage, log=lambda msg: print(msg, file=sys.stderr))
    print(f"{args.out}: {written} shard(s) written, --storage {args.storage}")
    return 0


@contextlib.contextmanager
def _reading(directory: Path) -> Iterator[None]:
    """A dataset folder is about to be read: a shard file given instead, an unreadable manifest or shard become
    one-line UserErrors."""
    from rgbify.datasets.storage.manifest import ManifestError
    from rgbify.datasets.storage.shards import ShardError

    if directory.is_file():
        _single_file(directory)
    try:
        yield
    except (ManifestError, ShardError) as e:
        raise UserError(str(e)) from None


def _verify(args: argparse.Namespace) -> int:
    from rgbify.datasets.storage.verify import verify

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} must be a positive integer")
    with _reading(args.dir):
        rep = verify(args.dir, jobs=args.jobs)
    print(rep.text())
    return 0 if rep.ok else 1


def _single_file(path: Path) -> None:
    """A file was given where a dataset folder is expected: say what it is."""
    from rgbify.datasets.storage.shards import ShardError, open_shard

    try:
        open_shard(path).close()
    except ShardError as e:
        raise UserError(f"{e}; give a dataset folder (with dataset.json)") from None
    raise UserError(f"{path} is a shard file; give the dataset folder that holds dataset.json")


def _preview(args: argparse.Namespace) -> int:
    from rgbify.datasets.preview import contact_sheet
    from rgbify.fileio import check_writable_parent, disk_error

    out = args.out or args.dir / "preview.png"
    with _reading(args.dir):
        if args.n < 1:
            raise UserError(f"--n {args.n} must be a positive integer")
        if out.suffix.lower() != ".png":  # never a dataset.json, a shard or a text file turned into a PNG
            raise UserError(f"--out {out}: a contact sheet is a PNG; give a name ending in .png")
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; give a .png file name")
        check_writable_parent(out, "--out")
        try:
            path = contact_sheet(args.dir, out, n=args.n)
        except OSError as e:
            raise disk_error(e, out) from None
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from rgbify.datasets.export import export
    from rgbify.fileio import disk_error

    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    if args.format == "flow":
        from rgbify.datasets.export import export_clip_flow

        with _reading(args.dir):
            try:
                n = export_clip_flow(args.dir, args.out, "." + args.flow_file, args.direction)
            except OSError as e:
                raise disk_error(e, args.out) from None
        print(f"{args.out}: {n} flow files")
        return 0
    with _reading(args.dir):
        try:
            n = export(args.dir, args.out, fmt=args.format, tasks=tasks, seed=args.seed, shard_size=args.shard_size)
        except OSError as e:  # a full disk: nothing is left in --out (the export is written whole)
            raise disk_error(e, args.out) from None
    print(f"{args.out}: {n} items")
    return 0
