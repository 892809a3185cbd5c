"""ProgressLog: one status line per interval with the frame, each hand and the loop's FPS / drops."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats
from tracker.sinks import progress as progress_module
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


class _Clock:
    """A stand-in for ``time.monotonic`` that the test advances by hand (s)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_at_most_one_line_per_interval(blank_frameset, caplog, monkeypatch) -> None:
    """Results every 0.1 s for 3.05 s with interval_s=1.0: lines at 0.0, 1.0, 2.0 and 3.0 s, i.e. exactly 4,
    and the loop stats are read only for those 4."""
    caplog.set_level(logging.INFO, logger="handtrack")
    clock = _Clock(1000.0)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=clock))
    reads = []
    progress = ProgressLog(lambda: reads.append(1) or LoopStats(), interval_s=1.0)
    for i in range(31):
        clock.now = 1000.0 + 0.1 * i + 1e-6
        progress(FrameResult(blank_frameset(index=i), ()))
    assert [m.split(" t=")[0] for m in _messages(caplog)] == ["frame 0", "frame 10", "frame 20", "frame 30"]
    assert len(reads) == 4


def test_first_result_is_logged_at_once(blank_frameset, caplog, monkeypatch) -> None:
    """A clock that reads 0.5 s (a fresh boot, a container) still gets its first line with interval_s=1.0."""
    caplog.set_level(logging.INFO, logger="handtrack")
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=_Clock(0.5)))
    ProgressLog(LoopStats, interval_s=1.0)(FrameResult(blank_frameset(), ()))
    assert len(_messages(caplog)) == 1
