"""Pieces shared by the RGB adapters (webcam, video file, image folder).

* :class:`DeviceBase`: the context-manager half of the :class:`~devices.base.Device` protocol and
  the "is it open?" check.
* :class:`CameraForSize`: which intrinsics a frame of a given size gets (given ones, rescaled when
  the image size differs, or a field-of-view default flagged approximate).
* :class:`Pacer`: sleeps so that playback runs at the recorded speed.
* :class:`FolderPlayback`: the folder sources (images, NYU depth): a listing played in order at a
  fixed rate, paced, optionally looped.
* :func:`to_rgb`: OpenCV's BGR / grey / BGRA images to the pipeline's RGB ``uint8`` ``(H, W, 3)``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from tracker.core.errors import ConfigError, DeviceNotFoundError
from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics

__all__ = ["DeviceBase", "CameraForSize", "Pacer", "FolderPlayback", "to_rgb"]

log = logging.getLogger(__name__)


class DeviceBase:
    """Base of the adapters: ``with device:`` calls ``open()`` then ``close()``.

    Subclasses set ``name`` and ``live`` and implement ``open``, ``read`` and ``close``
    (``close`` must be safe to call more than once).
    """

    name: str
    live: bool

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> FrameSet | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _not_open(self) -> RuntimeError:
        """The error for ``read()`` on a device that is not open (a programming error)."""
        return RuntimeError(f"{type(self).__name__} {self.name!r} is not open: call open() first or use `with device:`")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class CameraForSize:
    """The :class:`Camera` for frames of a given size, cached per size.

    Args:
        name: camera name (the device's name).
        intrinsics: calibrated intrinsics, or None for the default from ``hfov_deg``. When a frame's
            size differs from ``intrinsics.width`` x ``intrinsics.height`` they are rescaled to it
            (logged once per size; a warning when the aspect ratio changes, since a crop cannot be
            corrected by scaling).
        hfov_deg: horizontal field of view in degrees assumed without calibration.

    Raises:
        ValueError: ``hfov_deg`` outside (1, 179) degrees.
    """

    def __init__(self, name: str, intrinsics: Intrinsics | None, hfov_deg: float) -> None:
        if intrinsics is None:
            Intrinsics.from_fov(2, 2, hfov_deg)  # validates hfov_deg now rather than at the first frame
        self._name = name
        self._given = intrinsics
        self._hfov_deg = hfov_deg
        self._cache: dict[tuple[int, int], Camera] = {}

    def __call__(self, width: int, height: int) -> Camera:
        """The camera for an image of ``width`` x ``height`` pixels."""
        camera = self._cache.get((width, height))
        if camera is None:
            camera = Camera(self._name, self._intrinsics(width, height))
            self._cache[(width, height)] = camera
        return camera

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        given = self._given
        if given is None:
            log.info("%s: no calibration, assuming a %.0f deg horizontal field of view for %dx%d "
                     "(metric 3D will be approximate)", self._name, self._hfov_deg, width, height)  # fmt: skip
            return Intrinsics.from_fov(width, height, self._hfov_deg)
        if (given.width, given.height) == (width, height):
            return given
        if abs(given.width / given.height - width / height) > 0.01:
            log.warning("%s: intrinsics are for %dx%d but the image is %dx%d (another aspect ratio): "
                        "scaling them anyway; calibrate at this resolution for metric accuracy",
                        self._name, given.width, given.height, width, height)  # fmt: skip
        else:
            log.info("%s: scaling intrinsics from %dx%d to the image size %dx%d",
                     self._name, given.width, given.height, width, height)  # fmt: skip
        return given.scaled_to(width, height)


class Pacer:
    """Sleeps so that frames are released at their recorded speed, relative to the first one.

    ``wait(t)`` for the first timestamp returns at once and anchors the clock; later calls sleep
    until ``t - t_first`` seconds have passed since then (no busy waiting; a late caller is not
    made to wait).
    """

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (wall clock, media time) in seconds

    def wait(self, timestamp: float) -> None:
        """Block until the frame with ``timestamp`` (seconds, media time) is due."""
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, timestamp)
            return
        wall0, media0 = self._anchor
        delay = wall0 + (timestamp - media0) - now
        if delay > 0:
            time.sleep(delay)


class FolderPlayback(DeviceBase):
    """Base of the folder sources: the files of a folder played in a fixed order at ``fps``.

    Frame ``i`` (counted over all passes) is file ``i mod n`` of the listing and has timestamp
    ``i / fps`` seconds, so indices and timestamps keep rising when the folder loops.

    Subclasses set ``name`` and implement :meth:`_list` (the files in playback order) and
    :meth:`_frame` (decode one).

    Args:
        path: the folder.
        fps: frames per second of the playback clock; must be positive and finite.
        realtime: if True, :meth:`read` sleeps so frames come at ``fps``; if False, as fast as they load.
        loop: start again at the first file after the last one instead of ending.
        kind: what the folder is, for messages ("image folder").
        unit: what its files are, for the log ("images").

    Raises:
        ConfigError: ``fps`` is not a positive, finite number.
    """

    live = False

    def __init__(self, path: str | os.PathLike[str], fps: float, realtime: bool, loop: bool, kind: str = "folder",
                 unit: str = "files") -> None:  # fmt: skip
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"{kind} {path}: the playback rate (--fps) must be a positive number of frames "
                              f"per second, got {fps}")  # fmt: skip
        self.kind = kind
        self.unit = unit
        self.path = Path(path)
        self.fps = float(fps)
        self.realtime = realtime
        self.loop = loop
        self.files: list[Path] = []
        self._open = False
        self._index = 0
        self._pacer = Pacer()

    @property
    def frame_count(self) -> int:
        """Files in one pass through the folder (0 before :meth:`open`)."""
        return len(self.files)

    def _list(self) -> list[Path]:
        """The files to play, in order. Raises RecordingError when there are none."""
        raise NotImplementedError

    def _frame(self, file: Path, index: int, timestamp: float) -> Frame:
        """Decode ``file`` as frame ``index`` at ``timestamp`` s. Raises RecordingError (naming it)."""
        raise NotImplementedError

    def open(self) -> None:
        """List the files.

        Raises:
            DeviceNotFoundError: no folder at ``path``.
            RecordingError: the folder holds nothing to play.
        """
        if self._open:
            return
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "does not exist"
            raise DeviceNotFoundError(f"{self.kind} {self.path} {what}: check the path")
        self.files = self._list()
        self._index = 0
        self._pacer = Pacer()
        self._open = True
        log.info("%s: %d %s at %.2f fps%s", self.name, len(self.files), self.unit, self.fps,
                 ", looping" if self.loop else "")  # fmt: skip

    def read(self) -> FrameSet | None:
        """The next frame, or None after the last file (with ``loop``, never).

        Raises:
            RecordingError / UnsupportedSourceError: a file cannot be decoded (the message names it).
            RuntimeError: the device is not open.
        """
        if not self._open:
            raise self._not_open()
        n = len(self.files)
        if self._index >= n and not self.loop:
            return None
        if self._index == n:
            log.info("%s: end of the folder after %d %s; playing it again", self.name, n, self.unit)
        timestamp = self._index / self.fps
        frame = self._frame(self.files[self._index % n], self._index, timestamp)
        if self.realtime:
            self._pacer.wait(timestamp)
        self._index += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        """Forget the listing; safe to call more than once."""
        self._open = False


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV image (BGR ``(H, W, 3)``, BGRA ``(H, W, 4)`` or grey ``(H, W)``) as RGB uint8 ``(H, W, 3)``."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    raise ValueError(f"expected 1, 3 or 4 channels, got an image of shape {image.shape}")
