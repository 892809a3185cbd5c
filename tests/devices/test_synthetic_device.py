"""SyntheticDevice: the data engine streamed through the Device protocol, and through the loop."""

from __future__ import annotations

import numpy as np
import pytest

from devices.synthetic import SyntheticDevice
from models.synthetic import SceneConfig
from tracker.runtime.loop import StreamingLoop
from tracker.runtime.pipeline import Pipeline


def test_streams_every_frame_then_ends() -> None:
    dev = SyntheticDevice(seed=3, config=SceneConfig(num_frames=4))
    assert not dev.live
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()
    with dev:
        sets = []
        while (fs := dev.read()) is not None:
            sets.append(fs)
    assert [fs.index for fs in sets] == [0, 1, 2, 3]
    f = sets[0].frames[0]
    assert f.image.shape == (480, 640, 3) and f.depth is not None and f.ground_truth is not None
    assert f.ground_truth.joints_3d.shape == (1, 21, 3)


def test_rig_frames_and_looping() -> None:
    cfg = SceneConfig(num_frames=2, layout="ring", num_views=3)
    with SyntheticDevice(seed=1, config=cfg, loop=True, with_depth=False) as dev:
        sets = [dev.read() for _ in range(5)]
    assert all(fs is not None and len(fs.frames) == 3 for fs in sets)
    assert [fs.index for fs in sets] == [0, 1, 2, 3, 4]
    assert np.diff([fs.timestamp for fs in sets]).min() > 0
    assert sets[0].frames[0].depth is None
    # the second pass repeats the first, frame for frame
    assert np.array_equal(sets[0].frames[1].image, sets[2].frames[1].image)


def test_same_seed_same_frames() -> None:
    cfg = SceneConfig(num_frames=2)
    with SyntheticDevice(seed=9, config=cfg) as a, SyntheticDevice(seed=9, config=cfg) as b:
        fa, fb = a.read(), b.read()
    assert np.array_equal(fa.frames[0].image, fb.frames[0].image)
    assert np.array_equal(fa.frames[0].depth, fb.frames[0].depth)


def test_runs_through_the_streaming_loop() -> None:
    seen: list[int] = []
    with SyntheticDevice(seed=2, config=SceneConfig(num_frames=5)) as dev:
        StreamingLoop(dev, Pipeline([]), sinks=[lambda r: seen.append(r.frameset.index)]).run()
    assert seen == [0, 1, 2, 3, 4]


def test_one_view_of_a_rig_equals_that_view_of_the_whole_rig() -> None:
    cfg = SceneConfig(num_frames=2, layout="desk", num_views=3, width=64, height=48)
    with SyntheticDevice(seed=4, config=cfg, view=2) as one, SyntheticDevice(seed=4, config=cfg) as whole:
        assert one.name == "synthetic:desk:4@2"
        for _ in range(2):
            a, b = one.read(), whole.read()
            assert len(a.frames) == 1 and (a.timestamp, a.index) == (b.timestamp, b.index)
            fa, fb = a.frames[0], b.frames[2]
            assert fa.camera.name == fb.camera.name and fa.camera.intrinsics == fb.camera.intrinsics
            assert np.array_equal(fa.camera.extrinsics.R, fb.camera.extrinsics.R)
            assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.depth, fb.depth)
            np.testing.assert_array_equal(fa.ground_truth.joints_2d, fb.ground_truth.joints_2d)
            assert fa.ground_truth.actions == fb.ground_truth.actions
        assert one.read() is None
    with pytest.raises(ValueError, match="view 3 outside the scene's 3 camera"):
        SyntheticDevice(seed=4, config=cfg, view=3)
