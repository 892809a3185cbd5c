"""Recording the rendered view: a video file (``.mp4`` / ``.avi``) or a folder of numbered PNGs.

:func:`check_video_path` tells, before anything slow starts (models, sources), whether a path can
be recorded to at all, with a message that says what is wrong with the path;
:class:`VideoRecorder` writes the frames.

Where the frames go, by the path:

* ``*.mp4`` (codec ``mp4v``) or ``*.avi`` (``MJPG``): one video through ``cv2.VideoWriter``.
* a path without suffix, or an existing directory: PNGs ``frame_000000.png``, ... in it.
* ``*.png``: PNGs next to it named after its stem, e.g. ``out/shot.png`` -> ``out/shot_000000.png``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from tracker.core.errors import OutputError

__all__ = ["VideoRecorder", "check_video_path", "VIDEO_CODECS"]

logger = logging.getLogger(__name__)

#: Video suffix -> OpenCV fourcc written for it.
VIDEO_CODECS: Final[dict[str, str]] = {".mp4": "mp4v", ".avi": "MJPG"}

_SUPPORTED: Final = "use .mp4, .avi, .png or a folder (for PNG frames)"


@dataclass(frozen=True)
class _Target:
    """Where a recording to some path goes: the folder written into, the PNG name stem, the codec
    (None for PNGs)."""

    folder: Path
    stem: str
    codec: str | None


def _target(path: Path) -> _Target:
    """Classify ``path`` (see the module docstring). Raises OutputError for an unsupported suffix."""
    suffix = path.suffix.lower()
    if os.path.isdir(path) or suffix == "":
        return _Target(path, "frame", None)
    if suffix == ".png":
        return _Target(path.parent, path.stem, None)
    if suffix in VIDEO_CODECS:
        return _Target(path.parent, path.stem, VIDEO_CODECS[suffix])
    raise OutputError(f"cannot record the view to {str(path)!r}: unsupported extension {suffix}: {_SUPPORTED}")


def _writable(folder: Path) -> bool:
    """True when this process may create files in the existing directory ``folder``."""
    return os.access(folder, os.W_OK | os.X_OK)


def check_video_path(path: str | Path) -> None:
    """Check that the view can be recorded to ``path``, without creating or writing anything.

    The path must have a supported form (``.mp4``, ``.avi``, ``.png``, no suffix or an existing
    folder: see the module docstring), and its folder must exist and be writable, or be creatable
    (its nearest existing ancestor is a writable folder). A video file that already exists must be
    writable (it will be overwritten). Meant to be called before models load, so a bad
    ``--save-video`` fails at once.

    Args:
        path: the recording's file or folder.

    Raises:
        OutputError: the message names what is wrong with the path: an unsupported extension, a
            folder that is not writable, an ancestor that is a file, an existing file in the way.
    """
    path = Path(path)
    target = _target(path)
    where = f"cannot record the view to {str(path)!r}"
    folder = target.folder
    existing = folder  # the folder, or its nearest ancestor that exists
    while not os.path.exists(existing):  # os.path: False, not an error, where stat is refused
        if existing.parent == existing:  # a root that does not exist (e.g. an absent drive)
            raise OutputError(f"{where}: {existing} does not exist")
        existing = existing.parent
    if not os.path.isdir(existing):
        raise OutputError(f"{where}: {existing} is a file, not a folder")
    if not _writable(existing):
        if existing == folder:
            raise OutputError(f"{where}: folder {folder} is not writable")
        raise OutputError(f"{where}: folder {folder} cannot be created: {existing} is not writable")
    if target.codec is not None and os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"{where}: the file exists and is not writable")


class VideoRecorder:
    """Writes rendered RGB frames to a video file or to a folder of numbered PNGs.

    * ``*.mp4`` (codec ``mp4v``) or ``*.avi`` (``MJPG``): one video through ``cv2.VideoWriter``,
      opened at the first frame with that frame's size; every frame must have the same size.
    * a path without suffix, or an existing directory: PNGs ``frame_000000.png``, ... in it.
    * ``*.png``: PNGs next to it named after its stem, e.g. ``out/shot.png`` -> ``out/shot_000000.png``.

    The path is checked with :func:`check_video_path` and missing parent folders are created. ``close()``
    may be called more than once; the recorder is a context manager. Writing is synchronous
    (measured for 1280x520 frames on one CPU core: mp4v ~2 ms, MJPG ~4 ms, PNG ~14 ms per frame): it
    runs on the caller's thread, so on the GUI thread PNGs eat into a 60 Hz frame budget.

    Args:
        path: output file or folder.
        fps: frame rate stored in the video (ignored for PNGs).

    Raises:
        ValueError: ``fps <= 0``.
        OutputError: the path cannot be recorded to (:func:`check_video_path`), or its folder could
            not be created.
    """

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        check_video_path(self.path)
        target = _target(self.path)
        self._folder, self._stem, self._codec = target.folder, target.stem, target.codec
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot record the view to {str(self.path)!r}: cannot create folder "
                              f"{self._folder}: {exc.strerror or exc}") from exc  # fmt: skip
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
            OutputError: the video could not be opened or the PNG not written.
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
                check_video_path(self.path)  # a path that went bad since (folder removed, made read-only)
                raise OutputError(f"could not write {name}")
        else:
            self._video(self._codec, bgr.shape[1], bgr.shape[0]).write(bgr)
        self.frames_written += 1

    def _video(self, codec: str, width: int, height: int) -> cv2.VideoWriter:
        """The open writer (opened on the first frame, at its size)."""
        if self._writer is None:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*codec), self.fps, (width, height))
            if not writer.isOpened():
                check_video_path(self.path)  # the path's own fault is reported as such
                raise OutputError(
                    f"OpenCV could not open {str(self.path)!r} for writing ({width}x{height}, fourcc {codec!r}) "
                    "although its folder is writable; record to a folder of PNG frames instead"
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
