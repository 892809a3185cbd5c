"""The live view of the tracker (VisPy): camera image with 2D skeletons beside a 3D scene of the hands.

Public names, imported lazily so that ``import tracker.view`` (or one of its VisPy-free modules,
e.g. :mod:`tracker.view.mosaic`) does not start VisPy:

* :class:`TrackerView` (:mod:`tracker.view.canvas`) and its look, :class:`ViewConfig`;
* :func:`use_backend`, :func:`run_window` and :class:`ViewUnavailableError` (:mod:`tracker.view.window`).

The modules: ``colors`` (palettes, the quality colour scale), ``geometry`` (display frame, skeleton
and frustum segments, reprojection), ``mosaic`` (rig mode's grid of views), ``overlay`` (status
texts), ``skeleton`` (one hand's pooled visuals), ``config``, ``canvas``, ``window``. Recording the
rendered view to a file is a sink: :class:`tracker.sinks.video.VideoRecorder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracker.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tracker.view.canvas import TrackerView
    from tracker.view.config import ViewConfig
    from tracker.view.window import ViewUnavailableError, run_window, use_backend

__all__ = ["TrackerView", "ViewConfig", "run_window", "use_backend", "ViewUnavailableError"]

_HOME = {
    "TrackerView": "tracker.view.canvas",
    "ViewConfig": "tracker.view.config",
    "run_window": "tracker.view.window",
    "use_backend": "tracker.view.window",
    "ViewUnavailableError": "tracker.view.window",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
