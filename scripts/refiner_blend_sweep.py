#!/usr/bin/env python
"""How much of the refiner's correction to apply before the temporal filter: a blend sweep.

For every published method of a development split, ``refiner`` (at blend 0, 0.2, ..., 1) followed
by the local temporal filter (:func:`models.refine.refine_xyz`, steps ``refiner,temporal``) is scored
as mean-error ratios (after / before) on the **hold-out** (the last 20 % of the fit part, not used to
train the refiner: where the shipped blend was chosen) and, for reference only, on the validation
part (last 30 %). Choose on the hold-out column; the validation column shows how a choice transfers.

    python scripts/refiner_blend_sweep.py nyu
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.depth_datasets import read_labels, uvd_to_xyz  # noqa: E402
from models.benchmark_data import benchmark_params, dev_split, load_ground_truth, prediction_paths  # noqa: E402
from models.refine import _load_refiner, refine_xyz  # noqa: E402
from tracker.core.metrics import sequence_joint_errors  # noqa: E402

HOLDOUT_FRACTION = 0.2


def _err(a: np.ndarray, b: np.ndarray) -> float:
    """Mean joint error (mm) of ``(N, J, 3)`` poses against ground truth."""
    return float(sequence_joint_errors(a, b).mean())


def main() -> int:
    dataset = sys.argv[1] if len(sys.argv) > 1 else "nyu"
    params = benchmark_params(dataset)
    gt = uvd_to_xyz(load_ground_truth(dataset), *params)
    fit, val = dev_split(len(gt))
    fit_idx = np.arange(len(gt))[fit]
    holdout = fit_idx[int((1 - HOLDOUT_FRACTION) * len(fit_idx)):]
    refiner = _load_refiner(dataset)
    shipped = refiner.blend
    preds = [uvd_to_xyz(read_labels(p, dataset)[: len(gt)], *params) for p in prediction_paths(dataset)]
    print(f"{dataset}: refiner (blend b) + local temporal filter, mean-error ratio over {len(preds)} methods "
          f"(shipped blend {shipped:g})")
    print("blend  hold-out mean  worst  |  validation mean  worst")
    for blend in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        refiner.blend = blend
        ho, va = [], []
        for x in preds:
            y = refine_xyz(x, dataset, ("refiner", "temporal"), refiner=refiner)
            ho.append(_err(y[holdout], gt[holdout]) / _err(x[holdout], gt[holdout]))
            va.append(_err(y[val], gt[val]) / _err(x[val], gt[val]))
        print(f"{blend:5.1f}  {np.mean(ho):13.4f}  {np.max(ho):5.3f}  |  {np.mean(va):15.4f}  {np.max(va):5.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
