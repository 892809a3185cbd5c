"""Hand landmark stage backed by MediaPipe Hands and the models inside the mediapipe wheel.

mediapipe 0.10.14 ships the palm detector and the hand landmark network (``palm_detection_*.tflite``,
``hand_landmark_*.tflite``) inside the wheel and runs them through its legacy ``solutions.hands``
graph, with no download. In tracking mode (``static_image_mode=False``) the graph re-uses the hand
ROI of the previous frame and only runs the palm detector when a hand is lost, which is both faster
and steadier than per-image detection.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tracker.core.joints import NUM_JOINTS
from tracker.core.errors import EstimatorError
from tracker.core.structures import FrameSet, HandPose

__all__ = ["MediaPipeConfig", "LandmarkConfig", "MediaPipeHands", "landmark_stage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaPipeConfig:
    """Options of the MediaPipe hand landmark stage.

    Attributes:
        max_hands: most hands reported per image.
        model_complexity: 0 = lite landmark model (faster), 1 = full model (more accurate).
        min_detection_confidence: palm detector threshold in [0, 1].
        min_tracking_confidence: landmark presence threshold for keeping a tracked ROI in [0, 1].
        static_image_mode: True runs the palm detector on every image (unrelated photos);
            False tracks the hand ROI from the previous frame (video, live).
        mirrored: True when images are mirrored (selfie view). MediaPipe labels handedness as if
            the input were mirrored; for a plain (non-mirrored) camera the label is swapped so
            ``HandPose.handedness`` is always the person's anatomical hand.
        edge_confidence: per-joint confidence given to joints predicted outside the image.
    """

    max_hands: int = 2
    model_complexity: int = 1
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False
    mirrored: bool = False
    edge_confidence: float = 0.3

    def __post_init__(self) -> None:
        if not 1 <= self.max_hands <= 8:
            raise ValueError(f"max_hands must be in 1..8, got {self.max_hands}")
        if self.model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {self.model_complexity}")


@dataclass(frozen=True)
class LandmarkConfig(MediaPipeConfig):
    """The landmark stage of the pipeline: every :class:`MediaPipeConfig` option, and which runtime
    runs MediaPipe's hand models.

    Attributes:
        backend: ``litert`` (the default: the two models run directly on LiteRT with handtrack's own
            palm decoding, ROI and tracking policy, :class:`tracker.stages.litert.LiteRTHands`: ~3x
            faster with two hands allowed, same joints to 0.2 px on the demo) or ``mediapipe``
            (MediaPipe's own graph, :class:`MediaPipeHands`: the reference and fallback).
        redetect_every: ``litert``: while fewer than ``max_hands`` hands are tracked (but at least
            one), run the palm detector at most once every this many frames (1 = every frame, as
            MediaPipe's graph; 5 keeps the recall of a second hand entering within 1 % of the graph's,
            10 costs 3 %: ``scripts/eval_landmarker.py``); with no hand tracked it runs on every frame.
        num_threads: ``litert``: interpreter threads of each of the two models.
    """

    backend: Literal["mediapipe", "litert"] = "litert"
    redetect_every: int = 5
    num_threads: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend not in ("mediapipe", "litert"):
            raise ValueError(f"backend must be 'mediapipe' or 'litert', got {self.backend!r}")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {self.redetect_every}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")

    @classmethod
    def from_mediapipe(cls, config: MediaPipeConfig, **extra: object) -> "LandmarkConfig":
        """The options of ``config`` plus ``extra`` (``backend``, ``redetect_every``, ``num_threads``)."""
        base = {f: getattr(config, f) for f in MediaPipeConfig.__dataclass_fields__}
        return cls(**base, **extra)  # type: ignore[arg-type]


def landmark_stage(config: MediaPipeConfig, view: int | Sequence[int] = 0):  # noqa: ANN201 - MediaPipeHands | LiteRTHands
    """The landmark stage for ``config`` (its ``backend`` when it is a :class:`LandmarkConfig`), for view ``view``.

    Several views (a sequence) are one LiteRT stage for all of them; MediaPipe's graph reads one view.

    Raises:
        ModelError: ``litert`` without its runtime or with a missing / corrupt model file.
    """
    if isinstance(config, LandmarkConfig) and config.backend == "litert":
        from tracker.stages.litert import LiteRTHands

        return LiteRTHands(config, view=view)
    if not isinstance(view, int):
        raise ValueError("MediaPipe's graph reads one view: make one stage per view")
    return MediaPipeHands(config, view=view)


_SWAP = {"Left": "right", "Right": "left"}
_KEEP = {"Left": "left", "Right": "right"}


class MediaPipeHands:
    """Pipeline stage: RGB frame -> hands with 2D joints (px), local metric 3D (mm), handedness.

    The output ``HandPose.joints_local`` holds MediaPipe's metric "world" landmarks converted to
    millimetres: root-relative (origin near the hand centre), axes of the camera frame. Absolute
    camera-frame 3D is left to :class:`tracker.stages.lift.MetricLifter`.

    Per-joint confidence: the legacy graph reports one presence/handedness score per hand and no
    per-joint visibility, so every joint gets the hand's score, lowered to ``edge_confidence``
    times it for joints predicted outside the image.
    """

    def __init__(self, config: MediaPipeConfig = MediaPipeConfig(), view: int = 0) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ info/warning chatter
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
        import mediapipe as mp  # heavy import: only when the stage is built

        self.config = config
        self.view = view
        self._solution = mp.solutions.hands
        self._hands = self._make()
        self._labels = _KEEP if config.mirrored else _SWAP

    def _make(self):  # noqa: ANN202 - MediaPipe's legacy solution object
        c = self.config
        return self._solution.Hands(
            static_image_mode=c.static_image_mode,
            max_num_hands=c.max_hands,
            model_complexity=c.model_complexity,
            min_detection_confidence=c.min_detection_confidence,
            min_tracking_confidence=c.min_tracking_confidence,
        )

    def reset(self) -> None:
        """Forget the tracked hands (a new graph: the next frame runs the palm detector)."""
        self.close()
        self._hands = self._make()

    def close(self) -> None:
        if self._hands is not None:
            self._hands.close()
            self._hands = None

    def __enter__(self) -> "MediaPipeHands":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, image: np.ndarray, timestamp: float) -> list[HandPose]:
        """Run MediaPipe on one RGB uint8 ``(H, W, 3)`` image.

        Raises:
            ValueError: the image is not RGB uint8 (H, W, 3).
            EstimatorError: the stage was closed.
        """
        if self._hands is None:
            raise EstimatorError("MediaPipeHands is closed")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"MediaPipe needs an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image))
        if not result.multi_hand_landmarks:
            return []
        hands: list[HandPose] = []
        for lms, world, cls in zip(
            result.multi_hand_landmarks, result.multi_hand_world_landmarks, result.multi_handedness
        ):
            uv = np.array([(p.x * w, p.y * h) for p in lms.landmark], dtype=np.float64)
            local = np.array([(p.x, p.y, p.z) for p in world.landmark], dtype=np.float64) * 1000.0
            if uv.shape != (NUM_JOINTS, 2) or not (np.isfinite(uv).all() and np.isfinite(local).all()):
                log.warning("MediaPipe returned a malformed or non-finite hand; dropped")
                continue
            top = cls.classification[0]
            score = float(top.score)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            conf = np.where(inside, score, score * self.config.edge_confidence)
            hands.append(
                HandPose(
                    joints_2d=uv,
                    confidence=conf,
                    timestamp=timestamp,
                    joints_local=local,
                    score=score,
                    handedness=self._labels.get(top.label, "unknown"),  # type: ignore[arg-type]
                    handedness_score=score,
                    view=self.view,
                )
            )
        return hands

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        """Stage interface: detect hands in view ``self.view`` of the frame set (input hands ignored)."""
        frame = frameset.frames[self.view]
        return self.detect(frame.image, frame.timestamp)
