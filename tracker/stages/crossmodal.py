"""The cross-modal estimator stage (``--estimator crossmodal``): the hand's shape from the cross-modal
latent model (:mod:`models.crossmodal`), RGB alone or RGB-D.

For each hand MediaPipe found (it needs MediaPipe's 2D and world landmarks), the stage cuts the same
inputs the model was trained on (:mod:`models.crossmodal_data`: the square crop around the 2D
landmarks, the landmark features, and with a registered depth image the depth points of the hand
region around the depth reference point, in the frame of the viewing ray through it), runs the model
(all hands of a frame in one batch per modality) and replaces ``joints_local`` by the decoded shape
(for RGB alone by default its mean with MediaPipe's own, ``blend_rgb``):
the 21 joints relative to the palm centre, mm, in the frame of the hand's viewing ray, as MediaPipe's
world landmarks are (:func:`models.crossmodal_data.to_ray_frame`). The decoded hand surface goes into
``surface`` (same frame). The stages after it place the hand as for MediaPipe's shape: the metric lift
(:mod:`tracker.stages.lift`) from the 2D joints, then with depth the RGB-D lift
(:mod:`tracker.stages.depth_lift`). With depth the two modalities are fused in the latent space
(product of experts); a frame without depth, or a hand whose depth region has too few readings, uses
the RGB posterior alone.

A non-finite model output keeps MediaPipe's shape for that hand (logged once per stream).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.core.errors import ModelError
from tracker.core.joints import PALM_ROOT
from tracker.core.structures import FrameSet, HandPose

__all__ = ["CrossModalStageConfig", "CrossModalEstimator", "blend_shapes"]

log = logging.getLogger(__name__)


def blend_shapes(model_mm: np.ndarray, mediapipe_mm: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` x the model's shape + (1 - ``weight``) x MediaPipe's world landmarks, both ``(..., 21, 3)``
    mm in the ray frame and taken about their palm centres (the model's already is)."""
    mp = np.asarray(mediapipe_mm, dtype=np.float64)
    mp = mp - mp[..., list(PALM_ROOT), :].mean(axis=-2, keepdims=True)
    return weight * np.asarray(model_mm, dtype=np.float64) + (1.0 - weight) * mp


@dataclass(frozen=True)
class CrossModalStageConfig:
    """Options of :class:`CrossModalEstimator`.

    Attributes:
        weights: a checkpoint of ``scripts/train_crossmodal.py``; None = the shipped ``crossmodal``.
        use_depth: fuse the depth image when the frame has one (False: RGB only everywhere).
        points: depth points sampled per hand; None = as many as the model was trained with (its
            checkpoint's ``meta["points"]``, else 256).
        cube_mm: side of the cube around the depth reference point the points come from, mm.
        min_points: fewer depth readings than this in the cube = RGB only for that hand.
        blend_rgb: weight in [0, 1] of the model's shape against MediaPipe's world landmarks for a
            hand decoded from RGB alone (1 = the model's shape only). The two estimators' errors are
            partly independent: on held-out blocks of the real development photos the mean of the two
            (0.5) beat both (README "Cross-modal estimator").
        blend_rgbd: the same for a hand decoded from RGB-D (1: the depth makes the model's shape the
            better one by far).
        device: torch device (set by the builder from ``TrackerConfig.device``).
    """

    weights: Path | None = None
    use_depth: bool = True
    points: int | None = None
    cube_mm: float = 250.0
    min_points: int = 32
    blend_rgb: float = 0.5
    blend_rgbd: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if (self.points is not None and self.points < 1) or self.min_points < 1 or not self.cube_mm > 0:
            raise ValueError(f"invalid cross-modal stage settings: {self}")
        if not (0.0 <= self.blend_rgb <= 1.0 and 0.0 <= self.blend_rgbd <= 1.0):
            raise ValueError(f"cross-modal blend weights must be in [0, 1], got {self.blend_rgb}, {self.blend_rgbd}")


