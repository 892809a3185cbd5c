"""Where the hand is in a depth image: the reference point of a V2V-PoseNet crop.

V2V-PoseNet voxelizes a cube (e.g. 250 mm) around a reference point, the centre of mass of the
hand's depth points, which its refinement network then corrects. Two ways to find the hand's points:

* **seeded** by 2D joints (e.g. MediaPipe on the registered colour image): the pixels inside the
  joints' bounding box (enlarged) whose depth lies within ``depth_band_mm`` of the median depth
  sampled at the joints;
* **depth only** (no colour, e.g. NYU/ICVL protocols): the hand is the object closest to the
  camera: the pixels from the nearest robust depth (a low percentile) to ``depth_band_mm`` beyond
  it, within ``[near_mm, far_mm]``.

* **seeded by a 3D point** (:func:`hand_reference_point`; a lifted detection, the previous
  frame's hand, or the true joints' mean when training V2V-PoseNet): the readings in the pixel box
  of a small cube around the point, iterated.

All use the Numba kernel :func:`kernels.depth.depth_center_of_mass` for the centre of mass (mm,
camera frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.depth import depth_center_of_mass
from kernels.voxel import cube_pixel_bbox

from tracker.core.structures import Intrinsics

__all__ = ["sample_depth", "CropConfig", "reference_from_joints", "reference_from_depth", "hand_reference_point", "intrinsics_of"]


def sample_depth(depth: np.ndarray, uv: np.ndarray, window_px: int) -> np.ndarray:
    """Median of the valid (non-zero) depth readings around each pixel position.

    Args:
        depth: ``(H, W)`` uint16 mm, 0 = no reading.
        uv: ``(N, 2)`` pixel positions (continuous; pixel ``(c, r)`` spans ``[c, c+1) x [r, r+1)``).
        window_px: half-size of the window (0 = the pixel itself).

    Returns:
        ``(N,)`` float64 mm, NaN where the window holds no reading or lies outside the image.
    """
    h, w = depth.shape
    out = np.full(len(uv), np.nan)
    for i, (u, v) in enumerate(np.asarray(uv, dtype=np.float64)):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        c, r = int(np.floor(u)), int(np.floor(v))
        if not (0 <= c < w and 0 <= r < h):
            continue
        patch = depth[max(r - window_px, 0) : r + window_px + 1, max(c - window_px, 0) : c + window_px + 1]
        valid = patch[patch > 0]
        if valid.size:
            out[i] = float(np.median(valid))
    return out


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


def intrinsics_of(K: np.ndarray) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` of a 3x3 camera matrix (pixels, pixel centre at ``col + 0.5``)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be a 3x3 camera matrix, got shape {K.shape}")
    return float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])


def hand_reference_point(depth: np.ndarray, K: np.ndarray, seed_mm: np.ndarray, region_mm: float = 130.0,
                         iterations: int = 1, depth_scale: float = 1.0, min_pixels: int = 20
                         ) -> tuple[np.ndarray, int]:
    """Depth centre of mass of the hand region around a seed point (the paper's reference point).

    The hand region is the depth readings inside the pixel rectangle onto which the cube of
    ``region_mm`` centred at the current estimate projects, with ``|Z - z_est| <= region_mm / 2``;
    the estimate starts at ``seed_mm`` (a detector's guess: a 2D box centre lifted with the
    depth, the wrist of an RGB detector, the previous frame's hand) and each iteration moves it to
    the centre of mass of its region (:func:`kernels.depth_center_of_mass` on the crop).

    The region is smaller than V2V-PoseNet's cube on purpose: a 250 mm region around the hand
    centre takes in the forearm, which drags the centre of mass 60 mm (mean) off the hand centre on
    the synthetic data; 130 mm and one step: 27 mm (seed jittered by 10 mm). More iterations
    drift further down the forearm.

    Args:
        depth: ``(H, W)`` uint16 depth; 0 = no reading.
        K: ``(3, 3)`` intrinsics of the depth image.
        seed_mm: ``(3,)`` starting point, mm, camera frame.
        region_mm: edge of the region's cube, mm.
        iterations: centre-of-mass steps (>= 1).
        depth_scale: mm per depth unit.
        min_pixels: fewer readings than this in the region: no reference point.

    Returns:
        ``(ref, count)``: ``(3,)`` float64 mm (NaN when the seed is not finite or the region holds
        fewer than ``min_pixels`` readings) and the readings of the last region.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    fx, fy, cx, cy = intrinsics_of(K)
    est = np.asarray(seed_mm, dtype=np.float64).reshape(3)
    nan = np.full(3, np.nan)
    if not np.all(np.isfinite(est)):
        return nan, 0
    H, W = depth.shape
    count = 0
    for _ in range(max(1, int(iterations))):
        r0, r1, c0, c1 = cube_pixel_bbox(fx, fy, cx, cy, H, W, est, float(region_mm))
        if r1 <= r0 or c1 <= c0:
            return nan, 0
        half = 0.5 * float(region_mm)
        com, count = depth_center_of_mass(depth[r0:r1, c0:c1], fx, fy, cx - c0, cy - r0, depth_scale,
                                          max(est[2] - half, 1e-6), est[2] + half)  # fmt: skip
        if count < min_pixels:
            return nan, int(count)
        est = com
    return est, int(count)
