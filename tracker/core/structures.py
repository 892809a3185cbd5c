"""Plain data types that flow through handtrack: cameras, frames, frame sets and hand poses.

Conventions (see ``../shared/DESIGN.md`` §2), stated once here:

* 2D coordinates are **pixels** of the full image, x right, y down, origin at the top-left
  pixel's top-left corner; ``(u, v) = (fx * X / Z + cx, fy * Y / Z + cy)``.
* 3D coordinates are **millimetres** in the OpenCV **camera frame** (x right, y down, z forward)
  unless a field says "world".
* Images are RGB ``uint8`` arrays of shape ``(H, W, 3)``; depth is ``uint16`` millimetres ``(H, W)``
  with 0 meaning "no reading".
* Time is seconds (``float64``), monotonic per device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tracker.core.joints import NUM_JOINTS

__all__ = [
    "Intrinsics",
    "Extrinsics",
    "Camera",
    "Frame",
    "FrameSet",
    "GroundTruth",
    "HandPose",
    "GestureEvent",
    "Grip",
    "Handedness",
    "FrameResult",
]

Handedness = Literal["left", "right", "unknown"]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels.

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: image size in pixels the parameters belong to.
        dist: OpenCV distortion coefficients (k1, k2, p1, p2[, k3[, k4, k5, k6]]); zeros if none.
        approximate: True when the values are a default guess (from an assumed field of view)
            rather than a calibration; metric 3D from approximate intrinsics is approximate too.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    approximate: bool = False

    def __post_init__(self) -> None:
        if not (self.fx > 0 and self.fy > 0 and np.isfinite(self.fx) and np.isfinite(self.fy)):
            raise ValueError(f"focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}")
        if not (np.isfinite(self.cx) and np.isfinite(self.cy)):
            raise ValueError(f"the principal point must be finite, got cx={self.cx}, cy={self.cy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if len(self.dist) not in (4, 5, 8, 12, 14):
            raise ValueError(f"OpenCV distortion needs 4, 5, 8, 12 or 14 coefficients, got {len(self.dist)}")
        if not np.isfinite(np.asarray(self.dist, dtype=np.float64)).all():
            raise ValueError(f"distortion coefficients must be finite, got {self.dist}")

    @property
    def K(self) -> np.ndarray:
        """The 3x3 camera matrix (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 60.0) -> "Intrinsics":
        """Default intrinsics for an uncalibrated camera, flagged ``approximate``.

        Assumes square pixels, the principal point at the image centre, no distortion and a
        horizontal field of view of ``hfov_deg`` degrees (60 deg is typical of laptop and USB
        webcams: Logitech C920 ~70 deg diagonal / ~62 deg horizontal).
        """
        if not 1.0 < hfov_deg < 179.0:
            raise ValueError(f"horizontal field of view must be in (1, 179) degrees, got {hfov_deg}")
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height), approximate=True)

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """The same camera for an image resized to ``width`` x ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        return dataclasses.replace(
            self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
            width=int(width), height=int(height),
        )  # fmt: skip

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """Project camera-frame points ``(..., 3)`` in mm to pixels ``(..., 2)`` (no distortion)."""
        p = np.asarray(points_mm, dtype=np.float64)
        z = p[..., 2]
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], axis=-1)

    def unproject(self, uv: np.ndarray, depth_mm: np.ndarray | float) -> np.ndarray:
        """Pixels ``(..., 2)`` at depths ``depth_mm`` (``(...)`` or a scalar, the camera-frame Z) ->
        camera-frame points ``(..., 3)`` mm (pinhole, no distortion; the inverse of :meth:`project`)."""
        uv = np.asarray(uv, dtype=np.float64)
        z = np.broadcast_to(np.asarray(depth_mm, dtype=np.float64), uv.shape[:-1])
        return np.stack([(uv[..., 0] - self.cx) * z / self.fx, (uv[..., 1] - self.cy) * z / self.fy, z], axis=-1)

    @property
    def has_distortion(self) -> bool:
        """True when any distortion coefficient is non-zero."""
        return any(float(d) != 0.0 for d in self.dist)

    def undistort_pixels(self, uv: np.ndarray) -> np.ndarray:
        """Pixels ``(..., 2)`` of this (distorted) image -> the same points in its undistorted pinhole
        image (``cv2.undistortPoints(uv, K, dist, P=K)``). A float64 copy; unchanged without
        distortion; NaN points stay NaN."""
        uv = np.array(uv, dtype=np.float64)
        if not self.has_distortion or uv.size == 0:
            return uv
        import cv2

        flat = uv.reshape(-1, 2)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            dist = np.asarray(self.dist, np.float64)
            flat[ok] = cv2.undistortPoints(flat[ok].reshape(-1, 1, 2), self.K, dist, P=self.K).reshape(-1, 2)
        return flat.reshape(uv.shape)


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform world -> camera: ``X_cam = R @ X_world + t`` with ``t`` in mm."""

    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        if np.shape(self.R) != (3, 3) or np.shape(self.t) != (3,):
            raise ValueError(f"extrinsics need R (3, 3) and t (3,), got {np.shape(self.R)} and {np.shape(self.t)}")

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World-frame points ``(..., 3)`` mm -> this camera's frame ``(..., 3)`` mm."""
        p = np.asarray(points_world, dtype=np.float64)
        return p @ np.asarray(self.R, np.float64).T + np.asarray(self.t, np.float64)

    def to_world(self, points_camera: np.ndarray) -> np.ndarray:
        """This camera's frame ``(..., 3)`` mm -> world-frame points ``(..., 3)`` mm."""
        p = np.asarray(points_camera, dtype=np.float64)
        return (p - np.asarray(self.t, np.float64)) @ np.asarray(self.R, np.float64)

    @property
    def center(self) -> np.ndarray:
        """The camera's optical centre in the world frame, ``(3,)`` mm."""
        return -np.asarray(self.R, np.float64).T @ np.asarray(self.t, np.float64)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x4 ``[R | t]`` (float64)."""
        return np.hstack([np.asarray(self.R, np.float64), np.asarray(self.t, np.float64).reshape(3, 1)])


@dataclass(frozen=True)
class Camera:
    """A named camera: intrinsics plus its pose in the rig/world frame."""

    name: str
    intrinsics: Intrinsics
    extrinsics: Extrinsics = field(default_factory=Extrinsics)

    @property
    def projection_matrix(self) -> np.ndarray:
        """The 3x4 pinhole projection ``K [R | t]`` (world mm -> homogeneous pixels; no distortion)."""
        return self.intrinsics.K @ self.extrinsics.matrix

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World ``(..., 3)`` mm -> this camera's frame ``(..., 3)`` mm."""
        return self.extrinsics.to_camera(points_world)

    def camera_to_world(self, points_camera: np.ndarray) -> np.ndarray:
        """This camera's frame ``(..., 3)`` mm -> world ``(..., 3)`` mm."""
        return self.extrinsics.to_world(points_camera)

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """World ``(..., 3)`` mm -> pixels ``(..., 2)`` of this camera's (distorted) image
        (``cv2.projectPoints`` with the extrinsics and distortion; points behind the camera are not
        flagged)."""
        import cv2

        p = np.asarray(points_world, np.float64)
        shape = p.shape[:-1]
        if p.size == 0:
            return np.zeros((*shape, 2))
        ext, intr = self.extrinsics, self.intrinsics
        rvec, _ = cv2.Rodrigues(np.asarray(ext.R, np.float64))
        uv, _ = cv2.projectPoints(p.reshape(-1, 1, 3), rvec, np.asarray(ext.t, np.float64).reshape(3, 1), intr.K,
                                  np.asarray(intr.dist, np.float64))  # fmt: skip
        return uv.reshape(*shape, 2)

    def undistort_pixels(self, uv: np.ndarray) -> np.ndarray:
        """See :meth:`Intrinsics.undistort_pixels`."""
        return self.intrinsics.undistort_pixels(uv)


