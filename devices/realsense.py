"""Intel RealSense depth cameras and their recordings, through pyrealsense2.

One adapter, :class:`RealSenseDevice`, two sources:

* **a live camera** (``RealSenseDevice()`` for the first one, ``RealSenseDevice("123456789012")`` by
  serial number): depth (z16) and colour (rgb8) streams at the requested size and rate, depth
  aligned to the colour image with the SDK's ``rs.align``. A camera that stops delivering
  (unplugged, USB reset) raises :class:`DeviceDisconnectedError` after ``timeout_s``.
* **a recording** (``RealSenseDevice(path="take.db3")``): played back by the SDK itself, every
  frame in file order, never real time inside the SDK (its real-time mode drops frames a slow
  reader misses); ``realtime=True`` paces the frames here instead, by their timestamps. pyrealsense2
  2.59 records ROS2 ``.db3`` files (it refuses to write anything else) and still reads the older
  ROS1 ``.bag`` files that 2.57 and earlier wrote, which it calls deprecated (convert with
  ``rs-convert -D``). Recordings are made by the RealSense Viewer, ``rs.recorder`` /
  ``rs.config.enable_record_to_file``, or :func:`devices.realsense_record.write_recording`.

Every frame set holds one :class:`tracker.core.structures.Frame`: the RGB image, ``depth`` in uint16
millimetres registered to that image (0 = no reading), the colour camera's factory intrinsics,
the SDK timestamp in seconds and a frame index. A depth-only camera or recording (no colour
stream) gives a grey rendering of the depth as the image (near is bright, see
:data:`DEPTH_GREY_RANGE_MM`) so the RGB stages still see something; use ``frame.depth`` for depth.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import pyrealsense2 as rs

from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, Intrinsics

from devices._common import DeviceBase, Pacer
from tracker.core.errors import DeviceDisconnectedError, DeviceError, DeviceNotFoundError, RecordingError, UnsupportedSourceError

__all__ = [
    "RealSenseDevice",
    "RECORDING_EXTENSIONS",
    "DEPTH_GREY_RANGE_MM",
    "connected_serials",
    "depth_to_mm",
    "depth_to_grey",
    "intrinsics_from_rs",
]

log = logging.getLogger(__name__)

#: File extensions of RealSense recordings: ``.db3`` (ROS2, written by pyrealsense2 >= 2.58) and
#: ``.bag`` (ROS1, written by 2.57 and earlier; read only).
RECORDING_EXTENSIONS: Final = frozenset({".bag", ".db3"})

#: Depth range (mm) a depth-only source's grey image spans: NEAR is white, FAR and beyond are
#: black, holes (0) are black.
DEPTH_GREY_RANGE_MM: Final = (200.0, 2000.0)

#: A live camera gets this long (s) to deliver its first frame set (streams start slowly) before
#: it counts as not delivering; later frame sets get ``timeout_s``.
FIRST_FRAME_TIMEOUT_S: Final = 10.0

#: Frames the playback thread may queue ahead of the reader before it is made to wait.
_FEED_CAPACITY: Final = 4
#: Colour frames kept waiting for their depth partner, and depth frames kept as candidates.
_MAX_PENDING_COLOR: Final = 4
_MAX_PENDING_DEPTH: Final = 8

#: Colour formats an image can be made from, best first (the live camera is asked for rgb8).
_COLOR_FORMATS: Final = (rs.format.rgb8, rs.format.bgr8, rs.format.rgba8, rs.format.bgra8, rs.format.yuyv,
                         rs.format.uyvy, rs.format.y8)  # fmt: skip


def connected_serials() -> list[str]:
    """Serial numbers of the RealSense cameras connected now (empty without one)."""
    return [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]


def depth_to_mm(raw: np.ndarray, depth_scale: float) -> np.ndarray:
    """Raw z16 depth units ``(H, W)`` to uint16 millimetres: ``round(raw * depth_scale * 1000)``.

    Args:
        raw: uint16 depth in the sensor's units.
        depth_scale: metres per depth unit (0.001 on most D4xx cameras).

    Returns:
        a new uint16 ``(H, W)`` array in mm; 0 (no reading) stays 0, values beyond 65535 mm clip.
    """
    factor = float(depth_scale) * 1000.0
    if abs(factor - 1.0) < 1e-6:  # 1 mm units (stored as float32 0.001): an exact copy
        return np.array(raw, dtype=np.uint16, copy=True)
    mm = np.rint(np.asarray(raw, dtype=np.float64) * factor)
    return np.clip(mm, 0, 65535).astype(np.uint16)


def depth_to_grey(depth_mm: np.ndarray, near_far_mm: tuple[float, float] = DEPTH_GREY_RANGE_MM) -> np.ndarray:
    """A grey RGB uint8 ``(H, W, 3)`` rendering of depth in mm: near white, far black, holes black."""
    near, far = near_far_mm
    d = depth_mm.astype(np.float32)
    grey = np.clip((far - d) * (255.0 / (far - near)), 0.0, 255.0)
    grey[depth_mm == 0] = 0.0
    return cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2RGB)


def intrinsics_from_rs(intr: rs.intrinsics) -> Intrinsics:
    """The SDK's intrinsics as :class:`Intrinsics` (OpenCV distortion order k1, k2, p1, p2, k3).

    Brown-Conrady coefficients are OpenCV's and are kept; other distortion models with non-zero
    coefficients (inverse / modified Brown-Conrady, Kannala-Brandt) are not OpenCV's and are
    dropped with a warning (their images are near-rectified on D4xx colour sensors).
    """
    coeffs = tuple(float(c) for c in intr.coeffs)[:5]
    coeffs = coeffs + (0.0,) * (5 - len(coeffs))
    if intr.model == rs.distortion.none or not any(coeffs):
        coeffs = (0.0,) * 5
    elif intr.model != rs.distortion.brown_conrady:
        log.warning("RealSense intrinsics use the %s distortion model, which is not OpenCV's: ignoring its "
                    "coefficients %s (treating the image as undistorted)", intr.model, coeffs)  # fmt: skip
        coeffs = (0.0,) * 5
    return Intrinsics(float(intr.fx), float(intr.fy), float(intr.ppx), float(intr.ppy), int(intr.width),
                      int(intr.height), coeffs)  # fmt: skip


def _extrinsics_from_rs(ext: rs.extrinsics) -> Extrinsics:
    """SDK extrinsics (column-major rotation, metres) as :class:`Extrinsics` (mm)."""
    rotation = np.asarray(ext.rotation, dtype=np.float64).reshape(3, 3).T
    return Extrinsics(rotation, np.asarray(ext.translation, dtype=np.float64) * 1000.0)


def _same_intrinsics(a: rs.intrinsics, b: rs.intrinsics) -> bool:
    return (a.width, a.height, a.model) == (b.width, b.height, b.model) and np.allclose(
        [a.fx, a.fy, a.ppx, a.ppy, *a.coeffs], [b.fx, b.fy, b.ppx, b.ppy, *b.coeffs], rtol=0.0, atol=1e-4)


def _color_to_rgb(data: np.ndarray, fmt: rs.format) -> np.ndarray:
    """A colour frame's pixels as a new RGB uint8 ``(H, W, 3)`` array."""
    if fmt == rs.format.rgb8:
        return np.array(data, dtype=np.uint8, copy=True)
    if fmt == rs.format.bgr8:
        return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    if fmt == rs.format.rgba8:
        return cv2.cvtColor(data, cv2.COLOR_RGBA2RGB)
    if fmt == rs.format.bgra8:
        return cv2.cvtColor(data, cv2.COLOR_BGRA2RGB)
    if fmt == rs.format.yuyv:
        return cv2.cvtColor(data.reshape(data.shape[0], -1, 2), cv2.COLOR_YUV2RGB_YUYV)
    if fmt == rs.format.uyvy:
        return cv2.cvtColor(data.reshape(data.shape[0], -1, 2), cv2.COLOR_YUV2RGB_UYVY)
    if fmt == rs.format.y8:
        return cv2.cvtColor(data, cv2.COLOR_GRAY2RGB)
    raise UnsupportedSourceError(f"RealSense colour format {fmt} is not supported (use rgb8, bgr8, yuyv or y8)")


