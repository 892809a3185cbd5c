#!/usr/bin/env python
"""How often MediaPipe finds the hands of generated sequences (the data engine's RGB is usable).

Draws single-view scenes from the data engine (:mod:`models.synthetic`, random action, shape, skin
tone, wrist motion and camera placement, sensor-like noise), renders every frame and runs the
project's MediaPipe stage on each sequence in tracking mode (as on a video). A frame counts as
detected when a MediaPipe hand matches the ground-truth hand: mean 2D distance below 25 % of the
hand's 2D bounding box (larger side). Reports the rate per action and overall, the mean 2D error of the
matched hands and whether the handedness is right.

Seeds: 2 000 000 + k (apart from training seeds and the evaluation set's 1 000 000 + k).

    python scripts/detect_synthetic.py [--sequences 14] [--frames 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.motion import ACTIONS  # noqa: E402
from models.synthetic import SENSOR_LIKE, SceneConfig, render_frameset, sample_scene  # noqa: E402
from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands  # noqa: E402
from tracker.core.metrics import bbox_size, mean_joint_error  # noqa: E402

SEED_BASE = 2_000_000


def evaluate(sequences: int, frames: int, static: bool) -> dict[str, object]:
    per_action: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors, side_ok, render_ms = [], [], []
    for k in range(sequences):
        action = ACTIONS[k % len(ACTIONS)]
        scene = sample_scene(SEED_BASE + k, SceneConfig(num_frames=frames, actions=(action,)))
        stage = MediaPipeHands(MediaPipeConfig(max_hands=2, static_image_mode=static))
        try:
            for t in range(len(scene)):
                t0 = time.perf_counter()
                fs = render_frameset(scene, t, SENSOR_LIKE)
                render_ms.append((time.perf_counter() - t0) * 1e3)
                gt = fs.frames[0].ground_truth
                hands = stage(fs, [])
                truth = gt.joints_2d[0]
                size = float(bbox_size(truth))
                best = min((mean_joint_error(h.joints_2d, truth), h) for h in hands) \
                    if hands else None
                hit = best is not None and best[0] < 0.25 * size
                per_action[action][0] += int(hit)
                per_action[action][1] += 1
                if hit:
                    errors.append(best[0])
                    side_ok.append(best[1].handedness == gt.handedness[0])
        finally:
            stage.close()
    hits = sum(v[0] for v in per_action.values())
    total = sum(v[1] for v in per_action.values())
    return {
        "sequences": sequences, "frames": total, "detected": hits, "rate": hits / max(total, 1),
        "mode": "static" if static else "tracking",
        "per_action": {a: {"detected": v[0], "frames": v[1], "rate": v[0] / max(v[1], 1)} for a, v in per_action.items()},
        "mean_2d_error_px": float(np.mean(errors)) if errors else None,
        "handedness_correct": float(np.mean(side_ok)) if side_ok else None,
        "render_with_noise_ms_median": float(np.median(render_ms)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=14, help="sequences (actions cycle through them)")
    ap.add_argument("--frames", type=int, default=30, help="frames per sequence")
    ap.add_argument("--static", action="store_true", help="MediaPipe static image mode (default: tracking)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = evaluate(args.sequences, args.frames, args.static)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"MediaPipe ({r['mode']}) on {r['sequences']} generated sequences, {r['frames']} frames: "
          f"{r['detected']}/{r['frames']} detected ({100 * r['rate']:.1f} %), 2D error {r['mean_2d_error_px']:.1f} px, "
          f"handedness right {100 * (r['handedness_correct'] or 0):.0f} %")
    for a, v in r["per_action"].items():
        print(f"  {a:11s} {v['detected']:3d}/{v['frames']:3d}  {100 * v['rate']:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
