#!/usr/bin/env python
"""Evaluate the RGB pipeline (MediaPipe -> metric lift -> identity [-> smoothing]; the pose prior off) on real images.

No test or default of the project is tuned on these numbers; they are a read-out, not a target.

Data sets (each one that is missing under the data root is skipped with a note):

* ``realworld_rgb_hgcnn`` (Ge et al. 2019, 200-image development split): 256x256 crops of one
  subject's hand, 21 joints in our order, GT in cm in the camera frame (converted to mm), crop
  intrinsics per image. GT 2D = GT 3D projected with those intrinsics. Run twice: per image
  (``static_image_mode``, no smoothing; the 3D lift re-run with ``align="none"`` and with a
  per-subject ``hand_scale`` as ablations) and as a video (tracking mode + One Euro smoothing, the
  frames being a sub-sampled sequence at an assumed ``--video-fps``).
* ``mmpose_hand_samples``: InterHand2.6M (4 images, 3D GT + calibration, left/right labels), CMU
  Panoptic hand (2 images, each annotated once per hand, ``_l`` / ``_r``), FreiHAND (8) and
  OneHand10K (4), 2D only. Images without calibration get ``Intrinsics.from_fov`` (only the lift
  uses it; their 3D is not scored).

Metrics (``tracker.core.metrics``): detection rate (a GT hand is found when a detection's mean 2D error
is below 0.5 x the GT keypoints' bounding-box size; detections are assigned to GT hands by the
smallest total mean 2D distance), 2D EPE in px, PCK at fixed px and at fractions of the bounding-box
size (the larger side of the GT keypoints' box), root-relative (wrist) and Procrustes-aligned
(similarity) 3D MPJPE in mm, absolute camera-space MPJPE in mm, and the ratios predicted / GT of the
wrist depth and of the hand size (sum of bone lengths): a metric lift from one view puts a hand
that the estimator thinks is k times too big k times too far, so ``z ratio ~ size ratio`` means the
absolute depth error is the scale ambiguity. ``abs|s`` is the absolute error after rescaling the
prediction about the camera centre by GT size / predicted size (an oracle ``hand_scale`` per image).

Handedness: ``HandPose.handedness`` should be the person's anatomical hand on a non-mirrored image.
It is checked against InterHand2.6M ``hand_type`` and Panoptic ``_l``/``_r``; for the real-world set
(no label) against the side implied by the chirality of the GT 3D skeleton (the side towards which
the fingers flex), which is itself validated on InterHand2.6M.

Usage::

    python scripts/evaluate_rgb.py                      # data from ../shared/data
    python scripts/evaluate_rgb.py --limit 20 --json /tmp/eval.json
    HANDTRACK_DATA=/path/to/data python scripts/evaluate_rgb.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # allow ``python scripts/evaluate_rgb.py`` from anywhere
    sys.path.insert(0, str(_REPO))

from devices.image_folder import load_image_rgb  # noqa: E402
from tracker.stages.chirality import CHIRALITY_MIN, chirality_side  # noqa: E402
from tracker.core.data_root import data_root, default_data_root  # noqa: E402
from tracker.stages.identity import best_assignment  # noqa: E402
from tracker.core.joints import EDGES, FREIHAND_TO_MP, INTERHAND_TO_MP, JOINT_NAMES, NUM_JOINTS, WRIST  # noqa: E402
from tracker.stages.lift import LiftConfig, MetricLifter  # noqa: E402
from tracker.stages.landmarks import LandmarkConfig  # noqa: E402
from tracker.core.metrics import (  # noqa: E402
    bbox_size,
    bone_length_sum,
    joint_errors,
    mean_joint_error,
    pck,
    procrustes_align,
    root_relative,
)
from tracker.post.one_euro import SMOOTHING_PRESETS  # noqa: E402
from tracker.build import build_pipeline  # noqa: E402
from tracker.config import TrackerConfig, override  # noqa: E402
from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, HandPose, Intrinsics  # noqa: E402

DEFAULT_DATA = default_data_root()

#: A detection is a GT hand's match when its mean 2D error is below this fraction of the GT bbox size.
MATCH_GATE = 0.5
#: Static passes space images this far apart (s) so no track or filter state links two images.
STATIC_DT_S = 100.0
PCK_PX = (5.0, 10.0, 20.0)
#: Per-joint outliers are only flagged for rows averaging at least this many hands.
MIN_HANDS_JOINT_CHECK = 20
PCK_BBOX = (0.1, 0.2)
#: The estimators compared (``--estimators``); the first is MediaPipe's shape, the reference.
ESTIMATORS: tuple[str, ...] = ("mediapipe",)


# --------------------------------------------------------------------------------------------------
# Samples


@dataclass
class GtHand:
    """One annotated hand.

    Attributes:
        joints_2d: (21, 2) px, our joint order.
        valid: (21,) bool, joints with a label.
        joints_3d: (21, 3) mm in the camera frame, or None for 2D-only sets.
        side: the person's anatomical hand, or None when unlabelled.
        label: short description for the report.
    """

    joints_2d: np.ndarray
    valid: np.ndarray
    joints_3d: np.ndarray | None = None
    side: str | None = None
    label: str = ""


@dataclass
class Sample:
    name: str
    path: Path
    intrinsics: Intrinsics
    hands: list[GtHand]

    def load_rgb(self) -> np.ndarray:
        return load_image_rgb(self.path)


def _image_size(path: Path) -> tuple[int, int]:
    height, width = load_image_rgb(path).shape[:2]
    return int(width), int(height)


def load_realworld(root: Path, limit: int | None) -> list[Sample]:
    d = np.load(root / "realworld_testset.npz")
    n = len(d["image_path"]) if limit is None else min(limit, len(d["image_path"]))
    samples = []
    for i in range(n):
        fx, fy, cx, cy = (float(v) for v in d["cam_param_crop256"][i])
        intr = Intrinsics(fx, fy, cx, cy, 256, 256)
        j3d = d["pose_gt_cm"][i].astype(np.float64)[list(FREIHAND_TO_MP)] * 10.0  # cm -> mm
        hand = GtHand(intr.project(j3d), np.ones(NUM_JOINTS, bool), j3d, None, "subject hand")
        samples.append(Sample(Path(str(d["image_path"][i])).stem, root / str(d["image_path"][i]), intr, [hand]))
    return samples


def _coco_2d(root: Path, json_name: str, limit: int | None) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(image record, (21, 2) px, (21,) valid) per annotation of a COCO-style 21-keypoint file."""
    d = json.loads((root / json_name).read_text())
    images = {im["id"]: im for im in d["images"]}
    out = []
    for ann in d["annotations"][: limit if limit is not None else None]:
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3)[list(FREIHAND_TO_MP)]
        out.append((images[ann["image_id"]], kp[:, :2], kp[:, 2] > 0))
    return out


