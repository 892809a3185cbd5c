"""V2V-PoseNet: model shapes, one training step, weights files, the synthetic data and the estimator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kernels import REFINE_GAUSS, grid_to_world, subvoxel_argmax, voxelize_depth, world_to_grid
from models.v2v import (
    MODEL_CONFIGS,
    RefPointNet,
    V2VPoseNet,
    create_model,
    load_weights,
    save_weights,
)
from models.v2v_data import (
    CropBank,
    SyntheticV2VDataset,
    V2VDataConfig,
    eval_reference_points,
    load_eval_set,
    make_sample,
    render_hand_crop,
    render_hand_frame,
)
from models.v2v_infer import RefPointRefiner, V2VEstimator, hand_reference_point

ROOT = Path(__file__).resolve().parents[2]
EVAL_SET = ROOT / "assets" / "synth_eval" / "single_view.npz"  # the checkout's evaluation set
SMALL = V2VDataConfig(in_grid=24)  # 24^3 grid, 12^3 heatmaps: fast


@pytest.fixture(scope="module")
def light() -> V2VPoseNet:
    torch.manual_seed(0)
    return create_model("v2v_light").eval()


def test_light_model_shapes_finite_and_batch1_fast_path(light: V2VPoseNet) -> None:
    D = light.in_grid
    x = (torch.rand(2, 1, D, D, D) > 0.9).float()
    with torch.inference_mode():
        feats = light.forward_features(x)
        y = light.forward_head(feats)
        y1 = light(x[:1])  # batch 1 takes the direct oneDNN convolution on CPU
    assert feats.shape == (2, light.width, D // 2, D // 2, D // 2)
    assert y.shape == (2, 21, D // 2, D // 2, D // 2)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y1, y[:1], rtol=1e-4, atol=1e-6 * float(y.abs().max()))


def test_full_model_is_the_papers_and_runs() -> None:
    model = create_model("v2v_full").eval()
    assert (model.in_grid, model.out_grid, model.width) == (88, 44, 32)
    # the paper's 3.4 M parameters are for 14 joints (NYU)
    n14 = sum(p.numel() for p in V2VPoseNet(num_joints=14).parameters())
    assert 3.3e6 < n14 < 3.5e6
    with torch.inference_mode():
        y = model(torch.zeros(1, 1, 88, 88, 88))
    assert y.shape == (1, 21, 44, 44, 44) and torch.isfinite(y).all()


def test_model_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        V2VPoseNet(in_grid=50)
    with pytest.raises(ValueError, match="expected input"):
        create_model("v2v_light")(torch.zeros(1, 1, 40, 40, 40))
    with pytest.raises(KeyError, match="v2v_light"):
        create_model("v2v_nope")
    assert set(MODEL_CONFIGS) >= {"v2v_full", "v2v_light", "refpoint"}


def test_refpoint_net_shapes() -> None:
    net = create_model("refpoint").eval()
    assert isinstance(net, RefPointNet)
    with torch.inference_mode():
        out = net(torch.zeros(3, 1, 32, 32, 32))
    assert out.shape == (3, 3) and torch.all(out == 0)  # starts at "no correction"


def test_one_training_step_decreases_the_loss() -> None:
    torch.manual_seed(0)
    model = V2VPoseNet(in_grid=SMALL.in_grid, width=4).train()
    s = SyntheticV2VDataset(SMALL, length=4)[1]
    x, target = s["grid"][None], s["heatmaps"][None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss0 = torch.nn.functional.mse_loss(model(x), target)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    loss1 = torch.nn.functional.mse_loss(model(x), target)
    assert loss1.item() < loss0.item()


def test_weights_file_round_trip(tmp_path: Path, light: V2VPoseNet) -> None:
    path = tmp_path / "w" / "v2v_light.pt"
    save_weights(light, path, meta={"steps": 3, "val_mean_mm": 12.5})
    assert [p.name for p in path.parent.iterdir()] == ["v2v_light.pt"]  # no temporary file left
    blob = torch.load(path, weights_only=True)
    assert blob["name"] == "v2v_light" and blob["config"]["in_grid"] == 48
    assert all(v.dtype in (torch.float16, torch.int64) for v in blob["state_dict"].values())
    back = load_weights(path)
    assert back.meta["steps"] == 3 and back.config == light.config
    x = (torch.rand(1, 1, 48, 48, 48) > 0.9).float()
    with torch.inference_mode():
        a, b = light(x), back(x)
    torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-3 * float(a.abs().max()))


def test_dataset_is_deterministic_and_bank_equals_rendering() -> None:
    ds = SyntheticV2VDataset(SMALL, length=8, seed=3)
    a, b, c = ds[2], ds[2], ds[3]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["joints"], c["joints"])
    bank = CropBank([render_hand_crop(i, SMALL) for i in range(4)])
    banked = SyntheticV2VDataset(SMALL, length=8, seed=3, bank=bank)
    d = banked[2]
    for k in a:
        assert torch.equal(a[k], d[k]), k
    assert torch.equal(banked[6]["grid"].sum(), banked[6]["grid"].sum())  # index 6 cycles to crop 2


def test_bank_save_load(tmp_path: Path) -> None:
    bank = CropBank([render_hand_crop(i, SMALL) for i in range(2)])
    bank.save(tmp_path / "bank.npz")
    back = CropBank.load(tmp_path / "bank.npz")
    assert len(back) == 2
    assert np.array_equal(back[1].depth, bank[1].depth) and np.array_equal(back[1].joints, bank[1].joints)


def test_crop_keeps_every_reading_of_the_cube() -> None:
    cfg = V2VDataConfig(in_grid=48)
    depth, K, joints, ref, _ = render_hand_frame(5, cfg)
    full = voxelize_depth(depth, K[0, 0], K[1, 1], K[0, 2], K[1, 2], ref, cfg.cube_mm, cfg.in_grid)
    s = make_sample(render_hand_crop(5, cfg), cfg, None)
    assert full.sum() > 100
    assert np.array_equal(s["grid"][0], full.astype(np.float32))


def test_targets_and_grid_agree_with_the_joints() -> None:
    cfg = V2VDataConfig(in_grid=48)
    crop = render_hand_crop(7, cfg)
    s = make_sample(crop, cfg, np.random.default_rng(1))
    joints, ref = s["joints"].astype(np.float64), s["ref"]
    # the heatmaps' maxima give the joints back (joints at least a voxel inside the cube)
    g = world_to_grid(joints, ref, cfg.cube_mm, cfg.out_grid)
    inside = np.all((g >= 1) & (g <= cfg.out_grid - 2), axis=1)
    assert inside.sum() >= 15
    est, conf = subvoxel_argmax(s["heatmaps"], ref, cfg.cube_mm, 1, REFINE_GAUSS)
    assert np.abs(est - joints)[inside].max() < 1e-3
    assert np.all(conf[inside] > 0.87)  # the max voxel is within half a voxel of the peak per axis
    # the occupancy follows the augmented joints: the hand's surface lies near every joint
    occ = grid_to_world(np.argwhere(s["grid"][0] > 0).astype(np.float64), ref, cfg.cube_mm, cfg.in_grid)
    near = np.array([np.linalg.norm(occ - j, axis=1).min() for j in joints[inside]])
    assert np.median(near) < 15.0


def test_estimator_end_to_end(light: V2VPoseNet) -> None:
    cfg = V2VDataConfig(in_grid=48)
    depth, K, joints, _, _ = render_hand_frame(11, cfg)
    ref, count = hand_reference_point(depth, K, joints.mean(0))
    assert count > 100 and np.all(np.isfinite(ref))
    est = V2VEstimator(light)
    j, c = est.estimate(depth, K, ref)
    assert j.shape == (21, 3) and c.shape == (21,)
    assert np.all(np.isfinite(j))
    assert np.all(np.abs(j - ref) <= cfg.cube_mm / 2)
    # batch: a good sample, a NaN reference point, an empty crop (cube behind the hand)
    far = ref + np.array([0.0, 0.0, 2000.0])
    out = est.estimate_batch([depth, depth, depth], K, np.stack([ref, np.full(3, np.nan), far]))
    assert out.valid.tolist() == [True, False, False]
    np.testing.assert_allclose(out.joints[0], j)
    assert np.isnan(out.joints[1:]).all() and np.all(out.confidence[1:] == 0)


def test_reference_point_and_refiner_nan_safety() -> None:
    depth = np.zeros((48, 64), np.uint16)
    K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    ref, n = hand_reference_point(depth, K, np.array([0.0, 0.0, 500.0]))
    assert n == 0 and np.isnan(ref).all()
    assert np.isnan(hand_reference_point(depth, K, np.full(3, np.nan))[0]).all()
    refiner = RefPointRefiner(create_model("refpoint"))
    out = refiner.refine_batch([depth, depth], K, np.array([[0.0, 0.0, 500.0], [np.nan] * 3]))
    np.testing.assert_allclose(out[0], [0.0, 0.0, 500.0])
    assert np.isnan(out[1]).all()


def test_eval_set_loader_and_reference_points() -> None:
    es = load_eval_set(EVAL_SET, limit=4)
    assert len(es) == 4 and es.depth.shape[1:] == (480, 640) and es.joints.shape == (4, 21, 3)
    refs = eval_reference_points(es)
    assert np.all(np.isfinite(refs))
    assert np.all(np.linalg.norm(refs - es.joints.mean(1), axis=1) < 80.0)
    with pytest.raises(FileNotFoundError):
        load_eval_set(ROOT / "no_such.npz")


def test_training_script_runs_saves_and_resumes(tmp_path: Path) -> None:
    from scripts import train_v2v
    common = ["--model", "v2v_light", "--batch-size", "2", "--bank", "2", "--val-limit", "2", "--device", "cpu",
              "--log-every", "1", "--val-every", "2", "--ckpt-every", "1", "--out", str(tmp_path)]
    assert train_v2v.main(common + ["--steps", "2"]) == 0
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["step"] == 2
    assert train_v2v.main(common + ["--steps", "3", "--resume"]) == 0
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3
    card = json.loads((tmp_path / "v2v_light.json").read_text())
    assert card["steps"] == 3 and np.isfinite(card["val"]["val_mean_mm"])
    assert load_weights(tmp_path / "v2v_light.pt").meta["steps"] == 3
    # the evaluation script on the weights just written
    from scripts import eval_v2v
    assert eval_v2v.main([str(tmp_path / "v2v_light.pt"), "--limit", "2", "--device", "cpu", "--json"]) == 0
    res = json.loads((tmp_path / "eval_v2v_light.json").read_text())
    assert res["frames"] == 2 and len(res["per_joint_mm"]) == 21 and res["pck_frames"][0] == 0.0
    assert (tmp_path / "eval_v2v_light_pck.png").stat().st_size > 1000


def test_pck_curves() -> None:
    from scripts.eval_v2v import pck_curves
    err = np.array([[1.0, 5.0], [2.0, np.nan]])
    frames, joints = pck_curves(err, np.array([0.0, 2.0, 5.0]))
    np.testing.assert_allclose(frames, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(joints, [0.0, 0.5, 0.75])
