"""The voxel grid convention and the occupancy kernels against their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    cube_pixel_bbox,
    depth_to_points,
    grid_to_world,
    points_in_cube,
    voxelize_depth,
    voxelize_depth_into,
    voxelize_points,
    world_to_grid,
)
from kernels import reference as ref

CAM = (475.0, 476.0, 160.5, 119.25)  # fx, fy, cx, cy of a 320x240 depth image
REF = np.array([12.0, -20.0, 400.0])
CUBE, D = 250.0, 88
# a grid with exact binary arithmetic: voxels of 4 mm, cube corner at (-128, -128, 272)
EXACT_REF, EXACT_CUBE, EXACT_D = np.array([0.0, 0.0, 400.0]), 256.0, 64


def hand_depth(seed: int, shape=(240, 320)) -> np.ndarray:
    """A random blob of depth around 300-500 mm on a background at 900 mm, with holes."""
    rng = np.random.default_rng(seed)
    H, W = shape
    rr, cc = np.mgrid[0:H, 0:W]
    r2 = ((rr - H / 2) / (H / 3)) ** 2 + ((cc - W / 2) / (W / 4)) ** 2
    d = np.where(r2 < 1.0, 300.0 + 200.0 * r2 + rng.normal(0, 5, shape), 900.0)
    d[rng.random(shape) < 0.1] = 0
    return d.astype(np.uint16)


def test_grid_round_trip_and_voxel_centres():
    rng = np.random.default_rng(0)
    p = rng.uniform(-200, 200, (50, 3)) + REF
    g = world_to_grid(p, REF, CUBE, D)
    np.testing.assert_allclose(g, ref.world_to_grid(p, REF, CUBE, D), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid_to_world(g, REF, CUBE, D), p, atol=1e-9)
    idx = np.array([[0, 0, 0], [D - 1, 3, 40]], np.float64)
    centres = REF - CUBE / 2 + (idx + 0.5) * CUBE / D
    np.testing.assert_allclose(grid_to_world(idx, REF, CUBE, D), centres, atol=1e-12)
    np.testing.assert_allclose(world_to_grid(REF[None], REF, CUBE, D), [[D / 2 - 0.5] * 3], atol=1e-12)


def test_voxelize_points_matches_reference_with_outside_and_nan_points():
    rng = np.random.default_rng(1)
    p = rng.uniform(-180, 180, (4000, 3)) + REF  # about a third outside the cube
    p[::11, 1] = np.nan
    for pts in (p, p.astype(np.float32)):
        got = voxelize_points(pts, REF, CUBE, D)
        assert got.dtype == np.uint8 and got.shape == (D, D, D)
        np.testing.assert_array_equal(got, ref.voxelize_points(pts, REF, CUBE, D))
    inside = points_in_cube(p, REF, CUBE)
    np.testing.assert_array_equal(inside, ref.points_in_cube(p, REF, CUBE))
    assert 0 < inside.sum() < len(p)
    # exactly the points in the cube fill it, and one voxel per distinct index
    np.testing.assert_array_equal(voxelize_points(p[inside], REF, CUBE, D), voxelize_points(p, REF, CUBE, D))
    assert voxelize_points(p[~inside], REF, CUBE, D).sum() == 0


def test_points_on_the_cube_border_and_voxel_faces():
    lo = EXACT_REF - EXACT_CUBE / 2  # (-128, -128, 272)
    s = EXACT_CUBE / EXACT_D  # 4 mm
    pts = np.array([
        lo,                                  # low corner: in, voxel (0, 0, 0)
        lo + [EXACT_CUBE, 0.0, 0.0],         # on the high x face: out
        lo + [EXACT_CUBE - 1e-9, 8.0, 4.0],  # just inside the high face: (63, 2, 1)
        lo + [s, 2 * s, 3 * s],              # on interior faces: the higher voxel (1, 2, 3)
        lo - [1e-9, 0.0, 0.0],               # just outside the low face
    ])  # fmt: skip
    g = voxelize_points(pts, EXACT_REF, EXACT_CUBE, EXACT_D)
    np.testing.assert_array_equal(np.argwhere(g), [[0, 0, 0], [1, 2, 3], [63, 2, 1]])
    np.testing.assert_array_equal(points_in_cube(pts, EXACT_REF, EXACT_CUBE), [True, False, True, True, False])
    np.testing.assert_array_equal(g, ref.voxelize_points(pts, EXACT_REF, EXACT_CUBE, EXACT_D))


def test_single_voxel_grid_and_empty_input():
    pts = np.array([[0.0, 0.0, 400.0], [500.0, 0.0, 400.0]])
    np.testing.assert_array_equal(voxelize_points(pts, EXACT_REF, EXACT_CUBE, 1), [[[1]]])
    assert voxelize_points(np.empty((0, 3)), REF, CUBE, D).sum() == 0
    assert voxelize_depth(np.zeros((240, 320), np.uint16), *CAM, REF, CUBE, D).sum() == 0


@pytest.mark.parametrize(
    "cube_ref, cube, scale",
    [
        ((12.0, -20.0, 400.0), 250.0, 1.0),   # the usual hand cube
        ((80.0, 40.0, 420.0), 150.0, 1.0),    # a small cube off the optical axis (tight bbox)
        ((0.0, 0.0, 100.0), 400.0, 1.0),      # reaches behind the camera: whole image
        ((0.0, 0.0, -300.0), 250.0, 1.0),     # entirely behind the camera: empty
        ((12.0, -20.0, 100.0), 250.0, 0.25),  # depth in quarter millimetres
    ],
)  # fmt: skip
def test_voxelize_depth_matches_reference(cube_ref, cube, scale):
    d = hand_depth(2)
    cube_ref = np.array(cube_ref)
    got = voxelize_depth(d, *CAM, cube_ref, cube, D, scale)
    want = ref.voxelize_depth(d, *CAM, cube_ref, cube, D, scale)
    np.testing.assert_array_equal(got, want)
    if cube_ref[2] - cube / 2 > 0 and scale == 1.0:
        assert want.sum() > 100


def test_pixel_bbox_holds_every_pixel_in_the_cube():
    d = hand_depth(3)
    for cube_ref in ([80.0, 40.0, 420.0], [-60.0, -30.0, 380.0]):
        cube_ref = np.array(cube_ref)
        r0, r1, c0, c1 = cube_pixel_bbox(*CAM, d.shape[0], d.shape[1], cube_ref, 150.0)
        rows, cols = np.nonzero(d)
        inside = ref.points_in_cube(ref._backproject(d, *CAM, 1.0, 0.0, np.inf), cube_ref, 150.0)
        assert inside.sum() > 0
        assert r0 <= rows[inside].min() and rows[inside].max() < r1
        assert c0 <= cols[inside].min() and cols[inside].max() < c1
        assert (r1 - r0) * (c1 - c0) < d.size  # and it actually saves work


def test_degenerate_reference_points():
    d = hand_depth(5)
    for bad in ([np.nan, 0.0, 400.0], [5000.0, 0.0, 400.0]):  # e.g. the centre of mass of an empty frame
        assert voxelize_depth(d, *CAM, np.array(bad), CUBE, D).sum() == 0
        assert cube_pixel_bbox(*CAM, 240, 320, np.array(bad), CUBE) == (0, 0, 0, 0)
        assert voxelize_points(np.zeros((3, 3)) + 400.0, np.array(bad), CUBE, D).sum() == 0
    grazing = np.array([0.0, 0.0, CUBE / 2 + 1e-9])  # near face a hair in front of the camera
    np.testing.assert_array_equal(
        voxelize_depth(d, *CAM, grazing, CUBE, D), ref.voxelize_depth(d, *CAM, grazing, CUBE, D)
    )


def test_voxelize_depth_agrees_with_voxelize_points_and_clears_out():
    d = hand_depth(4)
    grid = voxelize_depth(d, *CAM, REF, CUBE, D)
    from_points = voxelize_points(depth_to_points(d, *CAM), REF, CUBE, D)
    # float32 points can land in the neighbour voxel when within rounding of a face: rare
    assert np.count_nonzero(grid != from_points) <= 0.005 * grid.sum()
    out = np.ones((D, D, D), np.uint8)
    assert voxelize_depth_into(out, d, *CAM, REF, CUBE, 1.0) is out
    np.testing.assert_array_equal(out, grid)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="points"):
        voxelize_points(np.zeros((5, 2)), REF, CUBE, D)
    with pytest.raises(ValueError, match="cube_mm"):
        voxelize_points(np.zeros((5, 3)), REF, -1.0, D)
