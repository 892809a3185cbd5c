"""Multi-view triangulation: confidence-weighted linear triangulation (DLT) and reprojection errors.

Cameras are given by projection matrices ``P = K [R | t]`` ``(V, 3, 4)`` float64 that map world
points (mm, the rig's world frame) to pixels (``tracker.types`` convention: origin at the top-left
corner of the top-left pixel): ``(x, y, w) = P @ (X, 1)``, ``(u, v) = (x / w, y / w)``, and ``w`` is
the point's depth in that camera (> 0 in front of it).

DLT of one joint (Hartley & Zisserman, sec. 12.2), with these choices:

* each usable view ``v`` (weight > 0 and finite, ``uv`` finite) gives the two planes
  ``u P[v, 2] - P[v, 0]`` and ``v P[v, 2] - P[v, 1]`` through the camera centre and the pixel;
  each plane is scaled to a unit normal, so its residual at ``X`` is the distance from ``X`` to the
  plane in mm, then multiplied by the view's weight (squared residuals are weighted by ``w^2``;
  scaling all weights of a joint by one factor changes nothing);
* the unknown is conditioned as ``X = s Y`` with ``s`` the RMS of the planes' offsets (mm), so the
  4 columns of the system have comparable size;
* the solution is the eigenvector of the smallest eigenvalue of the 4x4 normal matrix, found by
  cyclic Jacobi rotations (no LAPACK: deterministic and safe in parallel loops);
* fewer than 2 usable views, or a solution at infinity, give NaN.

Issue [4/5]'s RANSAC is meant to call :func:`triangulate_dlt_into` on subsets of views (weights 0
for the others) and score hypotheses with :func:`reprojection_errors`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["triangulate_dlt", "triangulate_dlt_batch", "triangulate_dlt_into", "reprojection_errors"]

_JACOBI_SWEEPS = 30


@njit(cache=True)
def _smallest_eigvec(A, out):
    """Unit eigenvector of the smallest eigenvalue of a symmetric 4x4 matrix, by cyclic Jacobi.

    Args:
        A: ``(4, 4)`` float64 symmetric; destroyed (diagonalised).
        out: ``(4,)`` float64; overwritten with the eigenvector.
    """
    n = 4
    V = np.eye(n)
    total = 0.0
    for p in range(n):
        for q in range(n):
            total += A[p, q] * A[p, q]
    for _ in range(_JACOBI_SWEEPS):
        off = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                off += A[p, q] * A[p, q]
        if off <= 1e-36 * total:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = A[p, q]
                if apq == 0.0:
                    continue
                theta = (A[q, q] - A[p, p]) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):  # A <- A J (columns p, q)
                    akp = A[k, p]
                    akq = A[k, q]
                    A[k, p] = c * akp - s * akq
                    A[k, q] = s * akp + c * akq
                for k in range(n):  # A <- J^T A (rows p, q)
                    apk = A[p, k]
                    aqk = A[q, k]
                    A[p, k] = c * apk - s * aqk
                    A[q, k] = s * apk + c * aqk
                for k in range(n):  # V <- V J
                    vkp = V[k, p]
                    vkq = V[k, q]
                    V[k, p] = c * vkp - s * vkq
                    V[k, q] = s * vkp + c * vkq
    best = 0
    for p in range(1, n):
        if A[p, p] < A[best, best]:
            best = p
    for k in range(n):
        out[k] = V[k, best]


@njit(cache=True)
def _usable(w, u, v):
    return w > 0.0 and not (np.isnan(u) or np.isnan(v) or np.isinf(u) or np.isinf(v) or np.isinf(w))


@njit(cache=True)
def _plane(P, view, coord, axis, out):
    """Unit-normal plane ``coord * P[view, 2] - P[view, axis]`` into ``out`` (4,); False if degenerate."""
    for c in range(4):
        out[c] = coord * P[view, 2, c] - P[view, axis, c]
    norm = math.sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2])
    if not norm > 0.0:
        return False
    for c in range(4):
        out[c] /= norm
    return True


@njit(cache=True, parallel=True)
def triangulate_dlt_into(X, P, uv, weights):
    """Weighted DLT of ``M`` points, written into ``X``; parallel over points.

    Args:
        X: ``(M, 3)`` float64; overwritten with world points in mm (NaN where undetermined).
        P: ``(V, 3, 4)`` float64 projection matrices, world mm -> pixels.
        uv: ``(M, V, 2)`` pixels of each point in each view; NaN = not seen.
        weights: ``(M, V)`` >= 0 confidence of each observation; 0 or NaN = view ignored.

    Returns:
        ``X``.
    """
    M = uv.shape[0]
    V = P.shape[0]
    if P.ndim != 3 or P.shape[1] != 3 or P.shape[2] != 4:
        raise ValueError("P must have shape (V, 3, 4)")
    if uv.ndim != 3 or uv.shape[1] != V or uv.shape[2] != 2:
        raise ValueError("uv must have shape (J, V, 2) with V = len(P)")
    if weights.ndim != 2 or weights.shape[0] != M or weights.shape[1] != V:
        raise ValueError("weights must have shape (J, V) matching uv")
    if X.shape[0] != M or X.shape[1] != 3:
        raise ValueError("X must have shape (J, 3) matching uv")
    for m in prange(M):
        row = np.empty(4, np.float64)
        # pass 1: usable views and the RMS plane offset (mm) that conditions the unknown
        n_views = 0
        ss = 0.0
        n_rows = 0
        for v in range(V):
            w = weights[m, v]
            if not _usable(w, uv[m, v, 0], uv[m, v, 1]):
                continue
            n_views += 1
            for axis in range(2):
                if _plane(P, v, uv[m, v, axis], axis, row):
                    ss += row[3] * row[3]
                    n_rows += 1
        if n_views < 2 or n_rows < 3:
            X[m, 0] = np.nan
            X[m, 1] = np.nan
            X[m, 2] = np.nan
            continue
        scale = math.sqrt(ss / n_rows)
        if not (scale > 0.0 and scale < np.inf):
            scale = 1.0
        # pass 2: normal matrix of the weighted, conditioned planes (X = scale * Y)
        A = np.zeros((4, 4), np.float64)
        for v in range(V):
            w = weights[m, v]
            if not _usable(w, uv[m, v, 0], uv[m, v, 1]):
                continue
            w2 = float(w) * float(w)
            for axis in range(2):
                if _plane(P, v, uv[m, v, axis], axis, row):
                    row[3] /= scale
                    for a in range(4):
                        for b in range(4):
                            A[a, b] += w2 * row[a] * row[b]
        h = np.empty(4, np.float64)
        _smallest_eigvec(A, h)
        if not abs(h[3]) > 1e-12:
            X[m, 0] = np.nan
            X[m, 1] = np.nan
            X[m, 2] = np.nan
            continue
        f = scale / h[3]
        X[m, 0] = h[0] * f
        X[m, 1] = h[1] * f
        X[m, 2] = h[2] * f
    return X


@njit(cache=True)
def triangulate_dlt(P, uv, weights):
    """Triangulate the joints of one frame from ``V`` calibrated views.

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices ``K [R | t]``, world mm -> pixels.
        uv: ``(J, V, 2)`` pixel coordinates of each joint in each view; NaN = not seen.
        weights: ``(J, V)`` >= 0 confidences; a view with weight 0 or NaN is ignored.

    Returns:
        ``(J, 3)`` float64 world points in mm; NaN where fewer than 2 views are usable.
    """
    X = np.empty((uv.shape[0], 3), np.float64)
    return triangulate_dlt_into(X, P, uv, weights)


@njit(cache=True)
def triangulate_dlt_batch(P, uv, weights):
    """:func:`triangulate_dlt` of ``B`` frames of a fixed rig, parallel over all ``B * J`` joints.

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices.
        uv: ``(B, J, V, 2)`` pixels.
        weights: ``(B, J, V)`` confidences.

    Returns:
        ``(B, J, 3)`` float64 world points in mm.
    """
    B, J, V = uv.shape[0], uv.shape[1], uv.shape[2]
    if weights.ndim != 3 or weights.shape[0] != B or weights.shape[1] != J or weights.shape[2] != V:
        raise ValueError("weights must have shape (B, J, V) matching uv")
    X = np.empty((B, J, 3), np.float64)
    triangulate_dlt_into(
        X.reshape(B * J, 3),
        P,
        np.ascontiguousarray(uv).reshape(B * J, V, 2),
        np.ascontiguousarray(weights).reshape(B * J, V),
    )
    return X


@njit(cache=True)
def reprojection_errors(P, X, uv):
    """Pixel distance between each point's projection and its observation in each view.

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices, world mm -> pixels.
        X: ``(J, 3)`` world points, mm.
        uv: ``(J, V, 2)`` observed pixels.

    Returns:
        ``(J, V)`` float64 errors in pixels: NaN where the point or the observation is NaN, +inf
        where the point is not in front of the camera (projected depth <= 0).
    """
    J = X.shape[0]
    V = P.shape[0]
    if uv.ndim != 3 or uv.shape[0] != J or uv.shape[1] != V or uv.shape[2] != 2:
        raise ValueError("uv must have shape (J, V, 2) with J = len(X) and V = len(P)")
    out = np.empty((J, V), np.float64)
    for j in range(J):
        bad_point = np.isnan(X[j, 0]) or np.isnan(X[j, 1]) or np.isnan(X[j, 2])
        for v in range(V):
            if bad_point or np.isnan(uv[j, v, 0]) or np.isnan(uv[j, v, 1]):
                out[j, v] = np.nan
                continue
            x = P[v, 0, 0] * X[j, 0] + P[v, 0, 1] * X[j, 1] + P[v, 0, 2] * X[j, 2] + P[v, 0, 3]
            y = P[v, 1, 0] * X[j, 0] + P[v, 1, 1] * X[j, 1] + P[v, 1, 2] * X[j, 2] + P[v, 1, 3]
            z = P[v, 2, 0] * X[j, 0] + P[v, 2, 1] * X[j, 1] + P[v, 2, 2] * X[j, 2] + P[v, 2, 3]
            if not z > 0.0:
                out[j, v] = np.inf
                continue
            du = x / z - uv[j, v, 0]
            dv = y / z - uv[j, v, 1]
            out[j, v] = math.sqrt(du * du + dv * dv)
    return out
