"""SSD anchors of MediaPipe's palm detector (a NumPy port of MediaPipe's ``SsdAnchorsCalculator``).

The palm model predicts one box + 7 keypoints per anchor, as offsets from the anchor centre. The anchors
are not stored in the ``.tflite`` file; MediaPipe's ``palm_detection_cpu`` graph generates them from
the options below (the same for ``palm_detection_full`` and ``palm_detection_lite``, both 192x192):
4 layers with strides 8, 16, 16, 16, scales 0.1484375..0.75, aspect ratio 1 plus one interpolated
anchor per layer, anchor offset 0.5 and ``fixed_anchor_size`` (every anchor is 1x1 in normalised
units, so box sizes decode directly). That gives 24x24x2 + 12x12x6 = 2016 anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PALM_ANCHORS", "AnchorOptions", "ssd_anchors"]


@dataclass(frozen=True)
class AnchorOptions:
    """The options of MediaPipe's ``SsdAnchorsCalculatorOptions`` that the palm graph uses.

    Attributes:
        input_size: (width, height) of the model input in pixels.
        strides: one stride (pixels per feature cell) per layer; consecutive equal strides share a
            feature map, their anchors interleaved per cell.
        min_scale, max_scale: anchor scale of the first and the last layer (fraction of the input).
        anchor_offset: (x, y) position of the anchor centre inside its cell, in cells.
        aspect_ratios: width / height of the anchors of each layer.
        interpolated_scale_aspect_ratio: aspect ratio of one extra anchor per layer at the geometric
            mean of this and the next layer's scale; 0 for none.
        fixed_anchor_size: True makes every anchor 1 x 1 (normalised), as the palm model expects.
    """

    input_size: tuple[int, int] = (192, 192)
    strides: tuple[int, ...] = (8, 16, 16, 16)
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: tuple[float, float] = (0.5, 0.5)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2.0
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(options: AnchorOptions = AnchorOptions()) -> np.ndarray:
    """Generate SSD anchors in MediaPipe's order (feature map by feature map, rows, columns, anchors).

    Args:
        options: the anchor options (defaults: MediaPipe's palm detector).

    Returns:
        ``(N, 4)`` float32 ``(x_center, y_center, width, height)`` in normalised input coordinates
        ([0, 1], x right, y down); ``N = 2016`` for the defaults.
    """
    strides = options.strides
    count = len(strides)
    out: list[np.ndarray] = []
    layer = 0
    while layer < count:
        scales: list[float] = []
        ratios: list[float] = []
        last = layer
        while last < count and strides[last] == strides[layer]:
            scale = _scale(options.min_scale, options.max_scale, last, count)
            for ratio in options.aspect_ratios:
                scales.append(scale)
                ratios.append(ratio)
            if options.interpolated_scale_aspect_ratio > 0.0:
                nxt = (
                    1.0
                    if last == count - 1
                    else _scale(options.min_scale, options.max_scale, last + 1, count)
                )
                scales.append(math.sqrt(scale * nxt))
                ratios.append(options.interpolated_scale_aspect_ratio)
            last += 1
        sizes = np.array(
            [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios)]
        )  # (A, 2) w, h
        if options.fixed_anchor_size:
            sizes = np.ones_like(sizes)
        fw = math.ceil(options.input_size[0] / strides[layer])
        fh = math.ceil(options.input_size[1] / strides[layer])
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (xs.reshape(-1, 1) + options.anchor_offset[0]) / fw
        cy = (ys.reshape(-1, 1) + options.anchor_offset[1]) / fh
        a = len(scales)
        grid = np.empty((fh * fw, a, 4))
        grid[..., 0] = np.broadcast_to(cx, (fh * fw, a))
        grid[..., 1] = np.broadcast_to(cy, (fh * fw, a))
        grid[..., 2:] = sizes[None]
        out.append(grid.reshape(-1, 4))
        layer = last
    return np.concatenate(out).astype(np.float32)


PALM_ANCHORS = AnchorOptions()
"""The anchor options of ``palm_detection_{full,lite}.tflite`` (MediaPipe's ``palm_detection_cpu`` graph)."""
