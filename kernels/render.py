"""Ray-casting kernels of the hand renderer: z-buffer, normals, shading, per-ray queries.

Primitives. Every primitive is an affine image ``{org + M @ q}`` of a canonical convex shape ``q``
given in local units; the kernels take ``minv = M^-1`` and never ``M``. Two kinds (``kind[i]``):

* ``KIND_CONE`` (0): the **round cone** from ``la`` to ``lb`` with radii ``ra``, ``rb`` (the convex
  hull of two spheres, i.e. a tapered capsule with spherical ends). A flattened tapered capsule is
  ``M = I + (f - 1) v v^T`` with ``v`` perpendicular to its axis; an ellipsoid is the unit sphere
  (``la = lb = 0``, ``ra = rb = 1``) under ``M = [u1 u2 u3]`` (semi-axis vectors as columns).
* ``KIND_SLAB`` (1): the **rounded rectangle slab** ``[-hx, hx] x [-hy, hy] x {0}`` swept by a ball of
  radius ``ra`` (``hx, hy = la[0], la[1]``): flat faces ``z = +-ra`` with fully rounded rims. Under a
  sheared, flattened ``M`` it is the palm.

The geometry arguments of the kernels are ``minv`` ``(N, 3, 3)``, ``org`` ``(N, 3)``, ``la``, ``lb``
``(N, 3)``, ``ra``, ``rb`` ``(N,)`` float64 and ``kind`` ``(N,)`` int8 (see
:func:`models.hand_surface.pack`). Rays are intersected exactly in the local frame (an affine map
keeps the ray parameter), so depths are exact to float64 rounding.

Conventions (:mod:`tracker.core.structures`): camera frame mm (x right, y down, z forward), pinhole
``u = fx * X / Z + cx``; pixel ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``; the ray of
image point ``(u, v)`` is ``((u - cx) / fx, (v - cy) / fy, 1)`` from the camera centre, so the ray
parameter of a hit is its depth Z in mm. Only hits with ``Z > NEAR_MM`` count.

Parallel kernels split the image by rows (``prange``); each row is written by one iteration only,
so results are race-free and identical whatever the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "NEAR_MM",
    "KIND_CONE",
    "KIND_SLAB",
    "MAT_ALBEDO",
    "MAT_SKIN",
    "MAT_VOLAR",
    "MAT_TEX_A",
    "MAT_TEX_B",
    "MAT_NAIL",
    "MAT_COLS",
    "P_LIGHT",
    "P_AMBIENT",
    "P_DIFFUSE",
    "P_SPECULAR",
    "P_SHININESS",
    "P_DORSAL",
    "P_NAIL",
    "P_CREASE",
    "P_SHADOW",
    "P_SHADOW_MM",
    "P_SPEC_CUT",
    "P_HALF",
    "P_COLS",
    "hit_t",
    "signed_distance",
    "normal_at",
    "primary_setup",
    "primary_hit",
    "primary_normal",
    "screen_bounds",
    "zbuffer",
    "crease_map",
    "shade",
    "finish",
    "cast_rays",
    "joint_visibility",
    "depth_edges",
    "noisy_depth",
]

#: Hits nearer than this (mm) are ignored (the camera is never inside the hand).
NEAR_MM = 1.0

KIND_CONE = 0
KIND_SLAB = 1

# Material table columns (``mat`` (N, MAT_COLS) float64), one row per primitive.
MAT_ALBEDO = 0  # 3: RGB albedo in [0, 1] (volar side for skin)
MAT_SKIN = 3  # 1: 1.0 for skin (dorsal tint and nails apply), 0.0 for cloth
MAT_VOLAR = 4  # 3: unit volar axis (out of the palm / finger pad)
MAT_TEX_A = 7  # 3: texture axis start (camera mm); s = 0 here
MAT_TEX_B = 10  # 3: texture axis end; s = 1 here
MAT_NAIL = 13  # 2: nail range [s0, s1] along the texture axis (s0 >= s1: no nail)
MAT_COLS = 15

# Shading parameters (``params`` (P_COLS,) float64).
P_LIGHT = 0  # 3: unit direction towards the light, camera frame
P_AMBIENT = 3
P_DIFFUSE = 4
P_SPECULAR = 5
P_SHININESS = 6  # integer Blinn exponent
P_DORSAL = 7  # 3: albedo multiplier of the dorsal side of skin
P_NAIL = 10  # 3: nail albedo
P_CREASE = 13  # darkening in the middle of a crease line, [0, 1]
P_SHADOW = 14  # contact shadow strength, [0, 1] (0 = off)
P_SHADOW_MM = 15  # a neighbour this much nearer (mm) casts a contact shadow
P_SPEC_CUT = 16  # cos(normal, half vector) below which the specular term is dropped
P_HALF = 17  # 3: unit half vector between the light and the direction to the camera (0, 0, -1)
P_COLS = 20


# --------------------------------------------------------------------------------------------------
# Canonical shapes (local frame)
# --------------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _cone_terms(oax, oay, oaz, obx, oby, obz, bax, bay, baz, r1, r2):
    """Ray-independent terms ``(m0, y0, d2, k0, ca, cb)`` of :func:`_cone_hit` for the ray origin
    ``o`` (``oa = o - a``, ``ob = o - b``, ``ba = b - a``) and the radii ``r1`` at a, ``r2`` at b."""
    m0 = bax * bax + bay * bay + baz * baz
    m1 = bax * oax + bay * oay + baz * oaz
    m5 = oax * oax + oay * oay + oaz * oaz
    rr = r1 - r2
    d2 = m0 - rr * rr
    k0 = d2 * m5 - m1 * m1 + 2.0 * m1 * rr * r1 - m0 * r1 * r1
    return m0, m1 - r1 * rr, d2, k0, m5 - r1 * r1, obx * obx + oby * oby + obz * obz - r2 * r2


@njit(cache=True, error_model="numpy")
def _cone_hit(oax, oay, oaz, obx, oby, obz, bax, bay, baz, m0, y0, d2, k0, ca, cb, Dx, Dy, Dz, tlo):
    """First hit ``t > tlo`` of the ray ``o + t D`` (local, ``D`` any length) with a round cone
    (terms from :func:`_cone_terms`). Returns ``(t, piece)`` with piece 0 = the lateral band,
    1 = sphere a, 2 = sphere b; ``t = inf`` on a miss.

    The cone tangent to both spheres satisfies ``k2 t^2 + 2 k1 t + k0 = 0`` along the ray (Inigo
    Quilez's round-cone intersector, generalised to a non-unit direction); its roots count where the
    tangency coordinate ``y`` lies between the two tangency circles. The entry into the union of
    band and spheres is the smallest valid root.
    """
    dd = Dx * Dx + Dy * Dy + Dz * Dz
    m3 = Dx * oax + Dy * oay + Dz * oaz
    best = np.inf
    piece = 0
    if m0 > 0.0:
        m2 = bax * Dx + bay * Dy + baz * Dz
        k2 = d2 * dd - m2 * m2
        k1 = d2 * m3 - m2 * y0
        h = k1 * k1 - k0 * k2
        if k2 > 1e-9 * m0 * dd:
            # the ray crosses the convex cone once in and once out: the near root, when on the
            # band, is the entry into the round cone; no root, no hit (the spheres lie inside)
            if h < 0.0:
                return np.inf, 0
            t = (-k1 - math.sqrt(h)) / k2
            y = y0 + t * m2
            if 0.0 < y < d2:
                return (t, 0) if t > tlo else (np.inf, 0)
        elif abs(k2) > 1e-12 * m0 * dd:
            if h >= 0.0:
                sq = math.sqrt(h)
                for t in ((-k1 - sq) / k2, (-k1 + sq) / k2):
                    if tlo < t < best:
                        y = y0 + t * m2
                        if 0.0 < y < d2:
                            best = t
        elif k1 != 0.0:
            t = -k0 / (2.0 * k1)
            y = y0 + t * m2
            if tlo < t and 0.0 < y < d2:
                best = t
        m6 = Dx * obx + Dy * oby + Dz * obz
        hb = m6 * m6 - dd * cb
        if hb > 0.0:
            t = (-m6 - math.sqrt(hb)) / dd
            if tlo < t < best:
                best = t
                piece = 2
    ha = m3 * m3 - dd * ca
    if ha > 0.0:
        t = (-m3 - math.sqrt(ha)) / dd
        if tlo < t < best:
            best = t
            piece = 1
    return best, piece


@njit(cache=True, error_model="numpy")
def _slab_hit(ox, oy, oz, Dx, Dy, Dz, hx, hy, r, tlo):
    """First hit ``t > tlo`` of the ray ``o + t D`` (local) with the rounded rectangle slab
    ``[-hx, hx] x [-hy, hy] x {0}`` swept by a ball of radius ``r``; ``inf`` on a miss.

    The surface is cut into disjoint pieces: the two flat faces, four edge cylinders (outer halves)
    and four corner spheres (outer quadrants). The shape is convex, so the first root of a piece
    that lands on that piece is the entry; the smallest of them is returned.
    """
    best = np.inf
    # flat faces z = +-r
    if Dz != 0.0:
        for zf in (r, -r):
            t = (zf - oz) / Dz
            if tlo < t < best:
                x = ox + t * Dx
                y = oy + t * Dy
                if -hx <= x <= hx and -hy <= y <= hy:
                    best = t
    # cylinders along x (at y = +-hy) and along y (at x = +-hx)
    a = Dy * Dy + Dz * Dz
    if a > 0.0:
        for y0 in (hy, -hy):
            py = oy - y0
            b = py * Dy + oz * Dz
            h = b * b - a * (py * py + oz * oz - r * r)
            if h > 0.0:
                t = (-b - math.sqrt(h)) / a
                if tlo < t < best:
                    x = ox + t * Dx
                    y = oy + t * Dy
                    if -hx <= x <= hx and (y - y0) * y0 >= 0.0:
                        best = t
    a = Dx * Dx + Dz * Dz
    if a > 0.0:
        for x0 in (hx, -hx):
            px = ox - x0
            b = px * Dx + oz * Dz
            h = b * b - a * (px * px + oz * oz - r * r)
            if h > 0.0:
                t = (-b - math.sqrt(h)) / a
                if tlo < t < best:
                    x = ox + t * Dx
                    y = oy + t * Dy
                    if -hy <= y <= hy and (x - x0) * x0 >= 0.0:
                        best = t
    # corner spheres
    dd = Dx * Dx + Dy * Dy + Dz * Dz
    for k in range(4):
        x0 = hx if k < 2 else -hx
        y0 = hy if k % 2 == 0 else -hy
        px = ox - x0
        py = oy - y0
        b = px * Dx + py * Dy + oz * Dz
        h = b * b - dd * (px * px + py * py + oz * oz - r * r)
        if h > 0.0:
            t = (-b - math.sqrt(h)) / dd
            if tlo < t < best:
                x = ox + t * Dx
                y = oy + t * Dy
                if (x - x0) * x0 >= 0.0 and (y - y0) * y0 >= 0.0:
                    best = t
    return best


@njit(cache=True, error_model="numpy")
def _closest_local(la, lb, ra, rb, kind, i, qx, qy, qz):
    """For local point q: the nearest point ``c`` of the core (segment or rectangle) of primitive
    ``i`` in the sense of the swept ball, and the ball radius there. Returns ``(cx, cy, cz, r)``."""
    if kind[i] == KIND_SLAB:
        return (min(max(qx, -la[i, 0]), la[i, 0]), min(max(qy, -la[i, 1]), la[i, 1]), 0.0, ra[i])
    bax = lb[i, 0] - la[i, 0]
    bay = lb[i, 1] - la[i, 1]
    baz = lb[i, 2] - la[i, 2]
    l2 = bax * bax + bay * bay + baz * baz
    if l2 == 0.0:
        return la[i, 0], la[i, 1], la[i, 2], ra[i]
    px = qx - la[i, 0]
    py = qy - la[i, 1]
    pz = qz - la[i, 2]
    # minimise |q - c(s)| - r(s) over s (convex): closed form, then clamp
    w = (px * bax + py * bay + pz * baz) / l2
    h2 = max(px * px + py * py + pz * pz - w * w * l2, 0.0)
    dr = rb[i] - ra[i]
    den = l2 - dr * dr
    s = w + dr * math.sqrt(h2) / math.sqrt(l2 * den) if den > 0.0 else w
    s = min(max(s, 0.0), 1.0)
    return la[i, 0] + s * bax, la[i, 1] + s * bay, la[i, 2] + s * baz, ra[i] + s * dr


@njit(cache=True, error_model="numpy")
def _to_local(minv, org, i, x, y, z):
    px = x - org[i, 0]
    py = y - org[i, 1]
    pz = z - org[i, 2]
    return (minv[i, 0, 0] * px + minv[i, 0, 1] * py + minv[i, 0, 2] * pz,
            minv[i, 1, 0] * px + minv[i, 1, 1] * py + minv[i, 1, 2] * pz,
            minv[i, 2, 0] * px + minv[i, 2, 1] * py + minv[i, 2, 2] * pz)


# --------------------------------------------------------------------------------------------------
# One primitive, any ray
# --------------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def hit_t(minv, org, la, lb, ra, rb, kind, i, ox, oy, oz, dx, dy, dz, tmin):
    """Ray parameter of the first hit of the ray ``o + t d`` (``t > tmin``) with primitive ``i``;
    ``inf`` on a miss. ``d`` need not be unit: ``t`` is in units of ``|d|``."""
    olx, oly, olz = _to_local(minv, org, i, ox, oy, oz)
    Dx = minv[i, 0, 0] * dx + minv[i, 0, 1] * dy + minv[i, 0, 2] * dz
    Dy = minv[i, 1, 0] * dx + minv[i, 1, 1] * dy + minv[i, 1, 2] * dz
    Dz = minv[i, 2, 0] * dx + minv[i, 2, 1] * dy + minv[i, 2, 2] * dz
    if Dx == 0.0 and Dy == 0.0 and Dz == 0.0:
        return np.inf
    if kind[i] == KIND_SLAB:
        return _slab_hit(olx, oly, olz, Dx, Dy, Dz, la[i, 0], la[i, 1], ra[i], tmin)
    oax, oay, oaz = olx - la[i, 0], oly - la[i, 1], olz - la[i, 2]
    obx, oby, obz = olx - lb[i, 0], oly - lb[i, 1], olz - lb[i, 2]
    bax, bay, baz = lb[i, 0] - la[i, 0], lb[i, 1] - la[i, 1], lb[i, 2] - la[i, 2]
    m0, y0, d2, k0, ca, cb = _cone_terms(oax, oay, oaz, obx, oby, obz, bax, bay, baz, ra[i], rb[i])
    t, _ = _cone_hit(oax, oay, oaz, obx, oby, obz, bax, bay, baz, m0, y0, d2, k0, ca, cb, Dx, Dy, Dz, tmin)
    return t


@njit(cache=True, error_model="numpy")
def signed_distance(minv, org, la, lb, ra, rb, kind, i, x, y, z):
    """Signed distance (local units; < 0 inside) of point ``(x, y, z)`` to primitive ``i``.

    Exact in the local (undeformed) frame outside the primitive; only its sign is used here.
    """
    qx, qy, qz = _to_local(minv, org, i, x, y, z)
    cx, cy, cz, r = _closest_local(la, lb, ra, rb, kind, i, qx, qy, qz)
    return math.sqrt((qx - cx) ** 2 + (qy - cy) ** 2 + (qz - cz) ** 2) - r


@njit(cache=True, error_model="numpy")
def normal_at(minv, org, la, lb, ra, rb, kind, i, x, y, z):
    """Unit outward normal (camera frame) of primitive ``i`` at its surface point ``(x, y, z)``."""
    qx, qy, qz = _to_local(minv, org, i, x, y, z)
    cx, cy, cz, _ = _closest_local(la, lb, ra, rb, kind, i, qx, qy, qz)
    return _world_normal(minv, i, qx - cx, qy - cy, qz - cz)


@njit(cache=True, error_model="numpy")
def _world_normal(minv, i, gx, gy, gz):
    """Unit world normal ``minv^T g`` of the local gradient ``g``."""
    nx = minv[i, 0, 0] * gx + minv[i, 1, 0] * gy + minv[i, 2, 0] * gz
    ny = minv[i, 0, 1] * gx + minv[i, 1, 1] * gy + minv[i, 2, 1] * gz
    nz = minv[i, 0, 2] * gx + minv[i, 1, 2] * gy + minv[i, 2, 2] * gz
    n = math.sqrt(nx * nx + ny * ny + nz * nz)
    if n == 0.0:
        return 0.0, 0.0, -1.0
    inv = 1.0 / n
    return nx * inv, ny * inv, nz * inv


# --------------------------------------------------------------------------------------------------
# Rays from the camera centre
# --------------------------------------------------------------------------------------------------

_PRE_COLS = 26


@njit(cache=True, error_model="numpy")
def primary_setup(minv, org, la, lb, ra, rb, kind):
    """Ray-independent terms of every primitive for rays from the camera centre (the origin).

    Returns ``(N, 26)`` float64 rows: ``minv`` (9, row-major), the local camera centre relative to
    ``a`` (3) and to ``b`` (3), ``b - a`` (3), ``ra``, ``rb`` (-1 for a slab), then the terms of
    :func:`_cone_terms` (6); for a slab: ``minv``, the local camera centre, ``(hx, hy)``, ``r``.
    """
    n = minv.shape[0]
    pre = np.zeros((n, _PRE_COLS))
    for i in range(n):
        for r in range(3):
            for c in range(3):
                pre[i, 3 * r + c] = minv[i, r, c]
        ox, oy, oz = _to_local(minv, org, i, 0.0, 0.0, 0.0)
        if kind[i] == KIND_SLAB:
            pre[i, 9], pre[i, 10], pre[i, 11] = ox, oy, oz
            pre[i, 12], pre[i, 13] = la[i, 0], la[i, 1]
        else:
            pre[i, 9], pre[i, 10], pre[i, 11] = ox - la[i, 0], oy - la[i, 1], oz - la[i, 2]
            pre[i, 12], pre[i, 13], pre[i, 14] = ox - lb[i, 0], oy - lb[i, 1], oz - lb[i, 2]
            pre[i, 15], pre[i, 16], pre[i, 17] = lb[i, 0] - la[i, 0], lb[i, 1] - la[i, 1], lb[i, 2] - la[i, 2]
            terms = _cone_terms(pre[i, 9], pre[i, 10], pre[i, 11], pre[i, 12], pre[i, 13], pre[i, 14],
                                pre[i, 15], pre[i, 16], pre[i, 17], ra[i], rb[i])
            for c in range(6):
                pre[i, 20 + c] = terms[c]
        pre[i, 18] = ra[i]
        pre[i, 19] = rb[i] if kind[i] == KIND_CONE else 0.0
        if kind[i] == KIND_SLAB:
            pre[i, 19] = -1.0  # marks a slab (radii are positive)
    return pre


@njit(cache=True, error_model="numpy")
def primary_hit(pre, i, dx, dy):
    """First hit of the camera ray ``(dx, dy, 1)`` with primitive ``i`` (:func:`primary_setup`).

    Returns:
        ``(Z, piece)``: depth Z in mm (``inf`` on a miss or a hit nearer than :data:`NEAR_MM`) and,
        for a round cone, the piece hit (0 lateral band, 1 sphere a, 2 sphere b; for
        :func:`primary_normal`).
    """
    # local direction, not normalised: the ray parameter stays the world one (= Z)
    Dx = pre[i, 0] * dx + pre[i, 1] * dy + pre[i, 2]
    Dy = pre[i, 3] * dx + pre[i, 4] * dy + pre[i, 5]
    Dz = pre[i, 6] * dx + pre[i, 7] * dy + pre[i, 8]
    if pre[i, 19] < 0.0:
        return _slab_hit(pre[i, 9], pre[i, 10], pre[i, 11], Dx, Dy, Dz, pre[i, 12], pre[i, 13], pre[i, 18],
                         NEAR_MM), 0
    return _cone_hit(pre[i, 9], pre[i, 10], pre[i, 11], pre[i, 12], pre[i, 13], pre[i, 14], pre[i, 15],
                     pre[i, 16], pre[i, 17], pre[i, 20], pre[i, 21], pre[i, 22], pre[i, 23], pre[i, 24],
                     pre[i, 25], Dx, Dy, Dz, NEAR_MM)


@njit(cache=True, error_model="numpy")
def primary_normal(pre, i, dx, dy, t, piece):
    """Unit outward normal (camera frame) at the hit ``t``, ``piece`` of :func:`primary_hit`."""
    Dx = pre[i, 0] * dx + pre[i, 1] * dy + pre[i, 2]
    Dy = pre[i, 3] * dx + pre[i, 4] * dy + pre[i, 5]
    Dz = pre[i, 6] * dx + pre[i, 7] * dy + pre[i, 8]
    if pre[i, 19] < 0.0:  # slab: from the nearest point of the rectangle
        px = pre[i, 9] + t * Dx
        py = pre[i, 10] + t * Dy
        gx = px - min(max(px, -pre[i, 12]), pre[i, 12])
        gy = py - min(max(py, -pre[i, 13]), pre[i, 13])
        gz = pre[i, 11] + t * Dz
    elif piece == 1:
        gx = pre[i, 9] + t * Dx
        gy = pre[i, 10] + t * Dy
        gz = pre[i, 11] + t * Dz
    elif piece == 2:
        gx = pre[i, 12] + t * Dx
        gy = pre[i, 13] + t * Dy
        gz = pre[i, 14] + t * Dz
    else:
        bax, bay, baz = pre[i, 15], pre[i, 16], pre[i, 17]
        m0 = bax * bax + bay * bay + baz * baz
        rr = pre[i, 18] - pre[i, 19]
        d2 = m0 - rr * rr
        px = pre[i, 9] + t * Dx
        py = pre[i, 10] + t * Dy
        pz = pre[i, 11] + t * Dz
        y = bax * px + bay * py + baz * pz - pre[i, 18] * rr
        gx = d2 * px - bax * y
        gy = d2 * py - bay * y
        gz = d2 * pz - baz * y
    nx = pre[i, 0] * gx + pre[i, 3] * gy + pre[i, 6] * gz
    ny = pre[i, 1] * gx + pre[i, 4] * gy + pre[i, 7] * gz
    nz = pre[i, 2] * gx + pre[i, 5] * gy + pre[i, 8] * gz
    n = math.sqrt(nx * nx + ny * ny + nz * nz)
    if n == 0.0:
        return 0.0, 0.0, -1.0
    inv = 1.0 / n
    return nx * inv, ny * inv, nz * inv


# --------------------------------------------------------------------------------------------------
# Z-buffer
# --------------------------------------------------------------------------------------------------

_ROW_STRIDE = 7919  # prime: iteration k of a parallel row loop handles image row (k * stride) % H


@njit(cache=True, error_model="numpy")
def _row_of(k, height):
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
        minv, org, la, lb, ra, rb, kind: the primitives (module docstring), camera frame.
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
        row = _row_of(k, height)
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


# --------------------------------------------------------------------------------------------------
# Shading
# --------------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _smoothstep(e0, e1, x):
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@njit(cache=True, error_model="numpy")
def _ipow(x, n):
    """``x ** n`` for an integer ``n >= 0`` by squaring."""
    r = 1.0
    while n > 0:
        if n & 1:
            r *= x
        x *= x
        n >>= 1
    return r


@njit(cache=True, error_model="numpy")
def _shade_sample(i, x, y, z, nx, ny, nz, mat, params, crease):
    """RGB of primitive ``i`` at camera point ``(x, y, z)`` with unit normal ``n``, darkened by the
    crease darkness ``crease`` in [0, 1]."""
    ar = mat[i, MAT_ALBEDO]
    ag = mat[i, MAT_ALBEDO + 1]
    ab = mat[i, MAT_ALBEDO + 2]
    spec_k = params[P_SPECULAR]
    if mat[i, MAT_SKIN] > 0.0:
        nv = nx * mat[i, MAT_VOLAR] + ny * mat[i, MAT_VOLAR + 1] + nz * mat[i, MAT_VOLAR + 2]
        w = _smoothstep(-0.45, 0.25, nv)  # 1 on the volar side, dorsal tint on the back
        ar *= params[P_DORSAL] + w * (1.0 - params[P_DORSAL])
        ag *= params[P_DORSAL + 1] + w * (1.0 - params[P_DORSAL + 1])
        ab *= params[P_DORSAL + 2] + w * (1.0 - params[P_DORSAL + 2])
        s0 = mat[i, MAT_NAIL]
        s1 = mat[i, MAT_NAIL + 1]
        if s1 > s0 and nv < -0.3:
            tx = mat[i, MAT_TEX_B] - mat[i, MAT_TEX_A]
            ty = mat[i, MAT_TEX_B + 1] - mat[i, MAT_TEX_A + 1]
            tz = mat[i, MAT_TEX_B + 2] - mat[i, MAT_TEX_A + 2]
            l2 = tx * tx + ty * ty + tz * tz
            if l2 > 0.0:
                s = ((x - mat[i, MAT_TEX_A]) * tx + (y - mat[i, MAT_TEX_A + 1]) * ty
                     + (z - mat[i, MAT_TEX_A + 2]) * tz) / l2
                wn = (_smoothstep(-0.3, -0.5, nv) * _smoothstep(s0, s0 + 0.06, s)
                      * _smoothstep(s1, s1 - 0.04, s))
                if wn > 0.0:
                    ar += wn * (params[P_NAIL] - ar)
                    ag += wn * (params[P_NAIL + 1] - ag)
                    ab += wn * (params[P_NAIL + 2] - ab)
                    spec_k *= 1.0 + wn
    lx = params[P_LIGHT]
    ly = params[P_LIGHT + 1]
    lz = params[P_LIGHT + 2]
    ndl = max(nx * lx + ny * ly + nz * lz, 0.0)
    spec = 0.0
    if spec_k > 0.0:
        # Blinn with the half vector of the light and the optical axis (the view direction of
        # the image centre); terms below 1e-3 (cos under P_SPEC_CUT) are skipped
        ndh = nx * params[P_HALF] + ny * params[P_HALF + 1] + nz * params[P_HALF + 2]
        if ndh > params[P_SPEC_CUT]:
            spec = spec_k * _ipow(ndh, np.int64(params[P_SHININESS]))
    k = (params[P_AMBIENT] + params[P_DIFFUSE] * ndl) * (1.0 - params[P_CREASE] * crease)
    return ar * k + spec, ag * k + spec, ab * k + spec


@njit(cache=True, error_model="numpy")
def _to_u8(v):
    return np.uint8(min(max(v * 255.0 + 0.5, 0.0), 255.0))


@njit(cache=True, parallel=True, error_model="numpy")
def shade(depth, prim, normal, span, crease, minv, org, la, lb, ra, rb, kind, mat, groups, params, fx, fy,
          cx, cy, background, out, aa=2, shadow_step=1, edge_mm=3.0):
    """Shade the hand pixels of a z-buffer over a background, in place into ``out``.

    Per hand pixel: albedo (volar / dorsal tint, nails), skin creases (``crease``, from
    :func:`crease_map`), Lambert + ambient + Blinn specular, times a contact shadow where a pixel
    ``shadow_step`` px away (8 directions) or ``2 * shadow_step`` px away (4 directions) shows
    another shadow group between 1 and 12 times ``params[P_SHADOW_MM]`` nearer. Pixels whose
    4-neighbours show the background or a surface more than ``edge_mm`` away in depth (silhouettes,
    occlusion edges) are antialiased with ``aa x aa`` sub-pixel rays cast against the primitives seen
    in their 3x3 neighbourhood (``aa <= 1``: off).

    Args:
        depth, prim, normal, span: from :func:`zbuffer`.
        crease: ``(H, W)`` float32 crease darkness in [0, 1] (:func:`crease_map`).
        minv, org, la, lb, ra, rb, kind: the primitives.
        mat: ``(N, MAT_COLS)`` material table; groups: ``(N, 2)`` int32 (shadow group, crease group;
            -1 = none).
        params: ``(P_COLS,)`` shading parameters.
        fx, fy, cx, cy: the camera of the z-buffer.
        background: ``(H, W, 3)`` uint8; out: ``(H, W, 3)`` uint8, already holding the background
            (only pixels on or next to a hand are written).
    """
    height, width = depth.shape
    pre = primary_setup(minv, org, la, lb, ra, rb, kind)
    na = max(aa, 1)
    offs = np.empty(na)
    for k in range(na):
        offs[k] = (k + 0.5) / na - 0.5
    inv_ns = 1.0 / (na * na)
    shadow_k = params[P_SHADOW]
    shadow_mm = params[P_SHADOW_MM]
    for k_row in prange(height):
        row = _row_of(k_row, height)
        c0 = width
        c1 = -1
        for rr in range(max(row - 1, 0), min(row + 2, height)):
            if span[rr, 1] >= 0:
                c0 = min(c0, span[rr, 0])
                c1 = max(c1, span[rr, 1])
        if c1 < 0:
            continue
        c0 = max(c0 - 1, 0)
        c1 = min(c1 + 1, width - 1)
        cand = np.empty(9, np.int32)
        cov = np.zeros(9, np.int64)
        sub = np.empty((9, 6))
        for col in range(c0, c1 + 1):
            i = prim[row, col]
            z0 = depth[row, col]
            # an edge pixel: a 4-neighbour shows the background or a depth jump (or, for a
            # background pixel, any hand)
            edge = False
            any_hand = i >= 0
            for k in range(4):
                r2 = row + (-1, 1, 0, 0)[k]
                c2 = col + (0, 0, -1, 1)[k]
                if 0 <= r2 < height and 0 <= c2 < width:
                    j = prim[r2, c2]
                    if j < 0:
                        if i >= 0:
                            edge = True
                    else:
                        any_hand = True
                        if i < 0 or abs(depth[r2, c2] - z0) > edge_mm:
                            edge = True
            if not any_hand:
                continue
            # contact shadow of the pixel: a neighbour of another group a little nearer
            sh = 1.0
            if i >= 0 and shadow_k > 0.0:
                g = groups[i, 0]
                for step in range(1, 3):
                    d = step * shadow_step
                    for k in range(8 if step == 1 else 4):
                        r2 = row + (-1, 1, 0, 0, -1, -1, 1, 1)[k] * d
                        c2 = col + (0, 0, -1, 1, -1, 1, -1, 1)[k] * d
                        if 0 <= r2 < height and 0 <= c2 < width:
                            gap = z0 - depth[r2, c2]
                            if shadow_mm < gap < 12.0 * shadow_mm:
                                j = prim[r2, c2]
                                if groups[j, 0] != g:
                                    sh = min(sh, 1.0 - shadow_k * (0.42 - 0.14 * (step - 1)))
            if not edge or aa <= 1:
                if i < 0:
                    continue
                x = (col + 0.5 - cx) / fx * z0
                y = (row + 0.5 - cy) / fy * z0
                r, g_, b = _shade_sample(i, x, y, z0, normal[row, col, 0], normal[row, col, 1],
                                         normal[row, col, 2], mat, params, crease[row, col])
                out[row, col, 0] = _to_u8(r * sh)
                out[row, col, 1] = _to_u8(g_ * sh)
                out[row, col, 2] = _to_u8(b * sh)
                continue
            # distinct primitives of the neighbourhood: the candidates of the sub-pixel rays
            nc = 0
            for rr in range(max(row - 1, 0), min(row + 2, height)):
                for cc in range(max(col - 1, 0), min(col + 2, width)):
                    j = prim[rr, cc]
                    if j >= 0:
                        dup = False
                        for q in range(nc):
                            if cand[q] == j:
                                dup = True
                        if not dup:
                            cand[nc] = j
                            nc += 1
            # coverage of each candidate (and the background) by the sub-pixel rays; each surface
            # is shaded once: the pixel's own at the pixel centre, others at the mean of their
            # sub-rays (rays hitting a convex primitive form a convex set: the mean one hits too)
            for q in range(nc):
                cov[q] = 0
                sub[q, 4] = 0.0
                sub[q, 5] = 0.0
            cov_bg = 0
            for sy in range(na):
                ry = (row + 0.5 + offs[sy] - cy) / fy
                for sx in range(na):
                    rx = (col + 0.5 + offs[sx] - cx) / fx
                    best = np.inf
                    bq = -1
                    bp = 0
                    for q in range(nc):
                        t, piece = primary_hit(pre, cand[q], rx, ry)
                        if t < best or (t == best and bq >= 0 and cand[q] < cand[bq]):
                            best = t
                            bq = q
                            bp = piece
                    if bq < 0:
                        cov_bg += 1
                        continue
                    if cov[bq] == 0:
                        sub[bq, 0] = rx
                        sub[bq, 1] = ry
                        sub[bq, 2] = best
                        sub[bq, 3] = bp
                    cov[bq] += 1
                    sub[bq, 4] += rx
                    sub[bq, 5] += ry
            sr = cov_bg * (background[row, col, 0] / 255.0)
            sg = cov_bg * (background[row, col, 1] / 255.0)
            sb = cov_bg * (background[row, col, 2] / 255.0)
            for q in range(nc):
                if cov[q] == 0:
                    continue
                j = cand[q]
                if j == i:
                    x = (col + 0.5 - cx) / fx * z0
                    y = (row + 0.5 - cy) / fy * z0
                    r, g_, b = _shade_sample(i, x, y, z0, normal[row, col, 0], normal[row, col, 1],
                                             normal[row, col, 2], mat, params, crease[row, col])
                    r *= sh
                    g_ *= sh
                    b *= sh
                else:
                    rx = sub[q, 4] / cov[q]
                    ry = sub[q, 5] / cov[q]
                    t, piece = primary_hit(pre, j, rx, ry)
                    if t == np.inf:  # rounding at a grazing edge: fall back to its first sub-ray
                        rx, ry, t, piece = sub[q, 0], sub[q, 1], sub[q, 2], np.int64(sub[q, 3])
                    nx, ny, nz = primary_normal(pre, j, rx, ry, t, piece)
                    r, g_, b = _shade_sample(j, rx * t, ry * t, t, nx, ny, nz, mat, params, 0.0)
                sr += cov[q] * r
                sg += cov[q] * g_
                sb += cov[q] * b
            out[row, col, 0] = _to_u8(sr * inv_ns)
            out[row, col, 1] = _to_u8(sg * inv_ns)
            out[row, col, 2] = _to_u8(sb * inv_ns)


@njit(cache=True, parallel=True, error_model="numpy")
def finish(depth, prim, hand, part, background_mm, near_mm, far_mm):
    """Sensor outputs of a noise-free z-buffer.

    Args:
        depth, prim: from :func:`zbuffer`.
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


# --------------------------------------------------------------------------------------------------
# Per-ray queries (placing creases on the skin, joint visibility)
# --------------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def cast_rays(minv, org, la, lb, ra, rb, kind, origins, dirs, prim_group, ray_group, tmin=0.0):
    """First hit of each ray ``origins[k] + t * dirs[k]`` (t > tmin) among the primitives ``i`` with
    ``prim_group[i] == ray_group[k]``.

    Returns:
        t: ``(R,)`` float64 ray parameter (units of ``|dirs[k]|``; ``inf`` on a miss).
        idx: ``(R,)`` int32 primitive hit (-1 on a miss).
    """
    nr = origins.shape[0]
    ts = np.full(nr, np.inf)
    idx = np.full(nr, -1, np.int32)
    for k in range(nr):
        for i in range(minv.shape[0]):
            if prim_group[i] != ray_group[k]:
                continue
            t = hit_t(minv, org, la, lb, ra, rb, kind, i, origins[k, 0], origins[k, 1], origins[k, 2],
                      dirs[k, 0], dirs[k, 1], dirs[k, 2], tmin)
            if t < ts[k]:
                ts[k] = t
                idx[k] = i
    return ts, idx


@njit(cache=True, error_model="numpy")
def crease_map(creases, crease_group, depth, prim, span, groups, fx, fy, cx, cy, dark, tol_mm=2.5):
    """Darkness in [0, 1] of skin creases, drawn as soft lines in the image.

    A crease segment (camera mm, on the skin) darkens the pixels within its half width of its
    projection, linearly falling off from its centre line, where the surface seen belongs to its
    crease group and lies within ``tol_mm`` of the segment's depth (so hidden creases stay hidden).

    Args:
        creases: ``(C, 7)`` float64 ``(p0, p1, half width mm)``; crease_group: ``(C,)`` int32.
        depth, prim, span: from :func:`zbuffer`; groups: ``(N, 2)`` (crease group in column 1).
        fx, fy, cx, cy: the camera.
        dark: ``(H, W)`` float32 out (may be a reused buffer): set on every pixel with a hit
            (``prim >= 0``); other pixels are not written.
    """
    height, width = depth.shape
    for row in range(height):
        for col in range(span[row, 0], span[row, 1] + 1):
            dark[row, col] = 0.0
    for c in range(creases.shape[0]):
        z0 = creases[c, 2]
        z1 = creases[c, 5]
        if z0 <= NEAR_MM or z1 <= NEAR_MM:
            continue
        u0 = fx * creases[c, 0] / z0 + cx
        v0 = fy * creases[c, 1] / z0 + cy
        u1 = fx * creases[c, 3] / z1 + cx
        v1 = fy * creases[c, 4] / z1 + cy
        wmax = max(fx, fy) * creases[c, 6] / min(z0, z1)
        x0 = max(int(math.floor(min(u0, u1) - wmax)), 0)
        x1 = min(int(math.ceil(max(u0, u1) + wmax)), width - 1)
        y0 = max(int(math.floor(min(v0, v1) - wmax)), 0)
        y1 = min(int(math.ceil(max(v0, v1) + wmax)), height - 1)
        ex = u1 - u0
        ey = v1 - v0
        e2 = ex * ex + ey * ey
        g = crease_group[c]
        for row in range(y0, y1 + 1):
            for col in range(x0, x1 + 1):
                j = prim[row, col]
                if j < 0 or groups[j, 1] != g:
                    continue
                qx = col + 0.5 - u0
                qy = row + 0.5 - v0
                s = min(max((qx * ex + qy * ey) / e2, 0.0), 1.0) if e2 > 0.0 else 0.0
                dx = qx - s * ex
                dy = qy - s * ey
                zs = z0 + s * (z1 - z0)
                w = max(fx, fy) * creases[c, 6] / zs
                d = math.sqrt(dx * dx + dy * dy)
                if d >= w or abs(depth[row, col] - zs) > tol_mm:
                    continue
                dark[row, col] = max(dark[row, col], 1.0 - d / w)


@njit(cache=True, error_model="numpy")
def joint_visibility(minv, org, la, lb, ra, rb, kind, hand, joints, radius, mask, fx, fy, cx, cy, tol_mm):
    """Project the joints of every hand and decide which ones the camera sees.

    A joint is visible when it lies in front of the camera and inside the image, its pixel shows its
    own hand (``mask == k + 1``), and the first surface along its camera ray belongs to its hand and
    lies no more than its local skin radius plus ``tol_mm`` in front of it (a finger, palm or other
    hand further in front hides it, and so does a finger pointing at the camera its own base).

    Args:
        minv, org, la, lb, ra, rb, kind: the primitives; hand: ``(N,)`` int32 hand of each.
        joints: ``(K, J, 3)`` float64 camera mm; radius: ``(K, J)`` local skin radius of each joint.
        mask: ``(H, W)`` uint8 from :func:`finish`.
        fx, fy, cx, cy: the camera; tol_mm: the tolerance.

    Returns:
        uv: ``(K, J, 2)`` float64 px (NaN for joints with ``Z <= 0``); visible: ``(K, J)`` bool.
    """
    nh, nj = joints.shape[0], joints.shape[1]
    height, width = mask.shape
    uv = np.full((nh, nj, 2), np.nan)
    visible = np.zeros((nh, nj), np.bool_)
    for k in range(nh):
        for jj in range(nj):
            x, y, z = joints[k, jj, 0], joints[k, jj, 1], joints[k, jj, 2]
            if z <= 0.0:
                continue
            u = fx * x / z + cx
            v = fy * y / z + cy
            uv[k, jj, 0] = u
            uv[k, jj, 1] = v
            if z <= NEAR_MM or not (0.0 <= u < width and 0.0 <= v < height):
                continue
            if mask[int(math.floor(v)), int(math.floor(u))] != k + 1:
                continue
            dist = math.sqrt(x * x + y * y + z * z)
            dx, dy, dz = x / dist, y / dist, z / dist
            best = np.inf
            bi = -1
            for i in range(minv.shape[0]):
                t = hit_t(minv, org, la, lb, ra, rb, kind, i, 0.0, 0.0, 0.0, dx, dy, dz, NEAR_MM)
                if t < best:
                    best = t
                    bi = i
            visible[k, jj] = bi >= 0 and hand[bi] == k and best >= dist - radius[k, jj] - tol_mm
    return uv, visible


@njit(cache=True, parallel=True, error_model="numpy")
def noisy_depth(depth, prim, background_mm, noise_a, noise_b, normal01, drop_edges, edge_u, edge_p, hole_u,
                hole_p, near_mm, far_mm):
    """Sensor-like depth readings of a z-buffer.

    ``Z' = Z + (a + b (Z / 1000)^2) n`` with ``n`` from ``normal01``, then a reading is dropped where
    ``drop_edges`` and ``edge_u < edge_p`` or where ``hole_u < hole_p``, rounded to whole mm, and
    kept within ``[near_mm, far_mm]``.

    Args:
        depth, prim: from :func:`zbuffer`; background_mm: wall depth where no primitive is hit (NaN
            = no reading).
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
