"""Shading of a z-buffer: materials, skin creases, Lambert + ambient + Blinn specular, contact
shadows, antialiased edges.

The material table ``mat`` ``(N, MAT_COLS)`` has one row per primitive (columns ``MAT_*``); the
shading parameters ``params`` ``(P_COLS,)`` hold the light and the shading model (entries ``P_*``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels.render.intersect import NEAR_MM, primary_hit, primary_normal, primary_setup
from kernels.render.zbuffer import row_of

__all__ = [
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
    "crease_map",
    "shade",
]

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
        depth, prim, normal, span: from :func:`kernels.render.zbuffer.zbuffer`.
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
        row = row_of(k_row, height)
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



@njit(cache=True, error_model="numpy")
def crease_map(creases, crease_group, depth, prim, span, groups, fx, fy, cx, cy, dark, tol_mm=2.5):
    """Darkness in [0, 1] of skin creases, drawn as soft lines in the image.

    A crease segment (camera mm, on the skin) darkens the pixels within its half width of its
    projection, linearly falling off from its centre line, where the surface seen belongs to its
    crease group and lies within ``tol_mm`` of the segment's depth (so hidden creases stay hidden).

    Args:
        creases: ``(C, 7)`` float64 ``(p0, p1, half width mm)``; crease_group: ``(C,)`` int32.
        depth, prim, span: from :func:`kernels.render.zbuffer.zbuffer`; groups: ``(N, 2)`` (crease group
            in column 1).
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
