"""The streaming loop: a capture thread feeds the pipeline, results go to sinks.

Threads and hand-over:

* a **capture thread** reads the device as fast as it delivers. A live device hands frames over
  through a one-slot mailbox: a new frame replaces one the pipeline has not taken yet, and the
  replaced frame is counted as dropped, so the pipeline always works on the newest image and
  latency never builds up. A playback device hands over through a small FIFO and the capture thread
  waits when it is full, so every recorded frame is processed.
* the **pipeline** runs in the thread that calls :meth:`StreamingLoop.run` (or a worker started by
  :meth:`StreamingLoop.start`), and passes each :class:`FrameResult` to the sinks (exporters, the
  view's channel).
* every wait is on a condition variable or a join with a timeout; nothing polls in a spin.

Shutdown: setting the ``stop`` event (Ctrl-C, window closed, ``--frames`` reached) closes the
hand-over channel, which wakes both threads; the capture thread is joined with a timeout.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from devices.base import Device
from tracker.runtime.pipeline import Pipeline
from tracker.runtime.stats import LoopStats, StatsRecorder
from tracker.core.structures import FrameResult, FrameSet

__all__ = ["Channel", "ChannelClosed", "CaptureThread", "StreamingLoop", "Sink"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Sink = Callable[[FrameResult], None]


class ChannelClosed(Exception):
    """Raised by :meth:`Channel.get` when the channel is closed and empty."""


class Channel(Generic[T]):
    """A thread hand-over: ``latest_only`` (one-slot mailbox, replaced items are dropped) or a
    bounded FIFO (``put`` waits while full).

    Attributes:
        dropped: items replaced before anyone took them (latest-only mode).
    """

    def __init__(self, latest_only: bool, capacity: int = 4) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.latest_only = latest_only
        self.capacity = 1 if latest_only else capacity
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> bool:
        """Hand over ``item``. Returns False (item discarded) when the channel is closed."""
        with self._cond:
            if self.latest_only:
                if self._closed:
                    return False
                if self._items:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.capacity and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Take the oldest item, waiting up to ``timeout`` s (None = forever).

        Returns None on timeout. Raises :class:`ChannelClosed` once closed and drained.
        """
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    raise ChannelClosed
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_nowait(self) -> T | None:
        """The oldest item if there is one, else None (never raises for a closed channel)."""
        with self._cond:
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; wakes every waiter. Items already in the channel can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CaptureThread(threading.Thread):
    """Reads ``device`` into ``channel`` until end of stream, an error, or the channel closes.

    Each item is ``(frameset, t_capture)`` with ``t_capture`` = ``time.perf_counter()`` at the read.
    An exception from the device is kept in :attr:`error` and ends the stream.
    """

    def __init__(self, device: Device, channel: Channel[tuple[FrameSet, float]], stats: StatsRecorder,
                 taps: Sequence[Callable[[FrameSet], object]] = ()) -> None:  # fmt: skip
        super().__init__(name=f"capture-{device.name}", daemon=True)
        self.device = device
        self.channel = channel
        self.stats = stats
        self.taps = tuple(taps)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.channel.closed:
                frameset = self.device.read()
                if frameset is None:
                    log.info("%s: end of stream", self.device.name)
                    break
                self.stats.add_captured()
                for tap in self.taps:
                    tap(frameset)
                dropped_before = self.channel.dropped
                if not self.channel.put((frameset, time.perf_counter())):
                    break
                if self.channel.dropped > dropped_before:
                    self.stats.add_dropped(self.channel.dropped - dropped_before)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread, re-raised there
            self.error = exc
        finally:
            self.channel.close()


class StreamingLoop:
    """Capture -> pipeline -> sinks for one (opened) device.

    Args:
        device: an opened device; the caller owns opening and closing it.
        pipeline: the stages.
        sinks: called with every result, in the pipeline's thread (keep them quick; hand heavy work
            such as rendering to another thread through a :class:`Channel`).
        max_frames: stop after this many processed frame sets (None = until the stream ends).
        playback_capacity: FIFO size for non-live devices.
        taps: called with every captured frame set in the capture thread, before a live loop may
            skip it (e.g. a recorder that keeps every frame); must return at once.
    """

    def __init__(
        self,
        device: Device,
        pipeline: Pipeline,
        sinks: Sequence[Sink] = (),
        max_frames: int | None = None,
        playback_capacity: int = 4,
        taps: Sequence[Callable[[FrameSet], object]] = (),
    ) -> None:
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.device = device
        self.pipeline = pipeline
        self.sinks = list(sinks)
        self.taps = list(taps)
        self.max_frames = max_frames
        self.stats = StatsRecorder()
        self._channel: Channel[tuple[FrameSet, float]] = Channel(latest_only=device.live, capacity=playback_capacity)
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None

    def snapshot(self) -> LoopStats:
        return self.stats.snapshot()

    def run(self, stop: threading.Event | None = None) -> LoopStats:
        """Run until the stream ends, ``max_frames`` is reached, or ``stop`` is set.

        Raises whatever the device raised (after shutting down cleanly) so the caller can report it.
        """
        stop = stop or threading.Event()
        capture = CaptureThread(self.device, self._channel, self.stats, self.taps)
        capture.start()
        try:
            while not stop.is_set():
                try:
                    item = self._channel.get(timeout=0.1)
                except ChannelClosed:
                    break
                if item is None:
                    continue  # timed out: look at ``stop`` again
                frameset, t_capture = item
                result = self.pipeline(frameset, t_capture)
                self.stats.add_processed({**result.timings_ms, "latency": result.latency_ms})
                for sink in self.sinks:
                    sink(result)
                if self.max_frames is not None and self.stats.processed >= self.max_frames:
                    break
        finally:
            self._channel.close()
            capture.join(timeout=3.0)
            if capture.is_alive():
                log.warning("%s: capture thread did not stop within 3 s (device read blocked)", self.device.name)
        if capture.error is not None:
            raise capture.error
        return self.stats.snapshot()

    def start(self, stop: threading.Event) -> None:
        """Run :meth:`run` in a worker thread (for when the calling thread must run a GUI)."""

        def work() -> None:
            try:
                self.run(stop)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join()
                self._worker_error = exc
            finally:
                stop.set()

        self._worker = threading.Thread(target=work, name="pipeline", daemon=True)
        self._worker.start()

    def is_running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def join(self, timeout: float | None = None) -> LoopStats:
        """Wait for the worker; re-raise its error. Returns the final counters."""
        if self._worker is not None:
            self._worker.join(timeout)
        if self._worker_error is not None:
            raise self._worker_error
        return self.stats.snapshot()
