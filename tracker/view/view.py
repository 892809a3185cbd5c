"""The VisPy view of the tracker: camera image with 2D skeletons | 3D skeletons, plus a recorder.

One :class:`vispy.scene.SceneCanvas` holds two view boxes side by side:

* **left, "image" panel**: ``frames[0].image`` drawn by an ``Image`` visual under a
  ``PanZoomCamera`` with y pointing down, so scene coordinates *are* image pixel coordinates of
  the project convention (x right, y down, origin at the top-left pixel's top-left corner). Each
  hand of view 0 is drawn on top: bones along :data:`tracker.core.joints.EDGES` coloured per finger,
  joints coloured by confidence (red 0 -> yellow 0.5 -> green 1) and a label
  ``"id 3 right 0.97"`` (track id, handedness, hand presence score) under the wrist.
* **right, "3D" panel**: a ``TurntableCamera`` (drag to orbit, wheel to zoom, shift-drag to pan)
  over the hands' ``joints_3d``, a ground grid, the camera's frustum and its axes.

**Display frame.** 3D points are millimetres in the OpenCV camera frame of view 0 (x right,
y down, z forward). The 3D panel shows them in a y-up *display frame*::

    display = (x, -y, -z)        # camera_to_display()

i.e. the OpenGL camera convention: x right, y up, the camera looking down -z. This is a rotation
of 180 deg about x, so handedness is kept (a left hand still looks like a left hand; the often seen
``(x, -y, z)`` is a reflection and would mirror it). The turntable orbits about display +y.

**Scene furniture** (all fixed, in camera-frame millimetres, see :class:`ViewConfig`): a ground
grid in the plane ``y = +grid_below_camera_mm`` (that far *below* the camera; fixed so it never
jumps while the hands move), ``grid_spacing_mm`` apart, spanning ``grid_x_mm`` x ``grid_z_mm``;
the camera at the origin drawn as a pyramid whose opening is the field of view of
``frames[0].camera.intrinsics`` (with a small triangle on the image's top edge); the camera axes
x (red), y (green, pointing down), z (blue, pointing forward), ``axis_length_mm`` long.

Each 3D hand also gets a dim drop line from its wrist down to the grid, with a dot where it meets
the grid, so its height and depth can be read from any angle.

The 3D camera starts looking at a point ``default_target_mm`` in front of the camera, aims once at
the hands when 3D hands first appear (their centroid, pulled 20 % towards the camera so the camera
pyramid usually stays in view), and then stays where the user puts it
(:meth:`TrackerView.reset_camera`, or the ``r`` key in a window, re-aims at the next update).

**Rig mode.** A frame set of several views (a multi-camera rig, :mod:`tracker.fusion.rig`) is
shown differently: the image panel holds a grid of every view's image (:func:`rig_mosaic`) with
each fused hand's ``joints_world`` reprojected into every view (``cv2.projectPoints`` with that
camera's distortion) and each joint coloured by its quality: ``uncertainty_mm`` mapped from green
(0 mm) to red (``ViewConfig.uncertainty_red_mm`` and more, or not triangulated), or the joint's
confidence when a hand has no uncertainty, with a legend under the grid. The 3D panel shows the
world joints and every camera's frustum (placed by its extrinsics) in the frame of the rig's first
camera (the display frame above, so the first camera sits at the origin like the single camera does);
the world frame (the calibration's) is its own small axis triad.

**Threads.** Everything here belongs to one thread, the GUI thread (the one that built the view):
:meth:`TrackerView.update` checks it. The pipeline hands results over through a non-blocking
``poll`` (see :func:`run_window`); nothing in this module sleeps or waits on the pipeline.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import vispy
from vispy import app as vispy_app
from vispy import scene
from vispy.scene import visuals

from tracker.core.errors import ViewError
from tracker.core.joints import EDGES, FINGERS, WRIST
from tracker.runtime.stats import LoopStats
from tracker.fusion.triangulate import project_points
from tracker.core.structures import Camera, FrameResult, FrameSet, HandPose, Intrinsics

__all__ = [
    "ViewUnavailableError",
    "ViewConfig",
    "TrackerView",
    "VideoRecorder",
    "use_backend",
    "run_window",
    "camera_to_display",
    "confidence_colors",
    "joint_quality",
    "project_world",
    "rig_mosaic",
    "RigMosaic",
    "FINGER_COLORS",
    "EDGE_COLORS",
]

logger = logging.getLogger(__name__)

RGBA = tuple[float, float, float, float]

#: Bone colour of each finger (RGBA in [0, 1]); a palm bone (wrist -> finger root) takes its finger's.
FINGER_COLORS: Final[dict[str, RGBA]] = {
    "thumb": (1.00, 0.55, 0.10, 1.0),  # orange
    "index": (1.00, 0.25, 0.62, 1.0),  # pink
    "middle": (0.30, 0.65, 1.00, 1.0),  # sky blue
    "ring": (0.66, 0.42, 1.00, 1.0),  # violet
    "pinky": (0.18, 0.90, 0.84, 1.0),  # teal
}

_FINGER_OF_JOINT: Final[dict[int, str]] = {j: name for name, chain in FINGERS.items() for j in chain}

#: ``(len(EDGES), 4)`` RGBA colour of each bone of :data:`tracker.core.joints.EDGES` (by the child's finger).
EDGE_COLORS: Final[np.ndarray] = np.array([FINGER_COLORS[_FINGER_OF_JOINT[child]] for _, child in EDGES])

#: Label colours, cycled by ``track_id``.
_TRACK_COLORS: Final[tuple[RGBA, ...]] = (
    (1.00, 1.00, 1.00, 1.0),
    (1.00, 0.86, 0.35, 1.0),
    (0.55, 0.95, 1.00, 1.0),
    (1.00, 0.74, 0.58, 1.0),
    (0.70, 1.00, 0.55, 1.0),
)

_BG_CANVAS: Final = (0.07, 0.075, 0.085, 1.0)
_BG_IMAGE: Final = (0.03, 0.03, 0.035, 1.0)
_BG_3D: Final = (0.10, 0.11, 0.13, 1.0)
_TEXT: Final = (0.90, 0.92, 0.95, 1.0)
_TEXT_DIM: Final = (0.62, 0.66, 0.72, 1.0)
_WARN: Final = (1.00, 0.72, 0.25, 1.0)
_GRID_MINOR: Final = (0.30, 0.33, 0.38, 1.0)
_GRID_MAJOR: Final = (0.45, 0.49, 0.55, 1.0)
_CONF_RED: Final = np.array((0.92, 0.20, 0.18), dtype=np.float32)
_CONF_YELLOW: Final = np.array((0.98, 0.84, 0.20), dtype=np.float32)
_CONF_GREEN: Final = np.array((0.25, 0.88, 0.35), dtype=np.float32)
_DROP: Final = (0.42, 0.45, 0.50, 1.0)
_FRUSTUM: Final = (0.85, 0.87, 0.90, 1.0)
_AXIS_COLORS: Final = ((0.95, 0.25, 0.25, 1.0), (0.30, 0.85, 0.30, 1.0), (0.30, 0.45, 1.00, 1.0))

#: Vertex index pairs of the bones, flattened: ``points[_EDGE_INDEX]`` gives segment end points.
_EDGE_INDEX: Final[np.ndarray] = np.asarray(EDGES, dtype=np.intp).reshape(-1)
_EDGE_VERTEX_COLORS: Final[np.ndarray] = np.repeat(EDGE_COLORS, 2, axis=0).astype(np.float32)

_OVERLAY_TOP_PX: Final = 30  # status text block, from the 3D panel's top
_LINE_PX: Final = 16  # its line height at font size 9

_VIDEO_CODECS: Final[dict[str, str]] = {".mp4": "mp4v", ".avi": "MJPG"}

_backend: str | None = None


class ViewUnavailableError(ViewError):
    """The VisPy backend cannot be initialised here (no display, no EGL, no Qt)."""


# --------------------------------------------------------------------------------------- helpers


def camera_to_display(points_mm: np.ndarray) -> np.ndarray:
    """OpenCV camera-frame points ``(..., 3)`` mm -> display frame ``(x, -y, -z)``, float32.

    The display frame is y-up, x right, the camera looking down -z (a rotation, not a mirror).
    """
    p = np.asarray(points_mm, dtype=np.float32)
    if p.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {p.shape}")
    return p * np.array([1.0, -1.0, -1.0], dtype=np.float32)


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """Per-joint RGBA ``(N, 4)`` float32: red at 0, yellow at 0.5, green at 1 (clipped to [0, 1])."""
    c = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float32), nan=0.0), 0.0, 1.0)
    red, yellow, green = _CONF_RED, _CONF_YELLOW, _CONF_GREEN
    lo = np.clip(2.0 * c, 0.0, 1.0)[:, None]
    hi = np.clip(2.0 * c - 1.0, 0.0, 1.0)[:, None]
    rgb = np.where(c[:, None] < 0.5, red + (yellow - red) * lo, yellow + (green - yellow) * hi)
    return np.concatenate([rgb, np.ones((len(c), 1), np.float32)], axis=1)


def _hand_label(hand: HandPose) -> str:
    """``"id 3 right 0.97"``: track id, handedness, hand presence score."""
    return f"id {hand.track_id} {hand.handedness} {hand.score:.2f}"


def _bone_segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment end points ``(2 * n_bones, D)`` and colours for the bones whose ends are finite."""
    seg = points[_EDGE_INDEX]
    ok = np.isfinite(seg).all(axis=1).reshape(-1, 2).all(axis=1)
    keep = np.repeat(ok, 2)
    return np.ascontiguousarray(seg[keep], dtype=np.float32), _EDGE_VERTEX_COLORS[keep]


