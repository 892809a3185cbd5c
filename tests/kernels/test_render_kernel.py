"""Ray-casting kernels of the renderer against plain NumPy references (brute-force ray marching)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.render import (
    KIND_CONE,
    KIND_SLAB,
    NEAR_MM,
    depth_edges,
    finish,
    hit_t,
    normal_at,
    primary_hit,
    primary_normal,
    primary_setup,
    screen_bounds,
    signed_distance,
    zbuffer,
)


def _rot(axis: int, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def scene() -> dict[str, np.ndarray]:
    """Four primitives overlapping in depth, camera frame mm: a flattened tapered capsule, an
    ellipsoid, a sheared flattened slab and a capsule whose small sphere pokes out of its big one."""
    minv, org, la, lb, ra, rb, kind = [], [], [], [], [], [], []
    # tapered capsule, cross-section 0.6 as deep along v as wide
    a, b = np.array([-12.0, -6.0, 120.0]), np.array([14.0, 8.0, 135.0])
    d = (b - a) / np.linalg.norm(b - a)
    v = np.array([0.0, 0.0, 1.0]) - d[2] * d
    v /= np.linalg.norm(v)
    m = np.eye(3) + (0.6 - 1.0) * np.outer(v, v)
    minv.append(np.linalg.inv(m)), org.append(a), la.append(np.zeros(3)), lb.append(b - a)
    ra.append(9.0), rb.append(5.0), kind.append(KIND_CONE)
    # ellipsoid
    u = _rot(2, 30.0) @ _rot(0, 20.0) @ np.diag([16.0, 7.0, 10.0])
    minv.append(np.linalg.inv(u)), org.append(np.array([4.0, 5.0, 140.0])), la.append(np.zeros(3))
    lb.append(np.zeros(3)), ra.append(1.0), rb.append(1.0), kind.append(KIND_CONE)
    # slab: 2 * (6 x 4) rectangle swept by a ball of 3, sheared, flattened, tilted
    m = _rot(1, 35.0) @ _rot(0, -25.0) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.7]])
    minv.append(np.linalg.inv(m)), org.append(np.array([-8.0, 8.0, 128.0])), la.append(np.array([6.0, 4.0, 0.0]))
    lb.append(np.zeros(3)), ra.append(3.0), rb.append(3.0), kind.append(KIND_SLAB)
    # short capsule, strongly tapered, seen nearly along its axis
    a = np.array([10.0, -9.0, 110.0])
    minv.append(np.eye(3)), org.append(a), la.append(np.zeros(3)), lb.append(np.array([1.0, 1.0, 6.0]))
    ra.append(3.0), rb.append(1.5), kind.append(KIND_CONE)
    arr = [np.array(x, dtype=np.float64) for x in (minv, org, la, lb, ra, rb)]
    return dict(zip(("minv", "org", "la", "lb", "ra", "rb"), arr), kind=np.array(kind, np.int8))


def geometry(sc: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    return sc["minv"], sc["org"], sc["la"], sc["lb"], sc["ra"], sc["rb"], sc["kind"]


def sdf_reference(sc: dict[str, np.ndarray], i: int, p: np.ndarray) -> np.ndarray:
    """Signed distance (local units) of points ``(..., 3)`` to primitive ``i``, written from the
    definitions: a round cone is the union of the balls swept from (la, ra) to (lb, rb) (sampled
    densely along the segment); a slab is the rectangle swept by a ball."""
    q = (p - sc["org"][i]) @ sc["minv"][i].T
    if sc["kind"][i] == KIND_SLAB:
        hx, hy = sc["la"][i, 0], sc["la"][i, 1]
        c = np.stack([np.clip(q[..., 0], -hx, hx), np.clip(q[..., 1], -hy, hy), np.zeros(q.shape[:-1])], -1)
        return np.linalg.norm(q - c, axis=-1) - sc["ra"][i]
    s = np.linspace(0.0, 1.0, 129)  # sampled balls: SDF error about (L / 128)^2 / (8 r), microns here
    centres = sc["la"][i] + s[:, None] * (sc["lb"][i] - sc["la"][i])
    radii = sc["ra"][i] + s * (sc["rb"][i] - sc["ra"][i])
    d = np.linalg.norm(q[..., None, :] - centres, axis=-1) - radii
    return d.min(axis=-1)


def first_hit_reference(sc: dict[str, np.ndarray], dirs: np.ndarray, t0: float = 95.0, t1: float = 160.0,
                        step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: march every camera ray ``t * dir`` (t = depth, ``dir_z = 1``) through each
    primitive in ``step`` mm steps, bisect the first sign change of the reference SDF, keep the
    nearest primitive. Returns depth ``(R,)`` (inf on a miss) and primitive ``(R,)``.

    Only rays passing within a bounding sphere of a primitive are marched through it (the sphere is
    taken from the inverse map, independently of the kernels' bounds)."""
    ts = np.arange(t0, t1, step)
    best = np.full(len(dirs), np.inf)
    idx = np.full(len(dirs), -1)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    for i in range(len(sc["ra"])):
        m = np.linalg.inv(sc["minv"][i])
        centre = sc["org"][i] + m @ (0.5 * (sc["la"][i] + sc["lb"][i]))
        extent = 0.5 * np.linalg.norm(sc["lb"][i] - sc["la"][i]) + max(sc["ra"][i], sc["rb"][i])
        extent += np.linalg.norm(sc["la"][i][:2]) if sc["kind"][i] == KIND_SLAB else 0.0
        radius = np.linalg.norm(m, 2) * extent
        near = np.linalg.norm(centre - (unit @ centre)[:, None] * unit, axis=1) < radius + 1e-6
        rays = dirs[near]
        inside = np.concatenate([sdf_reference(sc, i, ts[None, :, None] * rays[k:k + 16, None, :]) <= 0.0
                                 for k in range(0, len(rays), 16)] or [np.zeros((0, len(ts)), bool)])
        hit = inside.any(axis=1)
        k = np.argmax(inside, axis=1)
        lo, hi = ts[np.maximum(k - 1, 0)], ts[k]
        for _ in range(24):  # bisection of [lo, hi]: outside at lo, inside at hi
            mid = 0.5 * (lo + hi)
            ins = sdf_reference(sc, i, mid[:, None] * rays) <= 0.0
            hi, lo = np.where(ins, mid, hi), np.where(ins, lo, mid)
        t = np.full(len(dirs), np.inf)
        t[near] = np.where(hit, hi, np.inf)
        better = t < best
        best[better], idx[better] = t[better], i
    return best, idx


