"""ProgressLog: one status line per interval with the frame, each hand and the loop's FPS / drops."""

from __future__ import annotations

import logging

import pytest

from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats
from tracker.sinks.progress import ProgressLog


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "handtrack"]


def test_line_names_each_hand_and_the_loop_stats(blank_frameset, make_hand, caplog) -> None:
    caplog.set_level(logging.INFO, logger="handtrack")
    joints = make_hand(0.0, joints_3d=0.0).joints_3d.copy()
    joints[0, 2] = 412.4  # wrist depth, mm
    hands = (make_hand(track_id=0, handedness="right", joints_3d=joints), make_hand(track_id=3, handedness="left"))
    progress = ProgressLog(lambda: LoopStats(fps=29.94, dropped=2), interval_s=0.0)
    progress(FrameResult(blank_frameset(timestamp=0.5, index=15), hands))
    progress(FrameResult(blank_frameset(timestamp=0.6, index=16), ()))
    assert _messages(caplog) == [
        "frame 15 t=0.50 s: id 0 right wrist z 412 mm, id 3 left | 29.9 FPS, dropped 2",
        "frame 16 t=0.60 s: no hands | 29.9 FPS, dropped 2",
    ]


def test_at_most_one_line_per_interval(blank_frameset, caplog) -> None:
    """100 results in well under an hour with interval_s=3600: exactly 1 line (the first)."""
    caplog.set_level(logging.INFO, logger="handtrack")
    calls = []
    progress = ProgressLog(lambda: calls.append(1) or LoopStats(), interval_s=3600.0)
    for i in range(100):
        progress(FrameResult(blank_frameset(index=i), ()))
    assert len(_messages(caplog)) == 1 and len(calls) == 1  # the stats are not even read in between
    assert _messages(caplog)[0].startswith("frame 0 ")
