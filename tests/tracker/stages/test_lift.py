import numpy as np
import pytest

from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics
from tracker.stages.lift import LiftConfig, MetricLifter, fit_translation, ray_rotation

INTR = Intrinsics(600.0, 610.0, 330.0, 235.0, 640, 480)


def local_hand(seed: int = 0) -> np.ndarray:
    """A hand-sized random 3D point set (mm), centred at the origin."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(0, 40, size=(NUM_JOINTS, 3)) * [1.0, 1.0, 0.4]
    return pts - pts.mean(axis=0)


def observe(local: np.ndarray, t: np.ndarray, intr: Intrinsics = INTR) -> HandPose:
    uv = intr.project(local + t)
    return HandPose(uv, np.ones(NUM_JOINTS), 0.0, joints_local=local)


@pytest.mark.parametrize("t", [[0, 0, 450], [120, -80, 600], [-200, 150, 350]])
def test_recovers_exact_translation_without_noise(t):
    local, t = local_hand(), np.array(t, float)
    hand = observe(local, t)
    out = MetricLifter(LiftConfig(align="none")).lift(hand, INTR)
    np.testing.assert_allclose(out.joints_3d, local + t, atol=1e-6)


def test_pixel_noise_gives_small_depth_error():
    rng = np.random.default_rng(1)
    local, t = local_hand(2), np.array([50.0, 20.0, 500.0])
    hand = observe(local, t)
    noisy = hand.replace(joints_2d=hand.joints_2d + rng.normal(0, 2.0, (NUM_JOINTS, 2)))
    out = MetricLifter(LiftConfig(align="none")).lift(noisy, INTR)
    err = np.linalg.norm(out.joints_3d - (local + t), axis=1).mean()
    assert err < 15.0  # 2 px noise on a ~100 px hand at 0.5 m


def test_gauss_newton_improves_on_linear_solution():
    rng = np.random.default_rng(4)
    local, t = local_hand(5), np.array([180.0, -120.0, 420.0])
    uv = INTR.project(local + t) + rng.normal(0, 3.0, (NUM_JOINTS, 2))
    xy = (uv - [INTR.cx, INTR.cy]) / [INTR.fx, INTR.fy]
    _, rms0 = fit_translation(local, xy, np.ones(NUM_JOINTS), steps=0)
    _, rms3 = fit_translation(local, xy, np.ones(NUM_JOINTS), steps=3)
    assert rms3 <= rms0 + 1e-12


def test_ray_rotation_maps_axis_to_ray_and_identity_at_centre():
    R = ray_rotation(np.array([INTR.cx, INTR.cy]), INTR)
    np.testing.assert_allclose(R, np.eye(3), atol=1e-12)
    uv = np.array([600.0, 50.0])
    R = ray_rotation(uv, INTR)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    ray = R @ [0, 0, 1.0]
    np.testing.assert_allclose(INTR.project(ray * 500), uv, atol=1e-9)


def test_scale_moves_the_hand_proportionally():
    local, t = local_hand(), np.array([0.0, 0.0, 500.0])
    hand = observe(local, t)
    out = MetricLifter(LiftConfig(align="none", hand_scale=1.2)).lift(hand, INTR)
    assert out.joints_3d[:, 2].mean() == pytest.approx(600.0, rel=1e-6)


def test_distortion_is_undone_before_fitting():
    intr = Intrinsics(600.0, 600.0, 320.0, 240.0, 640, 480, dist=(-0.2, 0.05, 0.0, 0.0, 0.0))
    import cv2

    local, t = local_hand(7), np.array([80.0, 60.0, 450.0])
    uv, _ = cv2.projectPoints(local + t, np.zeros(3), np.zeros(3), intr.K, np.array(intr.dist))
    hand = HandPose(uv.reshape(-1, 2), np.ones(NUM_JOINTS), 0.0, joints_local=local)
    out = MetricLifter(LiftConfig(align="none")).lift(hand, intr)
    np.testing.assert_allclose(out.joints_3d, local + t, atol=0.05)


def test_stage_skips_hands_without_shape_and_rejects_behind_camera():
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 0.0, 0, Camera("c", INTR))
    bare = HandPose(np.full((NUM_JOINTS, 2), 100.0), np.ones(NUM_JOINTS), 0.0)
    assert MetricLifter()(FrameSet.single(frame), [bare])[0].joints_3d is None
    # a "hand" whose projection needs it to sit behind the camera: no 3D, no exception
    local = local_hand()
    flipped = observe(local, np.array([0, 0, 500.0])).replace(joints_local=-local * 50)
    assert MetricLifter(LiftConfig(align="none")).lift(flipped, INTR).joints_3d is None
