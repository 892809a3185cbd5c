"""Gaussian heatmap targets and the sub-voxel argmax against their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    REFINE_GAUSS,
    REFINE_MEAN,
    gaussian_heatmaps,
    gaussian_heatmaps_batch,
    grid_to_world,
    subvoxel_argmax,
    subvoxel_argmax_batch,
    world_to_grid,
)
from kernels import reference as ref

REF = np.array([10.0, -15.0, 420.0])
CUBE, D = 250.0, 44
VOXEL = CUBE / D


def random_joints(seed: int, n: int = 21, spread: float = 80.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-spread, spread, (n, 3)) + REF


def noisy_heatmaps(seed: int, J: int = 5, d: int = 16) -> np.ndarray:
    """Smooth-ish random float32 heatmaps with negative values and sprinkled NaN."""
    rng = np.random.default_rng(seed)
    h = rng.normal(0.0, 0.3, (J, d, d, d)).astype(np.float32)
    h[rng.random(h.shape) < 0.02] = np.nan
    return h


def test_gaussian_heatmaps_match_direct_formula():
    joints = random_joints(0, spread=150.0)  # some outside the cube
    joints[3] = np.nan
    joints[7, 2] = np.nan
    got = gaussian_heatmaps(joints, REF, CUBE, D, 1.7)
    assert got.dtype == np.float32 and got.shape == (21, D, D, D)
    np.testing.assert_allclose(got, ref.gaussian_heatmaps(joints, REF, CUBE, D, 1.7), rtol=2e-6, atol=1e-12)
    assert not got[3].any() and not got[7].any()


def test_gaussian_peak_is_one_at_a_voxel_centre():
    idx = np.array([[5.0, 20.0, 43.0]])
    joint = grid_to_world(idx, REF, CUBE, D)
    h = gaussian_heatmaps(joint, REF, CUBE, D, 1.7)[0]
    assert h[5, 20, 43] == 1.0 and h.max() == 1.0
    np.testing.assert_allclose(h[6, 20, 43], np.exp(-1 / (2 * 1.7**2)), rtol=1e-6)


def test_gaussian_heatmaps_batch_equals_per_sample():
    joints = np.stack([random_joints(1, 4), random_joints(2, 4)])
    refs = np.stack([REF, REF + [30.0, 0.0, -20.0]])
    got = gaussian_heatmaps_batch(joints, refs, CUBE, 12, 2.0)
    assert got.shape == (2, 4, 12, 12, 12)
    for b in range(2):
        np.testing.assert_array_equal(got[b], gaussian_heatmaps(joints[b], refs[b], CUBE, 12, 2.0))


@pytest.mark.parametrize("radius", [0, 1, 2])
@pytest.mark.parametrize("refine", [REFINE_MEAN, REFINE_GAUSS])
def test_subvoxel_argmax_matches_reference_on_noisy_heatmaps(radius, refine):
    h = noisy_heatmaps(3)
    h[1] = np.abs(h[1])  # all-positive window for the log-parabola
    got, conf = subvoxel_argmax(h, REF, CUBE, radius, refine)
    want, conf_want = ref.subvoxel_argmax(h, REF, CUBE, radius, refine)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # log() may differ by an ulp
    np.testing.assert_array_equal(conf, conf_want)
    assert conf.dtype == np.float32 and got.dtype == np.float64
    np.testing.assert_array_equal(conf, np.nanmax(h.reshape(len(h), -1), axis=1))


@pytest.mark.parametrize("corner", [(0, 0, 0), (15, 15, 15), (0, 7, 15)])
def test_maximum_on_the_grid_border_clips_the_window(corner):
    d = 16
    h = np.zeros((1, d, d, d), np.float32)
    i, j, k = corner
    h[0, i, j, k] = 1.0
    for a in range(3):  # a smaller neighbour on every in-grid side
        for step in (-1, 1):
            n = list(corner)
            n[a] += step
            if 0 <= n[a] < d:
                h[0, n[0], n[1], n[2]] = 0.5
    for refine in (REFINE_MEAN, REFINE_GAUSS):
        got, conf = subvoxel_argmax(h, REF, CUBE, 2, refine)
        want, _ = ref.subvoxel_argmax(h, REF, CUBE, 2, refine)
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert conf[0] == 1.0
    # by hand for the mean: one neighbour at 0.5 pulls by 0.5 / (1 + total neighbour weight)
    got, _ = subvoxel_argmax(h, REF, CUBE, 1, REFINE_MEAN)
    g = world_to_grid(got, REF, CUBE, d)[0]
    n_side = sum((0 < c < d - 1) * 2 + (c in (0, d - 1)) for c in corner)
    for a, c in enumerate(corner):
        pull = 0.0 if 0 < c < d - 1 else (0.5 if c == 0 else -0.5) / (1.0 + 0.5 * n_side)
        assert g[a] == pytest.approx(c + pull, abs=1e-12)


def test_no_positive_value_gives_nan_and_zero_confidence():
    d = 8
    h = np.stack([
        np.full((d, d, d), np.nan, np.float32),
        np.zeros((d, d, d), np.float32),
        np.full((d, d, d), -0.5, np.float32),
        np.full((d, d, d), -np.inf, np.float32),
    ])  # fmt: skip
    got, conf = subvoxel_argmax(h, REF, CUBE)
    assert np.isnan(got).all() and (conf == 0).all()
    want, conf_want = ref.subvoxel_argmax(h, REF, CUBE)
    assert np.isnan(want).all() and (conf_want == 0).all()


def test_nan_is_ignored_and_ties_take_the_first_voxel():
    d = 8
    h = np.zeros((1, d, d, d), np.float32)
    h[0, 1, 2, 3] = 0.9
    h[0, 5, 5, 5] = 0.9  # a later tie
    h[0, 1, 2, 4] = np.nan  # a NaN neighbour has no weight
    got, conf = subvoxel_argmax(h, REF, CUBE, 1, REFINE_MEAN)
    np.testing.assert_allclose(world_to_grid(got, REF, CUBE, d), [[1.0, 2.0, 3.0]], atol=1e-12)
    assert conf[0] == pytest.approx(0.9)


def test_single_voxel_grid():
    h = np.full((2, 1, 1, 1), 0.7, np.float32)
    h[1] = np.nan
    got, conf = subvoxel_argmax(h, REF, CUBE, 2, REFINE_GAUSS)
    np.testing.assert_allclose(got[0], REF, atol=1e-12)  # the one voxel's centre is the cube centre
    assert np.isnan(got[1]).all() and conf[1] == 0


def test_batch_equals_per_sample():
    h = noisy_heatmaps(4, J=3, d=10)
    hb = np.stack([h, h[::-1]])
    refs = np.stack([REF, REF + 5.0])
    got, conf = subvoxel_argmax_batch(hb, refs, CUBE, 1, REFINE_GAUSS)
    assert got.shape == (2, 3, 3) and conf.shape == (2, 3)
    for b in range(2):
        c, f = subvoxel_argmax(np.ascontiguousarray(hb[b]), refs[b], CUBE, 1, REFINE_GAUSS)
        np.testing.assert_array_equal(got[b], c)
        np.testing.assert_array_equal(conf[b], f)


def test_round_trip_recovers_sub_voxel_positions():
    """Targets -> read-out on 200 joints at random sub-voxel positions inside the cube."""
    rng = np.random.default_rng(5)
    g_true = rng.uniform(2.0, D - 3.0, (200, 3))  # away from the border, where the window clips
    joints = grid_to_world(g_true, REF, CUBE, D)
    h = gaussian_heatmaps(joints, REF, CUBE, D, 1.7)
    # Gauss fit: exact for a Gaussian up to float32 rounding of the heatmap values
    got, conf = subvoxel_argmax(h, REF, CUBE, 1, REFINE_GAUSS)
    err = np.abs(world_to_grid(got, REF, CUBE, D) - g_true).max()
    assert err < 1e-5, err  # measured 2e-7 voxel
    assert conf.min() > np.exp(-3 * 0.25 / (2 * 1.7**2)) - 1e-6
    # weighted mean: biased towards the maximum voxel's centre when the window is small vs sigma
    # (measured worst per-axis errors on 2000 joints: 0.39, 0.23, 0.16 voxel)
    for radius, bound in ((1, 0.40), (2, 0.25), (3, 0.18)):
        got, _ = subvoxel_argmax(h, REF, CUBE, radius, REFINE_MEAN)
        err = np.abs(world_to_grid(got, REF, CUBE, D) - g_true).max()
        assert err < bound, (radius, err)
    # at voxel centres the mean is exact
    centres = np.round(g_true)
    h = gaussian_heatmaps(grid_to_world(centres, REF, CUBE, D), REF, CUBE, D, 1.7)
    got, _ = subvoxel_argmax(h, REF, CUBE, 1, REFINE_MEAN)
    np.testing.assert_allclose(got, grid_to_world(centres, REF, CUBE, D), atol=1e-9)


def test_bad_arguments_raise():
    h = np.zeros((2, 4, 4, 4), np.float32)
    with pytest.raises(ValueError, match="cube_mm"):
        subvoxel_argmax(h, REF, 0.0)
    with pytest.raises(ValueError, match="radius"):
        subvoxel_argmax(h, REF, CUBE, -1)
    with pytest.raises(ValueError, match="refine"):
        subvoxel_argmax(h, REF, CUBE, 1, 7)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_heatmaps(random_joints(0, 2), REF, CUBE, 4, 0.0)
    with pytest.raises(ValueError, match="ref"):
        gaussian_heatmaps(random_joints(0, 2), REF[:2], CUBE, 4, 1.7)
