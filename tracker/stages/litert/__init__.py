"""MediaPipe's hand models run directly on LiteRT (``ai-edge-litert``), with handtrack's own tracking.

One job per module: :mod:`~.anchors` (SSD anchors of the palm detector), :mod:`~.palm` (palm
detection: decoding, weighted NMS), :mod:`~.roi` (hand ROIs and the affine crop),
:mod:`~.landmark_model` (the landmark network), :mod:`~.runtime` (finding and loading the ``.tflite``
files of the mediapipe wheel), :mod:`~.stage` (:class:`LiteRTHands`, the pipeline stage).
"""

from tracker.stages.litert.stage import LiteRTHands

__all__ = ["LiteRTHands"]
