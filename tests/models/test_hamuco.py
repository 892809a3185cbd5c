"""Tests of the HaMuCo-style multi-view fusion: network, geometry, losses, checkpoints, stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.hamuco import (
    ViewSharedBranch,
    camera_to_world,
    create_model,
    fuse_world,
    list_models,
    load_weights,
    save_weights,
    self_supervised_loss,
    solve_translation,
    supervised_loss,
    world_to_camera,
)
from models.hamuco_data import RigDataset, apply_occluder, sample_occluder, view_subset
from models.synthetic import SceneConfig, sample_scene
from tracker.core.errors import ModelError
from tracker.core.joints import NUM_JOINTS

torch.set_num_threads(1)


def _rig_sequence(seed: int, views: int, frames: int = 4, noise_px: float = 2.0) -> dict[str, np.ndarray]:
    """A rig sequence in the generated-data layout with detector-like detections made from the
    engine's exact projections plus pixel noise (no renderer, no MediaPipe: fast)."""
    scene = sample_scene(seed, SceneConfig(num_frames=frames, layout="ring", num_views=views))
    rng = np.random.default_rng(seed)
    jw = scene.hands[0].joints.astype(np.float64)  # (T, 21, 3)
    uv = np.stack([[c.intrinsics.project(jw[t] @ c.extrinsics.R.T + c.extrinsics.t) for c in scene.cameras]
                   for t in range(frames)])
    local = np.stack([[(jw[t] - jw[t].mean(0)) @ c.extrinsics.R.T for c in scene.cameras] for t in range(frames)])
    return {
        "uv": (uv + rng.normal(0, noise_px, uv.shape)).astype(np.float32),
        "conf": rng.uniform(0.6, 1.0, uv.shape[:3]).astype(np.float32),
        "local": local.astype(np.float32),
        "left_prob": np.full((frames, views), 0.9 if scene.hands[0].left else 0.1, np.float32),
        "detected": rng.uniform(size=(frames, views)) < 0.85,
        "K": np.stack([c.intrinsics.K for c in scene.cameras]),
        "R": np.stack([c.extrinsics.R for c in scene.cameras]),
        "t": np.stack([c.extrinsics.t for c in scene.cameras]),
        "joints_world": jw.astype(np.float32),
        "left": np.array(scene.hands[0].left),
    }


@pytest.fixture(scope="module")
def dataset() -> RigDataset:
    return RigDataset([_rig_sequence(11, 8), _rig_sequence(12, 8)])


def test_registry() -> None:
    assert {"hamuco_small", "hamuco_tiny"} <= set(list_models())
    with pytest.raises(KeyError, match="known"):
        create_model("nope")


@pytest.mark.parametrize("views", [2, 3, 5, 8])
def test_shapes_and_finiteness_with_masked_views(dataset: RigDataset, views: int) -> None:
    torch.manual_seed(0)
    model = create_model("hamuco_tiny").eval()
    b = dataset.sample(np.random.default_rng(views), 4, views=(views, views))
    mask = b.view_mask.clone()
    mask[0, 1:] = False  # one frame seen by a single view
    b = type(b)(**(vars(b) | {"view_mask": mask}))
    with torch.inference_mode():
        out = model(**b.inputs())
    assert out.joints_world.shape == (4, NUM_JOINTS, 3)
    assert out.uncertainty_mm.shape == (4, NUM_JOINTS)
    assert out.refined_world.shape == (4, 8, NUM_JOINTS, 3)
    assert torch.isfinite(out.joints_world).all() and torch.isfinite(out.uncertainty_mm).all()
    assert (out.uncertainty_mm > 0).all()
    assert (out.ray_weight[~mask] == 0).all() and (out.point_weight[~mask] == 0).all()


