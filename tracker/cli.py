"""``handtrack``: track hands in 3D from a camera, a rig or a recording, show, record or export them.

Examples::

  handtrack                                   # a connected RealSense, else webcam 0, else the bundled demo
  handtrack --source webcam:1 --calib my_cam.json
  handtrack --source clip.mp4 --no-view --export joints.jsonl
  handtrack --source demo --no-view --save-video out/demo_view.mp4
  handtrack --source rig:my_rig.toml --export world.jsonl      # multi-camera rig, world frame
  handtrack --config run.toml --max-hands 1                     # a config file, a flag overriding it
  handtrack --print-config > run.toml                           # every option with its value

Options come from the defaults of :class:`tracker.config.TrackerConfig`, then ``--config FILE``,
then the flags. Errors end with one log line and an exit code (:data:`EXIT_CODES`), never a
traceback. ``python run_tracker.py`` in a checkout is the same command.
"""

from __future__ import annotations

import argparse
import enum
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.core.errors import (
    AcceleratorError,
    CalibrationError,
    ConfigError,
    DeviceDisconnectedError,
    DeviceError,
    EstimatorError,
    HandtrackError,
    ModelError,
    OutputError,
    RecordingError,
    ViewError,
)

if TYPE_CHECKING:
    from tracker.config import TrackerConfig
    from tracker.core.structures import FrameResult
    from tracker.runtime.loop import Channel
    from tracker.runtime.stats import LoopStats

log = logging.getLogger("handtrack")


class Exit(enum.IntEnum):
    """Process exit codes; each says what failed."""

    OK = 0
    USAGE = 2  # bad command-line arguments or configuration (argparse uses 2 as well)
    SOURCE = 3  # camera / file / folder not found or not a supported kind
    RECORDING = 4  # a recording that cannot be decoded
    DISCONNECTED = 5  # a live camera stopped delivering frames
    CALIBRATION = 6  # intrinsics / calibration file missing or malformed
    OUTPUT = 7  # the view, the video or the export cannot be created or written
    ACCEL = 8  # --device cuda without a usable CUDA device
    MODEL = 9  # a model asked for (--prior, --refine, --gestures, --fusion learned, --v2v-weights) cannot be loaded or run
    INTERRUPTED = 130  # Ctrl-C / SIGTERM


#: Each error family -> its exit code; the first entry whose class matches wins (subclasses first).
EXIT_CODES: tuple[tuple[type[BaseException], Exit], ...] = (
    (ConfigError, Exit.USAGE),
    (DeviceDisconnectedError, Exit.DISCONNECTED),
    (RecordingError, Exit.RECORDING),
    (DeviceError, Exit.SOURCE),
    (CalibrationError, Exit.CALIBRATION),
    (ViewError, Exit.OUTPUT),
    (OutputError, Exit.OUTPUT),
    (AcceleratorError, Exit.ACCEL),
    (ModelError, Exit.MODEL),
    (EstimatorError, Exit.MODEL),
)


def exit_code(error: BaseException) -> Exit:
    """The exit code of an error (:data:`EXIT_CODES`); an unexpected HandtrackError is a usage error."""
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return Exit.USAGE


