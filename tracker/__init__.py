"""handtrack: live 3D hand tracking from webcams, RealSense depth cameras, calibrated rigs and recordings.

The public API (imported lazily: ``import tracker`` loads no torch, OpenCV or MediaPipe)::

    from tracker import HandTracker, TrackerOptions, RunningMode

    with HandTracker(TrackerOptions(running_mode=RunningMode.VIDEO, max_hands=2)) as t:
        result = t.process(rgb, timestamp_s=0.033)     # FrameResult
        result.hands[0].joints_3d                       # (21, 3) mm, camera frame

* :class:`HandTracker`, :class:`TrackerOptions`, :class:`RunningMode` (:mod:`tracker.api`);
* :class:`TrackerConfig`, :func:`load_config` (:mod:`tracker.config`) and :func:`build_pipeline`
  (:mod:`tracker.build`) for full control and custom loops;
* the data types :class:`FrameResult`, :class:`HandPose`, :class:`Frame`, :class:`FrameSet`,
  :class:`Camera`, :class:`Intrinsics`, :class:`Extrinsics` (:mod:`tracker.core.structures`), the
  joint order ``JOINT_NAMES`` (:mod:`tracker.core.joints`) and :class:`HandtrackError`, the root of
  every error handtrack raises (:mod:`tracker.core.errors`).

Sub-packages follow the data flow: ``core`` (structures, joints, geometry, errors) -> ``io``
(sources, calibration and keypoint files) -> ``stages`` (landmarks, lift, depth, V2V, identity) ->
``fusion`` (rigs) -> ``post`` (prior, refiner, smoothing) -> ``sinks`` (export, video) / ``view``;
``runtime`` runs it all (pipeline, streaming loop, stats).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracker.core.lazy import lazy_exports

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    "HandTracker": "tracker.api",
    "TrackerOptions": "tracker.api",
    "RunningMode": "tracker.api",
    "TrackerConfig": "tracker.config",
    "load_config": "tracker.config",
    "build_pipeline": "tracker.build",
    "FrameResult": "tracker.core.structures",
    "HandPose": "tracker.core.structures",
    "Frame": "tracker.core.structures",
    "FrameSet": "tracker.core.structures",
    "Camera": "tracker.core.structures",
    "Intrinsics": "tracker.core.structures",
    "Extrinsics": "tracker.core.structures",
    "JOINT_NAMES": "tracker.core.joints",
    "HandtrackError": "tracker.core.errors",
}

__all__ = [
    "Camera",
    "Extrinsics",
    "Frame",
    "FrameResult",
    "FrameSet",
    "HandPose",
    "HandTracker",
    "HandtrackError",
    "Intrinsics",
    "JOINT_NAMES",
    "RunningMode",
    "TrackerConfig",
    "TrackerOptions",
    "__version__",
    "build_pipeline",
    "load_config",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tracker.api import HandTracker, RunningMode, TrackerOptions
    from tracker.build import build_pipeline
    from tracker.config import TrackerConfig, load_config
    from tracker.core.errors import HandtrackError
    from tracker.core.joints import JOINT_NAMES
    from tracker.core.structures import Camera, Extrinsics, Frame, FrameResult, FrameSet, HandPose, Intrinsics


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
