"""TemporalSmoother: one One Euro filter per track, 2D and 3D, restarted when a track is lost."""

from tracker.post.one_euro import OneEuroParams
from tracker.post.smoothing import TemporalSmoother


def test_each_track_is_filtered_separately_and_restarts_when_lost(blank_frameset, make_hand):
    fs = blank_frameset()

    def pose(track, t, value):
        return make_hand(value, timestamp=t, joints_3d=value, track_id=track)

    smoother = TemporalSmoother(OneEuroParams(min_cutoff=1.0, beta=0.0))
    smoother(fs, [pose(0, 0.0, 0.0), pose(1, 0.0, 100.0)])
    out = smoother(fs, [pose(0, 1 / 30, 10.0), pose(1, 1 / 30, 100.0)])
    assert 0.0 < out[0].joints_2d[0, 0] < 10.0  # lags behind the step
    assert out[1].joints_2d[0, 0] == 100.0  # unaffected by the other hand
    smoother(fs, [pose(1, 2 / 30, 100.0)])  # track 0 lost for a frame
    back = smoother(fs, [pose(0, 3 / 30, 50.0), pose(1, 3 / 30, 100.0)])
    assert back[0].joints_2d[0, 0] == 50.0  # fresh filter, no slide from the old position


def test_missing_3d_resets_only_the_3d_filter(blank_frameset, make_hand):
    fs = blank_frameset()
    smoother = TemporalSmoother(OneEuroParams(min_cutoff=1.0, beta=0.0))
    smoother(fs, [make_hand(0.0, joints_3d=0.0, track_id=0)])
    no3d = smoother(fs, [make_hand(10.0, timestamp=1 / 30, track_id=0)])
    assert no3d[0].joints_3d is None and no3d[0].joints_2d[0, 0] < 10.0
    again = smoother(fs, [make_hand(20.0, timestamp=2 / 30, joints_3d=20.0, track_id=0)])
    assert again[0].joints_3d[0, 0] == 20.0
