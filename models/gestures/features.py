"""Per-frame tokens of a hand clip for the gesture network (:mod:`models.htt`).

A clip is a sequence resampled to :data:`CLIP_FRAMES` instants spread uniformly over its duration
(:func:`clip_joints`), so a gesture performed slowly or quickly gives the same number of tokens; the
duration itself is one of the features. Per frame (all lengths divided by the clip's hand size
``s``, the median wrist -> finger-MCP distance, so users' hands and sensor scales agree):

* ``shape`` (63): joints relative to the frame's root (the centroid of the present palm joints:
  wrist and the four finger MCPs), / ``s``;
* ``trajectory`` (3): the root relative to the clip's mean root, / ``s`` (camera axes are kept, so
  a swipe left differs from a swipe right: there is no rotation normalisation by default);
* their velocities (63 + 3): differences to the previous instant (0 for the first);
* ``present`` (21): 1 where the joint is there, 0 where it was missing (its values are then 0);
* ``log duration`` (1): log of the clip's duration in seconds.

Input joints: mm, camera frame with OpenCV axes, 21 joints of :mod:`tracker.core.joints`, NaN =
missing. :func:`clip_features` returns float32 ``(CLIP_FRAMES, NUM_FEATURES)`` and the per-frame
validity (a frame with no palm joint has no root and is masked out of attention).
"""

from __future__ import annotations

import numpy as np

from models.gestures.sequences import GestureSequence, resample
from tracker.core.joints import KNUCKLES, NUM_JOINTS, PALM_ROOT, WRIST

__all__ = [
    "CLIP_FRAMES",
    "NUM_FEATURES",
    "PALM_JOINTS",
    "DEFAULT_HAND_SIZE_MM",
    "clip_joints",
    "clip_features",
    "clip_descriptor",
    "palm_frames",
    "DESCRIPTOR_SIZE",
    "hand_size",
    "normalise",
]

CLIP_FRAMES = 32
PALM_JOINTS = PALM_ROOT  # wrist and the index, middle, ring, pinky MCPs
DEFAULT_HAND_SIZE_MM = 85.0  # an adult hand's mean wrist -> MCP distance, used when it cannot be measured
NUM_FEATURES = NUM_JOINTS * 3 * 2 + 3 * 2 + NUM_JOINTS + 1
DESCRIPTOR_SIZE = NUM_JOINTS * 3 * 3 + 3


def clip_joints(seq: GestureSequence, start: float | None = None, end: float | None = None,
                frames: int = CLIP_FRAMES) -> tuple[np.ndarray, float]:  # fmt: skip
    """``frames`` instants spread uniformly over ``[start, end]`` s (default: the whole sequence) ->
    the joints there ``(frames, 21, 3)`` mm and the clip's duration (s, at least one frame period)."""
    t0 = seq.timestamps[0] if start is None else float(start)
    t1 = seq.timestamps[-1] if end is None else float(end)
    times = np.linspace(t0, t1, frames)
    period = float(np.median(np.diff(seq.timestamps))) if seq.num_frames > 1 else 1.0 / 30.0
    return resample(seq, times), max(t1 - t0, period)


def hand_size(joints: np.ndarray) -> float:
    """Median over frames of the mean wrist -> finger-MCP distance (mm); the default where unmeasurable."""
    d = np.linalg.norm(joints[:, list(KNUCKLES)] - joints[:, [WRIST]], axis=-1)  # (T, 4)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if len(d) else DEFAULT_HAND_SIZE_MM


