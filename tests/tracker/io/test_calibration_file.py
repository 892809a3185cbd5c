"""aniposelib-layout calibration TOML: round trip, files as aniposelib writes them, malformed files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.core.errors import CalibrationError
from tracker.core.structures import Camera, Extrinsics, Intrinsics
from tracker.io.calibration import (
    load_calibration,
    load_camera,
    read_metadata,
    save_calibration,
)
from tracker.io.intrinsics import load_intrinsics

# As aniposelib's CameraGroup.dump writes it (python `toml` package: "[ 1, 2,]" lists, blank line between tables).
ANIPOSE = """\
[cam_0]
name = "A"
size = [ 1280, 1024,]
matrix = [ [ 1494.4113767026062, 0.0, 639.5,], [ 0.0, 1494.4113767026062, 511.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.14230542573935553, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 0.0, 0.0,]
translation = [ 0.0, 0.0, 0.0,]

[cam_1]
name = "B"
size = [ 1280, 1024,]
matrix = [ [ 1481.6713163367373, 0.0, 639.5,], [ 0.0, 1481.6713163367373, 511.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.1360380396694206, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.0315390541383357, -1.1297584587655584, 0.10262617434048654,]
translation = [ 351.3316357101838, -17.03547469520815, 205.64613830447606,]

[cam_2]
name = "C"
size = [ 1280, 1024,]
matrix = [ [ 1512.1, 0.0, 640.2,], [ 0.0, 1510.9, 512.7,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.15, 0.05, 0.001, -0.0005, 0.0,]
rotation = [ -0.02, 1.05, -0.07,]
translation = [ -330.5, 12.25, 240.0,]

[metadata]
adjusted = true
error = 0.4
"""


def _rig(rng: np.random.Generator, n: int = 3) -> tuple[Camera, ...]:
    cams = []
    for i in range(n):
        intr = Intrinsics(*rng.uniform(400, 1500, 2), *rng.uniform(200, 700, 2), 1280, 720,
                          dist=tuple(rng.normal(0, 0.1, 5)))  # fmt: skip
        R, _ = cv2.Rodrigues(rng.normal(0, 1.0, 3))
        cams.append(Camera(f"cam-{i}", intr, Extrinsics(R=R, t=rng.normal(0, 500, 3))))
    return tuple(cams)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    cams = _rig(np.random.default_rng(3))
    path = tmp_path / "calibration.toml"
    save_calibration(cams, path, metadata={"adjusted": True, "error": 0.123456789, "board": "7x5 charuco"})
    loaded = load_calibration(path)
    assert [c.name for c in loaded] == [c.name for c in cams]
    for a, b in zip(cams, loaded):
        assert a.intrinsics == b.intrinsics  # K, size and distortion bit for bit
        np.testing.assert_array_equal(a.extrinsics.t, b.extrinsics.t)
        np.testing.assert_allclose(a.extrinsics.R, b.extrinsics.R, rtol=0, atol=1e-15)
    assert read_metadata(path) == {"adjusted": True, "error": 0.123456789, "board": "7x5 charuco", "units": "mm"}
    # A second pass changes nothing but the Rodrigues round off of the rotation.
    save_calibration(loaded, tmp_path / "again.toml", metadata=read_metadata(path))
    again = load_calibration(tmp_path / "again.toml")
    assert all(a.intrinsics == b.intrinsics and np.array_equal(a.extrinsics.t, b.extrinsics.t)
               for a, b in zip(loaded, again))  # fmt: skip


def test_written_file_is_plain_toml_in_aniposelib_layout(tmp_path: Path) -> None:
    cams = _rig(np.random.default_rng(4), 2)
    save_calibration(cams, tmp_path / "c.toml")
    data = tomllib.loads((tmp_path / "c.toml").read_text())
    assert list(data) == ["cam_0", "cam_1", "metadata"]
    assert set(data["cam_1"]) == {"name", "size", "matrix", "distortions", "rotation", "translation"}
    np.testing.assert_allclose(cv2.Rodrigues(np.array(data["cam_1"]["rotation"]))[0], cams[1].extrinsics.R, atol=1e-15)
    assert data["cam_1"]["size"] == [1280, 720] and data["metadata"] == {"units": "mm"}


def test_reads_aniposelib_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(ANIPOSE)
    cams = load_calibration(path)
    assert [c.name for c in cams] == ["A", "B", "C"]
    b = cams[1]
    assert (b.intrinsics.fx, b.intrinsics.cx, b.intrinsics.width, b.intrinsics.height) == (
        1481.6713163367373, 639.5, 1280, 1024)  # fmt: skip
    assert b.intrinsics.dist == (-0.1360380396694206, 0.0, 0.0, 0.0, 0.0)
    R_expected, _ = cv2.Rodrigues(np.array([0.0315390541383357, -1.1297584587655584, 0.10262617434048654]))
    np.testing.assert_array_equal(b.extrinsics.R, R_expected)
    np.testing.assert_array_equal(b.extrinsics.t, [351.3316357101838, -17.03547469520815, 205.64613830447606])
    np.testing.assert_array_equal(cams[0].extrinsics.R, np.eye(3))
    assert cams[2].intrinsics.dist == (-0.15, 0.05, 0.001, -0.0005, 0.0)
    assert read_metadata(path) == {"adjusted": True, "error": 0.4}
    # The single-camera loader goes through the same parser.
    assert load_intrinsics(path, camera="B") == b.intrinsics
    one = load_camera(path, "cam_2")
    assert one.name == "C" and one.intrinsics == cams[2].intrinsics
    np.testing.assert_array_equal(one.extrinsics.R, cams[2].extrinsics.R)


@pytest.mark.parametrize("units, scale", [("m", 1000.0), ("cm", 10.0), ("mm", 1.0)])
def test_translation_units(tmp_path: Path, units: str, scale: float) -> None:
    path = tmp_path / "c.toml"
    path.write_text(ANIPOSE.replace("error = 0.4", f'error = 0.4\nunits = "{units}"'))
    cams = load_calibration(path)
    np.testing.assert_allclose(cams[2].extrinsics.t, np.array([-330.5, 12.25, 240.0]) * scale)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in ANIPOSE
    path = tmp_path / "bad.toml"
    path.write_text(ANIPOSE.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('translation = [ 351.3316357101838, -17.03547469520815, 205.64613830447606,]\n', "",
         r"bad\.toml: \[cam_1\] missing 'translation'"),
        ('rotation = [ 0.0315390541383357, -1.1297584587655584, 0.10262617434048654,]\n', "",
         r"\[cam_1\] missing 'rotation'"),
        ('name = "B"\n', "", r"\[cam_1\] missing 'name'"),
        ("size = [ 1280, 1024,]\nmatrix = [ [ 1481", "matrix = [ [ 1481", r"\[cam_1\] missing 'size'"),
        ("rotation = [ -0.02, 1.05, -0.07,]", "rotation = [ -0.02, 1.05,]", r"\[cam_2\] 'rotation' must have 3"),
        ("translation = [ -330.5, 12.25, 240.0,]", "translation = [ -330.5, nan, 240.0,]",
         r"\[cam_2\] 'translation' has non-finite"),
        ("translation = [ -330.5, 12.25, 240.0,]", 'translation = "far"', r"\[cam_2\] 'translation' must be a list"),
        ("[ 0.0, 1510.9, 512.7,], [ 0.0, 0.0, 1.0,],]", "[ 0.0, 1510.9, 512.7,],]", r"\[cam_2\] K must be 3x3"),
        ("[ 1512.1, 0.0, 640.2,]", "[ inf, 0.0, 640.2,]", r"\[cam_2\] K has non-finite"),
        ("size = [ 1280, 1024,]", "size = [ 1280,]", r"\[cam_0\] 'size' must be \[width, height\]"),
        ("distortions = [ -0.15, 0.05, 0.001, -0.0005, 0.0,]", "distortions = [ -0.15, 0.05, 0.001,]",
         r"\[cam_2\] distortion needs"),
        ('name = "C"', 'name = "B"', r"\[cam_1\] and \[cam_2\] have the same name 'B'"),
        ('name = "C"', 'name = "C"\nfisheye = true', r"\[cam_2\] is a fisheye camera"),
        ("error = 0.4", 'error = 0.4\nunits = "inch"', r"'units' must be one of"),
        ("[cam_0]", "cam_0 = 3\n[cam_9]", r"'cam_0' must be a camera table"),
        ('name = "A"', "name = [", r"bad\.toml: not valid TOML"),
    ],
)
def test_malformed(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        load_calibration(_broken(tmp_path, old, new))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no such calibration file"):
        load_calibration(tmp_path / "nope.toml")
    (tmp_path / "meta.toml").write_text("[metadata]\nerror = 1.0\n")
    with pytest.raises(CalibrationError, match="no camera table"):
        load_calibration(tmp_path / "meta.toml")


def test_intrinsics_only_table_reads_for_intrinsics_but_not_as_a_rig(tmp_path: Path) -> None:
    path = tmp_path / "intr.toml"
    path.write_text('[cam_0]\nname = "x"\nsize = [640, 480]\nmatrix = [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], '
                    "[0.0, 0.0, 1.0]]\n")  # fmt: skip
    assert load_intrinsics(path).fx == 500.0
    with pytest.raises(CalibrationError, match=r"\[cam_0\] missing 'rotation'"):
        load_calibration(path)


def test_save_errors(tmp_path: Path) -> None:
    cams = _rig(np.random.default_rng(5), 2)
    with pytest.raises(CalibrationError, match="no cameras"):
        save_calibration([], tmp_path / "a.toml")
    with pytest.raises(CalibrationError, match=r"\['cam-0'\] appear more than once"):
        save_calibration([cams[0], cams[0]], tmp_path / "a.toml")
    bad = Camera("x", cams[0].intrinsics, Extrinsics(R=np.eye(3), t=np.array([0.0, np.nan, 1.0])))
    with pytest.raises(CalibrationError, match=r"\[cam_0\] 'translation' has a non-finite"):
        save_calibration([bad], tmp_path / "a.toml")
    with pytest.raises(CalibrationError, match="is not a TOML value"):
        save_calibration(cams, tmp_path / "a.toml", metadata={"when": object()})


def test_names_with_quotes_and_unicode_survive(tmp_path: Path) -> None:
    cams = _rig(np.random.default_rng(6), 2)
    odd = (Camera('left "A" \\ cam', cams[0].intrinsics, cams[0].extrinsics),
           Camera("caméra\tdroite", cams[1].intrinsics, cams[1].extrinsics))  # fmt: skip
    save_calibration(odd, tmp_path / "n.toml")
    assert [c.name for c in load_calibration(tmp_path / "n.toml")] == [c.name for c in odd]
