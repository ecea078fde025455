"""The student's batches: pseudo-labels mixed with rendered ground truth at ``gt_ratio``.

A batch is a pure function of (seed, step): each of its items comes from the ground truth with probability
``gt_ratio`` (else from the pseudo-labels), its sample is drawn uniformly from that source, and it is flipped
left-right with probability 1/2 (the normals' x negated). So a resumed run sees exactly the batches the
uninterrupted one would. Images are resized (bicubic) to the student's square resolution, labels nearest.
Ground-truth labels are valid where something was hit and the pixel is not an edge (docs/conventions.md);
ground-truth class indices are mapped onto the student's class table by name (other classes become 0, "none of
them", as in the teacher's answers).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from rgbify.datasets.loading.split import is_val_index
from rgbify.datasets.storage.reader import DatasetReader
from rgbify.errors import UserError

VAL_FRACTION = 0.05
"""The ground truth's val split, as rgbify.datasets.TaskDataset draws it (by sample index)."""


def resize_image(rgb: np.ndarray, res: int) -> np.ndarray:
    if rgb.shape[:2] == (res, res):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((res, res), Image.BICUBIC))


def resize_nearest(x: np.ndarray, res: int) -> np.ndarray:
    """(H, W[, C]) -> (res, res[, C]) by nearest neighbour (pixel centres)."""
    h, w = x.shape[:2]
    if (h, w) == (res, res):
        return x
    rows = ((np.arange(res) + 0.5) * h / res).astype(np.int64)
    cols = ((np.arange(res) + 0.5) * w / res).astype(np.int64)
    return x[rows][:, cols]


def gt_indices(reader: DatasetReader, split: str) -> list[int]:
    idx = reader.indices
    if split == "all":
        return idx
    return [i for i in idx if is_val_index(i, VAL_FRACTION) == (split == "val")]


class Source:
    """One dataset (pseudo-labels or rendered ground truth) read as the student's items."""

    def __init__(self, directory: str, classes: tuple[str, ...], tasks: tuple[str, ...], split: str = "train"):
        self.reader = DatasetReader(directory)
        m = self.reader.manifest
        self.pseudo = isinstance(m.get("pseudo_labels"), dict)
        self.labelled = tuple(m["pseudo_labels"]["tasks"]) if self.pseudo else ("depth", "normals", "semantic")
        self.indices = self.reader.indices if self.pseudo else gt_indices(self.reader, split)
        if not self.indices:
            raise UserError(f"{directory}: no samples in its {split} split")
        self.tasks = tasks
        theirs = list(m["classes"])
        lut = np.zeros(len(theirs) + 1, np.int64)
        for j, name in enumerate(theirs):
            lut[j + 1] = classes.index(name) + 1 if name in classes else 0
        self.lut = lut

    def __len__(self) -> int:
        return len(self.indices)

    def item(self, k: int, res: int) -> dict[str, np.ndarray]:
        """Item k: image uint8 (res, res, 3), depth float32 (NaN invalid), normals (0 invalid), semantic int64
        (-1 invalid)."""
        s = self.reader.read(self.indices[k], ("rgb", "depth", "normals", "semantic", "edge"))
        invalid = s["edge"].astype(bool)
        depth = np.where(np.isfinite(s["depth"]) & (s["depth"] > 0) & ~invalid, s["depth"], np.nan)
        normals = np.where(invalid[..., None], 0.0, s["normals"])
        sem = np.where(invalid, -1, self.lut[np.clip(s["semantic"], 0, len(self.lut) - 1)])
        if "semantic" not in self.labelled:
            sem = np.full_like(sem, -1)
        return {
            "image": resize_image(s["rgb"], res),
            "depth": resize_nearest(depth.astype(np.float32), res),
            "normals": resize_nearest(normals.astype(np.float32), res),
            "semantic": resize_nearest(sem.astype(np.int64), res),
        }


class MixedBatches:
    """Batches from the pseudo-labels and (optionally) rendered ground truth, a pure function of (seed, step)."""

    def __init__(
        self, pseudo: Source | None, gt: Source | None, gt_ratio: float, resolution: int, batch_size: int, seed: int
    ):
        if pseudo is None and gt is None:
            raise ValueError("no data")
        self.pseudo, self.gt = pseudo, gt
        self.gt_ratio = gt_ratio if pseudo is not None and gt is not None else (1.0 if pseudo is None else 0.0)
        self.res, self.batch_size, self.seed = resolution, batch_size, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, 77])
        items = []
        for _ in range(self.batch_size):
            src = self.gt if rng.random() < self.gt_ratio else self.pseudo
            it = src.item(int(rng.integers(len(src))), self.res)
            if rng.random() < 0.5:
                it = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in it.items()}
                it["normals"] = it["normals"] * np.array([-1.0, 1.0, 1.0], np.float32)
            it["from_gt"] = src is self.gt
            items.append(it)
        return collate(items)


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """(B, 3, R, R) float image in [-1, 1], depth (B, R, R), normals (B, 3, R, R), semantic (B, R, R) long."""
    img = np.stack([it["image"] for it in items]).astype(np.float32) / 127.5 - 1.0
    return {
        "image": torch.from_numpy(img).permute(0, 3, 1, 2).contiguous(),
        "depth": torch.from_numpy(np.stack([it["depth"] for it in items])),
        "normals": torch.from_numpy(np.stack([it["normals"] for it in items])).permute(0, 3, 1, 2).contiguous(),
        "semantic": torch.from_numpy(np.stack([it["semantic"] for it in items])),
        "from_gt": torch.tensor([bool(it.get("from_gt", False)) for it in items]),
    }
