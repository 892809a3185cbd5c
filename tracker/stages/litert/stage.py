"""The LiteRT hand landmark stage: MediaPipe's two hand networks, run directly, with our own tracking.

Same models, pre- and post-processing as MediaPipe's legacy ``hand_landmark_tracking_cpu`` graph (see
:mod:`~tracker.stages.litert.palm`, :mod:`~tracker.stages.litert.roi`,
:mod:`~tracker.stages.litert.landmark_model`), without the graph's overhead and with a palm detector
that runs only when it has to (the policy is on :class:`LiteRTHands`). The default landmark stage;
:class:`tracker.stages.landmarks.MediaPipeHands` (MediaPipe's graph) is the reference and fallback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from tracker.core.errors import EstimatorError
from tracker.core.structures import FrameSet, HandPose
from tracker.stages.landmarks import _KEEP, _SWAP, LandmarkConfig
from tracker.stages.litert.landmark_model import HandLandmarkModel, LandmarkOutput
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


@dataclass
class _ViewTracks:
    """Tracking state of one view: the ROIs for its next frame, frames since its detector ran."""

    rois: list[Roi] = field(default_factory=list)
    since_detection: float = math.inf


class LiteRTHands:
    """Pipeline stage: RGB frame(s) -> hands with 2D joints (px), local metric 3D (mm), handedness.

    A drop-in for :class:`tracker.stages.landmarks.MediaPipeHands`: the same models (lite or full by
    ``model_complexity``), the same ``HandPose`` fields and conventions (``joints_local`` = MediaPipe's
    world landmarks in mm, rotated into the image axes as MediaPipe does; ``score`` and
    ``handedness_score`` = the handedness probability, as MediaPipe's legacy API reports it;
    per-joint confidence = that score, times ``edge_confidence`` outside the image; anatomical
    handedness with ``mirrored``).

    One stage can serve several views of a frame set (a rig): each view has its own tracks and
    detector schedule, the interpreters are shared, and the crops of every hand of every view go to
    the landmark model in one batched call.

    Tracking policy (per view and frame; ``static_image_mode`` skips tracking and detects on every
    image):

    1. Each tracked hand's ROI comes from its landmarks in the previous frame (MediaPipe's rule).
    2. The palm detector runs when no hand is tracked (every frame until one is found), or when
       fewer than ``max_hands`` are tracked and ``redetect_every`` frames have passed since it last
       ran. Palm ROIs overlapping a tracked ROI (IoU > 0.5) are dropped; the rest, best score first,
       are added up to ``max_hands``.
    3. The landmark model runs on each ROI; a hand whose presence is below
       ``min_tracking_confidence`` is dropped. Two hands whose next ROIs overlap (IoU > 0.5) are one
       hand: the one with the higher presence is kept.
    4. A track lost on a frame where the detector did not run (fast motion out of its ROI) makes the
       detector run on that same frame, and the landmark model on the palms it finds, so a lost
       hand costs no frame (MediaPipe's graph gets the same by detecting on every such frame).

    Trade-off: MediaPipe's graph runs the detector on every frame while fewer than ``max_hands``
    hands are tracked, i.e. always with one hand in view and ``max_hands=2``. Here a hand that
    enters while another is tracked is found up to ``redetect_every - 1`` frames later (10 at 30 fps:
    at most 0.3 s) and the detector's cost is paid once per ``redetect_every`` frames instead of every
    frame. A hand that left the image is found on the first frame it is back when no other hand is
    tracked, as in MediaPipe.

    Args:
        config: the options.
        view: index of the frame set's view this stage reads, or several indices (one stage for a
            rig's views; ``HandPose.view`` tells them apart).

    Raises:
        ModelError: a model file is missing or corrupt, or ai-edge-litert is not installed.
    """

    def __init__(self, config: LandmarkConfig = LandmarkConfig(), view: int | Sequence[int] = 0) -> None:
        self.config = config
        self.views: tuple[int, ...] = (int(view),) if isinstance(view, int) else tuple(int(v) for v in view)
        if not self.views:
            raise ValueError("LiteRTHands needs at least one view")
        self.view = self.views[0]
        c = config
        self._palm: PalmDetector | None = PalmDetector(
            mediapipe_model_path("palm", c.model_complexity), c.num_threads
        )
        self._landmarks: HandLandmarkModel | None = HandLandmarkModel(
            mediapipe_model_path("landmark", c.model_complexity), c.num_threads
        )
        self._labels = _KEEP if c.mirrored else _SWAP
        self._state = [_ViewTracks() for _ in self.views]

    def reset(self) -> None:
        """Forget the tracked hands: the next frame runs the palm detector."""
        self._state = [_ViewTracks() for _ in self.views]

    def close(self) -> None:
        """Release the interpreters (idempotent)."""
        self._palm = None
        self._landmarks = None
        self.reset()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tracked(self) -> int:
        """How many hands the next frame will track from landmarks (before any re-detection), all views."""
        return sum(len(st.rois) for st in self._state)

    def _palm_rois(self, image: np.ndarray, st: _ViewTracks, rois: list[Roi]) -> list[Roi]:
        """Run the palm detector on one view: ``rois`` plus the new palms (IoU <= 0.5 with every ROI
        already there), best first, up to ``max_hands``."""
        c = self.config
        assert self._palm is not None
        st.since_detection = 0
        rois = list(rois)
        for palm in self._palm(image, c.min_detection_confidence):
            if len(rois) >= c.max_hands:
                break
            roi = palm_to_roi(palm.box, palm.keypoints)
            if all(roi_iou(roi, t) <= ASSOCIATION_IOU for t in rois):
                rois.append(roi)
        return rois

    def _rois(self, image: np.ndarray, st: _ViewTracks) -> tuple[list[Roi], bool]:
        """Step 1 and 2 of the policy: this frame's ROIs of one view, and whether the detector ran."""
        c = self.config
        rois = [] if c.static_image_mode else list(st.rois)
        st.since_detection += 1
        due = not rois or (len(rois) < c.max_hands and st.since_detection >= c.redetect_every)
        if c.static_image_mode or due:
            return self._palm_rois(image, st, rois), True
        return rois, False

    def _landmark_pass(self, images: Sequence[np.ndarray], timestamps: Sequence[float],
                       rois: list[list[Roi]]) -> list[list[tuple[float, Roi, HandPose]]]:  # fmt: skip
        """The landmark model on every ROI of every view in one call; per view the hands kept by
        presence as ``(presence, next ROI, hand)``."""
        c = self.config
        assert self._landmarks is not None
        size = self._landmarks.size
        jobs = [(k, roi) for k, view_rois in enumerate(rois) for roi in view_rois]
        crops = np.empty((len(jobs), size, size, 3), np.float32)
        for j, (k, roi) in enumerate(jobs):
            crops[j] = crop(images[k], roi, size)
        found: list[list[tuple[float, Roi, HandPose]]] = [[] for _ in rois]
        for (k, roi), out in zip(jobs, self._landmarks(crops)):
            if out.presence < c.min_tracking_confidence:
                continue
            pose = self._pose(out, roi, images[k].shape, timestamps[k], self.views[k])
            if pose is not None:
                found[k].append((out.presence, landmarks_to_roi(pose.joints_2d), pose))
        return found

    def _pose(self, out: LandmarkOutput, roi: Roi, shape: tuple[int, ...], timestamp: float,
              view: int) -> HandPose | None:  # fmt: skip
        """One landmark output -> a hand in image px (None: non-finite)."""
        c = self.config
        h, w = shape[:2]
        assert self._landmarks is not None
        uv = crop_to_image(out.landmarks[:, :2], roi, self._landmarks.size)
        cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
        world = out.world.copy()
        world[:, 0] = out.world[:, 0] * cos - out.world[:, 1] * sin
        world[:, 1] = out.world[:, 0] * sin + out.world[:, 1] * cos
        local = world * 1000.0
        if not (np.isfinite(uv).all() and np.isfinite(local).all()):
            log.warning("the landmark model returned a non-finite hand; dropped")
            return None
        left = out.handedness >= 0.5  # MediaPipe's label "Left" (mirrored-view convention)
        score = out.handedness if left else 1.0 - out.handedness
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        return HandPose(
            joints_2d=uv,
            confidence=np.where(inside, score, score * c.edge_confidence),
            timestamp=timestamp,
            joints_local=local,
            score=score,
            handedness=self._labels["Left" if left else "Right"],  # type: ignore[arg-type]
            handedness_score=score,
            view=view,
        )

    def detect_views(self, images: Sequence[np.ndarray], timestamps: Sequence[float]) -> list[list[HandPose]]:
        """Find hands in one RGB uint8 ``(H, W, 3)`` image per view of ``self.views`` (video frames: the
        tracks are updated); one landmark call for all of them.

        Returns:
            Per view, the hands found (at most ``max_hands`` each).

        Raises:
            ValueError: not one image per view, or an image is not RGB uint8 (H, W, 3).
            EstimatorError: the stage was closed.
        """
        if self._palm is None or self._landmarks is None:
            raise EstimatorError("LiteRTHands is closed")
        if len(images) != len(self.views) or len(timestamps) != len(self.views):
            raise ValueError(f"LiteRTHands reads {len(self.views)} view(s), got {len(images)} images")
        for image in images:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"LiteRTHands needs an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}"
                )
        c = self.config
        plans = [self._rois(image, st) for image, st in zip(images, self._state)]
        found = self._landmark_pass(images, timestamps, [rois for rois, _ in plans])
        # step 4: a view that lost a track on a frame its detector skipped runs it now, on this frame
        retry = [k for k, (rois, ran) in enumerate(plans) if not ran and len(found[k]) < len(rois)]
        if retry:
            extra = [[] for _ in self.views]
            for k in retry:
                kept = [next_roi for _, next_roi, _ in found[k]]
                extra[k] = self._palm_rois(images[k], self._state[k], kept)[len(kept):]
            for k, more in enumerate(self._landmark_pass(images, timestamps, extra)):
                found[k] += more
        result: list[list[HandPose]] = []
        for st, view_found in zip(self._state, found):  # step 3: one hand per overlapping pair
            kept: list[int] = []
            for i in sorted(range(len(view_found)), key=lambda j: -view_found[j][0]):
                if all(roi_iou(view_found[i][1], view_found[j][1]) <= DUPLICATE_IOU for j in kept):
                    kept.append(i)
            kept.sort()
            st.rois = [] if c.static_image_mode else [view_found[i][1] for i in kept]
            result.append([view_found[i][2] for i in kept])
        return result

    def detect(self, image: np.ndarray, timestamp: float) -> list[HandPose]:
        """Find hands in one RGB uint8 ``(H, W, 3)`` image (a single-view stage; a video frame: updates
        the tracks).

        Returns:
            The hands found, at most ``max_hands``.

        Raises:
            ValueError: the image is not RGB uint8 (H, W, 3), or the stage reads several views.
            EstimatorError: the stage was closed.
        """
        return self.detect_views([image], [timestamp])[0]

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        """Stage interface: detect hands in the stage's views of the frame set (input hands ignored)."""
        frames = [frameset.frames[v] for v in self.views]
        per_view = self.detect_views([f.image for f in frames], [f.timestamp for f in frames])
        return [h for view_hands in per_view for h in view_hands]
