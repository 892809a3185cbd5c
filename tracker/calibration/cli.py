"""Multi-camera ChArUco calibration: intrinsics per camera, extrinsics by pairwise poses + bundle adjustment.

Reads one synchronised video (or camera) per camera, or the cameras of a rig file, detects the board
in every ``--every``-th frame set, calibrates (:func:`tracker.calibration.calibrate_cameras`) and
saves an aniposelib-layout TOML (see :mod:`tracker.io.calibration`)::

    python -m tracker.calibration --videos cam0.mp4 cam1.mp4 --board 7x5 --square-mm 30 --marker-mm 22 \\
        --every 5 --out calibration.toml
    python -m tracker.calibration --rig rig.toml --out calibration.toml
    python -m tracker.calibration --board 7x5 --square-mm 30 --marker-mm 22 --board-image board.png

Exit status: 0 done, 2 bad arguments or calibration failed (the message says why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from tracker.calibration.board import BoardConfig, BoardDetector, detect_framesets
from tracker.calibration.initial import FREE_DISTORTION
from tracker.calibration.solve import CalibrationOptions, calibrate_cameras
from tracker.core.errors import CalibrationError, DeviceError
from tracker.core.structures import Intrinsics
from tracker.io.calibration import save_calibration
from tracker.io.intrinsics import load_intrinsics

if TYPE_CHECKING:
    from devices.base import Device
    from tracker.io.rig_file import RigSpec

__all__ = ["main", "PROG"]

#: How the command is run.
PROG = "python -m tracker.calibration"


def _parse_board(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--board wants squares across x down, e.g. 7x5, got {text!r}") from e
    return x, y


class _LockstepReader:
    """Frame sets from single-camera devices read one frame each in turn (matched by frame index)."""

    def __init__(self, sources: Sequence[str]) -> None:
        from tracker.io.sources import SourceOptions, open_source, parse_source

        self.devices: list[Device] = []
        try:
            for source in sources:
                self.devices.append(open_source(parse_source(source), SourceOptions(realtime=False)))
        except BaseException:
            self.close()
            raise
        self.live = any(d.live for d in self.devices)

    def read(self) -> tuple[np.ndarray, ...] | None:
        sets = [d.read() for d in self.devices]
        if any(s is None for s in sets):
            return None
        return tuple(s.frames[0].image for s in sets if s is not None)

    def close(self) -> None:
        for d in self.devices:
            d.close()


class _RigReader:
    """Frame sets of a rig file's cameras, matched by timestamp by :class:`devices.rig.RigDevice`."""

    def __init__(self, spec: RigSpec) -> None:
        from tracker.io.rig_file import build_rig_device
        from tracker.io.sources import SourceOptions

        self.device = build_rig_device(spec, SourceOptions(realtime=False))
        self.device.open()
        self.live = self.device.live

    def read(self) -> tuple[np.ndarray, ...] | None:
        fs = self.device.read()
        return None if fs is None else tuple(f.image for f in fs.frames)

    def close(self) -> None:
        self.device.close()


