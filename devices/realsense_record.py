"""RealSense recordings made from any frame sets, with the SDK's software device and recorder.

:func:`write_recording` turns frames from any source (the synthetic engine, a converted data set)
into a ``.db3`` file that the RealSense Viewer, ``rs-convert``, pyrealsense2 and
:class:`devices.realsense.RealSenseDevice` play like a camera's: a z16 depth stream and an rgb8
colour stream with their intrinsics, the depth units, and the depth-to-colour extrinsics.

pyrealsense2 2.59 writes only ROS2 ``.db3`` recordings (``rs.recorder`` refuses other names);
older ``.bag`` files stay readable by the player.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

from tracker.core.structures import Extrinsics, FrameSet, Intrinsics

__all__ = ["write_recording", "rs_intrinsics"]

log = logging.getLogger(__name__)


def rs_intrinsics(intrinsics: Intrinsics) -> rs.intrinsics:
    """:class:`Intrinsics` as the SDK's (Brown-Conrady, OpenCV's k1, k2, p1, p2, k3; float32 inside).

    Raises:
        ValueError: distortion terms beyond k3 (rational / thin-prism models) are non-zero.
    """
    dist = tuple(float(c) for c in intrinsics.dist)
    if any(dist[5:]):
        raise ValueError(f"RealSense intrinsics hold 5 distortion coefficients (k1, k2, p1, p2, k3); "
                         f"got {len(dist)} with non-zero terms beyond k3: {dist}")  # fmt: skip
    out = rs.intrinsics()
    out.width, out.height = int(intrinsics.width), int(intrinsics.height)
    out.fx, out.fy, out.ppx, out.ppy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    out.model = rs.distortion.brown_conrady
    out.coeffs = list((dist + (0.0,) * 5)[:5])
    return out


def _rs_extrinsics(extrinsics: Extrinsics) -> rs.extrinsics:
    out = rs.extrinsics()
    out.rotation = [float(v) for v in np.asarray(extrinsics.R, dtype=np.float64).T.ravel()]  # column-major
    out.translation = [float(v) / 1000.0 for v in np.asarray(extrinsics.t, dtype=np.float64)]  # mm -> m
    return out


def write_recording(
    path: str | os.PathLike[str],
    framesets: Iterable[FrameSet],
    intrinsics: Intrinsics | None = None,
    depth_scale: float = 0.001,
    *,
    fps: int = 30,
    view: int = 0,
    color: bool = True,
    depth: bool = True,
    depth_intrinsics: Intrinsics | None = None,
    depth_to_color: Extrinsics | None = None,
) -> int:
    """Record frame sets to a RealSense ``.db3`` file (overwritten if it exists).

    Args:
        path: the output file; must end in ``.db3``.
        framesets: the frames; view ``view`` of each is recorded, with its timestamp (s, stored as
            the SDK's ms) and index (the SDK frame number).
        intrinsics: of the colour image; None: the first frame's camera intrinsics.
        depth_scale: metres per recorded depth unit (the depth sensor's ``depth_units``); depth in
            mm is stored as ``round(mm / (depth_scale * 1000))``, clipped to uint16.
        fps: frame rate declared for the streams (frames per second).
        view: which frame of each set to record.
        color: record the colour stream (rgb8).
        depth: record the depth stream (z16) from ``frame.depth``; frames without depth are an error.
        depth_intrinsics: of the depth image when it is not registered to the colour image; None:
            the same as ``intrinsics`` (depth registered to colour).
        depth_to_color: depth -> colour camera transform (mm); None: identity.

    Returns:
        the number of frame sets written.

    Raises:
        ValueError: ``path`` does not end in ``.db3``, no stream is asked for, no frame sets, a
            frame lacks depth, or image sizes do not match the intrinsics.
    """
    path = Path(path)
    if path.suffix.lower() != ".db3":
        raise ValueError(f"{path}: pyrealsense2 {rs.__version__} records ROS2 .db3 files only; name it *.db3")
    if not (color or depth):
        raise ValueError("record at least one of the colour and depth streams")
    if not depth_scale > 0:
        raise ValueError(f"depth_scale must be positive (metres per unit), got {depth_scale}")
    it = iter(framesets)
    first = next(it, None)
    if first is None:
        raise ValueError("no frame sets to record")
    intr = intrinsics if intrinsics is not None else first.frames[view].camera.intrinsics
    depth_intr = depth_intrinsics if depth_intrinsics is not None else intr

    device = rs.software_device()
    device.register_info(rs.camera_info.name, "handtrack software camera")
    device.register_info(rs.camera_info.serial_number, "0")
    streams: dict[str, tuple[rs.software_sensor, rs.video_stream_profile]] = {}
    if depth:
        sensor = device.add_sensor("Depth")
        sensor.add_read_only_option(rs.option.depth_units, float(depth_scale))
        streams["depth"] = sensor, _add_stream(sensor, rs.stream.depth, rs.format.z16, 2, depth_intr, fps, uid=0)
    if color:
        sensor = device.add_sensor("Color")
        streams["color"] = sensor, _add_stream(sensor, rs.stream.color, rs.format.rgb8, 3, intr, fps, uid=1)
    if depth and color:
        streams["depth"][1].register_extrinsics_to(streams["color"][1], _rs_extrinsics(depth_to_color or Extrinsics()))

    recorder = rs.recorder(str(path), device)  # before the sensors start, so it sees every frame
    count = 0
    try:
        for sensor, profile in streams.values():
            sensor.open(profile)
            sensor.start(lambda frame: None)
        for fs in itertools.chain([first], it):
            frame = fs.frames[view]
            stamp_ms = float(fs.timestamp) * 1000.0
            if depth:
                if frame.depth is None:
                    raise ValueError(f"frame {fs.index} has no depth; record with depth=False for colour only")
                raw = np.clip(np.rint(frame.depth.astype(np.float64) / (depth_scale * 1000.0)), 0, 65535)
                _send(*streams["depth"], raw.astype(np.uint16), 2, stamp_ms, fs.index, depth_scale)
            if color:
                _send(*streams["color"], np.ascontiguousarray(frame.image, dtype=np.uint8), 3, stamp_ms, fs.index)
            count += 1
    finally:
        for sensor, _ in streams.values():
            try:
                sensor.stop()
                sensor.close()
            except RuntimeError:  # never started (an error before the first frame)
                pass
        recorder.pause()
        del recorder, streams, device  # the recorder writes and closes the file when released
    log.info("%s: recorded %d frame(s) (%s)", path, count, "+".join(k for k, on in (("depth", depth), ("colour", color))
                                                                   if on))  # fmt: skip
    return count


def _add_stream(sensor: rs.software_sensor, kind: rs.stream, fmt: rs.format, bpp: int, intrinsics: Intrinsics,
                fps: int, uid: int) -> rs.video_stream_profile:  # fmt: skip
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = kind, 0, uid
    stream.width, stream.height, stream.fps = int(intrinsics.width), int(intrinsics.height), int(fps)
    stream.bpp, stream.fmt = bpp, fmt
    stream.intrinsics = rs_intrinsics(intrinsics)
    return sensor.add_video_stream(stream).as_video_stream_profile()


def _send(sensor: rs.software_sensor, profile: rs.video_stream_profile, pixels: np.ndarray, bpp: int,
          stamp_ms: float, number: int, depth_units: float | None = None) -> None:  # fmt: skip
    if pixels.shape[:2] != (profile.height(), profile.width()):
        raise ValueError(f"frame {number}: image {pixels.shape[1]}x{pixels.shape[0]} does not match the "
                         f"{profile.stream_name()} intrinsics {profile.width()}x{profile.height()}")  # fmt: skip
    frame = rs.software_video_frame()
    frame.pixels = pixels
    frame.bpp, frame.stride = bpp, profile.width() * bpp
    frame.timestamp = stamp_ms
    frame.domain = rs.timestamp_domain.hardware_clock
    frame.frame_number = int(number)
    frame.profile = profile
    if depth_units is not None:
        frame.depth_units = float(depth_units)
    sensor.on_video_frame(frame)