_AUTO_HELP = ("auto (default): a connected RealSense (RGB-D), else webcam 0, else the bundled demo "
              "recording when no camera can be opened")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser. Every option defaults to "not given" (``argparse.SUPPRESS``), so that
    only the flags on the command line override the config file; the defaults shown are
    :class:`~tracker.config.TrackerConfig`'s."""
    S = argparse.SUPPRESS
    p = argparse.ArgumentParser(
        prog="handtrack",
        description="Track hands in 3D (21 joints: pixels + millimetres in the camera frame) and show, "
        "record or export them. With no camera attached it plays the bundled demo recording.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: " + ", ".join(f"{e.value} {e.name.lower()}" for e in Exit)
        + "\n\nmany recordings at once, locally or on a Ray cluster: handtrack batch INPUT... --output DIR "
        "(handtrack batch --help)",
        argument_default=S,
    )
    cfg = p.add_argument_group("configuration")
    cfg.add_argument("--config", type=Path, metavar="FILE",
                     help="TOML file of options (see --print-config); flags given here override it")  # fmt: skip
    cfg.add_argument("--print-config", action="store_true",
                     help="print the effective configuration as TOML and exit")  # fmt: skip

    src = p.add_argument_group("input")
    src.add_argument("--source",
                     help=f"{_AUTO_HELP}; demo; webcam[:N | :/dev/videoN]; realsense[:SERIAL]; "
                          "synthetic[:SEED[:LAYOUT:N[@VIEW]]]; rig:RIG.toml; a handtrack recording (.mcap); a video "
                          "file; a RealSense recording (.db3/.bag); or a folder of images")  # fmt: skip
    src.add_argument("--intrinsics", "--calib", dest="calib", type=Path, metavar="FILE",
                     help="camera calibration (JSON fx/fy/cx/cy, OpenCV YAML/XML, or aniposelib TOML); "
                          "without it a default from --hfov is used and 3D is approximate")  # fmt: skip
    src.add_argument("--hfov", type=float, metavar="DEG",
                     help="horizontal field of view assumed without a calibration, in (1, 179) (default 60)")  # fmt: skip
    src.add_argument("--width", type=int, help="webcam width to request (default 640)")
    src.add_argument("--height", type=int, help="webcam height to request (default 480)")
    src.add_argument("--fps", type=float,
                     help="webcam frame rate to request; image-folder playback rate (default 30)")  # fmt: skip
    src.add_argument("--speed", choices=("auto", "realtime", "max"),
                     help="playback pace of files: recorded speed or as fast as possible "
                          "(auto: realtime with a window, max otherwise)")  # fmt: skip
    src.add_argument("--loop", action="store_true",
                     help="play a video file, recording or image folder again when it ends (the demo loops by "
                          "itself in a window)")  # fmt: skip
    src.add_argument("--mirror", action="store_true",
                     help="the images are mirrored (selfie view): keeps left/right labels anatomical")  # fmt: skip

    trk = p.add_argument_group("tracking")
    trk.add_argument("--max-hands", type=int, help="most hands tracked at once (default 2)")
    trk.add_argument("--landmarker", choices=("mediapipe", "litert"),
                     help="what runs MediaPipe's hand models: litert (default: the models on LiteRT with handtrack's "
                          "tracking, ~3x faster, same joints) or mediapipe (its own graph, the reference)")  # fmt: skip
    trk.add_argument("--model", choices=("lite", "full"),
                     help="MediaPipe landmark model: lite is faster, full more accurate (default full)")  # fmt: skip
    trk.add_argument("--estimator", choices=("fused", "v2v", "mediapipe", "crossmodal"),
                     help="fused (default): MediaPipe 2D placed in 3D with the depth image when the source has "
                          "one (RealSense, synthetic), V2V-PoseNet on depth for hands RGB misses, RGB-only "
                          "without depth; v2v: V2V-PoseNet on the depth image for every hand (crops seeded by "
                          "MediaPipe when colour is present, else tracked / segmented in depth); mediapipe: RGB "
                          "only, ignore depth; crossmodal: the cross-modal latent model's hand shape (from RGB, "
                          "fused with the depth points when there is depth), placed like fused; single-view "
                          "sources")  # fmt: skip
    trk.add_argument("--v2v-weights", type=Path, metavar="FILE",
                     help="V2V-PoseNet weights (default: the shipped v2v_light checkpoint)")  # fmt: skip
    trk.add_argument("--smoothing", metavar="PRESET|MIN_CUTOFF,BETA",
                     help="One Euro smoothing: off, low, medium (default), high, or MIN_CUTOFF,BETA[,D_CUTOFF] "
                          "(Hz, 1/unit)")  # fmt: skip
    trk.add_argument("--hand-scale", type=float,
                     help="your hand's size relative to an average adult hand; fixes the absolute depth "
                          "(default 1.0)")  # fmt: skip
    trk.add_argument("--prior", nargs="?", const=True, type=Path, metavar="FILE",
                     help="pull the 3D joints of every hand towards a pose prior (default file: the shipped "
                          "21-joint prior); without it the prior runs on RGB-only single-view frames")  # fmt: skip
    trk.add_argument("--no-prior", action="store_true", help="no pose prior at all")
    trk.add_argument("--refine", nargs="?", const=True, type=Path, metavar="FILE",
                     help="masked joint refiner on the 3D joints (default file: the shipped mp21 refiner)")  # fmt: skip
    trk.add_argument("--gestures", nargs="?", const="shrec14", metavar="MODEL",
                     help="detect gestures on every hand as they happen (and pinch / grab): shrec14 (default: "
                          "the 14 SHREC'17 gestures), shrec28, a checkpoint .pt or your own gesture set .npz "
                          "(python -m models.gestures enrol); events go to the export, streams and view")  # fmt: skip
    trk.add_argument("--temporal-refine", nargs="?", const="temporal_refiner", metavar="MODEL",
                     help="refine the 3D joints causally with an HTT pose block (default: the shipped "
                          "temporal_refiner) instead of One Euro smoothing (unless --smoothing is given too); "
                          "measured against One Euro in the README")  # fmt: skip
    trk.add_argument("--grip", action="store_true",
                     help="pinch / grab state of every hand (no model; on with --gestures)")  # fmt: skip
    trk.add_argument("--fusion", choices=("ransac", "dlt", "learned"),
                     help="rig sources only: how the views' 2D joints become one world-frame hand: ransac "
                          "(default; robust to a view's bad detection), dlt (weighted least squares over all "
                          "views), learned (the HaMuCo-style fusion network)")  # fmt: skip
    trk.add_argument("--device", choices=("auto", "cpu", "cuda"),
                     help="where torch models run (auto: CUDA when available)")  # fmt: skip

    out = p.add_argument_group("output")
    out.add_argument("--no-view", action="store_true", help="no window (headless)")
    out.add_argument("--save-video", type=Path, metavar="PATH",
                     help="write the view to a video (.mp4/.avi) or PNG frames (a folder or .png); works headless")  # fmt: skip
    out.add_argument("--export", type=Path, metavar="FILE",
                     help="write joints per frame to .jsonl, .csv or .npz; - writes JSON Lines to standard output")  # fmt: skip
    out.add_argument("--record", type=Path, metavar="FILE.mcap",
                     help="record the session (every view's colour and depth, cameras, results) to an MCAP file; "
                          "play it back with --source FILE.mcap")  # fmt: skip
    out.add_argument("--record-quality", type=int, metavar="N",
                     help="record colour as JPEG of quality N (1-100) instead of lossless PNG")  # fmt: skip
    out.add_argument("--record-only", action="store_true", help="capture and record without tracking")
    out.add_argument("--osc", metavar="HOST:PORT", help="stream joints as OSC messages over UDP (see README)")
    out.add_argument("--websocket", metavar="[HOST:]PORT",
                     help="serve joints as JSON over WebSocket and the browser viewer over HTTP on this port "
                          "(host 127.0.0.1 unless given; 0.0.0.0 for other machines)")  # fmt: skip
    out.add_argument("--lsl", action="store_true", help="publish a Lab Streaming Layer stream of the joints")
    out.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


