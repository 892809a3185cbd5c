#!/usr/bin/env python
"""Make the bundled demo recording: a drawn right hand with exact ground truth.

The hand is the project's own drawing (no third-party images): the project's kinematic hand model
(:mod:`models.hand_model`, average right hand) in millimetres, animated over 4 s at 30 FPS with a
small smoothed tremor (:func:`models.motion.smooth_noise`), and rendered by the data engine's ray
caster (:func:`models.render.render`: the skin of :mod:`models.hand_surface`, shaded, 2x supersampled,
lightly blurred) over one of its walls (:func:`models.render.make_background`). MediaPipe Hands is
then run on the decoded video to measure how well it detects the drawing and how close its
landmarks fall to the ground truth.

Frames and units:

* Camera frame: OpenCV, x right, y down, z forward (out of the lens), millimetres.
* Hand-local frame (right hand): origin at the wrist joint centre, +x radial (towards the thumb),
  +y distal (towards the middle fingertip), +z volar (out of the palm). Right-handed:
  ``x = y cross z``. A mirror image of this hand (a left hand) would need a left-handed frame.
* Pixels: x right, y down, origin at the top-left corner of the top-left pixel (pixel ``i`` spans
  ``[i, i+1)``), ``u = fx * X / Z + cx``, as in :class:`tracker.core.structures.Intrinsics`.

The hand is seen from its palm side: the base orientation maps local +x to camera +x, +y to -y
(fingers up) and +z (palm normal) to -z (towards the camera). A right hand seen palm-first has its
thumb on the image's right, which is what this gives.

Usage::

    python scripts/make_demo.py                # writes tracker/assets/demo/, then evaluates MediaPipe
    python scripts/make_demo.py --check        # regenerates into a temp dir, compares the npz
    python scripts/make_demo.py --out /tmp/d --preview /tmp/d/sheet.png
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # allow ``python scripts/make_demo.py`` from anywhere
    sys.path.insert(0, str(_REPO))

import torch  # noqa: E402

from devices.video import VideoFileDevice  # noqa: E402
from models import hand_model as hm  # noqa: E402
from models.motion import smooth_noise  # noqa: E402
from models.render import RenderConfig, RenderHand, make_background, render  # noqa: E402
from tracker.core.joints import EDGES, FINGERS, JOINT_NAMES, NUM_JOINTS  # noqa: E402
from tracker.core.metrics import joint_errors, procrustes_align  # noqa: E402
from tracker.core.structures import Camera, Intrinsics  # noqa: E402
from tracker.io.intrinsics import save_intrinsics_json  # noqa: E402

__all__ = [
    "SEED",
    "FPS",
    "NUM_FRAMES",
    "INTRINSICS",
    "PoseParams",
    "keyframes",
    "animate",
    "forward_kinematics",
    "hand_rotation",
    "background",
    "render_joints",
    "render_frame",
    "generate",
    "evaluate_mediapipe",
    "main",
]

SEED: int = 20240611
FPS: float = 30.0
NUM_FRAMES: int = 120
INTRINSICS = Intrinsics(fx=600.0, fy=600.0, cx=320.0, cy=240.0, width=640, height=480)
HANDEDNESS = "right"
SUPERSAMPLE = 2
#: Gaussian blur (px) of the rendered hand, like a camera's optics.
BLUR_SIGMA = 0.45
#: Half-length (frames) of the tremor's smoothing kernel: the committed ground truth was drawn with
#: this one (3 x its 4-frame width), where :func:`models.motion.smooth_noise` would take 13.
TREMOR_RADIUS = 12
#: The demo recording ships as package data of ``tracker`` (read through importlib.resources).
DEFAULT_OUT = _REPO / "tracker" / "assets" / "demo"

# --------------------------------------------------------------------------------------------------
# Hand geometry (hand-local frame, model mm; see HAND_SCALE): an average adult right hand, wrist ->
# middle MCP 90 mm, middle finger 44/28/22 mm, wrist joint -> middle fingertip 184 mm. Within anatomical
# ranges the proportions lean towards MediaPipe's landmark conventions (measured on this drawing:
# its finger-base landmarks sit a few mm distal of anatomical MCP centres, its thumb joints a few mm
# proximal), so that its landmarks and these joints mean the same points.
# --------------------------------------------------------------------------------------------------

#: Uniform scale from the drawing's model mm (the hand model's geometry before its base scale:
#: wrist -> middle MCP 90 mm) to the drawn hand and its ground truth (93.6 mm, MediaPipe's
#: average adult hand). The joints come from the project's hand model, :mod:`models.hand_model`.
HAND_SCALE = hm.BASE_SCALE_MM
#: Largest difference (mm, px) allowed between a regenerated and the committed ground truth.
GT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PoseParams:
    """Pose of the demo hand.

    Attributes:
        flex: ``(5, 3)`` degrees, flexion of each chain's three joints in :data:`FINGERS` order
            (thumb: CMC, MCP, IP; fingers: MCP, PIP, DIP); positive bends towards the palm.
        spread: ``(5,)`` degrees, abduction at the chain root, positive away from the middle finger
            (thumb: CMC abduction, positive away from the index finger).
        rotation: ``(3,)`` degrees ``(pitch, yaw, roll)`` about the camera x, y, z axes, applied in
            that order after the base palm-to-camera orientation.
        wrist: ``(3,)`` mm, the wrist joint centre in the camera frame.
    """

    flex: np.ndarray
    spread: np.ndarray
    rotation: np.ndarray
    wrist: np.ndarray

    def as_vector(self) -> np.ndarray:
        """All parameters as one flat float64 vector (for interpolation)."""
        return np.concatenate([self.flex.ravel(), self.spread, self.rotation, self.wrist])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> PoseParams:
        """Inverse of :meth:`as_vector`."""
        v = np.asarray(v, dtype=np.float64)
        return cls(v[:15].reshape(5, 3).copy(), v[15:20].copy(), v[20:23].copy(), v[23:26].copy())


# --------------------------------------------------------------------------------------------------
# Small deterministic linear algebra for the wrist rotation: no BLAS (whose kernels differ between
# CPUs) and no numpy SIMD trigonometry: rotations come from ``math`` and products are written out as
# fixed sequences of elementwise operations.
# --------------------------------------------------------------------------------------------------


def _rx(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 @ 3x3 in a fixed order of operations."""
    return a[:, 0:1] * b[0:1, :] + a[:, 1:2] * b[1:2, :] + a[:, 2:3] * b[2:3, :]


