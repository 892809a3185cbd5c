"""Metric 3D from 2D joints and a registered depth image (the ``fused`` RGB-D estimator's lift).

An RGB-only lift (:mod:`tracker.stages.lift`) gets the hand's distance from its assumed size; a depth
camera measures it. For each hand with 2D joints (px) and a first 3D guess (``joints_3d``, mm,
camera frame, e.g. from :class:`tracker.stages.lift.MetricLifter`), this stage:

1. samples the depth image around every joint (median of the valid readings in a small window),
   adds the joint's skin depth (the joint centre lies about one finger radius behind the skin the
   camera sees) and back-projects it along the joint's pixel ray;
2. rejects samples that are far from the hand's median depth (background, another object, a hole
   filled by an occluder);
3. moves the 3D guess onto the accepted samples with a robust (Huber, IRLS) rigid transform
   (translation only when few joints are measured), so the hand's shape comes from the estimator
   and its position and orientation from the depth;
4. keeps the measured point for joints whose sample agrees with the moved shape (visible joints),
   and the moved shape for the others (occluded joints, holes, off-image joints).

Hands without ``joints_3d`` get the 3D guess from the samples alone when enough joints are
measured. Frames without depth pass through unchanged. Units: mm, camera frame; pixels as in
:mod:`tracker.core.structures`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np

from models.depth_crop import sample_depth
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import FrameSet, HandPose, Intrinsics

__all__ = ["DepthLiftConfig", "DepthLifter", "SKIN_DEPTH_MM", "robust_rigid"]

log = logging.getLogger(__name__)

#: Approximate depth (mm) of each joint centre behind the skin facing the camera, for an average
#: adult hand: wrist, thumb CMC..tip, then MCP, PIP, DIP, tip of each finger.
SKIN_DEPTH_MM: Final[tuple[float, ...]] = (
    (16.0,) + (12.0, 10.0, 9.0, 7.5) + (10.0, 8.5, 7.5, 6.5) * 2 + (9.5, 8.0, 7.0, 6.0) * 2
)
assert len(SKIN_DEPTH_MM) == NUM_JOINTS


@dataclass(frozen=True)
class DepthLiftConfig:
    """Options of :class:`DepthLifter`.

    Attributes:
        window_px: half-size of the square window sampled around each joint (pixels).
        gate_mm: samples farther than this from the hand's median sampled depth are ignored.
        huber_mm: Huber threshold of the robust translation fit.
        inlier_mm: a joint keeps its measured point when it lies within this of the moved shape.
        min_joints: measured joints needed to use the depth at all.
        min_rigid_joints: measured joints needed to also rotate the shape (else translation only).
        skin_scale: multiplies :data:`SKIN_DEPTH_MM` (hand size).
    """

    window_px: int = 2
    gate_mm: float = 70.0
    huber_mm: float = 10.0
    inlier_mm: float = 20.0
    min_joints: int = 4
    min_rigid_joints: int = 6
    skin_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.window_px < 0 or self.min_joints < 1 or self.gate_mm <= 0 or self.huber_mm <= 0:
            raise ValueError(f"invalid depth-lift settings: {self}")


def _weighted_rigid(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proper rotation ``R`` and ``t`` minimising ``sum w |R src + t - dst|^2`` (weighted Kabsch)."""
    w = w / w.sum()
    cs, cd = w @ src, w @ dst
    u, _, vt = np.linalg.svd(((src - cs) * w[:, None]).T @ (dst - cd))
    d = 1.0 if np.linalg.det(vt.T @ u.T) >= 0 else -1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, cd - rot @ cs


def robust_rigid(guess: np.ndarray, measured: np.ndarray, huber: float, rotate: bool,
                 iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``R, t`` moving ``guess`` ``(N, 3)`` onto ``measured`` under a Huber loss (IRLS); ``R`` is the
    identity when ``rotate`` is False (translation only)."""
    rot, t = np.eye(3), np.median(measured - guess, axis=0)
    for _ in range(iterations):
        r = np.linalg.norm(guess @ rot.T + t - measured, axis=1)
        w = np.where(r <= huber, 1.0, huber / np.maximum(r, 1e-9))
        if rotate:
            rot_new, t_new = _weighted_rigid(guess, measured, w)
        else:
            rot_new, t_new = rot, (w @ (measured - guess)) / w.sum()
        done = np.linalg.norm(t_new - t) < 1e-3 and np.abs(rot_new - rot).max() < 1e-6
        rot, t = rot_new, t_new
        if done:
            break
    return rot, t


class DepthLifter:
    """Pipeline stage: places each hand's 3D joints with the registered depth image (module doc)."""

    def __init__(self, config: DepthLiftConfig = DepthLiftConfig()) -> None:
        self.config = config
        self._skin = np.asarray(SKIN_DEPTH_MM) * config.skin_scale

    def measure(self, hand: HandPose, depth: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
        """Measured joint centres ``(21, 3)`` mm (NaN where unusable) and the accepted mask ``(21,)``."""
        d = sample_depth(depth, hand.joints_2d, self.config.window_px)
        ok = np.isfinite(d)
        if ok.sum() >= self.config.min_joints:
            ok &= np.abs(d - np.median(d[ok])) <= self.config.gate_mm
        z = d + self._skin
        pts = intr.unproject(intr.undistort_pixels(hand.joints_2d), z)
        pts[~ok] = np.nan
        return pts, ok

    def lift(self, hand: HandPose, depth: np.ndarray, intr: Intrinsics) -> HandPose:
        """Return ``hand`` with depth-based ``joints_3d`` (unchanged when too few joints are measured)."""
        cfg = self.config
        pts, ok = self.measure(hand, depth, intr)
        if ok.sum() < cfg.min_joints:
            return hand
        guess = hand.joints_3d
        if guess is None:
            if hand.joints_local is None:
                return hand  # nothing to fill the unmeasured joints with
            guess = hand.joints_local - hand.joints_local[ok].mean(0) + pts[ok].mean(0)
        # rotation too once the measured joints span the hand (palm and a finger or more)
        spread = np.linalg.svd(pts[ok] - pts[ok].mean(0), compute_uv=False)
        rotate = ok.sum() >= cfg.min_rigid_joints and spread[1] > 0.15 * spread[0]
        rot, t = robust_rigid(guess[ok], pts[ok], cfg.huber_mm, rotate)
        moved = guess @ rot.T + t
        agree = ok & (np.linalg.norm(np.nan_to_num(pts) - moved, axis=1) <= cfg.inlier_mm)
        joints = np.where(agree[:, None], pts, moved)
        if hand.surface is None or hand.joints_3d is None:
            return hand.replace(joints_3d=joints, surface=None)
        return hand.replace(joints_3d=joints, surface=hand.surface @ rot.T + t)

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        out = []
        for h in hands:
            frame = frameset.frames[h.view]
            out.append(h if frame.depth is None else self.lift(h, frame.depth, frame.camera.intrinsics))
        return out
