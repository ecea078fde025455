"""What each standard benchmark is: where its files are, its split, ranges, crops, frames and classes.

Facts, not code, taken from the evaluation code that published tables come from:
- depth: Marigold's evaluation (prs-eth/Marigold v1-1, ``src/dataset/*_dataset.py``, ``config/dataset_depth``,
  ``script/depth/eval.py``), which Lotus, GeoWizard, DepthFM and others reuse for their depth tables;
- normals: Marigold's normals evaluation set (``config/dataset_normals``: ``*_img.png`` + ``*_normal.npy``), the
  same images DSINE and Lotus score (DSINE pools errors over pixels, Marigold averages per image);
- semantic: Cityscapes' own release (``leftImg8bit``/``gtFine``, cityscapesScripts' label table) and NYUv2's own
  release (``nyu_depth_v2_labeled.mat``, ``splits.mat``) with Gupta et al.'s 40-class mapping (``classMapping40.mat``).

``split_sha256`` is the first 16 hex digits of the SHA-256 of the sorted image paths (joined by newlines) of the
reference list (Marigold's ``data_split`` files); an evaluation reports whether the items it found match it.
docs/evaluation.md is the readable version of this table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rgbify.errors import UserError

TASKS = ("depth", "normals", "semantic")

# sign of each axis of a normals frame relative to the OpenCV camera frame (x right, y down, z forward)
NORMALS_FRAMES = {
    "opencv": (1.0, 1.0, 1.0),  # rgbify's stored normals
    "rub": (1.0, -1.0, -1.0),  # x right, y up, z toward the viewer: Hypersim's camera frame, Marigold's normals
    "lub": (-1.0, -1.0, -1.0),  # x left, y up, z toward the viewer: DSINE's and Lotus's normals (= -OpenCV)
}

CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# cityscapesScripts labels.py: labelId -> trainId for the 19 evaluated classes; every other labelId is 255 (ignored)
CITYSCAPES_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}

NYU40_CLASSES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor mat",
    "clothes",
    "ceiling",
    "books",
    "refridgerator",
    "television",
    "paper",
    "towel",
    "shower curtain",
    "box",
    "whiteboard",
    "person",
    "night stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its files (``rgb_pattern`` matches an image's relative path; ``gt_template`` and
    ``mask_template`` are ``re`` replacement templates giving its ground truth and mask paths), its split and its
    protocol. Depth ranges are (min, max) in metres, both exclusive, as Marigold's ``_get_valid_mask``."""

    name: str
    task: str
    title: str
    root: str  # what --root points at
    standard_images: int
    rgb_pattern: str = ""
    gt_template: str = ""
    mask_template: str | None = None
    split_sha256: str | None = None
    split_source: str = ""
    depth_format: str = ""  # "png16" (integer / png_scale metres), "eth3d-raw" (float32 metres), "npy" (metres)
    png_scale: float | None = None  # a 16-bit PNG value divided by this gives metres
    depth_range_m: tuple[float, float] = (0.0, math.inf)
    range_in_mask: bool = True  # False: the valid mask is the released mask alone (DIODE in Marigold's code)
    crops: tuple[str, ...] = ("none",)  # valid-mask crops; the first is the default
    kb_crop: bool = False  # KITTI: image and depth cut to the 352 x 1216 benchmark size first
    alignment_max_res: int | None = None  # least squares fitted on a nearest-neighbour copy (protocol._nearest_copy)
    marigold_processing_res: int | None = None  # Marigold's inference resolution (0: native); docs only
    marigold_pred_name: str = ""  # how Marigold's infer.py names a prediction file: "rgb_id" or "id" (get_pred_name)
    normals_frame: str = ""  # the frame of the ground-truth normal files (NORMALS_FRAMES)
    labels: str = ""  # "cityscapes" or "nyu40"
    class_names: tuple[str, ...] = ()
    class_ids: tuple[int, ...] = ()
    ignore_index: int | None = None
    comparable: str = ""  # which published numbers these are comparable with

    @property
    def min_depth(self) -> float:
        return self.depth_range_m[0]

    @property
    def max_depth(self) -> float:
        return self.depth_range_m[1]