def camera_rays(w: int, h: int, f: float, cx: float, cy: float) -> np.ndarray:
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack([(u - cx) / f, (v - cy) / f, np.ones_like(u)], -1).reshape(-1, 3)


def run_zbuffer(sc, f, cx, cy, w, h):
    geom = geometry(sc)
    n = len(sc["ra"])
    bound_a = np.empty((n, 3))
    bound_b = np.empty((n, 3))
    bound_r = np.empty(n)
    for i in range(n):  # a generous bounding sphere from the inverse map
        m = np.linalg.inv(sc["minv"][i])
        centre = sc["org"][i] + m @ (0.5 * (sc["la"][i] + sc["lb"][i]))
        extent = 0.5 * np.linalg.norm(sc["lb"][i] - sc["la"][i]) + max(sc["ra"][i], sc["rb"][i])
        extent += np.linalg.norm(sc["la"][i][:2]) if sc["kind"][i] == KIND_SLAB else 0.0
        bound_a[i] = bound_b[i] = centre
        bound_r[i] = np.linalg.norm(m, 2) * extent
    bounds = screen_bounds(bound_a, bound_b, bound_r, f, f, cx, cy, w, h)
    depth = np.empty((h, w), np.float32)
    prim = np.empty((h, w), np.int32)
    normal = np.empty((h, w, 3), np.float32)
    span = np.empty((h, 2), np.int32)
    zbuffer(*geom, bounds, f, f, cx, cy, depth, prim, normal, span)
    return depth, prim, normal, span


def test_zbuffer_matches_brute_force_ray_marching():
    sc = scene()
    w, h, f, cx, cy = 48, 36, 150.0, 24.0, 18.0
    depth, prim, normal, span = run_zbuffer(sc, f, cx, cy, w, h)
    ref_t, ref_i = first_hit_reference(sc, camera_rays(w, h, f, cx, cy))
    ref_t, ref_i = ref_t.reshape(h, w), ref_i.reshape(h, w)
    both = np.isfinite(ref_t) & np.isfinite(depth)
    # every primitive shows up, coverage agrees except on grazing silhouette rays
    assert set(np.unique(ref_i)) == {-1, 0, 1, 2, 3}
    assert (np.isfinite(ref_t) != np.isfinite(depth)).sum() <= 2
    err = np.abs(depth[both] - ref_t[both])  # mm
    assert np.percentile(err, 99) < 5e-3 and err.max() < 0.05  # the reference samples the swept balls
    assert (prim[both] != ref_i[both]).sum() <= 2  # ties where two surfaces cross
    # rows report the span of their hits; normals are unit
    for r in range(h):
        cols = np.flatnonzero(prim[r] >= 0)
        assert (span[r, 0], span[r, 1]) == ((cols[0], cols[-1]) if len(cols) else (w, -1))
    n = normal[prim >= 0]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)


