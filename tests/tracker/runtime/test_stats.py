"""StatsRecorder / LoopStats: counters, per-stage percentiles over a window, FPS, the summary line."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from tracker.runtime import stats as stats_module
from tracker.runtime.stats import LoopStats, StageStats, StatsRecorder


def test_percentiles_and_mean_of_each_stage() -> None:
    """Stage "a" fed 1..100 ms: p50 50.5, p95 95.05, mean 50.5 (numpy's linear percentiles), count 100."""
    rec = StatsRecorder(window=300)
    for ms in range(1, 101):
        rec.add_processed({"a": float(ms), "total": 2.0 * ms})
    snap = rec.snapshot()
    assert snap.processed == 100 and snap.captured == 0 and snap.dropped == 0
    assert snap.stages["a"] == StageStats(p50_ms=50.5, p95_ms=pytest.approx(95.05), mean_ms=50.5, count=100)
    assert snap.stages["total"].p50_ms == 101.0 and snap.stages["total"].count == 100


def test_window_keeps_only_the_latest_samples() -> None:
    """window=10 after 1..25 ms: the stats are those of 16..25 (mean 20.5), the counters of all 25."""
    rec = StatsRecorder(window=10)
    for ms in range(1, 26):
        rec.add_processed({"s": float(ms)})
    snap = rec.snapshot()
    assert snap.processed == 25
    assert snap.stages["s"].count == 10 and snap.stages["s"].mean_ms == 20.5 and snap.stages["s"].p50_ms == 20.5


def test_fps_from_completion_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """11 frames finished 0.04 s apart: 10 intervals over 0.4 s = 25.0 FPS; one frame or none: 0."""
    clock = iter(np.arange(11) * 0.04 + 100.0)
    monkeypatch.setattr(stats_module, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    rec = StatsRecorder()
    assert rec.snapshot().fps == 0.0
    rec.add_processed({})
    assert rec.snapshot().fps == 0.0
    for _ in range(10):
        rec.add_processed({})
    assert rec.snapshot().fps == pytest.approx(25.0)


def test_counters_are_thread_safe() -> None:
    """4 threads x 2000 updates of each counter: exactly 8000 captured, dropped and processed."""
    rec = StatsRecorder(window=50)

    def work() -> None:
        for _ in range(2000):
            rec.add_captured()
            rec.add_dropped()
            rec.add_processed({"x": 1.0})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    snap = rec.snapshot()
    assert (snap.captured, snap.dropped, snap.processed) == (8000, 8000, 8000)
    assert snap.stages["x"].count == 50


def test_summary_line() -> None:
    stats = LoopStats(fps=29.96, captured=12, processed=10, dropped=2,
                      stages={"mediapipe": StageStats(12.34, 20.0, 13.0, 10), "total": StageStats(15.0, 22.0, 16.0, 10)})  # fmt: skip
    assert stats.summary() == " 30.0 FPS | processed 10 | dropped 2 | mediapipe 12.3 ms | total 15.0 ms"
    assert LoopStats().summary() == "  0.0 FPS | processed 0 | dropped 0"
