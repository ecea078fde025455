"""Items and samples of a benchmark, read from its released layout (catalog.py says which).

- ``find_items(bench, archive, split_file=None)``: the items, from the split list file (Marigold's format: one item
  per line, whitespace-separated relative paths, image first, ground truth second, DIODE's mask third) or, without
  one, by matching every file of the root against the benchmark's image pattern; an image without its ground-truth
  file is left out (KITTI's Eigen list has 45 such images).
- ``load_sample(bench, archive, item, depth_scale)``: the image and its ground truth as arrays (``Sample``).
- ``split_fingerprint(items)``: compared with the catalog's to tell whether the split is the reference one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbify.errors import UserError
from rgbify.train.benchmarks.archive import Archive
from rgbify.train.benchmarks.catalog import CITYSCAPES_TRAIN_IDS, Benchmark

KB_CROP_HW = (352, 1216)  # KITTI benchmark size: the bottom rows, centred columns
NYU_MAT, NYU_SPLITS, NYU_MAPPING = "nyu_depth_v2_labeled.mat", "splits.mat", "classMapping40.mat"


@dataclass(frozen=True)
class Item:
    """Relative paths of one item; ``rgb`` is also its name (and, with ``.npy``, its predictions file name)."""

    rgb: str
    gt: str
    mask: str | None = None


@dataclass
class Sample:
    """rgb: uint8 (H, W, 3) (KITTI: after the benchmark crop); gt: depth float64 (H, W) metres, 0 where the file
    has no value | normals float64 (H, W, 3) in the benchmark's frame, 0 where none | labels int64 (H, W) in the
    benchmark's label space; mask: the released validity mask (DIODE), else None."""

    rgb: np.ndarray
    gt: np.ndarray
    mask: np.ndarray | None = None


def split_fingerprint(items: list[Item]) -> str:
    return hashlib.sha256("\n".join(sorted(i.rgb for i in items)).encode()).hexdigest()[:16]


def find_items(bench: Benchmark, archive: Archive, split_file: str | None = None) -> list[Item]:
    if bench.labels == "nyu40":
        if split_file:
            raise UserError("--split-file does not apply to nyuv2-seg40 (its split is splits.mat's testNdxs)")
        return _nyu40_items(archive)
    if split_file:
        return _items_from_list(bench, archive, split_file)
    pattern = re.compile(bench.rgb_pattern)
    items = []
    for rel in archive.files():
        m = pattern.match(rel)
        if m is None:
            continue
        item = Item(rel, m.expand(bench.gt_template), m.expand(bench.mask_template) if bench.mask_template else None)
        if archive.exists(item.gt) and (item.mask is None or archive.exists(item.mask)):
            items.append(item)
    if not items:
        raise UserError(
            f"--root {archive.root}: no {bench.name} image with its ground truth found; expected "
            f"{bench.root} (files matching {bench.rgb_pattern}; docs/evaluation.md)"
        )
    return items


def _items_from_list(bench: Benchmark, archive: Archive, split_file: str) -> list[Item]:
    path = Path(split_file)
    if not path.is_file():
        raise UserError(f"--split-file {split_file}: no such file")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) < 2 or (bench.mask_template and len(cols) < 3):
            need = "image, depth and mask paths" if bench.mask_template else "an image path and its ground truth"
            raise UserError(f"--split-file {split_file} line {n}: {line!r} needs {need}")
        if cols[1] == "None":  # Marigold's KITTI list: an image without ground truth
            continue
        item = Item(cols[0], cols[1], cols[2] if bench.mask_template else None)
        for rel in (item.rgb, item.gt, item.mask):
            if rel is not None and not archive.exists(rel):
                raise UserError(f"--split-file {split_file} line {n}: {rel} is not in --root {archive.root}")
        items.append(item)
    if not items:
        raise UserError(f"--split-file {split_file}: no items")
    return items


def load_sample(bench: Benchmark, archive: Archive, item: Item, depth_scale: float | None = None) -> Sample:
    if bench.labels == "nyu40":
        return _nyu40_sample(archive, item)
    rgb = archive.rgb(item.rgb)
    if bench.task == "depth":
        gt, mask = _depth(bench, archive, item, rgb.shape[:2], depth_scale), None
        if item.mask is not None:
            mask = archive.npy(item.mask).squeeze().astype(bool)
        if bench.kb_crop:
            rgb, gt = kb_crop(rgb, item.rgb), kb_crop(gt, item.gt)
    elif bench.task == "normals":
        gt, mask = archive.npy(item.gt).astype(np.float64), None
        if gt.ndim != 3 or gt.shape[-1] != 3:
            raise UserError(f"{archive.root}: normals {item.gt} have shape {gt.shape}; (H, W, 3) is expected")
    else:
        gt, mask = _labels(bench, archive, item), None
    for name, arr in (("ground truth", gt), ("mask", mask)):
        if arr is not None and arr.shape[:2] != rgb.shape[:2]:
            raise UserError(
                f"{archive.root}: {name} of {item.rgb} is {arr.shape[1]}x{arr.shape[0]} but the image "
                f"{rgb.shape[1]}x{rgb.shape[0]}; the files do not belong together"
            )
    return Sample(rgb, gt, mask)


