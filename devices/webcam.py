"""A live RGB camera through OpenCV's ``VideoCapture`` (V4L2 on Linux, MSMF/DirectShow, AVFoundation)."""

from __future__ import annotations

import glob
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from devices._common import CameraForSize, DeviceBase, to_rgb
from tracker.core.errors import ConfigError, DeviceDisconnectedError, DeviceNotFoundError
from tracker.core.structures import Frame, FrameSet, Intrinsics

__all__ = ["WebcamDevice"]

log = logging.getLogger(__name__)

#: A failed grab is retried this many times, ``RETRY_WAIT_S`` apart (~0.5 s in all), before the
#: camera counts as disconnected.
READ_RETRIES = 4
RETRY_WAIT_S = 0.125


class WebcamDevice(DeviceBase):
    """A webcam (or any live OpenCV capture source).

    Args:
        index_or_path: camera index (``0`` is the first camera), or a device path
            (``/dev/video2``), URL or other string OpenCV's ``VideoCapture`` accepts.
        width, height: requested image size in pixels; the camera may give another one (see
            ``actual_width`` / ``actual_height`` after :meth:`open`).
        fps: requested frame rate in frames per second.
        intrinsics: calibration of this camera (rescaled if the delivered size differs), or None
            for a default from ``hfov_deg`` flagged approximate.
        hfov_deg: horizontal field of view in degrees assumed without calibration.

    Frames carry RGB images, ``time.monotonic()`` seconds taken when the frame was grabbed, and
    indices counting delivered frames from 0. ``live`` is True: readers keep only the newest frame.

    A blocking read is bounded by the backend's own timeout (V4L2: 10 s); a failed read is retried
    for about 0.5 s before :class:`DeviceDisconnectedError` is raised. OpenCV's own log lines about
    a camera it cannot open (``[ WARN:0@...] global cap_v4l.cpp ... can't open camera by index``)
    are silenced while the camera is opened, unless this module logs at DEBUG: :meth:`open` raises
    :class:`DeviceNotFoundError` with the devices present instead.

    Raises:
        ConfigError: ``fps`` is not a positive, finite number.
    """

    live = True

    def __init__(
        self,
        index_or_path: int | str,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = 60.0,
    ) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"webcam:{index_or_path}: the frame rate to request (--fps) must be a positive number "
                              f"of frames per second, got {fps}")  # fmt: skip
        self.source = index_or_path
        self.name = f"webcam:{index_or_path}"
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.actual_width = 0
        self.actual_height = 0
        self.actual_fps = 0.0
        self._camera = CameraForSize(self.name, intrinsics, hfov_deg)
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def open(self) -> None:
        """Open the camera, request size and rate, and grab one frame to check it delivers.

        Raises:
            DeviceNotFoundError: nothing can be opened at ``index_or_path``, or it opened but
                delivers no frames.
        """
        if self._cap is not None:
            return
        with _opencv_log_silenced(not log.isEnabledFor(logging.DEBUG)):
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise DeviceNotFoundError(self._not_found_message())
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise DeviceNotFoundError(
                f"{self.name} opened but delivered no frame: close other programs using the camera "
                "(video calls, browsers) or try another --source webcam:N"
            )
        self.actual_height, self.actual_width = first.shape[:2]
        reported_fps = cap.get(cv2.CAP_PROP_FPS)
        self.actual_fps = reported_fps if math.isfinite(reported_fps) and reported_fps > 0 else 0.0
        self._report_settings()
        self._cap, self._index = cap, 0

    def read(self) -> FrameSet:
        """The next frame from the camera (blocks until the camera delivers it).

        Raises:
            DeviceDisconnectedError: the camera stopped delivering frames.
            RuntimeError: the device is not open.
        """
        if self._cap is None:
            raise self._not_open()
        for attempt in range(READ_RETRIES + 1):
            if self._cap.grab():
                timestamp = time.monotonic()
                ok, image = self._cap.retrieve()
                if ok and image is not None:
                    rgb = to_rgb(image)
                    frame = Frame(rgb, timestamp, self._index, self._camera(rgb.shape[1], rgb.shape[0]))
                    self._index += 1
                    return FrameSet.single(frame)
            if attempt < READ_RETRIES:
                time.sleep(RETRY_WAIT_S)
        raise DeviceDisconnectedError(
            f"{self.name} stopped delivering frames ({READ_RETRIES + 1} failed reads over "
            f"{READ_RETRIES * RETRY_WAIT_S:.1f} s, after {self._index} frames): check the cable/USB "
            "connection and that no other program took the camera, then restart"
        )

    def close(self) -> None:
        """Release the camera; safe to call more than once."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _report_settings(self) -> None:
        got = (self.actual_width, self.actual_height)
        if got != (self.width, self.height):
            log.warning("%s: requested %dx%d, camera delivers %dx%d", self.name, self.width, self.height, *got)
        if self.actual_fps == 0.0:
            log.warning("%s: camera does not report its frame rate (requested %.1f fps)", self.name, self.fps)
        elif abs(self.actual_fps - self.fps) > 0.5:
            log.warning("%s: requested %.1f fps, camera reports %.1f fps", self.name, self.fps, self.actual_fps)
        log.info("%s: %dx%d at %.1f fps", self.name, *got, self.actual_fps)

    def _not_found_message(self) -> str:
        present = sorted(glob.glob("/dev/video*"))
        hint = f"devices present: {', '.join(present)}" if present else "no /dev/video* devices found"
        if isinstance(self.source, int):
            return (
                f"no camera at index {self.source}: OpenCV could not open it ({hint}); try another "
                f"--source webcam:M / check `ls /dev/video*` and that no other program is using the camera"
            )
        return (
            f"cannot open camera {self.source!r} ({hint}): check the device path or URL "
            "(`ls /dev/video*`) and that no other program is using the camera"
        )


@contextmanager
def _opencv_log_silenced(silence: bool = True) -> Iterator[None]:
    """While active (and ``silence``), OpenCV's own logging is off (process-wide), then restored.

    Opening a camera that is absent makes every capture backend OpenCV tries log its failure
    (V4L2, FFmpeg, Orbbec), several lines on stderr that :meth:`WebcamDevice.open` replaces with
    one :class:`DeviceNotFoundError`.
    """
    if not silence:
        yield
        return
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)
