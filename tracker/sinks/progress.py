"""A sink that logs a one-line status about once a second (for headless runs)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from tracker.core.structures import FrameResult
from tracker.runtime.stats import LoopStats

__all__ = ["ProgressLog"]

log = logging.getLogger("handtrack")


class ProgressLog:
    """Logs frame index, the hands (id, side, wrist depth in mm) and loop stats every ``interval_s``."""

    def __init__(self, stats: Callable[[], LoopStats], interval_s: float = 1.0) -> None:
        self._stats = stats
        self.interval_s = interval_s
        self._last = -math.inf  # the first result is logged at once, however young the monotonic clock

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
