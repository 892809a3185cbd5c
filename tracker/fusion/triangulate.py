"""Multi-view triangulation for a calibrated rig: joints, per-view hand association, a pipeline stage.

* :func:`triangulate_joints`: ``J`` points seen by ``V`` calibrated cameras -> world points (mm)
  with inlier views, reprojection error and a 1-sigma uncertainty per point, by confidence-weighted
  DLT or RANSAC over views (:mod:`kernels.triangulate`). 2D points are undistorted with each
  camera's distortion first (:meth:`Camera.undistort_pixels`), so the kernels see pinhole pixels.
* :func:`associate_hands`: per-view hand detections -> groups, one per physical hand, each view
  giving at most one detection to a group, by geometric consistency (two-view triangulation and
  reprojection error, then a check of each merged group over all its views), with handedness
  disagreement as a penalty in pixels.
* :class:`RigTriangulator`: the pipeline stage: per-view :class:`~tracker.core.structures.HandPose` (``view`` =
  frame index in the frame set) -> fused hands (``view = -1``) in the rig's world frame.

Conventions (:mod:`tracker.core.structures`): pixels of the full image, world and camera frames in mm,
cameras with world -> camera extrinsics ``X_cam = R X_world + t``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tracker.core.errors import HandtrackError
from kernels.triangulate import (
    reprojection_errors,
    triangulate_dlt,
    triangulate_ransac,
    triangulation_stats,
)

from tracker.core.joints import NUM_JOINTS, PARENTS
from tracker.core.structures import Camera, FrameSet, Handedness, HandPose

__all__ = [
    "TriangulationError",
    "TriangulationConfig",
    "Triangulated",
    "projection_matrices",
    "triangulate_joints",
    "triangulate_sequence",
    "associate_hands",
    "split_rig_hands",
    "RigTriangulator",
]

log = logging.getLogger(__name__)

Method = Literal["dlt", "ransac"]


class TriangulationError(HandtrackError, ValueError):
    """Inputs that cannot be triangulated (shapes, camera count, unknown method)."""


@dataclass(frozen=True)
class TriangulationConfig:
    """How joints are triangulated and hands associated across views.

    Attributes:
        method: ``"dlt"`` (confidence-weighted DLT over all usable views) or ``"ransac"`` (RANSAC
            over views per joint, then weighted DLT on the inliers).
        threshold_px: RANSAC inlier threshold on the reprojection error, pixels.
        sigma_px: pixel noise of a confidence-1 detection, for the uncertainty (mm) of each joint.
        min_views: fewest (inlier) views for a triangulated joint (at least 2).
        min_confidence: observations below this confidence are ignored.
        max_hypotheses: most view pairs RANSAC tries per joint (28 = every pair of 8 views).
        seed: seed of RANSAC's pair sampling when there are more pairs than ``max_hypotheses``.
        association_threshold_px: two detections (or a detection and a group) belong to the same
            hand when the median over joints of their reprojection error is below this, pixels.
        handedness_penalty_px: added to that cost when both detections state a handedness and
            they differ (a soft constraint: MediaPipe's left/right flips on some views).
        min_valid_joints: a fused hand needs at least this many triangulated joints, else dropped.
    """

    method: Method = "ransac"
    threshold_px: float = 15.0
    sigma_px: float = 2.0
    min_views: int = 2
    min_confidence: float = 0.05
    max_hypotheses: int = 28
    seed: int = 0
    association_threshold_px: float = 25.0
    handedness_penalty_px: float = 15.0
    min_valid_joints: int = 8

    def __post_init__(self) -> None:
        if self.method not in ("dlt", "ransac"):
            raise TriangulationError(f"triangulation method must be 'dlt' or 'ransac', got {self.method!r}")
        if not (self.threshold_px > 0 and self.sigma_px > 0 and self.association_threshold_px > 0):
            raise TriangulationError("threshold_px, sigma_px and association_threshold_px must be positive")
        if self.min_views < 2:
            raise TriangulationError(f"min_views must be at least 2 (two rays meet in a point), got {self.min_views}")
        if self.max_hypotheses < 1:
            raise TriangulationError(f"max_hypotheses must be at least 1, got {self.max_hypotheses}")


@dataclass(frozen=True)
class Triangulated:
    """Triangulated points of one hand / frame.

    Attributes:
        points: ``(J, 3)`` float64 world mm; NaN where not triangulated.
        inliers: ``(J, V)`` bool, the views each point was triangulated from.
        reprojection_px: ``(J,)`` RMS reprojection error over the inliers, pixels (NaN if none).
        uncertainty_mm: ``(J,)`` 1-sigma position uncertainty in mm: ``sqrt(trace(cov))`` with
            ``cov = sigma_px^2 (G^T W G)^-1`` (see :func:`kernels.triangulate.triangulation_stats`);
            NaN where not triangulated.
    """

    points: np.ndarray
    inliers: np.ndarray
    reprojection_px: np.ndarray
    uncertainty_mm: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """``(J,)`` bool: the point was triangulated."""
        return np.isfinite(self.points).all(axis=1)

    @property
    def num_inliers(self) -> np.ndarray:
        """``(J,)`` int: inlier views per point."""
        return self.inliers.sum(axis=1)


def projection_matrices(cameras: Sequence[Camera]) -> np.ndarray:
    """``(V, 3, 4)`` float64 ``K [R | t]`` of ``cameras`` stacked (:attr:`Camera.projection_matrix`:
    world mm -> undistorted homogeneous pixels).

    Raises:
        TriangulationError: no cameras.
    """
    if len(cameras) == 0:
        raise TriangulationError("triangulation needs cameras; got none")
    return np.stack([c.projection_matrix for c in cameras])


def _check(uv: np.ndarray, conf: np.ndarray, V: int) -> tuple[np.ndarray, np.ndarray]:
    uv = np.asarray(uv, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if uv.ndim != 3 or uv.shape[1:] != (V, 2):
        raise TriangulationError(f"uv must be (J, {V}, 2) for {V} cameras, got {uv.shape}")
    if conf.shape != uv.shape[:2]:
        raise TriangulationError(f"confidence must be {uv.shape[:2]} (J, V), got {conf.shape}")
    return uv, conf


def _triangulate(P: np.ndarray, uv: np.ndarray, conf: np.ndarray, config: TriangulationConfig) -> Triangulated:
    """:func:`triangulate_joints` on undistorted pixels and projection matrices."""
    w = np.where(np.isfinite(conf) & (conf >= config.min_confidence), conf, 0.0)
    w = np.ascontiguousarray(w)
    uv = np.ascontiguousarray(uv)
    if config.method == "ransac":
        X, inl, rms, sigma = triangulate_ransac(P, uv, w, config.threshold_px, config.sigma_px, config.min_views,
                                                config.max_hypotheses, config.seed)  # fmt: skip
    else:
        usable = (w > 0) & np.isfinite(uv).all(axis=2)
        X = triangulate_dlt(P, uv, w)
        X[usable.sum(axis=1) < config.min_views] = np.nan
        inl = usable & np.isfinite(X).all(axis=1, keepdims=True)
        rms, sigma = triangulation_stats(P, X, uv, w, inl, config.sigma_px)
    return Triangulated(X, inl, rms, sigma)


def triangulate_joints(
    cameras: Sequence[Camera], uv: np.ndarray, conf: np.ndarray, config: TriangulationConfig = TriangulationConfig()
) -> Triangulated:
    """Triangulate ``J`` points observed by ``V`` calibrated cameras.

    Args:
        cameras: ``V`` cameras with world -> camera extrinsics (translation in mm).
        uv: ``(J, V, 2)`` pixels in each camera's (distorted) image; NaN = not seen.
        conf: ``(J, V)`` confidences in [0, 1]; below ``config.min_confidence`` = not seen.
        config: method and thresholds.

    Returns:
        :class:`Triangulated` with world points in mm.

    Raises:
        TriangulationError: shapes that do not match the cameras.
    """
    uv, conf = _check(uv, conf, len(cameras))
    und = np.stack([c.undistort_pixels(uv[:, v]) for v, c in enumerate(cameras)], axis=1)
    return _triangulate(projection_matrices(cameras), und, conf, config)


def triangulate_sequence(
    cameras: Sequence[Camera], uv: np.ndarray, conf: np.ndarray, config: TriangulationConfig = TriangulationConfig()
) -> Triangulated:
    """:func:`triangulate_joints` of ``F`` frames at once (one kernel call over all ``F * J`` points).

    Args:
        cameras: ``V`` calibrated cameras.
        uv: ``(F, J, V, 2)`` pixels of each camera's (distorted) image; NaN = not seen.
        conf: ``(F, J, V)`` confidences.
        config: method and thresholds (RANSAC's sampled pairs, if any, follow the flattened point index).

    Returns:
        :class:`Triangulated` with a leading frame axis: points ``(F, J, 3)``, inliers ``(F, J, V)``,
        reprojection_px and uncertainty_mm ``(F, J)``.
    """
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 4:
        raise TriangulationError(f"uv must be (F, J, V, 2), got {uv.shape}")
    F, J = uv.shape[:2]
    conf = np.asarray(conf, dtype=np.float64)
    if conf.shape != uv.shape[:3]:
        raise TriangulationError(f"confidence must be {uv.shape[:3]} (F, J, V), got {conf.shape}")
    flat = triangulate_joints(cameras, uv.reshape(F * J, *uv.shape[2:]), conf.reshape(F * J, -1), config)
    return Triangulated(flat.points.reshape(F, J, 3), flat.inliers.reshape(F, J, -1),
                        flat.reprojection_px.reshape(F, J), flat.uncertainty_mm.reshape(F, J))  # fmt: skip


# ----------------------------------------------------------------------------------- association


def _weights(hand: HandPose, config: TriangulationConfig) -> np.ndarray:
    c = np.asarray(hand.confidence, np.float64)
    return np.where(np.isfinite(c) & (c >= config.min_confidence), c, 0.0)


def _group_error(P: np.ndarray, uv: np.ndarray, w: np.ndarray) -> float:
    """Worst per-view median reprojection error (px) of the DLT of the group's views; inf if undetermined."""
    X = triangulate_dlt(P, uv, w)
    err = reprojection_errors(P, X, uv)  # (J, V)
    ok = np.isfinite(X).all(axis=1)
    if ok.sum() < 3:
        return np.inf
    worst = 0.0
    for v in range(P.shape[0]):
        seen = ok & (w[:, v] > 0)
        if seen.sum() < 3:
            return np.inf
        e = err[seen, v]
        if not np.isfinite(e).all():  # behind a camera
            return np.inf
        worst = max(worst, float(np.median(e)))
    return worst


def _stack(members: dict[int, int], P_all: np.ndarray, uv_all: list[np.ndarray], w_all: list[np.ndarray],
           views: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    order = sorted(members)
    P = np.ascontiguousarray(P_all[[views[members[v]] for v in order]])
    uv = np.ascontiguousarray(np.stack([uv_all[members[v]] for v in order], axis=1))
    w = np.ascontiguousarray(np.stack([w_all[members[v]] for v in order], axis=1))
    return P, uv, w


def split_rig_hands(
    frameset: FrameSet, hands: Sequence[HandPose], cameras: Sequence[Camera] | None, stage: str,
    error: type[Exception] = TriangulationError,
) -> tuple[tuple[Camera, ...], list[HandPose], list[HandPose]]:
    """The common start of a rig fusion stage: check the calibration and the hands' views against
    ``frameset``, and split ``hands`` into those already fused (``view = -1``) and per-view ones.

    Args:
        frameset: the rig's frame set.
        hands: the stage's input hands.
        cameras: the stage's calibration, one camera per frame; None = each frame's ``camera``.
        stage: the stage's name, for the error message.
        error: the exception class the stage raises.

    Returns:
        ``(cameras, fused, per_view)``.

    Raises:
        ``error``: the calibration's camera count differs from the frame set's, or a hand's view is
        not a frame of the set.
    """
    n_views = len(frameset.frames)
    if cameras is not None and len(cameras) != n_views:
        raise error(f"the rig has {len(cameras)} cameras but the frame set has {n_views} frames; "
                    f"give {stage} the calibration of exactly these views")  # fmt: skip
    cams = tuple(cameras) if cameras is not None else tuple(f.camera for f in frameset.frames)
    fused = [h for h in hands if h.view == -1]
    per_view = [h for h in hands if h.view != -1]
    for h in per_view:
        if not 0 <= h.view < n_views:
            raise error(f"a hand has view {h.view} but the frame set has {n_views} frames")
    return cams, fused, per_view


def associate_hands(
    P: np.ndarray, hands: Sequence[HandPose], uv: Sequence[np.ndarray], config: TriangulationConfig
) -> list[dict[int, int]]:
    """Group per-view detections into physical hands.

    Greedy agglomeration: every pair of detections from different views gets a cost, the median
    over joints of their two-view DLT's reprojection error (px), plus ``handedness_penalty_px`` when
    both state a handedness and they differ; pairs below ``association_threshold_px`` are merged in
    order of cost when the two groups share no view and the merged group is consistent (in each of
    its views, the median reprojection error of the group's DLT is below the threshold).

    Args:
        P: ``(V, 3, 4)`` projection matrices of the frame set's views.
        hands: the detections; ``hands[i].view`` indexes ``P``.
        uv: undistorted ``(21, 2)`` pixels of each detection.
        config: thresholds.

    Returns:
        Groups as ``{view: detection index}``, at least two views each, in order of their smallest
        detection index. Detections that match no other view are left out.
    """
    n = len(hands)
    w = [_weights(h, config) for h in hands]
    views = [h.view for h in hands]
    edges: list[tuple[float, int, int]] = []
    for i in range(n):
        for j in range(i + 1, n):
            if views[i] == views[j]:
                continue
            cost = _group_error(*_stack({views[i]: i, views[j]: j}, P, uv, w, views))
            a, b = hands[i].handedness, hands[j].handedness
            if a != "unknown" and b != "unknown" and a != b:
                cost += config.handedness_penalty_px
            if cost < config.association_threshold_px:
                edges.append((cost, i, j))
    edges.sort()
    group_of = list(range(n))
    groups: dict[int, dict[int, int]] = {i: {views[i]: i} for i in range(n)}
    for _, i, j in edges:
        gi, gj = group_of[i], group_of[j]
        if gi == gj or set(groups[gi]) & set(groups[gj]):
            continue
        merged = {**groups[gi], **groups[gj]}
        if len(merged) > 2 and not _group_error(*_stack(merged, P, uv, w, views)) < config.association_threshold_px:
            continue
        groups[gi] = merged
        del groups[gj]
        for k in merged.values():
            group_of[k] = gi
    out = [g for g in groups.values() if len(g) >= 2]
    out.sort(key=lambda g: min(g.values()))
    return out


# ---------------------------------------------------------------------------------- pipeline stage


def _fill_missing(tri: Triangulated, P: np.ndarray, uv: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(21, 3)`` world mm with untriangulated joints placed plausibly (they get confidence 0).

    A joint seen by a view is put on that view's ray at the depth (in that camera) of its nearest
    triangulated ancestor; a joint seen by none takes that ancestor's position (the wrist, if not
    triangulated, the mean of the triangulated joints).
    """
    X = tri.points.copy()
    valid = tri.valid
    centre = X[valid].mean(axis=0)
    for j in range(NUM_JOINTS):  # parents come before children
        if valid[j]:
            continue
        a = PARENTS[j]
        anchor = X[a] if a >= 0 else centre
        seen = np.flatnonzero((w[j] > 0) & np.isfinite(uv[j]).all(axis=1))
        if len(seen) == 0:
            X[j] = anchor
            continue
        Pv = P[seen[0]]
        M, p4 = Pv[:, :3], Pv[:, 3]
        depth = Pv[2] @ np.append(anchor, 1.0)
        if not depth > 0:
            X[j] = anchor
            continue
        X[j] = np.linalg.solve(M, depth * np.append(uv[j, seen[0]], 1.0) - p4)
    return X


class RigTriangulator:
    """Pipeline stage: per-view 2D hands of a rig -> fused hands in the world frame.

    Takes the hands of every view of a frame set (``view`` = frame index, 2D joints in that
    frame's pixels, e.g. MediaPipe run per view) and returns one :class:`HandPose` per physical hand
    seen by at least two views, with

    * ``view = -1``; ``joints_world`` (21, 3) world mm; ``uncertainty_mm`` (21,) 1-sigma (inf where a
      joint could not be triangulated and was placed from its parent, see below);
    * ``joints_3d`` (21, 3) mm in the camera frame of the *reference view*: the lowest-index view of
      the group that is an inlier for any joint; ``joints_2d`` are that view's detection;
    * ``confidence`` per joint: the inlier views' summed confidence over the group's view count
      (1 = every view of the group agrees with full confidence), 0 for untriangulated joints;
    * ``handedness`` by a vote of the views weighted by their handedness scores, ``score`` the mean
      of the views' scores.

    Joints not triangulated are placed on a view's ray at the depth of their parent (confidence 0,
    uncertainty inf); hands with fewer than ``config.min_valid_joints`` triangulated joints are
    dropped. Hands already fused (``view = -1``) pass through unchanged.

    Args:
        cameras: the rig's calibrated cameras, one per frame of the frame sets; None = use each
            frame's own ``camera`` (devices that carry their calibration).
        config: triangulation and association settings.
    """

    def __init__(self, cameras: Sequence[Camera] | None = None, config: TriangulationConfig = TriangulationConfig()):
        self.cameras = tuple(cameras) if cameras is not None else None
        self.config = config
        self._P_key: tuple[Camera, ...] | None = None
        self._P = np.zeros((0, 3, 4))

    def _projections(self, cameras: tuple[Camera, ...]) -> np.ndarray:
        if self._P_key is None or len(cameras) != len(self._P_key) or any(
            a is not b for a, b in zip(cameras, self._P_key)
        ):
            self._P = projection_matrices(cameras)
            self._P_key = cameras
        return self._P

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        cameras, fused, per_view = split_rig_hands(frameset, hands, self.cameras, "RigTriangulator")
        if not per_view:
            return fused
        P = self._projections(cameras)
        uv = [cameras[h.view].undistort_pixels(h.joints_2d) for h in per_view]
        groups = associate_hands(P, per_view, uv, self.config)
        out = list(fused)
        for group in groups:
            hand = self._fuse(frameset, cameras, P, per_view, uv, group)
            if hand is not None:
                out.append(hand)
        return out

    def _fuse(self, frameset: FrameSet, cameras: Sequence[Camera], P: np.ndarray, hands: Sequence[HandPose],
              uv_und: Sequence[np.ndarray], group: dict[int, int]) -> HandPose | None:  # fmt: skip
        V = P.shape[0]
        uv = np.full((NUM_JOINTS, V, 2), np.nan)
        conf = np.zeros((NUM_JOINTS, V))
        for v, i in group.items():
            uv[:, v] = uv_und[i]
            conf[:, v] = hands[i].confidence
        tri = _triangulate(P, uv, conf, self.config)
        valid = tri.valid
        if valid.sum() < max(1, self.config.min_valid_joints):
            log.debug("a hand seen by views %s triangulated only %d joints; dropped", sorted(group), valid.sum())
            return None
        w = np.where(np.isfinite(conf) & (conf >= self.config.min_confidence), conf, 0.0)
        X = _fill_missing(tri, P, uv, w)
        support = (np.where(tri.inliers, w, 0.0).sum(axis=1) / len(group)).clip(0.0, 1.0)
        confidence = np.where(valid, support, 0.0)
        uncertainty = np.where(valid, tri.uncertainty_mm, np.inf)
        ref = next((v for v in sorted(group) if tri.inliers[:, v].any()), min(group))
        members = [hands[i] for i in group.values()]
        votes: dict[Handedness, float] = {}
        for h in members:
            if h.handedness != "unknown":
                votes[h.handedness] = votes.get(h.handedness, 0.0) + max(float(h.handedness_score), 1e-6)
        handedness: Handedness = max(votes, key=lambda k: votes[k]) if votes else "unknown"
        hand_score = votes[handedness] / sum(votes.values()) if votes else 0.0
        return HandPose(
            joints_2d=np.asarray(hands[group[ref]].joints_2d, np.float64).copy(),
            confidence=confidence,
            timestamp=frameset.timestamp,
            joints_3d=cameras[ref].world_to_camera(X),
            score=float(np.mean([h.score for h in members])),
            handedness=handedness,
            handedness_score=float(hand_score),
            view=-1,
            joints_world=X,
            uncertainty_mm=uncertainty,
        )
