"""Writing tracking results to files: JSON Lines, NPZ or CSV, chosen by the file extension.

Every format holds, per hand and frame: timestamp (s), frame index, track id, handedness (+ score),
hand score, view, ``joints_2d`` (21 x 2 px), ``joints_3d`` (21 x 3 mm, camera frame; null / NaN
when unknown) and per-joint confidence, joints in the order of :mod:`tracker.core.joints`. Hands of a
multi-camera rig (``view`` -1) also carry ``joints_world`` (21 x 3 mm, the rig's world frame) and
``uncertainty_mm`` (21, per-joint 1-sigma mm; null / inf where a joint was not triangulated):
in ``.jsonl`` as two more keys of those hands, in ``.npz`` as arrays (NaN for hands without them);
``.csv`` keeps the camera-frame columns only.

* ``.jsonl``: one JSON object per processed frame (frames without hands too), flushed per line so
  an interrupted run keeps everything written so far.
* ``.csv``: one row per hand per frame, a header naming every column (``index_tip_x`` ...).
* ``.npz``: arrays, written at close: ``frame_timestamp`` (F,), ``frame_index`` (F,), and per hand
  row ``hand_frame`` (H,) index into the frame arrays, ``track_id``, ``handedness``, ``joints_2d``
  (H, 21, 2), ``joints_3d`` (H, 21, 3) NaN when unknown, ``confidence`` (H, 21), ``joints_world``
  (H, 21, 3) and ``uncertainty_mm`` (H, 21) NaN when unknown, plus ``joint_names``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import FrameResult, HandPose

__all__ = ["Exporter", "JsonlExporter", "CsvExporter", "NpzExporter", "open_exporter", "hand_to_dict", "read_jsonl"]


def _round(a: np.ndarray, decimals: int) -> list[Any]:
    return [[None if not math.isfinite(v) else round(float(v), decimals) for v in row] for row in a]


def hand_to_dict(hand: HandPose) -> dict[str, Any]:
    """A JSON-ready dict of one hand (px and mm rounded to 0.01, NaN / inf -> null).

    ``joints_world`` and ``uncertainty_mm`` are present only when the hand has them (rig mode)."""
    out = {
        "id": hand.track_id,
        "handedness": hand.handedness,
        "handedness_score": round(hand.handedness_score, 4),
        "score": round(hand.score, 4),
        "view": hand.view,
        "joints_2d": _round(hand.joints_2d, 2),
        "joints_3d": None if hand.joints_3d is None else _round(hand.joints_3d, 2),
        "confidence": [round(float(c), 4) for c in hand.confidence],
    }
    if hand.joints_world is not None:
        out["joints_world"] = _round(hand.joints_world, 2)
    if hand.uncertainty_mm is not None:
        out["uncertainty_mm"] = _round(np.asarray(hand.uncertainty_mm).reshape(1, -1), 2)[0]
    return out


class Exporter:
    """Base: a sink called with each :class:`FrameResult`; ``close()`` finishes the file."""

    path: Path

    def __call__(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Exporter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TextExporter(Exporter):
    """An exporter streaming to a text file it creates (parent folders too) and flushes per frame."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] | None = open(self.path, "w", encoding="utf-8", newline="")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class JsonlExporter(_TextExporter):
    def __call__(self, result: FrameResult) -> None:
        assert self._f is not None, "exporter is closed"
        record = {
            "timestamp": round(result.timestamp, 6),
            "frame_index": result.index,
            "hands": [hand_to_dict(h) for h in result.hands],
        }
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._f.flush()


class CsvExporter(_TextExporter):
    HEADER = (
        ["timestamp", "frame_index", "id", "handedness", "handedness_score", "score", "view"]
        + [f"{n}_{a}" for n in JOINT_NAMES for a in ("u", "v")]
        + [f"{n}_{a}" for n in JOINT_NAMES for a in ("x", "y", "z")]
        + [f"{n}_conf" for n in JOINT_NAMES]
    )

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._w = csv.writer(self._f)
        self._w.writerow(self.HEADER)

    def __call__(self, result: FrameResult) -> None:
        assert self._f is not None, "exporter is closed"
        for h in result.hands:
            j3 = h.joints_3d if h.joints_3d is not None else np.full((NUM_JOINTS, 3), np.nan)
            self._w.writerow(
                [f"{result.timestamp:.6f}", result.index, h.track_id, h.handedness, f"{h.handedness_score:.4f}",
                 f"{h.score:.4f}", h.view]
                + [f"{v:.2f}" for v in h.joints_2d.ravel()]
                + ["" if not math.isfinite(v) else f"{v:.2f}" for v in j3.ravel()]
                + [f"{v:.4f}" for v in h.confidence]
            )  # fmt: skip
        self._f.flush()


class NpzExporter(Exporter):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._frames: list[tuple[float, int]] = []
        self._hands: list[tuple[int, HandPose]] = []
        self._closed = False

    def __call__(self, result: FrameResult) -> None:
        self._hands.extend((len(self._frames), h) for h in result.hands)
        self._frames.append((result.timestamp, result.index))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        hands = [h for _, h in self._hands]
        nan3 = np.full((NUM_JOINTS, 3), np.nan)
        tmp = self.path.with_name(self.path.name + ".partial.npz")
        np.savez_compressed(
            tmp,
            frame_timestamp=np.array([t for t, _ in self._frames], dtype=np.float64),
            frame_index=np.array([i for _, i in self._frames], dtype=np.int64),
            hand_frame=np.array([f for f, _ in self._hands], dtype=np.int64),
            track_id=np.array([h.track_id for h in hands], dtype=np.int64),
            handedness=np.array([h.handedness for h in hands], dtype="<U7"),
            handedness_score=np.array([h.handedness_score for h in hands], dtype=np.float64),
            score=np.array([h.score for h in hands], dtype=np.float64),
            view=np.array([h.view for h in hands], dtype=np.int64),
            joints_2d=np.array([h.joints_2d for h in hands], dtype=np.float64).reshape(-1, NUM_JOINTS, 2),
            joints_3d=np.array([h.joints_3d if h.joints_3d is not None else nan3 for h in hands]).reshape(
                -1, NUM_JOINTS, 3
            ),
            confidence=np.array([h.confidence for h in hands], dtype=np.float64).reshape(-1, NUM_JOINTS),
            joints_world=np.array([h.joints_world if h.joints_world is not None else nan3 for h in hands],
                                  dtype=np.float64).reshape(-1, NUM_JOINTS, 3),
            uncertainty_mm=np.array([h.uncertainty_mm if h.uncertainty_mm is not None else nan3[:, 0] for h in hands],
                                    dtype=np.float64).reshape(-1, NUM_JOINTS),
            joint_names=np.array(JOINT_NAMES),
        )
        os.replace(tmp, self.path)


_BY_SUFFIX: dict[str, type[Exporter]] = {
    ".jsonl": JsonlExporter,
    ".ndjson": JsonlExporter,
    ".csv": CsvExporter,
    ".npz": NpzExporter,
}


def open_exporter(path: str | os.PathLike[str]) -> Exporter:
    """The exporter for ``path``'s extension (.jsonl/.ndjson, .csv, .npz).

    Raises:
        ValueError: unknown extension (the message lists the known ones).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise ValueError(f"--export {path}: unknown extension {suffix!r}; use one of {', '.join(_BY_SUFFIX)}")
    return _BY_SUFFIX[suffix](path)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a file written by :class:`JsonlExporter` back into a list of frame dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
