import numpy as np
import pytest

from tracker.core.joints import FINGERS, NUM_JOINTS
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics
from tracker.stages.identity import IdentityConfig, IdentityTracker, best_assignment

CAM = Camera("test", Intrinsics(500, 500, 320, 240, 640, 480))


def template_hand(scale: float = 1.0) -> np.ndarray:
    """A right hand's 2D joints (px) around the origin: wrist at the bottom, fingers up, thumb right."""
    j = np.zeros((NUM_JOINTS, 2))
    angles = {"thumb": -50.0, "index": -12.0, "middle": 0.0, "ring": 12.0, "pinky": 24.0}
    for name, chain in FINGERS.items():
        a = np.radians(angles[name])
        d = np.array([-np.sin(a), -np.cos(a)])
        base = np.array([-np.sin(a) * 40, -np.cos(a) * 40]) if name != "thumb" else np.array([15.0, -15.0])
        for k, idx in enumerate(chain):
            j[idx] = base + d * 18 * k
    return j * scale


def frameset(t: float, i: int) -> FrameSet:
    return FrameSet.single(Frame(np.zeros((480, 640, 3), np.uint8), t, i, CAM))


def hand(joints: np.ndarray, t: float, side: str, score: float = 0.95) -> HandPose:
    return HandPose(joints, np.ones(NUM_JOINTS), t, score=score, handedness=side, handedness_score=score)  # type: ignore[arg-type]


@pytest.mark.parametrize("mirror_b", [True, False], ids=["left+right", "two-same-shape"])
def test_two_crossing_hands_keep_their_ids(mirror_b: bool):
    rng = np.random.default_rng(3)
    tracker = IdentityTracker()
    right = template_hand()
    left = right * np.array([-1, 1]) if mirror_b else right.copy()
    ids_a, ids_b = [], []
    n = 60
    for i in range(n):
        t = i / 30
        xa = 150 + 340 * i / (n - 1)  # A moves right, B moves left; they meet at frame ~30
        xb = 490 - 340 * i / (n - 1)
        ja = right + [xa, 300] + rng.normal(0, 1.5, right.shape)
        jb = left + [xb, 330 + 8 * np.sin(i / 5)]  # passes partly over A + rng.normal(0, 1.5, left.shape)
        # MediaPipe returns hands in arbitrary order and mislabels sides around the crossing.
        side_b = "left" if mirror_b else "right"
        if 25 <= i <= 35:
            side_b = "right"
        dets = [hand(ja, t, "right"), hand(jb, t, side_b)]
        if i % 2:
            dets.reverse()
        out = tracker(frameset(t, i), dets)
        assert len(out) == 2
        # which output is A and which B: the tracker passes joints through unchanged
        for h in out:
            if np.abs(h.joints_2d - ja).mean() < 1e-9:
                ids_a.append(h.track_id)
            elif np.abs(h.joints_2d - jb).mean() < 1e-9:
                ids_b.append(h.track_id)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1, (ids_a, ids_b)
    assert ids_a[0] != ids_b[0]


def test_handedness_is_stabilised_over_a_track():
    tracker = IdentityTracker()
    j = template_hand() + [320, 240]
    sides = []
    for i in range(30):
        side = "left" if i in (10, 11, 20) else "right"
        out = tracker(frameset(i / 30, i), [hand(j, i / 30, side, 0.8)])
        sides.append(out[0].handedness)
    assert sides[5:] == ["right"] * 25


def test_new_ids_for_new_hands_and_lost_tracks_expire():
    tracker = IdentityTracker(IdentityConfig(max_age_s=0.2))
    j = template_hand() + [320, 240]
    a = tracker(frameset(0.0, 0), [hand(j, 0.0, "right")])[0].track_id
    assert tracker(frameset(0.1, 1), [hand(j, 0.1, "right")])[0].track_id == a
    assert tracker(frameset(0.2, 2), []) == []
    b = tracker(frameset(0.6, 3), [hand(j, 0.6, "right")])[0].track_id  # gone for 0.5 s > max_age
    assert b != a
    far = tracker(frameset(0.63, 4), [hand(j, 0.63, "right"), hand(j + [250, 0], 0.63, "left")])
    assert {h.track_id for h in far} == {b, b + 1}


def test_duplicate_detections_are_merged():
    tracker = IdentityTracker()
    j = template_hand() + [320, 240]
    out = tracker(frameset(0, 0), [hand(j, 0, "right", 0.9), hand(j + 1.0, 0, "right", 0.7)])
    assert len(out) == 1 and out[0].score == pytest.approx(0.9)


def test_assignment_is_globally_optimal_and_gated():
    cost = np.array([[0.1, 0.2], [0.15, 1.0]])
    # greedy would take (0,0) then (1,1) = 1.1; optimal is (0,1)+(1,0) = 0.35
    assert sorted(best_assignment(cost, 1.5)) == [(0, 1), (1, 0)]
    assert best_assignment(np.array([[2.0]]), 1.5) == []
    assert best_assignment(np.zeros((0, 2)), 1.5) == []