@dataclass(frozen=True)
class GroundTruth:
    """Labels a synthetic (or annotated) frame carries, for K hands seen by that frame's camera.

    Attributes:
        joints_3d: ``(K, 21, 3)`` mm in this camera's frame.
        joints_2d: ``(K, 21, 2)`` pixels in this image.
        visible: ``(K, 21)`` bool, joint not hidden by the hand itself, another hand, or the image edge.
        handedness: anatomical side of each hand.
        actions: action label of each hand ("" when unknown).
        joints_world: ``(K, 21, 3)`` mm in the rig/world frame (equals ``joints_3d`` when the
            camera is the world), or None.
        mask: optional ``(H, W)`` uint8 hand mask (0 background, k + 1 = hand k).
    """

    joints_3d: np.ndarray
    joints_2d: np.ndarray
    visible: np.ndarray
    handedness: tuple[Handedness, ...]
    actions: tuple[str, ...] = ()
    joints_world: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = len(self.handedness)
        if np.shape(self.joints_3d) != (k, NUM_JOINTS, 3) or np.shape(self.joints_2d) != (k, NUM_JOINTS, 2):
            raise ValueError(f"ground truth for {k} hands needs joints_3d ({k}, 21, 3) and joints_2d "
                             f"({k}, 21, 2), got {np.shape(self.joints_3d)} and {np.shape(self.joints_2d)}")
        if np.shape(self.visible) != (k, NUM_JOINTS):
            raise ValueError(f"visible must be ({k}, 21), got {np.shape(self.visible)}")