def _frames(
    reader: _LockstepReader | _RigReader, every: int, max_frames: int | None
) -> Iterable[tuple[np.ndarray, ...]]:
    """Every ``every``-th frame set of ``reader``, at most ``max_frames`` of them."""
    k = kept = 0
    while max_frames is None or kept < max_frames:
        images = reader.read()
        if images is None:
            return
        if k % every == 0:
            kept += 1
            yield images
        k += 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    src = p.add_mutually_exclusive_group()
    src.add_argument("--videos", nargs="+", metavar="VIDEO", help="one synchronised video per camera")
    src.add_argument("--rig", metavar="RIG.toml", help="a rig file listing the cameras and their sources")
    p.add_argument("--names", nargs="+", help="camera names (default: the rig's, or cam0, cam1, ...)")
    p.add_argument("--board", type=_parse_board, default=(7, 5), help="squares across x down (default 7x5)")
    p.add_argument("--square-mm", type=float, default=30.0, help="printed square side in mm (default 30)")
    p.add_argument("--marker-mm", type=float, default=22.0, help="printed marker side in mm (default 22)")
    p.add_argument("--dictionary", default="DICT_4X4_50", help="ArUco dictionary (default DICT_4X4_50)")
    p.add_argument("--every", type=int, default=5, help="use every Nth frame (default 5)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many used frames (default: all; 200 for live cameras)")
    p.add_argument("--intrinsics", nargs="+", metavar="FILE",
                   help="known intrinsics per camera (JSON / OpenCV YAML / TOML), kept fixed; '-' to estimate one")
    p.add_argument("--distortion", choices=sorted(FREE_DISTORTION), default="k1k2",
                   help="distortion model to estimate")
    p.add_argument("--out", type=Path, help="calibration TOML to write (aniposelib layout)")
    p.add_argument("--board-image", type=Path, help="write a printable board image (PNG) here")
    p.add_argument("--dpi", type=float, default=300.0, help="resolution of --board-image (default 300)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` without the program name; default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 2 calibration failed (argument errors exit 2 through argparse).
    """
    p = _parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    try:
        board = BoardConfig(*args.board, args.square_mm, args.marker_mm, args.dictionary)
    except ValueError as e:
        p.error(str(e))
    if args.every < 1:
        p.error("--every must be at least 1")
    if args.board_image is not None:
        cv2.imwrite(str(args.board_image), board.image(pixels_per_mm=args.dpi / 25.4))
        print(f"wrote {args.board_image} ({board.describe()}); print at 100 % scale and measure a square")
    if args.videos is None and args.rig is None:
        if args.board_image is None:
            p.error("give --videos or --rig to calibrate (or --board-image to draw the board)")
        return 0
    try:
        return _calibrate(p, args, board)
    except (CalibrationError, DeviceError) as e:
        print(f"calibration failed: {e}", file=sys.stderr)
        return 2


def _calibrate(p: argparse.ArgumentParser, args: argparse.Namespace, board: BoardConfig) -> int:
    """The calibration part of :func:`main`: read, detect, calibrate, save."""
    spec = None
    if args.rig is not None:
        from tracker.io.rig_file import RigFileError, load_rig  # imported only when a rig file is used

        try:
            spec = load_rig(args.rig, calibration=False)
        except RigFileError as e:
            raise CalibrationError(str(e)) from e
        sources = [cam.source for cam in spec.cameras]
        if args.names:
            p.error("--names does not apply to --rig: the rig file names the cameras")
        names = list(spec.names)
        out = args.out if args.out is not None else spec.calibration
    else:
        sources = list(args.videos)
        names = args.names or [f"cam{i}" for i in range(len(sources))]
        out = args.out
    if out is None:
        p.error("--out is required to calibrate (a rig file's calibration = path is the default with --rig)")
    if len(names) != len(sources):
        p.error(f"{len(sources)} cameras but {len(names)} names")
    intrinsics: list[Intrinsics | None] = [None] * len(sources)
    if args.intrinsics:
        if len(args.intrinsics) != len(sources):
            p.error(f"{len(sources)} cameras but {len(args.intrinsics)} --intrinsics files (use '-' to estimate one)")
        intrinsics = [None if f == "-" else load_intrinsics(f) for f in args.intrinsics]

    options = CalibrationOptions(distortion=args.distortion)
    reader = _RigReader(spec) if spec is not None else _LockstepReader(sources)
    try:
        max_frames = args.max_frames
        if max_frames is None and reader.live:
            max_frames = 200
            print("live cameras: using 200 frame sets (--max-frames to change); move the board through the views")
        detector = BoardDetector(board, options.min_corners)
        detections, sizes = detect_framesets(_frames(reader, args.every, max_frames), len(sources), detector)
    finally:
        reader.close()
    seen = ", ".join(f"{n} {sum(d is not None for d in dets)}" for n, dets in zip(names, detections))
    print(f"board seen in {len(detections[0])} frame sets: {seen}")
    result = calibrate_cameras(detections, sizes, board, names, intrinsics, options)
    save_calibration(result.cameras, out,
                     metadata={"adjusted": True, "error": result.mean_error_px, "board": board.describe()})  # fmt: skip
    print(result.summary())
    print(f"wrote {out}")
    return 0
