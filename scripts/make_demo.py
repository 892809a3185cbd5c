#!/usr/bin/env python
"""Make the bundled demo recording: a drawn right hand with exact ground truth.

The hand is the project's own drawing (no third-party images): the project's kinematic hand model
(:mod:`models.hand_model`, average right hand) in millimetres, animated over 4 s at 30 FPS and rendered by a tiny z-buffered numpy rasteriser of
tapered capsules and a palm slab, shaded, 2x supersampled and downsampled with OpenCV. MediaPipe
Hands is then run on the decoded video to measure how well it detects the drawing and how close
its landmarks fall to the ground truth.

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
import itertools
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
from tracker.io.intrinsics import save_intrinsics_json  # noqa: E402
from tracker.core.joints import EDGES, FINGERS, JOINT_NAMES, NUM_JOINTS  # noqa: E402
from tracker.core.metrics import joint_errors, procrustes_align  # noqa: E402
from tracker.core.structures import Intrinsics  # noqa: E402

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

# Skin radii per joint, the fingertip inset and the finger-pad swell are the renderer's
# (:mod:`models.hand_surface`), so the drawing and the data engine share one hand surface size.
from models.hand_surface import PAD_AT, PAD_SWELL, RADII, TIP_INSET  # noqa: E402


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
# Small deterministic linear algebra for the wrist rotation and the drawing: no BLAS (whose kernels
# differ between CPUs) and no numpy SIMD trigonometry: rotations come from ``math`` and products are
# written out as fixed sequences of elementwise operations.
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


def _unit(v: np.ndarray) -> np.ndarray:
    return v / math.sqrt(float(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))


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
            y along the bone, x the flexion axis) used to place skin details.
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


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, width: float) -> np.ndarray:
    """``(n, dims)`` Gaussian noise low-passed by a Gaussian kernel of ``width`` frames, scaled back
    to unit standard deviation. Written with ``math`` and elementwise operations only (no BLAS, no
    SIMD transcendentals) so that it is bit-identical on every machine."""
    pad = int(3 * width)
    white = rng.standard_normal((n + 2 * pad, dims))
    taps = [math.exp(-0.5 * (k / width) ** 2) for k in range(-pad, pad + 1)]
    total = math.fsum(taps)
    taps = [t / total for t in taps]
    gain = math.sqrt(math.fsum(t * t for t in taps))
    out = np.zeros((n, dims))
    for k, t in enumerate(taps):
        out += t * white[k : k + n]
    return out / gain


def animate(num_frames: int = NUM_FRAMES, fps: float = FPS, seed: int = SEED) -> list[PoseParams]:
    """Poses of all frames: smoothstep between :func:`keyframes` plus a small seeded tremor
    (about 1 deg of rotation, 1.5 mm of translation and 1.5 deg of finger flexion)."""
    keys = keyframes()
    times = np.array([k[0] for k in keys])
    vecs = np.stack([k[1].as_vector() for k in keys])
    rng = np.random.default_rng(seed)
    tremor = _smooth_noise(rng, num_frames, vecs.shape[1], width=4.0)
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
# Rendering: a z-buffered rasteriser of shaded tapered capsules and a palm slab, in numpy.
# --------------------------------------------------------------------------------------------------

SKIN = np.array([0.87, 0.66, 0.54])  # forearm (RGB albedo in [0, 1])
PALM_SKIN = np.array([0.89, 0.65, 0.55])  # palm and fingers, seen from the volar side
TIP_SKIN = np.array([0.89, 0.63, 0.54])  # finger pads, a little pinker
SLEEVE = np.array([0.16, 0.22, 0.36])
LIGHT = _unit(np.array([-0.35, -0.55, -1.0]))  # direction towards the light, camera frame
PALM_ID, FOREARM_ID, SLEEVE_ID, THENAR_ID, HYPOTHENAR_ID = 0, 1, 2, 3, 4
PALM_GROUP = (PALM_ID, THENAR_ID, HYPOTHENAR_ID)


#: Fixed capsules (hand-local ends mm, radii mm, depth/width ratio, item id, albedo).
BODY_CAPSULES: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float, float, float, int,
                           np.ndarray], ...] = (
    ((3.0, -10.0, -9.0), (3.0, -260.0, -9.0), 27.0, 32.0, 0.7, FOREARM_ID, SKIN),
    ((3.0, -95.0, -4.0), (3.0, -320.0, -6.0), 34.0, 37.0, 0.75, SLEEVE_ID, SLEEVE),
    ((15.0, 5.0, 6.0), (32.0, 48.0, 11.0), 15.0, 11.0, 0.75, THENAR_ID, PALM_SKIN),
    ((-24.0, 1.0, 3.0), (-34.0, 64.0, 4.0), 13.0, 10.5, 0.75, HYPOTHENAR_ID, PALM_SKIN),
)


def _bone_id(finger_index: int, bone: int) -> int:
    return 10 + 3 * finger_index + bone


#: Ulnar, proximal and radial palm edge in the hand-local palm plane (x, y) mm, from the pinky base
#: round the heel of the hand to the index base; the distal edge follows the fingers (:func:`palm_outline`).
PALM_EDGE: tuple[tuple[float, float], ...] = (
    (-44.0, 78.0), (-45.0, 58.0), (-42.0, 32.0), (-33.0, 5.0), (-27.0, -8.0), (-17.0, -16.0),
    (0.0, -19.0), (16.0, -16.0), (25.0, -7.0), (31.0, 7.0), (32.0, 35.0), (34.0, 62.0), (33.0, 80.0),
)  # fmt: skip
PALM_SURFACE_Z = 8.0  # mm volar of the joint plane, at the palm's rim
PALM_BULGE = 5.0  # mm more in the palm's middle (less in its hollow)
#: Where a finger leaves the palm (the palmar digital crease), as a fraction of the proximal phalanx.
DIGITAL_CREASE = 0.4
#: Palm lines (heart, head, life) as hand-local polylines on the palm surface.
PALM_LINES: tuple[tuple[tuple[float, float], ...], ...] = (
    ((-43.0, 62.0), (-28.0, 67.0), (-10.0, 71.0), (6.0, 74.0), (16.0, 79.0)),
    ((29.0, 58.0), (14.0, 55.0), (-4.0, 50.0), (-22.0, 44.0), (-32.0, 38.0)),
    ((30.0, 58.0), (20.0, 48.0), (14.0, 35.0), (12.0, 20.0), (14.0, 6.0)),
)


class _Canvas:
    """Supersampled z-buffer: depth (mm), item id, normal (camera frame) and albedo per pixel."""

    def __init__(self, intr: Intrinsics, ss: int) -> None:
        self.w, self.h = intr.width * ss, intr.height * ss
        self.f, self.fy = intr.fx * ss, intr.fy * ss
        self.cx, self.cy = intr.cx * ss, intr.cy * ss
        self.z = np.full((self.h, self.w), np.inf, np.float32)
        self.ids = np.full((self.h, self.w), -1, np.int16)
        self.normal = np.zeros((self.h, self.w, 3), np.float32)
        self.albedo = np.zeros((self.h, self.w, 3), np.float32)

    def project(self, p: np.ndarray) -> np.ndarray:
        """Camera mm ``(..., 3)`` -> supersampled continuous pixels ``(..., 2)``."""
        z = p[..., 2]
        return np.stack([self.f * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)

    def _write(self, ys: slice, xs: slice, inside: np.ndarray, z: np.ndarray, n: np.ndarray,
               albedo: np.ndarray, item: int) -> None:
        zb = self.z[ys, xs]
        win = inside & (z < zb)
        zb[win] = z[win]
        self.ids[ys, xs][win] = item
        self.normal[ys, xs][win] = n[win]
        self.albedo[ys, xs][win] = albedo if albedo.ndim == 1 else albedo[win]

    def capsule(self, a3: np.ndarray, b3: np.ndarray, ra: float, rb: float, item: int,
                albedo: np.ndarray, depth_scale: float = 1.0) -> None:
        """A tapered capsule from ``a3`` to ``b3`` (camera mm) with skin radii ``ra``/``rb`` mm;
        its cross-section is ``depth_scale`` times as deep (along the view ray) as wide."""
        a, b = self.project(a3), self.project(b3)
        pa, pb = self.f * ra / a3[2], self.f * rb / b3[2]
        x0 = max(math.floor(min(a[0] - pa, b[0] - pb)), 0)
        x1 = min(math.ceil(max(a[0] + pa, b[0] + pb)) + 1, self.w)
        y0 = max(math.floor(min(a[1] - pa, b[1] - pb)), 0)
        y1 = min(math.ceil(max(a[1] + pa, b[1] + pb)) + 1, self.h)
        if x0 >= x1 or y0 >= y1:
            return
        px = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
        py = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
        ab = b - a
        l2 = max(float(ab @ ab), 1e-9)
        t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / l2, 0.0, 1.0)
        dx, dy = px - (a[0] + t * ab[0]), py - (a[1] + t * ab[1])
        r_px = pa + t * (pb - pa)
        d2 = (dx * dx + dy * dy) / (r_px * r_px)
        inside = d2 < 1.0
        hr = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        r_mm = ra + t * (rb - ra)
        z = a3[2] + t * (b3[2] - a3[2]) - hr * r_mm * depth_scale
        n = np.stack([dx / r_px, dy / r_px, -hr / (depth_scale * depth_scale)], -1)
        n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-9
        self._write(slice(y0, y1), slice(x0, x1), inside, z, n, albedo, item)

    def palm(self, outline_local: np.ndarray, rot: np.ndarray, scale: float, wrist: np.ndarray,
             item: int, albedo: np.ndarray) -> None:
        """The palm: the polygon ``outline_local`` (hand-local mm, seen along the view rays) filled
        with the height field :func:`palm_height` over the plane ``z = PALM_SURFACE_Z`` of the hand
        whose local -> camera transform is ``X = scale * rot @ x + wrist``."""
        uv = self.project(_apply(scale * rot, outline_local) + wrist)
        x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 3, [self.w, self.h])
        if x0 >= x1 or y0 >= y1:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((uv - [x0 + 0.5, y0 + 0.5]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, shift=4)
        px = (np.arange(x0, x1, dtype=np.float64) + 0.5)[None, :]
        py = (np.arange(y0, y1, dtype=np.float64) + 0.5)[:, None]
        rx, ry = np.broadcast_arrays((px - self.cx) / self.f, (py - self.cy) / self.fy)
        ray = np.stack([rx, ry, np.ones_like(rx)], -1)  # view rays with z = 1
        volar = rot[:, 2]
        origin = scale * rot @ np.array([0.0, 0.0, PALM_SURFACE_Z]) + wrist
        denom = ray @ volar
        s = float(volar @ origin) / np.where(np.abs(denom) < 1e-6, 1e-6, denom)
        local = (ray * s[..., None] - wrist) @ rot / scale  # (x, y, PALM_SURFACE_Z) on the plane
        h, hx, hy = palm_height(local[..., 0], local[..., 1])
        z = (s + scale * h * volar[2]).astype(np.float32)
        n = volar - hx[..., None] * rot[:, 0] - hy[..., None] * rot[:, 1]
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        self._write(slice(y0, y1), slice(x0, x1), mask > 0, z, n.astype(np.float32), albedo, item)


def palm_height(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Height (mm, volar) of the palm skin above the plane ``z = PALM_SURFACE_Z`` at hand-local
    ``(x, y)`` mm, and its x and y derivatives: a rounded slab that falls off towards the ulnar,
    radial and proximal rims, with a shallow hollow in the middle."""
    u = (x + 5.5) / 40.0
    v = np.minimum((y - 50.0) / 75.0, 0.0)
    q = u**4 + v**4
    root = np.sqrt(np.clip(1.0 - q, 1e-3, 1.0))
    inside = q < 1.0 - 1e-3
    dq_dx, dq_dy = 4.0 * u**3 / 40.0, 4.0 * v**3 / 75.0
    h = PALM_BULGE * root
    hx = np.where(inside, -0.5 * PALM_BULGE * dq_dx / root, 0.0)
    hy = np.where(inside, -0.5 * PALM_BULGE * dq_dy / root, 0.0)
    g = 2.5 * np.exp(-((x + 4.0) ** 2 + (y - 48.0) ** 2) / (2.0 * 16.0**2))
    h = h - g
    hx = hx + g * (x + 4.0) / 16.0**2
    hy = hy + g * (y - 48.0) / 16.0**2
    return h, hx, hy