class CrossModalEstimator:
    """Pipeline stage (module docstring). Loads the model at construction: a missing or corrupt file is
    a :class:`~tracker.core.errors.ModelError` (``--estimator crossmodal: ...``) before the first frame."""

    def __init__(self, config: CrossModalStageConfig = CrossModalStageConfig(), model: object | None = None) -> None:
        self.config = config
        if model is None:
            from models.registry import load_pretrained

            try:
                model = load_pretrained("crossmodal", device=config.device, path=config.weights)
            except ModelError as exc:
                raise ModelError(f"--estimator crossmodal: {exc}") from exc
        self.model = model
        meta = getattr(model, "meta", None) or {}
        self._points = int(config.points if config.points is not None else meta.get("points", 256))
        self._rng = np.random.default_rng(0)
        self._warned = False

    def inputs(self, frameset: FrameSet, hand: HandPose) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(landmark features, crop (crop, crop, 3) uint8 or None, points (N, 3) or None)`` of one hand."""
        from models.crossmodal_data import hand_depth_inputs, hand_rgb_inputs
        from tracker.core.geometry import rotation_to_ray

        frame = frameset.frames[hand.view]
        features, image = hand_rgb_inputs(frame.image, hand, self.model.config.crop)
        points = None
        if self.config.use_depth and frame.depth is not None:
            depth_in = hand_depth_inputs(frame.depth, frame.camera.intrinsics, hand.joints_2d, self._points,
                                         self.config.cube_mm, self.config.min_points, self._rng)  # fmt: skip
            if depth_in is not None:
                points = (depth_in[0] @ rotation_to_ray(depth_in[1])).astype(np.float32)  # R.T @ p: the ray frame
        return features, image, points

    def estimate(self, frameset: FrameSet, hands: list[HandPose]) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """``(shape (21, 3) mm, surface (M, 3) mm)`` per hand (ray frame, palm-centre origin), None for a
        hand without MediaPipe world landmarks or with a non-finite output."""
        import torch

        from models.crossmodal import POINT_SCALE_MM

        todo = [i for i, h in enumerate(hands) if h.joints_local is not None]
        inputs = {i: self.inputs(frameset, hands[i]) for i in todo}
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(hands)
        device = next(self.model.parameters()).device
        groups = ([i for i in todo if inputs[i][2] is not None], [i for i in todo if inputs[i][2] is None])
        with torch.inference_mode():
            for group in groups:
                if not group:
                    continue
                lm = torch.from_numpy(np.stack([inputs[i][0] for i in group])).to(device)
                img = None
                if self.model.config.crop:
                    img = torch.from_numpy(np.stack([inputs[i][1] for i in group])).to(device)
                    img = img.permute(0, 3, 1, 2).float() / 255.0
                pts = None
                if inputs[group[0]][2] is not None:
                    pts = torch.from_numpy(np.stack([inputs[i][2] for i in group])).to(device)
                res = self.model(landmarks=lm, image=img, points=pts)
                size = torch.exp(res["log_size"])[:, None, None]
                shape = (res["pose"] * size).double().cpu().numpy()
                surface = (res["cloud"] * POINT_SCALE_MM).double().cpu().numpy()
                blend = self.config.blend_rgbd if pts is not None else self.config.blend_rgb
                for k, i in enumerate(group):
                    if np.isfinite(shape[k]).all() and np.isfinite(surface[k]).all():
                        out[i] = (blend_shapes(shape[k], hands[i].joints_local, blend), surface[k])
                    elif not self._warned:
                        self._warned = True
                        log.warning("cross-modal model gave a non-finite shape; keeping MediaPipe's for that hand")
        return out

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        if not hands:
            return hands
        est = self.estimate(frameset, hands)
        return [h if e is None else h.replace(joints_local=e[0], surface=e[1]) for h, e in zip(hands, est)]
