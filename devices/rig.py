"""A synchronized multi-camera rig: N devices captured in parallel, frames matched by timestamp.

Threads and hand-over:

* each child device is read by its own **capture thread** into a bounded queue. A live child keeps
  only its newest ``live_queue`` frames (older ones are replaced and counted as ``overwritten``); a
  playback child's thread waits while its queue is full, so every recorded frame is considered.
* :meth:`RigDevice.read` (the caller's thread) waits on one condition variable shared with the
  capture threads (never a busy-wait) until every camera has a frame, then matches: when the
  oldest heads are more than ``tolerance_ms`` older than the newest head they can no longer be
  matched and are dropped (counted per camera as ``unmatched``, logged); otherwise the heads form a
  frame set, one frame per camera in rig order.

Clocks: each frame is placed on the rig clock by the child's timestamp (``clock="device"``: the
frame's own timestamp in seconds, for recordings made together and for cameras sharing a clock)
or by the host time its capture thread received it (``clock="arrival"``: ``time.monotonic()`` s,
for live cameras whose own clocks differ), plus the view's ``offset_ms``. ``clock="auto"`` picks
``device`` unless the rig mixes live devices of different kinds (say a webcam, timed by the host's
monotonic clock, and a RealSense, timed by the SDK): then ``arrival`` for the live ones.
The offset of each camera from the first one (mean over matched sets) is tracked; when it moves more than ``drift_warn_ms`` from its
value over the first matched sets, a warning is logged (clocks drifting apart: frames will soon stop
matching).

End and errors: the stream ends (``read()`` returns None) when a child ends and its queued frames
are used up; a child that raises has its error re-raised by :meth:`RigDevice.read` with the
camera's name (same :class:`DeviceError` subclass); a camera that delivers nothing for
``read_timeout_s`` raises :class:`DeviceDisconnectedError` naming it. :meth:`close` stops the
threads, joins them with a timeout, and closes every child.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from tracker.core.structures import Camera, Frame, FrameSet

from devices._common import DeviceBase
from devices.base import Device
from tracker.core.errors import DeviceDisconnectedError, DeviceError

__all__ = ["RigView", "RigSync", "RigStats", "RigDevice", "Clock"]

log = logging.getLogger(__name__)

Clock = Literal["auto", "device", "arrival"]

#: Matched sets averaged for each camera's initial clock offset (the drift baseline).
_BASELINE_SETS = 10
#: Weight of a new matched set in the running clock offset (exponential mean over ~20 sets).
_OFFSET_ALPHA = 0.05


@dataclass(frozen=True)
class RigView:
    """One camera of a rig.

    Attributes:
        name: the camera's name in the rig (and in the calibration).
        device: the child device (not opened yet; the rig opens it). Must deliver one frame per read.
        camera: the calibrated camera (intrinsics for the calibrated image size, extrinsics world ->
            camera in mm) given to every frame of this view, or None to keep the child's own camera
            (renamed to ``name``).
        offset_ms: added to this camera's clock before matching, milliseconds (for recordings
            started at different times).
    """

    name: str
    device: Device
    camera: Camera | None = None
    offset_ms: float = 0.0


@dataclass(frozen=True)
class RigSync:
    """How frames are matched.

    Attributes:
        tolerance_ms: frames of one set lie within this many milliseconds of each other (on the rig
            clock); about half a frame interval (15 ms at 30 FPS).
        drift_warn_ms: warn when a camera's clock offset moves this far from its initial value, ms.
        clock: ``auto`` / ``device`` / ``arrival`` (see the module docstring).
        playback_queue: frames queued per playback child (its capture thread waits when full).
        live_queue: newest frames kept per live child.
        read_timeout_s: :meth:`RigDevice.read` raises when a camera delivers nothing this long, s.
    """

    tolerance_ms: float = 15.0
    drift_warn_ms: float = 5.0
    clock: Clock = "auto"
    playback_queue: int = 4
    live_queue: int = 2
    read_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.tolerance_ms > 0 or not self.drift_warn_ms > 0:
            raise ValueError(f"tolerance_ms and drift_warn_ms must be positive, got {self.tolerance_ms}, "
                             f"{self.drift_warn_ms}")  # fmt: skip
        if self.clock not in ("auto", "device", "arrival"):
            raise ValueError(f"clock must be 'auto', 'device' or 'arrival', got {self.clock!r}")
        if self.playback_queue < 1 or self.live_queue < 1:
            raise ValueError("playback_queue and live_queue must be >= 1")
        if not self.read_timeout_s > 0:
            raise ValueError(f"read_timeout_s must be positive, got {self.read_timeout_s}")


@dataclass(frozen=True)
class RigStats:
    """Counters of a rig, per camera in rig order.

    Attributes:
        matched: frame sets emitted.
        received: frames each capture thread delivered.
        unmatched: frames dropped because no frame of every other camera lay within the tolerance.
        overwritten: live frames replaced by newer ones before matching.
        offsets_ms: running clock offset of each camera from the first one, ms (0 for the first).
        drift_warnings: drift warnings logged.
    """

    matched: int
    received: tuple[int, ...]
    unmatched: tuple[int, ...]
    overwritten: tuple[int, ...]
    offsets_ms: tuple[float, ...]
    drift_warnings: int


@dataclass(frozen=True)
class _Item:
    frame: Frame
    t_rig: float  # seconds on the rig clock


class _Capture(threading.Thread):
    """Reads one child into a bounded deque guarded by the rig's shared condition."""

    def __init__(self, view: RigView, slot: int, cond: threading.Condition, stop: threading.Event,
                 use_arrival: bool, capacity: int) -> None:
        super().__init__(name=f"rig-capture-{view.name}", daemon=True)
        self.view = view
        self.slot = slot
        self.cond = cond
        self.stop = stop
        self.use_arrival = use_arrival
        self.live = bool(view.device.live)
        self.capacity = capacity
        self.queue: collections.deque[_Item] = collections.deque()
        self.done = False
        self.error: BaseException | None = None
        self.received = 0
        self.overwritten = 0
        self.last_delivery = time.monotonic()

    def run(self) -> None:
        offset_s = self.view.offset_ms / 1000.0
        try:
            while not self.stop.is_set():
                frameset = self.view.device.read()
                arrival = time.monotonic()
                if frameset is None:
                    log.info("rig camera %r: end of stream", self.view.name)
                    break
                if len(frameset.frames) != 1:
                    raise DeviceError(f"the device delivers {len(frameset.frames)} frames per read; a rig camera "
                                      "must be a single view (for a synthetic rig use synthetic:SEED:LAYOUT:N@VIEW)")
                frame = frameset.frames[0]
                item = _Item(frame, (arrival if self.use_arrival else frame.timestamp) + offset_s)
                with self.cond:
                    if self.live:
                        while len(self.queue) >= self.capacity:
                            self.queue.popleft()
                            self.overwritten += 1
                    else:
                        while len(self.queue) >= self.capacity and not self.stop.is_set():
                            self.cond.wait()
                        if self.stop.is_set():
                            break
                    self.queue.append(item)
                    self.received += 1
                    self.last_delivery = arrival
                    self.cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread, re-raised there
            self.error = exc
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()


