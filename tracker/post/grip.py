"""Live pinch / grab state of each tracked hand, from its 3D joints (no model, microseconds per hand).

* **pinch**: the thumb tip -> index tip distance, in hand sizes (the mean wrist -> finger-MCP
  distance of the frame, so it holds for children's and adults' hands and for any depth error of the
  scale); on below ``pinch_on``, off again above ``pinch_off`` (hysteresis: no flicker at the edge).
* **grab**: how far the four fingers are curled: per finger, the tip -> wrist distance over the
  MCP -> wrist distance is ~1.9 for a straight finger and ~1.0 for a fist; a finger's curl maps it
  linearly from ``open_ratio`` (0) to ``fist_ratio`` (1), and ``grab_strength`` is the curl of the
  least curled finger (a fist curls all four; pointing with one finger is no grab); on at
  ``grab_on``, off below ``grab_off``.

Joints: ``joints_3d`` (mm, camera frame), else ``joints_world`` (rig); a hand with neither, or with a
needed joint missing, keeps ``grip`` None and its state. State is per ``(view, track_id)`` and is
dropped when the track ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.core.errors import ConfigError
from tracker.core.joints import KNUCKLES, TIPS, WRIST
from tracker.core.structures import FrameSet, Grip, HandPose
from tracker.post.tracks import drop_ended_tracks

__all__ = ["GripConfig", "GripStage", "grip_measures"]

THUMB_TIP, INDEX_TIP = TIPS[0], TIPS[1]
_MCP = KNUCKLES
_TIPS = TIPS[1:]


@dataclass(frozen=True)
class GripConfig:
    """Thresholds of :class:`GripStage` (module docstring); distances in hand sizes.

    Attributes:
        enabled: run the stage (``--grip``; ``--gestures`` turns it on too).
        pinch_on, pinch_off: thumb-index tip distance at which a pinch starts / ends.
        grab_on, grab_off: grab strength at which a grab starts / ends.
        open_ratio, fist_ratio: finger tip->wrist / MCP->wrist ratio of grab strength 0 and 1.
    """

    enabled: bool = False
    pinch_on: float = 0.30
    pinch_off: float = 0.45
    grab_on: float = 0.75
    grab_off: float = 0.55
    open_ratio: float = 1.85
    fist_ratio: float = 1.10

    def __post_init__(self) -> None:
        if not 0 < self.pinch_on < self.pinch_off:
            raise ConfigError(f"grip: need 0 < pinch_on < pinch_off, got {self.pinch_on}, {self.pinch_off}")
        if not 0 <= self.grab_off < self.grab_on <= 1:
            raise ConfigError(f"grip: need 0 <= grab_off < grab_on <= 1, got {self.grab_off}, {self.grab_on}")
        if not self.fist_ratio < self.open_ratio:
            raise ConfigError(f"grip: need fist_ratio < open_ratio, got {self.fist_ratio}, {self.open_ratio}")


def grip_measures(joints: np.ndarray, config: GripConfig = GripConfig()) -> tuple[float, float, float] | None:
    """``(pinch distance mm, pinch distance in hand sizes, grab strength 0..1)`` of one hand's
    ``(21, 3)`` joints (mm), or None when a needed joint is missing."""
    j = np.asarray(joints, np.float64)
    if not np.isfinite(j[[WRIST, THUMB_TIP, INDEX_TIP, *_MCP, *_TIPS]]).all():
        return None
    mcp = np.linalg.norm(j[list(_MCP)] - j[WRIST], axis=1)
    size = float(mcp.mean())
    if size <= 1e-6:
        return None
    pinch_mm = float(np.linalg.norm(j[THUMB_TIP] - j[INDEX_TIP]))
    ratio = np.linalg.norm(j[list(_TIPS)] - j[WRIST], axis=1) / np.maximum(mcp, 1e-6)
    curl = np.clip((config.open_ratio - ratio) / (config.open_ratio - config.fist_ratio), 0.0, 1.0)
    return pinch_mm, pinch_mm / size, float(curl.min())


class GripStage:
    """Pipeline stage: sets :attr:`HandPose.grip` of every hand (module docstring). Runs after the
    identity stage (and smoothing, so the state follows the smoothed joints)."""

    def __init__(self, config: GripConfig = GripConfig()) -> None:
        self.config = config
        self._state: dict[tuple[int, int], tuple[bool, bool]] = {}

    def reset(self) -> None:
        """Forget every hand's state."""
        self._state.clear()

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        c = self.config
        drop_ended_tracks(self._state, hands)
        out = []
        for hand in hands:
            joints = hand.joints_3d if hand.joints_3d is not None else hand.joints_world
            m = None if joints is None else grip_measures(joints, c)
            if m is None:
                out.append(hand)
                continue
            key = (hand.view, hand.track_id)
            pinch, grab = self._state.get(key, (False, False))
            pinch_mm, pinch_rel, strength = m
            pinch = pinch_rel < (c.pinch_off if pinch else c.pinch_on)
            grab = strength >= (c.grab_off if grab else c.grab_on)
            self._state[key] = (pinch, grab)
            out.append(hand.replace(grip=Grip(pinch, round(pinch_mm, 2), grab, round(strength, 4))))
        return out