def test_normals_are_gradients_of_the_reference_sdf():
    sc = scene()
    w, h, f, cx, cy = 48, 36, 150.0, 24.0, 18.0
    depth, prim, normal, _ = run_zbuffer(sc, f, cx, cy, w, h)
    rays = camera_rays(w, h, f, cx, cy).reshape(h, w, 3)
    rows, cols = np.nonzero(prim >= 0)
    for r, c in list(zip(rows, cols))[::7]:
        p = rays[r, c] * float(depth[r, c])
        i = prim[r, c]
        e = 1e-4
        g = np.array([sdf_reference(sc, i, p + e * ax) - sdf_reference(sc, i, p - e * ax) for ax in np.eye(3)])
        g /= np.linalg.norm(g)
        assert np.dot(g, normal[r, c]) > 0.995, (r, c, i)
        nk = normal_at(*geometry(sc), i, *p)
        np.testing.assert_allclose(nk, normal[r, c], atol=1e-5)


def test_general_and_primary_intersectors_agree_on_random_rays():
    sc = scene()
    geom = geometry(sc)
    pre = primary_setup(*geom)
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(len(sc["ra"])):
        centre = sc["org"][i]
        for _ in range(300):
            target = centre + rng.normal(0.0, 8.0, 3)
            dx, dy = target[0] / target[2], target[1] / target[2]
            t1, piece = primary_hit(pre, i, dx, dy)
            t2 = hit_t(*geom, i, 0.0, 0.0, 0.0, dx, dy, 1.0, NEAR_MM)
            assert t1 == pytest.approx(t2, abs=1e-9) or (np.isinf(t1) and np.isinf(t2))
            if np.isfinite(t1):
                hits += 1
                p = np.array([dx, dy, 1.0]) * t1
                assert abs(signed_distance(*geom, i, *p)) < 1e-6
                np.testing.assert_allclose(primary_normal(pre, i, dx, dy, t1, piece), normal_at(*geom, i, *p),
                                           atol=1e-6)
    assert hits > 300


def test_rays_along_a_cone_axis_enter_through_its_side_or_cap():
    # rays parallel to the axis of a strongly tapered cone (the quadratic's leading term is
    # negative there): the entry must still match the swept-ball definition
    sc = scene()
    geom = geometry(sc)
    rng = np.random.default_rng(1)
    axis = np.array([1.0, 1.0, 6.0]) / np.linalg.norm([1.0, 1.0, 6.0])
    a = sc["org"][3]
    for _ in range(60):
        off = rng.normal(0.0, 2.0, 3)
        off -= off @ axis * axis
        origin = a - 30.0 * axis + off
        t = hit_t(*geom, 3, *origin, *axis, 0.0)
        ts = np.arange(20.0, 45.0, 0.01)
        d = sdf_reference(sc, 3, origin + ts[:, None] * axis)
        inside = np.flatnonzero(d <= 0.0)
        if len(inside) == 0:
            assert np.isinf(t) or sdf_reference(sc, 3, origin + t * axis) < 1e-3
        else:
            assert t == pytest.approx(ts[inside[0]], abs=0.011)


def test_objects_behind_or_straddling_the_camera():
    sc = scene()
    behind = {k: v.copy() for k, v in sc.items()}
    behind["org"][:, 2] -= 400.0  # all behind the camera
    depth, prim, _, span = run_zbuffer(behind, 150.0, 24.0, 18.0, 48, 36)
    assert np.isinf(depth).all() and (prim == -1).all() and (span[:, 1] == -1).all()
    around = {k: v.copy() for k, v in sc.items()}
    around["org"][:, 2] -= 128.0  # the slab around the camera centre: its far side is not drawn
    depth, prim, _, _ = run_zbuffer(around, 150.0, 24.0, 18.0, 48, 36)
    assert np.all(depth[np.isfinite(depth)] > NEAR_MM)


def test_finish_rounds_depth_and_labels_pixels():
    depth = np.array([[np.inf, 400.4, 400.6], [70000.0, 12.0, np.inf]], np.float32)
    prim = np.array([[-1, 0, 1], [1, 0, -1]], np.int32)
    hand = np.array([0, 1], np.int32)
    part = np.array([7, 3], np.int32)
    d, m, p = finish(depth, prim, hand, part, np.nan, 0.0, 65535.0)
    np.testing.assert_array_equal(d, [[0, 400, 401], [0, 12, 0]])
    np.testing.assert_array_equal(m, [[0, 1, 2], [2, 1, 0]])
    np.testing.assert_array_equal(p, [[-1, 7, 3], [3, 7, -1]])
    d, _, _ = finish(depth, prim, hand, part, 900.0, 100.0, 1000.0)  # a wall, a sensor range
    np.testing.assert_array_equal(d, [[900, 400, 401], [0, 0, 900]])


def test_depth_edges_marks_both_sides_of_a_jump():
    z = np.full((5, 6), 500.0, np.float32)
    z[:, 3:] = 700.0
    z[0, 0] = np.inf
    e = depth_edges(z, 50.0, 0)
    assert e[:, 2:4].all() and not e[2:, :2].any() and not e[:, 5].any()
    assert e[0, 0] and e[0, 1] and e[1, 0]
    assert depth_edges(z, 50.0, 1)[:, 1:5].all()
