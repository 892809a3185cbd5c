"""The pooled VisPy visuals of one hand slot: 2D bones, joints and label; 3D bones, joints, drop line.

:class:`tracker.view.TrackerView` keeps ``ViewConfig.max_hands`` slots and re-fills them every
frame (making visuals per frame would be slow and leak GL objects). 2D coordinates are image pixels
(the image panel's scene units), 3D coordinates display-frame mm
(:func:`tracker.view.geometry.camera_to_display`).
"""

from __future__ import annotations

import numpy as np
from vispy import scene
from vispy.scene import visuals

from tracker.core.joints import WRIST
from tracker.view.colors import DROP, RGBA, TEXT
from tracker.view.config import ViewConfig
from tracker.view.geometry import bone_segments

__all__ = ["HandVisuals"]


class HandVisuals:
    """The pooled visuals of one hand slot: 2D bones, joints and label; 3D bones and joints.

    Args:
        image_scene: the image panel's scene (units: image pixels, y down).
        scene3d: the 3D panel's scene (units: display-frame mm).
        config: sizes of bones and markers, and the grid's height for the drop line.
    """

    def __init__(self, image_scene: scene.Node, scene3d: scene.Node, config: ViewConfig) -> None:
        self._cfg = config
        self.bones2d = visuals.Line(
            width=config.bone_width_px, connect="segments", method="gl", antialias=True, parent=image_scene
        )
        self.joints2d = visuals.Markers(parent=image_scene)
        self.label = visuals.Text(
            "", color=TEXT, font_size=9, bold=True, anchor_x="center", anchor_y="bottom", parent=image_scene
        )
        self.bones3d = visuals.Line(
            width=config.bone_width_px, connect="segments", method="gl", antialias=True, parent=scene3d
        )
        self.joints3d = visuals.Markers(parent=scene3d)
        self.surface3d = visuals.Markers(parent=scene3d)
        self.surface3d.order = 4
        # 2D: image < bones < joints < label, no depth test. 3D: joints after all lines and without
        # depth test, so a joint is never half buried in its own bones.
        self.bones2d.order, self.joints2d.order, self.label.order = 1, 2, 3
        self.joints3d.order = 5
        for visual in (self.bones2d, self.joints2d, self.joints3d):
            visual.set_gl_state("translucent", depth_test=False)
        self.hide()

    def hide(self) -> None:
        """Hide every visual of the slot (an absent hand)."""
        self.show_2d(None, None, None, None)
        self.show_3d(None, None)
        self.show_surface(None, None)

    def show_surface(self, points_display: np.ndarray | None, color: RGBA | None) -> None:
        """Draw the decoded hand surface (``(M, 3)`` display-frame mm) as small points; None hides it."""
        ok = None if points_display is None else np.isfinite(points_display).all(axis=1)
        self.surface3d.visible = ok is not None and bool(ok.any())
        if self.surface3d.visible:
            self.surface3d.set_data(pos=np.ascontiguousarray(points_display[ok], dtype=np.float32), face_color=color,
                                    edge_width=0.0, size=self._cfg.surface_point_px)  # fmt: skip

    def show_2d(
        self, joints_2d: np.ndarray | None, colors: np.ndarray | None, label: str | None, label_color: RGBA | None
    ) -> None:
        """Draw the 2D skeleton (``(21, 2)`` image pixels, ``(21, 4)`` joint colours); None hides it."""
        if joints_2d is None or colors is None:
            self.bones2d.visible = self.joints2d.visible = self.label.visible = False
            return
        self._set_skeleton(self.bones2d, self.joints2d, joints_2d, colors, self._cfg.joint_size_px)
        wrist = joints_2d[WRIST]
        self.label.visible = label is not None and bool(np.isfinite(wrist).all())
        if self.label.visible:
            self.label.text = label
            self.label.color = label_color
            self.label.pos = (float(wrist[0]), float(wrist[1]) + 0.5 * self._cfg.joint_size_px)

    def show_3d(self, joints_display: np.ndarray | None, colors: np.ndarray | None) -> None:
        """Draw the 3D skeleton (``(21, 3)`` display-frame mm) with a drop line from the wrist to the
        grid; None hides it."""
        if joints_display is None or colors is None:
            self.bones3d.visible = self.joints3d.visible = False
            return
        wrist = joints_display[WRIST]
        floor = np.array([wrist[0], -self._cfg.grid_below_camera_mm, wrist[2]], dtype=np.float32)
        self._set_skeleton(
            self.bones3d, self.joints3d, joints_display, colors, self._cfg.joint_size_3d_px, drop=(wrist, floor)
        )

    def _set_skeleton(
        self,
        bones: visuals.Line,
        joints: visuals.Markers,
        points: np.ndarray,
        colors: np.ndarray,
        size_px: float,
        drop: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Bones and joint markers of one hand; ``drop`` adds a dim segment and a floor dot (3D only)."""
        seg, seg_colors = bone_segments(points)
        ok = np.isfinite(points).all(axis=1)
        pos, face = points[ok], colors[ok]
        if drop is not None and np.isfinite(drop[0]).all():
            seg = np.concatenate([seg, np.asarray(drop, dtype=np.float32)])
            seg_colors = np.concatenate([seg_colors, np.asarray([DROP, DROP], dtype=np.float32)])
            pos = np.concatenate([pos, drop[1][None]])
            face = np.concatenate([face, np.asarray([DROP], dtype=np.float32)])
        bones.visible = len(seg) > 0
        if bones.visible:
            bones.set_data(pos=seg, color=seg_colors)
        joints.visible = len(pos) > 0
        if joints.visible:
            joints.set_data(
                pos=np.ascontiguousarray(pos, dtype=np.float32),
                face_color=face,
                edge_color=(0.05, 0.05, 0.05, 1.0),
                edge_width=1.0,
                size=size_px,
            )
