"""Custom gestures from a few examples: prototypes / a small head on clip features.

Enrolment (:func:`enrol`): every example sequence of a gesture gives its whole-sequence clip and
``views`` augmented clips (speed, crop, noise, small rotations, dropped frames: the same
augmentation as training, milder). Each clip's *features* are the base network's embedding (a
:class:`~models.gestures.recognizer.ClassRecognizer`, by default the shipped SHREC'17 14-class
model: the action token's features, unit length) concatenated with ``descriptor_weight`` x the
clip's hand-crafted descriptor (:func:`~models.gestures.features.clip_descriptor`: finger poses and
their motion, z-scored over the enrolment clips), unit length. The descriptor carries what SHREC's
hand-motion gestures did not teach the network (finger-only gestures); ``descriptor_weight`` 0 uses
the embedding alone. A gesture's *prototype* is the normalised mean of its clips' features.

Scoring (``method``):

* ``prototype``: cosine similarity of a clip's features to every prototype; probabilities are a
  softmax of the similarities divided by ``temperature``;
* ``head``: a small linear classifier (multinomial logistic regression, L2-regularised) fitted at
  enrolment on the features of all the augmented clips, with one more class, "none", fitted on
  no-gesture stretches made from the user's own examples
  (:func:`~models.gestures.data.background_sequence`: their poses held still, wandering, the
  edges of the takes, two takes spliced), so online detection rejects what is none of the gestures
  in the user's own hand's terms.

:attr:`GestureSet.accept_similarity` is the similarity to the best prototype below which a clip is
"none of these" (for online detection, both methods): from enrolment, the lowest
leave-one-example-out similarity of an example to its own gesture's prototype, minus a margin.

File (``.npz``): ``names`` (G,), ``prototypes`` (G, D), ``embeddings`` (N, D) (the enrolment
clips' features), ``labels`` (N,; G = none), ``head_weight`` (G + 1, D), ``head_bias`` (G + 1,), ``desc_mean``,
``desc_scale`` (DESCRIPTOR_SIZE,), ``descriptor_weight``, ``method``, ``base`` (the network:
``shrec14``, ``shrec28`` or a checkpoint path), ``temperature``, ``accept_similarity``, ``version``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.gestures.data import Augment, Example, augmented_clip, background_sequence
from models.gestures.features import DESCRIPTOR_SIZE, clip_descriptor, clip_joints
from models.gestures.recognizer import ClassRecognizer, Prediction, load_recognizer, predictions
from models.gestures.sequences import GestureSequence, SequenceError, load_sequence, sequences_from_export
from tracker.core.errors import ModelError

__all__ = ["GestureSet", "enrol", "enrol_folder", "fit_head", "ENROL_AUGMENT", "DESCRIPTOR_WEIGHT"]

log = logging.getLogger(__name__)

VERSION = 3
#: Milder than training: the examples are few and the user's own.
ENROL_AUGMENT = Augment(crop=0.08, speed=(0.85, 1.18), drop_frames=0.15, rotate_deg=10.0, scale=(0.9, 1.1),
                        noise_mm=3.0, drop_joints_p=0.2)  # fmt: skip
MARGIN = 0.1
#: "none" clips fitted with the head: this many per gesture clip, at least BACKGROUND_MIN.
BACKGROUND_PER_CLIP, BACKGROUND_MIN = 0.5, 40
#: Weight of the hand-crafted descriptor next to the network's embedding (measured: README).
DESCRIPTOR_WEIGHT = 1.0


@dataclass(frozen=True)
class _Stored:
    names: tuple[str, ...]
    prototypes: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray
    base: str
    temperature: float
    accept_similarity: float
    head_weight: np.ndarray
    head_bias: np.ndarray
    method: str
    desc_mean: np.ndarray
    desc_scale: np.ndarray
    descriptor_weight: float


class GestureSet:
    """Enrolled gestures scored against a base network (module docstring). Implements
    :class:`~models.gestures.recognizer.GestureRecognizer`."""

    def __init__(self, base: ClassRecognizer, stored: _Stored) -> None:
        self.base = base
        self._s = stored
        self.names = stored.names

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def accept_similarity(self) -> float:
        return self._s.accept_similarity

    def features(self, clips: list[tuple[np.ndarray, float]], embeddings: np.ndarray | None = None) -> np.ndarray:
        """``(N, D)`` unit-length features of clips (module docstring); ``embeddings`` if already run."""
        e = self.base.embed(clips) if embeddings is None else embeddings
        return _features(e, clips, self._s.desc_mean, self._s.desc_scale, self._s.descriptor_weight)

    def probabilities(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        p = self._scores(self.features(clips))
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)

    def window_scores(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """The gesture probabilities (``head``: with its "none" class's share left out), and 0 where
        the similarity to the best prototype is below :attr:`accept_similarity`."""
        f = self.features(clips)
        ok = (f @ self._s.prototypes.T).max(axis=1) >= self._s.accept_similarity
        return np.where(ok[:, None], self._scores(f), 0.0)

    def _scores(self, f: np.ndarray) -> np.ndarray:
        """``(N, G)`` probabilities of the gestures; with the head's "none" class, rows sum to < 1."""
        if self._s.method == "head":
            z = f @ self._s.head_weight.T + self._s.head_bias
        else:
            z = (f @ self._s.prototypes.T) / self._s.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True))[:, : len(self.names)]

    def classify(self, sequences: list[GestureSequence]) -> list[Prediction]:
        return predictions(self.probabilities([clip_joints(s) for s in sequences]), self.names)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self._s
        np.savez_compressed(path, names=np.array(s.names), prototypes=s.prototypes.astype(np.float32),
                            embeddings=s.embeddings.astype(np.float32), labels=s.labels, base=np.array(s.base),
                            temperature=s.temperature, accept_similarity=s.accept_similarity,
                            head_weight=s.head_weight.astype(np.float32), head_bias=s.head_bias.astype(np.float32),
                            method=np.array(s.method), desc_mean=s.desc_mean.astype(np.float32),
                            desc_scale=s.desc_scale.astype(np.float32), descriptor_weight=s.descriptor_weight,
                            version=VERSION)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> "GestureSet":
        """Read a gesture set.

        Raises:
            ModelError: missing, unreadable or not a gesture set; its base network cannot be loaded.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"no gesture set at {path}; make one with: python -m models.gestures enrol")
        try:
            with np.load(path, allow_pickle=False) as d:
                stored = _Stored(tuple(str(x) for x in d["names"]), np.asarray(d["prototypes"], np.float64),
                                 np.asarray(d["embeddings"], np.float64), np.asarray(d["labels"]), str(d["base"]),
                                 float(d["temperature"]), float(d["accept_similarity"]),
                                 np.asarray(d["head_weight"], np.float64), np.asarray(d["head_bias"], np.float64),
                                 str(d["method"]), np.asarray(d["desc_mean"], np.float64),
                                 np.asarray(d["desc_scale"], np.float64), float(d["descriptor_weight"]))  # fmt: skip
        except Exception as e:
            raise ModelError(f"{path} is not a readable gesture set ({type(e).__name__}: {e})") from e
        base = load_recognizer(stored.base, device)
        if not isinstance(base, ClassRecognizer):
            raise ModelError(f"{path}: its base {stored.base!r} is not a trained network")
        width = base.model.config.dim + DESCRIPTOR_SIZE
        if stored.prototypes.shape[1] != width:
            raise ModelError(f"{path}: prototypes of width {stored.prototypes.shape[1]} do not fit the base "
                             f"network {stored.base!r} (features of width {width}); enrol again")  # fmt: skip
        return cls(base, stored)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def _features(embeddings: np.ndarray, clips: list[tuple[np.ndarray, float]], mean: np.ndarray, scale: np.ndarray,
              weight: float) -> np.ndarray:  # fmt: skip
    """Embedding (unit) ++ ``weight`` x z-scored descriptor / sqrt(size), then unit length."""
    if not len(clips):
        return np.zeros((0, embeddings.shape[1] + DESCRIPTOR_SIZE))
    d = (np.stack([clip_descriptor(j) for j, _ in clips]) - mean) / scale
    return _unit(np.concatenate([embeddings, weight * d / np.sqrt(DESCRIPTOR_SIZE)], axis=1))


def fit_head(embeddings: np.ndarray, labels: np.ndarray, classes: int, l2: float = 1e-3,
             steps: int = 200) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Multinomial logistic regression (L-BFGS, L2 penalty ``l2``) -> ``weight (G, D)``, ``bias (G,)``."""
    import torch

    x = torch.as_tensor(embeddings, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    w = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def enrol(examples: dict[str, list[GestureSequence]], base: str = "shrec14", device: str = "cpu", views: int = 16,
          temperature: float = 0.05, method: str = "head", seed: int = 0,
          descriptor_weight: float = DESCRIPTOR_WEIGHT) -> GestureSet:  # fmt: skip
    """Make a gesture set from named example sequences (3-10 per gesture advised, >= 1 required).

    Raises:
        ValueError: fewer than 2 gestures, a gesture without examples, unknown ``method``.
        ModelError: the base network cannot be loaded.
    """
    if len(examples) < 2:
        raise ValueError(f"a gesture set needs at least 2 gestures, got {len(examples)}")
    if method not in ("head", "prototype"):
        raise ValueError(f"method must be 'head' or 'prototype', got {method!r}")
    for name, seqs in examples.items():
        if not seqs:
            raise ValueError(f"gesture {name!r} has no example")
    net = load_recognizer(base, device)
    if not isinstance(net, ClassRecognizer):
        raise ModelError(f"the base of a gesture set must be a trained network, not {base!r}")
    rng = np.random.default_rng(seed)
    names = tuple(sorted(examples))
    all_clips, labels, example_id = [], [], []
    for g, name in enumerate(names):
        for k, seq in enumerate(examples[name]):
            clips = [clip_joints(seq)]
            for _ in range(views):
                noisy, duration, _ = augmented_clip(seq, ENROL_AUGMENT, rng)
                clips.append((noisy, duration))
            all_clips += clips
            labels += [g] * len(clips)
            example_id += [f"{g}:{k}"] * len(clips)
    gesture_clips = len(all_clips)
    own = [Example(seq, 0, 0) for seqs in examples.values() for seq in seqs]
    for _ in range(max(BACKGROUND_MIN, int(BACKGROUND_PER_CLIP * gesture_clips))):
        seq = background_sequence(own, rng)
        all_clips.append(clip_joints(seq))
        labels.append(len(names))
        example_id.append("none")
    desc = np.stack([clip_descriptor(j) for j, _ in all_clips[:gesture_clips]])
    desc_mean, desc_scale = desc.mean(axis=0), desc.std(axis=0) + 1e-3
    features = _features(net.embed(all_clips), all_clips, desc_mean, desc_scale, descriptor_weight)
    weight, bias = fit_head(features, np.asarray(labels), len(names) + 1)
    embeddings = features[:gesture_clips]
    labels_a = np.asarray(labels[:gesture_clips])
    ids = np.asarray(example_id[:gesture_clips])
    prototypes = np.stack([_unit(embeddings[labels_a == g].mean(0)) for g in range(len(names))])
    # leave one example out: how similar is an unseen example of a gesture to that gesture's prototype?
    loo = []
    for g in range(len(names)):
        own = sorted(set(ids[labels_a == g]))
        if len(own) < 2:
            continue
        for ex in own:
            rest = _unit(embeddings[(labels_a == g) & (ids != ex)].mean(0))
            loo.append(float(embeddings[ids == ex][0] @ rest))  # the example's plain clip
    floor = min(loo) if loo else float(np.min(np.sum(embeddings * prototypes[labels_a], axis=1)))
    stored = _Stored(names, prototypes, embeddings, labels_a, base, float(temperature), floor - MARGIN, weight, bias,
                     method, desc_mean, desc_scale, float(descriptor_weight))  # fmt: skip
    log.info("enrolled %d gestures from %d examples; accept similarity %.3f", len(names),
             len(set(example_id)), stored.accept_similarity)  # fmt: skip
    return GestureSet(net, stored)


def enrol_folder(folder: str | os.PathLike[str], base: str = "shrec14", device: str = "cpu",
                 fps: float | None = None) -> GestureSet:  # fmt: skip
    """:func:`enrol` from ``folder/<gesture name>/*.npz`` (generic sequences or handtrack NPZ exports).

    Raises:
        SequenceError: no such folder, or no gesture sub-folder with sequences.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SequenceError(f"{folder}: no such folder (expected <gesture name>/*.npz inside)")
    examples: dict[str, list[GestureSequence]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        seqs = []
        for f in sorted(sub.glob("*.npz")):
            try:
                seqs.append(load_sequence(f, fps))
            except SequenceError:
                seqs.extend(sequences_from_export(f))  # a handtrack NPZ export: its tracks
        if seqs:
            examples[sub.name] = seqs
    if not examples:
        raise SequenceError(f"{folder}: no <gesture name>/*.npz examples found")
    return enrol(examples, base, device)
