"""The RGB(-D) tracking pipeline: MediaPipe landmarks -> metric 3D (-> depth) -> identities -> smoothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from .depth_lift import DepthLiftConfig, DepthLifter
from .identity import HandTracker, IdentityConfig
from .lift import LiftConfig, MetricLifter
from .mediapipe_hands import MediaPipeConfig, MediaPipeHands
from .one_euro import SMOOTHING_PRESETS, OneEuroParams
from .pipeline import Pipeline, Stage
from .smoothing import TemporalSmoother

__all__ = ["RgbPipelineConfig", "build_rgb_pipeline"]


@dataclass(frozen=True)
class RgbPipelineConfig:
    """Configuration of the single-view RGB pipeline (see each part's docstring).

    ``depth``: the depth lift of the ``fused`` estimator (used on frames that carry a registered
    depth image, a no-op on others); None = RGB only (``mediapipe`` estimator).
    """

    mediapipe: MediaPipeConfig = field(default_factory=MediaPipeConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    depth: DepthLiftConfig | None = field(default_factory=DepthLiftConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    smoothing: OneEuroParams | None = SMOOTHING_PRESETS["medium"]


def build_rgb_pipeline(config: RgbPipelineConfig = RgbPipelineConfig(), view: int = 0) -> Pipeline:
    """Stages, in order: ``landmarks`` (MediaPipe), ``lift`` (metric 3D), ``depth`` (when
    configured), ``identity``, ``smoothing``."""
    stages: list[tuple[str, Stage]] = [
        ("landmarks", MediaPipeHands(config.mediapipe, view=view)),
        ("lift", MetricLifter(config.lift)),
    ]
    if config.depth is not None:
        stages.append(("depth", DepthLifter(config.depth)))
    stages.append(("identity", HandTracker(config.identity)))
    if config.smoothing is not None:
        stages.append(("smoothing", TemporalSmoother(config.smoothing)))
    return Pipeline(stages)
