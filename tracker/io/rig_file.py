"""Rig files: which cameras make up a multi-camera rig, how they are calibrated and synchronized.

A rig file is TOML. Paths in it (sources, calibration) are relative to the rig file's folder::

    # desk_rig.toml
    calibration = "calibration.toml"   # optional: aniposelib-layout calibration (see tracker.io.calibration)
    sync_tolerance_ms = 15.0           # optional: frames of one set lie within this (default 15 ms,
                                       # about half a frame at 30 FPS)
    drift_warn_ms = 5.0                # optional: warn when a camera's clock offset moves this far
    clock = "auto"                     # optional: "auto" | "device" | "arrival" (see devices/rig.py)

    [[cameras]]                        # one table per camera, in rig order
    name = "left"                      # unique; matched by name to a camera of the calibration
    source = "webcam:0"                # any --source: webcam:N, realsense:SERIAL, a video file,
                                       # an image folder, a .db3/.bag recording, synthetic:SEED:ring:N@VIEW
    [[cameras]]
    name = "right"
    source = "realsense:123456789012"

    [[cameras]]
    name = "top"
    source = "takes/top.mp4"
    offset_ms = -40.0                  # optional: added to this camera's timestamps (recordings
                                       # started at different times)

Four views of one synthetic rig reproduce the multi-view data engine (no calibration needed: each
synthetic view brings its own camera with extrinsics)::

    [[cameras]]
    name = "cam0"
    source = "synthetic:7:ring:4@0"
    # ... cam1 .. cam3 with @1 .. @3

The calibration (``calibration = ...``) is read by :func:`tracker.io.calibration.load_calibration`; every
rig camera must appear in it under its ``name`` (extra calibrated cameras are ignored). Then each
frame of the rig carries its calibrated :class:`~tracker.core.structures.Camera` (extrinsics world -> camera,
mm). Without a calibration, frames keep their source's camera (approximate intrinsics for
uncalibrated webcams and videos, identity extrinsics), which is enough to capture but not to
triangulate.

Open a rig with ``--source rig:RIG.toml`` (:mod:`tracker.io.sources`), or :func:`load_rig` +
:func:`build_rig_device`.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.core.errors import CalibrationError, DeviceError, DeviceNotFoundError, UnsupportedSourceError
from devices.rig import Clock
from tracker.core.structures import Camera

if TYPE_CHECKING:
    from devices.rig import RigDevice
    from tracker.io.sources import SourceOptions

__all__ = ["RigFileError", "RigCamera", "RigSpec", "load_rig", "require_calibration", "build_rig_device", "DEFAULT_SYNC_TOLERANCE_MS",
           "DEFAULT_DRIFT_WARN_MS"]

log = logging.getLogger(__name__)

DEFAULT_SYNC_TOLERANCE_MS = 15.0
DEFAULT_DRIFT_WARN_MS = 5.0

_TOP_KEYS = {"calibration", "sync_tolerance_ms", "drift_warn_ms", "clock", "cameras"}
_CAMERA_KEYS = {"name", "source", "offset_ms"}
#: Source prefixes that are not paths (everything else is a file or folder, relative to the rig file).
_KEYWORDS = ("webcam", "synthetic", "realsense", "demo")


class RigFileError(DeviceError, ValueError):
    """A rig file is missing, not valid TOML, or its content is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class RigCamera:
    """One camera of a rig file.

    Attributes:
        name: unique name in the rig (and in the calibration).
        source: a ``--source`` string; file and folder paths already resolved against the rig file's folder.
        offset_ms: added to this camera's timestamps before matching, milliseconds.
        camera: its calibrated camera (intrinsics in pixels, extrinsics world -> camera in mm) when
            the rig has a calibration, else None.
    """

    name: str
    source: str
    offset_ms: float = 0.0
    camera: Camera | None = None


@dataclass(frozen=True)
class RigSpec:
    """A parsed rig file.

    Attributes:
        cameras: the cameras in rig order.
        calibration: the calibration file (absolute), or None.
        sync_tolerance_ms: frames of one set lie within this many milliseconds.
        drift_warn_ms: warn when a camera's clock offset moves this far, milliseconds.
        clock: ``auto`` / ``device`` / ``arrival`` (see :mod:`devices.rig`).
        path: the rig file.
    """

    cameras: tuple[RigCamera, ...]
    calibration: Path | None
    sync_tolerance_ms: float = DEFAULT_SYNC_TOLERANCE_MS
    drift_warn_ms: float = DEFAULT_DRIFT_WARN_MS
    clock: Clock = "auto"
    path: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)


