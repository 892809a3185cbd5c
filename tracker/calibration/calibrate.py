"""Multi-camera ChArUco calibration: intrinsics per camera, extrinsics by pairwise poses + bundle adjustment.

Steps (:func:`calibrate_cameras`):

1. ChArUco corners per camera per frame (:class:`BoardDetector`, OpenCV 5 ``cv2.aruco.CharucoDetector``);
2. intrinsics per camera from its own views (``cv2.calibrateCamera``), or given ones kept fixed;
3. the board pose in every view that saw it (``cv2.solvePnP``, IPPE then Levenberg-Marquardt);
4. a graph of cameras linked when they saw the board in the same frame; extrinsics initialised by
   chaining robust (medoid + inlier mean) pairwise relative poses along a maximum-overlap spanning
   tree from the reference camera;
5. bundle adjustment of camera extrinsics (+ intrinsics unless given) and board poses minimising the
   Huber-robust reprojection error of every detected corner: our own Levenberg-Marquardt on the
   normal equations with the board poses eliminated by the Schur complement (no SciPy).

Frames are matched by index: frame ``f`` of every camera must be taken at the same moment
(hardware sync, or a board held still). Conventions: pixels in OpenCV's convention (integer
coordinates at pixel centres, as ``cv2.calibrateCamera`` and the aniposelib files use), board and
world coordinates in **mm**, world = the reference camera's frame (camera 0 by default), extrinsics
world -> camera as in :class:`tracker.core.structures.Extrinsics`.

Command line (saves an aniposelib-layout TOML, see :mod:`tracker.io.calibration`)::

    python -m tracker.calibration.calibrate --videos cam0.mp4 cam1.mp4 --board 7x5 --square-mm 30 --marker-mm 22 \\
        --every 5 --out calibration.toml
    python -m tracker.calibration.calibrate --rig rig.toml --out calibration.toml
    python -m tracker.calibration.calibrate --board 7x5 --square-mm 30 --marker-mm 22 --board-image board.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from devices.base import Device
from tracker.core.errors import DeviceError
from tracker.io.calibration import save_calibration
from tracker.core.errors import CalibrationError
from tracker.io.intrinsics import load_intrinsics
from tracker.core.structures import Camera, Extrinsics, Intrinsics

if TYPE_CHECKING:
    from tracker.io.rig_file import RigSpec

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
    "main",
]

log = logging.getLogger(__name__)

DistortionModel = Literal["none", "k1k2", "k1k2p1p2", "full"]

#: Coefficients of OpenCV's 5-vector (k1, k2, p1, p2, k3) each model estimates.
_FREE_DIST: dict[str, tuple[int, ...]] = {"none": (), "k1k2": (0, 1), "k1k2p1p2": (0, 1, 2, 3), "full": (0, 1, 2, 3, 4)}
_DIST_FLAGS: dict[str, int] = {
    "none": cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
    "k1k2": cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
    "k1k2p1p2": cv2.CALIB_FIX_K3,
    "full": 0,
}


# --- the board -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardConfig:
    """A ChArUco board (OpenCV >= 4.6 pattern).

    Attributes:
        squares_x, squares_y: chessboard squares across and down (``7x5`` has 6 x 4 = 24 inner corners).
        square_mm: side of a chessboard square in mm, as printed (measure it).
        marker_mm: side of an ArUco marker in mm (smaller than ``square_mm``).
        dictionary: an OpenCV predefined dictionary name (``"DICT_4X4_50"``, ``"DICT_5X5_100"``, ...).

    Board frame: origin at the board's outer top-left corner, x along the squares across, y down,
    z into the board (mm); corner ``i`` of OpenCV's numbering is :meth:`corners_mm` ``[i]``.
    """

    squares_x: int = 7
    squares_y: int = 5
    square_mm: float = 30.0
    marker_mm: float = 22.0
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise ValueError(f"a ChArUco board needs at least 2x2 squares, got {self.squares_x}x{self.squares_y}")
        if not 0 < self.marker_mm < self.square_mm:
            raise ValueError(f"marker side must be in (0, square side), got marker {self.marker_mm} mm, "
                             f"square {self.square_mm} mm")  # fmt: skip
        if not (self.dictionary.startswith("DICT_") and hasattr(cv2.aruco, self.dictionary)):
            names = sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))
            raise ValueError(f"unknown ArUco dictionary {self.dictionary!r}; use one of {', '.join(names)}")
        markers = (self.squares_x * self.squares_y) // 2
        size = len(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList)
        if markers > size:
            raise ValueError(f"a {self.squares_x}x{self.squares_y} board needs {markers} markers but "
                             f"{self.dictionary} has {size}: choose a larger dictionary")  # fmt: skip

    @property
    def num_corners(self) -> int:
        """Inner chessboard corners, the points calibration uses."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    def board(self) -> cv2.aruco.CharucoBoard:
        """The OpenCV board object (lengths in mm)."""
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), float(self.square_mm),
                                      float(self.marker_mm), dictionary)  # fmt: skip

    def corners_mm(self) -> np.ndarray:
        """``(num_corners, 3)`` float64 inner corners in the board frame, mm (z = 0)."""
        return np.asarray(self.board().getChessboardCorners(), dtype=np.float64).reshape(-1, 3)

    def image(self, pixels_per_mm: float = 300 / 25.4, margin_mm: float = 10.0) -> np.ndarray:
        """A printable greyscale uint8 image of the board: ``pixels_per_mm`` (300 dpi by default)
        and a white margin of ``margin_mm`` around it. Print at 100 % and check ``square_mm``."""
        margin = int(round(margin_mm * pixels_per_mm))
        w = int(round(self.squares_x * self.square_mm * pixels_per_mm)) + 2 * margin
        h = int(round(self.squares_y * self.square_mm * pixels_per_mm)) + 2 * margin
        return self.board().generateImage((w, h), marginSize=margin, borderBits=1)

    def describe(self) -> str:
        """One line naming the board, e.g. ``charuco 7x5 square 30 mm marker 22 mm DICT_4X4_50``."""
        return (f"charuco {self.squares_x}x{self.squares_y} square {self.square_mm:g} mm "
                f"marker {self.marker_mm:g} mm {self.dictionary}")  # fmt: skip


