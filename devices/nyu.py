"""Playback of an NYU Hand Pose folder (depth, optionally its registered colour) through the pipeline.

The data set readers (depth PNGs, label files, uvd <-> 3D) live in :mod:`models.depth_datasets`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from devices._common import CameraForSize, DeviceBase, Pacer
from devices.image_folder import load_image_rgb
from models.depth_datasets import NYU_INTRINSICS, load_nyu_depth
from tracker.core.errors import DeviceNotFoundError, RecordingError
from tracker.core.structures import Frame, FrameSet, Intrinsics

__all__ = ["NyuDepthFolderDevice"]

log = logging.getLogger(__name__)

class NyuDepthFolderDevice(DeviceBase):
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

    After :meth:`open`, ``files`` lists the depth images in playback order. Frame ``i`` of camera 1
    of the NYU test set is line ``i + 1`` of the benchmark label files when the folder is complete.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        camera: int = 1,
        prefix: str = "depth",
        fps: float = 30.0,
        realtime: bool = False,
        intrinsics: Intrinsics = NYU_INTRINSICS,
        with_rgb: bool = True,
    ) -> None:
        if camera not in (1, 2, 3):
            raise ValueError(f"NYU has cameras 1, 2 and 3, got {camera}")
        if prefix not in ("depth", "synthdepth"):
            raise ValueError(f"prefix must be 'depth' or 'synthdepth', got {prefix!r}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.name = f"nyu:{self.path.name or self.path}:{prefix}_{camera}"
        self.camera = camera
        self.prefix = prefix
        self.fps = float(fps)
        self.realtime = realtime
        self.with_rgb = with_rgb
        self.files: list[Path] = []
        self._pattern = re.compile(rf"{prefix}_{camera}_(\d+)\.png", re.IGNORECASE)
        self._camera = CameraForSize(self.name, intrinsics, 60.0)
        self._open = False
        self._index = 0
        self._pacer = Pacer()

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def open(self) -> None:
        """List the depth images.

        Raises:
            DeviceNotFoundError: no folder at ``path``.
            RecordingError: the folder holds no ``{prefix}_{camera}_*.png``.
        """
        if self._open:
            return
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "does not exist"
            raise DeviceNotFoundError(f"NYU folder {self.path} {what}: check the path")
        numbered = [(int(m.group(1)), p) for p in self.path.iterdir()
                    if (m := self._pattern.fullmatch(p.name)) and p.is_file()]  # fmt: skip
        if not numbered:
            raise RecordingError(f"no {self.prefix}_{self.camera}_NNNNNNN.png files in {self.path}: "
                                 "point at an NYU test/ or train/ folder")  # fmt: skip
        self.files = [p for _, p in sorted(numbered)]
        self._index = 0
        self._pacer = Pacer()
        self._open = True
        log.info("%s: %d depth frames at %.2f fps", self.name, len(self.files), self.fps)

    def read(self) -> FrameSet | None:
        """The next frame, or None after the last one.

        Raises:
            RecordingError / UnsupportedSourceError: a depth or colour image cannot be decoded, or
                is not in NYU's format (the message names the file).
            RuntimeError: the device is not open.
        """
        if not self._open:
            raise self._not_open()
        if self._index >= len(self.files):
            return None
        file = self.files[self._index]
        depth = load_nyu_depth(file)
        image = self._colour(file, depth.shape)
        timestamp = self._index / self.fps
        if self.realtime:
            self._pacer.wait(timestamp)
        camera = self._camera(depth.shape[1], depth.shape[0])
        frame = Frame(image, timestamp, self._index, camera, depth=depth)
        self._index += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        """Forget the listing; safe to call more than once."""
        self._open = False

    def _colour(self, depth_file: Path, shape: tuple[int, ...]) -> np.ndarray:
        rgb_file = depth_file.with_name("rgb" + depth_file.name[len(self.prefix):])
        if self.with_rgb and rgb_file.is_file():
            image = load_image_rgb(rgb_file)
            if image.shape[:2] == shape:
                return image
            log.warning("%s: %s is %dx%d but the depth is %dx%d; using a black image",
                        self.name, rgb_file.name, image.shape[1], image.shape[0], shape[1], shape[0])  # fmt: skip
        return np.zeros((*shape, 3), np.uint8)