def _fov_intrinsics(path: Path) -> Intrinsics:
    w, h = _image_size(path)
    return Intrinsics.from_fov(w, h)


def load_coco_2d(root: Path, json_name: str, limit: int | None) -> list[Sample]:
    """FreiHAND / OneHand10K: one annotated hand per image, 2D only (vis 0 = unlabelled)."""
    samples = []
    for im, uv, valid in _coco_2d(root, json_name, limit):
        path = root / im["file_name"]
        samples.append(Sample(Path(im["file_name"]).stem, path, _fov_intrinsics(path), [GtHand(uv, valid)]))
    return samples


def load_panoptic(root: Path, limit: int | None) -> list[Sample]:
    """CMU Panoptic hand: ``X_l.jpg`` / ``X_r.jpg`` are one image annotated per hand -> one sample."""
    groups: dict[str, list[tuple[dict, np.ndarray, np.ndarray]]] = {}
    for im, uv, valid in _coco_2d(root, "test_panoptic.json", None):
        stem = Path(im["file_name"]).stem
        base, _, suffix = stem.rpartition("_")
        if suffix not in ("l", "r"):
            raise ValueError(f"unexpected Panoptic file name {im['file_name']!r} (expected *_l / *_r)")
        groups.setdefault(base, []).append((im, uv, valid))
    samples = []
    for base, anns in sorted(groups.items())[: limit if limit is not None else None]:
        path = root / anns[0][0]["file_name"]  # the _l and _r files hold the same picture
        hands = []
        for im, uv, valid in anns:
            side = "left" if Path(im["file_name"]).stem.endswith("_l") else "right"
            hands.append(GtHand(uv, valid, None, side, Path(im["file_name"]).name))
        samples.append(Sample(base, path, _fov_intrinsics(path), hands))
    return samples


