"""The VisPy backend and the GUI event loop of the view.

:func:`use_backend` chooses VisPy's application backend once per process, before any canvas is
made: offscreen EGL (headless) or a Qt window through PySide6. :func:`run_window` runs the GUI
event loop for a windowed :class:`tracker.view.TrackerView`, feeding it results through a
non-blocking ``poll``; nothing here sleeps or waits on the pipeline.

**Threads.** The view belongs to one thread, the GUI thread (the one that built it); the
pipeline hands results over through ``poll`` (e.g. a queue's ``get_nowait``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import vispy
from vispy import app as vispy_app

from tracker.core.errors import ViewError
from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats

if TYPE_CHECKING:
    from tracker.view.canvas import TrackerView

__all__ = ["ViewUnavailableError", "use_backend", "backend_selected", "run_window"]

logger = logging.getLogger(__name__)

_backend: str | None = None


class ViewUnavailableError(ViewError):
    """The VisPy backend cannot be initialised here (no display, no EGL, no Qt)."""


# --------------------------------------------------------------------------------------- backend


def _display_missing() -> bool:
    """True on Linux/BSD when no X11/Wayland display is reachable and Qt has no non-GUI platform set."""
    if sys.platform.startswith(("win", "darwin")):
        return False
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "eglfs", "linuxfb", "vnc"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _probe_qt() -> None:
    """Start a QApplication in a child process first: Qt *aborts* a process whose platform plugin
    cannot load (no X server, missing xcb libraries), which no ``except`` could catch here."""
    qt_widgets = sys.modules.get("PySide6.QtWidgets")
    if qt_widgets is not None and qt_widgets.QApplication.instance() is not None:
        return
    code = "from PySide6.QtWidgets import QApplication; QApplication([])"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ViewUnavailableError(f"could not test whether Qt can open a window: {exc}") from exc
    if proc.returncode != 0:
        said = " | ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())[-600:]
        raise ViewUnavailableError(
            f"Qt cannot open a window here ({said or f'exit status {proc.returncode}'}); install what it "
            "names (e.g. apt install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4) or run headless"
        )


def use_backend(headless: bool) -> str:
    """Select the VisPy backend once per process, before any canvas is made.

    Args:
        headless: True -> offscreen EGL (``EGL_PLATFORM`` defaults to ``surfaceless``, so no X
            server is needed); False -> a Qt window through PySide6.

    Returns:
        VisPy's name of the backend now in use (``"egl"`` or ``"PySide6"``).

    Raises:
        ViewUnavailableError: the backend cannot start here (no display for a window, no EGL /
            GPU driver for headless, PySide6 or Qt's system libraries missing), or another backend
            was already chosen in this process. The message says what to do. For a window, Qt is
            first started in a child process (~0.3 s), because Qt aborts a process it cannot start in.
    """
    global _backend
    wanted = "egl" if headless else "pyside6"
    if _backend is not None:
        if _backend.lower() == wanted:
            return _backend
        raise ViewUnavailableError(
            f"the VisPy backend is already {_backend!r} in this process and cannot switch to {wanted!r}; "
            "choose headless or windowed once, before the first view is made"
        )
    if headless:
        os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    elif _display_missing():
        raise ViewUnavailableError(
            "no display found (DISPLAY / WAYLAND_DISPLAY unset): run headless (render to a file) "
            "or start from a desktop session"
        )
    else:
        _probe_qt()
    try:
        vispy.use(app=wanted)
        app = vispy_app.use_app()
        app.create()
    except Exception as exc:  # vispy raises plain RuntimeError / ImportError with the backend's reason
        hint = (
            "headless rendering needs EGL: an NVIDIA driver or Mesa's libEGL (apt install libegl1 libgl1-mesa-dri)"
            if headless
            else "windowed mode needs PySide6 (pip install PySide6-Essentials) and a display"
        )
        raise ViewUnavailableError(f"cannot initialise the VisPy {wanted!r} backend: {exc}. {hint}") from exc
    _backend = str(app.backend_name)
    logger.info("VisPy backend: %s", _backend)
    return _backend


def backend_selected() -> bool:
    """True once VisPy's application backend is chosen (by :func:`use_backend` or by VisPy itself)."""
    from vispy.app import _default_app  # VisPy keeps the chosen app here; there is no public query

    return _default_app.default_app is not None


# ---------------------------------------------------------------------------------- event loop


def run_window(
    view: TrackerView,
    poll: Callable[[], tuple[FrameResult, LoopStats] | None],
    stop: threading.Event,
    interval_s: float = 1 / 60,
) -> None:
    """Run the GUI event loop for a windowed view until the window closes or ``stop`` is set.

    A VisPy timer calls ``poll()`` every ``interval_s`` seconds; ``poll`` must not block and
    returns the newest ``(result, stats)`` or None, which ``view.update`` then shows. Closing the
    window sets ``stop``; ``stop`` set from elsewhere (pipeline finished, Ctrl-C) quits the loop
    at the next tick. While the loop runs, Ctrl-C sets ``stop`` if nobody installed a SIGINT
    handler before (Qt would otherwise swallow it); the previous handler is restored afterwards.
    Returns at once when ``stop`` is already set. Must be called on the main/GUI thread, the one
    that built ``view``. Meant for windowed mode (Qt); VisPy's headless EGL loop also runs it, but
    closes every canvas when it quits.

    Raises:
        Exception: whatever ``poll`` or ``view.update`` raised (after ``stop`` is set and the loop quit).
    """
    if stop.is_set():
        return
    failure: list[BaseException] = []

    def on_close(event: object) -> None:
        stop.set()

    def on_tick(event: object) -> None:
        if stop.is_set():
            timer.stop()
            vispy_app.quit()
            return
        try:
            item = poll()
            if item is not None:
                view.update(*item)
        except Exception as exc:  # surfaced to the caller after the loop ends
            logger.exception("view update failed; stopping")
            failure.append(exc)
            stop.set()

    view.canvas.events.close.connect(on_close)
    timer = vispy_app.Timer(interval=interval_s, connect=on_tick, start=True)
    restore = _install_sigint(stop)
    try:
        view.canvas.show()
        vispy_app.run()
    finally:
        timer.stop()
        restore()
        view.canvas.events.close.disconnect(on_close)
    if failure:
        raise failure[0]


def _install_sigint(stop: threading.Event) -> Callable[[], None]:
    """Make Ctrl-C set ``stop`` (main thread, default handler only); returns the undo function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return lambda: None

    def handler(signum: int, frame: types.FrameType | None) -> None:
        logger.info("interrupted; stopping")
        stop.set()

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    return restore