@dataclass(frozen=True)
class Frame:
    """One image from one camera.

    Attributes:
        image: RGB uint8 ``(H, W, 3)``.
        timestamp: seconds, monotonic per device (playback: the recording's own clock).
        index: frame number from the device, starting at 0 (gaps mean the device skipped frames).
        camera: the camera that took it.
        depth: optional uint16 depth in mm ``(H, W)`` registered to ``image``; 0 = no reading.
        ground_truth: labels, when the source knows them (synthetic data, annotated recordings).
    """

    image: np.ndarray
    timestamp: float
    index: int
    camera: Camera
    depth: np.ndarray | None = None
    ground_truth: GroundTruth | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class FrameSet:
    """Frames taken together: one per view (a single camera gives a set of one)."""

    frames: tuple[Frame, ...]
    timestamp: float
    index: int

    @classmethod
    def single(cls, frame: Frame) -> "FrameSet":
        return cls((frame,), frame.timestamp, frame.index)

    def without_depth(self) -> "FrameSet":
        """The same frame set with every depth image dropped: what an RGB-only camera would give."""
        return FrameSet(tuple(dataclasses.replace(f, depth=None) for f in self.frames), self.timestamp, self.index)


@dataclass(frozen=True)
class GestureEvent:
    """A gesture recognised in one hand's stream (online detection or a whole clip).

    Attributes:
        label: the gesture's name (a SHREC'17 class name or a custom gesture's name).
        score: its probability in [0, 1].
        start_frame, end_frame: first and last frame of the gesture (inclusive, the stream's indices).
        start_time, end_time: the same in seconds (stream timestamps).
    """

    label: str
    score: float
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float


@dataclass(frozen=True)
class Grip:
    """Pinch and grab state of one hand, from its 3D joints.

    Attributes:
        pinch: thumb and index tips touching (with hysteresis).
        pinch_distance_mm: thumb tip -> index tip distance.
        grab: the four fingers curled into a fist (with hysteresis).
        grab_strength: 0 (open hand) .. 1 (fist).
    """

    pinch: bool
    pinch_distance_mm: float
    grab: bool
    grab_strength: float