def load_interhand(root: Path, limit: int | None) -> list[Sample]:
    """InterHand2.6M: world mm -> camera mm (``X_cam = R (X_w - campos)``), 0-20 right, 21-41 left."""
    data = json.loads((root / "test_interhand2.6m_data.json").read_text())
    cams = json.loads((root / "test_interhand2.6m_camera.json").read_text())
    joints = json.loads((root / "test_interhand2.6m_joint_3d.json").read_text())
    anns = {a["image_id"]: a for a in data["annotations"]}
    samples = []
    for im in data["images"][: limit if limit is not None else None]:
        cap, cam, fidx = str(im["capture"]), str(im["camera"]), str(im["frame_idx"])
        c = cams[cap]
        rot = np.asarray(c["camrot"][cam], dtype=np.float64)
        pos = np.asarray(c["campos"][cam], dtype=np.float64)
        (fx, fy), (cx, cy) = c["focal"][cam], c["princpt"][cam]
        intr = Intrinsics(float(fx), float(fy), float(cx), float(cy), int(im["width"]), int(im["height"]))
        rec = joints[cap][fidx]
        world = np.asarray(rec["world_coord"], dtype=np.float64)
        cam_mm = Extrinsics(rot, -rot @ pos).to_camera(world)  # InterHand gives the camera's position
        valid = np.asarray(rec["joint_valid"], dtype=bool).reshape(-1)
        ann = anns[im["id"]]
        valid &= np.asarray(ann["joint_valid"], dtype=bool).reshape(-1)
        hand_type = ann["hand_type"]
        hands = []
        for side, offset in (("right", 0), ("left", 21)):
            if hand_type not in (side, "interacting"):
                continue
            idx = [offset + k for k in INTERHAND_TO_MP]
            v = valid[idx]
            if not v.any():
                continue
            j3d = cam_mm[idx]
            hands.append(GtHand(intr.project(j3d), v, j3d, side, f"{side} ({hand_type})"))
        samples.append(Sample(Path(im["file_name"]).stem, root / im["file_name"], intr, hands))
    return samples


# --------------------------------------------------------------------------------------------------
# Running and matching


#: What runs MediaPipe's hand models (``--landmarker``): ``litert`` (the pipeline's default) or ``mediapipe``.
LANDMARKER = LandmarkConfig.backend


def run_pipeline(samples: list[Sample], video: bool, dt_s: float, estimator: str = "mediapipe") -> list[list[HandPose]]:
    """Hands per sample from the project's RGB pipeline.

    ``video=False``: static-image palm detection on every image, no smoothing, images ``STATIC_DT_S``
    apart so no identity state carries over. ``video=True``: tracking mode + medium smoothing, frames
    ``dt_s`` apart. ``estimator``: ``mediapipe`` (MediaPipe's world landmarks as the shape) or
    ``crossmodal`` (the cross-modal model's shape from RGB; same detection, same lift).
    """
    cfg = override(TrackerConfig(), **{  # RGB photos: the depth stages would pass them through unchanged
        "landmarks.static_image_mode": not video, "landmarks.max_hands": 2, "depth.estimator": estimator,
        "prior.enabled": False,  # the estimators alone; the default prior's effect: scripts/eval_live_post.py
        "landmarks.backend": LANDMARKER,
        "smoothing": SMOOTHING_PRESETS["medium"] if video else None,
    })
    pipeline = build_pipeline(cfg)
    out = []
    try:
        for i, s in enumerate(samples):
            t = i * (dt_s if video else STATIC_DT_S)
            frame = Frame(s.load_rgb(), t, i, Camera(s.name, s.intrinsics))
            out.append(list(pipeline(FrameSet.single(frame)).hands))
    finally:
        pipeline.close()
    return out


_FINGER_BGR = ((0, 0, 255), (0, 165, 255), (0, 255, 255), (0, 255, 0), (255, 0, 0))  # thumb..pinky


def _draw_skeleton(img: np.ndarray, joints_2d: np.ndarray, valid: np.ndarray, thickness: int) -> None:
    for p, c in EDGES:
        if valid[p] and valid[c]:
            colour = _FINGER_BGR[(c - 1) // 4]
            a, b = (round(x) for x in joints_2d[p]), (round(x) for x in joints_2d[c])
            cv2.line(img, tuple(a), tuple(b), colour, thickness, cv2.LINE_AA)
    if valid[WRIST]:
        cv2.circle(img, tuple(round(x) for x in joints_2d[WRIST]), 2 + thickness, (255, 255, 255), -1)


def save_overlay(out_dir: Path, tag: str, sample: Sample, dets: list[HandPose]) -> None:
    """Write GT (left panel) and detected (right panel) skeletons side by side for eyeballing.

    Fingers are coloured thumb red, index orange, middle yellow, ring green, pinky blue; the wrist
    is a white dot; each detection is labelled with its handedness.
    """
    img = cv2.cvtColor(sample.load_rgb(), cv2.COLOR_RGB2BGR)
    gt_img, det_img = img.copy(), img.copy()
    thick = max(1, round(max(img.shape[:2]) / 300))
    for gt in sample.hands:
        _draw_skeleton(gt_img, gt.joints_2d, gt.valid, thick)
    for det in dets:
        _draw_skeleton(det_img, det.joints_2d, np.ones(NUM_JOINTS, bool), thick)
        u, v = det.joints_2d[WRIST]
        cv2.putText(det_img, det.handedness, (round(u), round(v)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                    (255, 255, 255), thick)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_dir / f"{tag}_{sample.name}.jpg"), np.hstack([gt_img, det_img]))


