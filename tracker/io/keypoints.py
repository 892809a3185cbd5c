"""Files of the offline triangulator: per-camera 2D keypoints in, 3D joints out (JSON or NPZ).

For users of any 2D detector (MediaPipe, OpenPose, DeepLabCut, ...): any number of joints, any
names; the calibration is a separate aniposelib-layout TOML (:mod:`tracker.io.calibration`) whose camera
``name`` s the keypoint file refers to.

**2D keypoints, JSON** (``.json``)::

    {
      "cameras": ["cam0", "cam1", "cam2"],          # names as in the calibration file (V)
      "joint_names": ["wrist", "thumb_cmc", ...],   # optional (J); default "joint_0", ...
      "frames": [                                   # F frames, in any order of "index"
        {"index": 0,                                # frame number (int, unique)
         "views": {"cam0": [[u, v, conf], ...],     # J rows: pixels of the camera's (distorted)
                   "cam2": [[u, v, conf], null, ...]}}  # image, x right / y down, conf in [0, 1]
      ]
    }

A camera absent from a frame's ``views`` (or given as ``null``) did not see that frame; a joint
given as ``null`` (or with a NaN coordinate) was not detected; ``[u, v]`` without a confidence means
confidence 1. **2D keypoints, NPZ** (``.npz``): ``points`` float ``(F, V, J, 2)`` pixels (NaN = not
detected), ``confidence`` float ``(F, V, J)`` in [0, 1], ``cameras`` str ``(V,)``; optional
``joint_names`` str ``(J,)`` and ``frame_indices`` int ``(F,)`` (default ``0..F-1``).

**3D joints, NPZ** (``.npz``): ``points_3d`` float64 ``(F, J, 3)`` in **mm in the calibration's world
frame** (NaN = not triangulated), ``uncertainty_mm`` ``(F, J)`` 1-sigma position uncertainty,
``reprojection_px`` ``(F, J)`` RMS reprojection error over the inlier views, ``num_inliers`` int
``(F, J)``, ``inliers`` bool ``(F, J, V)``, ``frame_indices`` ``(F,)``, ``cameras`` ``(V,)``,
``joint_names`` ``(J,)``, ``method`` (str). **3D joints, JSON** (``.json``)::

    {"units": "mm", "frame": "world", "method": "ransac", "cameras": [...], "joint_names": [...],
     "frames": [{"index": 0, "points_3d": [[x, y, z] | null, ...], "uncertainty_mm": [s | null, ...],
                 "reprojection_px": [e | null, ...], "num_inliers": [n, ...]}]}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracker.core.errors import HandtrackError

__all__ = [
    "KeypointFormatError",
    "Keypoints2D",
    "Points3D",
    "load_keypoints",
    "save_keypoints",
    "load_points_3d",
    "save_points_3d",
]


class KeypointFormatError(HandtrackError, ValueError):
    """A keypoint or 3D joints file that does not follow the documented format (see the module doc)."""


@dataclass(frozen=True)
class Keypoints2D:
    """Per-camera 2D keypoints of ``F`` frames, ``V`` cameras, ``J`` joints.

    Attributes:
        cameras: ``V`` camera names (as in the calibration).
        joint_names: ``J`` joint names.
        points: ``(F, V, J, 2)`` float64 pixels of each camera's image; NaN = not detected.
        confidence: ``(F, V, J)`` float64 in [0, 1]; 0 where not detected.
        frame_indices: ``(F,)`` int64 frame numbers.
    """

    cameras: tuple[str, ...]
    joint_names: tuple[str, ...]
    points: np.ndarray
    confidence: np.ndarray
    frame_indices: np.ndarray

    def __post_init__(self) -> None:
        F, V, J = len(self.frame_indices), len(self.cameras), len(self.joint_names)
        if np.shape(self.points) != (F, V, J, 2) or np.shape(self.confidence) != (F, V, J):
            raise KeypointFormatError(f"keypoints for {F} frames, {V} cameras, {J} joints need points {(F, V, J, 2)} "
                                      f"and confidence {(F, V, J)}, got {np.shape(self.points)} and "
                                      f"{np.shape(self.confidence)}")  # fmt: skip
        if len(set(self.cameras)) != V:
            raise KeypointFormatError(f"camera names must be unique, got {list(self.cameras)}")
        if len(set(np.asarray(self.frame_indices).tolist())) != F:
            raise KeypointFormatError("frame indices must be unique")


@dataclass(frozen=True)
class Points3D:
    """Triangulated joints of ``F`` frames (see the module doc for the file layouts).

    Attributes:
        cameras, joint_names, frame_indices: as in :class:`Keypoints2D`.
        points_3d: ``(F, J, 3)`` float64 mm, calibration world frame; NaN = not triangulated.
        uncertainty_mm: ``(F, J)`` 1-sigma position uncertainty, mm.
        reprojection_px: ``(F, J)`` RMS reprojection error over the inlier views, pixels.
        inliers: ``(F, J, V)`` bool, the views each joint was triangulated from.
        method: ``"dlt"``, ``"ransac"`` or ``"fusion"``.
    """

    cameras: tuple[str, ...]
    joint_names: tuple[str, ...]
    frame_indices: np.ndarray
    points_3d: np.ndarray
    uncertainty_mm: np.ndarray
    reprojection_px: np.ndarray
    inliers: np.ndarray
    method: str

    @property
    def num_inliers(self) -> np.ndarray:
        """``(F, J)`` int64 inlier views per joint."""
        return self.inliers.sum(axis=-1).astype(np.int64)


def _suffix(path: Path) -> str:
    s = path.suffix.lower()
    if s not in (".json", ".npz"):
        raise KeypointFormatError(f"{path}: unknown file type {s!r}; use a .json or .npz file")
    return s


def _names(value: Any, what: str, path: Path) -> tuple[str, ...]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size == 0 or not all(isinstance(x, (str, np.str_)) for x in arr.tolist()):
        raise KeypointFormatError(f"{path}: {what!r} must be a non-empty list of strings")
    return tuple(str(x) for x in arr.tolist())


def load_keypoints(path: str | os.PathLike[str]) -> Keypoints2D:
    """Read a 2D keypoint file (``.json`` or ``.npz``, see the module doc).

    Raises:
        FileNotFoundError: no such file.
        KeypointFormatError: the file does not follow the format; the message says where.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no keypoint file at {path}")
    return _load_json(path) if _suffix(path) == ".json" else _load_npz(path)


