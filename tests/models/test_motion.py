"""Motion generator: key shapes, actions, limits, smoothness, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import hand_model as hm
from models.motion import ACTIONS, HAND_SHAPES, MotionConfig, clamp_angles, hand_shape, sample_motion


def _joints(angles: np.ndarray) -> np.ndarray:
    pose = hm.rest_pose(len(angles))
    pose[:, 6:] = torch.as_tensor(angles)
    return hm.forward_kinematics(pose).numpy()


def test_key_shapes_respect_limits_and_mean_what_they_say() -> None:
    for name in HAND_SHAPES:
        a = hand_shape(name)
        assert np.array_equal(clamp_angles(a), a), name
    j = _joints(np.stack([hand_shape(n) for n in ("pinch", "fist", "open", "point")]))
    assert np.linalg.norm(j[0, 4] - j[0, 8]) < 15.0  # pinch: thumb tip meets index tip
    assert np.linalg.norm(j[1, 12] - j[1, 0]) < np.linalg.norm(j[2, 12] - j[2, 0]) * 0.6  # fist is closed
    # point: index tip far out, middle tip curled in
    assert np.linalg.norm(j[3, 8] - j[3, 0]) > 1.6 * np.linalg.norm(j[3, 12] - j[3, 0])
    with pytest.raises(ValueError, match="unknown hand shape"):
        hand_shape("thumbs_sideways")


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_within_limits_smooth_and_labelled(action: str) -> None:
    m = sample_motion(np.random.default_rng(1), action, 90, [0.0, 0.0, 0.0], [0.0, 0.0, 400.0])
    assert m.angles.shape == (90, 20) and m.rotvec.shape == (90, 3) and m.transl.shape == (90, 3)
    assert np.array_equal(clamp_angles(m.angles), m.angles)
    assert np.all(m.actions == action)
    # at 30 FPS no joint moves more than ~15 deg between frames, the wrist less than 20 mm
    assert np.abs(np.diff(m.angles, axis=0)).max() < np.radians(15.0)
    assert np.linalg.norm(np.diff(m.transl, axis=0), axis=1).max() < 20.0
    assert m.pose_vectors().shape == (90, hm.POSE_DIM)


def test_motion_is_deterministic_by_seed() -> None:
    a = sample_motion(np.random.default_rng(7), "count", 40, [0.1, 0.2, 0.3], [0.0, 0.0, 500.0])
    b = sample_motion(np.random.default_rng(7), "count", 40, [0.1, 0.2, 0.3], [0.0, 0.0, 500.0])
    c = sample_motion(np.random.default_rng(8), "count", 40, [0.1, 0.2, 0.3], [0.0, 0.0, 500.0])
    assert np.array_equal(a.pose_vectors(), b.pose_vectors())
    assert not np.array_equal(a.pose_vectors(), c.pose_vectors())


def test_wave_swings_the_wrist() -> None:
    still = sample_motion(np.random.default_rng(3), "open_close", 60, [0, 0, 0], [0, 0, 400],
                          MotionConfig(wrist_rotation_deg=0.0))
    wave = sample_motion(np.random.default_rng(3), "wave", 60, [0, 0, 0], [0, 0, 400],
                         MotionConfig(wrist_rotation_deg=0.0))
    assert np.abs(still.rotvec).max() < 1e-9
    assert np.abs(wave.rotvec[:, 2]).max() > np.radians(15.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        sample_motion(np.random.default_rng(0), "juggle", 10, [0, 0, 0], [0, 0, 400])
    with pytest.raises(ValueError, match="num_frames"):
        sample_motion(np.random.default_rng(0), "wave", 0, [0, 0, 0], [0, 0, 400])
