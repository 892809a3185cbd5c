"""Live causal temporal refinement of each hand's 3D joints with HTT's pose block (``--temporal-refine``).

Per track ``(view, track_id)`` the stage keeps the last ``CLIP_FRAMES`` frames of ``joints_3d`` (mm,
camera frame) and their timestamps; every frame, all hands' windows go through the network in one
batch and each hand's newest frame is replaced by the refined one
(:func:`models.gestures.denoise.refine_last`: shape refined, root unchanged). Windows shorter than
``min_frames`` (a new track) pass through. The network is the shipped ``temporal_refiner`` (a
causal pose block trained on the data engine's hands, :func:`models.gestures.denoise.train_refiner`),
a gesture network's pose block (``shrec14`` / ``shrec28``) or a checkpoint; it loads when the stage
is built.

Measured against One Euro on generated sequences (``scripts/eval_temporal_refine.py``); the
README's gesture section has the numbers and why it is not a default.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from tracker.core.structures import FrameSet, HandPose
from tracker.post.tracks import drop_ended_tracks

__all__ = ["TemporalRefineConfig", "TemporalRefiner", "temporal_refine_stage"]


@dataclass(frozen=True)
class TemporalRefineConfig:
    """The temporal refiner stage.

    Attributes:
        model: the network whose pose block refines: ``temporal_refiner`` (the shipped refiner),
            ``shrec14`` / ``shrec28`` (a gesture network's) or a checkpoint ``.pt``; None = off.
    """

    model: str | None = None


class TemporalRefiner:
    """Pipeline stage (module docstring). Runs after identity, before smoothing.

    Args:
        model: an :class:`~models.htt.HTT` with a pose block (eval mode).
        device: where it runs.
        frames: window length (default ``CLIP_FRAMES``).
        min_frames: shortest window refined.
    """

    def __init__(self, model, device: str = "cpu", frames: int | None = None, min_frames: int = 8) -> None:  # noqa: ANN001
        from models.gestures.features import CLIP_FRAMES

        self.model = model
        self.device = device
        self.frames = frames or CLIP_FRAMES
        self.min_frames = min_frames
        self._history: dict[tuple[int, int], deque[tuple[float, np.ndarray]]] = {}

    def reset(self) -> None:
        """Forget every track's history."""
        self._history.clear()

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        from models.gestures.denoise import refine_last

        drop_ended_tracks(self._history, hands)
        todo, windows = [], []
        for i, hand in enumerate(hands):
            key = (hand.view, hand.track_id)
            if hand.joints_3d is None:
                self._history.pop(key, None)
                continue
            hist = self._history.setdefault(key, deque(maxlen=self.frames))
            if hist and hand.timestamp <= hist[-1][0]:
                continue
            hist.append((hand.timestamp, np.asarray(hand.joints_3d, np.float64)))
            if len(hist) >= self.min_frames:
                times = [t for t, _ in hist]
                todo.append(i)
                windows.append((np.stack([j for _, j in hist]), max(times[-1] - times[0], 1e-3)))
        if not todo:
            return hands
        refined = refine_last(self.model, windows, self.device)
        out = list(hands)
        for k, i in enumerate(todo):
            out[i] = hands[i].replace(joints_3d=refined[k])
        return out


def temporal_refine_stage(model: str = "temporal_refiner", device: str = "cpu") -> TemporalRefiner:
    """The stage with the network ``model`` (:class:`TemporalRefineConfig`).

    Raises:
        ModelError: the network cannot be loaded or has no pose block (``--temporal-refine: ...``).
    """
    from models.gestures.recognizer import ClassRecognizer, load_recognizer
    from models.registry import load_pretrained
    from tracker.core.errors import ModelError

    try:
        rec = load_pretrained(model, device) if model == "temporal_refiner" else load_recognizer(model, device)
    except ModelError as exc:
        raise ModelError(f"--temporal-refine: {exc}") from exc
    if not isinstance(rec, ClassRecognizer) or rec.model.pose_head is None:
        raise ModelError(f"--temporal-refine: {model!r} is not a gesture network with a pose block")
    return TemporalRefiner(rec.model, device)
