"""Training data of the learned rig fusion: patches, view subsets, per-view detections, a generated
sequence (real MediaPipe on rendered views) and the padded batches of :class:`RigDataset`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.hamuco_data import (
    MAX_VIEWS,
    PATCH_SIZE,
    GenerationConfig,
    RigDataset,
    detections_from_hands,
    generate_sequence,
    joint_patches,
    view_subset,
)
from tracker.core.joints import NUM_JOINTS


def test_joint_patches_size_follows_the_hand_extent() -> None:
    """A patch covers a quarter of the hand's extent, clipped to 12..96 px: around a 400 px wide hand a
    10x20 px block fills 200 / 96^2 = 2.2 % of the 16x16 patch (+-1 %)."""
    image = np.zeros((600, 800, 3), np.uint8)
    image[:, ::2] = 255  # 1 px vertical stripes: a patch's mean is ~127.5 whatever its size
    uv = np.stack([np.linspace(200, 600, NUM_JOINTS), np.full(NUM_JOINTS, 300.0)], axis=1)
    patches = joint_patches(image, uv)
    assert patches.shape == (NUM_JOINTS, PATCH_SIZE, PATCH_SIZE, 3) and patches.dtype == np.uint8
    assert abs(patches.mean() - 127.5) < 2.0  # area resampling averages the stripes
    flat = np.zeros_like(image)
    flat[290:310, 395:405] = 255  # a 10x20 px block at (400, 300), the middle joint
    bright = joint_patches(flat, uv)[NUM_JOINTS // 2].mean() / 255.0
    assert bright == pytest.approx(200 / 96**2, abs=0.01)
    assert joint_patches(flat, uv, size=8).shape == (NUM_JOINTS, 8, 8, 3)
    assert not joint_patches(flat, uv[:20]).any()  # not (21, 2): zeros, no error


@pytest.mark.parametrize("num_views", [2, 3, 5, 8])
def test_view_subset_spreads_the_views_evenly(num_views: int) -> None:
    """k of n views are k distinct indices about n/k apart (around the ring), from view 0 or a random start."""
    rng = np.random.default_rng(num_views)
    for k in range(1, num_views + 1):
        for idx in (view_subset(num_views, k), view_subset(num_views, k, rng)):
            assert len(idx) == len(set(idx.tolist())) == k and ((0 <= idx) & (idx < num_views)).all()
            gaps = np.diff(np.sort(np.r_[idx, idx.min() + num_views]))
            assert gaps.max() - gaps.min() <= 1
        assert view_subset(num_views, k)[0] == 0


def test_detections_keep_the_best_hand_of_each_view(make_hand) -> None:
    hands = [
        make_hand(10.0, confidence=0.5, score=0.6, view=0, handedness="left", handedness_score=0.8),
        make_hand(20.0, confidence=0.9, score=0.9, view=0, handedness="right", handedness_score=0.7),
        make_hand(30.0, score=0.4, view=2, handedness="unknown", joints_local=np.ones((NUM_JOINTS, 3))),
        make_hand(40.0, view=5),  # outside a 3-view rig: dropped
    ]
    d = detections_from_hands(hands, 3)
    assert d["detected"].tolist() == [True, False, True]
    assert d["uv"][0, 0, 0] == 20.0 and np.isnan(d["uv"][1]).all() and d["uv"][2, 0, 0] == 30.0
    np.testing.assert_allclose(d["score"], [0.9, 0.0, 0.4])
    np.testing.assert_allclose(d["left_prob"], [0.3, 0.5, 0.5])  # right at 0.7 -> left 0.3; unknown 0.5
    assert (d["conf"][0] == np.float32(0.9)).all() and (d["conf"][1] == 0).all()
    assert (d["local"][2] == 1.0).all() and (d["local"][0] == 0.0).all()
    assert {k: v.dtype for k, v in d.items()}["uv"] == np.float32


@pytest.fixture(scope="module")
def generated() -> list[dict[str, np.ndarray]]:
    """Desk rig, seed 3 (a left hand), 2 frames x 2 views, clean and occluded, through real MediaPipe."""
    from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands

    return generate_sequence(3, "desk", lambda v: MediaPipeHands(MediaPipeConfig(max_hands=1), view=v),
                             GenerationConfig(num_frames=2, num_views=2, occluder_probability=1.0),
                             occlusion_variants=(False, True))  # fmt: skip


def test_generated_sequence_holds_a_real_detectors_output(generated) -> None:
    """Measured (clean views): all 4 detections, mean 2D error 4.3-11.0 px per view-frame, left
    probability 0.89-1.00 for the left hand. Bounds: 4 detections, < 20 px, > 0.7."""
    clean, occluded = generated
    shapes = {"uv": (2, 2, NUM_JOINTS, 2), "patches": (2, 2, NUM_JOINTS, PATCH_SIZE, PATCH_SIZE, 3),
              "covered": (2, 2, NUM_JOINTS), "K": (2, 3, 3), "joints_world": (2, NUM_JOINTS, 3), "pose": (2, 26)}
    for seq in generated:
        assert {k: seq[k].shape for k in shapes} == shapes
        assert bool(seq["left"]) and str(seq["layout"]) == "desk" and int(seq["seed"]) == 3
    assert clean["detected"].all() and not clean["occluded"].any() and not clean["covered"].any()
    err = np.linalg.norm(clean["uv"] - clean["joints_2d"], axis=-1).mean(-1)
    assert err.max() < 20.0, err
    assert clean["left_prob"].min() > 0.7, clean["left_prob"]
    assert clean["patches"].reshape(4, -1).max(1).min() > 0  # every detection has image patches
    # occluder_probability 1: every view occluded, some joints covered; no detection -> NaN and zero patches
    assert occluded["occluded"].all() and occluded["covered"].sum() > 0
    missing = ~occluded["detected"]
    assert np.isnan(occluded["uv"][missing]).all() and not occluded["patches"][missing].any()
    np.testing.assert_array_equal(occluded["joints_2d"], clean["joints_2d"])  # the same rendered frames


def test_rig_dataset_from_generated_files(generated, tmp_path: Path) -> None:
    """A folder of .npz sequences -> padded batches of 8 view slots; frames without detections are left out."""
    clean, occluded = generated
    np.savez(tmp_path / "desk_3_clean.npz", **clean)
    ds = RigDataset.from_folder(tmp_path)
    assert len(ds) == 2
    batch = ds.sample(np.random.default_rng(0), 3, views=(2, 2))
    assert batch.uv.shape == (3, MAX_VIEWS, NUM_JOINTS, 2) and batch.view_mask.shape == (3, MAX_VIEWS)
    assert batch.view_mask[:, :2].all() and not batch.view_mask[:, 2:].any()
    assert batch.patches is not None and batch.patches.shape == (3, MAX_VIEWS, NUM_JOINTS, PATCH_SIZE, PATCH_SIZE, 3)
    assert batch.left.all() and np.isfinite(batch.joints_world.numpy()).all()
    assert set(batch.inputs()) == {"uv", "conf", "local", "left_prob", "view_mask", "K", "R", "t", "patches"}
    if not occluded["detected"].any():
        with pytest.raises(ValueError, match="no frame"):
            RigDataset([occluded])
    with pytest.raises(FileNotFoundError, match="train_hamuco"):
        RigDataset.from_folder(tmp_path / "empty")
