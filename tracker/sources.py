"""From a ``--source`` string to an opened device.

Grammar (no guessing beyond it):

* ``auto``         the first webcam, or the bundled demo recording when no camera can be opened
* ``demo``         the bundled demo recording (``assets/demo/demo.mp4``, with its calibration)
* ``webcam``       webcam 0; ``webcam:N`` webcam index N; ``webcam:/dev/videoN`` a device path
* a directory      an image folder (every image, natural order)
* a file           a video file (.mp4, .avi, .mov, .mkv, ...)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.base import Device, DeviceNotFoundError, UnsupportedSourceError
from .intrinsics import load_intrinsics
from .types import Intrinsics

__all__ = ["SourceSpec", "SourceOptions", "parse_source", "open_source", "DEMO_DIR", "DEMO_VIDEO", "DEMO_INTRINSICS"]

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
DEMO_VIDEO = DEMO_DIR / "demo.mp4"
DEMO_INTRINSICS = DEMO_DIR / "intrinsics.json"


@dataclass(frozen=True)
class SourceSpec:
    kind: Literal["auto", "demo", "webcam", "folder", "video"]
    target: int | str | None = None


def parse_source(text: str) -> SourceSpec:
    """Parse a ``--source`` value. Raises :class:`UnsupportedSourceError` or :class:`DeviceNotFoundError`."""
    text = text.strip()
    low = text.lower()
    if low in ("", "auto"):
        return SourceSpec("auto")
    if low == "demo":
        return SourceSpec("demo")
    if low == "webcam" or low.startswith("webcam:"):
        arg = text.partition(":")[2]
        if arg == "":
            return SourceSpec("webcam", 0)
        return SourceSpec("webcam", int(arg) if arg.isdigit() else arg)
    if low.startswith(("realsense", "rig:")):
        raise UnsupportedSourceError(
            f"--source {text}: RealSense and rig sources are not part of this build yet; "
            "use webcam[:N], a video file, an image folder or demo"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("folder", str(path))
    if path.is_file():
        return SourceSpec("video", str(path))
    raise DeviceNotFoundError(
        f"--source {text}: no such file or folder (sources: auto, demo, webcam[:N], a video file, an image folder)"
    )


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source.

    Attributes:
        intrinsics: calibration to use; None = the demo's own for ``demo``, else a default from
            ``hfov_deg`` (flagged approximate).
        realtime: playback at recorded speed (True) or as fast as possible (False).
        loop: play a video file again from the start when it ends (indices and times keep rising).
        width, height, fps: requested webcam mode (pixels, frames per second); ``fps`` is also the
            image-folder playback rate.
        hfov_deg: horizontal field of view assumed without a calibration, degrees.
    """

    intrinsics: Intrinsics | None = None
    realtime: bool = True
    loop: bool = False
    width: int = 640
    height: int = 480
    fps: float = 30.0
    hfov_deg: float = 60.0


def open_source(spec: SourceSpec, options: SourceOptions = SourceOptions()) -> Device:
    """Build and open the device for ``spec``.

    Raises:
        DeviceError subclasses with a message saying what to do.
    """
    from devices.image_folder import ImageFolderDevice
    from devices.video import VideoFileDevice
    from devices.webcam import WebcamDevice

    o = options
    if spec.kind == "auto":
        try:
            return open_source(SourceSpec("webcam", 0), o)
        except DeviceNotFoundError as exc:
            log.info("no camera (%s); playing the bundled demo recording", exc)
            return open_source(SourceSpec("demo"), o)
    device: Device
    if spec.kind == "demo":
        if not DEMO_VIDEO.is_file():
            raise DeviceNotFoundError(f"the demo recording is missing: {DEMO_VIDEO} (regenerate: python scripts/make_demo.py)")
        intr = o.intrinsics or load_intrinsics(DEMO_INTRINSICS)
        device = VideoFileDevice(DEMO_VIDEO, realtime=o.realtime, intrinsics=intr, loop=o.loop)
    elif spec.kind == "webcam":
        assert spec.target is not None
        device = WebcamDevice(spec.target, width=o.width, height=o.height, fps=o.fps, intrinsics=o.intrinsics,
                              hfov_deg=o.hfov_deg)  # fmt: skip
    elif spec.kind == "folder":
        device = ImageFolderDevice(str(spec.target), fps=o.fps, realtime=o.realtime, intrinsics=o.intrinsics,
                                   hfov_deg=o.hfov_deg)  # fmt: skip
    else:
        device = VideoFileDevice(str(spec.target), realtime=o.realtime, intrinsics=o.intrinsics,
                                 hfov_deg=o.hfov_deg, loop=o.loop)  # fmt: skip
    device.open()
    return device
