"""From a ``--source`` string to an opened device.

Grammar (no guessing beyond it):

* ``auto``         a connected RealSense (RGB-D), else the first webcam, else the bundled demo
  recording when no camera can be opened
* ``demo``         the bundled demo recording (package data ``tracker/assets/demo/demo.mp4``, with its
  calibration)
* ``webcam``       webcam 0; ``webcam:N`` webcam index N; ``webcam:/dev/videoN`` a device path
* ``synthetic``    the synthetic data engine (RGB-D, ground truth on every frame);
  ``synthetic:SEED``, ``synthetic:SEED:desk:N`` / ``synthetic:SEED:ring:N`` a rig of N views;
  ``synthetic:SEED:ring:N@V`` view V (0-based) of that rig alone (a camera of a ``rig:`` file)
* ``realsense``    the first RealSense camera connected (depth aligned to colour);
  ``realsense:SERIAL`` the one with that serial number (``rs-enumerate-devices -s`` lists them)
* a directory      an image folder (every image, natural order); a folder of NYU Hand Pose depth
  images (``depth_1_0000001.png`` ...) plays as depth frames (NYU's camera 1 and intrinsics)
* a ``.db3`` / ``.bag`` file   a RealSense recording, played by the SDK (every frame; ``loop`` replays it)
* a ``.mcap`` file a handtrack session recording (``--record``): every frame set with its cameras and
  depth; a recorded rig plays as a rig (:class:`devices.mcap_playback.McapPlaybackDevice`)
* another file     a video file (.mp4, .avi, .mov, .mkv, ...)

* ``rig:RIG.toml`` a multi-camera rig described by a rig file (:mod:`tracker.io.rig_file`): its cameras
  captured in parallel and matched by timestamp (:class:`devices.rig.RigDevice`)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from devices.base import Device
from tracker.core.errors import DeviceNotFoundError, RecordingError, UnsupportedSourceError
from tracker.io.intrinsics import load_intrinsics
from tracker.core.structures import Intrinsics

__all__ = ["SourceSpec", "SourceOptions", "parse_source", "open_source", "build_device", "views_per_frameset", "DEMO_DIR", "DEMO_VIDEO",
           "DEMO_INTRINSICS", "SYNTHETIC_FRAMES", "RECORDING_SUFFIXES", "MCAP_SUFFIX"]

log = logging.getLogger(__name__)

#: The bundled demo recording: package data of ``tracker`` (``tracker/assets/demo/``), found through
#: :mod:`importlib.resources` so that it is the installed copy, not a checkout's. The package is always
#: installed unzipped (a wheel or an editable checkout), so this is a real directory.
DEMO_DIR = Path(str(resources.files("tracker") / "assets" / "demo"))
DEMO_VIDEO = DEMO_DIR / "demo.mp4"
DEMO_INTRINSICS = DEMO_DIR / "intrinsics.json"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``: ``kind`` and its argument.

    ``target`` is the webcam index or path (``webcam``), the folder / file path (``folder``,
    ``video``, ``recording``, ``mcap``), the serial number or None for the first camera (``realsense``), or
    ``(seed, layout, views)`` (``synthetic``), or the rig file path (``rig``). ``view`` selects one
    camera of a synthetic rig (``synthetic:SEED:LAYOUT:N@V``); None for every view.
    """

    kind: Literal["auto", "demo", "webcam", "folder", "video", "synthetic", "realsense", "recording", "rig", "mcap"]
    target: int | str | tuple[int, str, int] | None = None
    view: int | None = None


def views_per_frameset(spec: SourceSpec) -> int:
    """How many views the frame sets of ``spec`` hold: the cameras of a ``rig:`` file (read and
    checked here), the views of a whole synthetic rig (``synthetic:SEED:desk|ring:N``), the recorded
    views of a ``.mcap`` recording (read from its start), else 1.

    Raises:
        RigFileError / CalibrationError: a ``rig:`` file that cannot be read.
        RecordingError: a ``.mcap`` file that is not a handtrack recording.
    """
    if spec.kind == "mcap":
        from devices.mcap_format import read_start_metadata

        views = read_start_metadata(str(spec.target)).get("views")
        if not isinstance(views, list) or not views:
            raise RecordingError(f"{spec.target} is not a handtrack recording (no views in its "
                                 "handtrack.recording metadata); record one with --record FILE.mcap")
        return len(views)
    if spec.kind == "rig":
        from tracker.io.rig_file import load_rig

        return len(load_rig(str(spec.target)).cameras)
    if spec.kind == "synthetic" and isinstance(spec.target, tuple) and spec.target[1] != "single" \
            and spec.view is None:
        return int(spec.target[2])
    return 1


