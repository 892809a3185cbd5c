import numpy as np
import pytest

from tracker.core.errors import ModelError
from tracker.core.joints import NUM_JOINTS
from models.prior import PosePrior, PriorError, choose_k_cv, fit_prior, kabsch_rotations
from models.refine_gate import calibrate_gate
from tracker.post.prior import PriorStage
from tracker.core.structures import FrameSet, HandPose


def rotation(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def hand_poses(n: int, joints: int, seed: int = 0) -> np.ndarray:
    """(n, joints, 3) mm: a fixed hand shape + a few smooth deformation modes, random rigid motion."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 40, (joints, 3)) * [1.0, 1.4, 0.4]
    modes = rng.normal(0, 1, (4, joints, 3))
    coeff = rng.normal(0, 6, (n, 4))
    local = base + np.einsum("nm,mjk->njk", coeff, modes)
    out = np.empty_like(local)
    for i in range(n):
        r = rotation(rng.normal(size=3), rng.uniform(0, np.pi))
        out[i] = local[i] @ r.T + rng.normal(0, 100, 3) + [0, 0, 600]
    return out


@pytest.fixture(scope="module", params=[("nyu", 14), ("icvl", 16), ("mediapipe", 21)])
def fitted(request):
    layout, joints = request.param
    poses = hand_poses(300, joints)
    return fit_prior(poses, layout, k=4), poses


def test_kabsch_recovers_rotation():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(7, 3))
    src -= src.mean(0)
    r = rotation([1, 2, 3], 0.7)
    got = kabsch_rotations(src[None], src @ r.T)[0]
    np.testing.assert_allclose(got, r, atol=1e-10)
    assert np.linalg.det(got) == pytest.approx(1.0)


def in_subspace(prior: PosePrior, n: int, seed: int = 0) -> np.ndarray:
    """Poses inside the prior's subspace, moved by random rotations and translations (mm)."""
    rng = np.random.default_rng(seed)
    coeff = rng.normal(0, 1, (n, prior.k)) * prior.sigma
    if prior.scale_free:
        coeff[:, 0] = np.linalg.norm(prior.template) * rng.uniform(0.85, 1.15, n)
    local = (coeff @ prior.basis.T).reshape(n, prior.num_joints, 3) + prior.origin
    out = np.empty_like(local)
    for i in range(n):
        out[i] = local[i] @ rotation(rng.normal(size=3), rng.uniform(0, np.pi)).T + rng.normal(0, 80, 3)
    return out


def test_projection_exact_in_subspace_and_idempotent(fitted):
    prior, poses = fitted
    inside = in_subspace(prior, 50)
    np.testing.assert_allclose(prior.project(inside, strength=1.0), inside, atol=1e-6)
    noisy = poses + np.random.default_rng(2).normal(0, 5, poses.shape)
    once = prior.project(noisy, strength=1.0)
    assert np.abs(once - noisy).max() > 1.0  # it did something
    twice = prior.project(once, strength=1.0)
    np.testing.assert_allclose(twice, once, atol=1e-6)


def test_projection_reduces_noise(fitted):
    prior, _ = fitted
    poses = in_subspace(prior, 100, seed=8)
    noisy = poses + np.random.default_rng(3).normal(0, 5, poses.shape)
    before = np.linalg.norm(noisy - poses, axis=-1).mean()
    after = np.linalg.norm(prior.project(noisy, strength=1.0) - poses, axis=-1).mean()
    assert after < 0.8 * before


def test_rotation_translation_scale_equivariance(fitted):
    prior, poses = fitted
    x = poses[:5] + np.random.default_rng(4).normal(0, 4, poses[:5].shape)
    r = rotation([0.3, -1, 0.5], 2.1)
    t = np.array([40.0, -25.0, 300.0])
    moved = prior.project(x @ r.T + t, strength=1.0)
    np.testing.assert_allclose(moved, prior.project(x, strength=1.0) @ r.T + t, atol=1e-6)
    c = x.mean(axis=1, keepdims=True)
    scaled = prior.project(1.2 * (x - c) + c, strength=1.0)  # scale-free prior: scaling commutes
    np.testing.assert_allclose(scaled, 1.2 * (prior.project(x, strength=1.0) - c) + c, atol=1e-6)


def test_confidence_blend(fitted):
    prior, poses = fitted
    x = poses[0] + np.random.default_rng(5).normal(0, 5, poses[0].shape)
    full = prior.project(x, strength=1.0)
    np.testing.assert_allclose(prior.project(x, strength=0.0), x)
    np.testing.assert_allclose(prior.project(x, strength=0.5), 0.5 * (x + full), atol=1e-9)
    conf = np.ones(prior.num_joints)
    conf[0] = 0.0
    out = prior.project(x, confidence=conf, strength=1.0, confidence_gain=1.0)
    np.testing.assert_allclose(out[1:], x[1:])  # fully confident joints are kept
    assert np.linalg.norm(out[0] - x[0]) > 0.5  # the doubtful one moves towards the prior
    half = prior.project(x, confidence=np.full(prior.num_joints, 0.5), strength=1.0, confidence_gain=1.0)
    moved = np.linalg.norm(half - x, axis=-1)
    assert (moved > 0).all() and (moved < np.linalg.norm(full - x, axis=-1) + 1e-6).all()


def test_affine_prior_exact_and_idempotent():
    poses = hand_poses(200, 14, seed=7)
    prior = fit_prior(poses, "nyu", k=4, scale_free=False)
    inside = in_subspace(prior, 30, seed=3)
    np.testing.assert_allclose(prior.project(inside, strength=1.0), inside, atol=1e-6)
    noisy = poses[:20] + 3.0
    once = prior.project(noisy + np.random.default_rng(0).normal(0, 4, noisy.shape), strength=1.0)
    np.testing.assert_allclose(prior.project(once, strength=1.0), once, atol=1e-6)


def test_save_load_roundtrip(tmp_path, fitted):
    prior, poses = fitted
    path = tmp_path / "p.npz"
    prior.save(path)
    back = PosePrior.load(path)
    assert back.layout == prior.layout and back.k == prior.k and back.scale_free == prior.scale_free
    np.testing.assert_array_equal(back.basis, prior.basis)
    np.testing.assert_allclose(back.project(poses[:3]), prior.project(poses[:3]))
    with np.load(path, allow_pickle=False) as z:  # really pickle-free
        assert "basis" in z


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="fit_priors"):
        PosePrior.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ModelError, match="not a handtrack pose prior"):
        PosePrior.load(bad)