def relift(hands: list[list[HandPose]], samples: list[Sample], config: LiftConfig) -> list[list[HandPose]]:
    """The same detections lifted to 3D again with another :class:`LiftConfig` (ablation)."""
    lifter = MetricLifter(config)
    return [
        [lifter.lift(h.replace(joints_3d=None), s.intrinsics) for h in hs] for hs, s in zip(hands, samples)
    ]


def match_hands(dets: list[HandPose], gts: list[GtHand]) -> list[int | None]:
    """Detection index per GT hand (None = missed): minimum total mean 2D error, gated."""
    if not dets or not gts:
        return [None] * len(gts)
    cost = np.full((len(gts), len(dets)), np.inf)
    for g, gt in enumerate(gts):
        size = max(bbox_size(gt.joints_2d, gt.valid), 1.0)
        for d, det in enumerate(dets):
            e = mean_joint_error(det.joints_2d, gt.joints_2d, gt.valid)
            if e <= MATCH_GATE * size:
                cost[g, d] = e
    best: list[int | None] = [None] * len(gts)
    for g, d in best_assignment(cost, np.inf):  # cost is already inf outside the gate
        best[g] = d
    return best


# --------------------------------------------------------------------------------------------------
# Per-hand evaluation


@dataclass
class HandEval:
    """Scores of one GT hand in one pass (NaN / None where not applicable)."""

    sample: str
    label: str
    detected: bool
    err_2d: np.ndarray  # (21,) px, NaN for unlabelled joints or a miss
    bbox_px: float
    gt_side: str | None
    pred_side: str | None = None
    pred_side_score: float = float("nan")
    rr_mm: float = float("nan")
    pa_mm: float = float("nan")
    abs_mm: float = float("nan")
    abs_scaled_mm: float = float("nan")
    z_ratio: float = float("nan")
    size_ratio: float = float("nan")
    gt_chirality: float = float("nan")


def evaluate_hand(sample: Sample, gt: GtHand, det: HandPose | None) -> HandEval:
    ev = HandEval(
        sample=sample.name,
        label=gt.label,
        detected=det is not None,
        err_2d=np.full(NUM_JOINTS, np.nan),
        bbox_px=bbox_size(gt.joints_2d, gt.valid),
        gt_side=gt.side,
    )
    if gt.joints_3d is not None and gt.valid.all():
        ev.gt_chirality = chirality_side(gt.joints_3d)[1]
    if det is None:
        return ev
    ev.err_2d = np.where(gt.valid, joint_errors(det.joints_2d, gt.joints_2d), np.nan)
    ev.pred_side, ev.pred_side_score = det.handedness, det.handedness_score
    if gt.joints_3d is None or det.joints_3d is None:
        return ev
    if not gt.valid[WRIST]:
        return ev
    p, g, v = det.joints_3d, gt.joints_3d, gt.valid
    ev.rr_mm = mean_joint_error(root_relative(p), root_relative(g), v)
    if v.sum() >= 4:
        ev.pa_mm = mean_joint_error(procrustes_align(p, g, v), g, v)
    ev.abs_mm = mean_joint_error(p, g, v)
    ev.z_ratio = float(p[WRIST, 2] / g[WRIST, 2])
    if v.all():
        ev.size_ratio = bone_length_sum(p) / bone_length_sum(g)
        ev.abs_scaled_mm = mean_joint_error(p / ev.size_ratio, g, v)
    return ev


def evaluate_pass(samples: list[Sample], hands: list[list[HandPose]]) -> tuple[list[HandEval], int]:
    """Per-GT-hand scores and the number of detections matched to no GT hand."""
    evals: list[HandEval] = []
    extra = 0
    for s, dets in zip(samples, hands):
        match = match_hands(dets, s.hands)
        extra += len(dets) - sum(m is not None for m in match)
        for gt, m in zip(s.hands, match):
            evals.append(evaluate_hand(s, gt, dets[m] if m is not None else None))
    return evals, extra


