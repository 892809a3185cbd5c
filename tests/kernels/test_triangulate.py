"""Weighted DLT triangulation and reprojection errors against their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import reference as ref
from kernels import reprojection_errors, triangulate_dlt, triangulate_dlt_batch

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
