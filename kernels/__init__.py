"""Numba kernels of handtrack: pure ``@njit`` free functions on arrays.

* :mod:`kernels.depth`: depth image -> camera-frame points, centre of mass.
* :mod:`kernels.voxel`: the V2V-PoseNet grid convention (defined there once) and occupancy grids.
* :mod:`kernels.heatmap`: Gaussian heatmap targets and the sub-voxel argmax read-out.
* :mod:`kernels.triangulate`: weighted multi-view DLT, RANSAC over views, reprojection errors and
  per-point statistics (RMS error, propagated uncertainty).
* :mod:`kernels.reference`: plain NumPy references of all of the above (tests and benchmarks).

Every kernel compiles on first use (``cache=True``: once per machine, kept in ``__pycache__``).
"""

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
