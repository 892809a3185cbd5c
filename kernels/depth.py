"""Depth image kernels: back-projection to points and the centre of mass.

Conventions (:mod:`tracker.core.structures`): depth is ``uint16`` ``(H, W)``, ``depth * depth_scale`` is the
distance Z in mm along the optical axis, 0 means "no reading". Pixel ``(row, col)`` has its centre at
``(u, v) = (col + 0.5, row + 0.5)`` (origin at the top-left corner of the top-left pixel), so it
back-projects to the camera-frame point (mm, x right, y down, z forward)::

    Z = depth[row, col] * depth_scale
    X = (col + 0.5 - cx) / fx * Z
    Y = (row + 0.5 - cy) / fy * Z

evaluated in float64 in exactly this order (the voxel kernels of :mod:`kernels.voxel` use the same
expressions, so both agree to the last bit). A pixel is valid when its depth is non-zero and
``near_mm <= Z <= far_mm``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["depth_to_points", "center_of_mass", "depth_center_of_mass"]


@njit(cache=True)
def _column_factors(W, cx, fx):
    """``(W,)`` float64 ``(col + 0.5 - cx) / fx``: X per mm of Z for each column."""
    kx = np.empty(W, np.float64)
    for c in range(W):
        kx[c] = (c + 0.5 - cx) / fx
    return kx


@njit(cache=True)
def depth_to_points(depth, fx, fy, cx, cy, depth_scale=1.0, near_mm=0.0, far_mm=np.inf):
    """Back-project the valid pixels of a depth image to camera-frame points.

    Two parallel passes over the rows (count, then fill at the prefix-sum offsets) keep the output
    in row-major pixel order whatever the number of threads.

    Args:
        depth: ``(H, W)`` uint16 (any integer dtype works), 0 = no reading.
        fx, fy, cx, cy: intrinsics of the depth image in pixels.
        depth_scale: mm per depth unit (1.0 for depth in mm).
        near_mm, far_mm: keep pixels with ``near_mm <= Z <= far_mm`` (mm).

    Returns:
        ``(N, 3)`` float32 points in mm, camera frame, one per valid pixel in row-major order.
    """
    return _depth_to_points(depth, float(fx), float(fy), float(cx), float(cy), float(depth_scale),
                            float(near_mm), float(far_mm))  # fmt: skip


@njit(cache=True, parallel=True)
def _depth_to_points(depth, fx, fy, cx, cy, scale, near_mm, far_mm):
    """:func:`depth_to_points` with every argument given (one compiled version per depth dtype)."""
    if depth.ndim != 2:
        raise ValueError("depth must have shape (H, W)")
    H = depth.shape[0]
    W = depth.shape[1]
    counts = np.zeros(H, np.int64)
    for r in prange(H):
        row_n = 0
        for c in range(W):
            d = depth[r, c]
            if d != 0:
                z = d * scale
                if z >= near_mm and z <= far_mm:
                    row_n += 1
        counts[r] = row_n
    offsets = np.empty(H + 1, np.int64)
    offsets[0] = 0
    for r in range(H):
        offsets[r + 1] = offsets[r] + counts[r]
    out = np.empty((offsets[H], 3), np.float32)
    kx = _column_factors(W, cx, fx)
    for r in prange(H):
        ky = (r + 0.5 - cy) / fy
        a = offsets[r]
        for c in range(W):
            d = depth[r, c]
            if d != 0:
                z = d * scale
                if z >= near_mm and z <= far_mm:
                    out[a, 0] = kx[c] * z
                    out[a, 1] = ky * z
                    out[a, 2] = z
                    a += 1
    return out


@njit(cache=True)
def center_of_mass(points):
    """Mean of a point cloud, skipping points with a NaN coordinate.

    Args:
        points: ``(N, 3)`` float32/float64, mm.

    Returns:
        ``(3,)`` float64 mean in mm (summed in float64, in order); NaN x 3 when no point is finite.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError("points must have shape (N, 3)")
    sx = 0.0
    sy = 0.0
    sz = 0.0
    n = 0
    for a in range(points.shape[0]):
        x = float(points[a, 0])
        y = float(points[a, 1])
        z = float(points[a, 2])
        if np.isnan(x) or np.isnan(y) or np.isnan(z):
            continue
        sx += x
        sy += y
        sz += z
        n += 1
    out = np.full(3, np.nan)
    if n > 0:
        out[0] = sx / n
        out[1] = sy / n
        out[2] = sz / n
    return out


@njit(cache=True)
def depth_center_of_mass(depth, fx, fy, cx, cy, depth_scale=1.0, near_mm=0.0, far_mm=np.inf):
    """Centre of mass of the valid pixels' points, without materialising the points.

    Per-row sums run in parallel, then the rows are added in order, so the result does not depend
    on the number of threads. Equals ``center_of_mass(depth_to_points(...))`` up to float rounding
    (the points are not rounded to float32 here).

    Args:
        depth, fx, fy, cx, cy, depth_scale, near_mm, far_mm: as :func:`depth_to_points`.

    Returns:
        ``(com, count)``: ``(3,)`` float64 mean point in mm, camera frame (NaN x 3 when no pixel is
        valid), and the number of valid pixels (int).
    """
    return _depth_center_of_mass(depth, float(fx), float(fy), float(cx), float(cy), float(depth_scale),
                                 float(near_mm), float(far_mm))  # fmt: skip


@njit(cache=True, parallel=True)
def _depth_center_of_mass(depth, fx, fy, cx, cy, scale, near_mm, far_mm):
    """:func:`depth_center_of_mass` with every argument given (one compiled version per depth dtype)."""
    if depth.ndim != 2:
        raise ValueError("depth must have shape (H, W)")
    H = depth.shape[0]
    W = depth.shape[1]
    kx = _column_factors(W, cx, fx)
    sums = np.zeros((H, 3), np.float64)
    counts = np.zeros(H, np.int64)
    for r in prange(H):
        row_x = 0.0
        row_z = 0.0
        row_n = 0
        for c in range(W):
            d = depth[r, c]
            if d != 0:
                z = d * scale
                if z >= near_mm and z <= far_mm:
                    row_x += kx[c] * z
                    row_z += z
                    row_n += 1
        sums[r, 0] = row_x
        sums[r, 1] = (r + 0.5 - cy) / fy * row_z
        sums[r, 2] = row_z
        counts[r] = row_n
    sx = 0.0
    sy = 0.0
    sz = 0.0
    n = 0
    for r in range(H):
        sx += sums[r, 0]
        sy += sums[r, 1]
        sz += sums[r, 2]
        n += counts[r]
    out = np.full(3, np.nan)
    if n > 0:
        out[0] = sx / n
        out[1] = sy / n
        out[2] = sz / n
    return out, n
