#!/usr/bin/env python
"""3D error of the RGB-only lift vs the RGB-D ``fused`` lift (MediaPipe + depth) on generated RGB-D.

Renders single-view scenes of the data engine with sensor-like depth (seeds 2 100 000 + k, apart
from training and the evaluation set), runs MediaPipe (tracking mode, one hand) and the metric
RGB lift (:class:`tracker.stages.lift.MetricLifter`), then :class:`tracker.stages.depth_lift.DepthLifter`, and
reports the mean per-joint camera-space error (mm) of both against the ground truth, over the
frames where MediaPipe found the hand, plus the per-joint error of the depth lift.

    python scripts/evaluate_depth_lift.py [--sequences 6] [--frames 20] [--json]
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

from models.synthetic import SENSOR_LIKE, SceneConfig, render_frameset, sample_scene  # noqa: E402
from tracker.stages.depth_lift import DepthLifter  # noqa: E402
from tracker.core.joints import JOINT_NAMES  # noqa: E402
from tracker.core.metrics import joint_errors  # noqa: E402
from tracker.stages.lift import MetricLifter  # noqa: E402
from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands  # noqa: E402

SEED_BASE = 2_100_000


def evaluate(sequences: int, frames: int) -> dict[str, object]:
    rgb, fused = [], []
    lift, depth = MetricLifter(), DepthLifter()
    for seed in range(SEED_BASE, SEED_BASE + sequences):
        scene = sample_scene(seed, SceneConfig(num_frames=frames))
        stage = MediaPipeHands(MediaPipeConfig(max_hands=1))
        try:
            for t in range(frames):
                fs = render_frameset(scene, t, SENSOR_LIKE)
                hands = lift(fs, stage(fs, []))
                if not hands or hands[0].joints_3d is None:
                    continue
                truth = fs.frames[0].ground_truth.joints_3d[0]
                rgb.append(joint_errors(hands[0].joints_3d, truth))
                fused.append(joint_errors(depth(fs, hands)[0].joints_3d, truth))
        finally:
            stage.close()
    r, f = np.array(rgb), np.array(fused)
    return {
        "frames_evaluated": len(r), "frames_total": sequences * frames,
        "rgb_mean_mm": float(r.mean()), "rgb_median_frame_mm": float(np.median(r.mean(1))),
        "fused_mean_mm": float(f.mean()), "fused_median_frame_mm": float(np.median(f.mean(1))),
        "fused_per_joint_mm": {JOINT_NAMES[j]: float(f[:, j].mean()) for j in range(f.shape[1])},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = evaluate(args.sequences, args.frames)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"{res['frames_evaluated']}/{res['frames_total']} frames with a MediaPipe hand; camera-space 3D error: "
          f"RGB lift {res['rgb_mean_mm']:.1f} mm (median frame {res['rgb_median_frame_mm']:.1f}), "
          f"RGB-D fused {res['fused_mean_mm']:.1f} mm (median frame {res['fused_median_frame_mm']:.1f})")
    print("  fused per joint: " + ", ".join(f"{k} {v:.1f}" for k, v in res["fused_per_joint_mm"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
