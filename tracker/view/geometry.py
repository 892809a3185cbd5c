"""Geometry the view draws: the display frame, skeleton and scene-furniture segments, reprojection.

Every camera transform goes through the methods of :class:`tracker.core.structures.Camera`,
:class:`~tracker.core.structures.Extrinsics` and :class:`~tracker.core.structures.Intrinsics`
(world <-> camera, project, unproject); nothing here writes ``R @ X + t`` by hand.

**Display frame.** The 3D panel shows OpenCV camera-frame millimetres (x right, y down, z forward)
in a y-up display frame ``(x, -y, -z)`` (:func:`camera_to_display`): the OpenGL camera convention,
a rotation of 180 deg about x, so a left hand still looks like a left hand.

Segment arrays are ``(2 * n, D)`` end points, consecutive pairs forming one segment (VisPy's
``connect="segments"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from tracker.core.joints import EDGES
from tracker.core.structures import Camera, FrameSet, Intrinsics
from tracker.view.colors import EDGE_COLORS, GRID_MAJOR, GRID_MINOR, RGBA

__all__ = [
    "camera_to_display",
    "bone_segments",
    "frustum_segments",
    "rig_frustum_segments",
    "camera_centers_in",
    "grid_segments",
    "to_view0",
    "project_world",
]

#: Vertex index pairs of the bones, flattened: ``points[_EDGE_INDEX]`` gives segment end points.
_EDGE_INDEX: Final[np.ndarray] = np.asarray(EDGES, dtype=np.intp).reshape(-1)
_EDGE_VERTEX_COLORS: Final[np.ndarray] = np.repeat(EDGE_COLORS, 2, axis=0).astype(np.float32)


def camera_to_display(points_mm: np.ndarray) -> np.ndarray:
    """OpenCV camera-frame points ``(..., 3)`` mm -> display frame ``(x, -y, -z)``, float32.

    The display frame is y-up, x right, the camera looking down -z (a rotation, not a mirror).

    Raises:
        ValueError: the last axis is not 3.
    """
    p = np.asarray(points_mm, dtype=np.float32)
    if p.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {p.shape}")
    return p * np.array([1.0, -1.0, -1.0], dtype=np.float32)


def bone_segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joints ``(21, D)`` -> bone end points ``(2 * n_bones, D)`` float32 and their RGBA colours
    ``(2 * n_bones, 4)`` (the finger's, :data:`tracker.view.colors.EDGE_COLORS`), keeping only the
    bones whose two ends are finite."""
    seg = points[_EDGE_INDEX]
    ok = np.isfinite(seg).all(axis=1).reshape(-1, 2).all(axis=1)
    keep = np.repeat(ok, 2)
    return np.ascontiguousarray(seg[keep], dtype=np.float32), _EDGE_VERTEX_COLORS[keep]


def frustum_segments(intr: Intrinsics, depth_mm: float) -> np.ndarray:
    """Camera pyramid as segment end points ``(24, 3)`` in that camera's frame (mm).

    Four rays from the optical centre to the image corners back-projected to ``depth_mm``
    (:meth:`Intrinsics.unproject`), the rectangle joining them, and a small triangle on the image's
    top edge (v = 0) marking "up".
    """
    w, h = float(intr.width), float(intr.height)
    pixels = np.array([(0, 0), (w, 0), (w, h), (0, h), (0.35 * w, 0), (0.5 * w, -0.22 * h), (0.65 * w, 0)])
    lifted = intr.unproject(pixels, depth_mm)
    corners, tri = lifted[:4], lifted[4:]
    origin = np.zeros(3)
    seg: list[np.ndarray] = []
    for i, c in enumerate(corners):
        seg += [origin, c, c, corners[(i + 1) % 4]]
    seg += [tri[0], tri[1], tri[1], tri[2]]
    return np.asarray(seg)


def rig_frustum_segments(cameras: Sequence[Camera], depth_mm: float) -> np.ndarray:
    """Every camera's pyramid (:func:`frustum_segments`) in the first camera's frame, ``(24 N, 3)`` mm."""
    reference = cameras[0]
    segs = [reference.world_to_camera(cam.camera_to_world(frustum_segments(cam.intrinsics, depth_mm)))
            for cam in cameras]  # fmt: skip
    return np.concatenate(segs)


def camera_centers_in(cameras: Sequence[Camera], reference: Camera) -> np.ndarray:
    """Optical centres of ``cameras`` in ``reference``'s camera frame, ``(N, 3)`` mm."""
    return np.array([reference.world_to_camera(cam.extrinsics.center) for cam in cameras])


def grid_segments(
    spacing: float, y: float, x_range: tuple[float, float], z_range: tuple[float, float], major_every: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ground grid in the camera-frame plane ``Y = y`` (mm) as segments ``(M, 3)`` and colours ``(M, 4)``.

    Lines every ``spacing`` mm over ``x_range`` x ``z_range``; every ``major_every``-th line (counted
    from 0) is the brighter :data:`tracker.view.colors.GRID_MAJOR`.
    """
    xs = np.arange(x_range[0], x_range[1] + 0.5 * spacing, spacing)
    zs = np.arange(z_range[0], z_range[1] + 0.5 * spacing, spacing)
    seg: list[tuple[float, float, float]] = []
    col: list[RGBA] = []
    for x in xs:
        seg += [(x, y, z_range[0]), (x, y, z_range[1])]
        col += [GRID_MAJOR if round(x / spacing) % major_every == 0 else GRID_MINOR] * 2
    for z in zs:
        seg += [(x_range[0], y, z), (x_range[1], y, z)]
        col += [GRID_MAJOR if round(z / spacing) % major_every == 0 else GRID_MINOR] * 2
    return np.asarray(seg, dtype=np.float64), np.asarray(col, dtype=np.float32)


def to_view0(points_mm: np.ndarray, view: int, frameset: FrameSet) -> np.ndarray | None:
    """Points ``(..., 3)`` in the camera frame of ``view`` -> camera frame of view 0 (mm), through
    the world frame with both cameras' extrinsics; None when ``view`` is not in the frame set."""
    if view == 0:
        return points_mm
    if not 0 <= view < len(frameset.frames):
        return None
    src, dst = frameset.frames[view].camera, frameset.frames[0].camera
    return dst.world_to_camera(src.camera_to_world(points_mm))


def project_world(points_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(N, 3)`` mm -> ``(N, 2)`` pixels of ``camera``'s image (:meth:`Camera.project`:
    ``cv2.projectPoints`` with its extrinsics and distortion), and ``(N,)`` bool: finite and in
    front of the camera (camera-frame Z > 1e-6 mm). Pixels of the other points are NaN."""
    X = np.asarray(points_world, np.float64).reshape(-1, 3)
    ok = np.isfinite(X).all(axis=1)
    ok[ok] = camera.world_to_camera(X[ok])[:, 2] > 1e-6
    uv = np.full((len(X), 2), np.nan)
    if ok.any():
        uv[ok] = camera.project(X[ok])
    return uv, ok
