#!/usr/bin/env python
"""Compare the two landmark stages on the bundled demo in one run: MediaPipe's graph vs LiteRT.

Both stages see the same decoded frames (all 120 by default), interleaved frame by frame so that both
run under the same machine load (on a shared 2-core machine a separate pass per stage measures the
load as much as the stage); only the ``detect`` call is timed, after one warm-up frame. Prints, per stage: frames with exactly
one hand, mean 2D error against the demo's ground truth (px, frames with a hand), and ms/frame (mean
and p95); then the mean 2D and ``joints_local`` difference between the two stages.

Usage::

    python scripts/compare_litert.py
    python scripts/compare_litert.py --max-hands 1 --model-complexity 0 --redetect-every 5 --threads 1
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from tracker.io.sources import DEMO_DIR
from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands
from tracker.stages.landmarks import LandmarkConfig
from tracker.stages.litert import LiteRTHands


def read_demo(limit: int | None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO_DIR / "demo.mp4"))
    frames = []
    while limit is None or len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def run(stages: dict, frames: list[np.ndarray]) -> dict[str, tuple[list, np.ndarray]]:
    """Run every stage on every frame, interleaved; per stage its hands per frame and ms per frame."""
    for stage in stages.values():
        stage.detect(
            frames[0], -1.0
        )  # warm-up (first-call allocation), then start clean
        stage.reset()
    out: dict[str, tuple[list, list]] = {name: ([], []) for name in stages}
    for i, rgb in enumerate(frames):
        for name, stage in stages.items():
            t0 = time.perf_counter()
            out[name][0].append(stage.detect(rgb, i / 30))
            out[name][1].append((time.perf_counter() - t0) * 1000.0)
    return {name: (hands, np.array(ms)) for name, (hands, ms) in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--frames", type=int, default=None, help="first N frames (default: all)"
    )
    p.add_argument("--max-hands", type=int, default=2)
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1))
    p.add_argument("--redetect-every", type=int, default=LandmarkConfig.redetect_every)
    p.add_argument("--threads", type=int, default=LandmarkConfig.num_threads)
    a = p.parse_args(argv)

    frames = read_demo(a.frames)
    gt = np.load(DEMO_DIR / "demo_gt.npz")["joints_2d"]
    mp_cfg = MediaPipeConfig(max_hands=a.max_hands, model_complexity=a.model_complexity)
    lt_cfg = LandmarkConfig.from_mediapipe(
        mp_cfg, redetect_every=a.redetect_every, num_threads=a.threads
    )
    with MediaPipeHands(mp_cfg) as mp, LiteRTHands(lt_cfg) as lt:
        results = run({"mediapipe": mp, "litert": lt}, frames)

    print(f"demo: {len(frames)} frames, max_hands={a.max_hands}, model_complexity={a.model_complexity}, "
          f"litert redetect_every={a.redetect_every} threads={a.threads}")  # fmt: skip
    print(
        f"{'stage':<10} {'1 hand':>7} {'2D err px':>10} {'ms/frame':>9} {'p95 ms':>7}"
    )
    for name, (hands, ms) in results.items():
        one = sum(len(h) == 1 for h in hands)
        err = [
            np.linalg.norm(h[0].joints_2d - gt[i], axis=1).mean()
            for i, h in enumerate(hands)
            if h
        ]
        print(
            f"{name:<10} {one:>7} {np.mean(err):>10.3f} {ms.mean():>9.2f} {np.percentile(ms, 95):>7.2f}"
        )
    pairs = [
        (m[0], l[0])
        for m, l in zip(results["mediapipe"][0], results["litert"][0])
        if len(m) == 1 and len(l) == 1
    ]
    d2 = [np.linalg.norm(m.joints_2d - l.joints_2d, axis=1).mean() for m, l in pairs]
    d3 = [
        np.linalg.norm(m.joints_local - l.joints_local, axis=1).mean() for m, l in pairs
    ]
    same = sum(m.handedness == l.handedness for m, l in pairs)
    print(f"litert vs mediapipe on {len(pairs)} frames with one hand each: 2D {np.mean(d2):.3f} px mean "
          f"({np.max(d2):.3f} max), joints_local {np.mean(d3):.3f} mm mean, same handedness {same}/{len(pairs)}; "
          f"speed-up {results['mediapipe'][1].mean() / results['litert'][1].mean():.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
