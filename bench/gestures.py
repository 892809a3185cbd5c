"""Benchmark: the cost of gesture recognition, against the landmark stage it runs after.

Rows (the shipped ``gestures_shrec14`` network, CPU):

* ``gesture_online_2_hands``: per frame, the live stage (:class:`tracker.post.gestures.GestureStage`:
  an online detector per hand, default settings) on a generated two-hand stream (the data engine:
  one hand waving, one pinching, 30 fps). The detectors score their windows every ``hop`` frames,
  so the time of each run of ``hop`` frames is divided by ``hop`` (the amortised cost per frame);
  the goal is <= 1 ms per frame on 2 cores. Baseline: the LiteRT landmark stage on one demo frame
  (what every frame costs anyway).
* ``temporal_refine_2_hands``: per frame, the ``--temporal-refine`` stage (the shipped
  ``temporal_refiner``, one 32-frame window per hand, both hands in one batch) on the same stream.
  Baseline: the One Euro smoothing stage it can replace, same hands.
* ``gesture_classify_clip``: one whole-sequence clip classified (``ClassRecognizer.classify``, batch 1):
  the latency of ``python -m models.gestures predict`` per sequence. Baseline: the same, 32 clips
  per call, per clip.

The shipped model's training time and device are printed with the machine description.

    python bench/gestures.py [--frames 300] [--reps 50] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")

from bench._common import machine_info, print_json, time_calls, timed_row  # noqa: E402

GOAL_MS = 1.0


def two_hand_stream(frames: int, seed: int = 5) -> np.ndarray:
    """``(frames, 2, 21, 3)`` mm, camera frame: a waving and a pinching hand from the data engine."""
    from models.synthetic import SceneConfig, sample_scene

    hands = []
    for k, action in enumerate(("wave", "pinch")):
        scene = sample_scene(seed + k, SceneConfig(num_frames=frames, actions=(action,)))
        hands.append(scene.hands[0].joints)
    return np.stack(hands, axis=1)


def stage_ms(stage, stream: np.ndarray) -> list[float]:  # noqa: ANN001
    """ms of ``stage`` on each frame of a two-hand ``stream`` ``(T, 2, 21, 3)`` (tracks 0 and 1, 30 fps)."""
    from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics

    cam = Camera("bench", Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480))
    image = np.zeros((2, 2, 3), np.uint8)
    out = []
    for i in range(len(stream)):
        fs = FrameSet.single(Frame(image, i / 30.0, i, cam))
        hands = [HandPose(np.zeros((21, 2)), np.ones(21), i / 30.0, joints_3d=stream[i, h], track_id=h)
                 for h in range(stream.shape[1])]  # fmt: skip
        t0 = time.perf_counter()
        stage(fs, hands)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def landmark_frame_times(reps: int) -> list[float]:
    """ms of the LiteRT landmark stage on the first demo frame (tracking mode: landmarks only)."""
    import cv2

    from tracker.io.sources import DEMO_DIR
    from tracker.stages.landmarks import LandmarkConfig
    from tracker.stages.litert import LiteRTHands

    cap = cv2.VideoCapture(str(DEMO_DIR / "demo.mp4"))
    ok, bgr = cap.read()
    cap.release()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    stage = LiteRTHands(LandmarkConfig(backend="litert"))
    counter = iter(range(10**9))
    times = time_calls(lambda: stage.detect(rgb, next(counter) / 30.0), reps)
    stage.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="frames of the two-hand stream (default 300)")
    ap.add_argument("--reps", type=int, default=50, help="timed calls per row (default 50)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    import torch

    from models.gestures.features import clip_joints
    from models.gestures.recognizer import load_recognizer
    from models.gestures.sequences import GestureSequence
    from tracker.post.gestures import GestureStage

    rec = load_recognizer("shrec14", "cpu")
    stream = two_hand_stream(args.frames)
    stage = GestureStage(rec)
    hop = stage.config.hop
    ticks = stage_ms(stage, stream)
    ticks = ticks[30 - 30 % hop :]  # after the windows have filled, whole hop cycles
    per_frame = [sum(ticks[k : k + hop]) / hop for k in range(0, len(ticks) - hop + 1, hop)]
    base = landmark_frame_times(args.reps)
    r1 = timed_row("gesture_online_2_hands", per_frame, "litert_landmarks_frame", base,
                   what=f"live gesture stage, 2 hands, per frame (amortised over hop={hop})",
                   goal_ms=GOAL_MS)  # fmt: skip
    r1["mean_ms"] = float(np.mean(per_frame))
    r1["goal_met"] = r1["mean_ms"] <= GOAL_MS
    from tracker.post.one_euro import SMOOTHING_PRESETS
    from tracker.post.smoothing import TemporalSmoother
    from tracker.post.temporal_refine import temporal_refine_stage

    r3 = timed_row("temporal_refine_2_hands", stage_ms(temporal_refine_stage(), stream)[32:], "one_euro_2_hands",
                   stage_ms(TemporalSmoother(SMOOTHING_PRESETS["medium"]), stream)[32:],
                   what="--temporal-refine vs One Euro smoothing, 2 hands, per frame")  # fmt: skip
    n0 = max(8, min(60, len(stream) - 32))  # 2-s clips (shorter with a short --frames)
    seqs = [GestureSequence(stream[: n0 + k, 0], np.arange(n0 + k) / 30.0) for k in range(32)]
    one = time_calls(lambda: rec.classify(seqs[:1]), args.reps)
    many = [t / 32 for t in time_calls(lambda: rec.probabilities([clip_joints(s) for s in seqs]), max(args.reps // 4, 3))]
    r2 = timed_row("gesture_classify_clip", one, "classify_clip_in_batch_of_32", many,
                   what="one 2-s clip, batch 1 vs per clip in a batch of 32")  # fmt: skip
    from models.registry import shipped_path

    meta = torch.load(shipped_path("gestures_shrec14"), map_location="cpu", weights_only=True).get("meta", {})
    machine = machine_info(frames=args.frames, reps=args.reps, training_seconds=meta.get("seconds"),
                           training_device=meta.get("device"), training_steps=meta.get("steps"))  # fmt: skip
    results = [r1, r3, r2]
    if args.json:
        print_json(machine, results)
        return 0
    print(f"{machine['cpu_count']} CPUs, torch {machine.get('torch_threads')} threads; shipped model trained in "
          f"{meta.get('seconds')} s on {meta.get('device')} ({meta.get('steps')} steps)")  # fmt: skip
    print(f"{'name':26s} {'median ms':>9s} {'p95':>7s} {'baseline ms':>11s} {'ratio':>6s}")
    for r in results:
        print(f"{r['name']:26s} {r['median_ms']:9.3f} {r['p95_ms']:7.3f} {r['baseline_median_ms']:11.3f} {r['ratio']:6.2f}")
    print(f"online detection, 2 hands: mean {r1['mean_ms']:.3f} ms/frame (goal <= {GOAL_MS} ms: "
          f"{'met' if r1['goal_met'] else 'MISSED'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
