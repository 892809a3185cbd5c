"""Benchmark: the cross-modal estimator stage (``--estimator crossmodal``), ms per hand, against the
stages it sits next to.

The hand: one rendered RGB-D frame of the data engine (640x480, sensor-like depth), MediaPipe's hand
(LiteRT, tracking mode) found on it once; the stage (:class:`tracker.stages.crossmodal.CrossModalEstimator`,
the shipped ``crossmodal`` model, CPU) then runs on that hand again and again. Rows:

* ``crossmodal_rgb_hand``: RGB only (crop + landmark features + the RGB encoder and decoders).
  Baseline: the LiteRT landmark stage on the same frame (what every frame costs anyway).
* ``crossmodal_rgbd_hand``: with the depth image (+ depth points, PointNet, product of experts);
  goal <= 10 ms per hand on 2 cores. Baseline: the V2V-PoseNet live stage (``--estimator v2v``) on the
  same frame and hand.
* ``crossmodal_rgbd_2_hands_per_hand``: two hands in one frame (the same hand twice: one batch), per
  hand. Baseline: one hand.

    python bench/crossmodal.py [--reps 50] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")

from bench._common import machine_info, print_json, time_calls, timed_row  # noqa: E402

GOAL_MS = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=50, help="timed calls per row (default 50)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    import torch

    from models.registry import shipped_path
    from models.synthetic import SENSOR_LIKE, SceneConfig, render_frameset, sample_scene
    from tracker.stages.crossmodal import CrossModalEstimator
    from tracker.stages.landmarks import LandmarkConfig, landmark_stage
    from tracker.stages.lift import MetricLifter
    from tracker.stages.v2v import V2VDepthEstimator, V2VStageConfig

    scene = sample_scene(7, SceneConfig(num_frames=4, layout="single"))
    frames = [render_frameset(scene, t, SENSOR_LIKE) for t in range(4)]
    landmarks = landmark_stage(LandmarkConfig(backend="litert", max_hands=1), view=0)
    hands: list = []
    for fs in frames:  # tracking mode: the first frames find the hand
        hands = landmarks(fs, [])
    if not hands:
        raise SystemExit("MediaPipe found no hand on the benchmark frame")
    fs = frames[-1]
    rgb_only = fs.without_depth()
    stage = CrossModalEstimator()
    lm_times = time_calls(lambda: landmarks(fs, []), args.reps)
    landmarks.close()
    r1 = timed_row("crossmodal_rgb_hand", time_calls(lambda: stage(rgb_only, hands), args.reps),
                   "litert_landmarks_frame", lm_times, what="cross-modal stage, RGB only, one hand")  # fmt: skip
    rgbd = time_calls(lambda: stage(fs, hands), args.reps)
    lifted = MetricLifter()(fs, hands)
    v2v = V2VDepthEstimator(V2VStageConfig(mode="replace", max_hands=1), preload=True)
    r2 = timed_row("crossmodal_rgbd_hand", rgbd, "v2v_stage_hand", time_calls(lambda: v2v(fs, lifted), args.reps),
                   what="cross-modal stage, RGB-D (product of experts), one hand", goal_ms=GOAL_MS)  # fmt: skip
    r2["goal_met"] = r2["median_ms"] <= GOAL_MS
    two = [t / 2 for t in time_calls(lambda: stage(fs, hands * 2), args.reps)]
    r3 = timed_row("crossmodal_rgbd_2_hands_per_hand", two, "crossmodal_rgbd_hand", rgbd,
                   what="two hands in one batch, per hand")  # fmt: skip
    meta = torch.load(shipped_path("crossmodal"), map_location="cpu", weights_only=True).get("meta", {})
    machine = machine_info(reps=args.reps, training_seconds=meta.get("seconds"), training_device=meta.get("device"),
                           training_steps=meta.get("steps"))  # fmt: skip
    results = [r1, r2, r3]
    if args.json:
        print_json(machine, results)
        return 0
    print(f"{machine['cpu_count']} CPUs, torch {machine.get('torch_threads')} threads; shipped model trained in "
          f"{meta.get('seconds')} s on {meta.get('device')} ({meta.get('steps')} steps)")  # fmt: skip
    print(f"{'name':34s} {'median ms':>9s} {'p95':>7s} {'baseline':>24s} {'ms':>8s} {'ratio':>6s}")
    for r in results:
        print(f"{r['name']:34s} {r['median_ms']:9.3f} {r['p95_ms']:7.3f} {r['baseline']:>24s} "
              f"{r['baseline_median_ms']:8.3f} {r['ratio']:6.2f}")  # fmt: skip
    print(f"RGB-D, one hand: median {r2['median_ms']:.2f} ms (goal <= {GOAL_MS:g} ms: "
          f"{'met' if r2['goal_met'] else 'MISSED'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
