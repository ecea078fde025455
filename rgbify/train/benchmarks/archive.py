"""The files of a benchmark root, a folder or a tar file, by relative POSIX path.

Marigold's evaluation reads its depth benchmarks straight out of tar files (``nyu_labeled_extracted.tar``,
``kitti_eigen_split_test.tar``, ...) whose members are named ``./<relative path>``; the same relative paths work
on the extracted folder. ``Archive`` hides the difference: ``files()`` lists relative paths (without ``./``), and
the readers return arrays.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from rgbify.errors import UserError


class Archive:
    """Read-only access to the files under ``root`` (a folder, or a tar file, compressed or not)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._files: list[str] | None = None
        if self.root.is_dir():
            return
        if self.root.is_file() and tarfile.is_tarfile(self.root):
            self._tar = tarfile.open(self.root)
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}
            return
        what = "no such file or folder" if not self.root.exists() else "neither a folder nor a tar file"
        raise UserError(f"--root {root}: {what}; give the benchmark's folder or tar file (docs/evaluation.md)")

    @property
    def is_folder(self) -> bool:
        return self._tar is None

    def files(self) -> list[str]:
        """Relative POSIX paths of every file, sorted."""
        if self._files is None:
            if self._tar is not None:
                self._files = sorted(self._members)
            else:
                self._files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return self._files

    def exists(self, rel: str) -> bool:
        if self._tar is not None:
            return rel in self._members
        return (self.root / rel).is_file()

    def read_bytes(self, rel: str) -> bytes:
        if not self.exists(rel):
            raise UserError(
                f"{self.root}: no file {rel}; is --root the benchmark's folder or tar (docs/evaluation.md)?"
            )
        if self._tar is not None:
            f = self._tar.extractfile(self._members[rel])
            assert f is not None  # a regular file
            return f.read()
        return (self.root / rel).read_bytes()

    def image(self, rel: str) -> Image.Image:
        try:
            img = Image.open(io.BytesIO(self.read_bytes(rel)))
            img.load()
        except (OSError, ValueError) as e:
            raise UserError(f"{self.root}: cannot read image {rel}: {e}") from e
        return img

    def rgb(self, rel: str) -> np.ndarray:
        """uint8 (H, W, 3)."""
        return np.asarray(self.image(rel).convert("RGB"))

    def png16(self, rel: str) -> np.ndarray:
        """The integer values of a 16-bit PNG (a depth map), as int64 (H, W)."""
        img = self.image(rel)
        arr = np.asarray(img)
        if img.mode not in ("I;16", "I;16B", "I") or arr.ndim != 2:
            raise UserError(f"{self.root}: depth {rel} is a {img.mode} image; a 16-bit single-channel PNG is expected")
        return arr.astype(np.int64)

    def npy(self, rel: str) -> np.ndarray:
        try:
            return np.load(io.BytesIO(self.read_bytes(rel)), allow_pickle=False)
        except ValueError as e:
            raise UserError(f"{self.root}: cannot read {rel} as a .npy array: {e}") from e

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
