"""The post-processor's test-time gate: trust the learned steps only on inputs like their training data.

The refiner and the priors of :mod:`models.refine` were fitted on one subject per data set. On a file
that looks unlike those inputs they should fall back towards the input, and nothing here may use
ground truth. A :class:`GateReference` (one per data set, made from the refiner's training frames by
``scripts/eval_transfer.py --write-gates``) holds what "like the training data" means; for one
sequence (a file, or a segment between cut points) :func:`evaluate_gate` measures

* **scale**: ``|log(s)|`` with ``s`` the sequence's hand size over the reference's (geometric mean of
  the ratios of its median rigid-bone lengths, :data:`tracker.core.joints.RIGID_BONES`, to the
  reference's). Another subject's hand is a few per cent off; a hand in other units or of another
  joint convention is far off.
* **shape**: the rms over bones of ``log(bone ratio) - log(s)`` (bone-length proportions over the
  sequence, independent of size) *beyond* the worst value the training estimators reached. A
  constant per-joint offset (another annotation convention) changes proportions.
* **disagreement**: the median over frames of the mean per-joint distance (mm) between the refined
  and the raw pose, over the largest value the refiner showed on its training inputs. A network
  asked to move joints much further than it ever did in training is extrapolating.

Each measure maps to a weight in [0, 1] with a linear ramp between the two ends of its band
(:class:`GateBands`: full trust below the first, none above the second); the gate is their product.
:func:`models.refine.refine_xyz` multiplies the refiner's correction and the prior's strength by it.
The bands are generous on purpose (an unseen subject of the same data set must pass; the tests
show that a 1.6x skeleton or a 15 mm per-joint offset does not).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from tracker.core.errors import HandtrackError, ModelError
from tracker.core.joints import RIGID_BONES

__all__ = [
    "GateError",
    "GateBands",
    "GateReference",
    "GateResult",
    "bone_lengths",
    "sequence_shape",
    "correction_size",
    "ramp",
    "evaluate_gate",
    "calibrate_gate",
    "shipped_gate",
]

log = logging.getLogger(__name__)

#: Layout names of the refiner / prior files -> joint-layout names of :data:`RIGID_BONES`.
_LAYOUT_ALIASES: Final[dict[str, str]] = {"mp21": "mediapipe"}
_FORMAT_VERSION: Final = 1


class GateError(HandtrackError, ValueError):
    """A gate reference cannot be made, read or applied (the message says what to do)."""


@dataclass(frozen=True)
class GateBands:
    """Where each gate measure goes from full trust (first value) to none (second value).

    Attributes:
        scale: ``|log(size ratio)|`` band (0.2 = 22 % larger or 18 % smaller; 0.4 = 1.5x / 0.67x).
        shape: rms log bone-proportion deviation beyond the training estimators' worst.
        disagreement: median refined-vs-raw distance over the training worst (a ratio).
    """

    scale: tuple[float, float] = (0.2, 0.4)
    shape: tuple[float, float] = (0.08, 0.2)
    disagreement: tuple[float, float] = (1.5, 3.0)

    def __post_init__(self) -> None:
        for name in ("scale", "shape", "disagreement"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo < hi:
                raise GateError(f"gate band {name} must be 0 <= low < high, got {(lo, hi)}")


@dataclass(frozen=True)
class GateReference:
    """What the training inputs of one data set's post-processor looked like.

    Attributes:
        layout: joint layout (``nyu``, ``icvl``, ``mediapipe``; ``mp21`` is accepted for ``mediapipe``).
        bone_mm: median length of each :data:`RIGID_BONES` bone of the training ground truth, mm.
        shape_worst: the largest :func:`sequence_shape` deviation of a training estimator's sequence.
        correction_mm: the largest :func:`correction_size` of the refiner on a training estimator's
            sequence, mm (0 = no refiner: the disagreement measure is off).
        source: one line on what it was made from.
        bands: the ramps of :func:`evaluate_gate`.
    """

    layout: str
    bone_mm: tuple[float, ...]
    shape_worst: float
    correction_mm: float = 0.0
    source: str = ""
    bands: GateBands = field(default_factory=GateBands)

    def __post_init__(self) -> None:
        layout = _LAYOUT_ALIASES.get(self.layout, self.layout)
        if layout not in RIGID_BONES:
            raise GateError(f"no rigid bones known for layout {self.layout!r}; known: {', '.join(RIGID_BONES)}")
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "bone_mm", tuple(float(b) for b in self.bone_mm))
        if len(self.bone_mm) != len(RIGID_BONES[layout]) or min(self.bone_mm) <= 0:
            raise GateError(f"{layout} gate needs {len(RIGID_BONES[layout])} positive bone lengths, got {self.bone_mm}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the reference as JSON."""
        blob = {"version": _FORMAT_VERSION, **asdict(self)}
        Path(path).write_text(json.dumps(blob, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "GateReference":
        """Read a reference written by :meth:`save`.

        Raises:
            tracker.core.errors.ModelError: missing file, or not a gate reference of this version.
        """
        file = Path(path)
        if not file.is_file():
            raise ModelError(f"no gate reference at {file}: run `python scripts/eval_transfer.py --write-gates`")
        try:
            blob = json.loads(file.read_text())
            if blob.pop("version") != _FORMAT_VERSION:
                raise ValueError("another format version")
            bands = GateBands(**{k: tuple(v) for k, v in blob.pop("bands").items()})
            return cls(bands=bands, **blob)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{file} is not a gate reference ({type(e).__name__}: {e}); "
                             "re-run `python scripts/eval_transfer.py --write-gates`") from e  # fmt: skip


@dataclass(frozen=True)
class GateResult:
    """The gate of one sequence.

    Attributes:
        weight: in [0, 1], the product of the three measures' weights (1 = trust the step fully).
        log_scale: log of the sequence's hand size over the reference's.
        shape: rms log bone-proportion deviation (before subtracting the training worst).
        disagreement: median refined-vs-raw distance over the training worst, or None (no refiner).
        frames: length of the sequence, frames.
    """

    weight: float
    log_scale: float
    shape: float
    disagreement: float | None
    frames: int

    def describe(self) -> str:
        """One line for logs and the command's output."""
        dis = "" if self.disagreement is None else f", disagreement {self.disagreement:.2f}x"
        return (f"gate {self.weight:.2f} ({self.frames} frames: size x{math.exp(self.log_scale):.2f}, "
                f"shape {self.shape:.3f}{dis})")  # fmt: skip


def bone_lengths(poses: np.ndarray, layout: str) -> np.ndarray:
    """``(N, B)`` lengths (mm) of the layout's :data:`RIGID_BONES` in ``(N, J, 3)`` mm poses."""
    x = np.asarray(poses, dtype=np.float64)
    bones = np.asarray(RIGID_BONES[_LAYOUT_ALIASES.get(layout, layout)])
    return np.linalg.norm(x[:, bones[:, 0]] - x[:, bones[:, 1]], axis=-1)


def sequence_shape(poses: np.ndarray, reference: GateReference) -> tuple[float, float]:
    """``(log_scale, shape)`` of a sequence against the reference (see the module docstring).

    Args:
        poses: ``(N, J, 3)`` mm (frames with a non-finite value are left out).
    """
    lengths = bone_lengths(poses, reference.layout)
    lengths = lengths[np.isfinite(lengths).all(axis=1)]
    if not len(lengths):
        return 0.0, 0.0
    ratio = np.log(np.maximum(np.median(lengths, axis=0), 1e-6) / np.asarray(reference.bone_mm))
    log_scale = float(ratio.mean())
    return log_scale, float(np.sqrt(np.mean((ratio - log_scale) ** 2)))


def correction_size(correction: np.ndarray) -> float:
    """Median over frames of the mean per-joint length (mm) of ``(N, J, 3)`` corrections."""
    c = np.asarray(correction, dtype=np.float64)
    per_frame = np.linalg.norm(c, axis=-1).mean(axis=-1)
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(np.median(per_frame)) if len(per_frame) else 0.0


def ramp(value: float, band: tuple[float, float]) -> float:
    """1 at or below ``band[0]``, 0 at or above ``band[1]``, linear between."""
    lo, hi = band
    return float(np.clip((hi - value) / (hi - lo), 0.0, 1.0))


def evaluate_gate(poses: np.ndarray, reference: GateReference, correction: np.ndarray | None = None) -> GateResult:
    """The gate of one sequence (no ground truth).

    Args:
        poses: ``(N, J, 3)`` mm, the step's input.
        reference: the data set's :class:`GateReference`.
        correction: ``(N, J, 3)`` mm, refined minus raw (the refiner's own full correction), or None.

    Returns:
        :class:`GateResult`.
    """
    log_scale, shape = sequence_shape(poses, reference)
    b = reference.bands
    weight = ramp(abs(log_scale), b.scale) * ramp(max(shape - reference.shape_worst, 0.0), b.shape)
    disagreement = None
    if correction is not None and reference.correction_mm > 0:
        disagreement = correction_size(correction) / reference.correction_mm
        weight *= ramp(disagreement, b.disagreement)
    return GateResult(float(weight), log_scale, shape, disagreement, int(len(poses)))


def calibrate_gate(layout: str, ground_truth: np.ndarray, inputs: list[np.ndarray],
                   corrections: list[np.ndarray] | None = None, source: str = "",
                   bands: GateBands = GateBands()) -> GateReference:
    """Make the reference from training data.

    Args:
        layout: joint layout.
        ground_truth: ``(N, J, 3)`` mm, the training poses' ground truth (bone lengths).
        inputs: the training estimators' ``(N_i, J, 3)`` mm sequences (worst shape deviation).
        corrections: the refiner's full corrections on those sequences (worst disagreement), or None.
        source: one-line note.
        bands: the ramps.

    Raises:
        GateError: no data.
    """
    if len(ground_truth) == 0 or not inputs:
        raise GateError("the gate needs training ground truth and at least one estimator's sequence")
    bone = tuple(np.median(bone_lengths(ground_truth, layout), axis=0))
    provisional = GateReference(layout, bone, 0.0, 0.0, source, bands)
    worst_shape = max(sequence_shape(x, provisional)[1] for x in inputs)
    worst_corr = max(correction_size(c) for c in corrections) if corrections else 0.0
    return GateReference(layout, bone, float(worst_shape), float(worst_corr), source, bands)


def shipped_gate(dataset: str) -> GateReference:
    """The shipped reference of ``nyu`` / ``icvl`` (``models/weights/refine_gate_<dataset>.json``).

    Raises:
        tracker.core.errors.ModelError: the file is missing or unreadable.
    """
    import importlib.resources

    resource = importlib.resources.files("models") / "weights" / f"refine_gate_{dataset}.json"
    with importlib.resources.as_file(resource) as file:
        return GateReference.load(file)
