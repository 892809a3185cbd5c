"""Benchmark: ``handtrack batch`` throughput, local process pool against Ray, 1 and 2 workers, same run.

The archive: ``--inputs`` videos of ``--frames`` frames each (640x480, cut from the bundled demo
recording, so every frame has a hand), written once to a temporary folder. Every setting runs the
real batch (:func:`tracker.batch.make_engine` + :func:`tracker.batch.run_batch`, default tracking
options, JSON Lines exports, a fresh output folder and a fresh engine each time: workers start,
import, load their models on their first input). Rounds alternate the four settings (local 1, local
2, Ray 1, Ray 2 workers) so machine noise hits them alike; rows report medians over rounds.

Rows (``median_ms`` / ``p95_ms`` over rounds):

* ``local_1_worker``, ``local_2_workers``, ``ray_1_worker``, ``ray_2_workers``: steady wall time per
  input, from the W-th result to the last over the inputs after the first W (W workers: each
  worker's first input carries the start-up and its model loading). Extra keys: ``inputs_per_s`` and ``frames_per_s`` (the
  same stretch), ``startup_s`` (below), ``total_s`` (engine start to engine closed, all inputs). Baselines: the 2-worker local
  row against the 1-worker local row (``ratio`` = the speed-up from the second worker); each Ray row
  against the local row with as many workers (``ratio`` < 1: Ray is slower).
* ``ray_dispatch_per_input`` against ``local_dispatch_per_input``: with 1 worker, the steady wall time
  per input minus the worker's own time per input (the manifest's ``seconds``): what
  handing an input to a worker and its outcome back costs (Ray: an actor call through the object
  store and ``ObjectRef.future()``; local: the pool's pipes).
* ``ray_startup`` against ``local_startup``: from creating the engine to the first result, less
  that input's own time in its worker (model loading included there): starting the workers and
  importing handtrack in them (and
  for Ray, starting a local Ray instance, as ``handtrack batch --engine ray`` does on one machine).

``ratio`` = baseline / ours (> 1: ours is faster).

    python bench/batch.py [--inputs 8] [--frames 30] [--rounds 2] [--threads N] [--json]
    python bench/batch.py --quick     # a layout check: 1 round, 3 inputs of 5 frames
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")

from bench._common import machine_info, median_p95, print_json, row  # noqa: E402
from tracker.batch import Manifest, batch_config, make_engine, plan_jobs, run_batch  # noqa: E402
from tracker.config import TrackerConfig, override  # noqa: E402
from tracker.io.sources import DEMO_VIDEO  # noqa: E402
from tracker.runtime.quiet import quiet_native_logs  # noqa: E402

#: (engine, workers) of the four settings, in the order each round runs them.
SETTINGS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))


def _name(engine: str, workers: int) -> str:
    return f"{engine}_{workers}_worker{'s' if workers > 1 else ''}"


def make_archive(folder: Path, inputs: int, frames: int) -> list[str]:
    """``inputs`` videos of ``frames`` frames each, consecutive stretches of the demo (wrapping round)."""
    import cv2

    cap = cv2.VideoCapture(str(DEMO_VIDEO))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    paths = []
    for i in range(inputs):
        path = folder / f"clip{i:03d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        for _ in range(frames):
            ok, image = cap.read()
            if not ok:  # the end of the demo: from its start again
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = cap.read()
            writer.write(image)
        writer.release()
        paths.append(str(path))
    cap.release()
    return paths


def run_once(inputs: list[str], out: Path, engine_name: str, workers: int, config: TrackerConfig) -> dict[str, Any]:
    """One batch of ``inputs`` into ``out``: its timings (s) and rates. Steady figures run from the
    ``workers``-th result to the last (each worker's first input carries the start-up and its model
    loading)."""
    jobs = plan_jobs(inputs, out, "jsonl")
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    engine = make_engine(engine_name, config, workers)
    ended: list[float] = []  # when each outcome arrived, s after t0

    class Timed(Manifest):
        def write(self, outcome: Any) -> None:
            ended.append(time.perf_counter() - t0)
            super().write(outcome)

    try:
        with Timed(out, engine.name) as manifest:
            summary = run_batch(jobs, engine, manifest)
    finally:
        engine.close()
    total = time.perf_counter() - t0
    outcomes = summary.outcomes
    if any(o.status != "done" for o in outcomes) or len(outcomes) <= workers:
        raise RuntimeError(f"{engine_name}: every input must finish, and there must be more than workers: {outcomes}")
    steady = ended[-1] - ended[workers - 1]
    later = outcomes[workers:]
    return {"per_input_s": steady / len(later), "inputs_per_s": len(later) / steady,
            "frames_per_s": sum(o.frames for o in later) / steady, "startup_s": ended[0] - outcomes[0].seconds,
            "total_s": total, "dispatch_s": steady / len(later) - sum(o.seconds for o in later) / len(later) / workers}  # fmt: skip


def bench(inputs: list[str], rounds: int, folder: Path, threads: int | None = None) -> list[dict[str, Any]]:
    config = batch_config(TrackerConfig())
    if threads is not None:
        config = override(config, **{"landmarks.num_threads": threads})
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {s: [] for s in SETTINGS}
    for r in range(rounds):
        for engine, workers in SETTINGS:
            runs[engine, workers].append(run_once(inputs, folder / f"out_{r}_{engine}_{workers}", engine, workers, config))

    def ms(setting: tuple[str, int], key: str) -> list[float]:
        return [1e3 * x[key] for x in runs[setting]]

    def mean(setting: tuple[str, int], key: str) -> float:
        return float(np.median([x[key] for x in runs[setting]]))

    results = []
    for engine, workers in SETTINGS:
        base = None if (engine, workers) == ("local", 1) else ("local", 1 if engine == "local" else workers)
        extra = {k: mean((engine, workers), k) for k in ("inputs_per_s", "frames_per_s", "startup_s", "total_s")}
        median, p95 = median_p95(ms((engine, workers), "per_input_s"))
        results.append(row(_name(engine, workers), median, p95, None if base is None else _name(*base),
                           None if base is None else median_p95(ms(base, "per_input_s"))[0],
                           workers=workers, **extra))  # fmt: skip
    for key, label in (("dispatch_s", "dispatch_per_input"), ("startup_s", "startup")):
        local, ray = ms(("local", 1), key), ms(("ray", 1), key)
        results.append(row(f"local_{label}", *median_p95(local)))
        results.append(row(f"ray_{label}", *median_p95(ray), f"local_{label}", median_p95(local)[0]))
    return results


def print_table(results: list[dict[str, Any]], header: str) -> None:
    print(header)
    print(f"{'name':<26}{'median ms':>10}{'p95 ms':>9}  {'baseline':<26}{'base ms':>9}{'ratio':>7}  notes")
    for r in results:
        base = f"  {'-':<26}{'':>9}{'':>7}" if r["baseline"] is None else \
            f"  {r['baseline']:<26}{r['baseline_median_ms']:9.1f}{r['ratio']:7.2f}"
        note = "" if "inputs_per_s" not in r else (
            f"{r['inputs_per_s']:.2f} inputs/s, {r['frames_per_s']:.1f} frames/s, start-up {r['startup_s']:.1f} s, "
            f"total {r['total_s']:.1f} s")  # fmt: skip
        print(f"{r['name']:<26}{r['median_ms']:10.1f}{r['p95_ms']:9.1f}{base}  {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=8, help="videos in the archive, >= 3 (default 8)")
    ap.add_argument("--frames", type=int, default=30, help="frames per video (default 30)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the four settings (default 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="LiteRT threads per model in each worker ([landmarks] num_threads; default: the config's, 2)")
    ap.add_argument("--quick", action="store_true", help="1 round, 3 inputs of 5 frames (a layout check)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.inputs, args.frames = 1, 3, 5
    if args.inputs < 3:
        ap.error("--inputs must be >= 3 (with 2 workers the steady figures start at the third input)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import ray  # noqa: F401
    except ImportError:
        print("bench/batch.py compares with Ray: pip install 'handtrack[ray]' (scripts/setup.sh does)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        inputs = make_archive(folder, args.inputs, args.frames)
        with quiet_native_logs():  # TF Lite's start-up lines from every worker
            results = bench(inputs, args.rounds, folder, args.threads)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    machine = machine_info(inputs=args.inputs, frames_per_input=args.frames, rounds=args.rounds,
                           litert_threads=args.threads or TrackerConfig().landmarks.num_threads)
    if args.json:
        print_json(machine, results)
        return 0
    print_table(results, f"{args.inputs} videos x {args.frames} frames (640x480, demo), {args.rounds} rounds, "
                         f"LiteRT threads {machine['litert_threads']}; "
                         f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