def normalise(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Root-relative, size-normalised shape of each frame.

    Returns:
        ``shape (T, 21, 3)`` (NaN where missing), ``root (T, 3)`` mm (NaN for a frame with no palm
        joint), the hand size ``s`` (mm), and ``frame_valid (T,)``.
    """
    palm = joints[:, PALM_JOINTS]
    present = np.isfinite(palm).all(axis=-1)  # (T, 5)
    count = present.sum(axis=1)
    root = np.where(count[:, None] > 0, np.nansum(np.where(present[..., None], palm, 0.0), axis=1)
                    / np.maximum(count, 1)[:, None], np.nan)  # fmt: skip
    s = hand_size(joints)
    return (joints - root[:, None]) / s, root, s, count > 0


def clip_features(joints: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of one clip (module docstring).

    Args:
        joints: ``(T, 21, 3)`` mm, NaN = missing.
        duration: the clip's duration in seconds (> 0).

    Returns:
        ``features (T, NUM_FEATURES)`` float32 and ``frame_valid (T,)`` bool.
    """
    shape, root, s, valid = normalise(joints)
    present = np.isfinite(shape).all(axis=-1)  # (T, 21)
    shape = np.where(present[..., None], shape, 0.0)
    mean_root = np.nanmean(root[valid], axis=0) if valid.any() else np.zeros(3)
    traj = np.where(valid[:, None], (root - mean_root) / s, 0.0)
    d_shape = np.zeros_like(shape)
    d_shape[1:] = np.where((present[1:] & present[:-1])[..., None], shape[1:] - shape[:-1], 0.0)
    d_traj = np.zeros_like(traj)
    d_traj[1:] = np.where((valid[1:] & valid[:-1])[:, None], traj[1:] - traj[:-1], 0.0)
    t = len(joints)
    feats = np.concatenate([
        shape.reshape(t, -1), traj, d_shape.reshape(t, -1), d_traj, present.astype(np.float64),
        np.full((t, 1), np.log(max(duration, 1e-3))),
    ], axis=1)  # fmt: skip
    return feats.astype(np.float32), valid


def palm_frames(joints: np.ndarray) -> np.ndarray:
    """Per frame, the rotation ``(T, 3, 3)`` whose rows are the palm's axes in the camera frame: x from
    the wrist to the middle MCP, y from the index MCP towards the pinky MCP (orthogonalised), z their
    cross product; the identity where a needed joint is missing or the palm is degenerate."""
    x = joints[:, 9] - joints[:, WRIST]
    y = joints[:, 17] - joints[:, 5]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y - np.sum(y * x, axis=-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    r = np.stack([x, y, np.cross(x, y)], axis=1)
    ok = np.isfinite(r).all(axis=(1, 2))
    r[~ok] = np.eye(3)
    return r


def clip_descriptor(joints: np.ndarray) -> np.ndarray:
    """A fixed hand-crafted summary of a clip ``(DESCRIPTOR_SIZE,)`` (hand sizes): the mean normalised
    shape over the clip in the palm's own axes (:func:`palm_frames`, so it does not depend on how the
    hand is turned to the camera) (63), its standard deviation (63), the mean absolute change of that
    shape per clip instant (63) and the standard deviation of the trajectory (3, camera axes). It
    describes *finger* poses and their motion, which a network trained on SHREC'17's mostly
    hand-motion gestures embeds weakly; custom gesture sets use it next to the network's embedding
    (:mod:`models.gestures.custom`).

    Args:
        joints: ``(T, 21, 3)`` mm (a clip of :func:`clip_joints`), NaN = missing.
    """
    import warnings

    shape, root, s, valid = normalise(joints)
    shape = np.einsum("tij,tkj->tki", palm_frames(joints), shape)
    with warnings.catch_warnings():  # joints missing over the whole clip: NaN, zeroed below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(shape, axis=0).reshape(-1)
        std = np.nanstd(shape, axis=0).reshape(-1)
        change = np.nanmean(np.abs(np.diff(shape, axis=0)), axis=0).reshape(-1) if len(shape) > 1 else np.zeros(63)
        traj = np.nanstd(root[valid] / s, axis=0) if valid.any() else np.zeros(3)
    return np.nan_to_num(np.concatenate([mean, std, change, traj]))