def _depth(bench: Benchmark, archive: Archive, item: Item, hw: tuple[int, int], depth_scale: float | None):
    if bench.depth_format == "png16":
        return archive.png16(item.gt) / float(depth_scale or bench.png_scale)
    if bench.depth_format == "npy":
        return archive.npy(item.gt).squeeze().astype(np.float64)
    # ETH3D: raw little-endian float32 values of an image of the RGB's size, no header; inf = no value
    data = archive.read_bytes(item.gt)
    if len(data) != 4 * hw[0] * hw[1]:
        raise UserError(
            f"{archive.root}: {item.gt} holds {len(data)} bytes, not the {4 * hw[0] * hw[1]} of a float32 "
            f"{hw[1]}x{hw[0]} depth map for its image"
        )
    d = np.frombuffer(data, dtype="<f4").astype(np.float64).reshape(hw)
    d[np.isinf(d)] = 0.0
    return d


def kb_crop(x: np.ndarray, name: str) -> np.ndarray:
    """KITTI's benchmark crop (as Marigold's ``kitti_benchmark_crop``): the bottom 352 rows, 1216 centred columns."""
    h, w = x.shape[:2]
    ch, cw = KB_CROP_HW
    if h < ch or w < cw:
        raise UserError(f"KITTI image {name} is {w}x{h}, smaller than the {cw}x{ch} benchmark crop")
    top, left = h - ch, int((w - cw) / 2)
    return x[top : top + ch, left : left + cw]


def _labels(bench: Benchmark, archive: Archive, item: Item) -> np.ndarray:
    ids = np.asarray(archive.image(item.gt))
    if ids.ndim != 2:
        raise UserError(f"{archive.root}: {item.gt} is not a single-channel label image")
    lut = np.full(256, 255, np.int64)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    if ids.max() > 255:
        raise UserError(f"{archive.root}: {item.gt} has label id {ids.max()}; Cityscapes labelIds are 0..33")
    return lut[ids.astype(np.int64)]


# NYUv2's own release: the labeled .mat is HDF5 (MATLAB v7.3), arrays stored transposed: images (N, 3, W, H),
# labels (N, W, H) with 0 = unlabeled and 1..894 indices of its class names; splits.mat's testNdxs are 1-based;
# classMapping40.mat's mapClass maps those 894 classes to the 40 of Gupta et al.


def _nyu40_items(archive: Archive) -> list[Item]:
    import scipy.io

    if not archive.is_folder:
        raise UserError("nyuv2-seg40 reads a folder (the .mat files are read in place); give the folder as --root")
    missing = [f for f in (NYU_MAT, NYU_SPLITS, NYU_MAPPING) if not archive.exists(f)]
    if missing:
        raise UserError(
            f"--root {archive.root}: no {', '.join(missing)}; nyuv2-seg40 needs NYUv2's "
            f"{NYU_MAT} and {NYU_SPLITS} and Gupta et al.'s {NYU_MAPPING} in one folder"
        )
    test = scipy.io.loadmat(str(archive.root / NYU_SPLITS))["testNdxs"].ravel()
    return [Item(f"{int(i):04d}", f"{int(i):04d}") for i in test]


def _nyu40_sample(archive: Archive, item: Item) -> Sample:
    import h5py
    import scipy.io

    mapping = scipy.io.loadmat(str(archive.root / NYU_MAPPING))["mapClass"].ravel().astype(np.int64)
    lut = np.concatenate([[0], mapping])  # label 0 (unlabeled) stays 0
    i = int(item.rgb) - 1
    with h5py.File(archive.root / NYU_MAT, "r") as f:
        if not 0 <= i < f["labels"].shape[0]:
            raise UserError(f"{NYU_SPLITS} names image {i + 1} but {NYU_MAT} holds {f['labels'].shape[0]}")
        rgb = np.ascontiguousarray(np.asarray(f["images"][i]).transpose(2, 1, 0)).astype(np.uint8)
        labels = np.asarray(f["labels"][i]).T.astype(np.int64)
    if labels.max() >= len(lut):
        raise UserError(f"{NYU_MAT}: image {i + 1} has label {labels.max()} but {NYU_MAPPING} maps {len(lut) - 1}")
    return Sample(rgb, lut[labels])
