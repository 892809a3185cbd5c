"""The library API (tracker.HandTracker): modes, misuse, results equal to the CLI's on the same frames."""

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker import HandTracker, RunningMode, TrackerOptions
from tracker.core.errors import ConfigError
from tracker.io.intrinsics import load_intrinsics
from tracker.io.sources import DEMO_DIR, DEMO_INTRINSICS, DEMO_VIDEO

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_frames():
    video = cv2.VideoCapture(str(DEMO_VIDEO))
    frames = []
    while len(frames) < 30:
        ok, bgr = video.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    video.release()
    return frames


@pytest.fixture(scope="module")
def demo_gt():
    return np.load(DEMO_DIR / "demo_gt.npz")


def test_video_mode_equals_the_cli_on_the_same_frames(demo_frames, demo_gt, tmp_path):
    """Same pipeline as ``handtrack --source demo``: same joints (to 0.01 px / 0.01 mm) and within
    the CLI test's bounds of the ground truth (2D mean < 8 px)."""
    from tracker import cli
    from tracker.sinks.export import read_jsonl

    out = tmp_path / "cli.jsonl"
    assert cli.main(["--source", "demo", "--no-view", "--frames", "30", "--export", str(out)]) == 0
    expected = read_jsonl(out)
    intr = load_intrinsics(DEMO_INTRINSICS)
    with HandTracker(TrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
        results = [tracker.process(f, timestamp_s=float(t), intrinsics=intr)
                   for f, t in zip(demo_frames, demo_gt["timestamps"])]
    assert [len(r.hands) for r in results] == [1] * 30
    j2 = np.array([r.hands[0].joints_2d for r in results])
    j3 = np.array([r.hands[0].joints_3d for r in results])
    np.testing.assert_allclose(j2, [f["hands"][0]["joints_2d"] for f in expected], atol=0.01)
    np.testing.assert_allclose(j3, [f["hands"][0]["joints_3d"] for f in expected], atol=0.01)
    assert {r.hands[0].track_id for r in results} == {0}
    assert np.linalg.norm(j2 - demo_gt["joints_2d"][:30], axis=2).mean() < 8.0


def test_video_mode_needs_increasing_timestamps(demo_frames):
    with HandTracker(TrackerOptions(running_mode=RunningMode.VIDEO, smoothing="off")) as tracker:
        tracker.process(demo_frames[0], timestamp_s=1.0)
        with pytest.raises(ValueError, match="increase strictly"):
            tracker.process(demo_frames[1], timestamp_s=1.0)
        with pytest.raises(ValueError, match="needs a timestamp_s"):
            tracker.process(demo_frames[1])
        tracker.reset()  # a new stream may start again from 0
        assert len(tracker.process(demo_frames[1], timestamp_s=0.0).hands) == 1


def test_image_mode_is_independent_of_order(demo_frames):
    """IMAGE: no tracking or smoothing state, so an image gives the same result whatever came before."""
    with HandTracker(TrackerOptions(running_mode=RunningMode.IMAGE, max_hands=1)) as tracker:
        first = tracker.process(demo_frames[20])
        tracker.process(demo_frames[0])
        again = tracker.process(demo_frames[20], timestamp_s=0.5)
    assert len(first.hands) == len(again.hands) == 1
    np.testing.assert_allclose(first.hands[0].joints_2d, again.hands[0].joints_2d, atol=1e-6)
    assert first.hands[0].track_id == again.hands[0].track_id == 0
    assert "smoothing" not in first.timings_ms


def test_live_stream_delivers_results_and_drops_when_busy(demo_frames):
    got: list[float] = []
    done = threading.Event()

    def on_result(result, image, timestamp_s):
        assert image.shape == demo_frames[0].shape
        got.append(timestamp_s)
        if len(result.hands) != 1:
            raise AssertionError("the demo shows one hand")
        done.set()

    options = TrackerOptions(running_mode=RunningMode.LIVE_STREAM, result_callback=on_result)
    with HandTracker(options) as tracker:
        for i, frame in enumerate(demo_frames):
            tracker.process_async(frame, timestamp_s=i / 30)  # faster than it can track: some are dropped
        deadline = time.monotonic() + 30
        while len(got) + tracker.dropped_frames < len(demo_frames) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ValueError, match="LIVE_STREAM"):
            tracker.process(demo_frames[0], timestamp_s=99.0)
        dropped = tracker.dropped_frames
    assert done.is_set()
    assert got == sorted(got) and len(set(got)) == len(got)
    assert len(got) + dropped == len(demo_frames)
    assert got[-1] == pytest.approx((len(demo_frames) - 1) / 30)  # the newest frame is never dropped


def test_misuse_is_refused(demo_frames):
    with pytest.raises(ConfigError, match="result_callback"):
        TrackerOptions(running_mode=RunningMode.LIVE_STREAM)
    with pytest.raises(ConfigError, match="only used in LIVE_STREAM"):
        TrackerOptions(running_mode=RunningMode.VIDEO, result_callback=lambda *a: None)
    with pytest.raises(ConfigError, match="max_hands"):
        HandTracker(TrackerOptions(max_hands=0))
    with HandTracker(TrackerOptions(running_mode=RunningMode.IMAGE)) as tracker:
        with pytest.raises(ValueError, match="RGB uint8"):
            tracker.process(demo_frames[0].astype(np.float32))
        with pytest.raises(ValueError, match="RGB uint8"):
            tracker.process(demo_frames[0][..., 0])
        with pytest.raises(ValueError, match="depth must be uint16"):
            tracker.process(demo_frames[0], depth=np.zeros((4, 4), np.uint16))
        with pytest.raises(ValueError, match="LIVE_STREAM"):
            tracker.process_async(demo_frames[0], 0.0)
    with pytest.raises(ValueError, match="closed"):
        tracker.process(demo_frames[0])


def test_process_frameset_fuses_a_rig():
    """A synthetic 3-camera ring: world joints within 25 mm (mean) of the ground truth."""
    from tracker.io.sources import SourceOptions, open_source, parse_source

    device = open_source(parse_source("synthetic:3:ring:3"), SourceOptions(realtime=False))
    errors = []
    try:
        with HandTracker(TrackerOptions(running_mode=RunningMode.VIDEO)) as tracker:
            for _ in range(10):
                fs = device.read()
                result = tracker.process_frameset(fs)
                gt = fs.frames[0].ground_truth.joints_world
                for hand in result.hands:
                    assert hand.view == -1 and hand.joints_world is not None
                    errors.append(min(np.linalg.norm(hand.joints_world - g, axis=1).mean() for g in gt))
    finally:
        device.close()
    assert len(errors) >= 8
    assert float(np.mean(errors)) < 25.0, errors


def test_import_tracker_is_light():
    """``import tracker`` imports no torch, OpenCV, MediaPipe or VisPy (the API is lazy)."""
    code = ("import sys, tracker; heavy = [m for m in ('torch', 'cv2', 'mediapipe', 'vispy', 'numba') "
            "if m in sys.modules]; print(heavy); tracker.HandTracker")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_library_example_runs():
    """The README's "Use as a library" example, executed as written."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "frames with a hand: 30/30" in out.stdout, out.stdout
