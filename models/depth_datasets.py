"""Readers for the NYU Hand Pose and ICVL depth data sets (playback of an NYU folder: :mod:`devices.nyu`).

For a user who owns the data sets (they are not shipped with handtrack): depth images, the
benchmark label files (``u v d`` per joint, one frame per line), the uvd <-> 3D conversions of the
benchmarks (:class:`devices.nyu.NyuDepthFolderDevice` plays an NYU ``test/`` or ``train/`` folder
through the pipeline). Joint layouts (14 NYU joints, 16 ICVL joints) and their mapping to the
MediaPipe order live in :mod:`tracker.core.joints`.

Two 3D frames, both in mm:

* **Benchmark frame** (:func:`uvd_to_xyz` with :data:`NYU_BENCHMARK` / :data:`ICVL_BENCHMARK`):
  ``x = (u - cx) d / fx, y = (v - cy) d / fy, z = d`` with the constants of the benchmark code
  (awesome-hand-pose-estimation ``evaluation/src/util.py``). NYU's ``fy`` there is **negative**, so
  its y axis points **up**; ICVL's ``fy`` is positive (y down). Errors between two point sets are
  the same in either frame; published 3D numbers use this one.
* **Camera frame** of handtrack (:func:`uvd_to_camera` with :data:`NYU_INTRINSICS` /
  :data:`ICVL_INTRINSICS`): OpenCV, x right, y down, z forward, positive focal lengths, as in
  :mod:`tracker.core.structures`. For NYU it is the benchmark frame with y negated; for ICVL they coincide.

``(u, v)`` are pixel column / row of the depth image, used as the benchmarks use them
(``depth[round(v), round(u)]``: pixel centres at integers). handtrack puts pixel centres at
``+0.5``; the half-pixel difference (about 0.6 mm at 700 mm for NYU) is not corrected here.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path
from typing import Final, NamedTuple

import cv2
import numpy as np

from tracker.core.errors import DeviceNotFoundError, RecordingError, UnsupportedSourceError
from tracker.core.joints import LAYOUT_JOINT_NAMES
from tracker.core.structures import Intrinsics

__all__ = [
    "PinholeParams",
    "NYU_BENCHMARK",
    "ICVL_BENCHMARK",
    "NYU_INTRINSICS",
    "ICVL_INTRINSICS",
    "load_nyu_depth",
    "load_icvl_depth",
    "decode_image_file",
    "uvd_to_xyz",
    "xyz_to_uvd",
    "uvd_to_camera",
    "camera_to_uvd",
    "read_labels",
]

log = logging.getLogger(__name__)


class PinholeParams(NamedTuple):
    """``(fx, fy, cx, cy)`` in pixels as the benchmarks write them (``fy`` may be negative)."""

    fx: float
    fy: float
    cx: float
    cy: float


#: NYU depth camera (640x480) as the benchmark code uses it: negative fy, y axis up.
NYU_BENCHMARK: Final = PinholeParams(588.03, -587.07, 320.0, 240.0)
#: ICVL depth camera (320x240) as the benchmark code uses it (y down). DeepPrior++'s ICVL
#: importer uses 241.42 for both focal lengths instead; the benchmark GT is in uvd, so either works.
ICVL_BENCHMARK: Final = PinholeParams(240.99, 240.96, 160.0, 120.0)

#: NYU depth camera in handtrack's convention (OpenCV camera frame, positive focal lengths).
NYU_INTRINSICS: Final = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
#: ICVL depth camera in handtrack's convention.
ICVL_INTRINSICS: Final = Intrinsics(240.99, 240.96, 160.0, 120.0, 320, 240)


# --- Depth images --------------------------------------------------------------------------------


def load_nyu_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Depth in mm from an NYU Hand Pose depth PNG (``depth_1_0000001.png``, ``synthdepth_*``).

    NYU packs each depth value into an 8-bit RGB PNG: the high byte in green, the low byte in blue,
    red zero (NYU's README and toolbox: ``depth = bitor(bitshift(G, 8), B)``). Background the
    sensor did not measure keeps whatever NYU wrote there (2001 mm, "far", in test frame 1).

    Args:
        path: the PNG file.

    Returns:
        ``uint16`` ``(H, W)`` depth in mm (``(480, 640)`` for NYU).

    Raises:
        DeviceNotFoundError: no file at ``path``.
        RecordingError: the file cannot be decoded (empty, truncated, not an image).
        UnsupportedSourceError: the image is not an NYU depth PNG (not 8-bit 3-channel, or its red
            channel is not zero, as in a colour ``rgb_*.png``).
    """
    image = _decode(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        hint = " (16-bit single-channel depth: use load_icvl_depth)" if image.dtype == np.uint16 else ""
        raise UnsupportedSourceError(
            f"{path} is a {_describe(image)} image; an NYU depth PNG is 8-bit RGB with depth in "
            f"green (high byte) and blue (low byte){hint}")  # fmt: skip
    if image[..., 2].any():  # OpenCV decodes to BGR(A): index 2 is red
        raise UnsupportedSourceError(
            f"{path} has a non-zero red channel: it looks like a colour image (rgb_*.png), not an NYU "
            "depth PNG (depth_*.png / synthdepth_*.png), whose red channel is 0")  # fmt: skip
    return (image[..., 1].astype(np.uint16) << 8) | image[..., 0]


def load_icvl_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Depth in mm from an ICVL depth PNG (16-bit single channel, mm, 320x240).

    The format follows the ICVL importers of public code (DeepPrior++: one band, values in mm, 0 = no
    reading); handtrack has not seen a real ICVL file, only images written in its tests.

    Args:
        path: the PNG file.

    Returns:
        ``uint16`` ``(H, W)`` depth in mm.

    Raises:
        DeviceNotFoundError: no file at ``path``.
        RecordingError: the file cannot be decoded.
        UnsupportedSourceError: the image is not 16-bit single-channel (an 8-bit RGB depth PNG is
            NYU's format: use :func:`load_nyu_depth`).
    """
    image = _decode(path)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint16 or image.ndim != 2:
        hint = " (8-bit RGB depth is NYU's format: use load_nyu_depth)" if image.dtype == np.uint8 else ""
        raise UnsupportedSourceError(
            f"{path} is a {_describe(image)} image; an ICVL depth PNG is 16-bit single-channel mm{hint}")
    return image


def _why_not_a_file(file: Path) -> str:
    """Why ``file`` cannot be read as a file: missing, a folder, or something else (a device)."""
    if not file.exists():
        return "does not exist"
    return "is a folder, not a file" if file.is_dir() else "is not a regular file"


def _decode(path: str | os.PathLike[str]) -> np.ndarray:
    """The image in ``path`` decoded by OpenCV unchanged (bit depth and channels kept, BGR order)."""
    file = Path(path)
    if not file.is_file():
        raise DeviceNotFoundError(f"depth image {file} {_why_not_a_file(file)}: check the path")
    return decode_image_file(file, cv2.IMREAD_UNCHANGED, "depth image")


def decode_image_file(file: Path, flags: int, what: str = "image") -> np.ndarray:
    """The image in ``file`` decoded by OpenCV (``cv2.imdecode`` with ``flags``, e.g.
    ``cv2.IMREAD_COLOR`` -> BGR uint8, ``cv2.IMREAD_UNCHANGED`` -> as stored). The one image-file
    reader of the data engine and the folder sources (:mod:`devices.image_folder`, :mod:`devices.nyu`).

    The bytes are read with NumPy and decoded in memory rather than with ``cv2.imread``, so paths
    with non-ASCII characters work on Windows too.

    Args:
        file: the image file.
        flags: ``cv2.IMREAD_*`` flags.
        what: what the file is, for the messages ("image", "depth image").

    Raises:
        RecordingError: the file cannot be read, or is empty, corrupt or not an image (the message
            names it).
    """
    try:
        data = np.fromfile(file, dtype=np.uint8)
    except OSError as e:
        raise RecordingError(f"cannot read {what} {file}: {e.strerror or e}") from e
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise RecordingError(f"cannot decode {what} {file}: empty, corrupt or not an image; remove or replace it")
    return image


def _describe(image: np.ndarray) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{image.dtype}, {channels}-channel {image.shape[1]}x{image.shape[0]}"


# --- uvd <-> 3D ------------------------------------------------------------------------------------


def uvd_to_xyz(uvd: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Back-project ``(u, v, d)`` the benchmarks' way: ``x = (u - cx) d / fx, y = (v - cy) d / fy, z = d``.

    The sign of ``fy`` picks the y axis: ``uvd_to_xyz(uvd, *NYU_BENCHMARK)`` (negative fy) gives
    the NYU benchmark frame, y **up**; a positive ``fy`` gives y down (OpenCV). For handtrack's
    camera frame use :func:`uvd_to_camera`.

    Args:
        uvd: ``(..., 3)`` pixels, pixels, mm.
        fx, fy, cx, cy: pinhole parameters in pixels (``fx``, ``fy`` non-zero).

    Returns:
        ``(..., 3)`` float64 mm.

    Raises:
        ValueError: ``uvd`` is not ``(..., 3)``, or a focal length is zero.
    """
    p = _points(uvd, "uvd")
    if fx == 0 or fy == 0:
        raise ValueError(f"focal lengths must be non-zero, got fx={fx}, fy={fy}")
    d = p[..., 2]
    return np.stack([(p[..., 0] - cx) * d / fx, (p[..., 1] - cy) * d / fy, d], axis=-1)


def xyz_to_uvd(xyz: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Project 3D points to ``(u, v, d)``: the inverse of :func:`uvd_to_xyz` with the same parameters.

    Args:
        xyz: ``(..., 3)`` mm in the frame the parameters define (see :func:`uvd_to_xyz`).
        fx, fy, cx, cy: pinhole parameters in pixels.

    Returns:
        ``(..., 3)`` float64: pixels, pixels, mm.

    Raises:
        ValueError: ``xyz`` is not ``(..., 3)``, or a point has ``z <= 0`` (not in front of the camera).
    """
    p = _in_front(_points(xyz, "xyz"))
    z = p[..., 2]
    return np.stack([p[..., 0] * fx / z + cx, p[..., 1] * fy / z + cy, z], axis=-1)


def uvd_to_camera(uvd: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Back-project ``(u, v, d)`` to handtrack's camera frame (OpenCV: x right, y down, z forward), mm.

    ``uvd_to_camera(uvd, NYU_INTRINSICS)`` equals ``uvd_to_xyz(uvd, *NYU_BENCHMARK)`` with y negated.
    Distortion is ignored (the benchmarks use none).

    Args:
        uvd: ``(..., 3)`` pixels, pixels, mm.
        intrinsics: the depth camera (positive focal lengths).

    Returns:
        ``(..., 3)`` float64 mm (:meth:`Intrinsics.unproject`).

    Raises:
        ValueError: ``uvd`` is not ``(..., 3)``.
    """
    p = _points(uvd, "uvd")
    return intrinsics.unproject(p[..., :2], p[..., 2])


def camera_to_uvd(points_mm: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Project camera-frame points (OpenCV, mm) to ``(u, v, d)`` (:meth:`Intrinsics.project` and the
    depth); the inverse of :func:`uvd_to_camera`.

    Raises:
        ValueError: ``points_mm`` is not ``(..., 3)`` or has a point with ``z <= 0``.
    """
    p = _in_front(_points(points_mm, "xyz"))
    return np.concatenate([intrinsics.project(p), p[..., 2:]], axis=-1)


def _points(a: np.ndarray, what: str) -> np.ndarray:
    p = np.asarray(a, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] != 3:
        raise ValueError(f"{what} must have shape (..., 3), got {p.shape}")
    return p


def _in_front(p: np.ndarray) -> np.ndarray:
    """``p`` ``(..., 3)`` mm, checked to lie in front of the camera (``z > 0``)."""
    z = p[..., 2]
    if np.any(z <= 0):
        raise ValueError(f"points must be in front of the camera (z > 0 mm); min z is {float(np.min(z)):g}")
    return p


# --- Label files -----------------------------------------------------------------------------------


def read_labels(path: str | os.PathLike[str], layout: str | int) -> np.ndarray:
    """Joint labels or predictions in the benchmarks' text format.

    One frame per line, ``J`` joints x ``(u, v, d)`` whitespace-separated (pixels, pixels, mm), the
    same frame order as the data set's list file. Plain ``.txt`` or gzip-compressed ``.gz``.
    Blank lines at the end are ignored; a blank line anywhere else is an error (it would shift every
    later frame).

    Args:
        path: the file.
        layout: a joint layout of :data:`tracker.core.joints.LAYOUT_JOINT_NAMES` ("nyu": 14 joints,
            "icvl": 16), or the number of points per line (1 for the hand-centre files).

    Returns:
        ``(N, J, 3)`` float64 uvd, N >= 1.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unknown layout; the file is empty, not text, or not valid gzip; a line has the
            wrong number of values, a value that is not a number, or a NaN / infinite value (the
            message names the line).
    """
    joints = _layout_size(layout)
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"label file {file} {_why_not_a_file(file)}")
    try:
        raw = gzip.decompress(file.read_bytes()) if file.suffix.lower() == ".gz" else file.read_bytes()
        text = raw.decode("ascii")
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"label file {file} is not a valid gzip file ({e}); gunzip it to check") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"label file {file} is not plain text (byte {e.start} is not ASCII); "
                         "compressed files must end in .gz") from e  # fmt: skip
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"label file {file} is empty: expected one line of {3 * joints} numbers per frame")
    want = 3 * joints
    rows = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if len(tokens) != want:
            raise ValueError(f"{file} line {number}: {len(tokens)} values, expected {want} "
                             f"({joints} joints x (u, v, d)){_layout_hint(len(tokens), layout)}")  # fmt: skip
        try:
            row = np.array([float(t) for t in tokens])
        except ValueError as e:
            raise ValueError(f"{file} line {number}: {e}") from e
        if not np.isfinite(row).all():
            bad = int(np.flatnonzero(~np.isfinite(row))[0])
            raise ValueError(f"{file} line {number}: value {bad + 1} (joint {bad // 3}) is "
                             f"{tokens[bad]!r}; labels must be finite numbers")  # fmt: skip
        rows.append(row)
    return np.stack(rows).reshape(len(rows), joints, 3)


def _layout_size(layout: str | int) -> int:
    if isinstance(layout, str):
        names = LAYOUT_JOINT_NAMES.get(layout)
        if names is None:
            raise ValueError(f"unknown joint layout {layout!r}; known: {', '.join(LAYOUT_JOINT_NAMES)}, "
                             "or a number of points per line")  # fmt: skip
        return len(names)
    if isinstance(layout, bool) or not isinstance(layout, int) or layout < 1:
        raise ValueError(f"layout must be a layout name or a positive number of points, got {layout!r}")
    return layout


def _layout_hint(count: int, layout: str | int) -> str:
    """' -- looks like the "icvl" layout' when the count fits another known layout."""
    fits = [name for name, names in LAYOUT_JOINT_NAMES.items() if 3 * len(names) == count and name != layout]
    return f"; the line fits the {' / '.join(repr(n) for n in fits)} layout" if fits else ""


# --- Playback --------------------------------------------------------------------------------------
