"""Numba kernels of handtrack: pure ``@njit`` free functions on arrays.

* :mod:`kernels.depth`: depth image -> camera-frame points, centre of mass.
* :mod:`kernels.voxel`: the V2V-PoseNet grid convention (defined there once) and occupancy grids.
* :mod:`kernels.heatmap`: Gaussian heatmap targets and the sub-voxel argmax read-out.
* :mod:`kernels.triangulate`: weighted multi-view DLT, RANSAC over views, reprojection errors and
  per-point statistics (RMS error, propagated uncertainty).
* :mod:`kernels.reference`: plain NumPy references of all of the above (tests and benchmarks).

Every kernel compiles on first use (``cache=True``: once per machine, kept in ``__pycache__``).
The first compilation in a process logs one INFO line on the ``kernels`` logger, since a first run
waits for it (about 25 s of CPU for the synthetic source's renderer); loads from the cache say
nothing.
"""

import logging
import time

from kernels.depth import center_of_mass, depth_center_of_mass, depth_to_points
from kernels.heatmap import (
    REFINE_GAUSS,
    REFINE_MEAN,
    gaussian_heatmaps,
    gaussian_heatmaps_batch,
    gaussian_heatmaps_into,
    subvoxel_argmax,
    subvoxel_argmax_batch,
    subvoxel_argmax_into,
)
from kernels.triangulate import (
    reprojection_errors,
    triangulate_dlt,
    triangulate_dlt_batch,
    triangulate_dlt_into,
    triangulate_ransac,
    triangulate_ransac_batch,
    triangulate_ransac_into,
    triangulation_stats,
)
from kernels.voxel import (
    cube_pixel_bbox,
    grid_params,
    grid_to_world,
    points_in_cube,
    voxelize_depth,
    voxelize_depth_into,
    voxelize_points,
    voxelize_points_into,
    world_to_grid,
)

log = logging.getLogger(__name__)

#: CPU seconds the first compilation of a run's kernels takes (the synthetic source's renderer:
#: 25.8 s user time measured with an empty NUMBA_CACHE_DIR), quoted in the log.
FIRST_COMPILE_S = 25


def _announce_compilation() -> None:
    """Log once per process, at INFO, when one of these kernels is compiled rather than loaded from
    Numba's cache, and each compilation's duration at DEBUG. Uses Numba's ``numba:compile`` event,
    which fires on cache misses only."""
    try:
        from numba.core import event
    except ImportError:  # a Numba without the event API: compile silently
        return

    class _CompileLog(event.Listener):
        def __init__(self) -> None:
            self.announced = False
            self.started: dict[int, float] = {}

        @staticmethod
        def _name(ev: event.Event) -> str | None:
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            module = getattr(func, "__module__", "") or ""
            return f"{module}.{func.__name__}" if module.startswith(__name__ + ".") else None

        def on_start(self, ev: event.Event) -> None:
            if self._name(ev) is None:
                return
            self.started[id(ev.data["dispatcher"])] = time.perf_counter()
            if not self.announced:
                self.announced = True
                log.info("compiling Numba kernels (first run only, ~%d s of CPU; cached for later runs)...",
                         FIRST_COMPILE_S)  # fmt: skip

        def on_end(self, ev: event.Event) -> None:
            name = self._name(ev)
            start = self.started.pop(id(ev.data["dispatcher"]), None) if name else None
            if start is not None:
                log.debug("compiled %s in %.1f s", name, time.perf_counter() - start)

    event.register("numba:compile", _CompileLog())


_announce_compilation()

__all__ = [
    "depth_to_points",
    "center_of_mass",
    "depth_center_of_mass",
    "grid_params",
    "world_to_grid",
    "grid_to_world",
    "points_in_cube",
    "cube_pixel_bbox",
    "voxelize_points",
    "voxelize_points_into",
    "voxelize_depth",
    "voxelize_depth_into",
    "REFINE_MEAN",
    "REFINE_GAUSS",
    "gaussian_heatmaps",
    "gaussian_heatmaps_batch",
    "gaussian_heatmaps_into",
    "subvoxel_argmax",
    "subvoxel_argmax_batch",
    "subvoxel_argmax_into",
    "triangulate_dlt",
    "triangulate_dlt_batch",
    "triangulate_dlt_into",
    "triangulate_ransac",
    "triangulate_ransac_batch",
    "triangulate_ransac_into",
    "triangulation_stats",
    "reprojection_errors",
]
