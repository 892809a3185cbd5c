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

Rounds alternate the implementations so machine noise hits all alike; medians are reported.

    python bench/v2v.py [--rounds 5] [--reps 10] [--device auto|cpu|cuda] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO))
#: The committed held-out set (scripts/make_synth_eval.py); evaluation data of the checkout, not of the package.
EVAL_SET = _REPO / "assets" / "synth_eval" / "single_view.npz"

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


def _median_ms(fn: Callable[[], object], reps: int, sync: Callable[[], None] = lambda: None) -> list[float]:
    out = []
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out.append(1000.0 * (time.perf_counter() - t))
    return out


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


def network_fps(name: str, device: torch.device, batch: int, half: bool, reps: int) -> float:
    model = create_model(name, device=device).eval()
    D = model.in_grid
    x = (torch.rand(batch, 1, D, D, D, device=device) > 0.97).float()
    if half:
        model, x = model.half(), x.half()
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        ts = _median_ms(lambda: model(x), reps, sync)
    return 1000.0 * batch / float(np.median(ts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10, help="calls per implementation per round")
    ap.add_argument("--frames", type=int, default=24, help="eval-set frames cycled through")
    ap.add_argument("--weights", type=Path, default=DEFAULT_V2V_WEIGHTS)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="for the full model")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    cases = end_to_end_cases(args.weights, args.frames)
    for fn in cases.values():  # warm-up: Numba compile, torch init
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for k, fn in cases.items():
            times[k] += _median_ms(fn, args.reps)
    e2e = {k: float(np.median(v)) for k, v in times.items()}
    ours = e2e["ours (Numba)"]

    dev = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and dev.type != "cuda":
        print("CUDA requested but not available; timing the full model on CPU", file=sys.stderr)
    full: dict[str, float] = {}
    if dev.type == "cuda":
        for batch in (1, 8, 32):
            for half in (False, True):
                full[f"batch {batch} {'fp16' if half else 'fp32'}"] = network_fps("v2v_full", dev, batch, half, 20)
    else:
        full["batch 1 fp32"] = network_fps("v2v_full", dev, 1, False, max(2, args.reps // 3))
    light_net = network_fps("v2v_light", torch.device("cpu"), 1, False, args.reps)

    res = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                    "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None},  # fmt: skip
        "light_end_to_end_ms": e2e,
        "light_end_to_end_fps": {k: 1000.0 / v for k, v in e2e.items()},
        "ratio_reference_over_ours": e2e["reference (NumPy kernels)"] / ours,
        "light_network_only_fps_cpu": light_net,
        "cpu_goal_fps": GOAL_CPU_FPS,
        "cpu_goal_met": 1000.0 / e2e["live stage"] >= GOAL_CPU_FPS,
        "full_model_device": str(dev),
        "full_model_fps": full,
        "full_vs_paper_3p5fps": {k: v / PAPER_FPS for k, v in full.items()},
        "gpu_goal_fps_batch1": GOAL_GPU_FPS if dev.type == "cuda" else None,
    }
    if args.json:
        print(json.dumps(res))
        return 0
    m = res["machine"]
    print(f"V2V-PoseNet inference on {m['cpu']} ({m['cores']} cores, torch {m['torch_threads']} threads, "
          f"load {m['load_avg']:.1f})" + (f", GPU {m['gpu']}" if m["gpu"] else ""))  # fmt: skip
    print("light model (shipped), end to end, batch 1, CPU:")
    for k, v in e2e.items():
        print(f"  {k:<28} {v:7.1f} ms  {1000.0 / v:6.1f} FPS")
    print(f"  ratio reference / ours: {res['ratio_reference_over_ours']:.2f}x;  network alone {light_net:.1f} FPS")
    print(f"  live stage >= {GOAL_CPU_FPS:.0f} FPS: {'yes' if res['cpu_goal_met'] else 'NO'}")
    print(f"full model (88^3, width 32), network only, on {dev}:")
    for k, v in full.items():
        print(f"  {k:<16} {v:8.1f} FPS  ({v / PAPER_FPS:.1f}x the paper's {PAPER_FPS} FPS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