def test_misuse(fitted):
    prior, poses = fitted
    with pytest.raises(PriorError, match="poses"):
        prior.project(np.zeros((3, prior.num_joints + 1, 3)))
    nan = poses[:2].copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(PriorError, match="NaN"):
        prior.project(nan)
    with pytest.raises(PriorError):
        prior.project(poses[:2], strength=1.5)


def test_choose_k_cv_prefers_true_dimension():
    poses = hand_poses(300, 14, seed=9)
    noisy = poses + np.random.default_rng(1).normal(0, 6, poses.shape)
    best, scores = choose_k_cv(poses, "nyu", (1, 4, 12), folds=3, noisy=noisy)
    assert best == 4
    assert scores[4] < scores[1] and scores[4] < scores[12]


def test_prior_stage_acts_on_3d_only():
    poses = hand_poses(200, NUM_JOINTS, seed=11)
    prior = fit_prior(poses, "mediapipe", k=4)
    x = poses[0] + np.random.default_rng(2).normal(0, 5, poses[0].shape)
    hand = HandPose(joints_2d=np.zeros((NUM_JOINTS, 2)), confidence=np.full(NUM_JOINTS, 0.2), timestamp=0.0,
                    joints_3d=x, joints_world=x + 10.0)
    bare = HandPose(joints_2d=np.zeros((NUM_JOINTS, 2)), confidence=np.ones(NUM_JOINTS), timestamp=0.0)
    stage = PriorStage(prior, strength=1.0, confidence_gain=0.5, gate=None)
    out = stage(FrameSet(frames=(), timestamp=0.0, index=0), [hand, bare])
    expect = prior.project(x, hand.confidence, 1.0, 0.5)
    np.testing.assert_allclose(out[0].joints_3d, expect)
    np.testing.assert_allclose(out[0].joints_world, expect + 10.0, atol=1e-9)
    np.testing.assert_array_equal(out[0].joints_2d, hand.joints_2d)
    assert out[1].joints_3d is None
    with pytest.raises(PriorError, match="21-joint"):
        PriorStage(fit_prior(hand_poses(50, 14), "nyu", k=2))
    with pytest.raises(PriorError, match="21-joint gate"):
        PriorStage(prior, gate=calibrate_gate("nyu", hand_poses(20, 14), [hand_poses(20, 14)]))
    assert PriorStage(prior).gate is not None and PriorStage(prior).gate.layout == "mediapipe"  # shipped by default


def test_prior_stage_mirrors_left_hands():
    poses = hand_poses(200, NUM_JOINTS, seed=12)
    prior = fit_prior(poses, "mediapipe", k=4)
    x = poses[3] + np.random.default_rng(4).normal(0, 5, poses[3].shape)
    flip = np.array([-1.0, 1.0, 1.0])
    left = HandPose(joints_2d=np.zeros((NUM_JOINTS, 2)), confidence=np.zeros(NUM_JOINTS), timestamp=0.0,
                    joints_3d=x * flip, handedness="left")
    out = PriorStage(prior, strength=1.0, gate=None)(FrameSet(frames=(), timestamp=0.0, index=0), [left])
    np.testing.assert_allclose(out[0].joints_3d, prior.project(x, np.zeros(NUM_JOINTS), 1.0, 0.5) * flip, atol=1e-9)


@pytest.mark.parametrize("far", ["scale", "offset"])
def test_prior_stage_gate_falls_back_far_from_its_training_hands(far):
    """With a gate, a hand 1.6x the training size or with a constant 15 mm offset per joint is left as it
    is; a hand like the training hands is still pulled towards the prior."""
    rng = np.random.default_rng(5)
    base = rng.normal(0, 40, (NUM_JOINTS, 3))  # one rigid hand (fixed bone lengths), turned at random
    poses = np.stack([base @ rotation(rng.normal(size=3), rng.uniform(0, np.pi)).T + [0, 0, 500] for _ in range(200)])
    prior = fit_prior(poses + rng.normal(0, 3, poses.shape), "mediapipe", k=4)
    gate = calibrate_gate("mediapipe", poses, [p[None] + rng.normal(0, 1, (1, NUM_JOINTS, 3)) for p in poses[:50]])
    x = poses[7] + rng.normal(0, 1, poses[7].shape)
    stage = PriorStage(prior, strength=1.0, gate=gate)
    frames = FrameSet(frames=(), timestamp=0.0, index=0)

    def run(joints: np.ndarray) -> np.ndarray:
        hand = HandPose(joints_2d=np.zeros((NUM_JOINTS, 2)), confidence=np.zeros(NUM_JOINTS), timestamp=0.0,
                        joints_3d=joints)
        return stage(frames, [hand])[0].joints_3d

    assert np.abs(run(x) - x).max() > 1.0
    c = x.mean(axis=0)
    bad = (x - c) * 1.6 + c if far == "scale" else x + rng.normal(0, 15.0, x.shape)
    np.testing.assert_allclose(run(bad), bad, atol=1e-9)
