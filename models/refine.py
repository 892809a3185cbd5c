"""Post-process a depth-benchmark prediction file: learned refiner, pose prior, temporal filter.

``python -m models.refine --dataset nyu|icvl --input PRED.txt[.gz] --output OUT.txt[.gz] [--steps refiner,prior,temporal]``

Reads a prediction file in the NYU / ICVL benchmark format (one frame per line, ``J x (u, v, d)``:
pixels, pixels, mm; 14 joints for NYU, 16 for ICVL), converts it to 3D with the benchmark's
convention (:func:`models.benchmark_data.benchmark_params`, mm), applies the chosen steps **in this
fixed order**, whatever order ``--steps`` names them in:

1. ``refiner``: the learned masked-joint refiner (:mod:`models.refiner`, the shipped
   ``models.load_pretrained(f"refiner_{dataset}")``), per frame;
2. ``prior``: a move towards the shipped PCA pose prior (``models/weights/prior_<dataset>.npz``,
   :mod:`models.prior`), per frame;
3. ``temporal``: an offline filter over the whole file (:mod:`models.temporal`): by default a local
   quadratic fit whose width follows the file's own motion (``--filter adaptive``: fast frames are
   left alone), or one leave-one-out width per file (``--filter local``), or the HANDS 2019
   centred average ``±k`` (``--filter window``); cut at ``--cuts``, at jumps larger than ``--jump``
   mm and never across frames of different segments.

**No harm by construction** (:func:`run_steps`): within every segment the refiner's and the prior's
corrections lose their mean over the segment's frames (a learned dataset-wide offset, such as the
~4 mm that ICVL's development-part estimators share, cannot move a file), the refiner sees the
segment scaled to the training hand size, and both steps are multiplied by a test-time gate
(:mod:`models.refine_gate`: hand size, bone proportions, refined-vs-raw disagreement, against the
shipped ``refine_gate_<dataset>.json``) that falls back to the input when it looks unlike the
training data. The default steps and strengths (:data:`DEFAULTS`) are those that improved every
published method in every block of ``scripts/eval_transfer.py``'s protocol.

Per-frame steps come before the temporal one so that the filter averages frames that were already
corrected one by one (a filter first would blur an outlier into its neighbours before the prior or
refiner could see it); the refiner comes before the prior because it is trained on raw estimator
outputs and the prior is a last, mild pull towards plausible poses.

Then it converts back and writes the same format: same number of lines and joints, finite values,
``.gz``-compressed when the output name ends in ``.gz``. Any file length works (it needs no split,
frame list or subject). Errors (unreadable file, wrong column count, NaN values, a missing refiner
checkpoint) are printed as one ``error:`` line and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.core.errors import HandtrackError, ModelError
from models.depth_datasets import read_labels, uvd_to_xyz, xyz_to_uvd
from models.benchmark_data import DATASETS, benchmark_params, write_labels
from models.prior import PosePrior, PriorError
from models.refine_gate import GateReference, GateResult, evaluate_gate, sequence_shape, shipped_gate
from models.registry import load_pretrained
from models.temporal import (
    DEFAULT_MOTION_MM,
    TemporalError,
    adaptive_local_polynomial,
    local_polynomial,
    segments,
    window_average,
)

__all__ = ["STEPS", "STEP_ORDER", "DEFAULTS", "StepSettings", "RefineResult", "RefineError", "parse_steps",
           "full_correction", "run_steps", "refine_xyz", "refine_file", "main"]

log = logging.getLogger(__name__)

STEPS = ("refiner", "prior", "temporal")
#: The order steps are applied in (see the module docstring).
STEP_ORDER = STEPS
#: Default automatic-cut threshold: mean joint displacement between consecutive frames, mm (the
#: definition of the benchmark's own cut points in its PROVENANCE.md).
DEFAULT_JUMP_MM = 50.0
#: Default half-width of ``--filter window`` (frames), chosen on the fit part (PRIORS.md).
DEFAULT_WINDOW_K = 2


class RefineError(HandtrackError, RuntimeError):
    """A post-processing step cannot run (the message says what to do)."""


@dataclass(frozen=True)
class StepSettings:
    """The settings of the steps for one data set.

    Attributes:
        steps: the default steps (a subset of :data:`STEPS`).
        blend: fraction of the refiner's (centred, gated) correction applied, in [0, 1].
        strength: prior blend weight in [0, 1] (times the gate).
        motion_mm: motion budget of the adaptive temporal filter, mm
            (:func:`models.temporal.adaptive_local_polynomial`).
    """

    steps: tuple[str, ...]
    blend: float
    strength: float
    motion_mm: float


#: Defaults per data set, chosen by ``scripts/eval_transfer.py`` (``docs/postprocess_transfer.md``):
#: among the settings that improve every method in every block of the development split's untouched
#: tail (each block processed as its own file), the one with the lowest mean error. Held-out
#: (leave-one-method-out x leave-one-block-out) estimates are in the README and the cards. ICVL: every
#: temporal width hurt some method more than it helped: no filter.
DEFAULTS: dict[str, StepSettings] = {
    "nyu": StepSettings(("refiner", "prior", "temporal"), blend=0.25, strength=0.25, motion_mm=16.0),
    "icvl": StepSettings(("refiner", "prior"), blend=0.5, strength=0.5, motion_mm=DEFAULT_MOTION_MM),
}
#: Steps run when ``--steps`` is not given (:data:`DEFAULTS`).
DEFAULT_STEPS = {name: d.steps for name, d in DEFAULTS.items()}


@dataclass(frozen=True)
class RefineResult:
    """Output of :func:`run_steps`.

    Attributes:
        xyz: ``(N, J, 3)`` mm.
        gates: ``(step, first frame, GateResult)`` for every gated step and sequence segment.
    """

    xyz: np.ndarray
    gates: tuple[tuple[str, int, GateResult], ...] = ()


def parse_steps(text: str) -> tuple[str, ...]:
    """``"temporal,prior"`` -> ``("prior", "temporal")`` (the fixed :data:`STEP_ORDER`)."""
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = sorted(set(names) - set(STEPS))
    if unknown or not names:
        raise RefineError(f"--steps takes a comma-separated subset of {','.join(STEPS)}, got {text!r}")
    return tuple(s for s in STEP_ORDER if s in names)


def _load_refiner(dataset: str):
    try:
        return load_pretrained(f"refiner_{dataset}")
    except ImportError as e:
        raise RefineError(f"the refiner step needs models/refiner.py ({e}); run without 'refiner' in --steps") from e
    except (FileNotFoundError, ModelError) as e:
        raise RefineError(f"the {dataset} refiner cannot be loaded: {e}; or run without 'refiner' in --steps") from e


def _load_gate(dataset: str) -> GateReference:
    try:
        return shipped_gate(dataset)
    except ModelError as e:
        raise RefineError(f"{e}; or pass gate=False (--no-gate)") from e


def full_correction(refiner: object, xyz: np.ndarray, dataset: str, reference: GateReference | None) -> np.ndarray:
    """The refiner's whole correction (mm, ``(N, J, 3)``) of one sequence in the benchmark frame.

    The sequence is first scaled about each frame's centroid so that its hand size matches the gate
    reference's (per-sequence normalisation, at most 1.5x either way); the correction is scaled back.
    A :class:`models.refiner.JointRefiner` is run with blend 1 (the blend is applied by the caller).
    """
    x = np.asarray(xyz, dtype=np.float64)
    k = 1.0
    if reference is not None:
        k = float(np.exp(-np.clip(sequence_shape(x, reference)[0], -0.4, 0.4)))
    centre = x.mean(axis=1, keepdims=True)
    scaled = (x - centre) * k + centre
    # a JointRefiner applies its own stored blend: run the same network at blend 1 instead
    model = type(refiner)(refiner.net, 1.0, refiner.meta) if hasattr(refiner, "net") and hasattr(refiner, "blend") else refiner
    # the refiner works in the OpenCV camera frame (y down); NYU's benchmark frame has y up
    flip = np.array([1.0, float(np.sign(benchmark_params(dataset).fy)), 1.0])
    refined = np.asarray(model.refine(scaled * flip), dtype=np.float64) * flip
    if refined.shape != x.shape:
        raise RefineError(f"the refiner returned {refined.shape} for input {x.shape}")
    return (refined - scaled) / k


def run_steps(xyz: np.ndarray, dataset: str, steps: Sequence[str], prior: PosePrior | None = None,
              strength: float | None = None, filter: str = "adaptive", window_k: int = DEFAULT_WINDOW_K,
              cuts: Sequence[int] = (), jump: float | None = DEFAULT_JUMP_MM, refiner: object | None = None,
              blend: float | None = None, motion_mm: float | None = None, centre: bool = True,
              gate: GateReference | bool = True) -> RefineResult:
    """Apply ``steps`` (in :data:`STEP_ORDER`) to a sequence of 3D poses, with the no-harm safeguards.

    Per segment (a file, cut at ``cuts`` and at jumps over ``jump`` mm):

    * ``refiner``: the refiner's correction (:func:`full_correction`, size-normalised per segment)
      minus its **mean over the segment's frames** per joint when ``centre`` (a learned offset that
      the training subject's estimators shared cannot move a whole file), times ``blend`` and times
      the gate (:func:`models.refine_gate.evaluate_gate`, with the refined-vs-raw disagreement);
    * ``prior``: the move towards the prior's projection, centred the same way when ``centre``
      (the prior's subject's bone proportions cannot move a whole file), times ``strength`` and the
      gate (size and bone proportions);
    * ``temporal``: ``filter`` "adaptive" (default: width follows the motion,
      :func:`models.temporal.adaptive_local_polynomial`), "local" (one LOO-CV width per file) or
      "window" (HANDS 2019 ``±window_k`` average).

    Args:
        xyz: ``(N, J, 3)`` mm, benchmark frame of ``dataset``, consecutive frames.
        dataset: "nyu" or "icvl".
        steps: any subset of :data:`STEPS`.
        prior: the pose prior (default: the shipped one of ``dataset``).
        strength: prior blend weight (default: :data:`DEFAULTS`).
        filter, window_k: the temporal filter.
        cuts: 0-based frames where a new segment starts.
        jump: automatic cut threshold in mm (None = off).
        refiner: an object with ``refine(xyz, confidence=None)`` (default: the shipped one).
        blend: fraction of the refiner's correction applied (default: :data:`DEFAULTS`).
        motion_mm: motion budget of the adaptive filter, mm (default: :data:`DEFAULTS`).
        centre: remove the per-segment mean of the refiner's and the prior's corrections.
        gate: True = the shipped :class:`GateReference` of ``dataset``, False = no gate, or a reference.

    Returns:
        :class:`RefineResult`.

    Raises:
        RefineError / PriorError / TemporalError: a step cannot run, or a blend / strength is outside
            [0, 1].
    """
    if dataset not in DEFAULTS:
        raise RefineError(f"unknown dataset {dataset!r}; expected one of {', '.join(DEFAULTS)}")
    settings = DEFAULTS[dataset]
    out = np.asarray(xyz, dtype=np.float64).copy()
    reference = (_load_gate(dataset) if gate is True else None) if isinstance(gate, bool) else gate
    gates: list[tuple[str, int, GateResult]] = []
    for step in (s for s in STEP_ORDER if s in steps):
        if step in ("refiner", "prior"):
            if step == "refiner":
                model = refiner if refiner is not None else _load_refiner(dataset)
                amount = settings.blend if blend is None else float(blend)
            else:
                p = prior if prior is not None else load_pretrained(f"prior_{dataset}")
                if p.num_joints != out.shape[1]:
                    raise PriorError(f"the prior has {p.num_joints} joints but the poses have {out.shape[1]}")
                amount = settings.strength if strength is None else float(strength)
            if not 0.0 <= amount <= 1.0:
                raise RefineError(f"the {step} step's {'blend' if step == 'refiner' else 'strength'} must be in "
                                  f"[0, 1], got {amount}")  # fmt: skip
            for s, e in segments(out, cuts, jump):
                seg = out[s:e]
                if step == "refiner":
                    delta = full_correction(model, seg, dataset, reference)
                    g = None if reference is None else evaluate_gate(seg, reference, delta)
                else:
                    delta = p.project(seg, strength=1.0) - seg
                    g = None if reference is None else evaluate_gate(seg, reference)
                if centre:
                    delta = delta - delta.mean(axis=0, keepdims=True)
                out[s:e] = seg + amount * (1.0 if g is None else g.weight) * delta
                if g is not None:
                    gates.append((step, s, g))
                    if g.weight < 1.0:
                        log.info("%s, frames %d-%d: %s", step, s, e - 1, g.describe())
        elif step == "temporal":
            if filter == "adaptive":
                budget = settings.motion_mm if motion_mm is None else float(motion_mm)
                out = adaptive_local_polynomial(out, budget, 2, cuts=cuts, jump=jump)
            elif filter == "local":
                out = local_polynomial(out, "auto", 2, cuts=cuts, jump=jump)
            elif filter == "window":
                out = window_average(out, window_k, cuts=cuts, jump=jump)
            else:
                raise RefineError(f"unknown filter {filter!r}; use 'adaptive', 'local' or 'window'")
    if not np.isfinite(out).all():
        raise RefineError("post-processing produced non-finite values; report this with the input file")
    return RefineResult(out, tuple(gates))


def refine_xyz(xyz: np.ndarray, dataset: str, steps: Sequence[str], **options) -> np.ndarray:
    """``(N, J, 3)`` mm: :func:`run_steps` (same arguments) without the gate report."""
    return run_steps(xyz, dataset, steps, **options).xyz


def refine_file(dataset: str, input_path: Path, output_path: Path, steps: Sequence[str], **options) -> RefineResult:
    """Read ``input_path``, :func:`run_steps` on it, write ``output_path``; returns the result (3D, mm)."""
    params = benchmark_params(dataset)
    uvd = read_labels(input_path, dataset)
    result = run_steps(uvd_to_xyz(uvd, *params), dataset, steps, **options)
    write_labels(output_path, xyz_to_uvd(result.xyz, *params))
    return result


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame indices, got {text!r}") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.refine", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--input", required=True, type=Path, help="prediction file (.txt or .txt.gz)")
    parser.add_argument("--output", required=True, type=Path, help="output file (.gz = compressed)")
    parser.add_argument("--steps", default=None,
                        help=f"subset of {','.join(STEPS)} (default per data set: see DEFAULTS)")
    parser.add_argument("--filter", default="adaptive", choices=("adaptive", "local", "window"), help="temporal filter")
    parser.add_argument("--motion-mm", type=float, default=None, help="motion budget of --filter adaptive, mm")
    parser.add_argument("--window-k", type=int, default=DEFAULT_WINDOW_K, help="half-width of --filter window")
    parser.add_argument("--cuts", type=_ints, default=(), help="0-based frames starting a new segment, e.g. 2440,3136")
    parser.add_argument("--jump", type=float, default=DEFAULT_JUMP_MM, help="automatic cut above this mm (0 = off)")
    parser.add_argument("--prior", type=Path, default=None, help="prior .npz (default: the shipped one)")
    parser.add_argument("--strength", type=float, default=None, help="prior blend weight in [0, 1]")
    parser.add_argument("--blend", type=float, default=None, help="fraction of the refiner's correction, [0, 1]")
    parser.add_argument("--no-gate", action="store_true", help="apply the steps whatever the input looks like")
    parser.add_argument("--no-centre", action="store_true",
                        help="keep the mean of the refiner's correction over each segment (may learn an offset)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        steps = DEFAULT_STEPS[args.dataset] if args.steps is None else parse_steps(args.steps)
        prior = PosePrior.load(args.prior) if args.prior is not None and "prior" in steps else None
        result = refine_file(args.dataset, args.input, args.output, steps, prior=prior, strength=args.strength,
                             filter=args.filter, window_k=args.window_k, cuts=args.cuts,
                             jump=args.jump if args.jump > 0 else None, blend=args.blend, motion_mm=args.motion_mm,
                             centre=not args.no_centre, gate=not args.no_gate)  # fmt: skip
    except (RefineError, PriorError, TemporalError, ModelError, ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.output}: {len(result.xyz)} frames, steps {','.join(steps)}")
    for step, first, g in result.gates:
        if g.weight < 1.0:
            print(f"  {step} from frame {first}: {g.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
