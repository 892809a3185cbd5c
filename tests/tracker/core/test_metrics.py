import numpy as np
import pytest

from tracker.core.joints import EDGES, NUM_JOINTS
from tracker.core.metrics import (
    bbox_size,
    bone_length_sum,
    joint_errors,
    mean_joint_error,
    pck,
    procrustes_align,
    root_relative,
    sequence_joint_errors,
    success_rate,
)


def random_hand(seed: int = 0) -> np.ndarray:
    """A non-planar hand-sized point set (mm)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 40, size=(NUM_JOINTS, 3)) * [1.0, 1.0, 0.5] + [0, 0, 500]


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_joint_errors_and_mean():
    gt = np.zeros((NUM_JOINTS, 2))
    pred = gt.copy()
    pred[:, 0] = 3.0
    pred[:, 1] = 4.0
    np.testing.assert_allclose(joint_errors(pred, gt), 5.0)
    valid = np.zeros(NUM_JOINTS, bool)
    valid[:3] = True
    pred[3:] += 100.0  # invalid joints must not count
    assert mean_joint_error(pred, gt, valid) == pytest.approx(5.0)
    assert np.isnan(mean_joint_error(pred, gt, np.zeros(NUM_JOINTS, bool)))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        joint_errors(np.zeros((21, 3)), np.zeros((21, 2)))
    with pytest.raises(ValueError):
        mean_joint_error(np.zeros((21, 3)), np.zeros((21, 3)), np.ones(20, bool))


def test_root_relative_removes_translation_only():
    gt = random_hand(1)
    shifted = gt + [120.0, -40.0, 300.0]
    rr = root_relative(shifted)
    np.testing.assert_allclose(rr[0], 0.0)
    np.testing.assert_allclose(rr, root_relative(gt), atol=1e-9)
    # A rotation about the wrist is not removed.
    rot = (gt - gt[0]) @ rotation([0, 1, 0], 0.3).T + gt[0]
    assert mean_joint_error(root_relative(rot), root_relative(gt)) > 5.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_procrustes_recovers_similarity_transform(seed):
    gt = random_hand(seed)
    rng = np.random.default_rng(10 + seed)
    R = rotation(rng.normal(size=3), rng.uniform(0.2, 3.0))
    pred = 0.7 * gt @ R.T + rng.normal(0, 200, size=3)
    assert mean_joint_error(pred, gt) > 50.0
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-8)
    # Without scale the fit cannot undo the 0.7.
    assert mean_joint_error(procrustes_align(pred, gt, scale=False), gt) > 1.0


def test_procrustes_does_not_reflect():
    gt = random_hand(3)
    mirrored = gt * [-1.0, 1.0, 1.0]  # a left hand for a right one: no rotation makes them equal
    aligned = procrustes_align(mirrored, gt)
    assert mean_joint_error(aligned, gt) > 5.0
    c = aligned - aligned.mean(0)
    m = mirrored - mirrored.mean(0)
    # Still a proper similarity of the input: pairwise distances scale uniformly.
    d_a = np.linalg.norm(c[:, None] - c[None], axis=-1)
    d_m = np.linalg.norm(m[:, None] - m[None], axis=-1)
    ratio = d_a[d_m > 0] / d_m[d_m > 0]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    # And the scale is the least-squares one for the reflection-free rotation: rescaling about
    # the centroid in either direction only increases the squared error.
    mu = gt.mean(0)

    def sse(k: float) -> float:
        return float((((aligned - mu) * k + mu - gt) ** 2).sum())

    assert sse(1.0) < sse(0.98) and sse(1.0) < sse(1.02)


def test_procrustes_fits_on_valid_joints_only():
    gt = random_hand(4)
    R = rotation([1, 2, 3], 0.8)
    pred = 1.3 * gt @ R.T + [5, 6, 7]
    pred[0] += 500.0  # one wild joint, excluded from the fit
    valid = np.ones(NUM_JOINTS, bool)
    valid[0] = False
    aligned = procrustes_align(pred, gt, valid)
    np.testing.assert_allclose(aligned[1:], gt[1:], atol=1e-8)
    with pytest.raises(ValueError):
        procrustes_align(pred, gt, np.eye(NUM_JOINTS, dtype=bool)[0])


def test_procrustes_reduces_but_keeps_real_shape_error():
    gt = random_hand(5)
    noise = np.random.default_rng(6).normal(0, 3.0, size=gt.shape)
    pred = (gt + noise) @ rotation([0, 0, 1], 1.0).T * 2.0
    err = mean_joint_error(procrustes_align(pred, gt), gt)
    assert 0.5 < err < 5.0  # about the 3 mm noise, not 0 and not the raw error


def test_pck_known_distances():
    errors = np.arange(10, dtype=float)  # 0..9
    assert pck(errors, 4.0) == pytest.approx(0.5)  # 0..4 inclusive
    assert pck(errors, -1.0) == 0.0
    assert pck(errors, 9.0) == 1.0
    valid = errors >= 5
    assert pck(errors, 6.5, valid) == pytest.approx(2 / 5)
    # Per-hand thresholds broadcast over joints.
    errs = np.array([[1.0, 3.0], [1.0, 3.0]])
    assert pck(errs, np.array([[2.0], [4.0]])) == pytest.approx(3 / 4)
    assert np.isnan(pck(errors, 1.0, np.zeros(10, bool)))


def test_bbox_size_uses_valid_joints_and_longer_side():
    pts = np.array([[10.0, 20.0], [40.0, 30.0], [1000.0, 1000.0]])
    assert bbox_size(pts, np.array([True, True, False])) == pytest.approx(30.0)
    assert bbox_size(pts[:2] * [1, 10]) == pytest.approx(100.0)  # 30 x 100


def test_bone_length_sum():
    joints = np.zeros((NUM_JOINTS, 3))
    for p, c in EDGES:  # every bone 10 mm along x from its parent
        joints[c] = joints[p] + [10.0, 0, 0]
    assert bone_length_sum(joints) == pytest.approx(10.0 * len(EDGES))
    assert bone_length_sum(2.5 * joints + 7.0) == pytest.approx(25.0 * len(EDGES))


def test_sequence_joint_errors_and_success_rate():
    gt = np.zeros((3, 2, 3))
    pred = gt.copy()
    pred[0, 0] = [3.0, 4.0, 0.0]  # 5 mm
    pred[1, 1] = [0.0, 0.0, 12.0]  # 12 mm
    err = sequence_joint_errors(pred, gt)
    np.testing.assert_allclose(err, [[5, 0], [0, 12], [0, 0]])
    curve = success_rate(err.max(axis=1), [0.0, 5.0, 11.9, 12.0])
    np.testing.assert_allclose(curve, [1 / 3, 2 / 3, 2 / 3, 1.0])
    assert np.isnan(success_rate(np.zeros(0), [1.0])).all()
    with pytest.raises(ValueError):
        sequence_joint_errors(pred, gt[:2])
