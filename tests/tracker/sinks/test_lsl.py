"""LslSink against a real pylsl inlet on this machine: the stream is found by name, describes its 130
channels (labels, millimetres), carries each hand in a stable slot (NaN when empty) and the tracker's
timestamps mapped to the LSL clock with the frame spacing kept to 1 µs."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from tracker.core.errors import ConfigError
from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import FrameResult, FrameSet, HandPose
from tracker.sinks.lsl import SLOT_CHANNELS, LslSink, channel_labels


@pytest.fixture
def pylsl():
    """pylsl (the tests that need a real outlet skip without it; the missing-pylsl error is tested anyway)."""
    return pytest.importorskip("pylsl")


def _resolve(pylsl, name: str):
    """The stream named ``name`` (LSL discovery over UDP on this host), or skip when LSL networking is off."""
    found = pylsl.resolve_byprop("name", name, timeout=5.0)
    if not found:
        pytest.skip("LSL discovery found no stream on this host within 5 s (multicast/UDP unavailable here)")
    return found[0]


@pytest.fixture
def hands(make_hand: Callable[..., HandPose]) -> Callable[..., HandPose]:
    """``hands(track_id, side, i)``: a hand whose joint j is at (track_id, j, 500 + i) mm."""

    def make(track_id: int, side: str, i: int, with_3d: bool = True) -> HandPose:
        j3 = np.stack([np.full(NUM_JOINTS, track_id), np.arange(NUM_JOINTS), np.full(NUM_JOINTS, 500.0 + i)], 1)
        return make_hand(0.0, 1.0, 0.0, j3 if with_3d else None, track_id=track_id, handedness=side)

    return make


def test_inlet_receives_slots_labels_and_tracker_timestamps(pylsl, blank_frameset: Callable[..., FrameSet],
                                                            hands) -> None:
    """5 frames: [7 right], [7 right, 9 left], [9 left] (slot 0 freed), [9, 12 unknown without 3D]
    (12 takes slot 0), [] -> 5 samples of 130 channels with those values, NaN in empty slots, and
    timestamps 1/30 s apart exactly as the frames' (to 1 µs), the first at its capture time (within 0.5 s)."""
    name = f"handtrack-test-{uuid.uuid4().hex[:8]}"
    sink = LslSink(name=name, max_hands=2)
    try:
        inlet = pylsl.StreamInlet(_resolve(pylsl, name), max_buflen=10)
        info = inlet.info(timeout=5.0)
        assert (info.type(), info.channel_count(), info.nominal_srate()) == ("Mocap", 2 * SLOT_CHANNELS, 0.0)
        ch = info.desc().child("channels").child("channel")
        labels, units = [], []
        while not ch.empty():
            labels.append(ch.child_value("label"))
            units.append(ch.child_value("unit"))
            ch = ch.next_sibling()
        assert labels == channel_labels(2)
        assert labels[:4] == ["hand0_wrist_x", "hand0_wrist_y", "hand0_wrist_z", "hand0_thumb_cmc_x"]
        assert labels[63:67] == ["hand0_track_id", "hand0_handedness", "hand1_wrist_x", "hand1_wrist_y"]
        assert units.count("millimeters") == 2 * 63
        inlet.open_stream(timeout=5.0)
        deadline = time.monotonic() + 5.0
        while not sink.have_consumers() and time.monotonic() < deadline:
            time.sleep(0.01)

        frames = [
            [hands(7, "right", 0)],
            [hands(7, "right", 1), hands(9, "left", 1)],
            [hands(9, "left", 2)],
            [hands(9, "left", 3), hands(12, "unknown", 3, with_3d=False)],
            [],
        ]
        t_push = pylsl.local_clock()
        for i, hs in enumerate(frames):
            sink(FrameResult(blank_frameset(50.0 + i / 30, i), tuple(hs), latency_ms=20.0))
        samples, stamps = [], []
        deadline = time.monotonic() + 5.0
        while len(samples) < len(frames) and time.monotonic() < deadline:
            chunk, ts = inlet.pull_chunk(timeout=0.5)
            samples += chunk
            stamps += ts
    finally:
        sink.close()
    assert len(samples) == 5 and sink.samples_pushed == 5
    s = np.asarray(samples, dtype=np.float64).reshape(5, 2, SLOT_CHANNELS)
    ids = s[:, :, 63]
    np.testing.assert_array_equal(ids, [[7, np.nan], [7, 9], [np.nan, 9], [12, 9], [np.nan, np.nan]])
    np.testing.assert_array_equal(s[:, :, 64], [[1, np.nan], [1, -1], [np.nan, -1], [0, -1], [np.nan, np.nan]])
    joints = s[:, :, :63].reshape(5, 2, NUM_JOINTS, 3)
    np.testing.assert_array_equal(joints[1, 1, :, 1], np.arange(NUM_JOINTS))  # joint j: y = j
    np.testing.assert_array_equal(joints[1, 1, :, 2], 501.0)  # frame 1: z = 501
    np.testing.assert_array_equal(joints[3, 1, :, 0], 9.0)  # track 9 stays in slot 1
    assert np.isnan(joints[3, 0]).all()  # track 12 has no 3D: NaN joints, but its id is there
    assert np.isnan(s[0, 1]).all() and np.isnan(s[4]).all()
    np.testing.assert_allclose(np.diff(stamps), 1 / 30, atol=1e-6)
    assert abs(stamps[0] - (t_push - 0.020)) < 0.5


def test_slot_assignment_keeps_tracks_and_counts_hands_left_out(pylsl, hands) -> None:
    """3 hands for 2 slots: the lowest track ids get them, 1 hand left out per frame; a track keeps its
    slot while the other slot changes hands."""
    sink = LslSink(name=f"handtrack-slots-{uuid.uuid4().hex[:8]}", max_hands=2)
    try:
        ids = lambda slots: [None if h is None else h.track_id for h in slots]
        assert ids(sink.assign_slots([hands(5, "left", 0), hands(3, "right", 0), hands(8, "left", 0)])) == [3, 5]
        assert sink.hands_left_out == 1
        assert ids(sink.assign_slots([hands(5, "left", 1)])) == [None, 5]
        assert ids(sink.assign_slots([hands(5, "left", 2), hands(8, "left", 2)])) == [8, 5]
        assert sink.hands_left_out == 1
    finally:
        sink.close()


def test_channel_labels_cover_every_joint_of_every_slot() -> None:
    labels = channel_labels(3)
    assert len(labels) == len(set(labels)) == 3 * SLOT_CHANNELS == 195
    assert labels[SLOT_CHANNELS] == "hand1_wrist_x"
    assert labels[-3:] == [f"hand2_{JOINT_NAMES[-1]}_z", "hand2_track_id", "hand2_handedness"]


def test_without_pylsl_it_is_a_config_error_naming_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pylsl", None)  # what Python does for a package that is not installed
    with pytest.raises(ConfigError, match=r"--lsl needs pylsl \(pip install handtrack\[lsl\]\)"):
        LslSink()


@pytest.mark.parametrize("kwargs, match", [
    ({"max_hands": 0}, "max_hands"),
    ({"nominal_rate": -1.0}, "nominal rate"),
    ({"reference": "table"}, "reference"),
])  # fmt: skip
def test_bad_options_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LslSink(**kwargs)