def _nanmean(xs: list[float] | np.ndarray) -> float:
    a = np.asarray(xs, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def summarise(evals: list[HandEval], extra: int) -> dict[str, Any]:
    """Set-level numbers of one pass. 2D / 3D errors are over matched hands only."""
    found = [e for e in evals if e.detected]
    out: dict[str, Any] = {
        "hands": len(evals),
        "detected": len(found),
        "detection_rate": len(found) / len(evals) if evals else float("nan"),
        "unmatched_detections": extra,
    }
    if found:
        err = np.stack([e.err_2d for e in found])
        valid = np.isfinite(err)
        bbox = np.array([[e.bbox_px] for e in found])
        errz = np.where(valid, err, 0.0)
        out["epe_px"] = float(err[valid].mean())
        for t in PCK_PX:
            out[f"pck_{t:g}px"] = pck(errz, t, valid)
        for f in PCK_BBOX:
            out[f"pck_{f:g}bbox"] = pck(errz, f * bbox, valid)
        out["per_joint_epe_px"] = [_nanmean(err[:, j]) for j in range(NUM_JOINTS)]
    for key in ("rr_mm", "pa_mm", "abs_mm", "abs_scaled_mm", "z_ratio", "size_ratio"):
        vals = [getattr(e, key) for e in found]
        a = np.asarray(vals, dtype=np.float64)
        out[key] = _nanmean(a)
        out[f"{key}_std"] = float(np.nanstd(a)) if np.isfinite(a).any() else float("nan")
        out[f"{key}_n"] = int(np.isfinite(a).sum())
    zs = np.array([(e.z_ratio, e.size_ratio) for e in found], dtype=np.float64).reshape(-1, 2)
    zs = zs[np.isfinite(zs).all(axis=1)]
    out["corr_z_size_ratio"] = float(np.corrcoef(zs.T)[0, 1]) if len(zs) >= 3 else float("nan")
    labelled = [e for e in found if e.gt_side is not None and e.pred_side in ("left", "right")]
    out["handedness_n"] = len(labelled)
    out["handedness_correct"] = sum(e.pred_side == e.gt_side for e in labelled)
    out["pred_sides"] = {s: sum(e.pred_side == s for e in found) for s in ("left", "right", "unknown")}
    return out


# --------------------------------------------------------------------------------------------------
# Report


def _f(x: float, nd: int = 1, pct: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * x:.{nd}f}" if pct else f"{x:.{nd}f}"


def _pm(s: dict[str, Any], key: str) -> str:
    return f"{_f(s[key], 3)}+-{_f(s[key + '_std'], 3)}" if np.isfinite(s[key]) else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


SHORT = [n.replace("thumb_", "T").replace("index_", "I").replace("middle_", "M").replace("ring_", "R")
         .replace("pinky_", "P").replace("wrist", "W").upper()[:5] for n in JOINT_NAMES]  # fmt: skip


@dataclass
class Report:
    """What the evaluation collects for the final sections and the JSON file."""

    results: dict[str, Any]
    per_joint: list[tuple[str, int, list[float]]] = field(default_factory=list)  # (row, hands, px per joint)
    sides: list[list[str]] = field(default_factory=list)  # handedness table rows
    labelled: list[bool] = field(default_factory=list)  # per labelled, detected hand: side correct
    chirality: list[tuple[str, float]] = field(default_factory=list)  # (label side, GT chirality score)
    warnings: list[str] = field(default_factory=list)


def report_realworld(root: Path, limit: int | None, video_fps: float, overlays: Path | None, rep: Report) -> None:
    """Real-world set: static pass, two lift ablations on its detections, and a video pass."""
    samples = load_realworld(root, limit)
    t0 = time.perf_counter()
    static = run_pipeline(samples, video=False, dt_s=STATIC_DT_S)
    t_static = time.perf_counter() - t0
    if overlays:
        for smp, dets in zip(samples, static):
            save_overlay(overlays, "realworld", smp, dets)
    t0 = time.perf_counter()
    video = run_pipeline(samples, video=True, dt_s=1.0 / video_fps)
    t_video = time.perf_counter() - t0
    mean_size = summarise(*evaluate_pass(samples, static))["size_ratio"]
    user_scale = 1.0 / mean_size if np.isfinite(mean_size) and mean_size > 0 else 1.0
    passes = {
        "static, align=ray": static,
        "static, align=none": relift(static, samples, LiftConfig(align="none")),
        f"static, ray, hand_scale={user_scale:.3f}": relift(
            static, samples, LiftConfig(align="ray", hand_scale=user_scale)),
        f"video+smooth, {video_fps:g} fps": video,
    }  # fmt: skip
    for est in ESTIMATORS[1:]:  # the other estimators side by side, same detections' passes
        t0 = time.perf_counter()
        passes[f"static [{est}]"] = run_pipeline(samples, video=False, dt_s=STATIC_DT_S, estimator=est)
        passes[f"video+smooth, {video_fps:g} fps [{est}]"] = run_pipeline(samples, video=True, dt_s=1.0 / video_fps,
                                                                         estimator=est)  # fmt: skip
        print(f"  [{est}] passes: {time.perf_counter() - t0:.1f} s")
    gt_sides = [chirality_side(smp.hands[0].joints_3d) for smp in samples]
    n_left = sum(side == "left" for side, _ in gt_sides)
    n_right = sum(side == "right" for side, _ in gt_sides)
    gt_side = "left" if n_left >= n_right else "right"
    out: dict[str, Any] = {
        "images": len(samples), "seconds_static": t_static, "seconds_video": t_video,
        "user_hand_scale": user_scale, "passes": {},
        "gt_side_from_chirality": {"side": gt_side, "left_frames": n_left, "right_frames": n_right,
                                   "frames": len(gt_sides), "mean_score": _nanmean([sc for _, sc in gt_sides])},
    }  # fmt: skip
    rows = []
    for name, hands in passes.items():
        evals, extra = evaluate_pass(samples, hands)
        for e in evals:
            e.gt_side = gt_side
        s = summarise(evals, extra)
        s["per_image"] = [dataclasses.asdict(e) for e in evals]
        out["passes"][name] = s
        rows.append([
            name, f"{s['detected']}/{s['hands']}", str(extra), _f(s.get("epe_px", np.nan), 2),
            *(_f(s.get(f"pck_{t:g}px", np.nan), 1, True) for t in PCK_PX),
            *(_f(s.get(f"pck_{f:g}bbox", np.nan), 1, True) for f in PCK_BBOX),
            _f(s["rr_mm"]), _f(s["pa_mm"]), _f(s["abs_mm"]), _f(s["abs_scaled_mm"]),
            _pm(s, "z_ratio"), _pm(s, "size_ratio"), _f(s["corr_z_size_ratio"], 2),
            f"{s['pred_sides']['left']}L/{s['pred_sides']['right']}R",
        ])  # fmt: skip
        if "per_joint_epe_px" in s:
            rep.per_joint.append((f"realworld {name}", s["detected"], s["per_joint_epe_px"]))
        rep.sides.append([f"realworld {name}", f"{gt_side} (3D chirality: {n_left}L/{n_right}R/{len(gt_sides)})",
                          f"{s['handedness_correct']}/{s['handedness_n']}",
                          f"{s['pred_sides']['left']}L/{s['pred_sides']['right']}R"])  # fmt: skip
        if name == "static, align=ray" and s["handedness_n"] >= 10 and s["handedness_correct"] <= 0.25 * s["handedness_n"]:
            rep.warnings.append(f"HANDEDNESS LOOKS INVERTED on the real-world set: {s['handedness_correct']}/"
                                f"{s['handedness_n']} frames agree with the GT skeleton's chirality")  # fmt: skip
    rep.results["sets"]["realworld_rgb_hgcnn"] = out
    print(f"\n== realworld_rgb_hgcnn: {len(samples)} images 256x256, one subject, 3D GT "
          f"(static {t_static:.1f} s, video {t_video:.1f} s) ==")  # fmt: skip
    print(_table(["pass", "det", "FP", "2D px", "@5px", "@10px", "@20px", "@.1bb", "@.2bb", "RR mm", "PA mm",
                  "abs mm", "abs|s", "z p/g", "size p/g", "corr", "labels"], rows))  # fmt: skip
    print("  det = GT hands matched; FP = detections matched to no GT hand; PCK in %; errors over matched hands.")
    print(f"  hand_scale={user_scale:.3f} = 1 / mean size ratio of the first pass (one value for the subject).")
    print("  z p/g, size p/g: wrist depth and hand size (bone sum) predicted / GT, mean+-std over images; corr: their")
    print("  correlation (1 = depth error is all scale ambiguity); abs|s: abs error with an oracle per-image hand_scale.")


def report_mmpose(root: Path, limit: int | None, overlays: Path | None, rep: Report) -> None:
    """The four MMPose sample sets, static images, default lift."""
    loaders = {
        "interhand2.6m": (lambda r: load_interhand(r, limit), "test_interhand2.6m_data.json"),
        "panoptic_hand2d": (lambda r: load_panoptic(r, limit), "test_panoptic.json"),
        "freihand": (lambda r: load_coco_2d(r, "test_freihand.json", limit), "test_freihand.json"),
        "onehand10k": (lambda r: load_coco_2d(r, "test_onehand10k.json", limit), "test_onehand10k.json"),
    }
    rows = []
    for set_name, (loader, marker) in loaders.items():
        set_root = root / set_name
        if not (set_root / marker).is_file():
            print(f"\n[skip] mmpose_hand_samples/{set_name}: {set_root / marker} not found")
            continue
        samples = loader(set_root)
        for est in ESTIMATORS:
            _mmpose_set(set_name if est == "mediapipe" else f"{set_name} [{est}]", samples, est, overlays, rep, rows)
    if rows:
        print("\n== mmpose_hand_samples (static images, align=ray) ==")
        print(_table(["set", "imgs", "det", "FP", "2D px", "@.2bb", "@.1bb", "RR mm", "PA mm", "abs mm",
                      "abs|s", "z p/g", "size p/g", "L/R ok"], rows))  # fmt: skip
        print("  3D only for InterHand2.6M (calibrated); the 2D-only sets use a 60-deg FOV guess for the lift.")


def _mmpose_set(set_name: str, samples: list[Sample], estimator: str, overlays: Path | None, rep: Report,
                rows: list[list[str]]) -> None:  # fmt: skip
    """One MMPose sample set through one estimator: results, table row, handedness checks."""
    t0 = time.perf_counter()
    hands = run_pipeline(samples, video=False, dt_s=STATIC_DT_S, estimator=estimator)
    secs = time.perf_counter() - t0
    if overlays:
        for smp, dets in zip(samples, hands):
            save_overlay(overlays, set_name, smp, dets)
    evals, extra = evaluate_pass(samples, hands)
    s = summarise(evals, extra)
    s["seconds"] = secs
    s["per_hand"] = [dataclasses.asdict(e) for e in evals]
    rep.results["sets"][set_name] = s
    is3d = any(g.joints_3d is not None for smp in samples for g in smp.hands)
    rows.append([
        set_name, str(len(samples)), f"{s['detected']}/{s['hands']}", str(extra),
        _f(s.get("epe_px", np.nan), 2), _f(s.get("pck_0.2bbox", np.nan), 1, True),
        _f(s.get("pck_0.1bbox", np.nan), 1, True),
        *((_f(s["rr_mm"]), _f(s["pa_mm"]), _f(s["abs_mm"]), _f(s["abs_scaled_mm"]),
           _f(s["z_ratio"], 3), _f(s["size_ratio"], 3)) if is3d else ("-",) * 6),
        f"{s['handedness_correct']}/{s['handedness_n']}" if s["handedness_n"] else "-",
    ])  # fmt: skip
    if "per_joint_epe_px" in s:
        rep.per_joint.append((set_name, s["detected"], s["per_joint_epe_px"]))
    if estimator != "mediapipe":
        return  # same detections, same handedness: checked once
    for e in evals:
        if e.gt_side is None:
            continue
        result = ("ok" if e.pred_side == e.gt_side else "WRONG") if e.detected else "missed"
        rep.sides.append([f"{set_name} {e.sample} {e.label}", e.gt_side, result,
                          f"{e.pred_side} {_f(e.pred_side_score, 2)}" if e.detected else "-"])  # fmt: skip
        if e.detected and e.pred_side in ("left", "right"):
            rep.labelled.append(e.pred_side == e.gt_side)
        if np.isfinite(e.gt_chirality):
            rep.chirality.append((e.gt_side, e.gt_chirality))


def report_joint_order(rep: Report) -> None:
    if not rep.per_joint:
        return
    print("\n== per-joint 2D error, px (joint order check: every joint should be small, not just the mean) ==")
    print(_table(["set / pass", *SHORT], [[name, *(_f(x, 1) for x in vals)] for name, _, vals in rep.per_joint]))
    print(f"  outliers (> 3x the row's median + 5 px) are flagged for rows of >= {MIN_HANDS_JOINT_CHECK} hands;"
          " for smaller sets look at --overlays.")  # fmt: skip
    for name, n, vals in rep.per_joint:
        v = np.asarray(vals, dtype=np.float64)
        med = float(np.nanmedian(v))
        bad = [SHORT[j] for j in range(NUM_JOINTS) if np.isfinite(v[j]) and v[j] > 3 * med + 5]
        if bad and n >= MIN_HANDS_JOINT_CHECK:
            rep.warnings.append(f"{name}: joints {bad} have > 3x the median 2D error ({med:.1f} px): check joint order")


def report_handedness(rep: Report) -> None:
    if rep.sides:
        print("\n== handedness (HandPose.handedness should be the anatomical hand; images are not mirrored) ==")
        print(_table(["hand", "GT side", "result", "predicted (score)"], rep.sides))
    if rep.chirality:
        decided = [(side, sc) for side, sc in rep.chirality if abs(sc) >= CHIRALITY_MIN]
        agree = sum(("right" if sc > 0 else "left") == side for side, sc in decided)
        print(f"  3D-chirality rule vs InterHand2.6M labels: {agree}/{len(decided)} decided agree, "
              f"{len(rep.chirality) - len(decided)} undecided (|score| < {CHIRALITY_MIN}); scores "
              f"{', '.join(f'{side[0].upper()}:{sc:+.2f}' for side, sc in rep.chirality)}")  # fmt: skip
        rep.results["chirality_rule_vs_interhand"] = {"agree": agree, "decided": len(decided), "n": len(rep.chirality)}
        if agree < len(decided):
            rep.warnings.append("the 3D-chirality rule disagrees with InterHand2.6M labels: the real-world GT side "
                                "derived from it is not trustworthy")  # fmt: skip
    n, n_ok = len(rep.labelled), sum(rep.labelled)
    rep.results["handedness_labelled"] = {"correct": n_ok, "n": n}
    if n:
        print(f"  labelled hands (InterHand2.6M + Panoptic): {n_ok}/{n} correct")
        if n >= 3 and n_ok <= 0.25 * n:
            rep.warnings.append(
                f"HANDEDNESS LOOKS INVERTED: {n - n_ok}/{n} labelled hands get the opposite side "
                "(MediaPipeConfig.mirrored / the label swap in tracker/mediapipe_hands.py)"
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--data", type=Path, default=None,
                    help=f"data root (default: $HANDTRACK_DATA, else {DEFAULT_DATA})")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write all numbers here")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="at most N images per data set")
    ap.add_argument("--overlays", type=Path, default=None, metavar="DIR",
                    help="write each static-pass image here with GT (left) and detected (right) skeletons")  # fmt: skip
    ap.add_argument("--video-fps", type=float, default=10.0,
                    help="frame rate assumed for the real-world sequence in the video pass (default 10)")  # fmt: skip
    ap.add_argument("--landmarker", choices=("mediapipe", "litert"), default=LandmarkConfig.backend,
                    help="what runs MediaPipe's hand models (default: %(default)s, the pipeline's)")  # fmt: skip
    ap.add_argument("--estimators", default="mediapipe", metavar="LIST",
                    help="RGB estimators side by side, comma-separated: mediapipe (always), crossmodal")  # fmt: skip
    args = ap.parse_args(argv)
    global LANDMARKER, ESTIMATORS
    LANDMARKER = args.landmarker
    ESTIMATORS = ("mediapipe",) + tuple(e for e in args.estimators.split(",") if e and e != "mediapipe")
    if any(e not in ("crossmodal",) for e in ESTIMATORS[1:]):
        ap.error("--estimators: mediapipe and crossmodal are the RGB estimators")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.video_fps <= 0:
        ap.error("--video-fps must be > 0")
    os.environ.setdefault("GLOG_minloglevel", "2")  # quieten MediaPipe's C++ logging

    data = args.data or data_root()
    t_start = time.perf_counter()
    print(f"handtrack RGB evaluation -- data root {data}, landmarker {LANDMARKER}")
    rep = Report({"data_root": str(data), "limit": args.limit, "video_fps": args.video_fps,
                  "match_gate_bbox": MATCH_GATE, "sets": {}})  # fmt: skip

    rw_root = data / "realworld_rgb_hgcnn"
    if (rw_root / "realworld_testset.npz").is_file():
        report_realworld(rw_root, args.limit, args.video_fps, args.overlays, rep)
    else:
        print(f"\n[skip] realworld_rgb_hgcnn: {rw_root / 'realworld_testset.npz'} not found")
    report_mmpose(data / "mmpose_hand_samples", args.limit, args.overlays, rep)
    report_joint_order(rep)
    report_handedness(rep)

    elapsed = time.perf_counter() - t_start
    rep.results["seconds_total"] = elapsed
    rep.results["warnings"] = rep.warnings
    if rep.warnings:
        print("\n" + "!" * 100)
        for w in rep.warnings:
            print(f"!! {w}")
        print("!" * 100)
    if not rep.results["sets"]:
        print("\nno data set found; nothing evaluated")
    print(f"\ntotal {elapsed:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(rep.results), indent=1))
        print(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
