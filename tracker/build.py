"""The RGB(-D) tracking pipeline: MediaPipe landmarks -> metric 3D (-> depth lift -> V2V-PoseNet)
-> identities -> smoothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.stages.depth_lift import DepthLiftConfig, DepthLifter
from tracker.stages.identity import HandTracker, IdentityConfig
from tracker.stages.lift import LiftConfig, MetricLifter
from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands
from tracker.post.one_euro import SMOOTHING_PRESETS, OneEuroParams
from tracker.runtime.pipeline import Pipeline, Stage
from tracker.post.smoothing import TemporalSmoother
from tracker.stages.v2v import V2VDepthEstimator, V2VStageConfig

__all__ = ["RgbPipelineConfig", "build_rgb_pipeline"]


@dataclass(frozen=True)
class RgbPipelineConfig:
    """Configuration of the single-view RGB pipeline (see each part's docstring).

    ``depth``: the depth lift of the ``fused`` estimator (used on frames that carry a registered
    depth image, a no-op on others); None = RGB only (``mediapipe`` estimator).
    ``v2v``: V2V-PoseNet on the depth image (:mod:`tracker.stages.v2v`): mode ``replace`` for the
    ``v2v`` estimator, ``fallback`` (only hands RGB missed) for ``fused``; None = off.
    """

    mediapipe: MediaPipeConfig = field(default_factory=MediaPipeConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    depth: DepthLiftConfig | None = field(default_factory=DepthLiftConfig)
    v2v: V2VStageConfig | None = None
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    smoothing: OneEuroParams | None = SMOOTHING_PRESETS["medium"]


def build_rgb_pipeline(config: RgbPipelineConfig = RgbPipelineConfig(), view: int = 0) -> Pipeline:
    """Stages, in order: ``landmarks`` (MediaPipe), ``lift`` (metric 3D), ``depth`` and ``v2v`` (when
    configured), ``identity``, ``smoothing``."""
    stages: list[tuple[str, Stage]] = [
        ("landmarks", MediaPipeHands(config.mediapipe, view=view)),
        ("lift", MetricLifter(config.lift)),
    ]
    if config.depth is not None:
        stages.append(("depth", DepthLifter(config.depth)))
    if config.v2v is not None:
        stages.append(("v2v", V2VDepthEstimator(config.v2v)))
    stages.append(("identity", HandTracker(config.identity)))
    if config.smoothing is not None:
        stages.append(("smoothing", TemporalSmoother(config.smoothing)))
    return Pipeline(stages)
