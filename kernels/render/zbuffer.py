"""The z-buffer: conservative screen-space bounds of the primitives and one ray per pixel centre.

Parallel kernels split the image by rows (``prange``); each row is written by one iteration only,
so results are race-free and identical whatever the number of threads. :func:`row_of` spreads the
rows over the threads (a hand covers few rows); :func:`kernels.render.shading.shade` uses it too.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels.render.intersect import NEAR_MM, primary_hit, primary_normal, primary_setup

__all__ = ["screen_bounds", "zbuffer", "row_of"]

_ROW_STRIDE = 7919  # prime: iteration k of a parallel row loop handles image row (k * stride) % H


@njit(cache=True, error_model="numpy")
def row_of(k, height):
    """Image row handled by iteration ``k`` of a parallel row loop: a permutation that spreads each
    thread's contiguous chunk of iterations over the whole image (a hand covers few rows)."""
    k = np.int64(k)
    h = np.int64(height)
    if h % _ROW_STRIDE == 0:
        return k
    return (k * _ROW_STRIDE) % h


@njit(cache=True, error_model="numpy")
def screen_bounds(bound_a, bound_b, bound_r, fx, fy, cx, cy, width, height):
    """Conservative screen-space stadiums of the primitives.

    Each primitive lies inside the 3D capsule ``bound_a``-``bound_b`` (mm) of radius ``bound_r``.
    A point ``c + d`` (``|d| <= R``) of a ball around ``c`` projects within
    ``f R |c| / (c_z (c_z - R))`` px of the projection of ``c`` (the map ``d -> d_xy c_z - c_xy d_z``
    has norm ``|c|``), and the capsule's image is the convex hull of its end balls' images; so the
    2D stadium on the projected segment with the larger of the two end radii holds the primitive.

    Returns:
        ``(N, 6)`` float64 rows ``(Ax, Ay, Bx, By, R, zlo)``: ``R = -1`` for a primitive wholly
        behind the camera, ``R = inf`` for one that straddles the near plane (tested on every
        pixel); ``zlo`` is a lower bound of the depth of any of its points.
    """
    n = bound_a.shape[0]
    out = np.empty((n, 6), np.float64)
    fmax = max(fx, fy)
    for i in range(n):
        az = bound_a[i, 2]
        bz = bound_b[i, 2]
        r3 = bound_r[i]
        zmin = min(az, bz)
        zmax = max(az, bz)
        out[i, 5] = zmin - r3
        if zmax + r3 <= NEAR_MM:
            out[i, 0:5] = 0.0
            out[i, 4] = -1.0
            continue
        if zmin - r3 <= NEAR_MM:
            out[i, 0] = 0.5 * width
            out[i, 1] = 0.5 * height
            out[i, 2] = 0.5 * width
            out[i, 3] = 0.5 * height
            out[i, 4] = np.inf
            continue
        out[i, 0] = fx * bound_a[i, 0] / az + cx
        out[i, 1] = fy * bound_a[i, 1] / az + cy
        out[i, 2] = fx * bound_b[i, 0] / bz + cx
        out[i, 3] = fy * bound_b[i, 1] / bz + cy
        la_ = math.sqrt(bound_a[i, 0] ** 2 + bound_a[i, 1] ** 2 + az * az)
        lb_ = math.sqrt(bound_b[i, 0] ** 2 + bound_b[i, 1] ** 2 + bz * bz)
        out[i, 4] = fmax * r3 * max(la_ / (az * (az - r3)), lb_ / (bz * (bz - r3))) + 1e-6
    return out


