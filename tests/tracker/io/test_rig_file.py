"""Rig files (tracker.io.rig_file): parsing, calibration by camera name, error paths, and rig:FILE through tracker.io.sources."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.rig import RigDevice
from models.synthetic import SceneConfig, sample_scene
from tracker.core.errors import (
    CalibrationError,
    DeviceNotFoundError,
    UnsupportedSourceError,
)
from tracker.core.structures import Camera, Extrinsics, Intrinsics
from tracker.io.calibration import load_calibration, save_calibration
from tracker.io.rig_file import (
    DEFAULT_SYNC_TOLERANCE_MS,
    RigCamera,
    RigFileError,
    build_rig_device,
    load_rig,
)
from tracker.io.sources import (
    SYNTHETIC_FRAMES,
    SourceOptions,
    open_source,
    parse_source,
)


def write_folder(folder: Path, n: int = 3, size: tuple[int, int] = (16, 12)) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"{i}.png"), np.full((size[1], size[0], 3), 40 * i, np.uint8))
    return folder


def rig_text(cameras: list[tuple[str, str]], header: str = "") -> str:
    tables = "".join(f'[[cameras]]\nname = "{n}"\nsource = "{s}"\n\n' for n, s in cameras)
    return header + "\n" + tables


def calib_camera(name: str, tx: float) -> Camera:
    rot = cv2.Rodrigues(np.array([0.0, 0.3, 0.1]))[0]
    return Camera(name, Intrinsics(20.0, 21.0, 8.0, 6.0, 16, 12, (0.01, 0.0, 0.0, 0.0, 0.0)),
                  Extrinsics(rot, np.array([tx, -5.0, 400.0])))  # fmt: skip


def test_parses_cameras_relative_paths_and_settings(tmp_path: Path) -> None:
    write_folder(tmp_path / "takes" / "left")
    (tmp_path / "takes" / "right.mp4").write_bytes(b"x")  # parsed, not opened
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text([("left", "takes/left"), ("right", "takes/right.mp4"), ("cam", "webcam:1"),
                             ("rs", "realsense:123456789012"), ("syn", "synthetic:7:ring:4@3")],
                            'sync_tolerance_ms = 12.5\ndrift_warn_ms = 3\nclock = "arrival"'))  # fmt: skip
    spec = load_rig(rig)
    assert spec.names == ("left", "right", "cam", "rs", "syn")
    assert spec.cameras[0] == RigCamera("left", str(tmp_path / "takes" / "left"))
    assert spec.cameras[1].source == str(tmp_path / "takes" / "right.mp4")
    assert [c.source for c in spec.cameras[2:]] == ["webcam:1", "realsense:123456789012", "synthetic:7:ring:4@3"]
    assert (spec.sync_tolerance_ms, spec.drift_warn_ms, spec.clock) == (12.5, 3.0, "arrival")
    assert spec.calibration is None and spec.path == rig.resolve()
    assert all(c.camera is None and c.offset_ms == 0.0 for c in spec.cameras)


def test_defaults_and_offset(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('[[cameras]]\nname = "a"\nsource = "webcam:0"\n\n'
                   '[[cameras]]\nname = "b"\nsource = "webcam:1"\noffset_ms = -40\n')  # fmt: skip
    spec = load_rig(rig)
    assert spec.sync_tolerance_ms == DEFAULT_SYNC_TOLERANCE_MS and spec.clock == "auto"
    assert spec.cameras[1].offset_ms == -40.0


def test_calibration_matched_by_name(tmp_path: Path) -> None:
    write_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    # the calibration lists the cameras in another order, plus one the rig does not use
    save_calibration([calib_camera("b", 50.0), calib_camera("spare", 0.0), calib_camera("a", -50.0)],
                     tmp_path / "calibration.toml")  # fmt: skip
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text([("a", "a"), ("b", "b")], 'calibration = "calibration.toml"'))
    spec = load_rig(rig)
    assert spec.calibration == (tmp_path / "calibration.toml").resolve()
    by_name = {c.name: c for c in load_calibration(tmp_path / "calibration.toml")}
    for cam in spec.cameras:
        assert cam.camera is not None and cam.camera.name == cam.name
        assert cam.camera.intrinsics == by_name[cam.name].intrinsics
        np.testing.assert_allclose(cam.camera.extrinsics.t, by_name[cam.name].extrinsics.t)
    # every frame of the rig carries its calibrated camera
    device = open_source(parse_source(f"rig:{rig}"), SourceOptions(realtime=False))
    try:
        assert isinstance(device, RigDevice)
        fs = device.read()
    finally:
        device.close()
    assert all(f.camera.name == c.name and f.camera.intrinsics == c.camera.intrinsics
               for f, c in zip(fs.frames, spec.cameras))  # fmt: skip
    np.testing.assert_allclose(fs.frames[1].camera.extrinsics.t, [50.0, -5.0, 400.0])


def test_aniposelib_file_written_by_hand(tmp_path: Path) -> None:
    write_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    (tmp_path / "calib.toml").write_text("""
