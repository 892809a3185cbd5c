"""Playback of a folder of still images (``frame1.png``, ``frame2.png``, ...) as a video."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

from devices._common import CameraForSize, FolderPlayback, to_rgb
from models.depth_datasets import decode_image_file
from tracker.core.errors import RecordingError
from tracker.core.structures import Frame, Intrinsics

__all__ = ["ImageFolderDevice", "IMAGE_EXTENSIONS", "natural_key", "load_image_rgb"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers, case ignored)."""
    parts = re.split(r"(\d+)", name.casefold())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


class ImageFolderDevice(FolderPlayback):
    """Every image in a folder (non-recursive, hidden files skipped), in natural name order.

    Args:
        path: the folder.
        fps: frame rate the images were taken at, frames per second (positive, finite); frame ``i``
            has timestamp ``i / fps`` seconds.
        realtime: if True, :meth:`read` sleeps so frames come at ``fps``; if False, as fast as they load.
        intrinsics: calibration of the camera (rescaled to each image's size where it differs),
            or None for a default from ``hfov_deg`` flagged approximate.
        hfov_deg: horizontal field of view in degrees assumed without calibration.
        loop: play the folder again from the first image after the last one; indices and
            timestamps keep rising (frame ``i`` is image ``i mod frame_count`` at ``i / fps`` s).

    Images may differ in size; each frame's camera follows its image's size. After :meth:`open`,
    ``files`` lists the images in playback order and ``frame_count`` is their number.

    Raises:
        ConfigError: ``fps`` is not a positive, finite number.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 30.0,
        realtime: bool = False,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = 60.0,
        loop: bool = False,
    ) -> None:
        super().__init__(path, fps, realtime, loop, kind="image folder", unit="images")
        self.name = self.path.name or str(self.path)
        self._camera = CameraForSize(self.name, intrinsics, hfov_deg)

    def _list(self) -> list[Path]:
        files = [p for p in self.path.iterdir()
                 if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]  # fmt: skip
        if not files:
            raise RecordingError(f"no images ({'/'.join(IMAGE_EXTENSIONS)}) in {self.path}")
        return sorted(files, key=lambda p: natural_key(p.name))

    def _frame(self, file: Path, index: int, timestamp: float) -> Frame:
        image = load_image_rgb(file)
        return Frame(image, timestamp, index, self._camera(image.shape[1], image.shape[0]))


def load_image_rgb(file: Path) -> np.ndarray:
    """The image in ``file`` as RGB uint8 ``(H, W, 3)`` (any bit depth is converted to 8 bits).

    Raises:
        RecordingError: the file cannot be read or decoded (the message names it).
    """
    return to_rgb(decode_image_file(file, cv2.IMREAD_COLOR))