@dataclass(frozen=True)
class BoardDetection:
    """ChArUco corners found in one image.

    Attributes:
        ids: ``(K,)`` int corner indices into :meth:`BoardConfig.corners_mm`.
        corners_px: ``(K, 2)`` float64 pixel positions (OpenCV convention).
    """

    ids: np.ndarray
    corners_px: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.ids) != 1 or np.shape(self.corners_px) != (len(self.ids), 2):
            raise ValueError(f"a detection needs ids (K,) and corners (K, 2), got {np.shape(self.ids)} "
                             f"and {np.shape(self.corners_px)}")  # fmt: skip


class BoardDetector:
    """Finds ChArUco corners in an image: ``detector(image) -> BoardDetection | None``.

    Args:
        board: the board to look for.
        min_corners: fewer corners than this (or all on one line) count as not seen.
    """

    def __init__(self, board: BoardConfig, min_corners: int = 6) -> None:
        if min_corners < 4:
            raise ValueError(f"a board pose needs at least 4 corners, got min_corners={min_corners}")
        self.board = board
        self.min_corners = min_corners
        self._board = board.board()
        self._detector = cv2.aruco.CharucoDetector(self._board)

    def __call__(self, image: np.ndarray) -> BoardDetection | None:
        """Detect the board in an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            return None
        ids = ids.reshape(-1).astype(np.int32)
        if self._board.checkCharucoCornersCollinear(ids):
            return None
        return BoardDetection(ids, corners.reshape(-1, 2).astype(np.float64))


def detect_views(
    images: Sequence[Iterable[np.ndarray]], detector: BoardDetector
) -> tuple[list[list[BoardDetection | None]], list[tuple[int, int]]]:
    """Detect the board in synchronised image sequences, one per camera, read in lockstep.

    Args:
        images: per camera an iterable of images (a list, a generator reading a video, ...);
            reading stops when the shortest ends.
        detector: the board detector.

    Returns:
        ``detections[c][f]`` (None where not seen) and each camera's image size ``(width, height)``.

    Raises:
        CalibrationError: a camera gave no image, or its image size changed.
    """
    return _detect_framesets(zip(*images), len(images), detector)


def _detect_framesets(
    framesets: Iterable[Sequence[np.ndarray]], n_cams: int, detector: BoardDetector
) -> tuple[list[list[BoardDetection | None]], list[tuple[int, int]]]:
    """:func:`detect_views` on synchronised frame sets (one image per camera each), kept one at a time."""
    detections: list[list[BoardDetection | None]] = [[] for _ in range(n_cams)]
    sizes: list[tuple[int, int] | None] = [None] * n_cams
    for frame in framesets:
        for c, image in enumerate(frame):
            size = (int(image.shape[1]), int(image.shape[0]))
            if sizes[c] is None:
                sizes[c] = size
            elif sizes[c] != size:
                raise CalibrationError(f"camera {c}: image size changed from {sizes[c]} to {size}; "
                                       "calibrate at one resolution")  # fmt: skip
            detections[c].append(detector(image))
    if any(s is None for s in sizes):
        missing = [c for c, s in enumerate(sizes) if s is None]
        raise CalibrationError(f"no images from camera(s) {missing}: every camera needs a frame sequence")
    return detections, [s for s in sizes if s is not None]


# --- options and results -------------------------------------------------------------------------


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
        if self.distortion not in _FREE_DIST:
            raise ValueError(f"distortion must be one of {sorted(_FREE_DIST)}, got {self.distortion!r}")
        if self.min_views < 3:
            raise ValueError(f"intrinsics need at least 3 views of a planar board, got min_views={self.min_views}")


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


# --- calibration -----------------------------------------------------------------------------------


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
            i, rms = _intrinsics(names[c], views[c], image_sizes[c], corners, options)
            intr.append(i)
            intr_rms.append(rms)

    poses = [_board_poses(names[c], views[c], intr[c], corners, options) for c in range(n_cams)]
    _check_connected(names, poses)
    cam_from_world = _initial_extrinsics(poses, options.reference)
    world_from_board = _initial_board_poses(poses, views, cam_from_world)

    ba = _BundleAdjuster(corners, views, poses, intr, [g is None and options.refine_intrinsics for g in given],
                         options)  # fmt: skip
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


def _intrinsics(
    name: str, views: dict[int, BoardDetection], size: tuple[int, int], corners: np.ndarray, options: CalibrationOptions
) -> tuple[Intrinsics, float]:
    if len(views) < options.min_views:
        raise CalibrationError(f"camera {name!r} saw the board in {len(views)} frames, intrinsics need at least "
                               f"{options.min_views}: film the board at more positions and tilts, or give its "
                               "intrinsics")  # fmt: skip
    obj = [corners[d.ids].astype(np.float32).reshape(-1, 1, 3) for d in views.values()]
    img = [d.corners_px.astype(np.float32).reshape(-1, 1, 2) for d in views.values()]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, size, None, None, flags=_DIST_FLAGS[options.distortion],
                                             criteria=criteria)  # fmt: skip
    dist = np.asarray(dist, dtype=np.float64).ravel()[:5]
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
        raise CalibrationError(f"camera {name!r}: intrinsics did not converge; film the board tilted at "
                               "several angles")  # fmt: skip
    log.info("%s: intrinsics from %d views, rms %.3f px", name, len(views), rms)
    return Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), size[0], size[1],
                      tuple(float(v) for v in dist)), float(rms)  # fmt: skip


def _board_poses(
    name: str, views: dict[int, BoardDetection], intr: Intrinsics, corners: np.ndarray, options: CalibrationOptions
) -> dict[int, np.ndarray]:
    """Frame -> ``(4, 4)`` board -> camera transform (mm) of the views whose PnP fit is good."""
    K, dist = intr.K, np.asarray(intr.dist, dtype=np.float64)
    out: dict[int, np.ndarray] = {}
    for f, d in views.items():
        obj, img = corners[d.ids], d.corners_px
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
        proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
        err = np.linalg.norm(proj.reshape(-1, 2) - img, axis=1).mean()
        if err > options.max_view_error_px or tvec[2, 0] <= 0:
            log.warning("%s frame %d: board pose reprojects at %.1f px, view dropped", name, f, err)
            continue
        out[f] = _matrix(rvec, tvec)
    return out


def _check_connected(names: Sequence[str], poses: Sequence[dict[int, np.ndarray]]) -> None:
    n = len(names)
    if n == 1:
        return
    groups: list[list[int]] = []
    seen: set[int] = set()
    for start in range(n):
        if start in seen:
            continue
        group, stack = [], [start]
        seen.add(start)
        while stack:
            c = stack.pop()
            group.append(c)
            for o in range(n):
                if o not in seen and poses[c].keys() & poses[o].keys():
                    seen.add(o)
                    stack.append(o)
        groups.append(sorted(group))
    if len(groups) > 1:
        described = " | ".join("[" + ", ".join(names[c] for c in g) + "]" for g in groups)
        raise CalibrationError(f"the board was never seen by two cameras at the same time across these groups: "
                               f"{described}; film the board where cameras of different groups see it "
                               "together")  # fmt: skip


def _initial_extrinsics(poses: Sequence[dict[int, np.ndarray]], reference: int) -> list[np.ndarray]:
    """Camera <- world ``(4, 4)`` transforms (world = ``reference``) chained along a spanning tree of
    the most shared views (Prim's algorithm from the reference)."""
    n = len(poses)
    T: list[np.ndarray | None] = [None] * n
    T[reference] = np.eye(4)
    while any(t is None for t in T):
        best = max(((len(poses[i].keys() & poses[j].keys()), i, j) for i in range(n) if T[i] is not None
                    for j in range(n) if T[j] is None), default=(0, -1, -1))  # fmt: skip
        shared, i, j = best
        if shared == 0:  # _check_connected guarantees this does not happen
            raise CalibrationError("camera graph is not connected")
        shared_frames = sorted(poses[i].keys() & poses[j].keys())
        rel = _robust_mean_pose([poses[j][f] @ np.linalg.inv(poses[i][f]) for f in shared_frames])
        T[j] = rel @ T[i]  # type: ignore[operator]
    return [t for t in T if t is not None]


def _robust_mean_pose(candidates: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of ``(4, 4)`` rigid transforms after dropping outliers around their medoid."""
    Ts = np.stack(candidates)
    if len(Ts) == 1:
        return Ts[0]
    R, t = Ts[:, :3, :3], Ts[:, :3, 3]
    cos = (np.einsum("aij,bij->ab", R, R) - 1.0) / 2.0
    angle = np.arccos(np.clip(cos, -1.0, 1.0))
    scale = max(float(np.median(np.linalg.norm(t, axis=1))), 1.0)
    dist = angle * scale + np.linalg.norm(t[:, None] - t[None], axis=2)
    medoid = int(np.argmin(dist.sum(axis=1)))
    d = dist[medoid]
    inliers = d <= max(3.0 * float(np.median(d)), 1e-9)
    U, _, Vt = np.linalg.svd(R[inliers].sum(axis=0))
    Rm = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = Rm, t[inliers].mean(axis=0)
    return out


def _initial_board_poses(
    poses: Sequence[dict[int, np.ndarray]],
    views: Sequence[dict[int, BoardDetection]],
    cam_from_world: Sequence[np.ndarray],
) -> dict[int, np.ndarray]:
    """World <- board per frame, from the camera that saw the most corners of it."""
    frames = sorted(set().union(*(p.keys() for p in poses)))
    out = {}
    for f in frames:
        c = max((c for c in range(len(poses)) if f in poses[c]), key=lambda c: len(views[c][f].ids))
        out[f] = np.linalg.inv(cam_from_world[c]) @ poses[c][f]
    return out


# --- bundle adjustment -------------------------------------------------------------------------------


class _BundleAdjuster:
    """Levenberg-Marquardt over camera extrinsics (+ intrinsics) and board poses, Huber-robust.

    Poses are updated multiplicatively, ``T <- exp(delta) T``; the reference camera's extrinsics are
    fixed (they define the world). Board poses are eliminated with the Schur complement.
    """

    def __init__(
        self,
        corners: np.ndarray,
        views: Sequence[dict[int, BoardDetection]],
        poses: Sequence[dict[int, np.ndarray]],
        intr: Sequence[Intrinsics],
        refine: Sequence[bool],
        options: CalibrationOptions,
    ) -> None:
        self.corners = corners
        self.options = options
        self.obs = [(c, f, corners[views[c][f].ids], views[c][f].corners_px)
                    for c in range(len(poses)) for f in poses[c]]  # fmt: skip
        self.by_cam = [[(f, X, uv) for (cc, f, X, uv) in self.obs if cc == c] for c in range(len(poses))]
        self.free_dist = [tuple(i for i in _FREE_DIST[options.distortion] if i < len(intr[c].dist)) if refine[c] else ()
                          for c in range(len(poses))]  # fmt: skip
        # Camera parameter layout: [6 extrinsic unless reference][4 intrinsic + free distortion if refined].
        self.n_ext = [0 if c == options.reference else 6 for c in range(len(poses))]
        self.n_int = [4 + len(self.free_dist[c]) if refine[c] else 0 for c in range(len(poses))]
        sizes = [e + i for e, i in zip(self.n_ext, self.n_int)]
        self.offset = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_params = int(self.offset[-1])

    # pixel errors of one camera's corners
    def errors(self, c: int, cam_from_world: np.ndarray, world_from_board: dict[int, np.ndarray],
               intr: Intrinsics) -> np.ndarray:  # fmt: skip
        errs = [np.linalg.norm(_project(cam_from_world @ world_from_board[f], X, intr) - uv, axis=1)
                for f, X, uv in self.by_cam[c]]  # fmt: skip
        return np.concatenate(errs) if errs else np.zeros(0)

    def _cost(self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics]) -> float:
        total = 0.0
        for c, f, X, uv in self.obs:
            e = np.linalg.norm(_project(cams[c] @ boards[f], X, intr[c]) - uv, axis=1)
            total += float(_huber(e, self.options.huber_px).sum())
        return total

    def run(
        self, cams: list[np.ndarray], boards: dict[int, np.ndarray], intr: list[Intrinsics]
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray], list[Intrinsics], int]:
        lam = 1e-3
        cost = self._cost(cams, boards, intr)
        it = 0
        for it in range(1, self.options.max_iterations + 1):
            U, gc, Vs, gbs, Ws = self._normal_equations(cams, boards, intr)
            improved = False
            for _ in range(10):
                dc, dbs = self._solve(U, gc, Vs, gbs, Ws, lam)
                cams_n, boards_n, intr_n = self._apply(cams, boards, intr, dc, dbs)
                cost_n = self._cost(cams_n, boards_n, intr_n)
                if np.isfinite(cost_n) and cost_n < cost:
                    improved = True
                    break
                lam *= 10.0
            if not improved:
                break
            rel = (cost - cost_n) / max(cost, 1e-12)
            cams, boards, intr, cost = cams_n, boards_n, intr_n, cost_n
            lam = max(lam / 10.0, 1e-9)
            if rel < 1e-10:
                break
        log.info("bundle adjustment: %d iterations, robust cost %.4g", it, cost)
        return cams, boards, intr, it

    def _normal_equations(
        self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics]
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
        P = self.n_params
        U, gc = np.zeros((P, P)), np.zeros(P)
        Vs = {f: np.zeros((6, 6)) for f in boards}
        gbs = {f: np.zeros(6) for f in boards}
        Ws = {f: np.zeros((P, 6)) for f in boards}
        d_cam = [_left_perturbation(T) for T in cams]
        d_board = {f: _left_perturbation(T) for f, T in boards.items()}
        for c, f, X, uv in self.obs:
            r_cw, t_cw = _rt(cams[c])
            r_wb, t_wb = _rt(boards[f])
            # camera <- board = (camera <- world) o (world <- board): composeRT applies its first pose first.
            r3, t3, dr3dr1, dr3dt1, dr3dr2, dr3dt2, dt3dr1, dt3dt1, dt3dr2, dt3dt2 = cv2.composeRT(
                r_wb, t_wb, r_cw, t_cw)  # fmt: skip
            d_wrt_board = np.block([[dr3dr1, dr3dt1], [dt3dr1, dt3dt1]])
            d_wrt_cam = np.block([[dr3dr2, dr3dt2], [dt3dr2, dt3dt2]])
            i = intr[c]
            proj, jac = cv2.projectPoints(X, r3, t3, i.K, np.asarray(i.dist, dtype=np.float64))
            res = (proj.reshape(-1, 2) - uv).reshape(-1)
            e = np.linalg.norm(res.reshape(-1, 2), axis=1)
            w = np.repeat(_huber_weight(e, self.options.huber_px), 2)
            Jb = jac[:, :6] @ d_wrt_board @ d_board[f]
            blocks = []
            if self.n_ext[c]:
                blocks.append(jac[:, :6] @ d_wrt_cam @ d_cam[c])
            if self.n_int[c]:
                blocks.append(jac[:, 6:10])
                blocks.extend(jac[:, 10 + k : 11 + k] for k in self.free_dist[c])
            Jw_b = Jb * w[:, None]
            Vs[f] += Jb.T @ Jw_b
            gbs[f] += Jw_b.T @ res
            if blocks:
                Jc = np.hstack(blocks)
                s = slice(self.offset[c], self.offset[c + 1])
                Jw_c = Jc * w[:, None]
                U[s, s] += Jc.T @ Jw_c
                gc[s] += Jw_c.T @ res
                Ws[f][s] += Jw_c.T @ Jb
        return U, gc, Vs, gbs, Ws

    def _solve(
        self, U: np.ndarray, gc: np.ndarray, Vs: dict[int, np.ndarray], gbs: dict[int, np.ndarray],
        Ws: dict[int, np.ndarray], lam: float,
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:  # fmt: skip
        S = U + lam * np.diag(np.diag(U) + 1e-9)
        rhs = -gc.copy()
        Vinv = {}
        for f, V in Vs.items():
            Vd = V + lam * np.diag(np.diag(V) + 1e-9)
            Vinv[f] = np.linalg.inv(Vd)
            WV = Ws[f] @ Vinv[f]
            S -= WV @ Ws[f].T
            rhs += WV @ gbs[f]
        dc = np.linalg.solve(S, rhs) if self.n_params else np.zeros(0)
        dbs = {f: Vinv[f] @ (-gbs[f] - Ws[f].T @ dc) for f in Vs}
        return dc, dbs

    def _apply(
        self, cams: Sequence[np.ndarray], boards: dict[int, np.ndarray], intr: Sequence[Intrinsics],
        dc: np.ndarray, dbs: dict[int, np.ndarray],
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray], list[Intrinsics]]:  # fmt: skip
        new_cams, new_intr = [], []
        for c, T in enumerate(cams):
            d = dc[self.offset[c] : self.offset[c + 1]]
            new_cams.append(_perturb(T, d[:6]) if self.n_ext[c] else T)
            i = intr[c]
            if self.n_int[c]:
                p = d[self.n_ext[c] :]
                dist = list(i.dist)
                for k, idx in enumerate(self.free_dist[c]):
                    dist[idx] += float(p[4 + k])
                fx, fy = i.fx + float(p[0]), i.fy + float(p[1])
                if fx <= 0 or fy <= 0:
                    return list(cams), boards, list(intr)  # a rejected step: the cost will not drop
                i = Intrinsics(fx, fy, i.cx + float(p[2]), i.cy + float(p[3]), i.width, i.height, tuple(dist))
            new_intr.append(i)
        new_boards = {f: _perturb(T, dbs[f]) for f, T in boards.items()}
        return new_cams, new_boards, new_intr


def _huber(e: np.ndarray, delta: float) -> np.ndarray:
    return np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta))


def _huber_weight(e: np.ndarray, delta: float) -> np.ndarray:
    return np.where(e <= delta, 1.0, delta / np.maximum(e, 1e-12))


def _rt(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return cv2.Rodrigues(np.ascontiguousarray(T[:3, :3]))[0], T[:3, 3:4].copy()


def _matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]
    T[:3, 3] = np.asarray(tvec, dtype=np.float64).ravel()
    return T


def _left_perturbation(T: np.ndarray) -> np.ndarray:
    """``(6, 6)`` derivative of (rvec, tvec) of ``exp(delta) T`` with respect to ``delta`` at 0."""
    r, t = _rt(T)
    zero = np.zeros((3, 1))
    _, _, _, _, dr3dr2, dr3dt2, _, _, dt3dr2, dt3dt2 = cv2.composeRT(r, t, zero, zero)
    return np.block([[dr3dr2, dr3dt2], [dt3dr2, dt3dt2]])


def _perturb(T: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``exp(delta) T`` (rotation vector delta[:3] rad, translation delta[3:] mm)."""
    D = _matrix(delta[:3], delta[3:])
    return D @ T


def _project(cam_from_board: np.ndarray, X: np.ndarray, intr: Intrinsics) -> np.ndarray:
    r, t = _rt(cam_from_board)
    proj, _ = cv2.projectPoints(X, r, t, intr.K, np.asarray(intr.dist, dtype=np.float64))
    return proj.reshape(-1, 2)


# --- command line -------------------------------------------------------------------------------------


def _parse_board(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--board wants squares across x down, e.g. 7x5, got {text!r}") from e
    return x, y


class _LockstepReader:
    """Frame sets from single-camera devices read one frame each in turn (matched by frame index)."""

    def __init__(self, sources: Sequence[str]) -> None:
        from tracker.io.sources import SourceOptions, open_source, parse_source

        self.devices: list[Device] = []
        try:
            for source in sources:
                self.devices.append(open_source(parse_source(source), SourceOptions(realtime=False)))
        except BaseException:
            self.close()
            raise
        self.live = any(d.live for d in self.devices)

    def read(self) -> tuple[np.ndarray, ...] | None:
        sets = [d.read() for d in self.devices]
        if any(s is None for s in sets):
            return None
        return tuple(s.frames[0].image for s in sets if s is not None)

    def close(self) -> None:
        for d in self.devices:
            d.close()


class _RigReader:
    """Frame sets of a rig file's cameras, matched by timestamp by :class:`devices.rig.RigDevice`."""

    def __init__(self, spec: "RigSpec") -> None:
        from tracker.io.rig_file import build_rig_device
        from tracker.io.sources import SourceOptions

        self.device = build_rig_device(spec, SourceOptions(realtime=False))
        self.device.open()
        self.live = self.device.live

    def read(self) -> tuple[np.ndarray, ...] | None:
        fs = self.device.read()
        return None if fs is None else tuple(f.image for f in fs.frames)

    def close(self) -> None:
        self.device.close()


def _frames(
    reader: _LockstepReader | _RigReader, every: int, max_frames: int | None
) -> Iterable[tuple[np.ndarray, ...]]:
    """Every ``every``-th frame set of ``reader``, at most ``max_frames`` of them."""
    k = kept = 0
    while max_frames is None or kept < max_frames:
        images = reader.read()
        if images is None:
            return
        if k % every == 0:
            kept += 1
            yield images
        k += 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracker.calibration.calibrate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    src = p.add_mutually_exclusive_group()
    src.add_argument("--videos", nargs="+", metavar="VIDEO", help="one synchronised video per camera")
    src.add_argument("--rig", metavar="RIG.toml", help="a rig file listing the cameras and their sources")
    p.add_argument("--names", nargs="+", help="camera names (default: the rig's, or cam0, cam1, ...)")
    p.add_argument("--board", type=_parse_board, default=(7, 5), help="squares across x down (default 7x5)")
    p.add_argument("--square-mm", type=float, default=30.0, help="printed square side in mm (default 30)")
    p.add_argument("--marker-mm", type=float, default=22.0, help="printed marker side in mm (default 22)")
    p.add_argument("--dictionary", default="DICT_4X4_50", help="ArUco dictionary (default DICT_4X4_50)")
    p.add_argument("--every", type=int, default=5, help="use every Nth frame (default 5)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many used frames (default: all; 200 for live cameras)")
    p.add_argument("--intrinsics", nargs="+", metavar="FILE",
                   help="known intrinsics per camera (JSON / OpenCV YAML / TOML), kept fixed; '-' to estimate one")
    p.add_argument("--distortion", choices=sorted(_FREE_DIST), default="k1k2", help="distortion model to estimate")
    p.add_argument("--out", type=Path, help="calibration TOML to write (aniposelib layout)")
    p.add_argument("--board-image", type=Path, help="write a printable board image (PNG) here")
    p.add_argument("--dpi", type=float, default=300.0, help="resolution of --board-image (default 300)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    try:
        board = BoardConfig(*args.board, args.square_mm, args.marker_mm, args.dictionary)
    except ValueError as e:
        p.error(str(e))
    if args.every < 1:
        p.error("--every must be at least 1")
    if args.board_image is not None:
        cv2.imwrite(str(args.board_image), board.image(pixels_per_mm=args.dpi / 25.4))
        print(f"wrote {args.board_image} ({board.describe()}); print at 100 % scale and measure a square")
    if args.videos is None and args.rig is None:
        if args.board_image is None:
            p.error("give --videos or --rig to calibrate (or --board-image to draw the board)")
        return 0
    try:
        return _calibrate_cli(p, args, board)
    except (CalibrationError, DeviceError) as e:
        print(f"calibration failed: {e}", file=sys.stderr)
        return 2


def _calibrate_cli(p: argparse.ArgumentParser, args: argparse.Namespace, board: BoardConfig) -> int:
    """The calibration part of :func:`main`: read, detect, calibrate, save."""
    spec = None
    if args.rig is not None:
        from tracker.io.rig_file import RigFileError, load_rig  # imported only when a rig file is used

        try:
            spec = load_rig(args.rig, calibration=False)
        except RigFileError as e:
            raise CalibrationError(str(e)) from e
        sources = [cam.source for cam in spec.cameras]
        if args.names:
            p.error("--names does not apply to --rig: the rig file names the cameras")
        names = list(spec.names)
        out = args.out if args.out is not None else spec.calibration
    else:
        sources = list(args.videos)
        names = args.names or [f"cam{i}" for i in range(len(sources))]
        out = args.out
    if out is None:
        p.error("--out is required to calibrate (a rig file's calibration = path is the default with --rig)")
    if len(names) != len(sources):
        p.error(f"{len(sources)} cameras but {len(names)} names")
    intrinsics: list[Intrinsics | None] = [None] * len(sources)
    if args.intrinsics:
        if len(args.intrinsics) != len(sources):
            p.error(f"{len(sources)} cameras but {len(args.intrinsics)} --intrinsics files (use '-' to estimate one)")
        intrinsics = [None if f == "-" else load_intrinsics(f) for f in args.intrinsics]

    options = CalibrationOptions(distortion=args.distortion)
    reader = _RigReader(spec) if spec is not None else _LockstepReader(sources)
    try:
        max_frames = args.max_frames
        if max_frames is None and reader.live:
            max_frames = 200
            print("live cameras: using 200 frame sets (--max-frames to change); move the board through the views")
        detector = BoardDetector(board, options.min_corners)
        detections, sizes = _detect_framesets(_frames(reader, args.every, max_frames), len(sources), detector)
    finally:
        reader.close()
    seen = ", ".join(f"{n} {sum(d is not None for d in dets)}" for n, dets in zip(names, detections))
    print(f"board seen in {len(detections[0])} frame sets: {seen}")
    result = calibrate_cameras(detections, sizes, board, names, intrinsics, options)
    save_calibration(result.cameras, out,
                     metadata={"adjusted": True, "error": result.mean_error_px, "board": board.describe()})  # fmt: skip
    print(result.summary())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
