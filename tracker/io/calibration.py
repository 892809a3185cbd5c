"""Multi-camera calibration files in the TOML layout aniposelib writes (Anipose, FreeMoCap).

One table per camera (``[cam_0]``, ``[cam_1]``, ...; aniposelib treats every table but
``[metadata]`` as a camera) with:

* ``name``: the camera's name (a string; a whole number is read as its decimal string);
* ``size = [width, height]`` in pixels;
* ``matrix``: the 3x3 camera matrix in pixels (OpenCV convention);
* ``distortions``: OpenCV distortion coefficients (4, 5, 8, 12 or 14 numbers);
* ``rotation``: Rodrigues vector of the **world -> camera** rotation (radians);
* ``translation``: world -> camera translation, ``X_cam = R @ X_world + t``, in the calibration
  board's units (aniposelib) -- see ``units`` below;
* ``fisheye = true`` marks aniposelib's fisheye model, which handtrack does not support.

and an optional ``[metadata]`` table (aniposelib writes ``adjusted`` and ``error``). handtrack
reads ``[metadata] units = "mm" | "cm" | "m"`` for the translation unit; **without it translations
are taken as millimetres** (calibrate aniposelib with the board size in mm to match). Files written
here always say ``units = "mm"``.

Numbers are written with Python's ``repr`` (the shortest text that reads back as the same float64),
so :func:`save_calibration` then :func:`load_calibration` gives back the same intrinsics,
translations and names exactly; rotations pass through the Rodrigues vector and come back equal to
within ~1e-16.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.core.errors import CalibrationError
from tracker.io.toml_writer import toml_value

from tracker.io.intrinsics import build_intrinsics
from tracker.core.structures import Camera, Extrinsics

__all__ = ["UNITS_TO_MM", "load_calibration", "load_camera", "read_metadata", "save_calibration"]

log = logging.getLogger(__name__)

#: Millimetres per unit for ``[metadata] units``.
UNITS_TO_MM: dict[str, float] = {"mm": 1.0, "cm": 10.0, "m": 1000.0}

_METADATA = "metadata"


def load_calibration(path: str | os.PathLike[str]) -> tuple[Camera, ...]:
    """Read every camera of an aniposelib-layout calibration file.

    Args:
        path: the ``.toml`` file.

    Returns:
        The cameras in file order, with intrinsics (pixels) and world -> camera extrinsics
        (translation in mm, converted from ``[metadata] units`` when present).

    Raises:
        CalibrationError: the file is missing or not TOML, has no camera table, or a table misses a
            key / has a wrong shape / non-finite numbers / a fisheye model, or two cameras share a
            name. The message names the file, the table and the key.
    """
    path = Path(path)
    tables, scale = _read(path)
    cameras = tuple(_camera(path, key, table, scale, need_pose=True) for key, table in tables)
    seen: dict[str, str] = {}
    for (key, _), cam in zip(tables, cameras):
        if cam.name in seen:
            raise CalibrationError(f"{path}: [{seen[cam.name]}] and [{key}] have the same name {cam.name!r}; "
                                   "give every camera its own name")  # fmt: skip
        seen[cam.name] = key
    return cameras


def load_camera(path: str | os.PathLike[str], camera: str | None = None, *, need_pose: bool = True) -> Camera:
    """Read one camera of an aniposelib-layout calibration file.

    Args:
        path: the ``.toml`` file.
        camera: the table key (``"cam_1"``) or ``name`` of the camera; None takes the first.
        need_pose: if False, a table without ``rotation`` / ``translation`` gives identity
            extrinsics (for reading intrinsics only).

    Raises:
        CalibrationError: as :func:`load_calibration`, or no camera ``camera`` in the file.
    """
    path = Path(path)
    tables, scale = _read(path)
    if camera is None:
        key, table = tables[0]
        if len(tables) > 1:
            log.info("%s: %d cameras, using [%s] (name %r); pass camera= to choose",
                     path, len(tables), key, table.get("name"))  # fmt: skip
    else:
        matches = [(k, t) for k, t in tables if camera in (k, str(t.get("name")))]
        if not matches:
            names = ", ".join(f"{k} ({t.get('name')!r})" for k, t in tables)
            raise CalibrationError(f"{path}: no camera {camera!r}; the file has {names}")
        key, table = matches[0]
    return _camera(path, key, table, scale, need_pose=need_pose)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``[metadata]`` table of a calibration file ({} when it has none)."""
    path = Path(path)
    meta = _parse(path).get(_METADATA, {})
    return dict(meta) if isinstance(meta, Mapping) else {}


