"""Post-process a depth-benchmark prediction file: learned refiner, pose prior, temporal filter.

``python -m models.refine --dataset nyu|icvl --input PRED.txt[.gz] --output OUT.txt[.gz] --steps prior,temporal``

Reads a prediction file in the NYU / ICVL benchmark format (one frame per line, ``J x (u, v, d)``:
pixels, pixels, mm; 14 joints for NYU, 16 for ICVL), converts it to 3D with the benchmark's
convention (:func:`models.benchmark_data.benchmark_params`, mm), applies the chosen steps **in this
fixed order**, whatever order ``--steps`` names them in:

1. ``refiner``: the learned masked-joint refiner (:mod:`models.refiner`, the shipped
   ``models.load_pretrained(f"refiner_{dataset}")``), per frame;
2. ``prior``: projection onto the shipped PCA pose prior (``models/weights/prior_<dataset>.npz``,
   :mod:`models.prior`) with its recommended blend weight, per frame;
3. ``temporal``: an offline filter over the whole file (:mod:`models.temporal`): tricube local
   quadratic regression with its width picked per file by leave-one-out CV (``--filter local``,
   default) or the HANDS 2019 centred average ``±k`` (``--filter window``), cut at ``--cuts``, at
   jumps larger than ``--jump`` mm and never across frames of different segments.

Per-frame steps come before the temporal one so that the filter averages frames that were already
corrected one by one (a filter first would blur an outlier into its neighbours before the prior or
refiner could see it); the refiner comes before the prior because it is trained on raw estimator
outputs and the prior is a last, mild pull towards plausible poses. ``scripts/eval_postprocess.py``
compares the orders on the fit part of the development split.

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
from pathlib import Path

import numpy as np

from tracker.core.errors import HandtrackError, ModelError
from models.depth_datasets import read_labels, uvd_to_xyz, xyz_to_uvd
from models.benchmark_data import DATASETS, benchmark_params, write_labels
from models.prior import PosePrior, PriorError
from models.registry import load_pretrained
from models.temporal import TemporalError, local_polynomial, window_average

__all__ = ["STEPS", "STEP_ORDER", "RefineError", "parse_steps", "refine_xyz", "refine_file", "main"]

log = logging.getLogger(__name__)

STEPS = ("refiner", "prior", "temporal")
#: The order steps are applied in (see the module docstring).
STEP_ORDER = STEPS
#: Default automatic-cut threshold: mean joint displacement between consecutive frames, mm (the
#: definition of the benchmark's own cut points in its PROVENANCE.md).
DEFAULT_JUMP_MM = 50.0
#: Steps run when ``--steps`` is not given, chosen without the validation part
#: (scripts/eval_postprocess.py picks per method on the fit part; the refiner's blend was chosen on the
#: fit part's last 20 %, which it was not trained on): NYU refiner + local temporal filter (the prior's
#: CV-chosen strength is 0 there; the filter helps every method); ICVL refiner alone (test_seq_1 moves
#: fast between frames: every temporal filter hurts).
DEFAULT_STEPS = {"nyu": ("refiner", "temporal"), "icvl": ("refiner",)}
#: Default half-width of ``--filter window`` (frames), chosen on the fit part (PRIORS.md).
DEFAULT_WINDOW_K = 2


class RefineError(HandtrackError, RuntimeError):
    """A post-processing step cannot run (the message says what to do)."""


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


def refine_xyz(xyz: np.ndarray, dataset: str, steps: Sequence[str], prior: PosePrior | None = None,
               strength: float | None = None, filter: str = "local", window_k: int = DEFAULT_WINDOW_K,
               cuts: Sequence[int] = (), jump: float | None = DEFAULT_JUMP_MM, refiner: object | None = None
               ) -> np.ndarray:
    """Apply ``steps`` (in :data:`STEP_ORDER`) to a sequence of 3D poses.

    Args:
        xyz: ``(N, J, 3)`` mm, benchmark frame of ``dataset``, consecutive frames.
        dataset: "nyu" or "icvl".
        steps: any subset of :data:`STEPS`.
        prior: the pose prior (default: the shipped one of ``dataset``).
        strength: prior blend weight (default: the prior's recommended one).
        filter: "local" (local quadratic, auto width) or "window" (centred average ``±window_k``).
        window_k: half-width of the window filter, frames.
        cuts: 0-based frames where a new segment starts.
        jump: automatic cut threshold in mm (None = off).
        refiner: an object with ``refine(xyz, confidence=None)`` (default: the shipped one,
            ``models.load_pretrained(f"refiner_{dataset}")``).

    Returns:
        ``(N, J, 3)`` mm.

    Raises:
        RefineError / PriorError / TemporalError: a step cannot run.
    """
    out = np.asarray(xyz, dtype=np.float64)
    for step in (s for s in STEP_ORDER if s in steps):
        if step == "refiner":
            model = refiner if refiner is not None else _load_refiner(dataset)
            # the refiner works in the OpenCV camera frame (y down); NYU's benchmark frame has y up
            flip = np.array([1.0, float(np.sign(benchmark_params(dataset).fy)), 1.0])
            refined = np.asarray(model.refine(out * flip), dtype=np.float64) * flip
            if refined.shape != out.shape:
                raise RefineError(f"the refiner returned {refined.shape} for input {out.shape}")
            out = refined
        elif step == "prior":
            p = prior if prior is not None else load_pretrained(f"prior_{dataset}")
            if p.num_joints != out.shape[1]:
                raise PriorError(f"the prior has {p.num_joints} joints but the poses have {out.shape[1]}")
            out = p.project(out, strength=strength)
        elif step == "temporal":
            if filter == "local":
                out = local_polynomial(out, "auto", 2, cuts=cuts, jump=jump)
            elif filter == "window":
                out = window_average(out, window_k, cuts=cuts, jump=jump)
            else:
                raise RefineError(f"unknown filter {filter!r}; use 'local' or 'window'")
    if not np.isfinite(out).all():
        raise RefineError("post-processing produced non-finite values; report this with the input file")
    return out


def refine_file(dataset: str, input_path: Path, output_path: Path, steps: Sequence[str], **options) -> int:
    """Read ``input_path``, :func:`refine_xyz` it, write ``output_path``; returns the frame count."""
    params = benchmark_params(dataset)
    uvd = read_labels(input_path, dataset)
    xyz = refine_xyz(uvd_to_xyz(uvd, *params), dataset, steps, **options)
    write_labels(output_path, xyz_to_uvd(xyz, *params))
    return len(uvd)


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
                        help=f"subset of {','.join(STEPS)} (default: nyu refiner,temporal; icvl refiner; see DEFAULT_STEPS)")
    parser.add_argument("--filter", default="local", choices=("local", "window"), help="temporal filter")
    parser.add_argument("--window-k", type=int, default=DEFAULT_WINDOW_K, help="half-width of --filter window")
    parser.add_argument("--cuts", type=_ints, default=(), help="0-based frames starting a new segment, e.g. 2440,3136")
    parser.add_argument("--jump", type=float, default=DEFAULT_JUMP_MM, help="automatic cut above this mm (0 = off)")
    parser.add_argument("--prior", type=Path, default=None, help="prior .npz (default: the shipped one)")
    parser.add_argument("--strength", type=float, default=None, help="prior blend weight in [0, 1]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        steps = DEFAULT_STEPS[args.dataset] if args.steps is None else parse_steps(args.steps)
        prior = PosePrior.load(args.prior) if args.prior is not None and "prior" in steps else None
        n = refine_file(args.dataset, args.input, args.output, steps, prior=prior, strength=args.strength,
                        filter=args.filter, window_k=args.window_k, cuts=args.cuts,
                        jump=args.jump if args.jump > 0 else None)  # fmt: skip
    except (RefineError, PriorError, TemporalError, ModelError, ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.output}: {n} frames, steps {','.join(steps)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
