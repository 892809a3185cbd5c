"""Plain NumPy references of the Numba kernels: the test oracles and the benchmarks' baselines.

Each function computes what its kernel computes, with the same conventions and, where the result is
discrete (which pixel is valid, which voxel a point falls in, which voxel is the maximum), the same
float64 expressions, so tests can compare exactly; elsewhere they agree to float rounding. They are
written for clarity first and vectorised (no Python loops over pixels, points or joints), so they
are also the fair NumPy baselines of ``bench/kernels.py``. Nothing in the pipeline should call them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "depth_to_points",
    "center_of_mass",
    "depth_center_of_mass",
    "world_to_grid",
    "grid_to_world",
    "points_in_cube",
    "voxelize_points",
    "voxelize_depth",
    "gaussian_heatmaps",
    "subvoxel_argmax",
    "triangulate_dlt",
    "reprojection_errors",
]


def _backproject(depth, fx, fy, cx, cy, depth_scale, near_mm, far_mm):
    """float64 (N, 3) points of the valid pixels in row-major order (see kernels.depth)."""
    depth = np.asarray(depth)
    H, W = depth.shape
    z = depth.astype(np.float64) * float(depth_scale)
    valid = (depth != 0) & (z >= near_mm) & (z <= far_mm)
    rows, cols = np.nonzero(valid)
    zz = z[rows, cols]
    kx = (np.arange(W) + 0.5 - cx) / fx
    ky = (np.arange(H) + 0.5 - cy) / fy
    return np.stack([kx[cols] * zz, ky[rows] * zz, zz], axis=1)


def depth_to_points(depth, fx, fy, cx, cy, depth_scale=1.0, near_mm=0.0, far_mm=np.inf):
    """``(N, 3)`` float32 camera-frame mm points of the valid pixels, row-major order."""
    return _backproject(depth, fx, fy, cx, cy, depth_scale, near_mm, far_mm).astype(np.float32)


def center_of_mass(points):
    """``(3,)`` float64 mean of the points without a NaN coordinate; NaN x 3 when there is none."""
    p = np.asarray(points, dtype=np.float64)
    p = p[~np.isnan(p).any(axis=1)]
    return p.mean(axis=0) if len(p) else np.full(3, np.nan)


def depth_center_of_mass(depth, fx, fy, cx, cy, depth_scale=1.0, near_mm=0.0, far_mm=np.inf):
    """``(com (3,), count)`` of the valid pixels' float64 points."""
    p = _backproject(depth, fx, fy, cx, cy, depth_scale, near_mm, far_mm)
    return (p.mean(axis=0) if len(p) else np.full(3, np.nan)), len(p)


def _lo_inv(ref, cube_mm, D):
    ref = np.asarray(ref, dtype=np.float64)
    return ref - 0.5 * float(cube_mm), D / float(cube_mm)


def world_to_grid(points, ref, cube_mm, D):
    """``(N, 3)`` float64 continuous voxel coordinates (integer = voxel centre)."""
    lo, inv = _lo_inv(ref, cube_mm, D)
    return (np.asarray(points, dtype=np.float64) - lo) * inv - 0.5


def grid_to_world(coords, ref, cube_mm, D):
    """``(N, 3)`` float64 mm of continuous voxel coordinates."""
    lo, _ = _lo_inv(ref, cube_mm, D)
    return lo + (np.asarray(coords, dtype=np.float64) + 0.5) * (float(cube_mm) / D)


def _edge_coords(points, ref, cube_mm, D):
    lo, inv = _lo_inv(ref, cube_mm, D)
    return (np.asarray(points, dtype=np.float64) - lo) * inv


def points_in_cube(points, ref, cube_mm):
    """``(N,)`` bool: in the half-open cube (low faces in, high faces out, NaN out)."""
    e = _edge_coords(points, ref, cube_mm, 1)
    return ((e >= 0.0) & (e < 1.0)).all(axis=1)


