"""The depth estimator stage: V2V-PoseNet on each frame's depth image.

For every view whose frame carries a depth image (uint16 mm, registered to the frame's image and
intrinsics), the stage finds a reference point per hand, voxelizes the cube around it (Numba), runs
the network and reads the joints out of the heatmaps (Numba sub-voxel argmax), all in
:class:`models.v2v_infer.V2VEstimator`. Output joints are mm in that camera's frame.

Where the reference point comes from (the issue's "hand crop for depth"), in order:

1. **RGB detections** of the same view (MediaPipe earlier in the pipeline): the centroid of the
   hand's 3D joints (lifted with the depth by :class:`tracker.stages.depth_lift.DepthLifter` when it runs
   before this stage), else the depth centre of mass seeded by its 2D joints
   (:func:`models.depth_crop.reference_from_joints`);
2. **tracking**: the joint centroids this stage (or the RGB path) produced for the view in the last
   ``track_frames`` frames, so a hand RGB loses (motion blur, a hand seen edge-on, a dark room) is
   still followed in depth;
3. **depth segmentation** (cold start, depth-only sensors): the nearest object
   (:func:`models.depth_crop.reference_from_depth`).

Each seed becomes the depth centre of mass of the hand region around it
(:func:`models.depth_crop.hand_reference_point`, the reference point the network was trained with);
with ``passes > 1`` the cube is re-centred on the previous pass's joint centroid, which pulls a poor
seed (the nearest-object seed lands on the forearm when the arm points at the camera) onto the hand.

Modes: ``replace`` (``--estimator v2v``) puts V2V's joints on every hand; ``fallback``
(``--estimator fused``) keeps the RGB-D lift of hands RGB found and adds V2V only for the hands it
did not find. Frames without depth pass through unchanged.

The networks (V2V-PoseNet, RefPointNet) are loaded when the stage is built, with
:func:`models.load_pretrained`, onto the configured device (so a missing or corrupt weights file is
a :class:`~tracker.core.errors.ModelError` at start-up, not on the first depth frame); torch is
imported then, not when this module is imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tracker.stages.chirality import chirality_side
from models.depth_crop import CropConfig, hand_reference_point, reference_from_depth, reference_from_joints
from models.registry import shipped_path
from tracker.core.errors import ModelError
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Frame, FrameSet, HandPose, Intrinsics

__all__ = ["DEFAULT_REFPOINT_WEIGHTS", "DEFAULT_V2V_WEIGHTS", "V2VStageConfig", "V2VDepthEstimator"]

log = logging.getLogger(__name__)

#: The shipped V2V-PoseNet (``models/weights/v2v_light.md``; package data).
DEFAULT_V2V_WEIGHTS = shipped_path("v2v_light")
#: The shipped reference-point refinement network (``models/weights/refpoint.md``; package data).
DEFAULT_REFPOINT_WEIGHTS = shipped_path("refpoint")


@dataclass(frozen=True)
class V2VStageConfig:
    """Settings of the depth estimator stage.

    Attributes:
        weights: a checkpoint written by :func:`models.v2v.save_weights` (default: the shipped
            ``v2v_light``).
        device: "auto", "cpu", "cuda", "cuda:1", ... (:func:`models.resolve_device`); None = "auto"
            (CUDA when available, else CPU). Both networks run there.
        half: float16 network on CUDA.
        mode: "replace" (V2V on every hand) or "fallback" (only for hands RGB did not find).
        passes: network passes per hand seeded by RGB or tracking; pass ``k > 1`` re-centres the
            cube on pass ``k-1``'s joints. One is enough for a seed within ~20 mm (held-out synthetic
            set, 15 mm seed noise: 1 / 2 passes give 8.63 / 8.68 mm mean) and halves the cost.
        cold_passes: passes for a cold start from depth segmentation (a worse seed: on the held-out
            synthetic set 1 / 2 / 4 passes give 65 / 12 / 9 mm median error).
        region_mm: edge of the cube whose depth centre of mass is the reference point (the
            training data's ``com_region_mm``).
        track_frames: a hand last seen this many frames ago (or fewer) seeds the search.
        max_hands: hands per view.
        min_score: hands whose mean heatmap confidence is below this are dropped (no hand there).
        merge_mm: two estimates whose joint centroids are closer than this are one hand.
        crop: the depth segmentation settings of the cold-start and 2D-seeded searches.
        refpoint_weights: a trained :class:`models.v2v.RefPointNet` (the paper's reference-point
            refinement) applied to every centre of mass before the cube is cut (default: the
            shipped one; on the held-out synthetic set it takes a cold start from 49.5 to 29.9 mm
            mean error, median 9.0 to 7.7 mm); None = off.
    """

    weights: Path = DEFAULT_V2V_WEIGHTS
    device: str | None = None
    half: bool = False
    mode: Literal["replace", "fallback"] = "replace"
    passes: int = 1
    cold_passes: int = 4
    region_mm: float = 130.0
    track_frames: int = 15
    max_hands: int = 2
    min_score: float = 0.15
    merge_mm: float = 60.0
    crop: CropConfig = CropConfig()
    refpoint_weights: Path | None = DEFAULT_REFPOINT_WEIGHTS

    def __post_init__(self) -> None:
        if self.mode not in ("replace", "fallback"):
            raise ValueError(f"mode must be 'replace' or 'fallback', got {self.mode!r}")
        if self.passes < 1 or self.cold_passes < 1 or self.max_hands < 1 or self.track_frames < 0:
            raise ValueError("passes, cold_passes and max_hands must be >= 1 and track_frames >= 0")


def _depth_intrinsics(frame: Frame) -> Intrinsics:
    """The intrinsics of ``frame.depth`` (the frame's camera, rescaled when the depth is smaller)."""
    intr = frame.camera.intrinsics
    h, w = frame.depth.shape[:2]
    return intr if (w, h) == (intr.width, intr.height) else intr.scaled_to(w, h)


def _centroid(joints: np.ndarray | None) -> np.ndarray | None:
    if joints is None:
        return None
    ok = np.isfinite(joints).all(1)
    return joints[ok].mean(0) if ok.sum() >= 3 else None


class V2VDepthEstimator:
    """Pipeline stage ``(frameset, hands) -> hands`` running V2V-PoseNet on depth (see the module doc).

    Args:
        config: the settings.
        estimator: a ready :class:`models.v2v_infer.V2VEstimator` (tests, benchmarks); None = load
            ``config.weights`` now.

    Raises:
        tracker.core.errors.ModelError: a weights file (V2V-PoseNet or RefPointNet) is missing,
            unreadable, of another kind, or not a 21-joint V2V-PoseNet; the message names the file
            and how to train one.
        tracker.core.errors.AcceleratorError: ``config.device`` asks for CUDA and torch sees none.
    """

    def __init__(self, config: V2VStageConfig = V2VStageConfig(), estimator: object | None = None,
                 preload: bool = True) -> None:
        self.config = config
        self._device: str | None = None
        self._estimator = estimator
        self._refpoint = None
        self._loaded = False
        if preload:
            self._load()
        # per view: (frame index, joint centroids mm) of the hands last seen
        self._seen: dict[int, tuple[int, list[np.ndarray]]] = {}

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        out = [h for h in hands if frameset.frames[h.view].depth is None]
        for view, frame in enumerate(frameset.frames):
            if frame.depth is None:
                continue
            rgb = [h for h in hands if h.view == view]
            if self.config.mode == "fallback" and rgb:
                out.extend(rgb)
                self._remember(view, frame.index, [_centroid(h.joints_3d) for h in rgb])
                continue
            found = self._estimate_view(frame, view, rgb)
            out.extend(found)
            self._remember(view, frame.index, [_centroid(h.joints_3d) for h in found])
        return out

    def _load(self) -> None:
        """Resolve the torch device and load both networks (once)."""
        if self._loaded:
            return
        from models.registry import resolve_device

        self._device = resolve_device(self.config.device or "auto")
        if self._estimator is None:
            self._estimator = self._load_estimator()
        if self.config.refpoint_weights is not None:
            self._refpoint = self._load_refpoint()
        self._loaded = True

    @property
    def device(self) -> str:
        """The torch device both networks run on."""
        self._load()
        assert self._device is not None
        return self._device

    @property
    def loaded(self) -> bool:
        """Whether the networks are loaded (at construction with ``preload``, else at the first depth frame)."""
        return self._loaded

    @property
    def estimator(self):  # -> models.v2v_infer.V2VEstimator
        """The V2V-PoseNet estimator (loaded now if the stage was built without ``preload``)."""
        self._load()
        return self._estimator

    @property
    def refpoint(self):  # -> models.v2v_infer.RefPointRefiner | None
        """The reference-point refinement network (None when not configured)."""
        self._load()
        return self._refpoint

    def _load_estimator(self):  # -> models.v2v_infer.V2VEstimator
        from models.registry import load_pretrained
        from models.v2v_infer import V2VEstimator

        path = Path(self.config.weights)
        model = load_pretrained("v2v_light", self._device, path=None if path == DEFAULT_V2V_WEIGHTS else path)
        if getattr(model, "num_joints", None) != NUM_JOINTS:
            raise ModelError(f"{path} holds a {model.num_joints}-joint V2V-PoseNet; the live stage needs "
                             f"{NUM_JOINTS} joints (MediaPipe order): train one with "
                             "`python scripts/train_v2v.py --model v2v_light`")  # fmt: skip
        estimator = V2VEstimator(model, device=self._device, half=self.config.half)
        log.info("V2V-PoseNet %s on %s (grid %d, cube %.0f mm)", path.name, self._device, estimator.grid,
                 estimator.cube_mm)  # fmt: skip
        return estimator

    def _load_refpoint(self):  # -> models.v2v_infer.RefPointRefiner
        from models.registry import load_pretrained
        from models.v2v_infer import RefPointRefiner

        path = Path(self.config.refpoint_weights)
        model = load_pretrained("refpoint", self._device, path=None if path == DEFAULT_REFPOINT_WEIGHTS else path)
        return RefPointRefiner(model, device=self._device)

    def reset(self) -> None:
        """Forget the tracked hands (a new sequence)."""
        self._seen.clear()

    # --- internals ---------------------------------------------------------------------------------

    def _remember(self, view: int, index: int, centres: list[np.ndarray | None]) -> None:
        kept = [c for c in centres if c is not None]
        if kept:
            self._seen[view] = (index, kept)

    def _seeds(self, frame: Frame, view: int, rgb: list[HandPose], intr: Intrinsics
               ) -> tuple[list[tuple[np.ndarray, HandPose | None]], bool]:
        """Seed points (mm, camera frame) with the RGB hand each belongs to (None: tracked /
        segmented), and whether they are a cold start from depth segmentation."""
        depth = frame.depth
        seeds: list[tuple[np.ndarray, HandPose | None]] = []
        for h in rgb:
            c = _centroid(h.joints_3d)
            if c is None:
                c = reference_from_joints(depth, intr, h.joints_2d, self.config.crop)
            if c is not None:
                seeds.append((c, h))
        if seeds:
            return seeds, False
        last = self._seen.get(view)
        if last is not None and 0 <= frame.index - last[0] <= self.config.track_frames:
            return [(c, None) for c in last[1]], False
        c = reference_from_depth(depth, intr, self.config.crop)
        return ([] if c is None else [(c, None)]), True

    def _estimate_view(self, frame: Frame, view: int, rgb: list[HandPose]) -> list[HandPose]:
        cfg = self.config
        depth = np.ascontiguousarray(frame.depth)
        intr = _depth_intrinsics(frame)
        K = intr.K
        seeds, cold = self._seeds(frame, view, rgb, intr)
        seeds = seeds[: cfg.max_hands]
        if not seeds:
            return []
        centres = np.array([s for s, _ in seeds])
        est = None
        for _ in range(cfg.cold_passes if cold else cfg.passes):
            refs = np.stack([hand_reference_point(depth, K, c, cfg.region_mm)[0] for c in centres])
            if self.refpoint is not None:
                refs = self.refpoint.refine_batch([depth] * len(refs), K, refs)
            est = self.estimator.estimate_batch([depth] * len(refs), K, refs)
            new = np.nanmean(est.joints, axis=1) if est.valid.any() else centres
            centres = np.where(np.isfinite(new), new, centres)
        assert est is not None
        results: list[HandPose] = []
        order = np.argsort(-np.nanmean(est.confidence, axis=1))
        for b in order:
            joints = est.joints[b]
            conf = np.clip(est.confidence[b].astype(np.float64), 0.0, 1.0)
            score = float(conf.mean())
            if not est.valid[b] or not np.isfinite(joints).all() or score < cfg.min_score:
                continue
            c = joints.mean(0)
            if any(np.linalg.norm(c - _centroid(r.joints_3d)) < cfg.merge_mm for r in results):
                continue
            source = seeds[b][1]
            results.append(self._pose(joints, conf, score, intr, frame, view, source))
        return results

    @staticmethod
    def _pose(joints: np.ndarray, conf: np.ndarray, score: float, intr: Intrinsics, frame: Frame, view: int,
              source: HandPose | None) -> HandPose:
        uv = intr.project(joints)
        if frame.camera.intrinsics is not intr:  # depth at another resolution: 2D in the image's pixels
            uv = frame.camera.intrinsics.project(joints)
        local = joints - joints.mean(0)
        if source is not None:
            return source.replace(joints_2d=uv, joints_3d=joints, joints_local=local, confidence=conf)
        side, chir = chirality_side(joints)
        return HandPose(joints_2d=uv, confidence=conf, timestamp=frame.timestamp, joints_3d=joints,
                        joints_local=local, score=score, handedness=side,
                        handedness_score=0.0 if side == "unknown" else min(0.5 + abs(chir), 1.0),
                        view=view)  # fmt: skip
