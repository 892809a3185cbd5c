import numpy as np

from tracker.core.joints import NUM_JOINTS
from tracker.post.one_euro import OneEuroParams
from tracker.post.smoothing import TemporalSmoother
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics

FS = FrameSet.single(Frame(np.zeros((48, 64, 3), np.uint8), 0.0, 0, Camera("c", Intrinsics(50, 50, 32, 24, 64, 48))))


def pose(track: int, t: float, value: float, with_3d: bool = True) -> HandPose:
    return HandPose(
        np.full((NUM_JOINTS, 2), value), np.ones(NUM_JOINTS), t, track_id=track,
        joints_3d=np.full((NUM_JOINTS, 3), value) if with_3d else None,
    )  # fmt: skip


def test_each_track_is_filtered_separately_and_restarts_when_lost():
    smoother = TemporalSmoother(OneEuroParams(min_cutoff=1.0, beta=0.0))
    smoother(FS, [pose(0, 0.0, 0.0), pose(1, 0.0, 100.0)])
    out = smoother(FS, [pose(0, 1 / 30, 10.0), pose(1, 1 / 30, 100.0)])
    assert 0.0 < out[0].joints_2d[0, 0] < 10.0  # lags behind the step
    assert out[1].joints_2d[0, 0] == 100.0  # unaffected by the other hand
    smoother(FS, [pose(1, 2 / 30, 100.0)])  # track 0 lost for a frame
    back = smoother(FS, [pose(0, 3 / 30, 50.0), pose(1, 3 / 30, 100.0)])
    assert back[0].joints_2d[0, 0] == 50.0  # fresh filter, no slide from the old position


def test_missing_3d_resets_only_the_3d_filter():
    smoother = TemporalSmoother(OneEuroParams(min_cutoff=1.0, beta=0.0))
    smoother(FS, [pose(0, 0.0, 0.0)])
    no3d = smoother(FS, [pose(0, 1 / 30, 10.0, with_3d=False)])
    assert no3d[0].joints_3d is None and no3d[0].joints_2d[0, 0] < 10.0
    again = smoother(FS, [pose(0, 2 / 30, 20.0)])
    assert again[0].joints_3d[0, 0] == 20.0
