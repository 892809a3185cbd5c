"""Loading camera intrinsics from calibration files, and saving them as JSON.

Formats read by :func:`load_intrinsics`, chosen by extension:

* ``.json``: ``{"fx", "fy", "cx", "cy", "width", "height", "dist"?}`` or
  ``{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "width", "height", "dist"?}`` (what
  :func:`save_intrinsics_json` writes);
* ``.yaml`` / ``.yml`` / ``.xml``: OpenCV ``FileStorage`` with ``camera_matrix``,
  ``distortion_coefficients``, ``image_width``, ``image_height`` (OpenCV's calibration sample);
* ``.toml``: aniposelib calibration, one ``[cam_N]`` table per camera with ``name``,
  ``size = [width, height]``, ``matrix`` (3x3) and ``distortions`` (read by :mod:`tracker.io.calibration`,
  which also reads the extrinsics).

Focal lengths and principal point are pixels; distortion follows OpenCV's model.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.core.errors import CalibrationError
from tracker.core.structures import Intrinsics

__all__ = ["build_intrinsics", "load_intrinsics", "save_intrinsics_json"]

log = logging.getLogger(__name__)

_DIST_LENGTHS = (4, 5, 8, 12, 14)


def load_intrinsics(path: str | os.PathLike[str], camera: str | None = None) -> Intrinsics:
    """Read the intrinsics in a calibration file.

    Args:
        path: a ``.json``, ``.yaml``/``.yml``/``.xml`` (OpenCV FileStorage) or ``.toml``
            (aniposelib) file.
        camera: for a TOML file with several cameras, the table key (``"cam_1"``) or ``name`` of the
            one to load; None takes the first.

    Returns:
        The intrinsics (``approximate`` False unless a JSON file says otherwise).

    Raises:
        CalibrationError: the file does not exist, has another extension, or misses / has
            invalid values (non-3x3 matrix, non-positive focal lengths, bad distortion length).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise CalibrationError(f"{path}: unknown calibration format '{suffix}': use .json, .yaml/.yml/.xml "
                               "(OpenCV FileStorage) or .toml (aniposelib)")  # fmt: skip
    if not path.is_file():
        raise CalibrationError(f"{path}: no such calibration file")
    if camera is not None and suffix != ".toml":
        raise CalibrationError(f"{path}: choosing a camera ({camera!r}) needs a multi-camera .toml file")
    return _LOADERS[suffix](path, camera)


def save_intrinsics_json(intrinsics: Intrinsics, path: str | os.PathLike[str]) -> None:
    """Write ``intrinsics`` as JSON that :func:`load_intrinsics` reads back unchanged."""
    data = {
        "fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy,
        "width": intrinsics.width, "height": intrinsics.height,
        "dist": list(intrinsics.dist), "approximate": intrinsics.approximate,
    }  # fmt: skip
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _load_json(path: Path, camera: str | None) -> Intrinsics:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CalibrationError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, Mapping):
        raise CalibrationError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "K" in data:
        K = data["K"]
    else:
        fx, fy, cx, cy = (_number(data, key, path) for key in ("fx", "fy", "cx", "cy"))
        K = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
    approximate = data.get("approximate", False)
    if not isinstance(approximate, bool):
        raise CalibrationError(f"{path}: 'approximate' must be true or false, got {approximate!r}")
    size = (_require(data, "width", path), _require(data, "height", path))
    return build_intrinsics(path, K, size, data.get("dist"), approximate)


