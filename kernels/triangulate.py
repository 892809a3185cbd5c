"""Multi-view triangulation: confidence-weighted linear triangulation (DLT) and reprojection errors.

Cameras are given by projection matrices ``P = K [R | t]`` ``(V, 3, 4)`` float64 that map world
points (mm, the rig's world frame) to pixels (``tracker.core.structures`` convention: origin at the top-left
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

Robust triangulation (:func:`triangulate_ransac`): RANSAC over views per joint, hypotheses from view
pairs, inliers by reprojection error, the weighted DLT above on the best inlier set, with the RMS
reprojection error and a propagated 1-sigma uncertainty (:func:`triangulation_stats`) per joint.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "triangulate_dlt",
    "triangulate_dlt_batch",
    "triangulate_dlt_into",
    "reprojection_errors",
    "triangulate_ransac",
    "triangulate_ransac_batch",
    "triangulate_ransac_into",
    "triangulation_stats",
]

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


@njit(cache=True)
def _dlt_point(P, uv, weights, m, out):
    """Weighted DLT of point ``m`` (the system of the module docstring) into ``out`` (3,); NaN if undetermined."""
    V = P.shape[0]
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
        out[0] = np.nan
        out[1] = np.nan
        out[2] = np.nan
        return False
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
        out[0] = np.nan
        out[1] = np.nan
        out[2] = np.nan
        return False
    f = scale / h[3]
    out[0] = h[0] * f
    out[1] = h[1] * f
    out[2] = h[2] * f
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
        _dlt_point(P, uv, weights, m, X[m])
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
    M = uv.shape[0]
    X = np.empty((M, 3), np.float64)
    if M >= 64:
        return triangulate_dlt_into(X, P, uv, weights)
    V = P.shape[0]  # one hand: a serial loop (threads cost more than they save, and stall on a busy machine)
    if P.ndim != 3 or P.shape[1] != 3 or P.shape[2] != 4:
        raise ValueError("P must have shape (V, 3, 4)")
    if uv.ndim != 3 or uv.shape[1] != V or uv.shape[2] != 2:
        raise ValueError("uv must have shape (J, V, 2) with V = len(P)")
    if weights.ndim != 2 or weights.shape[0] != M or weights.shape[1] != V:
        raise ValueError("weights must have shape (J, V) matching uv")
    for m in range(M):
        _dlt_point(P, uv, weights, m, X[m])
    return X


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


# ------------------------------------------------------------------------------------ RANSAC over views

_LCG_A = 1103515245
_LCG_C = 12345
_LCG_M = 2147483648  # 2^31: products stay inside int64, and kernel and reference draw the same numbers
_TIE = 1e-9  # supports closer than this are a tie, broken by the weighted error


@njit(cache=True)
def _lcg(state):
    """Next state of the 31-bit linear congruential generator that samples view pairs."""
    return (state * _LCG_A + _LCG_C) % _LCG_M


@njit(cache=True)
def _stream_start(seed, m):
    """Initial LCG state of point ``m`` for ``seed`` (each point has its own reproducible stream)."""
    return ((seed % _LCG_M) * 1000003 + m * 7919 + 1) % _LCG_M


@njit(cache=True)
def _pair_point(P, uv, weights, m, a, b, out):
    """Two-view hypothesis of point ``m`` from views ``a``, ``b`` into ``out`` (3,); False if degenerate.

    Inhomogeneous linear triangulation (H&Z sec. 12.2): the least-squares point of the four unit-normal
    planes of the two views (residual = distance to the plane in mm, weighted by the view's weight),
    a 3x3 solve. Parallel rays (a singular system) give False.
    """
    N = np.zeros((3, 3), np.float64)
    r = np.zeros(3, np.float64)
    row = np.empty(4, np.float64)
    for k in range(2):
        v = a if k == 0 else b
        w = weights[m, v]
        w2 = float(w) * float(w)
        for axis in range(2):
            if not _plane(P, v, uv[m, v, axis], axis, row):
                return False
            for i in range(3):
                r[i] -= w2 * row[i] * row[3]
                for j in range(3):
                    N[i, j] += w2 * row[i] * row[j]
    c00 = N[1, 1] * N[2, 2] - N[1, 2] * N[2, 1]
    c01 = N[1, 2] * N[2, 0] - N[1, 0] * N[2, 2]
    c02 = N[1, 0] * N[2, 1] - N[1, 1] * N[2, 0]
    det = N[0, 0] * c00 + N[0, 1] * c01 + N[0, 2] * c02
    tr = N[0, 0] + N[1, 1] + N[2, 2]
    if not det > 1e-10 * tr * tr * tr:
        return False
    c10 = N[0, 2] * N[2, 1] - N[0, 1] * N[2, 2]
    c11 = N[0, 0] * N[2, 2] - N[0, 2] * N[2, 0]
    c12 = N[0, 1] * N[2, 0] - N[0, 0] * N[2, 1]
    c20 = N[0, 1] * N[1, 2] - N[0, 2] * N[1, 1]
    c21 = N[0, 2] * N[1, 0] - N[0, 0] * N[1, 2]
    c22 = N[0, 0] * N[1, 1] - N[0, 1] * N[1, 0]
    out[0] = (c00 * r[0] + c10 * r[1] + c20 * r[2]) / det
    out[1] = (c01 * r[0] + c11 * r[1] + c21 * r[2]) / det
    out[2] = (c02 * r[0] + c12 * r[1] + c22 * r[2]) / det
    return True


@njit(cache=True)
def _reprojection_error(P, v, X, u_obs, v_obs):
    """Pixel distance of ``X`` (3,) projected by view ``v`` to ``(u_obs, v_obs)``; +inf behind the camera."""
    x = P[v, 0, 0] * X[0] + P[v, 0, 1] * X[1] + P[v, 0, 2] * X[2] + P[v, 0, 3]
    y = P[v, 1, 0] * X[0] + P[v, 1, 1] * X[1] + P[v, 1, 2] * X[2] + P[v, 1, 3]
    z = P[v, 2, 0] * X[0] + P[v, 2, 1] * X[1] + P[v, 2, 2] * X[2] + P[v, 2, 3]
    if not z > 0.0:
        return np.inf
    du = x / z - u_obs
    dv = y / z - v_obs
    return math.sqrt(du * du + dv * dv)


@njit(cache=True)
def _point_stats(P, uv, weights, m, mask, X, sigma_px):
    """``(rms_px, sigma_mm)`` of point ``X`` (3,) over the views where ``mask`` (V,) is True.

    ``rms_px``: root mean square reprojection error over those views. ``sigma_mm``: first-order
    propagation of isotropic pixel noise of ``sigma_px / w_v`` in view ``v`` through the projections at
    ``X``: with ``G`` the stacked ``2 x 3`` Jacobians of the projections (px / mm) and
    ``W = diag(w_v^2)``, ``cov = sigma_px^2 (G^T W G)^-1`` (mm^2) and ``sigma_mm = sqrt(trace(cov))``,
    the expected RMS 3D error. NaN when ``X`` is NaN or no view is selected; +inf when the geometry
    is degenerate (fewer than 2 views, parallel rays, a view behind its camera).
    """
    if np.isnan(X[0]) or np.isnan(X[1]) or np.isnan(X[2]):
        return np.nan, np.nan
    A = np.zeros((3, 3), np.float64)
    se = 0.0
    n = 0
    behind = False
    for v in range(P.shape[0]):
        if not mask[v]:
            continue
        x = P[v, 0, 0] * X[0] + P[v, 0, 1] * X[1] + P[v, 0, 2] * X[2] + P[v, 0, 3]
        y = P[v, 1, 0] * X[0] + P[v, 1, 1] * X[1] + P[v, 1, 2] * X[2] + P[v, 1, 3]
        z = P[v, 2, 0] * X[0] + P[v, 2, 1] * X[1] + P[v, 2, 2] * X[2] + P[v, 2, 3]
        n += 1
        if not z > 0.0:
            behind = True
            continue
        pu = x / z
        pv = y / z
        du = pu - uv[m, v, 0]
        dv = pv - uv[m, v, 1]
        se += du * du + dv * dv
        w = weights[m, v]
        w2 = float(w) * float(w)
        for axis in range(2):
            coord = pu if axis == 0 else pv
            g0 = (P[v, axis, 0] - coord * P[v, 2, 0]) / z
            g1 = (P[v, axis, 1] - coord * P[v, 2, 1]) / z
            g2 = (P[v, axis, 2] - coord * P[v, 2, 2]) / z
            A[0, 0] += w2 * g0 * g0
            A[0, 1] += w2 * g0 * g1
            A[0, 2] += w2 * g0 * g2
            A[1, 1] += w2 * g1 * g1
            A[1, 2] += w2 * g1 * g2
            A[2, 2] += w2 * g2 * g2
    if n == 0:
        return np.nan, np.nan
    if behind:
        return np.inf, np.inf
    rms = math.sqrt(se / n)
    c00 = A[1, 1] * A[2, 2] - A[1, 2] * A[1, 2]
    c11 = A[0, 0] * A[2, 2] - A[0, 2] * A[0, 2]
    c22 = A[0, 0] * A[1, 1] - A[0, 1] * A[0, 1]
    det = A[0, 0] * c00 - A[0, 1] * (A[0, 1] * A[2, 2] - A[1, 2] * A[0, 2]) + A[0, 2] * (
        A[0, 1] * A[1, 2] - A[1, 1] * A[0, 2]
    )
    tr = A[0, 0] + A[1, 1] + A[2, 2]
    if not (n >= 2 and det > 1e-12 * tr * tr * tr):
        return rms, np.inf
    return rms, sigma_px * math.sqrt((c00 + c11 + c22) / det)


@njit(cache=True)
def _ransac_point(X, inliers, rms, sigma, P, uv, weights, m, threshold_px, sigma_px, min_inliers,
                  max_hypotheses, seed):  # fmt: skip
    """RANSAC of point ``m`` (see :func:`triangulate_ransac_into`), results written at ``m``."""
    V = P.shape[0]
    usable = np.empty(V, np.int64)
    n = 0
    for v in range(V):
        inliers[m, v] = False
        if _usable(weights[m, v], uv[m, v, 0], uv[m, v, 1]):
            usable[n] = v
            n += 1
    X[m, 0] = np.nan
    X[m, 1] = np.nan
    X[m, 2] = np.nan
    rms[m] = np.nan
    sigma[m] = np.nan
    need = max(2, min_inliers)
    if n < need:
        return
    n_pairs = n * (n - 1) // 2
    exhaustive = n_pairs <= max_hypotheses
    n_hyp = n_pairs if exhaustive else max_hypotheses
    state = _stream_start(seed, m)
    best = np.zeros(V, np.bool_)
    cur = np.zeros(V, np.bool_)
    best_support = -1.0
    best_err = np.inf
    Xh = np.empty(3, np.float64)
    i, j = 0, 1
    for _ in range(n_hyp):
        if exhaustive:
            a, b = usable[i], usable[j]
            j += 1
            if j == n:
                i += 1
                j = i + 1
        else:
            state = _lcg(state)
            ia = state % n
            state = _lcg(state)
            ib = state % (n - 1)
            if ib >= ia:
                ib += 1
            a, b = usable[ia], usable[ib]
        if not _pair_point(P, uv, weights, m, a, b, Xh):
            continue
        support = 0.0
        err = 0.0
        for k in range(n):
            v = usable[k]
            e = _reprojection_error(P, v, Xh, uv[m, v, 0], uv[m, v, 1])
            if e < threshold_px:
                cur[v] = True
                w = float(weights[m, v])
                support += w
                err += w * e
            else:
                cur[v] = False
        if support > best_support + _TIE or (abs(support - best_support) <= _TIE and err < best_err):
            best_support = support
            best_err = err
            for k in range(n):
                best[usable[k]] = cur[usable[k]]
    count = 0
    for v in range(V):
        if best[v]:
            count += 1
    if count < need:
        return
    wm = np.zeros((1, V), np.float64)
    for v in range(V):
        if best[v]:
            wm[0, v] = weights[m, v]
    if not _dlt_point(P, uv[m : m + 1], wm, 0, Xh):
        return
    for v in range(V):
        inliers[m, v] = best[v]
    X[m, 0] = Xh[0]
    X[m, 1] = Xh[1]
    X[m, 2] = Xh[2]
    r, s = _point_stats(P, uv, weights, m, best, Xh, sigma_px)
    rms[m] = r
    sigma[m] = s


_PARALLEL_MIN_POINTS = 64  # fewer points (one hand): a serial loop


@njit(cache=True)
def _check_ransac(X, inliers, rms, sigma, P, uv, weights, threshold_px, max_hypotheses):
    M = uv.shape[0]
    V = P.shape[0]
    if P.ndim != 3 or P.shape[1] != 3 or P.shape[2] != 4:
        raise ValueError("P must have shape (V, 3, 4)")
    if uv.ndim != 3 or uv.shape[1] != V or uv.shape[2] != 2:
        raise ValueError("uv must have shape (J, V, 2) with V = len(P)")
    if weights.ndim != 2 or weights.shape[0] != M or weights.shape[1] != V:
        raise ValueError("weights must have shape (J, V) matching uv")
    if X.shape[0] != M or X.shape[1] != 3 or inliers.shape[0] != M or inliers.shape[1] != V:
        raise ValueError("X must have shape (J, 3) and inliers (J, V) matching uv")
    if rms.shape[0] != M or sigma.shape[0] != M:
        raise ValueError("rms and sigma must have shape (J,) matching uv")
    if not threshold_px > 0.0:
        raise ValueError("threshold_px must be positive")
    if max_hypotheses < 1:
        raise ValueError("max_hypotheses must be at least 1")


@njit(cache=True, parallel=True)
def triangulate_ransac_into(X, inliers, rms, sigma, P, uv, weights, threshold_px, sigma_px, min_inliers,
                            max_hypotheses, seed):  # fmt: skip
    """RANSAC over views of ``M`` points, written into the output arrays; parallel over points.

    For each point: the usable views (weight > 0 and finite, ``uv`` finite); hypotheses from view
    pairs, all ``n (n - 1) / 2`` pairs when that is at most ``max_hypotheses`` (so all pairs for up to
    8 views with the default 28), else ``max_hypotheses`` pairs drawn from a 31-bit LCG seeded by
    ``(seed, m)`` (reproducible, independent of threads); each hypothesis is the two-view linear
    least-squares point (:func:`_pair_point`); its inliers are the usable views whose reprojection
    error is below ``threshold_px``; the best hypothesis has the largest confidence-weighted support
    (sum of the inliers' weights), ties (within 1e-9) broken by the smaller weighted error
    ``sum w * err`` over its inliers; the point is the weighted DLT (:func:`triangulate_dlt`) on the
    best inlier set. Points with fewer than ``max(2, min_inliers)`` usable views or inliers get NaN,
    no inliers, NaN ``rms`` and ``sigma``.

    Args:
        X: ``(M, 3)`` float64 out: world points, mm.
        inliers: ``(M, V)`` bool out: the views the final DLT used.
        rms: ``(M,)`` float64 out: RMS reprojection error over the inliers at ``X``, pixels.
        sigma: ``(M,)`` float64 out: 1-sigma position uncertainty, mm (see :func:`triangulation_stats`).
        P: ``(V, 3, 4)`` float64 projection matrices, world mm -> pixels.
        uv: ``(M, V, 2)`` observed pixels; NaN = not seen.
        weights: ``(M, V)`` >= 0 confidences (0 or NaN = view ignored); the uncertainty reads a weight
            as the inverse of the view's noise scale (``w = 1``: ``sigma_px`` pixels).
        threshold_px: inlier threshold on the reprojection error, pixels.
        sigma_px: pixel noise of a weight-1 observation, for ``sigma``.
        min_inliers: fewest inlier views for a valid point (at least 2 is used).
        max_hypotheses: most view pairs tried per point.
        seed: seed of the pair sampling (used only when not all pairs are tried).
    """
    M = uv.shape[0]
    _check_ransac(X, inliers, rms, sigma, P, uv, weights, threshold_px, max_hypotheses)
    for m in prange(M):
        _ransac_point(X, inliers, rms, sigma, P, uv, weights, m, threshold_px, sigma_px, min_inliers,
                      max_hypotheses, seed)  # fmt: skip
    return X, inliers, rms, sigma


@njit(cache=True)
def triangulate_ransac(P, uv, weights, threshold_px=10.0, sigma_px=2.0, min_inliers=2, max_hypotheses=28, seed=0):
    """Triangulate the joints of one frame robustly: RANSAC over views per joint, then weighted DLT.

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices ``K [R | t]``, world mm -> pixels.
        uv: ``(J, V, 2)`` pixels of each joint in each view (undistorted); NaN = not seen.
        weights: ``(J, V)`` >= 0 confidences; 0 or NaN = view ignored.
        threshold_px, sigma_px, min_inliers, max_hypotheses, seed: see :func:`triangulate_ransac_into`.

    Returns:
        ``(X, inliers, rms, sigma)``: ``(J, 3)`` world mm (NaN where not determined), ``(J, V)`` bool
        inlier views, ``(J,)`` RMS reprojection error over the inliers in pixels, ``(J,)`` 1-sigma
        uncertainty in mm.
    """
    J, V = uv.shape[0], P.shape[0]
    X = np.empty((J, 3), np.float64)
    inl = np.zeros((J, V), np.bool_)
    rms = np.empty(J, np.float64)
    sigma = np.empty(J, np.float64)
    if J >= _PARALLEL_MIN_POINTS:
        return triangulate_ransac_into(X, inl, rms, sigma, P, uv, weights, threshold_px, sigma_px, min_inliers,
                                       max_hypotheses, seed)  # fmt: skip
    _check_ransac(X, inl, rms, sigma, P, uv, weights, threshold_px, max_hypotheses)
    for m in range(J):  # one hand: threads cost more than they save (and stall on a busy machine)
        _ransac_point(X, inl, rms, sigma, P, uv, weights, m, threshold_px, sigma_px, min_inliers, max_hypotheses, seed)
    return X, inl, rms, sigma


@njit(cache=True)
def triangulate_ransac_batch(P, uv, weights, threshold_px=10.0, sigma_px=2.0, min_inliers=2, max_hypotheses=28,
                             seed=0):  # fmt: skip
    """:func:`triangulate_ransac` of ``B`` hands/frames of a fixed rig, parallel over all ``B * J`` points.

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices.
        uv: ``(B, J, V, 2)`` pixels.
        weights: ``(B, J, V)`` confidences.

    Returns:
        ``(X (B, J, 3), inliers (B, J, V), rms (B, J), sigma (B, J))``. Equal to per-frame calls when all
        pairs are tried; with sampling, point ``(b, j)`` uses the random stream of index ``b * J + j``.
    """
    B, J, V = uv.shape[0], uv.shape[1], uv.shape[2]
    if weights.ndim != 3 or weights.shape[0] != B or weights.shape[1] != J or weights.shape[2] != V:
        raise ValueError("weights must have shape (B, J, V) matching uv")
    X = np.empty((B * J, 3), np.float64)
    inl = np.zeros((B * J, V), np.bool_)
    rms = np.empty(B * J, np.float64)
    sigma = np.empty(B * J, np.float64)
    triangulate_ransac_into(X, inl, rms, sigma, P, np.ascontiguousarray(uv).reshape(B * J, V, 2),
                            np.ascontiguousarray(weights).reshape(B * J, V), threshold_px, sigma_px,
                            min_inliers, max_hypotheses, seed)  # fmt: skip
    return X.reshape(B, J, 3), inl.reshape(B, J, V), rms.reshape(B, J), sigma.reshape(B, J)


@njit(cache=True)
def triangulation_stats(P, X, uv, weights, views, sigma_px=2.0):
    """Reprojection RMS and propagated uncertainty of given points over given views.

    ``sigma``: the pixel noise of view ``v`` is taken as ``sigma_px / w_v`` (isotropic, independent);
    with ``G`` the stacked ``2 x 3`` Jacobians of the selected views' projections at ``X`` (px / mm)
    and ``W = diag(w_v^2)`` (per coordinate), the first-order covariance of the least-squares point is
    ``cov = sigma_px^2 (G^T W G)^-1`` (mm^2), and ``sigma = sqrt(trace(cov))`` is the expected RMS 3D
    error in mm. It grows with depth and with narrow baselines (rays near parallel).

    Args:
        P: ``(V, 3, 4)`` float64 projection matrices, world mm -> pixels.
        X: ``(J, 3)`` world points, mm.
        uv: ``(J, V, 2)`` observed pixels.
        weights: ``(J, V)`` confidences of the observations.
        views: ``(J, V)`` bool, the views each point was triangulated from.
        sigma_px: pixel noise of a weight-1 observation.

    Returns:
        ``(rms (J,), sigma (J,))``: pixels and mm; NaN for NaN points or no views, +inf sigma for
        a degenerate geometry (one view, parallel rays, a view behind its camera).
    """
    J = X.shape[0]
    V = P.shape[0]
    if uv.ndim != 3 or uv.shape[0] != J or uv.shape[1] != V or uv.shape[2] != 2:
        raise ValueError("uv must have shape (J, V, 2) with J = len(X) and V = len(P)")
    if weights.shape[0] != J or weights.shape[1] != V or views.shape[0] != J or views.shape[1] != V:
        raise ValueError("weights and views must have shape (J, V)")
    rms = np.empty(J, np.float64)
    sigma = np.empty(J, np.float64)
    for j in range(J):
        r, s = _point_stats(P, uv, weights, j, views[j], X[j], sigma_px)
        rms[j] = r
        sigma[j] = s
    return rms, sigma
