"""Benchmark: rig-mode triangulation kernels against their NumPy references (issue [4/5]).

Input: 21 joints seen by 8 cameras on a 700 mm ring (640x480), 1 px noise, 25% of the observations
displaced by 50-200 px, confidences in [0.5, 1]. Cases:

* ``triangulate_ransac``: :func:`kernels.triangulate.triangulate_ransac` (all 28 view pairs per
  joint, final weighted DLT, reprojection RMS and propagated uncertainty) vs
  :func:`kernels.reference.triangulate_ransac` (NumPy, per joint). Goal <= 0.5 ms.
* ``triangulate_dlt``: the weighted DLT vs its NumPy (batched SVD) reference.

Each call is timed alone after a warm-up (Numba compile); rounds alternate the implementations;
medians over all calls. ``ratio`` = baseline / ours (> 1: Numba is faster). The rig loop's FPS
(4 synthetic 640x480 views through the streaming loop, goal >= 15 FPS) is :func:`rig_loop_fps`,
kept apart: it is not measured yet (see its docstring).

    python bench/rig.py [--rounds 5] [--reps 200] [--json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import reference as R  # noqa: E402
from kernels.triangulate import triangulate_dlt, triangulate_ransac  # noqa: E402

N_JOINTS, N_VIEWS = 21, 8
THRESHOLD_PX = 15.0


def ring_rig(n_views: int = N_VIEWS, radius: float = 700.0) -> np.ndarray:
    """``(V, 3, 4)`` projection matrices of 640x480 cameras on a ring around the origin (mm)."""
    K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
    P = []
    for v in range(n_views):
        a = 2 * np.pi * v / n_views
        c = radius * np.array([np.sin(a), -0.3, -np.cos(a)])
        z = -c / np.linalg.norm(c)
        x = np.cross([0.0, 1.0, 0.0], z)
        x /= np.linalg.norm(x)
        Rm = np.stack([x, np.cross(z, x), z])
        P.append(K @ np.hstack([Rm, (-Rm @ c)[:, None]]))
    return np.array(P)


def observations(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(P, X, uv, w)``: rig, 21 true joints (mm), noisy observations with 25% outliers, confidences."""
    rng = np.random.default_rng(seed)
    P = ring_rig()
    X = rng.normal(0.0, 60.0, (N_JOINTS, 3))
    x = np.einsum("vab,jb->jva", P, np.c_[X, np.ones(N_JOINTS)])
    uv = x[..., :2] / x[..., 2:] + rng.normal(0.0, 1.0, (N_JOINTS, N_VIEWS, 2))
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
    """Medians / p95 (ms) of each implementation over alternating rounds, after a warm-up."""
    outs = {k: [f() for _ in range(3)][-1] for k, f in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            n = reps if k == "numba" else max(reps // 20, 5)  # the reference is ~100x slower
            for _ in range(n):
                t0 = time.perf_counter()
                f()
                times[k].append((time.perf_counter() - t0) * 1e3)
    med = {k: float(np.median(v)) for k, v in times.items()}
    a = outs["numba"][0] if isinstance(outs["numba"], tuple) else outs["numba"]
    b = outs["numpy"][0] if isinstance(outs["numpy"], tuple) else outs["numpy"]
    goal = GOALS_MS.get(name)
    return {
        "name": name,
        "what": f"{N_JOINTS} joints x {N_VIEWS} views, 25% outlier observations",
        "median_ms": med["numba"],
        "p95_ms": float(np.percentile(times["numba"], 95)),
        "baseline": "numpy",
        "baseline_median_ms": med["numpy"],
        "ratio": med["numpy"] / med["numba"],
        "goal_ms": goal,
        "goal_met": None if goal is None else med["numba"] <= goal,
        "max_diff_numpy_mm": float(np.nanmax(np.abs(np.asarray(a) - np.asarray(b)))),
    }


# ------------------------------------------------------------------------------- rig loop (pending)


def rig_loop_fps(seconds: float = 10.0) -> dict | None:
    """FPS of the live rig loop: 4 synthetic 640x480 views -> MediaPipe per view -> RigTriangulator.

    Not measured yet (returns None): to be finished by the lead with ``devices/rig.py`` (a
    ``RigDevice`` over 4 synthetic views of one scene), MediaPipe run per view (``view`` = frame
    index), :class:`tracker.triangulate.RigTriangulator` on the frame's cameras, driven by
    :class:`tracker.loop.StreamingLoop` for ``seconds``; report ``{"name": "rig_loop_4x640x480",
    "fps": ..., "goal_fps": 15, "baseline": "bare MediaPipe on the 4 views, one thread"}``.
    """
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--reps", type=int, default=200, help="timed Numba calls per round (default 200)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    import numba

    results = [time_case(n, f, args.rounds, args.reps) for n, f in cases().items()]
    loop = rig_loop_fps()
    if loop is not None:
        results.append(loop)
    machine = {
        "python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "numba": numba.__version__, "numba_threads": numba.get_num_threads(), "numpy": np.__version__,
        "rounds": args.rounds, "reps": args.reps,
    }  # fmt: skip
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=1))
        return 0
    print(f"{os.cpu_count()} CPUs, numba {machine['numba_threads']} threads; {args.rounds} rounds")
    print(f"{'case':22s} {'numba ms':>9s} {'p95':>7s} {'numpy ms':>9s} {'ratio':>7s} {'goal':>6s} {'max diff mm':>11s}")
    for r in results:
        goal = "" if r["goal_ms"] is None else ("ok" if r["goal_met"] else "MISSED")
        print(f"{r['name']:22s} {r['median_ms']:9.3f} {r['p95_ms']:7.3f} {r['baseline_median_ms']:9.3f} "
              f"{r['ratio']:7.1f} {goal:>6s} {r['max_diff_numpy_mm']:11.2e}")  # fmt: skip
    if loop is None:
        print("rig loop FPS (4 x 640x480 synthetic views): not measured yet, see rig_loop_fps()")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
