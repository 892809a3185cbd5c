#!/usr/bin/env python
"""Every single-view estimator side by side on the held-out generated RGB-D set (``assets/synth_eval``).

The committed set stores depth and labels only; its RGB is rendered again from the recorded seeds and
scene configs (``scripts/make_synth_eval.py``), and every re-rendered frame's joints are checked against
the stored ones. Each sequence (12 frames) is played through a fresh pipeline built from the default
configuration (tracking mode, One Euro smoothing, one hand; the pose prior off, so that the estimators
are compared alone) with only the estimator changed:

* ``mediapipe`` (RGB only: MediaPipe's world landmarks placed by the metric lift),
* ``crossmodal-rgb`` (the cross-modal shape from RGB alone, same lift; the depth image is withheld),
* ``fused`` (MediaPipe + the RGB-D lift; V2V-PoseNet for hands RGB misses),
* ``crossmodal`` (the cross-modal shape from RGB + depth points, product of experts, then the RGB-D lift),
* ``v2v`` (V2V-PoseNet light on every hand, seeded by MediaPipe).

Metrics, over the frames where the estimator returned a hand with 3D joints (``found``), and over the
frames where all of them did (``common``, the fair comparison): camera-space MPJPE (mm), its median over
frames, Procrustes-aligned MPJPE (similarity; the shape alone, mm), root-relative (wrist) MPJPE (mm).

    python scripts/eval_crossmodal.py [--weights FILE] [--estimators mediapipe,crossmodal-rgb,...] [--json PATH]
    python scripts/eval_crossmodal.py --estimators crossmodal --set depth.lift.inlier_mm=40   # a variant
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "scripts"))

from make_synth_eval import single_view_configs  # noqa: E402

from models.synthetic import SENSOR_LIKE, render_frameset, sample_scene  # noqa: E402
from tracker.build import build_pipeline  # noqa: E402
from tracker.config import TrackerConfig, override  # noqa: E402
from tracker.core.errors import ConfigError  # noqa: E402
from tracker.core.metrics import joint_errors, procrustes_align, root_relative  # noqa: E402

EVAL_SET = _REPO / "assets" / "synth_eval" / "single_view.npz"
ESTIMATORS = ("mediapipe", "crossmodal-rgb", "fused", "crossmodal", "v2v")


def _config(name: str, weights: Path | None, settings: dict[str, object]) -> TrackerConfig:
    estimator = "crossmodal" if name.startswith("crossmodal") else name
    return override(TrackerConfig(), **{"landmarks.max_hands": 1, "depth.estimator": estimator,
                                         "depth.crossmodal.weights": weights,
                                         "prior.enabled": False, **settings})  # the estimators alone  # fmt: skip


def evaluate(estimators: list[str], weights: Path | None, limit: int | None,
             settings: dict[str, object] | None = None) -> dict:  # fmt: skip
    stored = np.load(EVAL_SET)
    configs = single_view_configs()[:limit]
    preds: dict[str, list[np.ndarray | None]] = {e: [] for e in estimators}
    truth, seconds = [], {e: 0.0 for e in estimators}
    row = 0
    for seed, cfg in configs:
        scene = sample_scene(seed, cfg)
        framesets = [render_frameset(scene, t, SENSOR_LIKE) for t in range(len(scene))]
        for fs in framesets:
            gt = fs.frames[0].ground_truth.joints_3d[0]
            if not np.allclose(gt, stored["joints_3d"][row], atol=1e-6):
                raise SystemExit(f"re-rendered frame {row} does not match {EVAL_SET}; rebuild it (make_synth_eval.py)")
            truth.append(gt)
            row += 1
        for name in estimators:
            pipeline = build_pipeline(_config(name, weights, settings or {}))
            try:
                for fs in framesets:
                    t0 = time.perf_counter()
                    res = pipeline(fs.without_depth() if name in ("mediapipe", "crossmodal-rgb") else fs)
                    seconds[name] += time.perf_counter() - t0
                    hand = res.hands[0] if res.hands else None
                    preds[name].append(None if hand is None or hand.joints_3d is None else hand.joints_3d)
            finally:
                pipeline.close()
    gt = np.stack(truth)
    common = np.array([all(preds[e][i] is not None for e in estimators) for i in range(len(gt))])
    out = {"frames": len(gt), "common_frames": int(common.sum()), "estimators": {}}
    for name in estimators:
        found = np.array([p is not None for p in preds[name]])
        errs = {"cam": [], "pa": [], "rr": []}
        for i in np.flatnonzero(found):
            p = preds[name][i]
            errs["cam"].append(joint_errors(p, gt[i]).mean())
            errs["pa"].append(joint_errors(procrustes_align(p, gt[i]), gt[i]).mean())
            errs["rr"].append(joint_errors(root_relative(p), root_relative(gt[i])).mean())
        e = {k: np.array(v) for k, v in errs.items()}
        sel = common[found]
        out["estimators"][name] = {
            "found": int(found.sum()),
            "ms_per_frame": 1e3 * seconds[name] / len(gt),
            **{f"{k}_mm": float(v.mean()) if len(v) else float("nan") for k, v in e.items()},
            "cam_median_mm": float(np.median(e["cam"])) if len(e["cam"]) else float("nan"),
            **{f"common_{k}_mm": float(v[sel].mean()) if sel.any() else float("nan") for k, v in e.items()},
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=None, help="cross-modal checkpoint (default: the shipped one)")
    ap.add_argument("--estimators", default=",".join(ESTIMATORS), help=f"comma-separated subset of {ESTIMATORS}")
    ap.add_argument("--limit", type=int, default=None, help="first N sequences only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config setting for every estimator, e.g. depth.lift.inlier_mm=40 (VALUE read as JSON)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    settings = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected KEY=VALUE")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    names = [e.strip() for e in args.estimators.split(",") if e.strip()]
    bad = [e for e in names if e not in ESTIMATORS]
    if bad:
        ap.error(f"unknown estimators {bad}; choose from {ESTIMATORS}")
    try:
        _config(names[0] if names else "fused", args.weights, settings)
    except ConfigError as exc:
        ap.error(f"--set: {exc}")
    res = evaluate(names, args.weights, args.limit, settings)
    print(f"held-out generated RGB-D set: {res['frames']} frames, {res['common_frames']} found by every estimator")
    print(f"{'estimator':16s} {'found':>6s} {'cam mm':>8s} {'median':>8s} {'PA mm':>8s} {'RR mm':>8s} "
          f"{'| common: cam':>14s} {'PA':>6s} {'RR':>6s} {'ms/frame':>9s}")  # fmt: skip
    for name, r in res["estimators"].items():
        print(f"{name:16s} {r['found']:6d} {r['cam_mm']:8.2f} {r['cam_median_mm']:8.2f} {r['pa_mm']:8.2f} "
              f"{r['rr_mm']:8.2f} {r['common_cam_mm']:14.2f} {r['common_pa_mm']:6.2f} {r['common_rr_mm']:6.2f} "
              f"{r['ms_per_frame']:9.1f}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
