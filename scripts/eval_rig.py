#!/usr/bin/env python
"""Multi-view evaluation: DLT vs RANSAC vs the learned fusion (HaMuCo-style) on MediaPipe 2D inputs.

Held-out synthetic rig sequences (seeds >= 3,000,000: ring and desk rigs of 8 cameras, one hand,
8 frames each; :mod:`models.hamuco_data`), rendered and run through the real MediaPipe per view
(tracking mode), each in two variants: clean, and with occluders pasted over part of the hand in
about 40 % of the views. For 2, 3, 4 and 8 cameras (views spread evenly around each rig) it
reports MPJPE and PA-MPJPE (mm, world frame, Procrustes with scale) of

* ``dlt``: confidence-weighted DLT over the views that detected the hand
  (``tracker.fusion.triangulate.triangulate_joints(method="dlt")``),
* ``ransac``: RANSAC over views per joint (``method="ransac"``; joints it leaves out fall back to DLT),
* ``fusion``: :class:`models.hamuco.HaMuCo` (``--weights``, default the shipped checkpoint),

on the frames where at least two of the chosen views detected the hand (a view where MediaPipe
missed the hand is just a missing view); ``coverage`` is the share of frames with >= 2 detecting
views, and ``fusion_1view`` the fusion's MPJPE on the frames only one view detected (triangulation
has no answer there). Ratio ``fusion / ransac`` is the issue's goal (<= 0.7).

    python scripts/eval_rig.py                      # Markdown table; data generated if missing
    python scripts/eval_rig.py --json               # JSON on stdout
    python scripts/eval_rig.py --out out/eval_rig   # also writes eval_rig.md / eval_rig.json there

The evaluation data is cached under ``checkpoints/hamuco_data/eval`` (made by
``python -m scripts.train_hamuco --generate``; made here when missing, ~3 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

log = logging.getLogger("eval_rig")

VIEW_COUNTS = (2, 3, 4, 8)
METHODS = ("dlt", "ransac", "fusion")


def _cameras(d: dict[str, np.ndarray]) -> list:
    from tracker.core.structures import Camera, Extrinsics, Intrinsics

    w, h = (int(x) for x in d["size"])
    cams = []
    for v in range(len(d["K"])):
        k = d["K"][v]
        cams.append(Camera(f"cam{v}", Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), w, h),
                           Extrinsics(R=d["R"][v], t=d["t"][v])))
    return cams


def _pa(pred: np.ndarray, gt: np.ndarray) -> float:
    from tracker.core.metrics import mean_joint_error, procrustes_align

    return mean_joint_error(procrustes_align(pred, gt), gt)


def evaluate(files: list[Path], model, views: tuple[int, ...] = VIEW_COUNTS) -> dict[str, dict]:
    """Scores per ``{variant}_{k}v`` key (variant = clean / occluded)."""
    import torch

    from models.hamuco_data import RigDataset, view_subset
    from tracker.core.metrics import mean_joint_error

    from tracker.fusion.triangulate import TriangulationConfig, triangulate_joints

    results: dict[str, dict] = {}
    for variant in ("clean", "occ"):
        seqs = [dict(np.load(f, allow_pickle=False)) for f in files if f.stem.endswith("_" + variant)]
        if not seqs:
            continue
        ds = RigDataset(seqs)
        for k in views:
            errs: dict[str, list[float]] = {m: [] for m in METHODS}
            pa: dict[str, list[float]] = {m: [] for m in METHODS}
            one_view: list[float] = []
            items, n_frames, ransac_fallback = [], 0, 0
            for s, d in enumerate(ds.seqs):
                idx = view_subset(d["uv"].shape[1], k)
                cams = _cameras(d)
                sub = [cams[i] for i in idx]
                for t in range(d["uv"].shape[0]):
                    n_frames += 1
                    det = d["detected"][t, idx]
                    if det.sum() == 1:
                        items.append((s, t, idx, False))
                    if det.sum() < 2:
                        continue
                    items.append((s, t, idx, True))
                    uv = np.transpose(d["uv"][t, idx], (1, 0, 2)).astype(np.float64)  # (J, V, 2)
                    conf = np.where(det[None, :], d["conf"][t, idx].T, 0.0).astype(np.float64)
                    gt = d["joints_world"][t].astype(np.float64)
                    dlt = triangulate_joints(sub, uv, conf, TriangulationConfig(method="dlt")).points
                    rs = triangulate_joints(sub, uv, conf, TriangulationConfig(method="ransac")).points
                    miss = ~np.isfinite(rs).all(1)
                    ransac_fallback += int(miss.sum())
                    rs[miss] = dlt[miss]
                    for m, p in (("dlt", dlt), ("ransac", rs)):
                        if np.isfinite(p).all():
                            errs[m].append(mean_joint_error(p, gt))
                            pa[m].append(_pa(p, gt))
            with torch.inference_mode():
                for i in range(0, len(items), 64):
                    chunk = items[i:i + 64]
                    b = ds.batch([(s, t, idx) for s, t, idx, _ in chunk])
                    pred = model(**b.inputs()).joints_world.double().numpy()
                    for (s, t, idx, multi), p, g in zip(chunk, pred, b.joints_world.double().numpy()):
                        if multi:
                            errs["fusion"].append(mean_joint_error(p, g))
                            pa["fusion"].append(_pa(p, g))
                        else:
                            one_view.append(mean_joint_error(p, g))
            n_multi = len(errs["fusion"])
            row = {"views": k, "variant": "occluded" if variant == "occ" else "clean", "frames": n_frames,
                   "frames_evaluated": n_multi, "coverage": n_multi / max(n_frames, 1),
                   "ransac_joints_from_dlt": ransac_fallback,
                   "fusion_1view_mm": float(np.mean(one_view)) if one_view else None, "fusion_1view_frames": len(one_view)}
            for m in METHODS:
                row[f"{m}_mpjpe"] = float(np.mean(errs[m])) if errs[m] else None
                row[f"{m}_pa_mpjpe"] = float(np.mean(pa[m])) if pa[m] else None
                row[f"{m}_median"] = float(np.median(errs[m])) if errs[m] else None
            if row["ransac_mpjpe"] and row["fusion_mpjpe"]:
                row["ratio_fusion_ransac"] = row["fusion_mpjpe"] / row["ransac_mpjpe"]
            results[f"{variant}_{k}v"] = row
            log.info("%s %dv: %s", variant, k, {m: row[f"{m}_mpjpe"] for m in METHODS})
    return results


def markdown(results: dict[str, dict]) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    lines = ["MPJPE / PA-MPJPE / median MPJPE, mm, world frame; frames with >= 2 detecting views.", "",
             "| views | occluders | frames (coverage) | DLT | RANSAC | fusion | "
             "fusion / RANSAC | fusion, 1 view |",
             "|---:|:---|---:|---:|---:|---:|---:|---:|"]
    for r in results.values():
        ratio = r.get("ratio_fusion_ransac")
        lines.append(f"| {r['views']} | {'yes' if r['variant'] == 'occluded' else 'no'} | "
                     f"{r['frames_evaluated']} ({100 * r['coverage']:.0f}%) | "
                     + " | ".join(f"{f(r[m + '_mpjpe'])} / {f(r[m + '_pa_mpjpe'])} / {f(r[m + '_median'])}" for m in METHODS)
                     + f" | {'n/a' if ratio is None else f'{ratio:.2f}'} | "
                     f"{f(r['fusion_1view_mm'])} ({r['fusion_1view_frames']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=None, help="fusion weights (default models/weights/hamuco.pt)")
    ap.add_argument("--data", type=Path, default=_REPO / "checkpoints" / "hamuco_data" / "eval")
    ap.add_argument("--eval-seqs", type=int, default=12, help="sequences to generate when the data is missing")
    ap.add_argument("--out", type=Path, default=None, help="write eval_rig.md and eval_rig.json here")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the Markdown table")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import torch

    torch.set_num_threads(1)
    from models.registry import load_pretrained

    files = sorted(args.data.glob("*.npz"))
    if not files:
        from scripts.train_hamuco import generate

        log.info("no evaluation data in %s: generating %d sequences with MediaPipe", args.data, args.eval_seqs)
        generate(0, args.eval_seqs)
        files = sorted(args.data.glob("*.npz"))
    model = load_pretrained("hamuco", path=args.weights)
    results = evaluate(files, model)
    meta = {"data": str(args.data), "sequences": len({f.stem.rsplit('_', 1)[0] for f in files}),
            "weights": str(args.weights or "models/weights/hamuco.pt"), "results": results}
    table = markdown(results)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_rig.json").write_text(json.dumps(meta, indent=1) + "\n")
        (args.out / "eval_rig.md").write_text(table + "\n")
    print(json.dumps(meta, indent=1) if args.json else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
