"""Gesture recognisers: the trained SHREC'17 classifiers and custom gesture sets, behind one interface.

A recogniser turns clips of a hand (joints ``(T, 21, 3)`` mm, camera frame, NaN = missing, and the
clip's duration) into class probabilities. Two kinds:

* :class:`ClassRecognizer`: an :class:`models.htt.HTT` checkpoint with its class head (the shipped
  ``gestures_shrec14`` / ``gestures_shrec28``, or one trained with ``python -m models.gestures train``);
* :class:`models.gestures.custom.GestureSet`: gestures enrolled from a few examples, scored in the
  embedding space of a base network.

:func:`load_recognizer` takes ``shrec14`` / ``shrec28``, a checkpoint ``.pt`` or a gesture set ``.npz``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from models.gestures.features import clip_features, clip_joints
from models.gestures.sequences import GestureSequence
from tracker.core.errors import ModelError

__all__ = ["Prediction", "GestureRecognizer", "ClassRecognizer", "load_recognizer", "run_clips"]


@dataclass(frozen=True)
class Prediction:
    """The most likely gesture of one clip: ``label`` (name), ``label_id`` (1-based class id), ``score``
    (its probability) and every class's probability."""

    label: str
    label_id: int
    score: float
    probabilities: np.ndarray


class GestureRecognizer(Protocol):
    """Anything that scores clips against named gestures."""

    names: tuple[str, ...]

    @property
    def num_classes(self) -> int: ...

    def probabilities(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """``(N, C)`` class probabilities of ``N`` clips ``(joints (T, 21, 3) mm, duration s)``, given
        that each clip is one of the gestures (rows sum to 1)."""
        ...

    def window_scores(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """``(N, C)`` scores for online detection: the probability that a window *is* gesture k, so rows
        may sum to less than 1 (the rest: no gesture); 0 where the window is unlike every gesture."""
        ...

    def classify(self, sequences: list[GestureSequence]) -> list[Prediction]:
        """The best gesture of each whole sequence."""
        ...


def run_clips(model, clips: list[tuple[np.ndarray, float]], device, batch: int = 256) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Run the network on clips: ``logits (N, C)`` and ``embedding (N, dim)`` as NumPy."""
    import torch

    logits, emb = [], []
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            feats = [clip_features(j, d) for j, d in clips[i : i + batch]]
            x = torch.from_numpy(np.stack([f for f, _ in feats])).to(device)
            v = torch.from_numpy(np.stack([m for _, m in feats])).to(device)
            out = model(x, v)
            logits.append(out["logits"].float().cpu().numpy())
            emb.append(out["embedding"].float().cpu().numpy())
    if not logits:
        return {"logits": np.zeros((0, model.config.num_classes)), "embedding": np.zeros((0, model.config.dim))}
    return {"logits": np.concatenate(logits), "embedding": np.concatenate(emb)}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predictions(p: np.ndarray, names: tuple[str, ...]) -> list[Prediction]:
    """Rows of class probabilities -> predictions."""
    k = p.argmax(axis=1)
    return [Prediction(names[i], int(i) + 1, float(row[i]), row) for i, row in zip(k, p)]


class ClassRecognizer:
    """A trained HTT classifier (its class head).

    A network trained with background examples has the "none" class last
    (:data:`~models.gestures.data.BACKGROUND`): it is not one of :attr:`names`; its probability is
    what :meth:`probabilities` renormalises away and what :meth:`window_scores` leaves out.

    Args:
        model: the network (eval mode).
        names: class names in class order (the network's, with "none" last if it has it).
        device: where it runs.
    """

    def __init__(self, model, names: list[str] | tuple[str, ...], device="cpu") -> None:  # noqa: ANN001
        from models.gestures.data import BACKGROUND

        self.model = model
        self.device = device
        if len(names) != model.config.num_classes:
            raise ModelError(f"{len(names)} class names for a {model.config.num_classes}-class model")
        self.background = len(names) > 1 and names[-1] == BACKGROUND
        self.names = tuple(names[:-1] if self.background else names)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device="cpu") -> "ClassRecognizer":  # noqa: ANN001
        from models.gestures.train import load_model

        model, names, _ = load_model(path, device)
        return cls(model, names, device)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def run(self, clips: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
        """One pass of the network: ``window scores (N, C)`` (:meth:`window_scores`) and ``embeddings
        (N, dim)`` (:meth:`embed`)."""
        out = run_clips(self.model, clips, self.device)
        return _softmax(out["logits"])[:, : len(self.names)], out["embedding"]

    def window_scores(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        return self.run(clips)[0]

    def probabilities(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        p = self.window_scores(clips)
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)

    def embed(self, clips: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """``(N, dim)`` unit-length clip embeddings (the action token's features)."""
        return self.run(clips)[1]

    def classify(self, sequences: list[GestureSequence]) -> list[Prediction]:
        return predictions(self.probabilities([clip_joints(s) for s in sequences]), self.names)


def load_recognizer(spec: str, device: str = "cpu") -> GestureRecognizer:
    """``shrec14`` / ``shrec28`` (the shipped classifiers), a checkpoint ``.pt``, or a gesture set ``.npz``.

    Raises:
        ModelError: unknown name, missing or corrupt file (the message names it).
    """
    from models.registry import load_pretrained

    if spec in ("shrec14", "shrec28"):
        return load_pretrained(f"gestures_{spec}", device)
    path = Path(spec)
    if path.suffix == ".npz":
        from models.gestures.custom import GestureSet

        return GestureSet.load(path, device)
    if path.suffix == ".pt":
        if not path.is_file():
            raise ModelError(f"no gesture model at {path}")
        return ClassRecognizer.from_checkpoint(path, device)
    raise ModelError(f"unknown gesture model {spec!r}: use shrec14, shrec28, a checkpoint .pt or a gesture set .npz")
