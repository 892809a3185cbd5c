"""V2V-PoseNet heatmaps: Gaussian training targets and the sub-voxel argmax that reads joints back.

Heatmaps live on the grid of :mod:`kernels.voxel` (a cube of ``cube_mm`` around ``ref``, ``D``
voxels per side, ``hm[n, i, j, k]`` for joint ``n`` with i along camera x, j along y, k along z),
in continuous voxel coordinates where integer values are voxel centres. V2V-PoseNet's output grid is 44^3 over
the same cube as its 88^3 input.

Targets (Moon et al. 2018, eq. 1): ``H(i, j, k) = exp(-|(i, j, k) - g|^2 / (2 sigma^2))`` with ``g``
the joint's continuous voxel coordinates and ``sigma = 1.7`` voxels.

Read-out (HANDS 2019, Hruz): the global maximum of each channel, refined to sub-voxel precision
around it, either

* ``REFINE_MEAN`` (default; the slides' "S-max", as we read them): the mean of the voxel positions in
  the ``(2 radius + 1)^3`` window around the maximum (clipped at the grid border), weighted by the
  heatmap values clipped at >= 0. It is biased towards the maximum voxel's centre when the window
  is small against the peak: on ``sigma = 1.7`` Gaussians the worst per-axis error is 0.39 voxel
  with radius 1 (mean 0.20; 2.2 mm for a 250 mm cube at 44^3), 0.23 with radius 2, 0.16 with
  radius 3; or
* ``REFINE_GAUSS`` ("Gauss" in the slides, the better one there, 39.61 -> 38.08 mm): per axis, the
  vertex of the parabola through the logarithms of the maximum and its two neighbours, exact for a
  Gaussian peak; an axis where a neighbour is off the grid or not positive falls back to the
  weighted mean. On exact Gaussians it recovers the joint to 2e-7 voxel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels.voxel import grid_params

__all__ = [
    "REFINE_MEAN",
    "REFINE_GAUSS",
    "gaussian_heatmaps",
    "gaussian_heatmaps_batch",
    "gaussian_heatmaps_into",
    "subvoxel_argmax",
    "subvoxel_argmax_batch",
    "subvoxel_argmax_into",
]

REFINE_MEAN = 0
REFINE_GAUSS = 1

# The max search reads blocks of _BLOCK values through _LANES independent running maxima (which
# the compiler turns into SIMD max instructions), then looks for the first maximum only inside the
# block that holds it.
_BLOCK = 2048
_LANES = 64


@njit(cache=True)
def _check_refs(refs, m):
    if refs.ndim != 2 or refs.shape[0] != m or refs.shape[1] != 3:
        raise ValueError("refs must have shape (B, 3), one reference point per sample")


@njit(cache=True)
def _check_grid(cube_mm, D):
    """Raise before a parallel loop what :func:`grid_params` would raise inside it."""
    if not cube_mm > 0.0:
        raise ValueError("cube_mm must be positive")
    if D < 1:
        raise ValueError("D (voxels per side) must be >= 1")


@njit(cache=True)
def _tile_ref(ref, n):
    """``(n, 3)`` float64, every row ``ref`` ``(3,)``."""
    if ref.shape[0] != 3:
        raise ValueError("ref must have shape (3,)")
    out = np.empty((n, 3), np.float64)
    for a in range(n):
        for c in range(3):
            out[a, c] = ref[c]
    return out


@njit(cache=True)
def _repeat_rows(refs, J):
    """``(B * J, 3)`` float64: row ``b * J + j`` is ``refs[b]`` (``refs`` ``(B, 3)``)."""
    B = refs.shape[0]
    out = np.empty((B * J, 3), np.float64)
    for b in range(B):
        for j in range(J):
            for c in range(3):
                out[b * J + j, c] = refs[b, c]
    return out


@njit(cache=True, parallel=True)
def gaussian_heatmaps_into(out, joints, refs, cube_mm, sigma=1.7):
    """Gaussian targets written into ``out``, one heatmap per row of ``joints``.

    Computed separably: ``out[m, i, j, k] = float32(gx[i] * gy[j] * gz[k])`` with the 1D Gaussians
    ``gx[i] = exp(-(i - g_x)^2 / (2 sigma^2))`` evaluated in float64.

    Args:
        out: ``(M, D, D, D)`` float32, C-contiguous; overwritten.
        joints: ``(M, 3)`` mm, camera frame; a row with a NaN gives an all-zero heatmap.
        refs: ``(M, 3)`` cube centre of each row, mm, camera frame.
        cube_mm: cube edge, mm.
        sigma: Gaussian standard deviation in voxels (of this ``D``).

    Returns:
        ``out``.
    """
    M = out.shape[0]
    D = out.shape[1]
    if out.shape[2] != D or out.shape[3] != D:
        raise ValueError("out must have shape (M, D, D, D)")
    if joints.ndim != 2 or joints.shape[0] != M or joints.shape[1] != 3:
        raise ValueError("joints must have shape (M, 3) matching out")
    _check_refs(refs, M)
    _check_grid(cube_mm, D)
    if not sigma > 0.0:
        raise ValueError("sigma must be positive")
    c = 1.0 / (2.0 * sigma * sigma)
    for m in prange(M):
        lx, ly, lz, inv = grid_params(refs[m], cube_mm, D)
        gx = (joints[m, 0] - lx) * inv - 0.5
        gy = (joints[m, 1] - ly) * inv - 0.5
        gz = (joints[m, 2] - lz) * inv - 0.5
        hm = out[m]
        if np.isnan(gx) or np.isnan(gy) or np.isnan(gz):
            hm[:] = 0.0
            continue
        ex = np.empty(D, np.float64)
        ey = np.empty(D, np.float64)
        ez = np.empty(D, np.float64)
        for i in range(D):
            ex[i] = math.exp(-((i - gx) ** 2) * c)
            ey[i] = math.exp(-((i - gy) ** 2) * c)
            ez[i] = math.exp(-((i - gz) ** 2) * c)
        for i in range(D):
            for j in range(D):
                a = ex[i] * ey[j]
                for k in range(D):
                    hm[i, j, k] = a * ez[k]
    return out


@njit(cache=True)
def gaussian_heatmaps(joints, ref, cube_mm, D=44, sigma=1.7):
    """V2V-PoseNet training targets of one hand.

    Args:
        joints: ``(J, 3)`` mm, camera frame; a joint with a NaN coordinate gets an all-zero heatmap.
            Joints outside the cube are allowed (their Gaussian's tail may reach into the grid).
        ref: ``(3,)`` cube centre, mm, camera frame.
        cube_mm: cube edge, mm.
        D: voxels per side of the heatmaps (44 for V2V-PoseNet).
        sigma: Gaussian standard deviation in voxels (1.7 in the paper).

    Returns:
        ``(J, D, D, D)`` float32, peak 1 at each joint's continuous voxel position.
    """
    J = joints.shape[0]
    out = np.empty((J, D, D, D), np.float32)
    refs = _tile_ref(ref, J)
    return gaussian_heatmaps_into(out, joints, refs, float(cube_mm), float(sigma))


@njit(cache=True)
def gaussian_heatmaps_batch(joints, refs, cube_mm, D=44, sigma=1.7):
    """:func:`gaussian_heatmaps` of a batch of hands, each with its own cube centre.

    Args:
        joints: ``(B, J, 3)`` mm, camera frame.
        refs: ``(B, 3)`` cube centres, mm, camera frame.
        cube_mm, D, sigma: as :func:`gaussian_heatmaps`.

    Returns:
        ``(B, J, D, D, D)`` float32.
    """
    B, J = joints.shape[0], joints.shape[1]
    _check_refs(refs, B)
    out = np.empty((B, J, D, D, D), np.float32)
    flat = np.ascontiguousarray(joints).reshape(B * J, 3)
    gaussian_heatmaps_into(out.reshape(B * J, D, D, D), flat, _repeat_rows(refs, J), float(cube_mm), float(sigma))
    return out


@njit(cache=True)
def _first_max(f):
    """Index of the first maximum of a flat array, NaN ignored; -1 when no value beats -inf."""
    n = f.shape[0]
    nb = n // _BLOCK
    acc = np.empty(_LANES, f.dtype)
    best = -np.inf
    bb = -1
    for b in range(nb):
        s = b * _BLOCK
        for q in range(_LANES):
            acc[q] = -np.inf
        for s2 in range(s, s + _BLOCK, _LANES):
            for q in range(_LANES):
                v = f[s2 + q]
                acc[q] = v if v > acc[q] else acc[q]
        m0 = -np.inf
        for q in range(_LANES):
            m0 = acc[q] if acc[q] > m0 else m0
        if m0 > best:
            best = m0
            bb = b
    for t in range(nb * _BLOCK, n):  # the tail block
        if f[t] > best:
            best = f[t]
            bb = nb
    if bb < 0:
        return -1
    for t in range(bb * _BLOCK, min(n, bb * _BLOCK + _BLOCK)):
        if f[t] == best:
            return t
    return -1


@njit(cache=True)
def _log_parabola(a, b, c):
    """Vertex offset in (-0.5, 0.5) of the parabola through ``log`` of three samples at -1, 0, 1.

    ``b`` is the maximum; returns NaN when ``a`` or ``c`` is not positive or the samples are flat.
    """
    if not (a > 0.0 and c > 0.0):
        return np.nan
    la = math.log(a)
    lb = math.log(b)
    lc = math.log(c)
    den = la - 2.0 * lb + lc
    if not den < 0.0:
        return np.nan
    return 0.5 * (la - lc) / den


@njit(cache=True, parallel=True)
def subvoxel_argmax_into(coords, conf, heatmaps, refs, cube_mm, radius=1, refine=REFINE_MEAN):
    """Sub-voxel argmax of ``M`` heatmaps, written into ``coords`` and ``conf``; parallel over M.

    Args:
        coords: ``(M, 3)`` float64; overwritten with joints in mm, camera frame.
        conf: ``(M,)`` float32; overwritten with the maximum values (0 where there is none).
        heatmaps: ``(M, D, D, D)`` float32 (or float64), C-contiguous.
        refs: ``(M, 3)`` cube centre of each heatmap, mm, camera frame.
        cube_mm, radius, refine: as :func:`subvoxel_argmax`.

    Returns:
        ``(coords, conf)``.
    """
    M = heatmaps.shape[0]
    D = heatmaps.shape[1]
    if heatmaps.ndim != 4 or heatmaps.shape[2] != D or heatmaps.shape[3] != D:
        raise ValueError("heatmaps must have shape (M, D, D, D)")
    if coords.shape[0] != M or coords.shape[1] != 3 or conf.shape[0] != M:
        raise ValueError("coords must be (M, 3) and conf (M,) for M heatmaps")
    _check_refs(refs, M)
    _check_grid(cube_mm, D)
    if radius < 0:
        raise ValueError("radius must be >= 0")
    if refine != REFINE_MEAN and refine != REFINE_GAUSS:
        raise ValueError("refine must be REFINE_MEAN (0) or REFINE_GAUSS (1)")
    flat = heatmaps.reshape(M, D * D * D)
    s = float(cube_mm) / D
    for m in prange(M):
        t = _first_max(flat[m])
        if t < 0 or not flat[m, t] > 0.0:
            coords[m, 0] = np.nan
            coords[m, 1] = np.nan
            coords[m, 2] = np.nan
            conf[m] = 0.0
            continue
        hm = heatmaps[m]
        best = flat[m, t]
        i = t // (D * D)
        j = (t // D) % D
        k = t % D
        sw = 0.0
        si = 0.0
        sj = 0.0
        sk = 0.0
        for a in range(max(0, i - radius), min(D, i + radius + 1)):
            for b in range(max(0, j - radius), min(D, j + radius + 1)):
                for c in range(max(0, k - radius), min(D, k + radius + 1)):
                    v = hm[a, b, c]
                    if v > 0.0:
                        sw += v
                        si += v * a
                        sj += v * b
                        sk += v * c
        gi = si / sw
        gj = sj / sw
        gk = sk / sw
        if refine == REFINE_GAUSS:
            if 0 < i < D - 1:
                o = _log_parabola(hm[i - 1, j, k], best, hm[i + 1, j, k])
                if not np.isnan(o):
                    gi = i + o
            if 0 < j < D - 1:
                o = _log_parabola(hm[i, j - 1, k], best, hm[i, j + 1, k])
                if not np.isnan(o):
                    gj = j + o
            if 0 < k < D - 1:
                o = _log_parabola(hm[i, j, k - 1], best, hm[i, j, k + 1])
                if not np.isnan(o):
                    gk = k + o
        lx, ly, lz, inv = grid_params(refs[m], cube_mm, D)
        coords[m, 0] = lx + (gi + 0.5) * s
        coords[m, 1] = ly + (gj + 0.5) * s
        coords[m, 2] = lz + (gk + 0.5) * s
        conf[m] = best
    return coords, conf


@njit(cache=True)
def subvoxel_argmax(heatmaps, ref, cube_mm, radius=1, refine=REFINE_MEAN):
    """Joints of one hand read from its heatmaps: global maximum, refined around it.

    The maximum is the first one in C order (ties), NaN values never win; the refinement ignores
    NaN and negative values (weight 0).

    Args:
        heatmaps: ``(J, D, D, D)`` float32 (float64 works too), on the grid of ``ref`` and
            ``cube_mm``.
        ref: ``(3,)`` cube centre, mm, camera frame.
        cube_mm: cube edge, mm.
        radius: half-size of the refinement window in voxels (0: the maximum voxel's centre).
        refine: ``REFINE_MEAN`` (weighted mean, default) or ``REFINE_GAUSS`` (log-parabola fit);
            see the module docstring.

    Returns:
        ``(coords, confidence)``: ``(J, 3)`` float64 joints in mm, camera frame, and ``(J,)``
        float32 maximum heatmap values. A heatmap with no positive value (all NaN, zero or
        negative) gives NaN coordinates and confidence 0.
    """
    J = heatmaps.shape[0]
    coords = np.empty((J, 3), np.float64)
    conf = np.empty(J, np.float32)
    refs = _tile_ref(ref, J)
    hm = np.ascontiguousarray(heatmaps)
    return subvoxel_argmax_into(coords, conf, hm, refs, float(cube_mm), int(radius), int(refine))


@njit(cache=True)
def subvoxel_argmax_batch(heatmaps, refs, cube_mm, radius=1, refine=REFINE_MEAN):
    """:func:`subvoxel_argmax` of a batch, parallel over all ``B * J`` heatmaps.

    Args:
        heatmaps: ``(B, J, D, D, D)`` float32.
        refs: ``(B, 3)`` cube centres, mm, camera frame.
        cube_mm, radius, refine: as :func:`subvoxel_argmax`.

    Returns:
        ``(coords, confidence)``: ``(B, J, 3)`` float64 mm and ``(B, J)`` float32.
    """
    B, J, D = heatmaps.shape[0], heatmaps.shape[1], heatmaps.shape[2]
    _check_refs(refs, B)
    coords = np.empty((B, J, 3), np.float64)
    conf = np.empty((B, J), np.float32)
    hm = np.ascontiguousarray(heatmaps).reshape(B * J, D, D, heatmaps.shape[4])
    refs_rows = _repeat_rows(refs, J)
    subvoxel_argmax_into(
        coords.reshape(B * J, 3), conf.reshape(B * J), hm, refs_rows, float(cube_mm), int(radius), int(refine)
    )
    return coords, conf
