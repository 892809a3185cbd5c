"""Camera geometry methods and the validation of the data structures in :mod:`tracker.core.structures`.

The geometry is checked against independent references: OpenCV (``cv2.projectPoints`` /
``cv2.undistortPoints``) for the distorted paths, and the pinhole formulas written out here for the
undistorted ones. Round trips hold to 1e-9 mm / px (float64); OpenCV's iterative undistortion inverts the
distortion to 0.01 px inside the image (it stops after a few iterations near the corners).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera, Extrinsics, GroundTruth, HandPose, Intrinsics

INTR = Intrinsics(612.0, 608.0, 331.5, 244.25, 640, 480)
DIST = (-0.28, 0.09, 0.001, -0.0015, -0.01)
DISTORTED = Intrinsics(612.0, 608.0, 331.5, 244.25, 640, 480, dist=DIST)


def rotation(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    """Rodrigues' formula, written out (independent of OpenCV)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


EXT = Extrinsics(rotation((0.3, -1.0, 0.2), 0.7), np.array([40.0, -25.0, 600.0]))


def points_in_front(n: int = 50, seed: int = 0) -> np.ndarray:
    """``(n, 3)`` world mm that lie 400-900 mm in front of :data:`EXT`'s camera and inside its image."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform([40, 30], [600, 450], (n, 2))
    z = rng.uniform(400, 900, n)
    cam = np.stack([(uv[:, 0] - INTR.cx) * z / INTR.fx, (uv[:, 1] - INTR.cy) * z / INTR.fy, z], axis=1)
    return (cam - EXT.t) @ EXT.R


# ------------------------------------------------------------------------------------- Intrinsics


def test_K_is_the_camera_matrix():
    np.testing.assert_array_equal(INTR.K, [[612.0, 0, 331.5], [0, 608.0, 244.25], [0, 0, 1]])
    assert INTR.K.dtype == np.float64


def test_project_is_the_pinhole_formula_and_keeps_leading_axes():
    rng = np.random.default_rng(1)
    p = rng.normal(0, 80, (4, 5, 3)) + [0, 0, 700]
    uv = INTR.project(p)
    assert uv.shape == (4, 5, 2) and uv.dtype == np.float64
    np.testing.assert_allclose(uv[..., 0], 612.0 * p[..., 0] / p[..., 2] + 331.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(uv[..., 1], 608.0 * p[..., 1] / p[..., 2] + 244.25, rtol=0, atol=1e-12)
    np.testing.assert_allclose(INTR.project([0.0, 0.0, 500.0]), [331.5, 244.25])  # the optical axis


def test_unproject_inverts_project():
    rng = np.random.default_rng(2)
    p = rng.normal(0, 80, (30, 3)) + [0, 0, 700]
    back = INTR.unproject(INTR.project(p), p[:, 2])
    np.testing.assert_allclose(back, p, rtol=0, atol=1e-9)
    # a scalar depth broadcasts over the points; Z is the depth given
    uv = rng.uniform(0, 640, (7, 2))
    flat = INTR.unproject(uv, 250.0)
    assert flat.shape == (7, 3)
    np.testing.assert_array_equal(flat[:, 2], 250.0)
    np.testing.assert_allclose(INTR.project(flat), uv, rtol=0, atol=1e-9)


def test_project_and_unproject_carry_nan():
    p = np.array([[10.0, 20.0, 500.0], [np.nan, 0.0, 500.0]])
    uv = INTR.project(p)
    assert np.isfinite(uv[0]).all() and np.isnan(uv[1, 0])
    back = INTR.unproject(np.array([[320.0, 240.0], [np.nan, np.nan]]), np.array([400.0, 400.0]))
    assert np.isfinite(back[0]).all() and np.isnan(back[1, :2]).all()


def test_has_distortion():
    assert not INTR.has_distortion
    assert DISTORTED.has_distortion
    assert not Intrinsics(500, 500, 320, 240, 640, 480, dist=(0.0,) * 8).has_distortion


def test_undistort_pixels_matches_opencv_and_inverts_the_distortion():
    cam = EXT.to_camera(points_in_front(40, seed=3))
    undistorted = INTR.project(cam)
    distorted = cv2.projectPoints(cam, np.zeros(3), np.zeros(3), DISTORTED.K, np.asarray(DIST))[0].reshape(-1, 2)
    got = DISTORTED.undistort_pixels(distorted)
    want = cv2.undistortPoints(distorted.reshape(-1, 1, 2), DISTORTED.K, np.asarray(DIST), P=DISTORTED.K)
    np.testing.assert_allclose(got, want.reshape(-1, 2), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got, undistorted, rtol=0, atol=0.01)
    assert np.abs(distorted - undistorted).max() > 5.0  # the distortion is not negligible


def test_undistort_pixels_keeps_nan_shape_and_input():
    uv = np.array([[[100.0, 80.0], [np.nan, np.nan]], [[500.0, 400.0], [320.0, np.nan]]])
    before = uv.copy()
    got = DISTORTED.undistort_pixels(uv)
    assert got.shape == (2, 2, 2) and got.dtype == np.float64
    assert np.isnan(got[0, 1]).all() and np.isnan(got[1, 1, 1])  # a point with any NaN is not undistorted
    assert np.isfinite(got[0, 0]).all() and np.isfinite(got[1, 0]).all()
    np.testing.assert_array_equal(uv, before)  # the input is not modified
    assert DISTORTED.undistort_pixels(np.zeros((0, 2))).shape == (0, 2)


def test_undistort_pixels_without_distortion_is_a_float64_copy():
    uv = np.array([[1.5, 2.5], [3.0, 4.0]], np.float32)
    got = INTR.undistort_pixels(uv)
    assert got.dtype == np.float64 and got is not uv
    np.testing.assert_array_equal(got, uv)


def test_from_fov_gives_the_focal_length_of_the_field_of_view():
    intr = Intrinsics.from_fov(640, 480, 90.0)
    assert intr.approximate and intr.fx == pytest.approx(320.0) and intr.fy == intr.fx
    assert (intr.cx, intr.cy, intr.width, intr.height) == (320.0, 240.0, 640, 480)
    # the image's left and right edges lie at +-45 deg
    left = intr.unproject(np.array([0.0, 240.0]), 1.0)
    assert math.degrees(math.atan2(-left[0], left[2])) == pytest.approx(45.0)


@pytest.mark.parametrize("hfov", [0.0, 1.0, 179.0, 200.0, -60.0, math.nan, math.inf])
def test_from_fov_rejects_impossible_fields_of_view(hfov):
    with pytest.raises(ValueError, match="field of view"):
        Intrinsics.from_fov(640, 480, hfov)


def test_scaled_to_keeps_the_rays():
    half = INTR.scaled_to(320, 240)
    assert (half.width, half.height) == (320, 240)
    p = np.array([[30.0, -40.0, 600.0]])
    np.testing.assert_allclose(half.project(p), INTR.project(p) / 2.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(fx=0.0), dict(fy=-1.0), dict(fx=math.nan), dict(fx=math.inf), dict(cx=math.nan), dict(cy=math.inf),
        dict(width=0), dict(height=-480), dict(dist=(0.1, 0.2, 0.3)), dict(dist=(0.0,) * 6),
        dict(dist=(0.1, math.nan, 0.0, 0.0, 0.0)),
    ],
)  # fmt: skip
def test_intrinsics_reject_invalid_values(kwargs):
    base = dict(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
    with pytest.raises(ValueError):
        Intrinsics(**{**base, **kwargs})


@pytest.mark.parametrize("n", [4, 5, 8, 12, 14])
def test_intrinsics_accept_every_opencv_distortion_length(n):
    assert len(Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480, dist=(0.0,) * n).dist) == n


# ------------------------------------------------------------------------------------- Extrinsics


def test_to_camera_is_R_X_plus_t_and_to_world_inverts_it():
    X = points_in_front()
    cam = EXT.to_camera(X)
    np.testing.assert_allclose(cam, (EXT.R @ X.T).T + EXT.t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(EXT.to_world(cam), X, rtol=0, atol=1e-9)
    # leading axes are kept
    assert EXT.to_camera(X.reshape(5, 10, 3)).shape == (5, 10, 3)


def test_center_maps_to_the_camera_origin():
    c = EXT.center
    assert c.shape == (3,)
    np.testing.assert_allclose(EXT.to_camera(c), 0.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(EXT.to_world(np.zeros(3)), c, rtol=0, atol=1e-9)
    np.testing.assert_allclose(Extrinsics(np.eye(3), np.array([0.0, 0.0, 500.0])).center, [0.0, 0.0, -500.0])


def test_matrix_is_R_t():
    M = EXT.matrix
    assert M.shape == (3, 4) and M.dtype == np.float64
    np.testing.assert_array_equal(M[:, :3], EXT.R)
    np.testing.assert_array_equal(M[:, 3], EXT.t)


def test_default_extrinsics_are_the_identity():
    ext = Extrinsics()
    X = points_in_front(5)
    np.testing.assert_array_equal(ext.to_camera(X), X)
    np.testing.assert_array_equal(ext.center, np.zeros(3))


@pytest.mark.parametrize("R, t", [(np.eye(4), np.zeros(3)), (np.eye(3), np.zeros((3, 1))), (np.eye(3), np.zeros(2))])
def test_extrinsics_reject_wrong_shapes(R, t):
    with pytest.raises(ValueError, match="R \\(3, 3\\) and t \\(3,\\)"):
        Extrinsics(R, t)


# ----------------------------------------------------------------------------------------- Camera


def test_camera_world_camera_round_trip():
    cam = Camera("c", INTR, EXT)
    X = points_in_front()
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(cam.world_to_camera(X), EXT.to_camera(X))


def test_projection_matrix_projects_like_project_without_distortion():
    cam = Camera("c", INTR, EXT)
    P = cam.projection_matrix
    assert P.shape == (3, 4)
    np.testing.assert_allclose(P, INTR.K @ np.c_[EXT.R, EXT.t], rtol=0, atol=1e-9)
    X = points_in_front()
    xh = np.c_[X, np.ones(len(X))] @ P.T
    uv = cam.project(X)
    np.testing.assert_allclose(xh[:, :2] / xh[:, 2:], uv, rtol=0, atol=1e-6)
    np.testing.assert_allclose(INTR.project(cam.world_to_camera(X)), uv, rtol=0, atol=1e-6)
    assert (uv >= 0).all() and (uv < [640, 480]).all()


def test_camera_project_applies_the_distortion_like_opencv():
    cam = Camera("c", DISTORTED, EXT)
    X = points_in_front()
    rvec = cv2.Rodrigues(EXT.R)[0]
    want = cv2.projectPoints(X, rvec, EXT.t, DISTORTED.K, np.asarray(DIST))[0].reshape(-1, 2)
    np.testing.assert_allclose(cam.project(X), want, rtol=0, atol=1e-9)
    # undistorting the projection gives the pinhole projection
    pinhole = Camera("p", INTR, EXT).project(X)
    np.testing.assert_allclose(cam.undistort_pixels(cam.project(X)), pinhole, rtol=0, atol=0.01)
    # shapes: leading axes kept, empty input
    assert cam.project(X.reshape(5, 10, 3)).shape == (5, 10, 2)
    assert cam.project(np.zeros((0, 3))).shape == (0, 2)


# ------------------------------------------------------------------------------ poses and labels


def _pose(**changes) -> HandPose:
    base = dict(joints_2d=np.zeros((NUM_JOINTS, 2)), confidence=np.ones(NUM_JOINTS), timestamp=0.0)
    return HandPose(**{**base, **changes})


def test_hand_pose_accepts_its_shapes():
    j3 = np.zeros((NUM_JOINTS, 3))
    pose = _pose(joints_3d=j3, joints_local=j3, joints_world=j3, uncertainty_mm=np.ones(NUM_JOINTS))
    assert pose.replace(track_id=3).track_id == 3 and pose.track_id == -1


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(joints_2d=np.zeros((20, 2))), "joints_2d"),
        (dict(joints_2d=np.zeros((NUM_JOINTS, 3))), "joints_2d"),
        (dict(confidence=np.ones((NUM_JOINTS, 1))), "confidence"),
        (dict(joints_3d=np.zeros((NUM_JOINTS, 2))), "joints_3d"),
        (dict(joints_local=np.zeros((22, 3))), "joints_local"),
        (dict(joints_world=np.zeros(3)), "joints_world"),
        (dict(uncertainty_mm=np.ones(20)), "uncertainty_mm"),
    ],
)  # fmt: skip
def test_hand_pose_rejects_wrong_shapes(changes, field):
    with pytest.raises(ValueError, match=field):
        _pose(**changes)


def test_ground_truth_checks_shapes_against_the_hand_count():
    k = 2
    ok = dict(joints_3d=np.zeros((k, NUM_JOINTS, 3)), joints_2d=np.zeros((k, NUM_JOINTS, 2)),
              visible=np.ones((k, NUM_JOINTS), bool), handedness=("left", "right"))  # fmt: skip
    assert len(GroundTruth(**ok).handedness) == 2
    empty = GroundTruth(np.zeros((0, NUM_JOINTS, 3)), np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS), bool), ())
    assert empty.joints_3d.shape[0] == 0
    for name, bad in (("joints_3d", np.zeros((1, NUM_JOINTS, 3))), ("joints_2d", np.zeros((k, NUM_JOINTS, 3))),
                      ("visible", np.ones((k, 20), bool))):  # fmt: skip
        with pytest.raises(ValueError):
            GroundTruth(**{**ok, name: bad})
    with pytest.raises(ValueError):  # three hands' handedness for two hands' joints
        GroundTruth(**{**ok, "handedness": ("left", "right", "left")})
