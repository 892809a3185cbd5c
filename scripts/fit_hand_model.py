#!/usr/bin/env python
"""Round trip of the hand model on real hands: IK fit residuals and bone-length coverage.

1. Fits :mod:`models.hand_model` (inverse kinematics) to the real 21-joint 3D poses of
   ``../shared/data/realworld_rgb_hgcnn/`` (Ge et al. 2019, one real hand, 200 frames) with the
   average shape and with the shape fitted, for both handednesses, and reports the per-joint fit
   residual in mm.
2. Compares the bone / segment lengths the model can take (its shape limits) with those of the
   real labels there and in the NYU and ICVL ground truth (``../shared/data/nyu_icvl_eval/``; their
   joints are different points: NYU finger tip and PIP knuckle, ICVL PIP / DIP / tip, so segments
   are compared with the model's matching segments, fingers straight).

Nothing is tuned here; the data sets are only read. Skips a data set cleanly when it is absent.

    python scripts/fit_hand_model.py [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models import hand_model as hm  # noqa: E402
from models.depth_datasets import ICVL_BENCHMARK, NYU_BENCHMARK, uvd_to_xyz  # noqa: E402
from tracker.core.data_root import data_root  # noqa: E402
from tracker.core.joints import EDGES, JOINT_NAMES  # noqa: E402

DEFAULT_DATA = data_root()

#: NYU (14 joints: 0 Pinky.T, 1 Pinky.R, 2 Ring.T, 3 Ring.R, 4 Mid.T, 5 Mid.R, 6 Index.T, 7 Index.R,
#: 8 Thumb.T, 9 Thumb.R2, ...) finger segments tip -> PIP knuckle, and the model's joints for them.
NYU_SEGMENTS = {"pinky tip-PIP": (0, 1, 20, 18), "ring tip-PIP": (2, 3, 16, 14),
                "middle tip-PIP": (4, 5, 12, 10), "index tip-PIP": (6, 7, 8, 6)}
#: ICVL (16 joints: 0 Palm, then per finger R, M, T = PIP, DIP, tip; thumb MCP, IP, tip) segments.
ICVL_SEGMENTS = {
    **{f"{name} PIP-DIP": (1 + 3 * k, 2 + 3 * k, 6 + 4 * (k - 1), 7 + 4 * (k - 1)) for k, name in
       enumerate(("thumb", "index", "middle", "ring", "pinky")) if k > 0},
    **{f"{name} DIP-tip": (2 + 3 * k, 3 + 3 * k, 7 + 4 * (k - 1), 8 + 4 * (k - 1)) for k, name in
       enumerate(("thumb", "index", "middle", "ring", "pinky")) if k > 0},
    "thumb MCP-IP": (1, 2, 2, 3), "thumb IP-tip": (2, 3, 3, 4),
}


def model_segment_range(a: int, b: int) -> tuple[float, float]:
    """Distance (mm) between model joints ``a`` and ``b`` with straight fingers, for the smallest and
    the largest hand the shape limits allow."""
    lo, hi = hm.shape_limits()
    shapes = torch.stack([lo, hi])
    j = hm.forward_kinematics(hm.rest_pose(2), shapes)
    d = torch.linalg.norm(j[:, a] - j[:, b], dim=-1)
    return float(d.min()), float(d.max())


def coverage_rows(lengths: np.ndarray, pairs: dict[str, tuple[int, int]]) -> list[dict[str, object]]:
    rows = []
    for name, (ma, mb) in pairs.items():
        col = lengths[name]
        p1, p50, p99 = (float(x) for x in np.percentile(col, [1, 50, 99]))
        lo, hi = model_segment_range(ma, mb)
        rows.append({"segment": name, "data_p1": p1, "data_p50": p50, "data_p99": p99,
                     "model_min": lo, "model_max": hi, "covered": bool(lo <= p1 and p99 <= hi)})
    return rows


def realworld(root: Path) -> dict[str, object] | None:
    path = root / "realworld_rgb_hgcnn" / "realworld_testset.npz"
    if not path.is_file():
        print(f"skip: {path} not found")
        return None
    gt = np.load(path)["pose_gt_cm"].astype(np.float64) * 10.0  # cm -> mm, camera frame
    out: dict[str, object] = {"frames": int(len(gt))}
    fits = {}
    for left in (False, True):
        for fit_shape in (False, True):
            t0 = time.perf_counter()
            r = hm.fit_to_joints_3d(gt, left=left, config=hm.FitConfig(fit_shape=fit_shape))
            res = r.residual_mm.numpy()
            key = f"{'left' if left else 'right'}_{'fitted' if fit_shape else 'mean'}_shape"
            fits[key] = {
                "mean_mm": float(res.mean()), "median_mm": float(np.median(res)),
                "p95_mm": float(np.percentile(res, 95)), "max_mm": float(res.max()),
                "per_joint_mm": {JOINT_NAMES[j]: float(res[:, j].mean()) for j in range(res.shape[1])},
                "seconds": time.perf_counter() - t0,
                "shape_mean": r.shape.mean(0).numpy().round(3).tolist() if fit_shape else None,
            }
    out["fits"] = fits
    lengths = hm.bone_lengths(gt)
    edges = {f"{JOINT_NAMES[p]}-{JOINT_NAMES[c]}": (p, c) for p, c in EDGES}
    out["bones"] = coverage_rows({k: lengths[:, i] for i, k in enumerate(edges)}, edges)
    return out


def nyu_icvl(root: Path) -> dict[str, object] | None:
    base = root / "nyu_icvl_eval"
    out: dict[str, object] = {}
    for name, file, intr, pairs in (
        ("nyu", "nyu/groundtruth/nyu_test_groundtruth_label.txt.gz", NYU_BENCHMARK, NYU_SEGMENTS),
        ("icvl", "icvl/groundtruth/icvl_test_groundtruth_label.txt.gz", ICVL_BENCHMARK, ICVL_SEGMENTS),
    ):
        path = base / file
        if not path.is_file():
            print(f"skip: {path} not found")
            continue
        uvd = np.loadtxt(path)
        xyz = uvd_to_xyz(uvd.reshape(len(uvd), -1, 3), *intr)
        lengths = {k: np.linalg.norm(xyz[:, a] - xyz[:, b], axis=-1) for k, (a, b, _, _) in pairs.items()}
        out[name] = {"frames": int(len(xyz)),
                     "segments": coverage_rows(lengths, {k: (ma, mb) for k, (_, _, ma, mb) in pairs.items()})}
    return out or None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = {"realworld": realworld(args.data), "nyu_icvl": nyu_icvl(args.data)}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    rw = report["realworld"]
    if rw:
        print(f"realworld_rgb_hgcnn: IK fit to {rw['frames']} real 3D poses (residual per joint, mm)")
        for key, f in rw["fits"].items():
            print(f"  {key:22s} mean {f['mean_mm']:5.2f}  median {f['median_mm']:5.2f}  p95 {f['p95_mm']:5.2f}  "
                  f"max {f['max_mm']:5.1f}  ({f['seconds']:.1f} s)")
        bad = [r["segment"] for r in rw["bones"] if not r["covered"]]
        print(f"  bone lengths (1-99 %) inside the model's range: {len(rw['bones']) - len(bad)}/{len(rw['bones'])}"
              + (f"; not: {', '.join(bad)}" if bad else ""))
    for name, d in (report["nyu_icvl"] or {}).items():
        print(f"{name}: {d['frames']} GT frames, segment lengths (mm) data p1/p50/p99 vs model min-max")
        for r in d["segments"]:
            print(f"  {r['segment']:16s} {r['data_p1']:5.1f} {r['data_p50']:5.1f} {r['data_p99']:5.1f}   "
                  f"{r['model_min']:5.1f}-{r['model_max']:5.1f}  {'ok' if r['covered'] else 'NOT COVERED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
