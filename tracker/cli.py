#!/usr/bin/env python
"""handtrack: track hands in 3D from a webcam, a video, an image folder or the bundled demo.

Examples:
  python run_tracker.py                         # first webcam, or the bundled demo without one
  python run_tracker.py --source webcam:1 --calib my_cam.json
  python run_tracker.py --source clip.mp4 --no-view --export joints.jsonl
  python run_tracker.py --source demo --no-view --save-video out/demo_view.mp4
  python run_tracker.py --source rig:my_rig.toml --export world.jsonl   # multi-camera rig, world frame
  python run_tracker.py --source synthetic:3:ring:4 --prior --refine    # synthetic 4-camera rig
"""

from __future__ import annotations

import argparse
import enum
import logging
import signal
import sys
import threading
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracker.runtime.loop import Channel
    from tracker.io.sources import SourceSpec
    from tracker.runtime.stats import LoopStats
    from tracker.core.structures import FrameResult

log = logging.getLogger("handtrack")


class Exit(enum.IntEnum):
    """Process exit codes; each says what failed."""

    OK = 0
    USAGE = 2  # bad command-line arguments (argparse uses 2 as well)
    SOURCE = 3  # camera / file / folder not found or not a supported kind
    RECORDING = 4  # a recording that cannot be decoded
    DISCONNECTED = 5  # a live camera stopped delivering frames
    CALIBRATION = 6  # intrinsics / calibration file missing or malformed
    VIEW = 7  # the requested view or video output cannot be created
    ACCEL = 8  # --device cuda without a usable CUDA device
    MODEL = 9  # a model asked for (--prior, --refine, --fusion learned, --v2v-weights) cannot be loaded
    INTERRUPTED = 130  # Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="handtrack",
        description="Track hands in 3D (21 joints: pixels + millimetres in the camera frame) and show, "
        "record or export them. With no camera attached it plays the bundled demo recording.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: " + ", ".join(f"{e.value} {e.name.lower()}" for e in Exit),
    )
    src = p.add_argument_group("input")
    src.add_argument("--source", default="auto",
                     help="auto (default: webcam 0, else the demo), demo, webcam[:N | :/dev/videoN], "
                          "realsense[:SERIAL], synthetic[:SEED[:LAYOUT:N[@VIEW]]], rig:RIG.toml, a video file, "
                          "a recording (.db3/.bag), or a folder of images")  # fmt: skip
    src.add_argument("--intrinsics", "--calib", dest="calib", metavar="FILE",
                     help="camera calibration (JSON fx/fy/cx/cy, OpenCV YAML/XML, or aniposelib TOML); "
                          "without it a default from --hfov is used and 3D is approximate")  # fmt: skip
    src.add_argument("--hfov", type=float, default=60.0, metavar="DEG",
                     help="horizontal field of view assumed without a calibration (default 60)")  # fmt: skip
    src.add_argument("--width", type=int, default=640, help="webcam width to request (default 640)")
    src.add_argument("--height", type=int, default=480, help="webcam height to request (default 480)")
    src.add_argument("--fps", type=float, default=30.0,
                     help="webcam frame rate to request; image-folder playback rate (default 30)")  # fmt: skip
    src.add_argument("--speed", choices=("auto", "realtime", "max"), default="auto",
                     help="playback pace of files: recorded speed or as fast as possible "
                          "(auto: realtime with a window, max otherwise)")  # fmt: skip
    src.add_argument("--loop", action="store_true",
                     help="play a video file again when it ends (the demo loops by itself in a window)")  # fmt: skip
    src.add_argument("--mirror", action="store_true",
                     help="the images are mirrored (selfie view): keeps left/right labels anatomical")  # fmt: skip

    trk = p.add_argument_group("tracking")
    trk.add_argument("--max-hands", type=int, default=2, help="most hands tracked at once (default 2)")
    trk.add_argument("--model", choices=("lite", "full"), default="full",
                     help="MediaPipe landmark model: lite is faster, full more accurate (default full)")  # fmt: skip
    trk.add_argument("--estimator", choices=("fused", "v2v", "mediapipe"), default="fused",
                     help="fused (default): MediaPipe 2D placed in 3D with the depth image when the source has "
                          "one (RealSense, synthetic), V2V-PoseNet on depth for hands RGB misses, RGB-only "
                          "without depth; v2v: V2V-PoseNet on the depth image for every hand (crops seeded by "
                          "MediaPipe when colour is present, else tracked / segmented in depth); mediapipe: RGB "
                          "only, ignore depth")  # fmt: skip
    trk.add_argument("--v2v-weights", type=Path, default=None, metavar="FILE",
                     help="V2V-PoseNet weights (default: the shipped models/weights/v2v_light.pt)")  # fmt: skip
    trk.add_argument("--smoothing", default="medium", metavar="PRESET|MIN_CUTOFF,BETA",
                     help="One Euro smoothing: off, low, medium (default), high, or MIN_CUTOFF,BETA[,D_CUTOFF] "
                          "(Hz, 1/unit)")  # fmt: skip
    trk.add_argument("--hand-scale", type=float, default=1.0,
                     help="your hand's size relative to an average adult hand; fixes the absolute depth "
                          "(default 1.0)")  # fmt: skip
    trk.add_argument("--prior", nargs="?", const=True, default=False, type=Path, metavar="FILE",
                     help="pull the 3D joints towards a pose prior (default file: the shipped "
                          "models/weights/prior_mp21.npz)")  # fmt: skip
    trk.add_argument("--refine", nargs="?", const=True, default=False, type=Path, metavar="FILE",
                     help="masked joint refiner on the 3D joints (default file: the shipped "
                          "models/weights/refiner_mp21.pt)")  # fmt: skip
    trk.add_argument("--fusion", choices=("ransac", "dlt", "learned"), default="ransac",
                     help="rig sources: how the views' 2D joints become one world-frame hand: ransac (default; "
                          "robust to a view's bad detection), dlt (weighted least squares over all views), "
                          "learned (the HaMuCo-style fusion network, models/weights/hamuco.pt)")  # fmt: skip
    trk.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="where torch models run (auto: CUDA when available)")  # fmt: skip

    out = p.add_argument_group("output")
    out.add_argument("--no-view", action="store_true", help="no window (headless)")
    out.add_argument("--save-video", metavar="PATH",
                     help="write the view to a video (.mp4/.avi) or PNG frames (a folder or .png); works headless")  # fmt: skip
    out.add_argument("--export", metavar="FILE", help="write joints per frame to .jsonl, .csv or .npz")
    out.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def is_rig_source(spec: SourceSpec) -> bool:
    """True for sources that deliver several views per frame set: ``rig:RIG.toml`` and whole
    synthetic rigs (``synthetic:SEED:desk|ring:N`` without ``@VIEW``)."""
    if spec.kind == "rig":
        return True
    return spec.kind == "synthetic" and isinstance(spec.target, tuple) and spec.target[1] != "single" \
        and spec.view is None


