"""The library API: :class:`HandTracker`, modelled on MediaPipe Tasks' ``HandLandmarker``.

::

    from tracker import HandTracker, TrackerOptions, RunningMode

    with HandTracker(TrackerOptions(running_mode=RunningMode.VIDEO, max_hands=2)) as t:
        result = t.process(rgb, timestamp_s=0.033)   # FrameResult
        for hand in result.hands:
            hand.joints_2d        # (21, 2) px
            hand.joints_3d        # (21, 3) mm, camera frame (OpenCV axes), or None
            hand.handedness, hand.track_id

Running modes (:class:`RunningMode`):

* ``IMAGE``: independent images; the timestamp is optional. Nothing is carried from one call to
  the next (no tracking, identities or smoothing across images).
* ``VIDEO``: frames of one video; timestamps are required and strictly increasing. Hands are
  tracked, keep their ``track_id`` and are smoothed.
* ``LIVE_STREAM``: frames from a live source; :meth:`HandTracker.process_async` returns at once and
  the result reaches ``TrackerOptions.result_callback`` from a worker thread. A frame that arrives
  while the previous one is still being processed replaces any frame waiting (frames are dropped
  by design, the newest wins); :attr:`HandTracker.dropped_frames` counts them.

The pipeline behind it is the one the CLI runs (:func:`tracker.build.build_pipeline` on a
:class:`~tracker.config.TrackerConfig`).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tracker.config import Estimator, TrackerConfig, override
from tracker.core.errors import ConfigError
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet, Intrinsics
from tracker.post.one_euro import OneEuroParams, parse_smoothing

__all__ = ["RunningMode", "TrackerOptions", "HandTracker"]

log = logging.getLogger(__name__)

ResultCallback = Callable[[FrameResult, np.ndarray, float], None]


class RunningMode(enum.Enum):
    """How :class:`HandTracker` treats successive inputs (module docstring)."""

    IMAGE = "image"
    VIDEO = "video"
    LIVE_STREAM = "live_stream"


@dataclass(frozen=True)
class TrackerOptions:
    """Options of a :class:`HandTracker`.

    The common options are fields here; ``config`` holds every other one (the same
    :class:`~tracker.config.TrackerConfig` as the CLI and its ``--config`` file). A field left at
    None keeps the value of ``config``.

    Attributes:
        running_mode: IMAGE, VIDEO or LIVE_STREAM.
        max_hands: most hands tracked at once.
        model: MediaPipe landmark model, ``lite`` or ``full``.
        landmarker: what runs the models: ``litert`` (the default, ~3x faster) or ``mediapipe`` (its graph).
        min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds in [0, 1].
        estimator: ``fused``, ``v2v`` or ``mediapipe`` (with depth images), ``crossmodal`` (RGB or
            RGB-D; see the README).
        smoothing: One Euro preset (``off``, ``low``, ``medium``, ``high``) or parameters
            (VIDEO / LIVE_STREAM only; IMAGE never smooths).
        prior: the pose prior: True on every hand, False off, None = the default (on for RGB frames of
            a single view, :class:`~tracker.config.PriorConfig`).
        refine: run the masked joint refiner stage.
        gestures: detect gestures online on each hand (VIDEO / LIVE_STREAM): ``shrec14``, ``shrec28``,
            a checkpoint ``.pt`` or a gesture set ``.npz``; events in :attr:`HandPose.gesture`.
        grip: pinch / grab state of each hand (:attr:`HandPose.grip`; on with ``gestures``).
        mirrored: the images are mirrored (selfie view): keeps left/right anatomical.
        hfov_deg: field of view assumed when :meth:`HandTracker.process` gets no intrinsics.
        device: where torch models run: ``auto``, ``cpu`` or ``cuda``.
        result_callback: LIVE_STREAM only: ``callback(result, image, timestamp_s)``, called from
            the tracker's worker thread.
        config: the base configuration.
    """

    running_mode: RunningMode = RunningMode.IMAGE
    max_hands: int | None = None
    model: Literal["lite", "full"] | None = None
    landmarker: Literal["mediapipe", "litert"] | None = None
    min_detection_confidence: float | None = None
    min_tracking_confidence: float | None = None
    estimator: Estimator | None = None
    smoothing: str | OneEuroParams | None = None
    prior: bool | None = None
    refine: bool | None = None
    gestures: str | None = None
    grip: bool | None = None
    mirrored: bool | None = None
    hfov_deg: float | None = None
    device: Literal["auto", "cpu", "cuda"] | None = None
    result_callback: ResultCallback | None = None
    config: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.running_mode, RunningMode):
            raise ConfigError(f"running_mode must be a RunningMode, got {self.running_mode!r}")
        if self.running_mode is RunningMode.LIVE_STREAM and self.result_callback is None:
            raise ConfigError("LIVE_STREAM needs a result_callback (it receives the results)")
        if self.running_mode is not RunningMode.LIVE_STREAM and self.result_callback is not None:
            raise ConfigError(f"result_callback is only used in LIVE_STREAM mode, not {self.running_mode.name}")
        if self.model not in (None, "lite", "full"):
            raise ConfigError(f"model must be 'lite' or 'full', got {self.model!r}")

    def to_config(self) -> TrackerConfig:
        """The effective :class:`~tracker.config.TrackerConfig` (``config`` with the fields set here).

        Raises:
            ConfigError: an invalid value.
        """
        changes: dict[str, object] = {}
        pairs = {
            "landmarks.max_hands": self.max_hands,
            "landmarks.min_detection_confidence": self.min_detection_confidence,
            "landmarks.min_tracking_confidence": self.min_tracking_confidence,
            "landmarks.mirrored": self.mirrored,
            "landmarks.backend": self.landmarker,
            "depth.estimator": self.estimator,
            "prior.enabled": self.prior,
            "refiner.enabled": self.refine,
            "gestures.model": self.gestures,
            "grip.enabled": self.grip,
            "source.hfov_deg": self.hfov_deg,
            "device": self.device,
        }
        changes.update({k: v for k, v in pairs.items() if v is not None})
        if self.model is not None:
            changes["landmarks.model_complexity"] = 0 if self.model == "lite" else 1
        if self.smoothing is not None:
            try:
                changes["smoothing"] = parse_smoothing(self.smoothing) if isinstance(self.smoothing, str) \
                    else self.smoothing
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        if self.running_mode is RunningMode.IMAGE:  # independent images: no tracking, no smoothing
            changes["landmarks.static_image_mode"] = True
            changes["smoothing"] = None
        return override(self.config, **changes)


def _check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{what} must be an RGB uint8 (H, W, 3) array, got {got}")
    return image


class HandTracker:
    """Track hands in images, videos and live streams from Python (module docstring).

    Args:
        options: :class:`TrackerOptions`.

    Raises:
        ModelError: a model the options ask for cannot be loaded (before any frame).
        ConfigError: invalid options.
        AcceleratorError: ``device="cuda"`` without a usable CUDA device.

    A tracker serves one stream; use one per camera. It is a context manager; :meth:`close` frees
    the models and the worker thread.
    """

    def __init__(self, options: TrackerOptions = TrackerOptions()) -> None:
        from tracker.build import build_pipeline

        self.options = options
        self.config = options.to_config()
        if self.config.device == "cuda":
            from models import resolve_device

            resolve_device("cuda")  # AcceleratorError now rather than at the first torch model
        self._build = build_pipeline
        self._pipelines: dict[int, object] = {1: build_pipeline(self.config, 1)}
        self._index = 0
        self._last_ts = -math.inf
        self._closed = False
        self._lock = threading.Lock()
        self.dropped_frames = 0
        self._pending: tuple[np.ndarray, float, np.ndarray | None, Intrinsics | None] | None = None
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        if options.running_mode is RunningMode.LIVE_STREAM:
            self._worker = threading.Thread(target=self._live_loop, name="handtrack-live", daemon=True)
            self._worker.start()

    # --- public ------------------------------------------------------------------------------------

    def process(self, image: np.ndarray, timestamp_s: float | None = None, *, depth: np.ndarray | None = None,
                intrinsics: Intrinsics | None = None) -> FrameResult:
        """Track the hands in one RGB image (IMAGE and VIDEO modes).

        Args:
            image: RGB uint8 ``(H, W, 3)`` (convert OpenCV's BGR with ``cv2.cvtColor``).
            timestamp_s: seconds; required and strictly increasing in VIDEO mode, optional in IMAGE.
            depth: optional uint16 depth in mm ``(H, W)`` registered to ``image`` (0 = no reading).
            intrinsics: the camera; None = a default from ``hfov_deg``, flagged approximate (3D is
                then approximate too).

        Returns:
            A :class:`~tracker.core.structures.FrameResult`: ``hands`` (each a
            :class:`~tracker.core.structures.HandPose`: ``joints_2d`` px, ``joints_3d`` mm camera
            frame), stage timings.

        Raises:
            ValueError: wrong mode, a bad image / depth, a missing or non-increasing timestamp.
        """
        if self.options.running_mode is RunningMode.LIVE_STREAM:
            raise ValueError("this tracker runs in LIVE_STREAM mode: use process_async()")
        ts = self._timestamp(timestamp_s)
        return self._run(_check_image(image), ts, depth, intrinsics)

    def process_async(self, image: np.ndarray, timestamp_s: float, *, depth: np.ndarray | None = None,
                      intrinsics: Intrinsics | None = None) -> None:
        """Hand a frame to the LIVE_STREAM worker and return at once; the result goes to
        ``result_callback``. A frame still waiting when the next arrives is dropped.

        Raises:
            ValueError: wrong mode, a bad image, a non-increasing timestamp.
            HandtrackError: the worker failed on an earlier frame (raised once, here).
        """
        if self.options.running_mode is not RunningMode.LIVE_STREAM:
            raise ValueError(f"process_async() is for LIVE_STREAM mode; this tracker runs in "
                             f"{self.options.running_mode.name}: use process()")  # fmt: skip
        ts = self._timestamp(timestamp_s)
        _check_image(image)
        with self._wake:
            self._raise_worker_error()
            if self._closed:
                raise ValueError("the tracker is closed")
            if self._pending is not None:
                self.dropped_frames += 1
            self._pending = (image, ts, depth, intrinsics)
            self._wake.notify()

    def process_frameset(self, frameset: FrameSet) -> FrameResult:
        """Track the hands in a frame set of one or more calibrated views (a rig): the views' hands
        are fused into world-frame hands (``joints_world``, mm) when there are several.

        Each frame's ``camera`` must carry its calibration (intrinsics and extrinsics world -> camera).
        Timestamps follow the running mode's rules (``frameset.timestamp``).

        Raises:
            ValueError: wrong mode or a non-increasing timestamp.
        """
        if self.options.running_mode is RunningMode.LIVE_STREAM:
            raise ValueError("this tracker runs in LIVE_STREAM mode: use process_async()")
        self._timestamp(frameset.timestamp)
        for f in frameset.frames:
            _check_image(f.image, f"view {f.camera.name!r}")
        return self._pipeline(len(frameset.frames))(frameset)

    def reset(self) -> None:
        """Forget every tracked hand, identity and filter state: the next frame starts a new stream
        (timestamps may start again from any value)."""
        with self._lock:
            for p in self._pipelines.values():
                p.reset()  # type: ignore[attr-defined]
            self._last_ts = -math.inf

    def close(self) -> None:
        """Stop the worker (LIVE_STREAM: the frame being processed finishes) and free the models."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._pending = None
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
        for p in self._pipelines.values():
            p.close()  # type: ignore[attr-defined]
        self._pipelines.clear()

    def __enter__(self) -> HandTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------------------

    def _timestamp(self, timestamp_s: float | None) -> float:
        mode = self.options.running_mode
        if timestamp_s is None:
            if mode is not RunningMode.IMAGE:
                raise ValueError(f"{mode.name} mode needs a timestamp_s for every frame")
            timestamp_s = float(self._index)  # IMAGE: nothing depends on it
        ts = float(timestamp_s)
        if not math.isfinite(ts):
            raise ValueError(f"timestamp_s must be finite, got {timestamp_s!r}")
        if mode is not RunningMode.IMAGE:
            with self._lock:
                if ts <= self._last_ts:
                    raise ValueError(f"timestamps must increase strictly: got {ts} after {self._last_ts} "
                                     "(call reset() to start a new stream)")  # fmt: skip
                self._last_ts = ts
        return ts

    def _pipeline(self, num_views: int):  # noqa: ANN202 - a Pipeline
        if self._closed:
            raise ValueError("the tracker is closed")
        if num_views not in self._pipelines:
            self._pipelines[num_views] = self._build(self.config, num_views)
        return self._pipelines[num_views]

    def _camera(self, image: np.ndarray, intrinsics: Intrinsics | None) -> Camera:
        h, w = image.shape[:2]
        if intrinsics is None:
            intrinsics = Intrinsics.from_fov(w, h, self.config.source.hfov_deg)
        elif (intrinsics.width, intrinsics.height) != (w, h):
            intrinsics = intrinsics.scaled_to(w, h)
        return Camera("camera", intrinsics)

    def _run(self, image: np.ndarray, ts: float, depth: np.ndarray | None, intrinsics: Intrinsics | None
             ) -> FrameResult:
        if depth is not None:
            if not isinstance(depth, np.ndarray) or depth.dtype != np.uint16 or depth.shape != image.shape[:2]:
                got = f"{depth.dtype} {depth.shape}" if isinstance(depth, np.ndarray) else type(depth).__name__
                raise ValueError(f"depth must be uint16 mm of the image's size {image.shape[:2]}, got {got}")
        pipeline = self._pipeline(1)
        if self.options.running_mode is RunningMode.IMAGE:
            pipeline.reset()
        frame = Frame(image, ts, self._index, self._camera(image, intrinsics), depth)
        self._index += 1
        return pipeline(FrameSet.single(frame))

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            err, self._worker_error = self._worker_error, None
            raise err

    def _live_loop(self) -> None:
        callback = self.options.result_callback
        assert callback is not None
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                image, ts, depth, intrinsics = self._pending  # type: ignore[misc]
                self._pending = None
            try:
                result = self._run(image, ts, depth, intrinsics)
                callback(result, image, ts)
            except Exception as exc:  # surfaced to the caller on the next process_async
                log.error("live stream: frame at %.3f s failed: %s", ts, exc)
                with self._wake:
                    self._worker_error = exc
