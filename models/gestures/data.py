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
from tracker.core.joints import NUM_JOINTS, PALM_ROOT

__all__ = ["Augment", "Example", "load_shrec", "subject_split", "augmented_clip", "make_batch", "SHREC_SUBJECTS",
           "SHREC_14", "SHREC_28", "BACKGROUND", "background_sequence", "background_examples"]  # fmt: skip

log = logging.getLogger(__name__)

#: The 20 subjects of the SHREC'17 train split (the official test split holds 8 others).
SHREC_SUBJECTS = (2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 25, 26, 27)
#: SHREC'17 gesture names (id 1..14); the 28-class labels add "one finger" / "whole hand".
SHREC_14 = ("grab", "tap", "expand", "pinch", "rotation_cw", "rotation_ccw", "swipe_right", "swipe_left",
            "swipe_up", "swipe_down", "swipe_x", "swipe_plus", "swipe_v", "shake")  # fmt: skip
SHREC_28 = tuple(f"{g}_{f}" for g in SHREC_14 for f in ("finger", "hand"))
#: Name of the "no gesture" class: a model trained with background examples has it as its last class.
BACKGROUND = "none"


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



def _smooth_path(rng: np.random.Generator, frames: int, length_mm: float, smooth: int) -> np.ndarray:
    """A meandering 3D path ``(frames, 3)`` mm starting at 0 whose length is ``length_mm``: the running
    sum of Gaussian steps smoothed over ``smooth`` frames (so it turns, unlike a swipe)."""
    steps = rng.normal(size=(frames + 2 * smooth, 3))
    kernel = np.exp(-0.5 * (np.arange(-2 * smooth, 2 * smooth + 1) / smooth) ** 2)
    steps = np.stack([np.convolve(steps[:, k], kernel / kernel.sum(), mode="same") for k in range(3)], 1)
    steps = steps[smooth : smooth + frames]
    path = np.cumsum(steps, axis=0)
    path -= path[0]
    total = np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
    return path * (length_mm / total) if total > 0 else path


def _frame_shape(seq: GestureSequence, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` of ``seq`` as (root-relative joints (21, 3), root (3,)) mm."""
    j = seq.joints[i]
    root = np.nanmean(j[list(PALM_ROOT)], axis=0)
    return j - root, root


def background_sequence(examples: list[Example], rng: np.random.Generator, fps: float = 30.0) -> GestureSequence:
    """One stretch of hand motion that is *no gesture*, made from real hands of ``examples``:

    * **idle** (30 %): a real pose held 0.7-3 s with a slow drift (<= 12 mm), a small finger
      movement towards another pose of the same take and sensor noise (0.5-4 mm);
    * **wander** (30 %): free motion, 1-3 s: the hand follows a meandering path (5-30 cm long)
      while its shape morphs between two real poses of different takes and it turns by up to 35 deg;
    * **edge** (20 %): the first or last 8-22 % of a take (before / after the gesture itself);
    * **splice** (20 %): the last 10-25 % of one take followed by the first 10-25 % of another, joined
      where the hand is (a window straddling two gestures).

    These are SHREC-derived on purpose: the online evaluation's free motion comes from the data engine.
    """
    kind = rng.choice(4, p=(0.3, 0.3, 0.2, 0.2))
    a = examples[int(rng.integers(len(examples)))].sequence
    if kind == 0:
        frames = int(rng.integers(int(0.7 * fps), int(3 * fps) + 1))
        i, k = rng.integers(a.num_frames, size=2)
        s0, root = _frame_shape(a, int(i))
        s1, _ = _frame_shape(a, int(k))
        w = rng.uniform(0, 0.25) * (0.5 - 0.5 * np.cos(np.linspace(0, np.pi * rng.uniform(0.5, 2), frames)))
        shapes = s0[None] + w[:, None, None] * (s1 - s0)[None]
        drift = _smooth_path(rng, frames, rng.uniform(0, 12), 8)
        joints = shapes + (root + drift)[:, None] + rng.normal(0, rng.uniform(0.5, 4.0), (frames, NUM_JOINTS, 3))
    elif kind == 1:
        frames = int(rng.integers(int(1 * fps), int(3 * fps) + 1))
        b = examples[int(rng.integers(len(examples)))].sequence
        s0, root = _frame_shape(a, int(rng.integers(a.num_frames)))
        s1, _ = _frame_shape(b, int(rng.integers(b.num_frames)))
        w = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, frames))
        shapes = s0[None] + w[:, None, None] * (s1 - s0)[None]
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angles = np.radians(rng.uniform(-35, 35)) * w
        kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rots = np.eye(3)[None] + np.sin(angles)[:, None, None] * kx + (1 - np.cos(angles))[:, None, None] * (kx @ kx)
        shapes = np.einsum("tij,tkj->tki", rots, shapes)
        path = _smooth_path(rng, frames, rng.uniform(50, 300), int(rng.integers(6, 16)))
        joints = shapes + (root + path)[:, None] + rng.normal(0, rng.uniform(0.5, 3.0), (frames, NUM_JOINTS, 3))
    elif kind == 2:
        n = max(2, int(round(a.num_frames * rng.uniform(0.08, 0.22))))
        joints = a.joints[:n] if rng.random() < 0.5 else a.joints[-n:]
    else:
        b = examples[int(rng.integers(len(examples)))].sequence
        n1 = max(2, int(round(a.num_frames * rng.uniform(0.1, 0.25))))
        n2 = max(2, int(round(b.num_frames * rng.uniform(0.1, 0.25))))
        head = a.joints[-n1:]
        tail = b.joints[:n2]
        shift = np.nanmean(head[-1, list(PALM_ROOT)], axis=0) - np.nanmean(tail[0, list(PALM_ROOT)], axis=0)
        joints = np.concatenate([head, tail + shift])
    return GestureSequence(joints, np.arange(len(joints)) / fps, label=BACKGROUND, source="background")


def background_examples(examples: list[Example], count: int, label: int, rng: np.random.Generator) -> list[Example]:
    """``count`` fresh :func:`background_sequence` examples labelled ``label`` (the last class)."""
    return [Example(background_sequence(examples, rng), label, -1) for _ in range(count)]
