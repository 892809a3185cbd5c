import pytest

from devices.base import DeviceNotFoundError, UnsupportedSourceError
from tracker.sources import SourceSpec, parse_source


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
    with pytest.raises(UnsupportedSourceError, match="RealSense"):
        parse_source("realsense:123")
