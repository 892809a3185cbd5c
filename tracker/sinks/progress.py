"""Headless progress: a progress bar with ETA for playback of known length, else a status log line.

* :class:`ProgressBar` (tqdm, on standard error): frames done / total, frames per second, elapsed
  time and ETA, and the number of hands in the newest frame. For files, folders and synthetic
  scenes whose length is known (:func:`known_length`) when standard error is a terminal.
* :class:`ProgressLog`: one log line about once a second with the frame, each hand and the loop's
  FPS / drops (plus the share done and the ETA when the length is known). For live cameras, sources
  of unknown or endless length (``--loop``), and whenever standard error is not a terminal (a log
  file, CI), where a bar's carriage-return redraws would only clutter the output.

:func:`progress_sink` picks one. Both are sinks (``sink(result)``, ``sink.close()``) called in the
pipeline thread and cost microseconds per frame.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats

__all__ = ["ProgressBar", "ProgressLog", "known_length", "progress_sink"]

log = logging.getLogger("handtrack")


def known_length(device: Any, max_frames: int | None = None) -> int | None:
    """How many frame sets a run over ``device`` will process, when that is known; else None.

    A live device has no length (``--frames N`` stops it, but it keeps the status line). A playback
    device's length is its ``frame_count`` (one pass; 0 = unknown) unless it loops; ``max_frames``
    (``--frames``) caps it, and alone gives the length of a looping playback.
    """
    if getattr(device, "live", True):
        return None
    count = int(getattr(device, "frame_count", 0) or 0)
    if getattr(device, "loop", False) or count <= 0:
        return max_frames
    return count if max_frames is None else min(count, max_frames)


def _eta(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class ProgressLog:
    """Logs frame index, the hands (id, side, wrist depth in mm) and loop stats every ``interval_s``.

    Args:
        stats: the loop's counters (``StreamingLoop.snapshot``), read only when a line is written.
        interval_s: seconds between lines (the first result is logged at once).
        total: frame sets the run will process, if known: each line then ends with the share done
            and the ETA (from the loop's FPS).
    """

    def __init__(self, stats: Callable[[], LoopStats], interval_s: float = 1.0, total: int | None = None) -> None:
        self._stats = stats
        self.interval_s = interval_s
        self.total = total
        self._last = -math.inf  # the first result is logged at once, however young the monotonic clock

    def __call__(self, result: FrameResult) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        hands = ", ".join(
            f"id {h.track_id} {h.handedness}"
            + ("" if h.joints_3d is None else f" wrist z {h.joints_3d[0, 2]:.0f} mm")
            for h in result.hands
        )
        s = self._stats()
        done = ""
        if self.total:
            left = max(self.total - s.processed, 0)
            done = f", {100 * min(s.processed, self.total) / self.total:.0f}% of {self.total}"
            if s.fps > 0:
                done += f", ETA {_eta(left / s.fps)}"
        log.info("frame %d t=%.2f s: %s | %.1f FPS, dropped %d%s", result.index, result.timestamp,
                 hands or "no hands", s.fps, s.dropped, done)  # fmt: skip

    def close(self) -> None:
        """Nothing to finish (the same interface as :class:`ProgressBar`)."""


class ProgressBar:
    """A tqdm bar of ``total`` frames on ``stream`` (frames/s, elapsed, ETA, hands in the newest frame).

    While the bar is open, log records that would go to the console (the root logger's stderr /
    stdout handlers) are printed above it (tqdm's ``logging_redirect_tqdm``) instead of through it;
    :meth:`close` puts the handlers back.

    Args:
        total: frame sets expected (the bar's 100 %).
        stream: where the bar is drawn (default: ``sys.stderr`` at construction).
        mininterval: seconds between redraws at most every; above 0.1 s so that the CLI's stderr
            filter (:func:`tracker.runtime.quiet.quiet_native_logs`, which passes on a line without
            its end after 0.1 s of quiet) forwards every redraw.
    """

    def __init__(self, total: int, stream: TextIO | None = None, mininterval: float = 0.5) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.total = total
        self._hands = -1
        self._exit = contextlib.ExitStack()
        self._exit.enter_context(logging_redirect_tqdm(tqdm_class=tqdm))
        self._bar = tqdm(total=total, unit="frame", file=stream if stream is not None else sys.stderr,
                         mininterval=mininterval, dynamic_ncols=True, smoothing=0.1, leave=True)  # fmt: skip
        self._closed = False

    @property
    def n(self) -> int:
        """Frames counted so far."""
        return int(self._bar.n)

    def __call__(self, result: FrameResult) -> None:
        if self._closed:
            return
        if len(result.hands) != self._hands:
            self._hands = len(result.hands)
            self._bar.set_postfix_str(f"{self._hands} hand{'' if self._hands == 1 else 's'}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Draw the final state, end the bar's line and restore the log handlers; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._bar.close()
        finally:
            self._exit.close()


def progress_sink(device: Any, stats: Callable[[], LoopStats], max_frames: int | None = None,
                  tty: bool | None = None, stream: TextIO | None = None) -> ProgressLog | ProgressBar:  # fmt: skip
    """The headless progress sink for a run over ``device``: a bar or the status line (module docstring).

    Args:
        device: the opened source (its ``live``, ``frame_count`` and ``loop``; :func:`known_length`).
        stats: the loop's counters (``StreamingLoop.snapshot``).
        max_frames: ``--frames``, if given.
        tty: whether the terminal the user watches is standard error's. Default:
            ``stream.isatty()``. Pass the value measured before anything redirected file descriptor
            2 (the CLI's :func:`~tracker.runtime.quiet.quiet_native_logs` turns it into a pipe).
        stream: where a bar is drawn (default ``sys.stderr``).
    """
    stream = stream if stream is not None else sys.stderr
    total = known_length(device, max_frames)
    if tty is None:
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):  # a closed or odd stream
            tty = False
    if total and tty:
        return ProgressBar(total, stream)
    return ProgressLog(stats, total=total)
