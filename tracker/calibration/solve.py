"""A whole rig calibration from board detections: options, per-camera reports, and the steps in order.

:func:`calibrate_cameras` runs, per camera, the intrinsics (or keeps given ones) and the board pose of
every view (:mod:`tracker.calibration.initial`), checks that the cameras are linked by views shared in
time, chains the initial extrinsics from the reference camera, and refines everything by bundle
adjustment (:mod:`tracker.calibration.bundle`). :func:`calibrate_from_images` detects the board first
(:mod:`tracker.calibration.board`).

Frames are matched by index: frame ``f`` of every camera must be taken at the same moment (hardware
sync, or a board held still). Conventions: pixels in OpenCV's convention (integer coordinates at pixel
centres), board and world coordinates in **mm**, world = the reference camera's frame (camera 0 by
default), extrinsics world -> camera as in :class:`tracker.core.structures.Extrinsics`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tracker.calibration.board import BoardConfig, BoardDetection, BoardDetector, detect_views
from tracker.calibration.bundle import BundleAdjuster
from tracker.calibration.initial import (
    FREE_DISTORTION,
    DistortionModel,
    check_connected,
    estimate_intrinsics,
    initial_board_poses,
    initial_extrinsics,
    view_poses,
)
from tracker.core.errors import CalibrationError
from tracker.core.structures import Camera, Extrinsics, Intrinsics

__all__ = ["CalibrationOptions", "CameraReport", "CalibrationResult", "calibrate_cameras", "calibrate_from_images"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationOptions:
    """How to calibrate.

    Attributes:
        distortion: lens distortion estimated for cameras without given intrinsics: ``none``,
            ``k1k2`` (radial, the default), ``k1k2p1p2`` (+ tangential) or ``full`` (+ k3).
        refine_intrinsics: also adjust the estimated intrinsics in the bundle adjustment (given
            intrinsics are always kept fixed).
        min_corners: corners a view needs to be used.
        min_views: views a camera needs for its intrinsics.
        max_view_error_px: views whose single-camera board pose reprojects worse than this (mean
            px) are dropped as misdetections.
        huber_px: Huber loss scale of the bundle adjustment, pixels.
        max_iterations: Levenberg-Marquardt iterations.
        reference: index of the camera whose frame is the world frame.

    Raises:
        CalibrationError: (a ``ValueError``) an unknown distortion model or ``min_views < 3``.
    """

    distortion: DistortionModel = "k1k2"
    refine_intrinsics: bool = True
    min_corners: int = 6
    min_views: int = 5
    max_view_error_px: float = 5.0
    huber_px: float = 1.0
    max_iterations: int = 100
    reference: int = 0

    def __post_init__(self) -> None:
        if self.distortion not in FREE_DISTORTION:
            raise CalibrationError(f"distortion must be one of {sorted(FREE_DISTORTION)}, got {self.distortion!r}")
        if self.min_views < 3:
            raise CalibrationError(f"intrinsics need at least 3 views of a planar board, got "
                                   f"min_views={self.min_views}")  # fmt: skip


@dataclass(frozen=True)
class CameraReport:
    """How well one camera is calibrated.

    Attributes:
        name: the camera.
        mean_error_px: mean reprojection error of its corners after bundle adjustment, pixels.
        rms_error_px: root mean square of the same, pixels.
        frames: views of the board used.
        corners: corners used.
        intrinsics_rms_px: RMS error of its own ``cv2.calibrateCamera`` fit (None for given intrinsics).
    """

    name: str
    mean_error_px: float
    rms_error_px: float
    frames: int
    corners: int
    intrinsics_rms_px: float | None


@dataclass(frozen=True)
class CalibrationResult:
    """A calibrated rig.

    Attributes:
        cameras: the cameras, world = the reference camera's frame, translations in mm.
        reports: per-camera errors, in the same order.
        board_poses: frame index -> ``(4, 4)`` board -> world transform (mm) of each frame used.
        iterations: bundle adjustment iterations run.
    """

    cameras: tuple[Camera, ...]
    reports: tuple[CameraReport, ...]
    board_poses: dict[int, np.ndarray] = field(repr=False)
    iterations: int = 0

    @property
    def mean_error_px(self) -> float:
        """Mean reprojection error over every corner of every camera, pixels."""
        n = sum(r.corners for r in self.reports)
        return sum(r.mean_error_px * r.corners for r in self.reports) / max(n, 1)

    def summary(self) -> str:
        """A table of the per-camera errors, one line per camera."""
        lines = [f"{'camera':<16} {'mean px':>8} {'rms px':>8} {'frames':>7} {'corners':>8} {'intr rms':>9}"]
        for r in self.reports:
            intr = "given" if r.intrinsics_rms_px is None else f"{r.intrinsics_rms_px:.3f}"
            lines.append(f"{r.name:<16} {r.mean_error_px:8.3f} {r.rms_error_px:8.3f} {r.frames:7d} "
                         f"{r.corners:8d} {intr:>9}")  # fmt: skip
        lines.append(f"{'all':<16} {self.mean_error_px:8.3f}")
        return "\n".join(lines)


def calibrate_from_images(
    images: Sequence[Iterable[np.ndarray]],
    board: BoardConfig,
    names: Sequence[str] | None = None,
    intrinsics: Sequence[Intrinsics | None] | None = None,
    options: CalibrationOptions = CalibrationOptions(),
) -> CalibrationResult:
    """Calibrate a rig from synchronised image sequences (``images[c]`` = camera ``c``'s frames).

    See :func:`calibrate_cameras` for the other arguments and the errors raised.
    """
    detections, sizes = detect_views(images, BoardDetector(board, options.min_corners))
    return calibrate_cameras(detections, sizes, board, names, intrinsics, options)


def calibrate_cameras(
    detections: Sequence[Sequence[BoardDetection | None]],
    image_sizes: Sequence[tuple[int, int]],
    board: BoardConfig,
    names: Sequence[str] | None = None,
    intrinsics: Sequence[Intrinsics | None] | None = None,
    options: CalibrationOptions = CalibrationOptions(),
) -> CalibrationResult:
    """Calibrate a rig from board detections.

    Args:
        detections: ``detections[c][f]``: camera ``c``'s corners in frame ``f`` or None; frame ``f``
            of every camera is taken at the same moment. Same number of frames for every camera.
        image_sizes: ``(width, height)`` pixels per camera.
        board: the board that was filmed.
        names: camera names (default ``cam0``, ``cam1``, ...).
        intrinsics: per camera known intrinsics to keep fixed, or None to estimate them.
        options: see :class:`CalibrationOptions`.

    Returns:
        The calibrated cameras and per-camera reprojection errors.

    Raises:
        CalibrationError: a camera never sees the board, has too few views for its intrinsics, or the
            cameras fall into groups that never saw the board at the same time (the message names them).
    """
    n_cams = len(detections)
    names = [f"cam{c}" for c in range(n_cams)] if names is None else [str(n) for n in names]
    if len(names) != n_cams or len(image_sizes) != n_cams:
        raise CalibrationError(f"{n_cams} cameras but {len(names)} names and {len(image_sizes)} image sizes")
    if len(set(names)) != n_cams:
        raise CalibrationError(f"camera names must differ, got {names}")
    if n_cams < 1:
        raise CalibrationError("no cameras to calibrate")
    n_frames = {len(d) for d in detections}
    if len(n_frames) != 1:
        raise CalibrationError(f"every camera needs the same number of frames, got {[len(d) for d in detections]}")
    given = list(intrinsics) if intrinsics is not None else [None] * n_cams
    if len(given) != n_cams:
        raise CalibrationError(f"{n_cams} cameras but {len(given)} intrinsics")
    if not 0 <= options.reference < n_cams:
        raise CalibrationError(f"reference camera {options.reference} is not one of the {n_cams} cameras")
    corners = board.corners_mm()

    views = [{f: d for f, d in enumerate(dets) if d is not None and len(d.ids) >= options.min_corners}
             for dets in detections]  # fmt: skip
    blind = [names[c] for c in range(n_cams) if not views[c]]
    if blind:
        raise CalibrationError(f"camera(s) {blind} never saw the board ({board.describe()}) in "
                               f"{n_frames.pop()} frames: check the board settings and that each camera "
                               "films the board clearly")  # fmt: skip

    intr: list[Intrinsics] = []
    intr_rms: list[float | None] = []
    for c in range(n_cams):
        if given[c] is not None:
            intr.append(given[c])  # type: ignore[arg-type]
            intr_rms.append(None)
        else:
            i, rms = estimate_intrinsics(names[c], views[c], image_sizes[c], corners, options.distortion,
                                         options.min_views)  # fmt: skip
            intr.append(i)
            intr_rms.append(rms)

    poses = [view_poses(names[c], views[c], intr[c], corners, options.max_view_error_px) for c in range(n_cams)]
    check_connected(names, poses)
    cam_from_world = initial_extrinsics(poses, options.reference)
    world_from_board = initial_board_poses(poses, views, cam_from_world)

    ba = BundleAdjuster(corners, views, poses, intr, [g is None and options.refine_intrinsics for g in given],
                        options.distortion, options.reference, options.huber_px, options.max_iterations)  # fmt: skip
    cam_from_world, world_from_board, intr, iterations = ba.run(cam_from_world, world_from_board, intr)

    cameras, reports = [], []
    for c in range(n_cams):
        T = cam_from_world[c]
        cameras.append(Camera(names[c], intr[c], Extrinsics(R=T[:3, :3].copy(), t=T[:3, 3].copy())))
        err = ba.errors(c, T, world_from_board, intr[c])
        reports.append(CameraReport(names[c], float(err.mean()), float(np.sqrt(np.mean(err**2))),
                                    len(poses[c]), int(err.size), intr_rms[c]))  # fmt: skip
        log.info("%s: %.3f px mean reprojection error over %d views", names[c], err.mean(), len(poses[c]))
    return CalibrationResult(tuple(cameras), tuple(reports), world_from_board, iterations)
