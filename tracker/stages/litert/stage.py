"""The LiteRT hand landmark stage: MediaPipe's two hand networks, run directly, with our own tracking.

Same models, pre- and post-processing as MediaPipe's legacy ``hand_landmark_tracking_cpu`` graph (see
:mod:`~tracker.stages.litert.palm`, :mod:`~tracker.stages.litert.roi`,
:mod:`~tracker.stages.litert.landmark_model`), without the graph's overhead and with a palm detector
that runs only when it has to (the policy is on :class:`LiteRTHands`). Opt-in; the default landmark
stage is still :class:`tracker.stages.landmarks.MediaPipeHands`.
"""

from __future__ import annotations

import logging
import math
from typing import Self

import numpy as np

from tracker.core.errors import EstimatorError
from tracker.core.structures import FrameSet, HandPose
from tracker.stages.landmarks import _KEEP, _SWAP, LandmarkConfig
from tracker.stages.litert.landmark_model import HandLandmarkModel
from tracker.stages.litert.palm import PalmDetector
from tracker.stages.litert.roi import (
    Roi,
    crop,
    crop_to_image,
    landmarks_to_roi,
    palm_to_roi,
    roi_iou,
)
from tracker.stages.litert.runtime import mediapipe_model_path

__all__ = ["LandmarkConfig", "LiteRTHands"]

log = logging.getLogger(__name__)

ASSOCIATION_IOU = 0.5  # a palm ROI overlapping a tracked ROI more than this is the same hand (MediaPipe's value)
DUPLICATE_IOU = 0.5  # two tracks whose next ROIs overlap more than this follow the same hand: keep one


