"""Ray / primitive intersection: the canonical shapes, one primitive against any ray, rays from the
camera centre (the z-buffer's and the shader's), and per-ray queries (first hits, joint visibility).

Primitives. Every primitive is an affine image ``{org + M @ q}`` of a canonical convex shape ``q``
given in local units; the kernels take ``minv = M^-1`` and never ``M``. Two kinds (``kind[i]``):

* ``KIND_CONE`` (0): the **round cone** from ``la`` to ``lb`` with radii ``ra``, ``rb`` (the convex
  hull of two spheres, i.e. a tapered capsule with spherical ends). A flattened tapered capsule is
  ``M = I + (f - 1) v v^T`` with ``v`` perpendicular to its axis; an ellipsoid is the unit sphere
  (``la = lb = 0``, ``ra = rb = 1``) under ``M = [u1 u2 u3]`` (semi-axis vectors as columns).
* ``KIND_SLAB`` (1): the **rounded rectangle slab** ``[-hx, hx] x [-hy, hy] x {0}`` swept by a ball of
  radius ``ra`` (``hx, hy = la[0], la[1]``): flat faces ``z = +-ra`` with fully rounded rims. Under a
  sheared, flattened ``M`` it is the palm.

Rays are intersected exactly in the local frame (an affine map keeps the ray parameter), so depths
are exact to float64 rounding. Only hits with ``Z > NEAR_MM`` count as seen by the camera.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "NEAR_MM",
    "KIND_CONE",
    "KIND_SLAB",
    "hit_t",
    "signed_distance",
    "normal_at",
    "primary_setup",
    "primary_hit",
    "primary_normal",
    "cast_rays",
    "joint_visibility",
]

#: Hits nearer than this (mm) are ignored (the camera is never inside the hand).
NEAR_MM = 1.0

#: ``kind`` of a round cone (tapered capsule, ellipsoid).
KIND_CONE = 0
#: ``kind`` of a rounded rectangle slab (the palm).
KIND_SLAB = 1


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
def joint_visibility(minv, org, la, lb, ra, rb, kind, hand, joints, radius, mask, fx, fy, cx, cy, tol_mm):
    """Project the joints of every hand and decide which ones the camera sees.

    A joint is visible when it lies in front of the camera and inside the image, its pixel shows its
    own hand (``mask == k + 1``), and the first surface along its camera ray belongs to its hand and
    lies no more than its local skin radius plus ``tol_mm`` in front of it (a finger, palm or other
    hand further in front hides it, and so does a finger pointing at the camera its own base).

    Args:
        minv, org, la, lb, ra, rb, kind: the primitives; hand: ``(N,)`` int32 hand of each.
        joints: ``(K, J, 3)`` float64 camera mm; radius: ``(K, J)`` local skin radius of each joint.
        mask: ``(H, W)`` uint8 from :func:`kernels.render.sensor.finish`.
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
