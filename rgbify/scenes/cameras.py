"""Camera profiles: the fields of view (and, for a car-mounted camera, the height) of the datasets our users
compare with, so that a recipe's views look like theirs.

Each profile is a horizontal field of view computed from the dataset's published intrinsics (focal length in
pixels fx at image width W: hfov = 2 atan(W / (2 fx))) and, where the rig fixes it, the camera's height:

* ``nyuv2``: NYU Depth v2's Kinect colour camera, fx = 518.86 px at 640 x 480 (the dataset toolbox's
  camera_params.m; Silberman et al., ECCV 2012): 63.3 degrees.
* ``scannet``: ScanNet's colour camera, fx about 1170 px at 1296 x 968 (the scans' intrinsic_color.txt; Dai et al.,
  CVPR 2017): 58.0 degrees.
* ``kitti``: KITTI's forward colour camera (cam 2), fx = 721.54 px at 1242 x 375 (P_rect_02 of the raw data's
  calib_cam_to_cam.txt), mounted 1.65 m above the road (Geiger et al., IJRR 2013, the sensor set-up): 81.4 degrees.

A recipe names profiles in ``[camera] profiles``; each view draws one (uniformly) and its FOV +- ``profile_jitter_deg``
instead of ``fov_deg``. Only the horizontal FOV is matched: the vertical one follows the recipe's resolution (KITTI's
images are 3.3:1, so a 4:3 render shows more above and below than KITTI does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rgbify.scenes.recipe import CameraConfig


@dataclass(frozen=True)
class Profile:
    hfov_deg: float
    height_m: float | None = None
    """Mounting height above the ground, metres (None: hand-held, the recipe's height_m)."""
    source: str = ""


def _hfov(fx: float, width: float) -> float:
    return round(math.degrees(2.0 * math.atan(width / (2.0 * fx))), 2)


PROFILES: dict[str, Profile] = {
    "nyuv2": Profile(_hfov(518.857901, 640), None, "NYU Depth v2 Kinect colour camera, fx 518.86 px at 640 px"),
    "scannet": Profile(_hfov(1170.19, 1296), None, "ScanNet colour camera, fx about 1170 px at 1296 px"),
    "kitti": Profile(_hfov(721.5377, 1242), 1.65, "KITTI cam 2, fx 721.54 px at 1242 px, 1.65 m above the road"),
}


def draw_fov(rng: np.random.Generator, cc: CameraConfig) -> tuple[float, str]:
    """A horizontal FOV for one view, and the profile it came from ('' for the recipe's fov_deg range)."""
    if cc.profiles:
        name = cc.profiles[int(rng.integers(len(cc.profiles)))]
        return PROFILES[name].hfov_deg + float(rng.uniform(-cc.profile_jitter_deg, cc.profile_jitter_deg)), name
    return float(rng.uniform(*cc.fov_deg)), ""
