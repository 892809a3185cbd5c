"""One worker of a batch: loads the models once, then tracks one input after another.

A :class:`BatchWorker` lives in a worker process (a process of the local pool or a Ray actor). It
builds the pipeline of :func:`tracker.build.build_pipeline` the first time an input needs it (one
per number of views, so a rig recording gets the rig pipeline) and keeps it: before each input the
pipeline is :meth:`~tracker.runtime.pipeline.Pipeline.reset`, which makes the input's result
identical to a fresh ``handtrack --source INPUT --no-view --export FILE`` run (tested).

Each input runs through the same pieces as a single run (:func:`tracker.io.sources.open_source`,
:class:`~tracker.runtime.loop.StreamingLoop`, :func:`tracker.sinks.export.open_exporter`), played
as fast as possible (``--speed max``; playback processes every frame at any pace). The export is
written to a hidden temporary name beside the final one (:func:`partial_path`) and renamed when the
input is complete, so an export under its final name is always whole; a failed or interrupted input
leaves no file.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from tracker.core.errors import AcceleratorError, CalibrationError, HandtrackError, ModelError

if TYPE_CHECKING:
    from tracker.config import TrackerConfig
    from tracker.core.structures import FrameResult, Intrinsics
    from tracker.runtime.pipeline import Pipeline

__all__ = ["Job", "Outcome", "Status", "StopFlag", "BatchWorker", "partial_path", "load_calibration", "FATAL_ERRORS"]

log = logging.getLogger(__name__)

Status = Literal["done", "failed", "interrupted", "skipped"]

#: Errors that come from the configuration, not from an input: every input would fail the same way,
#: so the batch stops with the error's exit code instead of recording each input as failed.
FATAL_ERRORS: tuple[type[HandtrackError], ...] = (ModelError, AcceleratorError)

#: Seconds between two progress reports of a running input.
REPORT_INTERVAL_S = 0.25


class StopFlag(Protocol):
    """What tells a worker to stop: a :class:`threading.Event` or a :class:`multiprocessing.Event`."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Job:
    """One input of a batch.

    Attributes:
        index: position in the batch (0-based), also the key of its progress reports.
        input: the file or image folder, as a ``--source`` string.
        export: the export file it becomes (its suffix picks the format).
    """

    index: int
    input: str
    export: Path


@dataclass(frozen=True)
class Outcome:
    """What became of one input: one line of the manifest (:mod:`tracker.batch.runner`).

    Attributes:
        input: the input as given (:attr:`Job.input`).
        export: the export file's name (in the output folder).
        status: ``done`` (export complete), ``failed``, ``interrupted`` (Ctrl-C / SIGTERM; nothing
            written), ``skipped`` (a complete export was already there).
        frames: frame sets processed (for a failed input: before it failed).
        hands: hands found, summed over the frames.
        frames_with_hands: frames with at least one hand.
        seconds: wall time of the input in its worker, s (opening, tracking, writing).
        error: what went wrong (``failed``), else None.
        error_type: the exception's class name (``RecordingError``, ...), else None.
        exit_code: the exit code a single run would have ended with for this error (``tracker.cli.Exit``;
            1 when the worker process died).
        fatal: the error comes from the configuration (:data:`FATAL_ERRORS`): the batch stops.
        worker: ``host:pid`` of the worker process.
    """

    input: str
    export: str
    status: Status
    frames: int = 0
    hands: int = 0
    frames_with_hands: int = 0
    seconds: float = 0.0
    error: str | None = None
    error_type: str | None = None
    exit_code: int = 0
    fatal: bool = False
    worker: str = ""


def partial_path(export: Path) -> Path:
    """The temporary name an export is written to: hidden, in the same folder (so the final rename is
    atomic), with the format's suffix kept (``clip.jsonl`` -> ``.clip.partial.jsonl``)."""
    return export.with_name(f".{export.stem}.partial{export.suffix}")


def load_calibration(path: Path | None) -> Intrinsics | None:
    """The intrinsics of ``--calib`` (None without one).

    Raises:
        CalibrationError: the file cannot be read or parsed.
    """
    if path is None:
        return None
    from tracker.io.intrinsics import load_intrinsics

    try:
        return load_intrinsics(path)
    except OSError as exc:
        raise CalibrationError(f"calibration {path}: {exc}") from exc


class _Counter:
    """A sink that counts frames and hands and reports the frame count every :data:`REPORT_INTERVAL_S`."""

    def __init__(self, job: int, report: Callable[[int, int], None] | None) -> None:
        self.job = job
        self.report = report
        self.frames = 0
        self.hands = 0
        self.frames_with_hands = 0
        self._last = time.monotonic()

    def __call__(self, result: FrameResult) -> None:
        self.frames += 1
        self.hands += len(result.hands)
        self.frames_with_hands += bool(result.hands)
        now = time.monotonic()
        if self.report is not None and now - self._last >= REPORT_INTERVAL_S:
            self._last = now
            self.report(self.job, self.frames)


