"""One builder: a :class:`~tracker.config.TrackerConfig` -> the :class:`~tracker.runtime.pipeline.Pipeline`
for 1..N views.

Single view (webcam, video, image folder, RealSense, one synthetic camera), stages in order:
``landmarks`` (MediaPipe) -> ``crossmodal`` (the cross-modal shape, ``--estimator crossmodal``) ->
``lift`` (metric 3D from one view) -> ``depth`` (depth lift of the ``fused`` / ``crossmodal``
estimators) and ``v2v`` (V2V-PoseNet, ``fused`` / ``v2v`` / ``crossmodal``) -> ``identity`` -> ``prior`` ->
``refiner`` -> ``temporal_refine`` -> ``smoothing`` -> ``grip`` -> ``gestures``. The depth stages
pass frames without depth through unchanged.

Several views (a calibrated rig), stages in order: ``landmarks`` (MediaPipe per view) -> ``lift``
(optional, ``fusion.single_view_lift``) -> ``fusion`` (RANSAC / DLT / learned, into the world frame,
anchored to the reference camera) -> ``identity`` -> ``prior`` -> ``refiner`` -> ``temporal_refine``
-> ``smoothing`` -> ``world`` (:mod:`tracker.fusion.rig` explains the frames) -> ``grip`` ->
``gestures``.

Optional stages (``prior``, ``refiner``, ``temporal_refine``, ``gestures``, learned fusion, V2V) load
their models here, at start-up, so a missing or corrupt model file is a
:class:`~tracker.core.errors.ModelError` before the first frame. Torch models run on the device of
``config.device``, resolved once here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from tracker.config import TrackerConfig
from tracker.core.errors import ConfigError, ModelError
from tracker.core.structures import Camera
from tracker.fusion.rig import MultiViewLandmarks, RigFusion, WorldFromReference, fusion_stage
from tracker.post.grip import GripStage
from tracker.post.smoothing import TemporalSmoother
from tracker.runtime.pipeline import Pipeline, Stage
from tracker.stages.depth_lift import DepthLifter
from tracker.stages.identity import IdentityTracker
from tracker.stages.landmarks import landmark_stage
from tracker.stages.lift import MetricLifter

__all__ = ["build_pipeline", "prior_stage", "refiner_stage"]

log = logging.getLogger(__name__)


Device = Callable[[], str]


def prior_stage(path: str | Path | None = None, strength: float | None = None, confidence_gain: float = 0.5,
                rgb_only: bool = False) -> Stage:  # fmt: skip
    """A :class:`~tracker.post.prior.PriorStage` with the 21-joint prior at ``path`` (default: the
    shipped ``prior_mp21``), loaded now, with ``strength`` / ``confidence_gain`` (:class:`PriorConfig`)
    and, ``rgb_only``, leaving hands of frames with a depth image alone. Priors are NumPy: no device.

    Raises:
        ModelError: the file is missing, unreadable or not a 21-joint prior (``--prior: ...``).
    """
    from models.prior import PriorError
    from models.registry import load_pretrained
    from tracker.post.prior import PriorStage

    try:
        return PriorStage(load_pretrained("prior_mp21", path=path), strength, confidence_gain, rgb_only=rgb_only)
    except (ModelError, PriorError) as exc:
        raise ModelError(f"--prior: {exc}") from exc


def refiner_stage(path: str | Path | None = None, device: str | None = None) -> Stage:
    """A :class:`~tracker.post.refiner.RefinerStage` with the ``mp21`` refiner at ``path`` (default:
    the shipped one), loaded now onto ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ...; None = CPU).

    Raises:
        ModelError: the checkpoint is missing, unreadable or not a 21-joint refiner (``--refine: ...``).
    """
    from tracker.post.refiner import RefinerStage

    try:
        return RefinerStage(path=path, device=device)
    except ModelError as exc:
        raise ModelError(f"--refine: {exc}") from exc


def _device_once(choice: str) -> Device:
    """The torch device of ``choice`` (``auto`` / ``cpu`` / ``cuda``), resolved at the first call
    only (resolving imports torch: pipelines without torch models never do)."""
    resolved: list[str] = []

    def device() -> str:
        if not resolved:
            from models import resolve_device

            resolved.append(resolve_device(choice))
        return resolved[0]

    return device


def _post_stages(config: TrackerConfig, device: Device, num_views: int) -> list[tuple[str, Stage]]:
    """``prior`` (``enabled`` None: single view, RGB frames only), ``refiner`` and ``temporal_refine``
    (when enabled), models loaded now."""
    stages: list[tuple[str, Stage]] = []
    prior = config.prior
    if prior.enabled or (prior.enabled is None and num_views == 1):
        rgb_only = prior.enabled is None and config.depth.estimator != "mediapipe"  # mediapipe: depth unused
        stages.append(("prior", prior_stage(prior.path, prior.strength, prior.confidence_gain, rgb_only=rgb_only)))
    if config.refiner.enabled:
        stages.append(("refiner", refiner_stage(config.refiner.path, device=device())))
    if config.temporal_refine.model is not None:
        from tracker.post.temporal_refine import temporal_refine_stage

        stages.append(("temporal_refine", temporal_refine_stage(config.temporal_refine.model, device())))
    return stages


def _v2v_stage(config: TrackerConfig) -> Stage:
    """V2V-PoseNet on depth. Loaded now when it runs on every hand (``v2v``) or a checkpoint other
    than the shipped one is given (a bad file fails at start-up); otherwise (``fused`` with the
    shipped weights, which the tests load) at the first frame with depth, so that RGB-only sources
    never import torch."""
    from tracker.stages.v2v import DEFAULT_REFPOINT_WEIGHTS, DEFAULT_V2V_WEIGHTS, V2VDepthEstimator

    estimator = config.depth.estimator
    v2v = replace(config.depth.v2v, mode="replace" if estimator == "v2v" else "fallback",
                  max_hands=config.landmarks.max_hands, device=config.device)  # fmt: skip
    custom = (Path(v2v.weights) != DEFAULT_V2V_WEIGHTS
              or (v2v.refpoint_weights is not None and Path(v2v.refpoint_weights) != DEFAULT_REFPOINT_WEIGHTS))
    return V2VDepthEstimator(v2v, preload=estimator == "v2v" or custom)


def _crossmodal_stage(config: TrackerConfig, device: Device) -> Stage:
    """The cross-modal estimator, its model loaded now (``--estimator crossmodal``)."""
    from tracker.stages.crossmodal import CrossModalEstimator

    return CrossModalEstimator(replace(config.depth.crossmodal, device=device()))


def _single_view(config: TrackerConfig, device: Device) -> list[tuple[str, Stage]]:
    estimator = config.depth.estimator
    crossmodal = _crossmodal_stage(config, device) if estimator == "crossmodal" else None  # models before MediaPipe
    v2v = _v2v_stage(config) if estimator in ("fused", "v2v", "crossmodal") else None
    stages: list[tuple[str, Stage]] = [("landmarks", landmark_stage(config.landmarks, view=0))]
    if crossmodal is not None:
        stages.append(("crossmodal", crossmodal))
    stages.append(("lift", MetricLifter(config.lift)))
    if v2v is not None:
        stages.append(("depth", DepthLifter(config.depth.lift)))
        stages.append(("v2v", v2v))
    stages.append(("identity", IdentityTracker(config.identity)))
    return stages


def _rig(config: TrackerConfig, cameras: Sequence[Camera] | None, num_views: int,
         device: Device) -> list[tuple[str, Stage]]:
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
    fuse = fusion_stage(fusion.method, cameras, fusion.triangulation, fusion.weights,
                        device=device() if fusion.method == "learned" else None)
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
    device = _device_once(config.device)
    post = _post_stages(config, device, num_views)  # models first: a bad file fails before MediaPipe starts
    gestures = None
    if config.gestures.model is not None:
        from tracker.post.gestures import gesture_stage

        gestures = gesture_stage(config.gestures, device())
    stages = _single_view(config, device) if num_views == 1 else _rig(config, fixed, num_views, device)
    stages += post
    if config.smoothing is not None:
        stages.append(("smoothing", TemporalSmoother(config.smoothing)))
    if num_views > 1:
        stages.append(("world", WorldFromReference(fixed, config.fusion.reference_view)))
    if config.grip.enabled or gestures is not None:
        stages.append(("grip", GripStage(config.grip)))
    if gestures is not None:
        stages.append(("gestures", gestures))
    log.debug("pipeline: %s", " -> ".join(name for name, _ in stages))
    return Pipeline(stages)
