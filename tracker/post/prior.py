"""The pose prior as a pipeline stage (``--prior``): :class:`models.prior.PosePrior` on each hand's 3D joints."""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.prior import PosePrior, PriorError
from models.refine_gate import GateReference, evaluate_gate, shipped_gate
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import FrameSet, HandPose

__all__ = ["PriorStage"]


class PriorStage:
    """Pipeline stage: pull each hand's 3D joints towards a 21-joint pose prior.

    Acts on ``HandPose.joints_3d`` (camera mm) and ``joints_world`` (world mm) when present, using
    ``HandPose.confidence`` for the confidence-aware blend (:meth:`PosePrior.project`); 2D joints
    are left alone. Hands without 3D pass through unchanged. The shipped prior is of right hands: a hand
    whose ``handedness`` is "left" is mirrored (x -> -x) before the projection and back after.

    Args:
        prior: a prior of the 21-joint layout (e.g. ``models.load_pretrained("prior_mp21")``).
        strength: blend weight in [0, 1]; None = the prior's recommended one.
        confidence_gain: in [0, 1], see :meth:`PosePrior.project`.
        gate: the no-harm gate (:mod:`models.refine_gate`): ``"shipped"`` (default) =
            ``models/weights/refine_gate_mp21.json`` (the real hands the shipped prior was fitted on),
            a 21-joint :class:`~models.refine_gate.GateReference`, or None (no gate). Each hand's
            strength is multiplied by its gate weight (that frame's hand size and bone proportions
            against the reference): a hand far from them is left as it is.
        rgb_only: leave hands of frames that carry a depth image alone (the default live stage: the
            prior was validated on the RGB path only).

    Raises:
        PriorError: the prior is not a 21-joint prior, or a parameter is out of range.
        tracker.core.errors.ModelError: the shipped gate reference is missing or unreadable.
    """

    def __init__(self, prior: PosePrior, strength: float | None = None, confidence_gain: float = 0.5,
                 gate: GateReference | Literal["shipped"] | None = "shipped", rgb_only: bool = False) -> None:
        strength = prior.strength if strength is None else float(strength)
        if prior.num_joints != NUM_JOINTS:
            raise PriorError(f"the live pipeline needs a {NUM_JOINTS}-joint prior, got the {prior.layout!r} "
                             f"prior with {prior.num_joints} joints; use models/weights/prior_mp21.npz")  # fmt: skip
        if not 0.0 <= strength <= 1.0 or not 0.0 <= confidence_gain <= 1.0:
            raise PriorError(f"strength and confidence_gain must be in [0, 1], got {strength}, {confidence_gain}")
        self.prior = prior
        self.strength = strength
        self.confidence_gain = confidence_gain
        self.gate = shipped_gate("mp21") if gate == "shipped" else gate
        self.rgb_only = rgb_only
        if self.gate is not None and self.gate.layout != "mediapipe":
            raise PriorError(f"the live prior stage needs a 21-joint gate reference, got {self.gate.layout!r}")

    def _apply(self, joints: np.ndarray | None, confidence: np.ndarray, left: bool) -> np.ndarray | None:
        if joints is None or not np.isfinite(joints).all():
            return joints
        strength = self.strength
        if self.gate is not None and strength > 0:
            strength *= evaluate_gate(joints[None], self.gate).weight  # bone lengths: mirror-free
        flip = np.array([-1.0, 1.0, 1.0]) if left else np.ones(3)  # the prior is of right hands: mirror x
        return self.prior.project(joints * flip, confidence, strength, self.confidence_gain) * flip

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        return [h if self.rgb_only and frameset.frames[h.view].depth is not None else
                h.replace(joints_3d=self._apply(h.joints_3d, h.confidence, h.handedness == "left"),
                          joints_world=self._apply(h.joints_world, h.confidence, h.handedness == "left"))
                for h in hands]  # fmt: skip