def check_rig_calibrated(path: str) -> None:
    """Raise :class:`tracker.io.intrinsics.CalibrationError` for a rig file without a calibration whose
    cameras do not bring their own extrinsics (only synthetic views do): it could capture but not
    triangulate."""
    from tracker.core.errors import CalibrationError
    from tracker.io.rig_file import load_rig

    rig = load_rig(path)
    if rig.calibration is None and not all(c.source.lower().startswith("synthetic") for c in rig.cameras):
        raise CalibrationError(f"rig {path} has no calibration = \"...\" file, so its cameras' positions are "
                               f"unknown: calibrate it first (python -m tracker.calibration.calibrate --rig {path}, see README)")


def resolve_torch_device(choice: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'. Raises RuntimeError for an unusable 'cuda'."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device (install a CUDA build of torch, check nvidia-smi)")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def _run_view(
    loop_running: Callable[[], bool],
    stats: Callable[[], LoopStats],
    results: Channel,
    stop: threading.Event,
    show: bool,
    video_path: str | None,
    fps: float,
) -> None:
    """Main-thread view: a window (``show``) and/or a recording of the rendered view.

    Returns when the window is closed, ``stop`` is set, or (headless) the pipeline has finished
    and every result has been drawn.
    """
    from tracker.view.view import TrackerView, VideoRecorder, run_window

    recorder = VideoRecorder(video_path, fps=fps) if video_path else None
    view = TrackerView(show=show)

    def draw(result: FrameResult) -> None:
        view.update(result, stats())
        if recorder is not None:
            recorder.write(view.render())

    try:
        if show:
            def poll() -> tuple | None:
                result = results.get_nowait()
                if result is None:
                    return None
                if recorder is not None:
                    draw(result)
                return result, stats()

            run_window(view, poll, stop)
            while recorder is not None and (result := results.get_nowait()) is not None:
                draw(result)  # results that arrived after the window stopped still go into the video
        else:
            while True:
                result = results.get(timeout=0.1)
                if result is not None:
                    draw(result)
                elif not loop_running():
                    break
    finally:
        view.close()
        if recorder is not None:
            recorder.close()
            log.info("wrote %s", video_path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    if args.v2v_weights is not None and not args.v2v_weights.is_file():
        log.error("--v2v-weights %s: no such file (train one with `python scripts/train_v2v.py`)", args.v2v_weights)
        return Exit.MODEL

    from tracker.core.errors import DeviceDisconnectedError, DeviceError, RecordingError
    from tracker.sinks.export import open_exporter
    from tracker.stages.depth_lift import DepthLiftConfig
    from tracker.core.errors import CalibrationError
    from tracker.io.intrinsics import load_intrinsics
    from tracker.runtime.loop import Channel, StreamingLoop
    from tracker.stages.landmarks import MediaPipeConfig
    from tracker.stages.lift import LiftConfig
    from tracker.post.one_euro import parse_smoothing
    from tracker.sinks.progress import ProgressLog
    from tracker.io.rig_file import RigFileError
    from tracker.build import RgbPipelineConfig, build_rgb_pipeline
    from tracker.fusion.rig import (ModelUnavailableError, RigPipelineConfig, build_rig_pipeline, prior_stage,
                                      refiner_stage, with_stages)  # fmt: skip
    from tracker.stages.v2v import V2VStageConfig
    from tracker.io.sources import SourceOptions, open_source, parse_source

    try:
        smoothing = parse_smoothing(args.smoothing)
        mp_config = MediaPipeConfig(max_hands=args.max_hands, model_complexity=0 if args.model == "lite" else 1,
                                    mirrored=args.mirror)  # fmt: skip
        lift_config = LiftConfig(hand_scale=args.hand_scale)
        if args.frames is not None and args.frames < 1:
            raise ValueError("--frames must be >= 1")
    except ValueError as exc:
        log.error("%s", exc)
        return Exit.USAGE

    try:
        torch_device = resolve_torch_device(args.device)
    except RuntimeError as exc:
        log.error("%s", exc)
        return Exit.ACCEL
    log.debug("torch device: %s", torch_device)

    try:
        intrinsics = load_intrinsics(args.calib) if args.calib else None
    except (CalibrationError, OSError) as exc:
        log.error("calibration: %s", exc)
        return Exit.CALIBRATION

    show = not args.no_view
    if show:
        from tracker.view.view import ViewUnavailableError, use_backend

        try:
            use_backend(headless=False)
        except ViewUnavailableError as exc:
            log.warning("no window possible (%s); running headless. Use --no-view to silence this.", exc)
            show = False
    if not show and args.save_video:
        from tracker.view.view import ViewUnavailableError, use_backend

        try:
            use_backend(headless=True)
        except ViewUnavailableError as exc:
            log.error("cannot render headless for --save-video: %s", exc)
            return Exit.VIEW

    realtime = show if args.speed == "auto" else args.speed == "realtime"
    try:
        spec = parse_source(args.source)
        # In a window the demo loops until the window is closed; headless it plays once.
        loop_playback = args.loop or (show and spec.kind in ("auto", "demo") and args.frames is None)
        options = SourceOptions(intrinsics, realtime, loop_playback, args.width, args.height, args.fps, args.hfov)
        if spec.kind == "rig":
            check_rig_calibrated(str(spec.target))
        device = open_source(spec, options)
    except RecordingError as exc:
        log.error("%s", exc)
        return Exit.RECORDING
    except (DeviceError, RigFileError) as exc:
        log.error("%s", exc)
        return Exit.SOURCE
    except CalibrationError as exc:
        log.error("calibration: %s", exc)
        return Exit.CALIBRATION
    log.info("source: %s (%s)", device.name, "live" if device.live else "playback")

    sinks = []
    exporter = None
    try:
        if args.export:
            exporter = open_exporter(args.export)
            sinks.append(exporter)
    except (ValueError, OSError) as exc:
        device.close()
        log.error("%s", exc)
        return Exit.USAGE

    try:
        if is_rig_source(spec):
            log.info("rig source: MediaPipe per view, %s fusion into the world frame", args.fusion)
            pipeline = build_rig_pipeline(RigPipelineConfig(mediapipe=mp_config, fusion=args.fusion, prior=args.prior,
                                                            refiner=args.refine, smoothing=smoothing))  # fmt: skip
        else:
            depth_config = DepthLiftConfig() if args.estimator in ("fused", "v2v") else None
            v2v_config = None
            if args.estimator in ("fused", "v2v"):
                v2v_config = V2VStageConfig(mode="replace" if args.estimator == "v2v" else "fallback",
                                            max_hands=args.max_hands,
                                            device=None if args.device == "auto" else args.device,
                                            **({"weights": args.v2v_weights} if args.v2v_weights else {}))  # fmt: skip
            pipeline = build_rgb_pipeline(RgbPipelineConfig(mediapipe=mp_config, lift=lift_config, depth=depth_config,
                                                            v2v=v2v_config, smoothing=smoothing))  # fmt: skip
            extra = []
            if args.prior is not False:
                extra.append(("prior", prior_stage(None if args.prior is True else args.prior)))
            if args.refine is not False:
                extra.append(("refiner", refiner_stage(None if args.refine is True else args.refine)))
            pipeline = with_stages(pipeline, extra, before="smoothing")
    except ModelUnavailableError as exc:
        device.close()
        if exporter is not None:
            exporter.close()
        log.error("%s", exc)
        return Exit.MODEL
    loop = StreamingLoop(device, pipeline, sinks, max_frames=args.frames)
    stop = threading.Event()
    wants_view = show or bool(args.save_video)
    # Recording a file keeps every frame for the video; a live window only wants the newest.
    results: Channel = Channel(latest_only=device.live or not args.save_video, capacity=8)
    if wants_view:
        loop.sinks.append(results.put)  # counters are read when a result is drawn, not per frame here
    if not show:
        loop.sinks.append(ProgressLog(loop.snapshot))

    code = Exit.OK
    interrupted = threading.Event()

    def on_sigint(*_: object) -> None:
        interrupted.set()
        stop.set()

    previous_sigint = signal.signal(signal.SIGINT, on_sigint)
    try:
        if wants_view:
            loop.start(stop)
            _run_view(loop.is_running, loop.snapshot, results, stop, show, args.save_video, args.fps)
            stop.set()  # window closed: end the pipeline too
            results.close()  # and never leave it waiting to hand over a result nobody will draw
            loop.join()
        else:
            loop.run(stop)
        if interrupted.is_set():
            code = Exit.INTERRUPTED
    except DeviceDisconnectedError as exc:
        log.error("%s", exc)
        code = Exit.DISCONNECTED
    except RecordingError as exc:
        log.error("%s", exc)
        code = Exit.RECORDING
    finally:
        signal.signal(signal.SIGINT, previous_sigint)
        results.close()
        stop.set()
        device.close()
        pipeline.close()
        if exporter is not None:
            exporter.close()
            log.info("wrote %s", exporter.path)
    stats = loop.snapshot()
    log.info("done: %s", stats.summary())
    return code


if __name__ == "__main__":
    sys.exit(main())
