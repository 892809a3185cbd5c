"""How :class:`tracker.view.TrackerView` looks: sizes of the scene furniture, markers and panels."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.view.colors import UNCERTAINTY_RED_MM

__all__ = ["ViewConfig"]


@dataclass(frozen=True)
class ViewConfig:
    """Look of :class:`TrackerView`. Lengths in mm (camera frame) or screen pixels as named.

    Attributes:
        max_hands: visuals kept ready for this many hands; further hands are not drawn.
        grid_spacing_mm: ground grid cell size; every ``grid_major_every``-th line is brighter.
        grid_below_camera_mm: the grid lies in the plane this far below the camera (camera-frame Y).
        grid_x_mm, grid_z_mm: grid extent left-right and in depth (camera-frame X and Z).
        frustum_depth_mm: depth of the drawn camera pyramid.
        axis_length_mm: length of the drawn camera axes.
        default_target_mm: the 3D camera initially looks at the point this far in front of the camera.
        bone_width_px: skeleton line width (2D and 3D).
        joint_size_px, joint_size_3d_px: joint marker diameter in the image and in the 3D panel.
        split: fraction of the canvas width given to the image panel.
        rig_frustum_depth_mm: depth of each camera's pyramid in rig mode.
        rig_tile_width: width of one view's tile in the rig mode's image grid, pixels.
        uncertainty_red_mm: rig mode's colour scale: joints this uncertain (or more) are red.
        show_surface: draw the hand surface points the cross-modal estimator decodes
            (``HandPose.surface``) in the 3D panel; the ``p`` key toggles it in a window.
        surface_point_px: size of those points.
    """

    max_hands: int = 4
    grid_spacing_mm: float = 50.0
    grid_major_every: int = 5
    grid_below_camera_mm: float = 250.0
    grid_x_mm: tuple[float, float] = (-500.0, 500.0)
    grid_z_mm: tuple[float, float] = (0.0, 1000.0)
    frustum_depth_mm: float = 70.0
    axis_length_mm: float = 100.0
    default_target_mm: float = 450.0
    bone_width_px: float = 3.0
    joint_size_px: float = 8.0
    joint_size_3d_px: float = 6.0
    split: float = 0.5
    rig_frustum_depth_mm: float = 120.0
    rig_tile_width: int = 640
    uncertainty_red_mm: float = UNCERTAINTY_RED_MM
    show_surface: bool = True
    surface_point_px: float = 3.0