#: Frames of one pass of a ``synthetic`` source (10 s at 30 FPS).
SYNTHETIC_FRAMES = 300

#: File suffixes played as RealSense recordings (kept equal to ``devices.realsense.RECORDING_EXTENSIONS``,
#: not imported so that parsing does not load pyrealsense2).
RECORDING_SUFFIXES = frozenset({".bag", ".db3"})

#: The suffix of handtrack's own session recordings (:mod:`tracker.io.recording`).
MCAP_SUFFIX = ".mcap"


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
    if low == "synthetic" or low.startswith("synthetic:"):
        body, at, view = text.partition("@")
        target = _parse_synthetic(body)
        if not at:
            return SourceSpec("synthetic", target)
        if not view.isdigit() or target[1] == "single" or int(view) >= target[2]:
            raise UnsupportedSourceError(f"--source {text}: expected synthetic:SEED:desk|ring:N@VIEW with VIEW in "
                                         "0..N-1, e.g. synthetic:7:ring:4@2")  # fmt: skip
        return SourceSpec("synthetic", target, int(view))
    if low == "realsense" or low.startswith("realsense:"):
        serial = text.partition(":")[2].strip()
        if low.startswith("realsense:") and (not serial or ":" in serial):
            raise UnsupportedSourceError(f"--source {text}: expected realsense or realsense:SERIAL, "
                                         "e.g. realsense:123456789012")  # fmt: skip
        return SourceSpec("realsense", serial or None)
    if low.startswith("rig:"):
        rig = Path(text[4:].strip()).expanduser()
        if not text[4:].strip():
            raise UnsupportedSourceError(f"--source {text}: expected rig:RIG.toml, the path of a rig file")
        if not rig.is_file():
            raise DeviceNotFoundError(f"--source {text}: no rig file at {rig}: check the path "
                                      "(the rig file format is described in tracker/rig.py)")  # fmt: skip
        return SourceSpec("rig", str(rig))
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("folder", str(path))
    if path.is_file() and path.suffix.lower() == MCAP_SUFFIX:
        return SourceSpec("mcap", str(path))
    if path.is_file():
        return SourceSpec("recording" if path.suffix.lower() in RECORDING_SUFFIXES else "video", str(path))
    raise DeviceNotFoundError(
        f"--source {text}: no such file or folder (sources: auto, demo, webcam[:N], realsense[:SERIAL], "
        "a RealSense recording (.db3/.bag), a handtrack recording (.mcap), a video file, an image folder, rig:RIG.toml)"
    )