class _Pairer:
    """Pairs each colour frame with the depth frame nearest in time, in arrival (file) order.

    Items are ``(timestamp_ms, payload)``. With both streams a colour frame is released once a
    depth frame at or after its time has arrived (nothing nearer can come), when too many colour
    frames wait, or at the end; its partner is the nearest depth frame within ``tolerance_ms``,
    else None. With one stream every frame is released at once with None for the other.
    """

    def __init__(self, has_depth: bool, has_color: bool, tolerance_ms: float) -> None:
        self._both = has_depth and has_color
        self._has_color = has_color
        self._tolerance = tolerance_ms
        self._depth: deque[tuple[float, object]] = deque()
        self._color: deque[tuple[float, object]] = deque()
        self._ready: deque[tuple[object | None, object | None]] = deque()
        self.unpaired = 0  # colour frames released without depth

    def push_depth(self, ts: float, payload: object) -> None:
        if not self._both:
            self._ready.append((payload, None))
            return
        self._depth.append((ts, payload))
        while len(self._depth) > _MAX_PENDING_DEPTH:
            self._depth.popleft()
        self._release(final=False)

    def push_color(self, ts: float, payload: object) -> None:
        if not self._both:
            self._ready.append((None, payload))
            return
        self._color.append((ts, payload))
        self._release(final=False)

    def pop(self) -> tuple[object | None, object | None] | None:
        """The next ``(depth, colour)`` pair that is ready, or None."""
        return self._ready.popleft() if self._ready else None

    def finish(self) -> None:
        """The streams ended: release every waiting colour frame."""
        self._release(final=True)

    def _release(self, final: bool) -> None:
        while self._color:
            ts = self._color[0][0]
            later_depth = bool(self._depth) and self._depth[-1][0] >= ts
            if not (final or later_depth or len(self._color) > _MAX_PENDING_COLOR):
                return
            _, color = self._color.popleft()
            best = min(range(len(self._depth)), key=lambda i: abs(self._depth[i][0] - ts), default=None)
            if best is not None and abs(self._depth[best][0] - ts) <= self._tolerance:
                for _ in range(best):  # older depth frames are no nearer to any later colour frame
                    self._depth.popleft()
                self._ready.append((self._depth[0][1], color))
            else:
                self.unpaired += 1
                self._ready.append((None, color))