@njit(cache=True, error_model="numpy")
def _row_span(b, y):
    """x interval ``(lo, hi)`` of the stadium row ``b`` (see :func:`screen_bounds`) on the line at
    height ``y``; ``lo > hi`` when empty."""
    r = b[4]
    if r < 0.0:
        return 1.0, -1.0
    if r == np.inf:
        return -np.inf, np.inf
    ax, ay, bx, by = b[0], b[1], b[2], b[3]
    lo = np.inf
    hi = -np.inf
    dy = y - ay
    if abs(dy) <= r:
        w = math.sqrt(r * r - dy * dy)
        lo = min(lo, ax - w)
        hi = max(hi, ax + w)
    dyb = y - by
    if abs(dyb) <= r:
        w = math.sqrt(r * r - dyb * dyb)
        lo = min(lo, bx - w)
        hi = max(hi, bx + w)
    ux = bx - ax
    uy = by - ay
    length = math.hypot(ux, uy)
    if length > 1e-9:
        ux /= length
        uy /= length
        # |(x - ax) uy - dy ux| <= r  and  0 <= (x - ax) ux + dy uy <= length
        l1, h1 = -np.inf, np.inf
        if abs(uy) > 1e-12:
            e0 = (dy * ux - r) / uy
            e1 = (dy * ux + r) / uy
            l1, h1 = min(e0, e1), max(e0, e1)
        elif abs(dy * ux) > r:
            l1, h1 = 1.0, -1.0
        l2, h2 = -np.inf, np.inf
        if abs(ux) > 1e-12:
            e0 = (-dy * uy) / ux
            e1 = (length - dy * uy) / ux
            l2, h2 = min(e0, e1), max(e0, e1)
        elif not (-dy * uy <= 0.0 <= length - dy * uy):
            l2, h2 = 1.0, -1.0
        bl = max(l1, l2)
        bh = min(h1, h2)
        if bl <= bh:
            lo = min(lo, ax + bl)
            hi = max(hi, ax + bh)
    return lo, hi


@njit(cache=True, parallel=True, error_model="numpy")
def zbuffer(minv, org, la, lb, ra, rb, kind, bounds, fx, fy, cx, cy, depth, prim, normal, span):
    """Ray-cast the primitives into a z-buffer (one ray per pixel centre), in place.

    Args:
        minv, org, la, lb, ra, rb, kind: the primitives (:mod:`kernels.render.intersect`), camera frame.
        bounds: ``(N, 6)`` from :func:`screen_bounds` for the same camera.
        fx, fy, cx, cy: pinhole camera of the image (pixels).
        depth: ``(H, W)`` float32 out: Z (mm) of the nearest hit, ``inf`` where no primitive is hit.
        prim: ``(H, W)`` int32 out: index of the primitive seen (-1 where none); on exact depth ties
            the lowest index wins.
        normal: ``(H, W, 3)`` float32 out: unit outward normal (camera frame) where ``prim >= 0``;
            other pixels are not written (callers never read them).
        span: ``(H, 2)`` int32 out: first and last column with a hit per row (``(W, -1)`` if none).

    The outputs may be reused buffers: every entry that is read later is written here.
    """
    pre = primary_setup(minv, org, la, lb, ra, rb, kind)
    order = np.argsort(bounds[:, 5], kind="mergesort")  # front to back: more early-z rejections
    height, width = depth.shape
    n = minv.shape[0]
    for k in prange(height):
        row = row_of(k, height)
        for col in range(width):
            depth[row, col] = np.inf
            prim[row, col] = -1
        yc = row + 0.5
        ry = (yc - cy) / fy
        zrow = np.full(width, np.inf)
        prow = np.zeros(width, np.int8)
        lo_col = width
        hi_col = -1
        for q in range(n):
            i = order[q]
            lo, hi = _row_span(bounds[i], yc)
            if lo > hi:
                continue
            c0 = max(int(math.ceil(lo - 0.5)), 0) if lo > -1e9 else 0
            c1 = min(int(math.floor(hi - 0.5)), width - 1) if hi < 1e9 else width - 1
            zlo = bounds[i, 5]
            for col in range(c0, c1 + 1):
                if zrow[col] <= zlo:
                    continue
                t, piece = primary_hit(pre, i, (col + 0.5 - cx) / fx, ry)
                if t < zrow[col] or (t == zrow[col] and i < prim[row, col]):
                    zrow[col] = t
                    prow[col] = piece
                    prim[row, col] = i
                    if col < lo_col:
                        lo_col = col
                    if col > hi_col:
                        hi_col = col
        span[row, 0] = lo_col
        span[row, 1] = hi_col
        for col in range(lo_col, hi_col + 1):
            i = prim[row, col]
            if i >= 0:
                z = zrow[col]
                depth[row, col] = z
                nx, ny, nz = primary_normal(pre, i, (col + 0.5 - cx) / fx, ry, z, prow[col])
                normal[row, col, 0] = nx
                normal[row, col, 1] = ny
                normal[row, col, 2] = nz
