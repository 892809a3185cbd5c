"""The VisPy view of the tracker: camera image with 2D skeletons | 3D skeletons.

One :class:`vispy.scene.SceneCanvas` holds two view boxes side by side:

* **left, "image" panel**: ``frames[0].image`` drawn by an ``Image`` visual under a
  ``PanZoomCamera`` with y pointing down, so scene coordinates *are* image pixel coordinates of
  the project convention (x right, y down, origin at the top-left pixel's top-left corner). Each
  hand of view 0 is drawn on top: bones along :data:`tracker.core.joints.EDGES` coloured per finger,
  joints coloured by confidence (red 0 -> yellow 0.5 -> green 1) and a label
  ``"id 3 right 0.97"`` (track id, handedness, hand presence score) under the wrist.
* **right, "3D" panel**: a ``TurntableCamera`` (drag to orbit, wheel to zoom, shift-drag to pan)
  over the hands' ``joints_3d``, a ground grid, the camera's frustum and its axes.

**Display frame.** 3D points are millimetres in the OpenCV camera frame of view 0 (x right,
y down, z forward). The 3D panel shows them in a y-up *display frame*::

    display = (x, -y, -z)        # camera_to_display()

i.e. the OpenGL camera convention: x right, y up, the camera looking down -z. This is a rotation
of 180 deg about x, so handedness is kept (a left hand still looks like a left hand; the often seen
``(x, -y, z)`` is a reflection and would mirror it). The turntable orbits about display +y.

**Scene furniture** (all fixed, in camera-frame millimetres, see :class:`ViewConfig`): a ground
grid in the plane ``y = +grid_below_camera_mm`` (that far *below* the camera; fixed so it never
jumps while the hands move), ``grid_spacing_mm`` apart, spanning ``grid_x_mm`` x ``grid_z_mm``;
the camera at the origin drawn as a pyramid whose opening is the field of view of
``frames[0].camera.intrinsics`` (with a small triangle on the image's top edge); the camera axes
x (red), y (green, pointing down), z (blue, pointing forward), ``axis_length_mm`` long.

Each 3D hand also gets a dim drop line from its wrist down to the grid, with a dot where it meets
the grid, so its height and depth can be read from any angle.

The 3D camera starts looking at a point ``default_target_mm`` in front of the camera, aims once at
the hands when 3D hands first appear (their centroid, pulled 20 % towards the camera so the camera
pyramid usually stays in view), and then stays where the user puts it
(:meth:`TrackerView.reset_camera`, or the ``r`` key in a window, re-aims at the next update).

**Rig mode.** A frame set of several views (a multi-camera rig, :mod:`tracker.fusion.rig`) is
shown differently: the image panel holds a grid of every view's image
(:func:`tracker.view.mosaic.rig_mosaic`) with each fused hand's ``joints_world`` reprojected into
every view (:meth:`Camera.project`, with that camera's distortion) and each joint coloured by its
quality: ``uncertainty_mm`` mapped from green (0 mm) to red (``ViewConfig.uncertainty_red_mm`` and
more, or not triangulated), or the joint's confidence when a hand has no uncertainty, with a legend
under the grid. The 3D panel shows the world joints and every camera's frustum (placed by its
extrinsics) in the frame of the rig's first camera (the display frame above, so the first camera
sits at the origin like the single camera does).

**Threads.** Everything here belongs to one thread, the GUI thread (the one that built the view):
:meth:`TrackerView.update` checks it. The pipeline hands results over through a non-blocking
``poll`` (see :func:`tracker.view.window.run_window`); nothing in this module sleeps or waits on
the pipeline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Final

import numpy as np
from vispy import scene
from vispy.scene import visuals

from tracker.core.structures import Camera, FrameResult, FrameSet, HandPose, Intrinsics
from tracker.runtime.stats import LoopStats
from tracker.view.colors import (
    AXIS_COLORS,
    BG_3D,
    BG_CANVAS,
    BG_IMAGE,
    FRUSTUM,
    RGBA,
    TEXT,
    TEXT_DIM,
    WARN,
    confidence_colors,
    joint_quality,
    track_color,
)
from tracker.view.config import ViewConfig
from tracker.view.geometry import (
    camera_centers_in,
    camera_to_display,
    frustum_segments,
    grid_segments,
    rig_frustum_segments,
    to_view0,
)
from tracker.view.mosaic import rig_mosaic
from tracker.view.overlay import GESTURE_SHOW_S, format_overlay, hand_label
from tracker.view.skeleton import HandVisuals
from tracker.view.window import backend_selected, use_backend

__all__ = ["TrackerView"]

logger = logging.getLogger(__name__)

_OVERLAY_TOP_PX: Final = 30  # status text block, from the 3D panel's top
_LINE_PX: Final = 16  # its line height at font size 9


class TrackerView:
    """Camera image with 2D skeletons (left) and a 3D scene of the hands (right) in one canvas.

    Args:
        size: canvas ``(width, height)`` in (logical) pixels.
        show: open a window (needs ``use_backend(headless=False)``); False renders offscreen.
        title: window title.
        config: look of the view; defaults to :class:`ViewConfig`.

    If no VisPy backend has been chosen yet, the constructor calls ``use_backend(headless=not show)``.
    All methods must be called from the thread that built the view (the GUI thread).

    Attributes:
        canvas: the :class:`vispy.scene.SceneCanvas`.
    """

    def __init__(
        self,
        size: tuple[int, int] = (1280, 520),
        show: bool = False,
        title: str = "handtrack",
        *,
        config: ViewConfig | None = None,
    ) -> None:
        if not backend_selected():
            use_backend(headless=not show)

        self._cfg = config or ViewConfig()
        self._show_surface = self._cfg.show_surface
        self._gestures: dict[int, tuple[str, float]] = {}  # track id -> (label text, shown until, s)
        if self._cfg.max_hands < 1 or not 0.1 <= self._cfg.split <= 0.9:
            raise ValueError(f"need max_hands >= 1 and 0.1 <= split <= 0.9, got {self._cfg}")
        self._thread = threading.get_ident()
        self._closed = False
        self._framed = False
        self._image_size: tuple[int, int] | None = None
        self._intrinsics: Intrinsics | None = None
        self._rig_cameras: tuple[Camera, ...] | None = None
        self._warned_hands = False
        self._laid_out_size: tuple[int, int] = (0, 0)

        self.canvas = scene.SceneCanvas(
            size=size, show=False, title=title, bgcolor=BG_CANVAS, keys="interactive" if show else None
        )
        self._build_image_panel()
        self._build_3d_panel()
        self._slots = [
            HandVisuals(self._view2d.scene, self._view3d.scene, self._cfg) for _ in range(self._cfg.max_hands)
        ]
        self._layout()
        self.canvas.events.resize.connect(self._layout)
        self.canvas.events.key_press.connect(self._on_key)
        if show:
            self.canvas.show()

    # ----------------------------------------------------------------------- construction

    def _build_image_panel(self) -> None:
        """Left panel: the image under a y-down pan/zoom camera, so scene units are image pixels."""
        self._view2d = scene.widgets.ViewBox(parent=self.canvas.scene, bgcolor=BG_IMAGE, border_color=None)
        self._view2d.camera = scene.PanZoomCamera(aspect=1.0, flip=(False, True, False))
        self._image = visuals.Image(
            np.zeros((2, 2, 3), np.uint8), clim=(0, 255), interpolation="linear", parent=self._view2d.scene
        )
        self._image.order = 0
        self._image.set_gl_state("translucent", depth_test=False)
        self._title2d = self._panel_text(self._view2d, "camera 0", (10, 8), font_size=9, color=TEXT_DIM)
        self._set_image_range(2, 2)

    def _build_3d_panel(self) -> None:
        """Right panel: turntable camera, ground grid, camera pyramid, axes, status texts."""
        cfg = self._cfg
        self._view3d = scene.widgets.ViewBox(parent=self.canvas.scene, bgcolor=BG_3D, border_color=None)
        self._view3d.camera = scene.TurntableCamera(up="+y", fov=45.0, elevation=25.0, azimuth=110.0)
        self._aim_3d_camera(camera_to_display(np.array([0.0, 0.0, cfg.default_target_mm])), 2.0 * cfg.default_target_mm)
        seg, col = grid_segments(
            cfg.grid_spacing_mm, cfg.grid_below_camera_mm, cfg.grid_x_mm, cfg.grid_z_mm, cfg.grid_major_every
        )
        visuals.Line(camera_to_display(seg), color=col, connect="segments", method="gl", parent=self._view3d.scene)
        self._frustum = visuals.Line(
            width=1.5, color=FRUSTUM, connect="segments", method="gl", antialias=True, parent=self._view3d.scene
        )
        self._camera_labels = visuals.Text(
            "", color=TEXT_DIM, font_size=8, anchor_x="left", anchor_y="bottom", parent=self._view3d.scene
        )
        self._camera_labels.visible = False
        self._build_axes()
        self._build_grid_labels()
        title = f"3D  (camera frame, mm; grid {cfg.grid_spacing_mm:g} mm)"
        self._title3d = self._panel_text(self._view3d, title, (10, 8), font_size=9, color=TEXT_DIM)
        self._overlay = self._panel_text(self._view3d, "", (10, _OVERLAY_TOP_PX), font_size=9, color=TEXT)
        warning_pos = (10, _OVERLAY_TOP_PX)
        self._warning = self._panel_text(self._view3d, "approximate intrinsics", warning_pos, font_size=9, color=WARN)
        self._warning.visible = False

    def _build_axes(self) -> None:
        """The camera's OpenCV axes at its centre, x red, y green (down), z blue (forward)."""
        length = self._cfg.axis_length_mm
        tips = np.eye(3) * length
        seg = camera_to_display(np.concatenate([[np.zeros(3), tip] for tip in tips]))
        colors = np.repeat(np.asarray(AXIS_COLORS, np.float32), 2, axis=0)
        visuals.Line(seg, color=colors, width=2.5, connect="segments", method="gl", parent=self._view3d.scene)
        visuals.Text(
            ["x", "y", "z"], pos=camera_to_display(tips * 1.15), color=np.asarray(AXIS_COLORS), font_size=8,
            bold=True, parent=self._view3d.scene,
        )  # fmt: skip

    def _build_grid_labels(self) -> None:
        """Depth labels ("z 500") on the grid at every major line, just right of the optical axis."""
        cfg = self._cfg
        z_marks = np.arange(cfg.grid_z_mm[0], cfg.grid_z_mm[1] + 1.0, cfg.grid_spacing_mm * cfg.grid_major_every)[1:]
        x = 0.2 * cfg.grid_spacing_mm  # along the optical axis, just right of it
        pos = np.stack([np.full_like(z_marks, x), np.full_like(z_marks, cfg.grid_below_camera_mm - 5.0), z_marks], 1)
        visuals.Text(
            [f"z {z:.0f}" for z in z_marks], pos=camera_to_display(pos), color=TEXT_DIM, font_size=8,
            anchor_x="left", anchor_y="bottom", parent=self._view3d.scene,
        )  # fmt: skip

    @staticmethod
    def _panel_text(
        parent: scene.Node, text: str, pos: tuple[float, float], font_size: float, color: RGBA
    ) -> visuals.Text:
        """A text pinned to a panel's top-left area, in the panel's pixel coordinates (y down)."""
        label = visuals.Text(
            text, pos=pos, color=color, font_size=font_size, anchor_x="left", anchor_y="bottom", parent=parent
        )
        label.order = 10
        return label

    def _layout(self, event: object = None) -> None:
        """Place the two panels side by side (canvas pixels), keeping a 2 px gap.

        Runs on the canvas's resize event and, because the headless EGL backend sends none when
        ``canvas.size`` is set, again whenever :meth:`update` / :meth:`render` see a new size.
        """
        w, h = self.canvas.size
        self._laid_out_size = (w, h)
        left = max(1, int(round(w * self._cfg.split)) - 1)
        self._view2d.pos, self._view2d.size = (0, 0), (left, h)
        self._view3d.pos, self._view3d.size = (left + 2, 0), (max(1, w - left - 2), h)

    def _on_key(self, event: object) -> None:
        """``r`` in a window: re-centre the 3D camera on the hands; ``p``: show / hide decoded surfaces."""
        key = getattr(event, "text", "")
        if key in ("r", "R"):
            self.reset_camera()
        elif key in ("p", "P"):
            self.show_surface = not self.show_surface

    @property
    def show_surface(self) -> bool:
        """Whether decoded hand surfaces (``HandPose.surface``) are drawn (from the next update)."""
        return self._show_surface

    @show_surface.setter
    def show_surface(self, on: bool) -> None:
        self._show_surface = bool(on)

    # ---------------------------------------------------------------------------- public

    def update(self, result: FrameResult, stats: LoopStats | None = None) -> None:
        """Show ``result`` (and the loop's ``stats`` in the overlay). GUI thread only; never blocks.

        Draws the image of view 0 and, on it, the 2D skeleton of every hand of view 0; draws the 3D
        skeleton of every hand with ``joints_3d`` (moved into view 0's camera frame with the
        extrinsics when the hand belongs to another view). Hands beyond ``max_hands`` are skipped.
        A frame set of several views is drawn in rig mode (module docstring): the grid of views
        with every hand's ``joints_world`` reprojected, and the rig's frustums in 3D.

        Raises:
            RuntimeError: called from a thread other than the one that built the view, or after close().
            ValueError: the image of view 0 is not uint8 ``(H, W, 3)``.
        """
        self._check_usable()
        self._ensure_layout()
        if len(result.frameset.frames) > 1:
            self._update_rig(result, stats)
            return
        frame = result.frameset.frames[0]
        self._set_image(frame.image)
        self._set_camera(frame.camera.intrinsics, frame.camera.name)
        hands = result.hands
        for hand in hands:  # a completed gesture stays under its hand for GESTURE_SHOW_S
            if hand.gesture is not None:
                self._gestures[hand.track_id] = (f"{hand.gesture.label} {hand.gesture.score:.2f}",
                                                 result.timestamp + GESTURE_SHOW_S)  # fmt: skip
        self._gestures = {k: v for k, v in self._gestures.items() if v[1] >= result.timestamp}
        if len(hands) > self._cfg.max_hands and not self._warned_hands:
            logger.warning(
                "%d hands in view, drawing the first %d (ViewConfig.max_hands)", len(hands), self._cfg.max_hands
            )
            self._warned_hands = True
        points_3d = []
        for i, slot in enumerate(self._slots):
            hand = hands[i] if i < len(hands) else None
            points_3d.append(self._show_hand(slot, hand, result.frameset))
        self._frame_once([p for p in points_3d if p is not None])
        self._set_overlay(result, stats)
        self.canvas.update()

    def render(self) -> np.ndarray:
        """The current state rendered offscreen: ``(H, W, 3)`` uint8 RGB, ``(W, H) = canvas.size``.

        Rows and columns are canvas pixels, so :meth:`image_to_canvas` coordinates index it directly.
        """
        self._check_usable()
        self._ensure_layout()
        rgba = self.canvas.render(size=tuple(self.canvas.size), alpha=False)
        return np.ascontiguousarray(rgba[..., :3])

    def image_to_canvas(self, u: float, v: float) -> tuple[float, float]:
        """Where image pixel coordinate ``(u, v)`` of view 0 lands on the canvas, ``(x, y)`` pixels, y down.

        Pixel ``(col, row)``'s centre is ``(col + 0.5, row + 0.5)`` in the image's coordinates.
        """
        self._ensure_layout()
        mapped = self._image.get_transform("visual", "canvas").map(np.array([[u, v, 0.0, 1.0]]))
        return float(mapped[0, 0] / mapped[0, 3]), float(mapped[0, 1] / mapped[0, 3])

    def display_to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Where display-frame points ``(N, 3)`` (mm, :func:`camera_to_display`) of the 3D panel land
        on the canvas: ``(N, 2)`` ``(x, y)`` pixels, y down (NaN behind the 3D camera)."""
        self._ensure_layout()
        p = np.asarray(points, np.float64).reshape(-1, 3)
        mapped = self._frustum.get_transform("visual", "canvas").map(np.c_[p, np.ones(len(p))])
        w = mapped[:, 3:4]
        return np.where(w > 0, mapped[:, :2] / np.where(w > 0, w, 1.0), np.nan)

    @property
    def panel_rects(self) -> dict[str, tuple[int, int, int, int]]:
        """``{"image": (x, y, w, h), "3d": (x, y, w, h)}``: the panels in canvas pixels."""
        return {
            name: (int(vb.pos[0]), int(vb.pos[1]), int(vb.size[0]), int(vb.size[1]))
            for name, vb in (("image", self._view2d), ("3d", self._view3d))
        }

    @property
    def camera_3d(self) -> scene.TurntableCamera:
        """The right panel's :class:`vispy.scene.TurntableCamera` (display frame, mm)."""
        return self._view3d.camera

    @property
    def status_text(self) -> str:
        """The overlay's text as shown, including the "approximate intrinsics" line when visible."""
        return self._overlay.text + ("\napproximate intrinsics" if self._warning.visible else "")

    def reset_camera(self) -> None:
        """Re-centre the 3D camera on the hands at the next :meth:`update` that has 3D hands."""
        self._framed = False

    def close(self) -> None:
        """Close the canvas (and its window). Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self.canvas.close()

    def __enter__(self) -> TrackerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ per frame

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("this TrackerView is closed; make a new one")
        if threading.get_ident() != self._thread:
            raise RuntimeError(
                "TrackerView must be used from the thread that created it (the GUI thread); "
                "hand results over with a queue and poll it there (see run_window)"
            )

    def _ensure_layout(self) -> None:
        if tuple(self.canvas.size) != self._laid_out_size:
            self._layout()

    def _set_image(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"frame image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        self._image.set_data(image[..., :3])
        h, w = image.shape[:2]
        if self._image_size != (w, h):
            self._set_image_range(w, h)

    def _set_image_range(self, width: int, height: int) -> None:
        self._image_size = (width, height)
        self._view2d.camera.set_range(x=(0, width), y=(0, height), z=(-1.0, 1.0), margin=0.0)

    def _update_rig(self, result: FrameResult, stats: LoopStats | None) -> None:
        """Rig mode of :meth:`update`: the views' grid, world hands and every camera in 3D."""
        cfg = self._cfg
        cameras = tuple(f.camera for f in result.frameset.frames)
        self._set_image(rig_mosaic(result.frameset, result.hands, cfg.rig_tile_width, cfg.uncertainty_red_mm).image)
        centres = self._set_rig_cameras(cameras)
        hands = [h for h in result.hands if h.joints_world is not None]
        if len(hands) > cfg.max_hands and not self._warned_hands:
            logger.warning("%d hands in view, drawing the first %d (ViewConfig.max_hands)", len(hands), cfg.max_hands)
            self._warned_hands = True
        for i, slot in enumerate(self._slots):
            hand = hands[i] if i < len(hands) else None
            if hand is None:
                slot.hide()
                continue
            slot.show_2d(None, None, None, None)
            display = camera_to_display(cameras[0].world_to_camera(hand.joints_world))
            slot.show_3d(display, confidence_colors(joint_quality(hand, cfg.uncertainty_red_mm)))
        self._frame_once([centres])
        self._set_overlay(result, stats)
        self.canvas.update()

    def _set_rig_cameras(self, cameras: tuple[Camera, ...]) -> np.ndarray:
        """Draw every camera's frustum and name (first camera's frame); returns their centres, display frame."""
        centres = camera_to_display(camera_centers_in(cameras, cameras[0]))
        same = self._rig_cameras is not None and len(cameras) == len(self._rig_cameras) and all(
            a is b for a, b in zip(cameras, self._rig_cameras)
        )  # identity: cameras hold arrays, and a rig's frames share their Camera objects
        if same:
            return centres
        self._rig_cameras = cameras
        self._intrinsics = None  # a later single-view frame redraws its own camera
        self._frustum.set_data(pos=camera_to_display(rig_frustum_segments(cameras, self._cfg.rig_frustum_depth_mm)))
        self._camera_labels.text = [c.name for c in cameras]
        self._camera_labels.pos = centres
        self._camera_labels.visible = True
        self._title2d.text = f"{len(cameras)} views: world joints reprojected, coloured by uncertainty"
        self._title3d.text = f"3D  (rig, frame of {cameras[0].name}, mm; grid {self._cfg.grid_spacing_mm:g} mm)"
        self._warning.visible = any(c.intrinsics.approximate for c in cameras)
        return centres

    def _set_camera(self, intr: Intrinsics, name: str) -> None:
        if intr == self._intrinsics:
            return
        if self._rig_cameras is not None:
            self._rig_cameras = None
            self._camera_labels.visible = False
            self._title3d.text = f"3D  (camera frame, mm; grid {self._cfg.grid_spacing_mm:g} mm)"
        self._intrinsics = intr
        seg = camera_to_display(frustum_segments(intr, self._cfg.frustum_depth_mm))
        self._frustum.set_data(pos=seg)
        hfov = np.degrees(2.0 * np.arctan(0.5 * intr.width / intr.fx))
        self._title2d.text = f"{name}  {intr.width}x{intr.height}  hfov {hfov:.0f}°"
        self._warning.visible = intr.approximate

    def _show_hand(self, slot: HandVisuals, hand: HandPose | None, frameset: FrameSet) -> np.ndarray | None:
        """Update one slot; return the hand's display-frame joints when drawn in 3D."""
        if hand is None:
            slot.hide()
            return None
        colors = confidence_colors(hand.confidence)
        if hand.view == 0:
            label_color = track_color(hand.track_id)
            gesture = self._gestures.get(hand.track_id, (None, 0.0))[0]
            slot.show_2d(np.asarray(hand.joints_2d, dtype=np.float32), colors, hand_label(hand, gesture), label_color)
        else:
            slot.show_2d(None, None, None, None)
        joints = None
        if hand.joints_3d is not None:
            joints = to_view0(np.asarray(hand.joints_3d, dtype=np.float64), hand.view, frameset)
        display = None if joints is None else camera_to_display(joints)
        slot.show_3d(display, colors)
        surface = None
        if self._show_surface and hand.surface is not None and joints is not None:
            surface = camera_to_display(to_view0(np.asarray(hand.surface, dtype=np.float64), hand.view, frameset))
        r, g, b, _ = track_color(hand.track_id)
        slot.show_surface(surface, (r, g, b, 0.6))
        return display

    def _frame_once(self, hands_display: Sequence[np.ndarray]) -> None:
        """Aim the 3D camera at the hands the first time there are any; afterwards leave it alone.

        The look-at point is the hands' centroid moved 20 % of the way towards the camera (so the
        camera pyramid usually stays in view), the distance twice the hands' extent (at least 350 mm).
        """
        if self._framed or not hands_display:
            return
        pts = np.concatenate(hands_display)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if not len(pts):
            return
        extent = float(np.ptp(pts, axis=0).max())
        self._aim_3d_camera(0.8 * pts.mean(axis=0), max(350.0, 2.0 * extent))
        self._framed = True

    def _aim_3d_camera(self, center: np.ndarray, distance: float) -> None:
        cam = self._view3d.camera
        cam.center = tuple(float(c) for c in center)
        cam.distance = float(distance)

    def _set_overlay(self, result: FrameResult, stats: LoopStats | None) -> None:
        """Status lines; the "approximate intrinsics" line goes right under them."""
        text = format_overlay(result, stats)
        if text == self._overlay.text:
            return
        self._overlay.text = text
        self._warning.pos = (10, _OVERLAY_TOP_PX + _LINE_PX * (text.count("\n") + 1) + 4)
