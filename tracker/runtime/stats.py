"""Running performance counters of the streaming loop: FPS, per-stage latency, drops."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["StageStats", "LoopStats", "StatsRecorder"]


@dataclass(frozen=True)
class StageStats:
    """Latency of one stage over the recent window, milliseconds."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    count: int


@dataclass(frozen=True)
class LoopStats:
    """A snapshot of the loop's counters.

    Attributes:
        fps: processed frame sets per second over the recent window.
        captured: frame sets read from the device(s).
        processed: frame sets that went through the pipeline.
        dropped: frame sets a live source replaced before the pipeline took them.
        stages: latency per pipeline stage (plus "total" and "latency": capture -> result).
    """

    fps: float = 0.0
    captured: int = 0
    processed: int = 0
    dropped: int = 0
    stages: dict[str, StageStats] = field(default_factory=dict)

    def summary(self) -> str:
        """One human-readable line, e.g. for logs and the view's overlay."""
        parts = [f"{self.fps:5.1f} FPS", f"processed {self.processed}", f"dropped {self.dropped}"]
        parts += [f"{k} {v.p50_ms:.1f} ms" for k, v in self.stages.items()]
        return " | ".join(parts)


class StatsRecorder:
    """Thread-safe accumulator behind :class:`LoopStats` (a window of the last ``window`` samples)."""

    def __init__(self, window: int = 300) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._samples: dict[str, collections.deque[float]] = {}
        self._done_times: collections.deque[float] = collections.deque(maxlen=window)
        self.captured = 0
        self.processed = 0
        self.dropped = 0

    def add_captured(self, n: int = 1) -> None:
        with self._lock:
            self.captured += n

    def add_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def add_processed(self, timings_ms: dict[str, float]) -> None:
        with self._lock:
            self.processed += 1
            self._done_times.append(time.perf_counter())
            for name, ms in timings_ms.items():
                self._samples.setdefault(name, collections.deque(maxlen=self._window)).append(ms)

    def snapshot(self) -> LoopStats:
        with self._lock:
            times = list(self._done_times)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            stages = {}
            for name, values in self._samples.items():
                arr = np.fromiter(values, dtype=np.float64)
                p50, p95 = np.percentile(arr, [50, 95])
                stages[name] = StageStats(float(p50), float(p95), float(arr.mean()), len(arr))
            return LoopStats(fps, self.captured, self.processed, self.dropped, stages)
