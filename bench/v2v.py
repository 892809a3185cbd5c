"""Benchmark: V2V-PoseNet inference, end to end and network alone, CPU and (when present) CUDA.

Two questions from issue [3/5]:

* **CPU, light model, end to end** (goal >= 15 FPS on 2 cores): one depth frame of the held-out
  synthetic set (640x480, sensor noise) -> reference point (depth centre of mass) -> Numba
  voxelization -> network -> Numba sub-voxel read-out, batch 1, with the shipped
  ``models/weights/v2v_light.pt``. Timed twice in the same run: with the project's Numba kernels
  and with their vectorised NumPy references (:mod:`kernels.reference`) around the same network;
  ``ratio`` = reference / ours. Also the whole live stage (:class:`tracker.stages.v2v.V2VDepthEstimator`,
  tracking seed, ``passes`` network passes) as the loop runs it.
* **Full model** (the paper's 88^3 grid, width 32; random weights: speed does not depend on them):
  the network alone at batch 1 and batched, float32 and float16 (CUDA), in frames per second. The
  paper reports 3.5 FPS for its model on a Titan X; the issue's goal is >= 100 FPS batch 1 on an
  H100. On CPU only batch 1 float32 is timed (it is ~0.4 s per frame).

Rounds alternate the implementations so machine noise hits all alike; medians are reported. Rows
(``--json``: the layout of ``bench/_common.py``): ``v2v_light_end_to_end`` (ours against the NumPy
kernels), ``v2v_light_live_stage`` and ``v2v_light_network_cpu`` (no baseline), and one
``v2v_full_network_<device>_b<batch>_<dtype>`` per full-model setting, per frame, against the paper's
3.5 FPS (``ratio`` = how many times the paper's speed).

    python bench/v2v.py [--rounds 5] [--reps 10] [--frames 24] [--device auto|cpu|cuda] [--quick] [--json]

``--quick`` (1 round, 2 calls, 4 frames, one warm-up and one call of the networks alone) checks the
output, not the speed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO))
#: The committed held-out set (scripts/make_synth_eval.py); evaluation data of the checkout, not of the package.
EVAL_SET = _REPO / "assets" / "synth_eval" / "single_view.npz"

from bench._common import (  # noqa: E402
    machine_info,
    median_p95,
    print_json,
    row,
    time_alternating,
    time_calls,
    timed_row,
)
from kernels import REFINE_GAUSS, subvoxel_argmax_batch, voxelize_depth_into  # noqa: E402
from kernels import reference as R  # noqa: E402
from models.v2v import create_model, load_weights  # noqa: E402
from models.v2v_data import load_eval_set  # noqa: E402
from models.v2v_infer import V2VEstimator  # noqa: E402
from models.depth_crop import hand_reference_point, intrinsics_of  # noqa: E402
from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics  # noqa: E402
from tracker.stages.v2v import DEFAULT_V2V_WEIGHTS, V2VDepthEstimator, V2VStageConfig  # noqa: E402

PAPER_FPS = 3.5
GOAL_GPU_FPS = 100.0
GOAL_CPU_FPS = 15.0


def end_to_end_cases(weights: Path, frames: int) -> dict[str, Callable[[], object]]:
    """Callables for one frame, batch 1: ours (Numba), the NumPy-reference variant, the live stage."""
    es = load_eval_set(EVAL_SET, frames)
    model = load_weights(weights, device="cpu")
    est = V2VEstimator(model, device="cpu", refine=REFINE_GAUSS)
    cube, D = est.cube_mm, est.grid
    state = {"n": 0}

    def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = state["n"] = (state["n"] + 1) % len(es)
        return es.depth[n], es.K[n], es.joints[n].mean(0)

    def ours() -> np.ndarray:
        depth, K, seed = sample()
        ref, _ = hand_reference_point(depth, K, seed)
        grid = np.zeros((1, D, D, D), np.uint8)
        fx, fy, cx, cy = intrinsics_of(K)
        voxelize_depth_into(grid[0], depth, fx, fy, cx, cy, ref, cube)
        hm = est.heatmaps(grid)
        return subvoxel_argmax_batch(hm, ref[None], cube, 1, REFINE_GAUSS)[0]

    def reference() -> np.ndarray:
        depth, K, seed = sample()
        fx, fy, cx, cy = intrinsics_of(K)
        # the same region search as hand_reference_point, with the NumPy centre of mass
        half = 65.0
        com = R.depth_center_of_mass(depth, fx, fy, cx, cy, 1.0, seed[2] - half, seed[2] + half)[0]
        grid = R.voxelize_depth(depth, fx, fy, cx, cy, com, cube, D)[None]
        hm = est.heatmaps(grid)
        return R.subvoxel_argmax(hm[0], com, cube, 1, REFINE_GAUSS)[0]

    H, W = es.depth.shape[1:]
    stage = V2VDepthEstimator(V2VStageConfig(device="cpu"), estimator=est)

    def live_stage() -> object:
        n = state["n"] = (state["n"] + 1) % len(es)
        K = es.K[n]
        cam = Camera("bench", Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], W, H))
        frame = Frame(np.zeros((H, W, 3), np.uint8), float(n), n, cam, es.depth[n])
        stage._seen[0] = (n, [es.joints[n].mean(0) + 10.0])  # tracked from the previous frame
        return stage(FrameSet.single(frame), [])

    return {"ours (Numba)": ours, "reference (NumPy kernels)": reference, "live stage": live_stage}


def network_times(name: str, device: torch.device, batch: int, half: bool, reps: int, warmup: int = 3) -> list[float]:
    """Milliseconds per call of the network alone on a random sparse occupancy grid of ``batch`` frames."""
    model = create_model(name, device=device).eval()
    D = model.in_grid
    x = (torch.rand(batch, 1, D, D, D, device=device) > 0.97).float()
    if half:
        model, x = model.half(), x.half()
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    with torch.inference_mode():
        return time_calls(lambda: model(x), reps, warmup, sync)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10, help="calls per implementation per round")
    ap.add_argument("--frames", type=int, default=24, help="eval-set frames cycled through")
    ap.add_argument("--weights", type=Path, default=DEFAULT_V2V_WEIGHTS)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="for the full model")
    ap.add_argument("--quick", action="store_true", help="1 round, 2 calls, 4 frames: check the output, not the speed")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.reps, args.frames = 1, 2, 4

    cases = end_to_end_cases(args.weights, args.frames)
    _, times = time_alternating(cases, args.rounds, args.reps)  # warm-up: Numba compile, torch init
    e2e = {k: median_p95(v)[0] for k, v in times.items()}

    dev = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and dev.type != "cuda":
        print("CUDA requested but not available; timing the full model on CPU", file=sys.stderr)
    settings = [(b, h) for b in (1, 8, 32) for h in (False, True)] if dev.type == "cuda" else [(1, False)]
    full_reps = 20 if dev.type == "cuda" else max(2, args.reps // 3)
    warmup = 3
    if args.quick:
        settings, full_reps, warmup = settings[:1], 1, 1
    paper_ms = 1000.0 / PAPER_FPS
    results = [
        timed_row("v2v_light_end_to_end", times["ours (Numba)"], "reference (NumPy kernels)",
                  times["reference (NumPy kernels)"], what="light model, one depth frame, batch 1, CPU: reference "
                  "point, voxelization, network, read-out", fps=1000.0 / e2e["ours (Numba)"]),
        timed_row("v2v_light_live_stage", times["live stage"], what="tracker.stages.v2v.V2VDepthEstimator, one hand, "
                  "tracking seed, CPU", fps=1000.0 / e2e["live stage"], goal_fps=GOAL_CPU_FPS,
                  goal_met=1000.0 / e2e["live stage"] >= GOAL_CPU_FPS),
    ]  # fmt: skip
    light_ms = network_times("v2v_light", torch.device("cpu"), 1, False, args.reps, warmup)
    light = timed_row("v2v_light_network_cpu", light_ms, what="light network alone, batch 1, float32, CPU")
    light["fps"] = 1000.0 / light["median_ms"]
    results.append(light)
    for batch, half in settings:
        per_frame = [t / batch for t in network_times("v2v_full", dev, batch, half, full_reps, warmup)]
        median, p95 = median_p95(per_frame)
        dtype = "fp16" if half else "fp32"
        results.append(row(
            f"v2v_full_network_{dev.type}_b{batch}_{dtype}", median, p95, f"the paper's {PAPER_FPS} FPS (Titan X)",
            paper_ms, what=f"full model (88^3, width 32) alone, batch {batch}, {dtype}, {dev}; ms per frame",
            fps=1000.0 / median, batch=batch,
            goal_fps=GOAL_GPU_FPS if dev.type == "cuda" and batch == 1 else None,
        ))  # fmt: skip
    machine = machine_info(rounds=args.rounds, reps=args.reps, frames=args.frames, full_model_device=str(dev),
                           gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None)  # fmt: skip
    if args.json:
        print_json(machine, results)
        return 0
    load = machine["load_average"][0] if machine["load_average"] else float("nan")
    print(f"V2V-PoseNet inference on {machine['processor']} ({machine['cpu_count']} cores, torch "
          f"{machine['torch_threads']} threads, load {load:.1f})"
          + (f", GPU {machine['gpu']}" if machine["gpu"] else ""))  # fmt: skip
    print("light model (shipped), end to end, batch 1, CPU:")
    for k, v in e2e.items():
        print(f"  {k:<28} {v:7.1f} ms  {1000.0 / v:6.1f} FPS")
    print(f"  ratio reference / ours: {results[0]['ratio']:.2f}x;  network alone {light['fps']:.1f} FPS")
    print(f"  live stage >= {GOAL_CPU_FPS:.0f} FPS: {'yes' if results[1]['goal_met'] else 'NO'}")
    print(f"full model (88^3, width 32), network only, on {dev}:")
    for r in results[3:]:
        print(f"  batch {r['batch']:<3d} {r['name'].rsplit('_', 1)[1]}  {r['fps']:8.1f} FPS  "
              f"({r['ratio']:.1f}x the paper's {PAPER_FPS} FPS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
