"""--temporal-refine: the shipped causal refiner on a noisy generated hand, per track, and its CLI wiring."""

import numpy as np
import pytest

from models.synthetic import SceneConfig, sample_scene
from tracker.cli import build_parser, config_from_args
from tracker.core.errors import ModelError
from tracker.post.temporal_refine import temporal_refine_stage


@pytest.fixture(scope="module")
def stage():
    return temporal_refine_stage()


def _run(stage, blank_frameset, make_hand, joints, track=0):
    out = []
    for i, j in enumerate(joints):
        (hand,) = stage(blank_frameset(i / 30, i), [make_hand(0.0, timestamp=i / 30, joints_3d=j, track_id=track)])
        out.append(hand.joints_3d)
    return np.stack(out)


def test_it_lowers_the_error_of_a_noisy_generated_hand(stage, blank_frameset, make_hand):
    clean = sample_scene(123_456, SceneConfig(num_frames=90)).hands[0].joints
    noisy = clean + np.random.default_rng(0).normal(0, 5.0, clean.shape)
    stage.reset()
    refined = _run(stage, blank_frameset, make_hand, noisy)
    np.testing.assert_array_equal(refined[: stage.min_frames - 1], noisy[: stage.min_frames - 1])  # a new track
    late = slice(40, None)
    err_raw = np.linalg.norm(noisy[late] - clean[late], axis=-1).mean()
    err_ref = np.linalg.norm(refined[late] - clean[late], axis=-1).mean()
    assert err_ref < 0.9 * err_raw, (err_ref, err_raw)
    jitter = lambda x: np.linalg.norm(np.diff(x[late], 2, axis=0), axis=-1).mean()  # noqa: E731
    assert jitter(refined) < 0.6 * jitter(noisy)


def test_tracks_are_separate_and_a_lost_track_restarts(stage, blank_frameset, make_hand):
    a = sample_scene(5, SceneConfig(num_frames=20)).hands[0].joints
    stage.reset()
    for i in range(20):
        stage(blank_frameset(i / 30, i), [make_hand(0.0, timestamp=i / 30, joints_3d=a[i], track_id=1),
                                          make_hand(0.0, timestamp=i / 30, joints_3d=a[i] + 200, track_id=2)])
    assert len(stage._history[(0, 1)]) == 20 and len(stage._history[(0, 2)]) == 20
    stage(blank_frameset(1.0, 30), [make_hand(0.0, timestamp=1.0, joints_3d=a[0], track_id=2)])
    assert (0, 1) not in stage._history


def test_cli_flag_replaces_one_euro_unless_smoothing_is_given():
    cfg = config_from_args(build_parser().parse_args(["--temporal-refine"]))
    assert cfg.temporal_refine.model == "temporal_refiner" and cfg.smoothing is None
    cfg = config_from_args(build_parser().parse_args(["--temporal-refine", "shrec14", "--smoothing", "low"]))
    assert cfg.temporal_refine.model == "shrec14" and cfg.smoothing is not None


def test_a_network_without_a_pose_block_is_refused(tmp_path):
    with pytest.raises(ModelError, match="--temporal-refine"):
        temporal_refine_stage(str(tmp_path / "missing.pt"))
