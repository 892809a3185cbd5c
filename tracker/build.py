"""One builder: a :class:`~tracker.config.TrackerConfig` -> the :class:`~tracker.runtime.pipeline.Pipeline`
for 1..N views.

Single view (webcam, video, image folder, RealSense, one synthetic camera), stages in order:
``landmarks`` (MediaPipe) -> ``lift`` (metric 3D from one view) -> ``depth`` (depth lift of the
``fused`` estimator) and ``v2v`` (V2V-PoseNet, ``fused`` / ``v2v``) -> ``identity`` -> ``prior`` ->
``refiner`` -> ``smoothing``. The depth stages pass frames without depth through unchanged.

Several views (a calibrated rig), stages in order: ``landmarks`` (MediaPipe per view) -> ``lift``
(optional, ``fusion.single_view_lift``) -> ``fusion`` (RANSAC / DLT / learned, into the world frame,
anchored to the reference camera) -> ``identity`` -> ``prior`` -> ``refiner`` -> ``smoothing`` ->
``world`` (:mod:`tracker.fusion.rig` explains the frames).

Optional stages (``prior``, ``refiner``, learned fusion, V2V) load their models here, at start-up,
so a missing or corrupt model file is a :class:`~tracker.core.errors.ModelError` before the first
frame. Torch models run on the device of ``config.device``, resolved once here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from tracker.config import TrackerConfig
from tracker.core.errors import ConfigError
from tracker.core.structures import Camera
from tracker.fusion.rig import MultiViewLandmarks, RigFusion, WorldFromReference, fusion_stage, prior_stage, refiner_stage
from tracker.post.smoothing import TemporalSmoother
from tracker.runtime.pipeline import Pipeline, Stage
from tracker.stages.depth_lift import DepthLifter
from tracker.stages.identity import IdentityTracker
from tracker.stages.landmarks import MediaPipeHands
from tracker.stages.lift import MetricLifter

__all__ = ["build_pipeline"]

log = logging.getLogger(__name__)


def _post_stages(config: TrackerConfig) -> list[tuple[str, Stage]]:
    """``prior`` and ``refiner`` (when enabled), models loaded now."""
    stages: list[tuple[str, Stage]] = []
    if config.prior.enabled:
        stages.append(("prior", prior_stage(config.prior.path)))
    if config.refiner.enabled:
        stages.append(("refiner", refiner_stage(config.refiner.path)))
    return stages


def _single_view(config: TrackerConfig) -> list[tuple[str, Stage]]:
    stages: list[tuple[str, Stage]] = [
        ("landmarks", MediaPipeHands(config.landmarks, view=0)),
        ("lift", MetricLifter(config.lift)),
    ]
    estimator = config.depth.estimator
    if estimator in ("fused", "v2v"):
        from tracker.stages.v2v import V2VDepthEstimator

        stages.append(("depth", DepthLifter(config.depth.lift)))
        v2v = replace(config.depth.v2v, mode="replace" if estimator == "v2v" else "fallback",
                      max_hands=config.landmarks.max_hands,
                      device=None if config.device == "auto" else config.device)  # fmt: skip
        stages.append(("v2v", V2VDepthEstimator(v2v)))
    stages.append(("identity", IdentityTracker(config.identity)))
    return stages


def _rig(config: TrackerConfig, cameras: Sequence[Camera] | None, num_views: int) -> list[tuple[str, Stage]]:
    fusion = config.fusion
    if cameras is not None and not fusion.reference_view < len(cameras):
        raise ConfigError(f"fusion.reference_view {fusion.reference_view} is not one of the rig's {len(cameras)} "
                          "cameras; pick 0..N-1")  # fmt: skip
    stages: list[tuple[str, Stage]] = [
        ("landmarks", MultiViewLandmarks(config.landmarks, fusion.workers, num_views)),
    ]
    if fusion.single_view_lift:
        stages.append(("lift", MetricLifter(config.lift)))
    single = fusion.single_view_uncertainty_mm if fusion.single_view_lift else None
    fuse = fusion_stage(fusion.method, cameras, fusion.triangulation, fusion.weights)
    stages.append(("fusion", RigFusion(fuse, cameras, fusion.reference_view, single)))
    stages.append(("identity", IdentityTracker(config.identity)))
    return stages


def build_pipeline(config: TrackerConfig = TrackerConfig(), cameras: Sequence[Camera] | int = 1) -> Pipeline:
    """The pipeline for ``config`` and a source of one or more views.

    Args:
        config: every option (:class:`~tracker.config.TrackerConfig`).
        cameras: the number of views per frame set (each frame brings its own camera: a rig device
            attaches the calibration to every frame), or the rig's calibrated cameras in frame order.
            One view builds the single-view pipeline, more the rig pipeline.

    Returns:
        A :class:`~tracker.runtime.pipeline.Pipeline` (one per stream: stages keep state);
        ``close()`` it when done.

    Raises:
        ModelError: a model the config asks for (prior, refiner, learned fusion, V2V weights) cannot
            be loaded; the message names the file.
        ConfigError: invalid settings (e.g. a reference view outside the rig).
    """
    fixed = None if isinstance(cameras, int) else tuple(cameras)
    num_views = cameras if isinstance(cameras, int) else len(fixed or ())
    if num_views < 1:
        raise ConfigError(f"a pipeline needs at least one view, got {num_views}")
    post = _post_stages(config)  # models first: a bad file fails before MediaPipe starts
    stages = _single_view(config) if num_views == 1 else _rig(config, fixed, num_views)
    stages += post
    if config.smoothing is not None:
        stages.append(("smoothing", TemporalSmoother(config.smoothing)))
    if num_views > 1:
        stages.append(("world", WorldFromReference(fixed, config.fusion.reference_view)))
    log.debug("pipeline: %s", " -> ".join(name for name, _ in stages))
    return Pipeline(stages)
