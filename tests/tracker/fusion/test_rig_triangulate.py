"""Rig triangulation: distortion handling, DLT vs RANSAC, hand association and the pipeline stage."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from models.synthetic import SceneConfig, sample_scene
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics
from tracker.fusion.triangulate import (
    RigTriangulator,
    TriangulationConfig,
    TriangulationError,
    projection_matrices,
    triangulate_joints,
)

DIST = (-0.28, 0.09, 0.001, -0.0015, -0.01)


@pytest.fixture(scope="module")
def scene():
    """Two hands (right, left) seen by a 4-camera desk rig (synthetic, seed 5)."""
    return sample_scene(5, SceneConfig(num_frames=2, layout="desk", num_views=4, num_hands=2))


def distorted(cameras: tuple[Camera, ...]) -> tuple[Camera, ...]:
    return tuple(dataclasses.replace(c, intrinsics=dataclasses.replace(c.intrinsics, dist=DIST)) for c in cameras)


def observe(cameras, X: np.ndarray) -> np.ndarray:
    """``(J, V, 2)`` pixels of world points ``X`` (J, 3) mm, with each camera's distortion."""
    out = []
    for c in cameras:
        rvec = cv2.Rodrigues(np.asarray(c.extrinsics.R, np.float64))[0]
        uv = cv2.projectPoints(X, rvec, np.asarray(c.extrinsics.t, np.float64), c.intrinsics.K,
                               np.asarray(c.intrinsics.dist, np.float64))[0]  # fmt: skip
        out.append(uv.reshape(-1, 2))
    return np.stack(out, axis=1)


def test_distortion_is_removed_before_triangulating(scene):
    cams = distorted(scene.cameras)
    X = scene.joints_world(0)[0]
    uv = observe(cams, X)
    conf = np.ones(uv.shape[:2])
    for method in ("dlt", "ransac"):
        tri = triangulate_joints(cams, uv, conf, TriangulationConfig(method=method))
        assert tri.points.shape == (21, 3) and tri.inliers.shape == (21, 4)
        assert np.abs(tri.points - X).max() < 0.05, method
        assert tri.inliers.all() and (tri.reprojection_px < 0.05).all() and tri.valid.all()
        assert (tri.num_inliers == 4).all() and np.isfinite(tri.uncertainty_mm).all()
    # ignoring the distortion costs millimetres: the undistortion really is applied
    naive = triangulate_joints(scene.cameras, uv, conf, TriangulationConfig(method="dlt"))
    assert np.abs(naive.points - X).max() > 1.0
    # Camera.undistort_pixels inverts the projection; NaN stays NaN
    P = projection_matrices(cams)
    xh = np.einsum("ab,jb->ja", P[1], np.c_[X, np.ones(21)])
    want = xh[:, :2] / xh[:, 2:]
    got = cams[1].undistort_pixels(np.vstack([uv[:, 1], [[np.nan, np.nan]]]))
    assert np.abs(got[:21] - want).max() < 1e-3 and np.isnan(got[21]).all()


def test_ransac_rejects_a_wrong_view_that_dlt_averages_in(scene):
    rng = np.random.default_rng(0)
    X = scene.joints_world(0)[1]
    uv = observe(scene.cameras, X) + rng.normal(0.0, 1.0, (21, 4, 2))
    uv[:, 2] += [80.0, -60.0]  # view 2 is off for every joint (a mis-detection)
    conf = np.full((21, 4), 0.9)
    conf[5, 0] = 0.01  # below min_confidence: ignored
    dlt = triangulate_joints(scene.cameras, uv, conf, TriangulationConfig(method="dlt"))
    ran = triangulate_joints(scene.cameras, uv, conf, TriangulationConfig(method="ransac", threshold_px=10.0))
    assert not ran.inliers[:, 2].any() and not ran.inliers[5, 0] and ran.num_inliers.min() >= 2
    e_dlt = np.linalg.norm(dlt.points - X, axis=1)
    e_ran = np.linalg.norm(ran.points - X, axis=1)
    assert e_ran.max() < 8.0 and e_dlt.mean() > 3 * e_ran.mean()
    assert np.nanmedian(dlt.reprojection_px) > 10.0 > np.nanmax(ran.reprojection_px)
    assert not dlt.inliers[5, 0] and dlt.inliers[:, 2].all()


def test_bad_inputs_raise(scene):
    with pytest.raises(TriangulationError, match=r"\(J, 4, 2\)"):
        triangulate_joints(scene.cameras, np.zeros((21, 3, 2)), np.ones((21, 3)))
    with pytest.raises(TriangulationError, match="confidence"):
        triangulate_joints(scene.cameras, np.zeros((21, 4, 2)), np.ones((21, 3)))
    with pytest.raises(TriangulationError, match="method"):
        TriangulationConfig(method="svd")  # type: ignore[arg-type]
    with pytest.raises(TriangulationError, match="min_views"):
        TriangulationConfig(min_views=1)


# ------------------------------------------------------------------------------------ the stage


def frameset(cameras) -> FrameSet:
    img = np.zeros((8, 8, 3), np.uint8)
    return FrameSet(tuple(Frame(img, 1.5, 3, c) for c in cameras), 1.5, 3)


