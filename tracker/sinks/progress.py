"""A sink that logs a one-line status about once a second (for headless runs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tracker.runtime.stats import LoopStats
from tracker.core.structures import FrameResult

__all__ = ["ProgressLog"]

log = logging.getLogger("handtrack")


class ProgressLog:
    """Logs frame index, the hands (id, side, wrist depth in mm) and loop stats every ``interval_s``."""

    def __init__(self, stats: Callable[[], LoopStats], interval_s: float = 1.0) -> None:
        self._stats = stats
        self.interval_s = interval_s
        self._last = 0.0

    def __call__(self, result: FrameResult) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        hands = ", ".join(
            f"id {h.track_id} {h.handedness}"
            + ("" if h.joints_3d is None else f" wrist z {h.joints_3d[0, 2]:.0f} mm")
            for h in result.hands
        )
        s = self._stats()
        log.info("frame %d t=%.2f s: %s | %.1f FPS, dropped %d", result.index, result.timestamp,
                 hands or "no hands", s.fps, s.dropped)  # fmt: skip
