"""MediaPipe's palm detector on LiteRT: letterboxed input, SSD decoding, score sigmoid, weighted NMS.

A NumPy port of the ``palm_detection_cpu`` graph of mediapipe 0.10.14: ``ImageToTensorCalculator``
(192x192, aspect ratio kept with zero padding, values in [0, 1]), ``TensorsToDetectionsCalculator``
(18 values per anchor: box centre offset, size, then 7 keypoints (x, y), all in input pixels
relative to the anchor centre; scores clipped to +-100 then sigmoid), ``NonMaxSuppressionCalculator``
(weighted, IoU > 0.3) and ``DetectionLetterboxRemovalCalculator``.

Keypoints of a palm: 0 wrist centre, 1 index MCP, 2 middle-finger MCP, 3 ring MCP, 4 pinky MCP,
5 thumb CMC, 6 thumb MCP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.stages.litert.anchors import PALM_ANCHORS, ssd_anchors
from tracker.stages.litert.runtime import load_interpreter

__all__ = ["PalmDetection", "PalmDetector", "decode_palms", "weighted_nms"]

NUM_KEYPOINTS = 7
SCORE_CLIP = 100.0
NMS_IOU = 0.3


@dataclass(frozen=True)
class PalmDetection:
    """One palm in image pixels (same pixel convention as MediaPipe: normalised x times width).

    Attributes:
        box: ``(4,)`` xmin, ymin, xmax, ymax in px.
        keypoints: ``(7, 2)`` px (wrist, index/middle/ring/pinky MCP, thumb CMC, thumb MCP).
        score: detection score in [0, 1].
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def decode_palms(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: float = 192.0,
                 min_score: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Decode the palm model's raw outputs against its anchors.

    Args:
        raw_boxes: ``(N, 18)`` model output: box centre offset x, y, width, height, then 7 keypoint
            offsets (x, y); input pixels.
        raw_scores: ``(N,)`` or ``(N, 1)`` logits.
        anchors: ``(N, 4)`` from :func:`~tracker.stages.litert.anchors.ssd_anchors`.
        input_size: the model's input side in pixels (the decoding scale).
        min_score: keep detections with sigmoid score >= this.

    Returns:
        ``boxes (M, 4)`` xmin, ymin, xmax, ymax, ``keypoints (M, 7, 2)``, both normalised to the
        model input ([0, 1]), and ``scores (M,)`` in [0, 1], in anchor order.
    """
    raw_boxes = np.asarray(raw_boxes, np.float32).reshape(-1, 4 + 2 * NUM_KEYPOINTS)
    logits = np.clip(
        np.asarray(raw_scores, np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP
    )
    if raw_boxes.shape[0] != anchors.shape[0] or logits.shape[0] != anchors.shape[0]:
        raise ValueError(
            f"{raw_boxes.shape[0]} boxes and {logits.shape[0]} scores for {anchors.shape[0]} anchors"
        )
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= min_score
    raw, a, scores = raw_boxes[keep], anchors[keep], scores[keep]
    wh = a[:, 2:4]
    center = raw[:, 0:2] / input_size * wh + a[:, 0:2]
    size = raw[:, 2:4] / input_size * wh
    boxes = np.concatenate([center - size / 2.0, center + size / 2.0], axis=1)
    kps = (
        raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) / input_size * wh[:, None]
        + a[:, None, 0:2]
    )
    return boxes, kps, scores


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` xmin, ymin, xmax, ymax box with ``(M, 4)`` boxes -> ``(M,)`` (0 when disjoint)."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0.0, None), axis=-1)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU,
                 max_detections: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """MediaPipe's weighted non-maximum suppression (``NonMaxSuppressionCalculator``, ``WEIGHTED``).

    Repeatedly takes the highest-scoring remaining box; every remaining box with IoU > ``iou_threshold``
    with it (itself included) is merged into one detection whose box corners and keypoints are the
    score-weighted means of the cluster and whose score is the top box's; the rest go on.

    Args:
        boxes: ``(M, 4)`` xmin, ymin, xmax, ymax.
        keypoints: ``(M, K, 2)``.
        scores: ``(M,)``.
        iou_threshold: boxes overlapping more than this merge.
        max_detections: stop after this many outputs (None: all).

    Returns:
        ``boxes (D, 4)``, ``keypoints (D, K, 2)``, ``scores (D,)``, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size and (max_detections is None or len(out_s) < max_detections):
        top = order[0]
        cluster = box_iou(boxes[top], boxes[order]) > iou_threshold
        cluster[0] = (
            True  # a degenerate (zero-area) top box still forms its own cluster
        )
        members = order[cluster]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_k.append((keypoints[members] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[top])
        order = order[~cluster]
    k = keypoints.shape[1] if keypoints.ndim == 3 else NUM_KEYPOINTS
    if not out_s:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0, k, 2), np.float32),
            np.zeros(0, np.float32),
        )
    return (
        np.array(out_b, np.float32),
        np.array(out_k, np.float32),
        np.array(out_s, np.float32),
    )


class PalmDetector:
    """Run ``palm_detection_{lite,full}.tflite`` on whole RGB images.

    Args:
        path: the ``.tflite`` file.
        num_threads: LiteRT interpreter threads.

    Raises:
        ModelError: the file is missing or corrupt.
    """

    def __init__(self, path: Path, num_threads: int = 2) -> None:
        self._interp = load_interpreter(path, num_threads)
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        self.size = int(inp["shape"][1])
        outs = sorted(
            self._interp.get_output_details(), key=lambda d: -int(d["shape"][-1])
        )  # (.., 18), (.., 1)
        self._boxes, self._scores = outs[0]["index"], outs[1]["index"]
        self.anchors = ssd_anchors(PALM_ANCHORS)
        n = int(outs[0]["shape"][1])
        if n != self.anchors.shape[0]:
            raise ValueError(
                f"{path} predicts {n} anchors, the palm anchor options give {self.anchors.shape[0]}"
            )

    def __call__(
        self,
        image: np.ndarray,
        min_score: float = 0.5,
        max_detections: int | None = None,
    ) -> list[PalmDetection]:
        """Detect palms in an RGB uint8 ``(H, W, 3)`` image.

        Returns:
            Palms in image pixels, highest score first, at most ``max_detections``.
        """
        h, w = image.shape[:2]
        side = float(max(h, w))
        k = self.size / side
        pad = np.array([(side - w) / 2.0, (side - h) / 2.0])
        m = np.array([[k, 0.0, pad[0] * k], [0.0, k, pad[1] * k]])
        tensor = cv2.warpAffine(image, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        self._interp.set_tensor(
            self._input, (tensor.astype(np.float32) * (1.0 / 255.0))[None]
        )
        self._interp.invoke()
        raw_boxes = self._interp.get_tensor(self._boxes)[0]
        raw_scores = self._interp.get_tensor(self._scores)[0]
        boxes, kps, scores = decode_palms(
            raw_boxes, raw_scores, self.anchors, float(self.size), min_score
        )
        boxes, kps, scores = weighted_nms(boxes, kps, scores, NMS_IOU, max_detections)
        # letterbox removal: normalised input -> image pixels
        boxes = boxes * side - np.tile(pad, 2)
        kps = kps * side - pad
        return [
            PalmDetection(b.astype(np.float64), p.astype(np.float64), float(s))
            for b, p, s in zip(boxes, kps, scores)
        ]
