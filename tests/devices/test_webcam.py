"""WebcamDevice without a camera: a missing index, and a real OpenCV capture of a video that ends."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.base import Device
from devices.webcam import WebcamDevice
from tracker.core.errors import ConfigError, DeviceDisconnectedError, DeviceNotFoundError


def test_missing_camera_index_fails_fast() -> None:
    start = time.monotonic()
    with pytest.raises(DeviceNotFoundError, match=r"no camera at index 97.*ls /dev/video\*"):
        WebcamDevice(97).open()
    assert time.monotonic() - start < 5.0


def test_missing_camera_leaves_opencvs_log_lines_out(capfd: pytest.CaptureFixture[str]) -> None:
    """Probing an absent camera makes OpenCV's backends print their failures on stderr (fd 2); the
    device silences them (its DeviceNotFoundError says it all) and restores OpenCV's log level."""
    level = cv2.utils.logging.getLogLevel()
    cv2.VideoCapture(97).release()
    raw = capfd.readouterr().err
    if "97" not in raw and "WARN" not in raw:
        pytest.skip("this OpenCV build logs nothing for a missing camera: nothing to silence")
    with pytest.raises(DeviceNotFoundError):
        WebcamDevice(97).open()
    assert capfd.readouterr().err == ""
    assert cv2.utils.logging.getLogLevel() == level


@pytest.mark.parametrize("fps", [0.0, -30.0, float("nan")])
def test_frame_rate_that_is_not_positive_is_a_config_error(fps: float) -> None:
    with pytest.raises(ConfigError, match=r"webcam:0: the frame rate to request \(--fps\) must be a positive"):
        WebcamDevice(0, fps=fps)


def test_missing_device_path() -> None:
    with pytest.raises(DeviceNotFoundError, match="/dev/video_handtrack_none"):
        WebcamDevice("/dev/video_handtrack_none").open()


def test_capture_that_stops_raises_disconnected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A video file through the webcam path: OpenCV captures it like a camera until it runs out."""
    path = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), (40, 30 * i, 220), np.uint8))  # BGR: red image
    writer.release()

    cam = WebcamDevice(str(path), width=640, height=480)
    assert isinstance(cam, Device) and cam.live is True and cam.name == f"webcam:{path}"
    with caplog.at_level(logging.WARNING), cam:
        assert (cam.actual_width, cam.actual_height) == (64, 48)
        assert "requested 640x480, camera delivers 64x48" in caplog.text
        frames = []
        start = time.monotonic()
        with pytest.raises(DeviceDisconnectedError, match="stopped delivering frames"):
            while True:
                frames.append(cam.read().frames[0])
        assert time.monotonic() - start < 3.0
    assert len(frames) == 4  # open() grabbed the first one to check the camera works
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    assert abs(frames[0].timestamp - time.monotonic()) < 5.0  # monotonic clock, not the file's
    r, _, b = frames[0].image[24, 32].astype(int)
    assert abs(r - 220) < 10 and abs(b - 40) < 10, "channels must be RGB, not BGR"
    assert frames[0].camera.intrinsics.approximate and frames[0].camera.intrinsics.width == 64


def test_misuse_and_idempotent_close() -> None:
    cam = WebcamDevice(0)
    with pytest.raises(RuntimeError, match="not open"):
        cam.read()
    cam.close()
    cam.close()
    with pytest.raises(ValueError, match="field of view"):
        WebcamDevice(0, hfov_deg=200.0)
