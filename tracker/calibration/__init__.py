"""Multi-camera ChArUco calibration: intrinsics per camera, extrinsics by pairwise poses + bundle adjustment.

The modules, in the order a calibration runs them:

* :mod:`tracker.calibration.board`: the board (:class:`BoardConfig`, a printable image of it) and its
  corners found in images (:class:`BoardDetector`, :func:`detect_views`);
* :mod:`tracker.calibration.initial`: per-camera intrinsics, board poses per view (PnP) and the initial
  extrinsics, chained from robust pairwise relative poses along a maximum-overlap spanning tree;
* :mod:`tracker.calibration.bundle`: bundle adjustment of everything (Levenberg-Marquardt, Huber loss,
  board poses eliminated by the Schur complement);
* :mod:`tracker.calibration.solve`: :func:`calibrate_cameras` / :func:`calibrate_from_images`, their
  :class:`CalibrationOptions` and :class:`CalibrationResult`;
* :mod:`tracker.calibration.cli`: the command line, ``python -m tracker.calibration --help``.

Units and frames: board and world coordinates in mm, world = the reference camera's frame (camera 0
by default), extrinsics world -> camera as in :class:`tracker.core.structures.Extrinsics`, pixels in
OpenCV's convention. Failures raise :class:`tracker.core.errors.CalibrationError`.

The public names below are imported lazily (on first use), so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracker.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tracker.calibration.board import BoardConfig, BoardDetection, BoardDetector, detect_views
    from tracker.calibration.initial import DistortionModel
    from tracker.calibration.solve import (
        CalibrationOptions,
        CalibrationResult,
        CameraReport,
        calibrate_cameras,
        calibrate_from_images,
    )

__all__ = [
    "BoardConfig",
    "BoardDetection",
    "BoardDetector",
    "CalibrationOptions",
    "CalibrationResult",
    "CameraReport",
    "DistortionModel",
    "calibrate_cameras",
    "calibrate_from_images",
    "detect_views",
]

_HOME = {
    "BoardConfig": "tracker.calibration.board",
    "BoardDetection": "tracker.calibration.board",
    "BoardDetector": "tracker.calibration.board",
    "detect_views": "tracker.calibration.board",
    "DistortionModel": "tracker.calibration.initial",
    "CalibrationOptions": "tracker.calibration.solve",
    "CalibrationResult": "tracker.calibration.solve",
    "CameraReport": "tracker.calibration.solve",
    "calibrate_cameras": "tracker.calibration.solve",
    "calibrate_from_images": "tracker.calibration.solve",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
