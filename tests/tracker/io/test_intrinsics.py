"""Calibration files in every supported format, malformed ones, and the field-of-view default."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.core.errors import CalibrationError
from tracker.core.structures import Intrinsics
from tracker.io.intrinsics import load_intrinsics, save_intrinsics_json

CALIB = Intrinsics(612.5, 610.25, 321.0, 238.5, 640, 480, dist=(0.11, -0.25, 0.001, -0.002, 0.07))

ANIPOSE_TOML = """\
[cam_0]
name = "left"
size = [ 640, 480,]
matrix = [ [ 612.5, 0.0, 321.0,], [ 0.0, 610.25, 238.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ 0.11, -0.25, 0.001, -0.002, 0.07,]
rotation = [ 0.0, 0.0, 0.0,]
translation = [ 0.0, 0.0, 0.0,]

[cam_1]
name = "right"
size = [ 1280, 720,]
matrix = [ [ 900.0, 0.0, 640.0,], [ 0.0, 900.0, 360.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ 0.0, 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.1, 0.2, 0.3,]
translation = [ 100.0, 0.0, 0.0,]

[metadata]
adjusted = false
error = 0.31
"""


def write_opencv(path: Path, K: np.ndarray, dist: np.ndarray, size: tuple[int, int] = (640, 480)) -> Path:
    """As OpenCV's calibration sample writes it."""
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", size[0])
    fs.write("image_height", size[1])
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", dist)
    fs.release()
    return path


@pytest.mark.parametrize("intr", [CALIB, Intrinsics.from_fov(1280, 720, 70.0)])
def test_json_round_trip(tmp_path: Path, intr: Intrinsics) -> None:
    save_intrinsics_json(intr, tmp_path / "calib.json")
    assert load_intrinsics(tmp_path / "calib.json") == intr


def test_json_with_K(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"K": CALIB.K.tolist(), "width": 640, "height": 480, "dist": list(CALIB.dist)}))
    assert load_intrinsics(path) == CALIB


def test_json_without_dist_means_no_distortion(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"fx": 500, "fy": 500, "cx": 320, "cy": 240, "width": 640.0, "height": 480}))
    intr = load_intrinsics(path)
    assert intr.dist == (0.0,) * 5 and intr.width == 640 and not intr.approximate


@pytest.mark.parametrize("ext", [".yaml", ".yml", ".xml"])
@pytest.mark.parametrize("dist_shape", [(5, 1), (1, 5), (1, 8)])
def test_opencv_filestorage_round_trip(tmp_path: Path, ext: str, dist_shape: tuple[int, int]) -> None:
    dist = np.arange(1, 1 + dist_shape[0] * dist_shape[1], dtype=np.float64).reshape(dist_shape) / 100
    intr = load_intrinsics(write_opencv(tmp_path / f"cam{ext}", CALIB.K, dist))
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (612.5, 610.25, 321.0, 238.5, 640, 480)
    np.testing.assert_array_equal(intr.dist, dist.ravel())


def test_aniposelib_toml(tmp_path: Path) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(ANIPOSE_TOML)
    assert load_intrinsics(path) == CALIB  # first camera by default
    right = load_intrinsics(path, camera="right")
    assert (right.fx, right.cx, right.width, right.height) == (900.0, 640.0, 1280, 720)
    assert load_intrinsics(path, camera="cam_1") == right
    with pytest.raises(CalibrationError, match=r"no camera 'middle'.*cam_0 \('left'\)"):
        load_intrinsics(path, camera="middle")


def test_fov_default() -> None:
    intr = Intrinsics.from_fov(640, 480, 60.0)
    assert intr.fx == pytest.approx(0.5 * 640 / math.tan(math.radians(30.0)))
    assert intr.fy == intr.fx and (intr.cx, intr.cy) == (320.0, 240.0)
    assert intr.approximate and not CALIB.approximate


def _json(tmp_path: Path, data: object, name: str = "calib.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


GOOD = {"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480}


@pytest.mark.parametrize(
    "data, message",
    [
        ({k: v for k, v in GOOD.items() if k != "fy"}, "calib.json: missing 'fy'"),
        ({k: v for k, v in GOOD.items() if k != "height"}, "missing 'height'"),
        ({**GOOD, "fx": "500"}, "'fx' must be a number"),
        ({**GOOD, "fx": -500.0}, "focal lengths must be positive"),
        ({**GOOD, "fy": 0}, "focal lengths must be positive"),
        ({**GOOD, "width": 0}, "'width' must be a positive whole number"),
        ({**GOOD, "width": 640.5}, "'width' must be a positive whole number"),
        ({**GOOD, "dist": [0.1, 0.2, 0.3]}, "distortion needs 4, 5, 8"),
        ({**GOOD, "approximate": "yes"}, "'approximate' must be true or false"),
        ({"K": [[500, 0, 320], [0, 500, 240]], "width": 640, "height": 480}, "K must be 3x3"),
        ({"K": [[500, 0, 320], [0, 500, 240], [0, 0, 2]], "width": 640, "height": 480}, "K must look like"),
        ({"K": [[500, 0, 320], [0, 500], [0, 0, 1]], "width": 640, "height": 480}, "K must be a 3x3 matrix"),
        ([1, 2, 3], "expected a JSON object"),
    ],
)
def test_malformed_json(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        load_intrinsics(_json(tmp_path, data))


def test_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no such calibration file"):
        load_intrinsics(tmp_path / "missing.json")
    (tmp_path / "calib.txt").write_text("fx 500")
    with pytest.raises(CalibrationError, match=r"calib\.txt: unknown calibration format"):
        load_intrinsics(tmp_path / "calib.txt")
    (tmp_path / "broken.json").write_text("{fx: 500")
    with pytest.raises(CalibrationError, match=r"broken\.json: not valid JSON"):
        load_intrinsics(tmp_path / "broken.json")
    (tmp_path / "broken.toml").write_text("[cam_0\nname=")
    with pytest.raises(CalibrationError, match=r"broken\.toml: not valid TOML"):
        load_intrinsics(tmp_path / "broken.toml")
    (tmp_path / "empty.toml").write_text("[metadata]\nerror = 1.0\n")
    with pytest.raises(CalibrationError, match="no camera table"):
        load_intrinsics(tmp_path / "empty.toml")
    (tmp_path / "fish.toml").write_text(ANIPOSE_TOML.replace('name = "left"', 'name = "left"\nfisheye = true'))
    with pytest.raises(CalibrationError, match="fisheye"):
        load_intrinsics(tmp_path / "fish.toml")
    (tmp_path / "garbage.yaml").write_text("this: [is: not: opencv\n")
    with pytest.raises(CalibrationError, match=r"garbage\.yaml"):
        load_intrinsics(tmp_path / "garbage.yaml")
    with pytest.raises(CalibrationError, match="needs a multi-camera .toml"):
        load_intrinsics(_json(tmp_path, GOOD), camera="left")


def test_opencv_missing_and_bad_keys(tmp_path: Path) -> None:
    fs = cv2.FileStorage(str(tmp_path / "nok.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", CALIB.K)
    fs.release()
    with pytest.raises(CalibrationError, match=r"nok\.yaml: missing 'image_width'"):
        load_intrinsics(tmp_path / "nok.yaml")
    bad = write_opencv(tmp_path / "bad.xml", np.eye(2), np.zeros(5))
    with pytest.raises(CalibrationError, match=r"bad\.xml: K must be 3x3"):
        load_intrinsics(bad)
