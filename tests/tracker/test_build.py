"""build_pipeline: the stage lists for one and several views, models loaded at build time."""

import dataclasses

import numpy as np
import pytest

from tracker.build import build_pipeline
from tracker.config import TrackerConfig, override
from tracker.core.errors import ConfigError, ModelError
from tracker.core.structures import FrameSet, HandPose


def _names(config, views=1):
    pipeline = build_pipeline(config, views)
    try:
        return pipeline.names
    finally:
        pipeline.close()


def test_single_view_stages_in_order():
    assert _names(TrackerConfig()) == ["landmarks", "lift", "depth", "v2v", "identity", "prior", "smoothing"]
    rgb_only = override(TrackerConfig(), **{"depth.estimator": "mediapipe", "smoothing": None})
    assert _names(rgb_only) == ["landmarks", "lift", "identity", "prior"]
    bare = override(TrackerConfig(), **{"depth.estimator": "mediapipe", "smoothing": None, "prior.enabled": False})
    assert _names(bare) == ["landmarks", "lift", "identity"]
    crossmodal = override(TrackerConfig(), **{"depth.estimator": "crossmodal"})
    assert _names(crossmodal) == ["landmarks", "crossmodal", "lift", "depth", "v2v", "identity", "prior", "smoothing"]


def test_default_prior_leaves_depth_frames_alone(synthetic_frameset):
    """The default prior (``enabled`` None) runs on RGB frames only, unless the estimator ignores depth;
    ``--prior`` (True) runs on every hand."""
    fs = synthetic_frameset(42, t=0, num_frames=2, layout="single")
    rgb = fs.without_depth()
    joints = np.asarray(fs.frames[0].ground_truth.joints_3d[0]) * [1.0, 1.1, 0.9]  # implausible proportions
    hand = HandPose(joints_2d=fs.frames[0].ground_truth.joints_2d[0], confidence=np.ones(21), timestamp=0.0,
                    joints_3d=joints, handedness="right", handedness_score=0.9)  # fmt: skip

    def prior_of(config: TrackerConfig) -> object:
        return dict(build_pipeline(config).stages)["prior"]

    auto = prior_of(TrackerConfig())
    assert auto(fs, [hand])[0] is hand  # a depth frame: left alone
    assert not np.allclose(auto(rgb, [hand])[0].joints_3d, joints)  # an RGB frame: pulled
    mp = prior_of(override(TrackerConfig(), **{"depth.estimator": "mediapipe"}))
    assert not np.allclose(mp(fs, [hand])[0].joints_3d, joints)  # depth unused by the estimator
    forced = prior_of(override(TrackerConfig(), **{"prior.enabled": True}))
    assert not np.allclose(forced(fs, [hand])[0].joints_3d, joints)


def test_post_stages_go_before_smoothing():
    config = override(TrackerConfig(), **{"prior.enabled": True, "refiner.enabled": True})
    assert _names(config) == ["landmarks", "lift", "depth", "v2v", "identity", "prior", "refiner", "smoothing"]


def test_rig_stages_in_order():
    config = override(TrackerConfig(), **{"fusion.single_view_lift": True, "prior.enabled": True})
    assert _names(config, 3) == ["landmarks", "lift", "fusion", "identity", "prior", "smoothing", "world"]
    assert _names(TrackerConfig(), 2) == ["landmarks", "fusion", "identity", "smoothing", "world"]


def test_bad_models_fail_at_build_time(tmp_path):
    bad = tmp_path / "refiner.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="refiner.pt"):
        build_pipeline(override(TrackerConfig(), **{"refiner.enabled": True, "refiner.path": bad}))
    with pytest.raises(ModelError, match="nope.npz"):
        build_pipeline(override(TrackerConfig(), **{"prior.enabled": True, "prior.path": tmp_path / "nope.npz"}))


def test_views_must_be_positive():
    with pytest.raises(ConfigError):
        build_pipeline(TrackerConfig(), 0)


def _later(frameset, seconds):
    frame = dataclasses.replace(frameset.frames[0], timestamp=frameset.timestamp + seconds)
    return FrameSet.single(frame)


def test_reset_forgets_identities():
    """A hand seen again 10 s later is a new identity (id 1: tracks expire after 0.5 s); after
    reset() the numbering starts again (id 0)."""
    from tracker.io.sources import SourceOptions, open_source, parse_source

    device = open_source(parse_source("demo"), SourceOptions(realtime=False))
    try:
        frames = [device.read() for _ in range(3)]
    finally:
        device.close()
    late = _later(frames[2], 10.0)
    config = override(TrackerConfig(), **{"depth.estimator": "mediapipe"})
    runs = []
    for reset in (False, True):
        pipeline = build_pipeline(config)
        try:
            ids = [[h.track_id for h in pipeline(fs).hands] for fs in frames[:2]]
            if reset:
                pipeline.reset()
            ids.append([h.track_id for h in pipeline(late).hands])
        finally:
            pipeline.close()
        runs.append(ids)
    assert runs[0] == [[0], [0], [1]]
    assert runs[1] == [[0], [0], [0]]
