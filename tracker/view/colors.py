"""The view's palette: finger and track colours, panel colours, and the quality colour scale.

Colours are RGBA tuples (or ``(N, 4)`` float32 arrays) with channels in [0, 1]. The quality scale
runs red (0) -> yellow (0.5) -> green (1) and colours joints by confidence, or in rig mode by
their triangulation uncertainty (:func:`joint_quality`).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from tracker.core.joints import EDGES, FINGERS
from tracker.core.structures import HandPose

__all__ = [
    "RGBA",
    "FINGER_COLORS",
    "EDGE_COLORS",
    "TRACK_COLORS",
    "UNCERTAINTY_RED_MM",
    "confidence_colors",
    "joint_quality",
    "track_color",
    "rgb255",
]

RGBA = tuple[float, float, float, float]

#: Bone colour of each finger (RGBA in [0, 1]); a palm bone (wrist -> finger root) takes its finger's.
FINGER_COLORS: Final[dict[str, RGBA]] = {
    "thumb": (1.00, 0.55, 0.10, 1.0),  # orange
    "index": (1.00, 0.25, 0.62, 1.0),  # pink
    "middle": (0.30, 0.65, 1.00, 1.0),  # sky blue
    "ring": (0.66, 0.42, 1.00, 1.0),  # violet
    "pinky": (0.18, 0.90, 0.84, 1.0),  # teal
}

_FINGER_OF_JOINT: Final[dict[int, str]] = {j: name for name, chain in FINGERS.items() for j in chain}

#: ``(len(EDGES), 4)`` RGBA colour of each bone of :data:`tracker.core.joints.EDGES` (by the child's finger).
EDGE_COLORS: Final[np.ndarray] = np.array([FINGER_COLORS[_FINGER_OF_JOINT[child]] for _, child in EDGES])

#: Label colours, cycled by ``track_id``.
TRACK_COLORS: Final[tuple[RGBA, ...]] = (
    (1.00, 1.00, 1.00, 1.0),
    (1.00, 0.86, 0.35, 1.0),
    (0.55, 0.95, 1.00, 1.0),
    (1.00, 0.74, 0.58, 1.0),
    (0.70, 1.00, 0.55, 1.0),
)

# Panels, text and scene furniture.
BG_CANVAS: Final[RGBA] = (0.07, 0.075, 0.085, 1.0)
BG_IMAGE: Final[RGBA] = (0.03, 0.03, 0.035, 1.0)
BG_3D: Final[RGBA] = (0.10, 0.11, 0.13, 1.0)
TEXT: Final[RGBA] = (0.90, 0.92, 0.95, 1.0)
TEXT_DIM: Final[RGBA] = (0.62, 0.66, 0.72, 1.0)
WARN: Final[RGBA] = (1.00, 0.72, 0.25, 1.0)
GRID_MINOR: Final[RGBA] = (0.30, 0.33, 0.38, 1.0)
GRID_MAJOR: Final[RGBA] = (0.45, 0.49, 0.55, 1.0)
DROP: Final[RGBA] = (0.42, 0.45, 0.50, 1.0)
FRUSTUM: Final[RGBA] = (0.85, 0.87, 0.90, 1.0)
#: Camera axes x, y, z.
AXIS_COLORS: Final[tuple[RGBA, RGBA, RGBA]] = (
    (0.95, 0.25, 0.25, 1.0),
    (0.30, 0.85, 0.30, 1.0),
    (0.30, 0.45, 1.00, 1.0),
)

_CONF_RED: Final = np.array((0.92, 0.20, 0.18), dtype=np.float32)
_CONF_YELLOW: Final = np.array((0.98, 0.84, 0.20), dtype=np.float32)
_CONF_GREEN: Final = np.array((0.25, 0.88, 0.35), dtype=np.float32)

#: Uncertainty (mm) drawn fully red in rig mode (and anything larger, or a joint not triangulated).
UNCERTAINTY_RED_MM: Final = 20.0


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """Per-joint RGBA ``(N, 4)`` float32: red at 0, yellow at 0.5, green at 1 (clipped to [0, 1])."""
    c = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float32), nan=0.0), 0.0, 1.0)
    red, yellow, green = _CONF_RED, _CONF_YELLOW, _CONF_GREEN
    lo = np.clip(2.0 * c, 0.0, 1.0)[:, None]
    hi = np.clip(2.0 * c - 1.0, 0.0, 1.0)[:, None]
    rgb = np.where(c[:, None] < 0.5, red + (yellow - red) * lo, yellow + (green - yellow) * hi)
    return np.concatenate([rgb, np.ones((len(c), 1), np.float32)], axis=1)


def joint_quality(hand: HandPose, uncertainty_red_mm: float = UNCERTAINTY_RED_MM) -> np.ndarray:
    """``(21,)`` in [0, 1] for the colour scale of :func:`confidence_colors` (1 green, 0 red).

    ``1 - uncertainty_mm / uncertainty_red_mm`` (clipped; not triangulated = inf = 0) when the hand
    has an uncertainty, else its per-joint confidence.
    """
    if hand.uncertainty_mm is None:
        return np.clip(np.nan_to_num(np.asarray(hand.confidence, np.float64)), 0.0, 1.0)
    unc = np.nan_to_num(np.asarray(hand.uncertainty_mm, np.float64), nan=np.inf)
    return np.clip(1.0 - unc / uncertainty_red_mm, 0.0, 1.0)


def track_color(track_id: int) -> RGBA:
    """Label colour of a track: :data:`TRACK_COLORS` cycled by id; :data:`TEXT` before tracking (-1)."""
    return TRACK_COLORS[track_id % len(TRACK_COLORS)] if track_id >= 0 else TEXT


def rgb255(rgba: np.ndarray | RGBA) -> tuple[int, int, int]:
    """An RGB(A) colour in [0, 1] -> ``(r, g, b)`` ints in 0..255 (for OpenCV drawing)."""
    return tuple(int(round(255 * float(c))) for c in rgba[:3])  # type: ignore[return-value]
