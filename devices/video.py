"""Playback of a video file through OpenCV (FFmpeg backend): every frame, in order."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np

from tracker.core.structures import Frame, FrameSet, Intrinsics

from devices._common import CameraForSize, DeviceBase, Pacer, to_rgb
from tracker.core.errors import DeviceNotFoundError, RecordingError, UnsupportedSourceError

__all__ = ["VideoFileDevice", "VIDEO_EXTENSIONS"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

#: Frame rate assumed for timing when a file does not state a usable one, frames per second.
FALLBACK_FPS = 30.0


class VideoFileDevice(DeviceBase):
    """A recorded video played back frame by frame (``live`` is False: no frame is skipped).

    Args:
        path: the video file (one of :data:`VIDEO_EXTENSIONS`).
        realtime: if True, :meth:`read` sleeps so frames come at the recorded speed, counted from
            the first read; if False, as fast as they decode.
        intrinsics: calibration of the camera that recorded it (rescaled if the video's size
            differs), or None for a default from ``hfov_deg`` flagged approximate.
        hfov_deg: horizontal field of view in degrees assumed without calibration.
        loop: start again at the end instead of ending; indices and timestamps keep increasing.

    Frame timestamps are the file's own clock in seconds (``CAP_PROP_POS_MSEC``; ``index / fps``
    where that is unusable), strictly increasing. After :meth:`open`, ``fps`` is the stated frame
    rate (frames per second) and ``frame_count`` the stated number of frames (approximate for
    some containers; 0 when unknown).
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        realtime: bool = False,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = 60.0,
        loop: bool = False,
    ) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.realtime = realtime
        self.loop = loop
        self.fps = 0.0
        self.frame_count = 0
        self._camera = CameraForSize(self.name, intrinsics, hfov_deg)
        self._cap: cv2.VideoCapture | None = None
        self._pending: tuple[np.ndarray, float] | None = None  # first frame, decoded by open()
        self._reset()

    def _reset(self) -> None:
        self._index = 0  # next frame index over all passes
        self._pass_index = 0  # next frame index within the current pass through the file
        self._passes = 0
        self._offset = 0.0  # seconds added to the file's clock in later passes (loop)
        self._last_ts = -math.inf
        self._clock_warned = False
        self._ended = False
        self._pacer = Pacer()

    def open(self) -> None:
        """Open the file and decode its first frame.

        Raises:
            DeviceNotFoundError: no file at ``path``.
            UnsupportedSourceError: the extension is not a video one.
            RecordingError: the file is empty, unreadable or cannot be decoded.
        """
        if self._cap is not None:
            return
        if not self.path.exists():
            raise DeviceNotFoundError(f"no video file at {self.path}: check the path")
        if self.path.is_dir():
            raise DeviceNotFoundError(
                f"{self.path} is a folder, not a video file (for a folder of images use the image-folder source)"
            )
        if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise UnsupportedSourceError(
                f"{self.path}: '{self.path.suffix}' is not a video extension handtrack reads "
                f"({' '.join(sorted(VIDEO_EXTENSIONS))})"
            )
        if self.path.stat().st_size == 0:
            raise RecordingError(f"{self.path} is empty (0 bytes): the recording was not written; record it again")
        if not os.access(self.path, os.R_OK):
            raise RecordingError(f"{self.path} is not readable: check its permissions")
        self._cap, self._pending = self._open_capture()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        if math.isfinite(fps) and 0 < fps <= 1000:
            self.fps = fps
        else:
            log.warning("%s: no usable frame rate in the file (%s), assuming %.0f fps", self.name, fps, FALLBACK_FPS)
            self.fps = FALLBACK_FPS
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        self._reset()
        log.info("%s: %dx%d, %.2f fps, ~%d frames", self.name, self._pending[0].shape[1],
                 self._pending[0].shape[0], self.fps, self.frame_count)  # fmt: skip

    def read(self) -> FrameSet | None:
        """The next frame, or None at the end of the file (with ``loop``, never).

        Raises:
            RuntimeError: the device is not open.
        """
        if self._cap is None:
            raise self._not_open()
        decoded = self._next()
        if decoded is None:
            return None
        image, pos_msec = decoded
        timestamp = self._timestamp(pos_msec)
        if self.realtime:
            self._pacer.wait(timestamp)
        rgb = to_rgb(image)
        frame = Frame(rgb, timestamp, self._index, self._camera(rgb.shape[1], rgb.shape[0]))
        self._index += 1
        self._pass_index += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        """Release the file; safe to call more than once."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None

    def _open_capture(self) -> tuple[cv2.VideoCapture, tuple[np.ndarray, float]]:
        cap = cv2.VideoCapture(str(self.path))
        first = self._decode(cap) if cap.isOpened() else None
        if first is None:
            cap.release()
            raise RecordingError(
                f"cannot decode {self.path}: the file is corrupt, truncated or in a codec OpenCV's FFmpeg "
                "cannot read; check it plays elsewhere or re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4)"
            )
        return cap, first

    @staticmethod
    def _decode(cap: cv2.VideoCapture) -> tuple[np.ndarray, float] | None:
        ok, image = cap.read()
        if not ok or image is None:
            return None
        return image, cap.get(cv2.CAP_PROP_POS_MSEC)

    def _next(self) -> tuple[np.ndarray, float] | None:
        assert self._cap is not None
        if self._ended:
            return None
        if self._pending is not None:
            decoded, self._pending = self._pending, None
            return decoded
        decoded = self._decode(self._cap)
        if decoded is not None:
            return decoded
        self._report_end()
        if self.loop and self._pass_index > 0:
            self._cap.release()
            self._cap, decoded = self._open_capture()
            self._passes += 1
            self._pass_index = 0
            self._offset = self._last_ts + 1.0 / self.fps
            return decoded
        self._ended = True
        return None

    def _report_end(self) -> None:
        missing = self.frame_count - self._pass_index
        if self._passes == 0 and missing > max(2, self.frame_count // 100):
            log.warning("%s: decoding stopped at frame %d of ~%d (truncated or corrupt file?); ending the stream there",
                        self.name, self._pass_index, self.frame_count)  # fmt: skip
        else:
            log.info("%s: end of file after %d frames", self.name, self._pass_index)

    def _timestamp(self, pos_msec: float) -> float:
        """Seconds on the file's clock (plus the loop offset), strictly increasing."""
        t = self._offset + pos_msec / 1000.0
        if not (math.isfinite(pos_msec) and pos_msec >= 0 and t > self._last_ts):
            if not self._clock_warned:
                log.warning("%s: unusable frame time %.3f ms at frame %d; timing frames by index / fps from here",
                            self.name, pos_msec, self._pass_index)  # fmt: skip
                self._clock_warned = True
            t = max(self._offset + self._pass_index / self.fps, self._last_ts + 1.0 / self.fps)
        self._last_ts = t
        return t
