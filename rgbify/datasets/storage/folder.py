"""The dataset folder: where each file lives, making a folder ready to write a dataset into, and the writers' lock.

    DIR/dataset.json                      the manifest (manifest.py)
    DIR/shards/shard-KKKKK.h5             a published shard (shards.py)
    DIR/shards/shard-KKKKK.h5.part-TOKEN  a shard written but not yet published (checked, then renamed)
    DIR/.work/shard-KKKKK/IIIIIIIII.npz   a finished sample of an unpublished shard (shards.write_sample_file)
    DIR/.lock                             held by the one process writing the dataset (build or repack)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Container, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rgbify.datasets.storage.manifest import MANIFEST_NAME
from rgbify.errors import UserError

SHARDS_DIR = "shards"
WORK_DIR = ".work"
LOCK_NAME = ".lock"
PART = ".part-"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.h5"


def shard_file(k: int) -> str:
    """Shard k's path relative to the dataset folder, as dataset.json lists it."""
    return f"{SHARDS_DIR}/{shard_name(k)}"


def work_dir(out: Path, k: int) -> Path:
    """The folder of shard k's finished-sample files while the shard is unpublished."""
    return out / WORK_DIR / f"shard-{k:05d}"


def work_file(out: Path, k: int, i: int) -> Path:
    """The finished-sample file of sample i (in shard k)."""
    return work_dir(out, k) / f"{i:09d}.npz"


def finished(out: Path, k: int, samples: Container[int]) -> set[int]:
    """Those of ``samples`` (indices in shard k) whose finished-sample files exist."""
    wdir = work_dir(out, k)
    if not wdir.is_dir():
        return set()
    return {int(p.stem) for p in wdir.iterdir() if p.suffix == ".npz" and p.stem.isdigit() and int(p.stem) in samples}


def remove_unpublished(out: Path) -> None:
    """Files a killed writer left half-written (``*.tmp``: dataset.json, shards and finished-sample files), and
    shard files that were written but never published (``*.part-*``: a killed build, a dead or duplicate Ray task
    attempt). Called under the writers' lock."""
    for pattern in (f"{MANIFEST_NAME}.*tmp", f"{SHARDS_DIR}/*.tmp", f"{SHARDS_DIR}/*{PART}*", f"{WORK_DIR}/*/*.tmp"):
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)


def prepare(out: Path) -> None:
    """Create ``out`` if needed and check it can hold a dataset: a writable folder, empty or holding one already.
    Raises UserError naming the folder and the fix."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the folder ({e.strerror}); choose a writable place") from None
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    probe = out / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"--out {out} is not writable ({e.strerror}); choose a writable folder") from None
    if not (out / MANIFEST_NAME).exists():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (LOCK_NAME, WORK_DIR, SHARDS_DIR)
                         and not p.name.startswith(MANIFEST_NAME + "."))  # a kill while dataset.json was written
        if foreign:
            raise UserError(f"--out {out} is not empty and is not an rgbify dataset (it holds {foreign[:3]}); "
                            "choose a new or empty folder")


def remove_if_empty(out: Path) -> None:
    """Remove ``out`` if it holds nothing but the lock and empty shards/ and .work/ folders: what a build that
    created the folder and was refused (or stopped) before writing dataset.json leaves."""
    try:
        entries = {p.name: p for p in out.iterdir()}
        if set(entries) - {LOCK_NAME, SHARDS_DIR, WORK_DIR}:
            return
        for name in (SHARDS_DIR, WORK_DIR):
            if name in entries and (not entries[name].is_dir() or any(entries[name].iterdir())):
                return
        for name in (SHARDS_DIR, WORK_DIR):
            if name in entries:
                entries[name].rmdir()
        (out / LOCK_NAME).unlink(missing_ok=True)
        out.rmdir()
    except OSError:
        pass  # something appeared meanwhile, or it cannot be removed: leave it


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (an flock: released by the kernel if the process dies) while writing the dataset; a
    second writer is refused with a UserError instead of waiting."""
    lock = FileLock(out / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"--out {out}: another rgbify process (build or repack) is writing this dataset; wait for "
                        "it") from None
    try:
        yield
    finally:
        lock.release()


def writer_active(out: Path) -> bool:
    """True while a build or repack holds ``out/.lock``; tested without creating or writing anything (verify may
    read a dataset on a read-only mount)."""
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing the descriptor releases a lock taken here
    return False