def palm_outline(joints_local: np.ndarray, frames: dict[str, list[np.ndarray]]) -> np.ndarray:
    """The palm polygon ``(N, 3)`` hand-local mm: :data:`PALM_EDGE` plus, across each finger, the
    palmar digital crease (``DIGITAL_CREASE`` along its proximal phalanx) and the webs between."""
    pts = [np.array([x, y, PALM_SURFACE_Z]) for x, y in PALM_EDGE]
    top = []
    for name in ("index", "middle", "ring", "pinky"):
        mcp, pip = FINGERS[name][0], FINGERS[name][1]
        centre = joints_local[mcp] + DIGITAL_CREASE * (joints_local[pip] - joints_local[mcp])
        across = frames[name][0][:, 0] * RADII[name][0]
        top.append((centre + across, centre - across))  # radial then ulnar side
    line = [top[0][0]]
    distal = np.array([0.0, 1.0, 0.0])
    for (_, ulnar), (radial, _) in itertools.pairwise(top):  # webs sag a few mm, U-shaped
        line += [ulnar, 0.7 * ulnar + 0.3 * radial - 3.0 * distal, 0.5 * (ulnar + radial) - 4.0 * distal,
                 0.3 * ulnar + 0.7 * radial - 3.0 * distal, radial]
    line.append(top[-1][1])
    for p in line:
        p[2] = min(p[2], PALM_SURFACE_Z)
    return np.stack(pts + line)