def _parse_synthetic(text: str) -> tuple[int, str, int]:
    """``synthetic[:SEED[:LAYOUT[:VIEWS]]]`` -> (seed, layout, views)."""
    parts = text.split(":")[1:]
    usage = f"--source {text}: expected synthetic[:SEED[:single|desk|ring[:VIEWS]]], e.g. synthetic:7:ring:4"
    if len(parts) > 3 or not all(parts):
        raise UnsupportedSourceError(usage)
    seed = parts[0] if parts else "0"
    layout = parts[1].lower() if len(parts) > 1 else "single"
    views = parts[2] if len(parts) > 2 else ("1" if layout == "single" else "4")
    if not seed.isdigit() or not views.isdigit() or layout not in ("single", "desk", "ring"):
        raise UnsupportedSourceError(usage)
    if (layout == "single") != (int(views) == 1) or int(views) > 16:
        raise UnsupportedSourceError(f"{usage} (single has 1 view; desk/ring rigs 2-16)")
    return int(seed), layout, int(views)


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source.

    Attributes:
        intrinsics: calibration to use; None = the demo's own for ``demo``, else a default from
            ``hfov_deg`` (flagged approximate).
        realtime: playback at recorded speed (True) or as fast as possible (False).
        loop: play a video file, RealSense recording or image folder again from the start when it
            ends (indices and times keep rising).
        width, height, fps: requested webcam / RealSense mode (pixels, frames per second); ``fps``
            is also the image-folder playback rate. RealSense cameras and recordings bring their
            own factory intrinsics (``intrinsics`` and ``hfov_deg`` do not apply to them).
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
        DeviceError subclasses with a message saying what to do; for ``rig``, also
        :class:`tracker.io.rig_file.RigFileError` and :class:`tracker.io.intrinsics.CalibrationError`.
    """
    if spec.kind == "auto":
        if _realsense_connected():
            try:
                return open_source(SourceSpec("realsense"), options)
            except DeviceNotFoundError as exc:  # unplugged between the query and the open
                log.info("RealSense not usable (%s); trying a webcam", exc)
        try:
            return open_source(SourceSpec("webcam", 0), options)
        except DeviceNotFoundError as exc:
            log.info("no camera (%s); playing the bundled demo recording", exc)
            return open_source(SourceSpec("demo"), options)
    device = build_device(spec, options)
    device.open()
    return device


def _is_nyu_folder(path: Path) -> bool:
    """A folder of NYU Hand Pose depth images (``depth_1_NNNNNNN.png``, camera 1)."""
    return next(path.glob("depth_1_[0-9]*.png"), None) is not None


def _realsense_connected() -> bool:
    """True when the RealSense SDK sees a camera (False when it is absent or cannot be queried)."""
    try:
        from devices.realsense import connected_serials

        return bool(connected_serials())
    except Exception as exc:  # noqa: BLE001 - a broken SDK/USB stack must not stop the webcam fallback
        log.debug("RealSense query failed: %s", exc)
        return False


def build_device(spec: SourceSpec, options: SourceOptions = SourceOptions()) -> Device:
    """The device for ``spec``, not opened yet (``auto`` needs opening to decide: use :func:`open_source`).

    Raises:
        UnsupportedSourceError: ``spec`` is ``auto``.
        DeviceError subclasses (``demo`` without its recording), RigFileError / CalibrationError (``rig``).
    """
    from devices.image_folder import ImageFolderDevice
    from devices.video import VideoFileDevice
    from devices.webcam import WebcamDevice

    o = options
    device: Device
    if spec.kind == "auto":
        raise UnsupportedSourceError("source 'auto' is decided by opening a camera: use open_source()")
    if spec.kind == "rig":
        from tracker.io.rig_file import build_rig_device, load_rig

        assert isinstance(spec.target, str)
        return build_rig_device(load_rig(spec.target), o)
    if spec.kind == "demo":
        if not DEMO_VIDEO.is_file():
            raise DeviceNotFoundError(f"the demo recording is missing: {DEMO_VIDEO} (reinstall handtrack; "
                                      "in a checkout, regenerate it: python scripts/make_demo.py)")
        intr = o.intrinsics or load_intrinsics(DEMO_INTRINSICS)
        device = VideoFileDevice(DEMO_VIDEO, realtime=o.realtime, intrinsics=intr, loop=o.loop)
    elif spec.kind == "webcam":
        assert spec.target is not None
        device = WebcamDevice(spec.target, width=o.width, height=o.height, fps=o.fps, intrinsics=o.intrinsics,
                              hfov_deg=o.hfov_deg)  # fmt: skip
    elif spec.kind == "synthetic":
        from devices.synthetic import SyntheticDevice
        from models.synthetic import SceneConfig

        assert isinstance(spec.target, tuple)
        seed, layout, views = spec.target
        config = SceneConfig(num_frames=SYNTHETIC_FRAMES, layout=layout, num_views=views)
        device = SyntheticDevice(seed, config, realtime=o.realtime, loop=o.loop, view=spec.view)
    elif spec.kind == "mcap":
        from devices.mcap_playback import McapPlaybackDevice

        if o.intrinsics is not None:
            log.warning("--source %s: a recording plays with its recorded cameras; ignoring the given intrinsics",
                        spec.target)  # fmt: skip
        device = McapPlaybackDevice(str(spec.target), realtime=o.realtime, loop=o.loop)
    elif spec.kind in ("realsense", "recording"):
        from devices.realsense import RealSenseDevice

        if o.intrinsics is not None:
            log.warning("--source %s: RealSense sources use their own factory intrinsics; ignoring the given ones",
                        spec.target or spec.kind)  # fmt: skip
        if spec.kind == "realsense":
            assert spec.target is None or isinstance(spec.target, str)
            device = RealSenseDevice(spec.target, width=o.width, height=o.height, fps=round(o.fps))
        else:
            device = RealSenseDevice(path=str(spec.target), realtime=o.realtime, loop=o.loop)
    elif spec.kind == "folder" and _is_nyu_folder(Path(str(spec.target))):
        from devices.nyu import NyuDepthFolderDevice

        kwargs = {"intrinsics": o.intrinsics} if o.intrinsics is not None else {}
        device = NyuDepthFolderDevice(str(spec.target), fps=o.fps, realtime=o.realtime, loop=o.loop, **kwargs)
    elif spec.kind == "folder":
        device = ImageFolderDevice(str(spec.target), fps=o.fps, realtime=o.realtime, intrinsics=o.intrinsics,
                                   hfov_deg=o.hfov_deg, loop=o.loop)  # fmt: skip
    else:
        device = VideoFileDevice(str(spec.target), realtime=o.realtime, intrinsics=o.intrinsics,
                                 hfov_deg=o.hfov_deg, loop=o.loop)  # fmt: skip
    return device
