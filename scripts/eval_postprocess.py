#!/usr/bin/env python
"""Mean error of every published NYU / ICVL method before and after each post-processing step.

For each method file in ``<data_root>/nyu_icvl_eval/{nyu,icvl}/results`` the whole development file is
post-processed exactly as ``python -m models.refine`` does (:func:`models.refine.refine_xyz`; the
temporal filters see every frame, no ground truth), then the mean 3D joint error (mm) is measured on
the **validation part** of :func:`models.benchmark_data.dev_split` only (last 30 % of the frames; the
priors, the refiner and the filter settings were fitted / chosen on the first 70 %).

Variants: ``prior``, ``window`` (centred ±2 average), ``local`` (local quadratic, auto width),
``prior+local``, ``prior+window``, and with ``refiner`` when :mod:`models.refiner` and its checkpoint
exist. ``best`` is chosen **per method on the fit part** (the variant with the lowest fit-part error),
then reported on validation. Prints a Markdown table and writes JSON.

    python scripts/eval_postprocess.py [--json out.json] [--only nyu]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.depth_datasets import read_labels, uvd_to_xyz  # noqa: E402
from models.benchmark_data import (  # noqa: E402
    benchmark_params, dev_split, load_ground_truth, method_name, prediction_paths,
)  # fmt: skip
from models.refine import RefineError, _load_refiner, refine_xyz  # noqa: E402
from models.registry import load_pretrained  # noqa: E402
from tracker.core.metrics import sequence_joint_errors  # noqa: E402

VARIANTS = {
    "prior": dict(steps=("prior",)),
    "window": dict(steps=("temporal",), filter="window"),
    "local": dict(steps=("temporal",), filter="local"),
    "prior+window": dict(steps=("prior", "temporal"), filter="window"),
    "prior+local": dict(steps=("prior", "temporal"), filter="local"),
}
REFINER_VARIANTS = {
    "refiner": dict(steps=("refiner",)),
    "refiner+local": dict(steps=("refiner", "temporal"), filter="local"),
    "refiner+prior+local": dict(steps=("refiner", "prior", "temporal"), filter="local"),
}


def _err(a: np.ndarray, b: np.ndarray) -> float:
    """Mean joint error (mm) of ``(N, J, 3)`` poses against ground truth."""
    return float(sequence_joint_errors(a, b).mean())


def evaluate_dataset(dataset: str) -> dict:
    params = benchmark_params(dataset)
    gt = uvd_to_xyz(load_ground_truth(dataset), *params)
    fit, val = dev_split(len(gt))
    prior = load_pretrained(f"prior_{dataset}")
    variants = dict(VARIANTS)
    refiner = None
    try:
        refiner = _load_refiner(dataset)
        variants.update(REFINER_VARIANTS)
    except RefineError as e:
        print(f"[{dataset}] refiner skipped: {e}", file=sys.stderr)
    rows = {}
    for path in prediction_paths(dataset):
        x = uvd_to_xyz(read_labels(path, dataset)[: len(gt)], *params)
        row = {"none": {"val": _err(x[val], gt[val]), "fit": _err(x[fit], gt[fit])}}
        for name, opts in variants.items():
            y = refine_xyz(x, dataset, prior=prior, refiner=refiner, **opts)
            row[name] = {"val": _err(y[val], gt[val]), "fit": _err(y[fit], gt[fit])}
        best = min(row, key=lambda v: row[v]["fit"])
        row["best"] = {"variant": best, **row[best]}
        rows[method_name(path)] = row
    names = ["none", *variants]
    summary = {}
    for v in [*names, "best"]:
        ratios = np.array([r[v]["val"] / r["none"]["val"] for r in rows.values()])
        summary[v] = {"mean_ratio": float(ratios.mean()), "max_ratio": float(ratios.max()),
                      "worse": int((ratios > 1.0).sum())}  # fmt: skip
    return {"variants": names, "methods": rows, "summary": summary, "frames": {"fit": len(fit), "val": len(val)}}


def markdown(dataset: str, res: dict) -> str:
    names = res["variants"]
    lines = [f"### {dataset.upper()} (validation frames: {res['frames']['val']}; mean 3D error, mm)", "",
             "| method | " + " | ".join(names) + " | best (chosen on fit) |",
             "|---|" + "---:|" * (len(names) + 1)]  # fmt: skip
    for m, row in res["methods"].items():
        cells = [f"{row[v]['val']:.3f}" for v in names]
        b = row["best"]
        cells.append(f"{b['val']:.3f} ({b['variant']}, {100 * (b['val'] / row['none']['val'] - 1):+.1f}%)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    s = res["summary"]
    lines.append("| **mean ratio / worst / #worse** | " + " | ".join(
        f"{s[v]['mean_ratio']:.3f} / {s[v]['max_ratio']:.3f} / {s[v]['worse']}" for v in [*names, "best"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("nyu", "icvl"), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for dataset in ("nyu", "icvl"):
        if args.only and args.only != dataset:
            continue
        if not prediction_paths(dataset):
            print(f"[{dataset}] no development data under the data root; skipped", file=sys.stderr)
            continue
        results[dataset] = evaluate_dataset(dataset)
        print(markdown(dataset, results[dataset]) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
