"""Masked joint refiner: network, masking, loss, weights files, shipped checkpoints, pipeline stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.hand_model import forward_kinematics, rest_pose
from tracker.post.refiner import RefinerStage
from models.refiner import (
    LAYOUTS,
    JointRefiner,
    JointRefinerNet,
    RefinerConfig,
    confidence_weighted_l1,
    corrupt_poses,
    normalize_poses,
    save_refiner,
)
from models.registry import load_pretrained, shipped_path
from tracker.core.errors import ModelError
from tracker.core.structures import FrameSet, HandPose


def _net(layout: str, seed: int = 0) -> JointRefinerNet:
    torch.manual_seed(seed)
    net = JointRefinerNet(RefinerConfig(layout, dim=32, depth=2, heads=4))
    with torch.no_grad():  # a non-trivial head, so outputs depend on the inputs
        net.head.weight.normal_(0.0, 0.1)
    return net.eval()


def _hand_poses(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 21, 3)`` mm: hand-model poses with random finger angles, 400 mm in front of a camera."""
    rng = np.random.default_rng(seed)
    pose = rest_pose(n)
    pose[:, 6:] = torch.as_tensor(rng.uniform(0.0, 0.8, (n, 20)))
    pose[:, 3:6] = torch.tensor([0.0, 0.0, 400.0])
    with torch.no_grad():
        return forward_kinematics(pose).numpy()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_forward_shapes_and_finite(layout: str) -> None:
    net = _net(layout)
    j = LAYOUTS[layout]
    x = torch.randn(5, j, 3) * 0.5
    conf = torch.rand(5, j)
    mask = torch.zeros(5, j, dtype=torch.bool)
    mask[:, 0] = True
    delta, log_scale = net(x, conf, mask)
    assert delta.shape == (5, j, 3) and log_scale.shape == (5, j)
    assert torch.isfinite(delta).all() and torch.isfinite(log_scale).all()


def test_masked_joint_ignores_its_coordinates() -> None:
    net = _net("nyu")
    x = torch.randn(2, 14, 3) * 0.5
    conf = torch.ones(2, 14)
    mask = torch.zeros(2, 14, dtype=torch.bool)
    mask[:, 4] = True
    x2 = x.clone()
    x2[:, 4] += 3.0
    with torch.no_grad():
        a, _ = net(x, conf, mask)
        b, _ = net(x2, conf, mask)
        c, _ = net(x2, conf, torch.zeros_like(mask))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-4  # unmasked, the same change does matter


def test_corrupt_poses_masks_within_range() -> None:
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(400, 14, 3) * 40
    noisy, conf, mask = corrupt_poses(clean, g, mask_range=(0.15, 0.4))
    counts = mask.sum(1)
    assert counts.min() >= 2 and counts.max() <= round(0.4 * 14)  # 15 % of 14 joints rounds to 2
    assert (noisy[mask] == 0).all() and (conf[mask] == 0).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    moved = (noisy - clean).norm(dim=-1)[~mask]
    assert moved.mean() > 0.5  # visible joints are noised
    maskable = torch.zeros(14, dtype=torch.bool)
    maskable[:3] = True
    _, _, mask2 = corrupt_poses(clean, g, mask_range=(0.4, 0.4), maskable=maskable)
    assert not mask2[:, 3:].any() and mask2[:, :3].any()


def test_normalize_ignores_zero_weight_joints() -> None:
    xyz = torch.randn(3, 21, 3) * 30 + torch.tensor([0.0, 0.0, 500.0])
    w = torch.ones(3, 21)
    xn, root = normalize_poses(xyz, w, "mp21")
    torch.testing.assert_close(xn * 100.0 + root, xyz)
    xyz2 = xyz.clone()
    xyz2[:, 0] += 1000.0  # the wrist (a root joint) far away, but with weight 0
    w2 = w.clone()
    w2[:, 0] = 0.0
    _, root2 = normalize_poses(xyz2, w2, "mp21")
    assert (root2 - root).abs().max() < 30.0
    _, root3 = normalize_poses(xyz2, w, "mp21")
    assert (root3 - root).abs().max() > 100.0


