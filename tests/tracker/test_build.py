"""build_pipeline: the stage lists for one and several views, models loaded at build time."""

import dataclasses

import pytest

from tracker.build import build_pipeline
from tracker.config import TrackerConfig, override
from tracker.core.errors import ConfigError, ModelError
from tracker.core.structures import FrameSet


def _names(config, views=1):
    pipeline = build_pipeline(config, views)
    try:
        return pipeline.names
    finally:
        pipeline.close()


def test_single_view_stages_in_order():
    assert _names(TrackerConfig()) == ["landmarks", "lift", "depth", "v2v", "identity", "smoothing"]
    rgb_only = override(TrackerConfig(), **{"depth.estimator": "mediapipe", "smoothing": None})
    assert _names(rgb_only) == ["landmarks", "lift", "identity"]


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
