"""DepthLifter: 2D joints + registered depth -> metric 3D, on rendered RGB-D frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.depth_crop import sample_depth
from tracker.core.structures import FrameSet, HandPose
from tracker.stages.depth_lift import DepthLiftConfig, DepthLifter, robust_rigid


def _rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _hand_and_frame(fs: FrameSet) -> tuple[HandPose, FrameSet, np.ndarray, np.ndarray]:
    """The true 2D joints of frame ``fs`` with an RGB-lift-like 3D guess (12 deg, ~64 mm off)."""
    gt = fs.frames[0].ground_truth
    truth = gt.joints_3d[0]
    centre = truth.mean(0)
    guess = (truth - centre) @ _rot_z(12.0).T + centre + np.array([15.0, -10.0, 60.0])  # RGB-lift-like error
    hand = HandPose(joints_2d=gt.joints_2d[0], confidence=np.ones(21), timestamp=fs.timestamp, joints_3d=guess)
    return hand, fs, truth, gt.visible[0]


def test_sample_depth_medians_valid_readings_and_skips_outside() -> None:
    depth = np.zeros((10, 10), np.uint16)
    depth[4:7, 4:7] = [[500, 510, 0], [505, 520, 0], [0, 0, 900]]
    d = sample_depth(depth, np.array([[5.5, 5.5], [-3.0, 2.0], [0.5, 0.5], [np.nan, 1.0]]), 1)
    assert d[0] == np.median([500, 510, 505, 520, 900]) and np.isnan(d[1:]).all()


def test_robust_rigid_ignores_outliers() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(0, 40, (21, 3))
    rot = _rot_z(20.0)
    dst = src @ rot.T + [10.0, 20.0, 400.0]
    dst[:4] += 80.0  # four gross outliers
    r, t = robust_rigid(src, dst, huber=5.0, rotate=True)
    # Huber keeps a little pull from the outliers; plain least squares would move t by ~15 mm
    assert np.allclose(r, rot, atol=5e-3) and np.allclose(t, [10.0, 20.0, 400.0], atol=1.5)
    _, t_ls = robust_rigid(src, dst, huber=1e9, rotate=True)
    assert np.linalg.norm(t_ls - [10.0, 20.0, 400.0]) > 5 * np.linalg.norm(t - [10.0, 20.0, 400.0])


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_depth_places_a_misplaced_hand(seed: int, synthetic_frameset) -> None:
    hand, fs, truth, visible = _hand_and_frame(synthetic_frameset(seed, t=3, num_frames=6))
    before = np.linalg.norm(hand.joints_3d - truth, axis=1)
    out = DepthLifter()(fs, [hand])[0]
    after = np.linalg.norm(out.joints_3d - truth, axis=1)
    assert after.mean() < 0.3 * before.mean()
    assert np.median(after[visible]) < 8.0  # visible joints: measured, within the skin-depth model


def test_frames_without_depth_or_readings_pass_through(synthetic_frameset) -> None:
    hand, fs, _, _ = _hand_and_frame(synthetic_frameset(11, t=3, num_frames=6))
    frame = fs.frames[0]
    no_depth = FrameSet((frame.__class__(frame.image, frame.timestamp, frame.index, frame.camera),), 0.0, 0)
    assert DepthLifter()(no_depth, [hand])[0] is hand
    holes = np.zeros_like(frame.depth)
    assert DepthLifter().lift(hand, holes, frame.camera.intrinsics) is hand
    with pytest.raises(ValueError):
        DepthLiftConfig(window_px=-1)
