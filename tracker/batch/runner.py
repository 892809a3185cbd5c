"""The batch scheduler: inputs to workers, outcomes to the manifest, progress to the terminal.

:func:`run_batch` keeps every worker of an engine busy with one input at a time, in the order given,
and appends each input's :class:`~tracker.batch.worker.Outcome` to the manifest the moment it
arrives. Inputs whose export is already complete are skipped (unless ``overwrite``): an export
exists under its final name only once it is whole (:func:`tracker.batch.worker.partial_path`), so a
re-run after a crash, a Ctrl-C or a failure does exactly the inputs left.

Manifest: ``DIR/manifest.jsonl``, one JSON object per line, appended (and flushed to disk) as each
input ends; the last line of an input is its state::

    {"input": "archive/take1.mp4", "export": "take1.jsonl", "status": "done",
     "frames": 912, "hands": 1790, "frames_with_hands": 901, "seconds": 14.2,
     "error": null, "error_type": null, "exit_code": 0, "fatal": false,
     "worker": "host:pid", "engine": "local", "time": "2026-12-04T17:02:11Z"}

``status`` is ``done``, ``failed`` (``error`` says why, ``error_type`` the error's family,
``exit_code`` what a single run would have exited with), ``interrupted`` (Ctrl-C / SIGTERM, nothing
written) or ``skipped`` (a complete export was found that the manifest did not list). :func:`read_manifest`
gives the last entry of every input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tracker.batch.engines import Engine
from tracker.batch.worker import Job, Outcome, partial_path
from tracker.config import OutputConfig, TrackerConfig, override
from tracker.core.errors import OutputError

__all__ = ["MANIFEST_NAME", "Manifest", "read_manifest", "batch_config", "BatchProgress", "BatchSummary",
           "run_batch"]  # fmt: skip

log = logging.getLogger("handtrack")

#: The manifest's file name in the output folder.
MANIFEST_NAME = "manifest.jsonl"

_POLL_S = 0.25  # how often the scheduler looks at signals and progress while inputs run


def batch_config(config: TrackerConfig) -> TrackerConfig:
    """``config`` as every input of a batch runs it: no window, no video, recording or streams (a
    config file's ``[output]`` settings other than ``frames``, its ``source.source`` and
    ``source.loop`` are not used, with a warning), playback as fast as possible and once; the source
    is set per input."""
    out, src = config.output, config.source
    dropped = [key for key, value in (("output.save_video", out.save_video), ("output.export", out.export),
                                      ("output.record", out.record), ("output.osc", out.osc),
                                      ("output.websocket", out.websocket), ("output.lsl", out.lsl),
                                      ("source.loop", src.loop), ("source.source", src.source != "auto"))
               if value]  # fmt: skip
    if dropped:
        log.warning("not used in a batch (each input gets one export in --output): %s", ", ".join(dropped))
    return override(config, **{"output": OutputConfig(view=False, frames=out.frames), "source.source": "auto",
                               "source.speed": "max", "source.loop": False})  # fmt: skip


class Manifest:
    """The append-only manifest of a batch's output folder (module docstring).

    Raises:
        OutputError: the manifest cannot be opened or written.
    """

    def __init__(self, folder: Path, engine: str) -> None:
        self.path = folder / MANIFEST_NAME
        self.engine = engine
        try:
            self._f: TextIO | None = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from exc

    def write(self, outcome: Outcome) -> None:
        """Append one line and flush it to disk."""
        if self._f is None:
            raise OutputError(f"manifest {self.path} is closed")
        entry = {**dataclasses.asdict(outcome), "engine": self.engine,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        try:
            self._f.write(json.dumps(entry) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise OutputError(f"writing the manifest {self.path} failed: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            f.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """The last manifest entry of every input in ``folder`` (empty without a manifest); a line that is
    not complete JSON (a crash while writing it) is skipped."""
    entries: dict[str, dict[str, Any]] = {}
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return entries
    with open(path, encoding="utf-8") as f:
        for line in f:
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "input" in entry:
                    entries[str(entry["input"])] = entry
    return entries


class BatchProgress:
    """Progress over inputs and frames on standard error: two tqdm bars on a terminal (inputs; frames
    with their rate), else a log line about every ``interval_s``.

    Log records are printed above the bars while they are open (tqdm's ``logging_redirect_tqdm``).
    """

    def __init__(self, total: int, tty: bool, stream: TextIO | None = None, interval_s: float = 5.0) -> None:
        self.total = total
        self.interval_s = interval_s
        self.done = 0
        self.failed = 0
        self._finished_frames = 0
        self._running: dict[int, int] = {}
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._bars: tuple[Any, Any] | None = None
        self._exit = contextlib.ExitStack()
        if tty:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            stream = stream if stream is not None else sys.stderr
            self._exit.enter_context(logging_redirect_tqdm(tqdm_class=tqdm))
            self._bars = (tqdm(total=total, unit="input", desc="inputs", file=stream, position=0, mininterval=0.5,
                               dynamic_ncols=True),
                          tqdm(unit="frame", desc="frames", file=stream, position=1, mininterval=0.5,
                               dynamic_ncols=True))  # fmt: skip

    @property
    def frames(self) -> int:
        """Frames processed so far, finished and running inputs together."""
        return self._finished_frames + sum(self._running.values())

    def update(self, running: dict[int, int]) -> None:
        """New frame counts of running inputs (job index -> frames so far)."""
        self._running.update(running)
        self._draw()

    def finished(self, job: Job, outcome: Outcome) -> None:
        """``job`` ended with ``outcome``."""
        self._running.pop(job.index, None)
        self._finished_frames += outcome.frames
        self.done += 1
        self.failed += outcome.status == "failed"
        if self._bars is not None:
            self._bars[0].update(1)
            if self.failed:
                self._bars[0].set_postfix_str(f"{self.failed} failed", refresh=False)
        self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        if self._bars is not None:
            bar = self._bars[1]
            bar.update(self.frames - bar.n)
        elif now - self._last_line >= self.interval_s:
            self._last_line = now
            fps = self.frames / max(now - self._t0, 1e-9)
            log.info("batch: %d/%d inputs (%d failed), %d frames, %.1f frames/s", self.done, self.total,
                     self.failed, self.frames, fps)  # fmt: skip

    def close(self) -> None:
        """Draw the final state and put the log handlers back (safe to call twice)."""
        if self._bars is not None:
            bars, self._bars = self._bars, None
            for bar in reversed(bars):
                bar.close()
        self._exit.close()


@dataclass
class BatchSummary:
    """What a batch did.

    Attributes:
        outcomes: one per input that ran (in the order they ended), plus the skipped ones.
        seconds: wall time of the scheduling, s (engine start-up not included).
        interrupted: a stop was asked for (Ctrl-C, SIGTERM).
        fatal: the outcome whose configuration error stopped the batch, or None.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    fatal: Outcome | None = None

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def frames(self) -> int:
        return sum(o.frames for o in self.outcomes)


def _outcome_of(future: Future[Outcome], job: Job) -> Outcome:
    """The future's outcome; a worker that died (crash, lost node) makes a ``failed`` one, and its
    partial export is removed here."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, RayActorError, ...: the worker is gone
        partial_path(job.export).unlink(missing_ok=True)
        return Outcome(job.input, job.export.name, "failed", error=f"the worker process died while this input "
                       f"(or another one running beside it) was tracked: {type(exc).__name__}: {exc}",
                       error_type=type(exc).__name__, exit_code=1)  # fmt: skip


def run_batch(jobs: Sequence[Job], engine: Engine, manifest: Manifest, overwrite: bool = False,
              stop: threading.Event | None = None, progress: BatchProgress | None = None) -> BatchSummary:  # fmt: skip
    """Run ``jobs`` on ``engine``, recording each outcome in ``manifest`` (module docstring).

    Args:
        jobs: the inputs and their exports (:func:`tracker.batch.inputs.plan_jobs`).
        engine: a started engine; not closed here.
        manifest: the output folder's manifest.
        overwrite: redo inputs whose export is already there.
        stop: set (by a signal handler) to end the batch: running inputs stop after their current
            frame and are recorded ``interrupted``, the others are not started.
        progress: where to show progress (None: nowhere).

    Returns:
        The :class:`BatchSummary`. A fatal outcome (:data:`tracker.batch.worker.FATAL_ERRORS`) stops
        the batch like a signal and is returned in ``fatal``.
    """
    stop = stop or threading.Event()
    summary = BatchSummary()
    previous = read_manifest(manifest.path.parent)
    todo: deque[Job] = deque()
    for job in jobs:
        if overwrite or not job.export.is_file():
            todo.append(job)
            continue
        skipped = Outcome(job.input, job.export.name, "skipped")
        summary.outcomes.append(skipped)
        if previous.get(job.input, {}).get("status") != "done":
            manifest.write(skipped)
        if progress is not None:
            progress.finished(job, skipped)
    if len(todo) < len(jobs):
        log.info("%d of %d inputs are already exported (--overwrite redoes them)", len(jobs) - len(todo), len(jobs))
    running: dict[Future[Outcome], Job] = {}
    stopping = False
    t0 = time.perf_counter()
    while todo or running:
        if not stopping and (stop.is_set() or engine.stop_requested() or summary.fatal is not None):
            stopping = True
            summary.interrupted = summary.fatal is None
            log.warning("stopping: %d running inputs end after their current frame, %d are not started",
                        len(running), len(todo))  # fmt: skip
            engine.stop()
            todo.clear()
        while todo and len(running) < engine.workers:
            job = todo.popleft()
            running[engine.submit(job)] = job
        done, _ = wait(running, timeout=_POLL_S, return_when=FIRST_COMPLETED)
        for future in done:
            job = running.pop(future)
            outcome = _outcome_of(future, job)
            manifest.write(outcome)
            summary.outcomes.append(outcome)
            if outcome.status == "failed":
                log.warning("failed: %s: %s", job.input, outcome.error)
            if outcome.fatal and summary.fatal is None:
                summary.fatal = outcome
            if progress is not None:
                progress.finished(job, outcome)
        reports = engine.progress()  # read even without a display: the reports must not pile up
        if progress is not None and running:
            progress.update({i: n for i, n in reports.items() if i in {j.index for j in running.values()}})
    summary.seconds = time.perf_counter() - t0
    return summary
