"""Gesture training data: the SHREC'17 train split, subject-held-out validation, augmentation, batches.

Augmentation of a training clip (all on the joints, before the features; probabilities per clip):

* **time**: the clip window is cropped by up to ``crop`` of its duration at each end, and the
  duration the network sees is scaled by a speed factor in ``speed`` (the same motion done faster or
  slower);
* **frames dropped**: up to ``drop_frames`` of the source frames removed before resampling;
* **rotation**: a random rotation of up to ``rotate_deg`` about each camera axis (other mounts);
* **scale**: the whole sequence scaled by ``scale`` (other hands, other sensors' units);
* **noise**: Gaussian noise of a random sigma up to ``noise_mm`` on every joint (the pose target
  stays clean: the pose head learns to denoise);
* **joints dropped**: with ``drop_joints_p``, 1-5 random joints missing (NaN) over a random span, as
  other sensors' layouts or occlusions (the target keeps them).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.gestures.features import CLIP_FRAMES, clip_features, clip_joints, normalise
from models.gestures.sequences import GestureSequence, read_shrec, read_shrec_list, shrec_path
from tracker.core.joints import NUM_JOINTS

__all__ = ["Augment", "Example", "load_shrec", "subject_split", "augmented_clip", "make_batch", "SHREC_SUBJECTS",
           "SHREC_14", "SHREC_28"]  # fmt: skip

log = logging.getLogger(__name__)

#: The 20 subjects of the SHREC'17 train split (the official test split holds 8 others).
SHREC_SUBJECTS = (2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 25, 26, 27)
#: SHREC'17 gesture names (id 1..14); the 28-class labels add "one finger" / "whole hand".
SHREC_14 = ("grab", "tap", "expand", "pinch", "rotation_cw", "rotation_ccw", "swipe_right", "swipe_left",
            "swipe_up", "swipe_down", "swipe_x", "swipe_plus", "swipe_v", "shake")  # fmt: skip
SHREC_28 = tuple(f"{g}_{f}" for g in SHREC_14 for f in ("finger", "hand"))


@dataclass(frozen=True)
class Example:
    """One labelled sequence: ``label`` 0-based class, ``subject`` for splitting."""

    sequence: GestureSequence
    label: int
    subject: int


def load_shrec(root: str | os.PathLike[str], classes: int = 14, list_file: str | os.PathLike[str] | None = None) -> list[Example]:
    """Every sequence of a SHREC'17 folder with its 0-based label (14 or 28 classes).

    Raises:
        SequenceError: no list file, or a listed file missing / unreadable.
        ValueError: ``classes`` not 14 or 28.
    """
    if classes not in (14, 28):
        raise ValueError(f"SHREC'17 has 14 or 28 classes, got {classes}")
    root = Path(root)
    entries = read_shrec_list(list_file or root / "train_gestures.txt")
    out = []
    for e in entries:
        label = (e.label_14 if classes == 14 else e.label_28) - 1
        out.append(Example(read_shrec(shrec_path(root, e), label=str(label + 1)), label, e.subject))
    log.info("SHREC'17: %d sequences, %d subjects from %s", len(out), len({x.subject for x in out}), root)
    return out


def subject_split(examples: list[Example], fold: int, folds: int = 5) -> tuple[list[Example], list[Example]]:
    """Train / validation by subject: fold ``fold`` of ``folds`` takes every ``folds``-th subject of the
    sorted subject list (4 of SHREC's 20 per fold) for validation."""
    subjects = sorted({x.subject for x in examples})
    held = set(subjects[fold::folds])
    return [x for x in examples if x.subject not in held], [x for x in examples if x.subject in held]


@dataclass(frozen=True)
class Augment:
    """Augmentation ranges (module docstring); :data:`NONE` switches everything off."""

    crop: float = 0.1
    speed: tuple[float, float] = (0.8, 1.25)
    drop_frames: float = 0.2
    rotate_deg: float = 20.0
    scale: tuple[float, float] = (0.85, 1.15)
    noise_mm: float = 6.0
    drop_joints_p: float = 0.3

    @classmethod
    def none(cls) -> "Augment":
        return cls(crop=0.0, speed=(1.0, 1.0), drop_frames=0.0, rotate_deg=0.0, scale=(1.0, 1.0), noise_mm=0.0,
                   drop_joints_p=0.0)  # fmt: skip


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    r = np.eye(3)
    for axis in range(3):
        a = math.radians(rng.uniform(-max_deg, max_deg))
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        r = r @ m
    return r


def augmented_clip(seq: GestureSequence, aug: Augment, rng: np.random.Generator,
                   frames: int = CLIP_FRAMES) -> tuple[np.ndarray, float, np.ndarray]:  # fmt: skip
    """One (augmented) clip of ``seq``: noisy joints ``(frames, 21, 3)`` mm (NaN = missing), the
    duration the network sees (s), and the clean joints (the pose target)."""
    joints, times = seq.joints, seq.timestamps
    if aug.drop_frames > 0 and len(joints) > 4:
        keep = rng.random(len(joints)) >= rng.uniform(0, aug.drop_frames)
        keep[[0, -1]] = True
        joints, times = joints[keep], times[keep]
    t0, t1 = times[0], times[-1]
    span = t1 - t0
    if aug.crop > 0 and span > 0:
        t0 += rng.uniform(0, aug.crop) * span
        t1 -= rng.uniform(0, aug.crop) * span
    clean, duration = clip_joints(GestureSequence(joints, times), t0, t1, frames)
    duration *= rng.uniform(*aug.speed)
    if aug.rotate_deg > 0 or aug.scale != (1.0, 1.0):
        centre = np.nanmean(clean.reshape(-1, 3), axis=0)
        m = _rotation(rng, aug.rotate_deg) * rng.uniform(*aug.scale)
        clean = (clean - centre) @ m.T + centre
    noisy = clean + rng.normal(0.0, rng.uniform(0, aug.noise_mm), clean.shape) if aug.noise_mm > 0 else clean.copy()
    if aug.drop_joints_p > 0 and rng.random() < aug.drop_joints_p:
        lost = rng.choice(NUM_JOINTS, size=rng.integers(1, 6), replace=False)
        a = rng.integers(0, frames)
        b = rng.integers(a + 1, frames + 1)
        noisy[a:b, lost] = np.nan
    return noisy, duration, clean


def make_batch(examples: list[Example], aug: Augment, rng: np.random.Generator,
               frames: int = CLIP_FRAMES) -> dict[str, np.ndarray]:  # fmt: skip
    """Features, frame validity, labels, and the pose target (clean normalised shape + its mask)."""
    feats, valid, labels, target, target_ok = [], [], [], [], []
    for ex in examples:
        noisy, duration, clean = augmented_clip(ex.sequence, aug, rng, frames)
        f, v = clip_features(noisy, duration)
        # the target is the clean shape around the *noisy* clip's root and size, so that it can be
        # mapped back to millimetres from the input alone
        _, root, s, _ = normalise(noisy)
        shape = (clean - root[:, None]) / s
        feats.append(f)
        valid.append(v)
        labels.append(ex.label)
        target.append(shape)
        target_ok.append(np.isfinite(shape).all(axis=-1))
    return {"features": np.stack(feats), "valid": np.stack(valid), "labels": np.asarray(labels),
            "pose": np.stack(target).astype(np.float32), "pose_valid": np.stack(target_ok)}  # fmt: skip

