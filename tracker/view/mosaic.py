"""The rig mode's image panel: every view's image in one grid, world joints reprojected on each.

Drawn with OpenCV into a plain RGB uint8 array (no GL), so it also serves scripts and tests.
Each fused hand's ``joints_world`` is projected into every view with that camera's extrinsics and
distortion (:func:`tracker.view.geometry.project_world`), bones in their finger's colour, joints
coloured by :func:`tracker.view.colors.joint_quality` (green good -> red), with a legend of the
colour scale along the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from tracker.core.joints import EDGES
from tracker.core.structures import FrameSet, HandPose
from tracker.view.colors import (
    EDGE_COLORS,
    UNCERTAINTY_RED_MM,
    confidence_colors,
    joint_quality,
    rgb255,
)
from tracker.view.geometry import project_world

__all__ = ["RigMosaic", "rig_mosaic", "LEGEND_PX"]

#: Height of the legend strip under the grid, mosaic pixels.
LEGEND_PX: Final = 30
_SHIFT: Final = 4  # cv2 sub-pixel drawing: coordinates in 1/16 px


@dataclass(frozen=True)
class RigMosaic:
    """The rig's views tiled into one image (see :func:`rig_mosaic`).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        tiles: per view ``(x0, y0, scale)``: pixel ``(u, v)`` of that view lands at mosaic pixel
            ``(x0 + u * scale, y0 + v * scale)`` (same pixel-corner convention as the images).
        legend: True when a colour legend is drawn in the bottom :data:`LEGEND_PX` rows.
    """

    image: np.ndarray
    tiles: tuple[tuple[int, int, float], ...]
    legend: bool

    def to_mosaic(self, view: int, uv: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` of view ``view`` -> mosaic pixels ``(N, 2)``."""
        x0, y0, scale = self.tiles[view]
        return np.asarray(uv, np.float64) * scale + np.array([x0, y0])


def rig_mosaic(frameset: FrameSet, hands: Sequence[HandPose], tile_width: int = 640,
               uncertainty_red_mm: float = UNCERTAINTY_RED_MM) -> RigMosaic:  # fmt: skip
    """Every view's image in a grid (``ceil(sqrt(N))`` columns, rig order), each hand with
    ``joints_world`` reprojected into every view and drawn on it: bones in their finger's colour,
    joints coloured by :func:`joint_quality` (green good -> red), the camera's name in the tile's
    corner, and a legend of the colour scale along the bottom.

    Args:
        frameset: the views (images RGB uint8, cameras with extrinsics world -> camera, mm).
        hands: hands to draw; only those with ``joints_world`` are.
        tile_width: width of each tile in mosaic pixels (images are scaled to it).
        uncertainty_red_mm: uncertainty drawn fully red.

    Returns:
        The mosaic: ``rows * tile_h + LEGEND_PX`` by ``cols * tile_width`` pixels, ``tile_h`` the
        tallest scaled view.
    """
    frames = frameset.frames
    n = len(frames)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    scales = [tile_width / f.image.shape[1] for f in frames]
    tile_h = max(int(round(f.image.shape[0] * sc)) for f, sc in zip(frames, scales))
    world_hands = [h for h in hands if h.joints_world is not None]
    legend = True
    out = np.full((rows * tile_h + (LEGEND_PX if legend else 0), cols * tile_width, 3), 16, np.uint8)
    tiles = []
    for v, (frame, sc) in enumerate(zip(frames, scales)):
        x0, y0 = (v % cols) * tile_width, (v // cols) * tile_h
        img = frame.image[..., :3]
        if sc != 1.0:
            img = cv2.resize(img, (tile_width, int(round(img.shape[0] * sc))), interpolation=cv2.INTER_AREA)
        out[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]] = img
        tiles.append((x0, y0, sc))
    mosaic = RigMosaic(out, tuple(tiles), legend)
    shift = _SHIFT
    for v, frame in enumerate(frames):
        x0, y0, _ = tiles[v]
        tile = out[y0 : y0 + tile_h, x0 : x0 + tile_width]  # a view: drawing is clipped to the tile
        for hand in world_hands:
            uv, ok = project_world(hand.joints_world, frame.camera)
            px = mosaic.to_mosaic(v, uv) - np.array([x0, y0])
            fixed = np.round(np.nan_to_num(px) * (1 << shift) - 0.5 * (1 << shift)).astype(np.int64)
            for (a, b), color in zip(EDGES, EDGE_COLORS):
                if ok[a] and ok[b]:
                    cv2.line(tile, tuple(fixed[a]), tuple(fixed[b]), rgb255(color), 2, cv2.LINE_AA, shift)
            colors = confidence_colors(joint_quality(hand, uncertainty_red_mm))
            for j in np.flatnonzero(ok):
                cv2.circle(tile, tuple(fixed[j]), 6 << shift, (10, 10, 10), -1, cv2.LINE_AA, shift)
                cv2.circle(tile, tuple(fixed[j]), 4 << shift, rgb255(colors[j]), -1, cv2.LINE_AA, shift)
        cv2.putText(tile, frame.camera.name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (240, 240, 240), 1, cv2.LINE_AA)
    if legend:
        _draw_legend(out, uncertainty_red_mm, any(h.uncertainty_mm is not None for h in world_hands))
    return mosaic


def _draw_legend(out: np.ndarray, red_mm: float, uncertainty: bool) -> None:
    """Colour scale along the bottom :data:`LEGEND_PX` rows of ``out``."""
    y0 = out.shape[0] - LEGEND_PX
    x0, width = 10, 200
    ramp = confidence_colors(np.linspace(1.0, 0.0, width))[:, :3]
    out[y0 + 8 : y0 + 22, x0 : x0 + width] = np.round(255 * ramp).astype(np.uint8)[None]
    left, right = (("uncertainty 0 mm", f"{red_mm:g}+ mm / not triangulated") if uncertainty
                   else ("confidence 1", "0"))  # fmt: skip
    font, white = cv2.FONT_HERSHEY_SIMPLEX, (230, 230, 230)
    cv2.putText(out, left, (x0 + width + 10, y0 + 20), font, 0.45, white, 1, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize(left, font, 0.45, 1)
    cv2.putText(out, "->  " + right, (x0 + width + 20 + tw, y0 + 20), font, 0.45, white, 1, cv2.LINE_AA)