def _load_opencv(path: Path, camera: str | None) -> Intrinsics:
    fs = cv2.FileStorage()  # open() rather than the constructor: its parse errors arrive as cv2.error
    try:
        try:
            opened = fs.open(str(path), cv2.FILE_STORAGE_READ)
        except cv2.error as e:
            detail = str(e).strip().splitlines()[-1].split("error: ", 1)[-1]
            raise CalibrationError(f"{path}: not a readable OpenCV FileStorage file ({detail})") from e
        if not opened:
            raise CalibrationError(f"{path}: not a readable OpenCV FileStorage file")

        def node(key: str) -> cv2.FileNode:
            n = fs.getNode(key)
            if n.empty() or n.isNone():
                raise CalibrationError(f"{path}: missing '{key}'")
            return n

        K = node("camera_matrix").mat()
        if K is None:
            raise CalibrationError(f"{path}: 'camera_matrix' is not a matrix")
        size = (node("image_width").real(), node("image_height").real())
        dist_node = fs.getNode("distortion_coefficients")
        dist = None if dist_node.empty() or dist_node.isNone() else dist_node.mat()
        return build_intrinsics(path, K, size, dist)
    finally:
        fs.release()


def _load_toml(path: Path, camera: str | None) -> Intrinsics:
    # One aniposelib parser for the whole project: tracker.io.calibration (imported here because it
    # imports this module for CalibrationError and build_intrinsics).
    from tracker.io.calibration import load_camera

    return load_camera(path, camera, need_pose=False).intrinsics


_LOADERS = {
    ".json": _load_json, ".toml": _load_toml, ".yaml": _load_opencv, ".yml": _load_opencv, ".xml": _load_opencv,
}  # fmt: skip


def _require(data: Mapping[str, Any], key: str, path: Path, where: str = "") -> Any:
    if key not in data:
        raise CalibrationError(f"{path}: {where}missing '{key}'")
    return data[key]


def _number(data: Mapping[str, Any], key: str, path: Path) -> float:
    value = _require(data, key, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalibrationError(f"{path}: '{key}' must be a number, got {value!r}")
    return float(value)


def build_intrinsics(
    path: Path, K: Any, size: tuple[Any, Any], dist: Any, approximate: bool = False, where: str = ""
) -> Intrinsics:
    """Validate the raw values read from ``path`` and make the :class:`Intrinsics`.

    Args:
        path: the file the values come from (named in error messages).
        K: the 3x3 camera matrix in pixels (nested lists or an array).
        size: ``(width, height)`` in pixels.
        dist: OpenCV distortion coefficients, or None / empty for none.
        approximate: the ``approximate`` flag of the result.
        where: prefix naming the part of the file (``"[cam_0] "``) in error messages.

    Raises:
        CalibrationError: the values are malformed; the message names the file (and ``where``).
    """
    where = f"{path}: {where}"
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CalibrationError(f"{where}K must be a 3x3 matrix of numbers ({e})") from e
    if K.shape != (3, 3):
        raise CalibrationError(f"{where}K must be 3x3, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise CalibrationError(f"{where}K has non-finite entries")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
        raise CalibrationError(f"{where}K must look like [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationError(f"{where}focal lengths must be positive pixels, got fx={K[0, 0]}, fy={K[1, 1]}")
    if K[0, 1] != 0.0:
        log.warning("%sskew K[0, 1] = %g is ignored", where, K[0, 1])
    width, height = (_pixels(v, name, where) for v, name in zip(size, ("width", "height")))
    if dist is None:
        coeffs: tuple[float, ...] = (0.0,) * 5
    else:
        try:
            flat = np.asarray(dist, dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise CalibrationError(f"{where}distortion must be a list of numbers ({e})") from e
        if flat.size == 0:
            flat = np.zeros(5)
        if flat.size not in _DIST_LENGTHS or not np.all(np.isfinite(flat)):
            lengths = ", ".join(map(str, _DIST_LENGTHS))
            raise CalibrationError(f"{where}distortion needs {lengths} finite coefficients, got {flat.tolist()}")
        coeffs = tuple(float(c) for c in flat)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    return Intrinsics(fx, fy, cx, cy, width, height, coeffs, approximate)


def _pixels(value: Any, name: str, where: str) -> int:
    """A positive whole number of pixels (``640`` or ``640.0``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and value == int(value) and value > 0):
        raise CalibrationError(f"{where}'{name}' must be a positive whole number of pixels, got {value!r}")
    return int(value)