@dataclass(frozen=True)
class HandPose:
    """One hand in one frame, joints in the order of :mod:`tracker.core.joints`.

    Attributes:
        joints_2d: ``(21, 2)`` pixels in the image of view ``view``.
        joints_3d: ``(21, 3)`` mm in that camera's frame, or None when no metric 3D is known yet.
        joints_local: ``(21, 3)`` mm, root-relative metric shape from the estimator (axes of the
            camera frame, origin near the hand centre), or None.
        confidence: ``(21,)`` per-joint confidence in [0, 1].
        score: hand presence score in [0, 1].
        handedness: "left" / "right" as the person's anatomical hand, or "unknown".
        handedness_score: probability of ``handedness`` in [0, 1].
        track_id: identity kept across frames (-1 before tracking assigns one).
        timestamp: seconds, from the frame.
        view: index of the view in the frame set the 2D joints belong to; -1 for a hand fused
            from several views of a rig: its ``joints_2d`` are then those of its reference view (the
            lowest-index view that saw it) and its ``joints_3d`` are in that view's camera frame.
        joints_world: ``(21, 3)`` mm in the rig's world frame (multi-camera mode), or None.
        uncertainty_mm: ``(21,)`` per-joint 1-sigma position uncertainty in mm (multi-camera
            triangulation / fusion), or None when the estimator gives none.
        gesture: the gesture that this hand completed on this frame (``--gestures``), or None.
        grip: pinch / grab state (``--gestures``), or None.
        surface: ``(M, 3)`` mm, points of the hand's surface decoded by the cross-modal estimator
            (``--estimator crossmodal``), in the frame of ``joints_local`` until the lift places them
            and in that of ``joints_3d`` after it; None for other estimators.
    """

    joints_2d: np.ndarray
    confidence: np.ndarray
    timestamp: float
    joints_3d: np.ndarray | None = None
    joints_local: np.ndarray | None = None
    score: float = 1.0
    handedness: Handedness = "unknown"
    handedness_score: float = 0.0
    track_id: int = -1
    view: int = 0
    joints_world: np.ndarray | None = None
    uncertainty_mm: np.ndarray | None = None
    gesture: GestureEvent | None = None
    grip: Grip | None = None
    surface: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.shape(self.joints_2d) != (NUM_JOINTS, 2):
            raise ValueError(f"joints_2d must be ({NUM_JOINTS}, 2), got {np.shape(self.joints_2d)}")
        if np.shape(self.confidence) != (NUM_JOINTS,):
            raise ValueError(f"confidence must be ({NUM_JOINTS},), got {np.shape(self.confidence)}")
        if self.uncertainty_mm is not None and np.shape(self.uncertainty_mm) != (NUM_JOINTS,):
            raise ValueError(f"uncertainty_mm must be ({NUM_JOINTS},), got {np.shape(self.uncertainty_mm)}")
        for name in ("joints_3d", "joints_local", "joints_world"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (NUM_JOINTS, 3):
                raise ValueError(f"{name} must be ({NUM_JOINTS}, 3), got {np.shape(value)}")
        if self.surface is not None and (np.ndim(self.surface) != 2 or np.shape(self.surface)[1] != 3):
            raise ValueError(f"surface must be (M, 3), got {np.shape(self.surface)}")

    def replace(self, **changes: object) -> "HandPose":
        """A copy with some fields changed (poses are immutable)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline made of one frame set.

    Attributes:
        frameset: the input.
        hands: tracked hands, sorted by ``track_id``.
        timings_ms: wall time of each pipeline stage for this frame set, in milliseconds.
        latency_ms: from capture (the moment the frame set reached the loop) to the end of the pipeline.
    """

    frameset: FrameSet
    hands: tuple[HandPose, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0

    @property
    def timestamp(self) -> float:
        return self.frameset.timestamp

    @property
    def index(self) -> int:
        return self.frameset.index
