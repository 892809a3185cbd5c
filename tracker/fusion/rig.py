"""The stages of the multi-camera rig pipeline: MediaPipe per view -> fusion into the world frame
-> identities -> (prior, refiner) -> smoothing -> world.

Stages of the rig pipeline (:func:`tracker.build.build_pipeline` with several views), in order (names as they appear in the loop's stage timings):

* ``landmarks``: :class:`MultiViewLandmarks`: MediaPipe's graph per view of the frame set (tracking mode,
  ``view`` = the frame's index), one after the other or in a small thread pool (``FusionConfig.workers``),
  or one LiteRT stage for all views (one batched landmark call per frame set).
* ``lift`` (optional, ``FusionConfig.single_view_lift``): :class:`~tracker.stages.lift.MetricLifter` per view; a
  hand that only one camera sees then still comes out of ``fusion`` (placed from that view alone).
* ``fusion``: :class:`RigFusion` around :class:`~tracker.fusion.triangulate.RigTriangulator` (``ransac``,
  default, or ``dlt``) or the learned :class:`tracker.fusion.learned.HaMuCoFusion` (``learned``).
  Every output hand has ``view = -1``, ``joints_world`` (21, 3) world mm and ``uncertainty_mm``
  (21,), and is *anchored* to the rig's reference camera (``reference_view``, default the first):
  ``joints_3d`` = ``joints_world`` in that camera's frame (mm), ``joints_2d`` = ``joints_world``
  projected into its image (px, with its distortion; may lie outside the image). One fixed frame
  for every fused hand keeps the single-view stages below meaningful from frame to frame.
* ``identity``: :class:`~tracker.stages.identity.IdentityTracker` (on the anchored 2D joints: the fused hand
  seen from one fixed camera).
* ``prior`` / ``refiner`` (optional): :class:`~tracker.post.prior.PriorStage`,
  :class:`~tracker.post.refiner.RefinerStage`.
* ``smoothing``: :class:`~tracker.post.smoothing.TemporalSmoother` (One Euro on ``joints_2d`` and
  ``joints_3d``).
* ``world``: :class:`WorldFromReference`: ``joints_world`` recomputed from the (smoothed, refined)
  ``joints_3d`` through the reference camera's extrinsics, so the world joints carry every
  correction made after fusion.

Frames: world mm (the calibration's world, e.g. the board; for the synthetic rig the scene frame),
camera frames OpenCV mm, extrinsics world -> camera (:mod:`tracker.core.structures`).

The stages are assembled by :func:`tracker.build.build_pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from tracker.core.errors import ConfigError, ModelError
from tracker.stages.landmarks import LandmarkConfig, MediaPipeConfig, landmark_stage
from tracker.runtime.pipeline import Stage
from tracker.fusion.triangulate import RigTriangulator, TriangulationConfig
from tracker.core.structures import Camera, FrameSet, HandPose

__all__ = [
    "Fusion",
    "RigPipelineError",
    "MultiViewLandmarks",
    "RigFusion",
    "WorldFromReference",
    "fusion_stage",
]

log = logging.getLogger(__name__)

Fusion = Literal["ransac", "dlt", "learned"]


class RigPipelineError(ConfigError):
    """The rig pipeline cannot run on these frame sets (view count, reference view, settings)."""


# ------------------------------------------------------------------------------------- landmarks


class MultiViewLandmarks:
    """Pipeline stage: the landmark stage on every view of a frame set -> per-view hands (``view`` = frame index).

    MediaPipe (``backend = "mediapipe"``): one graph per view (own tracking state), made when the
    views are first seen; with ``workers > 1`` the views run in a thread pool (MediaPipe's graph
    releases the GIL while it computes). LiteRT (``backend = "litert"``): one
    :class:`~tracker.stages.litert.LiteRTHands` for all views (per-view tracking, shared
    interpreters, every view's hands in one batched landmark call); ``workers`` does not apply.
    Input hands are ignored.

    Raises (from ``__call__``):
        RigPipelineError: the frame sets' view count changes mid-stream.
    """

    def __init__(self, config: MediaPipeConfig = MediaPipeConfig(), workers: int = 1,
                 num_views: int | None = None) -> None:  # fmt: skip
        self.config = config
        self.workers = int(workers)
        self._num_views = 0
        self._views: list = []  # the landmark stages: one per view, or one for all views
        self._pool: ThreadPoolExecutor | None = None
        if num_views is not None:
            self._ensure(num_views)

    def _ensure(self, n: int) -> None:
        if self._views and self._num_views != n:
            raise RigPipelineError(f"the rig pipeline was started on {self._num_views} views but this frame set "
                                   f"has {n}; use one pipeline per rig")  # fmt: skip
        if not self._views:
            self._num_views = n
            if isinstance(self.config, LandmarkConfig) and self.config.backend == "litert":
                self._views = [landmark_stage(self.config, view=tuple(range(n)))]
            else:
                self._views = [landmark_stage(self.config, view=v) for v in range(n)]
            if self.workers > 1 and len(self._views) > 1:
                self._pool = ThreadPoolExecutor(min(self.workers, n), thread_name_prefix="mediapipe-view")

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        self._ensure(len(frameset.frames))
        if self._pool is not None:
            per_view = list(self._pool.map(lambda d: d(frameset, []), self._views))
        else:
            per_view = [d(frameset, []) for d in self._views]
        return [h for view_hands in per_view for h in view_hands]

    def reset(self) -> None:
        """Forget every view's tracked hands."""
        for d in self._views:
            d.reset()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for d in self._views:
            d.close()


# ---------------------------------------------------------------------------------------- fusion


class RigFusion:
    """Pipeline stage: per-view hands -> fused world-frame hands anchored to the reference camera.

    Runs ``fusion`` (a :class:`~tracker.fusion.triangulate.RigTriangulator` or
    :class:`tracker.fusion.learned.HaMuCoFusion`), then, when ``single_view_uncertainty_mm`` is set,
    adds every per-view hand with metric ``joints_3d`` (from the ``lift`` stage) that no fused hand
    explains (the fused hand's reprojection into that view lies further than
    ``explain_threshold_px``, median over joints) as a world hand placed from that view alone, with
    that uncertainty. Finally every hand is anchored (module docstring): ``joints_3d`` and
    ``joints_2d`` in camera ``reference_view``.

    Args:
        fusion: the fusion stage.
        cameras: the rig's cameras; None = each frame's ``camera``.
        reference_view: index of the anchor camera.
        single_view_uncertainty_mm: None = drop hands that only one view saw.
        explain_threshold_px: see above.
    """

    def __init__(self, fusion: Stage, cameras: Sequence[Camera] | None = None, reference_view: int = 0,
                 single_view_uncertainty_mm: float | None = None, explain_threshold_px: float = 40.0) -> None:  # fmt: skip
        self.fusion = fusion
        self.cameras = tuple(cameras) if cameras is not None else None
        self.reference_view = int(reference_view)
        self.single_view_uncertainty_mm = single_view_uncertainty_mm
        self.explain_threshold_px = float(explain_threshold_px)

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        cameras = self.cameras if self.cameras is not None else tuple(f.camera for f in frameset.frames)
        if not 0 <= self.reference_view < len(cameras):
            raise RigPipelineError(f"reference view {self.reference_view} is not a camera of this {len(cameras)}-view "
                                   "rig; pick 0..N-1")  # fmt: skip
        fused = [h for h in self.fusion(frameset, hands) if h.joints_world is not None]
        if self.single_view_uncertainty_mm is not None:
            fused += self._single_view(cameras, fused, [h for h in hands if h.view != -1])
        ref = cameras[self.reference_view]
        return [self._anchor(h, ref) for h in fused]

    def _single_view(self, cameras: Sequence[Camera], fused: list[HandPose],
                     per_view: list[HandPose]) -> list[HandPose]:  # fmt: skip
        out = []
        for h in per_view:
            if h.joints_3d is None:
                continue
            cam = cameras[h.view]
            explained = any(
                float(np.median(np.linalg.norm(cam.project(f.joints_world) - h.joints_2d, axis=1)))
                < self.explain_threshold_px
                for f in fused
            )  # fmt: skip
            if explained:
                continue
            assert self.single_view_uncertainty_mm is not None
            out.append(h.replace(view=-1, joints_world=cam.camera_to_world(h.joints_3d),
                                 uncertainty_mm=np.full(len(h.confidence), self.single_view_uncertainty_mm)))  # fmt: skip
        return out

    @staticmethod
    def _anchor(hand: HandPose, ref: Camera) -> HandPose:
        X = np.asarray(hand.joints_world, np.float64)
        return hand.replace(view=-1, joints_3d=ref.world_to_camera(X), joints_2d=ref.project(X))

    def close(self) -> None:
        close = getattr(self.fusion, "close", None)
        if callable(close):
            close()


class WorldFromReference:
    """Pipeline stage: ``joints_world`` = the fused hand's ``joints_3d`` (reference camera mm) in world mm.

    Runs last in the rig pipeline, so the world joints carry the smoothing / prior / refiner applied
    to ``joints_3d``. Per-view hands (``view != -1``) and hands without 3D pass unchanged.
    """

    def __init__(self, cameras: Sequence[Camera] | None = None, reference_view: int = 0) -> None:
        self.cameras = tuple(cameras) if cameras is not None else None
        self.reference_view = int(reference_view)

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        cameras = self.cameras if self.cameras is not None else tuple(f.camera for f in frameset.frames)
        ref = cameras[self.reference_view]
        return [h.replace(joints_world=ref.camera_to_world(h.joints_3d))
                if h.view == -1 and h.joints_3d is not None else h for h in hands]  # fmt: skip


def fusion_stage(method: Fusion, cameras: Sequence[Camera] | None = None,
                 triangulation: TriangulationConfig = TriangulationConfig(), weights: str | Path | None = None,
                 device: str | None = None) -> Stage:
    """The fusion of a rig's per-view hands: ``ransac`` / ``dlt`` (:class:`RigTriangulator` with
    ``triangulation``'s thresholds) or ``learned`` (:class:`~tracker.fusion.learned.HaMuCoFusion`
    with the checkpoint ``weights``, None = the shipped one, loaded now onto ``device``: ``"auto"``,
    ``"cpu"``, ``"cuda"``, ... (:func:`models.resolve_device`), None = CPU).

    Raises:
        ModelError: the learned fusion's checkpoint cannot be loaded.
        ConfigError: an unknown ``method``.
    """
    if method not in ("ransac", "dlt", "learned"):
        raise ConfigError(f"fusion must be 'ransac', 'dlt' or 'learned', got {method!r}")
    if method != "learned":
        from dataclasses import replace

        return RigTriangulator(cameras, replace(triangulation, method=method))
    from models.registry import load_pretrained
    from tracker.fusion.learned import HaMuCoFusion

    try:
        return HaMuCoFusion(cameras, load_pretrained("hamuco", device, path=weights))
    except ModelError as exc:
        raise ModelError(f"--fusion learned: {exc}; or use --fusion ransac") from exc
