"""Depth kernels against their NumPy references, on random and degenerate depth images."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import center_of_mass, depth_center_of_mass, depth_to_points
from kernels import reference as ref
from tracker.core.structures import Intrinsics

INTR = Intrinsics(588.0, 587.0, 31.25, 23.5, 64, 48)
CAM = (INTR.fx, INTR.fy, INTR.cx, INTR.cy)


def random_depth(seed: int, shape=(48, 64), holes: float = 0.3) -> np.ndarray:
    """uint16 mm depth with values 0..2000 and a fraction ``holes`` of zeros (no reading)."""
    rng = np.random.default_rng(seed)
    d = rng.integers(1, 2000, size=shape).astype(np.uint16)
    d[rng.random(shape) < holes] = 0
    return d


@pytest.mark.parametrize(
    "scale, near, far",
    [(1.0, 0.0, np.inf), (1.0, 300.0, 1200.0), (0.125, 10.0, 200.0), (1.0, 700.0, 700.0)],
)
def test_depth_to_points_matches_reference_exactly(scale, near, far):
    d = random_depth(1)
    got = depth_to_points(d, *CAM, scale, near, far)
    want = ref.depth_to_points(d, *CAM, scale, near, far)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_points_reproject_to_pixel_centres():
    d = random_depth(2)
    pts = depth_to_points(d, *CAM)
    rows, cols = np.nonzero(d)  # row-major order, like the points
    uv = INTR.project(pts.astype(np.float64))
    np.testing.assert_allclose(uv, np.stack([cols + 0.5, rows + 0.5], axis=1), atol=1e-4)
    np.testing.assert_array_equal(pts[:, 2], d[rows, cols].astype(np.float32))


def test_empty_and_all_zero_depth():
    for d in (np.zeros((48, 64), np.uint16), np.zeros((0, 64), np.uint16), random_depth(3, holes=1.0)):
        pts = depth_to_points(d, *CAM)
        assert pts.shape == (0, 3) and pts.dtype == np.float32
        com, n = depth_center_of_mass(d, *CAM)
        assert n == 0 and np.isnan(com).all()
        assert np.isnan(center_of_mass(pts)).all()
    # a range that excludes every reading
    pts = depth_to_points(random_depth(4), *CAM, 1.0, 5000.0, 6000.0)
    assert pts.shape == (0, 3)


def test_center_of_mass_matches_reference_and_skips_nan():
    rng = np.random.default_rng(5)
    p = rng.normal(0.0, 100.0, (500, 3)) + [0.0, 0.0, 500.0]
    p[::7, rng.integers(0, 3)] = np.nan
    np.testing.assert_allclose(center_of_mass(p), ref.center_of_mass(p), rtol=1e-12)
    p32 = p.astype(np.float32)
    np.testing.assert_allclose(center_of_mass(p32), ref.center_of_mass(p32), rtol=1e-12)
    assert np.isnan(center_of_mass(np.full((4, 3), np.nan))).all()


@pytest.mark.parametrize("scale, near, far", [(1.0, 0.0, np.inf), (0.5, 100.0, 600.0)])
def test_depth_center_of_mass_matches_reference(scale, near, far):
    d = random_depth(6)
    com, n = depth_center_of_mass(d, *CAM, scale, near, far)
    want, n_want = ref.depth_center_of_mass(d, *CAM, scale, near, far)
    assert n == n_want > 0
    np.testing.assert_allclose(com, want, rtol=1e-11, atol=1e-9)
    # the same as materialising the (float32) points first, up to their rounding
    np.testing.assert_allclose(com, center_of_mass(depth_to_points(d, *CAM, scale, near, far)), rtol=1e-6)


def test_single_valid_pixel():
    d = np.zeros((48, 64), np.uint16)
    d[10, 20] = 500
    pts = depth_to_points(d, *CAM)
    want = [(20.5 - CAM[2]) / CAM[0] * 500.0, (10.5 - CAM[3]) / CAM[1] * 500.0, 500.0]
    np.testing.assert_allclose(pts, [want], rtol=1e-6)
    com, n = depth_center_of_mass(d, *CAM)
    assert n == 1
    np.testing.assert_allclose(com, want, rtol=1e-12)
