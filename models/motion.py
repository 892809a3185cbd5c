"""Plausible hand motion for the synthetic data engine: key hand shapes, actions, wrist motion.

A motion is a sequence of hand-model parameters (:mod:`models.hand_model`) sampled at a frame
rate, with an action label per frame. Everything is drawn from a ``numpy.random.Generator`` passed
in, so a seed fixes the motion exactly.

Frames and units: finger angles in radians (:data:`models.hand_model.ANGLE_NAMES` order); the wrist
rotation is an axis-angle ``rotvec`` (radians) and the translation ``transl`` millimetres, both of
the hand-local -> **scene** transform, where the scene frame is the frame the caller places
cameras in (:mod:`models.synthetic`). Time in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from models.hand_model import ANGLE_LIMITS_DEG, ANGLE_NAMES, NUM_ANGLES

__all__ = [
    "ACTIONS",
    "HAND_SHAPES",
    "Motion",
    "MotionConfig",
    "hand_shape",
    "sample_motion",
    "smooth_noise",
    "smoothstep_path",
    "clamp_angles",
]

#: Action labels of generated sequences (the HTT-style action head learns these).
ACTIONS: Final[tuple[str, ...]] = ("open_close", "pinch", "point", "grasp", "wave", "count", "random")


def _angles(**chains: tuple[float, float, float, float]) -> tuple[float, ...]:
    """A full 20-angle vector in degrees from per-chain ``(root flex, root abd, mid, distal)``."""
    out = [0.0] * NUM_ANGLES
    for chain, values in chains.items():
        i = ANGLE_NAMES.index(f"{chain}_{'cmc' if chain == 'thumb' else 'mcp'}_flex")
        out[i : i + 4] = values
    return tuple(out)


_CURL = {"middle": (85.0, 0.0, 95.0, 60.0), "ring": (85.0, 0.0, 95.0, 60.0), "pinky": (85.0, 0.0, 95.0, 60.0)}
_THUMB_OVER = (35.0, -15.0, 40.0, 45.0)  # thumb folded over curled fingers

#: Named key hand shapes, degrees per angle (:data:`ANGLE_NAMES` order). ``pinch``: thumb and
#: index tip joints meet (found with :func:`models.hand_model.levenberg_marquardt`).
HAND_SHAPES: Final[dict[str, tuple[float, ...]]] = {
    "open": _angles(thumb=(-5.0, 10.0, 5.0, 5.0), index=(0.0, 8.0, 3.0, 2.0), middle=(0.0, 2.0, 3.0, 2.0),
                    ring=(0.0, 6.0, 3.0, 2.0), pinky=(0.0, 12.0, 4.0, 2.0)),
    "relaxed": _angles(thumb=(5.0, 5.0, 10.0, 10.0), index=(10.0, 2.0, 15.0, 8.0), middle=(12.0, 0.0, 18.0, 10.0),
                       ring=(14.0, 0.0, 22.0, 12.0), pinky=(16.0, 4.0, 25.0, 12.0)),
    "fist": _angles(thumb=_THUMB_OVER, index=(85.0, 0.0, 95.0, 60.0), **_CURL),
    "pinch": _angles(thumb=(20.8, -19.4, 11.8, 13.2), index=(52.0, 1.6, 50.7, 26.2), middle=(20.0, 0.0, 25.0, 15.0),
                     ring=(25.0, 0.0, 30.0, 18.0), pinky=(30.0, 0.0, 32.0, 20.0)),
    "point": _angles(thumb=_THUMB_OVER, index=(0.0, 0.0, 3.0, 2.0), **_CURL),
    "grasp": _angles(thumb=(25.0, 20.0, 20.0, 20.0), index=(45.0, 0.0, 55.0, 30.0), middle=(50.0, 0.0, 60.0, 32.0),
                     ring=(52.0, 0.0, 62.0, 34.0), pinky=(55.0, 3.0, 64.0, 34.0)),
    "two": _angles(thumb=_THUMB_OVER, index=(0.0, 10.0, 3.0, 2.0), middle=(0.0, 8.0, 3.0, 2.0),
                   ring=(85.0, 0.0, 95.0, 60.0), pinky=(85.0, 0.0, 95.0, 60.0)),
    "three": _angles(thumb=_THUMB_OVER, index=(0.0, 10.0, 3.0, 2.0), middle=(0.0, 3.0, 3.0, 2.0),
                     ring=(0.0, 8.0, 3.0, 2.0), pinky=(85.0, 0.0, 95.0, 60.0)),
    "four": _angles(thumb=(30.0, -15.0, 35.0, 40.0), index=(0.0, 8.0, 3.0, 2.0), middle=(0.0, 2.0, 3.0, 2.0),
                    ring=(0.0, 6.0, 3.0, 2.0), pinky=(0.0, 12.0, 4.0, 2.0)),
}

#: Key shapes visited by each scripted action, in order (the motion cycles through them).
_ACTION_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "open_close": ("open", "fist"),
    "pinch": ("relaxed", "pinch"),
    "point": ("relaxed", "point"),
    "grasp": ("open", "grasp"),
    "wave": ("open", "open"),
    "count": ("fist", "point", "two", "three", "four", "open"),
}


def hand_shape(name: str) -> np.ndarray:
    """The key hand shape ``name`` as a ``(20,)`` float64 angle vector in radians."""
    try:
        return np.radians(np.array(HAND_SHAPES[name], dtype=np.float64))
    except KeyError:
        raise ValueError(f"unknown hand shape {name!r}; known: {', '.join(HAND_SHAPES)}") from None


def clamp_angles(angles: np.ndarray) -> np.ndarray:
    """Clip ``(..., 20)`` radians into the model's joint limits."""
    lim = np.radians(np.array(ANGLE_LIMITS_DEG, dtype=np.float64))
    return np.clip(angles, lim[:, 0], lim[:, 1])


