"""Keeping native libraries' start-up chatter off the terminal.

MediaPipe's C++ graph and the TensorFlow Lite runtime inside it print a few lines on every start,
straight to the process's stderr (file descriptor 2), past Python's logging::

    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    W0000 00:00:1796328638.280355   11347 inference_feedback_manager.cc:114] Feedback manager requires ...

They say nothing a user can act on, and neither ``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL`` nor
absl-py's verbosity reaches them (measured with mediapipe 0.10.14: absl's C++ logging before
``absl::InitializeLog`` writes everything). They are written by graph threads after the graph has
started, so redirecting stderr around one call misses some. :func:`quiet_native_logs` therefore
points fd 2 at a pipe for the whole run and forwards every line to the real stderr except the
known noise (:data:`NOISE`); Python's own output (logging, warnings, tracebacks) passes through
in order. OpenCV's lines about a camera it cannot open are silenced where the camera is probed
(:class:`devices.webcam.WebcamDevice`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import sys
import threading
from collections.abc import Iterator

__all__ = ["NOISE", "is_noise", "quiet_native_logs"]

log = logging.getLogger(__name__)

#: Lines (without the line end) dropped from stderr: MediaPipe's, TF Lite's and liblsl's start-up messages.
#: Errors (absl ``E``/``F`` lines) always pass.
NOISE: tuple[re.Pattern[bytes], ...] = (
    re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    re.compile(rb"INFO: Initialized TensorFlow Lite runtime\."),
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I0000 00:00:[\d.]+ +\d+ .*"),  # absl INFO before InitializeLog (e.g. GL context set-up)
    re.compile(rb"W0000 00:00:[\d.]+ +\d+ (inference_feedback_manager|landmark_projection_calculator)\.cc:\d+\] .*"),
    re.compile(rb".* (api_config|common)\.cpp:\d+ +INFO\| .*"),  # liblsl (--lsl) start-up
)

_FLUSH_PARTIAL_S = 0.1  # a line without its end is passed on after this long


def is_noise(line: bytes) -> bool:
    """True for a stderr line (without its line end) that :func:`quiet_native_logs` drops."""
    line = line.rstrip(b"\r")
    return any(p.fullmatch(line) for p in NOISE)


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``; a stderr that went away drops it."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except OSError:
            return


def _forward(read_fd: int, out_fd: int) -> None:
    """Copy lines from ``read_fd`` to ``out_fd`` until end of file, dropping noise lines.

    Never stops reading before end of file (a writer to a full pipe would block): after an
    unexpected error it copies the rest unfiltered.
    """
    pending = b""
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], _FLUSH_PARTIAL_S)
            if not ready:
                if pending:  # a prompt or progress text without a line end: pass it on now
                    _write_all(out_fd, pending)
                    pending = b""
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
            if kept:
                _write_all(out_fd, kept)
    except Exception:  # noqa: BLE001 - keep draining whatever happens
        while chunk := os.read(read_fd, 65536):
            _write_all(out_fd, chunk)
    finally:
        if pending:
            _write_all(out_fd, pending)
        os.close(read_fd)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """While active, drop native libraries' start-up noise (:data:`NOISE`) from stderr.

    Call it once around a whole run (the CLI: ``with quiet_native_logs(enabled=not args.verbose):``).
    File descriptor 2 is pointed at a pipe read by a small thread that forwards every other line to
    the real stderr; on exit fd 2 is restored and everything written is forwarded first. A no-op
    when ``enabled`` is False, off POSIX, when stderr has no file descriptor, or when nested.

    Args:
        enabled: False leaves stderr untouched (``--verbose``: show everything).
    """
    global _active
    if not enabled or os.name != "posix" or _active:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a detached process)
        yield
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, saved), name="stderr-filter", daemon=True)
    thread.start()
    _active = True
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the thread sees end of file
        thread.join(timeout=2.0)  # a child process still holding the pipe keeps it open: don't wait on it
        if not thread.is_alive():
            os.close(saved)
        _active = False


_active = False
