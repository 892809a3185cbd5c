"""Playback of an NYU Hand Pose folder (depth, optionally its registered colour) through the pipeline.

The data set readers (depth PNGs, label files, uvd <-> 3D) live in :mod:`models.depth_datasets`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from devices._common import CameraForSize, FolderPlayback
from devices.image_folder import load_image_rgb
from models.depth_datasets import NYU_INTRINSICS, load_nyu_depth
from tracker.core.errors import RecordingError
from tracker.core.structures import Frame, Intrinsics

__all__ = ["NyuDepthFolderDevice"]

log = logging.getLogger(__name__)


class NyuDepthFolderDevice(FolderPlayback):
    """Plays an NYU Hand Pose folder (``test/`` or ``train/``) frame by frame, one camera.

    Reads ``{prefix}_{camera}_{NNNNNNN}.png`` in frame-number order. Each frame carries the depth
    (uint16 mm) and, when ``rgb_{camera}_{NNNNNNN}.png`` is next to it and ``with_rgb`` is set, that
    colour image (NYU registers it to the depth); otherwise the frame's image is black, since
    :class:`~tracker.core.structures.Frame` always has one: use a depth estimator on such frames.

    Args:
        path: the folder.
        camera: NYU camera 1 (frontal, the one the benchmarks use), 2 or 3.
        prefix: "depth" (sensor) or "synthdepth" (NYU's rendered model depth).
        fps: frame rate for the timestamps (NYU does not state one): frame ``i`` is at ``i / fps`` s.
        realtime: if True, :meth:`read` sleeps so frames come at ``fps``.
        intrinsics: the depth camera (default NYU's, OpenCV convention).
        with_rgb: pair each depth image with its ``rgb_*`` image when one exists.
        loop: play the folder again from its first frame after the last one (indices and
            timestamps keep rising).

    After :meth:`open`, ``files`` lists the depth images in playback order. Frame ``i`` of camera 1
    of the NYU test set is line ``i + 1`` of the benchmark label files when the folder is complete.

    Raises:
        ConfigError: ``fps`` is not a positive, finite number.
        ValueError: ``camera`` or ``prefix`` unknown.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        camera: int = 1,
        prefix: str = "depth",
        fps: float = 30.0,
        realtime: bool = False,
        intrinsics: Intrinsics = NYU_INTRINSICS,
        with_rgb: bool = True,
        loop: bool = False,
    ) -> None:
        if camera not in (1, 2, 3):
            raise ValueError(f"NYU has cameras 1, 2 and 3, got {camera}")
        if prefix not in ("depth", "synthdepth"):
            raise ValueError(f"prefix must be 'depth' or 'synthdepth', got {prefix!r}")
        super().__init__(path, fps, realtime, loop, kind="NYU folder", unit="depth frames")
        self.name = f"nyu:{self.path.name or self.path}:{prefix}_{camera}"
        self.camera = camera
        self.prefix = prefix
        self.with_rgb = with_rgb
        self._pattern = re.compile(rf"{prefix}_{camera}_(\d+)\.png", re.IGNORECASE)
        self._camera = CameraForSize(self.name, intrinsics, 60.0)

    def _list(self) -> list[Path]:
        numbered = [(int(m.group(1)), p) for p in self.path.iterdir()
                    if (m := self._pattern.fullmatch(p.name)) and p.is_file()]  # fmt: skip
        if not numbered:
            raise RecordingError(f"no {self.prefix}_{self.camera}_NNNNNNN.png files in {self.path}: "
                                 "point at an NYU test/ or train/ folder")  # fmt: skip
        return [p for _, p in sorted(numbered)]

    def _frame(self, file: Path, index: int, timestamp: float) -> Frame:
        depth = load_nyu_depth(file)
        image = self._colour(file, depth.shape)
        camera = self._camera(depth.shape[1], depth.shape[0])
        return Frame(image, timestamp, index, camera, depth=depth)

    def _colour(self, depth_file: Path, shape: tuple[int, ...]) -> np.ndarray:
        rgb_file = depth_file.with_name("rgb" + depth_file.name[len(self.prefix):])
        if self.with_rgb and rgb_file.is_file():
            image = load_image_rgb(rgb_file)
            if image.shape[:2] == shape:
                return image
            log.warning("%s: %s is %dx%d but the depth is %dx%d; using a black image",
                        self.name, rgb_file.name, image.shape[1], image.shape[0], shape[1], shape[0])  # fmt: skip
        return np.zeros((*shape, 3), np.uint8)