def test_confidence_weighted_l1_optimum_and_weights() -> None:
    pred = torch.zeros(1, 2, 3)
    target = torch.full((1, 2, 3), 0.1)  # per-coordinate error 0.1 -> optimal scale 0.1
    scales = torch.linspace(-5, 0, 201)
    losses = [float(confidence_weighted_l1(pred, target, torch.full((1, 2), float(s)))) for s in scales]
    best = float(scales[int(np.argmin(losses))])
    assert abs(best - np.log(0.1)) < 0.05
    # the thesis' 1/C weight: a joint with low input confidence counts more
    t2 = target.clone()
    t2[0, 1] = 1.0
    ls = torch.zeros(1, 2)
    low_on_big = confidence_weighted_l1(pred, t2, ls, input_conf=torch.tensor([[1.0, 0.2]]))
    low_on_small = confidence_weighted_l1(pred, t2, ls, input_conf=torch.tensor([[0.2, 1.0]]))
    assert low_on_big > low_on_small


def test_one_training_step_decreases_loss() -> None:
    torch.manual_seed(0)
    net = JointRefinerNet(RefinerConfig("mp21", dim=32, depth=2, heads=4))
    g = torch.Generator().manual_seed(0)
    clean = torch.as_tensor(_hand_poses(64), dtype=torch.float32)
    noisy, conf, mask = corrupt_poses(clean, g)
    xn, root = normalize_poses(noisy, conf, "mp21")
    xn = torch.where(mask.unsqueeze(-1), torch.zeros_like(xn), xn)
    target = (clean - root) / 100.0
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        d, s = net(xn, conf, mask)
        return confidence_weighted_l1(xn + d, target, s, conf)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())


def test_save_load_weights_only_roundtrip(tmp_path: Path) -> None:
    net = _net("icvl")
    path = tmp_path / "r.pt"
    save_refiner(net, path, blend=0.7, meta={"note": "test"})
    blob = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    ref = load_pretrained("refiner_icvl", path=path)
    assert ref.blend == 0.7 and ref.meta["note"] == "test" and ref.layout == "icvl"
    x = np.random.default_rng(0).normal(0, 30, (4, 16, 3)) + [0, 0, 400]
    direct = JointRefiner(net, blend=0.7).refine(x)
    np.testing.assert_allclose(ref.refine(x), direct, atol=0.2)  # float16 storage
    with pytest.raises(ModelError, match="train_refiner"):
        load_pretrained("refiner_nyu", path=tmp_path / "missing.pt")


def test_refine_batches_single_pose_nan_and_shapes() -> None:
    ref = JointRefiner(_net("mp21"), blend=1.0, batch_size=3)
    x = _hand_poses(7)
    out = ref.refine(x)
    assert out.shape == x.shape and np.isfinite(out).all()
    big = JointRefiner(ref.net, blend=1.0, batch_size=100).refine(x)
    np.testing.assert_allclose(out, big, atol=1e-4)
    np.testing.assert_allclose(ref.refine(x[2]), out[2], atol=1e-4)
    x_nan = x.copy()
    x_nan[0, 8] = np.nan
    out_nan = ref.refine(x_nan)
    assert np.isfinite(out_nan).all()
    zero = JointRefiner(ref.net, blend=0.0).refine(x)
    np.testing.assert_allclose(zero, x, atol=1e-3)  # blend 0 = identity on visible joints
    with pytest.raises(ValueError, match=r"\(N, 21, 3\)"):
        ref.refine(np.zeros((2, 14, 3)))
    with pytest.raises(ValueError, match="confidence"):
        ref.refine(x, np.ones((7, 20)))


def test_refine_uvd_roundtrip_format() -> None:
    ref = JointRefiner(_net("nyu"), blend=0.0)
    uvd = np.random.default_rng(0).uniform([200, 150, 600], [400, 300, 900], (5, 14, 3))
    np.testing.assert_allclose(ref.refine_uvd(uvd), uvd, atol=1e-2)
    with pytest.raises(ValueError, match="nyu"):
        JointRefiner(_net("mp21")).refine_uvd(np.zeros((1, 21, 3)))


def _hand(joints: np.ndarray | None, world: np.ndarray | None = None) -> HandPose:
    conf = np.ones(21)
    conf[5] = 0.0  # one joint unknown: the refiner fills it in
    return HandPose(joints_2d=np.zeros((21, 2)), confidence=conf, timestamp=0.0, joints_3d=joints, joints_world=world)