[cam_0]
name = "a"
size = [ 16, 12,]
matrix = [ [ 20.0, 0.0, 8.0,], [ 0.0, 20.0, 6.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ 0.0, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 0.0, 0.0,]
translation = [ 0.0, 0.0, 0.0,]

[cam_1]
name = "b"
size = [ 16, 12,]
matrix = [ [ 22.0, 0.0, 8.0,], [ 0.0, 22.0, 6.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ 0.0, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 1.5707963267948966, 0.0,]
translation = [ -300.0, 0.0, 300.0,]

[metadata]
adjusted = true
error = 0.31
""")
    (tmp_path / "rig.toml").write_text(rig_text([("b", "b"), ("a", "a")], 'calibration = "calib.toml"'))
    spec = load_rig(tmp_path / "rig.toml")
    b = spec.cameras[0].camera
    assert b is not None and b.intrinsics.fx == 22.0
    np.testing.assert_allclose(b.extrinsics.R, [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)


def test_camera_missing_from_the_calibration_is_named(tmp_path: Path) -> None:
    write_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    save_calibration([calib_camera("a", 0.0), calib_camera("c", 1.0)], tmp_path / "calibration.toml")
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text([("a", "a"), ("b", "b")], 'calibration = "calibration.toml"'))
    with pytest.raises(CalibrationError, match=r"camera\(s\) 'b' not in the calibration .*it has 'a', 'c'"):
        load_rig(rig)
    with pytest.raises(CalibrationError, match="'b' not in the calibration"):
        open_source(parse_source(f"rig:{rig}"))
    rig.write_text(rig_text([("a", "a"), ("b", "b")], 'calibration = "nope.toml"'))
    with pytest.raises(CalibrationError, match="no calibration file at"):
        load_rig(rig)
    uncalibrated = load_rig(rig, calibration=False)  # being calibrated: the file need not exist yet
    assert uncalibrated.calibration == (tmp_path / "nope.toml").resolve()
    assert [c.name for c in uncalibrated.cameras] == ["a", "b"] and all(c.camera is None for c in uncalibrated.cameras)
    (tmp_path / "broken.toml").write_text("[cam_0]\nname = 'a'\nsize = [16]\n")
    rig.write_text(rig_text([("a", "a"), ("b", "b")], 'calibration = "broken.toml"'))
    with pytest.raises(CalibrationError, match="broken.toml"):
        load_rig(rig)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[cameras]\nname=", "not valid TOML"),
        ("sync_tolerance_ms = 10", "list the cameras as \\[\\[cameras\\]\\]"),
        ('cameras = "a"', "list the cameras as \\[\\[cameras\\]\\]"),
        ('[[cameras]]\nname = "a"\nsource = "webcam:0"\n', "at least 2 cameras"),
        (rig_text([("a", "webcam:0"), ("a", "webcam:1")]), "repeated: a"),
        (rig_text([("a", "webcam:0"), ("", "webcam:1")]), "camera 2 needs a name"),
        (rig_text([("a", "webcam:0"), ("b", "")]), "camera 'b' needs a source"),
        (rig_text([("a", "webcam:0"), ("b", "webcam:1")], "tolerance = 3"), "unknown key\\(s\\) in the top level: tolerance"),
        (rig_text([("a", "webcam:0"), ("b", "webcam:1")], "sync_tolerance_ms = -1"), "sync_tolerance_ms must be a positive number"),
        (rig_text([("a", "webcam:0"), ("b", "webcam:1")], 'clock = "gps"'), "clock must be"),
        ('[[cameras]]\nname = "a"\nsource = "webcam:0"\nfps = 30\n[[cameras]]\nname = "b"\nsource = "webcam:1"\n',
         "unknown key\\(s\\) in camera 1: fps"),
        (rig_text([("a", "webcam:0"), ("b", "rig:other.toml")]), "camera 'b': source 'rig:other.toml' cannot be"),
        (rig_text([("a", "webcam:0"), ("b", "auto")]), "cannot be a rig camera"),
        (rig_text([("a", "synthetic:1:ring:4"), ("b", "webcam:1")]), "whole synthetic rig; pick one view"),
    ],
)
def test_malformed_rig_files(tmp_path: Path, text: str, message: str) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(text)
    with pytest.raises(RigFileError, match=message):
        load_rig(rig)


def test_unknown_sources_name_the_camera(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text([("a", "webcam:0"), ("b", "missing.mp4")]))
    with pytest.raises(DeviceNotFoundError, match="camera 'b'.*no such file or folder"):
        load_rig(rig)
    rig.write_text(rig_text([("a", "webcam:0"), ("b", "synthetic:1:ring:4@9")]))
    with pytest.raises(UnsupportedSourceError, match="camera 'b'.*VIEW in 0..N-1"):
        load_rig(rig)
    with pytest.raises(RigFileError, match="no rig file"):
        load_rig(tmp_path / "absent.toml")


def test_rig_options_ignore_a_single_intrinsics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    (tmp_path / "rig.toml").write_text(rig_text([("a", "a"), ("b", "b")]))
    with caplog.at_level("WARNING", logger="tracker.io.rig_file"):
        device = build_rig_device(load_rig(tmp_path / "rig.toml"),
                                  SourceOptions(intrinsics=Intrinsics(9.0, 9.0, 8.0, 6.0, 16, 12)))  # fmt: skip
    assert "ignoring the given intrinsics" in caplog.text
    with device:
        fs = device.read()
    assert [f.camera.name for f in fs.frames] == ["a", "b"]
    assert all(f.camera.intrinsics.approximate for f in fs.frames)  # uncalibrated: the folder's default


def test_synthetic_four_view_rig_through_sources(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text([(f"cam{v}", f"synthetic:11:ring:4@{v}") for v in range(4)]))
    device = open_source(parse_source(f"rig:{rig}"), SourceOptions(realtime=False))
    try:
        assert isinstance(device, RigDevice) and not device.live and device.name == "rig:rig.toml"
        sets = [device.read() for _ in range(2)]
        stats = device.stats()
    finally:
        device.close()
    scene = sample_scene(11, SceneConfig(num_frames=SYNTHETIC_FRAMES, layout="ring", num_views=4))
    for i, fs in enumerate(sets):
        assert fs.index == i and fs.timestamp == pytest.approx(i / scene.fps)
        assert len(fs.frames) == 4
        for frame, cam in zip(fs.frames, scene.cameras):
            assert frame.camera.name == cam.name and frame.camera.intrinsics == cam.intrinsics
            np.testing.assert_array_equal(frame.camera.extrinsics.R, cam.extrinsics.R)
            np.testing.assert_array_equal(frame.camera.extrinsics.t, cam.extrinsics.t)
            np.testing.assert_array_equal(frame.ground_truth.joints_world, scene.joints_world(i))
            assert frame.image.shape == (480, 640, 3) and frame.timestamp == fs.timestamp
    assert stats.unmatched == (0, 0, 0, 0)