class LiteRTHands:
    """Pipeline stage: RGB frame -> hands with 2D joints (px), local metric 3D (mm), handedness.

    A drop-in for :class:`tracker.stages.landmarks.MediaPipeHands`: the same models (lite or full by
    ``model_complexity``), the same ``HandPose`` fields and conventions (``joints_local`` = MediaPipe's
    world landmarks in mm, rotated into the image axes as MediaPipe does; ``score`` and
    ``handedness_score`` = the handedness probability, as MediaPipe's legacy API reports it;
    per-joint confidence = that score, times ``edge_confidence`` outside the image; anatomical
    handedness with ``mirrored``).

    Tracking policy (per frame; ``static_image_mode`` skips tracking and detects on every image):

    1. Each tracked hand's ROI comes from its landmarks in the previous frame (MediaPipe's rule).
    2. The palm detector runs when no hand is tracked (every frame until one is found), or when
       fewer than ``max_hands`` are tracked and ``redetect_every`` frames have passed since it last
       ran. Palm ROIs overlapping a tracked ROI (IoU > 0.5) are dropped; the rest, best score first,
       are added up to ``max_hands``.
    3. The landmark model runs on each ROI; a hand whose presence is below
       ``min_tracking_confidence`` is dropped (when it was the last one, the detector runs on the
       next frame). Two hands whose next ROIs overlap (IoU > 0.5) are one hand: the one with the
       higher presence is kept.

    Trade-off: MediaPipe's graph runs the detector on every frame while fewer than ``max_hands``
    hands are tracked, i.e. always with one hand in view and ``max_hands=2``. Here a hand that
    enters while another is tracked is found up to ``redetect_every - 1`` frames later (10 at 30 fps:
    at most 0.3 s) and the detector's cost is paid once per ``redetect_every`` frames instead of every
    frame. Re-acquiring the only hand after it was lost costs one frame, as in MediaPipe.

    Args:
        config: the options.
        view: index of the view of the frame set this stage reads.

    Raises:
        ModelError: a model file is missing or corrupt, or ai-edge-litert is not installed.
    """

    def __init__(self, config: LandmarkConfig = LandmarkConfig(), view: int = 0) -> None:
        self.config = config
        self.view = view
        c = config
        self._palm: PalmDetector | None = PalmDetector(
            mediapipe_model_path("palm", c.model_complexity), c.num_threads
        )
        self._landmarks: HandLandmarkModel | None = HandLandmarkModel(
            mediapipe_model_path("landmark", c.model_complexity), c.num_threads
        )
        self._labels = _KEEP if c.mirrored else _SWAP
        self._tracks: list[Roi] = []
        self._since_detection = math.inf  # frames since the palm detector last ran

    def reset(self) -> None:
        """Forget the tracked hands: the next frame runs the palm detector."""
        self._tracks = []
        self._since_detection = math.inf

    def close(self) -> None:
        """Release the interpreters (idempotent)."""
        self._palm = None
        self._landmarks = None
        self._tracks = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tracked(self) -> int:
        """How many hands the next frame will track from landmarks (before any re-detection)."""
        return len(self._tracks)

    def _rois(self, image: np.ndarray) -> list[Roi]:
        """Step 1 and 2 of the policy: this frame's ROIs."""
        c = self.config
        assert self._palm is not None
        rois = [] if c.static_image_mode else list(self._tracks)
        self._since_detection += 1
        due = not rois or (
            len(rois) < c.max_hands and self._since_detection >= c.redetect_every
        )
        if c.static_image_mode or due:
            self._since_detection = 0
            for palm in self._palm(image, c.min_detection_confidence):
                if len(rois) >= c.max_hands:
                    break
                roi = palm_to_roi(palm.box, palm.keypoints)
                if all(roi_iou(roi, t) <= ASSOCIATION_IOU for t in rois):
                    rois.append(roi)
        return rois

    def detect(self, image: np.ndarray, timestamp: float) -> list[HandPose]:
        """Find hands in one RGB uint8 ``(H, W, 3)`` image (a video frame: updates the tracks).

        Returns:
            The hands found, at most ``max_hands``.

        Raises:
            ValueError: the image is not RGB uint8 (H, W, 3).
            EstimatorError: the stage was closed.
        """
        if self._palm is None or self._landmarks is None:
            raise EstimatorError("LiteRTHands is closed")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"LiteRTHands needs an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}"
            )
        c = self.config
        h, w = image.shape[:2]
        size = self._landmarks.size
        found: list[tuple[float, Roi, HandPose]] = []
        for roi in self._rois(image):
            out = self._landmarks(crop(image, roi, size))
            if out.presence < c.min_tracking_confidence:
                continue
            uv = crop_to_image(out.landmarks[:, :2], roi, size)
            cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
            world = out.world.copy()
            world[:, 0] = out.world[:, 0] * cos - out.world[:, 1] * sin
            world[:, 1] = out.world[:, 0] * sin + out.world[:, 1] * cos
            local = world * 1000.0
            if not (np.isfinite(uv).all() and np.isfinite(local).all()):
                log.warning("the landmark model returned a non-finite hand; dropped")
                continue
            left = (
                out.handedness >= 0.5
            )  # MediaPipe's label "Left" (mirrored-view convention)
            score = out.handedness if left else 1.0 - out.handedness
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            conf = np.where(inside, score, score * c.edge_confidence)
            pose = HandPose(
                joints_2d=uv,
                confidence=conf,
                timestamp=timestamp,
                joints_local=local,
                score=score,
                handedness=self._labels["Left" if left else "Right"],  # type: ignore[arg-type]
                handedness_score=score,
                view=self.view,
            )
            found.append((out.presence, landmarks_to_roi(uv), pose))
        kept: list[int] = []
        for i in sorted(range(len(found)), key=lambda j: -found[j][0]):
            if all(roi_iou(found[i][1], found[j][1]) <= DUPLICATE_IOU for j in kept):
                kept.append(i)
        kept.sort()
        self._tracks = [] if c.static_image_mode else [found[i][1] for i in kept]
        return [found[i][2] for i in kept]

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        """Stage interface: detect hands in view ``self.view`` of the frame set (input hands ignored)."""
        frame = frameset.frames[self.view]
        return self.detect(frame.image, frame.timestamp)
