"""The headless progress choice: a tqdm bar with ETA for playback of known length on a terminal, the status
log line otherwise (live sources, endless playback, a log file); the lengths the devices report."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest

from devices.image_folder import ImageFolderDevice
from devices.rig import RigDevice, RigView
from devices.synthetic import SyntheticDevice
from models.synthetic import SceneConfig
from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats
from tracker.sinks.progress import ProgressBar, ProgressLog, known_length, progress_sink


def _synthetic(num_frames: int = 12, **kwargs) -> SyntheticDevice:
    return SyntheticDevice(0, SceneConfig(num_frames=num_frames), **kwargs)


def test_known_length_of_playback_live_and_looping_sources(tmp_path: Path) -> None:
    """12-frame scene: 12; capped by --frames 5: 5; looping: None (or --frames 30: 30); realtime (a live
    source): None even with --frames; a folder of 3 images: 3 once opened; a rig of two 12-frame views: 12."""
    assert known_length(_synthetic()) == 12
    assert known_length(_synthetic(), max_frames=5) == 5
    assert known_length(_synthetic(), max_frames=50) == 12
    assert known_length(_synthetic(loop=True)) is None
    assert known_length(_synthetic(loop=True), max_frames=30) == 30
    assert known_length(_synthetic(realtime=True), max_frames=30) is None

    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.zeros((8, 8, 3), np.uint8))
    with ImageFolderDevice(tmp_path) as folder:
        assert known_length(folder) == 3

    rig_config = SceneConfig(num_frames=12, layout="ring", num_views=2)
    views = [RigView(f"cam{v}", SyntheticDevice(0, rig_config, view=v)) for v in range(2)]
    assert known_length(RigDevice(views)) == 12
    looping = [RigView(f"cam{v}", SyntheticDevice(0, rig_config, view=v, loop=v == 1)) for v in range(2)]
    assert known_length(RigDevice(looping)) is None


def test_bar_counts_frames_to_100_percent(blank_frameset) -> None:
    """12 results into a 12-frame bar: it ends at 12/12, 100 %, with the hands of the newest frame."""
    stream = io.StringIO()
    bar = ProgressBar(12, stream, mininterval=0.0)
    for i in range(12):
        bar(FrameResult(blank_frameset(i / 30, i), ()))
    assert bar.n == 12
    bar.close()
    bar.close()
    bar(FrameResult(blank_frameset(1.0, 12), ()))  # after close: ignored
    text = stream.getvalue()
    assert "12/12" in text and "100%" in text and "0 hands" in text


def test_bar_restores_the_log_handlers() -> None:
    """While a bar is open the console handler is swapped for tqdm's; close() puts back the same handlers."""
    root = logging.getLogger()
    before = list(root.handlers)
    console = logging.StreamHandler()  # stream: sys.stderr, as logging.basicConfig makes it
    root.addHandler(console)
    try:
        bar = ProgressBar(3, io.StringIO())
        assert console not in root.handlers
        bar.close()
        assert console in root.handlers
    finally:
        root.removeHandler(console)
    assert root.handlers == before


@pytest.mark.parametrize("tty, device, frames, kind, total", [
    (True, "playback", None, ProgressBar, 12),
    (True, "playback", 4, ProgressBar, 4),
    (False, "playback", None, ProgressLog, 12),  # a log file / CI: the status line, with the share done
    (True, "live", None, ProgressLog, None),
    (True, "looping", None, ProgressLog, None),
])  # fmt: skip
def test_progress_sink_chooses(tty: bool, device: str, frames: int | None, kind: type, total: int | None) -> None:
    source = {"playback": _synthetic(), "live": _synthetic(realtime=True), "looping": _synthetic(loop=True)}[device]
    sink = progress_sink(source, LoopStats, frames, tty=tty, stream=io.StringIO())
    try:
        assert type(sink) is kind and sink.total == total
    finally:
        sink.close()


def test_not_a_terminal_by_default_for_a_file_stream() -> None:
    assert isinstance(progress_sink(_synthetic(), LoopStats, stream=io.StringIO()), ProgressLog)


def test_status_line_with_a_known_length_ends_with_share_done_and_eta(blank_frameset, caplog) -> None:
    """6 of 12 frames done at 3 FPS: "50% of 12, ETA 2 s"; 0 FPS (just started): no ETA."""
    caplog.set_level(logging.INFO, logger="handtrack")
    ProgressLog(lambda: LoopStats(fps=3.0, processed=6), interval_s=0.0, total=12)(FrameResult(blank_frameset(), ()))
    ProgressLog(lambda: LoopStats(processed=0), total=120)(FrameResult(blank_frameset(), ()))
    ProgressLog(lambda: LoopStats(fps=2.0, processed=10), total=250)(FrameResult(blank_frameset(), ()))
    assert [r.getMessage() for r in caplog.records if r.name == "handtrack"] == [
        "frame 0 t=0.00 s: no hands | 3.0 FPS, dropped 0, 50% of 12, ETA 2 s",
        "frame 0 t=0.00 s: no hands | 0.0 FPS, dropped 0, 0% of 120",
        "frame 0 t=0.00 s: no hands | 2.0 FPS, dropped 0, 4% of 250, ETA 2:00",
    ]
