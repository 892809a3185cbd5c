"""Hand pose error metrics: per-joint distances, root and Procrustes alignment, PCK.

All functions are plain NumPy on one hand at a time, joints in the order of :mod:`tracker.core.joints`.
Units follow the input: pixels in, pixels out; millimetres in, millimetres out. ``valid`` masks
(``(J,)`` bool) mark the joints that have ground truth; joints outside the mask never count.
"""

from __future__ import annotations

import numpy as np

from tracker.core.joints import EDGES, WRIST

__all__ = [
    "joint_errors",
    "mean_joint_error",
    "root_relative",
    "procrustes_align",
    "pck",
    "bbox_size",
    "bone_length_sum",
    "sequence_joint_errors",
    "success_rate",
]


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] not in (2, 3):
        raise ValueError(f"pred and gt must both be (J, 2) or (J, 3), got {pred.shape} and {gt.shape}")
    return pred, gt


def _mask(valid: np.ndarray | None, n: int) -> np.ndarray:
    if valid is None:
        return np.ones(n, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (n,):
        raise ValueError(f"valid must be ({n},), got {valid.shape}")
    return valid


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per joint, ``(J,)``, in the unit of the inputs (px or mm).

    Args:
        pred, gt: ``(J, 2)`` or ``(J, 3)`` joints.
    """
    pred, gt = _check_pair(pred, gt)
    return np.linalg.norm(pred - gt, axis=1)


def mean_joint_error(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean per-joint Euclidean error (EPE / MPJPE) over the valid joints, unit of the inputs.

    Returns NaN when no joint is valid.
    """
    err = joint_errors(pred, gt)
    m = _mask(valid, len(err))
    return float(err[m].mean()) if m.any() else float("nan")


def root_relative(joints: np.ndarray, root: int = WRIST) -> np.ndarray:
    """Joints ``(J, D)`` minus joint ``root`` (the wrist by default); same unit as the input."""
    joints = np.asarray(joints, dtype=np.float64)
    return joints - joints[root]


def procrustes_align(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, scale: bool = True
) -> np.ndarray:
    """``pred`` moved onto ``gt`` by the best similarity transform (Umeyama 1991, SVD).

    Finds ``s, R, t`` minimising ``sum_i ||s R p_i + t - g_i||^2`` over the valid joints, with
    ``R`` a proper rotation (no reflection) and ``s = 1`` when ``scale`` is False, and applies it to
    all joints of ``pred``. The PA-MPJPE is ``mean_joint_error(procrustes_align(p, g), g)``.

    Args:
        pred, gt: ``(J, D)`` joints, D = 2 or 3, same unit (mm for 3D).
        valid: ``(J,)`` joints used for the fit (at least D + 1 non-degenerate ones).
        scale: also fit an isotropic scale.

    Returns:
        ``(J, D)`` aligned ``pred`` in the unit and frame of ``gt``.

    Raises:
        ValueError: shapes differ, or fewer than D + 1 valid joints.
    """
    pred, gt = _check_pair(pred, gt)
    m = _mask(valid, len(pred))
    d = pred.shape[1]
    if m.sum() < d + 1:
        raise ValueError(f"Procrustes alignment needs at least {d + 1} valid joints, got {int(m.sum())}")
    p, g = pred[m], gt[m]
    mu_p, mu_g = p.mean(axis=0), g.mean(axis=0)
    pc, gc = p - mu_p, g - mu_g
    cov = gc.T @ pc / len(p)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[-1] = -1.0
    rot = u @ np.diag(fix) @ vt
    var_p = (pc**2).sum() / len(p)
    s = float((sig * fix).sum() / var_p) if scale and var_p > 0 else 1.0
    t = mu_g - s * rot @ mu_p
    return s * pred @ rot.T + t


def pck(errors: np.ndarray, threshold: float | np.ndarray, valid: np.ndarray | None = None) -> float:
    """Percentage of correct keypoints: fraction (0..1) of valid errors ``<= threshold``.

    Args:
        errors: per-joint distances, any shape (px or mm).
        threshold: same unit as ``errors``; a scalar, or an array broadcastable to ``errors``
            (e.g. a per-hand ``0.2 * bbox_size`` as ``(N, 1)`` for errors ``(N, J)``).
        valid: bool mask of ``errors``' shape; None = all.

    Returns NaN when nothing is valid.
    """
    errors = np.asarray(errors, dtype=np.float64)
    m = np.ones(errors.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if m.shape != errors.shape:
        raise ValueError(f"valid must have the shape of errors {errors.shape}, got {m.shape}")
    hit = errors <= np.broadcast_to(np.asarray(threshold, dtype=np.float64), errors.shape)
    return float(hit[m].mean()) if m.any() else float("nan")


def bbox_size(joints_2d: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Larger side of the valid joints' axis-aligned bounding box (px), the usual PCK normaliser."""
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    m = _mask(valid, len(joints_2d))
    if not m.any():
        return float("nan")
    pts = joints_2d[m]
    return float((pts.max(axis=0) - pts.min(axis=0)).max())


def bone_length_sum(joints: np.ndarray) -> float:
    """Hand size: sum of the 20 bone lengths of :data:`tracker.core.joints.EDGES`, unit of the input."""
    joints = np.asarray(joints, dtype=np.float64)
    return float(sum(np.linalg.norm(joints[c] - joints[p]) for p, c in EDGES))


def sequence_joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per frame and joint, ``(N, J)``, for sequences ``(N, J, D)`` (unit of the inputs).

    Raises:
        ValueError: the shapes differ or are not ``(N, J, 2|3)``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[2] not in (2, 3):
        raise ValueError(f"pred and gt must both be (N, J, 2|3), got {pred.shape} and {gt.shape}")
    return np.linalg.norm(pred - gt, axis=2)


def success_rate(frame_errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of frames whose error is ``<=`` each threshold (the success-rate curve).

    With ``frame_errors`` = the per-frame *maximum* joint error this is the curve of Taylor et al. /
    Oberweger et al. used by the NYU / ICVL benchmarks.

    Args:
        frame_errors: ``(N,)`` one error per frame (mm or px).
        thresholds: ``(K,)`` thresholds in the same unit.

    Returns:
        ``(K,)`` fractions; NaN everywhere when there are no frames.
    """
    e = np.asarray(frame_errors, dtype=np.float64).ravel()
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if e.size == 0:
        return np.full(t.shape, np.nan)
    return (e[None, :] <= t[:, None]).mean(axis=1)
