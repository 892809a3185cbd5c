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


def test_synthetic_source_grammar() -> None:
    assert parse_source("synthetic") == SourceSpec("synthetic", (0, "single", 1))
    assert parse_source("synthetic:7") == SourceSpec("synthetic", (7, "single", 1))
    assert parse_source("synthetic:7:ring:6") == SourceSpec("synthetic", (7, "ring", 6))
    assert parse_source("synthetic:3:desk") == SourceSpec("synthetic", (3, "desk", 4))
    for bad in ("synthetic:x", "synthetic:1:dome", "synthetic:1:single:3", "synthetic:1:ring:1", "synthetic:"):
        with pytest.raises(UnsupportedSourceError, match="synthetic"):
            parse_source(bad)
