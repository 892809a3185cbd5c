"""Benchmark: rig-mode triangulation kernels against their NumPy references (issue [4/5]).

Input: 21 joints seen by 8 cameras on a 700 mm ring (640x480), 1 px noise, 25% of the observations
displaced by 50-200 px, confidences in [0.5, 1]. Cases:

* ``triangulate_ransac``: :func:`kernels.triangulate.triangulate_ransac` (all 28 view pairs per
  joint, final weighted DLT, reprojection RMS and propagated uncertainty) vs
  :func:`kernels.reference.triangulate_ransac` (NumPy, per joint). Goal <= 0.5 ms.
* ``triangulate_dlt``: the weighted DLT vs its NumPy (batched SVD) reference.

Each call is timed alone after a warm-up (Numba compile); rounds alternate the implementations;
medians over all calls. ``ratio`` = baseline / ours (> 1: Numba is faster). The rig loop's FPS
(4 synthetic 640x480 views through the rig pipeline, goal >= 15 FPS) is :func:`rig_loop_fps`
(``--no-loop`` skips it; it takes ~30 s).

    python bench/rig.py [--rounds 5] [--reps 200] [--loop-frames 60] [--no-loop] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    machine_info,
    observe,
    print_json,
    ring_cameras,
    row,
    time_alternating,
    timed_row,
)
from kernels import reference as R  # noqa: E402
from kernels.triangulate import triangulate_dlt, triangulate_ransac  # noqa: E402
from tracker.fusion.triangulate import projection_matrices  # noqa: E402

N_JOINTS, N_VIEWS = 21, 8
THRESHOLD_PX = 15.0


def observations(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(P, X, uv, w)``: projection matrices of an 8-camera 700 mm ring (:func:`bench._common.ring_cameras`),
    21 true joints (mm), noisy observations with 25% outliers, confidences."""
    rng = np.random.default_rng(seed)
    cameras = ring_cameras(N_VIEWS)
    P = projection_matrices(cameras)
    X = rng.normal(0.0, 60.0, (N_JOINTS, 3))
    uv = observe(cameras, X) + rng.normal(0.0, 1.0, (N_JOINTS, N_VIEWS, 2))
    bad = rng.random((N_JOINTS, N_VIEWS)) < 0.25
    ang = rng.uniform(0, 2 * np.pi, bad.shape)
    uv += (np.stack([np.cos(ang), np.sin(ang)], -1) * rng.uniform(50, 200, bad.shape)[..., None]) * bad[..., None]
    return P, X, uv, rng.uniform(0.5, 1.0, (N_JOINTS, N_VIEWS))


def cases() -> dict[str, dict[str, Callable[[], object]]]:
    P, _, uv, w = observations()
    return {
        "triangulate_ransac": {
            "numba": lambda: triangulate_ransac(P, uv, w, THRESHOLD_PX),
            "numpy": lambda: R.triangulate_ransac(P, uv, w, THRESHOLD_PX),
        },
        "triangulate_dlt": {
            "numba": lambda: triangulate_dlt(P, uv, w),
            "numpy": lambda: R.triangulate_dlt(P, uv, w),
        },
    }


GOALS_MS = {"triangulate_ransac": 0.5}