def _occupancy(points64, ref, cube_mm, D):
    e = _edge_coords(points64, ref, cube_mm, D)
    idx = e[((e >= 0.0) & (e < D)).all(axis=1)].astype(np.int64)
    grid = np.zeros((D, D, D), np.uint8)
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = 1
    return grid


def voxelize_points(points, ref, cube_mm, D):
    """``(D, D, D)`` uint8 occupancy, ``grid[i, j, k]`` with i along x, j along y, k along z."""
    return _occupancy(points, ref, cube_mm, D)


def voxelize_depth(depth, fx, fy, cx, cy, ref, cube_mm, D, depth_scale=1.0):
    """``(D, D, D)`` uint8 occupancy of all valid pixels of the whole image (float64 points)."""
    return _occupancy(_backproject(depth, fx, fy, cx, cy, depth_scale, 0.0, np.inf), ref, cube_mm, D)


def gaussian_heatmaps(joints, ref, cube_mm, D=44, sigma=1.7):
    """``(J, D, D, D)`` float32 ``exp(-|(i, j, k) - g|^2 / (2 sigma^2))`` (direct 3D formula)."""
    g = world_to_grid(np.asarray(joints).reshape(-1, 3), ref, cube_mm, D)
    ax = np.arange(D, dtype=np.float64)
    d2 = (
        (ax[None, :, None, None] - g[:, 0, None, None, None]) ** 2
        + (ax[None, None, :, None] - g[:, 1, None, None, None]) ** 2
        + (ax[None, None, None, :] - g[:, 2, None, None, None]) ** 2
    )
    h = np.exp(-d2 / (2.0 * sigma * sigma))
    h[np.isnan(g).any(axis=1)] = 0.0
    return h.astype(np.float32)


