"""The initial solve: per-camera intrinsics, board poses per view, and extrinsics chained from
pairwise relative poses; the starting point of :mod:`tracker.calibration.bundle`.

Steps (called in this order by :func:`tracker.calibration.solve.calibrate_cameras`):

1. :func:`estimate_intrinsics`: a camera's intrinsics from its own views (``cv2.calibrateCamera``);
2. :func:`view_poses`: the board pose in every view that saw it (``cv2.solvePnP``, IPPE then
   Levenberg-Marquardt), misdetections dropped by their reprojection error;
3. :func:`check_connected`: the cameras, linked when they saw the board in the same frame, form one
   group (else the message names the groups);
4. :func:`initial_extrinsics`: extrinsics chained along a maximum-overlap spanning tree from the
   reference camera, each link the robust mean (:func:`robust_mean_pose`) of the pairwise relative
   poses of the shared frames;
5. :func:`initial_board_poses`: each frame's board pose in the world.

Poses are ``(4, 4)`` rigid transforms in mm; ``b_from_a`` maps frame-``a`` points to frame ``b``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from tracker.calibration.board import BoardDetection
from tracker.core.errors import CalibrationError
from tracker.core.structures import Camera, Extrinsics, Intrinsics

__all__ = [
    "DistortionModel",
    "FREE_DISTORTION",
    "pose_matrix",
    "pose_vectors",
    "estimate_intrinsics",
    "view_poses",
    "check_connected",
    "initial_extrinsics",
    "robust_mean_pose",
    "initial_board_poses",
]

log = logging.getLogger(__name__)

DistortionModel = Literal["none", "k1k2", "k1k2p1p2", "full"]

#: Coefficients of OpenCV's 5-vector (k1, k2, p1, p2, k3) each distortion model estimates.
FREE_DISTORTION: dict[str, tuple[int, ...]] = {
    "none": (), "k1k2": (0, 1), "k1k2p1p2": (0, 1, 2, 3), "full": (0, 1, 2, 3, 4),
}  # fmt: skip
_DIST_FLAGS: dict[str, int] = {
    "none": cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
    "k1k2": cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
    "k1k2p1p2": cv2.CALIB_FIX_K3,
    "full": 0,
}


def pose_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """``(4, 4)`` rigid transform of OpenCV's rotation vector (rad) and translation (mm)."""
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]
    T[:3, 3] = np.asarray(tvec, dtype=np.float64).ravel()
    return T


def pose_vectors(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's ``(rvec (3, 1) rad, tvec (3, 1) mm)`` of a ``(4, 4)`` rigid transform."""
    return cv2.Rodrigues(np.ascontiguousarray(T[:3, :3]))[0], T[:3, 3:4].copy()


def estimate_intrinsics(
    name: str,
    views: dict[int, BoardDetection],
    size: tuple[int, int],
    corners: np.ndarray,
    distortion: DistortionModel = "k1k2",
    min_views: int = 5,
) -> tuple[Intrinsics, float]:
    """A camera's intrinsics from its own views of the board (``cv2.calibrateCamera``).

    Args:
        name: the camera, for messages.
        views: frame -> the board's corners seen in it.
        size: image ``(width, height)`` px.
        corners: ``(num_corners, 3)`` board corners, board frame mm (:meth:`BoardConfig.corners_mm`).
        distortion: the coefficients to estimate (:data:`FREE_DISTORTION`).
        min_views: fewer views than this are refused.

    Returns:
        The intrinsics (5 distortion coefficients) and the fit's RMS reprojection error, px.

    Raises:
        CalibrationError: too few views, or the fit did not converge.
    """
    if len(views) < min_views:
        raise CalibrationError(f"camera {name!r} saw the board in {len(views)} frames, intrinsics need at least "
                               f"{min_views}: film the board at more positions and tilts, or give its "
                               "intrinsics")  # fmt: skip
    obj = [corners[d.ids].astype(np.float32).reshape(-1, 1, 3) for d in views.values()]
    img = [d.corners_px.astype(np.float32).reshape(-1, 1, 2) for d in views.values()]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, size, None, None, flags=_DIST_FLAGS[distortion],
                                             criteria=criteria)  # fmt: skip
    dist = np.asarray(dist, dtype=np.float64).ravel()[:5]
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
        raise CalibrationError(f"camera {name!r}: intrinsics did not converge; film the board tilted at "
                               "several angles")  # fmt: skip
    log.info("%s: intrinsics from %d views, rms %.3f px", name, len(views), rms)
    return Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), size[0], size[1],
                      tuple(float(v) for v in dist)), float(rms)  # fmt: skip


