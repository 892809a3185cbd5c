#!/usr/bin/env python
"""``--temporal-refine`` (HTT's pose block, causal) against One Euro on generated hand sequences.

Sequences: the data engine's hands (``models.synthetic``, every action, 90 frames at 30 fps, seeds
not used by any training), observed with two noise models: **iid** (Gaussian sigma ``--noise`` mm
on every joint and frame) and **lift** (iid plus a per-frame shift of the whole hand, sigma
``--shift`` mm in x/y and 3x that in depth: a monocular metric lift's depth wobble). Each
observation runs through the live stages as the pipeline would (``HandPose`` per frame, one track):
raw, One Euro (``medium``, the default), the temporal refiner, and the refiner followed by One Euro.

Reported per method: MPJPE (mm, camera frame), root-relative MPJPE (the shape's error, mm) and
jitter (mean |second difference| of the joints, mm/frame^2; the ground truth's own is printed).

Usage::

    python scripts/eval_temporal_refine.py [--model temporal_refiner] [--sequences 40] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.synthetic import SceneConfig, sample_scene  # noqa: E402
from tracker.core.joints import PALM_ROOT  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics  # noqa: E402
from tracker.post.one_euro import SMOOTHING_PRESETS  # noqa: E402
from tracker.post.smoothing import TemporalSmoother  # noqa: E402
from tracker.post.temporal_refine import temporal_refine_stage  # noqa: E402

FPS = 30.0
PALM = list(PALM_ROOT)


def _frameset(i: int) -> FrameSet:
    cam = Camera("eval", Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480))
    return FrameSet.single(Frame(np.zeros((2, 2, 3), np.uint8), i / FPS, i, cam))


def run_stages(stages: list, joints: np.ndarray) -> np.ndarray:
    """Joints ``(T, 21, 3)`` through ``stages`` frame by frame as one track."""
    for s in stages:
        s.reset()
    out = []
    for i, j in enumerate(joints):
        hands = [HandPose(np.zeros((21, 2)), np.ones(21), i / FPS, joints_3d=j, track_id=0)]
        fs = _frameset(i)
        for s in stages:
            hands = s(fs, hands)
        out.append(hands[0].joints_3d)
    return np.stack(out)


def metrics(est: np.ndarray, gt: np.ndarray) -> dict:
    err = np.linalg.norm(est - gt, axis=-1).mean()
    rel = np.linalg.norm((est - est[:, PALM].mean(1, keepdims=True)) - (gt - gt[:, PALM].mean(1, keepdims=True)),
                         axis=-1).mean()  # fmt: skip
    jitter = np.linalg.norm(np.diff(est, 2, axis=0), axis=-1).mean()
    return {"mpjpe": float(err), "shape_mpjpe": float(rel), "jitter": float(jitter)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="temporal_refiner",
                    help="temporal_refiner (shipped), shrec14 / shrec28 (a gesture network's pose block) or a .pt")
    ap.add_argument("--sequences", type=int, default=40)
    ap.add_argument("--noise", type=float, default=4.0, help="iid joint noise sigma, mm")
    ap.add_argument("--shift", type=float, default=3.0, help="per-frame whole-hand shift sigma (x/y), mm")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    refiner = temporal_refine_stage(args.model)
    methods = {
        "raw": [],
        "one_euro": [TemporalSmoother(SMOOTHING_PRESETS["medium"])],
        "refine": [refiner],
        "refine+one_euro": [refiner, TemporalSmoother(SMOOTHING_PRESETS["medium"])],
    }
    report: dict = {"sequences": args.sequences, "noise_mm": args.noise, "shift_mm": args.shift}
    rng = np.random.default_rng(0)
    for noise_model in ("iid", "lift"):
        rows: dict[str, list[dict]] = {m: [] for m in methods}
        gt_jitter = []
        for k in range(args.sequences):
            gt = sample_scene(70_000 + k, SceneConfig(num_frames=90)).hands[0].joints
            obs = gt + rng.normal(0, args.noise, gt.shape)
            if noise_model == "lift":
                obs = obs + (rng.normal(0, args.shift, (len(gt), 1, 3)) * np.array([1.0, 1.0, 3.0]))
            gt_jitter.append(metrics(gt, gt)["jitter"])
            for name, stages in methods.items():
                rows[name].append(metrics(run_stages(stages, obs), gt))
        table = {m: {k: float(np.mean([r[k] for r in v])) for k in v[0]} for m, v in rows.items()}
        report[noise_model] = {"gt_jitter": float(np.mean(gt_jitter)), "methods": table}
        print(f"{noise_model} noise ({args.sequences} sequences; ground-truth jitter "
              f"{np.mean(gt_jitter):.2f} mm/frame^2):")  # fmt: skip
        for m, r in table.items():
            print(f"  {m:16s} MPJPE {r['mpjpe']:6.2f} mm   shape {r['shape_mpjpe']:6.2f} mm   jitter {r['jitter']:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
