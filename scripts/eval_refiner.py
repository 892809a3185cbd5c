#!/usr/bin/env python
"""Ablation of the masked joint refiner on the validation part of the NYU / ICVL development split.

For each data set, every published method's validation predictions (the last 30 % of the frames,
never seen by training or by the choice of step and blend) are refined by each run of
``scripts/train_refiner.py`` found under ``checkpoints/refiner_<dataset>/``:

* ``pretrain``: pre-training only (masked / noised ground truth + synthetic poses);
* ``finetune_random``: fine-tuned on the methods' fit-train predictions from random weights;
* ``finetune_pretrained``: the same fine-tuning from the pre-trained weights (the shipped model);
* ``finetune_pretrained_no_V2V``: as above without V2V-PoseNet's predictions (leave-one-method-out:
  V2V is an estimator it has never seen).

Each run is applied with the blend stored in its file (chosen on the hold-out). Prints Markdown and
writes ``<out>/eval_refiner.md`` and ``.json`` (default ``models/weights``).

    python scripts/eval_refiner.py
    python scripts/eval_refiner.py --datasets nyu --out /tmp/refiner_eval
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
if str(_REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(_REPO / "scripts"))

from models.registry import load_pretrained  # noqa: E402
from train_refiner import load_benchmark, method_errors  # noqa: E402

VARIANTS = ("pretrain", "finetune_random", "finetune_pretrained", "finetune_pretrained_no_V2V")


def _v2v(names: list[str]) -> str:
    return next(m for m in names if "V2V" in m)


def evaluate(dataset: str, checkpoints: Path) -> dict:
    """Per-method validation errors (mm) before and after each available run."""
    data = load_benchmark(dataset)
    raw = method_errors(None, data, data.validation)[1.0]
    result: dict = {"dataset": dataset, "validation_frames": [int(data.validation[0]), int(data.validation[-1])],
                    "raw": raw, "variants": {}}
    for v in VARIANTS:
        path = checkpoints / f"refiner_{dataset}" / v / "final.pt"
        if not path.is_file():
            print(f"[{dataset}] no run {path}; skipped", flush=True)
            continue
        ref = load_pretrained(f"refiner_{dataset}", path=path)
        errs = method_errors(ref, data, data.validation, (ref.blend,))[ref.blend]
        result["variants"][v] = {"blend": ref.blend, "errors": errs, "meta": ref.meta}
    return result


def summary_rows(res: dict) -> list[tuple[str, float, float, float, int]]:
    """(variant, V2V mm, mean mm, mean relative change %, methods made worse)."""
    raw = res["raw"]
    v2v = _v2v(list(raw))
    rows = [("none (raw)", raw[v2v], float(np.mean(list(raw.values()))), 0.0, 0)]
    for v, r in res["variants"].items():
        e = r["errors"]
        rel = float(np.mean([(e[m] - raw[m]) / raw[m] for m in raw])) * 100
        rows.append((f"{v} (blend {r['blend']})", e[v2v], float(np.mean(list(e.values()))), rel,
                     sum(e[m] > raw[m] + 1e-9 for m in raw)))
    return rows


def to_markdown(results: list[dict]) -> str:
    out = ["# Masked joint refiner: ablation on the validation part of the development split", "",
           "Mean 3D joint error (mm) on the last 30 % of the frames of each development split "
           "(`models.benchmark_data.dev_split`). Made by `scripts/eval_refiner.py`; machine: "
           f"{platform.machine()}, CPU.", ""]
    for res in results:
        ds = res["dataset"]
        out += [f"## {ds.upper()} (validation frames {res['validation_frames'][0]}-{res['validation_frames'][1]})", "",
                "| refiner | V2V-PoseNet | mean over methods | mean change | methods worse |", "|---|---|---|---|---|"]
        out += [f"| {v} | {a:.3f} | {b:.3f} | {c:+.2f} % | {n} |" for v, a, b, c, n in summary_rows(res)]
        variants = list(res["variants"])
        out += ["", "| method | raw | " + " | ".join(variants) + " |", "|---" * (2 + len(variants)) + "|"]
        for m, e0 in res["raw"].items():
            cells = [f"{res['variants'][v]['errors'][m]:.3f}" for v in variants]
            out.append(f"| {m} | {e0:.3f} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["`finetune_pretrained_no_V2V` never saw V2V-PoseNet's predictions: its V2V column is the score on "
            "an unseen estimator. Blends were chosen on the hold-out (last 20 % of the fit part), never on "
            "these frames.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["nyu", "icvl"], choices=("nyu", "icvl"))
    p.add_argument("--checkpoints", default=str(_REPO / "checkpoints"))
    p.add_argument("--out", default=str(_REPO / "models" / "weights"))
    args = p.parse_args(argv)
    results = [evaluate(ds, Path(args.checkpoints)) for ds in args.datasets]
    md = to_markdown(results)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_refiner.md").write_text(md)
    slim = [{**r, "variants": {k: {kk: vv for kk, vv in v.items() if kk != "meta"} for k, v in r["variants"].items()}}
            for r in results]
    (out / "eval_refiner.json").write_text(json.dumps(slim, indent=2) + "\n")
    print(f"wrote {out / 'eval_refiner.md'} and .json", flush=True)


if __name__ == "__main__":
    main()
