"""VideoFileDevice on small videos written in the test with cv2.VideoWriter."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.base import Device
from tracker.core.errors import DeviceNotFoundError, RecordingError, UnsupportedSourceError
from devices.video import VideoFileDevice
from tracker.core.structures import Intrinsics

W, H = 64, 48
RED, BLUE = 220, 40  # constant R and B; G encodes the frame number


def green(i: int) -> int:
    return 20 + 25 * i


def write_video(path: Path, n: int, fps: float = 20.0, fourcc: str = "mp4v") -> Path:
    """Frame i is a flat colour RGB (RED, green(i), BLUE)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((H, W, 3), (BLUE, green(i), RED), np.uint8))  # BGR on disk
    writer.release()
    return path


def read_all(device: VideoFileDevice) -> list:
    frames = []
    while (fs := device.read()) is not None:
        frames.append(fs.frames[0])
    return frames


@pytest.mark.parametrize("name, fourcc", [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_every_frame_in_order_rgb_and_file_clock(tmp_path: Path, name: str, fourcc: str) -> None:
    path = write_video(tmp_path / name, 8, fps=20.0, fourcc=fourcc)
    with VideoFileDevice(path) as dev:
        assert isinstance(dev, Device) and dev.live is False
        assert dev.fps == pytest.approx(20.0) and dev.frame_count == 8
        frames = read_all(dev)
        assert dev.read() is None  # stays at the end
    assert [f.index for f in frames] == list(range(8))
    for i, f in enumerate(frames):
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        r, g, b = f.image[H // 2, W // 2].astype(int)
        assert abs(r - RED) < 10 and abs(b - BLUE) < 10, "channels must be RGB, not BGR"
        assert abs(g - green(i)) < 10, f"frame {i} out of order"
    ts = np.array([f.timestamp for f in frames])
    np.testing.assert_allclose(ts, np.arange(8) / 20.0, atol=1e-3)
    cam = frames[0].camera
    assert cam.name == name and cam.intrinsics.approximate and (cam.intrinsics.width, cam.intrinsics.height) == (W, H)


def test_given_intrinsics_are_scaled_to_the_video(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", 2)
    calib = Intrinsics(200.0, 200.0, 64.0, 48.0, 2 * W, 2 * H)
    with VideoFileDevice(path, intrinsics=calib) as dev:
        intr = dev.read().frames[0].camera.intrinsics
    assert (intr.fx, intr.cx, intr.width, intr.height, intr.approximate) == (100.0, 32.0, W, H, False)


def test_realtime_paces_to_recorded_speed(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", 6, fps=20.0)  # 5 intervals = 0.25 s
    with VideoFileDevice(path, realtime=True) as dev:
        start = time.monotonic()
        assert len(read_all(dev)) == 6
        elapsed = time.monotonic() - start
    assert 0.2 < elapsed < 2.0


def test_loop_continues_indices_and_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", 3, fps=10.0)
    with VideoFileDevice(path, loop=True) as dev:
        frames = [dev.read().frames[0] for _ in range(7)]
    assert [f.index for f in frames] == list(range(7))
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    assert abs(int(frames[3].image[0, 0, 1]) - green(0)) < 10  # back to the first frame


def test_truncated_mid_stream_ends_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = write_video(tmp_path / "full.avi", 20, fourcc="MJPG").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with caplog.at_level(logging.WARNING), VideoFileDevice(cut) as dev:
        n = len(read_all(dev))
    assert 0 < n < 20
    assert f"stopped at frame {n} of ~20" in caplog.text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="no video file"):
        VideoFileDevice(tmp_path / "nope.mp4").open()


@pytest.mark.parametrize("name", ["notes.txt", "clip.gif", "noext"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"x" * 100)
    with pytest.raises(UnsupportedSourceError, match=r"\.mp4"):
        VideoFileDevice(tmp_path / name).open()


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(4096), b"hello, I am text\n" * 50])
def test_undecodable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="bad.mp4"):
        VideoFileDevice(path).open()


def test_truncated_mp4_without_index(tmp_path: Path) -> None:
    data = write_video(tmp_path / "full.mp4", 10).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # mp4v puts the moov index at the end
    with pytest.raises(RecordingError, match="cut.mp4"):
        VideoFileDevice(path).open()


def test_misuse_and_idempotent_close(tmp_path: Path) -> None:
    dev = VideoFileDevice(write_video(tmp_path / "a.mp4", 2))
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()
    dev.open()
    dev.close()
    dev.close()
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()
    with dev:  # reopens from the start
        assert dev.read().index == 0
