"""ImageFolderDevice on folders of images written in the test."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.base import Device
from devices.image_folder import ImageFolderDevice, natural_key
from tracker.core.errors import ConfigError, DeviceNotFoundError, RecordingError
from tracker.core.structures import Intrinsics


def write_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    w, h = size
    assert cv2.imwrite(str(path), np.full((h, w, 3), rgb[::-1], np.uint8))  # imwrite takes BGR


def read_all(device: ImageFolderDevice) -> list:
    frames = []
    while (fs := device.read()) is not None:
        frames.append(fs.frames[0])
    return frames


def test_natural_order_rgb_and_timestamps(tmp_path: Path) -> None:
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.bmp", "frame21.jpg"]
    for i, name in enumerate(names):
        write_image(tmp_path / name, (200, 10 * i, 30))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    with ImageFolderDevice(tmp_path, fps=10.0) as dev:
        assert isinstance(dev, Device) and dev.live is False
        assert [p.name for p in dev.files] == ["frame1.png", "frame2.png", "Frame3.bmp", "frame10.png", "frame21.jpg"]
        assert dev.frame_count == 5
        frames = read_all(dev)
        assert dev.read() is None
    assert [f.index for f in frames] == list(range(5))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(5) / 10.0)
    greens = [int(f.image[0, 0, 1]) for f in frames]
    assert greens == [20, 10, 30, 0, pytest.approx(40, abs=4)]  # written in `names` order, the jpg is lossy
    for f in frames:
        r, _, b = f.image[15, 20].astype(int)
        assert abs(r - 200) < 5 and abs(b - 30) < 5, "channels must be RGB, not BGR"


def test_natural_key() -> None:
    assert sorted(["a10", "a2", "A1", "b", "a"], key=natural_key) == ["a", "A1", "a2", "a10", "b"]


def test_sizes_may_differ_and_intrinsics_follow(tmp_path: Path) -> None:
    write_image(tmp_path / "0.png", (1, 2, 3), (40, 30))
    write_image(tmp_path / "1.png", (1, 2, 3), (80, 60))
    with ImageFolderDevice(tmp_path, hfov_deg=90.0) as dev:
        a, b = (fs.frames[0].camera.intrinsics for fs in (dev.read(), dev.read()))
    assert (a.width, a.height, b.width, b.height) == (40, 30, 80, 60)
    assert a.fx == pytest.approx(20.0) and b.fx == pytest.approx(40.0) and a.approximate  # 0.5 W / tan(45 deg)

    calib = Intrinsics(50.0, 52.0, 20.0, 15.0, 40, 30, dist=(0.1, 0.0, 0.0, 0.0, 0.0))
    with ImageFolderDevice(tmp_path, intrinsics=calib) as dev:
        a, b = (fs.frames[0].camera.intrinsics for fs in (dev.read(), dev.read()))
    assert a == calib
    assert (b.fx, b.fy, b.cx, b.cy, b.width, b.dist, b.approximate) == (100.0, 104.0, 40.0, 30.0, 80, calib.dist, False)


def test_intrinsics_for_another_aspect_ratio_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_image(tmp_path / "0.png", (1, 2, 3), (40, 40))
    calib = Intrinsics(50.0, 50.0, 20.0, 15.0, 40, 30)
    with caplog.at_level(logging.WARNING), ImageFolderDevice(tmp_path, intrinsics=calib) as dev:
        intr = dev.read().frames[0].camera.intrinsics
    assert (intr.width, intr.height) == (40, 40)
    assert "another aspect ratio" in caplog.text


def test_realtime_paces_at_fps(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / f"{i}.png", (i, i, i))
    with ImageFolderDevice(tmp_path, fps=20.0, realtime=True) as dev:  # 3 intervals = 0.15 s
        start = time.monotonic()
        assert len(read_all(dev)) == 4
        assert 0.12 < time.monotonic() - start < 2.0


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="does not exist"):
        ImageFolderDevice(tmp_path / "nope").open()
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DeviceNotFoundError, match="not a folder"):
        ImageFolderDevice(tmp_path / "file.png").open()


def test_folder_without_images(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"no images \(\.jpg.*\) in"):
        ImageFolderDevice(tmp_path).open()
    (tmp_path / "readme.txt").write_text("hi")
    (tmp_path / "sub.png").mkdir()
    with pytest.raises(RecordingError, match=str(tmp_path)):
        ImageFolderDevice(tmp_path).open()


@pytest.mark.parametrize("content", [b"", b"definitely not a PNG"])
def test_unreadable_image_names_the_file(tmp_path: Path, content: bytes) -> None:
    write_image(tmp_path / "0.png", (1, 2, 3))
    (tmp_path / "1.png").write_bytes(content)
    with ImageFolderDevice(tmp_path) as dev:
        assert dev.read() is not None
        with pytest.raises(RecordingError, match=r"1\.png"):
            dev.read()


def test_bad_fps_and_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fps"):
        ImageFolderDevice(tmp_path, fps=0.0)
    write_image(tmp_path / "0.png", (1, 2, 3))
    dev = ImageFolderDevice(tmp_path)
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()
    with dev:
        pass
    dev.close()  # idempotent
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan"), float("inf")])
def test_fps_that_is_not_a_positive_rate_is_a_config_error(tmp_path: Path, fps: float) -> None:
    write_image(tmp_path / "0.png", (1, 2, 3))
    with pytest.raises(ConfigError, match=r"playback rate \(--fps\) must be a positive number of frames per second"):
        ImageFolderDevice(tmp_path, fps=fps)


def test_loop_plays_the_folder_again_with_rising_timestamps(tmp_path: Path) -> None:
    for i, name in enumerate(["a1.png", "a2.png", "a10.png"]):
        write_image(tmp_path / name, (0, 10 * (i + 1), 0))
    with ImageFolderDevice(tmp_path, fps=4.0, loop=True) as dev:
        frames = [dev.read().frames[0] for _ in range(8)]
        assert dev.frame_count == 3
    assert [f.index for f in frames] == list(range(8))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(8) / 4.0)  # 0.25 s apart, never reset
    assert [int(f.image[0, 0, 1]) for f in frames] == [10, 20, 30, 10, 20, 30, 10, 20]  # a1 a2 a10 a1 ...
    with ImageFolderDevice(tmp_path, fps=4.0) as dev:  # without loop it ends after one pass
        assert len(read_all(dev)) == 3 and dev.read() is None


def test_loop_in_realtime_keeps_pacing_across_the_wrap(tmp_path: Path) -> None:
    for i in range(2):
        write_image(tmp_path / f"{i}.png", (i, i, i))
    with ImageFolderDevice(tmp_path, fps=20.0, realtime=True, loop=True) as dev:
        start = time.monotonic()
        for _ in range(5):  # 4 intervals of 0.05 s, two of them across the end of the folder
            dev.read()
        assert 0.17 < time.monotonic() - start < 2.0
