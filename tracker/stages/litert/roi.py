"""Hand regions of interest: from a palm detection, from landmarks, and the affine crop they define.

A NumPy port of MediaPipe's ``palm_detection_detection_to_roi`` and ``hand_landmark_landmarks_to_roi``
graphs (``DetectionsToRectsCalculator``, ``HandLandmarksToRectCalculator``,
``RectTransformationCalculator``) and of the rotated crop of ``ImageToTensorCalculator``, all in image
pixels. A ROI is a square rotated by ``rotation`` radians (image y down, so a positive angle turns
clockwise on screen) chosen so that the crop shows the hand fingers-up: crop point ``(a, b)`` of a
``size``-pixel crop comes from image point ``center + R(rotation) @ ((a, b) / size - 0.5) * roi.size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "Roi",
    "crop",
    "crop_matrix",
    "crop_to_image",
    "landmarks_to_roi",
    "normalize_radians",
    "palm_to_roi",
    "rect_transform",
    "roi_iou",
]  # fmt: skip

TARGET_ANGLE = math.pi / 2.0
PALM_SCALE, PALM_SHIFT_Y = 2.6, -0.5  # palm_detection_detection_to_roi
LANDMARK_SCALE, LANDMARK_SHIFT_Y = 2.0, -0.1  # hand_landmark_landmarks_to_roi
# landmarks HandLandmarksToRectCalculator looks at: wrist, thumb CMC..IP, the MCP and PIP of each finger
ROI_JOINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


@dataclass(frozen=True)
class Roi:
    """A rotated square region of an image.

    Attributes:
        center: ``(2,)`` px.
        size: side length in px.
        rotation: radians in [-pi, pi); 0 = the crop's up is the image's up.
    """

    center: np.ndarray
    size: float
    rotation: float


def normalize_radians(angle: float) -> float:
    """``angle`` wrapped to [-pi, pi) as MediaPipe's ``NormalizeRadians``."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def _rotation(start: np.ndarray, end: np.ndarray) -> float:
    """Rotation that turns the vector start -> end (px, y down) to point up in the crop."""
    return normalize_radians(
        TARGET_ANGLE - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    )


def rect_transform(center: np.ndarray, width: float, height: float, rotation: float, scale: float,
                   shift_x: float = 0.0, shift_y: float = 0.0) -> Roi:  # fmt: skip
    """MediaPipe's ``RectTransformationCalculator`` with ``square_long`` in pixels.

    Shifts the centre by ``(shift_x * width, shift_y * height)`` along the rect's own (rotated) axes,
    makes the rect a square of its long side and scales it by ``scale``.
    """
    c, s = math.cos(rotation), math.sin(rotation)
    dx, dy = shift_x * width, shift_y * height
    shifted = np.asarray(center, np.float64) + np.array(
        [c * dx - s * dy, s * dx + c * dy]
    )
    return Roi(shifted, max(width, height) * scale, rotation)


def palm_to_roi(box: np.ndarray, keypoints: np.ndarray) -> Roi:
    """Hand ROI from a palm detection (``palm_detection_detection_to_roi``).

    Args:
        box: ``(4,)`` xmin, ymin, xmax, ymax px.
        keypoints: ``(7, 2)`` px; 0 = wrist, 2 = middle-finger MCP define the rotation.

    Returns:
        The box centre shifted by half the box height towards the fingers, squared on its long side
        and scaled by 2.6; rotated so that wrist -> middle MCP points up.
    """
    box = np.asarray(box, np.float64)
    kp = np.asarray(keypoints, np.float64)
    rotation = _rotation(kp[0], kp[2])
    center = (box[:2] + box[2:]) / 2.0
    w, h = box[2] - box[0], box[3] - box[1]
    return rect_transform(center, w, h, rotation, PALM_SCALE, 0.0, PALM_SHIFT_Y)


def landmarks_to_roi(uv: np.ndarray) -> Roi:
    """Next frame's hand ROI from this frame's landmarks (``hand_landmark_landmarks_to_roi``).

    Args:
        uv: ``(21, 2)`` landmarks in px.

    Returns:
        The bounding square of the wrist, thumb base and finger MCP/PIP joints in the hand's own
        frame (rotation: wrist -> mean of the middle MCP and the index/ring MCP midpoint, pointing up),
        shifted by 0.1 of its height towards the wrist's opposite and scaled by 2.
    """
    uv = np.asarray(uv, np.float64)
    end = ((uv[5] + uv[13]) / 2.0 + uv[9]) / 2.0
    rotation = _rotation(uv[0], end)
    pts = uv[list(ROI_JOINTS)]
    aligned_center = (pts.max(0) + pts.min(0)) / 2.0
    c, s = math.cos(-rotation), math.sin(-rotation)
    rel = pts - aligned_center
    proj = np.stack(
        [rel[:, 0] * c - rel[:, 1] * s, rel[:, 0] * s + rel[:, 1] * c], axis=1
    )
    lo, hi = proj.min(0), proj.max(0)
    pc = (lo + hi) / 2.0
    c, s = math.cos(rotation), math.sin(rotation)
    center = np.array([pc[0] * c - pc[1] * s, pc[0] * s + pc[1] * c]) + aligned_center
    w, h = hi - lo
    return rect_transform(
        center, float(w), float(h), rotation, LANDMARK_SCALE, 0.0, LANDMARK_SHIFT_Y
    )


def roi_iou(a: Roi, b: Roi) -> float:
    """IoU of the axis-aligned squares of two ROIs, rotation ignored (as MediaPipe's
    ``AssociationNormRectCalculator``)."""
    lo = np.maximum(a.center - a.size / 2.0, b.center - b.size / 2.0)
    hi = np.minimum(a.center + a.size / 2.0, b.center + b.size / 2.0)
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    union = a.size**2 + b.size**2 - inter
    return inter / union if union > 0 else 0.0


def crop_matrix(roi: Roi, out_size: int) -> np.ndarray:
    """The ``(2, 3)`` affine map crop px -> image px of a ``out_size`` x ``out_size`` crop of ``roi``."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.size / out_size
    r = np.array([[c, -s], [s, c]]) * k
    t = np.asarray(roi.center, np.float64) - r @ np.array(
        [out_size / 2.0, out_size / 2.0]
    )
    return np.hstack([r, t[:, None]])


def crop(image: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """The rotated square ``roi`` of an RGB uint8 image, resampled to ``(out_size, out_size, 3)``
    float32 in [0, 1] (bilinear; outside the image the border pixels repeat, as MediaPipe's
    landmark crop)."""
    m = crop_matrix(roi, out_size)
    patch = cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return patch.astype(np.float32) * (1.0 / 255.0)


def crop_to_image(points: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """Crop pixels ``(..., 2)`` -> image pixels ``(..., 2)`` (the inverse of the crop)."""
    m = crop_matrix(roi, out_size)
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]