def _background(intr: Intrinsics, ss: int, seed: int) -> np.ndarray:
    """A softly textured wall: vertical gradient plus seeded low-frequency noise, RGB float
    ``(H*ss, W*ss, 3)`` in [0, 1]."""
    rng = np.random.default_rng(seed + 1)
    h, w = intr.height * ss, intr.width * ss
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = np.array([0.74, 0.77, 0.80], np.float32), np.array([0.56, 0.59, 0.63], np.float32)
    img = top + (bottom - top) * yy
    coarse, fine = (cv2.resize(rng.standard_normal(shape).astype(np.float32), (w, h),
                               interpolation=cv2.INTER_CUBIC) for shape in ((12, 16), (60, 80)))
    img = img + (0.025 * coarse + 0.008 * fine)[..., None]
    return np.broadcast_to(img, (h, w, 3)).astype(np.float32)


def render_frame(pose: PoseParams, intr: Intrinsics = INTRINSICS, background: np.ndarray | None = None,
                 ss: int = SUPERSAMPLE) -> np.ndarray:
    """Draw the hand in ``pose``.

    Args:
        pose: the hand pose (camera frame mm).
        intr: camera intrinsics (pinhole, no distortion).
        background: RGB float ``(H*ss, W*ss, 3)`` in [0, 1]; default a plain grey.
        ss: supersampling factor.

    Returns:
        RGB uint8 ``(H, W, 3)``.
    """
    cv = _Canvas(intr, ss)
    rot = hand_rotation(pose.rotation)
    lin = HAND_SCALE * rot  # hand-local model mm -> camera mm
    local, frames = forward_kinematics(pose)
    cam = _apply(lin, local) + pose.wrist

    def c(p: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        return _apply(lin, np.asarray(p, dtype=np.float64)) + pose.wrist

    # Forearm, sleeve, palm and its padding.
    sc = HAND_SCALE
    for a, b, ra, rb, depth_scale, item, albedo in BODY_CAPSULES:
        cv.capsule(c(a), c(b), sc * ra, sc * rb, item, albedo, depth_scale)
    cv.palm(palm_outline(local, frames), rot, sc, pose.wrist, PALM_ID, PALM_SKIN)

    # Fingers: a capsule per bone; the distal bone is two, swelling into the finger pad, and ends
    # TIP_INSET * r short of the tip joint.
    for f, (name, idx) in enumerate(FINGERS.items()):
        radii = [sc * r for r in RADII[name]]
        for k in range(2):
            cv.capsule(cam[idx[k]], cam[idx[k + 1]], radii[k], radii[k + 1], _bone_id(f, k), PALM_SKIN, 0.9)
        a, b = cam[idx[2]], cam[idx[3]]
        end = b - TIP_INSET * radii[3] * (b - a) / np.linalg.norm(b - a)
        pad = a + PAD_AT * (end - a)
        r_pad = PAD_SWELL * max(radii[2], radii[3])
        cv.capsule(a, pad, radii[2], r_pad, _bone_id(f, 2), TIP_SKIN, 0.9)
        cv.capsule(pad, end, r_pad, radii[3], _bone_id(f, 2), TIP_SKIN, 0.9)

    hand_full = np.isfinite(cv.z)
    bg = background if background is not None else np.full((cv.h, cv.w, 3), 0.6, np.float32)
    img = bg.copy()
    if hand_full.any():
        rows, cols = np.flatnonzero(hand_full.any(1)), np.flatnonzero(hand_full.any(0))
        box = (slice(max(rows[0] - 8, 0), rows[-1] + 9), slice(max(cols[0] - 8, 0), cols[-1] + 9))
        img[box] = _shade(cv, box, _crease_lines(lin, pose.wrist, local, frames), bg[box])
    img = cv2.resize(img, (intr.width, intr.height), interpolation=cv2.INTER_AREA)
    img = cv2.GaussianBlur(img, (0, 0), 0.45)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _crease_lines(lin: np.ndarray, wrist: np.ndarray, local: np.ndarray,
                  frames: dict[str, list[np.ndarray]]) -> list[tuple[np.ndarray, int]]:
    """Skin creases of the hand at ``X = lin @ x + wrist`` (hand-local ``x``) as (camera-frame
    polyline (N, 3) mm, owner group): the palm lines (group
    ``PALM_ID``) and each finger's flexion creases at its two distal joints (group ``100 + f``)."""
    lines = []
    for line in PALM_LINES:
        pts = np.array([(x, y, PALM_SURFACE_Z + 0.8 * PALM_BULGE) for x, y in line])
        lines.append((_apply(lin, pts) + wrist, PALM_ID))
    for f, (name, idx) in enumerate(FINGERS.items()):
        for k in (1, 2):  # fingers: PIP, DIP; thumb: MCP, IP
            r = RADII[name][k]
            across, volar = frames[name][k][:, 0], frames[name][k][:, 2]
            centre = local[idx[k]] + 0.8 * r * volar
            seg = np.stack([centre - 0.75 * r * across, centre + 0.75 * r * across])
            lines.append((_apply(lin, seg) + wrist, 100 + f))
    return lines


def _shade(cv: _Canvas, box: tuple[slice, slice], creases: list[tuple[np.ndarray, int]],
           bg: np.ndarray) -> np.ndarray:
    """Shade the hand pixels of ``cv`` inside ``box`` over ``bg`` (RGB float): Lambert + ambient +
    a little specular, contact shadows where a surface meets a nearer item, and skin creases drawn
    only on the items of their owner group."""
    z, ids = cv.z[box], cv.ids[box]
    normal, albedo = cv.normal[box], cv.albedo[box]
    hand = np.isfinite(z)
    ndl = np.clip(normal @ LIGHT.astype(np.float32), 0.0, 1.0)
    half = _unit(LIGHT + np.array([0.0, 0.0, -1.0])).astype(np.float32)
    spec = np.clip(normal @ half, 0.0, 1.0) ** 24
    color = albedo * (0.42 + 0.62 * ndl)[..., None] + 0.07 * spec[..., None]

    # Contact shadows where a surface meets a nearer item, except between consecutive bones of a
    # finger (one continuous skin).
    shade = np.ones(z.shape, np.float32)
    zf = np.where(hand, z, 1e6).astype(np.float32)
    bone = np.where(ids >= 10, ids - 10, -100)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):
        for step in (1, 2, 3):
            zs = np.roll(zf, (dy * step, dx * step), axis=(0, 1))
            ids_s = np.roll(ids, (dy * step, dx * step), axis=(0, 1))
            bone_s = np.where(ids_s >= 10, ids_s - 10, -100)
            joined = (bone >= 0) & (bone // 3 == bone_s // 3) & (np.abs(bone - bone_s) <= 1)
            occl = hand & (ids_s != ids) & ~joined & (zs < zf - 3.0)
            shade[occl] = np.minimum(shade[occl], 0.55 + 0.1 * step)

    crease = np.zeros(z.shape, np.float32)
    owner = np.full(z.shape, -2, np.int16)
    sh = 4  # fixed-point bits for sub-pixel polylines
    offset = np.array([box[1].start + 0.5, box[0].start + 0.5])
    for pts_cam, group in creases:
        layer = np.zeros(z.shape, np.float32)
        pts = np.round((cv.project(pts_cam) - offset) * (1 << sh)).astype(np.int32)
        cv2.polylines(layer, [pts], False, 1.0, SUPERSAMPLE, cv2.LINE_AA, sh)
        np.maximum(crease, layer, out=crease)
        owner[layer > 0] = group
    group_of = np.where(ids >= 10, 100 + (ids - 10) // 3, np.where(np.isin(ids, PALM_GROUP), PALM_ID, -1))
    crease = np.where(owner == group_of, crease, 0.0)
    color *= (shade * (1.0 - 0.28 * crease))[..., None]
    return np.where(hand[..., None], color, bg)

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
    poses = animate()
    gt = ground_truth(poses)
    bg = _background(INTRINSICS, SUPERSAMPLE, SEED)
    frames = [render_frame(p, INTRINSICS, bg) for p in poses]
    write_outputs(out, gt, frames)
    return gt, frames


def check(reference: Path) -> int:
    """Regenerate into a temp dir and compare with ``reference``.

    The ground truth (every array of demo_gt.npz) and intrinsics.json must match: bit for bit,
    except that float arrays may differ by up to :data:`GT_TOLERANCE` (mm / px). The finger
    kinematics run in torch (:mod:`models.hand_model`), whose float64 sin/cos and products may round
    the last bit differently on other CPUs. The MP4 bytes are only reported: they differ between
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
