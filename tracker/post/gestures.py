"""Live gesture detection: an online detector (:mod:`models.gestures.online`) on each tracked hand.

Each track ``(view, track_id)`` gets its own causal :class:`~models.gestures.online.OnlineDetector`
fed with the hand's joints (``joints_world`` for a rig, else ``joints_3d``; mm) at the frame's
timestamp; all detectors share one recogniser (``shrec14``, ``shrec28``, a checkpoint or a custom
gesture set), and the windows of every hand due on a frame are scored in one batch. When a detector completes a gesture, the event (:class:`~tracker.core.structures.GestureEvent`,
frames are the stream's frame indices) is set as :attr:`HandPose.gesture` on that frame's hand: one
frame per gesture, the end of the gesture plus the detector's settling delay (``settle_hops`` x
``hop`` frames). A track that ends loses its pending gesture (it was never completed in view).

torch and the network load when the stage is built (``--gestures``), never otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tracker.core.errors import ConfigError
from tracker.core.structures import FrameSet, HandPose
from tracker.post.tracks import drop_ended_tracks

__all__ = ["GestureConfig", "GestureStage", "gesture_stage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GestureConfig:
    """The live gesture stage.

    Attributes:
        model: ``shrec14`` / ``shrec28`` (the shipped networks), a checkpoint ``.pt`` or a gesture set
            ``.npz`` (``python -m models.gestures enrol``); None = off.
        threshold: minimum event score in [0, 1]; None = the detector's default.
    """

    model: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"gestures threshold must be in [0, 1], got {self.threshold}")


class GestureStage:
    """Pipeline stage: online gesture detection per track (module docstring). Runs after identity
    and smoothing.

    Args:
        recognizer: a :class:`~models.gestures.recognizer.GestureRecognizer`.
        config: the detector's :class:`~models.gestures.online.OnlineConfig` (default settings if None).
    """

    def __init__(self, recognizer, config=None) -> None:  # noqa: ANN001
        from models.gestures.online import OnlineConfig

        self.recognizer = recognizer
        self.config = config or OnlineConfig()
        self._detectors: dict = {}

    def reset(self) -> None:
        """Forget every track's stream."""
        self._detectors.clear()

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        from models.gestures.online import OnlineDetector

        drop_ended_tracks(self._detectors, hands)
        due: list[tuple[int, OnlineDetector, list]] = []  # (hand index, detector, its windows)
        for i, hand in enumerate(hands):
            joints = hand.joints_world if hand.joints_world is not None else hand.joints_3d
            if joints is None or hand.track_id < 0:
                continue
            det = self._detectors.get((hand.view, hand.track_id))
            if det is None:
                det = self._detectors[(hand.view, hand.track_id)] = OnlineDetector(self.recognizer, self.config)
            if det.add(frameset.index, frameset.timestamp, joints):
                due.append((i, det, det.windows()))
        if not due:
            return hands
        clips = [(j, d) for _, _, wins in due for _, j, d in wins]
        scores = self.recognizer.window_scores(clips) if clips else None  # every hand's windows, one batch
        out = list(hands)
        start = 0
        for i, det, wins in due:
            events = det.decide(wins, None if scores is None else scores[start : start + len(wins)])
            start += len(wins)
            if events:
                event = max(events, key=lambda e: e.score)
                log.info("track %d: %s (%.2f), frames %d-%d", hands[i].track_id, event.label, event.score,
                         event.start_frame, event.end_frame)  # fmt: skip
                out[i] = hands[i].replace(gesture=event)
        return out


def gesture_stage(config: GestureConfig, device: str = "cpu") -> GestureStage:
    """The stage for ``config.model``, the network loaded now.

    Raises:
        ModelError: unknown name, missing or corrupt model / gesture set (``--gestures: ...``).
    """
    from dataclasses import replace

    from models.gestures.online import OnlineConfig
    from models.gestures.recognizer import load_recognizer
    from tracker.core.errors import ModelError

    try:
        recognizer = load_recognizer(str(config.model), device)
    except ModelError as exc:
        raise ModelError(f"--gestures: {exc}") from exc
    online = OnlineConfig() if config.threshold is None else replace(OnlineConfig(), threshold=config.threshold)
    return GestureStage(recognizer, online)