class _FrameFeed:
    """Frames from the SDK's threads to the reader, at most ``capacity`` queued while ``hold`` is on.

    While holding, a full feed makes the SDK thread wait (non-real-time playback then pauses
    reading the file: no frame is dropped, memory stays bounded). Holding must be off while the
    reader is inside an SDK call that waits for the playback thread (resume, stop), or both wait.
    After :meth:`close`, frames are dropped and waiting SDK threads return.
    """

    def __init__(self, capacity: int) -> None:
        self._items: deque[rs.frame] = deque()
        self._cond = threading.Condition()
        self._capacity = capacity
        self._hold = False
        self._closed = False

    def put(self, frame: rs.frame) -> None:
        """The SDK's frame callback (runs on an SDK thread)."""
        frame.keep()  # out of the SDK's frame pool, so held frames cannot starve it
        with self._cond:
            while self._hold and not self._closed and len(self._items) >= self._capacity:
                self._cond.wait(0.05)
            if not self._closed:
                self._items.append(frame)
                self._cond.notify_all()

    def get(self, timeout_s: float) -> rs.frame | None:
        """The oldest frame, waiting up to ``timeout_s``; None if none came."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout_s)
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def hold(self, on: bool) -> None:
        with self._cond:
            self._hold = on
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


class _Streams:
    """What :class:`RealSenseDevice` reads from: a live pipeline or a file's playback."""

    depth_profile: rs.video_stream_profile | None
    color_profile: rs.video_stream_profile | None
    depth_scale: float
    label: str

    def next(self) -> tuple[rs.frame | None, rs.frame | None] | None:
        """The next ``(depth, colour)`` frames (either may be None), or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _LiveStreams(_Streams):
    """A camera streaming through ``rs.pipeline`` (the SDK pairs depth and colour)."""

    def __init__(self, serial: str | None, width: int, height: int, fps: int, timeout_s: float) -> None:
        ctx = rs.context()
        devices = {d.get_info(rs.camera_info.serial_number): d for d in ctx.query_devices()}
        if not devices:
            raise DeviceNotFoundError(
                "no RealSense camera is connected: plug one into a USB 3 port (check it shows in "
                "`rs-enumerate-devices` or the RealSense Viewer), or play a recording with --source FILE.db3"
            )
        if serial is not None and serial not in devices:
            raise DeviceNotFoundError(f"no RealSense camera with serial number {serial}; connected: "
                                      f"{', '.join(sorted(devices))} (use realsense:SERIAL with one of those)")
        self.serial = serial if serial is not None else next(iter(devices))
        self.label = f"realsense:{self.serial}"
        self._ctx = ctx
        self._timeout_s = timeout_s
        self._first = True
        device = devices[self.serial]
        has_color = any(p.stream_type() == rs.stream.color for s in device.query_sensors()
                        for p in s.get_stream_profiles())  # fmt: skip
        self._pipeline = rs.pipeline(ctx)
        config = self._config(width, height, fps, has_color, any_depth_size=False)
        if not config.can_resolve(rs.pipeline_wrapper(self._pipeline)):
            # colour sets the image size; depth may come at another size (alignment resamples it)
            config = self._config(width, height, fps, has_color, any_depth_size=True)
            if not config.can_resolve(rs.pipeline_wrapper(self._pipeline)):
                raise UnsupportedSourceError(
                    f"{self.label} ({device.get_info(rs.camera_info.name)}) has no {width}x{height} @ {fps} FPS "
                    f"mode for depth and colour; its colour modes: {_modes(device, rs.stream.color)}; "
                    f"depth modes: {_modes(device, rs.stream.depth)}"
                )
        try:
            profile = self._pipeline.start(config)
        except RuntimeError as exc:
            raise DeviceNotFoundError(f"{self.label}: cannot start streaming ({exc}); close other programs "
                                      "using the camera (RealSense Viewer) or replug it") from exc  # fmt: skip
        try:
            self.depth_scale = profile.get_device().first_depth_sensor().get_depth_scale()
            self.depth_profile = profile.get_stream(rs.stream.depth).as_video_stream_profile()
            self.color_profile = profile.get_stream(rs.stream.color).as_video_stream_profile() if has_color else None
        except RuntimeError:
            self._pipeline.stop()
            raise

    def _config(self, width: int, height: int, fps: int, has_color: bool, any_depth_size: bool) -> rs.config:
        config = rs.config()
        config.enable_device(self.serial)
        if any_depth_size:
            config.enable_stream(rs.stream.depth, rs.format.z16, fps)
        else:
            config.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
        if has_color:
            config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        return config

    def next(self) -> tuple[rs.frame | None, rs.frame | None]:
        """The next frame set with a colour frame (when the camera has colour; depth may be missing)."""
        timeout = max(self._timeout_s, FIRST_FRAME_TIMEOUT_S) if self._first else self._timeout_s
        deadline = time.monotonic() + timeout
        while True:
            left_ms = int(max(deadline - time.monotonic(), 0.0) * 1000)
            try:
                ok, frames = self._pipeline.try_wait_for_frames(max(left_ms, 1))
            except RuntimeError as exc:
                raise DeviceDisconnectedError(f"{self.label}: streaming failed ({exc}); replug the camera") from exc
            if not ok:
                attached = self.serial in {d.get_info(rs.camera_info.serial_number) for d in self._ctx.query_devices()}
                why = "it is still attached: a USB or firmware stall" if attached else "it was unplugged"
                raise DeviceDisconnectedError(f"{self.label}: no frames for {timeout:.1f} s ({why}); replug the "
                                              "camera into a USB 3 port and start again")  # fmt: skip
            depth, color = frames.get_depth_frame(), frames.get_color_frame()
            if color or self.color_profile is None:  # the syncer may release a depth frame alone
                self._first = False
                return (depth if depth else None), (color if color else None)
            if time.monotonic() > deadline:
                raise DeviceDisconnectedError(f"{self.label}: depth frames but no colour frame for {timeout:.1f} s; "
                                              "replug the camera into a USB 3 port and start again")  # fmt: skip

    def close(self) -> None:
        try:
            self._pipeline.stop()
        except RuntimeError:  # already stopped, or the camera is gone
            pass


class _PlaybackStreams(_Streams):
    """A recording played by the SDK at the sensor level, not real time, every frame in file order.

    ``rs.pipeline`` is not used for playback: its syncer lost the first frame set and paired
    depth and colour one frame apart on recordings made with the software device (2.59). Here
    the recorded streams go into a :class:`_FrameFeed` and :class:`_Pairer` pairs them by time.
    """

    def __init__(self, path: Path, stall_timeout_s: float) -> None:
        self.label = path.name
        self._path = path
        self._stall_timeout_s = stall_timeout_s
        self._sensors: list[rs.sensor] = []
        self._feed = _FrameFeed(_FEED_CAPACITY)
        self._ended = False
        try:
            device = rs.context().load_device(str(path))
        except RuntimeError as exc:
            raise RecordingError(f"{path} is not a RealSense recording the SDK can read ({exc}); check it is a "
                                 f"complete .db3 or .bag file from the RealSense Viewer or rs.recorder "
                                 f"(pyrealsense2 {rs.__version__} plays both)") from exc  # fmt: skip
        try:
            self._playback = device.as_playback()
            self._playback.set_real_time(False)
            self._setup(device)
        except BaseException as exc:
            self.close()
            if isinstance(exc, RuntimeError) and not isinstance(exc, DeviceError):
                raise RecordingError(f"{path}: cannot play the recording ({exc})") from exc
            raise
        periods = [1000.0 / p.fps() for p in (self.depth_profile, self.color_profile) if p is not None and p.fps() > 0]
        self._pairer = _Pairer(self.depth_profile is not None, self.color_profile is not None,
                               tolerance_ms=max(periods, default=50.0) + 1.0)  # fmt: skip

    def _setup(self, device: rs.device) -> None:
        depth: tuple[rs.sensor, rs.video_stream_profile] | None = None
        color: tuple[rs.sensor, rs.video_stream_profile] | None = None
        found = []
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                found.append(f"{profile.stream_name()} {profile.format()}")
                if not profile.is_video_stream_profile():
                    continue
                kind, fmt = profile.stream_type(), profile.format()
                if depth is None and kind == rs.stream.depth and fmt == rs.format.z16:
                    depth = sensor, profile.as_video_stream_profile()
                elif kind == rs.stream.color and fmt in _COLOR_FORMATS and (
                        color is None or _COLOR_FORMATS.index(fmt) < _COLOR_FORMATS.index(color[1].format())):
                    color = sensor, profile.as_video_stream_profile()  # fmt: skip
        if depth is None and color is None:
            raise RecordingError(f"{self._path} holds no z16 depth or RGB colour stream (streams: "
                                 f"{', '.join(found) or 'none'}); nothing to play")  # fmt: skip
        self.depth_profile = depth[1] if depth else None
        self.color_profile = color[1] if color else None
        self.depth_scale = _depth_units(depth[0]) if depth else 0.001
        chosen: dict[int, tuple[rs.sensor, list[rs.stream_profile]]] = {}
        for sensor, profile in (s for s in (depth, color) if s is not None):
            chosen.setdefault(id(sensor), (sensor, []))[1].append(profile)
        for sensor, profiles in chosen.values():
            sensor.open(profiles)
            self._sensors.append(sensor)
        # paused while the sensors start, so that frames of a sensor started later are not
        # dropped; the feed does not hold the SDK thread during resume (resume waits for it)
        self._playback.pause()
        for sensor in self._sensors:
            sensor.start(self._feed.put)
        self._playback.resume()
        self._feed.hold(True)

    def next(self) -> tuple[rs.frame | None, rs.frame | None] | None:
        last_frame = time.monotonic()
        while True:
            pair = self._pairer.pop()
            if pair is not None or self._ended:
                return pair  # type: ignore[return-value]
            frame = self._feed.get(0.05)
            if frame is not None:
                self._push(frame)
                last_frame = time.monotonic()
            elif self._playback.current_status() == rs.playback_status.stopped:
                self._finish()
            elif time.monotonic() - last_frame > self._stall_timeout_s:
                raise RecordingError(f"{self._path}: playback stalled (no frame for {self._stall_timeout_s:.0f} s "
                                     "before the end of the file); the recording may be truncated")  # fmt: skip

    def _push(self, frame: rs.frame) -> None:
        kind = frame.get_profile().stream_type()
        if kind == rs.stream.depth:
            self._pairer.push_depth(frame.get_timestamp(), frame)
        else:
            self._pairer.push_color(frame.get_timestamp(), frame)

    def _finish(self) -> None:
        """End of file: stop the sensors, take the frames they still deliver, and release every pair."""
        self._feed.hold(False)
        self._stop_sensors()
        while (frame := self._feed.get(0.0)) is not None:
            self._push(frame)
        self._pairer.finish()
        if self._pairer.unpaired:
            log.warning("%s: %d colour frame(s) had no depth frame within a frame period; their depth is None",
                        self.label, self._pairer.unpaired)  # fmt: skip
        self._ended = True

    def _stop_sensors(self) -> None:
        for sensor in self._sensors:
            try:
                sensor.stop()
            except RuntimeError:  # the playback stopped it at the end of the file
                pass

    def close(self) -> None:
        self._feed.close()
        self._stop_sensors()
        for sensor in self._sensors:
            try:
                sensor.close()
            except RuntimeError:
                pass
        self._sensors = []


def _depth_units(sensor: rs.sensor) -> float:
    """Metres per depth unit of a (recorded) depth sensor; 1 mm if the recording does not say."""
    if sensor.supports(rs.option.depth_units):
        return float(sensor.get_option(rs.option.depth_units))
    log.warning("%s: the recording does not state the depth units; assuming 1 mm", sensor.name)
    return 0.001


def _modes(device: rs.device, stream: rs.stream) -> str:
    modes = sorted({(p.as_video_stream_profile().width(), p.as_video_stream_profile().height(), p.fps())
                    for s in device.query_sensors() for p in s.get_stream_profiles()
                    if p.stream_type() == stream and p.is_video_stream_profile()})  # fmt: skip
    return ", ".join(f"{w}x{h}@{f}" for w, h, f in modes) or "none"


class _Aligner:
    """Depth resampled into the colour image with ``rs.align`` (for separately delivered frames)."""

    def __init__(self) -> None:
        self._align = rs.align(rs.stream.color)
        self._pair: tuple[rs.frame, rs.frame] | None = None
        self._out = rs.frame_queue(1, True)
        self._compose = rs.processing_block(self._make_frameset)
        self._compose.start(self._out)

    def _make_frameset(self, frame: rs.frame, source: rs.frame_source) -> None:
        assert self._pair is not None
        source.frame_ready(source.allocate_composite_frame(list(self._pair)))

    def __call__(self, depth: rs.frame, color: rs.frame) -> rs.depth_frame:
        self._pair = (depth, color)
        try:
            self._compose.invoke(depth)
            ok, frameset = self._out.try_wait_for_frame(2000)
        finally:
            self._pair = None
        if not ok:
            raise RuntimeError("rs.align: composing the depth and colour frames failed")
        return self._align.process(frameset.as_frameset()).get_depth_frame()


class RealSenseDevice(DeviceBase):
    """A RealSense camera, or a RealSense recording played back.

    Args:
        serial: serial number of the camera (None: the first one connected). Not with ``path``.
        path: a recording (``.db3`` or ``.bag``) to play instead of a camera.
        width, height: camera image size in pixels (colour, and depth where it has that mode).
        fps: camera frame rate in frames per second.
        realtime: recordings only: release frames at their recorded speed (by their timestamps,
            from the first read) instead of as fast as they decode. Every frame is delivered either
            way: the SDK plays non-real time and this device paces.
        loop: recordings only: play again from the start at the end (indices and timestamps keep
            increasing) instead of ending the stream.
        timeout_s: camera: seconds without a frame set before :class:`DeviceDisconnectedError`
            (the first frame set gets at least :data:`FIRST_FRAME_TIMEOUT_S`); recording: seconds
            without a frame before the end of the file before :class:`RecordingError`.

    ``live`` is True for a camera (the loop keeps the newest frame) and False for a recording
    (every frame is processed). After :meth:`open`:

    * ``intrinsics``: :class:`Intrinsics` of the delivered images (the colour stream's; the depth
      stream's for depth-only sources);
    * ``depth_intrinsics``: of the raw depth stream before alignment (None without depth);
    * ``depth_to_color``: :class:`Extrinsics` from the depth to the colour camera frame (mm), None
      unless both streams exist;
    * ``depth_scale``: metres per raw depth unit; ``frame.depth`` is already in mm;
    * ``aligned``: True when depth is resampled into the colour image (False when the two streams
      already share intrinsics and pose, as in recordings made from registered RGB-D);
    * ``has_color`` / ``has_depth``, ``fps`` (of the image stream), ``serial`` (cameras).

    Frame timestamps are the SDK's (ms) in seconds; frame indices count from 0 (a camera's follow
    its frame counter, so gaps mean dropped frames; a recording's count delivered frames).
    """

    def __init__(self, serial: str | None = None, *, path: str | os.PathLike[str] | None = None, width: int = 640,
                 height: int = 480, fps: int = 30, realtime: bool = False, loop: bool = False,
                 timeout_s: float = 3.0) -> None:  # fmt: skip
        if serial is not None and path is not None:
            raise ValueError("give a camera serial number or a recording path, not both")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.serial = serial
        self.path = Path(path) if path is not None else None
        self.live = self.path is None
        self.name = f"realsense:{serial}" if self.live and serial else ("realsense" if self.live else self.path.name)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.realtime = realtime
        self.loop = loop
        self.timeout_s = float(timeout_s)
        self.intrinsics: Intrinsics | None = None
        self.depth_intrinsics: Intrinsics | None = None
        self.depth_to_color: Extrinsics | None = None
        self.depth_scale = 0.001
        self.aligned = False
        self.has_color = self.has_depth = False
        self._streams: _Streams | None = None
        self._camera: Camera | None = None
        self._aligner: _Aligner | None = None
        self._pending: tuple[rs.frame | None, rs.frame | None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._index = 0
        self._pass_frames = 0  # frames of the current pass through a recording
        self._offset = 0.0  # seconds added to a recording's clock in later passes (loop)
        self._last_ts = -math.inf
        self._first_number: int | None = None
        self._ended = False
        self._pacer = Pacer()

    def open(self) -> None:
        """Start the camera, or open the recording and decode its first frames.

        Raises:
            DeviceNotFoundError: no camera connected / none with ``serial`` (the message lists
                those connected), the camera cannot start, or no file at ``path``.
            UnsupportedSourceError: the camera has no such mode, or ``path`` is not ``.db3``/``.bag``.
            RecordingError: the file is empty, corrupt, not a RealSense recording, or holds no frames.
        """
        if self._streams is not None:
            return
        if self.path is None:
            streams: _Streams = _LiveStreams(self.serial, self.width, self.height, self.fps, self.timeout_s)
            self.serial = streams.serial  # type: ignore[attr-defined]
            self.name = streams.label
        else:
            streams = self._open_recording()
        self._streams = streams
        self._reset()
        try:
            self._describe(streams)
            if self.path is not None:
                first = self._next_pair()
                if first is None:
                    raise RecordingError(f"{self.path} holds no frames: its streams are declared but nothing was "
                                         "recorded; record it again")  # fmt: skip
                self._pending = first
        except BaseException:
            self.close()
            raise
        log.info("%s: %s %dx%d @ %d FPS, depth scale %.6g m%s", self.name,
                 "+".join(k for k, on in (("colour", self.has_color), ("depth", self.has_depth)) if on),
                 self.intrinsics.width, self.intrinsics.height, self.fps, self.depth_scale,
                 ", depth aligned to colour" if self.aligned else "")  # fmt: skip

    def _open_recording(self) -> _Streams:
        path = self.path
        assert path is not None
        if not path.exists():
            raise DeviceNotFoundError(f"no RealSense recording at {path}: check the path")
        if path.is_dir():
            raise DeviceNotFoundError(f"{path} is a folder, not a RealSense recording (.db3 or .bag file)")
        if path.suffix.lower() not in RECORDING_EXTENSIONS:
            raise UnsupportedSourceError(f"{path}: RealSense recordings end in .db3 or .bag, not '{path.suffix}'")
        if path.stat().st_size == 0:
            raise RecordingError(f"{path} is empty (0 bytes): the recording was not written; record it again")
        return _PlaybackStreams(path, self.timeout_s)

    def _describe(self, streams: _Streams) -> None:
        """Camera parameters from the stream profiles."""
        depth, color = streams.depth_profile, streams.color_profile
        self.has_depth, self.has_color = depth is not None, color is not None
        self.depth_scale = streams.depth_scale
        image_profile = color if color is not None else depth
        assert image_profile is not None
        self.fps = image_profile.fps()
        self.intrinsics = intrinsics_from_rs(image_profile.get_intrinsics())
        self.depth_intrinsics = intrinsics_from_rs(depth.get_intrinsics()) if depth is not None else None
        self._camera = Camera(self.name, self.intrinsics)
        self.depth_to_color, self.aligned, self._aligner = None, False, None
        if depth is None or color is None:
            return
        try:
            ext = depth.get_extrinsics_to(color)
        except RuntimeError:
            log.warning("%s: no depth-to-colour extrinsics in the source; assuming the two share one pose", self.name)
            ext = rs.extrinsics()
            ext.rotation, ext.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
        self.depth_to_color = _extrinsics_from_rs(ext)
        registered = _same_intrinsics(depth.get_intrinsics(), color.get_intrinsics()) and np.allclose(
            self.depth_to_color.R, np.eye(3), atol=1e-6) and np.allclose(self.depth_to_color.t, 0.0, atol=1e-3)
        if not registered:
            self.aligned = True
            self._aligner = _Aligner()

    def read(self) -> FrameSet | None:
        """The next frame set; None at the end of a recording (with ``loop``, never).

        Raises:
            RuntimeError: the device is not open.
            DeviceDisconnectedError: the camera delivered nothing for ``timeout_s``.
            RecordingError: the recording stalled or could not be decoded.
        """
        if self._streams is None:
            raise self._not_open()
        pair = self._next_pair()
        if pair is None:
            return None
        frame = self._frame(*pair)
        if self.realtime and not self.live:
            self._pacer.wait(frame.timestamp)
        self._index = frame.index + 1
        self._pass_frames += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        """Stop the camera / playback and release it; safe to call more than once."""
        streams, self._streams = self._streams, None
        self._pending = None
        if streams is not None:
            streams.close()

    def _next_pair(self) -> tuple[rs.frame | None, rs.frame | None] | None:
        assert self._streams is not None
        if self._ended:
            return None
        if self._pending is not None:
            pair, self._pending = self._pending, None
            return pair
        try:
            pair = self._streams.next()
        except RuntimeError as exc:
            if isinstance(exc, DeviceError):
                raise
            if self.live:
                raise DeviceDisconnectedError(f"{self.name}: streaming failed ({exc}); replug the camera") from exc
            raise RecordingError(f"{self.name}: playback failed ({exc})") from exc
        if pair is not None:
            return pair
        log.info("%s: end of recording after %d frames", self.name, self._pass_frames)
        if self.loop and self._pass_frames > 0:
            self._streams.close()
            self._streams = self._open_recording()
            self._pass_frames = 0
            self._offset = math.nan  # set from the first frame of the new pass
            return self._streams.next()
        self._ended = True
        return None

    def _frame(self, depth: rs.frame | None, color: rs.frame | None) -> Frame:
        assert self._camera is not None
        depth_mm = None
        if depth is not None:
            if color is not None and self._aligner is not None:
                depth = self._aligner(depth, color)
            depth_mm = depth_to_mm(np.asanyarray(depth.get_data()), self.depth_scale)
        if color is not None:
            image = _color_to_rgb(np.asanyarray(color.get_data()), color.get_profile().format())
        else:
            assert depth_mm is not None
            image = depth_to_grey(depth_mm)
        if depth_mm is not None and depth_mm.shape != image.shape[:2]:
            raise RecordingError(f"{self.name}: depth {depth_mm.shape[::-1]} does not match the image "
                                 f"{image.shape[1::-1]} and the streams are not aligned")  # fmt: skip
        driver = color if color is not None else depth
        assert driver is not None
        raw_ts = driver.get_timestamp() / 1000.0
        if math.isnan(self._offset):  # first frame of a looped pass: continue after the last one
            self._offset = self._last_ts + 1.0 / max(self.fps, 1) - raw_ts
        timestamp = raw_ts + self._offset
        self._last_ts = timestamp
        return Frame(image, timestamp, self._frame_index(driver), self._camera, depth_mm)

    def _frame_index(self, driver: rs.frame) -> int:
        if not self.live:
            return self._index
        number = int(driver.get_frame_number())
        if self._first_number is None:
            self._first_number = number
        return max(number - self._first_number, self._index)