def load_rig(path: str | os.PathLike[str], *, calibration: bool = True) -> RigSpec:
    """Read and check a rig file (format in the module docstring); load its calibration, if any.

    Every camera's source is parsed as ``--source`` would parse it (files and folders must exist).

    Args:
        path: the rig file.
        calibration: False skips reading the calibration file (it may not exist yet, e.g. when the
            rig is being calibrated): ``RigSpec.calibration`` still names it, but every
            ``RigCamera.camera`` is None.

    Raises:
        RigFileError: no such file, invalid TOML, unknown / missing / ill-typed keys, fewer than two
            cameras, duplicate names, or a nested ``rig:`` / ``auto`` source.
        UnsupportedSourceError, DeviceNotFoundError: a camera's source is not one handtrack reads or
            its file / folder does not exist (the message names the camera).
        CalibrationError: the calibration cannot be read, or lacks a rig camera (named).
    """
    from tracker.io.sources import parse_source

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise RigFileError(f"no rig file at {path}: check the path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RigFileError(f"{path} is not valid TOML: {exc}") from exc
    base = path.parent
    _no_unknown(path, "the top level", data, _TOP_KEYS)
    tolerance = _positive(path, data, "sync_tolerance_ms", DEFAULT_SYNC_TOLERANCE_MS)
    drift = _positive(path, data, "drift_warn_ms", DEFAULT_DRIFT_WARN_MS)
    clock = data.get("clock", "auto")
    if clock not in ("auto", "device", "arrival"):
        raise RigFileError(f"{path}: clock must be \"auto\", \"device\" or \"arrival\", got {clock!r}")
    tables = data.get("cameras")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RigFileError(f"{path}: list the cameras as [[cameras]] tables with name and source "
                           "(example in tracker/rig.py)")  # fmt: skip
    if len(tables) < 2:
        raise RigFileError(f"{path}: a rig needs at least 2 cameras, got {len(tables)} (for one camera use its "
                           "--source directly)")  # fmt: skip
    cameras = []
    for i, table in enumerate(tables):
        where = f"camera {i + 1}"
        _no_unknown(path, where, table, _CAMERA_KEYS)
        name, source = table.get("name"), table.get("source")
        if not isinstance(name, str) or not name.strip():
            raise RigFileError(f"{path}: {where} needs a name = \"...\" (a non-empty string)")
        if not isinstance(source, str) or not source.strip():
            raise RigFileError(f"{path}: camera {name!r} needs a source = \"...\" (webcam:N, realsense:SERIAL, "
                               "a video file, an image folder, a recording, synthetic:SEED:ring:N@VIEW)")  # fmt: skip
        offset = table.get("offset_ms", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
            raise RigFileError(f"{path}: camera {name!r}: offset_ms must be a number of milliseconds, got {offset!r}")
        resolved = _resolve_source(source.strip(), base)
        low = resolved.lower()
        if low in ("", "auto") or low.startswith("rig:"):
            raise RigFileError(f"{path}: camera {name!r}: source {source!r} cannot be a rig camera; name one camera "
                               "or file (webcam:N, realsense:SERIAL, a file or folder, synthetic:...@VIEW)")  # fmt: skip
        try:
            spec = parse_source(resolved)
        except (UnsupportedSourceError, DeviceNotFoundError) as exc:
            raise type(exc)(f"{path}: camera {name!r}: {exc}") from exc
        whole_rig = spec.kind == "synthetic" and isinstance(spec.target, tuple) and spec.target[1] != "single"
        if whole_rig and spec.view is None:
            raise RigFileError(f"{path}: camera {name!r}: {source!r} is a whole synthetic rig; pick one view "
                               f"with @VIEW, e.g. {source}@0")  # fmt: skip
        cameras.append(RigCamera(name.strip(), resolved, float(offset)))
    names = [c.name for c in cameras]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RigFileError(f"{path}: camera names must be unique; repeated: {', '.join(duplicates)}")
    read_calibration = calibration
    calibration = data.get("calibration")
    calib_path: Path | None = None
    if calibration is not None:
        if not isinstance(calibration, str) or not calibration.strip():
            raise RigFileError(f"{path}: calibration must be the path of a calibration TOML file")
        calib_path = (base / Path(calibration).expanduser()).resolve()
        if read_calibration:
            cameras = list(_with_calibration(path, calib_path, cameras))
    return RigSpec(tuple(cameras), calib_path, tolerance, drift, clock, path)


def build_rig_device(spec: RigSpec, options: SourceOptions | None = None) -> RigDevice:
    """The (unopened) :class:`devices.rig.RigDevice` for ``spec``.

    Args:
        spec: the rig.
        options: how to open each camera (realtime / loop for playback; requested webcam and
            RealSense mode). ``options.intrinsics`` does not apply to a rig (each camera has its own
            calibration) and is ignored with a warning.

    Raises:
        RigFileError, DeviceError subclasses: a camera's device cannot be built (named).
    """
    from dataclasses import replace

    from devices.rig import RigDevice, RigSync, RigView
    from tracker.io.sources import SourceOptions, build_device, parse_source

    options = options if options is not None else SourceOptions()
    if options.intrinsics is not None:
        log.warning("rig %s: ignoring the given intrinsics; each rig camera uses its calibration", spec.path)
        options = replace(options, intrinsics=None)
    views = []
    for cam in spec.cameras:
        device = build_device(parse_source(cam.source), options)
        views.append(RigView(cam.name, device, cam.camera, cam.offset_ms))
    sync = RigSync(tolerance_ms=spec.sync_tolerance_ms, drift_warn_ms=spec.drift_warn_ms, clock=spec.clock)
    name = f"rig:{spec.path.name}" if spec.path is not None else "rig"
    return RigDevice(views, sync, name)


def _with_calibration(path: Path, calib_path: Path, cameras: list[RigCamera]) -> tuple[RigCamera, ...]:
    from dataclasses import replace

    from tracker.io.calibration import load_calibration

    if not calib_path.is_file():
        raise CalibrationError(f"{path}: no calibration file at {calib_path}: check the calibration = path, or "
                               f"calibrate the rig first (python -m tracker.calibration --rig {path})")  # fmt: skip
    calibrated = {c.name: c for c in load_calibration(calib_path)}
    missing = [c.name for c in cameras if c.name not in calibrated]
    if missing:
        raise CalibrationError(
            f"{path}: camera(s) {', '.join(repr(n) for n in missing)} not in the calibration {calib_path} "
            f"(it has {', '.join(repr(n) for n in calibrated) or 'no cameras'}): rename the rig camera to match "
            "or recalibrate with it"
        )
    extra = sorted(set(calibrated) - {c.name for c in cameras})
    if extra:
        log.info("%s: calibrated cameras not in the rig, ignored: %s", path, ", ".join(extra))
    return tuple(replace(c, camera=calibrated[c.name]) for c in cameras)


def _resolve_source(source: str, base: Path) -> str:
    """``source`` with a relative file / folder path made absolute against ``base``."""
    head = source.split(":", 1)[0].split("@", 1)[0].lower()
    if head in _KEYWORDS or head in ("auto", "rig"):
        return source
    candidate = Path(source).expanduser()
    return str(candidate if candidate.is_absolute() else (base / candidate))


def _no_unknown(path: Path, where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RigFileError(f"{path}: unknown key(s) in {where}: {', '.join(unknown)} (allowed: "
                           f"{', '.join(sorted(allowed))})")  # fmt: skip


def _positive(path: Path, data: dict[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise RigFileError(f"{path}: {key} must be a positive number of milliseconds, got {value!r}")
    return float(value)


def require_calibration(path: str | os.PathLike[str]) -> RigSpec:
    """The rig of ``path``, checked to be triangulable: it has a calibration, or all its cameras
    bring their own extrinsics (only synthetic views do).

    Raises:
        CalibrationError: a rig of real cameras without a ``calibration = "..."`` file (it could
            capture but not triangulate); the message says how to calibrate it.
        RigFileError: the rig file itself is wrong.
    """
    rig = load_rig(path)
    if rig.calibration is None and not all(c.source.lower().startswith("synthetic") for c in rig.cameras):
        raise CalibrationError(f"rig {path} has no calibration = \"...\" file, so its cameras' positions are "
                               f"unknown: calibrate it first (python -m tracker.calibration --rig {path}, see README)")
    return rig