def test_view_shared_branch_is_permutation_invariant() -> None:
    torch.manual_seed(1)
    branch = ViewSharedBranch(16)
    g = torch.randn(3, 6, NUM_JOINTS, 16)
    mask = torch.rand(3, 6) > 0.3
    mask[:, 0] = True
    perm = torch.randperm(6)
    a = branch(g, mask)
    b = branch(g[:, perm], mask[:, perm])
    assert a.shape == (3, NUM_JOINTS, 16)
    torch.testing.assert_close(a, b)
    # a masked view changes nothing, whatever it holds
    g2 = g.clone()
    g2[~mask] = 1e3
    torch.testing.assert_close(branch(g2, mask), a)


def test_model_output_does_not_depend_on_view_order(dataset: RigDataset) -> None:
    torch.manual_seed(2)
    model = create_model("hamuco_tiny").eval()
    b = dataset.sample(np.random.default_rng(3), 3, views=(8, 8))
    perm = torch.tensor([5, 2, 7, 0, 1, 6, 3, 4])
    permuted = {k: (v[:, perm] if v is not None and v.ndim >= 2 and v.shape[1] == 8 else v) for k, v in b.inputs().items()}
    with torch.inference_mode():
        a, p = model(**b.inputs()), model(**permuted)
    torch.testing.assert_close(a.joints_world, p.joints_world, atol=1e-3, rtol=1e-4)


def test_world_fusion_is_exact_for_exact_per_view_predictions() -> None:
    d = _rig_sequence(21, 4, frames=1, noise_px=0.0)
    R, t, K = (torch.as_tensor(d[k], dtype=torch.float64)[None] for k in ("R", "t", "K"))
    gt = torch.as_tensor(d["joints_world"][0], dtype=torch.float64)
    cam = world_to_camera(gt[None, None].expand(1, 4, -1, -1), R, t)  # exact per-view predictions
    torch.testing.assert_close(camera_to_world(cam, R, t)[0, 2], gt)
    centres = -(t[..., None, :] @ R)[..., 0, :]
    dirs = torch.nn.functional.normalize(cam, dim=-1) @ R
    ones = torch.ones(1, 4, NUM_JOINTS, dtype=torch.float64)
    for ray_w, point_w in ((ones, ones), (ones, 0 * ones), (0 * ones, ones)):
        x, sigma = fuse_world(centres, dirs, ray_w / 25, camera_to_world(cam, R, t), point_w / 400)
        torch.testing.assert_close(x[0], gt, atol=1e-4, rtol=0)
        assert torch.isfinite(sigma).all()
    # a wrong view with zero weight is ignored; more weight means less uncertainty
    bad = camera_to_world(cam, R, t).clone()
    bad[:, 1] += 50.0
    w = ones.clone()
    w[:, 1] = 0
    x, s1 = fuse_world(centres, dirs, 0 * ones, bad, w)
    torch.testing.assert_close(x[0], gt, atol=1e-4, rtol=0)
    _, s2 = fuse_world(centres, dirs, 0 * ones, bad, 4 * w)
    assert (s2 < s1).all()


def test_solve_translation_recovers_the_camera_frame_position() -> None:
    rng = np.random.default_rng(4)
    rel = torch.as_tensor(rng.normal(0, 40, (2, NUM_JOINTS, 3)))
    T = torch.tensor([[30.0, -20.0, 450.0], [-60.0, 10.0, 700.0]], dtype=torch.float64)
    x = rel + T[:, None]
    rays = x[..., :2] / x[..., 2:]
    torch.testing.assert_close(solve_translation(rel, rays, torch.ones(2, NUM_JOINTS, dtype=torch.float64)), T,
                               atol=1e-2, rtol=0)


@pytest.mark.parametrize("mode", ["supervised", "self_supervised"])
def test_one_training_step_decreases_the_loss(dataset: RigDataset, mode: str) -> None:
    torch.manual_seed(5)
    model = create_model("hamuco_tiny")
    b = dataset.sample(np.random.default_rng(6), 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        out = model(**b.inputs())
        if mode == "supervised":
            return supervised_loss(out, b.joints_world, b.view_mask)[0]
        return self_supervised_loss(out, b.uv, b.conf, b.view_mask, b.K, b.R, b.t)[0]

    before = loss()
    assert torch.isfinite(before.detach())
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())


