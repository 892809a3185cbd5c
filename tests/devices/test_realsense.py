"""RealSenseDevice on real RealSense recordings, written in the test with the SDK's software device.

The frames come from the synthetic engine (and a few hand-made ones), go through
``rs.software_device`` + ``rs.recorder`` into a ``.db3`` file, and are played back by the SDK
through the adapter. Tests that need a camera are marked ``hardware`` and skipped without one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
import pyrealsense2 as rs
import pytest

from devices.base import Device
from tracker.core.errors import DeviceNotFoundError, RecordingError, UnsupportedSourceError
from devices.realsense import (
    RealSenseDevice,
    _Pairer,
    connected_serials,
    depth_to_grey,
    depth_to_mm,
    intrinsics_from_rs,
)
from devices.realsense_record import rs_intrinsics, write_recording
from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, Intrinsics

NUM_FRAMES = 6
FPS = 30


@pytest.fixture(scope="module")
def synthetic_framesets() -> list[FrameSet]:
    """Six small synthetic RGB-D frame sets (seeded: the same every run)."""
    from devices.synthetic import SyntheticDevice
    from models.synthetic import SceneConfig

    with SyntheticDevice(seed=1, config=SceneConfig(num_frames=NUM_FRAMES, width=160, height=120)) as dev:
        framesets = [dev.read() for _ in range(NUM_FRAMES)]
    assert all(fs is not None and fs.frames[0].depth is not None for fs in framesets)
    assert any(fs.frames[0].depth.any() for fs in framesets)
    return framesets


@pytest.fixture(scope="module")
def recording(synthetic_framesets: list[FrameSet], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rs") / "synthetic.db3"
    assert write_recording(path, synthetic_framesets) == NUM_FRAMES
    return path


def read_all(device: RealSenseDevice) -> list[Frame]:
    frames = []
    while (fs := device.read()) is not None:
        assert len(fs.frames) == 1 and fs.index == fs.frames[0].index and fs.timestamp == fs.frames[0].timestamp
        frames.append(fs.frames[0])
    return frames


def flat_framesets(n: int, size: tuple[int, int], depth_size: tuple[int, int] | None = None,
                   depth_mm: int = 500, t0: float = 12.5) -> list[FrameSet]:  # fmt: skip
    """Frame i: flat colour (200, 10 * i mod 256, 30), flat depth ``depth_mm + i``."""
    w, h = size
    dw, dh = depth_size or size
    cam = Camera("flat", Intrinsics(0.8 * w, 0.8 * w, w / 2, h / 2, w, h))
    out = []
    for i in range(n):
        image = np.empty((h, w, 3), np.uint8)
        image[...] = (200, (10 * i) % 256, 30)
        frame = Frame(image, t0 + i / FPS, i, cam, np.full((dh, dw), depth_mm + i, np.uint16))
        out.append(FrameSet.single(frame))
    return out


# --- playback of recordings --------------------------------------------------------------------


def test_recording_round_trips_frames_timestamps_intrinsics_and_depth(
    recording: Path, synthetic_framesets: list[FrameSet]
) -> None:
    with RealSenseDevice(path=recording) as dev:
        assert isinstance(dev, Device) and dev.live is False and dev.name == "synthetic.db3"
        assert dev.has_color and dev.has_depth and not dev.aligned and dev.fps == FPS
        frames = read_all(dev)
        assert dev.read() is None  # stays at the end
    assert len(frames) == NUM_FRAMES
    assert [f.index for f in frames] == list(range(NUM_FRAMES))
    want_intr = synthetic_framesets[0].frames[0].camera.intrinsics
    for src, got in zip(synthetic_framesets, frames, strict=True):
        want = src.frames[0]
        assert got.timestamp == pytest.approx(want.timestamp, abs=1e-6)
        np.testing.assert_array_equal(got.image, want.image)
        assert got.depth is not None and got.depth.dtype == np.uint16
        np.testing.assert_array_equal(got.depth, want.depth)  # 1 mm units: exact
    intr = frames[0].camera.intrinsics
    assert (intr.width, intr.height) == (want_intr.width, want_intr.height)
    assert (intr.cx, intr.cy) == (want_intr.cx, want_intr.cy)
    assert intr.fx == pytest.approx(want_intr.fx, rel=1e-6) and intr.fy == pytest.approx(want_intr.fy, rel=1e-6)
    assert intr.dist == (0.0,) * 5 and not intr.approximate
    assert dev.intrinsics == intr and dev.depth_intrinsics == intr
    assert dev.depth_scale == pytest.approx(0.001)
    np.testing.assert_allclose(dev.depth_to_color.R, np.eye(3))
    np.testing.assert_allclose(dev.depth_to_color.t, 0.0)


def test_depth_units_distortion_and_odd_depth_values_round_trip(tmp_path: Path) -> None:
    """0.1 mm depth units, Brown-Conrady distortion, depth holes and the far end of the range."""
    framesets = flat_framesets(3, (32, 24))
    depth = np.array([0, 1, 499, 500, 6553], np.uint16)  # 6553 mm = 65530 units of 0.1 mm
    framesets = [dataclasses.replace(fs, frames=(dataclasses.replace(
        fs.frames[0], depth=np.resize(depth, (24, 32)).astype(np.uint16)),)) for fs in framesets]  # fmt: skip
    dist = (0.1, -0.05, 0.001, -0.002, 0.01)
    intr = Intrinsics(30.25, 31.5, 15.75, 11.25, 32, 24, dist)
    write_recording(tmp_path / "units.db3", framesets, intr, depth_scale=0.0001)
    with RealSenseDevice(path=tmp_path / "units.db3") as dev:
        frames = read_all(dev)
    assert dev.depth_scale == pytest.approx(0.0001)
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[0].depth, framesets[0].frames[0].depth)
    got = frames[0].camera.intrinsics
    np.testing.assert_allclose([got.fx, got.fy, got.cx, got.cy], [30.25, 31.5, 15.75, 11.25])
    np.testing.assert_allclose(got.dist, dist, rtol=1e-6)


def test_unregistered_depth_is_aligned_to_colour(tmp_path: Path) -> None:
    """Depth at half resolution, 15 mm beside the colour camera: rs.align resamples it into the image."""
    framesets = flat_framesets(2, (64, 48), depth_size=(32, 24))
    color_intr = framesets[0].frames[0].camera.intrinsics
    shift = Extrinsics(np.eye(3), np.array([15.0, 0.0, 0.0]))
    write_recording(tmp_path / "unaligned.db3", framesets, color_intr, depth_intrinsics=color_intr.scaled_to(32, 24),
                    depth_to_color=shift)  # fmt: skip
    with RealSenseDevice(path=tmp_path / "unaligned.db3") as dev:
        frames = read_all(dev)
        assert dev.aligned
        assert (dev.depth_intrinsics.width, dev.depth_intrinsics.height) == (32, 24)
        np.testing.assert_allclose(dev.depth_to_color.t, [15.0, 0.0, 0.0], atol=1e-3)
    assert len(frames) == 2
    for i, f in enumerate(frames):
        assert f.depth.shape == (48, 64) and f.image.shape == (48, 64, 3)
        valid = f.depth[f.depth > 0]
        assert valid.size > 0.8 * f.depth.size  # a plane fills the image but for a border strip
        np.testing.assert_array_equal(valid, 500 + i)


def test_depth_only_recording_gives_a_grey_image(tmp_path: Path, synthetic_framesets: list[FrameSet]) -> None:
    write_recording(tmp_path / "depth.db3", synthetic_framesets[:3], color=False)
    with RealSenseDevice(path=tmp_path / "depth.db3") as dev:
        assert dev.has_depth and not dev.has_color and dev.depth_to_color is None
        frames = read_all(dev)
    assert len(frames) == 3
    for src, got in zip(synthetic_framesets, frames):
        np.testing.assert_array_equal(got.depth, src.frames[0].depth)
        assert got.image.shape == (*got.depth.shape, 3) and got.image.dtype == np.uint8
        np.testing.assert_array_equal(got.image, depth_to_grey(got.depth))
        assert got.timestamp == pytest.approx(src.timestamp, abs=1e-6)


def test_colour_only_recording_has_no_depth(tmp_path: Path) -> None:
    write_recording(tmp_path / "colour.db3", flat_framesets(2, (32, 24)), depth=False)
    with RealSenseDevice(path=tmp_path / "colour.db3") as dev:
        frames = read_all(dev)
    assert [f.depth for f in frames] == [None, None]
    assert [int(f.image[0, 0, 1]) for f in frames] == [0, 10]


def test_realtime_playback_paces_to_recorded_speed(recording: Path) -> None:
    with RealSenseDevice(path=recording, realtime=True) as dev:
        start = time.monotonic()
        frames = read_all(dev)
        elapsed = time.monotonic() - start
    assert len(frames) == NUM_FRAMES  # nothing dropped
    assert 0.12 < elapsed < 2.0  # 5 intervals of 1/30 s


def test_loop_continues_indices_and_time(recording: Path, synthetic_framesets: list[FrameSet]) -> None:
    with RealSenseDevice(path=recording, loop=True) as dev:
        frames = [dev.read().frames[0] for _ in range(2 * NUM_FRAMES + 2)]
    assert [f.index for f in frames] == list(range(2 * NUM_FRAMES + 2))
    ts = np.array([f.timestamp for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert ts[NUM_FRAMES] - ts[NUM_FRAMES - 1] == pytest.approx(1 / FPS, abs=1e-6)
    np.testing.assert_array_equal(frames[NUM_FRAMES].image, synthetic_framesets[0].frames[0].image)
    np.testing.assert_array_equal(frames[NUM_FRAMES + 1].depth, synthetic_framesets[1].frames[0].depth)


def test_end_of_stream_and_close_mid_stream_do_not_hang(tmp_path: Path) -> None:
    write_recording(tmp_path / "long.db3", flat_framesets(40, (32, 24)))
    start = time.monotonic()
    with RealSenseDevice(path=tmp_path / "long.db3") as dev:
        assert dev.read().index == 0
        time.sleep(0.2)  # the SDK reads ahead until the feed is full and then waits
    assert time.monotonic() - start < 3.0
    start = time.monotonic()
    with RealSenseDevice(path=tmp_path / "long.db3") as dev:
        frames = read_all(dev)
        assert dev.read() is None
    assert len(frames) == 40 and [int(f.depth[0, 0]) for f in frames] == [500 + i for i in range(40)]
    assert time.monotonic() - start < 3.0
    dev.close()  # twice is fine
    with pytest.raises(RuntimeError, match="not open"):
        dev.read()


def test_missing_recording() -> None:
    with pytest.raises(DeviceNotFoundError, match="no RealSense recording"):
        RealSenseDevice(path="/nonexistent/take.db3").open()


@pytest.mark.parametrize("name", ["random.bag", "random.db3"])
def test_corrupt_recording(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(RecordingError, match="not a RealSense recording"):
        RealSenseDevice(path=path).open()


def test_truncated_empty_and_misnamed_recordings(tmp_path: Path, recording: Path) -> None:
    truncated = tmp_path / "cut.db3"
    truncated.write_bytes(recording.read_bytes()[: os.path.getsize(recording) // 3])
    with pytest.raises(RecordingError, match="cut.db3"):
        RealSenseDevice(path=truncated).open()
    empty = tmp_path / "empty.bag"
    empty.touch()
    with pytest.raises(RecordingError, match="empty"):
        RealSenseDevice(path=empty).open()
    misnamed = tmp_path / "take.mp4"
    misnamed.write_bytes(b"x")
    with pytest.raises(UnsupportedSourceError, match=r"\.db3 or \.bag"):
        RealSenseDevice(path=misnamed).open()
    with pytest.raises(ValueError, match="not both"):
        RealSenseDevice("123", path=recording)


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    framesets = flat_framesets(1, (32, 24))
    with pytest.raises(ValueError, match=r"\.db3"):
        write_recording(tmp_path / "x.bag", framesets)
    with pytest.raises(ValueError, match="no frame sets"):
        write_recording(tmp_path / "x.db3", [])
    no_depth = [dataclasses.replace(framesets[0], frames=(dataclasses.replace(framesets[0].frames[0], depth=None),))]
    with pytest.raises(ValueError, match="no depth"):
        write_recording(tmp_path / "x.db3", no_depth)
    with pytest.raises(ValueError, match="does not match"):
        write_recording(tmp_path / "x.db3", framesets, Intrinsics(30.0, 30.0, 16.0, 12.0, 64, 48))


# --- conversions ---------------------------------------------------------------------------------


def test_depth_to_mm_rounds_and_keeps_holes() -> None:
    raw = np.array([[0, 1, 3, 4000, 65535]], np.uint16)
    np.testing.assert_array_equal(depth_to_mm(raw, np.float32(0.001)), raw)
    np.testing.assert_array_equal(depth_to_mm(raw, 0.00025), [[0, 0, 1, 1000, 16384]])  # 0.25 mm units
    np.testing.assert_array_equal(depth_to_mm(raw, 0.002), [[0, 2, 6, 8000, 65535]])  # clipped
    assert depth_to_mm(raw, 0.001).dtype == np.uint16


def test_depth_to_grey_near_is_bright() -> None:
    grey = depth_to_grey(np.array([[0, 200, 1100, 2000, 5000]], np.uint16))
    assert grey.shape == (1, 5, 3)
    assert list(grey[0, :, 0]) == [0, 255, 127, 0, 0]


def test_intrinsics_conversion_both_ways() -> None:
    intr = Intrinsics(600.5, 601.25, 320.5, 240.25, 640, 480, (0.1, -0.2, 0.001, 0.002, 0.05))
    back = intrinsics_from_rs(rs_intrinsics(intr))
    np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [600.5, 601.25, 320.5, 240.25])
    np.testing.assert_allclose(back.dist, intr.dist, rtol=1e-6)
    inverse = rs_intrinsics(intr)
    inverse.model = rs.distortion.inverse_brown_conrady  # not OpenCV's model: dropped
    assert intrinsics_from_rs(inverse).dist == (0.0,) * 5
    with pytest.raises(ValueError, match="beyond k3"):
        rs_intrinsics(dataclasses.replace(intr, dist=(0.1, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0)))


def test_pairer_matches_nearest_depth_in_time() -> None:
    """Colour at 30 FPS, depth at 60 FPS 4 ms later, one depth frame missing, colour first in the file."""
    pairer = _Pairer(has_depth=True, has_color=True, tolerance_ms=34.0)
    out = []
    color_ts = [0.0, 33.3, 66.7, 100.0]
    depth_ts = [t + 4.0 for t in np.arange(0.0, 110.0, 16.7) if abs(t - 66.8) > 1]  # 70.8 missing
    events = sorted([(t, "c") for t in color_ts] + [(t - 5.0, "d") for t in depth_ts])  # depth ~1 ms ahead
    for t, kind in events:
        if kind == "c":
            pairer.push_color(t, f"c{t:.1f}")
        else:
            pairer.push_depth(t + 5.0, f"d{t + 5.0:.1f}")
        while (pair := pairer.pop()) is not None:
            out.append(pair)
    pairer.finish()
    while (pair := pairer.pop()) is not None:
        out.append(pair)
    assert [c for _, c in out] == ["c0.0", "c33.3", "c66.7", "c100.0"]
    assert [d for d, _ in out] == ["d4.0", "d37.4", "d54.1", "d104.2"]
    assert pairer.unpaired == 0
    far = _Pairer(has_depth=True, has_color=True, tolerance_ms=10.0)
    far.push_depth(0.0, "d0")
    far.push_color(50.0, "c50")
    far.finish()
    assert far.pop() == (None, "c50") and far.unpaired == 1
    single = _Pairer(has_depth=True, has_color=False, tolerance_ms=10.0)
    single.push_depth(0.0, "d0")
    assert single.pop() == ("d0", None)


# --- live camera ---------------------------------------------------------------------------------


def test_live_without_camera_says_so() -> None:
    if connected_serials():
        pytest.skip("a RealSense camera is connected")
    start = time.monotonic()
    with pytest.raises(DeviceNotFoundError, match="no RealSense camera is connected"):
        RealSenseDevice().open()
    with pytest.raises(DeviceNotFoundError, match="no RealSense camera"):
        RealSenseDevice("012345678901").open()
    assert time.monotonic() - start < 5.0


@pytest.mark.hardware
def test_live_camera_streams_aligned_depth() -> None:
    serials = connected_serials()
    if not serials:
        pytest.skip("no RealSense camera connected")
    with RealSenseDevice(serials[0], width=640, height=480, fps=30) as dev:
        assert dev.live and dev.name == f"realsense:{serials[0]}"
        frames = [dev.read().frames[0] for _ in range(5)]
    indices = [f.index for f in frames]
    assert indices[0] == 0 and all(b > a for a, b in zip(indices, indices[1:]))
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:]))
    for f in frames:
        assert f.image.shape == (480, 640, 3) and f.depth is not None and f.depth.shape == (480, 640)
        assert f.camera.intrinsics == dev.intrinsics and not f.camera.intrinsics.approximate


@pytest.mark.hardware
def test_live_wrong_serial_lists_connected_ones() -> None:
    serials = connected_serials()
    if not serials:
        pytest.skip("no RealSense camera connected")
    with pytest.raises(DeviceNotFoundError, match=serials[0]):
        RealSenseDevice("000000000000").open()


def test_logs_do_not_warn_on_a_clean_recording(recording: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="devices"), RealSenseDevice(path=recording) as dev:
        read_all(dev)
    assert not caplog.records