def detection(uv: np.ndarray, view: int, side: str, rng: np.random.Generator) -> HandPose:
    return HandPose(uv + rng.normal(0.0, 1.0, uv.shape), rng.uniform(0.6, 1.0, 21), 1.5, handedness=side,
                    handedness_score=0.9, view=view, score=0.95)  # fmt: skip


def test_rig_stage_associates_two_hands_with_partial_views(scene):
    rng = np.random.default_rng(1)
    cams = distorted(scene.cameras)
    truth = scene.joints_world(0)
    sides = [h.handedness for h in scene.hands]
    uv = [observe(cams, X) for X in truth]  # (21, 4, 2) per hand
    hands = []
    for k in range(2):
        for v in range(4):
            if (k, v) == (1, 3):
                continue  # the left hand is not detected in view 3
            side = sides[k]
            if (k, v) == (0, 2):
                side = sides[1]  # MediaPipe's label flipped in one view
            hands.append(detection(uv[k][:, v], v, side, rng))
    rng.shuffle(hands)
    stage = RigTriangulator(cams, TriangulationConfig(sigma_px=1.0))
    out = stage(frameset(cams), hands)
    assert len(out) == 2
    matched = set()
    for h in out:
        k = int(np.argmin([np.linalg.norm(h.joints_world - X, axis=1).mean() for X in truth]))
        matched.add(k)
        err = np.linalg.norm(h.joints_world - truth[k], axis=1)
        assert err.max() < 6.0, err
        assert h.view == -1 and h.handedness == sides[k] and h.timestamp == 1.5
        assert (h.confidence > 0.4).all() and np.isfinite(h.uncertainty_mm).all()
        assert 0.2 < np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(h.uncertainty_mm**2)) < 4.0
        ref = cams[0]  # view 0 saw both hands: it is the reference view
        R, t = ref.extrinsics.R, ref.extrinsics.t
        np.testing.assert_allclose(h.joints_3d, h.joints_world @ np.asarray(R).T + t, atol=1e-9)
        np.testing.assert_allclose(h.joints_2d, uv[k][:, 0], atol=5.0)
    assert matched == {0, 1}
    # the right hand's handedness vote was 3 to 1
    right = next(h for h in out if h.handedness == sides[0])
    assert right.handedness_score == pytest.approx(0.75)


def test_rig_stage_edge_cases(scene):
    rng = np.random.default_rng(2)
    cams = scene.cameras
    fs = frameset(cams)
    stage = RigTriangulator(None)  # cameras from the frames
    assert stage(fs, []) == []
    X = scene.joints_world(0)[0]
    uv = observe(cams, X)
    # seen by one view only: nothing to triangulate
    assert stage(fs, [detection(uv[:, 1], 1, "right", rng)]) == []
    # two views, views 0 and 3 have no detections; a joint below min_confidence in one of them
    a = detection(uv[:, 1], 1, "right", rng)
    b = detection(uv[:, 2], 2, "unknown", rng)
    conf = b.confidence.copy()
    conf[20] = 0.0
    out = stage(fs, [a, b.replace(confidence=conf)])
    assert len(out) == 1
    h = out[0]
    assert h.handedness == "right" and h.handedness_score == 1.0
    assert h.confidence[20] == 0.0 and np.isinf(h.uncertainty_mm[20])
    assert np.isfinite(h.joints_world).all()
    assert np.linalg.norm(h.joints_world[:20] - X[:20], axis=1).max() < 10.0
    assert np.linalg.norm(h.joints_world[20] - X[20]) < 40.0  # placed on view 1's ray at its parent's depth
    # an already fused hand passes through
    assert stage(fs, [h]) == [h]
    with pytest.raises(TriangulationError, match="view 7"):
        stage(fs, [a.replace(view=7)])
    with pytest.raises(TriangulationError, match="4 frames"):
        RigTriangulator(cams[:3])(fs, [a])


def test_no_cross_talk_between_far_hands_of_the_same_side(scene):
    """Two right hands 300 mm apart, seen by all 4 views: never mixed, each view gives one per hand."""
    rng = np.random.default_rng(3)
    cams = scene.cameras
    X0 = scene.joints_world(0)[0]
    X1 = X0 + [300.0, 0.0, 0.0]
    Xc = np.stack([X0, X1])
    centres = Xc.mean(axis=1)
    hands = [detection(observe(cams, X)[:, v], v, "right", rng) for X in Xc for v in range(4)]
    out = RigTriangulator(cams)(frameset(cams), hands)
    assert len(out) == 2
    got = sorted(out, key=lambda h: h.joints_world[:, 0].mean())
    for h, c in zip(got, centres):
        assert np.linalg.norm(h.joints_world.mean(axis=0) - c) < 5.0
        assert np.isfinite(h.uncertainty_mm).all()


def test_projection_matrix_is_K_R_t():
    cam = Camera("c", Intrinsics(500.0, 510.0, 320.0, 240.0, 640, 480))
    P = projection_matrices([cam])
    np.testing.assert_allclose(P[0], np.hstack([cam.intrinsics.K, np.zeros((3, 1))]))