class BatchWorker:
    """Tracks inputs one at a time with pipelines built once (module docstring).

    Args:
        config: the batch's configuration (:func:`tracker.batch.runner.batch_config`: no view, no
            streams, playback at full speed, no loop); each input sets only its source.
        stop: set from outside (Ctrl-C, SIGTERM) to end the running input after its current frame.
        report: called as ``report(job_index, frames_so_far)`` about every 0.25 s while an input
            runs (the batch's progress bar).

    Nothing is loaded before the first :meth:`run`; :meth:`close` frees the models. An unexpected
    error (not a :class:`~tracker.core.errors.HandtrackError`) also frees them: the next input gets
    freshly built pipelines.
    """

    def __init__(self, config: TrackerConfig, stop: StopFlag,
                 report: Callable[[int, int], None] | None = None) -> None:  # fmt: skip
        self.config = config
        self.stop = stop
        self.report = report
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._pipelines: dict[int, Pipeline] = {}
        self._intrinsics: tuple[Intrinsics | None] | None = None  # loaded once: (value,)

    def run(self, job: Job) -> Outcome:
        """Track ``job.input`` into ``job.export``. Never raises for a bad input: the error is in the
        :class:`Outcome` (``failed``; ``fatal`` for a configuration error such as a missing model)."""
        from tracker.cli import exit_code

        t0 = time.perf_counter()
        counter = _Counter(job.index, self.report)
        tmp = partial_path(job.export)
        status: Status = "failed"
        error: BaseException | None = None
        try:
            finished = self._track(job.input, tmp, counter)
            if finished:
                os.replace(tmp, job.export)
                status = "done"
            else:
                status = "interrupted"
        except Exception as exc:  # noqa: BLE001 - any failure of one input is recorded, the batch goes on
            error = exc
            if not isinstance(exc, HandtrackError):  # unexpected: may have left a stage half-way, start afresh
                log.debug("%s failed", job.input, exc_info=True)
                self.close()
        finally:
            if status != "done":
                tmp.unlink(missing_ok=True)
        seconds = time.perf_counter() - t0
        if error is not None:
            log.info("%s: %s", job.input, error)
        return Outcome(
            input=job.input, export=job.export.name, status=status, frames=counter.frames, hands=counter.hands,
            frames_with_hands=counter.frames_with_hands, seconds=round(seconds, 3),
            error=None if error is None else str(error) or type(error).__name__,
            error_type=None if error is None else type(error).__name__,
            exit_code=0 if error is None else int(exit_code(error)),
            fatal=isinstance(error, FATAL_ERRORS), worker=self.name,
        )  # fmt: skip

    def _track(self, source: str, export: Path, counter: _Counter) -> bool:
        """Run the pipeline over ``source`` into ``export``; False when stopped before the end.

        Raises:
            HandtrackError: the source cannot be opened or decoded, the export cannot be written, a
                model cannot be loaded.
        """
        from tracker.io.rig_file import require_calibration
        from tracker.io.sources import SourceOptions, open_source, parse_source, views_per_frameset
        from tracker.runtime.loop import StreamingLoop
        from tracker.sinks.export import open_exporter

        src = self.config.source
        spec = parse_source(source)
        if spec.kind == "rig":
            require_calibration(str(spec.target))
        pipeline = self._pipeline(views_per_frameset(spec))
        pipeline.reset()  # the input starts a new stream, as in a fresh run
        options = SourceOptions(self._calibration(), False, False, src.width, src.height, src.fps, src.hfov_deg)
        exporter = open_exporter(export)
        try:
            device = open_source(spec, options)
            try:
                loop = StreamingLoop(device, pipeline, [exporter, counter], max_frames=self.config.output.frames)
                loop.run(self.stop)  # type: ignore[arg-type]  # any flag with is_set()
            finally:
                device.close()
        finally:
            exporter.close()
        reached_end = not self.stop.is_set()
        return reached_end or (self.config.output.frames is not None and counter.frames >= self.config.output.frames)

    def _pipeline(self, num_views: int) -> Pipeline:
        """The pipeline for ``num_views`` views, built (models loaded) at its first use."""
        if num_views not in self._pipelines:
            from tracker.build import build_pipeline

            log.debug("%s: building the %d-view pipeline", self.name, num_views)
            self._pipelines[num_views] = build_pipeline(self.config, num_views)
        return self._pipelines[num_views]

    def _calibration(self) -> Intrinsics | None:
        """``--calib`` (the same for every input), read at the first input.

        Raises:
            CalibrationError: the file cannot be read.
        """
        if self._intrinsics is None:
            self._intrinsics = (load_calibration(self.config.source.calibration),)
        return self._intrinsics[0]

    def close(self) -> None:
        """Free the models (safe to call more than once)."""
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()
