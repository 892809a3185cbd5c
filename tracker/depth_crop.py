"""Where the hand is in a depth image: the reference point of a V2V-PoseNet crop.

V2V-PoseNet voxelizes a cube (e.g. 250 mm) around a reference point, the centre of mass of the
hand's depth points, which its refinement network then corrects. Two ways to find the hand's points:

* **seeded** by 2D joints (e.g. MediaPipe on the registered colour image): the pixels inside the
  joints' bounding box (enlarged) whose depth lies within ``depth_band_mm`` of the median depth
  sampled at the joints;
* **depth only** (no colour, e.g. NYU/ICVL protocols): the hand is the object closest to the
  camera: the pixels from the nearest robust depth (a low percentile) to ``depth_band_mm`` beyond
  it, within ``[near_mm, far_mm]``.

Both return the centre of mass (mm, camera frame) from the Numba kernel
:func:`kernels.depth.depth_center_of_mass`, or None when no hand points are found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.depth import depth_center_of_mass

from .depth_lift import sample_depth
from .types import Intrinsics

__all__ = ["CropConfig", "reference_from_joints", "reference_from_depth"]


@dataclass(frozen=True)
class CropConfig:
    """Settings of the reference-point search.

    Attributes:
        depth_band_mm: depth range of the hand's points (from the nearest / around the median).
        box_margin: the 2D joint box is enlarged by this fraction of its larger side on each side.
        near_mm, far_mm: valid working range of the sensor.
        nearest_percentile: percentile of the valid depths taken as the nearest surface (depth only;
            a low percentile rather than the minimum so single noisy pixels do not count).
        min_points: fewer hand points than this -> no reference point.
    """

    depth_band_mm: float = 150.0
    box_margin: float = 0.2
    near_mm: float = 150.0
    far_mm: float = 1500.0
    nearest_percentile: float = 0.5
    min_points: int = 50


def reference_from_joints(depth: np.ndarray, intr: Intrinsics, joints_2d: np.ndarray,
                          config: CropConfig = CropConfig()) -> np.ndarray | None:
    """Centre of mass (3,) mm of the hand seeded by its 2D joints (px), or None.

    Args:
        depth: ``(H, W)`` uint16 mm registered to the image the joints were found in.
        intr: that image's intrinsics.
        joints_2d: ``(21, 2)`` px (NaN allowed).
    """
    d = sample_depth(depth, joints_2d, 2)
    d = d[np.isfinite(d) & (d >= config.near_mm) & (d <= config.far_mm)]
    uv = joints_2d[np.isfinite(joints_2d).all(1)]
    if d.size == 0 or uv.size == 0:
        return None
    centre = float(np.median(d))
    lo, hi = uv.min(0), uv.max(0)
    pad = config.box_margin * float((hi - lo).max())
    h, w = depth.shape
    c0, r0 = (max(int(np.floor(x - pad)), 0) for x in lo)
    c1, r1 = min(int(np.ceil(hi[0] + pad)) + 1, w), min(int(np.ceil(hi[1] + pad)) + 1, h)
    if c0 >= c1 or r0 >= r1:
        return None
    crop = np.ascontiguousarray(depth[r0:r1, c0:c1])
    band = config.depth_band_mm / 2.0
    com, n = depth_center_of_mass(crop, intr.fx, intr.fy, intr.cx - c0, intr.cy - r0, 1.0,
                                  max(centre - band, config.near_mm), min(centre + band, config.far_mm))
    return None if n < config.min_points else np.asarray(com, dtype=np.float64)


def reference_from_depth(depth: np.ndarray, intr: Intrinsics, config: CropConfig = CropConfig()) -> np.ndarray | None:
    """Centre of mass (3,) mm of the object nearest to the camera (the hand, in the usual
    depth-only protocols), or None when the frame has no reading in range."""
    valid = depth[(depth >= config.near_mm) & (depth <= config.far_mm)]
    if valid.size < config.min_points:
        return None
    nearest = float(np.percentile(valid, config.nearest_percentile))
    com, n = depth_center_of_mass(depth, intr.fx, intr.fy, intr.cx, intr.cy, 1.0, nearest,
                                  min(nearest + config.depth_band_mm, config.far_mm))
    return None if n < config.min_points else np.asarray(com, dtype=np.float64)