def _load_npz(path: Path) -> Keypoints2D:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise KeypointFormatError(f"{path}: not a readable .npz file without pickles ({e})") from e
    missing = [k for k in ("points", "confidence", "cameras") if k not in data]
    if missing:
        raise KeypointFormatError(f"{path}: missing array(s) {missing}; a keypoint .npz needs points (F, V, J, 2), "
                                  "confidence (F, V, J) and cameras (V,)")  # fmt: skip
    points = np.asarray(data["points"], np.float64)
    if points.ndim != 4 or points.shape[-1] != 2:
        raise KeypointFormatError(f"{path}: points must be (F, V, J, 2), got {points.shape}")
    F, V, J, _ = points.shape
    cameras = _names(data["cameras"], "cameras", path)
    joints = _names(data["joint_names"], "joint_names", path) if "joint_names" in data else _default_joints(J)
    frames = np.asarray(data.get("frame_indices", np.arange(F)))
    if frames.shape != (F,) or not np.issubdtype(frames.dtype, np.integer):
        raise KeypointFormatError(f"{path}: frame_indices must be ({F},) integers, got {frames.dtype} {frames.shape}")
    conf = np.asarray(data["confidence"], np.float64)
    if len(cameras) != V or len(joints) != J or conf.shape != (F, V, J):
        raise KeypointFormatError(f"{path}: points {points.shape} need cameras ({V},), joint_names ({J},) and "
                                  f"confidence {(F, V, J)}; got {len(cameras)}, {len(joints)} and "
                                  f"{conf.shape}")  # fmt: skip
    return Keypoints2D(cameras, joints, points, _clean_conf(points, conf), frames.astype(np.int64))


def _default_joints(J: int) -> tuple[str, ...]:
    return tuple(f"joint_{j}" for j in range(J))


def _clean_conf(points: np.ndarray, conf: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(points).all(axis=-1) & np.isfinite(conf), conf, 0.0)


def _load_json(path: Path) -> Keypoints2D:
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KeypointFormatError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or "cameras" not in doc or not isinstance(doc.get("frames"), list):
        raise KeypointFormatError(f'{path}: expected an object with "cameras" (list of names) and "frames" (list)')
    cameras = _names(doc["cameras"], "cameras", path)
    frames = doc["frames"]
    if not frames:
        raise KeypointFormatError(f"{path}: no frames")
    J = None
    if "joint_names" in doc:
        joints = _names(doc["joint_names"], "joint_names", path)
        J = len(joints)
    V, F = len(cameras), len(frames)
    indices = np.zeros(F, np.int64)
    per_frame: list[dict[str, Any]] = []
    for f, fr in enumerate(frames):
        where = f"{path}: frames[{f}]"
        if not isinstance(fr, dict) or not isinstance(fr.get("index"), int) or not isinstance(fr.get("views"), dict):
            raise KeypointFormatError(f'{where} must be {{"index": int, "views": {{camera: [[u, v, conf], ...]}}}}')
        unknown = sorted(set(fr["views"]) - set(cameras))
        if unknown:
            raise KeypointFormatError(f"{where} has views of camera(s) {unknown} not listed in \"cameras\"")
        indices[f] = fr["index"]
        per_frame.append(fr["views"])
        for rows in fr["views"].values():
            if rows is None:
                continue
            if not isinstance(rows, list):
                raise KeypointFormatError(f"{where}: a view must be a list of [u, v, conf] rows or null")
            if J is None:
                J = len(rows)
            if len(rows) != J:
                raise KeypointFormatError(f"{where}: a view has {len(rows)} joints, expected {J}")
    if J is None or J == 0:
        raise KeypointFormatError(f"{path}: no joints in any view (and no joint_names)")
    if "joint_names" not in doc:
        joints = _default_joints(J)
    points = np.full((F, V, J, 2), np.nan)
    conf = np.zeros((F, V, J))
    for f, views in enumerate(per_frame):
        for name, rows in views.items():
            if rows is None:
                continue
            v = cameras.index(name)
            for j, row in enumerate(rows):
                if row is None:
                    continue
                ok = isinstance(row, list) and len(row) in (2, 3)
                ok = ok and all(isinstance(x, (int, float)) or x is None for x in row)
                if not ok:
                    raise KeypointFormatError(f"{path}: frames[{f}] camera {name!r} joint {j} must be [u, v, conf], "
                                              f"[u, v] or null, got {row!r}")  # fmt: skip
                vals = [math.nan if x is None else float(x) for x in row]
                points[f, v, j] = vals[:2]
                conf[f, v, j] = vals[2] if len(vals) == 3 else 1.0
    return Keypoints2D(cameras, joints, points, _clean_conf(points, conf), indices)