def smooth_noise(rng: np.random.Generator, n: int, dims: int, width: float, radius: int | None = None) -> np.ndarray:
    """``(n, dims)`` Gaussian noise low-passed by a Gaussian kernel of ``width`` samples, rescaled
    to unit standard deviation (a smooth random signal).

    ``radius``: the kernel's half-length in samples (default ``int(3 * width) + 1``); it also sets how
    many normals are drawn, ``(n + 2 * radius) * dims``, so the same ``rng`` state and ``radius`` give
    the same signal.
    """
    pad = int(3 * width) + 1 if radius is None else int(radius)
    white = rng.standard_normal((n + 2 * pad, dims))
    taps = np.exp(-0.5 * (np.arange(-pad, pad + 1) / max(width, 1e-6)) ** 2)
    taps /= taps.sum()
    out = np.zeros((n, dims))
    for k, t in enumerate(taps):
        out += t * white[k : k + n]
    return out / math.sqrt(float((taps * taps).sum()))


def smoothstep_path(keys: np.ndarray, key_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Values ``(T, D)`` at ``times`` moving between ``keys`` ``(K, D)`` held at ``key_times``
    ``(K,)`` (increasing) with smoothstep easing (zero velocity at each key)."""
    idx = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(key_times) - 2)
    span = key_times[idx + 1] - key_times[idx]
    s = np.clip((times - key_times[idx]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    s = s * s * (3.0 - 2.0 * s)
    return (1.0 - s)[:, None] * keys[idx] + s[:, None] * keys[idx + 1]


@dataclass(frozen=True)
class MotionConfig:
    """How motions are drawn.

    Attributes:
        fps: frame rate (Hz).
        key_period_s: mean time between key shapes (s).
        finger_jitter_deg: std of the random offset added to every key shape (deg).
        tremor_deg: std of the smooth finger-angle noise on top (deg).
        wrist_rotation_deg: std of the smooth wrist rotation around the base orientation (deg).
        wrist_translation_mm: std of the smooth wrist translation (mm).
        wave_amplitude_deg: wrist swing of the ``wave`` action (deg).
        random_range: fraction of each joint's range that ``random`` key shapes are drawn from.
    """

    fps: float = 30.0
    key_period_s: float = 0.8
    finger_jitter_deg: float = 6.0
    tremor_deg: float = 1.5
    wrist_rotation_deg: float = 12.0
    wrist_translation_mm: float = 25.0
    wave_amplitude_deg: float = 30.0
    random_range: float = 0.75


@dataclass(frozen=True)
class Motion:
    """A hand motion sampled at ``fps``.

    Attributes:
        angles: ``(T, 20)`` radians, within the joint limits.
        rotvec: ``(T, 3)`` axis-angle (radians) of the hand-local -> scene rotation.
        transl: ``(T, 3)`` mm, the wrist in the scene frame.
        actions: ``(T,)`` action label per frame (one of :data:`ACTIONS`).
        times: ``(T,)`` seconds from 0.
    """

    angles: np.ndarray
    rotvec: np.ndarray
    transl: np.ndarray
    actions: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return int(self.angles.shape[0])

    def pose_vectors(self) -> np.ndarray:
        """``(T, POSE_DIM)`` hand-model pose vectors ``[rotvec, transl, angles]``."""
        return np.concatenate([self.rotvec, self.transl, self.angles], axis=1)


def _rotvec_compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(T, 3)`` of ``R(a) @ R(b)``."""
    import torch

    from models.hand_model import matrix_to_rotvec, rotvec_to_matrix

    ra = rotvec_to_matrix(torch.as_tensor(np.array(a), dtype=torch.float64))
    rb = rotvec_to_matrix(torch.as_tensor(np.array(b), dtype=torch.float64))
    return matrix_to_rotvec(ra @ rb).numpy()


def sample_motion(rng: np.random.Generator, action: str, num_frames: int, base_rotvec: Sequence[float],
                  base_transl: Sequence[float], config: MotionConfig = MotionConfig()) -> Motion:
    """Draw one motion of ``num_frames`` frames performing ``action``.

    Args:
        rng: the random source (the only one used).
        action: one of :data:`ACTIONS`.
        num_frames: frames to generate.
        base_rotvec: ``(3,)`` hand-local -> scene rotation the wrist moves around (radians).
        base_transl: ``(3,)`` mm, the wrist's mean scene position.
        config: motion settings.

    Returns:
        The :class:`Motion`.

    Raises:
        ValueError: unknown action or fewer than 1 frame.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    times = np.arange(num_frames, dtype=np.float64) / config.fps
    duration = max(times[-1], 1e-9)
    n_keys = max(2, int(math.ceil(duration / config.key_period_s)) + 2)
    steps = config.key_period_s * rng.uniform(0.7, 1.3, n_keys - 1)
    key_times = np.concatenate([[0.0], np.cumsum(steps)]) - rng.uniform(0.0, config.key_period_s)
    lim = np.radians(np.array(ANGLE_LIMITS_DEG, dtype=np.float64))
    if action == "random":
        u = rng.uniform(0.0, 1.0, (n_keys, NUM_ANGLES))
        margin = (1.0 - config.random_range) / 2.0
        keys = lim[:, 0] + (margin + config.random_range * u) * (lim[:, 1] - lim[:, 0])
    else:
        names = _ACTION_KEYS[action]
        start = int(rng.integers(len(names)))
        keys = np.stack([hand_shape(names[(start + k) % len(names)]) for k in range(n_keys)])
        keys = keys + np.radians(config.finger_jitter_deg) * rng.standard_normal(keys.shape)
    angles = smoothstep_path(keys, key_times, times)
    angles = angles + np.radians(config.tremor_deg) * smooth_noise(rng, num_frames, NUM_ANGLES, 4.0)
    angles = clamp_angles(angles)

    wobble = np.radians(config.wrist_rotation_deg) * smooth_noise(rng, num_frames, 3, config.fps * 0.5)
    if action == "wave":  # swing about the hand-local z axis (palm normal), about 1.5 Hz
        freq = rng.uniform(1.0, 2.0)
        phase = rng.uniform(0.0, 2 * math.pi)
        wobble[:, 2] += np.radians(config.wave_amplitude_deg) * np.sin(2 * math.pi * freq * times + phase)
    rotvec = _rotvec_compose(np.broadcast_to(np.asarray(base_rotvec, np.float64), (num_frames, 3)), wobble)
    transl = np.asarray(base_transl, np.float64) + config.wrist_translation_mm * smooth_noise(
        rng, num_frames, 3, config.fps * 0.6)
    return Motion(angles, rotvec, transl, np.array([action] * num_frames), times)
