"""GripStage: pinch / grab from the 3D joints of generated hands, with hysteresis, per track."""

import numpy as np
import pytest

from models.synthetic import SceneConfig, sample_scene
from tracker.core.errors import ConfigError
from tracker.core.joints import TIPS
from tracker.post.grip import GripConfig, GripStage, grip_measures


def _action(action: str, seed: int = 3, frames: int = 60) -> np.ndarray:
    return sample_scene(seed, SceneConfig(num_frames=frames, actions=(action,))).hands[0].joints


def _run(stage, fs, make_hand, joints, track=0):
    return [stage(fs, [make_hand(0.0, timestamp=i / 30, joints_3d=j, track_id=track)])[0].grip
            for i, j in enumerate(joints)]  # fmt: skip


def test_a_generated_pinch_pinches_and_a_wave_does_not(blank_frameset, make_hand):
    fs = blank_frameset()
    pinch = _run(GripStage(), fs, make_hand, _action("pinch"))
    assert any(g.pinch for g in pinch) and not pinch[0].pinch
    assert not any(g.grab for g in pinch)
    wave = _run(GripStage(), fs, make_hand, _action("wave"))
    assert not any(g.pinch or g.grab for g in wave)
    assert all(g.pinch_distance_mm > 50 for g in wave)


def test_open_close_grabs_and_pointing_is_no_grab(blank_frameset, make_hand):
    fs = blank_frameset()
    grabs = _run(GripStage(), fs, make_hand, _action("open_close"))
    assert any(g.grab for g in grabs) and not all(g.grab for g in grabs)
    assert max(g.grab_strength for g in grabs) > 0.9
    point = _run(GripStage(), fs, make_hand, _action("point"))
    assert not any(g.grab for g in point)


def test_hysteresis_holds_a_pinch_between_the_thresholds(blank_frameset, make_hand):
    """A distance hovering between pinch_on and pinch_off does not flicker: the state only changes
    when a threshold is crossed."""
    base = _action("wave")[0]
    _, rel, _ = grip_measures(base)
    size = np.linalg.norm(base[TIPS[0]] - base[TIPS[1]]) / rel
    direction = (base[TIPS[1]] - base[TIPS[0]]) / np.linalg.norm(base[TIPS[1]] - base[TIPS[0]])

    def with_gap(gap_rel):
        j = base.copy()
        j[TIPS[0]] = j[TIPS[1]] - direction * gap_rel * size
        return j

    c = GripConfig()
    gaps = [0.6, 0.36, 0.2, 0.36, 0.42, 0.36, 0.5, 0.36]  # off, between, on, between..., off, between
    states = [g.pinch for g in _run(GripStage(c), blank_frameset(), make_hand, [with_gap(x) for x in gaps])]
    assert states == [False, False, True, True, True, True, False, False]


def test_missing_joints_and_lost_tracks(blank_frameset, make_hand):
    fs = blank_frameset()
    stage = GripStage()
    j = _action("pinch")
    closed = int(np.argmin([grip_measures(x)[1] for x in j]))
    assert stage(fs, [make_hand(0.0, joints_3d=j[closed], track_id=1)])[0].grip.pinch
    gone = j[closed].copy()
    gone[TIPS[0]] = np.nan
    assert stage(fs, [make_hand(0.0, timestamp=0.1, joints_3d=gone, track_id=1)])[0].grip is None
    assert stage(fs, [make_hand(0.0, timestamp=0.2, track_id=1)])[0].grip is None  # no 3D at all
    stage(fs, [])  # the track ends: its state goes
    assert not stage._state


@pytest.mark.parametrize("kwargs", [dict(pinch_on=0.5, pinch_off=0.4), dict(grab_on=0.4, grab_off=0.6),
                                    dict(open_ratio=1.0, fist_ratio=1.5)])  # fmt: skip
def test_bad_thresholds_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        GripConfig(**kwargs)
