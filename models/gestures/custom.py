"""Custom gestures from a few examples: prototypes in the embedding space of a trained network.

Enrolment (:func:`enrol`): every example sequence of a gesture gives its whole-sequence clip and
``views`` augmented clips (speed, crop, noise, small rotations, dropped frames: the same
augmentation as training, milder); the network (a :class:`~models.gestures.recognizer.ClassRecognizer`,
by default the shipped SHREC'17 14-class model) embeds them (the action token's features, unit
length) and a gesture's *prototype* is the normalised mean of its embeddings.

Scoring: cosine similarity of a clip's embedding to every prototype; probabilities are a softmax of
the similarities divided by ``temperature``. :attr:`GestureSet.accept_similarity` is the similarity
below which a clip is "none of these" (for online detection): from enrolment, the lowest
leave-one-example-out similarity of an example to its own gesture's prototype, minus a margin.

File (``.npz``): ``names`` (G,), ``prototypes`` (G, D), ``embeddings`` (N, D), ``labels`` (N,),
``base`` (the network: ``shrec14``, ``shrec28`` or a checkpoint path), ``temperature``,
``accept_similarity``, ``version``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.gestures.data import Augment, augmented_clip
from models.gestures.features import clip_joints
from models.gestures.recognizer import ClassRecognizer, Prediction, load_recognizer, predictions
from models.gestures.sequences import GestureSequence, SequenceError, load_sequence, sequences_from_export
from tracker.core.errors import ModelError

__all__ = ["GestureSet", "enrol", "enrol_folder", "ENROL_AUGMENT"]

log = logging.getLogger(__name__)

VERSION = 1
#: Milder than training: the examples are few and the user's own.
ENROL_AUGMENT = Augment(crop=0.08, speed=(0.85, 1.18), drop_frames=0.15, rotate_deg=10.0, scale=(0.9, 1.1),
                        noise_mm=3.0, drop_joints_p=0.2)  # fmt: skip
MARGIN = 0.1


@dataclass(frozen=True)
class _Stored:
    names: tuple[str, ...]
    prototypes: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray
    base: str
    temperature: float
    accept_similarity: float


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

    def similarities(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """``(N, G)`` cosine similarity of each clip to each gesture's prototype."""
        return self.base.embed(clips) @ self._s.prototypes.T

    def probabilities(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        z = self.similarities(clips) / self._s.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def classify(self, sequences: list[GestureSequence]) -> list[Prediction]:
        return predictions(self.probabilities([clip_joints(s) for s in sequences]), self.names)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self._s
        np.savez_compressed(path, names=np.array(s.names), prototypes=s.prototypes.astype(np.float32),
                            embeddings=s.embeddings.astype(np.float32), labels=s.labels, base=np.array(s.base),
                            temperature=s.temperature, accept_similarity=s.accept_similarity,
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
                                 float(d["temperature"]), float(d["accept_similarity"]))  # fmt: skip
        except Exception as e:
            raise ModelError(f"{path} is not a readable gesture set ({type(e).__name__}: {e})") from e
        base = load_recognizer(stored.base, device)
        if not isinstance(base, ClassRecognizer):
            raise ModelError(f"{path}: its base {stored.base!r} is not a trained network")
        if stored.prototypes.shape[1] != base.model.config.dim:
            raise ModelError(f"{path}: prototypes of width {stored.prototypes.shape[1]} do not fit the base "
                             f"network {stored.base!r} (width {base.model.config.dim}); enrol again")  # fmt: skip
        return cls(base, stored)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def enrol(examples: dict[str, list[GestureSequence]], base: str = "shrec14", device: str = "cpu", views: int = 16,
          temperature: float = 0.05, seed: int = 0) -> GestureSet:  # fmt: skip
    """Make a gesture set from named example sequences (3-10 per gesture advised, >= 1 required).

    Raises:
        ValueError: fewer than 2 gestures or a gesture without examples.
        ModelError: the base network cannot be loaded.
    """
    if len(examples) < 2:
        raise ValueError(f"a gesture set needs at least 2 gestures, got {len(examples)}")
    for name, seqs in examples.items():
        if not seqs:
            raise ValueError(f"gesture {name!r} has no example")
    net = load_recognizer(base, device)
    if not isinstance(net, ClassRecognizer):
        raise ModelError(f"the base of a gesture set must be a trained network, not {base!r}")
    rng = np.random.default_rng(seed)
    names = tuple(sorted(examples))
    emb, labels, example_id = [], [], []
    for g, name in enumerate(names):
        for k, seq in enumerate(examples[name]):
            clips = [clip_joints(seq)]
            for _ in range(views):
                noisy, duration, _ = augmented_clip(seq, ENROL_AUGMENT, rng)
                clips.append((noisy, duration))
            e = net.embed(clips)
            emb.append(e)
            labels += [g] * len(e)
            example_id += [f"{g}:{k}"] * len(e)
    embeddings = np.concatenate(emb)
    labels_a = np.asarray(labels)
    ids = np.asarray(example_id)
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
    stored = _Stored(names, prototypes, embeddings, labels_a, base, float(temperature), floor - MARGIN)
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
