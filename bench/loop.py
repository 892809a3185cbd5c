"""Benchmark: the live loop on a 640x480 playback at full speed, against bare MediaPipe.

Both sides process the same decoded video in MediaPipe's tracking mode with the same model:

* **bare MediaPipe** (the baseline): what a user would write by hand, in one thread:
  ``cv2.VideoCapture.read`` -> ``cvtColor`` -> ``mp.solutions.hands.Hands.process``.
* **handtrack**: the full streaming loop: ``VideoFileDevice`` in its capture thread -> landmark
  stage (``--landmarker``, default LiteRT) -> metric 3D lift -> identities -> One Euro smoothing ->
  JSON Lines export.

Rounds alternate between the two so machine noise hits both alike; the table reports medians over
rounds. ``ratio`` = baseline / ours (> 1: ours is faster); ``overhead`` = ours / baseline - 1.

    python bench/loop.py [--video PATH] [--rounds 3] [--passes 2] [--max-frames N] [--landmarker litert|mediapipe]
                         [--threads 2] [--redetect-every 5] [--json]

``--max-frames N`` plays only the first N frames per pass on both sides (the handtrack side plays
``N * passes`` frames of the looping video; a quick check of the layout: the published numbers play
the whole video).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")

from bench._common import machine_info, print_json, row  # noqa: E402
from devices.video import VideoFileDevice  # noqa: E402
from tracker.sinks.export import JsonlExporter  # noqa: E402
from tracker.io.intrinsics import load_intrinsics  # noqa: E402
from tracker.runtime.loop import StreamingLoop  # noqa: E402
from tracker.stages.landmarks import LandmarkConfig  # noqa: E402
from tracker.build import build_pipeline  # noqa: E402
from tracker.config import DepthConfig, TrackerConfig  # noqa: E402
from tracker.io.sources import DEMO_INTRINSICS, DEMO_VIDEO  # noqa: E402


def bare_mediapipe(video: Path, passes: int, complexity: int, max_frames: int | None = None,
                   max_hands: int = 2) -> tuple[float, list[float]]:  # fmt: skip
    """Seconds per frame of the hand-written loop, and the per-frame ``process`` times (ms); each pass
    stops after ``max_frames`` frames (None: the whole video). ``max_hands`` = MediaPipe's
    ``max_num_hands`` (2 = handtrack's default; with 1 its graph skips the palm detector while the
    hand is tracked)."""
    import cv2

    import mediapipe as mp

    hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=max_hands, model_complexity=complexity)
    process_ms: list[float] = []
    n = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        cap = cv2.VideoCapture(str(video))
        read = 0
        while max_frames is None or read < max_frames:
            read += 1
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t = time.perf_counter()
            hands.process(rgb)
            process_ms.append((time.perf_counter() - t) * 1e3)
            n += 1
        cap.release()
    wall = time.perf_counter() - t0
    hands.close()
    return wall / n, process_ms


def handtrack_loop(video: Path, passes: int, complexity: int, intrinsics_path: Path | None,
                   max_frames: int | None = None, landmarker: str = LandmarkConfig.backend,
                   threads: int = 2, redetect_every: int = LandmarkConfig.redetect_every,
                   max_hands: int = LandmarkConfig.max_hands) -> tuple[float, dict]:  # fmt: skip
    """Seconds per frame of the full loop, and its per-stage stats; ``max_frames`` per pass as in
    :func:`bare_mediapipe`; ``threads`` and ``redetect_every``: the LiteRT landmarker's settings;
    ``max_hands``: handtrack's (the baselines keep theirs)."""
    intr = load_intrinsics(intrinsics_path) if intrinsics_path else None
    # the RGB path of the CLI on a video: no depth stages (a video has no depth)
    config = TrackerConfig(landmarks=LandmarkConfig(model_complexity=complexity, backend=landmarker,
                                                    num_threads=threads, redetect_every=redetect_every,
                                                    max_hands=max_hands),
                           depth=DepthConfig(estimator="mediapipe"))  # fmt: skip
    pipeline = build_pipeline(config)
    with tempfile.TemporaryDirectory() as tmp, VideoFileDevice(video, realtime=False, intrinsics=intr, loop=passes > 1) as dev:
        per_pass = dev.frame_count if max_frames is None else min(max_frames, dev.frame_count or max_frames)
        n_frames = per_pass * passes if per_pass else None
        exporter = JsonlExporter(Path(tmp) / "out.jsonl")
        loop = StreamingLoop(dev, pipeline, [exporter], max_frames=n_frames)
        t0 = time.perf_counter()
        stats = loop.run()
        wall = time.perf_counter() - t0
        exporter.close()
    pipeline.close()
    return wall / stats.processed, {"processed": stats.processed, "dropped": stats.dropped, "stages": stats.stages}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=DEMO_VIDEO, help="640x480 video to play (default: the demo)")
    ap.add_argument("--intrinsics", type=Path, default=None, help="calibration for --video (default: the demo's)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--passes", type=int, default=2, help="plays of the video per round (default 2)")
    ap.add_argument("--model", choices=("lite", "full"), default="full")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per pass (default: the whole video)")
    ap.add_argument("--landmarker", choices=("mediapipe", "litert"), default=LandmarkConfig.backend,
                    help="what runs the hand models in handtrack's loop (default %(default)s; the baseline is "
                         "always MediaPipe's graph)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=LandmarkConfig.num_threads,
                    help="LiteRT inference threads ([landmarks] num_threads, default %(default)s)")
    ap.add_argument("--redetect-every", type=int, default=LandmarkConfig.redetect_every,
                    help="LiteRT palm detector period while a hand is missing (default %(default)s)")
    ap.add_argument("--max-hands", type=int, default=LandmarkConfig.max_hands,
                    help="handtrack's max hands (default %(default)s; the baselines stay at 2 and 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    complexity = 0 if args.model == "lite" else 1
    intr_path = args.intrinsics or (DEMO_INTRINSICS if args.video == DEMO_VIDEO else None)

    # warm-up: model load, XNNPACK init, first decode
    bare_mediapipe(args.video, 1, complexity, args.max_frames)
    handtrack_loop(args.video, 1, complexity, intr_path, args.max_frames, args.landmarker, args.threads,
                           args.redetect_every, args.max_hands)

    bare_s, bare1_s, ours_s, process_ms, stage_runs = [], [], [], [], []
    for _ in range(args.rounds):
        s, p = bare_mediapipe(args.video, args.passes, complexity, args.max_frames)
        bare_s.append(s)
        process_ms += p
        s, _ = bare_mediapipe(args.video, args.passes, complexity, args.max_frames, max_hands=1)
        bare1_s.append(s)
        s, st = handtrack_loop(args.video, args.passes, complexity, intr_path, args.max_frames, args.landmarker, args.threads,
                           args.redetect_every, args.max_hands)
        ours_s.append(s)
        stage_runs.append(st)

    bare_ms = float(np.median(bare_s)) * 1e3
    bare1_ms = float(np.median(bare1_s)) * 1e3
    ours_ms = float(np.median(ours_s)) * 1e3
    last = stage_runs[-1]["stages"]
    proc_p50, proc_p95 = np.percentile(process_ms, [50, 95])
    # a round's time is its mean per frame; p95 of the loop row is the slowest round's
    results = [
        row("loop_frame", ours_ms, float(np.max(ours_s)) * 1e3, "bare_mediapipe_frame", bare_ms,
            fps=1e3 / ours_ms, baseline_fps=1e3 / bare_ms, overhead=ours_ms / bare_ms - 1.0),
        row("loop_frame_vs_one_hand", ours_ms, float(np.max(ours_s)) * 1e3, "bare_mediapipe_one_hand_frame",
            bare1_ms, baseline_fps=1e3 / bare1_ms),
        row("stage:landmarks", last["landmarks"].p50_ms, last["landmarks"].p95_ms, "bare_mediapipe_process",
            float(proc_p50)),
    ]  # fmt: skip
    results += [row(f"stage:{name}", st.p50_ms, st.p95_ms) for name, st in last.items() if name != "landmarks"]
    machine = machine_info(video=str(args.video), model=args.model, landmarker=args.landmarker, threads=args.threads,
                           redetect_every=args.redetect_every, max_hands=args.max_hands,
                           rounds=args.rounds,
                           passes=args.passes,
                           max_frames=args.max_frames, frames_per_round=stage_runs[-1]["processed"],
                           bare_process_p95_ms=float(proc_p95))  # fmt: skip
    if args.json:
        print_json(machine, results)
        return 0
    print(f"video {args.video.name}, model {args.model}, landmarker {args.landmarker} ({args.threads} threads), {args.rounds} rounds x {stage_runs[-1]['processed']} frames, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'name':<22}{'median ms':>10}{'p95 ms':>9}{'baseline ms':>13}{'ratio':>7}")
    for r in results:
        base = "" if r["baseline_median_ms"] is None else f"{r['baseline_median_ms']:13.2f}{r['ratio']:7.2f}"
        print(f"{r['name']:<22}{r['median_ms']:10.2f}{r['p95_ms']:9.2f}{base}")
    top = results[0]
    print(f"\nhandtrack loop {top['fps']:.1f} FPS vs bare MediaPipe {top['baseline_fps']:.1f} FPS: "
          f"overhead {100 * top['overhead']:+.1f} % (goal <= +10 %, >= 30 FPS)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
