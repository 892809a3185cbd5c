"""McapPlaybackDevice: recorded pace, looping, truncated files, and the errors of files that are no recordings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from devices.mcap_playback import McapPlaybackDevice
from tracker.core.errors import DeviceNotFoundError, RecordingError
from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, Intrinsics
from tracker.io.recording import RecordingWriter
from tracker.io.sources import (
    SourceOptions,
    open_source,
    parse_source,
    views_per_frameset,
)

FPS = 30.0


def _framesets(n: int, views: int = 2) -> list[FrameSet]:
    """``n`` frame sets of ``views`` small distorted cameras with extrinsics and depth, at 30 FPS."""
    rng = np.random.default_rng(1)
    cams = [Camera(f"c{v}", Intrinsics(80.0 + v, 81.0, 31.5, 23.5, 64, 48, dist=(0.1, -0.02, 0.001, 0.0, 0.003)),
                   Extrinsics(np.eye(3), np.array([100.0 * v, 0.0, 0.0]))) for v in range(views)]  # fmt: skip
    out = []
    for i in range(n):
        t = i / FPS
        frames = tuple(Frame(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), t + 0.001 * v, i, cams[v],
                             rng.integers(0, 2000, (48, 64), dtype=np.uint16)) for v in range(views))  # fmt: skip
        out.append(FrameSet(frames, t, i))
    return out


def _record(path: Path, framesets: list[FrameSet], **options: object) -> Path:
    with RecordingWriter(path, **options) as writer:
        for fs in framesets:
            writer.record(fs)
    return path


def test_a_rig_plays_as_a_rig_through_open_source(tmp_path: Path) -> None:
    live = _framesets(4, views=2)
    path = _record(tmp_path / "rig.mcap", live)
    spec = parse_source(str(path))
    assert views_per_frameset(spec) == 2
    device = open_source(spec, SourceOptions(realtime=False))
    with device:
        assert isinstance(device, McapPlaybackDevice) and not device.live
        got = [device.read() for _ in range(4)]
        assert device.read() is None
    for a, b in zip(live, got, strict=True):
        assert b is not None and len(b.frames) == 2 and (b.index, b.timestamp) == (a.index, a.timestamp)
        for fa, fb in zip(a.frames, b.frames, strict=True):
            assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.depth, fb.depth)
            assert fb.camera.intrinsics == fa.camera.intrinsics  # distortion included
            assert np.array_equal(fb.camera.extrinsics.t, fa.camera.extrinsics.t)


def test_realtime_plays_at_the_recorded_pace(tmp_path: Path) -> None:
    path = _record(tmp_path / "pace.mcap", _framesets(7, views=1))
    with McapPlaybackDevice(path, realtime=True) as device:
        t0 = time.monotonic()
        while device.read() is not None:
            pass
        elapsed = time.monotonic() - t0
    assert elapsed >= 6 / FPS - 0.01  # 6 frame intervals of 1/30 s


def test_loop_keeps_indices_and_times_rising(tmp_path: Path) -> None:
    path = _record(tmp_path / "loop.mcap", _framesets(3, views=1))
    with McapPlaybackDevice(path, loop=True) as device:
        got = [device.read() for _ in range(7)]
    assert [fs.index for fs in got] == list(range(7))
    stamps = np.array([fs.timestamp for fs in got])
    assert np.allclose(np.diff(stamps), 1 / FPS)  # the next pass starts one frame interval after the last frame
    assert np.array_equal(got[0].frames[0].image, got[3].frames[0].image)


def test_a_truncated_file_plays_its_complete_frame_sets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _record(tmp_path / "full.mcap", _framesets(20, views=1), chunk_size=1)  # one chunk per message
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) * 2 // 3])  # no summary, and a chunk torn in half
    with McapPlaybackDevice(cut) as device:
        got = []
        while (fs := device.read()) is not None:
            got.append(fs)
        assert device.truncated is not None
    assert 5 <= len(got) < 20 and [fs.index for fs in got] == list(range(len(got)))
    assert "complete frame set" in caplog.text


def test_files_that_are_no_recordings(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="does not exist"):
        McapPlaybackDevice(tmp_path / "missing.mcap").open()
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(RecordingError, match="not an MCAP recording"):
        McapPlaybackDevice(junk).open()
    with pytest.raises(RecordingError, match="not an MCAP recording"):
        views_per_frameset(parse_source(str(junk)))
    header_only = tmp_path / "empty.mcap"
    header_only.write_bytes(_record(tmp_path / "one.mcap", _framesets(1)).read_bytes()[:40])
    with pytest.raises(RecordingError, match="no complete frame set"):
        McapPlaybackDevice(header_only).open()


def test_length_is_known_from_the_summary(tmp_path: Path) -> None:
    """A cleanly closed recording of 7 frame sets says so at open (for the progress bar's ETA); the
    playback of a file without a summary learns its length by playing it."""
    from tracker.sinks.progress import known_length

    path = _record(tmp_path / "seven.mcap", _framesets(7), chunk_size=1)  # one chunk per message
    with McapPlaybackDevice(path) as dev:
        assert dev.frame_count == 7 and known_length(dev) == 7 and known_length(dev, 3) == 3
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.8)])  # no summary, no footer
    with McapPlaybackDevice(cut) as dev:
        assert dev.frame_count == 0 and known_length(dev) is None
        played = 0
        while dev.read() is not None:
            played += 1
        assert 0 < played < 7 and dev.frame_count == played