class RigDevice(DeviceBase):
    """Several devices as one: each :meth:`read` returns a :class:`FrameSet` with one frame per camera.

    Args:
        views: the cameras in rig order (at least one; names unique).
        sync: matching settings.
        name: the device's name (``rig:FILE``).

    ``live`` is True when any child is live (the loop then keeps only the newest frame set).
    Frame sets carry the first camera's timestamp and count matched sets from 0 as ``index``;
    every frame keeps its own timestamp and index, and its camera is the view's calibrated
    :class:`Camera` (intrinsics rescaled where the image size differs from the calibrated one) or
    the child's camera renamed to the view's name.

    Raises (from :meth:`open`): whatever a child's ``open`` raises, re-raised with its name.
    """

    def __init__(self, views: Sequence[RigView], sync: RigSync = RigSync(), name: str = "rig") -> None:
        if not views:
            raise ValueError("a rig needs at least one camera")
        names = [v.name for v in views]
        if len(set(names)) != len(names):
            raise ValueError(f"rig camera names must be unique, got {names}")
        self.views = tuple(views)
        self.sync = sync
        self.name = name
        self.live = any(bool(v.device.live) for v in self.views)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._captures: list[_Capture] = []
        self._opened: list[Device] = []
        self._open = False
        self._reset_counters()

    @property
    def frame_count(self) -> int:
        """Most frame sets one pass can give: the shortest child's ``frame_count`` (0: unknown, i.e.
        a live child or a child that does not know its length)."""
        counts = [int(getattr(v.device, "frame_count", 0) or 0) for v in self.views]
        return 0 if self.live or not all(counts) else min(counts)

    @property
    def loop(self) -> bool:
        """True when a child plays again from the start after its end."""
        return any(bool(getattr(v.device, "loop", False)) for v in self.views)

    def _reset_counters(self) -> None:
        n = len(self.views)
        self._matched = 0
        self._unmatched = [0] * n
        self._offsets: list[float | None] = [None] * n  # running offset from camera 0, seconds
        self._baseline: list[list[float]] = [[] for _ in range(n)]
        self._drifting = [False] * n
        self._drift_warnings = 0
        self._camera_cache: dict[tuple[int, int, int], Camera] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Open every child (in parallel) and start the capture threads.

        Raises:
            DeviceError (subclass of the child's): a child cannot be opened; the message names the
                camera. Children already opened are closed again.
        """
        if self._open:
            return
        self._reset_counters()
        self._stop = threading.Event()
        with ThreadPoolExecutor(max_workers=len(self.views), thread_name_prefix="rig-open") as pool:
            futures = [pool.submit(v.device.open) for v in self.views]
            errors = []
            for view, future in zip(self.views, futures):
                exc = future.exception()
                if exc is None:
                    self._opened.append(view.device)
                else:
                    errors.append((view, exc))
        if errors:
            self._close_children()
            view, exc = errors[0]
            raise _with_camera(view, exc, "cannot be opened") from exc
        self._captures = []
        live_kinds = {type(v.device) for v in self.views if v.device.live}
        for slot, view in enumerate(self.views):
            live = bool(view.device.live)
            arrival = self.sync.clock == "arrival" or (self.sync.clock == "auto" and live and len(live_kinds) > 1)
            capacity = self.sync.live_queue if live else self.sync.playback_queue
            self._captures.append(_Capture(view, slot, self._cond, self._stop, arrival, capacity))
        for capture in self._captures:
            capture.start()
        self._open = True
        log.info("%s: %d cameras (%s), tolerance %.1f ms", self.name, len(self.views),
                 ", ".join(f"{v.name}={v.device.name}" for v in self.views), self.sync.tolerance_ms)  # fmt: skip

    def close(self) -> None:
        """Stop and join the capture threads (3 s at most in all), then close every child. Safe to call twice."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + 3.0
        for capture in self._captures:
            capture.join(timeout=max(0.0, deadline - time.monotonic()))
            if capture.is_alive():
                log.warning("%s: capture thread of camera %r did not stop within 3 s (its read is blocked); "
                            "closing the device under it", self.name, capture.view.name)  # fmt: skip
        if self._open:
            self._log_summary()
        self._captures = []
        self._close_children()
        self._open = False

    def _close_children(self) -> None:
        for device in self._opened:
            try:
                device.close()
            except Exception as exc:  # noqa: BLE001 - close the others anyway
                log.warning("%s: closing %s failed: %s", self.name, device.name, exc)
        self._opened = []

    # -- reading -----------------------------------------------------------------------------------

    def read(self) -> FrameSet | None:
        """The next matched frame set, or None when a camera's stream has ended.

        Raises:
            DeviceError subclass: a camera raised (the message names it); a camera delivered
                nothing for ``read_timeout_s`` (:class:`DeviceDisconnectedError`).
            RuntimeError: the device is not open.
        """
        if not self._open:
            raise self._not_open()
        tol = self.sync.tolerance_ms / 1000.0
        started = time.monotonic()  # a playback child blocked on its full queue is not late: count from here
        with self._cond:
            while True:
                waiting = [c for c in self._captures if not c.queue]
                for c in waiting:
                    if c.done:
                        if c.error is not None:
                            raise _with_camera(c.view, c.error, "failed") from c.error
                        log.info("%s: camera %r ended; end of the rig stream", self.name, c.view.name)
                        return None
                if self._stop.is_set():
                    return None
                if waiting:
                    now = time.monotonic()
                    since = {c.slot: max(c.last_delivery, started) for c in waiting}
                    stale = [c for c in waiting if now - since[c.slot] > self.sync.read_timeout_s]
                    if stale:
                        names = ", ".join(repr(c.view.name) for c in stale)
                        raise DeviceDisconnectedError(
                            f"{self.name}: camera {names} delivered no frame for {self.sync.read_timeout_s:g} s: "
                            "check its cable / source (or raise read_timeout_s)")  # fmt: skip
                    wait = min(since.values()) + self.sync.read_timeout_s - now
                    self._cond.wait(timeout=max(wait, 0.001))
                    continue
                newest = max(c.queue[0].t_rig for c in self._captures)
                late = [c for c in self._captures if c.queue[0].t_rig < newest - tol]
                if late:
                    for c in late:
                        self._drop(c, newest)
                    self._cond.notify_all()
                    continue
                items = [c.queue.popleft() for c in self._captures]
                self._cond.notify_all()
                break
        return self._emit(items)

    def _drop(self, capture: _Capture, newest: float) -> None:
        item = capture.queue.popleft()
        self._unmatched[capture.slot] += 1
        count = self._unmatched[capture.slot]
        level = logging.WARNING if count == 1 else logging.DEBUG
        log.log(level, "%s: dropped frame %d of camera %r (t=%.3f s): no set within %.1f ms (newest head %.3f s)%s",
                self.name, item.frame.index, capture.view.name, item.t_rig, self.sync.tolerance_ms, newest,
                "; further drops are counted in stats()" if count == 1 else "")  # fmt: skip

    def _emit(self, items: list[_Item]) -> FrameSet:
        self._track_offsets(items)
        frames = tuple(dataclasses.replace(it.frame, camera=self._camera(slot, it.frame))
                       for slot, it in enumerate(items))  # fmt: skip
        frameset = FrameSet(frames, frames[0].timestamp, self._matched)
        self._matched += 1
        return frameset

    def _camera(self, slot: int, frame: Frame) -> Camera:
        """The view's camera for ``frame`` (calibrated, rescaled to its size; or the child's, renamed)."""
        view = self.views[slot]
        if view.camera is None:
            return frame.camera if frame.camera.name == view.name else dataclasses.replace(frame.camera, name=view.name)
        width, height = frame.size
        camera = self._camera_cache.get((slot, width, height))
        if camera is None:
            intr = view.camera.intrinsics
            camera = view.camera
            if (intr.width, intr.height) != (width, height):
                log.warning("%s: camera %r is calibrated for %dx%d but delivers %dx%d: scaling the intrinsics; "
                            "calibrate at this resolution for metric accuracy", self.name, view.name,
                            intr.width, intr.height, width, height)  # fmt: skip
                camera = dataclasses.replace(view.camera, intrinsics=intr.scaled_to(width, height))
            self._camera_cache[(slot, width, height)] = camera
        return camera

    def _track_offsets(self, items: list[_Item]) -> None:
        t0 = items[0].t_rig
        for slot in range(1, len(items)):
            d = items[slot].t_rig - t0
            prev = self._offsets[slot]
            self._offsets[slot] = d if prev is None else (1.0 - _OFFSET_ALPHA) * prev + _OFFSET_ALPHA * d
            base = self._baseline[slot]
            if len(base) < _BASELINE_SETS:
                base.append(d)
                continue
            drift_ms = (self._offsets[slot] - sum(base) / len(base)) * 1000.0
            drifting = abs(drift_ms) > self.sync.drift_warn_ms
            if drifting and not self._drifting[slot]:
                self._drift_warnings += 1
                log.warning("%s: the clock of camera %r drifted %+.1f ms against %r since the start (tolerance "
                            "%.1f ms): frames will stop matching; sync the cameras (hardware sync, one host clock) "
                            "or set offset_ms", self.name, self.views[slot].name, drift_ms, self.views[0].name,
                            self.sync.tolerance_ms)  # fmt: skip
            self._drifting[slot] = drifting

    # -- reporting ---------------------------------------------------------------------------------

    def stats(self) -> RigStats:
        """The counters now (thread-safe)."""
        with self._cond:
            caps = self._captures
            received = tuple(c.received for c in caps) if caps else (0,) * len(self.views)
            overwritten = tuple(c.overwritten for c in caps) if caps else (0,) * len(self.views)
            offsets = tuple(0.0 if o is None else o * 1000.0 for o in self._offsets)
            return RigStats(self._matched, received, tuple(self._unmatched), overwritten, offsets,
                            self._drift_warnings)  # fmt: skip

    def _log_summary(self) -> None:
        s = self.stats()
        level = logging.WARNING if any(s.unmatched) else logging.INFO
        log.log(level, "%s: %d frame sets matched; per camera received %s, unmatched (dropped) %s, overwritten %s, "
                "clock offset ms %s", self.name, s.matched, list(s.received), list(s.unmatched), list(s.overwritten),
                [round(o, 2) for o in s.offsets_ms])  # fmt: skip


def _with_camera(view: RigView, exc: BaseException, what: str) -> BaseException:
    """``exc`` as the same :class:`DeviceError` subclass (else a plain one) naming the rig camera."""
    message = f"rig camera {view.name!r} ({view.device.name}) {what}: {exc}"
    if isinstance(exc, DeviceError):
        try:
            return type(exc)(message)
        except TypeError:  # a subclass with another constructor
            pass
    return DeviceError(f"{message} ({type(exc).__name__})")