def save_calibration(
    cameras: Sequence[Camera], path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write ``cameras`` as an aniposelib-layout TOML file (tables ``[cam_0]`` ... in order).

    Args:
        cameras: cameras with distinct names; translations in mm.
        path: the file to write (overwritten).
        metadata: extra ``[metadata]`` entries (strings, booleans, numbers, or lists of them), e.g.
            ``{"adjusted": True, "error": 0.4}``. ``units`` is always written as ``"mm"``.

    Raises:
        CalibrationError: no cameras, duplicate names, non-finite values, or metadata that is not
            a plain TOML value.
    """
    path = Path(path)
    if not cameras:
        raise CalibrationError(f"{path}: no cameras to save")
    names = [cam.name for cam in cameras]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CalibrationError(f"{path}: camera names must differ, {duplicates} appear more than once")
    lines: list[str] = []
    for i, cam in enumerate(cameras):
        intr, ext = cam.intrinsics, cam.extrinsics
        R = np.asarray(ext.R, dtype=np.float64)
        rvec = cv2.Rodrigues(R)[0].ravel()
        values: dict[str, Any] = {
            "name": cam.name,
            "size": [int(intr.width), int(intr.height)],
            "matrix": intr.K.tolist(),
            "distortions": [float(c) for c in intr.dist],
            "rotation": [float(v) for v in rvec],
            "translation": [float(v) for v in np.asarray(ext.t, dtype=np.float64)],
        }
        lines.append(f"[cam_{i}]")
        lines += [f"{key} = {_toml_value(value, path, f'[cam_{i}] {key!r}')}" for key, value in values.items()]
        lines.append("")
    meta = dict(metadata or {})
    if meta.get("units", "mm") != "mm":
        log.warning("%s: metadata units %r ignored: translations are written in mm", path, meta["units"])
    meta["units"] = "mm"
    lines.append(f"[{_METADATA}]")
    for key, value in meta.items():
        if not isinstance(key, str) or not key.replace("_", "").replace("-", "").isalnum():
            raise CalibrationError(f"{path}: metadata key {key!r} must be letters, digits, '_' or '-'")
        lines.append(f"{key} = {_toml_value(value, path, f'[metadata] {key!r}')}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- reading -------------------------------------------------------------------------------------


def _parse(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CalibrationError(f"{path}: no such calibration file")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CalibrationError(f"{path}: not valid TOML ({e})") from e


def _read(path: Path) -> tuple[list[tuple[str, Mapping[str, Any]]], float]:
    """The camera tables in file order and the translation scale to mm."""
    data = _parse(path)
    tables = [(k, v) for k, v in data.items() if k != _METADATA]
    for key, table in tables:
        if not isinstance(table, Mapping):
            raise CalibrationError(f"{path}: '{key}' must be a camera table ([{key}]) as aniposelib writes, "
                                   f"got {table!r}")  # fmt: skip
    if not tables:
        raise CalibrationError(f"{path}: no camera table (expected [cam_0] ... as aniposelib writes)")
    meta = data.get(_METADATA, {})
    if not isinstance(meta, Mapping):
        raise CalibrationError(f"{path}: 'metadata' must be a table")
    units = meta.get("units", "mm")
    if units not in UNITS_TO_MM:
        raise CalibrationError(f"{path}: [metadata] 'units' must be one of {sorted(UNITS_TO_MM)}, got {units!r}")
    return tables, UNITS_TO_MM[units]


def _camera(path: Path, key: str, table: Mapping[str, Any], scale: float, need_pose: bool) -> Camera:
    where = f"{path}: [{key}] "
    if table.get("fisheye", False):
        raise CalibrationError(f"{where}is a fisheye camera (fisheye = true); only OpenCV's pinhole model "
                               "is supported: recalibrate without fisheye")  # fmt: skip
    for required in ("name", "size", "matrix"):
        if required not in table:
            raise CalibrationError(f"{where}missing '{required}'")
    name = table["name"]
    if isinstance(name, bool) or not isinstance(name, (str, int)) or str(name) == "":
        raise CalibrationError(f"{where}'name' must be a non-empty string, got {name!r}")
    size = table["size"]
    if not (isinstance(size, list) and len(size) == 2):
        raise CalibrationError(f"{where}'size' must be [width, height], got {size!r}")
    intr = build_intrinsics(path, table["matrix"], (size[0], size[1]), table.get("distortions"), where=f"[{key}] ")
    if not need_pose and "rotation" not in table and "translation" not in table:
        return Camera(str(name), intr)
    rvec = _vector(table, "rotation", where)
    t = _vector(table, "translation", where) * scale
    R, _ = cv2.Rodrigues(rvec)
    return Camera(str(name), intr, Extrinsics(R=R, t=t))


def _vector(table: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    if key not in table:
        raise CalibrationError(f"{where}missing '{key}'")
    raw = table[key]
    # aniposelib writes plain lists; some tools write a column vector [[x], [y], [z]].
    ok = isinstance(raw, list) and all(
        (isinstance(v, (int, float)) and not isinstance(v, bool))
        or (isinstance(v, list) and len(v) == 1 and isinstance(v[0], (int, float)) and not isinstance(v[0], bool))
        for v in raw
    )
    if not ok:
        raise CalibrationError(f"{where}'{key}' must be a list of 3 numbers, got {raw!r}")
    vec = np.asarray(raw, dtype=np.float64).ravel()
    if vec.shape != (3,):
        raise CalibrationError(f"{where}'{key}' must have 3 numbers, got {vec.size}")
    if not np.all(np.isfinite(vec)):
        raise CalibrationError(f"{where}'{key}' has non-finite numbers {vec.tolist()}")
    return vec


# --- writing -------------------------------------------------------------------------------------


def _toml_value(value: Any, path: Path, what: str) -> str:
    """``value`` as TOML text (:func:`tracker.io.toml_writer.toml_value`), errors named after the file."""
    try:
        return toml_value(value)
    except ValueError as exc:
        raise CalibrationError(f"{path}: {what} has {str(exc)[0].lower()}{str(exc)[1:]}; fix the calibration first") from exc