def subvoxel_argmax(heatmaps, ref, cube_mm, radius=1, refine=0):
    """``(coords (J, 3) float64 mm, confidence (J,) float32)``; see :func:`kernels.subvoxel_argmax`.

    ``refine``: 0 = weighted mean in the window, 1 = per-axis log-parabola with the mean as fallback.
    """
    hm = np.asarray(heatmaps)
    J, D = hm.shape[0], hm.shape[1]
    flat = hm.reshape(J, -1)
    t = np.argmax(np.where(np.isnan(flat), -np.inf, flat), axis=1)  # first maximum, NaN never wins
    rows = np.arange(J)
    best = flat[rows, t]
    found = best > 0.0
    centre = np.stack(np.unravel_index(t, (D, D, D)), axis=1)  # (J, 3)
    off = np.arange(-radius, radius + 1)
    window = np.stack(np.meshgrid(off, off, off, indexing="ij"), axis=-1).reshape(-1, 3)  # (K, 3)
    idx = centre[:, None, :] + window[None]  # (J, K, 3)
    inside = ((idx >= 0) & (idx < D)).all(axis=2)
    c = np.clip(idx, 0, D - 1)
    vals = hm[rows[:, None], c[..., 0], c[..., 1], c[..., 2]].astype(np.float64)
    w = np.where(inside & (vals > 0.0), vals, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (w[..., None] * idx).sum(axis=1) / w.sum(axis=1)[:, None]
        if refine == 1:
            for a in range(3):
                step = np.zeros(3, np.int64)
                step[a] = 1
                lo_i = np.clip(centre - step, 0, D - 1)
                hi_i = np.clip(centre + step, 0, D - 1)
                va = hm[rows, lo_i[:, 0], lo_i[:, 1], lo_i[:, 2]].astype(np.float64)
                vc = hm[rows, hi_i[:, 0], hi_i[:, 1], hi_i[:, 2]].astype(np.float64)
                la, lb, lc = np.log(va), np.log(best.astype(np.float64)), np.log(vc)
                den = la - 2.0 * lb + lc
                ok = (centre[:, a] > 0) & (centre[:, a] < D - 1) & (va > 0) & (vc > 0) & (den < 0)
                g[:, a] = np.where(ok, centre[:, a] + 0.5 * (la - lc) / den, g[:, a])
    coords = grid_to_world(g, ref, cube_mm, D)
    coords[~found] = np.nan
    conf = np.where(found, best, 0.0).astype(np.float32)
    return coords, conf


def triangulate_dlt(P, uv, weights):
    """``(J, 3)`` float64 world mm by weighted DLT, solved by SVD of the stacked planes.

    The same system as :func:`kernels.triangulate_dlt` (unit-normal planes, unknown scaled by the
    RMS plane offset, rows times the weights), solved by SVD instead of Jacobi on the normal matrix.
    """
    P = np.asarray(P, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    J, V = w.shape
    usable = (w > 0) & np.isfinite(w) & np.isfinite(uv).all(axis=2)  # (J, V)
    with np.errstate(invalid="ignore", divide="ignore"):
        planes = uv[..., None] * P[None, :, 2:3, :] - P[None, :, :2, :]  # (J, V, 2, 4)
        planes = planes / np.linalg.norm(planes[..., :3], axis=-1, keepdims=True)
        planes = np.where(usable[..., None, None], planes, 0.0)
        n_rows = 2 * usable.sum(axis=1)
        scale = np.sqrt((planes[..., 3] ** 2).sum(axis=(1, 2)) / np.maximum(n_rows, 1))
        scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        planes[..., 3] /= scale[:, None, None]
        A = (planes * np.where(usable, w, 0.0)[..., None, None]).reshape(J, 2 * V, 4)
        h = np.linalg.svd(A)[2][:, -1]  # (J, 4)
        X = scale[:, None] * h[:, :3] / h[:, 3:]
    X[(usable.sum(axis=1) < 2) | ~(np.abs(h[:, 3]) > 1e-12)] = np.nan
    return X


def reprojection_errors(P, X, uv):
    """``(J, V)`` pixel distances; NaN for NaN inputs, inf behind the camera."""
    P = np.asarray(P, dtype=np.float64)
    Xh = np.concatenate([np.asarray(X, dtype=np.float64), np.ones((len(X), 1))], axis=1)
    x = np.einsum("vab,jb->jva", P, Xh)  # (J, V, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.linalg.norm(x[..., :2] / x[..., 2:] - uv, axis=-1)
    err = np.where(x[..., 2] > 0, err, np.inf)
    return np.where(np.isnan(Xh).any(axis=1)[:, None] | np.isnan(uv).any(axis=2), np.nan, err)


def _lcg(state):
    return (state * 1103515245 + 12345) % 2147483648


def triangulation_stats(P, X, uv, weights, views, sigma_px=2.0):
    """``(rms (J,), sigma (J,))``: RMS reprojection px over ``views`` and ``sqrt(trace(cov))`` mm with
    ``cov = sigma_px^2 (G^T W G)^-1`` (``G`` the projection Jacobians, ``W`` the squared weights), by
    ``np.linalg.inv``."""
    P = np.asarray(P, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    views = np.asarray(views, dtype=bool)
    J = len(X)
    rms = np.full(J, np.nan)
    sigma = np.full(J, np.nan)
    Xh = np.concatenate([X, np.ones((J, 1))], axis=1)
    x = np.einsum("vab,jb->jva", P, Xh)  # (J, V, 3)
    for j in range(J):
        sel = np.flatnonzero(views[j])
        if np.isnan(X[j]).any() or len(sel) == 0:
            continue
        z = x[j, sel, 2]
        if not (z > 0).all():
            rms[j] = sigma[j] = np.inf
            continue
        proj = x[j, sel, :2] / z[:, None]  # (n, 2)
        rms[j] = np.sqrt(np.mean(np.sum((proj - uv[j, sel]) ** 2, axis=1)))
        G = (P[sel, :2, :3] - proj[:, :, None] * P[sel, 2:3, :3]) / z[:, None, None]  # (n, 2, 3)
        G = G.reshape(-1, 3)
        W = np.repeat(w[j, sel] ** 2, 2)
        A = G.T @ (W[:, None] * G)
        tr = np.trace(A)
        if len(sel) < 2 or not np.linalg.det(A) > 1e-12 * tr**3:
            sigma[j] = np.inf
            continue
        sigma[j] = sigma_px * np.sqrt(np.trace(np.linalg.inv(A)))
    return rms, sigma


def _pair_point(P, uv_j, w_j, a, b):
    """Two-view least-squares point of the unit-normal planes of views ``a``, ``b`` (None if degenerate)."""
    rows, rhs = [], []
    for v in (a, b):
        for axis in range(2):
            plane = uv_j[v, axis] * P[v, 2] - P[v, axis]
            plane = plane / np.linalg.norm(plane[:3])
            rows.append(w_j[v] * plane[:3])
            rhs.append(-w_j[v] * plane[3])
    A, r = np.array(rows), np.array(rhs)
    N = A.T @ A
    if not np.linalg.det(N) > 1e-10 * np.trace(N) ** 3:
        return None
    return np.linalg.solve(N, A.T @ r)


def triangulate_ransac(P, uv, weights, threshold_px=10.0, sigma_px=2.0, min_inliers=2, max_hypotheses=28, seed=0):
    """RANSAC over views per joint, as :func:`kernels.triangulate_ransac` (same hypotheses, same random
    pairs, same scoring), written with NumPy per joint; final DLT by :func:`triangulate_dlt` (SVD).

    Returns ``(X (J, 3), inliers (J, V), rms (J,), sigma (J,))``.
    """
    P = np.asarray(P, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    J, V = w.shape
    X = np.full((J, 3), np.nan)
    inliers = np.zeros((J, V), bool)
    rms = np.full(J, np.nan)
    sigma = np.full(J, np.nan)
    usable_all = (w > 0) & np.isfinite(w) & np.isfinite(uv).all(axis=2)
    need = max(2, min_inliers)
    for j in range(J):
        usable = np.flatnonzero(usable_all[j])
        n = len(usable)
        if n < need:
            continue
        pairs = [(usable[a], usable[b]) for a in range(n) for b in range(a + 1, n)]
        if len(pairs) > max_hypotheses:
            state = ((seed % 2147483648) * 1000003 + j * 7919 + 1) % 2147483648
            pairs = []
            for _ in range(max_hypotheses):
                state = _lcg(state)
                ia = state % n
                state = _lcg(state)
                ib = state % (n - 1)
                ib += ib >= ia
                pairs.append((usable[ia], usable[ib]))
        best, best_support, best_err = None, -1.0, np.inf
        for a, b in pairs:
            Xh = _pair_point(P, uv[j], w[j], a, b)
            if Xh is None:
                continue
            err = reprojection_errors(P, Xh[None], uv[j : j + 1])[0, usable]
            inl = err < threshold_px
            support = float(np.sum(w[j, usable][inl]))
            werr = float(np.sum((w[j, usable] * err)[inl]))
            if support > best_support + 1e-9 or (abs(support - best_support) <= 1e-9 and werr < best_err):
                best, best_support, best_err = usable[inl], support, werr
        if best is None or len(best) < need:
            continue
        wm = np.zeros((1, V))
        wm[0, best] = w[j, best]
        Xj = triangulate_dlt(P, uv[j : j + 1], wm)[0]
        if np.isnan(Xj).any():
            continue
        X[j] = Xj
        inliers[j, best] = True
        r, s = triangulation_stats(P, Xj[None], uv[j : j + 1], w[j : j + 1], inliers[j : j + 1], sigma_px)
        rms[j], sigma[j] = r[0], s[0]
    return X, inliers, rms, sigma
