"""The sensor model: what a depth camera reads off a z-buffer (whole-mm uint16 depth within a range,
a wall behind the hands, noise growing with range, dropouts at depth edges and random holes) and the
masks that go with it.

Parallel kernels split the image by rows (``prange``); each row is written by one iteration only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["finish", "noisy_depth", "depth_edges"]

@njit(cache=True, parallel=True, error_model="numpy")
def finish(depth, prim, hand, part, background_mm, near_mm, far_mm):
    """Sensor outputs of a noise-free z-buffer.

    Args:
        depth, prim: from :func:`kernels.render.zbuffer.zbuffer`.
        hand, part: ``(N,)`` int32 hand index and part id of each primitive.
        background_mm: depth of the wall behind the hands (mm); NaN = no reading there.
        near_mm, far_mm: readings outside this range become 0.

    Returns:
        depth_u16: ``(H, W)`` uint16 mm, rounded (0 = no reading); mask: ``(H, W)`` uint8 (hand + 1,
        0 = none); part_map: ``(H, W)`` int16 (-1 = none).
    """
    height, width = depth.shape
    out = np.empty((height, width), np.uint16)
    mask = np.empty((height, width), np.uint8)
    part_map = np.empty((height, width), np.int16)
    lo = max(near_mm, 0.5)
    hi = min(far_mm, 65535.0)
    for row in prange(height):
        for col in range(width):
            i = prim[row, col]
            if i >= 0:
                z = np.float64(depth[row, col])
                mask[row, col] = hand[i] + 1
                part_map[row, col] = part[i]
            else:
                z = background_mm
                mask[row, col] = 0
                part_map[row, col] = -1
            zr = math.floor(z + 0.5) if z == z else 0.0
            out[row, col] = np.uint16(zr) if lo <= zr <= hi else 0
    return out, mask, part_map



@njit(cache=True, parallel=True, error_model="numpy")
def noisy_depth(depth, prim, background_mm, noise_a, noise_b, normal01, drop_edges, edge_u, edge_p, hole_u,
                hole_p, near_mm, far_mm):
    """Sensor-like depth readings of a z-buffer.

    ``Z' = Z + (a + b (Z / 1000)^2) n`` with ``n`` from ``normal01``, then a reading is dropped where
    ``drop_edges`` and ``edge_u < edge_p`` or where ``hole_u < hole_p``, rounded to whole mm, and
    kept within ``[near_mm, far_mm]``.

    Args:
        depth, prim: from :func:`kernels.render.zbuffer.zbuffer`; background_mm: wall depth where no
            primitive is hit (NaN = no reading).
        noise_a, noise_b: sigma terms (mm, mm per m^2); normal01: ``(H, W)`` float32 standard normal
            draws (or ``(0, 0)`` when both terms are 0).
        drop_edges: ``(H, W)`` bool (or ``(0, 0)``); edge_u, hole_u: ``(H, W)`` float32 uniform draws
            in [0, 1) (or ``(0, 0)`` when their probability is 0).

    Returns:
        ``(H, W)`` uint16 mm, 0 = no reading.
    """
    height, width = depth.shape
    out = np.empty((height, width), np.uint16)
    lo = max(near_mm, 0.5)
    hi = min(far_mm, 65535.0)
    use_noise = normal01.shape[0] > 0
    use_edge = edge_p > 0.0 and drop_edges.shape[0] > 0
    use_hole = hole_p > 0.0
    for row in prange(height):
        for col in range(width):
            z = np.float64(depth[row, col]) if prim[row, col] >= 0 else background_mm
            if not (z == z) or z == np.inf:
                out[row, col] = 0
                continue
            if use_noise:
                zk = z / 1000.0
                z += (noise_a + noise_b * zk * zk) * normal01[row, col]
            if (use_edge and drop_edges[row, col] and edge_u[row, col] < edge_p) or \
                    (use_hole and hole_u[row, col] < hole_p):
                out[row, col] = 0
                continue
            zr = math.floor(z + 0.5)
            out[row, col] = np.uint16(zr) if lo <= zr <= hi else 0
    return out


@njit(cache=True, parallel=True, error_model="numpy")
def depth_edges(depth, jump_mm, radius):
    """Pixels within ``radius`` px (Chebyshev) of a depth discontinuity: a pixel one of whose
    4-neighbours differs by more than ``jump_mm`` (``inf`` = no surface counts as a jump on both
    sides). Returns ``(H, W)`` bool."""
    height, width = depth.shape
    jump = np.zeros((height, width), np.bool_)
    for row in prange(height):
        for col in range(width):
            z = depth[row, col]
            for k in range(4):
                r2 = row + (-1, 1, 0, 0)[k]
                c2 = col + (0, 0, -1, 1)[k]
                if 0 <= r2 < height and 0 <= c2 < width:
                    z2 = depth[r2, c2]
                    if z != z2 and (math.isinf(z) or math.isinf(z2) or abs(z - z2) > jump_mm):
                        jump[row, col] = True
    if radius <= 0:
        return jump
    # dilate by a (2 radius + 1)^2 square: along rows, then along columns
    rows = np.empty((height, width), np.bool_)
    for row in prange(height):
        for col in range(width):
            found = False
            for cc in range(max(col - radius, 0), min(col + radius + 1, width)):
                if jump[row, cc]:
                    found = True
                    break
            rows[row, col] = found
    out = np.empty((height, width), np.bool_)
    for row in prange(height):
        for col in range(width):
            found = False
            for rr in range(max(row - radius, 0), min(row + radius + 1, height)):
                if rows[rr, col]:
                    found = True
                    break
            out[row, col] = found
    return out
