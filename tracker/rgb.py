"""The RGB tracking pipeline: MediaPipe landmarks -> metric 3D -> identities -> smoothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from .identity import HandTracker, IdentityConfig
from .lift import LiftConfig, MetricLifter
from .mediapipe_hands import MediaPipeConfig, MediaPipeHands
from .one_euro import SMOOTHING_PRESETS, OneEuroParams
from .pipeline import Pipeline, Stage
from .smoothing import TemporalSmoother

__all__ = ["RgbPipelineConfig", "build_rgb_pipeline"]


@dataclass(frozen=True)
class RgbPipelineConfig:
    """Configuration of the single-view RGB pipeline (see each part's docstring)."""

    mediapipe: MediaPipeConfig = field(default_factory=MediaPipeConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    smoothing: OneEuroParams | None = SMOOTHING_PRESETS["medium"]


def build_rgb_pipeline(config: RgbPipelineConfig = RgbPipelineConfig(), view: int = 0) -> Pipeline:
    """Stages, in order: ``landmarks`` (MediaPipe), ``lift`` (metric 3D), ``identity``, ``smoothing``."""
    stages: list[tuple[str, Stage]] = [
        ("landmarks", MediaPipeHands(config.mediapipe, view=view)),
        ("lift", MetricLifter(config.lift)),
        ("identity", HandTracker(config.identity)),
    ]
    if config.smoothing is not None:
        stages.append(("smoothing", TemporalSmoother(config.smoothing)))
    return Pipeline(stages)