def _apply(r: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Rotate points ``(..., 3)`` by the 3x3 ``r`` (``r @ p`` per point) in a fixed order."""
    return p[..., 0:1] * r[:, 0] + p[..., 1:2] * r[:, 1] + p[..., 2:3] * r[:, 2]


#: Hand-local -> camera rotation of the base pose: palm towards the camera, fingers up.
BASE_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def hand_rotation(rotation_deg: np.ndarray) -> np.ndarray:
    """Hand-local -> camera rotation ``Rz(roll) Ry(yaw) Rx(pitch) BASE_ROTATION`` (3x3)."""
    pitch, yaw, roll = (float(a) for a in rotation_deg)
    return _mm(_rz(roll), _mm(_ry(yaw), _mm(_rx(pitch), BASE_ROTATION)))


def forward_kinematics(pose: PoseParams) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """Joint positions of ``pose`` in the hand-local frame, from :mod:`models.hand_model` (average
    shape, right hand).

    Returns:
        joints: ``(21, 3)`` float64 model mm (before :data:`HAND_SCALE`), hand-local frame,
            MediaPipe joint order.
        frames: per chain name, the three bone frames (3x3, columns x/y/z in hand-local axes;
            y along the bone, x the flexion axis).
    """
    angles = np.zeros(hm.NUM_ANGLES)
    for f in range(5):  # per chain: root flexion, root abduction, middle and distal flexion
        angles[4 * f : 4 * f + 4] = (pose.flex[f, 0], pose.spread[f], pose.flex[f, 1], pose.flex[f, 2])
    joints, frames = hm.local_joints_and_frames(torch.as_tensor(np.radians(angles))[None], hm.mean_shape(1))
    fr = frames[0].numpy()
    return joints[0].numpy() / HAND_SCALE, {name: list(fr[f]) for f, name in enumerate(FINGERS)}


def to_camera(points_local: np.ndarray, pose: PoseParams) -> np.ndarray:
    """Hand-local points ``(..., 3)`` model mm -> camera frame mm (scaled by :data:`HAND_SCALE`)."""
    return _apply(HAND_SCALE * hand_rotation(pose.rotation), points_local) + pose.wrist


# --------------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------------


def _pose(fingers: list[tuple[float, float, float]], spread: list[float],
          rotation: tuple[float, float, float], wrist: tuple[float, float, float]) -> PoseParams:
    return PoseParams(np.array(fingers, dtype=np.float64), np.array(spread, dtype=np.float64),
                      np.array(rotation, dtype=np.float64), np.array(wrist, dtype=np.float64))


def keyframes() -> list[tuple[float, PoseParams]]:
    """The scripted key poses ``(time s, pose)`` of the 4 s clip."""
    relaxed = [(0.0, 8.0, 8.0), (8.0, 12.0, 6.0), (8.0, 12.0, 6.0), (9.0, 14.0, 7.0), (10.0, 16.0, 8.0)]
    spread_wide = [(-5.0, 5.0, 5.0), (0.0, 3.0, 2.0), (0.0, 3.0, 2.0), (0.0, 3.0, 2.0), (0.0, 4.0, 2.0)]
    half_closed = [(15.0, 20.0, 20.0), (30.0, 50.0, 30.0), (35.0, 55.0, 35.0), (38.0, 60.0, 38.0),
                   (40.0, 62.0, 38.0)]
    pinch = [(20.0, 0.0, 10.0), (40.0, 60.0, 36.0), (10.0, 14.0, 8.0), (12.0, 18.0, 10.0), (15.0, 20.0, 10.0)]
    peace = [(25.0, 30.0, 25.0), (0.0, 6.0, 4.0), (0.0, 6.0, 4.0), (40.0, 60.0, 35.0), (42.0, 62.0, 35.0)]
    return [
        (0.0, _pose(relaxed, [0.0, 2.0, 0.0, 2.0, 4.0], (0.0, 0.0, 0.0), (-20.0, 70.0, 480.0))),
        (0.7, _pose(spread_wide, [15.0, 12.0, 0.0, 10.0, 18.0], (0.0, 15.0, 10.0), (5.0, 66.0, 470.0))),
        (1.4, _pose(half_closed, [5.0, 0.0, 0.0, 0.0, 0.0], (10.0, -10.0, 5.0), (30.0, 60.0, 500.0))),
        (2.1, _pose(pinch, [-20.0, 0.0, 0.0, 2.0, 4.0], (0.0, 10.0, -5.0), (20.0, 70.0, 540.0))),
        (2.8, _pose(pinch, [-20.0, 0.0, 0.0, 4.0, 8.0], (-5.0, -15.0, -12.0), (-10.0, 75.0, 520.0))),
        (3.4, _pose(peace, [0.0, 10.0, 8.0, 0.0, 0.0], (-10.0, 5.0, 0.0), (-30.0, 70.0, 450.0))),
        (4.0, _pose(relaxed, [5.0, 4.0, 0.0, 4.0, 8.0], (0.0, 0.0, 8.0), (-20.0, 65.0, 425.0))),
    ]


def animate(num_frames: int = NUM_FRAMES, fps: float = FPS, seed: int = SEED) -> list[PoseParams]:
    """Poses of all frames: smoothstep between :func:`keyframes` plus a small seeded tremor
    (about 1 deg of rotation, 1.5 mm of translation and 1.5 deg of finger flexion)."""
    keys = keyframes()
    times = np.array([k[0] for k in keys])
    vecs = np.stack([k[1].as_vector() for k in keys])
    rng = np.random.default_rng(seed)
    tremor = smooth_noise(rng, num_frames, vecs.shape[1], width=4.0, radius=TREMOR_RADIUS)
    scale = np.concatenate([np.full(15, 1.5), np.zeros(5), np.full(3, 1.0), np.full(3, 1.5)])
    poses = []
    for i in range(num_frames):
        t = min(i / fps, float(times[-1]))
        k = min(int(np.searchsorted(times, t, side="right")) - 1, len(times) - 2)
        s = (t - times[k]) / (times[k + 1] - times[k])
        s = s * s * (3.0 - 2.0 * s)
        v = (1.0 - s) * vecs[k] + s * vecs[k + 1] + scale * tremor[i]
        poses.append(PoseParams.from_vector(v))
    return poses


# --------------------------------------------------------------------------------------------------
# Rendering: the data engine's ray caster (models.render) over one of its walls
# --------------------------------------------------------------------------------------------------


def background(intr: Intrinsics = INTRINSICS, seed: int = SEED) -> np.ndarray:
    """The wall behind the hand: a seeded soft gradient with low-frequency noise and no clutter
    (:func:`models.render.make_background`), RGB uint8 ``(H, W, 3)``."""
    return make_background(intr.width, intr.height, np.random.default_rng(seed + 1), clutter=0)


def render_joints(joints_cam: np.ndarray, intr: Intrinsics = INTRINSICS, background_rgb: np.ndarray | None = None,
                  ss: int = SUPERSAMPLE) -> np.ndarray:
    """Draw the right hand whose joints are ``joints_cam`` with the data engine's renderer.

    Args:
        joints_cam: ``(21, 3)`` joints, camera frame mm, MediaPipe order.
        intr: camera intrinsics (pinhole, no distortion).
        background_rgb: RGB uint8 ``(H, W, 3)``; None = plain grey.
        ss: supersampling factor.

    Returns:
        RGB uint8 ``(H, W, 3)``.
    """
    config = RenderConfig(supersample=ss, blur_sigma=BLUR_SIGMA)
    return render(Camera("demo", intr), [RenderHand(joints_cam, HANDEDNESS)], config,
                  background_rgb=background_rgb).rgb  # fmt: skip


def render_frame(pose: PoseParams, intr: Intrinsics = INTRINSICS, background_rgb: np.ndarray | None = None,
                 ss: int = SUPERSAMPLE) -> np.ndarray:
    """Draw the hand in ``pose`` (see :func:`render_joints`)."""
    return render_joints(to_camera(forward_kinematics(pose)[0], pose), intr, background_rgb, ss)


# --------------------------------------------------------------------------------------------------
# Ground truth, files, MediaPipe evaluation
# --------------------------------------------------------------------------------------------------

DESCRIPTION = (
    "handtrack demo recording, made by scripts/make_demo.py (seed {seed}): the project's own "
    "drawing (no third-party images) of an average adult RIGHT hand (anatomical; wrist to middle MCP "
    "{palm:.1f} mm), seen from its palm side by a pinhole camera (K, no distortion), so its thumb is on "
    "the image's right; {t} frames at {fps:g} FPS, joints {zmin:.0f}-{zmax:.0f} mm from the camera. "
    "joints_3d: (T,21,3) float64 mm, OpenCV camera frame (x right, y down, z forward), the joint "
    "centres of the drawn kinematic hand; fingertip joints lie about 5 mm inside the end of the "
    "finger, where MediaPipe puts its tip landmarks. joints_2d: (T,21,2) float64 px, joints_3d "
    "projected with K (u = fx*X/Z + cx, origin at the top-left corner of the top-left pixel). Joint "
    "order: MediaPipe's (tracker.core.joints). timestamps: (T,) s from 0. handedness: (T,) the anatomical "
    "hand. The legacy MediaPipe Hands API labels handedness as if the image were mirrored (selfie) "
    "and calls this unmirrored right hand 'Left'."
)


def ground_truth(poses: list[PoseParams], intr: Intrinsics = INTRINSICS) -> dict[str, np.ndarray]:
    """The ground-truth arrays of the clip (see :data:`DESCRIPTION` for frames and units)."""
    j3 = np.stack([to_camera(forward_kinematics(p)[0], p) for p in poses])
    j2 = intr.project(j3)
    t = np.arange(len(poses), dtype=np.float64) / FPS
    return {
        "joints_2d": j2,
        "joints_3d": j3,
        "timestamps": t,
        "handedness": np.array([HANDEDNESS] * len(poses)),
        "K": intr.K,
        "width": np.int64(intr.width),
        "height": np.int64(intr.height),
        "fps": np.float64(FPS),
        "description": np.array(DESCRIPTION.format(
            seed=SEED, palm=float(np.linalg.norm(j3[0, 9] - j3[0, 0])), t=len(poses), fps=FPS,
            zmin=float(j3[..., 2].min()), zmax=float(j3[..., 2].max()))),
    }


def write_video(path: Path, frames_rgb: list[np.ndarray], fps: float = FPS) -> None:
    """Write RGB frames to an 'mp4v' MP4 with OpenCV."""
    h, w = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with the 'mp4v' codec")
    try:
        for f in frames_rgb:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def read_video(path: Path) -> list[np.ndarray]:
    """Decode all frames of a video as RGB uint8, through the project's own playback device."""
    with VideoFileDevice(path) as device:
        frames = []
        while (frameset := device.read()) is not None:
            frames.append(frameset.frames[0].image)
    return frames


def write_outputs(out: Path, gt: dict[str, np.ndarray], frames: list[np.ndarray],
                  intr: Intrinsics = INTRINSICS) -> None:
    """Write demo.mp4, demo_gt.npz and intrinsics.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "demo.mp4", frames)
    np.savez_compressed(out / "demo_gt.npz", **gt)
    save_intrinsics_json(intr, out / "intrinsics.json")


@dataclass
class EvalResult:
    """MediaPipe on the clip vs the ground truth.

    Attributes:
        detected: ``(T,)`` bool, a hand was found.
        err_2d: ``(T, 21)`` px, distance of each landmark to the projected joint (NaN if missed).
        pred_2d: ``(T, 21, 2)`` px landmarks (NaN if missed).
        labels: MediaPipe's handedness label per detected frame.
        label_scores: its score.
        err_3d: ``(T, 21)`` mm, camera-frame error of MediaPipe's world landmarks placed by PnP.
        size_ratio: ``(T,)`` size of MediaPipe's world-landmark hand over the ground truth's (the
            inverse of the similarity-transform scale that best maps the former onto the latter).
        depth_ratio: ``(T,)`` mean depth of the PnP-placed world landmarks over the ground truth's.
    """

    detected: np.ndarray
    err_2d: np.ndarray
    pred_2d: np.ndarray
    labels: list[str]
    label_scores: list[float]
    err_3d: np.ndarray
    size_ratio: np.ndarray
    depth_ratio: np.ndarray


def evaluate_mediapipe(frames_rgb: list[np.ndarray], gt: dict[str, np.ndarray], static: bool) -> EvalResult:
    """Run legacy MediaPipe Hands over ``frames_rgb`` and compare with ``gt``.

    Each frame's hand nearest the ground truth is scored. 2D landmarks are ``(x * W, y * H)``.
    3D: MediaPipe's metric world landmarks are placed in the camera frame by ``cv2.solvePnP``
    against its own 2D landmarks and the intrinsics ``gt['K']``.
    """
    import mediapipe as mp  # heavy; only needed here

    n = len(frames_rgb)
    w, h = int(gt["width"]), int(gt["height"])
    j2, j3, K = gt["joints_2d"], gt["joints_3d"], gt["K"]
    detected = np.zeros(n, bool)
    err2 = np.full((n, NUM_JOINTS), np.nan)
    pred2 = np.full((n, NUM_JOINTS, 2), np.nan)
    err3 = np.full((n, NUM_JOINTS), np.nan)
    size_ratio = np.full(n, np.nan)
    depth_ratio = np.full(n, np.nan)
    labels, scores = [], []
    with mp.solutions.hands.Hands(static_image_mode=static, max_num_hands=2, model_complexity=1,
                                  min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
        for i, frame in enumerate(frames_rgb):
            res = hands.process(frame)
            if not res.multi_hand_landmarks:
                continue
            cands = [np.array([[p.x * w, p.y * h] for p in lm.landmark]) for lm in res.multi_hand_landmarks]
            k = int(np.argmin([np.linalg.norm(c - j2[i], axis=1).mean() for c in cands]))
            detected[i] = True
            pred2[i] = cands[k]
            err2[i] = joint_errors(cands[k], j2[i])
            cls = res.multi_handedness[k].classification[0]
            labels.append(cls.label)
            scores.append(float(cls.score))
            world = np.array([[p.x, p.y, p.z] for p in res.multi_hand_world_landmarks[k].landmark]) * 1000.0
            aligned = procrustes_align(world, j3[i])
            size_ratio[i] = np.linalg.norm(world - world.mean(0)) / np.linalg.norm(aligned - aligned.mean(0))
            ok, rvec, tvec = cv2.solvePnP(world, cands[k], K, np.zeros(5), flags=cv2.SOLVEPNP_SQPNP)
            if ok:
                ok, rvec, tvec = cv2.solvePnP(world, cands[k], K, np.zeros(5), rvec, tvec, True,
                                              cv2.SOLVEPNP_ITERATIVE)
            if ok:
                placed = world @ cv2.Rodrigues(rvec)[0].T + tvec.ravel()
                err3[i] = joint_errors(placed, j3[i])
                depth_ratio[i] = placed[:, 2].mean() / j3[i, :, 2].mean()
    return EvalResult(detected, err2, pred2, labels, scores, err3, size_ratio, depth_ratio)


def report(name: str, r: EvalResult) -> str:
    """A human-readable summary of one evaluation."""
    lines = [f"== {name}"]
    n = len(r.detected)
    lines.append(f"detection rate: {r.detected.sum()}/{n} = {100.0 * r.detected.mean():.1f}%")
    if r.detected.any():
        e = r.err_2d[r.detected]
        uniq = sorted(set(r.labels))
        counts = ", ".join(f"{u}: {r.labels.count(u)}" for u in uniq)
        lines.append(f"MediaPipe handedness labels: {counts} (mean score {np.mean(r.label_scores):.3f}); "
                     "anatomical hand: right")
        frame_mean = e.mean(1)
        worst_frame = int(np.flatnonzero(r.detected)[np.argmax(frame_mean)])
        lines.append(f"2D error px: mean {np.mean(e):.2f}, median {np.median(e):.2f}, "
                     f"p95 {np.percentile(e, 95):.2f}, max {np.max(e):.2f}; worst frame mean "
                     f"{np.max(frame_mean):.2f} (frame {worst_frame})")
        e3 = r.err_3d[r.detected]
        lines.append(f"3D error mm (MP world landmarks + PnP, camera frame): mean {np.nanmean(e3):.1f}, "
                     f"median {np.nanmedian(e3):.1f}; depth ratio (PnP/GT) median "
                     f"{np.nanmedian(r.depth_ratio):.3f}; MP world hand size / GT size median "
                     f"{np.nanmedian(r.size_ratio):.3f}")
        worst = int(np.argmax(e.mean(0)))
        lines.append(f"worst joint: {JOINT_NAMES[worst]} (mean {e[:, worst].mean():.2f} px)")
        lines.append("per-joint 2D error px (mean / median):")
        for j, name_j in enumerate(JOINT_NAMES):
            lines.append(f"  {j:2d} {name_j:<11s} {np.mean(e[:, j]):6.2f} / {np.median(e[:, j]):6.2f}")
    return "\n".join(lines)


def joint_bias(r: EvalResult, gt: dict[str, np.ndarray]) -> np.ndarray:
    """Mean signed 2D offset (MediaPipe - ground truth) per joint, px ``(21, 2)``."""
    return np.nanmean(r.pred_2d[r.detected] - gt["joints_2d"][r.detected], axis=0)


def contact_sheet(frames: list[np.ndarray], gt: dict[str, np.ndarray], r: EvalResult | None,
                  path: Path, step: int = 15) -> None:
    """Save every ``step``-th frame with the ground truth (green) and MediaPipe (red) drawn on it."""
    def px(uv: np.ndarray) -> tuple[int, int]:  # the pixel that contains a continuous position
        return math.floor(uv[0]), math.floor(uv[1])

    tiles = []
    for i in range(0, len(frames), step):
        img = cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR)
        for a, b in EDGES:
            cv2.line(img, px(gt["joints_2d"][i, a]), px(gt["joints_2d"][i, b]), (0, 200, 0), 1, cv2.LINE_AA)
        if r is not None and r.detected[i]:
            for uv in r.pred_2d[i]:
                cv2.circle(img, px(uv), 2, (0, 0, 255), -1, cv2.LINE_AA)
        cv2.putText(img, str(i), (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[k:k + 4]) for k in range(0, len(tiles), 4)]
    sheet = np.vstack(rows)
    cv2.imwrite(str(path), cv2.resize(sheet, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))


def generate(out: Path) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Animate, render and write the demo into ``out``; returns the ground truth and the frames."""
    gt = ground_truth(animate())
    wall = background(INTRINSICS, SEED)
    frames = [render_joints(joints, INTRINSICS, wall) for joints in gt["joints_3d"]]
    write_outputs(out, gt, frames)
    return gt, frames


def check(reference: Path) -> int:
    """Regenerate into a temp dir and compare with ``reference``.

    The ground truth (every array of demo_gt.npz) and intrinsics.json must match: bit for bit,
    except that float arrays may differ by up to :data:`GT_TOLERANCE` (mm / px). The finger
    kinematics run in torch (:mod:`models.hand_model`) and the tremor's kernel in NumPy
    (:func:`models.motion.smooth_noise`), whose float64 transcendentals and products may round the
    last bit differently on other CPUs. The MP4 bytes are only reported: they differ between
    OpenCV / FFmpeg builds.

    Returns:
        0 when the ground truth matches, 1 when it does not, 2 when ``reference`` has none.
    """
    ref_npz, ref_json = reference / "demo_gt.npz", reference / "intrinsics.json"
    if not ref_npz.is_file() or not ref_json.is_file():
        print(f"no committed ground truth in {reference}; run scripts/make_demo.py first")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        gen, _ = generate(Path(tmp))
        bad = []
        with np.load(ref_npz) as ref:
            if set(ref.files) != set(gen):
                bad.append(f"keys differ: {sorted(ref.files)} vs {sorted(gen)}")
            for key in sorted(set(ref.files) & set(gen)):
                a, b = ref[key], np.asarray(gen[key])
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    diff = ""
                    if a.shape == b.shape and a.dtype.kind == "f" and b.dtype.kind == "f":
                        worst = float(np.max(np.abs(a - b)))
                        if worst <= GT_TOLERANCE:
                            continue
                        diff = f", max |diff| {worst:.3g}"
                    bad.append(f"{key}: differs ({a.dtype}{a.shape} vs {b.dtype}{b.shape}{diff})")
        if (Path(tmp) / "intrinsics.json").read_text() != ref_json.read_text():
            bad.append("intrinsics.json differs")
        ref_mp4 = reference / "demo.mp4"
        same_mp4 = ref_mp4.is_file() and (Path(tmp) / "demo.mp4").read_bytes() == ref_mp4.read_bytes()
    print("demo.mp4 bytes: " + ("identical" if same_mp4 else
                                "differ or missing (not checked: they differ between OpenCV/FFmpeg builds)"))
    if bad:
        print("ground truth MISMATCH:\n  " + "\n  ".join(bad))
        return 1
    print(f"ground truth matches {ref_npz} (floats within {GT_TOLERANCE:g}, everything else bit for bit)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default tracker/assets/demo)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and verify demo_gt.npz in --out is bit-identical")
    ap.add_argument("--no-eval", action="store_true", help="skip the MediaPipe evaluation")
    ap.add_argument("--eval-raw", action="store_true", help="also evaluate the frames before MP4 encoding")
    ap.add_argument("--preview", type=Path, default=None, help="save a contact sheet PNG here")
    args = ap.parse_args(argv)

    if args.check:
        return check(args.out)

    t0 = time.perf_counter()
    gt, frames = generate(args.out)
    mp4 = args.out / "demo.mp4"
    print(f"wrote {args.out}: demo.mp4 {mp4.stat().st_size / 1e6:.2f} MB, "
          f"demo_gt.npz {(args.out / 'demo_gt.npz').stat().st_size / 1e3:.1f} kB, "
          f"{len(frames)} frames in {time.perf_counter() - t0:.1f} s")
    if args.no_eval:
        return 0
    decoded = read_video(mp4)
    if len(decoded) != len(frames):
        print(f"warning: decoded {len(decoded)} frames, wrote {len(frames)}")
        decoded = decoded[: len(frames)]
    sets = [("decoded mp4", decoded)] + ([("raw frames", frames)] if args.eval_raw else [])
    last = None
    for label, fr in sets:
        for static in (False, True):
            r = evaluate_mediapipe(fr, gt, static)
            print(report(f"{label}, static_image_mode={static}", r))
            if not static:
                b = joint_bias(r, gt)
                print("mean signed offset MP - GT px (x, y): " + ", ".join(
                    f"{JOINT_NAMES[j]} ({b[j, 0]:+.1f},{b[j, 1]:+.1f})" for j in range(NUM_JOINTS)))
                if last is None:
                    last = r
    if args.preview is not None:
        contact_sheet(decoded, gt, last, args.preview)
        print(f"preview: {args.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