_DIODE = dict(
    task="depth",
    root="Marigold's diode/diode_val.tar (DIODE's val release) or its folder",
    gt_template=r"\1/\2_depth.npy",
    mask_template=r"\1/\2_depth_mask.npy",
    depth_format="npy",
    depth_range_m=(0.6, 350.0),
    range_in_mask=False,
    marigold_processing_res=640,
    marigold_pred_name="id",
    split_source="Marigold data_split/diode_depth",
    comparable="Marigold's DIODE column (all 771 val images) and tables that reuse its eval code",
)

_NORMALS = dict(
    task="normals",
    normals_frame="rub",
    split_source="Marigold data_split/*_normals",
    comparable="per image: Marigold (normals); pooled: DSINE and Lotus tables (the same images and "
    "ground truth, released by DSINE; see docs/evaluation.md for the caveats)",
)

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            name="nyuv2",
            task="depth",
            title="NYUv2 test (Eigen split, 654 images)",
            root="Marigold's nyuv2/nyu_labeled_extracted.tar or its folder",
            standard_images=654,
            rgb_pattern=r"^(test/.+)/rgb_(\d+)\.png$",
            gt_template=r"\1/depth_\2.png",
            split_sha256="507e5cc85ce4c595",
            split_source="Marigold data_split/nyu_depth/labeled/filename_list_test.txt",
            depth_format="png16",
            png_scale=1000.0,
            depth_range_m=(1e-3, 10.0),
            crops=("eigen", "none"),
            marigold_processing_res=0,
            marigold_pred_name="rgb_id",
            comparable="Marigold, Lotus, GeoWizard, DepthFM, E2E-FT NYUv2 columns (affine-invariant, least squares)",
        ),
        Benchmark(
            name="kitti",
            task="depth",
            title="KITTI Eigen test (652 images with ground truth)",
            root="Marigold's kitti/kitti_eigen_split_test.tar or its folder",
            standard_images=652,
            rgb_pattern=r"^(\d{4}_\d\d_\d\d)/(\d{4}_\d\d_\d\d_drive_\d{4}_sync)/image_02/data/(\d+)\.png$",
            gt_template=r"\2/proj_depth/groundtruth/image_02/\3.png",
            split_sha256="f9b578d800ba9280",
            split_source="Marigold data_split/kitti_depth/eigen_test_files_with_gt.txt (lines with ground truth)",
            depth_format="png16",
            png_scale=256.0,
            depth_range_m=(1e-5, 80.0),
            crops=("eigen", "garg", "none"),
            kb_crop=True,
            marigold_processing_res=0,
            marigold_pred_name="id",
            comparable="Marigold, Lotus and others' KITTI columns (KB crop, Eigen valid crop, 1e-5..80 m)",
        ),
        Benchmark(
            name="eth3d",
            task="depth",
            title="ETH3D high-res multi-view, DSLR images (454)",
            root="Marigold's eth3d/eth3d.tar or its folder",
            standard_images=454,
            rgb_pattern=r"^rgb/([^/]+)/images/dslr_images/([^/]+\.JPG)$",
            gt_template=r"depth/\1_dslr_depth/\1/ground_truth_depth/dslr_images/\2",
            split_sha256="2eaec364cf5eea08",
            split_source="Marigold data_split/eth3d_depth/eth3d_filename_list.txt",
            depth_format="eth3d-raw",
            depth_range_m=(1e-5, math.inf),
            alignment_max_res=1024,
            marigold_processing_res=756,
            marigold_pred_name="id",
            comparable="Marigold's ETH3D column (least squares fitted on its 1024 px copy)",
        ),
        Benchmark(
            name="scannet",
            task="depth",
            title="ScanNet val, Marigold's 800 sampled images",
            root="Marigold's scannet/scannet_val_sampled_800_1.tar or its folder",
            standard_images=800,
            rgb_pattern=r"^(scene\d{4}_\d\d)/color/(\d+)\.jpg$",
            gt_template=r"\1/depth/\2.png",
            split_sha256="4ee072e18615bc43",
            split_source="Marigold data_split/scannet_depth/scannet_val_sampled_list_800_1.txt",
            depth_format="png16",
            png_scale=1000.0,
            depth_range_m=(1e-3, 10.0),
            marigold_processing_res=0,
            marigold_pred_name="id",
            comparable="Marigold, Lotus and others' ScanNet columns (this 800-image sample only)",
        ),
        Benchmark(
            name="diode",
            title="DIODE val, indoor and outdoor (771 images)",
            standard_images=771,
            rgb_pattern=r"^((?:indoors|outdoor)/scene_\d+/scan_\d+)/([^/]+)\.png$",
            split_sha256="8c1093e7b2b637f1",
            **_DIODE,
        ),
        Benchmark(
            name="diode-indoor",
            title="DIODE val, indoor (325 images)",
            standard_images=325,
            rgb_pattern=r"^(indoors/scene_\d+/scan_\d+)/([^/]+)\.png$",
            split_sha256="49bf3e099ca435fd",
            **{**_DIODE, "comparable": "DIODE-indoor columns computed with Marigold's protocol"},
        ),
        Benchmark(
            name="diode-outdoor",
            title="DIODE val, outdoor (446 images)",
            standard_images=446,
            rgb_pattern=r"^(outdoor/scene_\d+/scan_\d+)/([^/]+)\.png$",
            split_sha256="d99d1bf99926ce62",
            **{**_DIODE, "comparable": "DIODE-outdoor columns computed with Marigold's protocol"},
        ),
        Benchmark(
            name="nyuv2-normals",
            title="NYUv2 test normals (654 images, GeoNet ground truth)",
            root="Marigold's normals set nyuv2/test (folder)",
            standard_images=654,
            rgb_pattern=r"^(\d+)_img\.png$",
            gt_template=r"\1_normal.npy",
            split_sha256="c486bac88b02d52f",
            **_NORMALS,
        ),
        Benchmark(
            name="scannet-normals",
            title="ScanNet test normals (300 images, FrameNet ground truth)",
            root="Marigold's normals set scannet (folder)",
            standard_images=300,
            rgb_pattern=r"^(scene\d{4}_\d\d)/(\d+)_img\.png$",
            gt_template=r"\1/\2_normal.npy",
            split_sha256="00119ce6edc0739b",
            **_NORMALS,
        ),
        Benchmark(
            name="ibims-normals",
            title="iBims-1 normals (100 images, DSINE's plane-fitted ground truth)",
            root="Marigold's normals set ibims/ibims (folder)",
            standard_images=100,
            rgb_pattern=r"^([^/]+)_img\.png$",
            gt_template=r"\1_normal.npy",
            split_sha256="053f866922e23e68",
            **_NORMALS,
        ),
        Benchmark(
            name="diode-normals",
            title="DIODE val normals (771 images)",
            root="Marigold's normals set diode/val (folder)",
            standard_images=771,
            rgb_pattern=r"^((?:indoors|outdoor)/scene_\d+/scan_\d+)/([^/]+)\.png$",
            gt_template=r"\1/\2_normal.npy",
            split_sha256="8c1093e7b2b637f1",
            **_NORMALS,
        ),
        Benchmark(
            name="oasis-normals",
            title="OASIS val normals (Marigold's 9,999 images)",
            root="Marigold's normals set oasis/val (folder)",
            standard_images=9999,
            rgb_pattern=r"^([^/]+)_img\.png$",
            gt_template=r"\1_normal.npy",
            split_sha256="b9a33c14a1c4b274",
            **_NORMALS,
        ),
        Benchmark(
            name="cityscapes",
            task="semantic",
            title="Cityscapes val (500 images, 19 classes)",
            root="the Cityscapes release folder holding leftImg8bit/ and gtFine/",
            standard_images=500,
            rgb_pattern=r"^leftImg8bit/val/([^/]+)/([^/]+)_leftImg8bit\.png$",
            gt_template=r"gtFine/val/\1/\2_gtFine_labelIds.png",
            labels="cityscapes",
            class_names=CITYSCAPES_CLASSES,
            class_ids=tuple(range(19)),
            ignore_index=255,
            split_source="every image of leftImg8bit/val",
            comparable="19-class Cityscapes val mIoU tables (single scale, full resolution)",
        ),
        Benchmark(
            name="nyuv2-seg40",
            task="semantic",
            title="NYUv2 test, 40 classes (654 images)",
            root="a folder holding nyu_depth_v2_labeled.mat, splits.mat and classMapping40.mat",
            standard_images=654,
            labels="nyu40",
            class_names=NYU40_CLASSES,
            class_ids=tuple(range(1, 41)),
            ignore_index=0,
            split_source="splits.mat testNdxs",
            comparable="NYUv2 40-class mIoU tables (654 test images, 640 x 480, label 0 ignored)",
        ),
    ]
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise UserError(f"--benchmark {name!r} is not one rgbify knows; use one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