def test_stage_refines_camera_and_world_joints() -> None:
    """The shipped mp21 refiner as a stage on clean hand-model poses whose joint 5 (confidence 0) is 62 mm
    off (camera) / 58 mm off (world). Measured over 3 seeds: joint 5 lands 7.3-16.1 mm from the truth, the
    other joints move <= 1.31 mm, joint 5 gets the largest uncertainty. Bounds: < 25 mm, < 3 mm."""
    stage = RefinerStage(load_pretrained("refiner_mp21"))
    for seed in range(3):
        poses = _hand_poses(2, seed=seed)
        camera, world = poses[0].copy(), poses[1] - 200.0
        camera[5] += [50.0, -30.0, 20.0]
        world_in = world.copy()
        world_in[5] += [-40.0, 30.0, 30.0]
        hands = [_hand(camera, world=world_in), _hand(None)]
        out = stage(FrameSet(frames=(), timestamp=0.0, index=0), hands)
        assert len(out) == 2 and out[1] is hands[1]  # no 3D joints: passed through
        h = out[0]
        for refined, truth in ((h.joints_3d, poses[0]), (h.joints_world, world)):
            err = np.linalg.norm(refined - truth, axis=-1)
            assert err[5] < 25.0 and np.delete(err, 5).max() < 3.0, (seed, err)
        assert h.uncertainty_mm is not None and (h.uncertainty_mm > 0).all() and h.uncertainty_mm.argmax() == 5
    with pytest.raises(ValueError, match="mp21"):
        RefinerStage(JointRefiner(_net("nyu")))


def test_shipped_mp21_is_near_identity_on_clean_poses_and_fills_masked() -> None:
    ref = load_pretrained("refiner_mp21")
    x = _hand_poses(32, seed=3)
    out = ref.refine(x)
    assert np.isfinite(out).all()
    assert np.linalg.norm(out - x, axis=-1).mean() < 4.0  # clean poses barely move
    conf = np.ones((32, 21))
    conf[:, 8] = 0.0  # index tip unknown
    filled = ref.refine(np.where(conf[..., None] > 0, x, 0.0), conf)
    err = np.linalg.norm(filled[:, 8] - x[:, 8], axis=-1).mean()
    visible = np.delete(x, 8, axis=1).mean(1)  # knowing nothing: the centre of the other joints
    naive = np.linalg.norm(visible - x[:, 8], axis=-1).mean()
    assert err < min(30.0, 0.5 * naive)  # predicted from the other joints


@pytest.mark.parametrize("layout", ["nyu", "icvl"])
def test_shipped_benchmark_refiners_load_and_refine(layout: str) -> None:
    ref = load_pretrained(f"refiner_{layout}")
    assert ref.layout == layout and 0.0 <= ref.blend <= 1.0
    x = np.random.default_rng(0).normal(0, 40, (3, LAYOUTS[layout], 3)) + [0, 0, 500]
    assert np.isfinite(ref.refine(x)).all()


@pytest.mark.slow  # NYU: 6-14 s (2440 frames x 24 methods)
@pytest.mark.parametrize("dataset", ["nyu", "icvl"])
def test_shipped_refiner_on_real_validation(dataset: str) -> None:
    from models.benchmark_data import ground_truth_path

    if not ground_truth_path(dataset).is_file():  # the shipped weights are not optional: load_pretrained fails
        pytest.skip("needs ../shared/data/nyu_icvl_eval")
    assert shipped_path(f"refiner_{dataset}").is_file()
    from scripts.train_refiner import load_benchmark, method_errors

    data = load_benchmark(dataset)
    ref = load_pretrained(f"refiner_{dataset}")
    gt = data.gt[data.validation]
    moved = np.linalg.norm(ref.refine(gt) - gt, axis=-1).mean()
    # ground truth moves little: only by the shared bias the refiner learned from all methods
    # (ICVL's published predictions share a ~4 mm offset from this GT)
    assert moved < 5.0
    raw = method_errors(None, data, data.validation)[1.0]
    after = method_errors(ref, data, data.validation, (ref.blend,))[ref.blend]
    assert np.mean(list(after.values())) <= np.mean(list(raw.values()))