def test_checkpoint_round_trip_weights_only(tmp_path, dataset: RigDataset) -> None:
    torch.manual_seed(7)
    model = create_model("hamuco_tiny").eval()
    path = tmp_path / "h.pt"
    save_weights(model, path, {"steps": 3}, half=False)
    blob = torch.load(path, weights_only=True)
    assert blob["name"] == "hamuco_tiny" and blob["meta"] == {"steps": 3}
    loaded = load_weights(path)
    b = dataset.sample(np.random.default_rng(8), 2)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(**b.inputs()).joints_world, model(**b.inputs()).joints_world)
    save_weights(model, tmp_path / "h16.pt")  # fp16 by default
    assert all(v.dtype == torch.float16 for v in torch.load(tmp_path / "h16.pt", weights_only=True)["state_dict"].values()
               if v.is_floating_point())
    with pytest.raises(ModelError, match="missing.pt"):
        load_weights(tmp_path / "missing.pt")


def test_view_subset_and_occluder() -> None:
    assert list(view_subset(8, 2)) == [0, 4]
    assert list(view_subset(8, 4)) == [0, 2, 4, 6]
    assert len(set(view_subset(8, 3, np.random.default_rng(0)))) == 3
    img = np.full((120, 160, 3), 100, np.uint8)
    j2d = np.random.default_rng(0).uniform(40, 100, (NUM_JOINTS, 2))
    occ = sample_occluder(np.random.default_rng(1), j2d)
    out, mask = apply_occluder(img, occ)
    assert mask.any() and (out[~mask] == 100).all() and not np.array_equal(out[mask], img[mask])


def test_stage_on_a_synthetic_rig_returns_world_frame_hands() -> None:
    from models import load_pretrained
    from models.hamuco_infer import FusionError
    from tracker.fusion.learned import HaMuCoFusion
    from tracker.core.structures import Frame, FrameSet, HandPose

    scene = sample_scene(31, SceneConfig(num_frames=1, layout="ring", num_views=4))
    gt = scene.hands[0].joints[0]
    rng = np.random.default_rng(0)
    frames, hands = [], []
    for v, cam in enumerate(scene.cameras):
        frames.append(Frame(np.zeros((480, 640, 3), np.uint8), 0.0, 0, cam))
        local = (gt - gt.mean(0)) @ cam.extrinsics.R.T
        uv = cam.intrinsics.project(gt @ cam.extrinsics.R.T + cam.extrinsics.t) + rng.normal(0, 1.5, (NUM_JOINTS, 2))
        hands.append(HandPose(joints_2d=uv, confidence=np.full(NUM_JOINTS, 0.9), timestamp=0.0, joints_local=local,
                              score=0.9, handedness=scene.hands[0].handedness, handedness_score=0.9, view=v))
    fs = FrameSet(tuple(frames), 0.0, 0)
    stage = HaMuCoFusion(scene.cameras, device="cpu")  # the shipped network, loaded now
    out = stage(fs, hands)
    assert len(out) == 1
    h = out[0]
    assert h.view == -1 and h.joints_world.shape == (NUM_JOINTS, 3) and h.uncertainty_mm.shape == (NUM_JOINTS,)
    assert np.linalg.norm(h.joints_world - gt, axis=1).mean() < 20.0
    cam0 = scene.cameras[0].extrinsics
    np.testing.assert_allclose(h.joints_3d, h.joints_world @ cam0.R.T + cam0.t, atol=1e-6)
    assert ((h.confidence > 0) & (h.confidence <= 1)).all()
    assert stage(fs, []) == []
    with pytest.raises(FusionError, match="cameras"):
        HaMuCoFusion(scene.cameras[:3], load_pretrained("hamuco"))(fs, hands)