#: flag -> dotted config key (flags whose value is taken as it is)
_FLAG_KEYS: dict[str, str] = {
    "source": "source.source",
    "calib": "source.calibration",
    "hfov": "source.hfov_deg",
    "width": "source.width",
    "height": "source.height",
    "fps": "source.fps",
    "speed": "source.speed",
    "loop": "source.loop",
    "mirror": "landmarks.mirrored",
    "max_hands": "landmarks.max_hands",
    "landmarker": "landmarks.backend",
    "estimator": "depth.estimator",
    "v2v_weights": "depth.v2v.weights",
    "hand_scale": "lift.hand_scale",
    "fusion": "fusion.method",
    "device": "device",
    "save_video": "output.save_video",
    "export": "output.export",
    "frames": "output.frames",
    "record": "output.record",
    "record_quality": "output.record_quality",
    "record_only": "output.record_only",
    "osc": "output.osc",
    "websocket": "output.websocket",
    "lsl": "output.lsl",
}


def config_from_args(args: argparse.Namespace) -> TrackerConfig:
    """Defaults, then ``--config``, then the flags given.

    Raises:
        ConfigError: a bad file or value (the message names the option).
    """
    from tracker.config import TrackerConfig, load_config, override
    from tracker.post.one_euro import parse_smoothing

    given = vars(args)
    config = load_config(given["config"]) if "config" in given else TrackerConfig()
    changes: dict[str, Any] = {key: given[flag] for flag, key in _FLAG_KEYS.items() if flag in given}
    if "model" in given:
        changes["landmarks.model_complexity"] = 0 if given["model"] == "lite" else 1
    if "smoothing" in given:
        try:
            changes["smoothing"] = parse_smoothing(given["smoothing"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    for flag, table in (("prior", "prior"), ("refine", "refiner")):
        if flag in given:
            changes[f"{table}.enabled"] = True
            if given[flag] is not True:
                changes[f"{table}.path"] = given[flag]
    if "gestures" in given:
        changes["gestures.model"] = given["gestures"]
    if "temporal_refine" in given:
        changes["temporal_refine.model"] = given["temporal_refine"]
        if "smoothing" not in given:  # refiner + One Euro lags: worse than either alone (README)
            changes["smoothing"] = None
    if given.get("no_prior"):
        if "prior" in given:
            raise ConfigError("--prior and --no-prior contradict each other")
        changes["prior.enabled"] = False
    if given.get("grip"):
        changes["grip.enabled"] = True
    if given.get("no_view"):
        changes["output.view"] = False
    return override(config, **changes)


def _run_view(
    loop_running: Callable[[], bool],
    stats: Callable[[], LoopStats],
    results: Channel,
    stop: threading.Event,
    show: bool,
    video_path: Path | None,
    fps: float,
) -> None:
    """Main-thread view: a window (``show``) and/or a recording of the rendered view.

    Returns when the window is closed, ``stop`` is set, or (headless) the pipeline has finished
    and every result has been drawn.
    """
    from tracker.sinks.video import VideoRecorder
    from tracker.view import TrackerView, run_window

    recorder = VideoRecorder(str(video_path), fps=fps) if video_path else None
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


def _choose_view(config: TrackerConfig) -> bool:
    """Whether a window opens (False: headless). Checks the headless renderer when a video is asked for.

    Raises:
        ViewError: ``--save-video`` without any way to render.
    """
    from tracker.view import ViewUnavailableError, use_backend

    show = config.output.view
    if show:
        try:
            use_backend(headless=False)
        except ViewUnavailableError as exc:
            log.warning("no window possible (%s); running headless. Use --no-view to silence this.", exc)
            show = False
    if not show and config.output.save_video is not None:
        try:
            use_backend(headless=True)
        except ViewUnavailableError as exc:
            raise ViewError(f"cannot render headless for --save-video: {exc}") from exc
    return show


def run(config: TrackerConfig, stderr_tty: bool = False) -> Exit:
    """Run the tracker as configured until the source ends, ``output.frames`` is reached, the
    window closes or the process is interrupted. Every output (exports, video, recording, streams)
    is finalised whatever ends the run. ``stderr_tty``: draw a progress bar for playback.

    Raises:
        HandtrackError: at start-up (source, calibration, models, outputs); during the run only
            the source's errors (disconnected camera, corrupt recording).
    """
    from tracker.build import build_pipeline
    from tracker.io.intrinsics import load_intrinsics
    from tracker.io.rig_file import require_calibration
    from tracker.io.sources import SourceOptions, open_source, parse_source, views_per_frameset
    from tracker.runtime.pipeline import Pipeline
    from tracker.sinks.export import check_export_path, open_exporter
    from tracker.sinks.video import check_video_path

    out = config.output
    if out.save_video is not None:  # bad output paths fail in a second, before anything slow
        check_video_path(out.save_video)
    if out.export is not None:
        check_export_path(out.export)
    if out.record is not None:
        from tracker.io.recording import check_record_path

        check_record_path(out.record)
    if config.device != "auto":
        from models import resolve_device

        log.debug("torch device: %s", resolve_device(config.device))
    try:
        intrinsics = load_intrinsics(config.source.calibration) if config.source.calibration else None
    except OSError as exc:
        raise CalibrationError(f"calibration {config.source.calibration}: {exc}") from exc

    log.info("starting: source %s, estimator %s, device %s%s", config.source.source, config.depth.estimator,
             config.device, "" if config.output.view else ", no view")  # fmt: skip
    show = _choose_view(config)
    src = config.source
    realtime = show if src.speed == "auto" else src.speed == "realtime"
    spec = parse_source(src.source)
    if spec.kind == "rig":
        require_calibration(str(spec.target))
    num_views = views_per_frameset(spec)
    if num_views == 1 and config.fusion.method != "ransac":
        log.warning("--fusion %s only applies to rig sources (several cameras); ignored for this single-camera "
                    "source", config.fusion.method)  # fmt: skip
    # In a window the demo loops until the window is closed; headless it plays once.
    loop_playback = src.loop or (show and spec.kind in ("auto", "demo") and out.frames is None)
    options = SourceOptions(intrinsics, realtime, loop_playback, src.width, src.height, src.fps, src.hfov_deg)

    resources: list[Callable[[], None]] = []  # closed in reverse order, whatever happens
    sinks: list[Callable[[FrameResult], None]] = []
    try:
        if out.export is not None:
            exporter = open_exporter(out.export)
            resources.append(exporter.close)
            sinks.append(exporter)
        sinks += _stream_sinks(config, num_views, resources)
        if out.record_only:
            pipeline = Pipeline([])  # capture and record, no models
        else:
            if num_views > 1:
                log.info("rig source: MediaPipe per view, %s fusion into the world frame", config.fusion.method)
            pipeline = build_pipeline(config, num_views)
        resources.append(pipeline.close)
        device = open_source(spec, options)
        resources.append(device.close)
        log.info("source: %s (%s)", device.name, "live" if device.live else "playback")
        recorder = None
        taps: list[Callable[[Any], object]] = []
        if out.record is not None:
            from tracker.io.recording import RecordingWriter

            recorder = RecordingWriter(out.record, quality=out.record_quality, record_hands=not out.record_only,
                                       device=device.name)  # fmt: skip
            resources.insert(0, recorder.close)  # closed last: it holds the most data in flight
            if device.live:  # every captured frame set, also those the live loop skips to stay live
                taps.append(recorder.capture)
                sinks.insert(0, recorder.hands)
            else:  # playback: the loop processes every frame set
                sinks.insert(0, recorder)
        code = _stream(config, device, pipeline, sinks, show, stderr_tty, taps)
        if recorder is not None and recorder.dropped:
            log.warning("recording: %d frame sets were dropped because the writer could not keep up",
                        recorder.dropped)  # fmt: skip
        return code
    finally:
        for close in reversed(resources):
            close()
        if out.export is not None and resources:
            log.info("wrote %s", "standard output" if str(out.export) == "-" else out.export)
        if out.record is not None and resources:
            log.info("recorded %s (play it with --source %s)", out.record, out.record)


def _stream_sinks(config: TrackerConfig, num_views: int, resources: list[Callable[[], None]]
                  ) -> list[Callable[[FrameResult], None]]:
    """The streaming sinks asked for (OSC, WebSocket + browser viewer, LSL), started now; their
    ``close`` goes into ``resources``.

    Raises:
        ConfigError: a bad address or a missing optional package.
        OutputError: a port that cannot be bound.
    """
    from tracker.config import parse_address

    out = config.output
    sinks: list[Callable[[FrameResult], None]] = []
    if out.osc is not None:
        from tracker.sinks.osc import OscSink

        host, port = parse_address(out.osc, "--osc", need_host=True, min_port=1)
        osc = OscSink(host, port)
        resources.append(osc.close)
        sinks.append(osc)
    if out.websocket is not None:
        from tracker.sinks.websocket import WebSocketSink

        host, port = parse_address(out.websocket, "--websocket")
        ws = WebSocketSink(port, host)  # logs its URLs (the viewer page and the stream)
        resources.append(ws.close)
        sinks.append(ws)
    if out.lsl:
        from tracker.sinks.lsl import LslSink

        lsl = LslSink(max_hands=config.landmarks.max_hands, reference="world" if num_views > 1 else "camera")
        resources.append(lsl.close)
        sinks.append(lsl)
    return sinks


def _stream(config: TrackerConfig, device: Any, pipeline: Any, sinks: list[Callable[[FrameResult], None]],
            show: bool, stderr_tty: bool, taps: list[Callable[[Any], object]]) -> Exit:
    """The streaming loop with its sinks and capture taps, the view and signal handling (see :func:`run`)."""
    from tracker.runtime.loop import Channel, StreamingLoop
    from tracker.sinks.progress import progress_sink

    out = config.output
    loop = StreamingLoop(device, pipeline, list(sinks), max_frames=out.frames, taps=taps)
    stop = threading.Event()
    wants_view = show or out.save_video is not None
    # Recording a file keeps every frame for the video; a live window only wants the newest.
    results: Channel = Channel(latest_only=device.live or out.save_video is None, capacity=8)
    if wants_view:
        loop.sinks.append(results.put)  # counters are read when a result is drawn, not per frame here
    progress = None if show else progress_sink(device, loop.snapshot, out.frames, tty=stderr_tty)
    if progress is not None:
        loop.sinks.append(progress)

    code = Exit.OK
    interrupted = threading.Event()

    def on_signal(*_: object) -> None:
        interrupted.set()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if wants_view:
            loop.start(stop)
            _run_view(loop.is_running, loop.snapshot, results, stop, show, out.save_video, config.source.fps)
            stop.set()  # window closed: end the pipeline too
            results.close()  # and never leave it waiting to hand over a result nobody will draw
            loop.join()
        else:
            loop.run(stop)
        if interrupted.is_set():
            code = Exit.INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        results.close()
        stop.set()
        if progress is not None:
            progress.close()
    log.info("done: %s", loop.snapshot().summary())
    return code


def main(argv: list[str] | None = None) -> int:
    """The ``handtrack`` command. Returns the exit code (:class:`Exit`)."""
    from tracker.runtime.quiet import quiet_native_logs

    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("numba").setLevel(logging.INFO)  # its DEBUG is thousands of compiler lines
    try:
        config = config_from_args(args)
        if getattr(args, "print_config", False):
            from tracker.config import config_to_toml

            sys.stdout.write(config_to_toml(config))
            return Exit.OK
        stderr_tty = sys.stderr.isatty()  # measured before the log filter turns fd 2 into a pipe
        with quiet_native_logs(enabled=not verbose):  # OpenCV / absl / TF Lite start-up chatter
            return run(config, stderr_tty)
    except HandtrackError as exc:
        code = exit_code(exc)
        log.error("%s", exc)
        return code
    except KeyboardInterrupt:  # Ctrl-C while starting up (models loading, camera opening)
        log.error("interrupted")
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