def time_case(name: str, fns: dict[str, Callable[[], object]], rounds: int, reps: int) -> dict:
    """The row of one case: Numba against NumPy over alternating rounds, after a warm-up."""
    reps_of = {"numba": reps, "numpy": max(reps // 20, 5)}  # the reference is ~100x slower
    outs, times = time_alternating(fns, rounds, reps_of)
    a = outs["numba"][0] if isinstance(outs["numba"], tuple) else outs["numba"]
    b = outs["numpy"][0] if isinstance(outs["numpy"], tuple) else outs["numpy"]
    goal = GOALS_MS.get(name)
    r = timed_row(name, times["numba"], "numpy", times["numpy"],
                  what=f"{N_JOINTS} joints x {N_VIEWS} views, 25% outlier observations", goal_ms=goal,
                  max_diff_numpy_mm=float(np.nanmax(np.abs(np.asarray(a) - np.asarray(b)))))  # fmt: skip
    r["goal_met"] = None if goal is None else r["median_ms"] <= goal
    return r


# ------------------------------------------------------------------------------------- rig loop

LOOP_VIEWS = 4
GOAL_FPS = {"mediapipe": 15.0, "litert": 30.0}  # the rig loop: issue [4/5] with MediaPipe, [3/7] with LiteRT


def _rig_framesets(n: int, seed: int = 7) -> list:
    """``n`` frame sets of a synthetic 4-view ring rig (640x480 RGB, one hand), rendered up front."""
    from devices.synthetic import SyntheticDevice
    from models.synthetic import SceneConfig

    with SyntheticDevice(seed, SceneConfig(num_frames=n, layout="ring", num_views=LOOP_VIEWS), with_depth=False) as dev:
        return [dev.read() for _ in range(n)]


def _time_pipeline(pipeline, framesets: list, warmup: int = 5) -> tuple[list[float], dict[str, float]]:
    """Per-frame-set wall times (ms) after ``warmup`` sets, and each stage's median ms."""
    for fs in framesets[:warmup]:
        pipeline(fs)
    times, stages = [], {}
    for fs in framesets[warmup:]:
        t0 = time.perf_counter()
        result = pipeline(fs)
        times.append((time.perf_counter() - t0) * 1e3)
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
    return times, {k: round(float(np.median(v)), 2) for k, v in stages.items()}


def rig_loop_fps(frames: int = 60, seconds: float = 8.0) -> list[dict]:
    """FPS of the live rig pipeline: 4 synthetic 640x480 views -> MediaPipe per view (tracking mode,
    full model) -> RANSAC fusion -> identity -> smoothing, headless, as fast as it goes.

    Rows (all on the same ``frames`` frame sets, rendered before timing, as a live rig whose
    cameras cost the host little):

    * ``rig_pipeline_4x640x480``: :func:`tracker.build.build_pipeline` for 4 views with 2 MediaPipe
      threads (the default); ``baseline`` bare MediaPipe on the 4 views one after the other (the
      same graphs, nothing else), so ``ratio`` > 1 means the pipeline is faster than running the
      detector sequentially.
    * ``rig_pipeline_4x640x480_1thread``: the same pipeline with the views run sequentially.
    * ``rig_pipeline_4x640x480_lite``: 2 threads, MediaPipe's lite landmark model (``--model lite``).
    * ``rig_pipeline_4x640x480_litert`` / ``_litert_lite``: the LiteRT landmarker (``--landmarker litert``,
      one stage for the 4 views, one batched landmark call per frame set), full / lite model.
    * ``rig_loop_recorded`` / ``_litert``: :func:`recorded_rig_loop` with each landmarker.
    * ``rig_loop_synthetic_device``: the whole :class:`tracker.runtime.loop.StreamingLoop` for ``seconds``
      with the synthetic device rendering the 4 views live in its capture thread (rendering competes
      with the pipeline for the same cores; a camera would not), default landmarker; baseline the
      device alone.

    Goals on 2 CPU cores: >= 15 FPS with MediaPipe's graphs, >= 30 FPS with LiteRT (full model).
    """
    import threading

    from devices.synthetic import SyntheticDevice
    from models.synthetic import SceneConfig
    from tracker.runtime.loop import StreamingLoop
    from tracker.stages.landmarks import LandmarkConfig
    from tracker.build import build_pipeline
    from tracker.config import FusionConfig, TrackerConfig
    from tracker.fusion.rig import MultiViewLandmarks

    framesets = _rig_framesets(frames)
    rows = []

    bare = MultiViewLandmarks(workers=1, num_views=LOOP_VIEWS)
    base_times, _ = _time_pipeline(lambda fs: _Result(bare(fs, [])), framesets)
    bare.close()
    base_ms = float(np.median(base_times))

    for name, workers, complexity, backend in (
        ("rig_pipeline_4x640x480", 2, 1, "mediapipe"), ("rig_pipeline_4x640x480_1thread", 1, 1, "mediapipe"),
        ("rig_pipeline_4x640x480_lite", 2, 0, "mediapipe"), ("rig_pipeline_4x640x480_litert", 1, 1, "litert"),
        ("rig_pipeline_4x640x480_litert_lite", 1, 0, "litert"),
    ):  # fmt: skip
        config = TrackerConfig(landmarks=LandmarkConfig(model_complexity=complexity, backend=backend),
                               fusion=FusionConfig(workers=workers))  # fmt: skip
        pipeline = build_pipeline(config, LOOP_VIEWS)
        times, stages = _time_pipeline(pipeline, framesets)
        pipeline.close()
        what = (f"MediaPipe graphs, {workers} thread(s)" if backend == "mediapipe" else
                "LiteRT, one batched landmark call per set")  # fmt: skip
        goal = GOAL_FPS[backend]
        r = timed_row(name, times, "bare MediaPipe on the 4 views, one thread", base_times,
                      what=f"{LOOP_VIEWS} synthetic 640x480 views, {('lite', 'full')[complexity]} model, RANSAC, {what}",
                      stages_median_ms=stages)  # fmt: skip
        r.update(fps=1e3 / r["median_ms"], goal_fps=goal, goal_met=1e3 / r["median_ms"] >= goal)
        rows.append(r)

    rows.append(recorded_rig_loop(framesets, base_ms, "mediapipe"))
    rows.append(recorded_rig_loop(framesets, base_ms, "litert"))

    config = SceneConfig(num_frames=300, layout="ring", num_views=LOOP_VIEWS)
    dev = SyntheticDevice(7, config, with_depth=False, loop=True)
    dev.open()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min(seconds, 3.0):
        dev.read()
        n += 1
    device_fps = n / (time.perf_counter() - t0)
    dev.close()
    backend = TrackerConfig().landmarks.backend  # the default landmarker
    pipeline = build_pipeline(TrackerConfig(), LOOP_VIEWS)
    stop = threading.Event()
    dev = SyntheticDevice(7, config, with_depth=False, loop=True)
    dev.open()
    loop = StreamingLoop(dev, pipeline, [])
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    try:
        loop.run(stop)
    finally:
        timer.cancel()
        dev.close()
        pipeline.close()
    stats = loop.snapshot()
    total = stats.stages.get("total")
    rows.append(row(
        "rig_loop_synthetic_device", total.p50_ms if total else float("nan"), total.p95_ms if total else float("nan"),
        "the synthetic device alone (render only)", 1e3 / device_fps,
        what=f"StreamingLoop {seconds:g} s, device rendering 4 views live", fps=stats.fps, processed=stats.processed,
        throughput_ratio=stats.fps / device_fps,
        stages_median_ms={k: round(v.p50_ms, 2) for k, v in stats.stages.items()},
        goal_fps=GOAL_FPS[backend], goal_met=stats.fps >= GOAL_FPS[backend],
    ))  # fmt: skip
    return rows


def recorded_rig_loop(framesets: list, base_ms: float, landmarker: str) -> dict:
    """``rig_loop_recorded``: the whole :class:`tracker.runtime.loop.StreamingLoop` on a recorded rig: the
    frame sets written as 4 folders of JPEG images + a calibration TOML + a rig file, opened with
    ``rig:RIG.toml`` (:class:`devices.rig.RigDevice`: a capture thread per camera, decode, timestamp
    matching), played as fast as possible through the rig pipeline with ``landmarker`` (full model).
    ``ratio`` = ``base_ms`` (bare sequential MediaPipe per frame set) / the loop's median ms per set;
    ``throughput_ratio`` = ``base_ms`` / the loop's ms between sets (1000 / FPS)."""
    import tempfile
    import threading

    import cv2

    from tracker.io.calibration import save_calibration
    from tracker.runtime.loop import StreamingLoop
    from tracker.build import build_pipeline
    from tracker.config import TrackerConfig
    from tracker.io.sources import SourceOptions, open_source, parse_source
    from tracker.stages.landmarks import LandmarkConfig

    cameras = [dataclasses.replace(f.camera, name=f"cam{v}") for v, f in enumerate(framesets[0].frames)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for v in range(LOOP_VIEWS):
            (root / f"cam{v}").mkdir()
            for i, fs in enumerate(framesets):
                bgr = cv2.cvtColor(fs.frames[v].image, cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(root / f"cam{v}" / f"{i:05d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        save_calibration(cameras, root / "calibration.toml")
        (root / "rig.toml").write_text('calibration = "calibration.toml"\n' + "".join(
            f'[[cameras]]\nname = "cam{v}"\nsource = "cam{v}"\n' for v in range(LOOP_VIEWS)))
        config = TrackerConfig(landmarks=LandmarkConfig(backend=landmarker))
        pipeline = build_pipeline(config, LOOP_VIEWS)
        device = open_source(parse_source(f"rig:{root / 'rig.toml'}"), SourceOptions(realtime=False))
        loop = StreamingLoop(device, pipeline, [])
        try:
            loop.run(threading.Event())
        finally:
            device.close()
            pipeline.close()
    stats = loop.snapshot()
    total = stats.stages.get("total")
    return row(
        "rig_loop_recorded" + ("" if landmarker == "mediapipe" else f"_{landmarker}"), total.p50_ms if total else float("nan"), total.p95_ms if total else float("nan"),
        "bare MediaPipe on the 4 views, one thread", base_ms,
        what=f"StreamingLoop, rig of {LOOP_VIEWS} JPEG folders ({len(framesets)} sets), RigDevice, {landmarker} "
             "full, RANSAC", fps=stats.fps, processed=stats.processed, throughput_ratio=base_ms * stats.fps / 1e3,
        stages_median_ms={k: round(v.p50_ms, 2) for k, v in stats.stages.items()},
        goal_fps=GOAL_FPS[landmarker], goal_met=stats.fps >= GOAL_FPS[landmarker],
    )  # fmt: skip


class _Result:
    """The ``timings_ms`` a bare detector lacks, so :func:`_time_pipeline` can time it too."""

    def __init__(self, hands: list) -> None:
        self.hands = hands
        self.timings_ms: dict[str, float] = {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--reps", type=int, default=200, help="timed Numba calls per round (default 200)")
    ap.add_argument("--loop-frames", type=int, default=60, help="frame sets per rig-loop row (default 60)")
    ap.add_argument("--no-loop", action="store_true", help="kernels only, skip the rig loop")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    import numba  # noqa: F401 - its version and threads go into the machine description

    results = [time_case(n, f, args.rounds, args.reps) for n, f in cases().items()]
    loop = [] if args.no_loop else rig_loop_fps(args.loop_frames)
    machine = machine_info(rounds=args.rounds, reps=args.reps)
    if args.json:
        print_json(machine, results + loop)
        return 0
    print(f"{machine['cpu_count']} CPUs, numba {machine['numba_threads']} threads; {args.rounds} rounds")
    print(f"{'case':22s} {'numba ms':>9s} {'p95':>7s} {'numpy ms':>9s} {'ratio':>7s} {'goal':>6s} {'max diff mm':>11s}")
    for r in results:
        goal = "" if r["goal_ms"] is None else ("ok" if r["goal_met"] else "MISSED")
        print(f"{r['name']:22s} {r['median_ms']:9.3f} {r['p95_ms']:7.3f} {r['baseline_median_ms']:9.3f} "
              f"{r['ratio']:7.1f} {goal:>6s} {r['max_diff_numpy_mm']:11.2e}")  # fmt: skip
    if loop:
        print(f"\nrig loop, {LOOP_VIEWS} x 640x480 synthetic views (load average {machine['load_average']})")
        print(f"{'case':32s} {'ms':>7s} {'p95':>7s} {'FPS':>6s} {'base ms':>8s} {'ratio':>6s} {'goal':>6s}  stages ms")
        for r in loop:
            stages = " ".join(f"{k} {v:.1f}" for k, v in r["stages_median_ms"].items())
            print(f"{r['name']:32s} {r['median_ms']:7.1f} {r['p95_ms']:7.1f} {r['fps']:6.1f} "
                  f"{r['baseline_median_ms']:8.1f} {r['ratio']:6.2f} {'ok' if r['goal_met'] else 'MISSED':>6s}  {stages}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
