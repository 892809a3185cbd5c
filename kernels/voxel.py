"""The V2V-PoseNet voxel grid, defined once here, and the occupancy kernels that fill it.

Grid convention (every kernel in :mod:`kernels` uses it through the helpers of this module):

* The grid is a cube of edge ``cube_mm`` millimetres, centred at a reference point ``ref`` ``(3,)``
  in mm in the OpenCV camera frame (x right, y down, z forward), with ``D`` voxels per side; the
  voxel size is ``s = cube_mm / D`` and the cube's lowest corner is ``lo = ref - cube_mm / 2``.
* ``grid[i, j, k]``: ``i`` runs along camera x, ``j`` along y, ``k`` along z.
* Voxel ``(i, j, k)`` holds the half-open box ``lo + [i, i + 1) * s`` (per axis, likewise j, k);
  its centre is ``lo + (index + 0.5) * s``. A point on the cube's low faces is inside, a point on
  its high faces is outside; NaN points are outside.
* Membership is decided by the *edge coordinate* ``e = (p - lo) * (D / cube_mm)`` computed in
  float64: the point is in the cube iff ``0 <= e < D`` on all three axes, and its voxel is
  ``floor(e)``.
* Continuous voxel coordinates (:func:`world_to_grid`) are ``g = e - 0.5``: integer values are
  voxel centres, so a joint at ``g = (10.25, 3, 7)`` sits a quarter voxel past the centre of voxel
  ``(10, 3, 7)`` along x. Heatmaps (:mod:`kernels.heatmap`) are Gaussians in these coordinates;
  the 44^3 output of V2V-PoseNet covers the same cube as its 88^3 input, so output voxel ``k``
  covers input voxels ``2k`` and ``2k + 1``.

Occupancy grids are ``uint8`` (1 = at least one depth point in the voxel, 0 = none): a quarter of
the memory of float32 to clear and write; the network casts (``torch.from_numpy(g).float()``).

Depth pixels follow :mod:`tracker.core.structures`: pixel ``(row, col)`` has its centre at
``(u, v) = (col + 0.5, row + 0.5)`` and back-projects to
``X = (col + 0.5 - cx) / fx * Z``, ``Y = (row + 0.5 - cy) / fy * Z`` with ``Z = depth * depth_scale``,
evaluated in float64 in exactly that order by every kernel (see :func:`kernels.depth.depth_to_points`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "grid_params",
    "world_to_grid",
    "grid_to_world",
    "points_in_cube",
    "voxelize_points",
    "voxelize_points_into",
    "voxelize_depth",
    "voxelize_depth_into",
    "cube_pixel_bbox",
]


@njit(cache=True)
def grid_params(ref, cube_mm, D):
    """The grid's lowest corner and inverse voxel size.

    Args:
        ref: ``(3,)`` cube centre, mm, camera frame.
        cube_mm: cube edge, mm (> 0).
        D: voxels per side (>= 1).

    Returns:
        ``(lo_x, lo_y, lo_z, inv)`` floats: ``lo = ref - cube_mm / 2`` (mm) and ``inv = D / cube_mm``
        (voxels per mm). The edge coordinate of a point is ``(p - lo) * inv``.
    """
    if ref.shape[0] != 3:
        raise ValueError("ref must have shape (3,)")
    if not cube_mm > 0.0:
        raise ValueError("cube_mm must be positive")
    if D < 1:
        raise ValueError("D (voxels per side) must be >= 1")
    h = 0.5 * float(cube_mm)
    return float(ref[0]) - h, float(ref[1]) - h, float(ref[2]) - h, D / float(cube_mm)


@njit(cache=True)
def world_to_grid(points, ref, cube_mm, D):
    """Camera-frame mm to continuous voxel coordinates (integer = voxel centre).

    Args:
        points: ``(N, 3)`` mm, camera frame, any float dtype.
        ref, cube_mm, D: the grid (see the module docstring).

    Returns:
        ``(N, 3)`` float64 ``g = (p - lo) * D / cube_mm - 0.5``; NaN stays NaN.
    """
    lx, ly, lz, inv = grid_params(ref, cube_mm, D)
    n = points.shape[0]
    out = np.empty((n, 3), np.float64)
    for a in range(n):
        out[a, 0] = (points[a, 0] - lx) * inv - 0.5
        out[a, 1] = (points[a, 1] - ly) * inv - 0.5
        out[a, 2] = (points[a, 2] - lz) * inv - 0.5
    return out


@njit(cache=True)
def grid_to_world(coords, ref, cube_mm, D):
    """Continuous voxel coordinates (integer = voxel centre) to camera-frame mm.

    Args:
        coords: ``(N, 3)`` voxel coordinates, any float dtype.
        ref, cube_mm, D: the grid (see the module docstring).

    Returns:
        ``(N, 3)`` float64 ``lo + (g + 0.5) * cube_mm / D`` in mm, camera frame.
    """
    lx, ly, lz, inv = grid_params(ref, cube_mm, D)
    s = float(cube_mm) / D
    n = coords.shape[0]
    out = np.empty((n, 3), np.float64)
    for a in range(n):
        out[a, 0] = lx + (coords[a, 0] + 0.5) * s
        out[a, 1] = ly + (coords[a, 1] + 0.5) * s
        out[a, 2] = lz + (coords[a, 2] + 0.5) * s
    return out


@njit(cache=True)
def points_in_cube(points, ref, cube_mm):
    """Which points lie in the cube (low faces in, high faces out, NaN out).

    Args:
        points: ``(N, 3)`` mm, camera frame.
        ref: ``(3,)`` cube centre, mm.
        cube_mm: cube edge, mm.

    Returns:
        ``(N,)`` bool mask; the same test as :func:`voxelize_points` for any ``D`` (computed with
        ``D = 1``: ``0 <= (p - lo) / cube_mm < 1``).
    """
    lx, ly, lz, inv = grid_params(ref, cube_mm, 1)
    n = points.shape[0]
    out = np.empty(n, np.bool_)
    for a in range(n):
        ex = (points[a, 0] - lx) * inv
        ey = (points[a, 1] - ly) * inv
        ez = (points[a, 2] - lz) * inv
        out[a] = ex >= 0.0 and ex < 1.0 and ey >= 0.0 and ey < 1.0 and ez >= 0.0 and ez < 1.0
    return out


@njit(cache=True, parallel=True)
def voxelize_points_into(out, points, ref, cube_mm):
    """Occupancy of ``points`` written into ``out`` (cleared first); see :func:`voxelize_points`.

    Args:
        out: ``(D, D, D)`` uint8, C-contiguous; overwritten.
        points: ``(N, 3)`` mm, camera frame.
        ref: ``(3,)`` cube centre, mm; cube_mm: cube edge, mm.

    Returns:
        ``out``.
    """
    D = out.shape[0]
    if out.shape[1] != D or out.shape[2] != D:
        raise ValueError("out must have shape (D, D, D)")
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError("points must have shape (N, 3)")
    lx, ly, lz, inv = grid_params(ref, cube_mm, D)
    flat = out.reshape(D * D * D)
    flat[:] = 0
    for a in prange(points.shape[0]):
        ex = (points[a, 0] - lx) * inv
        ey = (points[a, 1] - ly) * inv
        ez = (points[a, 2] - lz) * inv
        if ex >= 0.0 and ex < D and ey >= 0.0 and ey < D and ez >= 0.0 and ez < D:
            # Threads may store 1 into the same voxel: every store writes the same value.
            out[int(ex), int(ey), int(ez)] = 1
    return out


@njit(cache=True)
def voxelize_points(points, ref, cube_mm, D):
    """V2V-PoseNet occupancy grid of a point cloud.

    Args:
        points: ``(N, 3)`` float32/float64 mm, camera frame. Points outside the cube or with a NaN
            coordinate are ignored.
        ref: ``(3,)`` cube centre, mm, camera frame.
        cube_mm: cube edge, mm.
        D: voxels per side (88 for V2V-PoseNet).

    Returns:
        ``(D, D, D)`` uint8, ``grid[i, j, k] = 1`` where at least one point falls in voxel
        ``(i, j, k)`` (i along x, j along y, k along z), else 0.
    """
    out = np.empty((D, D, D), np.uint8)
    return voxelize_points_into(out, points, ref, float(cube_mm))


@njit(cache=True)
def cube_pixel_bbox(fx, fy, cx, cy, H, W, ref, cube_mm):
    """The pixel rectangle that can hold pixels back-projecting into the cube.

    The projection of the cube lies in the bounding box of its 8 projected corners when the whole
    cube is in front of the camera (``z > 0``); a one-pixel margin absorbs rounding. A cube
    reaching to ``z <= 0`` can project anywhere: the whole image. A cube entirely at ``z <= 0``:
    an empty rectangle.

    Args:
        fx, fy, cx, cy: intrinsics in pixels (project convention, pixel centre at ``col + 0.5``).
        H, W: image size in pixels.
        ref: ``(3,)`` cube centre, mm, camera frame; cube_mm: cube edge, mm.

    Returns:
        ``(r0, r1, c0, c1)`` ints: rows ``r0 <= r < r1`` and columns ``c0 <= c < c1``.
    """
    lx, ly, lz, inv = grid_params(ref, cube_mm, 1)
    e = float(cube_mm)
    if not (np.isfinite(lx) and np.isfinite(ly) and np.isfinite(lz)) or lz + e <= 0.0:
        return 0, 0, 0, 0
    if lz <= 0.0:
        return 0, H, 0, W
    umin = np.inf
    umax = -np.inf
    vmin = np.inf
    vmax = -np.inf
    for a in range(2):
        x = lx + a * e
        for b in range(2):
            y = ly + b * e
            for c in range(2):
                z = lz + c * e
                u = fx * x / z + cx
                v = fy * y / z + cy
                umin = min(umin, u)
                umax = max(umax, u)
                vmin = min(vmin, v)
                vmax = max(vmax, v)
    # pixel centre col + 0.5 in [umin, umax]  <=>  col in [umin - 0.5, umax - 0.5]; one pixel margin
    # (clamped as floats first: a cube grazing z = 0 projects to huge coordinates)
    c0 = max(0, int(math.floor(min(max(umin - 0.5, -4.0), W + 4.0))) - 1)
    c1 = min(W, int(math.floor(min(max(umax - 0.5, -4.0), W + 4.0))) + 2)
    r0 = max(0, int(math.floor(min(max(vmin - 0.5, -4.0), H + 4.0))) - 1)
    r1 = min(H, int(math.floor(min(max(vmax - 0.5, -4.0), H + 4.0))) + 2)
    if c1 <= c0 or r1 <= r0:
        return 0, 0, 0, 0
    return r0, r1, c0, c1


@njit(cache=True, parallel=True)
def voxelize_depth_into(out, depth, fx, fy, cx, cy, ref, cube_mm, depth_scale=1.0):
    """Occupancy of a depth image written into ``out`` (cleared first); see :func:`voxelize_depth`.

    Args:
        out: ``(D, D, D)`` uint8, C-contiguous; overwritten.
        depth, fx, fy, cx, cy, ref, cube_mm, depth_scale: as :func:`voxelize_depth`.

    Returns:
        ``out``.
    """
    D = out.shape[0]
    if out.shape[1] != D or out.shape[2] != D:
        raise ValueError("out must have shape (D, D, D)")
    if depth.ndim != 2:
        raise ValueError("depth must have shape (H, W)")
    lx, ly, lz, inv = grid_params(ref, cube_mm, D)
    flat = out.reshape(D * D * D)
    flat[:] = 0
    H = depth.shape[0]
    W = depth.shape[1]
    r0, r1, c0, c1 = cube_pixel_bbox(fx, fy, cx, cy, H, W, ref, cube_mm)
    if r1 <= r0 or c1 <= c0:
        return out
    scale = float(depth_scale)
    kx = np.empty(c1 - c0, np.float64)
    for c in range(c0, c1):
        kx[c - c0] = (c + 0.5 - cx) / fx
    # Raw depth values whose Z can be in the cube's z-range: a cheap integer pre-test per pixel.
    dmin = 1
    dmax = 65535
    if scale > 0.0:
        dmin = max(1, int(math.floor(lz / scale)))
        dmax = min(65535, int(math.ceil((lz + float(cube_mm)) / scale)))
    for r in prange(r0, r1):
        ky = (r + 0.5 - cy) / fy
        row = depth[r]
        for c in range(c0, c1):
            d = row[c]
            if d < dmin or d > dmax:
                continue
            z = d * scale
            ez = (z - lz) * inv
            if not (ez >= 0.0 and ez < D):
                continue
            ex = (kx[c - c0] * z - lx) * inv
            if not (ex >= 0.0 and ex < D):
                continue
            ey = (ky * z - ly) * inv
            if not (ey >= 0.0 and ey < D):
                continue
            # Threads may store 1 into the same voxel: every store writes the same value.
            out[int(ex), int(ey), int(ez)] = 1
    return out


@njit(cache=True)
def voxelize_depth(depth, fx, fy, cx, cy, ref, cube_mm, D, depth_scale=1.0):
    """V2V-PoseNet occupancy grid straight from a depth image, without materialising points.

    Only the pixels inside :func:`cube_pixel_bbox` are visited. The result equals
    ``voxelize_points`` of the float64 back-projected points (float32 points from
    :func:`kernels.depth.depth_to_points` can differ only for points within float32 rounding of a
    voxel face).

    Args:
        depth: ``(H, W)`` uint16 depth image; 0 = no reading (ignored).
        fx, fy, cx, cy: intrinsics of the depth image in pixels (pixel centre at ``col + 0.5``).
        ref: ``(3,)`` cube centre, mm, camera frame.
        cube_mm: cube edge, mm.
        D: voxels per side (88 for V2V-PoseNet).
        depth_scale: mm per depth unit (1.0 for depth in mm).

    Returns:
        ``(D, D, D)`` uint8 occupancy, ``grid[i, j, k]`` with i along x, j along y, k along z.
    """
    out = np.empty((D, D, D), np.uint8)
    return voxelize_depth_into(out, depth, float(fx), float(fy), float(cx), float(cy), ref, float(cube_mm),
                               float(depth_scale))  # fmt: skip