def view_poses(
    name: str, views: dict[int, BoardDetection], intr: Intrinsics, corners: np.ndarray, max_error_px: float = 5.0
) -> dict[int, np.ndarray]:
    """The board pose in each view of one camera.

    Args:
        name: the camera, for messages.
        views: frame -> the board's corners seen in it.
        intr: the camera's intrinsics.
        corners: ``(num_corners, 3)`` board corners, board frame mm.
        max_error_px: views whose pose reprojects its corners worse than this (mean px), or puts the
            board behind the camera, are dropped as misdetections (logged).

    Returns:
        Frame -> ``(4, 4)`` camera <- board transform (mm) of the views kept.
    """
    K, dist = intr.K, np.asarray(intr.dist, dtype=np.float64)
    out: dict[int, np.ndarray] = {}
    for f, d in views.items():
        obj, img = corners[d.ids], d.corners_px
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
        cam_from_board = pose_matrix(rvec, tvec)
        # the camera with the board frame as its world
        on_board = Camera(name, intr, Extrinsics(R=cam_from_board[:3, :3], t=cam_from_board[:3, 3]))
        err = np.linalg.norm(on_board.project(obj) - img, axis=1).mean()
        if err > max_error_px or tvec[2, 0] <= 0:
            log.warning("%s frame %d: board pose reprojects at %.1f px, view dropped", name, f, err)
            continue
        out[f] = cam_from_board
    return out


def check_connected(names: Sequence[str], poses: Sequence[dict[int, np.ndarray]]) -> None:
    """Check that the cameras form one group, two cameras linked when they saw the board in a same frame.

    Args:
        names: the cameras.
        poses: per camera, the frames it saw the board in (:func:`view_poses`).

    Raises:
        CalibrationError: the cameras fall into groups that never saw the board at the same time;
            the message names the groups.
    """
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


def initial_extrinsics(poses: Sequence[dict[int, np.ndarray]], reference: int) -> list[np.ndarray]:
    """Camera <- world ``(4, 4)`` transforms (world = camera ``reference``) chained along a spanning
    tree of the most shared views (Prim's algorithm from the reference).

    Args:
        poses: per camera, frame -> camera <- board (:func:`view_poses`).
        reference: the camera whose frame is the world.

    Raises:
        CalibrationError: the cameras are not connected (:func:`check_connected` reports it first).
    """
    n = len(poses)
    T: list[np.ndarray | None] = [None] * n
    T[reference] = np.eye(4)
    while any(t is None for t in T):
        best = max(((len(poses[i].keys() & poses[j].keys()), i, j) for i in range(n) if T[i] is not None
                    for j in range(n) if T[j] is None), default=(0, -1, -1))  # fmt: skip
        shared, i, j = best
        if shared == 0:  # check_connected guarantees this does not happen
            raise CalibrationError("camera graph is not connected")
        shared_frames = sorted(poses[i].keys() & poses[j].keys())
        rel = robust_mean_pose([poses[j][f] @ np.linalg.inv(poses[i][f]) for f in shared_frames])
        T[j] = rel @ T[i]  # type: ignore[operator]
    return [t for t in T if t is not None]


def robust_mean_pose(candidates: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of ``(4, 4)`` rigid transforms after dropping outliers around their medoid.

    Distances between candidates are their rotation angle (rad) times the median translation length
    plus their translation distance (mm); candidates further from the medoid than 3 times the median
    distance are dropped; the rotations of the rest are averaged by SVD projection of their sum.
    """
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


def initial_board_poses(
    poses: Sequence[dict[int, np.ndarray]],
    views: Sequence[dict[int, BoardDetection]],
    cam_from_world: Sequence[np.ndarray],
) -> dict[int, np.ndarray]:
    """World <- board ``(4, 4)`` per frame, from the camera that saw the most corners of it.

    Args:
        poses: per camera, frame -> camera <- board (:func:`view_poses`).
        views: per camera, frame -> its detection.
        cam_from_world: per camera, camera <- world (:func:`initial_extrinsics`).
    """
    frames = sorted(set().union(*(p.keys() for p in poses)))
    out = {}
    for f in frames:
        c = max((c for c in range(len(poses)) if f in poses[c]), key=lambda c: len(views[c][f].ids))
        out[f] = np.linalg.inv(cam_from_world[c]) @ poses[c][f]
    return out
