"""Every ``bench/*.py --json`` prints ONE JSON object of the layout of ``../shared/DESIGN.md`` §6:
``{"machine": {...}, "results": [{"name", "median_ms", "p95_ms", "baseline", "baseline_median_ms",
"ratio"}, ...]}`` with ``ratio = baseline_median_ms / median_ms``.

Each script runs as a user would run it (a subprocess from the repository root) with its smallest
setting; the timings themselves are not checked (the machines are shared and noisy), only the layout.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = ("name", "median_ms", "p95_ms", "baseline", "baseline_median_ms", "ratio")

#: (script, smallest arguments, expected row names (a prefix for the full-model rows of bench/v2v.py)).
CASES = [
    pytest.param("loop.py", ["--rounds", "1", "--passes", "1", "--max-frames", "5"],
                 ["loop_frame", "stage:landmarks", "stage:lift", "stage:identity", "stage:smoothing"],
                 id="loop"),
    pytest.param("refine.py", ["--reps", "20"], ["prior_mp21", "refiner+prior_mp21"], id="refine",
                 marks=pytest.mark.slow),
    pytest.param("rig.py", ["--no-loop", "--rounds", "1", "--reps", "2"], ["triangulate_ransac", "triangulate_dlt"],
                 id="rig", marks=pytest.mark.slow),
    pytest.param("kernels.py", ["--rounds", "1", "--reps", "1", "--only", "depth_center_of_mass,triangulate_dlt"],
                 ["depth_center_of_mass", "triangulate_dlt"], id="kernels", marks=pytest.mark.slow),
    pytest.param("v2v.py", ["--quick"], ["v2v_light_end_to_end", "v2v_light_live_stage", "v2v_light_network_cpu",
                                         "v2v_full_network_"], id="v2v", marks=pytest.mark.slow),
    pytest.param("io.py", ["--quick"], ["loop_record_lossless", "loop_record_jpeg90", "record_lossless_demo",
                                        "record_jpeg90_demo", "record_lossless_rgbd", "record_jpeg90_rgbd",
                                        "websocket_latency", "osc_latency"], id="io", marks=pytest.mark.slow),
    pytest.param("gestures.py", ["--frames", "60", "--reps", "3"], ["gesture_online_2_hands", "gesture_classify_clip",
                                                                 "temporal_refine_2_hands"],
                 id="gestures", marks=pytest.mark.slow),
    pytest.param("batch.py", ["--quick"], ["local_1_worker", "local_2_workers", "ray_1_worker", "ray_2_workers",
                                           "ray_dispatch_per_input", "ray_startup"], id="batch", marks=pytest.mark.slow),
]  # fmt: skip


def check_layout(report: dict) -> None:
    """Assert the layout of DESIGN.md §6 (numbers may be None where there is nothing to compare)."""
    assert set(report) == {"machine", "results"}
    assert isinstance(report["machine"], dict) and report["machine"].get("cpu_count")
    assert isinstance(report["results"], list) and report["results"]
    for row in report["results"]:
        assert all(k in row for k in ROW_KEYS), (row.get("name"), sorted(row))
        assert isinstance(row["name"], str)
        assert row["baseline"] is None or isinstance(row["baseline"], str)
        assert isinstance(row["median_ms"], (int, float)) and row["median_ms"] > 0, row
        assert isinstance(row["p95_ms"], (int, float)) and row["p95_ms"] >= 0, row
        if row["baseline"] is None:
            assert row["baseline_median_ms"] is None and row["ratio"] is None, row
        else:
            assert row["baseline_median_ms"] > 0, row
            assert math.isclose(row["ratio"], row["baseline_median_ms"] / row["median_ms"], rel_tol=1e-9), row


@pytest.mark.parametrize("script, args, names", CASES)
def test_bench_json_layout(script: str, args: list[str], names: list[str]) -> None:
    env = {**os.environ, "GLOG_minloglevel": "2"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    check_layout(report)
    got = [r["name"] for r in report["results"]]
    for name in names:
        assert any(g == name or (name.endswith("_") and g.startswith(name)) for g in got), (name, got)


def test_the_layout_check_rejects_a_wrong_ratio() -> None:
    """The check above really checks: a row whose ratio is ours / baseline fails it."""
    good = {"machine": {"cpu_count": 2}, "results": [
        {"name": "x", "median_ms": 2.0, "p95_ms": 3.0, "baseline": "numpy", "baseline_median_ms": 8.0, "ratio": 4.0}]}
    check_layout(good)
    bad = json.loads(json.dumps(good))
    bad["results"][0]["ratio"] = 0.25
    with pytest.raises(AssertionError):
        check_layout(bad)
    missing = json.loads(json.dumps(good))
    del missing["results"][0]["p95_ms"]
    with pytest.raises(AssertionError):
        check_layout(missing)
