"""What every ``bench/*.py`` shares: the machine description, per-call timing after a warm-up,
medians and 95th percentiles, the JSON layout, and the synthetic camera ring of the rig benchmarks.

The layout (``../shared/DESIGN.md`` §6), printed by ``--json``: one object
``{"machine": {...}, "results": [row, ...]}``; every row has at least

* ``name``: what was timed;
* ``median_ms``, ``p95_ms``: ours, milliseconds per call (per frame where the row says so);
* ``baseline``: what the row is compared with, measured in the same run (a NumPy reference, bare
  MediaPipe, the paper's setting, ...), or None;
* ``baseline_median_ms``: its median, ms, or None;
* ``ratio``: ``baseline_median_ms / median_ms`` (> 1: ours is faster), or None without a baseline.

Rows may carry more keys (``what``, ``fps``, ``goal_ms``, ...). Non-finite numbers are written as
``null`` so the output is strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ROW_KEYS",
    "machine_info",
    "time_calls",
    "time_alternating",
    "median_p95",
    "row",
    "timed_row",
    "check_layout",
    "print_json",
    "ring_cameras",
    "observe",
]

#: The keys every result row has.
ROW_KEYS = ("name", "median_ms", "p95_ms", "baseline", "baseline_median_ms", "ratio")


def machine_info(**extra: Any) -> dict[str, Any]:
    """Python, OS, CPU, NumPy and the load average, plus Numba's / torch's versions and thread counts
    when the benchmark imported them, plus ``extra`` (the run's settings)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    numba = sys.modules.get("numba")
    if numba is not None:
        info.update(numba=numba.__version__, numba_threads=numba.get_num_threads())
    torch = sys.modules.get("torch")
    if torch is not None:
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    info.update(extra)
    return info


def time_calls(fn: Callable[[], object], reps: int, warmup: int = 3,
               sync: Callable[[], None] | None = None) -> list[float]:  # fmt: skip
    """Milliseconds of each of ``reps`` calls of ``fn``, after ``warmup`` untimed calls (compile, caches).

    ``sync`` runs before and after each timed call (e.g. ``torch.cuda.synchronize``) so asynchronous
    work is counted.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_alternating(fns: Mapping[str, Callable[[], object]], rounds: int, reps: int | Mapping[str, int],
                     warmup: int = 3) -> tuple[dict[str, object], dict[str, list[float]]]:  # fmt: skip
    """Time several implementations so machine noise hits all alike.

    Each is warmed up ``warmup`` times (its last output is kept, for comparing the implementations),
    then ``rounds`` rounds run every implementation ``reps`` times in turn (``reps`` may differ per
    implementation: a mapping of name -> calls per round).

    Returns:
        ``(outputs, times)``: the last warm-up output and the per-call milliseconds of each implementation.
    """
    outputs: dict[str, object] = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            outputs[name] = fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = reps[name] if isinstance(reps, Mapping) else reps
            times[name] += time_calls(fn, n, warmup=0)
    return outputs, times


def median_p95(times_ms: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile of per-call times (ms)."""
    t = np.asarray(times_ms, dtype=np.float64)
    return float(np.median(t)), float(np.percentile(t, 95))


def row(name: str, median_ms: float, p95_ms: float, baseline: str | None = None,
        baseline_median_ms: float | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """One result row of the layout; ``ratio`` = ``baseline_median_ms / median_ms`` (None when either is
    missing or not a positive finite number). ``extra`` keys follow the required ones."""
    ratio = None
    if baseline_median_ms is not None and _positive(median_ms) and _positive(baseline_median_ms):
        ratio = float(baseline_median_ms) / float(median_ms)
    return {"name": name, "median_ms": float(median_ms), "p95_ms": float(p95_ms), "baseline": baseline,
            "baseline_median_ms": None if baseline_median_ms is None else float(baseline_median_ms),
            "ratio": ratio, **extra}  # fmt: skip


def timed_row(name: str, times_ms: Sequence[float], baseline: str | None = None,
              baseline_times_ms: Sequence[float] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """:func:`row` from per-call times: median and p95 of ``times_ms``, median of ``baseline_times_ms``."""
    median, p95 = median_p95(times_ms)
    base = None if baseline_times_ms is None else median_p95(baseline_times_ms)[0]
    return row(name, median, p95, baseline, base, **extra)


def check_layout(report: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``report`` is ``{"machine": dict, "results": [row, ...]}`` with every row
    holding :data:`ROW_KEYS` (numbers or None where numbers go) and a consistent ``ratio``."""
    if set(report) != {"machine", "results"}:
        raise ValueError(f"a benchmark report has exactly the keys machine and results, got {sorted(report)}")
    if not isinstance(report["machine"], Mapping) or not isinstance(report["results"], list):
        raise ValueError("machine must be an object and results a list")
    if not report["results"]:
        raise ValueError("a benchmark report needs at least one result row")
    for r in report["results"]:
        missing = [k for k in ROW_KEYS if k not in r]
        if missing:
            raise ValueError(f"result row {r.get('name')!r} lacks {missing}")
        if not isinstance(r["name"], str) or not (r["baseline"] is None or isinstance(r["baseline"], str)):
            raise ValueError(f"row {r['name']!r}: name and baseline must be strings (baseline may be None)")
        for k in ("median_ms", "p95_ms", "baseline_median_ms", "ratio"):
            if r[k] is not None and not isinstance(r[k], (int, float)):
                raise ValueError(f"row {r['name']!r}: {k} must be a number or None, got {r[k]!r}")
        if r["ratio"] is not None:
            want = r["baseline_median_ms"] / r["median_ms"]
            if not math.isclose(r["ratio"], want, rel_tol=1e-6):
                raise ValueError(f"row {r['name']!r}: ratio {r['ratio']} is not baseline / ours = {want}")


def print_json(machine: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> None:
    """Print the one JSON object of the layout (checked with :func:`check_layout`) to stdout."""
    report = _jsonable({"machine": dict(machine), "results": list(results)})
    check_layout(report)
    print(json.dumps(report, indent=1, allow_nan=False))


def ring_cameras(n_views: int, radius_mm: float = 700.0, target: Sequence[float] = (0.0, 0.0, 0.0)) -> tuple:
    """``n_views`` 640x480 pinhole cameras (f = 600 px) evenly spaced on a ring of ``radius_mm`` around
    ``target`` (world mm), ``0.3 * radius_mm`` above it (world y points down), each looking at it
    (:func:`models.synthetic.look_at`). Returns a tuple of :class:`tracker.core.structures.Camera`."""
    from models.synthetic import look_at
    from tracker.core.structures import Camera, Intrinsics

    intr = Intrinsics(600.0, 600.0, 320.0, 240.0, 640, 480)
    centre = np.asarray(target, dtype=np.float64)
    cams = []
    for v in range(n_views):
        a = 2 * np.pi * v / n_views
        eye = centre + radius_mm * np.array([np.sin(a), -0.3, -np.cos(a)])
        cams.append(Camera(f"ring{v}", intr, look_at(eye, centre)))
    return tuple(cams)


def observe(cameras: Sequence, points_world: np.ndarray) -> np.ndarray:
    """``(J, V, 2)`` pinhole pixels of world points ``(J, 3)`` mm in each camera (no noise)."""
    return np.stack([c.intrinsics.project(c.world_to_camera(points_world)) for c in cameras], axis=1)


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _jsonable(x: Any) -> Any:
    """``x`` with NumPy scalars / arrays as Python values, tuples as lists and non-finite floats as None."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
