"""Playback of a folder of still images (``frame1.png``, ``frame2.png``, ...) as a video."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

from tracker.core.structures import Frame, FrameSet, Intrinsics

from devices._common import CameraForSize, DeviceBase, Pacer, to_rgb
from tracker.core.errors import DeviceNotFoundError, RecordingError

__all__ = ["ImageFolderDevice", "IMAGE_EXTENSIONS", "natural_key", "load_image_rgb"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers, case ignored)."""
    parts = re.split(r"(\d+)", name.casefold())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


class ImageFolderDevice(DeviceBase):
    """Every image in a folder (non-recursive, hidden files skipped), in natural name order.

    Args:
        path: the folder.
        fps: frame rate the images were taken at, frames per second; frame ``i`` has timestamp
            ``i / fps`` seconds.
        realtime: if True, :meth:`read` sleeps so frames come at ``fps``; if False, as fast as they load.
        intrinsics: calibration of the camera (rescaled to each image's size where it differs),
            or None for a default from ``hfov_deg`` flagged approximate.
        hfov_deg: horizontal field of view in degrees assumed without calibration.

    Images may differ in size; each frame's camera follows its image's size. After :meth:`open`,
    ``files`` lists the images in playback order and ``frame_count`` is their number.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 30.0,
        realtime: bool = False,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = 60.0,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.name = self.path.name or str(self.path)
        self.fps = float(fps)
        self.realtime = realtime
        self.files: list[Path] = []
        self._camera = CameraForSize(self.name, intrinsics, hfov_deg)
        self._open = False
        self._index = 0
        self._pacer = Pacer()

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def open(self) -> None:
        """List the images.

        Raises:
            DeviceNotFoundError: no folder at ``path``.
            RecordingError: the folder holds no image files.
        """
        if self._open:
            return
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "does not exist"
            raise DeviceNotFoundError(f"image folder {self.path} {what}: check the path")
        files = [p for p in self.path.iterdir()
                 if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]  # fmt: skip
        if not files:
            raise RecordingError(f"no images ({'/'.join(IMAGE_EXTENSIONS)}) in {self.path}")
        self.files = sorted(files, key=lambda p: natural_key(p.name))
        self._index = 0
        self._pacer = Pacer()
        self._open = True
        log.info("%s: %d images at %.2f fps", self.name, len(self.files), self.fps)

    def read(self) -> FrameSet | None:
        """The next image, or None after the last one.

        Raises:
            RecordingError: an image file cannot be read or decoded (the message names it).
            RuntimeError: the device is not open.
        """
        if not self._open:
            raise self._not_open()
        if self._index >= len(self.files):
            return None
        file = self.files[self._index]
        timestamp = self._index / self.fps
        image = load_image_rgb(file)
        if self.realtime:
            self._pacer.wait(timestamp)
        frame = Frame(image, timestamp, self._index, self._camera(image.shape[1], image.shape[0]))
        self._index += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        """Forget the listing; safe to call more than once."""
        self._open = False


def load_image_rgb(file: Path) -> np.ndarray:
    """The image in ``file`` as RGB uint8 ``(H, W, 3)`` (any bit depth is converted to 8 bits)."""
    try:
        data = np.fromfile(file, dtype=np.uint8)  # imdecode rather than imread: non-ASCII paths on Windows
    except OSError as e:
        raise RecordingError(f"cannot read image {file}: {e.strerror or e}") from e
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise RecordingError(f"cannot decode image {file}: empty, corrupt or not an image; remove or replace it")
    return to_rgb(image)