def save_keypoints(path: str | os.PathLike[str], kp: Keypoints2D) -> None:
    """Write ``kp`` as ``.json`` or ``.npz`` (by the suffix); undetected joints as null / NaN."""
    path = Path(path)
    if _suffix(path) == ".npz":
        np.savez(path, points=kp.points, confidence=kp.confidence, cameras=np.array(kp.cameras),
                 joint_names=np.array(kp.joint_names), frame_indices=kp.frame_indices)  # fmt: skip
        return
    frames = []
    for f, index in enumerate(kp.frame_indices.tolist()):
        views = {}
        for v, name in enumerate(kp.cameras):
            rows = [
                [float(u), float(w), float(c)] if np.isfinite([u, w]).all() else None
                for (u, w), c in zip(kp.points[f, v], kp.confidence[f, v])
            ]
            if any(r is not None for r in rows):
                views[name] = rows
        frames.append({"index": int(index), "views": views})
    doc = {"cameras": list(kp.cameras), "joint_names": list(kp.joint_names), "frames": frames}
    path.write_text(json.dumps(doc))


def _nullable(a: np.ndarray) -> list[Any]:
    """Nested lists with NaN / inf as null (JSON has no NaN)."""
    return [None if not np.isfinite(x).all() else (x.tolist() if x.ndim else float(x)) for x in a]


def save_points_3d(path: str | os.PathLike[str], result: Points3D) -> None:
    """Write triangulated joints as ``.npz`` or ``.json`` (by the suffix; layouts in the module doc)."""
    path = Path(path)
    if _suffix(path) == ".npz":
        np.savez(path, points_3d=result.points_3d, uncertainty_mm=result.uncertainty_mm,
                 reprojection_px=result.reprojection_px, num_inliers=result.num_inliers, inliers=result.inliers,
                 frame_indices=result.frame_indices, cameras=np.array(result.cameras),
                 joint_names=np.array(result.joint_names), method=np.array(result.method))  # fmt: skip
        return
    frames = [
        {
            "index": int(index),
            "points_3d": _nullable(result.points_3d[f]),
            "uncertainty_mm": _nullable(result.uncertainty_mm[f]),
            "reprojection_px": _nullable(result.reprojection_px[f]),
            "num_inliers": result.num_inliers[f].tolist(),
        }
        for f, index in enumerate(result.frame_indices.tolist())
    ]
    doc = {"units": "mm", "frame": "world", "method": result.method, "cameras": list(result.cameras),
           "joint_names": list(result.joint_names), "frames": frames}  # fmt: skip
    path.write_text(json.dumps(doc))


def load_points_3d(path: str | os.PathLike[str]) -> Points3D:
    """Read a file written by :func:`save_points_3d` (``inliers`` of a JSON file are not stored:
    they come back as the first ``num_inliers`` views, so only the counts are meaningful).

    Raises:
        KeypointFormatError: not such a file.
    """
    path = Path(path)
    try:
        if _suffix(path) == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return Points3D(_names(z["cameras"], "cameras", path), _names(z["joint_names"], "joint_names", path),
                                z["frame_indices"], z["points_3d"], z["uncertainty_mm"], z["reprojection_px"],
                                z["inliers"], str(z["method"]))  # fmt: skip
        doc = json.loads(path.read_text())
        cams = _names(doc["cameras"], "cameras", path)
        frames = doc["frames"]

        def arr(key: str, shape: tuple[int, ...]) -> np.ndarray:
            return np.array([[np.full(shape, np.nan) if x is None else x for x in fr[key]] for fr in frames], float)

        counts = np.array([fr["num_inliers"] for fr in frames], int)
        inliers = np.arange(len(cams)) < counts[..., None]
        return Points3D(cams, _names(doc["joint_names"], "joint_names", path),
                        np.array([fr["index"] for fr in frames], np.int64), arr("points_3d", (3,)),
                        arr("uncertainty_mm", ()), arr("reprojection_px", ()), inliers, str(doc["method"]))  # fmt: skip
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        if isinstance(e, KeypointFormatError):
            raise
        raise KeypointFormatError(f"{path}: not a 3D joints file of the documented layout ({e!r})") from e