def test_eval_rig_scores_all_methods(tmp_path) -> None:
    from scripts.eval_rig import evaluate, markdown

    d = _rig_sequence(41, 8, frames=3)
    d["size"] = np.array([640, 480])
    d["detected"][:] = True
    np.savez(tmp_path / "ring_41_clean.npz", **d)
    torch.manual_seed(9)
    res = evaluate([tmp_path / "ring_41_clean.npz"], create_model("hamuco_tiny").eval(), views=(2, 4))
    assert set(res) == {"clean_2v", "clean_4v"}
    row = res["clean_4v"]
    assert row["frames_evaluated"] == 3 and row["coverage"] == 1.0
    # exact projections + 2 px noise: triangulation is within a few mm
    assert row["dlt_mpjpe"] < 10.0 and row["ransac_mpjpe"] < 10.0
    assert np.isfinite(row["fusion_mpjpe"]) and row["fusion_pa_mpjpe"] <= row["fusion_mpjpe"] + 1e-9
    assert "| 4 | no |" in markdown(res)


def test_joint_patches_centre_and_missing_hand() -> None:
    from models.hamuco_data import PATCH_SIZE, joint_patches

    image = np.zeros((120, 160, 3), np.uint8)
    image[40:60, 70:90] = (200, 30, 10)  # a red square around (80, 50)
    uv = np.tile([[80.0, 50.0]], (NUM_JOINTS, 1))
    uv[1:, 0] += np.linspace(-20, 20, NUM_JOINTS - 1)  # hand extent 40 px -> 12 px patches
    patches = joint_patches(image, uv)
    assert patches.shape == (NUM_JOINTS, PATCH_SIZE, PATCH_SIZE, 3) and patches.dtype == np.uint8
    np.testing.assert_array_equal(patches[0], np.broadcast_to(np.array([200, 30, 10], np.uint8), patches[0].shape))
    off = uv.copy()
    off[0] = (-50.0, -50.0)  # off the image: replicated border, no error
    assert joint_patches(image, off)[0].max() == 0
    nan = uv.copy()
    nan[3] = np.nan
    assert not joint_patches(image, nan).any()


def test_image_branch_starts_neutral_and_then_sees_the_patches(dataset: RigDataset) -> None:
    torch.manual_seed(0)
    base = create_model("hamuco_tiny")
    img = create_model("hamuco_tiny", patch_size=16)
    missing, unexpected = img.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("single.patches.") for k in missing)
    b = dataset.sample(np.random.default_rng(3), 4)
    patches = torch.from_numpy(np.random.default_rng(4).integers(0, 255, (4, 8, NUM_JOINTS, 16, 16, 3), np.uint8))
    base.eval()
    img.eval()
    with torch.no_grad():
        ref = base(**b.inputs()).joints_world
        torch.testing.assert_close(img(**{**b.inputs(), "patches": patches}).joints_world, ref)
        torch.testing.assert_close(img(**{**b.inputs(), "patches": None}).joints_world, ref)
        img.single.patches.out.weight.normal_(0.0, 0.5)
        assert not torch.allclose(img(**{**b.inputs(), "patches": patches}).joints_world, ref)
        assert torch.isfinite(img(**{**b.inputs(), "patches": patches}).joints_world).all()


def test_batches_carry_patches_when_the_sequences_have_them() -> None:
    seq = _rig_sequence(21, 4)
    seq["patches"] = np.full((4, 4, NUM_JOINTS, 16, 16, 3), 7, np.uint8)
    ds = RigDataset([seq])
    b = ds.batch([(0, 0, np.array([0, 2]))])
    det = seq["detected"][0, [0, 2]]
    assert b.patches is not None and b.patches.shape == (1, 8, NUM_JOINTS, 16, 16, 3)
    assert (b.patches[0, :2].flatten(1).amax(1) == torch.from_numpy(7 * det.astype(np.uint8))).all()
    assert not b.patches[0, 2:].any()
    assert RigDataset([_rig_sequence(22, 4)]).batch([(0, 0, np.array([0, 1]))]).patches is None
