import pytest

from tracker.core.errors import DeviceNotFoundError, UnsupportedSourceError
from tracker.io.sources import SourceOptions, SourceSpec, open_source, parse_source


def test_grammar(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert parse_source("auto") == SourceSpec("auto")
    assert parse_source("demo") == SourceSpec("demo")
    assert parse_source("webcam") == SourceSpec("webcam", 0)
    assert parse_source("webcam:2") == SourceSpec("webcam", 2)
    assert parse_source("webcam:/dev/video4") == SourceSpec("webcam", "/dev/video4")
    assert parse_source(str(tmp_path)) == SourceSpec("folder", str(tmp_path))
    assert parse_source(str(video)) == SourceSpec("video", str(video))


def test_unknown_sources_say_what_exists(tmp_path):
    with pytest.raises(DeviceNotFoundError, match="webcam"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(DeviceNotFoundError, match="realsense"):
        parse_source(str(tmp_path / "missing.db3"))
    with pytest.raises(DeviceNotFoundError, match="no rig file"):
        parse_source(f"rig:{tmp_path / 'desk.toml'}")
    with pytest.raises(UnsupportedSourceError, match="rig:RIG.toml"):
        parse_source("rig:")


def test_rig_source_grammar(tmp_path):
    rig = tmp_path / "desk.toml"
    rig.write_text("")
    assert parse_source(f"rig:{rig}") == SourceSpec("rig", str(rig))


def test_realsense_source_grammar(tmp_path):
    assert parse_source("realsense") == SourceSpec("realsense", None)
    assert parse_source("RealSense") == SourceSpec("realsense", None)
    assert parse_source("realsense:123456789012") == SourceSpec("realsense", "123456789012")
    assert parse_source("realsense:f0233208") == SourceSpec("realsense", "f0233208")
    for bad in ("realsense:", "realsense:1:2"):
        with pytest.raises(UnsupportedSourceError, match="realsense:SERIAL"):
            parse_source(bad)
    for name in ("take.db3", "old.bag", "LOUD.BAG", "realsense.db3"):
        path = tmp_path / name
        path.write_bytes(b"x")
        assert parse_source(str(path)) == SourceSpec("recording", str(path))


def test_open_realsense_recording_source(tmp_path):
    """--source FILE.db3 opens the RealSense playback with the source options."""
    import numpy as np

    from devices.realsense import RealSenseDevice
    from devices.realsense_record import write_recording
    from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics

    cam = Camera("c", Intrinsics(40.0, 40.0, 16.0, 12.0, 32, 24))
    framesets = [FrameSet.single(Frame(np.full((24, 32, 3), 9 * i, np.uint8), i / 30, i, cam,
                                       np.full((24, 32), 400 + i, np.uint16))) for i in range(3)]  # fmt: skip
    path = tmp_path / "take.db3"
    write_recording(path, framesets)
    device = open_source(parse_source(str(path)), SourceOptions(realtime=False, loop=True))
    try:
        assert isinstance(device, RealSenseDevice) and not device.live and device.loop
        depths = [int(device.read().frames[0].depth[0, 0]) for _ in range(5)]
    finally:
        device.close()
    assert depths == [400, 401, 402, 400, 401]


def test_open_realsense_without_camera_says_so():
    from devices.realsense import connected_serials

    if connected_serials():
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(DeviceNotFoundError, match="no RealSense camera"):
        open_source(parse_source("realsense"))
    with pytest.raises(DeviceNotFoundError, match="no RealSense camera"):
        open_source(parse_source("realsense:123"))


def test_synthetic_source_grammar() -> None:
    assert parse_source("synthetic") == SourceSpec("synthetic", (0, "single", 1))
    assert parse_source("synthetic:7") == SourceSpec("synthetic", (7, "single", 1))
    assert parse_source("synthetic:7:ring:6") == SourceSpec("synthetic", (7, "ring", 6))
    assert parse_source("synthetic:3:desk") == SourceSpec("synthetic", (3, "desk", 4))
    assert parse_source("synthetic:7:ring:4@3") == SourceSpec("synthetic", (7, "ring", 4), 3)
    for bad in ("synthetic:x", "synthetic:1:dome", "synthetic:1:single:3", "synthetic:1:ring:1", "synthetic:",
                "synthetic:1:ring:4@4", "synthetic:1@0", "synthetic:1:ring:4@", "synthetic:1:ring:4@x"):
        with pytest.raises(UnsupportedSourceError, match="synthetic"):
            parse_source(bad)


def test_auto_prefers_a_realsense_and_falls_back_when_it_cannot_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera the SDK lists but that fails to open (unplugged in between): webcam, then the demo."""
    from tracker.io import sources

    assert sources._realsense_connected() is False  # no RealSense on CI / this machine
    monkeypatch.setattr(sources, "_realsense_connected", lambda: True)
    device = sources.open_source(sources.SourceSpec("auto"))
    try:
        assert "demo" in device.name or "webcam" in device.name.lower()  # never the RealSense
    finally:
        device.close()


def test_a_folder_of_nyu_depth_images_plays_as_depth_frames(tmp_path) -> None:
    import cv2
    import numpy as np

    depth = np.full((48, 64), 700, np.uint16)
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 1], bgr[..., 0] = depth >> 8, depth & 0xFF  # NYU: depth = (G << 8) | B
    for i in (1, 2):
        cv2.imwrite(str(tmp_path / f"depth_1_{i:07d}.png"), bgr)
    device = open_source(parse_source(str(tmp_path)), SourceOptions(realtime=False))
    try:
        fs = device.read()
        assert fs is not None and fs.frames[0].depth is not None
        assert int(fs.frames[0].depth[0, 0]) == 700
    finally:
        device.close()