def _frustum_segments(intr: Intrinsics, depth_mm: float) -> np.ndarray:
    """Camera pyramid as segment end points ``(M, 3)`` in the camera frame (mm).

    Four rays from the optical centre to the image corners back-projected to ``depth_mm``, the
    rectangle joining them, and a small triangle on the image's top edge (v = 0) marking "up".
    """
    w, h = float(intr.width), float(intr.height)

    def lift(u: float, v: float) -> np.ndarray:
        return np.array([(u - intr.cx) / intr.fx * depth_mm, (v - intr.cy) / intr.fy * depth_mm, depth_mm])

    corners = [lift(0, 0), lift(w, 0), lift(w, h), lift(0, h)]
    origin = np.zeros(3)
    seg: list[np.ndarray] = []
    for i, c in enumerate(corners):
        seg += [origin, c, c, corners[(i + 1) % 4]]
    tri = [lift(0.35 * w, 0), lift(0.5 * w, -0.22 * h), lift(0.65 * w, 0)]
    seg += [tri[0], tri[1], tri[1], tri[2]]
    return np.asarray(seg)


def _grid_segments(
    spacing: float, y: float, x_range: tuple[float, float], z_range: tuple[float, float], major_every: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ground grid in the camera-frame plane ``Y = y`` (mm) as segments ``(M, 3)`` and colours ``(M, 4)``."""
    xs = np.arange(x_range[0], x_range[1] + 0.5 * spacing, spacing)
    zs = np.arange(z_range[0], z_range[1] + 0.5 * spacing, spacing)
    seg: list[tuple[float, float, float]] = []
    col: list[RGBA] = []
    for x in xs:
        seg += [(x, y, z_range[0]), (x, y, z_range[1])]
        col += [_GRID_MAJOR if round(x / spacing) % major_every == 0 else _GRID_MINOR] * 2
    for z in zs:
        seg += [(x_range[0], y, z), (x_range[1], y, z)]
        col += [_GRID_MAJOR if round(z / spacing) % major_every == 0 else _GRID_MINOR] * 2
    return np.asarray(seg, dtype=np.float64), np.asarray(col, dtype=np.float32)


def _to_view0(points_mm: np.ndarray, view: int, frameset: FrameSet) -> np.ndarray | None:
    """Points in the camera frame of ``view`` -> camera frame of view 0 via the extrinsics (mm)."""
    if view == 0:
        return points_mm
    if not 0 <= view < len(frameset.frames):
        return None
    src, dst = frameset.frames[view].camera.extrinsics, frameset.frames[0].camera.extrinsics
    world = (points_mm - src.t) @ src.R  # R^T (X - t), row vectors
    return world @ dst.R.T + dst.t


def _format_overlay(result: FrameResult, stats: LoopStats | None) -> str:
    """Status text: FPS, drops, frame index / time, per-stage p50 latency (or this frame's timings)."""
    head = f"frame {result.index}   t {result.timestamp:.3f} s   hands {len(result.hands)}"
    if stats is not None:
        head = f"{stats.fps:.1f} FPS   dropped {stats.dropped}   " + head
        timings = [(name, s.p50_ms) for name, s in stats.stages.items()]
        title = "latency p50"
    else:
        timings = list(result.timings_ms.items())
        if result.latency_ms:
            timings.append(("latency", result.latency_ms))
        title = "this frame"
    lines = [head]
    if timings:
        cells = [f"{name} {ms:.1f}" for name, ms in timings]
        rows = [cells[i : i + 4] for i in range(0, len(cells), 4)]
        lines.append(f"{title} (ms):  " + "   ".join(rows[0]))
        lines += ["    " + "   ".join(r) for r in rows[1:]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- rig mode

#: Uncertainty (mm) drawn fully red in rig mode (and anything larger, or a joint not triangulated).
UNCERTAINTY_RED_MM: Final = 20.0
_LEGEND_PX: Final = 30


def project_world(points_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(N, 3)`` mm -> ``(N, 2)`` pixels of ``camera``'s image (``cv2.projectPoints``
    with its extrinsics and distortion), and ``(N,)`` bool: finite and in front of the camera."""
    X = np.asarray(points_world, np.float64).reshape(-1, 3)
    R = np.asarray(camera.extrinsics.R, np.float64)
    t = np.asarray(camera.extrinsics.t, np.float64).reshape(3)
    ok = np.isfinite(X).all(axis=1)
    ok[ok] = (X[ok] @ R[2] + t[2]) > 1e-6
    uv = np.full((len(X), 2), np.nan)
    if ok.any():
        uv[ok] = project_points(X[ok], camera)
    return uv, ok


def joint_quality(hand: HandPose, uncertainty_red_mm: float = UNCERTAINTY_RED_MM) -> np.ndarray:
    """``(21,)`` in [0, 1] for the colour scale of :func:`confidence_colors` (1 green, 0 red).

    ``1 - uncertainty_mm / uncertainty_red_mm`` (clipped; not triangulated = inf = 0) when the hand
    has an uncertainty, else its per-joint confidence.
    """
    if hand.uncertainty_mm is None:
        return np.clip(np.nan_to_num(np.asarray(hand.confidence, np.float64)), 0.0, 1.0)
    unc = np.nan_to_num(np.asarray(hand.uncertainty_mm, np.float64), nan=np.inf)
    return np.clip(1.0 - unc / uncertainty_red_mm, 0.0, 1.0)


def _rgb255(rgba: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(255 * float(c))) for c in rgba[:3])  # type: ignore[return-value]


@dataclass(frozen=True)
class RigMosaic:
    """The rig's views tiled into one image (see :func:`rig_mosaic`).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        tiles: per view ``(x0, y0, scale)``: pixel ``(u, v)`` of that view lands at mosaic pixel
            ``(x0 + u * scale, y0 + v * scale)`` (same pixel-corner convention as the images).
        legend: True when a colour legend is drawn in the bottom ``_LEGEND_PX`` rows.
    """

    image: np.ndarray
    tiles: tuple[tuple[int, int, float], ...]
    legend: bool

    def to_mosaic(self, view: int, uv: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` of view ``view`` -> mosaic pixels ``(N, 2)``."""
        x0, y0, scale = self.tiles[view]
        return np.asarray(uv, np.float64) * scale + np.array([x0, y0])


def rig_mosaic(frameset: FrameSet, hands: Sequence[HandPose], tile_width: int = 640,
               uncertainty_red_mm: float = UNCERTAINTY_RED_MM) -> RigMosaic:  # fmt: skip
    """Every view's image in a grid (``ceil(sqrt(N))`` columns, rig order), each hand with
    ``joints_world`` reprojected into every view and drawn on it: bones in their finger's colour,
    joints coloured by :func:`joint_quality` (green good -> red), the camera's name in the tile's
    corner, and a legend of the colour scale along the bottom.

    Args:
        frameset: the views (images RGB uint8, cameras with extrinsics world -> camera, mm).
        hands: hands to draw; only those with ``joints_world`` are.
        tile_width: width of each tile in mosaic pixels (images are scaled to it).
        uncertainty_red_mm: uncertainty drawn fully red.
    """
    frames = frameset.frames
    n = len(frames)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    scales = [tile_width / f.image.shape[1] for f in frames]
    tile_h = max(int(round(f.image.shape[0] * sc)) for f, sc in zip(frames, scales))
    world_hands = [h for h in hands if h.joints_world is not None]
    legend = True
    out = np.full((rows * tile_h + (_LEGEND_PX if legend else 0), cols * tile_width, 3), 16, np.uint8)
    tiles = []
    for v, (frame, sc) in enumerate(zip(frames, scales)):
        x0, y0 = (v % cols) * tile_width, (v // cols) * tile_h
        img = frame.image[..., :3]
        if sc != 1.0:
            img = cv2.resize(img, (tile_width, int(round(img.shape[0] * sc))), interpolation=cv2.INTER_AREA)
        out[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]] = img
        tiles.append((x0, y0, sc))
    mosaic = RigMosaic(out, tuple(tiles), legend)
    shift = 4  # cv2 sub-pixel drawing: coordinates in 1/16 px
    for v, frame in enumerate(frames):
        x0, y0, _ = tiles[v]
        tile = out[y0 : y0 + tile_h, x0 : x0 + tile_width]  # a view: drawing is clipped to the tile
        for hand in world_hands:
            uv, ok = project_world(hand.joints_world, frame.camera)
            px = mosaic.to_mosaic(v, uv) - np.array([x0, y0])
            fixed = np.round(np.nan_to_num(px) * (1 << shift) - 0.5 * (1 << shift)).astype(np.int64)
            for (a, b), color in zip(EDGES, EDGE_COLORS):
                if ok[a] and ok[b]:
                    cv2.line(tile, tuple(fixed[a]), tuple(fixed[b]), _rgb255(color), 2, cv2.LINE_AA, shift)
            colors = confidence_colors(joint_quality(hand, uncertainty_red_mm))
            for j in np.flatnonzero(ok):
                cv2.circle(tile, tuple(fixed[j]), 6 << shift, (10, 10, 10), -1, cv2.LINE_AA, shift)
                cv2.circle(tile, tuple(fixed[j]), 4 << shift, _rgb255(colors[j]), -1, cv2.LINE_AA, shift)
        cv2.putText(tile, frame.camera.name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (240, 240, 240), 1, cv2.LINE_AA)
    if legend:
        _draw_legend(out, uncertainty_red_mm, any(h.uncertainty_mm is not None for h in world_hands))
    return mosaic


def _draw_legend(out: np.ndarray, red_mm: float, uncertainty: bool) -> None:
    """Colour scale along the bottom ``_LEGEND_PX`` rows of ``out``."""
    y0 = out.shape[0] - _LEGEND_PX
    x0, width = 10, 200
    ramp = confidence_colors(np.linspace(1.0, 0.0, width))[:, :3]
    out[y0 + 8 : y0 + 22, x0 : x0 + width] = np.round(255 * ramp).astype(np.uint8)[None]
    left, right = (("uncertainty 0 mm", f"{red_mm:g}+ mm / not triangulated") if uncertainty
                   else ("confidence 1", "0"))  # fmt: skip
    font, white = cv2.FONT_HERSHEY_SIMPLEX, (230, 230, 230)
    cv2.putText(out, left, (x0 + width + 10, y0 + 20), font, 0.45, white, 1, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize(left, font, 0.45, 1)
    cv2.putText(out, "->  " + right, (x0 + width + 20 + tw, y0 + 20), font, 0.45, white, 1, cv2.LINE_AA)


def _camera_pose_in(camera: Camera, reference: Camera) -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` taking ``camera``-frame points to ``reference``-frame points (mm)."""
    Rc, tc = np.asarray(camera.extrinsics.R, np.float64), np.asarray(camera.extrinsics.t, np.float64).reshape(3)
    Rr, tr = np.asarray(reference.extrinsics.R, np.float64), np.asarray(reference.extrinsics.t, np.float64).reshape(3)
    R = Rr @ Rc.T
    return R, tr - R @ tc


def _rig_frustum_segments(cameras: Sequence[Camera], depth_mm: float) -> np.ndarray:
    """Every camera's pyramid (:func:`_frustum_segments`) in the first camera's frame, ``(M, 3)`` mm."""
    segs = []
    for cam in cameras:
        R, t = _camera_pose_in(cam, cameras[0])
        segs.append(_frustum_segments(cam.intrinsics, depth_mm) @ R.T + t)
    return np.concatenate(segs)


# --------------------------------------------------------------------------------------- backend


def _display_missing() -> bool:
    """True on Linux/BSD when no X11/Wayland display is reachable and Qt has no non-GUI platform set."""
    if sys.platform.startswith(("win", "darwin")):
        return False
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "eglfs", "linuxfb", "vnc"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _probe_qt() -> None:
    """Start a QApplication in a child process first: Qt *aborts* a process whose platform plugin
    cannot load (no X server, missing xcb libraries), which no ``except`` could catch here."""
    qt_widgets = sys.modules.get("PySide6.QtWidgets")
    if qt_widgets is not None and qt_widgets.QApplication.instance() is not None:
        return
    code = "from PySide6.QtWidgets import QApplication; QApplication([])"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ViewUnavailableError(f"could not test whether Qt can open a window: {exc}") from exc
    if proc.returncode != 0:
        said = " | ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())[-600:]
        raise ViewUnavailableError(
            f"Qt cannot open a window here ({said or f'exit status {proc.returncode}'}); install what it "
            "names (e.g. apt install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4) or run headless"
        )


def use_backend(headless: bool) -> str:
    """Select the VisPy backend once per process, before any canvas is made.

    Args:
        headless: True -> offscreen EGL (``EGL_PLATFORM`` defaults to ``surfaceless``, so no X
            server is needed); False -> a Qt window through PySide6.

    Returns:
        VisPy's name of the backend now in use (``"egl"`` or ``"PySide6"``).

    Raises:
        ViewUnavailableError: the backend cannot start here (no display for a window, no EGL /
            GPU driver for headless, PySide6 or Qt's system libraries missing), or another backend
            was already chosen in this process. The message says what to do. For a window, Qt is
            first started in a child process (~0.3 s), because Qt aborts a process it cannot start in.
    """
    global _backend
    wanted = "egl" if headless else "pyside6"
    if _backend is not None:
        if _backend.lower() == wanted:
            return _backend
        raise ViewUnavailableError(
            f"the VisPy backend is already {_backend!r} in this process and cannot switch to {wanted!r}; "
            "choose headless or windowed once, before the first view is made"
        )
    if headless:
        os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    elif _display_missing():
        raise ViewUnavailableError(
            "no display found (DISPLAY / WAYLAND_DISPLAY unset): run headless (render to a file) "
            "or start from a desktop session"
        )
    else:
        _probe_qt()
    try:
        vispy.use(app=wanted)
        app = vispy_app.use_app()
        app.create()
    except Exception as exc:  # vispy raises plain RuntimeError / ImportError with the backend's reason
        hint = (
            "headless rendering needs EGL: an NVIDIA driver or Mesa's libEGL (apt install libegl1 libgl1-mesa-dri)"
            if headless
            else "windowed mode needs PySide6 (pip install PySide6-Essentials) and a display"
        )
        raise ViewUnavailableError(f"cannot initialise the VisPy {wanted!r} backend: {exc}. {hint}") from exc
    _backend = str(app.backend_name)
    logger.info("VisPy backend: %s", _backend)
    return _backend


def _app_selected() -> bool:
    """True once VisPy's application backend is chosen (by :func:`use_backend` or by VisPy itself)."""
    from vispy.app import _default_app  # VisPy keeps the chosen app here; there is no public query

    return _default_app.default_app is not None


# ------------------------------------------------------------------------------------------ view


@dataclass(frozen=True)
class ViewConfig:
    """Look of :class:`TrackerView`. Lengths in mm (camera frame) or screen pixels as named.

    Attributes:
        max_hands: visuals kept ready for this many hands; further hands are not drawn.
        grid_spacing_mm: ground grid cell size; every ``grid_major_every``-th line is brighter.
        grid_below_camera_mm: the grid lies in the plane this far below the camera (camera-frame Y).
        grid_x_mm, grid_z_mm: grid extent left-right and in depth (camera-frame X and Z).
        frustum_depth_mm: depth of the drawn camera pyramid.
        axis_length_mm: length of the drawn camera axes.
        default_target_mm: the 3D camera initially looks at the point this far in front of the camera.
        bone_width_px: skeleton line width (2D and 3D).
        joint_size_px, joint_size_3d_px: joint marker diameter in the image and in the 3D panel.
        split: fraction of the canvas width given to the image panel.
        rig_frustum_depth_mm: depth of each camera's pyramid in rig mode.
        rig_tile_width: width of one view's tile in the rig mode's image grid, pixels.
        uncertainty_red_mm: rig mode's colour scale: joints this uncertain (or more) are red.
    """

    max_hands: int = 4
    grid_spacing_mm: float = 50.0
    grid_major_every: int = 5
    grid_below_camera_mm: float = 250.0
    grid_x_mm: tuple[float, float] = (-500.0, 500.0)
    grid_z_mm: tuple[float, float] = (0.0, 1000.0)
    frustum_depth_mm: float = 70.0
    axis_length_mm: float = 100.0
    default_target_mm: float = 450.0
    bone_width_px: float = 3.0
    joint_size_px: float = 8.0
    joint_size_3d_px: float = 6.0
    split: float = 0.5
    rig_frustum_depth_mm: float = 120.0
    rig_tile_width: int = 640
    uncertainty_red_mm: float = UNCERTAINTY_RED_MM


class _HandVisuals:
    """The pooled visuals of one hand slot: 2D bones, joints and label; 3D bones and joints."""

    def __init__(self, image_scene: scene.Node, scene3d: scene.Node, config: ViewConfig) -> None:
        self._cfg = config
        self.bones2d = visuals.Line(
            width=config.bone_width_px, connect="segments", method="gl", antialias=True, parent=image_scene
        )
        self.joints2d = visuals.Markers(parent=image_scene)
        self.label = visuals.Text(
            "", color=_TEXT, font_size=9, bold=True, anchor_x="center", anchor_y="bottom", parent=image_scene
        )
        self.bones3d = visuals.Line(
            width=config.bone_width_px, connect="segments", method="gl", antialias=True, parent=scene3d
        )
        self.joints3d = visuals.Markers(parent=scene3d)
        # 2D: image < bones < joints < label, no depth test. 3D: joints after all lines and without
        # depth test, so a joint is never half buried in its own bones.
        self.bones2d.order, self.joints2d.order, self.label.order = 1, 2, 3
        self.joints3d.order = 5
        for visual in (self.bones2d, self.joints2d, self.joints3d):
            visual.set_gl_state("translucent", depth_test=False)
        self.hide()

    def hide(self) -> None:
        """Hide every visual of the slot (an absent hand)."""
        self.show_2d(None, None, None, None)
        self.show_3d(None, None)

    def show_2d(
        self, joints_2d: np.ndarray | None, colors: np.ndarray | None, label: str | None, label_color: RGBA | None
    ) -> None:
        """Draw the 2D skeleton (image pixels); None hides it."""
        if joints_2d is None or colors is None:
            self.bones2d.visible = self.joints2d.visible = self.label.visible = False
            return
        self._set_skeleton(self.bones2d, self.joints2d, joints_2d, colors, self._cfg.joint_size_px)
        wrist = joints_2d[WRIST]
        self.label.visible = label is not None and bool(np.isfinite(wrist).all())
        if self.label.visible:
            self.label.text = label
            self.label.color = label_color
            self.label.pos = (float(wrist[0]), float(wrist[1]) + 0.5 * self._cfg.joint_size_px)

    def show_3d(self, joints_display: np.ndarray | None, colors: np.ndarray | None) -> None:
        """Draw the 3D skeleton (display-frame mm) with a drop line from the wrist to the grid; None hides it."""
        if joints_display is None or colors is None:
            self.bones3d.visible = self.joints3d.visible = False
            return
        wrist = joints_display[WRIST]
        floor = np.array([wrist[0], -self._cfg.grid_below_camera_mm, wrist[2]], dtype=np.float32)
        self._set_skeleton(
            self.bones3d, self.joints3d, joints_display, colors, self._cfg.joint_size_3d_px, drop=(wrist, floor)
        )

    def _set_skeleton(
        self,
        bones: visuals.Line,
        joints: visuals.Markers,
        points: np.ndarray,
        colors: np.ndarray,
        size_px: float,
        drop: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Bones and joint markers of one hand; ``drop`` adds a dim segment and a floor dot (3D only)."""
        seg, seg_colors = _bone_segments(points)
        ok = np.isfinite(points).all(axis=1)
        pos, face = points[ok], colors[ok]
        if drop is not None and np.isfinite(drop[0]).all():
            seg = np.concatenate([seg, np.asarray(drop, dtype=np.float32)])
            seg_colors = np.concatenate([seg_colors, np.asarray([_DROP, _DROP], dtype=np.float32)])
            pos = np.concatenate([pos, drop[1][None]])
            face = np.concatenate([face, np.asarray([_DROP], dtype=np.float32)])
        bones.visible = len(seg) > 0
        if bones.visible:
            bones.set_data(pos=seg, color=seg_colors)
        joints.visible = len(pos) > 0
        if joints.visible:
            joints.set_data(
                pos=np.ascontiguousarray(pos, dtype=np.float32),
                face_color=face,
                edge_color=(0.05, 0.05, 0.05, 1.0),
                edge_width=1.0,
                size=size_px,
            )


class TrackerView:
    """Camera image with 2D skeletons (left) and a 3D scene of the hands (right) in one canvas.

    Args:
        size: canvas ``(width, height)`` in (logical) pixels.
        show: open a window (needs ``use_backend(headless=False)``); False renders offscreen.
        title: window title.
        config: look of the view; defaults to :class:`ViewConfig`.

    If no VisPy backend has been chosen yet, the constructor calls ``use_backend(headless=not show)``.
    All methods must be called from the thread that built the view (the GUI thread).

    Attributes:
        canvas: the :class:`vispy.scene.SceneCanvas`.
    """

    def __init__(
        self,
        size: tuple[int, int] = (1280, 520),
        show: bool = False,
        title: str = "handtrack",
        *,
        config: ViewConfig | None = None,
    ) -> None:
        if not _app_selected():
            use_backend(headless=not show)

        self._cfg = config or ViewConfig()
        if self._cfg.max_hands < 1 or not 0.1 <= self._cfg.split <= 0.9:
            raise ValueError(f"need max_hands >= 1 and 0.1 <= split <= 0.9, got {self._cfg}")
        self._thread = threading.get_ident()
        self._closed = False
        self._framed = False
        self._image_size: tuple[int, int] | None = None
        self._intrinsics: Intrinsics | None = None
        self._rig_cameras: tuple[Camera, ...] | None = None
        self._warned_hands = False
        self._laid_out_size: tuple[int, int] = (0, 0)

        self.canvas = scene.SceneCanvas(
            size=size, show=False, title=title, bgcolor=_BG_CANVAS, keys="interactive" if show else None
        )
        self._build_image_panel()
        self._build_3d_panel()
        self._slots = [
            _HandVisuals(self._view2d.scene, self._view3d.scene, self._cfg) for _ in range(self._cfg.max_hands)
        ]
        self._layout()
        self.canvas.events.resize.connect(self._layout)
        self.canvas.events.key_press.connect(self._on_key)
        if show:
            self.canvas.show()

    # ----------------------------------------------------------------------- construction

    def _build_image_panel(self) -> None:
        """Left panel: the image under a y-down pan/zoom camera, so scene units are image pixels."""
        self._view2d = scene.widgets.ViewBox(parent=self.canvas.scene, bgcolor=_BG_IMAGE, border_color=None)
        self._view2d.camera = scene.PanZoomCamera(aspect=1.0, flip=(False, True, False))
        self._image = visuals.Image(
            np.zeros((2, 2, 3), np.uint8), clim=(0, 255), interpolation="linear", parent=self._view2d.scene
        )
        self._image.order = 0
        self._image.set_gl_state("translucent", depth_test=False)
        self._title2d = self._panel_text(self._view2d, "camera 0", (10, 8), font_size=9, color=_TEXT_DIM)
        self._set_image_range(2, 2)

    def _build_3d_panel(self) -> None:
        """Right panel: turntable camera, ground grid, camera pyramid, axes, status texts."""
        cfg = self._cfg
        self._view3d = scene.widgets.ViewBox(parent=self.canvas.scene, bgcolor=_BG_3D, border_color=None)
        self._view3d.camera = scene.TurntableCamera(up="+y", fov=45.0, elevation=25.0, azimuth=110.0)
        self._aim_3d_camera(camera_to_display(np.array([0.0, 0.0, cfg.default_target_mm])), 2.0 * cfg.default_target_mm)
        seg, col = _grid_segments(
            cfg.grid_spacing_mm, cfg.grid_below_camera_mm, cfg.grid_x_mm, cfg.grid_z_mm, cfg.grid_major_every
        )
        visuals.Line(camera_to_display(seg), color=col, connect="segments", method="gl", parent=self._view3d.scene)
        self._frustum = visuals.Line(
            width=1.5, color=_FRUSTUM, connect="segments", method="gl", antialias=True, parent=self._view3d.scene
        )
        self._camera_labels = visuals.Text(
            "", color=_TEXT_DIM, font_size=8, anchor_x="left", anchor_y="bottom", parent=self._view3d.scene
        )
        self._camera_labels.visible = False
        self._build_axes()
        self._build_grid_labels()
        title = f"3D  (camera frame, mm; grid {cfg.grid_spacing_mm:g} mm)"
        self._title3d = self._panel_text(self._view3d, title, (10, 8), font_size=9, color=_TEXT_DIM)
        self._overlay = self._panel_text(self._view3d, "", (10, _OVERLAY_TOP_PX), font_size=9, color=_TEXT)
        warning_pos = (10, _OVERLAY_TOP_PX)
        self._warning = self._panel_text(self._view3d, "approximate intrinsics", warning_pos, font_size=9, color=_WARN)
        self._warning.visible = False

    def _build_axes(self) -> None:
        """The camera's OpenCV axes at its centre, x red, y green (down), z blue (forward)."""
        length = self._cfg.axis_length_mm
        tips = np.eye(3) * length
        seg = camera_to_display(np.concatenate([[np.zeros(3), tip] for tip in tips]))
        colors = np.repeat(np.asarray(_AXIS_COLORS, np.float32), 2, axis=0)
        visuals.Line(seg, color=colors, width=2.5, connect="segments", method="gl", parent=self._view3d.scene)
        visuals.Text(
            ["x", "y", "z"], pos=camera_to_display(tips * 1.15), color=np.asarray(_AXIS_COLORS), font_size=8,
            bold=True, parent=self._view3d.scene,
        )  # fmt: skip

    def _build_grid_labels(self) -> None:
        """Depth labels ("z 500") on the grid at every major line, just right of the optical axis."""
        cfg = self._cfg
        z_marks = np.arange(cfg.grid_z_mm[0], cfg.grid_z_mm[1] + 1.0, cfg.grid_spacing_mm * cfg.grid_major_every)[1:]
        x = 0.2 * cfg.grid_spacing_mm  # along the optical axis, just right of it
        pos = np.stack([np.full_like(z_marks, x), np.full_like(z_marks, cfg.grid_below_camera_mm - 5.0), z_marks], 1)
        visuals.Text(
            [f"z {z:.0f}" for z in z_marks], pos=camera_to_display(pos), color=_TEXT_DIM, font_size=8,
            anchor_x="left", anchor_y="bottom", parent=self._view3d.scene,
        )  # fmt: skip

    @staticmethod
    def _panel_text(
        parent: scene.Node, text: str, pos: tuple[float, float], font_size: float, color: RGBA
    ) -> visuals.Text:
        """A text pinned to a panel's top-left area, in the panel's pixel coordinates (y down)."""
        label = visuals.Text(
            text, pos=pos, color=color, font_size=font_size, anchor_x="left", anchor_y="bottom", parent=parent
        )
        label.order = 10
        return label

    def _layout(self, event: object = None) -> None:
        """Place the two panels side by side (canvas pixels), keeping a 2 px gap.

        Runs on the canvas's resize event and, because the headless EGL backend sends none when
        ``canvas.size`` is set, again whenever :meth:`update` / :meth:`render` see a new size.
        """
        w, h = self.canvas.size
        self._laid_out_size = (w, h)
        left = max(1, int(round(w * self._cfg.split)) - 1)
        self._view2d.pos, self._view2d.size = (0, 0), (left, h)
        self._view3d.pos, self._view3d.size = (left + 2, 0), (max(1, w - left - 2), h)

    def _on_key(self, event: object) -> None:
        """``r`` in a window: re-centre the 3D camera on the hands."""
        if getattr(event, "text", "") in ("r", "R"):
            self.reset_camera()

    # ---------------------------------------------------------------------------- public

    def update(self, result: FrameResult, stats: LoopStats | None = None) -> None:
        """Show ``result`` (and the loop's ``stats`` in the overlay). GUI thread only; never blocks.

        Draws the image of view 0 and, on it, the 2D skeleton of every hand of view 0; draws the 3D
        skeleton of every hand with ``joints_3d`` (moved into view 0's camera frame with the
        extrinsics when the hand belongs to another view). Hands beyond ``max_hands`` are skipped.
        A frame set of several views is drawn in rig mode (module docstring): the grid of views
        with every hand's ``joints_world`` reprojected, and the rig's frustums in 3D.

        Raises:
            RuntimeError: called from a thread other than the one that built the view, or after close().
            ValueError: the image of view 0 is not uint8 ``(H, W, 3)``.
        """
        self._check_usable()
        self._ensure_layout()
        if len(result.frameset.frames) > 1:
            self._update_rig(result, stats)
            return
        frame = result.frameset.frames[0]
        self._set_image(frame.image)
        self._set_camera(frame.camera.intrinsics, frame.camera.name)
        hands = result.hands
        if len(hands) > self._cfg.max_hands and not self._warned_hands:
            logger.warning(
                "%d hands in view, drawing the first %d (ViewConfig.max_hands)", len(hands), self._cfg.max_hands
            )
            self._warned_hands = True
        points_3d = []
        for i, slot in enumerate(self._slots):
            hand = hands[i] if i < len(hands) else None
            points_3d.append(self._show_hand(slot, hand, result.frameset))
        self._frame_once([p for p in points_3d if p is not None])
        self._set_overlay(result, stats)
        self.canvas.update()

    def render(self) -> np.ndarray:
        """The current state rendered offscreen: ``(H, W, 3)`` uint8 RGB, ``(W, H) = canvas.size``.

        Rows and columns are canvas pixels, so :meth:`image_to_canvas` coordinates index it directly.
        """
        self._check_usable()
        self._ensure_layout()
        rgba = self.canvas.render(size=tuple(self.canvas.size), alpha=False)
        return np.ascontiguousarray(rgba[..., :3])

    def image_to_canvas(self, u: float, v: float) -> tuple[float, float]:
        """Where image pixel coordinate ``(u, v)`` of view 0 lands on the canvas, ``(x, y)`` pixels, y down.

        Pixel ``(col, row)``'s centre is ``(col + 0.5, row + 0.5)`` in the image's coordinates.
        """
        self._ensure_layout()
        mapped = self._image.get_transform("visual", "canvas").map(np.array([[u, v, 0.0, 1.0]]))
        return float(mapped[0, 0] / mapped[0, 3]), float(mapped[0, 1] / mapped[0, 3])

    def display_to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Where display-frame points ``(N, 3)`` (mm, :func:`camera_to_display`) of the 3D panel land
        on the canvas: ``(N, 2)`` ``(x, y)`` pixels, y down (NaN behind the 3D camera)."""
        self._ensure_layout()
        p = np.asarray(points, np.float64).reshape(-1, 3)
        mapped = self._frustum.get_transform("visual", "canvas").map(np.c_[p, np.ones(len(p))])
        w = mapped[:, 3:4]
        return np.where(w > 0, mapped[:, :2] / np.where(w > 0, w, 1.0), np.nan)

    @property
    def panel_rects(self) -> dict[str, tuple[int, int, int, int]]:
        """``{"image": (x, y, w, h), "3d": (x, y, w, h)}``: the panels in canvas pixels."""
        return {
            name: (int(vb.pos[0]), int(vb.pos[1]), int(vb.size[0]), int(vb.size[1]))
            for name, vb in (("image", self._view2d), ("3d", self._view3d))
        }

    @property
    def camera_3d(self) -> scene.TurntableCamera:
        """The right panel's :class:`vispy.scene.TurntableCamera` (display frame, mm)."""
        return self._view3d.camera

    @property
    def status_text(self) -> str:
        """The overlay's text as shown, including the "approximate intrinsics" line when visible."""
        return self._overlay.text + ("\napproximate intrinsics" if self._warning.visible else "")

    def reset_camera(self) -> None:
        """Re-centre the 3D camera on the hands at the next :meth:`update` that has 3D hands."""
        self._framed = False

    def close(self) -> None:
        """Close the canvas (and its window). Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self.canvas.close()

    def __enter__(self) -> TrackerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ per frame

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("this TrackerView is closed; make a new one")
        if threading.get_ident() != self._thread:
            raise RuntimeError(
                "TrackerView must be used from the thread that created it (the GUI thread); "
                "hand results over with a queue and poll it there (see run_window)"
            )

    def _ensure_layout(self) -> None:
        if tuple(self.canvas.size) != self._laid_out_size:
            self._layout()

    def _set_image(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"frame image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        self._image.set_data(image[..., :3])
        h, w = image.shape[:2]
        if self._image_size != (w, h):
            self._set_image_range(w, h)

    def _set_image_range(self, width: int, height: int) -> None:
        self._image_size = (width, height)
        self._view2d.camera.set_range(x=(0, width), y=(0, height), z=(-1.0, 1.0), margin=0.0)

    def _update_rig(self, result: FrameResult, stats: LoopStats | None) -> None:
        """Rig mode of :meth:`update`: the views' grid, world hands and every camera in 3D."""
        cfg = self._cfg
        cameras = tuple(f.camera for f in result.frameset.frames)
        self._set_image(rig_mosaic(result.frameset, result.hands, cfg.rig_tile_width, cfg.uncertainty_red_mm).image)
        centres = self._set_rig_cameras(cameras)
        hands = [h for h in result.hands if h.joints_world is not None]
        if len(hands) > cfg.max_hands and not self._warned_hands:
            logger.warning("%d hands in view, drawing the first %d (ViewConfig.max_hands)", len(hands), cfg.max_hands)
            self._warned_hands = True
        R0 = np.asarray(cameras[0].extrinsics.R, np.float64)
        t0 = np.asarray(cameras[0].extrinsics.t, np.float64).reshape(3)
        for i, slot in enumerate(self._slots):
            hand = hands[i] if i < len(hands) else None
            if hand is None:
                slot.hide()
                continue
            slot.show_2d(None, None, None, None)
            display = camera_to_display(np.asarray(hand.joints_world, np.float64) @ R0.T + t0)
            slot.show_3d(display, confidence_colors(joint_quality(hand, cfg.uncertainty_red_mm)))
        self._frame_once([centres])
        self._set_overlay(result, stats)
        self.canvas.update()

    def _set_rig_cameras(self, cameras: tuple[Camera, ...]) -> np.ndarray:
        """Draw every camera's frustum and name (first camera's frame); returns their centres, display frame."""
        centres = camera_to_display(np.array([_camera_pose_in(c, cameras[0])[1] for c in cameras]))
        same = self._rig_cameras is not None and len(cameras) == len(self._rig_cameras) and all(
            a is b for a, b in zip(cameras, self._rig_cameras)
        )  # identity: cameras hold arrays, and a rig's frames share their Camera objects
        if same:
            return centres
        self._rig_cameras = cameras
        self._intrinsics = None  # a later single-view frame redraws its own camera
        self._frustum.set_data(pos=camera_to_display(_rig_frustum_segments(cameras, self._cfg.rig_frustum_depth_mm)))
        self._camera_labels.text = [c.name for c in cameras]
        self._camera_labels.pos = centres
        self._camera_labels.visible = True
        self._title2d.text = f"{len(cameras)} views: world joints reprojected, coloured by uncertainty"
        self._title3d.text = f"3D  (rig, frame of {cameras[0].name}, mm; grid {self._cfg.grid_spacing_mm:g} mm)"
        self._warning.visible = any(c.intrinsics.approximate for c in cameras)
        return centres

    def _set_camera(self, intr: Intrinsics, name: str) -> None:
        if intr == self._intrinsics:
            return
        if self._rig_cameras is not None:
            self._rig_cameras = None
            self._camera_labels.visible = False
            self._title3d.text = f"3D  (camera frame, mm; grid {self._cfg.grid_spacing_mm:g} mm)"
        self._intrinsics = intr
        seg = camera_to_display(_frustum_segments(intr, self._cfg.frustum_depth_mm))
        self._frustum.set_data(pos=seg)
        hfov = np.degrees(2.0 * np.arctan(0.5 * intr.width / intr.fx))
        self._title2d.text = f"{name}  {intr.width}x{intr.height}  hfov {hfov:.0f}°"
        self._warning.visible = intr.approximate

    def _show_hand(self, slot: _HandVisuals, hand: HandPose | None, frameset: FrameSet) -> np.ndarray | None:
        """Update one slot; return the hand's display-frame joints when drawn in 3D."""
        if hand is None:
            slot.hide()
            return None
        colors = confidence_colors(hand.confidence)
        if hand.view == 0:
            color = _TRACK_COLORS[hand.track_id % len(_TRACK_COLORS)] if hand.track_id >= 0 else _TEXT
            slot.show_2d(np.asarray(hand.joints_2d, dtype=np.float32), colors, _hand_label(hand), color)
        else:
            slot.show_2d(None, None, None, None)
        joints = None
        if hand.joints_3d is not None:
            joints = _to_view0(np.asarray(hand.joints_3d, dtype=np.float64), hand.view, frameset)
        display = None if joints is None else camera_to_display(joints)
        slot.show_3d(display, colors)
        return display

    def _frame_once(self, hands_display: Sequence[np.ndarray]) -> None:
        """Aim the 3D camera at the hands the first time there are any; afterwards leave it alone.

        The look-at point is the hands' centroid moved 20 % of the way towards the camera (so the
        camera pyramid usually stays in view), the distance twice the hands' extent (at least 350 mm).
        """
        if self._framed or not hands_display:
            return
        pts = np.concatenate(hands_display)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if not len(pts):
            return
        extent = float(np.ptp(pts, axis=0).max())
        self._aim_3d_camera(0.8 * pts.mean(axis=0), max(350.0, 2.0 * extent))
        self._framed = True

    def _aim_3d_camera(self, center: np.ndarray, distance: float) -> None:
        cam = self._view3d.camera
        cam.center = tuple(float(c) for c in center)
        cam.distance = float(distance)

    def _set_overlay(self, result: FrameResult, stats: LoopStats | None) -> None:
        """Status lines; the "approximate intrinsics" line goes right under them."""
        text = _format_overlay(result, stats)
        if text == self._overlay.text:
            return
        self._overlay.text = text
        self._warning.pos = (10, _OVERLAY_TOP_PX + _LINE_PX * (text.count("\n") + 1) + 4)


# ---------------------------------------------------------------------------------- event loop


def run_window(
    view: TrackerView,
    poll: Callable[[], tuple[FrameResult, LoopStats] | None],
    stop: threading.Event,
    interval_s: float = 1 / 60,
) -> None:
    """Run the GUI event loop for a windowed view until the window closes or ``stop`` is set.

    A VisPy timer calls ``poll()`` every ``interval_s`` seconds; ``poll`` must not block and
    returns the newest ``(result, stats)`` or None, which ``view.update`` then shows. Closing the
    window sets ``stop``; ``stop`` set from elsewhere (pipeline finished, Ctrl-C) quits the loop
    at the next tick. While the loop runs, Ctrl-C sets ``stop`` if nobody installed a SIGINT
    handler before (Qt would otherwise swallow it); the previous handler is restored afterwards.
    Returns at once when ``stop`` is already set. Must be called on the main/GUI thread, the one
    that built ``view``. Meant for windowed mode (Qt); VisPy's headless EGL loop also runs it, but
    closes every canvas when it quits.

    Raises:
        Exception: whatever ``poll`` or ``view.update`` raised (after ``stop`` is set and the loop quit).
    """
    if stop.is_set():
        return
    failure: list[BaseException] = []

    def on_close(event: object) -> None:
        stop.set()

    def on_tick(event: object) -> None:
        if stop.is_set():
            timer.stop()
            vispy_app.quit()
            return
        try:
            item = poll()
            if item is not None:
                view.update(*item)
        except Exception as exc:  # surfaced to the caller after the loop ends
            logger.exception("view update failed; stopping")
            failure.append(exc)
            stop.set()

    view.canvas.events.close.connect(on_close)
    timer = vispy_app.Timer(interval=interval_s, connect=on_tick, start=True)
    restore = _install_sigint(stop)
    try:
        view.canvas.show()
        vispy_app.run()
    finally:
        timer.stop()
        restore()
        view.canvas.events.close.disconnect(on_close)
    if failure:
        raise failure[0]


def _install_sigint(stop: threading.Event) -> Callable[[], None]:
    """Make Ctrl-C set ``stop`` (main thread, default handler only); returns the undo function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return lambda: None

    def handler(signum: int, frame: types.FrameType | None) -> None:
        logger.info("interrupted; stopping")
        stop.set()

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    return restore


# ------------------------------------------------------------------------------------ recorder


class VideoRecorder:
    """Writes rendered RGB frames to a video file or to a folder of numbered PNGs.

    * ``*.mp4`` (codec ``mp4v``) or ``*.avi`` (``MJPG``): one video through ``cv2.VideoWriter``,
      opened at the first frame with that frame's size; every frame must have the same size.
    * a path without suffix, or an existing directory: PNGs ``frame_000000.png``, ... in it.
    * ``*.png``: PNGs next to it named after its stem, e.g. ``out/shot.png`` -> ``out/shot_000000.png``.

    Parent folders are created. ``close()`` may be called more than once; the recorder is a
    context manager. Writing is synchronous (measured for 1280x520 frames on one CPU core: mp4v
    ~2 ms, MJPG ~4 ms, PNG ~14 ms per frame): it runs on the caller's thread, so on the GUI thread
    PNGs eat into a 60 Hz frame budget.

    Args:
        path: output file or folder.
        fps: frame rate stored in the video (ignored for PNGs).

    Raises:
        ValueError: unsupported suffix (e.g. ``.gif``) or ``fps <= 0``.
    """

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        suffix = self.path.suffix.lower()
        self._codec: str | None = None
        if self.path.is_dir() or suffix == "":
            self._folder, self._stem = self.path, "frame"
        elif suffix == ".png":
            self._folder, self._stem = self.path.parent, self.path.stem
        elif suffix in _VIDEO_CODECS:
            self._folder, self._stem, self._codec = self.path.parent, self.path.stem, _VIDEO_CODECS[suffix]
        else:
            raise ValueError(
                f"cannot record to {str(self.path)!r}: use a .mp4 or .avi file, a .png name or a folder "
                f"(got suffix {suffix!r})"
            )
        self._folder.mkdir(parents=True, exist_ok=True)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self.frames_written = 0

    @property
    def is_video(self) -> bool:
        """True when writing a video file, False for PNGs."""
        return self._codec is not None

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame, uint8 ``(H, W, 3)`` RGB (an alpha channel is dropped).

        Raises:
            ValueError: wrong dtype / shape, or a size different from the first video frame.
            RuntimeError: the recorder is closed.
            OSError: OpenCV could not open the video or write the PNG.
        """
        if self._closed:
            raise RuntimeError(f"recorder for {str(self.path)!r} is closed")
        frame = np.asarray(rgb)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise ValueError(f"frames must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        bgr = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2BGR)
        if self._codec is None:
            name = self._folder / f"{self._stem}_{self.frames_written:06d}.png"
            if not cv2.imwrite(str(name), bgr):
                raise OSError(f"could not write {name}")
        else:
            self._video(self._codec, bgr.shape[1], bgr.shape[0]).write(bgr)
        self.frames_written += 1

    def _video(self, codec: str, width: int, height: int) -> cv2.VideoWriter:
        """The open writer (opened on the first frame, at its size)."""
        if self._writer is None:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*codec), self.fps, (width, height))
            if not writer.isOpened():
                raise OSError(
                    f"OpenCV cannot write {str(self.path)!r} with codec {codec!r}; record to a folder of PNGs instead"
                )
            self._writer, self._size = writer, (width, height)
            logger.info("recording %dx%d @ %.1f fps to %s", width, height, self.fps, self.path)
        elif self._size != (width, height):
            raise ValueError(f"frame size changed from {self._size} to {(width, height)} within one video")
        return self._writer

    def close(self) -> None:
        """Finish the file. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        logger.info("recorded %d frames to %s", self.frames_written, self.path)

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
