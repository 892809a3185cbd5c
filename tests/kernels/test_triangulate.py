"""Weighted DLT triangulation and reprojection errors against their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import reference as ref
from kernels import reprojection_errors, triangulate_dlt, triangulate_dlt_batch
from kernels.triangulate import triangulate_ransac, triangulate_ransac_batch, triangulation_stats

TARGET = np.array([30.0, -50.0, 800.0])  # rig centre, world mm


def look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera ``[R | t]`` (3, 4) of a camera at ``centre`` looking at ``target`` (y down)."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return np.hstack([R, (-R @ centre)[:, None]])


def ring_rig(V: int = 8, radius: float = 700.0) -> np.ndarray:
    """``(V, 3, 4)`` projection matrices of cameras on a ring around TARGET, 640x480-like."""
    K = np.array([[600.0, 0.0, 320.0], [0.0, 605.0, 240.0], [0.0, 0.0, 1.0]])
    P = []
    for v in range(V):
        a = 2 * np.pi * v / V
        centre = TARGET + radius * np.array([np.sin(a), -0.3 + 0.1 * (v % 3), -np.cos(a)])
        P.append(K @ look_at(centre, TARGET))
    return np.array(P)


def project(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    x = np.einsum("vab,jb->jva", P, np.concatenate([X, np.ones((len(X), 1))], axis=1))
    assert (x[..., 2] > 0).all()
    return x[..., :2] / x[..., 2:]


def hand(seed: int, J: int = 21) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 60.0, (J, 3)) + TARGET


def test_noiseless_points_are_recovered():
    P, X = ring_rig(), hand(0)
    uv = project(P, X)
    got = triangulate_dlt(P, uv, np.ones(uv.shape[:2]))
    assert got.dtype == np.float64 and got.shape == (21, 3)
    assert np.abs(got - X).max() < 1e-6
    # two views suffice
    got2 = triangulate_dlt(P[[1, 4]], np.ascontiguousarray(uv[:, [1, 4]]), np.ones((21, 2)))
    assert np.abs(got2 - X).max() < 1e-6


def test_matches_reference_with_noise_weights_and_missing_views():
    rng = np.random.default_rng(1)
    P, X = ring_rig(), hand(2)
    uv = project(P, X) + rng.normal(0.0, 2.0, (21, 8, 2))
    w = rng.uniform(0.1, 1.0, (21, 8))
    w[rng.random(w.shape) < 0.2] = 0.0
    uv[rng.random(w.shape) < 0.1] = np.nan
    w[3, :] = 0.0
    w[3, 5] = 1.0  # one view only
    w[4, 2] = np.nan
    got = triangulate_dlt(P, uv, w)
    want = ref.triangulate_dlt(P, uv, w)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.isnan(got[3]).all()
    ok = ~np.isnan(got).any(axis=1)
    assert ok.sum() >= 18
    assert np.abs(got[ok] - X[ok]).max() < 15.0  # 2 px noise at 0.7 m


def test_fewer_than_two_usable_views_give_nan():
    P, X = ring_rig(4), hand(3, J=4)
    uv = project(P, X)
    w = np.ones((4, 4))
    w[0] = [0, 0, 0, 0]
    w[1] = [0, 1, 0, 0]
    uv[2, 1:] = np.nan  # three views not seen
    w[3] = [np.nan, np.nan, 1, np.nan]
    got = triangulate_dlt(P, uv, w)
    assert np.isnan(got).all()


def test_ignored_views_do_not_matter_and_weight_scale_is_irrelevant():
    rng = np.random.default_rng(4)
    P, X = ring_rig(), hand(5)
    uv = project(P, X) + rng.normal(0.0, 1.0, (21, 8, 2))
    w = rng.uniform(0.2, 1.0, (21, 8))
    w[:, 6] = 0.0
    base = triangulate_dlt(P, uv, w)
    bad = uv.copy()
    bad[:, 6] += 500.0  # garbage in a view with weight 0
    np.testing.assert_array_equal(triangulate_dlt(P, bad, w), base)
    for c in (1e-3, 7.0, 1e4):
        np.testing.assert_allclose(triangulate_dlt(P, uv, c * w), base, rtol=0, atol=1e-9)
    # down-weighting a corrupted view pulls the estimate back
    bad = uv.copy()
    bad[:, 2] += 40.0
    w = np.ones((21, 8))
    err_equal = np.abs(triangulate_dlt(P, bad, w) - X).mean()
    w[:, 2] = 0.05
    assert np.abs(triangulate_dlt(P, bad, w) - X).mean() < 0.2 * err_equal


def test_batch_equals_per_frame():
    rng = np.random.default_rng(6)
    P = ring_rig()
    frames = [hand(7 + b, J=5) for b in range(3)]
    uv = np.stack([project(P, X) for X in frames]) + rng.normal(0.0, 1.0, (3, 5, 8, 2))
    w = rng.uniform(0.0, 1.0, (3, 5, 8))
    got = triangulate_dlt_batch(P, uv, w)
    assert got.shape == (3, 5, 3)
    for b in range(3):
        np.testing.assert_array_equal(got[b], triangulate_dlt(P, uv[b], w[b]))


def test_reprojection_errors():
    rng = np.random.default_rng(8)
    P, X = ring_rig(), hand(9)
    uv = project(P, X)
    assert np.abs(reprojection_errors(P, X, uv)).max() < 1e-9
    noise = rng.normal(0.0, 3.0, uv.shape)
    err = reprojection_errors(P, X, uv + noise)
    np.testing.assert_allclose(err, np.linalg.norm(noise, axis=-1), atol=1e-9)
    X2 = X.copy()
    X2[0] = np.nan
    uv2 = uv.copy()
    uv2[1, 3] = np.nan
    M = P[0, :, :3]
    centre0 = -np.linalg.solve(M, P[0, :, 3])
    behind = X.copy()
    behind[2] = centre0 - 100.0 * M[2] / np.linalg.norm(M[2])  # 10 cm behind camera 0
    for pts in (X2, behind):
        got = reprojection_errors(P, pts, uv2)
        want = ref.reprojection_errors(P, pts, uv2)
        np.testing.assert_allclose(got, want, atol=1e-9)
    got = reprojection_errors(P, X2, uv2)
    assert np.isnan(got[0]).all() and np.isnan(got[1, 3])
    assert reprojection_errors(P, behind, uv)[2, 0] == np.inf


def test_bad_shapes_raise():
    P = ring_rig(3)
    with pytest.raises(ValueError, match="uv"):
        triangulate_dlt(P, np.zeros((2, 4, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="weights"):
        triangulate_dlt(P, np.zeros((2, 3, 2)), np.ones((2, 4)))


# ------------------------------------------------------------------------------------------- RANSAC


def corrupted(seed: int, V: int = 8, J: int = 21, frac: float = 0.25, noise: float = 1.0):
    """Rig, truth, observations with ``noise`` px and ~``frac`` of the (joint, view) pairs moved 50-200 px."""
    rng = np.random.default_rng(seed)
    P, X = ring_rig(V), hand(seed + 100, J)
    uv = project(P, X) + rng.normal(0.0, noise, (J, V, 2))
    bad = rng.random((J, V)) < frac
    ang = rng.uniform(0, 2 * np.pi, (J, V))
    mag = rng.uniform(50.0, 200.0, (J, V))
    uv[bad] += np.stack([np.cos(ang), np.sin(ang)], -1)[bad] * mag[bad, None]
    w = rng.uniform(0.5, 1.0, (J, V))
    return P, X, uv, w, bad


def _assert_same(got, want):
    Xg, ig, rg, sg = got
    Xw, iw, rw, sw = want
    np.testing.assert_array_equal(ig, iw)
    np.testing.assert_allclose(Xg, Xw, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rg, rw, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sg, sw, rtol=1e-6, atol=1e-9)


def test_ransac_matches_reference_and_rejects_outlier_views():
    P, X, uv, w, bad = corrupted(10)
    got = triangulate_ransac(P, uv, w, 10.0, 1.0)
    _assert_same(got, ref.triangulate_ransac(P, uv, w, 10.0, 1.0))
    Xr, inl, rms, sigma = got
    # every displaced view is rejected, every clean one kept (some joints lose 3-4 of 8 views)
    assert bad.sum() > 25
    np.testing.assert_array_equal(inl, ~bad)
    err_ransac = np.linalg.norm(Xr - X, axis=1)
    err_dlt = np.linalg.norm(triangulate_dlt(P, uv, w) - X, axis=1)
    assert err_ransac.max() < 5.0 and err_dlt.mean() > 5 * err_ransac.mean()
    assert (rms < 3.0).all()
    # the propagated 1-sigma (1 px noise, weights <= 1) has the size of the actual errors
    assert 0.3 < np.sqrt(np.mean(err_ransac**2)) / np.sqrt(np.mean(sigma**2)) < 2.0


def test_ransac_sampled_pairs_match_reference_and_are_seeded():
    P, X, uv, w, bad = corrupted(11, V=12, J=9)
    for seed in (0, 5):
        got = triangulate_ransac(P, uv, w, 10.0, 1.0, 2, 20, seed)
        _assert_same(got, ref.triangulate_ransac(P, uv, w, 10.0, 1.0, 2, 20, seed))
        assert np.linalg.norm(got[0] - X, axis=1).max() < 5.0
    # with 3 hypotheses the sample matters: different seeds draw different pairs somewhere
    few = [triangulate_ransac(P, uv, w, 10.0, 1.0, 2, 3, s)[1] for s in range(4)]
    assert any((few[0] != f).any() for f in few[1:])


def test_ransac_flags_joints_without_two_views_and_handles_missing():
    P, X, uv, w, _ = corrupted(12, V=5, J=6, frac=0.0)
    w[0] = 0.0
    w[1] = [0, 0, 1, 0, 0]
    uv[2, 1:] = np.nan
    w[3, 0] = np.nan
    uv[4, :, :] += np.arange(5)[:, None] * 100.0  # no two views agree on joint 4
    Xr, inl, rms, sigma = got = triangulate_ransac(P, uv, w, 10.0)
    _assert_same(got, ref.triangulate_ransac(P, uv, w, 10.0))
    for j in (0, 1, 2, 4):
        assert np.isnan(Xr[j]).all() and not inl[j].any() and np.isnan(rms[j]) and np.isnan(sigma[j])
    assert not inl[3, 0] and inl[3, 1:].all()
    assert np.linalg.norm(Xr[[3, 5]] - X[[3, 5]], axis=1).max() < 5.0
    # min_inliers above the usable count flags everything
    assert np.isnan(triangulate_ransac(P, uv, w, 10.0, 2.0, 6)[0]).all()


def test_ransac_clean_data_equals_weighted_dlt():
    rng = np.random.default_rng(13)
    P, X = ring_rig(), hand(14)
    uv = project(P, X) + rng.normal(0.0, 0.5, (21, 8, 2))
    w = rng.uniform(0.3, 1.0, (21, 8))
    Xr, inl, _, _ = triangulate_ransac(P, uv, w, 10.0)
    assert inl.all()
    np.testing.assert_allclose(Xr, triangulate_dlt(P, uv, w), rtol=0, atol=1e-9)


def test_ransac_batch_equals_per_frame():
    frames = [corrupted(20 + b, J=4) for b in range(3)]
    P = frames[0][0]
    uv = np.stack([f[2] for f in frames])
    w = np.stack([f[3] for f in frames])
    got = triangulate_ransac_batch(P, uv, w, 10.0)
    assert got[0].shape == (3, 4, 3) and got[1].shape == (3, 4, 8) and got[2].shape == (3, 4)
    for b in range(3):
        one = triangulate_ransac(P, uv[b], w[b], 10.0)
        for a, c in zip(got, one):
            np.testing.assert_array_equal(a[b], c)


def test_uncertainty_propagation():
    P, X = ring_rig(), hand(15, J=3)
    uv = project(P, X)
    w = np.ones((3, 8))
    all_views = np.ones((3, 8), bool)
    rms, s8 = triangulation_stats(P, X, uv, w, all_views, 2.0)
    want = ref.triangulation_stats(P, X, uv, w, all_views, 2.0)
    np.testing.assert_allclose(rms, want[0], atol=1e-9)
    np.testing.assert_allclose(s8, want[1], rtol=1e-9)
    assert np.abs(rms).max() < 1e-9
    # linear in sigma_px, larger with fewer views and with lower confidence
    np.testing.assert_allclose(triangulation_stats(P, X, uv, w, all_views, 4.0)[1], 2 * s8, rtol=1e-12)
    two = np.zeros((3, 8), bool)
    two[:, [0, 2]] = True
    assert (triangulation_stats(P, X, uv, w, two, 2.0)[1] > s8).all()
    np.testing.assert_allclose(triangulation_stats(P, X, uv, 0.5 * w, all_views, 2.0)[1], 2 * s8, rtol=1e-12)
    one = np.zeros((3, 8), bool)
    one[:, 3] = True
    assert np.isinf(triangulation_stats(P, X, uv, w, one, 2.0)[1]).all()
    # Monte Carlo: the DLT's RMS error under 2 px noise matches the propagated sigma
    rng = np.random.default_rng(16)
    errs = [triangulate_dlt(P, uv + rng.normal(0.0, 2.0, uv.shape), w) - X for _ in range(200)]
    mc = np.sqrt(np.mean(np.sum(np.array(errs) ** 2, axis=-1), axis=0))
    np.testing.assert_allclose(mc, s8, rtol=0.15)


def test_ransac_bad_arguments_raise():
    P = ring_rig(3)
    with pytest.raises(ValueError, match="uv"):
        triangulate_ransac(P, np.zeros((2, 4, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="threshold"):
        triangulate_ransac(P, np.zeros((2, 3, 2)), np.ones((2, 3)), 0.0)
